//! The dispatcher's queue on PostgreSQL, which several nodes claim from at once: a claim takes due deliveries
//! with `FOR UPDATE SKIP LOCKED`, so no two nodes take the same one, and outcomes and releases are written for a
//! whole batch in one statement with `unnest`.

use std::sync::{Arc, LazyLock};

use hookline_core::id::{DeliveryId, EndpointId, TenantId};
use hookline_core::time::Timestamp;
use tokio_postgres::types::ToSql;

use super::{
    AttemptOutcome, CLAIMED_DELIVERY_WIDTH, Claim, ClaimedDelivery, claimed_delivery_columns, claimed_with,
    lease_token, next_state,
};
use crate::StoreError;
use crate::attempts::{self, AttemptRow, StoredHeaders};
use crate::endpoints::{READ_COLUMNS, endpoint_at};
use crate::postgres::PostgresStore;
use crate::rows::{Batch, column_list, unnest};
use crate::sql::Columns;

/// A claimed delivery with its event (`v`) and its endpoint (`e`), read by `claimed_row`.
static CLAIMED_COLUMNS: LazyLock<String> =
    LazyLock::new(|| format!("{}, {}", claimed_delivery_columns!(), *READ_COLUMNS));

fn claimed_row(row: &dyn Columns) -> Result<ClaimedDelivery, StoreError> {
    claimed_with(row, Arc::new(endpoint_at(row, CLAIMED_DELIVERY_WIDTH)?))
}

pub(crate) async fn claim_due(store: &PostgresStore, claim: Claim) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let busy: Vec<&str> = claim.busy.endpoints.iter().map(EndpointId::as_str).collect();
    let busy_tenants: Vec<&str> = claim.busy.tenants.iter().map(TenantId::as_str).collect();
    // Which deliveries: see `CLAIM_EARLIEST` and `CLAIM_AROUND_BUSY`. Rows another claim holds are skipped.
    let due = if claim.busy.is_empty() { CLAIM_EARLIEST } else { CLAIM_AROUND_BUSY };
    let claimed_columns = &*CLAIMED_COLUMNS;
    let connection = store.pool.get().await?;
    let rows = store
        .session(&connection)
        .pg_query(
            &format!(
                "WITH {due}, d AS (
                        UPDATE deliveries SET next_attempt_at = $2, lease = $3, lease_node = $6
                        FROM due WHERE deliveries.id = due.id
                        RETURNING deliveries.*
                     )
                     SELECT {claimed_columns}
                     FROM d JOIN events v ON v.id = d.event_id JOIN endpoints e ON e.id = d.endpoint_id"
            ),
            &[
                &claim.now.unix_millis(),
                &claim.lease_until.unix_millis(),
                &lease_token(),
                &i64::from(claim.limit),
                &busy,
                &store.node,
                &i64::from(claim.per_endpoint),
                &busy_tenants,
            ],
        )
        .await?;
    rows.iter().map(|row| claimed_row(row)).collect()
}

pub(crate) async fn record_outcomes(
    store: &PostgresStore,
    outcomes: Arc<[AttemptOutcome]>,
    now: Timestamp,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut columns = OutcomeColumns::default();
    for outcome in outcomes.iter() {
        columns.push(outcome);
    }
    let headers: Vec<StoredHeaders> = outcomes.iter().map(|outcome| StoredHeaders::of(&outcome.attempt)).collect();
    let rows: Vec<AttemptRow<'_>> = outcomes
        .iter()
        .zip(&headers)
        .map(|(outcome, headers)| AttemptRow::new(outcome.delivery.as_str(), &outcome.attempt, headers))
        .collect();
    let mut attempts = Batch::new(&attempts::COLUMNS);
    for row in &rows {
        attempts.push(&row.cells());
    }
    let now = now.unix_millis();
    let mut values: Vec<&(dyn ToSql + Sync)> = vec![
        &columns.ids,
        &columns.leases,
        &columns.statuses,
        &columns.numbers,
        &columns.next_attempts,
        &columns.response_statuses,
        &columns.error_details,
        &now,
    ];
    values.extend(attempts.values());
    let connection = store.pool.get().await?;
    let rows = store.session(&connection).pg_query(&RECORD_OUTCOMES, &values).await?;
    rows.iter().map(|row| Ok(row.try_get::<_, String>(0)?)).collect()
}

