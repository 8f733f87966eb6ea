//! Hookline's durable store: topics, tenants, keys, endpoints, events, deliveries and their attempts, in the
//! embedded SQLite file or in a PostgreSQL database shared by several nodes.
//!
//! Architecture invariant: this is the only crate that contains SQL. The backend is chosen once, when the store
//! is opened; callers see one `Store` with typed records and never learn which database is underneath. Every
//! write resolves only once it is committed.

mod handoff;
pub mod model;
mod postgres;
mod rows;
mod shared;
mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;

use hookline_core::clock::{Clock, SystemClock};
use hookline_core::id::{DeliveryId, EndpointId, EventId, KeyId, TenantId};
use hookline_core::time::Timestamp;
use hookline_core::topic::TopicName;
use tokio::sync::Notify;

pub use crate::handoff::HandoffSink;
pub use crate::model::*;
use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the database at {location} is unreachable; it may be restarting, the request can be retried")]
    Unavailable {
        location: String,
        #[source]
        source: Option<tokio_postgres::Error>,
    },
    #[error("could not commit to the database")]
    Commit {
        /// Shared by every write of the group that failed to commit.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    #[error("the database file is in journal mode {mode:?} and could not be put in WAL mode")]
    NotWal { mode: String },
    #[error("the store is shut down")]
    Closed,
    #[error("could not start the database writer thread")]
    Thread {
        #[source]
        source: std::io::Error,
    },
    #[error("could not use the data directory {path:?}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the data directory {path:?} is in use by another hookline process; stop it or choose another --data-dir")]
    Locked { path: PathBuf },
    #[error("invalid database url {url:?}; {hint}")]
    InvalidUrl { url: String, hint: &'static str },
    #[error("{what} {id:?} already exists")]
    Conflict { what: &'static str, id: String },
    #[error("unknown topic {name:?}; create it first or pick one from GET /v1/topics")]
    UnknownTopic { name: String },
    #[error("topic {name:?} is deprecated and takes no new subscriptions")]
    DeprecatedTopic { name: String },
    #[error("stored data is damaged: {detail}")]
    Corrupt { detail: String },
}

impl StoreError {
    /// True when the database could not be reached (as opposed to a request it refused).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. } | StoreError::Closed)
    }
}

/// Which database holds the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// The embedded SQLite file `hookline.db` in this directory; one process at a time.
    Sqlite { data_dir: PathBuf },
    /// A PostgreSQL database that any number of nodes share.
    Postgres { url: String },
}

impl Database {
    /// Reads a database url: `postgres://…` / `postgresql://…`, or `sqlite://DIR` for the embedded store in DIR.
    pub fn parse(url: &str) -> Result<Database, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            postgres::parse_url(url)?;
            Ok(Database::Postgres { url: url.to_owned() })
        } else if let Some(dir) = url.strip_prefix("sqlite://") {
            if dir.is_empty() {
                return Err(StoreError::InvalidUrl { url: url.to_owned(), hint: "name a directory: sqlite://DIR" });
            }
            Ok(Database::Sqlite { data_dir: PathBuf::from(dir) })
        } else {
            Err(StoreError::InvalidUrl { url: url.to_owned(), hint: "expected postgres://… or sqlite://DIR" })
        }
    }
}

/// How the store may use the machine it runs on. Each backend takes what concerns it, so callers pass the same
/// options whichever database they open.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// The embedded store keeps its write-ahead log file under about this many bytes (a single larger commit, or
    /// a read that lasts, can take it past for a moment). PostgreSQL manages its own log.
    pub max_wal_bytes: u64,
    /// The store's only source of "now": creation times, due times of releases and retries, lease checks.
    pub clock: Arc<dyn Clock>,
}

impl StoreOptions {
    /// The default bound of the embedded store's write-ahead log.
    pub const DEFAULT_MAX_WAL_BYTES: u64 = 64 * 1024 * 1024;
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { max_wal_bytes: StoreOptions::DEFAULT_MAX_WAL_BYTES, clock: Arc::new(SystemClock) }
    }
}

