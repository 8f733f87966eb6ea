//! The retention job: every `purge_interval`, events older than the retention period are purged with their
//! deliveries and attempts, a small batch per write and oldest first, so that the store stops growing once
//! traffic and retention balance and no other write waits long behind a purge. Events with a delivery still
//! pending are kept (see `Store::purge_before`).

use std::time::{Duration, Instant};

use hookline_core::time::Timestamp;
use hookline_store::{Purged, Store};

use crate::jobs::{Job, JobFuture};

/// Events purged by one write.
const BATCH: u32 = 256;

pub struct Retention {
    /// How old an event may grow.
    pub keep: Duration,
    /// How often the job looks.
    pub interval: Duration,
}

impl Job for Retention {
    fn name(&self) -> &'static str {
        "retention"
    }

    fn period(&self) -> Duration {
        self.interval
    }

    fn run<'a>(&'a self, store: &'a Store, now: Timestamp) -> JobFuture<'a> {
        Box::pin(async move {
            let horizon = now.saturating_sub(self.keep);
            // Batch after batch until none is left, within half a period, so a backlog is worked off over
            // several runs rather than in one long one.
            let started = Instant::now();
            let mut total = Purged::default();
            loop {
                let purged = store.purge_before(horizon, BATCH).await?;
                total.events += purged.events;
                total.deliveries += purged.deliveries;
                total.attempts += purged.attempts;
                if purged.events < u64::from(BATCH) || started.elapsed() >= self.interval / 2 {
                    break;
                }
            }
            if total.events > 0 {
                tracing::info!(
                    events = total.events,
                    deliveries = total.deliveries,
                    attempts = total.attempts,
                    before = %horizon.to_rfc3339(),
                    "purged what is older than the retention period"
                );
            }
            Ok(())
        })
    }
}
