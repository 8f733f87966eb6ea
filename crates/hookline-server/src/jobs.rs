//! Background jobs: the one place where periodic work runs inside a node (retention, endpoint health, debounce
//! flushes). Each job runs every period of its own on at most one node at a time: before each run the node takes
//! or renews the job's lease in the store (`Store::lead_job`), for two periods, so that when several nodes share
//! one PostgreSQL database the others skip it, and take it over once a node that stopped or died lets its lease
//! run out. A node that stops gives its leases back.
//!
//! A job does its work in small batches, each well within its period, and must be safe to run again after a
//! crash halfway: the lease makes one node run it at a time, not exactly once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hookline_core::time::Timestamp;
use hookline_store::{Store, StoreError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a job's run returns.
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send + 'a>>;

/// Why a run of a job failed; the runner logs it and tries again at the next period.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("the store failed")]
    Store(#[from] StoreError),
}

/// Periodic work inside a node.
pub trait Job: Send + Sync + 'static {
    /// The job's name, which its lease in the store carries; unique among jobs.
    fn name(&self) -> &'static str;

    /// How often it runs.
    fn period(&self) -> Duration;

    /// One run, at `now` by the store's clock.
    fn run<'a>(&'a self, store: &'a Store, now: Timestamp) -> JobFuture<'a>;
}

/// Runs every job on its period until `shutdown` is cancelled, then gives their leases back.
pub async fn run(store: Store, jobs: Vec<Arc<dyn Job>>, shutdown: CancellationToken) {
    let tasks = TaskTracker::new();
    for job in jobs {
        tasks.spawn(run_job(store.clone(), job, shutdown.clone()));
    }
    tasks.close();
    tasks.wait().await;
}

async fn run_job(store: Store, job: Arc<dyn Job>, shutdown: CancellationToken) {
    let holder = store.node();
    let mut ticks = tokio::time::interval(job.period());
    // A run that took long is not made up for with a burst of runs.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        match tick(&store, job.as_ref(), &holder).await {
            Ok(_) => {}
            Err(error) => tracing::warn!(job = job.name(), error = %error_chain(&error), "a background job failed"),
        }
    }
    if let Err(error) = store.release_job(job.name(), holder).await {
        tracing::warn!(job = job.name(), error = %error_chain(&error), "could not give back a background job's lease");
    }
}

