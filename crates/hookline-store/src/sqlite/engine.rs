//! The SQLite engine: one writer thread that commits queued writes in groups, and a small pool of readers.
//!
//! Group commit: the writer takes every write that is waiting, runs each kept apart from the others (in its own
//! savepoint, or checked before its first change: see `Isolation`), commits once, and only then answers each
//! caller. A caller's answer therefore always means "on disk", and many concurrent publishes share one fsync.
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
    /// Runs the write; false when it has spoiled the group, which must then be rolled back.
    fn run(&mut self, connection: &Connection) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), &rusqlite::Error>);
}

/// How a write is kept apart from the others in its group commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// In a savepoint of its own, so that its failure undoes only what it did.
    Savepoint,
    /// Without one, which saves copying every page it touches: for writes that make all their checks before
    /// they change anything, so that a failure changes nothing. Should one fail after a change all the same, the
    /// whole group is rolled back and every write in it fails.
    ChecksFirst,
}

struct WriteJob<T, F, A> {
    isolation: Isolation,
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
    fn run(&mut self, connection: &Connection) -> bool {
        let Some(work) = self.work.take() else { return true };
        // Prepared once per connection: parsing these on every write was a good part of the writer's time.
        let run = |sql: &str| connection.prepare_cached(sql).and_then(|mut statement| statement.execute([]));
        let (outcome, kept) = match self.isolation {
            Isolation::Savepoint => match run("SAVEPOINT job") {
                Err(error) => (Err(StoreError::from(error)), true),
                Ok(_) => {
                    let outcome = work(connection);
                    let closed = if outcome.is_ok() {
                        run("RELEASE job")
                    } else {
                        run("ROLLBACK TO job").and(run("RELEASE job"))
                    };
                    match closed {
                        Ok(_) => (outcome, true),
                        Err(error) => (Err(StoreError::from(error)), true),
                    }
                }
            },
            Isolation::ChecksFirst => {
                let before = connection.total_changes();
                let outcome = work(connection);
                let kept = outcome.is_ok() || connection.total_changes() == before;
                (outcome, kept)
            }
        };
        self.outcome = Some(outcome);
        // SQLite rolls the whole transaction back itself after some errors (a full disk, say).
        kept && !connection.is_autocommit()
    }

    fn finish(mut self: Box<Self>, commit: Result<(), &rusqlite::Error>) {
        let mut outcome = self.outcome.take();
        // The hook sees the write's own outcome even when the group failed, so it can undo what it set aside.
        if let (Some(after_commit), Some(outcome)) = (self.after_commit.take(), outcome.as_mut()) {
            after_commit(outcome, commit.is_ok());
        }
        let answer = match (commit, outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(StoreError::Closed),
            (Err(error), _) => Err(StoreError::Commit { detail: error.to_string() }),
        };
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

    /// Runs `work` in the next group transaction, in a savepoint of its own; resolves once that transaction is
    /// committed.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_as(Isolation::Savepoint, work, |_: &mut Result<T, StoreError>, _| {}).await
    }

    /// As `write`, kept apart as `isolation` says; then, on the writer thread, `after_commit` sees the write's
    /// own outcome and whether its group committed (when it did not, the caller gets the commit's error whatever
    /// the outcome was). It runs even if the caller has gone away.
    pub(crate) async fn write_as<T, F, A>(
        &self,
        isolation: Isolation,
        work: F,
        after_commit: A,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        A: FnOnce(&mut Result<T, StoreError>, bool) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job =
            Box::new(WriteJob { isolation, work: Some(work), after_commit: Some(after_commit), outcome: None, reply });
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
    let mut spoiled = false;
    for job in group.iter_mut() {
        // After a spoiling write the others still run, so that each has an outcome; none of it is kept.
        spoiled |= !job.run(&transaction);
    }
    if spoiled {
        transaction.rollback()?;
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
            Some("a write in the same group commit failed halfway; nothing of the group was kept".into()),
        ));
    }
    transaction.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    type Reply = oneshot::Receiver<Result<(), StoreError>>;

    fn job(
        isolation: Isolation,
        work: impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    ) -> (Box<dyn Job>, Reply) {
        job_then(isolation, work, |_: &mut Result<(), StoreError>, _| {})
    }

    fn job_then(
        isolation: Isolation,
        work: impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
        after_commit: impl FnOnce(&mut Result<(), StoreError>, bool) + Send + 'static,
    ) -> (Box<dyn Job>, Reply) {
        let (reply, answer) = oneshot::channel();
        (
            Box::new(WriteJob { isolation, work: Some(work), after_commit: Some(after_commit), outcome: None, reply }),
            answer,
        )
    }

    fn insert(value: i64) -> impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static {
        move |connection| {
            connection.execute("INSERT INTO t (x) VALUES (?1)", [value])?;
            Ok(())
        }
    }

    fn refused() -> StoreError {
        StoreError::Corrupt { detail: "refused".into() }
    }

    /// Runs `jobs` as one group and returns each one's answer and the rows kept.
    fn group(jobs: Vec<(Box<dyn Job>, Reply)>) -> (Vec<Result<(), String>>, Vec<i64>) {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("CREATE TABLE t (x INTEGER NOT NULL)").unwrap();
        let (mut jobs, answers): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        let commit = run_group(&mut connection, &mut jobs);
        for job in jobs {
            job.finish(commit.as_ref().map(|_| ()));
        }
        let answers = answers
            .into_iter()
            .map(|mut answer| answer.try_recv().unwrap().map_err(|error| error.to_string()))
            .collect();
        let mut statement = connection.prepare("SELECT x FROM t ORDER BY x").unwrap();
        let rows = statement.query_map([], |row| row.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
        (answers, rows)
    }

    #[test]
    fn a_failed_write_is_undone_alone_by_its_savepoint_or_by_changing_nothing() {
        let (answers, rows) = group(vec![
            job(Isolation::Savepoint, insert(1)),
            job(Isolation::Savepoint, |connection| {
                insert(2)(connection)?;
                Err(refused())
            }),
            job(Isolation::ChecksFirst, |_| Err(refused())),
            job(Isolation::ChecksFirst, insert(4)),
        ]);
        assert_eq!(rows, [1, 4]);
        assert!(answers[0].is_ok() && answers[3].is_ok(), "{answers:?}");
        assert_eq!(answers[1].as_ref().unwrap_err(), "stored data is damaged: refused");
        assert_eq!(answers[2].as_ref().unwrap_err(), "stored data is damaged: refused");
    }

    #[test]
    fn a_write_without_savepoint_that_fails_after_a_change_fails_its_whole_group() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hook = Arc::clone(&seen);
        let (answers, rows) = group(vec![
            job_then(Isolation::Savepoint, insert(1), move |outcome, committed| {
                hook.lock().unwrap().push((outcome.is_ok(), committed));
            }),
            job(Isolation::ChecksFirst, |connection| {
                insert(2)(connection)?;
                Err(refused())
            }),
            job(Isolation::ChecksFirst, insert(3)),
        ]);
        assert_eq!(rows, Vec::<i64>::new(), "nothing of the group is kept");
        assert_eq!(*seen.lock().unwrap(), [(true, false)], "the hook sees its own write's outcome, and no commit");
        for answer in answers {
            assert!(answer.unwrap_err().contains("failed halfway"));
        }
    }
}
