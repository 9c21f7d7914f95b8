//! Bearer tokens: verifying (HS256 with a secret, or RS256/ES256 with an
//! identity provider's public key, the algorithm pinned) and minting them for
//! operators. The verified claims become the request's `Principal`.
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Admin,
    Ops,
    Manager,
    Rep,
    Viewer,
    Integration,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Ops => "OPS",
            Role::Manager => "MANAGER",
            Role::Rep => "REP",
            Role::Viewer => "VIEWER",
            Role::Integration => "INTEGRATION",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase())).map_err(|_| {
            format!("unknown role {s:?}: ADMIN, OPS, MANAGER, REP, VIEWER or INTEGRATION")
        })
    }
}

/// `rep_id` may be sent as a number or a string.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RepIdClaim {
    Number(i64),
    Text(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rep_id: Option<RepIdClaim>,
    pub exp: u64,
    pub iat: u64,
    pub iss: String,
    pub aud: String,
}

/// Who is calling: the verified subject, role and (for REP and MANAGER) rep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub role: Role,
    pub rep_id: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the Authorization header must be `Bearer <token>`")]
    Malformed,
    #[error("a bearer token is required")]
    Missing,
}

pub struct JwtKeys {
    /// Longest `exp - iat` accepted, in seconds.
    max_ttl: u64,
    verified: VerifiedTokens,
    decoding: DecodingKey,
    validation: Validation,
    encoding: Option<(EncodingKey, Algorithm)>,
    issuer: String,
    audience: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no JWT key configured: set SALESOPS_JWT_SECRET (HS256) or SALESOPS_JWT_PUBLIC_KEY (RS256/ES256 PEM), or run `serve --demo`")]
    NotConfigured,
    #[error("set only one of SALESOPS_JWT_SECRET and SALESOPS_JWT_PUBLIC_KEY")]
    Both,
    #[error("SALESOPS_JWT_SECRET must be at least 32 bytes")]
    WeakSecret,
    #[error("cannot read key file {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0} is not an RSA or EC (P-256) public key in PEM format")]
    BadPublicKey(String),
    #[error("{0} is not a private key matching the public key's algorithm")]
    BadPrivateKey(String),
}

impl JwtKeys {
    pub fn from_config(cfg: &Config) -> Result<Self, KeyError> {
        let (decoding, encoding, alg) = match (&cfg.jwt_secret, &cfg.jwt_public_key) {
            (Some(_), Some(_)) => return Err(KeyError::Both),
            (None, None) => return Err(KeyError::NotConfigured),
            (Some(secret), None) => {
                if secret.len() < 32 {
                    return Err(KeyError::WeakSecret);
                }
                let enc = EncodingKey::from_secret(secret.as_bytes());
                (
                    DecodingKey::from_secret(secret.as_bytes()),
                    Some(enc),
                    Algorithm::HS256,
                )
            }
            (None, Some(path)) => {
                let pem = std::fs::read(path).map_err(|e| KeyError::Read(path.clone(), e))?;
                let (dec, alg) = if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
                    (k, Algorithm::RS256)
                } else if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
                    (k, Algorithm::ES256)
                } else {
                    return Err(KeyError::BadPublicKey(path.clone()));
                };
                let enc = match &cfg.jwt_private_key {
                    None => None,
                    Some(priv_path) => {
                        let pem = std::fs::read(priv_path)
                            .map_err(|e| KeyError::Read(priv_path.clone(), e))?;
                        let key = match alg {
                            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
                            _ => EncodingKey::from_ec_pem(&pem),
                        };
                        Some(key.map_err(|_| KeyError::BadPrivateKey(priv_path.clone()))?)
                    }
                };
                (dec, enc, alg)
            }
        };
        // Pinned: only this algorithm verifies, so `alg: none` or an HS256
        // token signed with a public key as secret is rejected.
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[cfg.jwt_issuer.as_str()]);
        validation.set_audience(&[cfg.jwt_audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Ok(Self {
            max_ttl: cfg.jwt_max_ttl_secs,
            verified: VerifiedTokens::default(),
            decoding,
            validation,
            encoding: encoding.map(|e| (e, alg)),
            issuer: cfg.jwt_issuer.clone(),
            audience: cfg.jwt_audience.clone(),
        })
    }

    /// Verifies a token and turns its claims into a Principal. A token
    /// verified before is answered from `VerifiedTokens` until it expires.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(p) = self.verified.get(token, now, self.validation.leeway) {
            return Ok(p);
        }
        let (principal, exp) = self.verify_signed(token)?;
        self.verified.put(token, &principal, exp);
        Ok(principal)
    }

    /// The full check: signature, claims, lifetime; the principal and the
    /// token's `exp`.
    fn verify_signed(&self, token: &str) -> Result<(Principal, u64), AuthError> {
        refuse_critical_headers(token)?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let claims = data.claims;
        // A leaked token must not live for years: the issuer's lifetime is
        // capped, and a token issued in the future is refused.
        if claims.exp.saturating_sub(claims.iat) > self.max_ttl {
            return Err(AuthError::Invalid(format!(
                "the token lives longer than {} s (SALESOPS_JWT_MAX_TTL_SECS)",
                self.max_ttl
            )));
        }
        if claims.iat > jsonwebtoken::get_current_timestamp() + self.validation.leeway {
            return Err(AuthError::Invalid(
                "the token is issued in the future".into(),
            ));
        }
        let rep_id = match &claims.rep_id {
            None => None,
            Some(RepIdClaim::Number(n)) => Some(*n),
            Some(RepIdClaim::Text(s)) => Some(
                s.parse::<i64>()
                    .map_err(|_| AuthError::Invalid("rep_id is not a rep id".into()))?,
            ),
        };
        if matches!(claims.role, Role::Rep | Role::Manager) && rep_id.is_none() {
            return Err(AuthError::Invalid(
                "REP and MANAGER tokens need a rep_id claim".into(),
            ));
        }
        if claims.sub.trim().is_empty() {
            return Err(AuthError::Invalid("empty subject".into()));
        }
        Ok((
            Principal {
                subject: claims.sub,
                role: claims.role,
                rep_id,
            },
            claims.exp,
        ))
    }

    /// Reads `Authorization: Bearer <token>`.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(AuthError::Malformed)?;
        self.verify(token.trim())
    }

    /// Mints a token (needs a secret or a private key).
    pub fn issue(
        &self,
        subject: &str,
        role: Role,
        rep_id: Option<i64>,
        ttl: Duration,
    ) -> Result<String, AppError> {
        let (key, alg) = self.encoding.as_ref().ok_or_else(|| {
            AppError::bad_input("minting needs SALESOPS_JWT_SECRET or SALESOPS_JWT_PRIVATE_KEY")
        })?;
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: subject.to_owned(),
            role,
            rep_id: rep_id.map(RepIdClaim::Number),
            exp: now + ttl.as_secs(),
            iat: now,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(*alg), &claims, key)
            .map_err(|e| AppError::internal(e.to_string()))
    }
}

