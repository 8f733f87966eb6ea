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

/// What made an attempt: the delivery log says it for each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The retry schedule: a delivery's first attempt, and each retry after a failure.
    Schedule,
    /// Someone sent the delivery again by hand.
    Retry,
    /// The event was sent again to its endpoints.
    Resend,
    /// The endpoint's failed deliveries were queued again.
    Recover,
    /// A test event sent to one endpoint.
    Test,
}

impl Cause {
    pub const ALL: [Cause; 5] = [Cause::Schedule, Cause::Retry, Cause::Resend, Cause::Recover, Cause::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Schedule => "schedule",
            Cause::Retry => "retry",
            Cause::Resend => "resend",
            Cause::Recover => "recover",
            Cause::Test => "test",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Cause::ALL.into_iter().find(|cause| cause.as_str() == value)
    }
}

/// Why a delivery was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A publish, for an endpoint subscribed to the event's topic.
    Publish,
    /// A test event, for one endpoint.
    Test,
    /// An event sent again.
    Resend,
}

impl Origin {
    pub const ALL: [Origin; 3] = [Origin::Publish, Origin::Test, Origin::Resend];

    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Publish => "publish",
            Origin::Test => "test",
            Origin::Resend => "resend",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Origin::ALL.into_iter().find(|origin| origin.as_str() == value)
    }

    /// What makes a new delivery's first attempt.
    pub fn first_cause(self) -> Cause {
        match self {
            Origin::Publish => Cause::Schedule,
            Origin::Test => Cause::Test,
            Origin::Resend => Cause::Resend,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_and_origins_read_back_as_themselves() {
        for cause in Cause::ALL {
            assert_eq!(Cause::parse(cause.as_str()), Some(cause));
            assert_eq!(serde_json::to_value(cause).unwrap(), cause.as_str());
        }
        for origin in Origin::ALL {
            assert_eq!(Origin::parse(origin.as_str()), Some(origin));
            assert_eq!(serde_json::to_value(origin).unwrap(), origin.as_str());
        }
        assert_eq!((Cause::parse("cron"), Origin::parse("cron")), (None, None));
        assert_eq!(Origin::Test.first_cause(), Cause::Test);
    }

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
