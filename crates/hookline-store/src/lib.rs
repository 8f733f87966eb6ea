//! Hookline's durable store: topics, tenants, keys, endpoints, events, deliveries and their attempts.
//!
//! Architecture invariant: this is the only crate that contains SQL. Callers see typed records and never
//! learn which database is underneath. Every write resolves only once it is committed to disk.

mod engine;
pub mod model;
mod rows;
mod schema;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hookline_core::id::{DeliveryId, EndpointId, EventId, KeyId, TenantId};
use hookline_core::time::Timestamp;
use hookline_core::topic::{SEED_TOPICS, TopicName};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Notify;

use crate::engine::Engine;
pub use crate::model::*;
use crate::rows::*;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("could not commit to the database: {detail}")]
    Commit { detail: String },
    #[error("the store is shut down")]
    Closed,
    #[error("could not start the database writer thread")]
    Thread {
        #[source]
        source: std::io::Error,
    },
    #[error("could not use the data directory {path:?}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the data directory {path:?} is in use by another hookline process; stop it or choose another --data-dir")]
    Locked { path: PathBuf },
    #[error("{what} {id:?} already exists")]
    Conflict { what: &'static str, id: String },
    #[error("unknown topic {name:?}; create it first or pick one from GET /v1/topics")]
    UnknownTopic { name: String },
    #[error("topic {name:?} is deprecated and takes no new subscriptions")]
    DeprecatedTopic { name: String },
    #[error("stored data is damaged: {detail}")]
    Corrupt { detail: String },
}

/// Filters for listing events.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub topic: Option<TopicName>,
    pub after: Option<Timestamp>,
}

/// Filters for listing deliveries.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub endpoint: Option<EndpointId>,
    pub event: Option<EventId>,
    pub status: Option<DeliveryStatus>,
}

/// Where a list starts and how long it may be.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: u32,
}

/// The store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    engine: Arc<Engine>,
    work: Arc<Notify>,
    _lock: Arc<File>,
}

