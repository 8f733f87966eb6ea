//! The shared backend: a PostgreSQL database that several stateless nodes use at once.
//!
//! Work is distributed by leases: a claim takes due deliveries with `FOR UPDATE SKIP LOCKED`, so two nodes never
//! claim the same delivery, and moves each one's due time to the end of its lease, so a node that dies mid-attempt
//! leaves deliveries that fall due again when their lease runs out. An outcome is recorded only under the lease it
//! was claimed with. Publishes `NOTIFY` every node, whose listener wakes its dispatcher.

mod pool;
mod publish;
mod schema;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::GenericClient;
use hookline_core::clock::Clock;
use hookline_core::id::{DeliveryId, EndpointId, EventId, TenantId};
use hookline_core::time::Timestamp;
use hookline_core::topic::{SEED_TOPICS, TopicName};
use tokio::sync::{Notify, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, NoTls, Row};

use self::pool::{Pool, Session};
use self::publish::Publisher;
use crate::model::*;
use crate::rows::*;
use crate::shared::*;
use crate::{Claim, DeliveryFilter, EventFilter, PageRequest, StoreError};

/// Connections per node. Each node also keeps one more, for `LISTEN`.
const POOL_SIZE: usize = 12;
/// The channel publishes notify and every node listens on.
const WORK_CHANNEL: &str = "hookline_work";

impl Columns for Row {
    fn text(&self, index: usize) -> Result<String, StoreError> {
        Ok(self.try_get(index)?)
    }
    fn optional_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(index)?)
    }
    fn integer(&self, index: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(index)?)
    }
    fn optional_integer(&self, index: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(index)?)
    }
    fn flag(&self, index: usize) -> Result<bool, StoreError> {
        Ok(self.try_get(index)?)
    }
}

fn read_all<T>(rows: Vec<Row>, read: fn(&dyn Columns) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    rows.iter().map(|row| read(row)).collect()
}

fn read_first<T>(row: Option<Row>, read: fn(&dyn Columns) -> Result<T, StoreError>) -> Result<Option<T>, StoreError> {
    row.as_ref().map(|row| read(row)).transpose()
}

/// The placeholder of the n-th parameter, for list queries built at run time.
fn placeholder(index: usize) -> String {
    format!("${index}")
}

fn bind_values(values: &[ListValue]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|value| match value {
            ListValue::Text(text) => text as &(dyn ToSql + Sync),
            ListValue::Integer(number) => number as &(dyn ToSql + Sync),
        })
        .collect()
}

pub(crate) struct PostgresStore {
    pool: Arc<Pool>,
    publisher: Publisher,
    /// This node's identity, which its leases carry.
    node: String,
    clock: Arc<dyn Clock>,
    _lock: std::fs::File,
    /// Dropped with the store, which ends the work listener.
    _listener_stop: oneshot::Sender<()>,
}

/// Reads a `postgres://` url into a connection configuration.
pub(crate) fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    url.parse().map_err(|_| StoreError::InvalidUrl {
        url: url.to_owned(),
        hint: "expected postgres://user@host:port/database",
    })
}

/// Reads the node's identity from its directory, making one on first start.
fn node_identity(node_dir: &std::path::Path) -> Result<String, StoreError> {
    let path = node_dir.join("node-id");
    let dir_error = |source| StoreError::DataDir { path: node_dir.to_owned(), source };
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Ok(_) => write_identity(&path).map_err(dir_error),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => write_identity(&path).map_err(dir_error),
        Err(error) => Err(dir_error(error)),
    }
}

fn write_identity(path: &std::path::Path) -> std::io::Result<String> {
    let node = format!("node_{:016x}", rand::random::<u64>());
    std::fs::write(path, format!("{node}\n"))?;
    Ok(node)
}

/// Opens a session on a pooled connection (outside any transaction).
macro_rules! session {
    ($store:expr, $connection:ident) => {
        Session { client: &$connection, pool: &$store.pool }
    };
}

