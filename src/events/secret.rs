//! Webhook signing secrets at rest: `engine.webhook_endpoints.secret` holds the
//! `whsec_` secret sealed with the key ring, bound to the endpoint id (decision 0014).

use secrecy::SecretString;
use uuid::Uuid;

use crate::crypto::{self, CryptoError, KeyRing};

/// Associated data: a sealed secret only opens for its own endpoint.
pub fn aad(endpoint_id: Uuid) -> Vec<u8> {
    format!("engine.webhook_endpoints.secret:{endpoint_id}").into_bytes()
}

/// What to store for this endpoint's new secret.
pub fn seal(keys: &KeyRing, endpoint_id: Uuid, secret: &str) -> String {
    keys.seal(secret.as_bytes(), &aad(endpoint_id))
}

/// The secret to sign with. A plaintext `whsec_` value stored before secrets were
/// sealed is still accepted (start-up seals those rows).
pub fn open(keys: &KeyRing, endpoint_id: Uuid, stored: &str) -> Result<SecretString, CryptoError> {
    if is_plaintext(stored) {
        return Ok(SecretString::from(stored));
    }
    keys.open_string(stored, &aad(endpoint_id)).map(SecretString::from)
}

/// A secret stored before sealing (`whsec_…`); sealed values start with `v1:`.
pub fn is_plaintext(stored: &str) -> bool {
    !crypto::is_sealed(stored)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_endpoint() {
        let keys = KeyRing::new(&[7; crypto::KEY_LEN], &[]);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = seal(&keys, a, "whsec_c2VjcmV0");
        assert!(!sealed.contains("whsec_") && !is_plaintext(&sealed));
        assert_eq!(open(&keys, a, &sealed).unwrap().expose_secret(), "whsec_c2VjcmV0");
        assert_eq!(open(&keys, b, &sealed).unwrap_err(), CryptoError::Tampered);
        assert_eq!(open(&keys, a, "whsec_bGVnYWN5").unwrap().expose_secret(), "whsec_bGVnYWN5", "legacy plaintext");
    }
}
