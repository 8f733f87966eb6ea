//! The delivery log and sending a delivery again.

use hookline_core::body::{EventParts, build_body};
use hookline_core::id::{DeliveryId, TenantId};
use hookline_core::time::Timestamp;
use hookline_core::topic::TopicName;
use hookline_store::{Answer, Attempt, Delivery, DeliveryFilter, DeliveryStatus, Page, PageRequest, Retried};

use super::{Service, ServiceError};

/// One delivery with every attempt, oldest first, and the exact body it sends (`None` once its event is gone).
pub struct DeliveryDetail {
    pub delivery: Delivery,
    pub attempts: Vec<Attempt>,
    pub request_body: Option<String>,
}

/// A delivery list's filters as text, as a query string or a form gives them; an empty one filters nothing.
#[derive(Clone, Copy, Default)]
pub struct FilterText<'a> {
    pub endpoint: &'a str,
    pub event: &'a str,
    pub status: &'a str,
    pub topic: &'a str,
    /// `2xx`, `3xx`, `4xx`, `5xx` or `none`.
    pub answer: &'a str,
    /// RFC 3339 times (or `YYYY-MM-DDTHH:MM`, as a browser's date-time field sends it, taken as UTC).
    pub since: &'a str,
    pub until: &'a str,
}

/// A time a filter gives: RFC 3339, or a browser's local date-time field read as UTC.
fn filter_time(field: &str, text: &str) -> Result<Option<Timestamp>, ServiceError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = Timestamp::parse_rfc3339(text)
        .or_else(|_| Timestamp::parse_rfc3339(&format!("{text}:00Z")))
        .or_else(|_| Timestamp::parse_rfc3339(&format!("{text}Z")));
    parsed.map(Some).map_err(|_| ServiceError::Malformed {
        code: "invalid_query",
        detail: format!("\"{field}\" {text:?} is not a time; give an RFC 3339 time such as 2026-12-06T16:00:00Z"),
    })
}

impl Service {
    /// The filters `text` gives, each checked.
    pub fn delivery_filter(&self, text: FilterText<'_>) -> Result<DeliveryFilter, ServiceError> {
        let invalid = |detail: String| ServiceError::Malformed { code: "invalid_query", detail };
        let given = |value: &str| Some(value.trim().to_owned()).filter(|value| !value.is_empty());
        let since = filter_time("since", text.since)?;
        let until = filter_time("until", text.until)?;
        if let (Some(since), Some(until)) = (since, until)
            && until <= since
        {
            return Err(invalid(format!(
                "\"until\" ({}) is not after \"since\" ({}); give a window that starts before it ends",
                until.to_rfc3339(),
                since.to_rfc3339()
            )));
        }
        Ok(DeliveryFilter {
            endpoint: given(text.endpoint)
                .map(|id| id.parse().map_err(|error: hookline_core::id::IdError| invalid(error.to_string())))
                .transpose()?,
            event: given(text.event)
                .map(|id| id.parse().map_err(|error: hookline_core::id::IdError| invalid(error.to_string())))
                .transpose()?,
            status: given(text.status)
                .map(|status| {
                    DeliveryStatus::parse(&status).ok_or_else(|| {
                        invalid(format!("unknown status {status:?}; use pending, succeeded, failed or cancelled"))
                    })
                })
                .transpose()?,
            topic: given(text.topic)
                .map(|topic| {
                    topic.parse::<TopicName>().map_err(|error| invalid(format!("\"topic\" {topic:?}: {error}")))
                })
                .transpose()?,
            answer: given(text.answer)
                .map(|answer| {
                    Answer::parse(&answer)
                        .ok_or_else(|| invalid(format!("unknown answer {answer:?}; use 2xx, 3xx, 4xx, 5xx or none")))
                })
                .transpose()?,
            since,
            until,
        })
    }

    pub async fn list_deliveries(
        &self,
        tenant: TenantId,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<Delivery>, ServiceError> {
        Ok(self.store.list_deliveries(tenant, filter, page).await?)
    }

    pub async fn delivery(&self, tenant: TenantId, id: DeliveryId) -> Result<DeliveryDetail, ServiceError> {
        let Some((delivery, attempts)) = self.store.get_delivery(tenant.clone(), id.clone()).await? else {
            return Err(self.missing("delivery", &id, id.time()).await);
        };
        let event = self.store.get_event(tenant, delivery.event.clone()).await?;
        let request_body = event.map(|event| {
            let parts = EventParts {
                topic: event.topic.as_str(),
                created: event.created,
                data: &event.data,
                meta: event.meta.as_deref(),
            };
            build_body(delivery.format, delivery.escape, parts)
        });
        Ok(DeliveryDetail { delivery, attempts, request_body })
    }

    /// Makes a delivery due now, whatever its state; one in flight is left to its attempt. A cancelled delivery
    /// whose endpoint was deleted cannot be sent again.
    pub async fn retry_delivery(&self, tenant: TenantId, id: DeliveryId) -> Result<Delivery, ServiceError> {
        match self.store.retry_delivery(tenant, id.clone()).await? {
            Some(Retried::Queued(found) | Retried::InFlight(found)) => Ok(found),
            Some(Retried::EndpointDeleted(_)) => Err(ServiceError::Conflict {
                code: "endpoint_deleted",
                detail: format!("delivery {id} cannot be sent again: its endpoint was deleted, which cancelled it"),
            }),
            None => Err(self.missing("delivery", &id, id.time()).await),
        }
    }
}
