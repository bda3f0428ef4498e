//! Secrets at rest: XChaCha20-Poly1305 with a key ring (docs/decisions/0014).
//!
//! A sealed value is `v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id is
//! the first 4 bytes of the key's SHA-256 in hex, so no registry of keys is needed:
//! `ENCRYPTION_KEY` seals, it and every `ENCRYPTION_KEYS_OLD` key open. The associated
//! data binds a value to its row, so a sealed value copied to another row does not open.

pub mod signing;

use std::fmt;

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use chacha20poly1305::{
    Key, XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};
use rand::RngCore;
use sha2::{Digest, Sha256};

const VERSION: &str = "v1";
const NONCE_LEN: usize = 24;
pub const KEY_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("not a sealed value")]
    Malformed,
    #[error("sealed with key `{0}`, which is neither ENCRYPTION_KEY nor in ENCRYPTION_KEYS_OLD")]
    UnknownKey(String),
    #[error("sealed value does not open (tampered, or bound to another row)")]
    Tampered,
}

struct RingKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl RingKey {
    fn new(bytes: &[u8; KEY_LEN]) -> Self {
        let id = hex::encode(&Sha256::digest(bytes)[..4]);
        Self { id, cipher: XChaCha20Poly1305::new(&Key::from(*bytes)) }
    }
}

/// The current key (seals and opens) and the old ones (open only).
pub struct KeyRing {
    current: RingKey,
    old: Vec<RingKey>,
}

/// Only the key ids: the keys never reach a log line.
impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current.id)
            .field("old", &self.old.iter().map(|k| &k.id).collect::<Vec<_>>())
            .finish()
    }
}

/// Decodes one base64 key of exactly 32 bytes; the error never contains the value.
pub fn parse_key(text: &str) -> Result<[u8; KEY_LEN], String> {
    let text = text.trim();
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .map_err(|_| "not base64".to_string())?;
    bytes.try_into().map_err(|b: Vec<u8>| format!("decodes to {} bytes, not {KEY_LEN}", b.len()))
}

/// A new random key, base64 (what `openssl rand -base64 32` prints).
pub fn generate_key() -> String {
    let mut key = [0u8; KEY_LEN];
    rand::rng().fill_bytes(&mut key);
    STANDARD.encode(key)
}

impl KeyRing {
    pub fn new(current: &[u8; KEY_LEN], old: &[[u8; KEY_LEN]]) -> Self {
        Self { current: RingKey::new(current), old: old.iter().map(RingKey::new).collect() }
    }

    /// From the settings' text: one base64 key, and a comma-separated list of old ones.
    pub fn parse(current: &str, old: Option<&str>) -> Result<Self, String> {
        let current = parse_key(current).map_err(|why| format!("ENCRYPTION_KEY: {why}"))?;
        let old = old
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
            .map(|(i, k)| parse_key(k).map_err(|why| format!("ENCRYPTION_KEYS_OLD: key {} {why}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(&current, &old))
    }

    /// The id of the key new values are sealed with.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .current
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad })
            .expect("XChaCha20-Poly1305 encrypts any message that fits in memory");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        format!("{VERSION}:{}:{}", self.current.id, URL_SAFE_NO_PAD.encode(blob))
    }

    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (id, blob) = split(sealed).ok_or(CryptoError::Malformed)?;
        let key = std::iter::once(&self.current)
            .chain(&self.old)
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_string()))?;
        let blob = URL_SAFE_NO_PAD.decode(blob).map_err(|_| CryptoError::Malformed)?;
        let (nonce, ciphertext) = blob.split_at_checked(NONCE_LEN).ok_or(CryptoError::Malformed)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Malformed)?;
        key.cipher.decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad }).map_err(|_| CryptoError::Tampered)
    }

    /// Opens a sealed text value.
    pub fn open_string(&self, sealed: &str, aad: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.open(sealed, aad)?).map_err(|_| CryptoError::Tampered)
    }

    /// True when `sealed` is a sealed value under another key than the current one.
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        split(sealed).is_some_and(|(id, _)| id != self.current.id)
    }

    /// The same value sealed under the current key (when it is under an old one).
    pub fn reseal(&self, sealed: &str, aad: &[u8]) -> Result<Option<String>, CryptoError> {
        if !self.needs_reseal(sealed) {
            return Ok(None);
        }
        Ok(Some(self.seal(&self.open(sealed, aad)?, aad)))
    }
}

