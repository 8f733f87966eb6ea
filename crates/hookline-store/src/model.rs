//! The records the store keeps, as the rest of Hookline sees them.

use std::sync::Arc;

use hookline_core::Scheme;
pub use hookline_core::attempt::AttemptError;
use hookline_core::body::Format;
use hookline_core::id::{DeliveryId, EndpointId, EventId, KeyId, TenantId};
use hookline_core::json::Escape;
use hookline_core::retry::RetrySchedule;
use hookline_core::time::Timestamp;
use hookline_core::topic::TopicName;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Topic {
    pub name: TopicName,
    pub description: String,
    pub deprecated: bool,
    pub created: Timestamp,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created: Timestamp,
}

/// A tenant key's public part; the key itself is shown once, at creation, and stored only as a hash.
#[derive(Clone, Debug, Serialize)]
pub struct ApiKey {
    pub id: KeyId,
    pub tenant: TenantId,
    pub name: String,
    pub created: Timestamp,
}

/// Who an API key belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Tenant(TenantId),
}

#[derive(Clone, Debug, Serialize)]
pub struct Endpoint {
    pub id: EndpointId,
    pub tenant: TenantId,
    pub url: String,
    pub topics: Vec<TopicName>,
    pub description: String,
    pub enabled: bool,
    #[serde(serialize_with = "serialize_display")]
    pub format: Format,
    #[serde(serialize_with = "serialize_schemes")]
    pub signing: Vec<Scheme>,
    #[serde(skip)]
    pub secret: String,
    /// The endpoint's own schedule, or `None` for the server's default.
    #[serde(serialize_with = "serialize_schedule")]
    pub retry_schedule: Option<RetrySchedule>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// A new endpoint, validated by the caller.
#[derive(Clone, Debug)]
pub struct NewEndpoint {
    pub tenant: TenantId,
    pub url: String,
    pub topics: Vec<TopicName>,
    pub description: String,
    pub enabled: bool,
    pub format: Format,
    pub signing: Vec<Scheme>,
    pub secret: String,
    pub retry_schedule: Option<RetrySchedule>,
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub topics: Option<Vec<TopicName>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub format: Option<Format>,
    pub signing: Option<Vec<Scheme>>,
    pub secret: Option<String>,
    pub retry_schedule: Option<Option<RetrySchedule>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub id: EventId,
    pub tenant: TenantId,
    pub topic: TopicName,
    pub created: Timestamp,
    /// Canonical compact JSON, as published.
    #[serde(serialize_with = "serialize_raw_json")]
    pub data: String,
    #[serde(serialize_with = "serialize_optional_raw_json")]
    pub meta: Option<String>,
    pub idempotency_key: Option<String>,
}

/// A validated event to store and fan out.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub tenant: TenantId,
    pub topic: TopicName,
    pub data: String,
    pub meta: Option<String>,
    pub idempotency_key: Option<String>,
}

/// The answer to a publish: the event, how many deliveries it made, and whether it already existed.
#[derive(Clone, Debug)]
pub struct Published {
    pub event: Event,
    pub deliveries: u64,
    pub replayed: bool,
    /// How many of the deliveries were written due, for a dispatcher's claim to find; the others went straight
    /// to this process's dispatcher (see `HandoffSink`).
    pub due: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
    Cancelled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pending" => Some(DeliveryStatus::Pending),
            "succeeded" => Some(DeliveryStatus::Succeeded),
            "failed" => Some(DeliveryStatus::Failed),
            "cancelled" => Some(DeliveryStatus::Cancelled),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub tenant: TenantId,
    pub event: EventId,
    pub endpoint: EndpointId,
    pub topic: TopicName,
    #[serde(serialize_with = "serialize_display")]
    pub format: Format,
    #[serde(skip)]
    pub escape: Escape,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt: Option<Timestamp>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// One attempt as recorded in the delivery log.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    pub number: u32,
    pub started: Timestamp,
    pub duration_ms: u64,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    pub response_status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    /// How many response headers were not kept, past the count or size an attempt keeps.
    pub response_headers_omitted: u32,
    pub response_body: Option<String>,
    pub error: Option<AttemptError>,
    pub error_detail: Option<String>,
}

/// A delivery the dispatcher has leased, with everything needed to send it.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub id: DeliveryId,
    pub lease: i64,
    pub attempts: u32,
    pub format: Format,
    pub escape: Escape,
    pub event_id: EventId,
    pub topic: TopicName,
    pub event_created: Timestamp,
    /// Shared by the deliveries of an event that one publish hands over; a claim reads it for each delivery.
    pub data: Arc<str>,
    pub meta: Option<Arc<str>>,
    pub endpoint: Arc<Endpoint>,
}

/// What to do with a delivery after an attempt.
#[derive(Clone, Debug)]
pub enum NextStep {
    Done(DeliveryStatus),
    RetryAt(Timestamp),
}

/// One attempt's outcome, to record and to move its delivery on.
#[derive(Clone, Debug)]
pub struct AttemptOutcome {
    pub delivery: DeliveryId,
    pub lease: i64,
    pub attempt: Attempt,
    pub next: NextStep,
}

/// A page of a list, with the cursor that continues it.
#[derive(Clone, Debug, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

fn serialize_display<S: serde::Serializer, T: std::fmt::Display>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn serialize_schemes<S: serde::Serializer>(schemes: &[Scheme], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(schemes.iter().map(|scheme| scheme.as_str()))
}

fn serialize_schedule<S: serde::Serializer>(
    schedule: &Option<RetrySchedule>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match schedule {
        None => serializer.serialize_none(),
        Some(schedule) => serializer
            .collect_seq(schedule.delays().iter().map(|delay| hookline_core::duration::format_duration(*delay))),
    }
}

fn serialize_raw_json<S: serde::Serializer>(json: &str, serializer: S) -> Result<S::Ok, S::Error> {
    // Stored JSON was canonicalised at publish, so it is valid; the fallback only guards against a damaged file.
    match serde_json::value::RawValue::from_string(json.to_owned()) {
        Ok(raw) => raw.serialize(serializer),
        Err(_) => serializer.serialize_str(json),
    }
}

fn serialize_optional_raw_json<S: serde::Serializer>(json: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    match json {
        Some(json) => serialize_raw_json(json, serializer),
        None => serializer.serialize_none(),
    }
}