/// Runs `$body` with `$session` inside one transaction on a pooled connection, committing if it succeeds.
macro_rules! in_transaction {
    ($store:expr, |$session:ident| $body:block) => {{
        let mut connection = $store.pool.get().await?;
        let transaction = connection.transaction().await.map_err(|error| $store.pool.classify(error))?;
        let outcome = {
            let mut $session = Session { client: &transaction, pool: &$store.pool };
            let $session = &mut $session;
            $body
        };
        match outcome {
            Ok(value) => {
                transaction.commit().await.map_err(|error| $store.pool.classify(error))?;
                Ok(value)
            }
            // Dropping the transaction rolls it back.
            Err(error) => Err(error),
        }
    }};
}

impl PostgresStore {
    /// Connects, migrates, seeds the topic catalogue if no node has, and starts listening for other nodes' work.
    pub(crate) async fn open(
        url: &str,
        node_dir: &std::path::Path,
        work: Arc<Notify>,
        clock: Arc<dyn Clock>,
    ) -> Result<PostgresStore, StoreError> {
        let config = parse_url(url)?;
        let lock = lock_data_dir(node_dir)?;
        let node = node_identity(node_dir)?;
        let pool = Arc::new(Pool::new(config, POOL_SIZE));
        let publisher = Publisher::start(Arc::clone(&pool));
        let (listener_stop, stopped) = oneshot::channel();
        let store = PostgresStore { pool, publisher, node, clock, _lock: lock, _listener_stop: listener_stop };
        {
            let mut connection = store.pool.get().await?;
            schema::migrate(&mut connection).await.map_err(|error| store.pool.classify(error))?;
        }
        store.seed_topics().await?;
        let released = store.release_own_leases().await?;
        if released > 0 {
            tracing::info!(released, node = %store.node, "deliveries this node left in flight go back to the queue");
        }
        tokio::spawn(listen(store.pool.config().clone(), work, stopped));
        Ok(store)
    }

    pub(crate) fn location(&self) -> &str {
        self.pool.location()
    }

    async fn seed_topics(&self) -> Result<(), StoreError> {
        in_transaction!(self, |session| {
            let inserted = session
                .execute(
                    "INSERT INTO settings (key, value) VALUES ('topics_seeded', '1') ON CONFLICT (key) DO NOTHING",
                    &[],
                )
                .await?;
            if inserted > 0 {
                let now = self.clock.now().unix_millis();
                for topic in SEED_TOPICS {
                    session
                        .execute(
                            "INSERT INTO topics (name, description, deprecated, created_at) VALUES ($1, $2, $3, $4)
                             ON CONFLICT (name) DO NOTHING",
                            &[&topic.name, &topic.description, &topic.deprecated, &now],
                        )
                        .await?;
                }
            }
            Ok(())
        })
    }

    /// The leases a previous run of this node held belong to a dead process: make those deliveries due now.
    async fn release_own_leases(&self) -> Result<u64, StoreError> {
        let connection = self.pool.get().await?;
        session!(self, connection)
            .execute(
                "UPDATE deliveries SET lease = NULL, lease_node = NULL, next_attempt_at = LEAST(next_attempt_at, $2)
                 WHERE lease_node = $1 AND lease IS NOT NULL AND status = 'pending'",
                &[&self.node, &self.clock.now().unix_millis()],
            )
            .await
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let connection = self.pool.get().await?;
        session!(self, connection).query_one("SELECT 1", &[]).await.map(|_| ())
    }

    // ----- settings and keys -----

    pub(crate) async fn settle_admin_key_hash(&self, hash: String) -> Result<String, StoreError> {
        let connection = self.pool.get().await?;
        let mut session = session!(self, connection);
        session
            .execute(
                "INSERT INTO settings (key, value) VALUES ('admin_key_hash', $1) ON CONFLICT (key) DO NOTHING",
                &[&hash],
            )
            .await?;
        session.query_one("SELECT value FROM settings WHERE key = 'admin_key_hash'", &[]).await?.text(0)
    }

    pub(crate) async fn tenant_for_key_hash(&self, hash: String) -> Result<Option<TenantId>, StoreError> {
        let connection = self.pool.get().await?;
        let row = session!(self, connection)
            .query_opt("SELECT tenant_id FROM api_keys WHERE key_hash = $1", &[&hash])
            .await?;
        row.map(|row| parse_field(&row.text(0)?)).transpose()
    }