/// True for a value in the sealed envelope format (whatever the key).
pub fn is_sealed(value: &str) -> bool {
    split(value).is_some()
}

fn split(sealed: &str) -> Option<(&str, &str)> {
    let rest = sealed.strip_prefix(VERSION)?.strip_prefix(':')?;
    let (id, blob) = rest.split_once(':')?;
    (id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some((id, blob))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(current: u8, old: &[u8]) -> KeyRing {
        KeyRing::new(&[current; KEY_LEN], &old.iter().map(|b| [*b; KEY_LEN]).collect::<Vec<_>>())
    }

    #[test]
    fn seals_and_opens_without_showing_the_plaintext() {
        let keys = ring(1, &[]);
        let sealed = keys.seal(b"whsec_abc", b"row-1");
        assert!(sealed.starts_with(&format!("v1:{}:", keys.current_id())), "{sealed}");
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(sealed, keys.seal(b"whsec_abc", b"row-1"), "a fresh nonce every time");
        assert_eq!(keys.open(&sealed, b"row-1").unwrap(), b"whsec_abc");
    }

    #[test]
    fn tampered_or_moved_values_do_not_open() {
        let keys = ring(1, &[]);
        let sealed = keys.seal(b"secret", b"row-1");
        assert_eq!(keys.open(&sealed, b"row-2"), Err(CryptoError::Tampered), "bound to its row");
        let (head, blob) = sealed.rsplit_once(':').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(blob).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("{head}:{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(keys.open(&tampered, b"row-1"), Err(CryptoError::Tampered));
        assert_eq!(keys.open("whsec_plain", b"row-1"), Err(CryptoError::Malformed));
        assert_eq!(keys.open(&format!("{head}:AAAA"), b"row-1"), Err(CryptoError::Malformed));
    }

    #[test]
    fn old_keys_still_open_and_reseal_moves_to_the_current_key() {
        let before = ring(1, &[]);
        let sealed = before.seal(b"secret", b"row");
        let after = ring(2, &[1]);
        assert!(after.needs_reseal(&sealed));
        assert_eq!(after.open(&sealed, b"row").unwrap(), b"secret");
        let resealed = after.reseal(&sealed, b"row").unwrap().expect("under the old key");
        assert!(!after.needs_reseal(&resealed));
        assert_eq!(after.reseal(&resealed, b"row").unwrap(), None);
        // Once the old key is dropped, only the resealed value opens.
        let later = ring(2, &[]);
        assert_eq!(later.open(&resealed, b"row").unwrap(), b"secret");
        assert!(matches!(later.open(&sealed, b"row"), Err(CryptoError::UnknownKey(id)) if id == before.current_id()));
    }

    #[test]
    fn parsing_names_the_setting_and_never_the_value() {
        let good = generate_key();
        assert!(KeyRing::parse(&good, Some(&format!(" {}, ", generate_key()))).is_ok());
        let err = KeyRing::parse("c2hvcnQ=", None).unwrap_err();
        assert!(err.contains("ENCRYPTION_KEY") && err.contains("5 bytes") && !err.contains("c2hvcnQ"), "{err}");
        let err = KeyRing::parse(&good, Some("not-a-key!")).unwrap_err();
        assert!(err.contains("ENCRYPTION_KEYS_OLD") && !err.contains("not-a-key"), "{err}");
        let debug = format!("{:?}", KeyRing::parse(&good, None).unwrap());
        assert!(!debug.contains(&good), "{debug}");
    }
}
