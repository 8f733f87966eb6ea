//! Applies the schema's migrations (`crate::schema`) to the SQLite file at start-up.

use rusqlite::Connection;

use crate::schema::{MIGRATIONS, Upgrade, later_than_known};
use crate::sql::Dialect;

/// Brings the schema up to date inside one transaction.
pub fn migrate(connection: &mut Connection) -> rusqlite::Result<Option<i64>> {
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if let Some(later) = later_than_known(current) {
        return Ok(Some(later));
    }
    let upgrade = Upgrade::begin(current);
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        transaction.execute_batch(migration.statements(Dialect::Sqlite))?;
        transaction.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
    }
    transaction.commit()?;
    if let Some(upgrade) = upgrade {
        upgrade.end();
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_made_by_the_previous_release_migrates_and_keeps_its_rows() {
        let mut connection = Connection::open_in_memory().unwrap();
        // The previous release's schema (version 3), with an endpoint of three topics and an attempt in its log.
        for migration in &MIGRATIONS[..3] {
            connection.execute_batch(migration.statements(Dialect::Sqlite)).unwrap();
        }
        connection
            .execute_batch(
                "PRAGMA user_version = 3;
                 INSERT INTO tenants VALUES ('acme', 'Acme', 1);
                 INSERT INTO endpoints (id, tenant_id, url, topics, description, enabled, format, signing, secret,
                     created_at, updated_at)
                     VALUES ('ep_1', 'acme', 'https://example.com/', 'pdf.processed,end_user.created,a.b', '', 1,
                         'envelope', 'standard', 'whsec_x', 1, 1);
                 INSERT INTO endpoint_topics VALUES ('ep_1', 'a.b'), ('ep_1', 'end_user.created'),
                     ('ep_1', 'pdf.processed');
                 INSERT INTO events (id, tenant_id, topic, created_at, data) VALUES ('evt_1', 'acme', 'pdf.processed', 1, '{}');
                 INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, topic, format, text_escape, status,
                     created_at, updated_at)
                     VALUES ('del_1', 'acme', 'evt_1', 'ep_1', 'pdf.processed', 'envelope', 'utf8', 'failed', 1, 1);
                 INSERT INTO attempts (delivery_id, number, started_at, duration_ms, url, request_headers,
                     response_status, response_headers, response_headers_omitted)
                     VALUES ('del_1', 1, 1, 5, 'https://example.com/', '[]', 500, '[[\"x-a\",\"1\"]]', 2);",
            )
            .unwrap();
        migrate(&mut connection).unwrap();
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let (headers, omitted): (String, i64) = connection
            .query_row("SELECT response_headers, response_headers_omitted FROM attempts", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((headers.as_str(), omitted), (r#"[["x-a","1"]]"#, 2));
        // The topics are in the join table alone now, in the order the comma list had them.
        let topics: String = connection
            .query_row(
                "SELECT string_agg(topic, ',' ORDER BY position) FROM endpoint_topics WHERE endpoint_id = 'ep_1'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(topics, "pdf.processed,end_user.created,a.b");
        let columns: i64 = connection
            .query_row("SELECT COUNT(*) FROM pragma_table_info('endpoints') WHERE name = 'topics'", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(columns, 0, "the comma list is gone");
        // Migrating again changes nothing.
        migrate(&mut connection).unwrap();
    }
}
