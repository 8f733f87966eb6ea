//! The schema of both databases and its migrations, in one list applied in order at start-up. A migration is
//! written once when both dialects read it alike, and once per dialect, side by side, where they differ. Integer
//! columns are `BIGINT` on PostgreSQL (SQLite's `INTEGER` and `BIGINT` are the same), so both backends read rows
//! with the same code.

use crate::sql::Dialect;

/// One step of the schema.
pub(crate) enum Migration {
    /// The same statements on both databases.
    Both(&'static str),
    /// Statements for each.
    Each { sqlite: &'static str, postgres: &'static str },
}

impl Migration {
    pub(crate) fn statements(&self, dialect: Dialect) -> &'static str {
        match (self, dialect) {
            (Migration::Both(statements), _) => statements,
            (Migration::Each { sqlite, .. }, Dialect::Sqlite) => sqlite,
            (Migration::Each { postgres, .. }, Dialect::Postgres) => postgres,
        }
    }
}

/// The version of a store's schema when it is later than this release's (a store migrated by a later release,
/// which this one would misread and could damage), so that opening it is refused.
pub(crate) fn later_than_known(current: i64) -> Option<i64> {
    (current > MIGRATIONS.len() as i64).then_some(current)
}

/// A migration of a store that an earlier release made, told to the operator as it starts and as it ends: on a big
/// store a new index takes a while to build (two minutes for ten million deliveries), and the server listens only
/// once the schema is up to date. A new store's first migration is not told.
pub(crate) struct Upgrade {
    from: usize,
    started: std::time::Instant,
}

impl Upgrade {
    pub(crate) fn begin(current: i64) -> Option<Upgrade> {
        let from = usize::try_from(current).ok().filter(|from| (1..MIGRATIONS.len()).contains(from))?;
        tracing::info!(from, to = MIGRATIONS.len(), "migrating the store's schema; on a big store this takes minutes");
        Some(Upgrade { from, started: std::time::Instant::now() })
    }

    pub(crate) fn end(self) {
        let took = self.started.elapsed();
        tracing::info!(from = self.from, to = MIGRATIONS.len(), ?took, "the store's schema is up to date");
    }
}

