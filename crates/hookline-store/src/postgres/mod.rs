//! The shared backend: a PostgreSQL database that several stateless nodes use at once.
//!
//! Work is distributed by leases: a claim takes due deliveries with `FOR UPDATE SKIP LOCKED`, so two nodes never
//! claim the same delivery, and moves each one's due time to the end of its lease, so a node that dies mid-attempt
//! leaves deliveries that fall due again when their lease runs out. An outcome is recorded only under the lease it
//! was claimed with. Publishes `NOTIFY` every node, whose listener wakes its dispatcher.

pub(crate) mod partitions;
pub(crate) mod pool;
mod schema;
#[cfg(test)]
pub(crate) use schema::{migrate, tests::fresh_database};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::GenericClient;
use hookline_core::clock::Clock;
use tokio::sync::oneshot;
use tokio_postgres::{AsyncMessage, Client, NoTls, Row};

use self::pool::{Pool, Pooled, Session};
use crate::sql::Wake;
use crate::sql::{Columns, Dialect, Read, Sql, Value};
use crate::{OpenError, StoreError};

/// Connections per node. Each node also keeps one more, for `LISTEN`.
const POOL_SIZE: usize = 12;
/// The channel publishes notify and every node listens on.
const WORK_CHANNEL: &str = "hookline_work";

impl Columns for Row {
    fn text(&self, index: usize) -> Result<String, StoreError> {
        Ok(self.try_get(index)?)
    }
    fn optional_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(index)?)
    }
    fn integer(&self, index: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(index)?)
    }
    fn optional_integer(&self, index: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(index)?)
    }
    fn flag(&self, index: usize) -> Result<bool, StoreError> {
        Ok(self.try_get(index)?)
    }
}

fn bound<'v>(values: &[&'v dyn Value]) -> Vec<&'v (dyn tokio_postgres::types::ToSql + Sync)> {
    values.iter().map(|value| value.postgres()).collect()
}

impl<C: GenericClient + Sync> Sql for Session<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn execute(&mut self, sql: &str, values: &[&dyn Value]) -> Result<u64, StoreError> {
        self.pg_execute(sql, &bound(values)).await
    }

    async fn query<T>(&mut self, sql: &str, values: &[&dyn Value], read: Read<T>) -> Result<Vec<T>, StoreError> {
        let rows = self.pg_query(sql, &bound(values)).await?;
        rows.iter().map(|row| read(row)).collect()
    }

    async fn first<T>(&mut self, sql: &str, values: &[&dyn Value], read: Read<T>) -> Result<Option<T>, StoreError> {
        let row = self.pg_query_opt(sql, &bound(values)).await?;
        row.as_ref().map(|row| read(row)).transpose()
    }

    /// Every node's listener hears it once the transaction commits, this node's too.
    async fn work_due(&mut self) -> Result<(), StoreError> {
        notify_work(self).await
    }
}

pub(crate) struct PostgresStore {
    pub(crate) pool: Arc<Pool>,
    /// This node's identity, which its leases carry.
    pub(crate) node: String,
    clock: Arc<dyn Clock>,
    /// See `StoreOptions::partition_width`.
    partition_width: Duration,
    _lock: std::fs::File,
    /// This node's dispatcher, once it runs: the work listener tells it of work due on any node.
    dispatcher: Dispatcher,
    /// Dropped with the store, which ends the work listener.
    _listener_stop: oneshot::Sender<()>,
}

/// Runs `$body` with `$sql` in one transaction on a pooled connection, committing if it succeeds.
macro_rules! in_transaction {
    ($store:expr, |$sql:ident| $body:expr) => {
        async {
            let pool = &$store.pool;
            let mut connection = pool.get().await?;
            let transaction = connection.transaction().await.map_err(|error| pool.classify(error))?;
            let outcome = {
                let mut session = $crate::postgres::pool::Session { client: &transaction, pool };
                let $sql = &mut session;
                // A block of its own, so that a `return` in the body gives its value to the commit below.
                async { $body }.await
            };
            match outcome {
                Ok(value) => {
                    transaction.commit().await.map_err(|error| pool.classify(error))?;
                    Ok(value)
                }
                // Dropping the transaction rolls it back.
                Err(error) => Err(error),
            }
        }
        .await
    };
}
pub(crate) use in_transaction;

/// Runs `$body` with `$sql` on a pooled connection, outside any transaction.
macro_rules! in_session {
    ($store:expr, |$sql:ident| $body:expr) => {
        async {
            let connection = $store.pool.get().await?;
            let mut session = $store.session(&connection);
            let $sql = &mut session;
            $body
        }
        .await
    };
}
pub(crate) use in_session;