    pub(crate) async fn insert_api_key(&self, key: ApiKey, hash: String) -> Result<Option<ApiKey>, StoreError> {
        let connection = self.pool.get().await?;
        let inserted = session!(self, connection)
            .execute(
                "INSERT INTO api_keys (id, tenant_id, key_hash, name, created_at)
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $2)",
                &[&key.id.as_str(), &key.tenant.as_str(), &hash, &key.name, &key.created.unix_millis()],
            )
            .await?;
        Ok((inserted > 0).then_some(key))
    }

    // ----- topics -----

    pub(crate) async fn list_topics(&self) -> Result<Vec<Topic>, StoreError> {
        let connection = self.pool.get().await?;
        let rows = session!(self, connection)
            .query("SELECT name, description, deprecated, created_at FROM topics ORDER BY name", &[])
            .await?;
        read_all(rows, topic_row)
    }

    pub(crate) async fn create_topic(&self, topic: Topic) -> Result<Topic, StoreError> {
        let connection = self.pool.get().await?;
        let inserted = session!(self, connection)
            .execute(
                "INSERT INTO topics (name, description, deprecated, created_at) VALUES ($1, $2, FALSE, $3)
                 ON CONFLICT (name) DO NOTHING",
                &[&topic.name.as_str(), &topic.description, &topic.created.unix_millis()],
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict { what: "topic", id: topic.name.to_string() });
        }
        Ok(topic)
    }

    pub(crate) async fn update_topic(
        &self,
        name: TopicName,
        description: Option<String>,
        deprecated: Option<bool>,
    ) -> Result<Option<Topic>, StoreError> {
        let connection = self.pool.get().await?;
        let row = session!(self, connection)
            .query_opt(
                "UPDATE topics SET description = COALESCE($2, description), deprecated = COALESCE($3, deprecated)
                 WHERE name = $1 RETURNING name, description, deprecated, created_at",
                &[&name.as_str(), &description, &deprecated],
            )
            .await?;
        read_first(row, topic_row)
    }

    // ----- tenants -----

    pub(crate) async fn create_tenant(&self, tenant: Tenant) -> Result<Tenant, StoreError> {
        let connection = self.pool.get().await?;
        let inserted = session!(self, connection)
            .execute(
                "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                &[&tenant.id.as_str(), &tenant.name, &tenant.created.unix_millis()],
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict { what: "tenant", id: tenant.id.to_string() });
        }
        Ok(tenant)
    }

    pub(crate) async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>, StoreError> {
        let connection = self.pool.get().await?;
        let rows = session!(self, connection)
            .query(
                "SELECT id, name, created_at FROM tenants WHERE id > $1 ORDER BY id LIMIT $2",
                &[&page.cursor.as_deref().unwrap_or(""), &(i64::from(page.limit) + 1)],
            )
            .await?;
        Ok(paginate(read_all(rows, tenant_row)?, page.limit, |tenant| tenant.id.to_string()))
    }

    pub(crate) async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        let connection = self.pool.get().await?;
        let row = session!(self, connection)
            .query_opt("SELECT id, name, created_at FROM tenants WHERE id = $1", &[&id.as_str()])
            .await?;
        read_first(row, tenant_row)
    }

    pub(crate) async fn delete_tenant(&self, id: TenantId) -> Result<bool, StoreError> {
        in_transaction!(self, |session| {
            for sql in TENANT_CHILDREN_DELETES {
                session.execute(sql, &[&id.as_str()]).await?;
            }
            Ok(session.execute("DELETE FROM tenants WHERE id = $1", &[&id.as_str()]).await? > 0)
        })
    }

    // ----- endpoints -----

    pub(crate) async fn create_endpoint(&self, endpoint: Endpoint) -> Result<Option<Endpoint>, StoreError> {
        in_transaction!(self, |session| {
            if !tenant_exists(session, &endpoint.tenant).await? {
                return Ok(None);
            }
            check_topics(session, &endpoint.topics, &[]).await?;
            session
                .execute(
                    "INSERT INTO endpoints (id, tenant_id, url, topics, description, enabled, format, signing, secret,
                        retry_schedule, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
                    &[
                        &endpoint.id.as_str(),
                        &endpoint.tenant.as_str(),
                        &endpoint.url,
                        &join_topics(&endpoint.topics),
                        &endpoint.description,
                        &endpoint.enabled,
                        &endpoint.format.as_str(),
                        &join_schemes(&endpoint.signing),
                        &endpoint.secret,
                        &endpoint.retry_schedule.as_ref().map(|schedule| join_schedule(schedule.delays())),
                        &endpoint.created.unix_millis(),
                    ],
                )
                .await?;
            write_endpoint_topics(session, &endpoint.id, &endpoint.topics).await?;
            Ok(Some(endpoint))
        })
    }

    pub(crate) async fn list_endpoints(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Page<Endpoint>, StoreError> {
        let connection = self.pool.get().await?;
        let rows = session!(self, connection)
            .query(
                &format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ),
                &[&tenant.as_str(), &page.cursor.as_deref().unwrap_or(""), &(i64::from(page.limit) + 1)],
            )
            .await?;
        Ok(paginate(read_all(rows, endpoint_row)?, page.limit, |endpoint| endpoint.id.to_string()))
    }

    pub(crate) async fn get_endpoint(&self, tenant: TenantId, id: EndpointId) -> Result<Option<Endpoint>, StoreError> {
        let connection = self.pool.get().await?;
        load_endpoint(&mut session!(self, connection), &tenant, &id, false).await
    }

    pub(crate) async fn update_endpoint(
        &self,
        tenant: TenantId,
        id: EndpointId,
        patch: EndpointPatch,
    ) -> Result<Option<Endpoint>, StoreError> {
        in_transaction!(self, |session| {
            let Some(mut endpoint) = load_endpoint(session, &tenant, &id, true).await? else { return Ok(None) };
            if let Some(topics) = &patch.topics {
                check_topics(session, topics, &endpoint.topics).await?;
                write_endpoint_topics(session, &endpoint.id, topics).await?;
            }
            apply_patch(&mut endpoint, patch, self.clock.now());
            session
                .execute(
                    "UPDATE endpoints SET url = $2, topics = $3, description = $4, enabled = $5, format = $6,
                        signing = $7, retry_schedule = $8, updated_at = $9, secret = $10
                     WHERE id = $1",
                    &[
                        &endpoint.id.as_str(),
                        &endpoint.url,
                        &join_topics(&endpoint.topics),
                        &endpoint.description,
                        &endpoint.enabled,
                        &endpoint.format.as_str(),
                        &join_schemes(&endpoint.signing),
                        &endpoint.retry_schedule.as_ref().map(|schedule| join_schedule(schedule.delays())),
                        &endpoint.updated.unix_millis(),
                        &endpoint.secret,
                    ],
                )
                .await?;
            if endpoint.enabled {
                notify_work(session).await?;
            }
            Ok(Some(endpoint))
        })
    }

    pub(crate) async fn delete_endpoint(&self, tenant: TenantId, id: EndpointId) -> Result<bool, StoreError> {
        in_transaction!(self, |session| {
            let deleted = session
                .execute("DELETE FROM endpoints WHERE id = $1 AND tenant_id = $2", &[&id.as_str(), &tenant.as_str()])
                .await?;
            if deleted > 0 {
                session
                    .execute(
                        "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, lease = NULL,
                            last_error = 'endpoint deleted', updated_at = $2
                         WHERE endpoint_id = $1 AND status = 'pending'",
                        &[&id.as_str(), &self.clock.now().unix_millis()],
                    )
                    .await?;
            }
            Ok(deleted > 0)
        })
    }

    // ----- events -----

    /// Stores the event and its deliveries with the next publish batch; see `publish.rs`.
    pub(crate) async fn publish(&self, event: Event) -> Result<Option<Published>, StoreError> {
        self.publisher.publish(event).await
    }

    pub(crate) async fn list_events(
        &self,
        tenant: TenantId,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<Event>, StoreError> {
        let mut query = ListQuery::new(format!("SELECT {EVENT_COLUMNS} FROM events"), tenant);
        query.filter("id", "<", page.cursor);
        query.filter("topic", "=", filter.topic.map(|topic| topic.to_string()));
        query.filter("created_at", ">", filter.after.map(|after| after.unix_millis()));
        let (sql, values) = query.finish(page.limit, placeholder);
        let connection = self.pool.get().await?;
        let rows = session!(self, connection).query_dynamic(&sql, &bind_values(&values)).await?;
        Ok(paginate(read_all(rows, event_row)?, page.limit, |event| event.id.to_string()))
    }

    pub(crate) async fn get_event(&self, tenant: TenantId, id: EventId) -> Result<Option<Event>, StoreError> {
        let connection = self.pool.get().await?;
        let row = session!(self, connection)
            .query_opt(
                &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1 AND tenant_id = $2"),
                &[&id.as_str(), &tenant.as_str()],
            )
            .await?;
        read_first(row, event_row)
    }

    // ----- deliveries -----

    pub(crate) async fn list_deliveries(
        &self,
        tenant: TenantId,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let mut query = ListQuery::new(format!("SELECT {DELIVERY_COLUMNS} FROM deliveries"), tenant);
        query.delivery_filter(filter, page.cursor);
        let (sql, values) = query.finish(page.limit, placeholder);
        let connection = self.pool.get().await?;
        let rows = session!(self, connection).query_dynamic(&sql, &bind_values(&values)).await?;
        Ok(paginate(read_all(rows, delivery_row)?, page.limit, |delivery| delivery.id.to_string()))
    }

    pub(crate) async fn get_delivery(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Option<(Delivery, Vec<Attempt>)>, StoreError> {
        let connection = self.pool.get().await?;
        let mut session = session!(self, connection);
        let row = session
            .query_opt(
                &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1 AND tenant_id = $2"),
                &[&id.as_str(), &tenant.as_str()],
            )
            .await?;
        let Some(delivery) = read_first(row, delivery_row)? else { return Ok(None) };
        let rows = session
            .query(
                &format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE delivery_id = $1 ORDER BY number"),
                &[&id.as_str()],
            )
            .await?;
        Ok(Some((delivery, read_all(rows, attempt_row)?)))
    }

    pub(crate) async fn retry_delivery(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        in_transaction!(self, |session| {
            let now = self.clock.now().unix_millis();
            session
                .execute(
                    "UPDATE deliveries SET status = 'pending', next_attempt_at = $3, updated_at = $3
                     WHERE id = $1 AND tenant_id = $2 AND (lease IS NULL OR next_attempt_at < $3)",
                    &[&id.as_str(), &tenant.as_str(), &now],
                )
                .await?;
            let row = session
                .query_opt(
                    &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1 AND tenant_id = $2"),
                    &[&id.as_str(), &tenant.as_str()],
                )
                .await?;
            let delivery = read_first(row, delivery_row)?;
            if delivery.is_some() {
                notify_work(session).await?;
            }
            Ok(delivery)
        })
    }

    // ----- the dispatcher's queue -----

    pub(crate) async fn claim_due(&self, claim: Claim) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let busy: Vec<&str> = claim.busy_endpoints.iter().map(EndpointId::as_str).collect();
        // Which deliveries: see `CLAIM_EARLIEST` and `CLAIM_AROUND_BUSY`. Rows another claim holds are skipped.
        let due = if busy.is_empty() { CLAIM_EARLIEST } else { CLAIM_AROUND_BUSY };
        let connection = self.pool.get().await?;
        let rows = session!(self, connection)
            .query(
                &format!(
                    "WITH {due}, d AS (
                        UPDATE deliveries SET next_attempt_at = $2, lease = $3, lease_node = $6
                        FROM due WHERE deliveries.id = due.id
                        RETURNING deliveries.*
                     )
                     SELECT {CLAIMED_COLUMNS}
                     FROM d JOIN events v ON v.id = d.event_id JOIN endpoints e ON e.id = d.endpoint_id"
                ),
                &[
                    &claim.now.unix_millis(),
                    &claim.lease_until.unix_millis(),
                    &lease_token(),
                    &i64::from(claim.limit),
                    &busy,
                    &self.node,
                    &i64::from(claim.per_endpoint),
                ],
            )
            .await?;
        read_all(rows, claimed_row)
    }

    pub(crate) async fn record_outcomes(&self, outcomes: Arc<[AttemptOutcome]>) -> Result<usize, StoreError> {
        let mut columns = OutcomeColumns::default();
        for outcome in outcomes.iter() {
            columns.push(outcome);
        }
        let connection = self.pool.get().await?;
        let rows = session!(self, connection)
            .query(
                "WITH outcome AS (
                    SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], $5::int8[], $6::int8[],
                        $7::text[]) AS o(id, lease, status, attempts, next_attempt_at, last_status, last_error)
                 ), moved AS (
                    UPDATE deliveries d SET status = o.status, attempts = o.attempts,
                        next_attempt_at = o.next_attempt_at, lease = NULL, last_status = o.last_status,
                        last_error = o.last_error, updated_at = $8
                    FROM outcome o WHERE d.id = o.id AND d.lease = o.lease
                    RETURNING d.id
                 )
                 INSERT INTO attempts (delivery_id, number, started_at, duration_ms, url, request_headers,
                    response_status, response_headers, response_body, error_kind, error_detail,
                    response_headers_omitted)
                 SELECT a.* FROM unnest($1::text[], $4::int8[], $9::int8[], $10::int8[], $11::text[], $12::text[],
                    $6::int8[], $13::text[], $14::text[], $15::text[], $7::text[], $16::int8[])
                    AS a(delivery_id, number, started_at, duration_ms, url, request_headers, response_status,
                        response_headers, response_body, error_kind, error_detail, response_headers_omitted)
                 WHERE a.delivery_id IN (SELECT id FROM moved)
                 ON CONFLICT (delivery_id, number) DO NOTHING
                 RETURNING delivery_id",
                &[
                    &columns.ids,
                    &columns.leases,
                    &columns.statuses,
                    &columns.numbers,
                    &columns.next_attempts,
                    &columns.response_statuses,
                    &columns.error_details,
                    &self.clock.now().unix_millis(),
                    &columns.started,
                    &columns.durations,
                    &columns.urls,
                    &columns.request_headers,
                    &columns.response_headers,
                    &columns.response_bodies,
                    &columns.error_kinds,
                    &columns.response_headers_omitted,
                ],
            )
            .await?;
        Ok(rows.len())
    }

    pub(crate) async fn release(&self, leases: Vec<(DeliveryId, i64)>) -> Result<(), StoreError> {
        let (ids, tokens): (Vec<&str>, Vec<i64>) = leases.iter().map(|(id, lease)| (id.as_str(), *lease)).unzip();
        let connection = self.pool.get().await?;
        session!(self, connection)
            .execute(
                "UPDATE deliveries d SET next_attempt_at = $3, lease = NULL
                 FROM unnest($1::text[], $2::int8[]) AS released(id, lease)
                 WHERE d.id = released.id AND d.lease = released.lease",
                &[&ids, &tokens, &self.clock.now().unix_millis()],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn next_due(&self, busy_endpoints: Vec<EndpointId>) -> Result<Option<Timestamp>, StoreError> {
        let busy: Vec<&str> = busy_endpoints.iter().map(EndpointId::as_str).collect();
        let connection = self.pool.get().await?;
        // As on SQLite: with some endpoints busy, each other one is asked for its earliest through its own index.
        let sql = if busy.is_empty() {
            "SELECT d.next_attempt_at FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
             WHERE d.status = 'pending' AND e.enabled AND cardinality($1::text[]) = 0
             ORDER BY d.next_attempt_at LIMIT 1"
        } else {
            "SELECT MIN((SELECT MIN(d.next_attempt_at) FROM deliveries d
                         WHERE d.endpoint_id = e.id AND d.status = 'pending'))
             FROM endpoints e WHERE e.enabled AND NOT (e.id = ANY($1))"
        };
        let row = session!(self, connection).query_opt(sql, &[&busy]).await?;
        Ok(row.map(|row| row.optional_integer(0)).transpose()?.flatten().map(Timestamp::from_unix_millis))
    }
}