/// Filters for listing events.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub topic: Option<TopicName>,
    pub after: Option<Timestamp>,
}

/// Filters for listing deliveries.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub endpoint: Option<EndpointId>,
    pub event: Option<EventId>,
    pub status: Option<DeliveryStatus>,
}

/// What a dispatcher asks of the queue: see `Store::claim_due`.
#[derive(Clone, Debug)]
pub struct Claim {
    pub now: Timestamp,
    pub lease_until: Timestamp,
    pub limit: u32,
    pub per_endpoint: u32,
    pub busy_endpoints: Vec<EndpointId>,
}

/// Where a list starts and how long it may be.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: u32,
}

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

/// The store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    work: Arc<Notify>,
    clock: Arc<dyn Clock>,
}

/// Calls the same method on whichever backend the store has.
macro_rules! on_backend {
    ($store:expr, $method:ident ( $($argument:expr),* )) => {
        match &$store.backend {
            Backend::Sqlite(backend) => backend.$method($($argument),*).await,
            Backend::Postgres(backend) => backend.$method($($argument),*).await,
        }
    };
}

impl Store {
    /// Opens the store, runs migrations and seeds the topic catalogue on first start.
    ///
    /// `node_dir` is this node's own directory, locked while the store is open. The embedded store keeps its file
    /// in the directory its `Database` names. On PostgreSQL the directory holds the node's identity, which its
    /// leases carry: a node restarted on the same directory releases the leases it held when it died, and the
    /// leases of a node that never comes back expire.
    pub async fn open(
        database: &Database,
        node_dir: &std::path::Path,
        options: &StoreOptions,
    ) -> Result<Store, StoreError> {
        let work = Arc::new(Notify::new());
        let backend = match database {
            Database::Sqlite { data_dir } => Backend::Sqlite(Arc::new(
                SqliteStore::open(data_dir, options.max_wal_bytes, Arc::clone(&options.clock)).await?,
            )),
            Database::Postgres { url } => Backend::Postgres(Arc::new(
                PostgresStore::open(url, node_dir, Arc::clone(&work), Arc::clone(&options.clock)).await?,
            )),
        };
        Ok(Store { backend, work, clock: Arc::clone(&options.clock) })
    }

    /// Lets go of this handle. When it is the last one, the embedded store commits every write still queued and
    /// empties its WAL file before this returns, so that a stopped server leaves nothing to replay. PostgreSQL
    /// has nothing to wait for.
    pub async fn close(self) {
        if let Backend::Sqlite(backend) = self.backend
            && let Ok(backend) = Arc::try_unwrap(backend)
        {
            backend.close().await;
        }
    }