/// The tables that deliveries and retention churn: every claim and outcome updates a delivery, and every purge
/// deletes, and each leaves a dead row behind until a vacuum. On a server whose autovacuum is off (or lags: by
/// default it looks once a minute), a soak at 3,000 events/s left 730,000 dead deliveries after three minutes, and
/// every index scan stepped over them.
const CHURNED: [&str; 3] = ["deliveries", "events", "attempts"];
/// A table is vacuumed once its dead rows pass this many plus one in this many of its live ones (PostgreSQL's
/// statistics, which lag by a second or so).
const VACUUM_AFTER: (u64, u64) = (1_000, 100);
/// A table is analyzed once the rows changed since its last analysis pass this many plus one in this many of its
/// live ones: the planner's statistics need refreshing when a table has grown or turned over, not at each vacuum.
/// An analysis samples 30,000 rows whatever changed: on 370,000 deliveries with their events and attempts, the
/// three took 0.77 s of a core, four times what vacuuming ten seconds of purges from them took (0.19 s).
const ANALYZE_AFTER: (u64, u64) = (1_000, 2);

/// Reads a `postgres://` url into a connection configuration.
pub(crate) fn parse_url(url: &str) -> Result<tokio_postgres::Config, OpenError> {
    url.parse()
        .map_err(|_| OpenError::InvalidUrl { url: url.to_owned(), hint: "expected postgres://user@host:port/database" })
}

/// Reads the node's identity from its directory, making one on first start.
fn node_identity(node_dir: &std::path::Path) -> Result<String, OpenError> {
    let path = node_dir.join("node-id");
    let dir_error = |source| OpenError::DataDir { path: node_dir.to_owned(), source };
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Ok(_) => write_identity(&path).map_err(dir_error),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => write_identity(&path).map_err(dir_error),
        Err(error) => Err(dir_error(error)),
    }
}

fn write_identity(path: &std::path::Path) -> std::io::Result<String> {
    let node = format!("node_{:016x}", rand::random::<u64>());
    std::fs::write(path, format!("{node}\n"))?;
    Ok(node)
}

impl PostgresStore {
    /// Connects, migrates, seeds the topic catalogue if no node has, and starts listening for other nodes' work.
    pub(crate) async fn open(
        url: &str,
        node_dir: &std::path::Path,
        options: &crate::StoreOptions,
    ) -> Result<PostgresStore, OpenError> {
        let config = parse_url(url)?;
        let lock = crate::lock_data_dir(node_dir)?;
        let node = node_identity(node_dir)?;
        let pool = Arc::new(Pool::new(config, POOL_SIZE));
        let (clock, partition_width) = (Arc::clone(&options.clock), options.partition_width);
        let (listener_stop, stopped) = oneshot::channel();
        let dispatcher = Arc::default();
        let store = PostgresStore {
            pool,
            node,
            clock,
            partition_width,
            _lock: lock,
            dispatcher,
            _listener_stop: listener_stop,
        };
        {
            let mut connection = store.pool.get().await?;
            let later = schema::migrate(&mut connection).await.map_err(|error| store.pool.classify(error))?;
            if let Some(found) = later {
                return Err(OpenError::LaterSchema { found, known: crate::schema::MIGRATIONS.len() });
            }
        }
        store.prepare_partitions().await?;
        tokio::spawn(listen(store.pool.config().clone(), Arc::clone(&store.dispatcher), stopped));
        Ok(store)
    }

    pub(crate) fn location(&self) -> &str {
        self.pool.location()
    }

    /// From now on the work listener calls `wake` when work is due on any node.
    pub(crate) fn attach_dispatcher(&self, wake: Wake) {
        *self.dispatcher.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(wake);
    }

    /// Statements on a pooled connection, outside any transaction.
    pub(crate) fn session<'a>(&'a self, connection: &'a Pooled) -> Session<'a, Pooled> {
        Session { client: connection, pool: &self.pool }
    }

    /// See `Store::prepare_partitions`.
    pub(crate) async fn prepare_partitions(&self) -> Result<u32, StoreError> {
        partitions::prepare(&self.pool, self.clock.now(), self.partition_width).await
    }

    /// See `Store::purge_before`: the sets of partitions past the horizon dropped whole.
    pub(crate) async fn drop_expired(
        &self,
        horizon: hookline_core::time::Timestamp,
    ) -> Result<partitions::Dropped, StoreError> {
        partitions::drop_expired(&self.pool, horizon).await
    }

