//! The SQLite schema and its migrations, applied in order at start-up.

use rusqlite::Connection;

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
    r#"
ALTER TABLE attempts ADD COLUMN response_headers_omitted INTEGER NOT NULL DEFAULT 0;
"#,
];

/// Brings the schema up to date inside one transaction.
pub fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        transaction.execute_batch(migration)?;
        transaction.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
    }
    transaction.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_made_by_the_previous_release_migrates_and_keeps_its_rows() {
        let mut connection = Connection::open_in_memory().unwrap();
        // The previous release's schema (version 2), with an attempt in its delivery log.
        for migration in &MIGRATIONS[..2] {
            connection.execute_batch(migration).unwrap();
        }
        connection
            .execute_batch(
                "PRAGMA user_version = 2;
                 INSERT INTO tenants VALUES ('acme', 'Acme', 1);
                 INSERT INTO events (id, tenant_id, topic, created_at, data) VALUES ('evt_1', 'acme', 'pdf.processed', 1, '{}');
                 INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, topic, format, text_escape, status,
                     created_at, updated_at)
                     VALUES ('del_1', 'acme', 'evt_1', 'ep_1', 'pdf.processed', 'envelope', 'utf8', 'failed', 1, 1);
                 INSERT INTO attempts (delivery_id, number, started_at, duration_ms, url, request_headers,
                     response_status, response_headers)
                     VALUES ('del_1', 1, 1, 5, 'https://example.com/', '[]', 500, '[[\"x-a\",\"1\"]]');",
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
        assert_eq!((headers.as_str(), omitted), (r#"[["x-a","1"]]"#, 0));
        // Migrating again changes nothing.
        migrate(&mut connection).unwrap();
    }
}
