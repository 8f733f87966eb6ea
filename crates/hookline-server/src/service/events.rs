//! Publishing (durable before it answers) and reading back what was published.

use hookline_core::attempt::Origin;
use hookline_core::id::{EndpointId, EventId, TenantId};
use hookline_core::json::{Escape, canonicalize};
use hookline_core::topic::TopicName;
use hookline_store::{DeliveryFilter, Event, EventFilter, NewEvent, Page, PageRequest, Published, Route};
use serde_json::value::RawValue;

use super::{Service, ServiceError};

/// An event as a publisher sent it: the JSON of `data` and `meta` exactly as written.
pub struct Publication<'a> {
    pub topic: &'a str,
    pub data: Option<&'a RawValue>,
    pub meta: Option<&'a RawValue>,
    /// The same key never makes a second event of the tenant; sent again with the same event, it gets the first
    /// answer.
    pub idempotency_key: Option<String>,
}

impl Service {
    /// Stores the event and a delivery for each subscribed endpoint, in one transaction. A key used before
    /// answers with the event it made, if this is the same event, and is refused if it is not.
    pub async fn publish(&self, tenant: TenantId, publication: Publication<'_>) -> Result<Published, ServiceError> {
        let topic: TopicName = publication.topic.parse().map_err(|error: hookline_core::topic::TopicNameError| {
            ServiceError::invalid("invalid_topic", error.to_string())
        })?;
        if hookline_core::topic::is_operational(topic.as_str()) {
            return Err(ServiceError::invalid(
                "reserved_topic",
                format!(
                    "{topic} is an operational event that Hookline publishes itself about your endpoints; \
                     subscribe an endpoint to it, or publish under a topic of your own"
                ),
            ));
        }
        let Some(data) = publication.data else {
            return Err(ServiceError::Malformed {
                code: "missing_data",
                detail: "the event needs a \"data\" field holding the resource as JSON".to_owned(),
            });
        };
        // The JSON is already checked; canonicalising keeps key order and number literals exactly.
        let malformed = |error: hookline_core::json::JsonError| ServiceError::Malformed {
            code: "invalid_json",
            detail: error.to_string(),
        };
        let data = canonicalize(data.get().as_bytes(), Escape::Utf8).map_err(malformed)?;
        let meta = match publication.meta {
            Some(meta) if meta.get() != "null" => {
                Some(canonicalize(meta.get().as_bytes(), Escape::Utf8).map_err(malformed)?)
            }
            _ => None,
        };
        // A key used again must come with the same event: kept only then, to compare with what the key made.
        let asked = publication.idempotency_key.as_ref().map(|_| (topic.clone(), data.clone(), meta.clone()));
        let idempotency_key = publication.idempotency_key;
        let new = NewEvent { tenant: tenant.clone(), topic, data, meta, idempotency_key, route: Route::default() };
        let Some(published) = self.store.publish(new).await? else {
            return Err(ServiceError::TenantNotFound { tenant: tenant.to_string() });
        };
        if published.replayed
            && let Some((topic, data, meta)) = asked
            && (published.event.topic != topic || published.event.data != data || published.event.meta != meta)
        {
            let key = published.event.idempotency_key.as_deref().unwrap_or_default();
            return Err(ServiceError::invalid(
                "idempotency_key_reused",
                format!(
                    "Idempotency-Key {key:?} already made event {} with another topic, data or meta; send the same \
                     event again to get its answer, or use a new key for a new event",
                    published.event.id
                ),
            ));
        }
        Ok(published)
    }

