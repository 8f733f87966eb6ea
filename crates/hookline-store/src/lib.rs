//! Hookline's durable store: topics, tenants, keys, endpoints, events, deliveries and their attempts, in the
//! embedded SQLite file or in a PostgreSQL database shared by several nodes.
//!
//! Architecture invariant: this is the only crate that contains SQL. The backend is chosen once, when the store
//! is opened; callers see one `Store` with typed records and never learn which database is underneath. Every
//! write resolves only once it is committed.

//!
//! The code is grouped by aggregate: each module holds one part of the domain with its records, its rules and its
//! SQL, written once for both databases where their dialects agree (see `sql`), and side by side where they do
//! not. `sqlite` and `postgres` hold only what makes each backend run: connections, the writer thread, the pool,
//! schemas, the listener.

/// Runs `$body` as one write on whichever backend the store has: on SQLite in the writer's next group commit,
/// in a savepoint of its own; on PostgreSQL in a transaction. Inside, `$sql` is the backend's `Sql`; the body is
/// written once and compiled for each.
macro_rules! writing {
    ($store:expr, |$sql:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite(backend) => {
                backend.write(move |$sql| $crate::sql::ready(async move { $body })).await
            }
            $crate::Backend::Postgres(backend) => $crate::postgres::in_transaction!(backend, |$sql| $body),
        }
    };
}

/// Runs `$body` as one read on whichever backend the store has: on SQLite on a reader connection, on PostgreSQL
/// on a pooled connection outside any transaction.
macro_rules! reading {
    ($store:expr, |$sql:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite(backend) => {
                backend.read(move |$sql| $crate::sql::ready(async move { $body })).await
            }
            $crate::Backend::Postgres(backend) => $crate::postgres::in_session!(backend, |$sql| $body),
        }
    };
}

mod attempts;
mod console;
mod deletions;
mod deliveries;
mod endpoints;
mod events;
mod handoff;
mod health;
mod jobs;
mod portal;
mod postgres;
mod recoveries;
mod retention;
mod rows;
mod schema;
pub mod scratch;
mod sql;
mod sqlite;
mod tenants;
mod topics;

use std::path::PathBuf;
use std::sync::Arc;

use hookline_core::clock::{Clock, SystemClock};

pub use hookline_core::attempt::AttemptError;

pub use crate::attempts::Attempt;
pub use crate::console::{ConsoleSession, FailingEndpoint, QueueSummary};
pub use crate::deletions::Removed;
pub use crate::deliveries::{
    Answer, AttemptOutcome, Busy, Claim, ClaimedDelivery, Delivery, DeliveryFilter, DeliveryStatus, NextStep, Retried,
};
pub use crate::endpoints::{
    DISABLED_BY_HAND, Disabled, Endpoint, EndpointPatch, NewEndpoint, PreviousSecret, Rotation,
};
pub use crate::events::{Event, EventFilter, NewEvent, Published, Route};
pub use crate::handoff::HandoffSink;
pub use crate::health::{EndpointStats, HourCount, Notice};
pub use crate::portal::{NewPortalLink, NewPortalSession, PortalSession};
use crate::postgres::PostgresStore;
pub use crate::recoveries::Recovery;
pub use crate::retention::Purged;
pub use crate::sql::{Page, PageRequest};
use crate::sqlite::SqliteStore;
pub use crate::sqlite::backup::{BackedUp, backup};
pub use crate::sqlite::vacuum::{Vacuumed, vacuum};
pub use crate::tenants::{ApiKey, Principal, Tenant};
pub use crate::topics::{Topic, TopicPatch};

