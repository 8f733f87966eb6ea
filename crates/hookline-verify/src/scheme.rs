//! The signing schemes and their names.

use std::fmt;
use std::str::FromStr;

/// A webhook signing scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `heron-signature: base64(HMAC-SHA256(secret, body))`.
    Heron,
    /// `x-herald-signature: base64(SHA-256(secret ‖ body))`.
    Herald,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    Standard,
}

impl Scheme {
    /// Every scheme, in a stable order.
    pub const ALL: [Scheme; 3] = [Scheme::Heron, Scheme::Herald, Scheme::Standard];

    /// The scheme's name as used in configuration: `heron`, `herald` or `standard`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Heron => "heron",
            Scheme::Herald => "herald",
            Scheme::Standard => "standard",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returned by [`Scheme::from_str`] for an unknown name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signing scheme {name:?}; expected one of heron, herald, standard")]
pub struct ParseSchemeError {
    /// The name that was not recognised.
    pub name: String,
}

impl FromStr for Scheme {
    type Err = ParseSchemeError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|scheme| scheme.as_str() == name)
            .ok_or_else(|| ParseSchemeError { name: name.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for scheme in Scheme::ALL {
            assert_eq!(scheme.as_str().parse::<Scheme>(), Ok(scheme));
            assert_eq!(scheme.to_string(), scheme.as_str());
        }
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let err = "Heron".parse::<Scheme>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown signing scheme "Heron"; expected one of heron, herald, standard"#);
    }
}
