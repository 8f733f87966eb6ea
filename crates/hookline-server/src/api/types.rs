//! The API's wire types: every request body it reads and every response body it writes, shared with the CLI.
//!
//! Responses are built from these types only, never by serialising a store record, so what a response shows is
//! decided here, field by field. An endpoint's secret is a field only of [`EndpointWithSecret`] and a tenant
//! key only of [`ApiKeyWithSecret`], the answers meant to carry them; [`EndpointResponse`] has no such field for
//! a new one to be forgotten beside. Request bodies keep the caller's words as text (`"format": "data"`), so
//! that the handlers, not serde, say what is wrong with a value, in the API's error codes. Responses hold core's
//! typed values written as the API always wrote them: times as RFC 3339 in UTC with milliseconds and `+00:00`
//! (the publish answer's `created` in whole seconds), retry delays as `5m`, an event's `data` and `meta` as the
//! canonical JSON published, byte for byte.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use hookline_core::Scheme;
use hookline_core::attempt::{AttemptError, Cause, Origin};
use hookline_core::body::Format;
use hookline_core::health::{Health, State};
use hookline_core::id::{DeliveryId, EndpointId, EventId, KeyId, PortalSessionId, RecoveryId, TenantId};
use hookline_core::time::Timestamp;
use hookline_core::topic::TopicName;
use hookline_store as store;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

// ----- requests -----

/// `POST /v1/tenants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    pub id: String,
    /// The tenant's id when left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `POST /v1/tenants/{tenant}/keys`; the body may be left out altogether.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// `default` when left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `POST /v1/topics`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopicRequest {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The `data` a test event of this topic sends when it is given none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<serde_json::Value>,
    /// The one-line text of chat messages of this topic, naming fields of `data` (`{data.end_user_id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// `PATCH /v1/topics/{name}`; a field left out stays as it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTopicRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<bool>,
    /// `Some(None)` is sent as `null`, which removes the topic's own example (a seeded topic falls back to its
    /// built-in one).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub example: Option<Option<serde_json::Value>>,
    /// `null` removes the topic's template.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub template: Option<Option<String>>,
}

/// `POST /v1/tenants/{tenant}/endpoints`; a field left out takes the default its comment names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    pub url: String,
    pub topics: Vec<String>,
    /// Empty when left out.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `envelope`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The server's default schemes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing: Option<Vec<String>>,
    /// The server's default schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_schedule: Option<Vec<String>>,
    /// A secret generated for the schemes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Request headers of its own, sent on every attempt; none when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
}

/// `PATCH /v1/tenants/{tenant}/endpoints/{endpoint}`; a field left out stays as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpointRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing: Option<Vec<String>>,
    /// `Some(None)` is sent as `null`, which returns the endpoint to the server's default schedule.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub retry_schedule: Option<Option<Vec<String>>>,
    /// A new secret, replacing the old one at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Replaces all of its headers (`{}` removes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
}

/// `POST /v1/tenants/{tenant}/endpoints/{endpoint}/test`: an event of `topic` for that endpoint alone.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestEventRequest<'a> {
    pub topic: String,
    /// The event's data; the topic's example when left out.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
}

/// `POST /v1/tenants/{tenant}/events/{event}/resend`; the body may be left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    /// Only these endpoints; every one subscribed to the event's topic when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<String>>,
}

/// The answer to a resend: the new deliveries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResendResponse {
    pub event: EventId,
    pub deliveries: Vec<DeliveryResponse>,
}

/// `POST /v1/tenants/{tenant}/endpoints/{endpoint}/recover`: the window of the failed deliveries to queue again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// RFC 3339.
    pub since: String,
    /// RFC 3339; now when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A recovery and how far it has gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryResponse {
    pub id: RecoveryId,
    pub endpoint: EndpointId,
    pub since: Timestamp,
    pub until: Timestamp,
    /// The failed deliveries in the window when it began.
    pub total: u64,
    /// Those queued again so far.
    pub queued: u64,
    pub created: Timestamp,
    /// When it was done; `null` while it runs.
    pub finished: Option<Timestamp>,
}

impl From<&store::Recovery> for RecoveryResponse {
    fn from(recovery: &store::Recovery) -> Self {
        RecoveryResponse {
            id: recovery.id.clone(),
            endpoint: recovery.endpoint.clone(),
            since: recovery.since,
            until: recovery.until,
            total: recovery.total,
            queued: recovery.queued,
            created: recovery.created,
            finished: recovery.finished,
        }
    }
}

/// `GET /v1/tenants/{tenant}/endpoints/{endpoint}/secret`: the one route, besides creating the endpoint, that
/// answers with its signing secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSecretResponse {
    pub secret: String,
    /// The secret a rotation replaced, while it still signs; `null` otherwise.
    pub previous: Option<PreviousSecretResponse>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecretResponse {
    pub secret: String,
    /// When it stops signing.
    pub expires_at: Timestamp,
}