impl Store {
    /// Opens (creating if needed) the embedded store in `data_dir`, runs migrations, and seeds the topic catalogue
    /// on first start. Fails if another process holds the directory.
    pub async fn open_sqlite(data_dir: &Path) -> Result<Store, StoreError> {
        let data_dir = data_dir.to_owned();
        let dir_error = |source| StoreError::DataDir { path: data_dir.clone(), source };
        std::fs::create_dir_all(&data_dir).map_err(dir_error)?;
        let lock = File::create(data_dir.join("hookline.lock")).map_err(dir_error)?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked { path: data_dir });
        }
        let path = data_dir.join("hookline.db");
        let engine =
            tokio::task::spawn_blocking(move || Engine::open(&path)).await.map_err(|_| StoreError::Closed)??;
        let store = Store { engine, work: Arc::new(Notify::new()), _lock: Arc::new(lock) };
        store.seed_topics().await?;
        Ok(store)
    }

    /// The database file, for operators' messages.
    pub fn location(&self) -> String {
        self.engine.path().display().to_string()
    }

    /// Signalled whenever new work may be due (a publish, a manual retry, a re-enabled endpoint).
    pub fn work_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.work)
    }

    async fn seed_topics(&self) -> Result<(), StoreError> {
        self.engine
            .write(|connection| {
                let seeded = setting(connection, "topics_seeded")?;
                if seeded.is_none() {
                    let now = Timestamp::now().unix_millis();
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

    // ----- settings and keys -----

    /// The stored hash of the generated admin key, if one was generated.
    pub async fn admin_key_hash(&self) -> Result<Option<String>, StoreError> {
        self.engine.read(|connection| setting(connection, "admin_key_hash")).await
    }

    pub async fn set_admin_key_hash(&self, hash: String) -> Result<(), StoreError> {
        self.engine.write(move |connection| put_setting(connection, "admin_key_hash", &hash)).await
    }

    /// The tenant whose key hashes to `hash`, if any.
    pub async fn tenant_for_key_hash(&self, hash: String) -> Result<Option<TenantId>, StoreError> {
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

    pub async fn insert_api_key(
        &self,
        tenant: TenantId,
        hash: String,
        name: String,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.engine
            .write(move |connection| {
                if !tenant_exists(connection, &tenant)? {
                    return Ok(None);
                }
                let key = ApiKey { id: KeyId::generate(), tenant, name, created: Timestamp::now() };
                connection.execute(
                    "INSERT INTO api_keys (id, tenant_id, key_hash, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![key.id.as_str(), key.tenant.as_str(), hash, key.name, key.created.unix_millis()],
                )?;
                Ok(Some(key))
            })
            .await
    }

    // ----- topics -----

    pub async fn list_topics(&self) -> Result<Vec<Topic>, StoreError> {
        self.engine
            .read(|connection| {
                let mut statement = connection
                    .prepare_cached("SELECT name, description, deprecated, created_at FROM topics ORDER BY name")?;
                let rows = statement.query_map([], topic_row)?;
                rows.map(|row| row?).collect()
            })
            .await
    }

    pub async fn create_topic(&self, name: TopicName, description: String) -> Result<Topic, StoreError> {
        self.engine
            .write(move |connection| {
                let topic = Topic { name, description, deprecated: false, created: Timestamp::now() };
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

    /// Changes a topic's description or deprecation; `None` when there is no such topic.
    pub async fn update_topic(
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
                connection
                    .query_row(
                        "SELECT name, description, deprecated, created_at FROM topics WHERE name = ?1",
                        [name.as_str()],
                        topic_row,
                    )
                    .optional()?
                    .transpose()
            })
            .await
    }

    // ----- tenants -----

    pub async fn create_tenant(&self, id: TenantId, name: String) -> Result<Tenant, StoreError> {
        self.engine
            .write(move |connection| {
                let tenant = Tenant { id, name, created: Timestamp::now() };
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

    pub async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>, StoreError> {
        self.engine
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached("SELECT id, name, created_at FROM tenants WHERE id > ?1 ORDER BY id LIMIT ?2")?;
                let rows =
                    statement.query_map(params![page.cursor.as_deref().unwrap_or(""), page.limit + 1], tenant_row)?;
                let tenants = rows.map(|row| row?).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(tenants, page.limit, |tenant| tenant.id.to_string()))
            })
            .await
    }

    pub async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        self.engine
            .read(move |connection| {
                connection
                    .query_row("SELECT id, name, created_at FROM tenants WHERE id = ?1", [id.as_str()], tenant_row)
                    .optional()?
                    .transpose()
            })
            .await
    }

    /// Deletes a tenant with everything it owns; `false` when there was no such tenant.
    pub async fn delete_tenant(&self, id: TenantId) -> Result<bool, StoreError> {
        self.engine
            .write(move |connection| {
                // Children first, so the cascade does not have to find them row by row.
                for table in ["attempts", "deliveries", "events", "endpoint_topics", "endpoints", "api_keys"] {
                    let sql = match table {
                        "attempts" => {
                            "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE tenant_id = ?1)"
                        }
                        "endpoint_topics" => {
                            "DELETE FROM endpoint_topics WHERE endpoint_id IN (SELECT id FROM endpoints WHERE tenant_id = ?1)"
                        }
                        "deliveries" => "DELETE FROM deliveries WHERE tenant_id = ?1",
                        "events" => "DELETE FROM events WHERE tenant_id = ?1",
                        "endpoints" => "DELETE FROM endpoints WHERE tenant_id = ?1",
                        _ => "DELETE FROM api_keys WHERE tenant_id = ?1",
                    };
                    connection.execute(sql, [id.as_str()])?;
                }
                Ok(connection.execute("DELETE FROM tenants WHERE id = ?1", [id.as_str()])? > 0)
            })
            .await
    }

    // ----- endpoints -----

    /// Creates an endpoint; `None` when the tenant does not exist.
    pub async fn create_endpoint(&self, new: NewEndpoint) -> Result<Option<Endpoint>, StoreError> {
        self.engine
            .write(move |connection| {
                if !tenant_exists(connection, &new.tenant)? {
                    return Ok(None);
                }
                check_subscribable(connection, &new.topics, &[])?;
                let now = Timestamp::now();
                let endpoint = Endpoint {
                    id: EndpointId::generate(),
                    tenant: new.tenant,
                    url: new.url,
                    topics: new.topics,
                    description: new.description,
                    enabled: new.enabled,
                    format: new.format,
                    signing: new.signing,
                    secret: new.secret,
                    retry_schedule: new.retry_schedule,
                    created: now,
                    updated: now,
                };
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
                        endpoint.retry_schedule.as_deref().map(join_schedule),
                        now.unix_millis(),
                    ],
                )?;
                write_endpoint_topics(connection, &endpoint.id, &endpoint.topics)?;
                Ok(Some(endpoint))
            })
            .await
    }

    pub async fn list_endpoints(&self, tenant: TenantId, page: PageRequest) -> Result<Page<Endpoint>, StoreError> {
        self.engine
            .read(move |connection| {
                let sql = format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
                );
                let mut statement = connection.prepare_cached(&sql)?;
                let rows = statement.query_map(
                    params![tenant.as_str(), page.cursor.as_deref().unwrap_or(""), page.limit + 1],
                    endpoint_row,
                )?;
                let endpoints = rows.map(|row| row?).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(endpoints, page.limit, |endpoint| endpoint.id.to_string()))
            })
            .await
    }

    pub async fn get_endpoint(&self, tenant: TenantId, id: EndpointId) -> Result<Option<Endpoint>, StoreError> {
        self.engine.read(move |connection| load_endpoint(connection, &tenant, &id)).await
    }

    /// Applies `patch`; `None` when the endpoint does not exist for that tenant.
    pub async fn update_endpoint(
        &self,
        tenant: TenantId,
        id: EndpointId,
        patch: EndpointPatch,
    ) -> Result<Option<Endpoint>, StoreError> {
        let work = Arc::clone(&self.work);
        let endpoint = self
            .engine
            .write(move |connection| {
                let Some(mut endpoint) = load_endpoint(connection, &tenant, &id)? else { return Ok(None) };
                if let Some(topics) = patch.topics {
                    check_subscribable(connection, &topics, &endpoint.topics)?;
                    write_endpoint_topics(connection, &endpoint.id, &topics)?;
                    endpoint.topics = topics;
                }
                fn set<T>(field: &mut T, value: Option<T>) {
                    if let Some(value) = value {
                        *field = value;
                    }
                }
                set(&mut endpoint.url, patch.url);
                set(&mut endpoint.description, patch.description);
                set(&mut endpoint.enabled, patch.enabled);
                set(&mut endpoint.format, patch.format);
                set(&mut endpoint.signing, patch.signing);
                set(&mut endpoint.secret, patch.secret);
                set(&mut endpoint.retry_schedule, patch.retry_schedule);
                endpoint.updated = Timestamp::now();
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
                        endpoint.retry_schedule.as_deref().map(join_schedule),
                        endpoint.updated.unix_millis(),
                        endpoint.secret,
                    ],
                )?;
                Ok(Some(endpoint))
            })
            .await?;
        if endpoint.as_ref().is_some_and(|endpoint| endpoint.enabled) {
            // Re-enabling an endpoint may make its held deliveries due.
            work.notify_one();
        }
        Ok(endpoint)
    }

    /// Deletes an endpoint and cancels its pending deliveries (the delivery log stays); `false` when unknown.
    pub async fn delete_endpoint(&self, tenant: TenantId, id: EndpointId) -> Result<bool, StoreError> {
        self.engine
            .write(move |connection| {
                let deleted = connection.execute(
                    "DELETE FROM endpoints WHERE id = ?1 AND tenant_id = ?2",
                    [id.as_str(), tenant.as_str()],
                )?;
                if deleted > 0 {
                    connection.execute(
                        "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, lease = NULL,
                            last_error = 'endpoint deleted', updated_at = ?2
                         WHERE endpoint_id = ?1 AND status = 'pending'",
                        params![id.as_str(), Timestamp::now().unix_millis()],
                    )?;
                }
                Ok(deleted > 0)
            })
            .await
    }

    // ----- events -----

    /// Stores an event and one delivery per enabled endpoint of its tenant subscribed to its topic, in one
    /// transaction. With an idempotency key already used by the tenant, returns the original event instead.
    /// `None` when the tenant does not exist.
    pub async fn publish(&self, new: NewEvent) -> Result<Option<Published>, StoreError> {
        let published = self
            .engine
            .write(move |connection| {
                if !tenant_exists(connection, &new.tenant)? {
                    return Ok(None);
                }
                if let Some(key) = &new.idempotency_key {
                    let sql =
                        format!("SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = ?1 AND idempotency_key = ?2");
                    let existing =
                        connection.prepare_cached(&sql)?.query_row([new.tenant.as_str(), key], event_row).optional()?;
                    if let Some(event) = existing {
                        let event = event?;
                        let deliveries: u64 = connection
                            .prepare_cached("SELECT COUNT(*) FROM deliveries WHERE event_id = ?1")?
                            .query_row([event.id.as_str()], |row| row.get(0))?;
                        return Ok(Some(Published { event, deliveries, replayed: true }));
                    }
                }
                let topic_known: bool = connection
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM topics WHERE name = ?1)")?
                    .query_row([new.topic.as_str()], |row| row.get(0))?;
                if !topic_known {
                    return Err(StoreError::UnknownTopic { name: new.topic.to_string() });
                }
                let event = Event {
                    id: EventId::generate(),
                    tenant: new.tenant,
                    topic: new.topic,
                    created: Timestamp::now(),
                    data: new.data,
                    meta: new.meta,
                    idempotency_key: new.idempotency_key,
                };
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
                let mut targets = connection.prepare_cached(
                    "SELECT e.id, e.format, e.signing FROM endpoints e JOIN endpoint_topics t ON t.endpoint_id = e.id
                     WHERE t.topic = ?1 AND e.tenant_id = ?2 AND e.enabled = 1",
                )?;
                let endpoints = targets
                    .query_map([event.topic.as_str(), event.tenant.as_str()], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut insert = connection.prepare_cached(
                    "INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, topic, format, text_escape, status,
                        next_attempt_at, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8, ?8)",
                )?;
                for (endpoint, format, signing) in &endpoints {
                    let schemes = split_schemes(signing)?;
                    let escape = hookline_core::body::escape_for(&schemes);
                    insert.execute(params![
                        DeliveryId::generate().as_str(),
                        event.tenant.as_str(),
                        event.id.as_str(),
                        endpoint,
                        event.topic.as_str(),
                        format,
                        escape_name(escape),
                        created,
                    ])?;
                }
                Ok(Some(Published { event, deliveries: endpoints.len() as u64, replayed: false }))
            })
            .await?;
        if published.as_ref().is_some_and(|published| published.deliveries > 0 && !published.replayed) {
            self.work.notify_one();
        }
        Ok(published)
    }

    pub async fn list_events(
        &self,
        tenant: TenantId,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<Event>, StoreError> {
        self.engine
            .read(move |connection| {
                let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = ?1");
                let mut values: Vec<rusqlite::types::Value> = vec![tenant.to_string().into()];
                if let Some(cursor) = page.cursor {
                    values.push(cursor.into());
                    sql.push_str(&format!(" AND id < ?{}", values.len()));
                }
                if let Some(topic) = filter.topic {
                    values.push(topic.to_string().into());
                    sql.push_str(&format!(" AND topic = ?{}", values.len()));
                }
                if let Some(after) = filter.after {
                    values.push(after.unix_millis().into());
                    sql.push_str(&format!(" AND created_at > ?{}", values.len()));
                }
                sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", page.limit + 1));
                let mut statement = connection.prepare(&sql)?;
                let rows = statement.query_map(rusqlite::params_from_iter(values), event_row)?;
                let events = rows.map(|row| row?).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(events, page.limit, |event| event.id.to_string()))
            })
            .await
    }

    pub async fn get_event(&self, tenant: TenantId, id: EventId) -> Result<Option<Event>, StoreError> {
        self.engine
            .read(move |connection| {
                let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1 AND tenant_id = ?2");
                connection.query_row(&sql, [id.as_str(), tenant.as_str()], event_row).optional()?.transpose()
            })
            .await
    }

    // ----- deliveries -----

    pub async fn list_deliveries(
        &self,
        tenant: TenantId,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        self.engine
            .read(move |connection| {
                let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE tenant_id = ?1");
                let mut values: Vec<rusqlite::types::Value> = vec![tenant.to_string().into()];
                let mut add = |column: &str, operator: &str, value: String| {
                    values.push(value.into());
                    sql.push_str(&format!(" AND {column} {operator} ?{}", values.len()));
                };
                if let Some(cursor) = page.cursor {
                    add("id", "<", cursor);
                }
                if let Some(endpoint) = filter.endpoint {
                    add("endpoint_id", "=", endpoint.to_string());
                }
                if let Some(event) = filter.event {
                    add("event_id", "=", event.to_string());
                }
                if let Some(status) = filter.status {
                    add("status", "=", status.as_str().to_owned());
                }
                sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", page.limit + 1));
                let mut statement = connection.prepare(&sql)?;
                let rows = statement.query_map(rusqlite::params_from_iter(values), delivery_row)?;
                let deliveries = rows.map(|row| row?).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(deliveries, page.limit, |delivery| delivery.id.to_string()))
            })
            .await
    }

    /// A delivery with all its attempts, oldest first.
    pub async fn get_delivery(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Option<(Delivery, Vec<Attempt>)>, StoreError> {
        self.engine
            .read(move |connection| {
                let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1 AND tenant_id = ?2");
                let Some(delivery) =
                    connection.query_row(&sql, [id.as_str(), tenant.as_str()], delivery_row).optional()?
                else {
                    return Ok(None);
                };
                let mut statement = connection.prepare_cached(
                    "SELECT number, started_at, duration_ms, url, request_headers, response_status, response_headers,
                        response_body, error_kind, error_detail
                     FROM attempts WHERE delivery_id = ?1 ORDER BY number",
                )?;
                let attempts =
                    statement.query_map([id.as_str()], attempt_row)?.map(|row| row?).collect::<Result<_, _>>()?;
                Ok(Some((delivery?, attempts)))
            })
            .await
    }

    /// Makes a delivery due now, whatever its state (a manual "send again"); `None` when unknown.
    pub async fn retry_delivery(&self, tenant: TenantId, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let delivery = self
            .engine
            .write(move |connection| {
                let now = Timestamp::now().unix_millis();
                connection.execute(
                    "UPDATE deliveries SET status = 'pending', next_attempt_at = ?3, updated_at = ?3
                     WHERE id = ?1 AND tenant_id = ?2 AND (lease IS NULL OR next_attempt_at < ?3)",
                    params![id.as_str(), tenant.as_str(), now],
                )?;
                let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1 AND tenant_id = ?2");
                connection.query_row(&sql, [id.as_str(), tenant.as_str()], delivery_row).optional()?.transpose()
            })
            .await?;
        if delivery.is_some() {
            self.work.notify_one();
        }
        Ok(delivery)
    }

    // ----- the dispatcher's queue -----

    /// Leases up to `limit` due deliveries of enabled endpoints (skipping `busy_endpoints`) until `lease_until`.
    pub async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        busy_endpoints: Vec<EndpointId>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.engine
            .write(move |connection| {
                let lease: i64 = rand_lease();
                let busy = json_ids(&busy_endpoints);
                let claimed = connection
                    .prepare_cached(
                        "UPDATE deliveries SET next_attempt_at = ?2, lease = ?3 WHERE id IN (
                            SELECT d.id FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
                            WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 AND e.enabled = 1
                              AND d.endpoint_id NOT IN (SELECT value FROM json_each(?5))
                            ORDER BY d.next_attempt_at LIMIT ?4)",
                    )?
                    .execute(params![now.unix_millis(), lease_until.unix_millis(), lease, limit, busy])?;
                if claimed == 0 {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT d.id, d.lease, d.attempts, d.format, d.text_escape, v.id, v.topic, v.created_at, v.data, v.meta,
                        {ENDPOINT_COLUMNS_E}
                     FROM deliveries d JOIN events v ON v.id = d.event_id JOIN endpoints e ON e.id = d.endpoint_id
                     WHERE d.lease = ?1 AND d.next_attempt_at = ?2 AND d.status = 'pending'"
                );
                let mut statement = connection.prepare_cached(&sql)?;
                let rows = statement.query_map(params![lease, lease_until.unix_millis()], claimed_row)?;
                rows.map(|row| row?).collect()
            })
            .await
    }

    /// Records attempts and moves their deliveries on, in one commit. An outcome whose lease was lost (another
    /// claim took the delivery) is dropped, so each attempt's outcome is recorded once.
    pub async fn record_outcomes(&self, outcomes: Vec<AttemptOutcome>) -> Result<usize, StoreError> {
        self.engine
            .write(move |connection| {
                let mut recorded = 0;
                let now = Timestamp::now().unix_millis();
                for outcome in &outcomes {
                    let (status, next_attempt) = match &outcome.next {
                        NextStep::Done(status) => (*status, None),
                        NextStep::RetryAt(when) => (DeliveryStatus::Pending, Some(when.unix_millis())),
                    };
                    let attempt = &outcome.attempt;
                    let updated = connection
                        .prepare_cached(
                            "UPDATE deliveries SET status = ?3, attempts = ?4, next_attempt_at = ?5, lease = NULL, last_status = ?6, last_error = ?7, updated_at = ?8
                             WHERE id = ?1 AND lease = ?2",
                        )?
                        .execute(params![
                            outcome.delivery.as_str(),
                            outcome.lease,
                            status.as_str(),
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
                                request_headers, response_status, response_headers, response_body, error_kind,
                                error_detail)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
                        ])?;
                    recorded += 1;
                }
                Ok(recorded)
            })
            .await
    }

    /// Gives leased deliveries back to the queue untouched (shutdown, or a claim beyond an endpoint's cap).
    pub async fn release(&self, leases: Vec<(DeliveryId, i64)>) -> Result<(), StoreError> {
        if leases.is_empty() {
            return Ok(());
        }
        self.engine
            .write(move |connection| {
                let mut statement = connection.prepare_cached(
                    "UPDATE deliveries SET next_attempt_at = ?3, lease = NULL WHERE id = ?1 AND lease = ?2",
                )?;
                let now = Timestamp::now().unix_millis();
                for (id, lease) in &leases {
                    statement.execute(params![id.as_str(), lease, now])?;
                }
                Ok(())
            })
            .await
    }

    /// Releases every lease. Only for the embedded store at start-up, where this process is the only one.
    pub async fn release_all_leases(&self) -> Result<u64, StoreError> {
        self.engine
            .write(|connection| {
                Ok(connection.execute(
                    "UPDATE deliveries SET lease = NULL, next_attempt_at = MIN(next_attempt_at, ?1)
                     WHERE lease IS NOT NULL",
                    [Timestamp::now().unix_millis()],
                )? as u64)
            })
            .await
    }

    /// When the next pending delivery of an enabled endpoint not in `busy_endpoints` falls due, if any.
    /// A leased delivery falls due when its lease expires.
    pub async fn next_due(&self, busy_endpoints: Vec<EndpointId>) -> Result<Option<Timestamp>, StoreError> {
        self.engine
            .read(move |connection| {
                let busy = json_ids(&busy_endpoints);
                let next: Option<i64> = connection
                    .prepare_cached(
                        "SELECT d.next_attempt_at FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
                         WHERE d.status = 'pending' AND e.enabled = 1
                           AND d.endpoint_id NOT IN (SELECT value FROM json_each(?1))
                         ORDER BY d.next_attempt_at LIMIT 1",
                    )?
                    .query_row([busy], |row| row.get(0))
                    .optional()?;
                Ok(next.map(Timestamp::from_unix_millis))
            })
            .await
    }

    /// Counts deliveries by status, for health checks and tests.
    pub async fn delivery_counts(&self) -> Result<Vec<(DeliveryStatus, u64)>, StoreError> {
        self.engine
            .read(|connection| {
                let mut statement = connection
                    .prepare_cached("SELECT status, COUNT(*) FROM deliveries GROUP BY status ORDER BY status")?;
                let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, u64>(1)?)))?;
                let mut counts = Vec::new();
                for row in rows {
                    let (status, count) = row?;
                    let status = DeliveryStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt { detail: format!("delivery status {status:?}") })?;
                    counts.push((status, count));
                }
                Ok(counts)
            })
            .await
    }
}

