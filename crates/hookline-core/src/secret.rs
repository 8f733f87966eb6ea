//! Endpoint signing secrets and API keys: generation, validation, and the hash under which keys are stored.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::Scheme;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62(length: usize) -> String {
    let mut random = rand::rng();
    (0..length).map(|_| BASE62[random.random_range(0..BASE62.len())] as char).collect()
}

/// A new secret for an endpoint that signs with `schemes`: `whsec_<base64 of 24 bytes>` when Standard Webhooks is
/// among them (its key must be base64), else `sec_<32 base62 characters>` as Heron's documentation shows.
pub fn generate_secret(schemes: &[Scheme]) -> String {
    if schemes.contains(&Scheme::Standard) {
        let mut key = [0u8; 24];
        rand::rng().fill(&mut key);
        format!("whsec_{}", STANDARD.encode(key))
    } else {
        format!("sec_{}", base62(32))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret is {length} characters long; use 16 to 128 printable ASCII characters")]
    BadLength { length: usize },
    #[error("secret contains spaces or non-printable characters; use printable ASCII")]
    NotPrintable,
    #[error("secret {shown:?} cannot sign standard webhooks; it must be whsec_ followed by base64 of 16 to 64 bytes")]
    NotStandard { shown: String },
}

/// Checks a secret the tenant supplies for an endpoint signing with `schemes`.
pub fn validate_secret(secret: &str, schemes: &[Scheme]) -> Result<(), SecretError> {
    if !(16..=128).contains(&secret.len()) {
        return Err(SecretError::BadLength { length: secret.len() });
    }
    if !secret.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(SecretError::NotPrintable);
    }
    if schemes.contains(&Scheme::Standard) {
        let key_length = hookline_verify::decode_standard_secret(secret).map(|key| key.len()).unwrap_or(0);
        if !secret.starts_with("whsec_") || !(16..=64).contains(&key_length) {
            let shown: String = secret.chars().take(10).collect();
            return Err(SecretError::NotStandard { shown: format!("{shown}…") });
        }
    }
    Ok(())
}

/// A new API key. Tenant keys start `hk_`, the operator's admin key `hka_`.
pub fn generate_api_key(prefix: &str) -> String {
    format!("{prefix}{}", base62(40))
}

/// The form in which API keys are stored and looked up: hex SHA-256. Keys are 238 bits of randomness, so a fast
/// hash is enough; nothing stores or logs a key itself.
pub fn hash_api_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(b"0123456789abcdef"[(byte >> 4) as usize]));
        hex.push(char::from(b"0123456789abcdef"[(byte & 15) as usize]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_match_their_scheme() {
        let heron = generate_secret(&[Scheme::Heron]);
        assert!(heron.starts_with("sec_") && heron.len() == 36, "{heron}");
        assert_eq!(validate_secret(&heron, &[Scheme::Heron, Scheme::Herald]), Ok(()));
        let standard = generate_secret(&[Scheme::Heron, Scheme::Standard]);
        assert!(standard.starts_with("whsec_"), "{standard}");
        assert_eq!(validate_secret(&standard, &[Scheme::Standard]), Ok(()));
        assert_eq!(hookline_verify::decode_standard_secret(&standard).unwrap().len(), 24);
    }

    #[test]
    fn supplied_secrets_are_checked() {
        assert_eq!(validate_secret("short", &[Scheme::Heron]), Err(SecretError::BadLength { length: 5 }));
        assert_eq!(validate_secret("has a space in it ok", &[Scheme::Heron]), Err(SecretError::NotPrintable));
        assert!(matches!(
            validate_secret("sec_abcdefghijklmnop", &[Scheme::Standard]),
            Err(SecretError::NotStandard { .. })
        ));
    }

    #[test]
    fn api_keys_hash_to_hex_sha256() {
        assert_eq!(hash_api_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(generate_api_key("hk_").starts_with("hk_"));
    }
}