/// Tokens that passed `verify_signed`, by their exact text, with their
/// principal and expiry. A client sends the same token with every request
/// until it expires; checking its signature and claims each time was 3% of
/// the server's CPU on a page of deals (HS256; an RS256 signature costs far
/// more). Everything `verify_signed` checks holds for the token's life but
/// `exp` (a token whose `nbf` or `iat` lay ahead was refused, not kept), so
/// a kept token is checked against its expiry, with the same leeway, and
/// dropped past it. Keyed by the whole text, signature included: a token
/// differing in one byte is verified afresh. Bounded in entries and in the
/// length of a token kept.
struct VerifiedTokens {
    tokens: std::sync::Mutex<lru::LruCache<String, (Principal, u64)>>,
}

impl VerifiedTokens {
    const ENTRIES: usize = 1024;
    /// Longer tokens are verified every time (entries stay under 2 KB).
    const MAX_TOKEN_LEN: usize = 2048;

    fn get(&self, token: &str, now: u64, leeway: u64) -> Option<Principal> {
        let mut tokens = self.lock();
        let (principal, exp) = tokens.get(token)?;
        if now <= exp.saturating_add(leeway) {
            return Some(principal.clone());
        }
        tokens.pop(token);
        None
    }

    fn put(&self, token: &str, principal: &Principal, exp: u64) {
        if token.len() <= Self::MAX_TOKEN_LEN {
            self.lock().put(token.to_owned(), (principal.clone(), exp));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, (Principal, u64)>> {
        // The map holds no invariant a panicking request could break.
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        let cap = std::num::NonZeroUsize::new(Self::ENTRIES).expect("non-zero");
        Self {
            tokens: std::sync::Mutex::new(lru::LruCache::new(cap)),
        }
    }
}

/// RFC 7515 4.1.11: a header naming extensions in `crit` that the
/// recipient does not understand must be rejected. We understand none.
fn refuse_critical_headers(token: &str) -> Result<(), AuthError> {
    use base64::Engine;
    let header = token.split('.').next().unwrap_or("");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| AuthError::Invalid("the header is not base64url".into()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Invalid("the header is not JSON".into()))?;
    if value.get("crit").is_some() {
        return Err(AuthError::Invalid(
            "the header names critical extensions (crit), none of which is supported".into(),
        ));
    }
    Ok(())
}

/// Whether reps named by tokens exist and are active, remembered for a few
/// seconds so a request costs no extra statement in steady state. A
/// deactivated rep's token stops working within `TTL`.
pub struct ActiveReps {
    seen: std::sync::Mutex<lru::LruCache<i64, (bool, std::time::Instant)>>,
}

impl ActiveReps {
    pub const TTL: Duration = Duration::from_secs(5);

    /// True when the rep exists and is active.
    pub async fn check(
        &self,
        db: &sea_orm::DatabaseConnection,
        rep_id: i64,
    ) -> Result<bool, sea_orm::DbErr> {
        use sea_orm::{EntityTrait, QuerySelect};
        if let Some((active, at)) = self.lock().get(&rep_id) {
            if at.elapsed() < Self::TTL {
                return Ok(*active);
            }
        }
        let active: Option<bool> = entity::rep::Entity::find_by_id(rep_id)
            .select_only()
            .column(entity::rep::Column::Active)
            .into_tuple()
            .one(db)
            .await?;
        let active = active.unwrap_or(false);
        self.lock().put(rep_id, (active, std::time::Instant::now()));
        Ok(active)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<i64, (bool, std::time::Instant)>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for ActiveReps {
    fn default() -> Self {
        Self {
            seen: std::sync::Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(10_000).expect("not zero"),
            )),
        }
    }
}

/// A random HS256 secret for `serve --demo`.
pub fn generate_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

/// Parses "90s", "15m", "1h", "7d" or a number of seconds.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?}: use e.g. 30m, 1h, 7d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("bad duration unit in {s:?}: use s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        c: Config,
    }

