//! Where webhooks may deliver: the destination policy that keeps a webhook
//! from becoming a request forgery (SSRF) into the service's own network.
//!
//! https only, and never to a loopback, private, link-local, metadata,
//! multicast or otherwise special address, unless the operator's allow-list
//! names the host or a network containing the address. The same rules apply
//! to a URL at creation and, at delivery, to every address its host resolves
//! to (a name may resolve elsewhere tomorrow: DNS rebinding).
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use url::{Host, Url};

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Loopback,
    Private,
    LinkLocal,
    Metadata,
    Unspecified,
    Multicast,
    Broadcast,
    SharedAddressSpace,
    Reserved,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Loopback => "a loopback address",
            Refusal::Private => "a private address",
            Refusal::LinkLocal => "a link-local address",
            Refusal::Metadata => "a cloud metadata address",
            Refusal::Unspecified => "an unspecified address",
            Refusal::Multicast => "a multicast address",
            Refusal::Broadcast => "a broadcast address",
            Refusal::SharedAddressSpace => "a carrier-grade NAT (100.64/10) address",
            Refusal::Reserved => "a reserved address",
        })
    }
}

/// Well-known instance-metadata endpoints outside the link-local range.
const METADATA_V4: [Ipv4Addr; 2] = [
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, ...
    Ipv4Addr::new(168, 63, 129, 16),   // Azure wire server (a public address)
];
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254); // AWS

/// The reason a webhook must not reach `ip`, or None for an ordinary public
/// address.
pub fn refusal(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn refusal_v4(ip: Ipv4Addr) -> Option<Refusal> {
    if METADATA_V4.contains(&ip) {
        return Some(Refusal::Metadata);
    }
    let rules: &[([u8; 4], u32, Refusal)] = &[
        ([0, 0, 0, 0], 8, Refusal::Unspecified), // "this network"
        ([127, 0, 0, 0], 8, Refusal::Loopback),
        ([10, 0, 0, 0], 8, Refusal::Private),
        ([172, 16, 0, 0], 12, Refusal::Private),
        ([192, 168, 0, 0], 16, Refusal::Private),
        ([169, 254, 0, 0], 16, Refusal::LinkLocal),
        ([100, 64, 0, 0], 10, Refusal::SharedAddressSpace),
        ([192, 0, 0, 0], 24, Refusal::Reserved), // IETF protocol assignments
        ([192, 0, 2, 0], 24, Refusal::Reserved), // documentation
        ([198, 51, 100, 0], 24, Refusal::Reserved),
        ([203, 0, 113, 0], 24, Refusal::Reserved),
        ([198, 18, 0, 0], 15, Refusal::Reserved), // benchmarking
        ([255, 255, 255, 255], 32, Refusal::Broadcast),
        ([224, 0, 0, 0], 4, Refusal::Multicast),
        ([240, 0, 0, 0], 4, Refusal::Reserved),
    ];
    rules
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

fn refusal_v6(ip: Ipv6Addr) -> Option<Refusal> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some(Refusal::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Refusal::Loopback);
    }
    if ip == METADATA_V6 {
        return Some(Refusal::Metadata);
    }
    // Forms that carry an IPv4 address are judged by that address:
    // mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::a.b.c.d
    // and 6to4 2002:AABB:CCDD::.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refusal_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if s[..6] == [0; 6] {
        return refusal_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return refusal_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return refusal_v4(embedded(s[1], s[2]));
    }
    match s[0] {
        x if x & 0xfe00 == 0xfc00 => Some(Refusal::Private), // unique local fc00::/7
        x if x & 0xffc0 == 0xfe80 => Some(Refusal::LinkLocal), // fe80::/10
        x if x & 0xffc0 == 0xfec0 => Some(Refusal::Private), // site-local (deprecated)
        x if x & 0xff00 == 0xff00 => Some(Refusal::Multicast),
        // 64:ff9b:1::/48 local NAT64, 100::/64 discard, 2001::/32 Teredo
        // (hides an IPv4 address), 2001:db8::/32 documentation.
        0x64 if s[1] == 0xff9b && s[2] == 1 => Some(Refusal::Private),
        0x100 if s[1..4] == [0, 0, 0] => Some(Refusal::Reserved),
        0x2001 if s[1] == 0 || s[1] == 0xdb8 => Some(Refusal::Reserved),
        _ => None,
    }
}

/// A URL or address the policy refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    NotHttps,
    NoHost,
    Address { host: String, why: Refusal },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::NotHttps => f.write_str(
                "must be https (http only when the server allows it: SALESOPS_WEBHOOK_ALLOW_HTTP)",
            ),
            PolicyError::NoHost => f.write_str("must name a host"),
            PolicyError::Address { host, why } => write!(
                f,
                "destination refused: {host} is {why} (permit it with SALESOPS_WEBHOOK_ALLOWED_HOSTS)"
            ),
        }
    }
}

impl std::error::Error for PolicyError {}

