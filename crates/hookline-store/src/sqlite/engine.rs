//! The SQLite engine: one writer thread that commits queued writes in groups, and a small pool of readers.
//!
//! Group commit: the writer takes every write that is waiting, runs each inside its own savepoint (so one
//! failing write does not undo the others), commits once, and only then answers each caller. A caller's
//! answer therefore always means "on disk", and many concurrent publishes share one fsync.
//!
//! Checkpoints (copying the WAL back into the database file) run on a thread of their own, asked for by the
//! writer every few groups, so the writer never stops to do them.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::schema;
use crate::StoreError;

/// How many writes one commit may carry.
const MAX_GROUP: usize = 512;
/// How many reads may run at once.
const READERS: usize = 4;
/// The writer asks for a checkpoint after this many group commits.
const GROUPS_PER_CHECKPOINT: u32 = 64;

/// A queued write: runs inside the group transaction, then hears whether the group committed.
trait Job: Send {
    fn run(&mut self, connection: &Connection);
    fn finish(self: Box<Self>, commit: Result<(), &rusqlite::Error>);
}

struct WriteJob<T, F, A> {
    work: Option<F>,
    after_commit: Option<A>,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F, A> Job for WriteJob<T, F, A>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
    A: FnOnce(&mut Result<T, StoreError>, bool) + Send,
{
    fn run(&mut self, connection: &Connection) {
        let Some(work) = self.work.take() else { return };
        // Prepared once per connection: parsing these on every write was a good part of the writer's time.
        let run = |sql: &str| connection.prepare_cached(sql).and_then(|mut statement| statement.execute([]));
        let outcome = match run("SAVEPOINT job") {
            Err(error) => Err(StoreError::from(error)),
            Ok(_) => {
                let outcome = work(connection);
                let closed =
                    if outcome.is_ok() { run("RELEASE job") } else { run("ROLLBACK TO job").and(run("RELEASE job")) };
                match closed {
                    Ok(_) => outcome,
                    Err(error) => Err(StoreError::from(error)),
                }
            }
        };
        self.outcome = Some(outcome);
    }

    fn finish(mut self: Box<Self>, commit: Result<(), &rusqlite::Error>) {
        let mut answer = match (commit, self.outcome.take()) {
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(StoreError::Closed),
            (Err(error), _) => Err(StoreError::Commit { detail: error.to_string() }),
        };
        if let Some(after_commit) = self.after_commit.take() {
            after_commit(&mut answer, commit.is_ok());
        }
        // The caller may have gone away (its request was cancelled); the write stands either way.
        let _ = self.reply.send(answer);
    }
}

pub(crate) struct Engine {
    writer: mpsc::Sender<Box<dyn Job>>,
    readers: Mutex<Vec<Connection>>,
    reader_slots: Semaphore,
    path: std::path::PathBuf,
}

fn open(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    // Savepoint journals and sorts stay in memory: they never need to survive a crash.
    connection.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;")?;
    Ok(connection)
}

impl Engine {
    pub(crate) fn open(path: &Path) -> Result<Arc<Engine>, StoreError> {
        let mut connection = open(path, OpenFlags::default())?;
        let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Commit { detail: format!("journal mode is {mode}, not wal") });
        }
        schema::migrate(&mut connection)?;
        // The checkpointer thread does this instead.
        connection.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        let checkpointer = open(path, OpenFlags::default())?;
        let (checkpoint_wanted, checkpoint_requests) = std::sync::mpsc::sync_channel::<()>(1);
        thread::Builder::new()
            .name("hookline-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, checkpoint_requests))
            .map_err(|source| StoreError::Thread { source })?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?);
        }
        let (sender, receiver) = mpsc::channel::<Box<dyn Job>>(4096);
        thread::Builder::new()
            .name("hookline-sqlite-writer".into())
            .spawn(move || write_loop(connection, receiver, checkpoint_wanted))
            .map_err(|source| StoreError::Thread { source })?;
        Ok(Arc::new(Engine {
            writer: sender,
            readers: Mutex::new(readers),
            reader_slots: Semaphore::new(READERS),
            path: path.to_owned(),
        }))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` in the next group transaction; resolves once that transaction is committed.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_then(work, |_: &mut Result<T, StoreError>, _| {}).await
    }

    /// As `write`; then, on the writer thread, `after_commit` sees the answer and whether the group committed
    /// (when it did not, the answer is already the commit's error). It runs even if the caller has gone away.
    pub(crate) async fn write_then<T, F, A>(&self, work: F, after_commit: A) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        A: FnOnce(&mut Result<T, StoreError>, bool) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(WriteJob { work: Some(work), after_commit: Some(after_commit), outcome: None, reply });
        self.writer.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `work` on a read-only connection, off the async threads.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _slot = self.reader_slots.acquire().await.map_err(|_| StoreError::Closed)?;
        let engine = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            // A slot guarantees a free connection; the lock is only held to take and return it.
            let connection = engine.readers.lock().unwrap_or_else(|poison| poison.into_inner()).pop();
            let Some(connection) = connection else { return Err(StoreError::Closed) };
            let result = work(&connection);
            engine.readers.lock().unwrap_or_else(|poison| poison.into_inner()).push(connection);
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

fn write_loop(
    mut connection: Connection,
    mut receiver: mpsc::Receiver<Box<dyn Job>>,
    checkpoint_wanted: std::sync::mpsc::SyncSender<()>,
) {
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    let mut groups_since_checkpoint = 0;
    while let Some(first) = receiver.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let commit = run_group(&mut connection, &mut group);
        if let Err(error) = &commit {
            tracing::error!(%error, jobs = group.len(), "sqlite group commit failed");
        }
        for job in group.drain(..) {
            job.finish(commit.as_ref().map(|_| ()));
        }
        groups_since_checkpoint += 1;
        // A request already waiting covers this one too.
        if groups_since_checkpoint >= GROUPS_PER_CHECKPOINT && checkpoint_wanted.try_send(()).is_ok() {
            groups_since_checkpoint = 0;
        }
    }
    // The last writes are in the WAL, which SQLite replays at the next open; one more checkpoint keeps it short.
    if let Err(error) = connection.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
        tracing::debug!(%error, "the closing checkpoint failed");
    }
}

/// Checkpoints whenever the writer asks; ends with the writer. A passive checkpoint copies what no reader still
/// needs and never blocks the writer.
fn checkpoint_loop(connection: Connection, requests: std::sync::mpsc::Receiver<()>) {
    while requests.recv().is_ok() {
        if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "a WAL checkpoint failed; the next one will retry");
        }
    }
}

fn run_group(connection: &mut Connection, group: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for job in group.iter_mut() {
        job.run(&transaction);
    }
    transaction.commit()
}
