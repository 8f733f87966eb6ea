//! The PostgreSQL schema and its migrations, applied at start-up under an advisory lock so that several nodes
//! starting at once apply each migration exactly once.

use tokio_postgres::Client;

/// Each entry moves the schema from version `index` to `index + 1`. Append only; never edit a shipped one.
/// Columns mirror the SQLite schema; every integer is `BIGINT` so both backends read rows the same way.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE topics (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    deprecated BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX api_keys_by_tenant ON api_keys(tenant_id);
CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    topics TEXT NOT NULL,
    description TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    format TEXT NOT NULL,
    signing TEXT NOT NULL,
    secret TEXT NOT NULL,
    retry_schedule TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
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
    created_at BIGINT NOT NULL,
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
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease BIGINT,
    lease_node TEXT,
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_tenant ON deliveries(tenant_id, id);
CREATE INDEX deliveries_by_event ON deliveries(event_id);
CREATE INDEX deliveries_by_endpoint ON deliveries(endpoint_id, id);
CREATE TABLE attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    url TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    response_status BIGINT,
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
ALTER TABLE attempts ADD COLUMN response_headers_omitted BIGINT NOT NULL DEFAULT 0;
"#,
];

/// The advisory lock that serialises migrations across nodes ("hookline" in ASCII).
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6c69_6e65;

/// Brings the schema up to date in one transaction; another node migrating at the same moment waits, then
/// finds nothing left to do.
pub(crate) async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    transaction.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)").await?;
    let current: i64 = match transaction.query_opt("SELECT version FROM schema_version", &[]).await? {
        Some(row) => row.try_get(0)?,
        None => {
            transaction.execute("INSERT INTO schema_version (version) VALUES (0)", &[]).await?;
            0
        }
    };
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        transaction.batch_execute(migration).await?;
        transaction.execute("UPDATE schema_version SET version = $1", &[&(index as i64 + 1)]).await?;
    }
    transaction.commit().await
}
