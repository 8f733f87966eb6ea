//! Topic names (`<resource>.<event>`) and the catalogue Hookline is seeded with.

use std::fmt;
use std::str::FromStr;

/// A topic name: `<resource>.<event>`, each part lowercase letters, digits and `_`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid topic name {value:?}; use <resource>.<event> with lowercase letters, digits and '_' (e.g. pdf.processed)"
)]
pub struct TopicNameError {
    pub value: String,
}

impl TopicName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 64
        && part.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
}

impl FromStr for TopicName {
    type Err = TopicNameError;

    fn from_str(value: &str) -> Result<Self, TopicNameError> {
        match value.split_once('.') {
            Some((resource, event)) if valid_part(resource) && valid_part(event) => Ok(Self(value.to_owned())),
            _ => Err(TopicNameError { value: value.to_owned() }),
        }
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl serde::Serialize for TopicName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for TopicName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A topic as the catalogue seeds it.
pub struct SeedTopic {
    pub name: &'static str,
    pub description: &'static str,
    pub deprecated: bool,
    /// The `data` of a typical event, shaped as Heron's examples are: what a test event sends when the topic has
    /// no example of its own.
    pub example: &'static str,
}

/// The built-in example of a seeded or operational topic.
pub fn seed_example(name: &str) -> Option<&'static str> {
    SEED_TOPICS.iter().chain(OPERATIONAL_TOPICS).find(|seed| seed.name == name).map(|seed| seed.example)
}

/// Whether Hookline itself publishes `name`, about a tenant's endpoints: tenants subscribe to these topics and
/// never publish them.
pub fn is_operational(name: &str) -> bool {
    OPERATIONAL_TOPICS.iter().any(|topic| topic.name == name)
}

/// The operational events, in every catalogue: Hookline publishes them to a tenant about its own endpoints.
pub const OPERATIONAL_TOPICS: &[SeedTopic] = &[
    SeedTopic {
        name: "endpoint.failing",
        description: "Hookline: one of your endpoints has failed several attempts in a row (once per run of failures).",
        deprecated: false,
        example: r#"{"tenant":"acme","endpoint_id":"ep_01m95j3yvbj6n95m7p5wv56vg1","url":"https://hooks.acme.example/webhooks","consecutive_failures":5,"failing_since":"2026-12-06T09:12:44.512+00:00","last_error":"the endpoint answered 503"}"#,
    },
    SeedTopic {
        name: "endpoint.recovered",
        description: "Hookline: an endpoint that was failing succeeded again.",
        deprecated: false,
        example: r#"{"tenant":"acme","endpoint_id":"ep_01m95j3yvbj6n95m7p5wv56vg1","url":"https://hooks.acme.example/webhooks","failing_since":"2026-12-06T09:12:44.512+00:00","recovered_at":"2026-12-06T10:02:13.080+00:00"}"#,
    },
    SeedTopic {
        name: "endpoint.disabled",
        description: "Hookline: an endpoint failed every attempt for days and was disabled; enable it to resume.",
        deprecated: false,
        example: r#"{"tenant":"acme","endpoint_id":"ep_01m95j3yvbj6n95m7p5wv56vg1","url":"https://hooks.acme.example/webhooks","failing_since":"2026-12-01T09:12:44.512+00:00","disabled_at":"2026-12-06T09:13:02.004+00:00","reason":"every attempt failed for 5d and a delivery used its last retry"}"#,
    },
    SeedTopic {
        name: "delivery.exhausted",
        description: "Hookline: a delivery failed its last attempt; nothing more will be tried unless it is retried.",
        deprecated: false,
        example: r#"{"tenant":"acme","endpoint_id":"ep_01m95j3yvbj6n95m7p5wv56vg1","url":"https://hooks.acme.example/webhooks","delivery_id":"del_01m95j4ch7cbw4qcb0gxg7n2re","event_id":"evt_01m95j4ch6ky1cx6q0dh5k5r3x","topic":"pdf.processed","attempts":8,"last_status":503,"last_error":"the endpoint answered 503"}"#,
    },
];

/// The eleven topics of Heron Data's webhook documentation, which every new Hookline starts with.
pub const SEED_TOPICS: &[SeedTopic] = &[
    SeedTopic {
        name: "end_user.processed",
        description: "Automated processing of an end user finished; it starts once the end user's status is set to ready.",
        deprecated: false,
        example: r#"{"heron_id":"eus_Eqio3Y4dhyNiMphrXwG58p","end_user_id":"myenduser","status":"processed"}"#,
    },
    SeedTopic {
        name: "end_user.reviewed",
        description: "An underwriter manually reviewed a company and set the end user's status to reviewed.",
        deprecated: false,
        example: r#"{"heron_id":"eus_Eqio3Y4dhyNiMphrXwG58p","end_user_id":"myenduser","status":"reviewed"}"#,
    },
    SeedTopic {
        name: "end_user.transactions_updated",
        description: "Transactions of an end user changed. Being deprecated: do not subscribe; use transactions.updated.",
        deprecated: true,
        example: r#"{"heron_id":"eus_Eqio3Y4dhyNiMphrXwG58p","end_user_id":"myenduser"}"#,
    },
    SeedTopic {
        name: "end_user.review_required",
        description: "An end user broke a rule during processing and needs further review.",
        deprecated: false,
        example: r#"{"heron_id":"eus_Eqio3Y4dhyNiMphrXwG58p","end_user_id":"myenduser","status":"review_required"}"#,
    },
    SeedTopic {
        name: "transactions.deleted",
        description: "Transactions were deleted.",
        deprecated: false,
        example: r#"{"end_user_id":"myenduser","transaction_ids":["txn_2Yv8rXkWqZ4pLm1nB7cD9e"]}"#,
    },
    SeedTopic {
        name: "transactions.updated",
        description: "Transactions of an end user changed; sent once changes stop, within 10 minutes of the last one.",
        deprecated: false,
        example: r#"{"end_user_id":"myenduser","transaction_ids":["txn_2Yv8rXkWqZ4pLm1nB7cD9e"]}"#,
    },
    SeedTopic {
        name: "pdf.processed",
        description: "A PDF document was processed successfully.",
        deprecated: false,
        example: r#"{"heron_id":"pdf_Q5mZt8rK2wXyL9vB3nH7cD","end_user_id":"myenduser","status":"processed"}"#,
    },
    SeedTopic {
        name: "pdf.checks_passed",
        description: "A PDF document reconciles and stays under the anomaly threshold (when fraud checks are enabled).",
        deprecated: false,
        example: r#"{"heron_id":"pdf_Q5mZt8rK2wXyL9vB3nH7cD","end_user_id":"myenduser","status":"checks_passed"}"#,
    },
    SeedTopic {
        name: "pdf.checks_failed",
        description: "A PDF document does not reconcile or exceeds the anomaly threshold (when fraud checks are enabled).",
        deprecated: false,
        example: r#"{"heron_id":"pdf_Q5mZt8rK2wXyL9vB3nH7cD","end_user_id":"myenduser","status":"checks_failed"}"#,
    },
    SeedTopic {
        name: "pdf.failed",
        description: "Processing a PDF document failed: no transactions could be extracted.",
        deprecated: false,
        example: r#"{"heron_id":"pdf_Q5mZt8rK2wXyL9vB3nH7cD","end_user_id":"myenduser","status":"failed"}"#,
    },
    SeedTopic {
        name: "pdf.transactions_loaded",
        description: "The transactions of a processed PDF document were loaded into an end user.",
        deprecated: false,
        example: r#"{"heron_id":"pdf_Q5mZt8rK2wXyL9vB3nH7cD","end_user_id":"myenduser","status":"transactions_loaded"}"#,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seeded_topic_has_an_example_of_compact_json() {
        for seed in SEED_TOPICS {
            let parsed: serde_json::Value = serde_json::from_str(seed.example).unwrap_or_else(|error| {
                panic!("{}: {error}", seed.name);
            });
            assert!(parsed.is_object(), "{}", seed.name);
            assert_eq!(serde_json::to_string(&parsed).unwrap(), seed.example, "{} is compact", seed.name);
            assert_eq!(seed_example(seed.name), Some(seed.example));
        }
        assert_eq!(seed_example("quote.ready"), None);
    }

    fn check(input: &str, valid: bool) {
        assert_eq!(input.parse::<TopicName>().is_ok(), valid, "{input}");
    }

    #[test]
    fn topic_names_follow_resource_dot_event() {
        check("pdf.processed", true);
        check("end_user.transactions_updated", true);
        check("v2.item_1", true);
        check("pdf", false);
        check("pdf.", false);
        check(".processed", false);
        check("pdf.processed.late", false);
        check("PDF.processed", false);
        check("pdf.pro cessed", false);
        check("pdf.*", false);
    }

    #[test]
    fn the_seed_catalogue_is_valid_and_complete() {
        assert_eq!(SEED_TOPICS.len(), 11);
        for topic in SEED_TOPICS {
            check(topic.name, true);
        }
        let deprecated: Vec<_> = SEED_TOPICS.iter().filter(|topic| topic.deprecated).map(|topic| topic.name).collect();
        assert_eq!(deprecated, ["end_user.transactions_updated"]);
    }
}
