//! The SQLite schema and its migrations, applied in order at start-up.

use rusqlite::{Connection, OptionalExtension};

/// Each entry moves the schema from version `index` to `index + 1`. Append only; never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE topics (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    deprecated INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX api_keys_by_tenant ON api_keys(tenant_id);
CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    topics TEXT NOT NULL,
    description TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    format TEXT NOT NULL,
    signing TEXT NOT NULL,
    secret TEXT NOT NULL,
    retry_schedule TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX endpoints_by_tenant ON endpoints(tenant_id, id);
CREATE TABLE endpoint_topics (
    endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    topic TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, topic)
);
CREATE INDEX endpoint_topics_by_topic ON endpoint_topics(topic);
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    topic TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL,
    meta TEXT,
    idempotency_key TEXT,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX events_by_tenant ON events(tenant_id, id);
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    format TEXT NOT NULL,
    text_escape TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease INTEGER,
    last_status INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_tenant ON deliveries(tenant_id, id);
CREATE INDEX deliveries_by_event ON deliveries(event_id);
CREATE INDEX deliveries_by_endpoint ON deliveries(endpoint_id, id);
CREATE TABLE attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    url TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    response_status INTEGER,
    response_headers TEXT NOT NULL,
    response_body TEXT,
    error_kind TEXT,
    error_detail TEXT,
    PRIMARY KEY (delivery_id, number)
);
"#,
    r#"
CREATE INDEX deliveries_endpoint_due ON deliveries(endpoint_id, next_attempt_at) WHERE status = 'pending';
"#,
    // Deliveries are found by their ids, so the id becomes the table's key: each insert and each update by id
    // then walks one b-tree fewer (a separate rowid table and id index before). Attempts keep their rowid
    // table: their rows are too long for a table keyed by text.
    r#"
CREATE TABLE deliveries_by_key (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    event_id TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    format TEXT NOT NULL,
    text_escape TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease INTEGER,
    last_status INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO deliveries_by_key SELECT id, tenant_id, event_id, endpoint_id, topic, format, text_escape, status,
    attempts, next_attempt_at, lease, last_status, last_error, created_at, updated_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_by_key RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_tenant ON deliveries(tenant_id, id);
CREATE INDEX deliveries_by_event ON deliveries(event_id);
CREATE INDEX deliveries_by_endpoint ON deliveries(endpoint_id, id);
CREATE INDEX deliveries_endpoint_due ON deliveries(endpoint_id, next_attempt_at) WHERE status = 'pending';
"#,
];

/// Brings the schema up to date inside one transaction.
///
/// Foreign keys are off meanwhile (SQLite ignores the setting inside a transaction): a migration that rebuilds a
/// table drops the old one, and with them on, that drop would delete the rows that refer to it. The check
/// afterwards makes sure the rebuilt tables still hold together.
pub fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    connection.execute_batch("PRAGMA foreign_keys = OFF")?;
    let migrated = apply(connection);
    connection.execute_batch("PRAGMA foreign_keys = ON")?;
    migrated
}

fn apply(connection: &mut Connection) -> rusqlite::Result<()> {
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        transaction.execute_batch(migration)?;
        transaction.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
    }
    let broken: Option<String> = transaction.query_row("PRAGMA foreign_key_check", [], |row| row.get(0)).optional()?;
    if let Some(table) = broken {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
            Some(format!("after migrating, rows of {table} refer to rows that do not exist")),
        ));
    }
    transaction.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilding_deliveries_keeps_every_row_and_every_reference() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        // A store as version 2 left it, with a delivery and its attempt.
        for migration in &MIGRATIONS[..2] {
            connection.execute_batch(migration).unwrap();
        }
        connection.execute_batch("PRAGMA user_version = 2").unwrap();
        connection
            .execute_batch(
                "INSERT INTO tenants VALUES ('tnt_1', 'one', 1);
                 INSERT INTO events VALUES ('evt_1', 'tnt_1', 'job.done', 1, '{}', NULL, NULL);
                 INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, topic, format, text_escape, status,
                     attempts, next_attempt_at, created_at, updated_at)
                 VALUES ('dlv_1', 'tnt_1', 'evt_1', 'ep_1', 'job.done', 'plain', 'ascii', 'pending', 1, 5, 1, 2);
                 INSERT INTO attempts VALUES ('dlv_1', 1, 3, 4, 'https://example.com/', '[]', 500, '[]', 'no', 'status',
                     'the endpoint answered 500');",
            )
            .unwrap();

        migrate(&mut connection).unwrap();

        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
        let (status, due): (String, i64) = connection
            .query_row("SELECT status, next_attempt_at FROM deliveries WHERE id = 'dlv_1'", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((status.as_str(), due), ("pending", 5));
        let detail: String = connection
            .query_row("SELECT error_detail FROM attempts WHERE delivery_id = 'dlv_1' AND number = 1", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(detail, "the endpoint answered 500");
        assert!(connection.prepare("SELECT rowid FROM deliveries").is_err(), "the id is the table's key");
        let foreign_keys: bool = connection.query_row("PRAGMA foreign_keys", [], |row| row.get(0)).unwrap();
        assert!(foreign_keys, "foreign keys are back on");
        // The references still hold: deleting the event takes its delivery and attempt with it.
        connection.execute("DELETE FROM events WHERE id = 'evt_1'", []).unwrap();
        let left: i64 = connection
            .query_row("SELECT (SELECT COUNT(*) FROM deliveries) + (SELECT COUNT(*) FROM attempts)", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(left, 0);
        let indexes: i64 = connection
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries' AND name NOT LIKE 'sqlite_%'", [], |row| row.get(0))
            .unwrap();
        assert_eq!(indexes, 5);
    }
}
