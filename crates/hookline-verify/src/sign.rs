//! Producing signatures: one function per scheme, and [`Signer`] for many bodies.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{
    HERALD_HEADER, HERON_HEADER, STANDARD_ID_HEADER, STANDARD_SIGNATURE_HEADER, STANDARD_TIMESTAMP_HEADER, Scheme,
};

type HmacSha256 = Hmac<Sha256>;

/// A secret that cannot be used with its scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Heron and herald secrets must not be empty.
    #[error("invalid {scheme} secret \"\"; expected a non-empty string")]
    Empty {
        /// The scheme the secret was meant for.
        scheme: Scheme,
    },
    /// The part after `whsec_` is not base64.
    #[error("invalid standard webhooks secret {secret:?}; expected whsec_ followed by base64")]
    NotBase64 {
        /// The secret's first characters (never the whole secret, which may end up in logs).
        secret: String,
    },
    /// The secret decodes to zero bytes.
    #[error("invalid standard webhooks secret {secret:?}; expected a non-empty key after whsec_")]
    EmptyKey {
        /// The secret's first characters.
        secret: String,
    },
}

/// Decodes a Standard Webhooks secret (`whsec_` prefix optional) into its HMAC key.
pub fn decode_standard_secret(secret: &str) -> Result<Vec<u8>, SecretError> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = STANDARD.decode(encoded).map_err(|_| SecretError::NotBase64 { secret: shown(secret) })?;
    if key.is_empty() {
        return Err(SecretError::EmptyKey { secret: shown(secret) });
    }
    Ok(key)
}

/// A secret as error messages may show it: short ones whole, longer ones cut after their first ten characters.
fn shown(secret: &str) -> String {
    match secret.char_indices().nth(10) {
        Some((cut, _)) => format!("{}…", &secret[..cut]),
        None => secret.to_owned(),
    }
}

/// The `heron-signature` value: `base64(HMAC-SHA256(secret, body))`.
pub fn heron_signature(secret: &str, body: &[u8]) -> String {
    STANDARD.encode(hmac_digest(hmac(secret.as_bytes()), body))
}

/// The `x-herald-signature` value: `base64(SHA-256(secret ‖ body))`.
pub fn herald_signature(secret: &str, body: &[u8]) -> String {
    STANDARD.encode(sha256_digest(Sha256::new_with_prefix(secret), body))
}

/// The `webhook-signature` value: `v1,base64(HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}"))`.
///
/// `key` is the decoded secret, see [`decode_standard_secret`].
pub fn standard_signature(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = standard_digest(hmac(key), msg_id, timestamp, body);
    format!("v1,{}", STANDARD.encode(digest))
}

/// A secret prepared once for signing many bodies (HMAC state precomputed where the scheme allows).
#[derive(Clone)]
pub struct Signer {
    key: Key,
    /// Standard Webhooks only: the keys of earlier secrets still in their grace period, each signing an entry of
    /// its own after the current one's.
    previous: Vec<HmacSha256>,
}

/// Hash state with the secret already absorbed.
#[derive(Clone)]
enum Key {
    Heron(HmacSha256),
    Herald(Sha256),
    Standard(HmacSha256),
}

impl Signer {
    /// Prepares `secret` for `scheme`.
    ///
    /// Heron and herald use the secret's UTF-8 bytes and reject an empty secret;
    /// standard decodes it with [`decode_standard_secret`].
    pub fn new(scheme: Scheme, secret: &str) -> Result<Signer, SecretError> {
        if secret.is_empty() && scheme != Scheme::Standard {
            return Err(SecretError::Empty { scheme });
        }
        let key = match scheme {
            Scheme::Heron => Key::Heron(hmac(secret.as_bytes())),
            Scheme::Herald => Key::Herald(Sha256::new_with_prefix(secret)),
            Scheme::Standard => Key::Standard(hmac(&decode_standard_secret(secret)?)),
        };
        Ok(Signer { key, previous: Vec::new() })
    }

    /// A Standard Webhooks signer for a secret being rotated: `webhook-signature` carries a `v1,` entry for
    /// `current` and then one for `previous`, space separated, so a receiver holding either secret verifies.
    ///
    /// Heron and herald carry a single signature, so they have no such form: a sender picks one secret.
    pub fn standard_rotating(current: &str, previous: &str) -> Result<Signer, SecretError> {
        let mut signer = Signer::new(Scheme::Standard, current)?;
        signer.previous.push(hmac(&decode_standard_secret(previous)?));
        Ok(signer)
    }

