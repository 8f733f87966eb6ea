//! Checking signatures on received requests.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::{
    HERALD_HEADER, HERON_HEADER, STANDARD_ID_HEADER, STANDARD_SIGNATURE_HEADER, STANDARD_TIMESTAMP_HEADER, Scheme,
    SecretError, Signer,
};

/// Default Standard Webhooks timestamp tolerance, in seconds.
pub const DEFAULT_TOLERANCE: u64 = 300;

/// Verifies requests signed with one scheme and any of one or more secrets.
///
/// Several secrets allow rotation: a request signed with any of them is accepted.
///
/// ```
/// use hookline_verify::{Scheme, Verifier, VerifyError};
///
/// // The Standard Webhooks specification's test vector.
/// let headers = [
///     ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
///     ("webhook-timestamp", "1614265330"),
///     ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
/// ];
/// let body = br#"{"test": 2432232314}"#;
///
/// // During a rotation: the new secret first, and the old one the request was signed with.
/// let verifier = Verifier::new(Scheme::Standard, "whsec_bmV3IHNlY3JldCBrZXk=")?
///     .with_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let verified = verifier.verify(headers, body, 1_614_265_330 + 60)?;
/// assert_eq!(verified.secret_index, 1);
/// assert_eq!(verified.signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
///
/// // Any change to the body is caught.
/// let tampered = verifier.verify(headers, br#"{"test": 2432232315}"#, 1_614_265_330);
/// assert_eq!(tampered, Err(VerifyError::NoMatch { scheme: Scheme::Standard }));
///
/// // Ten minutes later the same request is refused: the default tolerance is five minutes.
/// let late = verifier.verify(headers, body, 1_614_265_330 + 600);
/// assert!(matches!(late, Err(VerifyError::TimestampTooOld { tolerance: 300, .. })));
/// // A receiver that queues requests before checking them can allow more.
/// assert!(verifier.tolerance(3600).verify(headers, body, 1_614_265_330 + 600).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    scheme: Scheme,
    signers: Vec<Signer>,
    tolerance: u64,
}

/// A successfully verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The scheme the request was signed with.
    pub scheme: Scheme,
    /// Which secret matched, in the order they were added (0 = the one given to [`Verifier::new`]).
    pub secret_index: usize,
    /// The matching signature: the header value, or the matching `v1,...` entry for standard.
    pub signature: String,
}

/// Why a request failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header the scheme requires is absent.
    #[error("missing header {name:?}; check that the sender signs with this scheme")]
    MissingHeader {
        /// The lowercase header name.
        name: &'static str,
    },
    /// A signature is not base64 of a 32-byte digest.
    #[error("invalid {header} signature {value:?}; expected base64 of a 32-byte sha-256 digest")]
    BadEncoding {
        /// The header the signature came from.
        header: &'static str,
        /// The offending signature (for standard, the part after `v1,`).
        value: String,
    },
    /// `webhook-timestamp` is not an integer.
    #[error("invalid webhook-timestamp {value:?}; expected unix seconds")]
    BadTimestamp {
        /// The header value.
        value: String,
    },
    /// `webhook-timestamp` is further in the past than the tolerance allows.
    #[error(
        "webhook-timestamp {timestamp} is too old at {now}; expected within {tolerance}s, check for replays or clock skew"
    )]
    TimestampTooOld {
        /// The request's timestamp.
        timestamp: i64,
        /// The time of verification.
        now: i64,
        /// The allowed skew, in seconds.
        tolerance: u64,
    },
    /// `webhook-timestamp` is further in the future than the tolerance allows.
    #[error(
        "webhook-timestamp {timestamp} is in the future at {now}; expected within {tolerance}s, check the sender's clock"
    )]
    TimestampTooNew {
        /// The request's timestamp.
        timestamp: i64,
        /// The time of verification.
        now: i64,
        /// The allowed skew, in seconds.
        tolerance: u64,
    },
    /// `webhook-signature` has no `v1,` entry.
    #[error("no v1 entry in webhook-signature {value:?}; expected space-separated v1,<base64> entries")]
    NoSupportedSignature {
        /// The header value.
        value: String,
    },
    /// Signatures were well-formed but none matched any secret.
    #[error("no {scheme} signature matched; check the secret and that the body is the raw request bytes")]
    NoMatch {
        /// The scheme that was checked.
        scheme: Scheme,
    },
}

impl Verifier {
    /// A verifier accepting requests signed with `secret`.
    pub fn new(scheme: Scheme, secret: &str) -> Result<Verifier, SecretError> {
        Ok(Verifier { scheme, signers: vec![Signer::new(scheme, secret)?], tolerance: DEFAULT_TOLERANCE })
    }

    /// Also accepts requests signed with `secret` (its [`Verified::secret_index`] is the next index).
    pub fn with_secret(mut self, secret: &str) -> Result<Verifier, SecretError> {
        self.signers.push(Signer::new(self.scheme, secret)?);
        Ok(self)
    }

    /// Sets the allowed distance between `webhook-timestamp` and now (standard only).
    pub fn tolerance(self, seconds: u64) -> Verifier {
        Verifier { tolerance: seconds, ..self }
    }

