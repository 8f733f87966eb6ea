//! The SQLite engine: one writer thread that commits queued writes in groups, and a small pool of readers.
//!
//! Group commit: the writer takes every write that is waiting, runs each kept apart from the others (in its own
//! savepoint, or checked before its first change: see `Isolation`), commits once, and only then answers each
//! caller. A caller's answer therefore always means "on disk", and many concurrent publishes share one fsync.
//! Under light traffic a lone write waits a few milliseconds for company (see `Linger`).
//!
//! The WAL is kept under a bound (see `WalUpkeep`). SQLite writes a WAL from its start again only when a write
//! transaction begins after a checkpoint copied all of it back and no reader still reads from it; under steady
//! writes and reads a passive checkpoint never gets there, so the WAL would grow for ever. So a checkpointer
//! thread copies the log back each time it has grown by a thirty-second of the bound, off the writer's path, and the
//! writer itself, once the log passes
//! half the bound, finishes the copy between two groups and waits briefly for readers to leave the old log (a
//! restart checkpoint): the next commit then starts the log again. The two take turns, since SQLite refuses a
//! second checkpoint while one runs (see `CheckpointTurn`). The file is emptied at open, by the
//! checkpointer once the store has been idle for a moment, and by the writer when the store closes.

use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::schema;
use crate::{OpenError, StoreError};

/// How many writes one commit may carry.
const MAX_GROUP: usize = 512;
/// The page size of a new database file. Every commit writes each page it changed to the WAL whole, and a publish
/// changes about a dozen (the newest leaf of each table and index it adds to): at SQLite's default of 4 KiB that
/// was some 90 KB written per 1 KB event under light traffic, where commits carry one write each. Smaller pages
/// write less of what did not change; rows and index entries are small, and an event's payload past a page goes to
/// overflow pages, so reads touch a few more pages, all of them cached.
pub(crate) const PAGE_SIZE: u32 = 1024;
/// How long a lone write may wait for company before its group commits (see `Linger`): the latency budget that
/// light traffic pays for sharing commits.
const LINGER: Duration = Duration::from_millis(6);
/// How many reads may run at once.
const READERS: usize = 4;
/// The writer asks for a (passive) checkpoint each time the log has grown by this share of the frames at which
/// it restarts the log. A checkpoint writes each page the log changed once, however often it changed, so that
/// counting by growth rather than by commits spares light traffic copies of the same hot pages (the newest leaf of
/// every index). Not much rarer than this: what the checkpointer has not copied when the log reaches the restart
/// point, the writer copies itself, page by page, while writes wait (at 10,000 events/s a quarter of the log made
/// that p99 three times as long).
const CHECKPOINTS_PER_RESTART: u64 = 16;
/// How long a connection waits for a lock in ordinary use.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a restart or emptying checkpoint waits for readers to leave the old log (and, when the checkpointer
/// empties the log, for the writer to finish a group) before it gives up until the next try. Reads are short;
/// writes queue behind a restart, so this is also the longest a restart may hold them up waiting.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(10);
/// After a restart that could not finish, the writer lets this many groups pass before it tries again.
const GROUPS_BETWEEN_RESTART_TRIES: u32 = 8;
/// The store counts as idle once no group has been committed for this long; the checkpointer then empties the
/// WAL file.
const IDLE: Duration = Duration::from_secs(1);
/// Each frame of the WAL holds one page and a header of this many bytes.
const WAL_FRAME_HEADER: u64 = 24;

/// A queued write: runs inside the group transaction, then hears whether the group committed.
trait Job: Send {
    /// Runs the write; false when it has spoiled the group, which must then be rolled back.
    fn run(&mut self, connection: &Connection) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), &Arc<rusqlite::Error>>);
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

    fn finish(mut self: Box<Self>, commit: Result<(), &Arc<rusqlite::Error>>) {
        let mut outcome = self.outcome.take();
        // The hook sees the write's own outcome even when the group failed, so it can undo what it set aside.
        if let (Some(after_commit), Some(outcome)) = (self.after_commit.take(), outcome.as_mut()) {
            after_commit(outcome, commit.is_ok());
        }
        let answer = match (commit, outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(StoreError::Closed),
            (Err(error), _) => Err(StoreError::Commit { source: Arc::clone(error) }),
        };
        // The caller may have gone away (its request was cancelled); the write stands either way.
        let _ = self.reply.send(answer);
    }
}

