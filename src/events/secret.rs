//! Webhook secrets at rest, sealed with the key ring and bound to the endpoint id
//! (decision 0014): `engine.webhook_endpoints.secret` holds the `whsec_` signing
//! secret, `.headers` the endpoint's custom headers (one sealed JSON list).

use secrecy::SecretString;
use uuid::Uuid;

use crate::{
    crypto::{self, CryptoError, KeyRing},
    domain::webhook_headers::CustomHeader,
};

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

/// Associated data of the sealed headers: they only open for their own endpoint.
pub fn headers_aad(endpoint_id: Uuid) -> Vec<u8> {
    format!("engine.webhook_endpoints.headers:{endpoint_id}").into_bytes()
}

/// What to store for these headers (`None`: no headers).
pub fn seal_headers(keys: &KeyRing, endpoint_id: Uuid, headers: &[CustomHeader]) -> Option<String> {
    (!headers.is_empty()).then(|| {
        let json = serde_json::to_vec(headers).expect("headers serialise");
        keys.seal(&json, &headers_aad(endpoint_id))
    })
}

/// The headers to send (none when nothing is stored).
pub fn open_headers(keys: &KeyRing, endpoint_id: Uuid, stored: Option<&str>) -> Result<Vec<CustomHeader>, CryptoError> {
    let Some(stored) = stored else { return Ok(vec![]) };
    let json = keys.open(stored, &headers_aad(endpoint_id))?;
    // Written by `seal_headers` only: anything else is as bad as a broken seal.
    serde_json::from_slice(&json).map_err(|_| CryptoError::Tampered)
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

    #[test]
    fn sealed_headers_open_only_for_their_endpoint() {
        let keys = KeyRing::new(&[7; crypto::KEY_LEN], &[]);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let headers = vec![CustomHeader { name: "x-make-apikey".into(), value: "mk_live_4f9a8b7c6d5e".into() }];
        let sealed = seal_headers(&keys, a, &headers).unwrap();
        assert!(!sealed.contains("mk_live") && crypto::is_sealed(&sealed));
        assert_eq!(open_headers(&keys, a, Some(&sealed)).unwrap(), headers);
        assert_eq!(open_headers(&keys, b, Some(&sealed)).unwrap_err(), CryptoError::Tampered);
        assert_eq!(seal_headers(&keys, a, &[]), None);
        assert_eq!(open_headers(&keys, a, None).unwrap(), vec![]);
    }
}
