//! The delivery log and sending a delivery again.

use hookline_core::body::{EventParts, build_body};
use hookline_core::id::{DeliveryId, TenantId};
use hookline_store::{Attempt, Delivery, DeliveryFilter, Page, PageRequest, Retried};

use super::{Service, ServiceError};

/// One delivery with every attempt, oldest first, and the exact body it sends (`None` once its event is gone).
pub struct DeliveryDetail {
    pub delivery: Delivery,
    pub attempts: Vec<Attempt>,
    pub request_body: Option<String>,
}

impl Service {
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
