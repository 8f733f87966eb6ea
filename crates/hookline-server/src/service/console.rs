//! The operators' console: their sessions, and what they see and do across tenants.

use hookline_core::health::{State, hour_of};
use hookline_core::id::{ConsoleSessionId, TenantId};
use hookline_core::portal::{Capability, new_token};
use hookline_core::secret::hash_api_key;
use hookline_store::{ConsoleSession, FailingEndpoint, HourCount, NewPortalSession, PortalSession, QueueSummary};

use super::{Service, ServiceError};

/// Pending deliveries are counted up to this many; more shows as "more than".
pub const QUEUE_COUNT_CAP: u32 = 100_000;

/// The queue and how the installation does.
pub struct Overview {
    pub queue: QueueSummary,
    /// Every endpoint's attempts per hour over the last day.
    pub hours: Vec<HourCount>,
    /// Endpoints failing now or disabled after failing, with the state shown, longest failing first.
    pub failing: Vec<(FailingEndpoint, State)>,
}

impl Service {
    /// Starts an operator's session (the caller has checked the admin key, whose hash is `key_hash`): its token
    /// and the session.
    pub async fn start_console_session(&self, key_hash: &str) -> Result<(String, ConsoleSession), ServiceError> {
        let token = new_token("hcs_");
        let session = NewPortalSession {
            token_hash: hash_api_key(&token),
            csrf: new_token(""),
            lifetime: self.settings.portal_session_lifetime,
        };
        let started = self.store.create_console_session(session, key_hash.to_owned()).await?;
        Ok((token, started))
    }

    /// The live operator's session of a token, if any, signed in with the admin key whose hash is `key_hash` (a
    /// session of a former key is over).
    pub async fn console_session(&self, token: &str, key_hash: &str) -> Result<Option<ConsoleSession>, ServiceError> {
        let session = self.store.console_session(hash_api_key(token), self.settings.portal_session_idle).await?;
        Ok(session.filter(|session| session.key_hash == key_hash))
    }

    pub async fn end_console_session(&self, id: ConsoleSessionId) -> Result<(), ServiceError> {
        Ok(self.store.end_console_session(id).await?)
    }

    /// A portal session of `tenant` for an operator (or a tenant key), with `capabilities`, labelled `user`: its
    /// token and the session, or `None` when the tenant does not exist.
    pub async fn open_portal(
        &self,
        tenant: TenantId,
        capabilities: Vec<Capability>,
        user: Option<String>,
    ) -> Result<Option<(String, PortalSession)>, ServiceError> {
        let token = new_token("hps_");
        let session = NewPortalSession {
            token_hash: hash_api_key(&token),
            csrf: new_token(""),
            lifetime: self.settings.portal_session_lifetime,
        };
        let started = self.store.create_portal_session(tenant, capabilities, user, session).await?;
        Ok(started.map(|session| (token, session)))
    }

    /// The queue, the last day's hours and the endpoints in trouble.
    pub async fn console_overview(&self) -> Result<Overview, ServiceError> {
        let queue = self.store.queue_summary(QUEUE_COUNT_CAP).await?;
        let since = hour_of(self.now()).saturating_sub(std::time::Duration::from_secs(23 * 3600));
        let hours = self.store.installation_hours(since).await?;
        let failing = self.endpoints_in_trouble().await?;
        Ok(Overview { queue, hours, failing })
    }

    /// Endpoints failing now or disabled after failing, with the state shown, longest failing first.
    pub async fn endpoints_in_trouble(&self) -> Result<Vec<(FailingEndpoint, State)>, ServiceError> {
        Ok(self
            .store
            .failing_endpoints(200)
            .await?
            .into_iter()
            .map(|failing| {
                let state = failing.health.state(failing.enabled, &self.settings.health);
                (failing, state)
            })
            .filter(|(_, state)| *state != State::Healthy)
            .collect())
    }

    /// The tenant an event, delivery or endpoint id belongs to.
    pub async fn tenant_of(&self, id: &str) -> Result<Option<TenantId>, ServiceError> {
        Ok(self.store.tenant_of(id.to_owned()).await?)
    }
}
