//! The store's background upkeep, each a job run every `purge_interval`, a small batch per write so that no other
//! write waits long behind it: retention purges events older than the retention period with their deliveries and
//! attempts, oldest first (events with a delivery still pending are kept, see `Store::purge_before`), so that the
//! store stops growing once traffic and retention balance; removal takes away the rows of deleted tenants and
//! endpoints (see `Store::remove_deleted`); on PostgreSQL, vacuum clears the dead rows both leave, with the
//! dispatcher's updates (see `Store::vacuum_churned`), and partitioning makes the partitions of events,
//! deliveries and attempts ahead of the clock (see `Store::prepare_partitions`).

use std::time::{Duration, Instant};

use hookline_core::health::HOURS_KEPT;
use hookline_core::id::EndpointId;
use hookline_core::time::Timestamp;
use hookline_core::topic::TopicName;
use hookline_store::{NewEvent, Purged, Removed, Route, Store};

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

/// Queues again the failed deliveries of the recoveries asked for (see `Store::recover_batch`), a batch per
/// write, oldest recovery first.
pub struct Recovering {
    /// How often the job looks.
    pub interval: Duration,
}

impl Job for Recovering {
    fn name(&self) -> &'static str {
        "recovering"
    }

    fn period(&self) -> Duration {
        self.interval
    }

    fn run<'a>(&'a self, store: &'a Store, _: Timestamp) -> JobFuture<'a> {
        Box::pin(async move {
            // Batch after batch within half a period, as retention does.
            let started = Instant::now();
            let mut queued = 0;
            loop {
                let batch = store.recover_batch(BATCH).await?;
                queued += batch;
                if batch == 0 || started.elapsed() >= self.interval / 2 {
                    break;
                }
            }
            if queued > 0 {
                tracing::info!(deliveries = queued, "queued failed deliveries again for a recovery");
            }
            Ok(())
        })
    }
}

/// Publishes the operational events endpoint health noted (see `Store::pending_notices`), to the tenant they are
/// about and to the operator's endpoint if there is one, then forgets each; and forgets hourly counts older than
/// seven days and portal links and sessions that are over. A notice published again after a crash is answered from its idempotency key, not made twice.
pub struct Notifying {
    /// How often the job looks.
    pub interval: Duration,
    /// An endpoint that also gets every tenant's operational events.
    pub operator: Option<EndpointId>,
}

/// Notices published by one run at most; the rest wait for the next.
const NOTICES: u32 = 256;

impl Job for Notifying {
    fn name(&self) -> &'static str {
        "notifying"
    }

    fn period(&self) -> Duration {
        self.interval
    }

    fn run<'a>(&'a self, store: &'a Store, now: Timestamp) -> JobFuture<'a> {
        Box::pin(async move {
            let notices = store.pending_notices(NOTICES).await?;
            let operator = match (&self.operator, notices.is_empty()) {
                (Some(id), false) => store.find_endpoint(id.clone()).await?,
                _ => None,
            };
            for notice in notices {
                let Ok(topic) = notice.topic.parse::<TopicName>() else {
                    store.remove_notice(notice.id).await?;
                    continue;
                };
                let event = NewEvent {
                    tenant: notice.tenant.clone(),
                    topic,
                    data: notice.data.clone(),
                    meta: None,
                    idempotency_key: Some(format!("hookline:{}", notice.id)),
                    route: Route::default(),
                };
                if let Some(operator) = &operator {
                    let copy = NewEvent {
                        tenant: operator.tenant.clone(),
                        idempotency_key: Some(format!("hookline:{}:operator", notice.id)),
                        route: Route { only: Some(operator.id.clone()), ..Route::default() },
                        ..event.clone()
                    };
                    store.publish(copy).await?;
                }
                // A tenant deleted meanwhile has nobody to tell.
                store.publish(event).await?;
                store.remove_notice(notice.id).await?;
            }
            store.remove_old_hours(now.saturating_sub(HOURS_KEPT), BATCH).await?;
            // Portal links and sessions that can no longer be used.
            store.purge_portal(BATCH).await?;
            // Secrets replaced by a rotation, once they no longer sign.
            store.forget_expired_secrets(BATCH).await?;
            Ok(())
        })
    }
}

/// Removes what deleted tenants and endpoints left, a batch per write.
pub struct Removal {
    /// How often the job looks.
    pub interval: Duration,
}

impl Job for Removal {
    fn name(&self) -> &'static str {
        "removal"
    }

    fn period(&self) -> Duration {
        self.interval
    }

    fn run<'a>(&'a self, store: &'a Store, _: Timestamp) -> JobFuture<'a> {
        Box::pin(async move {
            let started = Instant::now();
            let mut total = Removed::default();
            loop {
                let removed = store.remove_deleted(BATCH).await?;
                if removed.is_nothing() {
                    break;
                }
                total.cancelled += removed.cancelled;
                total.events += removed.events;
                total.deliveries += removed.deliveries;
                total.endpoints += removed.endpoints;
                total.tenants += removed.tenants;
                if started.elapsed() >= self.interval / 2 {
                    break;
                }
            }
            if total.tenants > 0 || total.endpoints > 0 {
                tracing::info!(
                    tenants = total.tenants,
                    endpoints = total.endpoints,
                    "deleted tenants and endpoints are gone from the store"
                );
            }
            Ok(())
        })
    }
}

/// How often the vacuum job looks: not tied to `purge_interval`, which may be short (the benchmark's is a tenth of
/// a second), since each look that finds a table past its share of dead rows vacuums it whole. At 3,000 events/s
/// some 60,000 dead rows gather in ten seconds.
pub const VACUUM_INTERVAL: Duration = Duration::from_secs(10);

/// Vacuums the tables that deliveries and purges churn, on PostgreSQL (see `Store::vacuum_churned`).
pub struct Vacuum {
    /// How often the job looks.
    pub interval: Duration,
}

impl Job for Vacuum {
    fn name(&self) -> &'static str {
        "vacuum"
    }

    fn period(&self) -> Duration {
        self.interval
    }

    fn run<'a>(&'a self, store: &'a Store, _: Timestamp) -> JobFuture<'a> {
        Box::pin(async move {
            let started = Instant::now();
            for done in store.vacuum_churned().await? {
                tracing::debug!(table = done.table, dead = done.dead, analyzed = done.analyzed, took = ?started.elapsed(), "vacuumed");
            }
            Ok(())
        })
    }
}

/// Makes the partitions the clock will soon need, on PostgreSQL (see `Store::prepare_partitions`).
pub struct Partitioning {
    /// How often the job looks: a fraction of a partition's span.
    pub interval: Duration,
}

impl Job for Partitioning {
    fn name(&self) -> &'static str {
        "partitioning"
    }

    fn period(&self) -> Duration {
        self.interval
    }

    fn run<'a>(&'a self, store: &'a Store, _: Timestamp) -> JobFuture<'a> {
        Box::pin(async move {
            let made = store.prepare_partitions().await?;
            if made > 0 {
                tracing::debug!(made, "made partitions ahead of the clock");
            }
            Ok(())
        })
    }
}