/// Longer than any lease a dispatcher takes (three delivery timeouts of at most five minutes, and ten seconds):
/// at start-up only pending deliveries due within this of now can hold a lease that a previous run left, since a
/// claim makes a delivery due again when its lease runs out. So releasing those leases reads the deliveries due
/// soon, through the due index, and not every one waiting days for a retry (a cold start read each of 48,325 of
/// them: 6 s). A lease left past it, by a clock that jumped back, still runs out on its own.
pub const LEASE_HORIZON: std::time::Duration = std::time::Duration::from_secs(16 * 60);

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
    #[error("the store is shut down")]
    Closed,
    #[error("{what} {id:?} is being deleted; its id is free again once that is done")]
    BeingDeleted { what: &'static str, id: String },
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

/// Why the store could not be opened. Once open, its operations fail with `StoreError`.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the database file is in journal mode {mode:?} and could not be put in WAL mode")]
    NotWal { mode: String },
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
    #[error("there is no store in {path:?}: the embedded store is the file hookline.db in the data directory")]
    NoStore { path: PathBuf },
    #[error("{path:?} already exists; a backup never overwrites a file, so give a new path")]
    BackupExists { path: PathBuf },
    #[error("could not write the backup at {path:?}")]
    BackupTarget {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the backup stopped before copying every page ({detail}); try again")]
    BackupIncomplete { detail: String },
    #[error("invalid database url {url:?}; {hint}")]
    InvalidUrl { url: String, hint: &'static str },
    #[error(
        "the store's schema is version {found}, from a later release of hookline than this one (which knows {known}); \
         run that release or a later one"
    )]
    LaterSchema { found: i64, known: usize },
    /// Migrating the schema, seeding the catalogue or releasing a previous run's leases failed.
    #[error("could not prepare the database")]
    Prepare(#[from] StoreError),
}

impl From<rusqlite::Error> for OpenError {
    fn from(error: rusqlite::Error) -> Self {
        OpenError::Prepare(StoreError::Sqlite(error))
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
    pub fn parse(url: &str) -> Result<Database, OpenError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            postgres::parse_url(url)?;
            Ok(Database::Postgres { url: url.to_owned() })
        } else if let Some(dir) = url.strip_prefix("sqlite://") {
            if dir.is_empty() {
                return Err(OpenError::InvalidUrl { url: url.to_owned(), hint: "name a directory: sqlite://DIR" });
            }
            Ok(Database::Sqlite { data_dir: PathBuf::from(dir) })
        } else {
            Err(OpenError::InvalidUrl { url: url.to_owned(), hint: "expected postgres://… or sqlite://DIR" })
        }
    }
}

/// What one look of `Store::vacuum_churned` did to a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableUpkeep {
    pub table: String,
    /// The dead rows it had, when it was vacuumed.
    pub dead: Option<u64>,
    /// Whether its statistics were refreshed.
    pub analyzed: bool,
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
    /// The most deliveries a list of the pending or the succeeded reads for one page (see `list_deliveries`).
    pub list_scan: u32,
    /// On PostgreSQL, the span of time each partition of events, deliveries and attempts covers (at least ten
    /// seconds): retention drops a partition once all of it is past the horizon, so an event lives at most this
    /// much past the retention period. An eighth of it suits (`partition_width_for`).
    pub partition_width: std::time::Duration,
    /// When a run of an endpoint's failures is told, and when it disables the endpoint.
    pub health: hookline_core::health::Policy,
}

impl StoreOptions {
    /// The default bound of the embedded store's write-ahead log.
    pub const DEFAULT_MAX_WAL_BYTES: u64 = 64 * 1024 * 1024;
    /// The default of `list_scan`: a page of a list reads no more than a few milliseconds' worth.
    pub const DEFAULT_LIST_SCAN: u32 = 2_000;

    /// The partition width for a retention period: an eighth of it, so that about nine partitions of each table
    /// are kept, but at most thirty days (also when everything is kept): a query that no id bounds (a claim, an
    /// idempotency key's lookup) looks into every partition, so a store makes a dozen a year, not hundreds, and a
    /// long retention (a year) still drops its oldest month at a time.
    pub fn partition_width_for(retention: Option<std::time::Duration>) -> std::time::Duration {
        let month = std::time::Duration::from_secs(30 * 86_400);
        retention.map_or(month, |retention| (retention / 8).min(month))
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_wal_bytes: StoreOptions::DEFAULT_MAX_WAL_BYTES,
            clock: Arc::new(SystemClock),
            list_scan: StoreOptions::DEFAULT_LIST_SCAN,
            partition_width: StoreOptions::partition_width_for(None),
            health: hookline_core::health::Policy::default(),
        }
    }
}

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<SqliteBackend>),
    Postgres(Arc<PostgresBackend>),
}

/// The embedded store's machinery and, beside it, what the aggregates keep on it: the endpoints as its writer
/// last read them. Machinery below, aggregates above: the backend module knows nothing of either.
pub(crate) struct SqliteBackend {
    store: SqliteStore,
    pub(crate) endpoints: Arc<endpoints::EndpointCache>,
    /// The local dispatcher, once it runs: publishes hand it the deliveries it has room for.
    handoff: std::sync::Mutex<Option<Arc<dyn HandoffSink>>>,
}

impl SqliteBackend {
    pub(crate) fn handoff(&self) -> Option<Arc<dyn HandoffSink>> {
        self.handoff.lock().unwrap_or_else(|poison| poison.into_inner()).clone()
    }
}

impl std::ops::Deref for SqliteBackend {
    type Target = SqliteStore;

    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

/// PostgreSQL's machinery and, beside it, what the aggregates keep on it: the events' batching publisher.
pub(crate) struct PostgresBackend {
    store: PostgresStore,
    pub(crate) publisher: events::postgres::Publisher,
}

impl std::ops::Deref for PostgresBackend {
    type Target = PostgresStore;