    /// The clock the store was opened with, for the parts that work beside it.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// Where the data lives, for operators' messages (a PostgreSQL url without its password).
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Sqlite(backend) => backend.location().display().to_string(),
            Backend::Postgres(backend) => backend.location().to_owned(),
        }
    }

    /// Signalled whenever new work may be due (a publish, a manual retry, a re-enabled endpoint), on this node
    /// or, with PostgreSQL, on any node.
    pub fn work_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.work)
    }

    /// Answers when the database does: for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, ping())
    }

    /// Lets publishes on this process hand their deliveries straight to its dispatcher, as far as `handoff` has
    /// room (see `HandoffSink`). The embedded store does; on PostgreSQL every delivery goes through a claim, so that
    /// the nodes share the work, and `handoff` only keeps the dispatcher's count.
    pub fn accept_handoff(&self, handoff: Arc<dyn HandoffSink>) {
        match &self.backend {
            Backend::Sqlite(backend) => backend.accept_handoff(handoff),
            Backend::Postgres(_) => {}
        }
    }

    // ----- settings and keys -----

    /// Stores `hash` as the admin key's unless one is stored already (another node may have won the race), and
    /// returns the hash that is stored.
    pub async fn settle_admin_key_hash(&self, hash: String) -> Result<String, StoreError> {
        on_backend!(self, settle_admin_key_hash(hash))
    }

    /// The tenant whose key hashes to `hash`, if any.
    pub async fn tenant_for_key_hash(&self, hash: String) -> Result<Option<TenantId>, StoreError> {
        on_backend!(self, tenant_for_key_hash(hash))
    }

    /// Stores a tenant key's hash; `None` when the tenant does not exist.
    pub async fn insert_api_key(
        &self,
        tenant: TenantId,
        hash: String,
        name: String,
    ) -> Result<Option<ApiKey>, StoreError> {
        let now = self.clock.now();
        let key = ApiKey { id: KeyId::generate_at(now), tenant, name, created: now };
        on_backend!(self, insert_api_key(key, hash))
    }

    // ----- topics -----

    pub async fn list_topics(&self) -> Result<Vec<Topic>, StoreError> {
        on_backend!(self, list_topics())
    }

    pub async fn create_topic(&self, name: TopicName, description: String) -> Result<Topic, StoreError> {
        let topic = Topic { name, description, deprecated: false, created: self.clock.now() };
        on_backend!(self, create_topic(topic))
    }

    /// Changes a topic's description or deprecation; `None` when there is no such topic.
    pub async fn update_topic(
        &self,
        name: TopicName,
        description: Option<String>,
        deprecated: Option<bool>,
    ) -> Result<Option<Topic>, StoreError> {
        on_backend!(self, update_topic(name, description, deprecated))
    }

    // ----- tenants -----

    pub async fn create_tenant(&self, id: TenantId, name: String) -> Result<Tenant, StoreError> {
        on_backend!(self, create_tenant(Tenant { id, name, created: self.clock.now() }))
    }

    pub async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>, StoreError> {
        on_backend!(self, list_tenants(page))
    }

    pub async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        on_backend!(self, get_tenant(id))
    }

    /// Deletes a tenant with everything it owns; `false` when there was no such tenant.
    pub async fn delete_tenant(&self, id: TenantId) -> Result<bool, StoreError> {
        on_backend!(self, delete_tenant(id))
    }

    // ----- endpoints -----

    /// Creates an endpoint; `None` when the tenant does not exist.
    pub async fn create_endpoint(&self, new: NewEndpoint) -> Result<Option<Endpoint>, StoreError> {
        let now = self.clock.now();
        let endpoint = Endpoint {
            id: EndpointId::generate_at(now),
            tenant: new.tenant,
            url: new.url,
            topics: new.topics,
            description: new.description,
            enabled: new.enabled,
            format: new.format,
            signing: new.signing,
            secret: new.secret,
            retry_schedule: new.retry_schedule,
            created: now,
            updated: now,
        };
        on_backend!(self, create_endpoint(endpoint))
    }

    pub async fn list_endpoints(&self, tenant: TenantId, page: PageRequest) -> Result<Page<Endpoint>, StoreError> {
        on_backend!(self, list_endpoints(tenant, page))
    }

    pub async fn get_endpoint(&self, tenant: TenantId, id: EndpointId) -> Result<Option<Endpoint>, StoreError> {
        on_backend!(self, get_endpoint(tenant, id))
    }

    /// Applies `patch`; `None` when the endpoint does not exist for that tenant.
    pub async fn update_endpoint(
        &self,
        tenant: TenantId,
        id: EndpointId,
        patch: EndpointPatch,
    ) -> Result<Option<Endpoint>, StoreError> {
        let endpoint = on_backend!(self, update_endpoint(tenant, id, patch))?;
        if endpoint.as_ref().is_some_and(|endpoint| endpoint.enabled) {
            // Re-enabling an endpoint may make its held deliveries due.
            self.work.notify_one();
        }
        Ok(endpoint)
    }

    /// Deletes an endpoint and cancels its pending deliveries (the delivery log stays); `false` when unknown.
    pub async fn delete_endpoint(&self, tenant: TenantId, id: EndpointId) -> Result<bool, StoreError> {
        on_backend!(self, delete_endpoint(tenant, id))
    }

    // ----- events -----

    /// Stores an event and one delivery per enabled endpoint of its tenant subscribed to its topic, in one
    /// transaction. With an idempotency key already used by the tenant, returns the original event instead.
    /// `None` when the tenant does not exist.
    pub async fn publish(&self, new: NewEvent) -> Result<Option<Published>, StoreError> {
        let now = self.clock.now();
        let event = Event {
            id: EventId::generate_at(now),
            tenant: new.tenant,
            topic: new.topic,
            created: now,
            data: new.data,
            meta: new.meta,
            idempotency_key: new.idempotency_key,
        };
        let published = on_backend!(self, publish(event))?;
        if published.as_ref().is_some_and(|published| published.due > 0) {
            self.work.notify_one();
        }
        Ok(published)
    }

    pub async fn list_events(
        &self,
        tenant: TenantId,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<Event>, StoreError> {
        on_backend!(self, list_events(tenant, filter, page))
    }

    pub async fn get_event(&self, tenant: TenantId, id: EventId) -> Result<Option<Event>, StoreError> {
        on_backend!(self, get_event(tenant, id))
    }

    // ----- deliveries -----

    pub async fn list_deliveries(
        &self,
        tenant: TenantId,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        on_backend!(self, list_deliveries(tenant, filter, page))
    }

    /// A delivery with all its attempts, oldest first.
    pub async fn get_delivery(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Option<(Delivery, Vec<Attempt>)>, StoreError> {
        on_backend!(self, get_delivery(tenant, id))
    }

    /// Makes a delivery due now, whatever its state (a manual "send again"); `None` when unknown.
    pub async fn retry_delivery(&self, tenant: TenantId, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let delivery = on_backend!(self, retry_delivery(tenant, id))?;
        if delivery.is_some() {
            self.work.notify_one();
        }
        Ok(delivery)
    }

    // ----- the dispatcher's queue -----

    /// Leases up to `claim.limit` due deliveries of enabled endpoints until `claim.lease_until`, the earliest due
    /// first, at most `claim.per_endpoint` of one endpoint, none of `claim.busy_endpoints`.
    /// A claim moves a delivery's due time to the lease's end, so a lease its node never settles (the node
    /// died) makes the delivery due again then. No two claims take the same delivery while its lease holds.
    pub async fn claim_due(&self, claim: Claim) -> Result<Vec<ClaimedDelivery>, StoreError> {
        on_backend!(self, claim_due(claim))
    }

    /// Records attempts and moves their deliveries on, in one commit. An outcome whose lease was lost (another
    /// claim took the delivery) is dropped, so each attempt's outcome is recorded once. The batch is shared, so
    /// a caller can try it again after a failure without copying it.
    pub async fn record_outcomes(&self, outcomes: Arc<[AttemptOutcome]>) -> Result<usize, StoreError> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        on_backend!(self, record_outcomes(outcomes))
    }

    /// Gives leased deliveries back to the queue untouched (shutdown, or a claim beyond an endpoint's cap).
    pub async fn release(&self, leases: Vec<(DeliveryId, i64)>) -> Result<(), StoreError> {
        if leases.is_empty() {
            return Ok(());
        }
        on_backend!(self, release(leases))
    }

    /// When the next pending delivery of an enabled endpoint not in `busy_endpoints` falls due, if any.
    /// A leased delivery falls due when its lease expires.
    pub async fn next_due(&self, busy_endpoints: Vec<EndpointId>) -> Result<Option<Timestamp>, StoreError> {
        on_backend!(self, next_due(busy_endpoints))
    }
}