pub(crate) struct Engine {
    writer: mpsc::Sender<Box<dyn Job>>,
    writer_thread: thread::JoinHandle<()>,
    readers: Mutex<Vec<Connection>>,
    reader_slots: Semaphore,
    path: std::path::PathBuf,
}

fn open(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // Room for every statement the aggregates prepare, so that none is parsed again on the writer's hot path.
    connection.set_prepared_statement_cache_capacity(64);
    // Savepoint journals and sorts stay in memory: they never need to survive a crash.
    connection.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;")?;
    Ok(connection)
}

impl Engine {
    /// Opens the database at `path`, keeping its WAL file under about `max_wal_bytes` (see `WalUpkeep`).
    pub(crate) fn open(path: &Path, max_wal_bytes: u64) -> Result<Arc<Engine>, OpenError> {
        let mut connection = open(path, OpenFlags::default())?;
        // Only a new, empty file takes it; a store made before keeps its pages until `hookline store vacuum`.
        connection.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}"))?;
        let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OpenError::NotWal { mode });
        }
        if let Some(found) = schema::migrate(&mut connection)? {
            return Err(OpenError::LaterSchema { found, known: crate::schema::MIGRATIONS.len() });
        }
        // The checkpointer thread and the writer's restarts do this instead. Setting it removes any WAL hook, so
        // it comes first.
        connection.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        connection.wal_hook(Some(note_wal_frames));
        // After a restart the first commit cuts a file that grew past this back to it; the file is not cut
        // further, so that commits overwrite blocks the file already has rather than grow it again.
        connection.execute_batch(&format!("PRAGMA journal_size_limit = {max_wal_bytes}"))?;
        let page_size: u64 = connection.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        // A log left long by an earlier run (killed, say) goes back into the database file, and the file is
        // emptied, before anyone else reads it. Nothing else has the database open yet.
        if !Checkpoint::Truncate.run(&connection)? {
            tracing::warn!("the WAL could not be emptied at open; it will be at the first idle moment");
        }
        let checkpointer = open(path, OpenFlags::default())?;
        checkpointer.busy_handler(Some(wait_briefly))?;
        let (checkpoint_wanted, checkpoint_requests) = std::sync::mpsc::sync_channel::<()>(1);
        let commits = Arc::new(AtomicU64::new(0));
        let commits_seen = Arc::clone(&commits);
        let checkpoint_turn = Arc::new(Mutex::new(()));
        let turn = Arc::clone(&checkpoint_turn);
        thread::Builder::new()
            .name("hookline-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, checkpoint_requests, &commits_seen, &turn))
            .map_err(|source| OpenError::Thread { source })?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?);
        }
        let upkeep = WalUpkeep {
            // Half the bound: the other half is room for the log to grow while a restart waits for its turn.
            restart_frames: (max_wal_bytes / 2 / (page_size + WAL_FRAME_HEADER)).max(1),
            frames_at_checkpoint: 0,
            groups_until_restart_try: 0,
            checkpoint_wanted,
            commits,
            checkpoint_turn,
        };
        let (sender, receiver) = mpsc::channel::<Box<dyn Job>>(4096);
        let writer_thread = thread::Builder::new()
            .name("hookline-sqlite-writer".into())
            .spawn(move || write_loop(connection, receiver, upkeep))
            .map_err(|source| OpenError::Thread { source })?;
        Ok(Arc::new(Engine {
            writer: sender,
            writer_thread,
            readers: Mutex::new(readers),
            reader_slots: Semaphore::new(READERS),
            path: path.to_owned(),
        }))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the readers, lets the writer commit what is queued, and waits while it empties the WAL. Blocks.
    pub(crate) fn close(self) {
        let Engine { writer, writer_thread, readers, .. } = self;
        drop(readers);
        drop(writer);
        if writer_thread.join().is_err() {
            tracing::error!("the sqlite writer thread panicked");
        }
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

fn write_loop(mut connection: Connection, mut receiver: mpsc::Receiver<Box<dyn Job>>, mut upkeep: WalUpkeep) {
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    let mut linger = Linger::new();
    while let Some(first) = receiver.blocking_recv() {
        group.push(first);
        take_waiting(&mut receiver, &mut group);
        if group.len() == 1 {
            linger.wait_for_company(&mut receiver, &mut group);
        }
        // Every write of the group hears the same failure.
        let commit = run_group(&mut connection, &mut group).map_err(Arc::new);
        if let Err(error) = &commit {
            tracing::error!(%error, jobs = group.len(), "sqlite group commit failed");
        }
        for job in group.drain(..) {
            job.finish(commit.as_ref().map(|_| ()));
        }
        upkeep.after_group(&connection);
    }
    // The last writes go back into the database file and the log is emptied, so a stopped store leaves no WAL
    // behind to replay. Should this fail (or the process end first), the next open does it.
    let turn = Arc::clone(&upkeep.checkpoint_turn);
    drop(upkeep); // Ends the checkpointer once it has finished any pass it is in the middle of.
    let _turn = take_turn(&turn);
    let emptied = connection.busy_handler(Some(wait_briefly)).and_then(|()| Checkpoint::Truncate.run(&connection));
    if !matches!(emptied, Ok(true)) {
        tracing::debug!(?emptied, "the closing checkpoint could not empty the WAL");
    }
}

/// Moves every write already queued into `group`, up to its limit.
fn take_waiting(receiver: &mut mpsc::Receiver<Box<dyn Job>>, group: &mut Vec<Box<dyn Job>>) {
    while group.len() < MAX_GROUP {
        match receiver.try_recv() {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
}

/// Group commit under light traffic. Under load, writes queue while a group commits and the next group takes
/// them all; at a few hundred writes a second each arrives alone and pays a commit (a dozen pages and an fsync) to
/// itself. So a lone write waits up to `LINGER` for a second one to share its commit with, and commits as soon as
/// one comes: a publish answers that much later at most, and only while traffic is light.
///
/// Waiting pays only when another write is on its way. A caller that writes one at a time (each waiting for the
/// last) sends none meanwhile, and waiting would only slow it down, so the writer keeps a running share of the
/// waits that found company and stops waiting while that share is low, trying again now and then in case traffic
/// has changed.
struct Linger {
    /// A timer for the wait, on the writer thread's own.
    runtime: Option<tokio::runtime::Runtime>,
    /// The running share of recent waits that found company, in 1/256ths.
    found: u32,
    /// Lone writes since the last wait, while the share is low.
    skipped: u32,
}

impl Linger {
    /// The share, in 1/256ths, below which lone writes stop waiting.
    const WORTH_IT: u32 = 128;
    /// While they do, one lone write in this many waits all the same, to see whether it pays again.
    const RETRY_EVERY: u32 = 1024;

    fn new() -> Linger {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build();
        if let Err(error) = &runtime {
            tracing::warn!(%error, "no timer for the sqlite writer: lone writes commit at once");
        }
        Linger { runtime: runtime.ok(), found: 128, skipped: 0 }
    }

    /// Waits up to `LINGER` for a second write and takes it (and any behind it) into `group`.
    fn wait_for_company(&mut self, receiver: &mut mpsc::Receiver<Box<dyn Job>>, group: &mut Vec<Box<dyn Job>>) {
        if self.runtime.is_none() || !self.worth_waiting() {
            return;
        }
        let Some(runtime) = &self.runtime else { return };
        let company = runtime.block_on(async { tokio::time::timeout(LINGER, receiver.recv()).await });
        // A closed queue ends the loop at its next turn.
        let found = matches!(company, Ok(Some(_)));
        if let Ok(Some(job)) = company {
            group.push(job);
            take_waiting(receiver, group);
        }
        self.waited(found);
    }

    /// Whether this lone write should wait: while waits pay, and now and then when they have not.
    fn worth_waiting(&mut self) -> bool {
        if self.found < Self::WORTH_IT {
            self.skipped += 1;
            if self.skipped < Self::RETRY_EVERY {
                return false;
            }
        }
        self.skipped = 0;
        true
    }

    /// Counts a wait into the running share: an average over the last sixteen or so.
    fn waited(&mut self, found: bool) {
        self.found = self.found - self.found / 16 + if found { 16 } else { 0 };
    }
}

thread_local! {
    /// Frames in the WAL as the last commit on this thread left it: SQLite's WAL hook sets it on the writer thread,
    /// which reads it after each group.
    static WAL_FRAMES: Cell<u64> = const { Cell::new(0) };
}

fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(u64::try_from(frames).unwrap_or(0));
    Ok(())
}

/// The writer's part in keeping the WAL short. Each time the log has grown by a thirty-second of the bound (a
/// sixteenth of the restart point), it asks the checkpointer to copy the log back
/// (passive: that waits for nothing, and the writer goes on). Once the log passes half the bound, it restarts the
/// log itself between two groups: then nothing is being written, so the checkpoint can finish, and what is left to
/// copy is only what came since the checkpointer's last pass.
struct WalUpkeep {
    restart_frames: u64,
    /// The log's frames when the writer last asked for a checkpoint.
    frames_at_checkpoint: u64,
    groups_until_restart_try: u32,
    checkpoint_wanted: std::sync::mpsc::SyncSender<()>,
    /// Groups committed so far, which the checkpointer watches to see the store go idle.
    commits: Arc<AtomicU64>,
    /// Held by whoever checkpoints (see `CheckpointTurn`).
    checkpoint_turn: CheckpointTurn,
}

/// Taken by the writer and the checkpointer around each checkpoint they run. SQLite lets one connection
/// checkpoint at a time and refuses a second at once, busy handler or not: a restart tried while the checkpointer
/// was in the middle of a pass failed, and under a loaded machine (passes slowed by their fsync) enough tries failed
/// in a row for the log to pass its bound by half again. Waiting for the pass instead costs the writer at most what
/// is left of one pass, a sixteenth of the log at the restart point.
type CheckpointTurn = Arc<Mutex<()>>;

/// Takes the turn; a holder that panicked left nothing half done that the next one must mind.
fn take_turn(turn: &CheckpointTurn) -> std::sync::MutexGuard<'_, ()> {
    turn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl WalUpkeep {
    fn after_group(&mut self, connection: &Connection) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        let frames = WAL_FRAMES.get();
        // The log starts again from its beginning after a checkpoint copied all of it.
        self.frames_at_checkpoint = self.frames_at_checkpoint.min(frames);
        // A request already waiting covers this one too.
        if frames - self.frames_at_checkpoint >= (self.restart_frames / CHECKPOINTS_PER_RESTART).max(1)
            && self.checkpoint_wanted.try_send(()).is_ok()
        {
            self.frames_at_checkpoint = frames;
        }
        if frames < self.restart_frames {
            return;
        }
        if self.groups_until_restart_try > 0 {
            self.groups_until_restart_try -= 1;
            return;
        }
        let started = Instant::now();
        let turn = take_turn(&self.checkpoint_turn);
        // Waiting briefly for readers: the writes queued meanwhile wait too.
        let restarted = connection.busy_handler(Some(wait_briefly)).and_then(|()| Checkpoint::Restart.run(connection));
        drop(turn);
        match connection.busy_timeout(BUSY_TIMEOUT).and(restarted) {
            Ok(true) => {
                WAL_FRAMES.set(0);
                tracing::debug!(frames = self.restart_frames, took = ?started.elapsed(), "the WAL restarts");
            }
            // A reader still in the old log.
            Ok(false) => {
                self.groups_until_restart_try = GROUPS_BETWEEN_RESTART_TRIES;
                tracing::debug!(took = ?started.elapsed(), "the WAL could not restart yet");
            }
            Err(error) => {
                self.groups_until_restart_try = GROUPS_BETWEEN_RESTART_TRIES;
                tracing::warn!(%error, "a WAL restart failed; the writer will try again");
            }
        }
    }
}

/// The checkpointer: copies the WAL back whenever the writer asks, and empties the file once the store has been
/// idle for a moment. Ends with the writer. A passive checkpoint copies what no reader still needs and never
/// blocks the writer; emptying the file takes the write lock for as long as the last copy and an fsync take.
fn checkpoint_loop(
    connection: Connection,
    requests: std::sync::mpsc::Receiver<()>,
    commits: &AtomicU64,
    turn: &CheckpointTurn,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut last_seen = (commits.load(Ordering::Relaxed), Instant::now());
    // The open emptied the file.
    let mut emptied_after = Some(last_seen.0);
    loop {
        match requests.recv_timeout(IDLE) {
            Ok(()) => {
                let _turn = take_turn(turn);
                if let Err(error) = Checkpoint::Passive.run(&connection) {
                    tracing::warn!(%error, "a WAL checkpoint failed; the next one will retry");
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let committed = commits.load(Ordering::Relaxed);
        if committed != last_seen.0 {
            last_seen = (committed, Instant::now());
        } else if last_seen.1.elapsed() >= IDLE && emptied_after != Some(committed) {
            let emptied = {
                let _turn = take_turn(turn);
                Checkpoint::Truncate.run(&connection)
            };
            match emptied {
                Ok(true) => emptied_after = Some(committed),
                // Busy after all: the next idle moment will do.
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "emptying the idle WAL failed; the next idle moment will retry"),
            }
        }
    }
}

/// The busy handler of restart and emptying checkpoints: waits up to `CHECKPOINT_WAIT` in short steps (SQLite's
/// own timeout waits a whole millisecond first, longer than most reads take).
fn wait_briefly(attempts: i32) -> bool {
    const STEP: Duration = Duration::from_micros(100);
    if STEP * u32::try_from(attempts).unwrap_or(u32::MAX) >= CHECKPOINT_WAIT {
        return false;
    }
    thread::sleep(STEP);
    true
}

/// The checkpoints the store uses.
#[derive(Clone, Copy, Debug)]
enum Checkpoint {
    /// Copies what no reader still needs; waits for nothing.
    Passive,
    /// Copies all of the log, then waits until no reader still reads from it, so that the next commit writes the
    /// log from its start.
    Restart,
    /// As `Restart`, and empties the file.
    Truncate,
}

impl Checkpoint {
    /// Runs the checkpoint; true when it copied the whole log (and, but for `Passive`, freed it).
    fn run(self, connection: &Connection) -> rusqlite::Result<bool> {
        let sql = match self {
            Checkpoint::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
            Checkpoint::Restart => "PRAGMA wal_checkpoint(RESTART)",
            Checkpoint::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
        };
        // One row: whether it was blocked, the frames in the log, the frames copied back (-1 when not in WAL).
        let (busy, log, copied): (bool, i64, i64) =
            connection.query_row(sql, [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(!busy && log == copied)
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

    /// An error with its causes.
    fn error_chain(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        text
    }

    /// Runs `jobs` as one group and returns each one's answer and the rows kept.
    fn group(jobs: Vec<(Box<dyn Job>, Reply)>) -> (Vec<Result<(), String>>, Vec<i64>) {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("CREATE TABLE t (x INTEGER NOT NULL)").unwrap();
        let (mut jobs, answers): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        let commit = run_group(&mut connection, &mut jobs).map_err(Arc::new);
        for job in jobs {
            job.finish(commit.as_ref().map(|_| ()));
        }
        let answers = answers
            .into_iter()
            .map(|mut answer| answer.try_recv().unwrap().map_err(|error| error_chain(&error)))
            .collect();
        let mut statement = connection.prepare("SELECT x FROM t ORDER BY x").unwrap();
        let rows = statement.query_map([], |row| row.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
        (answers, rows)
    }

    #[test]
    fn a_lone_write_waits_for_company_while_waiting_pays_and_now_and_then_when_it_does_not() {
        let mut linger = Linger::new();
        assert!(linger.runtime.is_some());
        // Open traffic: each wait finds a second write, so every lone write waits.
        for _ in 0..100 {
            assert!(linger.worth_waiting());
            linger.waited(true);
        }
        // A caller that writes one at a time: a few empty waits, and lone writes commit at once.
        let mut waits = 0;
        while linger.worth_waiting() {
            linger.waited(false);
            waits += 1;
        }
        assert!((5..=20).contains(&waits), "{waits} empty waits before it stopped");
        // From then on one lone write in RETRY_EVERY waits, to see whether traffic changed.
        let tries = (0..Linger::RETRY_EVERY * 4)
            .filter(|_| {
                let tried = linger.worth_waiting();
                if tried {
                    linger.waited(false);
                }
                tried
            })
            .count();
        assert_eq!(tries, 4, "one try in each RETRY_EVERY lone writes");
        // Once tries find company again, lone writes go back to waiting.
        let mut lone = 0;
        while linger.found < Linger::WORTH_IT {
            if linger.worth_waiting() {
                linger.waited(true);
            }
            lone += 1;
        }
        assert!(linger.worth_waiting());
        assert!(lone <= Linger::RETRY_EVERY * 4, "{lone} lone writes before waiting again");
    }

    #[test]
    fn a_new_store_gets_small_pages_and_an_old_one_keeps_its_own() {
        let directory = crate::sqlite::TestDir::new("pages");
        let close = |engine: Arc<Engine>| Arc::into_inner(engine).unwrap().close();
        let page_size = |path: &Path| -> u32 {
            Connection::open(path).unwrap().query_row("PRAGMA page_size", [], |row| row.get(0)).unwrap()
        };
        let new = directory.0.join("new.db");
        close(Engine::open(&new, 1 << 22).unwrap());
        assert_eq!(page_size(&new), PAGE_SIZE);
        let old = directory.0.join("old.db");
        Connection::open(&old).unwrap().execute_batch("PRAGMA page_size = 4096; CREATE TABLE t (x)").unwrap();
        close(Engine::open(&old, 1 << 22).unwrap());
        assert_eq!(page_size(&old), 4096);
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