/// The operator's policy: whether plain http is allowed, and the hosts and
/// networks a webhook may reach despite the address rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationPolicy {
    allow_http: bool,
    /// Lower-case host names, without a trailing dot.
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl DestinationPolicy {
    /// `allowed` is a comma-separated list of host names, IP addresses and
    /// CIDR networks (`hooks.internal, 10.1.0.0/16, ::1`).
    pub fn new(allow_http: bool, allowed: &str) -> Result<Self, String> {
        let mut policy = Self {
            allow_http,
            ..Self::default()
        };
        for entry in allowed.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                policy.nets.push(net.trunc());
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                policy.nets.push(IpNet::from(ip));
            } else if entry.contains('/') || entry.contains(':') {
                return Err(format!(
                    "allowed webhook host {entry:?} is not a valid network"
                ));
            } else {
                policy.hosts.push(normal_name(entry));
            }
        }
        Ok(policy)
    }

    fn host_allowed(&self, name: &str) -> bool {
        let name = normal_name(name);
        self.hosts.contains(&name)
    }

    fn addr_allowed(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Checks an address `host` resolved to (or an address literal): the
    /// allow-list first, then the address rules.
    pub fn check_addr(&self, host: &str, ip: IpAddr) -> Result<(), PolicyError> {
        if self.host_allowed(host) || self.addr_allowed(ip) {
            return Ok(());
        }
        match refusal(ip) {
            None => Ok(()),
            Some(why) => Err(PolicyError::Address {
                host: ip.to_string(),
                why,
            }),
        }
    }

    /// Whether every address of a resolved host may be reached (one refused
    /// address refuses the host: a rebinding answer mixes good and bad).
    pub fn check_resolved(&self, host: &str, ips: &[IpAddr]) -> Result<(), PolicyError> {
        if self.host_allowed(host) {
            return Ok(());
        }
        ips.iter().try_for_each(|ip| self.check_addr(host, *ip))
    }

    /// Checks a parsed URL: scheme, then the host. Address literals in any
    /// encoding (`2130706433`, `0x7f.1`, `127.1`, `[::ffff:127.0.0.1]`) are
    /// already decoded by the WHATWG parser; names are checked here only when
    /// they are local by definition, and again by address at delivery.
    pub fn check_url(&self, url: &Url) -> Result<(), PolicyError> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(PolicyError::NotHttps),
        }
        match url.host() {
            None => Err(PolicyError::NoHost),
            Some(Host::Ipv4(ip)) => self.check_addr(&ip.to_string(), IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_addr(&ip.to_string(), IpAddr::V6(ip)),
            Some(Host::Domain(name)) => {
                if self.host_allowed(name) {
                    return Ok(());
                }
                let n = normal_name(name);
                if n.is_empty() {
                    return Err(PolicyError::NoHost);
                }
                // RFC 6761: localhost and its subdomains are loopback.
                let why = if n == "localhost" || n.ends_with(".localhost") {
                    Some(Refusal::Loopback)
                } else if n == "metadata.google.internal" {
                    Some(Refusal::Metadata)
                } else {
                    None
                };
                match why {
                    None => Ok(()),
                    Some(why) => Err(PolicyError::Address { host: n, why }),
                }
            }
        }
    }
}