    fn keys() -> JwtKeys {
        let mut cfg = T::parse_from(["t"]).c;
        cfg.jwt_secret = Some("0123456789abcdef0123456789abcdef".into());
        cfg.jwt_public_key = None;
        JwtKeys::from_config(&cfg).unwrap()
    }

    #[test]
    fn issued_tokens_verify() {
        let k = keys();
        let t = k
            .issue("ana", Role::Rep, Some(7), Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            k.verify(&t).unwrap(),
            Principal {
                subject: "ana".into(),
                role: Role::Rep,
                rep_id: Some(7)
            }
        );
    }

    #[test]
    fn unsigned_and_tampered_tokens_fail() {
        let k = keys();
        let t = k
            .issue("ana", Role::Viewer, None, Duration::from_secs(60))
            .unwrap();
        let mut parts: Vec<&str> = t.split('.').collect();
        let none_header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"alg":"none","typ":"JWT"}"#,
        );
        parts[0] = &none_header;
        // The genuine token is verified (and kept) first: its forgeries
        // must still fail.
        assert!(k.verify(&t).is_ok());
        assert!(k.verify(&format!("{}.{}.", parts[0], parts[1])).is_err());
        assert!(k.verify(&format!("{}x", t)).is_err());
        let sig_flipped = {
            let mut b = t.clone().into_bytes();
            let last = b.len() - 2;
            b[last] = if b[last] == b'A' { b'B' } else { b'A' };
            String::from_utf8(b).unwrap()
        };
        assert!(k.verify(&sig_flipped).is_err());
    }

    fn viewer() -> Principal {
        Principal {
            subject: "ana".into(),
            role: Role::Viewer,
            rep_id: None,
        }
    }

    #[test]
    fn kept_tokens_expire_with_the_same_leeway() {
        let kept = VerifiedTokens::default();
        let p = viewer();
        kept.put("t", &p, 1_000);
        assert_eq!(kept.get("t", 1_030, 30), Some(p.clone()));
        assert_eq!(kept.get("t", 1_031, 30), None);
        // Dropped once past its expiry, so a later clock step back does not
        // revive it.
        assert_eq!(kept.get("t", 1_000, 30), None);
        // Long tokens are not kept.
        let long = "x".repeat(VerifiedTokens::MAX_TOKEN_LEN + 1);
        kept.put(&long, &p, 5_000);
        assert_eq!(kept.get(&long, 1_000, 30), None);
    }

    #[test]
    fn kept_tokens_are_bounded() {
        let kept = VerifiedTokens::default();
        let p = viewer();
        for i in 0..VerifiedTokens::ENTRIES + 10 {
            kept.put(&format!("t{i}"), &p, 5_000);
        }
        assert_eq!(kept.lock().len(), VerifiedTokens::ENTRIES);
        assert_eq!(kept.get("t0", 1_000, 30), None);
        assert!(kept
            .get(&format!("t{}", VerifiedTokens::ENTRIES + 9), 1_000, 30)
            .is_some());
    }

    #[test]
    fn rep_tokens_need_a_rep() {
        let k = keys();
        let t = k
            .issue("ana", Role::Rep, None, Duration::from_secs(60))
            .unwrap();
        assert!(k.verify(&t).is_err());
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert!(parse_ttl("1y").is_err());
    }
}