impl EndpointSecretResponse {
    /// The endpoint's secrets as they sign at `now`.
    pub fn at(endpoint: &store::Endpoint, now: Timestamp) -> EndpointSecretResponse {
        EndpointSecretResponse {
            secret: endpoint.secret.clone(),
            previous: endpoint
                .previous_secret_at(now)
                .map(|previous| PreviousSecretResponse { secret: previous.secret.clone(), expires_at: previous.until }),
        }
    }
}

/// `POST /v1/tenants/{tenant}/endpoints/{endpoint}/secret/rotate`; the body may be left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// How long the current secret keeps signing: a duration such as `24h` (the default), at most `7d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<String>,
    /// The new secret; one is generated when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `POST /v1/tenants/{tenant}/portal-links`; the body may be left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalLinkRequest {
    /// What the session may do beyond reading: `manage_endpoints`, `see_secrets`, `retry`; all unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    /// How long the link can be opened: `5m` unless given, at most `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Who the user is, as the platform names them; shown in the portal and in the session list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// How the portal looks for this user (`name`, `accent` as `#rrggbb`, `mode` light or dark); the server's
    /// settings for what it leaves out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<hookline_core::portal::Theme>,
}

/// A portal link: open it once, before it expires. Its token is in the fragment, never sent to a server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalLinkResponse {
    pub url: String,
    pub expires_at: Timestamp,
}

/// A portal session, as its tenant's list shows it (never its token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalSessionResponse {
    pub id: PortalSessionId,
    pub tenant: TenantId,
    pub capabilities: Vec<String>,
    pub user: Option<String>,
    pub created: Timestamp,
    pub last_seen: Timestamp,
    pub expires_at: Timestamp,
}

impl From<&store::PortalSession> for PortalSessionResponse {
    fn from(session: &store::PortalSession) -> Self {
        PortalSessionResponse {
            id: session.id.clone(),
            tenant: session.tenant.clone(),
            capabilities: session.capabilities.iter().map(|capability| capability.as_str().to_owned()).collect(),
            user: session.user.clone(),
            created: session.created,
            last_seen: session.last_seen,
            expires_at: session.expires,
        }
    }
}

/// The answer to a test event: the delivery to watch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestEventResponse {
    pub event: EventId,
    pub delivery: DeliveryId,
    pub endpoint: EndpointId,
    pub topic: TopicName,
}

/// `POST /v1/tenants/{tenant}/events`. `data` and `meta` borrow the JSON as the publisher wrote it, so that
/// key order and number literals reach the store (and the CLI's request) exactly.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest<'a> {
    pub topic: String,
    /// Required; an `Option` so that the API can say so in its own words.
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<&'a RawValue>,
}

/// Distinguishes a field set to `null` (`Some(None)`) from a field left out (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

// ----- responses -----

/// One page of a list, with the cursor that continues it (`null` on the last page).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PageResponse<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<'a, R, T: From<&'a R>> From<&'a store::Page<R>> for PageResponse<T> {
    fn from(page: &'a store::Page<R>) -> Self {
        PageResponse { data: page.data.iter().map(T::from).collect(), next_cursor: page.next_cursor.clone() }
    }
}

/// Every error's body, sent as `application/problem+json`: a stable machine `code` and a human `detail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemResponse {
    pub status: u16,
    pub code: String,
    pub title: String,
    pub detail: String,
}

/// `GET /healthz` (`ok`) and `GET /readyz` (`ready`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResponse {
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantResponse {
    pub id: TenantId,
    pub name: String,
    pub created: Timestamp,
}

impl From<&store::Tenant> for TenantResponse {
    fn from(tenant: &store::Tenant) -> Self {
        TenantResponse { id: tenant.id.clone(), name: tenant.name.clone(), created: tenant.created }
    }
}

/// A tenant key's public part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyResponse {
    pub id: KeyId,
    pub tenant: TenantId,
    pub name: String,
    pub created: Timestamp,
}

impl From<&store::ApiKey> for ApiKeyResponse {
    fn from(key: &store::ApiKey) -> Self {
        ApiKeyResponse { id: key.id.clone(), tenant: key.tenant.clone(), name: key.name.clone(), created: key.created }
    }
}

/// The answer to creating a tenant key: the only time the key itself is shown (the store keeps its hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyWithSecret {
    #[serde(flatten)]
    pub api_key: ApiKeyResponse,
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicResponse {
    pub name: TopicName,
    pub description: String,
    pub deprecated: bool,
    pub created: Timestamp,
    /// What a test event of this topic sends as `data` when given none; `null` when it has no example.
    pub example: Option<serde_json::Value>,
    /// The one-line text of chat messages of this topic; `null` for the default.
    pub template: Option<String>,
}

impl From<&store::Topic> for TopicResponse {
    fn from(topic: &store::Topic) -> Self {
        TopicResponse {
            name: topic.name.clone(),
            description: topic.description.clone(),
            deprecated: topic.deprecated,
            created: topic.created,
            // Stored by the API as JSON it wrote itself.
            example: topic.example.as_deref().and_then(|example| serde_json::from_str(example).ok()),
            template: topic.template.clone(),
        }
    }
}

