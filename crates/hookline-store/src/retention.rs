//! Retention: events older than the retention period are purged with their deliveries and attempts, in small
//! batches, oldest first. An event with a delivery still pending is kept whole, since that delivery may still be
//! attempted. The store remembers how far it has purged, so that a read of a purged event or delivery can say so
//! instead of answering that it never existed.
//!
//! On PostgreSQL, where the three tables are partitioned by time, a purge first drops each set of partitions that
//! is wholly past the horizon and holds no pending delivery (`crate::postgres::partitions`), and purges row by
//! row only what those leave: the sets a pending delivery keeps, and the tables from before partitioning.

use hookline_core::id::EventId;
use hookline_core::time::Timestamp;

use crate::sql::{Sql, read_text};
use crate::{Store, StoreError};

/// What one purge removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
}

const PURGED_BEFORE: &str = "SELECT value FROM settings WHERE key = 'purged_before'";

fn event_and_time(row: &dyn crate::sql::Columns) -> Result<(String, i64), StoreError> {
    Ok((row.text(0)?, row.integer(1)?))
}

impl Store {
    /// Purges up to `batch` of the oldest events created before `horizon` whose deliveries have all finished,
    /// with their deliveries and attempts, in one write. Fewer than `batch` purged means none is left. On
    /// PostgreSQL, first drops the partitions past the horizon that can go whole, whatever their size (their rows
    /// are counted from the statistics' estimates), and an event lives until its partition is dropped, at most
    /// `StoreOptions::partition_width` past the horizon.
    pub async fn purge_before(&self, horizon: Timestamp, batch: u32) -> Result<Purged, StoreError> {
        let (dropped, dropped_before, boundary) = match &self.backend {
            crate::Backend::Sqlite(_) => (Purged::default(), None, EventId::first_at(horizon).to_string()),
            crate::Backend::Postgres(backend) => {
                let dropped = backend.drop_expired(horizon).await?;
                let rows = dropped.purged;
                let purged = Purged { events: rows.events, deliveries: rows.deliveries, attempts: rows.attempts };
                (purged, dropped.purged_before, dropped.rows_before)
            }
        };
        let dropped_before = dropped_before.map(Timestamp::unix_millis);
        let purged = writing!(self, |sql| {
            let events = sql
                .query(
                    // A subquery per candidate, through the deliveries-by-event index alone: PostgreSQL makes
                    // `NOT EXISTS (… status = 'pending')` a merge anti join that walks every delivery to the first
                    // pending one (the newest), or ands in the pending index, which holds every pending delivery.
                    "SELECT v.id, v.created_at FROM events v
                     WHERE v.id < $1
                        AND COALESCE((SELECT MAX(CASE WHEN d.status = 'pending' THEN 1 ELSE 0 END)
                                      FROM deliveries d WHERE d.event_id = v.id), 0) = 0
                     ORDER BY v.id LIMIT $2",
                    &[&boundary.as_str(), &i64::from(batch)],
                    event_and_time,
                )
                .await?;
            let newest = events.iter().map(|(_, created)| *created + 1).max();
            let Some(purged_up_to) = newest.max(dropped_before) else { return Ok(Purged::default()) };
            let ids: Vec<String> = events.into_iter().map(|(id, _)| id).collect();
            let purged = crate::events::remove_events(sql, &ids).await?;
            let before = sql.first(PURGED_BEFORE, &[], read_text).await?.and_then(|text| text.parse::<i64>().ok());
            let purged_before = before.unwrap_or(i64::MIN).max(purged_up_to);
            sql.execute(
                "INSERT INTO settings (key, value) VALUES ('purged_before', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&purged_before.to_string()],
            )
            .await?;
            Ok(purged)
        })?;
        Ok(Purged {
            events: dropped.events + purged.events,
            deliveries: dropped.deliveries + purged.deliveries,
            attempts: dropped.attempts + purged.attempts,
        })
    }

    /// Every event created before this time that is no longer stored was purged (or never existed); `None`
    /// before the first purge.
    pub async fn purged_before(&self) -> Result<Option<Timestamp>, StoreError> {
        let text = reading!(self, |sql| sql.first(PURGED_BEFORE, &[], read_text).await)?;
        Ok(text.and_then(|text| text.parse::<i64>().ok()).map(Timestamp::from_unix_millis))
    }
}