/// Moves each delivery of a batch on (`$1`–`$8`) under the lease it was claimed with, and inserts the attempts of
/// those it moved (from `$9` on, made from the attempts' column list).
static RECORD_OUTCOMES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH outcome AS (
            SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], $5::int8[], $6::int8[],
                $7::text[]) AS o(id, lease, status, attempts, next_attempt_at, last_status, last_error)
         ), moved AS (
            UPDATE deliveries d SET status = o.status, attempts = o.attempts,
                next_attempt_at = o.next_attempt_at, lease = NULL, last_status = o.last_status,
                last_error = o.last_error, updated_at = $8, cause = NULL
            FROM outcome o WHERE d.id = o.id AND d.lease = o.lease
            RETURNING d.id
         )
         INSERT INTO attempts ({columns})
         SELECT a.* FROM {attempts}
         WHERE a.delivery_id IN (SELECT id FROM moved)
         ON CONFLICT (delivery_id, number) DO NOTHING
         RETURNING delivery_id",
        columns = column_list(&attempts::COLUMNS),
        attempts = unnest(&attempts::COLUMNS, 9, "a"),
    )
});

pub(crate) async fn release(
    store: &PostgresStore,
    leases: Vec<(DeliveryId, i64)>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (ids, tokens): (Vec<&str>, Vec<i64>) = leases.iter().map(|(id, lease)| (id.as_str(), *lease)).unzip();
    let connection = store.pool.get().await?;
    store
        .session(&connection)
        .pg_execute(
            "UPDATE deliveries d SET next_attempt_at = $3, lease = NULL
                 FROM unnest($1::text[], $2::int8[]) AS released(id, lease)
                 WHERE d.id = released.id AND d.lease = released.lease",
            &[&ids, &tokens, &now.unix_millis()],
        )
        .await?;
    Ok(())
}

/// The deliveries a claim takes when no endpoint is busy: the earliest due (from a window of a few batches), at
/// most `$7` of each endpoint. Parameters: `$1` now, `$4` the limit, `$5` busy endpoints and `$8` busy tenants
/// (none here), `$7` the per-endpoint cap.
const CLAIM_EARLIEST: &str = "candidate AS (
        SELECT d.id, d.endpoint_id, d.next_attempt_at
        FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.enabled AND cardinality($5::text[]) = 0
            AND cardinality($8::text[]) = 0
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

/// The deliveries a claim takes while some endpoints (`$5`) or tenants (`$8`) are busy: walking the queue in due order would step
/// over every due delivery of a busy endpoint, and a slow endpoint piles up many, so each other endpoint with
/// work due is visited through its own index instead, the longest waiting first.
const CLAIM_AROUND_BUSY: &str = "ready AS (
        SELECT e.id, (SELECT MIN(d.next_attempt_at) FROM deliveries d
                      WHERE d.endpoint_id = e.id AND d.status = 'pending') AS due
        FROM endpoints e
        WHERE e.enabled AND NOT (e.id = ANY($5)) AND NOT (e.tenant_id = ANY($8))
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

/// Attempt outcomes as one array per column, for the deliveries' update of a batch written with `unnest`.
#[derive(Default)]
struct OutcomeColumns {
    ids: Vec<String>,
    leases: Vec<i64>,
    statuses: Vec<&'static str>,
    numbers: Vec<i64>,
    next_attempts: Vec<Option<i64>>,
    response_statuses: Vec<Option<i64>>,
    error_details: Vec<Option<String>>,
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
    }
}