/// An endpoint as lists show it: everything but its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointResponse {
    pub id: EndpointId,
    pub tenant: TenantId,
    pub url: String,
    pub topics: Vec<TopicName>,
    pub description: String,
    pub enabled: bool,
    #[serde(with = "text")]
    pub format: Format,
    #[serde(with = "text_list")]
    pub signing: Vec<Scheme>,
    /// The endpoint's own delays between attempts, or `None` (`null`) for the server's default schedule.
    #[serde(with = "optional_durations")]
    pub retry_schedule: Option<Vec<Duration>>,
    /// Its own request headers, each value masked to its first and last characters.
    pub headers: BTreeMap<String, String>,
    pub health: EndpointHealthResponse,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// How an endpoint is doing: `healthy`, `failing` (since when) or `disabled` (why and since when).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointHealthResponse {
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl EndpointHealthResponse {
    pub fn new(endpoint: &store::Endpoint, state: State, health: &Health) -> EndpointHealthResponse {
        let (since, reason) = match state {
            State::Healthy => (None, None),
            State::Failing => (health.failing_since, None),
            State::Disabled => match &endpoint.disabled {
                Some(disabled) => (Some(disabled.at), Some(disabled.reason.clone())),
                None => (None, None),
            },
        };
        EndpointHealthResponse { state: state.as_str().to_owned(), since, reason }
    }
}

impl EndpointResponse {
    /// The endpoint with its health, as its state was judged.
    pub fn new(endpoint: &store::Endpoint, state: State, health: &Health) -> EndpointResponse {
        EndpointResponse {
            health: EndpointHealthResponse::new(endpoint, state, health),
            ..EndpointResponse::from(endpoint)
        }
    }
}

/// `GET /v1/tenants/{tenant}/endpoints/{endpoint}/stats`: its health and its attempts per hour over the last seven
/// days (hours without attempts left out), oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStatsResponse {
    pub endpoint: EndpointId,
    pub health: EndpointHealthResponse,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    pub last_success: Option<Timestamp>,
    pub last_failure: Option<Timestamp>,
    pub hours: Vec<HourResponse>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourResponse {
    pub hour: Timestamp,
    pub successes: u64,
    pub failures: u64,
}

impl From<&store::Endpoint> for EndpointResponse {
    /// The endpoint with the health its `enabled` alone tells: for a new one, which has no attempts yet.
    fn from(endpoint: &store::Endpoint) -> Self {
        let state = if endpoint.enabled { State::Healthy } else { State::Disabled };
        EndpointResponse {
            id: endpoint.id.clone(),
            tenant: endpoint.tenant.clone(),
            url: endpoint.url.clone(),
            topics: endpoint.topics.clone(),
            description: endpoint.description.clone(),
            enabled: endpoint.enabled,
            format: endpoint.format,
            signing: endpoint.signing.clone(),
            retry_schedule: endpoint.retry_schedule.as_ref().map(|schedule| schedule.delays().to_vec()),
            headers: endpoint
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), hookline_core::headers::mask(value)))
                .collect(),
            health: EndpointHealthResponse::new(endpoint, state, &Health::default()),
            created: endpoint.created,
            updated: endpoint.updated,
        }
    }
}

/// An endpoint with its signing secret: the answer that creates one. Afterwards the secret is read only through
/// its own route (`EndpointSecretResponse`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: EndpointResponse,
    pub secret: String,
    /// What the server chose for it, in sentences (a chat format recognised from the URL).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl From<&store::Endpoint> for EndpointWithSecret {
    fn from(endpoint: &store::Endpoint) -> Self {
        EndpointWithSecret { endpoint: endpoint.into(), secret: endpoint.secret.clone(), notes: Vec::new() }
    }
}

/// The `202` answer to a publish: the event is stored, with a delivery for each of `endpoints`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishResponse {
    pub id: EventId,
    pub topic: TopicName,
    /// In whole seconds, unlike every other time the API shows.
    #[serde(with = "whole_seconds")]
    pub created: Timestamp,
    pub endpoints: u64,
}

