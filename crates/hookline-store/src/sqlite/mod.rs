//! The embedded backend: one SQLite file in the data directory, written by one thread in group commits.
//!
//! Only one process may use a data directory (it is locked), so at start-up every lease left by a previous run
//! belongs to a dead process and is released at once.

mod engine;
mod schema;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hookline_core::clock::Clock;
use hookline_core::id::{DeliveryId, EndpointId, EventId, TenantId};
use hookline_core::time::Timestamp;
use hookline_core::topic::{SEED_TOPICS, TopicName};
use rusqlite::{Connection, OptionalExtension, Params, Statement, params};

use self::engine::{Engine, Isolation};
use crate::model::*;
use crate::rows::*;
use crate::shared::*;
use crate::{Claim, DeliveryFilter, EventFilter, HandoffSink, PageRequest, StoreError};

impl Columns for rusqlite::Row<'_> {
    fn text(&self, index: usize) -> Result<String, StoreError> {
        Ok(self.get(index)?)
    }
    fn optional_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(index)?)
    }
    fn integer(&self, index: usize) -> Result<i64, StoreError> {
        Ok(self.get(index)?)
    }
    fn optional_integer(&self, index: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(index)?)
    }
    fn flag(&self, index: usize) -> Result<bool, StoreError> {
        Ok(self.get(index)?)
    }
}

/// Every row of a query, read into records.
fn all<T>(
    statement: &mut Statement<'_>,
    parameters: impl Params,
    read: fn(&dyn Columns) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut rows = statement.query(parameters)?;
    let mut records = Vec::new();
    while let Some(row) = rows.next()? {
        records.push(read(row)?);
    }
    Ok(records)
}

/// The first row of a query, if any, read into a record.
fn first<T>(
    statement: &mut Statement<'_>,
    parameters: impl Params,
    read: fn(&dyn Columns) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut rows = statement.query(parameters)?;
    rows.next()?.map(|row| read(row)).transpose()
}

pub(crate) struct SqliteStore {
    engine: Arc<Engine>,
    local: Arc<Local>,
    clock: Arc<dyn Clock>,
    _lock: File,
}

/// What the writer thread keeps beside the database, used only inside writes.
#[derive(Default)]
struct Local {
    /// Endpoints as the writer last read them. Every change to an endpoint is a write, on the same thread,
    /// and empties this, so what it holds is never stale.
    endpoints: Mutex<HashMap<EndpointId, Arc<Endpoint>>>,
    /// The local dispatcher's, once it runs: publishes hand it deliveries it has room for.
    handoff: Mutex<Option<Arc<dyn HandoffSink>>>,
}

impl Local {
    /// The endpoint `id`, read from the database only if it is not held already.
    fn endpoint(&self, connection: &Connection, id: &str) -> Result<Arc<Endpoint>, StoreError> {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(endpoint) = endpoints.get(id) {
            return Ok(Arc::clone(endpoint));
        }
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = ?1");
        let endpoint = first(&mut *connection.prepare_cached(&sql)?, [id], endpoint_row)?
            .ok_or_else(|| StoreError::Corrupt { detail: format!("endpoint {id} vanished in a write") })?;
        let endpoint = Arc::new(endpoint);
        endpoints.insert(endpoint.id.clone(), Arc::clone(&endpoint));
        Ok(endpoint)
    }

    /// Called by every write that changes or deletes endpoints.
    fn endpoints_changed(&self) {
        self.endpoints.lock().unwrap_or_else(|poison| poison.into_inner()).clear();
    }