    /// The scheme this verifier checks.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Verifies one request.
    ///
    /// `headers` are `(name, value)` pairs with names compared case-insensitively
    /// (the first occurrence of a name wins); `body` is the raw request body;
    /// `now` is the current time in unix seconds.
    pub fn verify<'a>(
        &self,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        body: &[u8],
        now: i64,
    ) -> Result<Verified, VerifyError> {
        match self.scheme {
            Scheme::Heron => self.verify_plain(HERON_HEADER, headers, body),
            Scheme::Herald => self.verify_plain(HERALD_HEADER, headers, body),
            Scheme::Standard => self.verify_standard(headers, body, now),
        }
    }

    /// Heron and herald: one header holding one base64 digest of the body.
    fn verify_plain<'a>(
        &self,
        header: &'static str,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        body: &[u8],
    ) -> Result<Verified, VerifyError> {
        let [value] = find_headers(headers, [header]);
        let value = value.ok_or(VerifyError::MissingHeader { name: header })?;
        let claimed = decode_digest(header, value)?;
        self.signers
            .iter()
            .position(|signer| constant_time_eq(&signer.digest("", 0, body), &claimed))
            .map(|secret_index| Verified { scheme: self.scheme, secret_index, signature: value.to_owned() })
            .ok_or(VerifyError::NoMatch { scheme: self.scheme })
    }

    fn verify_standard<'a>(
        &self,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        body: &[u8],
        now: i64,
    ) -> Result<Verified, VerifyError> {
        let names = [STANDARD_ID_HEADER, STANDARD_TIMESTAMP_HEADER, STANDARD_SIGNATURE_HEADER];
        let [msg_id, timestamp, signatures] = find_headers(headers, names);
        let require = |value: Option<&'a str>, name| value.ok_or(VerifyError::MissingHeader { name });
        let msg_id = require(msg_id, STANDARD_ID_HEADER)?;
        let timestamp = require(timestamp, STANDARD_TIMESTAMP_HEADER)?;
        let signatures = require(signatures, STANDARD_SIGNATURE_HEADER)?;
        let timestamp = self.check_timestamp(timestamp, now)?;

        // Decode every v1 entry before comparing, so malformed input is reported as such.
        let mut entries = Vec::new();
        for entry in signatures.split_whitespace() {
            if let Some(encoded) = entry.strip_prefix("v1,") {
                entries.push((entry, decode_digest(STANDARD_SIGNATURE_HEADER, encoded)?));
            }
        }
        if entries.is_empty() {
            return Err(VerifyError::NoSupportedSignature { value: signatures.to_owned() });
        }

        for (secret_index, signer) in self.signers.iter().enumerate() {
            let expected = signer.digest(msg_id, timestamp, body);
            if let Some((entry, _)) = entries.iter().find(|(_, claimed)| constant_time_eq(&expected, claimed)) {
                return Ok(Verified { scheme: self.scheme, secret_index, signature: (*entry).to_owned() });
            }
        }
        Err(VerifyError::NoMatch { scheme: self.scheme })
    }

    fn check_timestamp(&self, value: &str, now: i64) -> Result<i64, VerifyError> {
        let timestamp: i64 = value.parse().map_err(|_| VerifyError::BadTimestamp { value: value.to_owned() })?;
        // i128 so that extreme timestamps cannot overflow the subtraction.
        let age = i128::from(now) - i128::from(timestamp);
        let tolerance = self.tolerance;
        if age > i128::from(tolerance) {
            Err(VerifyError::TimestampTooOld { timestamp, now, tolerance })
        } else if -age > i128::from(tolerance) {
            Err(VerifyError::TimestampTooNew { timestamp, now, tolerance })
        } else {
            Ok(timestamp)
        }
    }
}

/// Shows the scheme, number of secrets and tolerance, never the secrets.
impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme)
            .field("secrets", &self.signers.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

/// The (trimmed) value of the first header matching each name, case-insensitively.
fn find_headers<'a, const N: usize>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    names: [&str; N],
) -> [Option<&'a str>; N] {
    let mut found = [None; N];
    for (name, value) in headers {
        for (slot, wanted) in found.iter_mut().zip(names) {
            if slot.is_none() && name.eq_ignore_ascii_case(wanted) {
                *slot = Some(value.trim());
            }
        }
    }
    found
}

fn decode_digest(header: &'static str, value: &str) -> Result<[u8; 32], VerifyError> {
    let bad = || VerifyError::BadEncoding { header, value: value.to_owned() };
    let bytes = STANDARD.decode(value).map_err(|_| bad())?;
    bytes.try_into().map_err(|_| bad())
}

/// Compares two digests without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_detects_any_difference() {
        let a = [7u8; 32];
        assert!(constant_time_eq(&a, &a));
        for i in 0..32 {
            let mut b = a;
            b[i] ^= 0x80;
            assert!(!constant_time_eq(&a, &b));
        }
    }

    #[test]
    fn find_headers_first_occurrence_wins() {
        let headers = [("X-A", " 1 "), ("x-b", "2"), ("x-a", "3")];
        assert_eq!(find_headers(headers, ["x-a", "x-b", "x-c"]), [Some("1"), Some("2"), None]);
    }
}