/// The deliveries a claim takes when no endpoint is busy: the earliest due (from a window of a few batches), at
/// most `$7` of each endpoint. Parameters: `$1` now, `$4` the limit, `$5` busy endpoints (none here), `$7` the
/// per-endpoint cap.
const CLAIM_EARLIEST: &str = "candidate AS (
        SELECT d.id, d.endpoint_id, d.next_attempt_at
        FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.enabled AND cardinality($5::text[]) = 0
        ORDER BY d.next_attempt_at LIMIT $4::int8 * 4
        FOR UPDATE OF d SKIP LOCKED
    ), due AS (
        SELECT id FROM (
            SELECT id, next_attempt_at,
                row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at) AS position
            FROM candidate
        ) ranked
        WHERE position <= $7::int8 ORDER BY next_attempt_at LIMIT $4::int8
    )";

/// The deliveries a claim takes while some endpoints (`$5`) are busy: walking the queue in due order would step
/// over every due delivery of a busy endpoint, and a slow endpoint piles up many, so each other endpoint with
/// work due is visited through its own index instead, the longest waiting first.
const CLAIM_AROUND_BUSY: &str = "ready AS (
        SELECT e.id, (SELECT MIN(d.next_attempt_at) FROM deliveries d
                      WHERE d.endpoint_id = e.id AND d.status = 'pending') AS due
        FROM endpoints e
        WHERE e.enabled AND NOT (e.id = ANY($5))
    ), due AS (
        SELECT picked.id FROM ready CROSS JOIN LATERAL (
            SELECT d.id, d.next_attempt_at FROM deliveries d
            WHERE d.endpoint_id = ready.id AND d.status = 'pending' AND d.next_attempt_at <= $1
            ORDER BY d.next_attempt_at LIMIT $7::int8
            FOR UPDATE SKIP LOCKED
        ) picked
        WHERE ready.due <= $1
        ORDER BY picked.next_attempt_at LIMIT $4::int8
    )";

