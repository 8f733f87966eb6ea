//! Sign and verify Hookline webhook requests.
//!
//! One implementation of each signing scheme, shared by the server (which signs
//! with [`Signer`]) and by receivers (which check with [`Verifier`]):
//!
//! - [`Scheme::Heron`]: `heron-signature: base64(HMAC-SHA256(secret, body))`
//! - [`Scheme::Herald`]: `x-herald-signature: base64(SHA-256(secret ‖ body))`
//! - [`Scheme::Standard`]: [Standard Webhooks](https://www.standardwebhooks.com/),
//!   `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64>`
//!
//! Everything here is a pure function of its inputs: the caller passes the
//! current time, and headers as plain `(name, value)` pairs.
//!
//! ```
//! use hookline_verify::{Scheme, Signer, Verifier};
//!
//! let secret = "sec_2ZQ7sWnq8nJ4mVw1c9L3rTj5";
//! let body = br#"{"topic":"end_user.processed"}"#;
//!
//! // Server side: produce the headers for one delivery.
//! let mut headers = Vec::new();
//! Signer::new(Scheme::Heron, secret)?.sign("msg_1", 1_700_000_000, body, &mut headers);
//! assert_eq!(headers[0].0, "heron-signature");
//!
//! // Receiver side: header names are matched case-insensitively.
//! let received = [("Heron-Signature", headers[0].1.as_str())];
//! let verified = Verifier::new(Scheme::Heron, secret)?.verify(received, body, 1_700_000_000)?;
//! assert_eq!(verified.scheme, Scheme::Heron);
//! assert_eq!(verified.secret_index, 0);
//!
//! // A tampered body is rejected.
//! assert!(Verifier::new(Scheme::Heron, secret)?.verify(received, b"{}", 1_700_000_000).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod scheme;
mod sign;
mod verify;

pub use scheme::{ParseSchemeError, Scheme};
pub use sign::{SecretError, Signer, decode_standard_secret, herald_signature, heron_signature, standard_signature};
pub use verify::{DEFAULT_TOLERANCE, Verified, Verifier, VerifyError};

/// Header carrying the heron signature.
pub const HERON_HEADER: &str = "heron-signature";
/// Header carrying the herald signature.
pub const HERALD_HEADER: &str = "x-herald-signature";
/// Standard Webhooks message id header.
pub const STANDARD_ID_HEADER: &str = "webhook-id";
/// Standard Webhooks timestamp header (unix seconds).
pub const STANDARD_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Standard Webhooks signature header (space-separated `v1,<base64>` entries).
pub const STANDARD_SIGNATURE_HEADER: &str = "webhook-signature";
