//! Recovering an endpoint: its failed deliveries of a window of time queued again, in the background.

use std::time::Duration;

use hookline_core::id::{EndpointId, RecoveryId, TenantId};
use hookline_core::time::Timestamp;
use hookline_store::Recovery;

use super::{Service, ServiceError};

/// How far ahead of the server's clock `until` may be (clocks differ a little between machines).
const CLOCK_SLACK: Duration = Duration::from_secs(60);

impl Service {
    /// Starts a recovery of `endpoint`'s failed deliveries made from `since` up to `until` (now when left out),
    /// both RFC 3339 times; answers at once with how many there are.
    pub async fn recover_endpoint(
        &self,
        tenant: TenantId,
        endpoint: EndpointId,
        since: &str,
        until: Option<&str>,
    ) -> Result<Recovery, ServiceError> {
        let now = self.store.clock().now();
        let time = |field: &str, text: &str| {
            Timestamp::parse_rfc3339(text).map_err(|error| {
                ServiceError::invalid("invalid_window", format!("\"{field}\" {text:?} is not a time: {error}"))
            })
        };
        let since = time("since", since)?;
        let until = until.map(|until| time("until", until)).transpose()?.unwrap_or(now);
        if until <= since {
            return Err(ServiceError::invalid(
                "invalid_window",
                format!(
                    "\"until\" ({}) is not after \"since\" ({}); give a window that starts before it ends",
                    until.to_rfc3339(),
                    since.to_rfc3339()
                ),
            ));
        }
        if until > now.saturating_add(CLOCK_SLACK) {
            return Err(ServiceError::invalid(
                "invalid_window",
                format!("\"until\" ({}) is in the future; leave it out to recover up to now", until.to_rfc3339()),
            ));
        }
        self.store
            .start_recovery(tenant, endpoint.clone(), since, until)
            .await?
            .ok_or_else(|| ServiceError::not_found("endpoint", &endpoint))
    }

    /// Recovers `endpoints` (every endpoint of the tenant when `None`) over one window: how many failed deliveries
    /// are being sent again, and the error that stopped it if one did (the recoveries started before it go on).
    pub async fn recover_endpoints(
        &self,
        tenant: TenantId,
        endpoints: Option<Vec<EndpointId>>,
        since: &str,
        until: Option<&str>,
    ) -> (u64, Option<ServiceError>) {
        let endpoints = match endpoints {
            Some(endpoints) => endpoints,
            None => match self.all_endpoints(tenant.clone()).await {
                Ok(all) => all.into_iter().map(|endpoint| endpoint.id).collect(),
                Err(error) => return (0, Some(error)),
            },
        };
        let mut total = 0;
        for endpoint in endpoints {
            match self.recover_endpoint(tenant.clone(), endpoint, since, until).await {
                Ok(recovery) => total += recovery.total,
                Err(error) => return (total, Some(error)),
            }
        }
        (total, None)
    }

    pub async fn recovery(&self, tenant: TenantId, id: RecoveryId) -> Result<Recovery, ServiceError> {
        self.store.get_recovery(tenant, id.clone()).await?.ok_or_else(|| ServiceError::not_found("recovery", &id))
    }
}
