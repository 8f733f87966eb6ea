//! Recoveries: an endpoint's failed deliveries of a window of time, queued again. A request only counts them and
//! records the recovery; a background job queues them a batch per write (`Store::recover_batch`), so that a
//! recovery of a million deliveries holds no publish up, and one cut short by a crash goes on after the restart.
//! Only failed deliveries are touched: one still pending is never sent twice.

use hookline_core::attempt::Cause;
use hookline_core::id::{DeliveryId, EndpointId, RecoveryId, TenantId};
use hookline_core::time::Timestamp;

use crate::sql::{Columns, Sql, json_list, millis, parse_field, read_text};
use crate::{Store, StoreError};

/// A recovery and how far it has gone.
#[derive(Clone, Debug)]
pub struct Recovery {
    pub id: RecoveryId,
    pub tenant: TenantId,
    pub endpoint: EndpointId,
    /// The window: deliveries made from `since` up to (not including) `until`.
    pub since: Timestamp,
    pub until: Timestamp,
    /// The failed deliveries in the window when it began.
    pub total: u64,
    /// Those queued again so far.
    pub queued: u64,
    pub created: Timestamp,
    /// When the last batch was queued; `None` while it runs.
    pub finished: Option<Timestamp>,
}

const SELECT_RECOVERY: &str = "SELECT id, tenant_id, endpoint_id, since_id, until_id, total, queued, created_at, finished_at, cursor FROM recoveries";

fn recovery_row(row: &dyn Columns) -> Result<(Recovery, Option<String>), StoreError> {
    let since: DeliveryId = parse_field(&row.text(3)?)?;
    let until: DeliveryId = parse_field(&row.text(4)?)?;
    let recovery = Recovery {
        id: parse_field(&row.text(0)?)?,
        tenant: parse_field(&row.text(1)?)?,
        endpoint: parse_field(&row.text(2)?)?,
        since: since.time(),
        until: until.time(),
        total: row.integer(5)?.max(0) as u64,
        queued: row.integer(6)?.max(0) as u64,
        created: millis(row, 7)?,
        finished: row.optional_integer(8)?.map(Timestamp::from_unix_millis),
    };
    Ok((recovery, row.optional_text(9)?))
}

/// The failed deliveries of `endpoint` in a window of delivery ids, after `cursor` when there is one.
const FAILED_IN_WINDOW: &str = "FROM deliveries WHERE endpoint_id = $1 AND status = 'failed' AND id >= $2 AND id < $3";

impl Store {
    /// Records a recovery of `endpoint`'s failed deliveries made from `since` up to `until`, counting them; `None`
    /// when the tenant has no such endpoint (or it is being deleted). The deliveries are queued by
    /// `recover_batch`.
    pub async fn start_recovery(
        &self,
        tenant: TenantId,
        endpoint: EndpointId,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Option<Recovery>, StoreError> {
        let now = self.clock.now();
        let id = RecoveryId::generate_at(now);
        let (since_id, until_id) = (DeliveryId::first_at(since), DeliveryId::first_at(until));
        writing!(self, |sql| {
            let live = "SELECT id FROM endpoints WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL";
            if sql.first(live, &[&endpoint.as_str(), &tenant.as_str()], read_text).await?.is_none() {
                return Ok(None);
            }
            let count = format!("SELECT COUNT(*) {FAILED_IN_WINDOW}");
            let window: [&dyn crate::sql::Value; 3] = [&endpoint.as_str(), &since_id.as_str(), &until_id.as_str()];
            let total = sql.first(&count, &window, |row| row.integer(0)).await?.unwrap_or(0).max(0);
            let finished = (total == 0).then_some(now.unix_millis());
            sql.execute(
                "INSERT INTO recoveries (id, tenant_id, endpoint_id, since_id, until_id, total, queued, created_at,
                    finished_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
                &[
                    &id.as_str(),
                    &tenant.as_str(),
                    &endpoint.as_str(),
                    &since_id.as_str(),
                    &until_id.as_str(),
                    &total,
                    &now.unix_millis(),
                    &finished,
                ],
            )
            .await?;
            Ok(Some(Recovery {
                id,
                tenant,
                endpoint,
                since,
                until,
                total: total as u64,
                queued: 0,
                created: now,
                finished: finished.map(Timestamp::from_unix_millis),
            }))
        })
    }

    /// One recovery of the tenant's.
    pub async fn get_recovery(&self, tenant: TenantId, id: RecoveryId) -> Result<Option<Recovery>, StoreError> {
        let statement = format!("{SELECT_RECOVERY} WHERE id = $1 AND tenant_id = $2");
        let found = reading!(self, |sql| sql.first(&statement, &[&id.as_str(), &tenant.as_str()], recovery_row).await)?;
        Ok(found.map(|(recovery, _)| recovery))
    }

    /// Queues again up to `limit` failed deliveries of the oldest unfinished recovery, due now and marked as
    /// recovered; how many. A recovery whose window has none left is finished.
    pub async fn recover_batch(&self, limit: u32) -> Result<u64, StoreError> {
        let now = self.clock.now().unix_millis();
        writing!(self, |sql| {
            let open = format!("{SELECT_RECOVERY} WHERE finished_at IS NULL ORDER BY created_at LIMIT 1");
            let Some((recovery, cursor)) = sql.first(&open, &[], recovery_row).await? else { return Ok(0) };
            let (since_id, until_id) =
                (DeliveryId::first_at(recovery.since).to_string(), DeliveryId::first_at(recovery.until).to_string());
            let after = cursor.unwrap_or_default();
            let pick = format!("SELECT id {FAILED_IN_WINDOW} AND id > $4 ORDER BY id LIMIT $5");
            let values: [&dyn crate::sql::Value; 5] =
                [&recovery.endpoint.as_str(), &since_id, &until_id, &after, &i64::from(limit)];
            let ids = sql.query(&pick, &values, read_text).await?;
            if !ids.is_empty() {
                let listed = crate::sql::in_id_list(sql.dialect(), 3);
                sql.execute(
                    &format!(
                        "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1, cause = $2
                         WHERE status = 'failed' AND id {listed}"
                    ),
                    &[&now, &Cause::Recover.as_str(), &json_list(&ids)?],
                )
                .await?;
                sql.work_due().await?;
            }
            let last = ids.last().cloned().unwrap_or(after);
            let finished = (ids.len() < limit as usize).then_some(now);
            sql.execute(
                "UPDATE recoveries SET cursor = $1, queued = queued + $2, finished_at = $3 WHERE id = $4",
                &[&last, &(ids.len() as i64), &finished, &recovery.id.as_str()],
            )
            .await?;
            Ok(ids.len() as u64)
        })
    }
}
