//! What the operators' console keeps and reads: its sessions (an operator signed in with the admin key; only the
//! token's hash is kept), and views across tenants: the queue, the endpoints that fail, the hours of the whole
//! installation, and the tenant an id belongs to.

use std::time::Duration;

use hookline_core::health::Health;
use hookline_core::id::{ConsoleSessionId, EndpointId, TenantId};
use hookline_core::time::Timestamp;

use crate::health::HourCount;
use crate::portal::NewPortalSession;
use crate::sql::{Columns, Dialect, Sql, Value, millis, parse_field};
use crate::{Store, StoreError};

/// An operator signed in to the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    pub id: ConsoleSessionId,
    /// The token its forms carry.
    pub csrf: String,
    pub created: Timestamp,
    pub last_seen: Timestamp,
    pub expires: Timestamp,
    /// The hash of the admin key it signed in with.
    pub key_hash: String,
}

/// An endpoint whose last attempts failed, for the console's list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailingEndpoint {
    pub tenant: TenantId,
    pub endpoint: EndpointId,
    pub url: String,
    pub enabled: bool,
    pub health: Health,
}

/// The delivery queue as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSummary {
    /// Deliveries waiting for an attempt, counted up to the cap asked for.
    pub pending: u64,
    /// Of those, the ones due now.
    pub due: u64,
    /// When the most overdue one was due.
    pub oldest_due: Option<Timestamp>,
    /// PostgreSQL: deliveries leased now, per node.
    pub leased_by_node: Vec<(String, u64)>,
    /// Which node holds each background job's lease, and until when.
    pub jobs: Vec<(String, String, Timestamp)>,
}

const SESSION_COLUMNS: &str = "id, csrf, created_at, last_seen_at, expires_at, key_hash";

fn session_row(row: &dyn Columns) -> Result<ConsoleSession, StoreError> {
    Ok(ConsoleSession {
        id: parse_field(&row.text(0)?)?,
        csrf: row.text(1)?,
        created: millis(row, 2)?,
        last_seen: millis(row, 3)?,
        expires: millis(row, 4)?,
        key_hash: row.text(5)?,
    })
}

impl Store {
    /// Starts an operator's session, signed in with the admin key whose hash is `key_hash`.
    pub async fn create_console_session(
        &self,
        session: NewPortalSession,
        key_hash: String,
    ) -> Result<ConsoleSession, StoreError> {
        let now = self.clock.now();
        let created = ConsoleSession {
            id: ConsoleSessionId::generate_at(now),
            csrf: session.csrf,
            created: now,
            last_seen: now,
            expires: now.saturating_add(session.lifetime),
            key_hash,
        };
        let row = created.clone();
        writing!(self, |sql| {
            let values: [&dyn Value; 6] = [
                &row.id.as_str(),
                &session.token_hash,
                &row.csrf,
                &now.unix_millis(),
                &row.expires.unix_millis(),
                &row.key_hash,
            ];
            sql.execute(
                "INSERT INTO console_sessions (id, token_hash, csrf, created_at, last_seen_at, expires_at, key_hash)
                 VALUES ($1, $2, $3, $4, $4, $5, $6)",
                &values,
            )
            .await
        })?;
        Ok(created)
    }

    /// The live session a token belongs to: not past its end, used within `idle`; its last use written at most
    /// every minute.
    pub async fn console_session(
        &self,
        token_hash: String,
        idle: Duration,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let now = self.clock.now();
        let statement = format!("SELECT {SESSION_COLUMNS} FROM console_sessions WHERE token_hash = $1");
        let found = reading!(self, |sql| sql.first(&statement, &[&token_hash.as_str()], session_row).await)?;
        let Some(mut session) = found else { return Ok(None) };
        if now >= session.expires || now >= session.last_seen.saturating_add(idle) {
            return Ok(None);
        }
        session.last_seen =
            self.touch_session("console_sessions", session.id.to_string(), session.last_seen, now).await?;
        Ok(Some(session))
    }

    /// Ends an operator's session (signing out).
    pub async fn end_console_session(&self, id: ConsoleSessionId) -> Result<(), StoreError> {
        writing!(self, |sql| {
            sql.execute("DELETE FROM console_sessions WHERE id = $1", &[&id.as_str()]).await?;
            Ok(())
        })
    }