/// Attempt outcomes as one array per column, for a batch written with `unnest`.
#[derive(Default)]
struct OutcomeColumns {
    ids: Vec<String>,
    leases: Vec<i64>,
    statuses: Vec<&'static str>,
    numbers: Vec<i64>,
    next_attempts: Vec<Option<i64>>,
    response_statuses: Vec<Option<i64>>,
    error_details: Vec<Option<String>>,
    started: Vec<i64>,
    durations: Vec<i64>,
    urls: Vec<String>,
    request_headers: Vec<String>,
    response_headers: Vec<String>,
    response_bodies: Vec<Option<String>>,
    error_kinds: Vec<Option<&'static str>>,
    response_headers_omitted: Vec<i64>,
}

impl OutcomeColumns {
    fn push(&mut self, outcome: &AttemptOutcome) {
        let (status, next_attempt) = next_state(&outcome.next);
        let attempt = &outcome.attempt;
        self.ids.push(outcome.delivery.to_string());
        self.leases.push(outcome.lease);
        self.statuses.push(status);
        self.numbers.push(i64::from(attempt.number));
        self.next_attempts.push(next_attempt);
        self.response_statuses.push(attempt.response_status.map(i64::from));
        self.error_details.push(attempt.error_detail.clone());
        self.started.push(attempt.started.unix_millis());
        self.durations.push(attempt.duration_ms.min(i64::MAX as u64) as i64);
        self.urls.push(attempt.url.clone());
        self.request_headers.push(headers_json(&attempt.request_headers));
        self.response_headers.push(headers_json(&attempt.response_headers));
        self.response_bodies.push(attempt.response_body.clone());
        self.error_kinds.push(attempt.error.map(|error| error.as_str()));
        self.response_headers_omitted.push(i64::from(attempt.response_headers_omitted));
    }
}

