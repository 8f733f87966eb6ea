//! Endpoint health, kept as attempts are recorded: counts of successes and failures per hour (`endpoint_hours`,
//! seven days of them), the current run of failures (`endpoint_health`), and what follows from it (the rules are
//! `hookline_core::health`): notices of operational events, which the notifying job publishes (`notices`), and
//! the automatic disabling of an endpoint that has failed for days.
//!
//! Attempts of operational events' own deliveries count for nothing here, so that an endpoint is never disabled
//! by the failure of its own alerts and no notice ever leads to another.

use std::collections::BTreeMap;
use std::sync::Arc;

use hookline_core::health::{Change, Health, Policy, Sample, hour_of};
use hookline_core::id::{EndpointId, NoticeId, TenantId};
use hookline_core::time::Timestamp;
use hookline_core::topic::is_operational;
use serde_json::json;

use crate::deliveries::{AttemptOutcome, DeliveryStatus, NextStep};
use crate::endpoints::Endpoint;
use crate::sql::{Columns, Dialect, Sql, Value, millis};
use crate::{Store, StoreError};

/// The successes and failures of one hour, by when the attempts began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourCount {
    pub hour: Timestamp,
    pub successes: u64,
    pub failures: u64,
}

/// An endpoint's health and its hourly counts of the last seven days, oldest first (hours without attempts are
/// left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointStats {
    pub health: Health,
    pub hours: Vec<HourCount>,
}

/// An operational event waiting to be published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub id: String,
    pub tenant: TenantId,
    pub topic: String,
    /// The event's `data`, compact JSON.
    pub data: String,
    pub created: Timestamp,
}

const HEALTH_COLUMNS: &str =
    "consecutive_failures, failing_since, last_success_at, last_failure_at, failing_told, exhausted_in_run";

fn health_row(row: &dyn Columns) -> Result<Health, StoreError> {
    health_row_at(row, 0)
}

/// Reads `HEALTH_COLUMNS` from column `offset` on.
pub(crate) fn health_row_at(row: &dyn Columns, offset: usize) -> Result<Health, StoreError> {
    let time =
        |index: usize| row.optional_integer(offset + index).map(|millis| millis.map(Timestamp::from_unix_millis));
    Ok(Health {
        consecutive_failures: u32::try_from(row.integer(offset)?).unwrap_or(u32::MAX),
        failing_since: time(1)?,
        last_success: time(2)?,
        last_failure: time(3)?,
        failing_told: row.flag(offset + 4)?,
        exhausted_in_run: row.flag(offset + 5)?,
    })
}

pub(crate) fn hour_row(row: &dyn Columns) -> Result<HourCount, StoreError> {
    hour_row_at(row, 0)
}

/// Reads an hour's `hour, successes, failures` from column `offset` on.
fn hour_row_at(row: &dyn Columns, offset: usize) -> Result<HourCount, StoreError> {
    Ok(HourCount {
        hour: millis(row, offset)?,
        successes: u64::try_from(row.integer(offset + 1)?).unwrap_or(0),
        failures: u64::try_from(row.integer(offset + 2)?).unwrap_or(0),
    })
}

fn notice_row(row: &dyn Columns) -> Result<Notice, StoreError> {
    Ok(Notice {
        id: row.text(0)?,
        tenant: crate::sql::parse_field(&row.text(1)?)?,
        topic: row.text(2)?,
        data: row.text(3)?,
        created: millis(row, 4)?,
    })
}

/// The attempts of one endpoint in a batch of outcomes, in the order they began.
struct EndpointAttempts<'a> {
    endpoint: &'a Arc<Endpoint>,
    outcomes: Vec<&'a AttemptOutcome>,
}

