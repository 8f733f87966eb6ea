//! Publishing (durable before it answers) and reading back what was published.

use hookline_core::id::{EventId, TenantId};
use hookline_core::json::{Escape, canonicalize};
use hookline_core::topic::TopicName;
use hookline_store::{Event, EventFilter, NewEvent, Page, PageRequest, Published};
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
        let new = NewEvent { tenant: tenant.clone(), topic, data, meta, idempotency_key: publication.idempotency_key };
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
