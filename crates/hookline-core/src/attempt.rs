//! Why a delivery attempt failed: the kinds the HTTP client finds and the store records, named here so that both
//! see them without either defining the other's errors.

use serde::{Deserialize, Serialize};

/// Why an attempt failed without (or despite) a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptError {
    /// No complete response within the delivery timeout.
    Timeout,
    /// The connection could not be made (refused, unreachable, reset while connecting).
    Connect,
    /// The endpoint's host name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The SSRF guard refused every address of the endpoint.
    Blocked,
    /// The endpoint answered with a status other than `2xx`.
    Status,
    /// The endpoint's secret cannot sign with one of its schemes; nothing was sent.
    Signing,
    /// Anything else on the way (the connection broke mid-request, an invalid request target).
    Io,
}

impl AttemptError {
    /// Every kind, in the order the API documents them.
    pub const ALL: [AttemptError; 8] = [
        AttemptError::Timeout,
        AttemptError::Connect,
        AttemptError::Dns,
        AttemptError::Tls,
        AttemptError::Blocked,
        AttemptError::Status,
        AttemptError::Signing,
        AttemptError::Io,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptError::Timeout => "timeout",
            AttemptError::Connect => "connect",
            AttemptError::Dns => "dns",
            AttemptError::Tls => "tls",
            AttemptError::Blocked => "blocked",
            AttemptError::Status => "status",
            AttemptError::Signing => "signing",
            AttemptError::Io => "io",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        AttemptError::ALL.into_iter().find(|kind| kind.as_str() == value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_as_itself_and_serializes_as_its_name() {
        for kind in AttemptError::ALL {
            assert_eq!(AttemptError::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(serde_json::from_value::<AttemptError>(kind.as_str().into()).unwrap(), kind);
        }
        assert_eq!(AttemptError::parse("dns error"), None);
    }
}