    fn handoff(&self) -> Option<Arc<dyn HandoffSink>> {
        self.handoff.lock().unwrap_or_else(|poison| poison.into_inner()).clone()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`, runs migrations, seeds the topic catalogue on first
    /// start and releases the leases of a previous run. Fails if another process holds the directory. The WAL
    /// file stays under about `max_wal_bytes`.
    pub(crate) async fn open(
        data_dir: &Path,
        max_wal_bytes: u64,
        clock: Arc<dyn Clock>,
    ) -> Result<SqliteStore, StoreError> {
        let lock = lock_data_dir(data_dir)?;
        let path = data_dir.join("hookline.db");
        let engine = tokio::task::spawn_blocking(move || Engine::open(&path, max_wal_bytes))
            .await
            .map_err(|_| StoreError::Closed)??;
        let store = SqliteStore { engine, local: Arc::default(), clock, _lock: lock };
        store.seed_topics().await?;
        let released = store.release_all_leases().await?;
        if released > 0 {
            tracing::info!(released, "deliveries left in flight by the previous run go back to the queue");
        }
        Ok(store)
    }

    /// Waits until every queued write is committed and the WAL emptied, when no other handle is left (else the
    /// next open empties it). The data directory stays locked until then.
    pub(crate) async fn close(self) {
        let SqliteStore { engine, _lock: lock, .. } = self;
        if let Ok(engine) = Arc::try_unwrap(engine) {
            let _ = tokio::task::spawn_blocking(move || engine.close()).await;
        }
        drop(lock);
    }

    pub(crate) fn location(&self) -> PathBuf {
        self.engine.path().to_owned()
    }

    async fn seed_topics(&self) -> Result<(), StoreError> {
        let now = self.clock.now().unix_millis();
        self.engine
            .write(move |connection| {
                if setting(connection, "topics_seeded")?.is_none() {
                    for topic in SEED_TOPICS {
                        connection.execute(
                            "INSERT OR IGNORE INTO topics (name, description, deprecated, created_at) VALUES (?1, ?2, ?3, ?4)",
                            params![topic.name, topic.description, topic.deprecated, now],
                        )?;
                    }
                    put_setting(connection, "topics_seeded", "1")?;
                }
                Ok(())
            })
            .await
    }

    /// Every lease belongs to a dead process here: make those deliveries due now.
    async fn release_all_leases(&self) -> Result<usize, StoreError> {
        let now = self.clock.now().unix_millis();
        self.engine
            .write(move |connection| {
                Ok(connection.execute(
                    "UPDATE deliveries SET lease = NULL, next_attempt_at = MIN(next_attempt_at, ?1)
                     WHERE lease IS NOT NULL",
                    [now],
                )?)
            })
            .await
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        self.engine.read(|connection| Ok(connection.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    /// From now on, publishes hand `handoff` the deliveries it has room for.
    pub(crate) fn accept_handoff(&self, handoff: Arc<dyn HandoffSink>) {
        *self.local.handoff.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(handoff);
    }

    // ----- settings and keys -----

    pub(crate) async fn settle_admin_key_hash(&self, hash: String) -> Result<String, StoreError> {
        self.engine
            .write(move |connection| {
                connection
                    .execute("INSERT OR IGNORE INTO settings (key, value) VALUES ('admin_key_hash', ?1)", [&hash])?;
                setting(connection, "admin_key_hash")?
                    .ok_or_else(|| StoreError::Corrupt { detail: "the admin key hash vanished".into() })
            })
            .await
    }

    pub(crate) async fn tenant_for_key_hash(&self, hash: String) -> Result<Option<TenantId>, StoreError> {
        self.engine
            .read(move |connection| {
                let tenant: Option<String> = connection
                    .prepare_cached("SELECT tenant_id FROM api_keys WHERE key_hash = ?1")?
                    .query_row([&hash], |row| row.get(0))
                    .optional()?;
                tenant.map(|text| parse_field::<TenantId>(&text)).transpose()
            })
            .await
    }

    pub(crate) async fn insert_api_key(&self, key: ApiKey, hash: String) -> Result<Option<ApiKey>, StoreError> {
        self.engine
            .write(move |connection| {
                if !tenant_exists(connection, &key.tenant)? {
                    return Ok(None);
                }
                connection.execute(
                    "INSERT INTO api_keys (id, tenant_id, key_hash, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![key.id.as_str(), key.tenant.as_str(), hash, key.name, key.created.unix_millis()],
                )?;
                Ok(Some(key))
            })
            .await
    }

    // ----- topics -----

    pub(crate) async fn list_topics(&self) -> Result<Vec<Topic>, StoreError> {
        self.engine
            .read(|connection| {
                let mut statement = connection
                    .prepare_cached("SELECT name, description, deprecated, created_at FROM topics ORDER BY name")?;
                all(&mut statement, [], topic_row)
            })
            .await
    }

    pub(crate) async fn create_topic(&self, topic: Topic) -> Result<Topic, StoreError> {
        self.engine
            .write(move |connection| {
                let inserted = connection.execute(
                    "INSERT OR IGNORE INTO topics (name, description, deprecated, created_at) VALUES (?1, ?2, 0, ?3)",
                    params![topic.name.as_str(), topic.description, topic.created.unix_millis()],
                )?;
                if inserted == 0 {
                    return Err(StoreError::Conflict { what: "topic", id: topic.name.to_string() });
                }
                Ok(topic)
            })
            .await
    }

    pub(crate) async fn update_topic(
        &self,
        name: TopicName,
        description: Option<String>,
        deprecated: Option<bool>,
    ) -> Result<Option<Topic>, StoreError> {
        self.engine
            .write(move |connection| {
                connection.execute(
                    "UPDATE topics SET description = COALESCE(?2, description), deprecated = COALESCE(?3, deprecated)
                     WHERE name = ?1",
                    params![name.as_str(), description, deprecated],
                )?;
                let mut statement = connection
                    .prepare_cached("SELECT name, description, deprecated, created_at FROM topics WHERE name = ?1")?;
                first(&mut statement, [name.as_str()], topic_row)
            })
            .await
    }

    // ----- tenants -----

    pub(crate) async fn create_tenant(&self, tenant: Tenant) -> Result<Tenant, StoreError> {
        self.engine
            .write(move |connection| {
                let inserted = connection.execute(
                    "INSERT OR IGNORE INTO tenants (id, name, created_at) VALUES (?1, ?2, ?3)",
                    params![tenant.id.as_str(), tenant.name, tenant.created.unix_millis()],
                )?;
                if inserted == 0 {
                    return Err(StoreError::Conflict { what: "tenant", id: tenant.id.to_string() });
                }
                Ok(tenant)
            })
            .await
    }

    pub(crate) async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>, StoreError> {
        self.engine
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached("SELECT id, name, created_at FROM tenants WHERE id > ?1 ORDER BY id LIMIT ?2")?;
                let tenants =
                    all(&mut statement, params![page.cursor.as_deref().unwrap_or(""), page.limit + 1], tenant_row)?;
                Ok(paginate(tenants, page.limit, |tenant| tenant.id.to_string()))
            })
            .await
    }

    pub(crate) async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        self.engine
            .read(move |connection| {
                let mut statement =
                    connection.prepare_cached("SELECT id, name, created_at FROM tenants WHERE id = ?1")?;
                first(&mut statement, [id.as_str()], tenant_row)
            })
            .await
    }

    pub(crate) async fn delete_tenant(&self, id: TenantId) -> Result<bool, StoreError> {
        let local = Arc::clone(&self.local);
        self.engine
            .write(move |connection| {
                local.endpoints_changed();
                // Children first, so the cascade does not have to find them row by row. SQLite reads the
                // statements' `$1` as their first parameter, as PostgreSQL does.
                for sql in TENANT_CHILDREN_DELETES {
                    connection.execute(sql, [id.as_str()])?;
                }
                Ok(connection.execute("DELETE FROM tenants WHERE id = ?1", [id.as_str()])? > 0)
            })
            .await
    }

    // ----- endpoints -----

    pub(crate) async fn create_endpoint(&self, endpoint: Endpoint) -> Result<Option<Endpoint>, StoreError> {
        self.engine
            .write(move |connection| {
                if !tenant_exists(connection, &endpoint.tenant)? {
                    return Ok(None);
                }
                check_subscribable(&endpoint.topics, &[], |topic| topic_deprecated(connection, topic))?;
                connection.execute(
                    "INSERT INTO endpoints (id, tenant_id, url, topics, description, enabled, format, signing, secret,
                        retry_schedule, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                    params![
                        endpoint.id.as_str(),
                        endpoint.tenant.as_str(),
                        endpoint.url,
                        join_topics(&endpoint.topics),
                        endpoint.description,
                        endpoint.enabled,
                        endpoint.format.as_str(),
                        join_schemes(&endpoint.signing),
                        endpoint.secret,
                        endpoint.retry_schedule.as_ref().map(|schedule| join_schedule(schedule.delays())),
                        endpoint.created.unix_millis(),
                    ],
                )?;
                write_endpoint_topics(connection, &endpoint.id, &endpoint.topics)?;
                Ok(Some(endpoint))
            })
            .await
    }

    pub(crate) async fn list_endpoints(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<Endpoint>, StoreError> {
        self.engine
            .read(move |connection| {
                let sql = format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
                );
                let mut statement = connection.prepare_cached(&sql)?;
                let parameters = params![tenant.as_str(), page.cursor.as_deref().unwrap_or(""), page.limit + 1];
                let endpoints = all(&mut statement, parameters, endpoint_row)?;
                Ok(paginate(endpoints, page.limit, |endpoint| endpoint.id.to_string()))
            })
            .await
    }

    pub(crate) async fn get_endpoint(&self, tenant: TenantId, id: EndpointId) -> Result<Option<Endpoint>, StoreError> {
        self.engine.read(move |connection| load_endpoint(connection, &tenant, &id)).await
    }

    pub(crate) async fn update_endpoint(
        &self,
        tenant: TenantId,
        id: EndpointId,
        patch: EndpointPatch,
    ) -> Result<Option<Endpoint>, StoreError> {
        let now = self.clock.now();
        let local = Arc::clone(&self.local);
        self.engine
            .write(move |connection| {
                local.endpoints_changed();
                let Some(mut endpoint) = load_endpoint(connection, &tenant, &id)? else { return Ok(None) };
                if let Some(topics) = &patch.topics {
                    check_subscribable(topics, &endpoint.topics, |topic| topic_deprecated(connection, topic))?;
                    write_endpoint_topics(connection, &endpoint.id, topics)?;
                }
                apply_patch(&mut endpoint, patch, now);
                connection.execute(
                    "UPDATE endpoints SET url = ?2, topics = ?3, description = ?4, enabled = ?5, format = ?6,
                        signing = ?7, retry_schedule = ?8, updated_at = ?9, secret = ?10
                     WHERE id = ?1",
                    params![
                        endpoint.id.as_str(),
                        endpoint.url,
                        join_topics(&endpoint.topics),
                        endpoint.description,
                        endpoint.enabled,
                        endpoint.format.as_str(),
                        join_schemes(&endpoint.signing),
                        endpoint.retry_schedule.as_ref().map(|schedule| join_schedule(schedule.delays())),
                        endpoint.updated.unix_millis(),
                        endpoint.secret,
                    ],
                )?;
                Ok(Some(endpoint))
            })
            .await
    }

    pub(crate) async fn delete_endpoint(&self, tenant: TenantId, id: EndpointId) -> Result<bool, StoreError> {
        let now = self.clock.now().unix_millis();
        let local = Arc::clone(&self.local);
        self.engine
            .write(move |connection| {
                local.endpoints_changed();
                let deleted = connection.execute(
                    "DELETE FROM endpoints WHERE id = ?1 AND tenant_id = ?2",
                    [id.as_str(), tenant.as_str()],
                )?;
                if deleted > 0 {
                    connection.execute(
                        "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, lease = NULL,
                            last_error = 'endpoint deleted', updated_at = ?2
                         WHERE endpoint_id = ?1 AND status = 'pending'",
                        params![id.as_str(), now],
                    )?;
                }
                Ok(deleted > 0)
            })
            .await
    }

    // ----- events -----

    /// Publishes `event`. Deliveries the local dispatcher has room for are written leased to it and handed over
    /// once committed; the others are written due.
    pub(crate) async fn publish(&self, event: Event) -> Result<Option<Published>, StoreError> {
        let local = Arc::clone(&self.local);
        let handoff = self.local.handoff();
        let returned = handoff.clone();
        let (published, _) = self
            .engine
            .write_as(
                Isolation::ChecksFirst,
                move |connection| publish_event(connection, &local, handoff.as_deref(), event),
                move |answer, committed| {
                    let Some(handoff) = returned else { return };
                    if let Ok((_, handed)) = answer {
                        let handed = std::mem::take(handed);
                        if committed {
                            handoff.hand(handed);
                        } else {
                            handoff.unreserve(&mut handed.iter().map(|delivery| &delivery.endpoint.id));
                        }
                    }
                },
            )
            .await?;
        Ok(published)
    }

    pub(crate) async fn list_events(
        &self,
        tenant: TenantId,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<Event>, StoreError> {
        self.engine
            .read(move |connection| {
                let mut query = ListQuery::new(format!("SELECT {EVENT_COLUMNS} FROM events"), tenant);
                query.filter("id", "<", page.cursor);
                query.filter("topic", "=", filter.topic.map(|topic| topic.to_string()));
                query.filter("created_at", ">", filter.after.map(|after| after.unix_millis()));
                let (sql, values) = query.finish(page.limit, |index| format!("?{index}"));
                let mut statement = connection.prepare(&sql)?;
                let events = all(&mut statement, rusqlite::params_from_iter(values.iter().map(sql_value)), event_row)?;
                Ok(paginate(events, page.limit, |event| event.id.to_string()))
            })
            .await
    }

    pub(crate) async fn get_event(&self, tenant: TenantId, id: EventId) -> Result<Option<Event>, StoreError> {
        self.engine
            .read(move |connection| {
                let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1 AND tenant_id = ?2");
                first(&mut *connection.prepare_cached(&sql)?, [id.as_str(), tenant.as_str()], event_row)
            })
            .await
    }

    // ----- deliveries -----

    pub(crate) async fn list_deliveries(
        &self,
        tenant: TenantId,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        self.engine
            .read(move |connection| {
                let mut query = ListQuery::new(format!("SELECT {DELIVERY_COLUMNS} FROM deliveries"), tenant);
                query.delivery_filter(filter, page.cursor);
                let (sql, values) = query.finish(page.limit, |index| format!("?{index}"));
                let mut statement = connection.prepare(&sql)?;
                let parameters = rusqlite::params_from_iter(values.iter().map(sql_value));
                let deliveries = all(&mut statement, parameters, delivery_row)?;
                Ok(paginate(deliveries, page.limit, |delivery| delivery.id.to_string()))
            })
            .await
    }

    pub(crate) async fn get_delivery(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Option<(Delivery, Vec<Attempt>)>, StoreError> {
        self.engine
            .read(move |connection| {
                let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1 AND tenant_id = ?2");
                let Some(delivery) =
                    first(&mut *connection.prepare_cached(&sql)?, [id.as_str(), tenant.as_str()], delivery_row)?
                else {
                    return Ok(None);
                };
                let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE delivery_id = ?1 ORDER BY number");
                let attempts = all(&mut *connection.prepare_cached(&sql)?, [id.as_str()], attempt_row)?;
                Ok(Some((delivery, attempts)))
            })
            .await
    }

    pub(crate) async fn retry_delivery(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        let now = self.clock.now().unix_millis();
        self.engine
            .write(move |connection| {
                connection.execute(
                    "UPDATE deliveries SET status = 'pending', next_attempt_at = ?3, updated_at = ?3
                     WHERE id = ?1 AND tenant_id = ?2 AND (lease IS NULL OR next_attempt_at < ?3)",
                    params![id.as_str(), tenant.as_str(), now],
                )?;
                let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1 AND tenant_id = ?2");
                first(&mut *connection.prepare_cached(&sql)?, [id.as_str(), tenant.as_str()], delivery_row)
            })
            .await
    }

    // ----- the dispatcher's queue -----

    pub(crate) async fn claim_due(&self, claim: Claim) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let local = Arc::clone(&self.local);
        self.engine
            .write(move |connection| {
                let lease = lease_token();
                let claimed = if claim.busy_endpoints.is_empty() {
                    claim_earliest(connection, &claim, lease)?
                } else {
                    claim_around_busy(connection, &claim, lease)?
                };
                if claimed == 0 {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT {CLAIMED_DELIVERY_COLUMNS}, d.endpoint_id FROM deliveries d JOIN events v ON v.id = d.event_id
                     WHERE d.lease = ?1 AND d.next_attempt_at = ?2 AND d.status = 'pending'"
                );
                let mut statement = connection.prepare_cached(&sql)?;
                let mut rows = statement.query(params![lease, claim.lease_until.unix_millis()])?;
                let mut claimed = Vec::new();
                while let Some(row) = rows.next()? {
                    let endpoint_id = row.get_ref(10)?;
                    let endpoint_id =
                        endpoint_id.as_str().map_err(|error| StoreError::Corrupt { detail: error.to_string() })?;
                    let endpoint = local.endpoint(connection, endpoint_id)?;
                    claimed.push(claimed_with(row, endpoint)?);
                }
                Ok(claimed)
            })
            .await
    }

    pub(crate) async fn record_outcomes(&self, outcomes: Arc<[AttemptOutcome]>) -> Result<usize, StoreError> {
        let no_hook = |_: &mut Result<usize, StoreError>, _| {};
        let now = self.clock.now().unix_millis();
        self.engine
            .write_as(Isolation::ChecksFirst, move |connection| record(connection, &outcomes, now), no_hook)
            .await
    }

    pub(crate) async fn release(&self, leases: Vec<(DeliveryId, i64)>) -> Result<(), StoreError> {
        let now = self.clock.now().unix_millis();
        self.engine
            .write(move |connection| {
                let mut statement = connection.prepare_cached(
                    "UPDATE deliveries SET next_attempt_at = ?3, lease = NULL WHERE id = ?1 AND lease = ?2",
                )?;
                for (id, lease) in &leases {
                    statement.execute(params![id.as_str(), lease, now])?;
                }
                Ok(())
            })
            .await
    }

    pub(crate) async fn next_due(&self, busy_endpoints: Vec<EndpointId>) -> Result<Option<Timestamp>, StoreError> {
        self.engine
            .read(move |connection| {
                // Walking the due index would step over every due delivery of a busy endpoint (a slow one piles
                // them up): with some busy, each other endpoint is asked for its earliest through its own index.
                let sql = if busy_endpoints.is_empty() {
                    "SELECT d.next_attempt_at FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
                     WHERE d.status = 'pending' AND e.enabled = 1 AND ?1 = '[]'
                     ORDER BY d.next_attempt_at LIMIT 1"
                } else {
                    concat!("SELECT MIN(due) FROM (", earliest_due_but_busy!(), ")")
                };
                let next: Option<Option<i64>> = connection
                    .prepare_cached(sql)?
                    .query_row([json_ids(&busy_endpoints)], |row| row.get(0))
                    .optional()?;
                Ok(next.flatten().map(Timestamp::from_unix_millis))
            })
            .await
    }
}

/// The publish write: the event, and a delivery per subscribed endpoint. Returns the deliveries leased to
/// `handoff`, whose places are kept until the caller hands them over (or gives the places back).
fn publish_event(
    connection: &Connection,
    local: &Local,
    handoff: Option<&dyn HandoffSink>,
    event: Event,
) -> Result<(Option<Published>, Vec<ClaimedDelivery>), StoreError> {
    if !tenant_exists(connection, &event.tenant)? {
        return Ok((None, Vec::new()));
    }
    if let Some(key) = &event.idempotency_key {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = ?1 AND idempotency_key = ?2");
        let mut statement = connection.prepare_cached(&sql)?;
        if let Some(existing) = first(&mut statement, [event.tenant.as_str(), key], event_row)? {
            let deliveries: u64 = connection
                .prepare_cached("SELECT COUNT(*) FROM deliveries WHERE event_id = ?1")?
                .query_row([existing.id.as_str()], |row| row.get(0))?;
            return Ok((Some(Published { event: existing, deliveries, replayed: true, due: 0 }), Vec::new()));
        }
    }
    let topic_known: bool = connection
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM topics WHERE name = ?1)")?
        .query_row([event.topic.as_str()], |row| row.get(0))?;
    if !topic_known {
        return Err(StoreError::UnknownTopic { name: event.topic.to_string() });
    }
    // Every read and check comes before the first change: the write runs without a savepoint of its own.
    let targets = connection
        .prepare_cached(
            "SELECT e.id FROM endpoints e JOIN endpoint_topics t ON t.endpoint_id = e.id
             WHERE t.topic = ?1 AND e.tenant_id = ?2 AND e.enabled = 1",
        )?
        .query_map([event.topic.as_str(), event.tenant.as_str()], |row| row.get::<_, String>(0))?
        .map(|id| local.endpoint(connection, &id?))
        .collect::<Result<Vec<_>, _>>()?;
    let created = event.created.unix_millis();
    connection
        .prepare_cached(
            "INSERT INTO events (id, tenant_id, topic, created_at, data, meta, idempotency_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            event.id.as_str(),
            event.tenant.as_str(),
            event.topic.as_str(),
            created,
            event.data,
            event.meta,
            event.idempotency_key,
        ])?;
    let leased = match handoff {
        Some(handoff) => handoff.reserve(&mut targets.iter().map(|endpoint| &endpoint.id)),
        None => vec![false; targets.len()],
    };
    let inserted = insert_deliveries(connection, &event, &targets, &leased, handoff);
    let handed = match inserted {
        Ok(handed) => handed,
        Err(error) => {
            if let Some(handoff) = handoff {
                let reserved = targets.iter().zip(&leased).filter(|(_, leased)| **leased);
                handoff.unreserve(&mut reserved.map(|(endpoint, _)| &endpoint.id));
            }
            return Err(error);
        }
    };
    let due = (targets.len() - handed.len()) as u64;
    Ok((Some(Published { event, deliveries: targets.len() as u64, replayed: false, due }), handed))
}

/// Writes a delivery of `event` to each of `targets`: leased to `handoff` where `leased` says so (and returned,
/// ready to send), due now otherwise.
fn insert_deliveries(
    connection: &Connection,
    event: &Event,
    targets: &[Arc<Endpoint>],
    leased: &[bool],
    handoff: Option<&dyn HandoffSink>,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let created = event.created.unix_millis();
    let lease = lease_token();
    let lease_until =
        handoff.map(|handoff| event.created.saturating_add(handoff.lease_length()).unix_millis()).unwrap_or(created);
    let mut insert = connection.prepare_cached(
        "INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, topic, format, text_escape, status,
            next_attempt_at, lease, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9, ?10, ?10)",
    )?;
    let mut handed = Vec::new();
    let mut shared: Option<(Arc<str>, Option<Arc<str>>)> = None;
    for (endpoint, leased) in targets.iter().zip(leased) {
        let id = DeliveryId::generate_at(event.created);
        let escape = hookline_core::body::escape_for(&endpoint.signing);
        let (next_attempt_at, lease) = if *leased { (lease_until, Some(lease)) } else { (created, None) };
        insert.execute(params![
            id.as_str(),
            event.tenant.as_str(),
            event.id.as_str(),
            endpoint.id.as_str(),
            event.topic.as_str(),
            endpoint.format.as_str(),
            escape_name(escape),
            next_attempt_at,
            lease,
            created,
        ])?;
        if let Some(lease) = lease {
            let (data, meta) = shared
                .get_or_insert_with(|| (Arc::from(event.data.as_str()), event.meta.as_deref().map(Arc::from)))
                .clone();
            handed.push(ClaimedDelivery {
                id,
                lease,
                attempts: 0,
                format: endpoint.format,
                escape,
                event_id: event.id.clone(),
                topic: event.topic.clone(),
                event_created: event.created,
                data,
                meta,
                endpoint: Arc::clone(endpoint),
            });
        }
    }
    Ok(handed)
}

/// The attempt-record write: moves each delivery on and stores its attempt, for the outcomes whose lease still
/// holds. Its only checks are the leases, so it needs no savepoint of its own.
fn record(connection: &Connection, outcomes: &[AttemptOutcome], now: i64) -> Result<usize, StoreError> {
    let mut recorded = 0;
    for outcome in outcomes {
        let (status, next_attempt) = next_state(&outcome.next);
        let attempt = &outcome.attempt;
        let updated = connection
            .prepare_cached(
                "UPDATE deliveries SET status = ?3, attempts = ?4, next_attempt_at = ?5, lease = NULL,
                    last_status = ?6, last_error = ?7, updated_at = ?8
                 WHERE id = ?1 AND lease = ?2",
            )?
            .execute(params![
                outcome.delivery.as_str(),
                outcome.lease,
                status,
                attempt.number,
                next_attempt,
                attempt.response_status,
                attempt.error_detail,
                now,
            ])?;
        if updated == 0 {
            continue;
        }
        connection
            .prepare_cached(
                "INSERT OR IGNORE INTO attempts (delivery_id, number, started_at, duration_ms, url,
                    request_headers, response_status, response_headers, response_body, error_kind, error_detail,
                    response_headers_omitted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                outcome.delivery.as_str(),
                attempt.number,
                attempt.started.unix_millis(),
                attempt.duration_ms as i64,
                attempt.url,
                headers_json(&attempt.request_headers),
                attempt.response_status,
                headers_json(&attempt.response_headers),
                attempt.response_body,
                attempt.error.map(|error| error.as_str()),
                attempt.error_detail,
                attempt.response_headers_omitted,
            ])?;
        recorded += 1;
    }
    Ok(recorded)
}

/// Leases the earliest due deliveries (from a window of a few batches), at most `per_endpoint` of each endpoint.
fn claim_earliest(connection: &Connection, claim: &Claim, lease: i64) -> Result<usize, StoreError> {
    Ok(connection
        .prepare_cached(
            "UPDATE deliveries SET next_attempt_at = ?2, lease = ?3 WHERE id IN (
                SELECT id FROM (
                    SELECT id, next_attempt_at,
                        row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at) AS position
                    FROM (
                        SELECT d.id, d.endpoint_id, d.next_attempt_at
                        FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
                        WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 AND e.enabled = 1
                        ORDER BY d.next_attempt_at LIMIT ?4 * 4))
                WHERE position <= ?5 ORDER BY next_attempt_at LIMIT ?4)",
        )?
        .execute(params![
            claim.now.unix_millis(),
            claim.lease_until.unix_millis(),
            lease,
            claim.limit,
            claim.per_endpoint
        ])?)
}

/// Leases due deliveries while some endpoints are busy (at their concurrency cap). Walking the queue in due
/// order would step over every due delivery of a busy endpoint on each claim, and a slow endpoint piles up many:
/// instead, each other endpoint with work due is visited through its own index, the longest waiting first.
fn claim_around_busy(connection: &Connection, claim: &Claim, lease: i64) -> Result<usize, StoreError> {
    let mut ready = connection.prepare_cached(concat!(
        "SELECT id FROM (",
        earliest_due_but_busy!(),
        ") WHERE due <= ?2 ORDER BY due"
    ))?;
    let endpoints: Vec<String> = ready
        .query_map(params![json_ids(&claim.busy_endpoints), claim.now.unix_millis()], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut take = connection.prepare_cached(
        "UPDATE deliveries SET next_attempt_at = ?3, lease = ?4 WHERE id IN (
            SELECT id FROM deliveries
            WHERE endpoint_id = ?1 AND status = 'pending' AND next_attempt_at <= ?2
            ORDER BY next_attempt_at LIMIT ?5)",
    )?;
    let mut claimed = 0;
    for endpoint in &endpoints {
        let room = claim.limit.saturating_sub(claimed as u32).min(claim.per_endpoint);
        if room == 0 {
            break;
        }
        claimed +=
            take.execute(params![endpoint, claim.now.unix_millis(), claim.lease_until.unix_millis(), lease, room])?;
    }
    Ok(claimed)
}

/// Each enabled endpoint but the busy ones (`?1`, a JSON array) with the earliest due time of its pending
/// deliveries (`due`, NULL when none), found through the per-endpoint due index. A macro, so that the queries
/// built on it are constants.
macro_rules! earliest_due_but_busy {
    () => {
        "SELECT e.id, (SELECT MIN(d.next_attempt_at) FROM deliveries d
            WHERE d.endpoint_id = e.id AND d.status = 'pending') AS due
        FROM endpoints e WHERE e.enabled = 1 AND e.id NOT IN (SELECT value FROM json_each(?1))"
    };
}
use earliest_due_but_busy;

/// Ids as a JSON array, for `json_each` (SQLite has no array parameters).
fn json_ids(ids: &[EndpointId]) -> String {
    // Ids are validated base32 after a prefix, so they need no escaping.
    let quoted: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
    format!("[{}]", quoted.join(","))
}

fn sql_value(value: &ListValue) -> rusqlite::types::Value {
    match value {
        ListValue::Text(text) => text.clone().into(),
        ListValue::Integer(number) => (*number).into(),
    }
}

fn setting(connection: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(connection
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?)
}

fn put_setting(connection: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

fn tenant_exists(connection: &Connection, tenant: &TenantId) -> Result<bool, StoreError> {
    Ok(connection
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)")?
        .query_row([tenant.as_str()], |row| row.get(0))?)
}

fn topic_deprecated(connection: &Connection, topic: &TopicName) -> Result<Option<bool>, StoreError> {
    Ok(connection
        .prepare_cached("SELECT deprecated FROM topics WHERE name = ?1")?
        .query_row([topic.as_str()], |row| row.get(0))
        .optional()?)
}

fn write_endpoint_topics(
    connection: &Connection,
    endpoint: &EndpointId,
    topics: &[TopicName],
) -> Result<(), StoreError> {
    connection.execute("DELETE FROM endpoint_topics WHERE endpoint_id = ?1", [endpoint.as_str()])?;
    let mut insert =
        connection.prepare_cached("INSERT OR IGNORE INTO endpoint_topics (endpoint_id, topic) VALUES (?1, ?2)")?;
    for topic in topics {
        insert.execute([endpoint.as_str(), topic.as_str()])?;
    }
    Ok(())
}

fn load_endpoint(connection: &Connection, tenant: &TenantId, id: &EndpointId) -> Result<Option<Endpoint>, StoreError> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = ?1 AND tenant_id = ?2");
    first(&mut *connection.prepare_cached(&sql)?, [id.as_str(), tenant.as_str()], endpoint_row)
}
