//! `hookline store vacuum`: rebuilds the embedded store's file while no server has it open. Retention and
//! background deletes free pages, which later writes reuse, so the file stops growing without it; this gives the
//! space back to the file system, and moves a store made before the page size changed onto the current one.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::engine::PAGE_SIZE;
use crate::OpenError;

/// What a vacuum did to the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vacuumed {
    pub path: PathBuf,
    /// The database file's size before and after (its WAL emptied into it first).
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub page_size_before: u32,
    pub page_size_after: u32,
}

/// Rebuilds `hookline.db` in `data_dir`, packed and on the current page size. Takes the directory's lock, so it
/// fails while a server runs there. Blocks for as long as copying the file takes, and needs free space for up to
/// twice the file meanwhile (the rebuilt copy and a journal that makes the swap crash-safe).
pub fn vacuum(data_dir: &Path) -> Result<Vacuumed, OpenError> {
    let path = data_dir.join("hookline.db");
    if !path.is_file() {
        return Err(OpenError::NoStore { path });
    }
    let _lock = crate::lock_data_dir(data_dir)?;
    let connection = Connection::open(&path)?;
    let page_size = |connection: &Connection| -> rusqlite::Result<u32> {
        connection.query_row("PRAGMA page_size", [], |row| row.get(0))
    };
    let file_size = || std::fs::metadata(&path).map(|metadata| metadata.len()).unwrap_or(0);
    // A page size can only change outside WAL mode; leaving it empties the log into the file.
    set_journal_mode(&connection, "delete")?;
    let (bytes_before, page_size_before) = (file_size(), page_size(&connection)?);
    connection.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}; VACUUM;"))?;
    set_journal_mode(&connection, "wal")?;
    let page_size_after = page_size(&connection)?;
    drop(connection);
    Ok(Vacuumed { bytes_after: file_size(), path, bytes_before, page_size_before, page_size_after })
}

fn set_journal_mode(connection: &Connection, wanted: &str) -> Result<(), OpenError> {
    let mode: String = connection.query_row(&format!("PRAGMA journal_mode = {wanted}"), [], |row| row.get(0))?;
    if mode.eq_ignore_ascii_case(wanted) { Ok(()) } else { Err(OpenError::NotWal { mode }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::TestDir as Dir;

    #[test]
    fn a_vacuum_gives_freed_space_back_moves_an_old_store_to_small_pages_and_keeps_every_row() {
        let dir = Dir::new("vacuum");
        let path = dir.0.join("hookline.db");
        // A store made on the old page size, in WAL mode, with rows kept and a great many deleted.
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
                     INSERT INTO t SELECT i, printf('%.500c', 'x') FROM n;
                 DELETE FROM t WHERE id > 100;",
            )
            .unwrap();
        drop(connection);
        let vacuumed = vacuum(&dir.0).unwrap();
        assert_eq!((vacuumed.page_size_before, vacuumed.page_size_after), (4096, PAGE_SIZE));
        assert!(vacuumed.bytes_before > 10_000_000, "{vacuumed:?}");
        assert!(vacuumed.bytes_after < 200_000, "{vacuumed:?}");
        let connection = Connection::open(&path).unwrap();
        let (rows, mode): (i64, String) = connection
            .query_row("SELECT (SELECT COUNT(*) FROM t), (SELECT journal_mode FROM pragma_journal_mode)", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((rows, mode.as_str()), (100, "wal"));
    }

    #[test]
    fn a_vacuum_refuses_a_store_in_use_and_a_directory_without_one() {
        let dir = Dir::new("vacuum-busy");
        assert!(matches!(vacuum(&dir.0), Err(OpenError::NoStore { .. })));
        Connection::open(dir.0.join("hookline.db")).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
        let lock = crate::lock_data_dir(&dir.0).unwrap();
        assert!(matches!(vacuum(&dir.0), Err(OpenError::Locked { .. })));
        drop(lock);
        vacuum(&dir.0).unwrap();
    }
}
