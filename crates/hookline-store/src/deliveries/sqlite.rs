//! The dispatcher's queue on the embedded store: claims, outcomes and releases are writes on the one writer
//! thread, so no two of them ever race.

use std::sync::{Arc, LazyLock};

use hookline_core::health::Policy;
use hookline_core::id::DeliveryId;
use hookline_core::time::Timestamp;
use rusqlite::{Connection, params, params_from_iter};

use super::{AttemptOutcome, Claim, ClaimedDelivery, claimed_delivery_columns, claimed_with, lease_token, next_state};
use crate::attempts::{self, AttemptRow, StoredHeaders};
use crate::rows::values_statement;
use crate::sql::{json_ids, ready};
use crate::sqlite::engine::Isolation;
use crate::sqlite::{SqliteSql, SqliteStore};
use crate::{SqliteBackend, StoreError};

pub(crate) async fn claim_due(store: &SqliteBackend, claim: Claim) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let local = Arc::clone(&store.local);
    let endpoints = Arc::clone(&store.endpoints);
    store
        .engine
        .write(move |connection| {
            let lease = lease_token();
            let claimed = if claim.busy.is_empty() {
                claim_earliest(connection, &claim, lease)?
            } else {
                claim_around_busy(connection, &claim, lease)?
            };
            if claimed == 0 {
                return Ok(Vec::new());
            }
            let mut statement = connection.prepare_cached(concat!(
                "SELECT ",
                claimed_delivery_columns!(),
                ", d.endpoint_id FROM deliveries d JOIN events v ON v.id = d.event_id
                     WHERE d.lease = ?1 AND d.next_attempt_at = ?2 AND d.status = 'pending'"
            ))?;
            let mut rows = statement.query(params![lease, claim.lease_until.unix_millis()])?;
            let mut claimed = Vec::new();
            while let Some(row) = rows.next()? {
                let endpoint_id = row.get_ref(super::CLAIMED_DELIVERY_WIDTH)?;
                let endpoint_id =
                    endpoint_id.as_str().map_err(|error| StoreError::Corrupt { detail: error.to_string() })?;
                let generation = local.endpoints_generation();
                let endpoint =
                    endpoints.endpoint(&mut SqliteSql::writer(connection, &local), generation, endpoint_id)?;
                claimed.push(claimed_with(row, endpoint)?);
            }
            Ok(claimed)
        })
        .await
}

pub(crate) async fn record_outcomes(
    store: &SqliteStore,
    outcomes: Arc<[AttemptOutcome]>,
    policy: Policy,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let no_hook = |_: &mut Result<usize, StoreError>, _| {};
    let headers: Vec<StoredHeaders> = outcomes.iter().map(|outcome| StoredHeaders::of(&outcome.attempt)).collect();
    let local = Arc::clone(&store.local);
    let write = move |connection: &Connection| {
        let held = record(connection, &outcomes, &headers, now.unix_millis())?;
        // The endpoints' health in the same commit as the attempts.
        let mut sql = SqliteSql::writer(connection, &local);
        ready(crate::health::record(&mut sql, &held, &policy, now))?;
        Ok(held.len())
    };
    store.engine.write_as(Isolation::ChecksFirst, write, no_hook).await
}

pub(crate) async fn release(
    store: &SqliteStore,
    leases: Vec<(DeliveryId, i64)>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let now = now.unix_millis();
    store
        .engine
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

/// An attempt's insert, made from the attempts' column list; one already recorded (the same delivery and number)
/// is kept.
static INSERT_ATTEMPT: LazyLock<String> =
    LazyLock::new(|| values_statement("attempts", &attempts::COLUMNS, "OR IGNORE"));

/// The attempt-record write: moves each delivery on and stores its attempt, for the outcomes whose lease still
/// holds. Its only checks are the leases, so it needs no savepoint of its own.
fn record<'o>(
    connection: &Connection,
    outcomes: &'o [AttemptOutcome],
    headers: &[StoredHeaders],
    now: i64,
) -> Result<Vec<&'o AttemptOutcome>, StoreError> {
    let mut recorded = Vec::with_capacity(outcomes.len());
    for (outcome, headers) in outcomes.iter().zip(headers) {
        let (status, next_attempt) = next_state(&outcome.next);
        let attempt = &outcome.attempt;
        let updated = connection
            .prepare_cached(
                "UPDATE deliveries SET status = ?3, attempts = ?4, next_attempt_at = ?5, lease = NULL,
                    last_status = ?6, last_error = ?7, updated_at = ?8, cause = NULL
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
        let row = AttemptRow::new(outcome.delivery.as_str(), attempt, headers);
        connection.prepare_cached(&INSERT_ATTEMPT)?.execute(params_from_iter(row.cells()))?;
        recorded.push(outcome);
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
                        WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 AND e.enabled
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
    // Each enabled endpoint but the busy ones (`?1`, a JSON array) and those of busy tenants (`?2`), with the
    // earliest due time of its pending deliveries, found through the per-endpoint due index.
    let mut ready = connection.prepare_cached(
        "SELECT id FROM (
            SELECT e.id, (SELECT MIN(d.next_attempt_at) FROM deliveries d
                WHERE d.endpoint_id = e.id AND d.status = 'pending') AS due
            FROM endpoints e WHERE e.enabled AND e.id NOT IN (SELECT value FROM json_each(?1))
                AND e.tenant_id NOT IN (SELECT value FROM json_each(?2))
        ) WHERE due <= ?3 ORDER BY due",
    )?;
    let endpoints: Vec<String> = ready
        .query_map(
            params![json_ids(&claim.busy.endpoints)?, json_ids(&claim.busy.tenants)?, claim.now.unix_millis()],
            |row| row.get(0),
        )?
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