/// Entry `n` moves the schema from version `n` to `n + 1`. Append only; never edit a shipped one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    // 1: the first release.
    Migration::Each {
        sqlite: r#"
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
        postgres: r#"
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
    },
    // 2: the per-endpoint due index.
    Migration::Both(
        r#"
CREATE INDEX deliveries_endpoint_due ON deliveries(endpoint_id, next_attempt_at) WHERE status = 'pending';
"#,
    ),
    // 3: how many response headers an attempt left out.
    Migration::Each {
        sqlite: r#"
ALTER TABLE attempts ADD COLUMN response_headers_omitted INTEGER NOT NULL DEFAULT 0;
"#,
        postgres: r#"
ALTER TABLE attempts ADD COLUMN response_headers_omitted BIGINT NOT NULL DEFAULT 0;
"#,
    },
    // 4: an endpoint's topics are stored once, in endpoint_topics, in the order they were given (the position
    // of each in the comma list they replace).
    Migration::Each {
        sqlite: r#"
ALTER TABLE endpoint_topics ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
UPDATE endpoint_topics SET position = (
    SELECT instr(',' || e.topics || ',', ',' || endpoint_topics.topic || ',') FROM endpoints e
    WHERE e.id = endpoint_topics.endpoint_id);
ALTER TABLE endpoints DROP COLUMN topics;
"#,
        postgres: r#"
ALTER TABLE endpoint_topics ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
UPDATE endpoint_topics t SET position = strpos(',' || e.topics || ',', ',' || t.topic || ',')
    FROM endpoints e WHERE e.id = t.endpoint_id;
ALTER TABLE endpoints DROP COLUMN topics;
"#,
    },
    // 5: which node runs each background job.
    Migration::Both(
        r#"
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_at BIGINT NOT NULL
);
"#,
    ),
    // 6: a deleted tenant or endpoint is marked at once and its rows are removed in the background.
    Migration::Both(
        r#"
ALTER TABLE tenants ADD COLUMN deleted_at BIGINT;
ALTER TABLE endpoints ADD COLUMN deleted_at BIGINT;
CREATE INDEX tenants_deleted ON tenants(deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX endpoints_deleted ON endpoints(deleted_at) WHERE deleted_at IS NOT NULL;
"#,
    ),
    // 7: a tenant's and an endpoint's failed and cancelled deliveries, newest first, without stepping over the
    // rest (the failed among millions that succeeded): partial indexes, which a delivery enters only when it ends
    // so, and so cost a publish nothing. An event's deliveries in id order, so that the list of them is not read
    // off the tenant's index instead, to spare a sort; a tenant's events of one topic.
    Migration::Both(
        r#"
CREATE INDEX events_by_topic ON events(tenant_id, topic, id);
DROP INDEX deliveries_by_event;
CREATE INDEX deliveries_by_event ON deliveries(event_id, id);
CREATE INDEX deliveries_failed_by_tenant ON deliveries(tenant_id, id) WHERE status = 'failed';
CREATE INDEX deliveries_failed_by_endpoint ON deliveries(endpoint_id, id) WHERE status = 'failed';
CREATE INDEX deliveries_cancelled_by_tenant ON deliveries(tenant_id, id) WHERE status = 'cancelled';
CREATE INDEX deliveries_cancelled_by_endpoint ON deliveries(endpoint_id, id) WHERE status = 'cancelled';
"#,
    ),
    // 8: PostgreSQL vacuums the tables that retention and deliveries churn after a small share of their rows is
    // dead, not the default fifth, and without pausing: by default a table of a few million rows bloated by
    // hundreds of thousands of dead rows before a pass began, and every index scan stepped over them meanwhile.
    Migration::Each {
        sqlite: "-- SQLite reuses freed pages itself.",
        postgres: r#"
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE events SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE attempts SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
"#,
    },
    // 9: on PostgreSQL, events, deliveries and attempts keep no foreign keys. Hookline removes children before
    // parents itself (retention and big deletes alike) and a publish holds its tenant's row (`FOR SHARE`) while it
    // writes, so the keys guarded nothing the code does not; but each inserted delivery and attempt ran a query
    // that locked its parent row, a WAL record each, and each deleted event and delivery a cascade that looked
    // for children already gone. SQLite checks its keys by reading an index, and dropping one there means
    // rebuilding the table: it keeps them.
    Migration::Each {
        sqlite: "-- SQLite keeps its foreign keys.",
        postgres: r#"
ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_delivery_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_event_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_tenant_id_fkey;
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_tenant_id_fkey;
"#,
    },
    // 10: on PostgreSQL, events, deliveries and attempts are partitioned by time (their ids begin with it), so that
    // retention drops a whole partition instead of deleting its rows one by one (`crate::postgres::partitions`).
    // The tables as they were become each one's first partition, of every id up to the newest millisecond they
    // hold, named after it (an empty store's holds nothing, and the first purge drops it); the partitions after
    // it are made by the store as time goes on. An idempotency key is unique across partitions by a lock on it
    // while a publish writes (`crate::events::postgres`), since a unique index cannot span them.
    Migration::Each {
        sqlite: "-- SQLite keeps one table of each.",
        postgres: r#"
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_tenant_id_idempotency_key_key;
DO $$
DECLARE
    newest TEXT;
    target RECORD;
    index_name TEXT;
BEGIN
    SELECT COALESCE(max(body), '0000000000') INTO newest FROM (
        SELECT substr(max(id), 5, 10) AS body FROM events
        UNION ALL SELECT substr(max(id), 5, 10) FROM deliveries
        UNION ALL SELECT substr(max(delivery_id), 5, 10) FROM attempts) AS newest_of_each;
    FOR target IN SELECT * FROM (VALUES ('events', 'id', 'evt_'), ('deliveries', 'id', 'del_'),
                                        ('attempts', 'delivery_id', 'del_')) AS t(name, key, prefix) LOOP
        FOR index_name IN SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = target.name::regclass LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', index_name, index_name || '_p' || newest);
        END LOOP;
        EXECUTE format('ALTER TABLE %I RENAME TO %I', target.name, target.name || '_p' || newest);
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS) PARTITION BY RANGE (%I)',
            target.name, target.name || '_p' || newest, target.key);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)',
            target.name, target.name || '_p' || newest, target.prefix || newest || 'zzzzzzzzzzzzzzzz');
    END LOOP;