    /// Vacuums each table in `CHURNED` whose dead rows have passed `VACUUM_AFTER`, and analyzes each whose
    /// changed rows have passed `ANALYZE_AFTER`; what each look did. A table vacuumed or analyzed by autovacuum
    /// first is left alone.
    pub(crate) async fn vacuum_churned(&self) -> Result<Vec<crate::TableUpkeep>, StoreError> {
        let connection = self.pool.get().await?;
        let tables = self
            .session(&connection)
            .pg_query(
                "SELECT quote_ident(s.relname), s.n_dead_tup, s.n_live_tup, s.n_mod_since_analyze
                 FROM pg_stat_user_tables s JOIN pg_inherits i ON i.inhrelid = s.relid
                    JOIN pg_class parent ON parent.oid = i.inhparent
                 WHERE s.schemaname = current_schema() AND parent.relname::text = ANY($1) AND NOT i.inhdetachpending
                 ORDER BY s.relname",
                &[&CHURNED.as_slice()],
            )
            .await?;
        let mut done = Vec::new();
        for table in tables {
            let count = |index: usize| table.get::<_, i64>(index).max(0).unsigned_abs();
            let (table, dead, live, changed): (String, _, _, _) = (table.get(0), count(1), count(2), count(3));
            let vacuumed = dead >= VACUUM_AFTER.0 + live / VACUUM_AFTER.1;
            let analyzed = changed >= ANALYZE_AFTER.0 + live / ANALYZE_AFTER.1;
            // Its own statement, outside any transaction, as VACUUM must be; the name of a partition of one of
            // `CHURNED`, quoted should someone have attached one of a name that needs it.
            let statement = match (vacuumed, analyzed) {
                (true, true) => format!("VACUUM (ANALYZE) {table}"),
                (true, false) => format!("VACUUM {table}"),
                (false, true) => format!("ANALYZE {table}"),
                (false, false) => continue,
            };
            match connection.batch_execute(&statement).await {
                Ok(()) => {}
                // A partition that retention dropped meanwhile.
                Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => continue,
                Err(error) => return Err(self.pool.classify(error)),
            }
            done.push(crate::TableUpkeep { table, dead: vacuumed.then_some(dead), analyzed });
        }
        Ok(done)
    }

    /// Every open connection is taken at once (so none is missed, while no caller holds one) and flushes its
    /// statistics: `pg_stat_force_next_flush` (PostgreSQL 15) makes the session report them as it goes idle,
    /// before it answers.
    pub(crate) async fn flush_statistics(&self) -> Result<(), StoreError> {
        let mut held = Vec::new();
        for _ in 0..self.pool.open() {
            held.push(self.pool.get().await?);
        }
        for connection in &held {
            connection
                .batch_execute("SELECT pg_stat_force_next_flush()")
                .await
                .map_err(|error| self.pool.classify(error))?;
        }
        Ok(())
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let connection = self.pool.get().await?;
        self.session(&connection).pg_query_one("SELECT 1", &[]).await.map(|_| ())
    }
}

/// How to wake this node's dispatcher, if it runs, as the listener sees it.
type Dispatcher = Arc<Mutex<Option<Wake>>>;

/// Tells this node's dispatcher, if it runs, that work may be due.
fn wake(dispatcher: &Dispatcher) {
    let wake = dispatcher.lock().unwrap_or_else(|poison| poison.into_inner()).clone();
    if let Some(wake) = wake {
        wake();
    }
}

/// Wakes every node's dispatcher once this transaction commits.
pub(crate) async fn notify_work<C: GenericClient>(session: &mut Session<'_, C>) -> Result<(), StoreError> {
    session.pg_execute(&format!("SELECT pg_notify('{WORK_CHANNEL}', '')"), &[]).await.map(|_| ())
}

/// Keeps a connection that `LISTEN`s for work published on any node and wakes this node's dispatcher; reconnects
/// when the connection drops, and wakes the dispatcher then too, in case it missed something meanwhile. Ends when
/// the store is dropped (`stopped` resolves).
async fn listen(config: tokio_postgres::Config, work: Dispatcher, mut stopped: oneshot::Receiver<()>) {
    let mut failures = 0u32;
    loop {
        let connected = tokio::select! {
            connected = config.connect(NoTls) => connected,
            _ = &mut stopped => return,
        };
        match connected {
            Ok((client, mut connection)) => {
                let mut driver = {
                    let work = Arc::clone(&work);
                    tokio::spawn(async move {
                        while let Some(message) = std::future::poll_fn(|context| connection.poll_message(context)).await
                        {
                            match message {
                                Ok(AsyncMessage::Notification(_)) => wake(&work),
                                Ok(_) => {}
                                Err(error) => {
                                    tracing::warn!(%error, "the work listener's database connection failed");
                                    return;
                                }
                            }
                        }
                    })
                };
                let listening = tokio::select! {
                    listening = listen_on(&client) => listening,
                    _ = &mut stopped => {
                        driver.abort();
                        return;
                    }
                };
                match listening {
                    Err(error) => tracing::warn!(%error, "could not LISTEN for work from other nodes"),
                    Ok(()) => {
                        failures = 0;
                        wake(&work);
                        // Until the connection ends or the store is dropped.
                        tokio::select! {
                            _ = &mut driver => {}
                            _ = &mut stopped => {
                                driver.abort();
                                return;
                            }
                        }
                    }
                }
                driver.abort();
            }
            Err(error) => {
                if failures == 0 {
                    tracing::warn!(%error, "the work listener cannot reach the database; retrying");
                }
                failures += 1;
            }
        }
        // A pause between reconnections, so an unreachable database is not asked in a tight loop.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = &mut stopped => return,
        }
    }
}

async fn listen_on(client: &Client) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(&format!("LISTEN {WORK_CHANNEL}")).await
}