    fn deref(&self) -> &PostgresStore {
        &self.store
    }
}

/// The store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    clock: Arc<dyn Clock>,
    list_scan: u32,
    health: hookline_core::health::Policy,
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
    ) -> Result<Store, OpenError> {
        let backend = match database {
            Database::Sqlite { data_dir } => {
                let store = SqliteStore::open(data_dir, options.max_wal_bytes).await?;
                Backend::Sqlite(Arc::new(SqliteBackend {
                    store,
                    endpoints: Arc::default(),
                    handoff: Default::default(),
                }))
            }
            Database::Postgres { url } => {
                let store = PostgresStore::open(url, node_dir, options).await?;
                let publisher = events::postgres::Publisher::start(Arc::clone(&store.pool), options.partition_width);
                Backend::Postgres(Arc::new(PostgresBackend { store, publisher }))
            }
        };
        let store = Store {
            backend,
            clock: Arc::clone(&options.clock),
            list_scan: options.list_scan.max(1),
            health: options.health,
        };
        let released = store.release_left_leases().await?;
        if released > 0 {
            tracing::info!(released, node = %store.node(), "deliveries left in flight by a previous run go back to the queue");
        }
        store.seed_topics().await?;
        Ok(store)
    }

    /// Lets go of this handle. When it is the last one, the embedded store commits every write still queued and
    /// empties its WAL file before this returns, so that a stopped server leaves nothing to replay. PostgreSQL
    /// has nothing to wait for.
    pub async fn close(self) {
        if let Backend::Sqlite(backend) = self.backend
            && let Ok(backend) = Arc::try_unwrap(backend)
        {
            backend.store.close().await;
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

    /// This node's identity among those that share the database: on PostgreSQL the one kept in its directory,
    /// which its leases carry; the embedded store has one node only.
    pub fn node(&self) -> String {
        match &self.backend {
            Backend::Sqlite(_) => "embedded".to_owned(),
            Backend::Postgres(backend) => backend.node.clone(),
        }
    }

    /// Whether the database keeps the rows that updates and deletes leave behind until a vacuum, which
    /// `vacuum_churned` then does: PostgreSQL. SQLite reuses a freed page at once.
    pub fn keeps_dead_rows(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// On PostgreSQL, makes the partitions of events, deliveries and attempts that the clock will soon need (see
    /// `StoreOptions::partition_width`); how many sets of them were made. Nothing on SQLite.
    pub async fn prepare_partitions(&self) -> Result<u32, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(0),
            Backend::Postgres(backend) => backend.prepare_partitions().await,
        }
    }

    /// On PostgreSQL, vacuums each table that deliveries and retention churn once its dead rows pass a small share
    /// of its live ones, and analyzes it once the rows changed since it was last analyzed pass half of them
    /// (whether or not the server's autovacuum is on); what it did to each table. Nothing on SQLite.
    pub async fn vacuum_churned(&self) -> Result<Vec<TableUpkeep>, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(Vec::new()),
            Backend::Postgres(backend) => backend.vacuum_churned().await,
        }
    }

    /// On PostgreSQL, has every open connection hand its pending statistics (the rows it inserted, updated and
    /// deleted) to the server now, so that the next `vacuum_churned` counts them: a session otherwise reports
    /// them within a second or so of its last write, which is soon enough for the vacuum job but not for a test.
    /// Nothing on SQLite.
    pub async fn flush_statistics(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(backend) => backend.flush_statistics().await,
        }
    }

    /// Answers when the database does: for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, ping())
    }

    /// Attaches this process's dispatcher: from now on the store tells it when work may be due (on PostgreSQL
    /// whatever node made it due), and publishes on the embedded store hand it straight the deliveries it has
    /// room for (see `HandoffSink`). On PostgreSQL every delivery goes through a claim, so that the nodes share
    /// the work, and the dispatcher only keeps its count.
    pub fn attach_dispatcher(&self, dispatcher: Arc<dyn HandoffSink>) {
        let woken = Arc::clone(&dispatcher);
        let wake: sql::Wake = Arc::new(move || woken.work_due());
        match &self.backend {
            Backend::Sqlite(backend) => {
                *backend.handoff.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(dispatcher);
                backend.attach_dispatcher(wake);
            }
            Backend::Postgres(backend) => backend.attach_dispatcher(wake),
        }
    }
}

/// Creates and locks a node's data directory: only one process may use it at a time.
fn lock_data_dir(data_dir: &std::path::Path) -> Result<std::fs::File, OpenError> {
    let dir_error = |source| OpenError::DataDir { path: data_dir.to_owned(), source };
    std::fs::create_dir_all(data_dir).map_err(dir_error)?;
    let lock = std::fs::File::create(data_dir.join("hookline.lock")).map_err(dir_error)?;
    if lock.try_lock().is_err() {
        return Err(OpenError::Locked { path: data_dir.to_owned() });
    }
    Ok(lock)
}
