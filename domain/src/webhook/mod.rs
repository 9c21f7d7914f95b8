//! Webhook signatures, retry timing, failure classes, the destination
//! policy and sealed secrets: pure functions.
use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub mod policy;
pub mod secret;

/// The `X-Salesops-Signature` value of a body: `sha256=` and the hex
/// HMAC-SHA256 of the exact bytes sent, keyed with the webhook's secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait after the `attempts`-th failed attempt (1-based): base, 2 x
/// base, 4 x base, ... capped at `max`.
pub fn backoff(base: Duration, attempts: u32, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(31));
    base.checked_mul(factor).unwrap_or(max).min(max)
}

/// What a failed attempt came to, as recorded in `lastError`: a class, never
/// the receiver's body or a transport message (those name addresses and
/// ports, which would turn deliveries into a port scanner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The receiver answered outside 2xx (redirects are not followed).
    Status(u16),
    ConnectionRefused,
    Timeout,
    Dns,
    Tls,
    /// The URL or an address its host resolved to is refused by policy.
    Refused,
    /// Any other failure to connect or to exchange the request.
    Connection,
    WebhookDeleted,
    /// The stored secret cannot be decrypted with the configured key.
    SecretUnreadable,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status(code) => write!(f, "HTTP {code}"),
            Failure::ConnectionRefused => f.write_str("connection refused"),
            Failure::Timeout => f.write_str("timeout"),
            Failure::Dns => f.write_str("dns"),
            Failure::Tls => f.write_str("tls"),
            Failure::Refused => f.write_str("destination refused by policy"),
            Failure::Connection => f.write_str("connection failed"),
            Failure::WebhookDeleted => f.write_str("the webhook was deleted"),
            Failure::SecretUnreadable => f.write_str("secret unreadable with the configured key"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let waits: Vec<u128> = (1..=6).map(|n| backoff(base, n, max).as_millis()).collect();
        // 100, 200, 400, 800, then 1,600 and 3,200 capped at 1,000.
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(base, 100, max), max);
    }
}