/// Keeps the health of every endpoint of `outcomes` (those recorded: their lease held), in one write with them.
/// Endpoints are taken in the order of their ids, so that two nodes recording at once lock them in turn.
pub(crate) async fn record(
    sql: &mut impl Sql,
    outcomes: &[&AttemptOutcome],
    policy: &Policy,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut by_endpoint: BTreeMap<&str, EndpointAttempts<'_>> = BTreeMap::new();
    for outcome in outcomes.iter().filter(|outcome| !is_operational(outcome.topic.as_str())) {
        by_endpoint
            .entry(outcome.endpoint.id.as_str())
            .or_insert_with(|| EndpointAttempts { endpoint: &outcome.endpoint, outcomes: Vec::new() })
            .outcomes
            .push(outcome);
    }
    for attempts in by_endpoint.values_mut() {
        attempts.outcomes.sort_by_key(|outcome| outcome.attempt.started);
        record_endpoint(sql, attempts, policy, now).await?;
    }
    Ok(())
}

async fn record_endpoint(
    sql: &mut impl Sql,
    attempts: &EndpointAttempts<'_>,
    policy: &Policy,
    now: Timestamp,
) -> Result<(), StoreError> {
    let endpoint = attempts.endpoint;
    let (id, tenant) = (endpoint.id.as_str(), endpoint.tenant.as_str());
    sql.execute(
        "INSERT INTO endpoint_health (endpoint_id, tenant_id) VALUES ($1, $2) ON CONFLICT (endpoint_id) DO NOTHING",
        &[&id, &tenant],
    )
    .await?;
    let lock = if sql.dialect() == Dialect::Postgres { " FOR UPDATE" } else { "" };
    let statement = format!("SELECT {HEALTH_COLUMNS} FROM endpoint_health WHERE endpoint_id = $1{lock}");
    let mut health = sql.first(&statement, &[&id], health_row).await?.unwrap_or_default();
    let mut hours: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut disable = false;
    for outcome in &attempts.outcomes {
        let attempt = &outcome.attempt;
        let succeeded = attempt.error.is_none();
        let exhausted = !succeeded && matches!(outcome.next, NextStep::Done(DeliveryStatus::Failed));
        let counts = hours.entry(hour_of(attempt.started).unix_millis()).or_default();
        if succeeded {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
        for change in health.record(Sample { started: attempt.started, succeeded, exhausted }, policy) {
            match change {
                Change::Failing => {
                    let data = json!({
                        "tenant": tenant, "endpoint_id": id, "url": endpoint.url,
                        "consecutive_failures": health.consecutive_failures,
                        "failing_since": health.failing_since.map(Timestamp::to_rfc3339_millis),
                        "last_error": attempt.error_detail,
                    });
                    notify(sql, tenant, "endpoint.failing", &data, now).await?;
                }
                Change::Recovered { failing_since } => {
                    let data = json!({
                        "tenant": tenant, "endpoint_id": id, "url": endpoint.url,
                        "failing_since": failing_since.map(Timestamp::to_rfc3339_millis),
                        "recovered_at": attempt.started.to_rfc3339_millis(),
                    });
                    notify(sql, tenant, "endpoint.recovered", &data, now).await?;
                }
                Change::Exhausted => {
                    let data = json!({
                        "tenant": tenant, "endpoint_id": id, "url": endpoint.url,
                        "delivery_id": outcome.delivery.as_str(), "event_id": outcome.event.as_str(),
                        "topic": outcome.topic.as_str(), "attempts": attempt.number,
                        "last_status": attempt.response_status, "last_error": attempt.error_detail,
                    });
                    notify(sql, tenant, "delivery.exhausted", &data, now).await?;
                }
                Change::Disable => disable = true,
            }
        }
    }
    let time = |time: Option<Timestamp>| time.map(Timestamp::unix_millis);
    let values: [&dyn Value; 7] = [
        &i64::from(health.consecutive_failures),
        &time(health.failing_since),
        &time(health.last_success),
        &time(health.last_failure),
        &health.failing_told,
        &health.exhausted_in_run,
        &id,
    ];
    sql.execute(
        "UPDATE endpoint_health SET consecutive_failures = $1, failing_since = $2, last_success_at = $3,
            last_failure_at = $4, failing_told = $5, exhausted_in_run = $6
         WHERE endpoint_id = $7",
        &values,
    )
    .await?;
    for (hour, (successes, failures)) in hours {
        let values: [&dyn Value; 4] = [&id, &hour, &successes, &failures];
        sql.execute(
            "INSERT INTO endpoint_hours (endpoint_id, hour, successes, failures) VALUES ($1, $2, $3, $4)
             ON CONFLICT (endpoint_id, hour) DO UPDATE SET successes = endpoint_hours.successes + excluded.successes,
                failures = endpoint_hours.failures + excluded.failures",
            &values,
        )
        .await?;
    }
    if disable {
        disable_failing(sql, endpoint, &health, policy, now).await?;
    }
    Ok(())
}

/// Disables an endpoint that has failed for `policy.disable_after`, and tells its tenant, unless it is disabled
/// (or deleted) already.
async fn disable_failing(
    sql: &mut impl Sql,
    endpoint: &Endpoint,
    health: &Health,
    policy: &Policy,
    now: Timestamp,
) -> Result<(), StoreError> {
    let reason = match policy.disable_after {
        Some(after) => format!(
            "every attempt failed for {} and a delivery used its last retry",
            hookline_core::duration::format_duration(after)
        ),
        None => return Ok(()),
    };
    let values: [&dyn Value; 3] = [&reason, &now.unix_millis(), &endpoint.id.as_str()];
    let disabled = sql
        .execute(
            "UPDATE endpoints SET enabled = FALSE, disabled_reason = $1, disabled_at = $2
             WHERE id = $3 AND enabled AND deleted_at IS NULL",
            &values,
        )
        .await?;
    if disabled == 0 {
        return Ok(());
    }
    sql.endpoints_changed();
    tracing::warn!(endpoint = %endpoint.id, tenant = %endpoint.tenant, %reason, "endpoint disabled");
    let data = json!({
        "tenant": endpoint.tenant.as_str(), "endpoint_id": endpoint.id.as_str(), "url": endpoint.url,
        "failing_since": health.failing_since.map(Timestamp::to_rfc3339_millis),
        "disabled_at": now.to_rfc3339_millis(), "reason": reason,
    });
    notify(sql, endpoint.tenant.as_str(), "endpoint.disabled", &data, now).await
}

async fn notify(
    sql: &mut impl Sql,
    tenant: &str,
    topic: &str,
    data: &serde_json::Value,
    now: Timestamp,
) -> Result<(), StoreError> {
    let id = NoticeId::generate_at(now).to_string();
    let data = data.to_string();
    let values: [&dyn Value; 5] = [&id, &tenant, &topic, &data, &now.unix_millis()];
    sql.execute("INSERT INTO notices (id, tenant_id, topic, data, created_at) VALUES ($1, $2, $3, $4, $5)", &values)
        .await?;
    Ok(())
}

/// A re-enabled endpoint starts a new run: its failures before are not held against it (its first success will
/// still be told as a recovery).
pub(crate) async fn start_over(sql: &mut impl Sql, endpoint: &EndpointId) -> Result<(), StoreError> {
    sql.execute(
        "UPDATE endpoint_health SET consecutive_failures = 0, failing_since = NULL, exhausted_in_run = FALSE
         WHERE endpoint_id = $1",
        &[&endpoint.as_str()],
    )
    .await?;
    Ok(())
}

impl Store {
    /// An endpoint's health and hourly counts from `since`; `None` when the tenant has no such endpoint.
    pub async fn endpoint_stats(
        &self,
        tenant: TenantId,
        id: EndpointId,
        since: Timestamp,
    ) -> Result<Option<(Endpoint, EndpointStats)>, StoreError> {
        let Some(endpoint) = self.get_endpoint(tenant, id.clone()).await? else {
            return Ok(None);
        };
        reading!(self, |sql| {
            let health = sql
                .first(
                    &format!("SELECT {HEALTH_COLUMNS} FROM endpoint_health WHERE endpoint_id = $1"),
                    &[&id.as_str()],
                    health_row,
                )
                .await?
                .unwrap_or_default();
            let values: [&dyn Value; 2] = [&id.as_str(), &since.unix_millis()];
            let hours = sql
                .query(
                    "SELECT hour, successes, failures FROM endpoint_hours WHERE endpoint_id = $1 AND hour >= $2
                     ORDER BY hour",
                    &values,
                    hour_row,
                )
                .await?;
            Ok(Some((endpoint, EndpointStats { health, hours })))
        })
    }

    /// The health of each of `endpoints` (the default for one without attempts), in their order, for answers
    /// that show it.
    pub async fn endpoint_health(&self, endpoints: Vec<EndpointId>) -> Result<Vec<Health>, StoreError> {
        if endpoints.is_empty() {
            return Ok(Vec::new());
        }
        reading!(self, |sql| {
            let placeholders: Vec<String> = (1..=endpoints.len()).map(|index| format!("${index}")).collect();
            let statement = format!(
                "SELECT endpoint_id, {HEALTH_COLUMNS} FROM endpoint_health WHERE endpoint_id IN ({})",
                placeholders.join(", ")
            );
            let ids: Vec<&str> = endpoints.iter().map(EndpointId::as_str).collect();
            let values: Vec<&dyn Value> = ids.iter().map(|id| id as &dyn Value).collect();
            let found = sql.query(&statement, &values, |row| Ok((row.text(0)?, health_row_at(row, 1)?))).await?;
            let found: std::collections::HashMap<String, Health> = found.into_iter().collect();
            Ok(endpoints.iter().map(|id| found.get(id.as_str()).cloned().unwrap_or_default()).collect())
        })
    }

    /// The hourly counts of each of `endpoints` from `since`, oldest first, in their order (empty for one without
    /// attempts): the portal's sparklines, one read for a whole list.
    pub async fn endpoint_hours(
        &self,
        endpoints: Vec<EndpointId>,
        since: Timestamp,
    ) -> Result<Vec<Vec<HourCount>>, StoreError> {
        if endpoints.is_empty() {
            return Ok(Vec::new());
        }
        reading!(self, |sql| {
            let placeholders: Vec<String> = (2..=endpoints.len() + 1).map(|index| format!("${index}")).collect();
            let statement = format!(
                "SELECT endpoint_id, hour, successes, failures FROM endpoint_hours
                 WHERE hour >= $1 AND endpoint_id IN ({}) ORDER BY hour",
                placeholders.join(", ")
            );
            let since = since.unix_millis();
            let ids: Vec<&str> = endpoints.iter().map(EndpointId::as_str).collect();
            let mut values: Vec<&dyn Value> = vec![&since];
            values.extend(ids.iter().map(|id| id as &dyn Value));
            let rows = sql.query(&statement, &values, |row| Ok((row.text(0)?, hour_row_at(row, 1)?))).await?;
            let mut found: std::collections::HashMap<String, Vec<HourCount>> = std::collections::HashMap::new();
            for (id, hour) in rows {
                found.entry(id).or_default().push(hour);
            }
            Ok(endpoints.iter().map(|id| found.remove(id.as_str()).unwrap_or_default()).collect())
        })
    }

    /// The oldest notices waiting to be published, at most `limit`.
    pub async fn pending_notices(&self, limit: u32) -> Result<Vec<Notice>, StoreError> {
        reading!(self, |sql| {
            sql.query(
                "SELECT id, tenant_id, topic, data, created_at FROM notices ORDER BY id LIMIT $1",
                &[&i64::from(limit)],
                notice_row,
            )
            .await
        })
    }

    /// Forgets a notice once published.
    pub async fn remove_notice(&self, id: String) -> Result<(), StoreError> {
        writing!(self, |sql| {
            sql.execute("DELETE FROM notices WHERE id = $1", &[&id.as_str()]).await?;
            Ok(())
        })
    }

    /// Removes hourly counts from before `before`, at most `limit`; how many it removed.
    pub async fn remove_old_hours(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        writing!(self, |sql| {
            let values: [&dyn Value; 2] = [&before.unix_millis(), &i64::from(limit)];
            sql.execute(
                "DELETE FROM endpoint_hours WHERE (endpoint_id, hour) IN (
                    SELECT endpoint_id, hour FROM endpoint_hours WHERE hour < $1 LIMIT $2)",
                &values,
            )
            .await
        })
    }
}
