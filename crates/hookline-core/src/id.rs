//! Typed, prefixed identifiers (`evt_…`, `ep_…`, `del_…`) and tenant ids, validated when parsed.
//!
//! Generated ids are 26 Crockford base32 characters after the prefix: 48 bits of milliseconds then 80 random bits,
//! so they sort by creation time.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;

use crate::time::Timestamp;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BODY_LEN: usize = 26;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {value:?}; {hint}")]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
    pub hint: String,
}

fn generate_body(now: Timestamp) -> String {
    let mut random = [0u8; 10];
    rand::rng().fill_bytes(&mut random);
    let mut value = time_bits(now);
    for (index, byte) in random.iter().enumerate() {
        value |= (*byte as u128) << (8 * (9 - index));
    }
    encode(value)
}

/// A time in a body's first 48 bits.
fn time_bits(time: Timestamp) -> u128 {
    (time.unix_millis().max(0) as u128 & ((1 << 48) - 1)) << 80
}

/// 128 bits as a body: its 26 base32 characters, most significant first.
fn encode(mut value: u128) -> String {
    let mut out = [0u8; BODY_LEN];
    for slot in out.iter_mut().rev() {
        *slot = CROCKFORD[(value & 31) as usize];
        value >>= 5;
    }
    out.iter().map(|byte| *byte as char).collect()
}

/// The milliseconds a generated body was made at: its first 48 bits.
fn body_time(body: &str) -> Timestamp {
    let mut value: u128 = 0;
    for byte in body.bytes() {
        // A parsed id's body holds only these characters.
        let digit = CROCKFORD.iter().position(|candidate| *candidate == byte).unwrap_or(0);
        value = (value << 5) | digit as u128;
    }
    Timestamp::from_unix_millis((value >> 80) as i64)
}

/// The lowest body of millisecond `time`: every body generated at or after it sorts after it.
fn first_body_at(time: Timestamp) -> String {
    encode(time_bits(time))
}

fn valid_body(body: &str) -> bool {
    body.len() == BODY_LEN && body.bytes().all(|byte| CROCKFORD.contains(&byte))
}

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new, time-ordered id, made now by the system's clock.
            pub fn generate() -> Self {
                Self::generate_at(Timestamp::now())
            }

            /// A new id ordered at `now` (a clock's time).
            pub fn generate_at(now: Timestamp) -> Self {
                Self(format!("{}{}", $prefix, generate_body(now)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// When the id was generated (to the millisecond), read from the id itself.
            pub fn time(&self) -> Timestamp {
                body_time(&self.0[$prefix.len()..])
            }

            /// The lowest id of millisecond `time`: every id generated at or after `time` sorts after it, and
            /// every one before sorts before.
            pub fn first_at(time: Timestamp) -> Self {
                Self(format!("{}{}", $prefix, first_body_at(time)))
            }
        }

        /// Maps keyed by id can be searched with the id's text.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(value: &str) -> Result<Self, IdError> {
                match value.strip_prefix($prefix) {
                    Some(body) if valid_body(body) => Ok(Self(value.to_owned())),
                    _ => Err(IdError {
                        kind: $kind,
                        value: value.to_owned(),
                        hint: format!("expected {} followed by {} lowercase base32 characters", $prefix, BODY_LEN),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// An accepted event.
    EventId,
    "evt_",
    "event"
);
prefixed_id!(
    /// A tenant's webhook endpoint.
    EndpointId,
    "ep_",
    "endpoint"
);
prefixed_id!(
    /// One event bound for one endpoint; it has one or more attempts.
    DeliveryId,
    "del_",
    "delivery"
);
prefixed_id!(
    /// A tenant API key (the id, never the key itself).
    KeyId,
    "key_",
    "key"
);

prefixed_id!(
    /// A recovery: an endpoint's failed deliveries of a window, queued again in the background.
    RecoveryId,
    "rcv_",
    "recovery"
);

prefixed_id!(
    /// An operational event noted by endpoint health, waiting to be published.
    NoticeId,
    "ntc_",
    "notice"
);

prefixed_id!(
    /// A portal session: a tenant's user signed in to the portal (the id, never the session's token).
    PortalSessionId,
    "ps_",
    "portal session"
);

prefixed_id!(
    /// An operator's session in the console (the id, never the session's token).
    ConsoleSessionId,
    "cs_",
    "console session"
);

/// A tenant id, chosen by the operator: 1 to 64 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TenantId {
    type Err = IdError;

    fn from_str(value: &str) -> Result<Self, IdError> {
        let allowed = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_';
        let starts_well = value.bytes().next().is_some_and(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit());
        if (1..=64).contains(&value.len()) && starts_well && value.bytes().all(allowed) {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdError {
                kind: "tenant",
                value: value.to_owned(),
                hint: "use 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit".to_owned(),
            })
        }
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl serde::Serialize for TenantId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_sort_by_time() {
        let first = EventId::generate();
        assert!(first.as_str().starts_with("evt_"));
        assert_eq!(first.as_str().len(), 4 + BODY_LEN);
        assert_eq!(first.as_str().parse::<EventId>().unwrap(), first);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = EventId::generate();
        assert!(second > first);
    }

    fn check_event_id(input: &str, valid: bool) {
        assert_eq!(input.parse::<EventId>().is_ok(), valid, "{input}");
    }

    #[test]
    fn event_ids_are_validated() {
        check_event_id("evt_01h2xcejqtf2nbrexx3vqjhp41", true);
        check_event_id("ep_01h2xcejqtf2nbrexx3vqjhp41", false);
        check_event_id("evt_01h2xcejqtf2nbrexx3vqjhp4", false);
        check_event_id("evt_01h2xcejqtf2nbrexx3vqjhp4u", false);
        check_event_id("evt_01H2XCEJQTF2NBREXX3VQJHP41", false);
        check_event_id("", false);
    }

    #[test]
    fn id_errors_name_the_kind_and_value() {
        let error = "del_x".parse::<EventId>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid event id \"del_x\"; expected evt_ followed by 26 lowercase base32 characters"
        );
    }

    fn check_tenant(input: &str, valid: bool) {
        assert_eq!(input.parse::<TenantId>().is_ok(), valid, "{input}");
    }

    #[test]
    fn tenant_ids_are_validated() {
        check_tenant("acme", true);
        check_tenant("acme-corp_2", true);
        check_tenant("9lives", true);
        check_tenant("-acme", false);
        check_tenant("Acme", false);
        check_tenant("acme corp", false);
        check_tenant("", false);
        check_tenant(&"a".repeat(65), false);
    }

    #[test]
    fn an_id_tells_its_time_and_the_first_id_of_a_millisecond_sorts_before_every_later_one() {
        let at = Timestamp::from_unix_millis(1_621_502_633_123);
        let id = EventId::generate_at(at);
        assert_eq!(id.time(), at);
        let first = EventId::first_at(at);
        assert_eq!(first.time(), at);
        assert!(first <= id);
        assert!(EventId::first_at(Timestamp::from_unix_millis(1_621_502_633_124)) > id);
        assert!(DeliveryId::generate_at(Timestamp::from_unix_millis(1_621_502_633_122)) < DeliveryId::first_at(at));
    }
}