END
$$;
ALTER TABLE events ADD PRIMARY KEY (id);
CREATE INDEX events_by_tenant ON events(tenant_id, id);
CREATE INDEX events_by_topic ON events(tenant_id, topic, id);
CREATE INDEX events_by_key ON events(tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
ALTER TABLE deliveries ADD PRIMARY KEY (id);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_tenant ON deliveries(tenant_id, id);
CREATE INDEX deliveries_by_event ON deliveries(event_id, id);
CREATE INDEX deliveries_by_endpoint ON deliveries(endpoint_id, id);
CREATE INDEX deliveries_endpoint_due ON deliveries(endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_failed_by_tenant ON deliveries(tenant_id, id) WHERE status = 'failed';
CREATE INDEX deliveries_failed_by_endpoint ON deliveries(endpoint_id, id) WHERE status = 'failed';
CREATE INDEX deliveries_cancelled_by_tenant ON deliveries(tenant_id, id) WHERE status = 'cancelled';
CREATE INDEX deliveries_cancelled_by_endpoint ON deliveries(endpoint_id, id) WHERE status = 'cancelled';
ALTER TABLE attempts ADD PRIMARY KEY (delivery_id, number);
"#,
    },
    // 11: on PostgreSQL, the due index holds only what a claim can prove it needs (a due time), so that a list of a
    // tenant's or an endpoint's pending deliveries cannot read through it: the planner chose it over the
    // per-endpoint one, its order being that of the table, and read every tenant's pending rows (50,000 for a
    // tenant with none, 140 ms, on a store of ten million). Every pending delivery has a due time, so it holds the
    // same rows. SQLite is told which index each list reads.
    Migration::Each {
        sqlite: "-- SQLite lists read through the index they name.",
        postgres: r#"
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
"#,
    },
    // 12: a topic's example `data`, which test events send (a seeded topic without one falls back to its built-in
    // example, `hookline_core::topic::seed_example`).
    Migration::Both(
        r#"
ALTER TABLE topics ADD COLUMN example TEXT;
"#,
    ),
    // 13: why each delivery was made (a publish, a test event, a resend) and what made each attempt (the schedule,
    // a retry by hand, a resend, a recover, a test): `cause` on a delivery is what will make its next attempt,
    // `NULL` for the schedule.
    Migration::Both(
        r#"
ALTER TABLE deliveries ADD COLUMN origin TEXT NOT NULL DEFAULT 'publish';
ALTER TABLE deliveries ADD COLUMN cause TEXT;
ALTER TABLE attempts ADD COLUMN cause TEXT NOT NULL DEFAULT 'schedule';
"#,
    ),
    // 14: recoveries: an endpoint's failed deliveries of a window (delivery ids from `since_id` up to `until_id`),
    // queued again a batch at a time in the background; `cursor` is the last one queued.
    Migration::Both(
        r#"
CREATE TABLE recoveries (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    since_id TEXT NOT NULL,
    until_id TEXT NOT NULL,
    cursor TEXT,
    total BIGINT NOT NULL,
    queued BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX recoveries_open ON recoveries(created_at) WHERE finished_at IS NULL;
CREATE INDEX recoveries_by_tenant ON recoveries(tenant_id, id);
"#,
    ),
    // 15: an endpoint's own request headers, a JSON array of [name, value] pairs sent on every attempt.
    Migration::Both(
        r#"
ALTER TABLE endpoints ADD COLUMN headers TEXT NOT NULL DEFAULT '[]';
"#,
    ),
    // 16: the secret a rotation replaced, which signs beside (standard) or instead of (heron, herald) the new one
    // until its grace period ends.
    Migration::Both(
        r#"
ALTER TABLE endpoints ADD COLUMN previous_secret TEXT;
ALTER TABLE endpoints ADD COLUMN previous_secret_until BIGINT;
"#,
    ),
    // 17: endpoint health, kept as attempts are recorded: the current run of failures, successes and failures per
    // hour (seven days kept), operational events waiting to be published, and why and when an endpoint was
    // disabled.
    Migration::Both(
        r#"
CREATE TABLE endpoint_health (
    endpoint_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    failing_since BIGINT,
    last_success_at BIGINT,
    last_failure_at BIGINT,
    failing_told BOOLEAN NOT NULL DEFAULT FALSE,
    exhausted_in_run BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE endpoint_hours (
    endpoint_id TEXT NOT NULL,
    hour BIGINT NOT NULL,
    successes BIGINT NOT NULL DEFAULT 0,
    failures BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, hour)
);
CREATE INDEX endpoint_hours_by_hour ON endpoint_hours(hour);
CREATE TABLE notices (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
ALTER TABLE endpoints ADD COLUMN disabled_reason TEXT;
ALTER TABLE endpoints ADD COLUMN disabled_at BIGINT;
"#,
    ),
    // 18: a topic's text template, which chat messages (Slack, Discord, Teams) of its events show.
    Migration::Both(
        r#"
ALTER TABLE topics ADD COLUMN template TEXT;
"#,
    ),
    // 19: the portal: single-use links (their tokens' hashes) and the sessions they start, listed per tenant and
    // purged once over.
    Migration::Both(
        r#"
CREATE TABLE portal_links (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    user_label TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX portal_links_expiry ON portal_links(expires_at);
CREATE TABLE portal_sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    user_label TEXT,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX portal_sessions_by_tenant ON portal_sessions(tenant_id, id);
CREATE INDEX portal_sessions_expiry ON portal_sessions(expires_at);
CREATE INDEX portal_sessions_revoked ON portal_sessions(revoked_at) WHERE revoked_at IS NOT NULL;
"#,
    ),
    // 20: a portal link's theme (JSON: name, accent, mode), which the session it starts keeps.
    Migration::Both(
        r#"
ALTER TABLE portal_links ADD COLUMN theme TEXT;
ALTER TABLE portal_sessions ADD COLUMN theme TEXT;
"#,
    ),
    // 21: operators signed in to the console with the admin key.
    Migration::Both(
        r#"
CREATE TABLE console_sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions(expires_at);
"#,
    ),
    // 22: a console session holds the hash of the admin key it signed in with: a new key signs every session out.
    Migration::Both(
        r#"
ALTER TABLE console_sessions ADD COLUMN key_hash TEXT NOT NULL DEFAULT '';
"#,
    ),
];