fn normal_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// An IPv4-mapped IPv6 address as its IPv4 address, so `127.0.0.0/8` in the
/// allow-list also covers `::ffff:127.0.0.1`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> DestinationPolicy {
        DestinationPolicy::new(false, "").unwrap()
    }

    fn why(policy: &DestinationPolicy, url: &str) -> Option<PolicyError> {
        policy.check_url(&Url::parse(url).unwrap()).err()
    }

    #[test]
    fn public_https_is_allowed() {
        let p = strict();
        for url in [
            "https://hooks.example.com/x",
            "https://93.184.216.34/x",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/x",
            "https://8.8.8.8:8443/x",
        ] {
            assert_eq!(why(&p, url), None, "{url}");
        }
    }

    #[test]
    fn http_needs_the_setting() {
        assert_eq!(
            why(&strict(), "http://hooks.example.com/"),
            Some(PolicyError::NotHttps)
        );
        let p = DestinationPolicy::new(true, "").unwrap();
        assert_eq!(why(&p, "http://hooks.example.com/"), None);
        assert_eq!(
            why(&p, "ftp://hooks.example.com/"),
            Some(PolicyError::NotHttps)
        );
    }

    #[test]
    fn special_addresses_in_every_encoding_are_refused() {
        let p = strict();
        let cases = [
            ("https://127.0.0.1/", "127.0.0.1", Refusal::Loopback),
            ("https://2130706433/", "127.0.0.1", Refusal::Loopback),
            ("https://0x7f.1/", "127.0.0.1", Refusal::Loopback),
            ("https://0x7f000001/", "127.0.0.1", Refusal::Loopback),
            ("https://017700000001/", "127.0.0.1", Refusal::Loopback),
            ("https://127.1/", "127.0.0.1", Refusal::Loopback),
            ("https://[::1]/", "::1", Refusal::Loopback),
            (
                "https://[::ffff:127.0.0.1]/",
                "::ffff:127.0.0.1",
                Refusal::Loopback,
            ),
            (
                "https://[::ffff:7f00:1]/",
                "::ffff:127.0.0.1",
                Refusal::Loopback,
            ),
            ("https://[::127.0.0.1]/", "::7f00:1", Refusal::Loopback),
            (
                "https://[64:ff9b::a00:1]/",
                "64:ff9b::a00:1",
                Refusal::Private,
            ),
            (
                "https://[2002:a9fe:a9fe::]/",
                "2002:a9fe:a9fe::",
                Refusal::Metadata,
            ),
            ("https://localhost/", "localhost", Refusal::Loopback),
            ("https://LOCALHOST./", "localhost", Refusal::Loopback),
            ("https://api.localhost/", "api.localhost", Refusal::Loopback),
            ("https://10.1.2.3/", "10.1.2.3", Refusal::Private),
            ("https://172.16.0.1/", "172.16.0.1", Refusal::Private),
            (
                "https://172.31.255.255/",
                "172.31.255.255",
                Refusal::Private,
            ),
            ("https://192.168.1.1/", "192.168.1.1", Refusal::Private),
            ("https://[fc00::1]/", "fc00::1", Refusal::Private),
            ("https://[fd12:3456::1]/", "fd12:3456::1", Refusal::Private),
            (
                "https://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
                Refusal::Metadata,
            ),
            (
                "https://[::ffff:169.254.169.254]/",
                "::ffff:169.254.169.254",
                Refusal::Metadata,
            ),
            ("https://0xa9fea9fe/", "169.254.169.254", Refusal::Metadata),
            (
                "https://[fd00:ec2::254]/",
                "fd00:ec2::254",
                Refusal::Metadata,
            ),
            (
                "https://metadata.google.internal/",
                "metadata.google.internal",
                Refusal::Metadata,
            ),
            ("https://169.254.1.1/", "169.254.1.1", Refusal::LinkLocal),
            ("https://[fe80::1]/", "fe80::1", Refusal::LinkLocal),
            ("https://0.0.0.0/", "0.0.0.0", Refusal::Unspecified),
            ("https://0/", "0.0.0.0", Refusal::Unspecified),
            ("https://[::]/", "::", Refusal::Unspecified),
            ("https://224.0.0.1/", "224.0.0.1", Refusal::Multicast),
            ("https://[ff02::1]/", "ff02::1", Refusal::Multicast),
            (
                "https://255.255.255.255/",
                "255.255.255.255",
                Refusal::Broadcast,
            ),
            (
                "https://100.64.0.1/",
                "100.64.0.1",
                Refusal::SharedAddressSpace,
            ),
            (
                "https://100.127.255.254/",
                "100.127.255.254",
                Refusal::SharedAddressSpace,
            ),
            ("https://240.0.0.1/", "240.0.0.1", Refusal::Reserved),
        ];
        for (url, host, expected) in cases {
            assert_eq!(
                why(&p, url),
                Some(PolicyError::Address {
                    host: host.into(),
                    why: expected
                }),
                "{url}"
            );
        }
        // Neighbours of the ranges stay public.
        for url in [
            "https://172.32.0.1/",
            "https://100.128.0.1/",
            "https://11.0.0.1/",
            "https://169.253.255.255/",
        ] {
            assert_eq!(why(&p, url), None, "{url}");
        }
    }

    #[test]
    fn the_allow_list_names_hosts_and_networks() {
        let p =
            DestinationPolicy::new(true, " 127.0.0.0/8, hooks.internal., ::1 ,10.1.2.3").unwrap();
        assert_eq!(why(&p, "http://127.0.0.1:9000/x"), None);
        assert_eq!(why(&p, "http://127.1/x"), None);
        assert_eq!(why(&p, "http://[::ffff:127.0.0.1]/x"), None);
        assert_eq!(why(&p, "http://[::1]/x"), None);
        assert_eq!(why(&p, "https://HOOKS.internal/x"), None);
        assert_eq!(why(&p, "https://10.1.2.3/x"), None);
        assert!(why(&p, "https://10.1.2.4/x").is_some());
        assert!(why(&p, "https://169.254.169.254/x").is_some());
        // A named host is trusted whatever it resolves to; other names are not.
        let private: IpAddr = "10.9.9.9".parse().unwrap();
        assert_eq!(p.check_resolved("hooks.internal", &[private]), Ok(()));
        assert_eq!(
            p.check_resolved(
                "evil.example.com",
                &["93.184.216.34".parse().unwrap(), private]
            ),
            Err(PolicyError::Address {
                host: "10.9.9.9".into(),
                why: Refusal::Private
            })
        );
        assert!(DestinationPolicy::new(false, "10.0.0.0/33").is_err());
        assert!(DestinationPolicy::new(false, "fe80::1::2").is_err());
    }
}
