//! Big deletes: a deleted tenant or endpoint is marked at once (gone from every read, delivering nothing more)
//! and its rows are removed here, in the background, a batch per write, so that deleting a tenant with millions
//! of deliveries holds up no other write and a crash halfway leaves the marks to finish from after the restart.

use hookline_core::time::Timestamp;

use crate::deliveries::cancel_for_endpoint;
use crate::events::remove_events;
use crate::sql::{Sql, read_text};
use crate::{Store, StoreError};

/// What one step of removal did; all zero when nothing deleted is left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Pending deliveries of deleted endpoints, cancelled.
    pub cancelled: u64,
    /// Events of deleted tenants, removed with their deliveries and attempts.
    pub events: u64,
    pub deliveries: u64,
    pub endpoints: u64,
    pub tenants: u64,
}

impl Removed {
    pub fn is_nothing(&self) -> bool {
        *self == Removed::default()
    }
}

async fn step(sql: &mut impl Sql, now: Timestamp, batch: u32) -> Result<Removed, StoreError> {
    // A deleted endpoint of a live tenant: its pending deliveries are cancelled, then its row goes. (A deleted
    // tenant's endpoints go with the tenant.)
    let endpoint = sql
        .first(
            "SELECT e.id FROM endpoints e JOIN tenants t ON t.id = e.tenant_id
             WHERE e.deleted_at IS NOT NULL AND t.deleted_at IS NULL ORDER BY e.deleted_at LIMIT 1",
            &[],
            read_text,
        )
        .await?;
    if let Some(endpoint) = endpoint {
        let cancelled = cancel_for_endpoint(sql, &endpoint, now, batch).await?;
        if cancelled > 0 {
            return Ok(Removed { cancelled, ..Removed::default() });
        }
        sql.endpoints_changed();
        sql.execute("DELETE FROM endpoint_topics WHERE endpoint_id = $1", &[&endpoint]).await?;
        sql.execute("DELETE FROM endpoint_health WHERE endpoint_id = $1", &[&endpoint]).await?;
        sql.execute("DELETE FROM endpoint_hours WHERE endpoint_id = $1", &[&endpoint]).await?;
        sql.execute("DELETE FROM endpoints WHERE id = $1", &[&endpoint]).await?;
        return Ok(Removed { endpoints: 1, ..Removed::default() });
    }
    let tenant = sql
        .first("SELECT id FROM tenants WHERE deleted_at IS NOT NULL ORDER BY deleted_at LIMIT 1", &[], read_text)
        .await?;
    let Some(tenant) = tenant else { return Ok(Removed::default()) };
    let events = sql
        .query(
            "SELECT id FROM events WHERE tenant_id = $1 ORDER BY id LIMIT $2",
            &[&tenant, &i64::from(batch)],
            read_text,
        )
        .await?;
    if !events.is_empty() {
        let removed = remove_events(sql, &events).await?;
        return Ok(Removed { events: removed.events, deliveries: removed.deliveries, ..Removed::default() });
    }
    // What the tenant keeps once its events are gone is few rows: they go in one write.
    sql.endpoints_changed();
    sql.execute(
        "DELETE FROM endpoint_topics WHERE endpoint_id IN (SELECT id FROM endpoints WHERE tenant_id = $1)",
        &[&tenant],
    )
    .await?;
    sql.execute(
        "DELETE FROM endpoint_hours WHERE endpoint_id IN (SELECT id FROM endpoints WHERE tenant_id = $1)",
        &[&tenant],
    )
    .await?;
    sql.execute("DELETE FROM endpoint_health WHERE tenant_id = $1", &[&tenant]).await?;
    sql.execute("DELETE FROM notices WHERE tenant_id = $1", &[&tenant]).await?;
    sql.execute("DELETE FROM portal_sessions WHERE tenant_id = $1", &[&tenant]).await?;
    let endpoints = sql.execute("DELETE FROM endpoints WHERE tenant_id = $1", &[&tenant]).await?;
    sql.execute("DELETE FROM api_keys WHERE tenant_id = $1", &[&tenant]).await?;
    sql.execute("DELETE FROM tenants WHERE id = $1", &[&tenant]).await?;
    Ok(Removed { endpoints, tenants: 1, ..Removed::default() })
}

impl Store {
    /// Does one step of removing deleted tenants and endpoints, in one write of at most about `batch` events or
    /// deliveries; `Removed::is_nothing` when nothing deleted is left.
    pub async fn remove_deleted(&self, batch: u32) -> Result<Removed, StoreError> {
        let now = self.clock.now();
        writing!(self, |sql| step(sql, now, batch).await)
    }
}
