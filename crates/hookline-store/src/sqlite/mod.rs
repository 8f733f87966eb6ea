//! The embedded backend: one SQLite file in the data directory, written by one thread in group commits.
//!
//! Only one process may use a data directory (it is locked), so at start-up every lease left by a previous run
//! belongs to a dead process and is released at once (`Store::release_left_leases`). What is here makes the
//! backend run; the statements are in the aggregates, which this module does not know.

pub(crate) mod backup;
pub(crate) mod engine;
mod schema;
pub(crate) mod vacuum;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{CachedStatement, Connection};

use self::engine::Engine;
use crate::sql::{Columns, Dialect, Read, Sql, Value, Wake, placeholders_in_order};
use crate::{OpenError, StoreError};

impl Columns for rusqlite::Row<'_> {
    fn text(&self, index: usize) -> Result<String, StoreError> {
        Ok(self.get(index)?)
    }
    fn optional_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(index)?)
    }
    fn integer(&self, index: usize) -> Result<i64, StoreError> {
        Ok(self.get(index)?)
    }
    fn optional_integer(&self, index: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(index)?)
    }
    fn flag(&self, index: usize) -> Result<bool, StoreError> {
        Ok(self.get(index)?)
    }
}

/// Shared statements on a SQLite connection: the writer's, inside a write, or a reader's.
pub(crate) struct SqliteSql<'c> {
    connection: &'c Connection,
    /// The writer's own state; `None` on a reader, which changes nothing.
    local: Option<&'c Local>,
}

impl<'c> SqliteSql<'c> {
    pub(crate) fn writer(connection: &'c Connection, local: &'c Local) -> SqliteSql<'c> {
        SqliteSql { connection, local: Some(local) }
    }

    fn reader(connection: &'c Connection) -> SqliteSql<'c> {
        SqliteSql { connection, local: None }
    }

    fn prepare(&self, sql: &str) -> Result<CachedStatement<'c>, StoreError> {
        debug_assert!(placeholders_in_order(sql), "SQLite would bind these placeholders out of order: {sql}");
        Ok(self.connection.prepare_cached(sql)?)
    }
}

fn bound<'v>(values: &'v [&dyn Value]) -> impl rusqlite::Params + 'v {
    rusqlite::params_from_iter(values.iter().map(|value| value.sqlite()))
}

impl Sql for SqliteSql<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn execute(&mut self, sql: &str, values: &[&dyn Value]) -> Result<u64, StoreError> {
        Ok(self.prepare(sql)?.execute(bound(values))? as u64)
    }

    async fn query<T>(&mut self, sql: &str, values: &[&dyn Value], read: Read<T>) -> Result<Vec<T>, StoreError> {
        let mut statement = self.prepare(sql)?;
        let mut rows = statement.query(bound(values))?;
        let mut records = Vec::new();
        while let Some(row) = rows.next()? {
            records.push(read(row)?);
        }
        Ok(records)
    }

    async fn first<T>(&mut self, sql: &str, values: &[&dyn Value], read: Read<T>) -> Result<Option<T>, StoreError> {
        let mut statement = self.prepare(sql)?;
        let mut rows = statement.query(bound(values))?;
        rows.next()?.map(|row| read(row)).transpose()
    }

    fn endpoints_changed(&mut self) {
        if let Some(local) = self.local {
            local.endpoints_changed();
        }
    }

    async fn work_due(&mut self) -> Result<(), StoreError> {
        // A claim is a write queued behind this one, so it finds the change committed.
        if let Some(local) = self.local {
            local.work_due();
        }
        Ok(())
    }
}

pub(crate) struct SqliteStore {
    pub(crate) engine: Arc<Engine>,
    pub(crate) local: Arc<Local>,
    _lock: File,
}

/// What the writer thread keeps beside the database, used only inside writes.
pub(crate) struct Local {
    /// Moves on with every write that changes or deletes endpoints (on this same thread), so that what was read
    /// of endpoints under an earlier generation is known to be stale.
    endpoints_generation: AtomicU64,
    /// Tells the local dispatcher, once it runs, that a write made deliveries due.
    wake: Mutex<Option<Wake>>,
}

impl Local {
    /// The generation of endpoints the writer is at: see `endpoints_generation`.
    pub(crate) fn endpoints_generation(&self) -> u64 {
        self.endpoints_generation.load(Ordering::Acquire)
    }

    /// Called by every write that changes or deletes endpoints.
    fn endpoints_changed(&self) {
        self.endpoints_generation.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn work_due(&self) {
        let wake = self.wake.lock().unwrap_or_else(|poison| poison.into_inner()).clone();
        if let Some(wake) = wake {
            wake();
        }
    }
}

/// A directory of its own under the system's temporary one, removed when dropped, for tests of files.
#[cfg(test)]
pub(crate) struct TestDir(pub(crate) std::path::PathBuf);

#[cfg(test)]
impl TestDir {
    pub(crate) fn new(name: &str) -> TestDir {
        let path = std::env::temp_dir().join(format!("hookline-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TestDir(path)
    }
}

#[cfg(test)]
impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A database in memory with the whole schema, for tests of statements.
#[cfg(test)]
pub(crate) fn migrated_in_memory() -> Connection {
    let mut connection = Connection::open_in_memory().unwrap();
    schema::migrate(&mut connection).unwrap();
    connection
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir` and runs migrations. Fails if another process holds the
    /// directory. The WAL file stays under about `max_wal_bytes`.
    pub(crate) async fn open(data_dir: &Path, max_wal_bytes: u64) -> Result<SqliteStore, OpenError> {
        let lock = crate::lock_data_dir(data_dir)?;
        let path = data_dir.join("hookline.db");
        let engine = tokio::task::spawn_blocking(move || Engine::open(&path, max_wal_bytes))
            .await
            .map_err(|_| StoreError::Closed)??;
        let local = Arc::new(Local { endpoints_generation: AtomicU64::new(0), wake: Mutex::default() });
        Ok(SqliteStore { engine, local, _lock: lock })
    }

    /// Waits until every queued write is committed and the WAL emptied, when no other handle is left (else the
    /// next open empties it). The data directory stays locked until then.
    pub(crate) async fn close(self) {
        let SqliteStore { engine, _lock: lock, .. } = self;
        if let Ok(engine) = Arc::try_unwrap(engine) {
            let _ = tokio::task::spawn_blocking(move || engine.close()).await;
        }
        drop(lock);
    }

    pub(crate) fn location(&self) -> PathBuf {
        self.engine.path().to_owned()
    }

    /// Runs `work` as one write, in a savepoint of its own within the writer's next group commit.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteSql<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let local = Arc::clone(&self.local);
        self.engine.write(move |connection| work(&mut SqliteSql::writer(connection, &local))).await
    }

    /// Runs `work` on a reader connection.
    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteSql<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.engine.read(move |connection| work(&mut SqliteSql::reader(connection))).await
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        self.engine.read(|connection| Ok(connection.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    /// From now on, writes that make deliveries due call `wake`.
    pub(crate) fn attach_dispatcher(&self, wake: Wake) {
        *self.local.wake.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(wake);
    }
}