    /// The queue across tenants; pending deliveries counted up to `cap` (the due index read, never the table).
    pub async fn queue_summary(&self, cap: u32) -> Result<QueueSummary, StoreError> {
        let now = self.clock.now().unix_millis();
        let cap = i64::from(cap);
        reading!(self, |sql| {
            let count = |row: &dyn Columns| Ok(u64::try_from(row.integer(0)?).unwrap_or(0));
            let pending = sql
                .first(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
                        WHERE status = 'pending' AND next_attempt_at IS NOT NULL LIMIT $1) waiting",
                    &[&cap],
                    count,
                )
                .await?
                .unwrap_or(0);
            let values: [&dyn Value; 2] = [&now, &cap];
            let due = sql
                .first(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
                        WHERE status = 'pending' AND next_attempt_at IS NOT NULL AND next_attempt_at <= $1
                        LIMIT $2) due",
                    &values,
                    count,
                )
                .await?
                .unwrap_or(0);
            let oldest_due = sql
                .first(
                    "SELECT MIN(next_attempt_at) FROM deliveries
                     WHERE status = 'pending' AND next_attempt_at IS NOT NULL",
                    &[],
                    |row| Ok(row.optional_integer(0)?.map(Timestamp::from_unix_millis)),
                )
                .await?
                .flatten()
                .filter(|due| due.unix_millis() <= now);
            let leased_by_node = match sql.dialect() {
                Dialect::Postgres => {
                    let values: [&dyn Value; 1] = [&now];
                    sql.query(
                        "SELECT lease_node, COUNT(*) FROM deliveries
                         WHERE status = 'pending' AND next_attempt_at > $1 AND lease IS NOT NULL AND lease_node IS NOT NULL
                         GROUP BY lease_node ORDER BY lease_node",
                        &values,
                        |row| Ok((row.text(0)?, u64::try_from(row.integer(1)?).unwrap_or(0))),
                    )
                    .await?
                }
                Dialect::Sqlite => Vec::new(),
            };
            let jobs = sql
                .query("SELECT name, holder, until_at FROM job_leases ORDER BY name", &[], |row| {
                    Ok((row.text(0)?, row.text(1)?, millis(row, 2)?))
                })
                .await?;
            Ok(QueueSummary { pending, due, oldest_due, leased_by_node, jobs })
        })
    }

    /// Endpoints with failures in a row now, longest failing first, at most `limit`.
    pub async fn failing_endpoints(&self, limit: u32) -> Result<Vec<FailingEndpoint>, StoreError> {
        let statement = "SELECT h.tenant_id, h.endpoint_id, e.url, e.enabled, h.consecutive_failures, h.failing_since,
                h.last_success_at, h.last_failure_at, h.failing_told, h.exhausted_in_run
             FROM endpoint_health h JOIN endpoints e ON e.id = h.endpoint_id
             WHERE h.consecutive_failures > 0 AND e.deleted_at IS NULL
             ORDER BY h.failing_since, h.endpoint_id LIMIT $1";
        reading!(self, |sql| {
            sql.query(statement, &[&i64::from(limit)], |row| {
                Ok(FailingEndpoint {
                    tenant: parse_field(&row.text(0)?)?,
                    endpoint: parse_field(&row.text(1)?)?,
                    url: row.text(2)?,
                    enabled: row.flag(3)?,
                    health: crate::health::health_row_at(row, 4)?,
                })
            })
            .await
        })
    }

    /// Successes and failures of every endpoint, per hour from `since`, oldest first.
    pub async fn installation_hours(&self, since: Timestamp) -> Result<Vec<HourCount>, StoreError> {
        reading!(self, |sql| {
            sql.query(
                "SELECT hour, CAST(SUM(successes) AS BIGINT), CAST(SUM(failures) AS BIGINT) FROM endpoint_hours WHERE hour >= $1
                 GROUP BY hour ORDER BY hour",
                &[&since.unix_millis()],
                crate::health::hour_row,
            )
            .await
        })
    }

    /// The tenant an event, delivery or endpoint id belongs to; `None` when there is none with it (or the id is
    /// of none of these kinds).
    pub async fn tenant_of(&self, id: String) -> Result<Option<TenantId>, StoreError> {
        let table = if id.starts_with(hookline_core::id::EventId::PREFIX) {
            "events"
        } else if id.starts_with(hookline_core::id::DeliveryId::PREFIX) {
            "deliveries"
        } else if id.starts_with(hookline_core::id::EndpointId::PREFIX) {
            "endpoints"
        } else {
            return Ok(None);
        };
        let statement = format!("SELECT tenant_id FROM {table} WHERE id = $1");
        let found = reading!(self, |sql| sql.first(&statement, &[&id.as_str()], |row| row.text(0)).await)?;
        Ok(found.and_then(|tenant| tenant.parse().ok()))
    }
}
