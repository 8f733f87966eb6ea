//! The application layer: each thing a platform or its customers can do with their webhooks (create, change or
//! delete an endpoint, publish, send a delivery again, …) as one method of [`Service`], with its checks and its
//! typed errors. The JSON API's handlers, and next the portal's pages, only translate HTTP to these and back, so
//! that a rule is written once whoever asks.
//!
//! Architecture invariant: nothing here knows HTTP (no axum, no status codes). A caller is already
//! authenticated and names the tenant it may act for; the API decides how each [`ServiceError`] is answered.

mod console;
mod deliveries;
mod endpoints;
mod events;
mod portal;
mod recoveries;
mod topics;

use std::sync::Arc;
use std::time::Duration;

use hookline_core::time::Timestamp;
use hookline_store::{Store, StoreError};

pub use self::console::{Overview, QUEUE_COUNT_CAP};
pub use self::deliveries::{DeliveryDetail, FilterText};
pub use self::events::{Publication, TestSent};
pub use self::portal::PortalLinkMade;

/// The use cases, over the store and the settings they apply.
#[derive(Clone)]
pub struct Service {
    store: Store,
    settings: Arc<Settings>,
}

/// The parts of the configuration the use cases apply.
#[derive(Debug)]
pub struct Settings {
    /// The schemes of a new endpoint that names none.
    pub default_signing: Vec<hookline_core::Scheme>,
    /// Where endpoints may point: an address written in a URL is checked when it is set.
    pub target_guard: hookline_dispatch::TargetGuard,
    /// How long events are kept, for the answer about one that was purged.
    pub retention: Option<Duration>,
    /// When an endpoint's run of failures makes it failing.
    pub health: hookline_core::health::Policy,
    /// How long a portal session lasts unused, and at most.
    pub portal_session_idle: Duration,
    pub portal_session_lifetime: Duration,
    /// The schedule of an endpoint without one of its own.
    pub default_schedule: hookline_core::retry::RetrySchedule,
}

/// Why a use case did not do what was asked. Each says what to fix, in a sentence.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request cannot be read at all (no data, JSON that is not JSON).
    #[error("{detail}")]
    Malformed { code: &'static str, detail: String },
    /// The request is readable but breaks a rule (an invalid URL, an unknown scheme).
    #[error("{detail}")]
    Invalid { code: &'static str, detail: String },
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("tenant {tenant:?} does not exist")]
    TenantNotFound { tenant: String },
    /// It dates from before what retention has purged.
    #[error("{detail}")]
    Purged { detail: String },
    /// The state of what it acts on forbids it.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError {
    fn invalid(code: &'static str, detail: impl Into<String>) -> ServiceError {
        ServiceError::Invalid { code, detail: detail.into() }
    }

    fn not_found(what: &'static str, id: impl ToString) -> ServiceError {
        ServiceError::NotFound { what, id: id.to_string() }
    }
}

impl Service {
    pub fn new(store: Store, settings: Settings) -> Service {
        Service { store, settings: Arc::new(settings) }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Now, by the store's clock (a test's manual clock, or the system's).
    /// The retry schedule of an endpoint without one of its own.
    pub fn default_schedule(&self) -> hookline_core::retry::RetrySchedule {
        self.settings.default_schedule.clone()
    }

    pub fn now(&self) -> hookline_core::time::Timestamp {
        self.store.clock().now()
    }

    /// Why an event or delivery made at `created` is not stored: purged, when it dates from before what
    /// retention has purged (if it ever existed), else unknown.
    async fn missing(&self, what: &'static str, id: impl ToString, created: Timestamp) -> ServiceError {
        let id = id.to_string();
        match self.store.purged_before().await {
            Ok(Some(purged_before)) if created < purged_before => {
                let kept = self.settings.retention.map(hookline_core::duration::format_duration);
                let kept = kept.map(|kept| format!(" (the retention period is {kept})")).unwrap_or_default();
                ServiceError::Purged {
                    detail: format!(
                        "{what} {id:?} was created at {}, before what retention has purged{kept}; it is gone with its \
                         delivery log",
                        created.to_rfc3339()
                    ),
                }
            }
            Ok(_) => ServiceError::NotFound { what, id },
            Err(error) => ServiceError::Store(error),
        }
    }
}