/// Wakes every node's dispatcher once this transaction commits.
async fn notify_work<C: GenericClient>(session: &mut Session<'_, C>) -> Result<(), StoreError> {
    session.execute(&format!("SELECT pg_notify('{WORK_CHANNEL}', '')"), &[]).await.map(|_| ())
}

async fn tenant_exists<C: GenericClient>(session: &mut Session<'_, C>, tenant: &TenantId) -> Result<bool, StoreError> {
    session.query_one("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)", &[&tenant.as_str()]).await?.flag(0)
}

/// The event a publish with this one's idempotency key already made, as a replayed answer.
async fn existing_event<C: GenericClient>(
    session: &mut Session<'_, C>,
    event: &Event,
) -> Result<Option<Published>, StoreError> {
    let Some(key) = &event.idempotency_key else { return Ok(None) };
    let row = session
        .query_opt(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND idempotency_key = $2"),
            &[&event.tenant.as_str(), key],
        )
        .await?;
    let Some(existing) = read_first(row, event_row)? else { return Ok(None) };
    let deliveries = session
        .query_one("SELECT COUNT(*) FROM deliveries WHERE event_id = $1", &[&existing.id.as_str()])
        .await?
        .integer(0)?;
    Ok(Some(Published { event: existing, deliveries: deliveries.max(0) as u64, replayed: true, due: 0 }))
}