/// One round of a job: run it if this node has (or takes) its lease. True when it ran.
async fn tick(store: &Store, job: &dyn Job, holder: &str) -> Result<bool, JobError> {
    let clock = store.clock();
    let now = clock.now();
    let until = now.saturating_add(job.period().saturating_mul(2));
    if !store.lead_job(job.name(), holder.to_owned(), now, until).await? {
        return Ok(false);
    }
    job.run(store, now).await?;
    Ok(true)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    hookline_dispatch::error_chain(error)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use hookline_core::clock::{Clock, ManualClock};
    use hookline_store::{Database, StoreOptions};
    use tokio::sync::mpsc;

    use super::*;

    /// A job that reports each run and the time it ran at.
    struct Recorder {
        period: Duration,
        runs: mpsc::UnboundedSender<Timestamp>,
        count: AtomicU32,
    }

    impl Job for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn period(&self) -> Duration {
            self.period
        }
        fn run<'a>(&'a self, _: &'a Store, now: Timestamp) -> JobFuture<'a> {
            Box::pin(async move {
                self.count.fetch_add(1, Ordering::SeqCst);
                let _ = self.runs.send(now);
                Ok(())
            })
        }
    }

    fn recorder(period: Duration) -> (Arc<Recorder>, mpsc::UnboundedReceiver<Timestamp>) {
        let (runs, received) = mpsc::unbounded_channel();
        (Arc::new(Recorder { period, runs, count: AtomicU32::new(0) }), received)
    }

    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(label: &str) -> Dir {
            let path = std::env::temp_dir().join(format!("hookline-jobs-{label}-{:08x}", rand_suffix()));
            Dir(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn rand_suffix() -> u32 {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(std::time::SystemTime::now()) as u32
    }

    async fn embedded_store(dir: &Dir, clock: Arc<dyn Clock>) -> Store {
        let options = StoreOptions { clock, ..StoreOptions::default() };
        Store::open(&Database::Sqlite { data_dir: dir.0.clone() }, &dir.0, &options).await.unwrap()
    }

    #[tokio::test]
    async fn a_job_runs_on_its_period_until_shutdown_then_gives_its_lease_back() {
        let dir = Dir::new("period");
        let store = embedded_store(&dir, Arc::new(hookline_core::clock::SystemClock)).await;
        let (job, mut runs) = recorder(Duration::from_millis(20));
        let shutdown = CancellationToken::new();
        let runner = tokio::spawn(run(store.clone(), vec![job.clone()], shutdown.clone()));
        for _ in 0..3 {
            runs.recv().await.expect("the job runs again");
        }
        shutdown.cancel();
        // The runner ends on shutdown, so nothing runs the job any more.
        runner.await.unwrap();
        assert!(job.count.load(Ordering::SeqCst) >= 3);
        // Given back: another holder takes it at once, though the runner's lease had two periods left.
        let now = store.clock().now();
        let until = now.saturating_add(Duration::from_secs(1));
        assert!(store.lead_job("recorder", "another".into(), now, until).await.unwrap());
    }

    #[tokio::test]
    async fn one_node_runs_a_job_while_its_lease_holds_and_another_takes_over_when_it_runs_out() {
        let Some(url) = postgres_url() else { return };
        let database = PostgresDatabase::create(&url).await;
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(1_900_000_000_000)));
        let options = StoreOptions { clock: clock.clone(), ..StoreOptions::default() };
        let (dir_a, dir_b) = (Dir::new("node-a"), Dir::new("node-b"));
        let node_a = Store::open(&Database::Postgres { url: database.url.clone() }, &dir_a.0, &options).await.unwrap();
        let node_b = Store::open(&Database::Postgres { url: database.url.clone() }, &dir_b.0, &options).await.unwrap();
        let (job, _runs) = recorder(Duration::from_secs(60));
        let (holder_a, holder_b) = (node_a.node(), node_b.node());
        assert_ne!(holder_a, holder_b);
        assert!(tick(&node_a, job.as_ref(), &holder_a).await.unwrap(), "the first node to look runs it");
        assert!(!tick(&node_b, job.as_ref(), &holder_b).await.unwrap(), "the other skips it");
        clock.advance(Duration::from_secs(60));
        assert!(tick(&node_a, job.as_ref(), &holder_a).await.unwrap(), "the holder runs it each period");
        assert!(!tick(&node_b, job.as_ref(), &holder_b).await.unwrap());
        // Node a stops looking (it died): its lease covers two periods from its last run, then b takes over.
        clock.advance(Duration::from_secs(119));
        assert!(!tick(&node_b, job.as_ref(), &holder_b).await.unwrap());
        clock.advance(Duration::from_secs(1));
        assert!(tick(&node_b, job.as_ref(), &holder_b).await.unwrap(), "a lease that ran out is taken over");
        assert!(!tick(&node_a, job.as_ref(), &holder_a).await.unwrap(), "and a node that comes back waits");
        assert_eq!(job.count.load(Ordering::SeqCst), 3);
        drop((node_a, node_b));
        database.drop().await;
    }

    fn postgres_url() -> Option<String> {
        match std::env::var("HOOKLINE_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ if std::env::var("HOOKLINE_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
                panic!("HOOKLINE_TEST_REQUIRE_POSTGRES=1 but HOOKLINE_TEST_POSTGRES_URL is not set")
            }
            _ => None,
        }
    }

    /// A fresh database on the suite's PostgreSQL server.
    struct PostgresDatabase {
        admin_url: String,
        name: String,
        url: String,
    }

    impl PostgresDatabase {
        async fn create(admin_url: &str) -> PostgresDatabase {
            let name = format!("hookline_jobs_{:08x}", rand_suffix());
            admin_command(admin_url, &format!("CREATE DATABASE {name}")).await;
            let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap_or(admin_url);
            PostgresDatabase { admin_url: admin_url.to_owned(), url: format!("{base}/{name}"), name }
        }

        async fn drop(self) {
            admin_command(&self.admin_url, &format!("DROP DATABASE {} WITH (FORCE)", self.name)).await;
        }
    }

    async fn admin_command(admin_url: &str, command: &str) {
        let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(command).await.unwrap();
    }
}