impl From<&store::Published> for PublishResponse {
    fn from(published: &store::Published) -> Self {
        PublishResponse {
            id: published.event.id.clone(),
            topic: published.event.topic.clone(),
            created: published.event.created,
            endpoints: published.deliveries,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventResponse {
    pub id: EventId,
    pub tenant: TenantId,
    pub topic: TopicName,
    pub created: Timestamp,
    /// The published data as canonical JSON, written into the response as it is.
    pub data: Box<RawValue>,
    pub meta: Option<Box<RawValue>>,
    pub idempotency_key: Option<String>,
}

impl From<&store::Event> for EventResponse {
    fn from(event: &store::Event) -> Self {
        EventResponse {
            id: event.id.clone(),
            tenant: event.tenant.clone(),
            topic: event.topic.clone(),
            created: event.created,
            data: raw_json(&event.data),
            meta: event.meta.as_deref().map(raw_json),
            idempotency_key: event.idempotency_key.clone(),
        }
    }
}

/// Stored JSON, to write as it is. It was canonicalised at publish, so it is valid; text that is not (only a
/// damaged database could hold it) is written as a JSON string instead.
fn raw_json(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap_or_else(|_| {
        // A string always serialises: serde_json fails only on maps with keys that are not strings.
        serde_json::value::to_raw_value(json).expect("a string serialises to JSON")
    })
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl From<store::DeliveryStatus> for DeliveryStatus {
    fn from(status: store::DeliveryStatus) -> Self {
        match status {
            store::DeliveryStatus::Pending => DeliveryStatus::Pending,
            store::DeliveryStatus::Succeeded => DeliveryStatus::Succeeded,
            store::DeliveryStatus::Failed => DeliveryStatus::Failed,
            store::DeliveryStatus::Cancelled => DeliveryStatus::Cancelled,
        }
    }
}

/// A delivery as lists show it (and as a manual retry answers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryResponse {
    pub id: DeliveryId,
    pub tenant: TenantId,
    pub event: EventId,
    pub endpoint: EndpointId,
    pub topic: TopicName,
    #[serde(with = "text")]
    pub format: Format,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt: Option<Timestamp>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created: Timestamp,
    pub updated: Timestamp,
    /// Why it was made: `publish`, `test` or `resend`.
    pub origin: Origin,
}

impl From<&store::Delivery> for DeliveryResponse {
    fn from(delivery: &store::Delivery) -> Self {
        DeliveryResponse {
            id: delivery.id.clone(),
            tenant: delivery.tenant.clone(),
            event: delivery.event.clone(),
            endpoint: delivery.endpoint.clone(),
            topic: delivery.topic.clone(),
            format: delivery.format,
            status: delivery.status.into(),
            attempts: delivery.attempts,
            next_attempt: delivery.next_attempt,
            last_status: delivery.last_status,
            last_error: delivery.last_error.clone(),
            created: delivery.created,
            updated: delivery.updated,
            origin: delivery.origin,
        }
    }
}

/// One delivery with the body its attempts send and every attempt, oldest first.
///
/// Its JSON has the name `attempts` twice: the delivery's count of attempts, then the list of them. So the API
/// has always written it, and parsers that keep the last value of a repeated name (JavaScript's, Python's,
/// `serde_json::Value`) see the list; reading it into this type takes the count from the number and the list
/// from the array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeliveryDetailResponse {
    #[serde(flatten)]
    pub delivery: DeliveryResponse,
    /// The exact body every attempt of this delivery sends; `None` when its event is gone.
    pub request_body: Option<String>,
    pub attempts: Vec<AttemptResponse>,
}

impl<'de> Deserialize<'de> for DeliveryDetailResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DeliveryDetailVisitor)
    }
}

struct DeliveryDetailVisitor;

impl<'de> serde::de::Visitor<'de> for DeliveryDetailVisitor {
    type Value = DeliveryDetailResponse;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a delivery with its request body and attempts")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<DeliveryDetailResponse, A::Error> {
        use serde::de::Error;

        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Attempts {
            Count(u32),
            List(Vec<AttemptResponse>),
        }

        let mut delivery = serde_json::Map::new();
        let mut request_body = None;
        let mut attempts = None;
        while let Some(name) = map.next_key::<String>()? {
            match name.as_str() {
                "request_body" => request_body = map.next_value::<Option<String>>()?,
                "attempts" => match map.next_value::<Attempts>()? {
                    Attempts::Count(count) => {
                        delivery.insert(name, count.into());
                    }
                    Attempts::List(list) => attempts = Some(list),
                },
                _ => {
                    delivery.insert(name, map.next_value::<serde_json::Value>()?);
                }
            }
        }
        let delivery = DeliveryResponse::deserialize(serde_json::Value::Object(delivery)).map_err(A::Error::custom)?;
        let attempts = attempts.ok_or_else(|| A::Error::missing_field("attempts"))?;
        Ok(DeliveryDetailResponse { delivery, request_body, attempts })
    }
}

/// One attempt as the delivery log recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptResponse {
    pub number: u32,
    pub started: Timestamp,
    pub duration_ms: u64,
    pub url: String,
    /// `[name, value]` pairs, in the order they were sent.
    pub request_headers: Vec<(String, String)>,
    pub response_status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    /// How many response headers were not kept, past the count or size an attempt keeps.
    pub response_headers_omitted: u32,
    pub response_body: Option<String>,
    pub error: Option<AttemptError>,
    pub error_detail: Option<String>,
    /// What made it: `schedule`, `retry`, `resend`, `recover` or `test`.
    pub cause: Cause,
}

