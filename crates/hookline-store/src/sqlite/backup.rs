//! `hookline store backup`: a consistent copy of the embedded store, made while a server runs on it.
//!
//! The copy is SQLite's online backup in one step: it reads every page of one snapshot (the database file and
//! what the WAL holds on top of it) inside one read transaction, so it is the store exactly as some commit left
//! it. A reader does not hold writes back in WAL mode; what it holds back is the WAL's restart, since the log
//! cannot start again while a reader still needs its frames. So while a backup runs the WAL grows by what is
//! written meanwhile, past its bound if the backup is long, and the writer's tries to restart it (each waiting
//! `CHECKPOINT_WAIT` for readers to leave) are the only waits publishes see; the log is cut back at the next
//! restart after the copy ends.
//!
//! The copy is written to `FILE.partial`, synced, and only then renamed to `FILE`, so a `FILE` that exists is
//! whole. A backup never overwrites a file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::OpenError;

/// How long the backup waits for a lock it needs (a checkpoint emptying the WAL holds one briefly).
const BUSY_WAIT: Duration = Duration::from_secs(10);
/// How often what the copy has written so far is flushed to disk while it runs. Left to the kernel, gigabytes of
/// the copy stayed in memory until its final sync, which then held the disk for seconds and the server's commits
/// (each waiting for its own fsync) with it: publishes waited up to 1.7 s during a backup of a 3 GB store.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// What a backup made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackedUp {
    /// The store that was copied.
    pub from: PathBuf,
    /// The copy.
    pub to: PathBuf,
    pub bytes: u64,
    pub pages: u64,
}

/// Copies the store in `data_dir` to `to`, a path that must not exist yet. Works whether or not a server runs
/// on the store, and takes no lock a server needs.
pub fn backup(data_dir: &Path, to: &Path) -> Result<BackedUp, OpenError> {
    let from = data_dir.join("hookline.db");
    if !from.is_file() {
        return Err(OpenError::NoStore { path: from });
    }
    if to.exists() {
        return Err(OpenError::BackupExists { path: to.to_owned() });
    }
    let mut partial = to.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let copied = copy(&from, &partial).and_then(|pages| {
        finish(&partial, to)?;
        Ok(pages)
    });
    let pages = match copied {
        Ok(pages) => pages,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    let bytes = std::fs::metadata(to).map(|metadata| metadata.len()).unwrap_or(0);
    Ok(BackedUp { from, to: to.to_owned(), bytes, pages })
}

/// Copies every page of one snapshot of `from` into a new file at `partial`; the number of pages.
fn copy(from: &Path, partial: &Path) -> Result<u64, OpenError> {
    // Read and write, as the server opens it: a read-only connection cannot set up the WAL index when no server
    // runs. Nothing is written through it.
    let source =
        Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    source.busy_timeout(BUSY_WAIT)?;
    // Made here first, so that a path SQLite cannot write to is told apart from a store it cannot read. An empty
    // file is an empty database.
    std::fs::File::create_new(partial)
        .map_err(|source| OpenError::BackupTarget { path: partial.to_owned(), source })?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut destination = Connection::open_with_flags(partial, flags)?;
    // The copy is synced once, whole, before it is renamed into place: no journal needed on the way.
    destination.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF")?;
    let flusher = Flusher::start(partial);
    let pages = {
        let backup = Backup::new(&source, &mut destination)?;
        // All pages in one step: one read transaction, so one snapshot. Copied in several steps, a backup starts
        // over whenever another process (the server) commits between two of them.
        match backup.step(-1)? {
            StepResult::Done => {}
            other => {
                return Err(OpenError::BackupIncomplete { detail: format!("{other:?}") });
            }
        }
        backup.progress().pagecount as u64
    };
    destination.close().map_err(|(_, error)| error)?;
    drop(flusher);
    Ok(pages)
}

/// Flushes the copy to disk every `FLUSH_EVERY` while it is written, on a thread of its own, until dropped.
struct Flusher {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn start(path: &Path) -> Flusher {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        // Without the file or a thread the copy is still whole: only its final sync is longer.
        let file = std::fs::OpenOptions::new().write(true).open(path).ok();
        let thread = file.and_then(|file| {
            std::thread::Builder::new()
                .name("hookline-backup-flush".into())
                .spawn(move || {
                    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(FLUSH_EVERY) {
                        let _ = file.sync_data();
                    }
                })
                .ok()
        });
        Flusher { stop: Some(stop), thread }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Syncs the copy and renames it into place, syncing the directory so that the name survives a crash too.
fn finish(partial: &Path, to: &Path) -> Result<(), OpenError> {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OpenError + '_ {
        move |source| OpenError::BackupTarget { path: path.to_owned(), source }
    }
    std::fs::File::open(partial).and_then(|file| file.sync_all()).map_err(io(partial))?;
    std::fs::rename(partial, to).map_err(io(to))?;
    let directory = match to.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(directory).and_then(|file| file.sync_all()).map_err(io(directory))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::TestDir as Dir;

    #[test]
    fn a_backup_holds_every_committed_row_including_those_still_in_the_wal() {
        let dir = Dir::new("backup");
        let path = dir.0.join("hookline.db");
        let writer = Connection::open(&path).unwrap();
        // The rows stay in the WAL: no checkpoint copies them into the file before the backup reads it.
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
                 WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < 5000)
                 INSERT INTO t (data) SELECT 'row ' || value FROM n;",
            )
            .unwrap();
        assert!(std::fs::metadata(dir.0.join("hookline.db-wal")).unwrap().len() > 0);
        let to = dir.0.join("copy.db");
        let made = backup(&dir.0, &to).unwrap();
        assert_eq!(made.to, to);
        assert!(made.pages > 0 && made.bytes > 0);
        assert!(!dir.0.join("copy.db.partial").exists());
        let copy = Connection::open(&to).unwrap();
        let (rows, last): (i64, String) = copy
            .query_row("SELECT COUNT(*), (SELECT data FROM t WHERE id = 5000) FROM t", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((rows, last.as_str()), (5000, "row 5000"));
        let check: String = copy.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
        assert_eq!(check, "ok");
        // The store's own file is still in use and unchanged.
        let still: i64 = writer.query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0)).unwrap();
        assert_eq!(still, 5000);
    }

    #[test]
    fn a_backup_never_overwrites_and_needs_a_store() {
        let dir = Dir::new("backup-refusals");
        let to = dir.0.join("copy.db");
        assert!(matches!(backup(&dir.0, &to), Err(OpenError::NoStore { .. })));
        Connection::open(dir.0.join("hookline.db")).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
        std::fs::write(&to, b"precious").unwrap();
        let refused = backup(&dir.0, &to).unwrap_err();
        assert!(matches!(refused, OpenError::BackupExists { .. }), "{refused}");
        assert_eq!(std::fs::read(&to).unwrap(), b"precious");
        let elsewhere = dir.0.join("no-such-dir").join("copy.db");
        let missing = backup(&dir.0, &elsewhere).unwrap_err();
        assert!(
            matches!(&missing, OpenError::BackupTarget { path, .. } if path.ends_with("copy.db.partial")),
            "{missing}"
        );
        assert!(!dir.0.join("no-such-dir").exists());
    }
}
