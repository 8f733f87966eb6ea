//! The portal's rules without I/O: what a session may do (its capabilities), and the tokens of links and sessions.

use std::fmt;
use std::str::FromStr;

/// What a portal session may do, beyond reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// See the tenant's endpoints, deliveries and catalogue; every session has it.
    Read,
    /// Add, change, disable and delete endpoints, and send test events.
    ManageEndpoints,
    /// Reveal and rotate signing secrets.
    SeeSecrets,
    /// Retry deliveries and recover an endpoint's failed ones.
    Retry,
}

impl Capability {
    pub const ALL: [Capability; 4] =
        [Capability::Read, Capability::ManageEndpoints, Capability::SeeSecrets, Capability::Retry];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Read => "read",
            Capability::ManageEndpoints => "manage_endpoints",
            Capability::SeeSecrets => "see_secrets",
            Capability::Retry => "retry",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability {value:?}; use read, manage_endpoints, see_secrets or retry")]
pub struct CapabilityError {
    pub value: String,
}

impl FromStr for Capability {
    type Err = CapabilityError;

    fn from_str(value: &str) -> Result<Self, CapabilityError> {
        Capability::ALL
            .into_iter()
            .find(|capability| capability.as_str() == value)
            .ok_or_else(|| CapabilityError { value: value.to_owned() })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A set of capabilities as stored: sorted, without repeats, `read` always in it.
pub fn normalise(capabilities: &[Capability]) -> Vec<Capability> {
    let mut all: Vec<Capability> = capabilities.iter().copied().chain([Capability::Read]).collect();
    all.sort();
    all.dedup();
    all
}

/// A new link or session token: 40 random base62 characters after its prefix (`hpl_` a link, `hps_` a
/// session). Only its hash (`crate::secret::hash_api_key`) is stored.
pub fn new_token(prefix: &str) -> String {
    crate::secret::generate_api_key(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_read_back_and_always_include_read() {
        for capability in Capability::ALL {
            assert_eq!(capability.as_str().parse::<Capability>(), Ok(capability));
        }
        assert!("admin".parse::<Capability>().unwrap_err().to_string().contains("manage_endpoints"));
        assert_eq!(normalise(&[Capability::Retry, Capability::Retry]), [Capability::Read, Capability::Retry]);
        assert!(new_token("hpl_").starts_with("hpl_") && new_token("hpl_").len() == 44);
    }
}