/// Ids as a JSON array, for `json_each` (SQLite has no array parameters).
fn json_ids(ids: &[EndpointId]) -> String {
    // Ids are validated base32 after a prefix, so they need no escaping.
    let quoted: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
    format!("[{}]", quoted.join(","))
}

fn rand_lease() -> i64 {
    // A lease token only has to differ between claims; the clock's nanoseconds mixed with a counter suffice.
    use std::sync::atomic::{AtomicI64, Ordering};
    static COUNTER: AtomicI64 = AtomicI64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as i64)
        .unwrap_or(0);
    (nanos << 16) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
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

/// Every topic must exist; a topic not already subscribed (`current`) must not be deprecated.
fn check_subscribable(connection: &Connection, topics: &[TopicName], current: &[TopicName]) -> Result<(), StoreError> {
    let mut statement = connection.prepare_cached("SELECT deprecated FROM topics WHERE name = ?1")?;
    for topic in topics {
        let deprecated: Option<bool> = statement.query_row([topic.as_str()], |row| row.get(0)).optional()?;
        match deprecated {
            None => return Err(StoreError::UnknownTopic { name: topic.to_string() }),
            Some(true) if !current.contains(topic) => {
                return Err(StoreError::DeprecatedTopic { name: topic.to_string() });
            }
            Some(_) => {}
        }
    }
    Ok(())
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
    connection.query_row(&sql, [id.as_str(), tenant.as_str()], endpoint_row).optional()?.transpose()
}

fn paginate<T>(mut items: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { data: items, next_cursor }
}