impl From<&store::Attempt> for AttemptResponse {
    fn from(attempt: &store::Attempt) -> Self {
        AttemptResponse {
            number: attempt.number,
            started: attempt.started,
            duration_ms: attempt.duration_ms,
            url: attempt.url.clone(),
            request_headers: attempt.request_headers.clone(),
            response_status: attempt.response_status,
            response_headers: attempt.response_headers.clone(),
            response_headers_omitted: attempt.response_headers_omitted,
            response_body: attempt.response_body.clone(),
            error: attempt.error,
            error_detail: attempt.error_detail.clone(),
            cause: attempt.cause,
        }
    }
}

// ----- how fields are written -----

/// A value written as its `Display` text and read back with `FromStr` (`"envelope"`, `"heron"`).
mod text {
    use super::*;

    pub fn serialize<T: Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A list of values written as in [`text`]: `["heron", "standard"]`.
mod text_list {
    use super::*;

    pub fn serialize<T: Display, S: Serializer>(values: &[T], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Vec<T>, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        let texts = Vec::<String>::deserialize(deserializer)?;
        texts.iter().map(|text| text.parse().map_err(serde::de::Error::custom)).collect()
    }
}

/// An optional list of durations: `["5m", "1h30m"]`, or `null`.
mod optional_durations {
    use super::*;

    pub fn serialize<S: Serializer>(delays: &Option<Vec<Duration>>, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(transparent)]
        struct Delays<'a>(#[serde(with = "hookline_core::duration::serde_duration_list")] &'a [Duration]);

        delays.as_deref().map(Delays).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<Duration>>, D::Error> {
        #[derive(Deserialize)]
        #[serde(transparent)]
        struct Delays(#[serde(with = "hookline_core::duration::serde_duration_list")] Vec<Duration>);

        Ok(Option::<Delays>::deserialize(deserializer)?.map(|Delays(delays)| delays))
    }
}

/// A time written in whole seconds, such as `2021-05-20T09:23:53+00:00`.
mod whole_seconds {
    use super::*;

    pub fn serialize<S: Serializer>(time: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&time.to_rfc3339())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        Timestamp::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use hookline_core::json::Escape;
    use hookline_core::retry::RetrySchedule;
    use serde::de::DeserializeOwned;

    use super::*;

    /// 2021-05-20T09:23:53.123Z.
    const CREATED: Timestamp = Timestamp::from_unix_millis(1_621_502_633_123);
    const EVENT: &str = "evt_01hxyzabcdefghjkmnpqrstvwx";
    const ENDPOINT: &str = "ep_01hxyzabcdefghjkmnpqrstvwx";
    const DELIVERY: &str = "del_01hxyzabcdefghjkmnpqrstvwx";

    /// Checks that `value` is written as `expected`, and that `expected` reads back as a value written the same.
    fn check<T: Serialize + DeserializeOwned>(value: &T, expected: &str) {
        let written = serde_json::to_string(value).unwrap();
        assert_eq!(written, expected);
        let read: T = serde_json::from_str(expected).unwrap_or_else(|error| panic!("{error}: {expected}"));
        assert_eq!(serde_json::to_string(&read).unwrap(), expected);
    }

    /// The keys `value` is written with, in order.
    fn keys(value: &impl Serialize) -> Vec<String> {
        let value = serde_json::to_value(value).unwrap();
        value.as_object().unwrap().keys().cloned().collect()
    }

    fn endpoint(retry_schedule: Option<RetrySchedule>) -> store::Endpoint {
        store::Endpoint {
            id: ENDPOINT.parse().unwrap(),
            tenant: "acme".parse().unwrap(),
            url: "https://example.com/hooks".to_owned(),
            topics: vec!["pdf.processed".parse().unwrap(), "pdf.failed".parse().unwrap()],
            description: "Ops".to_owned(),
            enabled: true,
            format: Format::Data,
            signing: vec![Scheme::Heron, Scheme::Standard],
            secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0".to_owned(),
            retry_schedule,
            headers: vec![("authorization".to_owned(), "Bearer abc123".to_owned())],
            previous_secret: None,
            disabled: None,
            created: CREATED,
            updated: Timestamp::from_unix_millis(1_621_502_700_000),
        }
    }

    fn event(meta: Option<&str>, idempotency_key: Option<&str>) -> store::Event {
        store::Event {
            id: EVENT.parse().unwrap(),
            tenant: "acme".parse().unwrap(),
            topic: "pdf.processed".parse().unwrap(),
            created: CREATED,
            data: r#"{"b":1,"a":2.50,"n":1e5,"s":"café"}"#.to_owned(),
            meta: meta.map(str::to_owned),
            idempotency_key: idempotency_key.map(str::to_owned),
            route: store::Route::default(),
        }
    }

    fn delivery(status: store::DeliveryStatus, next_attempt: Option<Timestamp>) -> store::Delivery {
        store::Delivery {
            id: DELIVERY.parse().unwrap(),
            tenant: "acme".parse().unwrap(),
            event: EVENT.parse().unwrap(),
            endpoint: ENDPOINT.parse().unwrap(),
            topic: "pdf.processed".parse().unwrap(),
            format: Format::Envelope,
            escape: Escape::Ascii,
            status,
            attempts: 1,
            next_attempt,
            last_status: Some(503),
            last_error: None,
            created: CREATED,
            updated: CREATED,
            origin: Origin::Publish,
        }
    }