async fn check_topics<C: GenericClient>(
    session: &mut Session<'_, C>,
    topics: &[TopicName],
    current: &[TopicName],
) -> Result<(), StoreError> {
    let names: Vec<&str> = topics.iter().map(TopicName::as_str).collect();
    let rows = session.query("SELECT name, deprecated FROM topics WHERE name = ANY($1)", &[&names]).await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in &rows {
        found.push((row.text(0)?, row.flag(1)?));
    }
    check_subscribable(topics, current, |topic| {
        Ok(found.iter().find(|(name, _)| name == topic.as_str()).map(|(_, deprecated)| *deprecated))
    })
}

async fn write_endpoint_topics<C: GenericClient>(
    session: &mut Session<'_, C>,
    endpoint: &EndpointId,
    topics: &[TopicName],
) -> Result<(), StoreError> {
    let names: Vec<&str> = topics.iter().map(TopicName::as_str).collect();
    session.execute("DELETE FROM endpoint_topics WHERE endpoint_id = $1", &[&endpoint.as_str()]).await?;
    session
        .execute(
            "INSERT INTO endpoint_topics (endpoint_id, topic) SELECT $1, topic FROM unnest($2::text[]) AS topic
             ON CONFLICT DO NOTHING",
            &[&endpoint.as_str(), &names],
        )
        .await?;
    Ok(())
}

