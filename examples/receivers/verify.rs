// Verifies a Hookline delivery in Rust with the `hookline-verify` crate; `crates/hookline/tests/receive.rs`
// compiles this file and runs it on real deliveries.

// [verify]
use std::time::{SystemTime, UNIX_EPOCH};

use hookline_verify::{Verified, Verifier, VerifyError};

/// Checks one request: its headers and its raw body, exactly as received (not parsed and serialised again).
///
/// Build the verifier once, at start-up: `Verifier::new(Scheme::Standard, &secret)?`, adding
/// `.with_secret(&old_secret)?` while a rotation is under way.
pub fn verify_delivery(verifier: &Verifier, headers: &http::HeaderMap, body: &[u8]) -> Result<Verified, VerifyError> {
    let headers = headers.iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs() as i64);
    verifier.verify(headers, body, now)
}
// [/verify]