    /// The scheme this signer was built for.
    pub fn scheme(&self) -> Scheme {
        match self.key {
            Key::Heron(_) => Scheme::Heron,
            Key::Herald(_) => Scheme::Herald,
            Key::Standard(_) => Scheme::Standard,
        }
    }

    /// Appends this scheme's headers (name, value) for one request.
    ///
    /// `msg_id` and `timestamp` (unix seconds) are only used by standard.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8], headers: &mut Vec<(&'static str, String)>) {
        let signature = STANDARD.encode(self.digest(msg_id, timestamp, body));
        match self.key {
            Key::Heron(_) => headers.push((HERON_HEADER, signature)),
            Key::Herald(_) => headers.push((HERALD_HEADER, signature)),
            Key::Standard(_) => headers.extend([
                (STANDARD_ID_HEADER, msg_id.to_owned()),
                (STANDARD_TIMESTAMP_HEADER, timestamp.to_string()),
                (STANDARD_SIGNATURE_HEADER, self.standard_entries(signature, msg_id, timestamp, body)),
            ]),
        }
    }

    /// `webhook-signature`'s value: the current secret's entry, then one per previous secret.
    fn standard_entries(&self, signature: String, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut value = format!("v1,{signature}");
        for mac in &self.previous {
            value.push_str(" v1,");
            value.push_str(&STANDARD.encode(standard_digest(mac.clone(), msg_id, timestamp, body)));
        }
        value
    }

    /// The raw digest for one request; shared with verification.
    pub(crate) fn digest(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        match &self.key {
            Key::Heron(mac) => hmac_digest(mac.clone(), body),
            Key::Herald(hash) => sha256_digest(hash.clone(), body),
            Key::Standard(mac) => standard_digest(mac.clone(), msg_id, timestamp, body),
        }
    }
}

/// Shows the scheme only, never the secret.
impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("scheme", &self.scheme()).finish_non_exhaustive()
    }
}

fn hmac(key: &[u8]) -> HmacSha256 {
    // Cannot fail: HMAC accepts keys of any length (longer ones are hashed first).
    HmacSha256::new_from_slice(key).expect("hmac accepts any key length")
}

fn hmac_digest(mut mac: HmacSha256, body: &[u8]) -> [u8; 32] {
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn sha256_digest(mut hash: Sha256, body: &[u8]) -> [u8; 32] {
    hash.update(body);
    hash.finalize().into()
}

fn standard_digest(mut mac: HmacSha256, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    hmac_digest(mac, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_prefix_is_optional() {
        let key = decode_standard_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(key.len(), 24);
        assert_eq!(decode_standard_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(), key);
        assert_eq!(decode_standard_secret("whsec_AQ==").unwrap(), [1]);
    }

    #[test]
    fn secret_errors() {
        assert_eq!(
            decode_standard_secret("abc").unwrap_err().to_string(),
            r#"invalid standard webhooks secret "abc"; expected whsec_ followed by base64"#
        );
        assert_eq!(decode_standard_secret("whsec_").unwrap_err(), SecretError::EmptyKey { secret: "whsec_".into() });
        assert_eq!(
            Signer::new(Scheme::Standard, "whsec_not base64!").unwrap_err(),
            SecretError::NotBase64 { secret: "whsec_not …".into() }
        );
        for scheme in [Scheme::Heron, Scheme::Herald] {
            let err = Signer::new(scheme, "").unwrap_err();
            assert_eq!(err, SecretError::Empty { scheme });
        }
        assert_eq!(
            SecretError::Empty { scheme: Scheme::Heron }.to_string(),
            r#"invalid heron secret ""; expected a non-empty string"#
        );
    }

    #[test]
    fn a_rotating_standard_signer_signs_with_both_secrets() {
        // The specification's test vector, signed with its secret as the previous one.
        let previous = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let current = "whsec_bmV3IHNlY3JldCBrZXk=";
        let (id, timestamp, body) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        let mut headers = Vec::new();
        Signer::standard_rotating(current, previous).unwrap().sign(id, timestamp, body, &mut headers);
        let value = &headers.iter().find(|(name, _)| *name == STANDARD_SIGNATURE_HEADER).unwrap().1;
        let current_entry = standard_signature(&decode_standard_secret(current).unwrap(), id, timestamp, body);
        assert_eq!(*value, format!("{current_entry} v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
        assert_eq!(headers.len(), 3, "one id, one timestamp, one signature header: {headers:?}");
        assert!(Signer::standard_rotating(current, "sec_not_base64!").is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let signer = Signer::new(Scheme::Heron, "hunter2").unwrap();
        assert_eq!(format!("{signer:?}"), "Signer { scheme: Heron, .. }");
    }
}