/// An endpoint of a tenant; `for_update` locks its row until the transaction ends, so concurrent patches of one
/// endpoint apply one after the other.
async fn load_endpoint<C: GenericClient>(
    session: &mut Session<'_, C>,
    tenant: &TenantId,
    id: &EndpointId,
    for_update: bool,
) -> Result<Option<Endpoint>, StoreError> {
    let sql = if for_update {
        &format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = $1 AND tenant_id = $2 FOR UPDATE")
    } else {
        &format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = $1 AND tenant_id = $2")
    };
    let row = session.query_opt(sql, &[&id.as_str(), &tenant.as_str()]).await?;
    read_first(row, endpoint_row)
}

/// Keeps a connection that `LISTEN`s for work published on any node and wakes this node's dispatcher; reconnects
/// when the connection drops, and wakes the dispatcher then too, in case it missed something meanwhile. Ends when
/// the store is dropped (`stopped` resolves).
async fn listen(config: tokio_postgres::Config, work: Arc<Notify>, mut stopped: oneshot::Receiver<()>) {
    let mut failures = 0u32;
    loop {
        let connected = tokio::select! {
            connected = config.connect(NoTls) => connected,
            _ = &mut stopped => return,
        };
        match connected {
            Ok((client, mut connection)) => {
                let mut driver = {
                    let work = Arc::clone(&work);
                    tokio::spawn(async move {
                        while let Some(message) = std::future::poll_fn(|context| connection.poll_message(context)).await
                        {
                            match message {
                                Ok(AsyncMessage::Notification(_)) => work.notify_one(),
                                Ok(_) => {}
                                Err(error) => {
                                    tracing::warn!(%error, "the work listener's database connection failed");
                                    return;
                                }
                            }
                        }
                    })
                };
                let listening = tokio::select! {
                    listening = listen_on(&client) => listening,
                    _ = &mut stopped => {
                        driver.abort();
                        return;
                    }
                };
                match listening {
                    Err(error) => tracing::warn!(%error, "could not LISTEN for work from other nodes"),
                    Ok(()) => {
                        failures = 0;
                        work.notify_one();
                        // Until the connection ends or the store is dropped.
                        tokio::select! {
                            _ = &mut driver => {}
                            _ = &mut stopped => {
                                driver.abort();
                                return;
                            }
                        }
                    }
                }
                driver.abort();
            }
            Err(error) => {
                if failures == 0 {
                    tracing::warn!(%error, "the work listener cannot reach the database; retrying");
                }
                failures += 1;
            }
        }
        // A pause between reconnections, so an unreachable database is not asked in a tight loop.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = &mut stopped => return,
        }
    }
}

async fn listen_on(client: &Client) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(&format!("LISTEN {WORK_CHANNEL}")).await
}
