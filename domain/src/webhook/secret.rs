//! Webhook secrets at rest: sealed with ChaCha20-Poly1305 under a 32-byte
//! key from configuration, so a copy of the database (a backup, a replica, a
//! read-only SQL hole) does not let anyone forge deliveries.
//!
//! Stored form: `v1:` and the base64 of a random 12-byte nonce followed by
//! the ciphertext and its tag. Anything without the prefix is a plaintext
//! secret written before encryption existed; the service seals those.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use rand::Rng;
use sha2::Sha256;

const PREFIX: &str = "v1:";
/// Binds a ciphertext to its purpose: a sealed secret is not valid anywhere else.
const AAD: &[u8] = b"salesops webhook secret v1";

/// Sealing or opening failed: the stored value is damaged or was sealed
/// under another key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the webhook secret cannot be decrypted with the configured key")]
pub struct Unreadable;

/// The key that seals webhook secrets. Its Debug output hides the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// 32 bytes as 64 hex digits or as base64.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| e.to_string())?
        } else {
            B64.decode(text)
                .map_err(|_| "must be 32 bytes as 64 hex digits or base64".to_string())?
        };
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be exactly 32 bytes (64 hex digits or base64)".to_string())?;
        Ok(Self(key))
    }

    /// A key derived from another secret (the JWT signing secret) with
    /// HKDF-SHA256, for deployments that set no key of their own.
    pub fn derive_from(secret: &str) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"salesops webhook secrets"), secret.as_bytes());
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8,160-byte limit.
        hk.expand(b"chacha20poly1305 v1", &mut key)
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF length"));
        Self(key)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(self.0))
    }

    /// The stored form of a secret.
    pub fn seal(&self, secret: &str) -> String {
        let nonce: [u8; 12] = rand::rng().random();
        let sealed = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: AAD,
                },
            )
            .unwrap_or_else(|_| unreachable!("encryption fails only past 256 GiB"));
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// The secret of a stored value: opened when sealed, as-is when it is a
    /// legacy plaintext value.
    pub fn reveal(&self, stored: &str) -> Result<String, Unreadable> {
        let Some(body) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let raw = B64.decode(body).map_err(|_| Unreadable)?;
        if raw.len() < 12 + 16 {
            return Err(Unreadable);
        }
        let (nonce, sealed) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| Unreadable)?;
        let plain = self
            .cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: AAD,
                },
            )
            .map_err(|_| Unreadable)?;
        String::from_utf8(plain).map_err(|_| Unreadable)
    }
}

/// Whether a stored value is sealed (not a legacy plaintext secret).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn sealed_secrets_round_trip_and_hide_the_plaintext() {
        let key = SecretKey::derive_from("jwt secret");
        let a = key.seal(SECRET);
        let b = key.seal(SECRET);
        assert!(is_sealed(&a));
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.contains("whsec_") && !a.contains("00112233"));
        // 3 + base64(12 + 70 + 16 bytes) = 3 + 132.
        assert_eq!(a.len(), 135);
        assert_eq!(key.reveal(&a).unwrap(), SECRET);
        assert_eq!(key.reveal(&b).unwrap(), SECRET);
        // Legacy plaintext passes through.
        assert!(!is_sealed(SECRET));
        assert_eq!(key.reveal(SECRET).unwrap(), SECRET);
    }

    #[test]
    fn another_key_or_a_changed_byte_is_unreadable() {
        let key = SecretKey::derive_from("one");
        let sealed = key.seal(SECRET);
        assert_eq!(
            SecretKey::derive_from("two").reveal(&sealed),
            Err(Unreadable)
        );
        let mut raw = B64.decode(&sealed[3..]).unwrap();
        raw[20] ^= 1;
        let tampered = format!("v1:{}", B64.encode(raw));
        assert_eq!(key.reveal(&tampered), Err(Unreadable));
        assert_eq!(key.reveal("v1:short"), Err(Unreadable));
    }

    #[test]
    fn keys_parse_from_hex_or_base64() {
        let hex_key = "00".repeat(31) + "01";
        let b64_key = B64.encode([0u8; 31].iter().chain(&[1u8]).copied().collect::<Vec<_>>());
        assert_eq!(
            SecretKey::parse(&hex_key).unwrap(),
            SecretKey::parse(&b64_key).unwrap()
        );
        assert!(SecretKey::parse("00").is_err());
        assert!(SecretKey::parse("not a key").is_err());
        assert_eq!(
            format!("{:?}", SecretKey::parse(&hex_key).unwrap()),
            "SecretKey(..)"
        );
    }
}