    const ENDPOINT_JSON: &str = concat!(
        r#"{"id":"ep_01hxyzabcdefghjkmnpqrstvwx","tenant":"acme","url":"https://example.com/hooks","#,
        r#""topics":["pdf.processed","pdf.failed"],"description":"Ops","enabled":true,"format":"data","#,
        r#""signing":["heron","standard"],"retry_schedule":["3m","1h30m"],"headers":{"authorization":"B…3"},"#,
        r#""health":{"state":"healthy"},"created":"2021-05-20T09:23:53.123+00:00","updated":"2021-05-20T09:25:00.000+00:00""#,
    );

    #[test]
    fn an_endpoint_has_a_secret_only_in_the_answer_meant_to_carry_it() {
        let schedule = RetrySchedule::exact(vec![Duration::from_secs(180), Duration::from_secs(5400)]).unwrap();
        let endpoint = endpoint(Some(schedule));
        let plain = EndpointResponse::from(&endpoint);
        check(&plain, &format!("{ENDPOINT_JSON}}}"));
        assert!(!keys(&plain).iter().any(|key| key == "secret"), "{:?}", keys(&plain));
        let with_secret = EndpointWithSecret::from(&endpoint);
        check(&with_secret, &format!(r#"{ENDPOINT_JSON},"secret":"whsec_c2VjcmV0c2VjcmV0c2VjcmV0"}}"#));
        assert_eq!(keys(&with_secret).last().map(String::as_str), Some("secret"));

        let page = PageResponse::<EndpointResponse>::from(&store::Page {
            data: vec![endpoint.clone()],
            next_cursor: Some("c1".to_owned()),
        });
        check(&page, &format!(r#"{{"data":[{ENDPOINT_JSON}}}],"next_cursor":"c1"}}"#));
        let default_schedule = EndpointResponse::from(&store::Endpoint { retry_schedule: None, ..endpoint });
        let expected = ENDPOINT_JSON.replace(r#"["3m","1h30m"]"#, "null");
        check(&default_schedule, &format!("{expected}}}"));
    }

    #[test]
    fn a_tenant_key_is_shown_only_when_it_is_made() {
        let key = store::ApiKey {
            id: "key_01hxyzabcdefghjkmnpqrstvwx".parse().unwrap(),
            tenant: "acme".parse().unwrap(),
            name: "ci".to_owned(),
            created: CREATED,
        };
        let public = r#"{"id":"key_01hxyzabcdefghjkmnpqrstvwx","tenant":"acme","name":"ci","created":"2021-05-20T09:23:53.123+00:00""#;
        check(&ApiKeyResponse::from(&key), &format!("{public}}}"));
        let made = ApiKeyWithSecret { api_key: ApiKeyResponse::from(&key), key: "hk_abc".to_owned() };
        check(&made, &format!(r#"{public},"key":"hk_abc"}}"#));
    }

    #[test]
    fn tenants_topics_problems_and_health_are_written_field_by_field() {
        let tenant = store::Tenant { id: "acme".parse().unwrap(), name: "Acme".to_owned(), created: CREATED };
        check(
            &TenantResponse::from(&tenant),
            r#"{"id":"acme","name":"Acme","created":"2021-05-20T09:23:53.123+00:00"}"#,
        );
        let page = PageResponse::<TenantResponse>::from(&store::Page { data: vec![], next_cursor: None });
        check(&page, r#"{"data":[],"next_cursor":null}"#);
        let topic = store::Topic {
            name: "quote.ready".parse().unwrap(),
            description: "A quote".to_owned(),
            deprecated: true,
            created: CREATED,
            example: Some(r#"{"quote_id":"q_1","premium":120.5}"#.to_owned()),
            template: Some("quote {data.quote_id} is ready".to_owned()),
        };
        check(
            &TopicResponse::from(&topic),
            r#"{"name":"quote.ready","description":"A quote","deprecated":true,"created":"2021-05-20T09:23:53.123+00:00","example":{"quote_id":"q_1","premium":120.5},"template":"quote {data.quote_id} is ready"}"#,
        );
        let problem = ProblemResponse {
            status: 404,
            code: "not_found".to_owned(),
            title: "Not Found".to_owned(),
            detail: r#"endpoint "ep_x" does not exist"#.to_owned(),
        };
        check(
            &problem,
            r#"{"status":404,"code":"not_found","title":"Not Found","detail":"endpoint \"ep_x\" does not exist"}"#,
        );
        check(&HealthResponse { status: "ok".to_owned() }, r#"{"status":"ok"}"#);
    }

    #[test]
    fn events_keep_their_data_and_meta_byte_for_byte() {
        let data = r#"{"b":1,"a":2.50,"n":1e5,"s":"café"}"#;
        let cases = [
            (event(None, None), format!(r#""data":{data},"meta":null,"idempotency_key":null}}"#)),
            (event(Some("[1.0]"), Some("k1")), format!(r#""data":{data},"meta":[1.0],"idempotency_key":"k1"}}"#)),
        ];
        for (event, rest) in cases {
            let head = r#"{"id":"evt_01hxyzabcdefghjkmnpqrstvwx","tenant":"acme","topic":"pdf.processed","created":"2021-05-20T09:23:53.123+00:00","#;
            check(&EventResponse::from(&event), &format!("{head}{rest}"));
        }
        // Text that is not JSON (a damaged row) is written as a string rather than breaking the response.
        let damaged = EventResponse::from(&store::Event { data: "{not json".to_owned(), ..event(None, None) });
        assert_eq!(damaged.data.get(), r#""{not json""#);

        let published = store::Published { event: event(None, None), deliveries: 2, replayed: false, due: 0 };
        check(
            &PublishResponse::from(&published),
            r#"{"id":"evt_01hxyzabcdefghjkmnpqrstvwx","topic":"pdf.processed","created":"2021-05-20T09:23:53+00:00","endpoints":2}"#,
        );
    }

    #[test]
    fn deliveries_and_their_attempts_are_written_field_by_field() {
        let head = concat!(
            r#"{"id":"del_01hxyzabcdefghjkmnpqrstvwx","tenant":"acme","event":"evt_01hxyzabcdefghjkmnpqrstvwx","#,
            r#""endpoint":"ep_01hxyzabcdefghjkmnpqrstvwx","topic":"pdf.processed","format":"envelope","#,
        );
        let tail = concat!(
            r#""last_status":503,"last_error":null,"#,
            r#""created":"2021-05-20T09:23:53.123+00:00","updated":"2021-05-20T09:23:53.123+00:00","origin":"publish""#,
        );
        let due = Some(Timestamp::from_unix_millis(1_621_502_700_000));
        #[rustfmt::skip]
        let cases = [
            (store::DeliveryStatus::Pending, due, r#""status":"pending","attempts":1,"next_attempt":"2021-05-20T09:25:00.000+00:00","#),
            (store::DeliveryStatus::Succeeded, None, r#""status":"succeeded","attempts":1,"next_attempt":null,"#),
            (store::DeliveryStatus::Failed, None, r#""status":"failed","attempts":1,"next_attempt":null,"#),
            (store::DeliveryStatus::Cancelled, None, r#""status":"cancelled","attempts":1,"next_attempt":null,"#),
        ];
        for (status, next_attempt, middle) in cases {
            check(&DeliveryResponse::from(&delivery(status, next_attempt)), &format!("{head}{middle}{tail}}}"));
            assert_eq!(DeliveryStatus::from(status).as_str(), status.as_str());
        }

        let attempts = [
            store::Attempt {
                number: 1,
                started: CREATED,
                duration_ms: 12,
                url: "https://example.com/hooks".to_owned(),
                request_headers: vec![("webhook-id".to_owned(), "msg_1".to_owned())],
                response_status: Some(503),
                response_headers: vec![("retry-after".to_owned(), "5".to_owned())],
                response_headers_omitted: 2,
                response_body: Some("busy".to_owned()),
                error: Some(AttemptError::Status),
                error_detail: None,
                cause: Cause::Schedule,
            },
            store::Attempt {
                number: 2,
                started: CREATED,
                duration_ms: 30_000,
                url: "https://example.com/hooks".to_owned(),
                request_headers: vec![],
                response_status: None,
                response_headers: vec![],
                response_headers_omitted: 0,
                response_body: None,
                error: Some(AttemptError::Timeout),
                error_detail: Some("no response within 30s".to_owned()),
                cause: Cause::Retry,
            },
        ];
        let detail = DeliveryDetailResponse {
            delivery: DeliveryResponse::from(&delivery(store::DeliveryStatus::Failed, None)),
            request_body: Some(r#"{"topic":"pdf.processed"}"#.to_owned()),
            attempts: attempts.iter().map(AttemptResponse::from).collect(),
        };
        let expected = concat!(
            r#","request_body":"{\"topic\":\"pdf.processed\"}","attempts":["#,
            r#"{"number":1,"started":"2021-05-20T09:23:53.123+00:00","duration_ms":12,"url":"https://example.com/hooks","#,
            r#""request_headers":[["webhook-id","msg_1"]],"response_status":503,"response_headers":[["retry-after","5"]],"#,
            r#""response_headers_omitted":2,"response_body":"busy","error":"status","error_detail":null,"cause":"schedule"},"#,
            r#"{"number":2,"started":"2021-05-20T09:23:53.123+00:00","duration_ms":30000,"url":"https://example.com/hooks","#,
            r#""request_headers":[],"response_status":null,"response_headers":[],"response_headers_omitted":0,"#,
            r#""response_body":null,"error":"timeout","error_detail":"no response within 30s","cause":"retry"}]}"#,
        );
        let failed = r#""status":"failed","attempts":1,"next_attempt":null,"#;
        check(&detail, &format!("{head}{failed}{tail}{expected}"));
        // `attempts` is there twice, the count and then the list, and reading keeps each where it belongs.
        let read: DeliveryDetailResponse = serde_json::from_str(&serde_json::to_string(&detail).unwrap()).unwrap();
        assert_eq!((read.delivery.attempts, read.attempts.len()), (1, 2));
        assert_eq!(read, detail);
    }

    #[test]
    fn request_bodies_read_what_the_api_accepts_and_write_only_what_is_set() {
        check(&CreateTenantRequest { id: "acme".to_owned(), name: None }, r#"{"id":"acme"}"#);
        check(
            &CreateTenantRequest { id: "acme".to_owned(), name: Some("Acme".to_owned()) },
            r#"{"id":"acme","name":"Acme"}"#,
        );
        check(&CreateKeyRequest::default(), "{}");
        check(
            &CreateTopicRequest {
                name: "quote.ready".to_owned(),
                description: String::new(),
                example: None,
                template: None,
            },
            r#"{"name":"quote.ready","description":""}"#,
        );
        check(
            &UpdateTopicRequest { description: None, deprecated: Some(true), example: None, template: None },
            r#"{"deprecated":true}"#,
        );
        check(&UpdateTopicRequest { example: Some(None), ..UpdateTopicRequest::default() }, r#"{"example":null}"#);
        let minimal = CreateEndpointRequest {
            url: "https://example.com/".to_owned(),
            topics: vec!["pdf.processed".to_owned()],
            description: String::new(),
            enabled: None,
            format: None,
            signing: None,
            retry_schedule: None,
            secret: None,
            headers: None,
        };
        check(&minimal, r#"{"url":"https://example.com/","topics":["pdf.processed"]}"#);
        let full = CreateEndpointRequest {
            description: "Ops".to_owned(),
            enabled: Some(false),
            format: Some("data".to_owned()),
            signing: Some(vec!["herald".to_owned()]),
            retry_schedule: Some(vec!["3m".to_owned()]),
            secret: Some("sec_x".to_owned()),
            ..minimal
        };
        check(
            &full,
            r#"{"url":"https://example.com/","topics":["pdf.processed"],"description":"Ops","enabled":false,"format":"data","signing":["herald"],"retry_schedule":["3m"],"secret":"sec_x"}"#,
        );

        // A patch tells a schedule set to null (back to the server's default) from one left out.
        let cases = [
            (UpdateEndpointRequest::default(), "{}"),
            (UpdateEndpointRequest { retry_schedule: Some(None), ..Default::default() }, r#"{"retry_schedule":null}"#),
            (
                UpdateEndpointRequest { retry_schedule: Some(Some(vec!["5m".to_owned()])), ..Default::default() },
                r#"{"retry_schedule":["5m"]}"#,
            ),
            (
                UpdateEndpointRequest { enabled: Some(true), secret: Some("sec_y".to_owned()), ..Default::default() },
                r#"{"enabled":true,"secret":"sec_y"}"#,
            ),
        ];
        for (patch, expected) in cases {
            check(&patch, expected);
            assert_eq!(serde_json::from_str::<UpdateEndpointRequest>(expected).unwrap(), patch, "{expected}");
        }

        // Unknown fields are refused, in every request body.
        assert!(serde_json::from_str::<CreateEndpointRequest>(r#"{"url":"u","topics":[],"extra":1}"#).is_err());
        assert!(serde_json::from_str::<UpdateEndpointRequest>(r#"{"secrets":"x"}"#).is_err());
        assert!(serde_json::from_str::<CreateKeyRequest>(r#"{"key":"x"}"#).is_err());
    }

    #[test]
    fn a_publish_keeps_data_and_meta_as_written() {
        let body = r#"{"topic":"pdf.processed","data":{"b":1,"a":2.50,"n":1e5},"meta":{"m":[]}}"#;
        let request: PublishRequest<'_> = serde_json::from_str(body).unwrap();
        assert_eq!(request.data.map(RawValue::get), Some(r#"{"b":1,"a":2.50,"n":1e5}"#));
        assert_eq!(request.meta.map(RawValue::get), Some(r#"{"m":[]}"#));
        assert_eq!(serde_json::to_string(&request).unwrap(), body);

        for (body, data, meta) in [
            (r#"{"topic":"t"}"#, None, None),
            (r#"{"topic":"t","data":null,"meta":null}"#, None, None),
            (r#"{"topic":"t","data":[]}"#, Some("[]"), None),
        ] {
            let request: PublishRequest<'_> = serde_json::from_str(body).unwrap();
            assert_eq!((request.data.map(RawValue::get), request.meta.map(RawValue::get)), (data, meta), "{body}");
        }
        assert!(serde_json::from_str::<PublishRequest<'_>>(r#"{"topic":"t","data":{},"extra":1}"#).is_err());
    }
}