    pub async fn list_events(
        &self,
        tenant: TenantId,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<Event>, ServiceError> {
        Ok(self.store.list_events(tenant, filter, page).await?)
    }

    pub async fn event(&self, tenant: TenantId, id: EventId) -> Result<Event, ServiceError> {
        match self.store.get_event(tenant, id.clone()).await? {
            Some(found) => Ok(found),
            None => Err(self.missing("event", &id, id.time()).await),
        }
    }
}

/// What a test event made: the event and the one delivery to watch.
pub struct TestSent {
    pub event: Event,
    pub delivery: hookline_store::Delivery,
}

impl Service {
    /// Sends one event of `topic` to `endpoint` alone, marked as a test in its `meta` and its delivery: `data`,
    /// or the topic's example. It is delivered, signed, retried and logged like any other.
    pub async fn send_test_event(
        &self,
        tenant: TenantId,
        endpoint: EndpointId,
        topic: &str,
        data: Option<&RawValue>,
    ) -> Result<TestSent, ServiceError> {
        let found = self.endpoint(tenant.clone(), endpoint.clone()).await?;
        if !found.enabled {
            return Err(ServiceError::Conflict {
                code: "endpoint_disabled",
                detail: format!("endpoint {endpoint} is disabled; enable it to send it a test event"),
            });
        }
        let topic: TopicName = topic.parse().map_err(|error: hookline_core::topic::TopicNameError| {
            ServiceError::invalid("invalid_topic", error.to_string())
        })?;
        if !found.topics.contains(&topic) {
            let topics: Vec<&str> = found.topics.iter().map(TopicName::as_str).collect();
            return Err(ServiceError::invalid(
                "topic_not_subscribed",
                format!(
                    "endpoint {endpoint} does not receive {topic}; test it with one of its topics: {}",
                    topics.join(", ")
                ),
            ));
        }
        let data = match data {
            Some(data) => canonicalize(data.get().as_bytes(), Escape::Utf8)
                .map_err(|error| ServiceError::Malformed { code: "invalid_json", detail: error.to_string() })?,
            None => self.store.get_topic(topic.clone()).await?.and_then(|topic| topic.example).ok_or_else(|| {
                ServiceError::invalid(
                    "no_example",
                    format!(
                        "topic {topic} has no example to send; send \"data\" with the test, or give the topic an \
                         example (PATCH /v1/topics/{topic})"
                    ),
                )
            })?,
        };
        let route = Route { only: Some(endpoint.clone()), origin: Origin::Test };
        let new = NewEvent {
            tenant: tenant.clone(),
            topic,
            data,
            meta: Some(r#"{"test":true}"#.to_owned()),
            idempotency_key: None,
            route,
        };
        let published = self
            .store
            .publish(new)
            .await?
            .ok_or_else(|| ServiceError::TenantNotFound { tenant: tenant.to_string() })?;
        let filter = DeliveryFilter { event: Some(published.event.id.clone()), ..DeliveryFilter::default() };
        let page = self.store.list_deliveries(tenant, filter, PageRequest { cursor: None, limit: 1 }).await?;
        // The endpoint was disabled, deleted or unsubscribed between the check and the write.
        let delivery = page.data.into_iter().next().ok_or_else(|| ServiceError::Conflict {
            code: "endpoint_changed",
            detail: format!("endpoint {endpoint} changed while the test was sent, and it got no delivery; try again"),
        })?;
        Ok(TestSent { event: published.event, delivery })
    }
}

impl Service {
    /// Sends an event again, now, to every enabled endpoint of the tenant subscribed to its topic, or to the
    /// listed ones, each of which must be; the new deliveries say they are a resend.
    pub async fn resend_event(
        &self,
        tenant: TenantId,
        id: EventId,
        endpoints: Option<Vec<String>>,
    ) -> Result<Vec<hookline_store::Delivery>, ServiceError> {
        let event = self.event(tenant.clone(), id.clone()).await?;
        let only = match endpoints {
            None => None,
            Some(listed) if listed.is_empty() => {
                return Err(ServiceError::invalid(
                    "no_endpoints",
                    "\"endpoints\" is empty; leave it out to send the event to every endpoint subscribed to its topic",
                ));
            }
            Some(listed) => {
                let mut only = Vec::with_capacity(listed.len());
                for text in listed {
                    let endpoint: EndpointId = text.parse().map_err(|_| {
                        ServiceError::invalid(
                            "invalid_endpoint",
                            format!("{text:?} is not an endpoint id; they look like ep_…"),
                        )
                    })?;
                    let found = self.endpoint(tenant.clone(), endpoint.clone()).await?;
                    if !found.enabled || !found.topics.contains(&event.topic) {
                        return Err(ServiceError::invalid(
                            "endpoint_not_subscribed",
                            format!(
                                "endpoint {endpoint} is {} {}; an event goes again only to enabled endpoints subscribed to its topic",
                                if found.enabled { "not subscribed to" } else { "disabled, and so takes no" },
                                event.topic
                            ),
                        ));
                    }
                    if !only.contains(&endpoint) {
                        only.push(endpoint);
                    }
                }
                Some(only)
            }
        };
        match self.store.resend_event(tenant, id.clone(), only).await? {
            Some(made) => Ok(made),
            // Purged or removed between the read and the write.
            None => Err(self.missing("event", &id, id.time()).await),
        }
    }
}
