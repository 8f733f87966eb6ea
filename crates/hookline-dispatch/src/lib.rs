//! Hookline's dispatcher: claims due deliveries from the store, builds and signs each request, sends it, and
//! records the attempt with what happens next (done, or the time of the next try).
//!
//! Architecture invariant: the dispatcher knows nothing about the HTTP API (no axum); it talks to the store and
//! to receivers only. Concurrency is bounded by owned semaphore permits moved into each attempt's task: one
//! pool for the whole dispatcher and one per endpoint, so a slow endpoint cannot take every slot.

pub mod client;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hookline_core::body::{EventParts, Format, build_body};
use hookline_core::id::{EndpointId, EventId};
use hookline_core::json::Escape;
use hookline_core::retry::{RetrySchedule, Verdict, parse_retry_after_seconds, verdict};
use hookline_core::time::Timestamp;
use hookline_store::{Attempt, AttemptError, AttemptOutcome, Claim, ClaimedDelivery, DeliveryStatus, NextStep, Store};
use hookline_verify::Signer;
use rand::Rng;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::client::{HttpClient, TargetPolicy};

/// The `User-Agent` every webhook request carries.
pub const USER_AGENT: &str = concat!("Hookline/", env!("CARGO_PKG_VERSION"), " (+webhooks)");

/// How the dispatcher behaves; built from the server's configuration.
#[derive(Clone, Debug)]
pub struct DispatchConfig {
    /// Attempts in flight at once, across all endpoints.
    pub concurrency: usize,
    /// Attempts in flight at once to one endpoint.
    pub per_endpoint_concurrency: usize,
    /// How long one attempt may take, response body included.
    pub timeout: Duration,
    /// The schedule for endpoints without their own.
    pub default_schedule: RetrySchedule,
    /// How much of a response body the delivery log keeps.
    pub response_body_limit: usize,
    pub target_policy: TargetPolicy,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            concurrency: 512,
            per_endpoint_concurrency: 64,
            timeout: Duration::from_secs(15),
            default_schedule: RetrySchedule::standard(),
            response_body_limit: 4096,
            target_policy: TargetPolicy::PublicOnly,
        }
    }
}

/// Runs the dispatcher until `shutdown` is cancelled; then in-flight attempts finish and are recorded.
pub async fn run(store: Store, config: DispatchConfig, shutdown: CancellationToken) {
    let client = HttpClient::new(config.target_policy, config.timeout, config.response_body_limit);
    let dispatcher = Dispatcher {
        store: store.clone(),
        client,
        slots: Arc::new(Semaphore::new(config.concurrency)),
        endpoint_slots: HashMap::new(),
        capacity_freed: Arc::new(Notify::new()),
        config: Arc::new(config),
    };
    let (outcomes, outcome_queue) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_outcomes(store, outcome_queue));
    let tasks = TaskTracker::new();
    dispatcher.claim_loop(&tasks, outcomes, shutdown).await;
    tasks.close();
    tasks.wait().await;
    // The claim loop and every attempt have dropped their senders, so the recorder drains and ends.
    if let Err(error) = recorder.await {
        tracing::error!(%error, "the outcome recorder failed");
    }
}

struct Dispatcher {
    store: Store,
    client: HttpClient,
    slots: Arc<Semaphore>,
    endpoint_slots: HashMap<EndpointId, Arc<Semaphore>>,
    capacity_freed: Arc<Notify>,
    config: Arc<DispatchConfig>,
}

/// How long a claim holds a delivery: the attempt's timeout, then as long again (at least 5 s) to record the
/// outcome. A lease that runs out (its node died, or could not record) makes the delivery due again: the attempt
/// may then be made twice, never lost.
fn lease_length(timeout: Duration) -> Duration {
    timeout + timeout.max(Duration::from_secs(5))
}

/// The longest a dispatcher sleeps without looking at the queue, in case a clock jumped.
const MAX_IDLE: Duration = Duration::from_secs(30);
/// How many deliveries one claim may take.
const CLAIM_BATCH: usize = 256;

impl Dispatcher {
    async fn claim_loop(
        mut self,
        tasks: &TaskTracker,
        outcomes: mpsc::UnboundedSender<AttemptOutcome>,
        shutdown: CancellationToken,
    ) {
        let work = self.store.work_signal();
        while !shutdown.is_cancelled() {
            let free = self.slots.available_permits().min(CLAIM_BATCH);
            if free == 0 {
                tokio::select! {
                    _ = self.capacity_freed.notified() => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
            let now = Timestamp::now();
            let lease_until = now.saturating_add(lease_length(self.config.timeout));
            let claim = Claim {
                now,
                lease_until,
                limit: free as u32,
                per_endpoint: self.config.per_endpoint_concurrency.min(u32::MAX as usize) as u32,
                busy_endpoints: self.busy_endpoints(),
            };
            let claimed = match self.store.claim_due(claim).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::error!(error = %error_chain(&error), "claiming due deliveries failed; retrying in 1s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    continue;
                }
            };
            if claimed.is_empty() {
                let wait = match self.store.next_due(self.busy_endpoints()).await {
                    Ok(Some(due)) => Duration::from_millis((due.unix_millis() - now.unix_millis()).max(1) as u64),
                    Ok(None) => MAX_IDLE,
                    Err(error) => {
                        tracing::error!(error = %error_chain(&error), "reading the queue failed");
                        Duration::from_secs(1)
                    }
                };
                tokio::select! {
                    _ = work.notified() => {}
                    _ = self.capacity_freed.notified() => {}
                    _ = tokio::time::sleep(wait.min(MAX_IDLE)) => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
            let mut over_cap = Vec::new();
            // An event going to several endpoints in this batch has its body built once per format.
            let mut bodies: HashMap<(EventId, Format, Escape), Bytes> = HashMap::new();
            for delivery in claimed {
                let endpoint_slots = Arc::clone(
                    self.endpoint_slots
                        .entry(delivery.endpoint.id.clone())
                        .or_insert_with(|| Arc::new(Semaphore::new(self.config.per_endpoint_concurrency))),
                );
                let Ok(endpoint_permit) = endpoint_slots.try_acquire_owned() else {
                    over_cap.push((delivery.id, delivery.lease));
                    continue;
                };
                let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() else {
                    over_cap.push((delivery.id, delivery.lease));
                    continue;
                };
                let attempt = Attempter {
                    client: self.client.clone(),
                    config: Arc::clone(&self.config),
                    outcomes: outcomes.clone(),
                };
                let body = bodies
                    .entry((delivery.event_id.clone(), delivery.format, delivery.escape))
                    .or_insert_with(|| Bytes::from(body_of(&delivery)))
                    .clone();
                let capacity_freed = Arc::clone(&self.capacity_freed);
                tasks.spawn(async move {
                    attempt.deliver(delivery, body).await;
                    drop((permit, endpoint_permit));
                    capacity_freed.notify_one();
                });
            }
            if !over_cap.is_empty()
                && let Err(error) = self.store.release(over_cap).await
            {
                tracing::error!(error = %error_chain(&error), "releasing leases failed; they expire by themselves");
            }
            self.forget_idle_endpoints();
        }
    }

    /// Endpoints with no free slot, which the next claim skips.
    fn busy_endpoints(&self) -> Vec<EndpointId> {
        self.endpoint_slots
            .iter()
            .filter(|(_, slots)| slots.available_permits() == 0)
            .map(|(endpoint, _)| endpoint.clone())
            .collect()
    }

    fn forget_idle_endpoints(&mut self) {
        if self.endpoint_slots.len() > 4096 {
            let limit = self.config.per_endpoint_concurrency;
            self.endpoint_slots.retain(|_, slots| slots.available_permits() < limit);
        }
    }
}

/// Everything one attempt needs, moved into its task.
struct Attempter {
    client: HttpClient,
    config: Arc<DispatchConfig>,
    outcomes: mpsc::UnboundedSender<AttemptOutcome>,
}

impl Attempter {
    /// Sends `body` (the delivery's exact bytes, see `body_of`) signed, and queues the outcome.
    async fn deliver(self, delivery: ClaimedDelivery, body: Bytes) {
        let number = delivery.attempts + 1;
        let started = Timestamp::now();
        let mut headers: Vec<(&'static str, String)> = vec![
            ("content-type", "application/json".to_owned()),
            ("user-agent", USER_AGENT.to_owned()),
            ("hookline-event-id", delivery.event_id.to_string()),
            ("hookline-delivery-id", delivery.id.to_string()),
            ("hookline-topic", delivery.topic.to_string()),
            ("hookline-attempt", number.to_string()),
        ];
        let mut signing_error = None;
        for scheme in &delivery.endpoint.signing {
            match Signer::new(*scheme, &delivery.endpoint.secret) {
                Ok(signer) => signer.sign(delivery.event_id.as_str(), started.unix_seconds(), &body, &mut headers),
                Err(error) => signing_error = Some(error.to_string()),
            }
        }
        let exchange = match signing_error {
            // A secret that cannot sign is the endpoint's configuration problem; sending unsigned would be worse.
            Some(detail) => client::Exchange { elapsed: Duration::ZERO, result: Err((AttemptError::Io, detail)) },
            None => self.client.post(&delivery.endpoint.url, &headers, body).await,
        };
        let (status, retry_after) = match &exchange.result {
            Ok(response) => {
                let retry_after = response
                    .headers
                    .iter()
                    .find(|(name, _)| name == "retry-after")
                    .and_then(|(_, value)| parse_retry_after_seconds(value));
                (Some(response.status), retry_after)
            }
            Err(_) => (None, None),
        };
        let next = match verdict(status) {
            Verdict::Delivered => NextStep::Done(DeliveryStatus::Succeeded),
            Verdict::Gone => NextStep::Done(DeliveryStatus::Failed),
            Verdict::Retry => {
                let schedule = match &delivery.endpoint.retry_schedule {
                    Some(delays) => RetrySchedule::exact(delays.clone()).unwrap_or_default(),
                    None => self.config.default_schedule.clone(),
                };
                let jitter = rand::rng().random::<f64>();
                match schedule.next_delay(number, retry_after, jitter) {
                    Some(delay) => NextStep::RetryAt(Timestamp::now().saturating_add(delay)),
                    None => NextStep::Done(DeliveryStatus::Failed),
                }
            }
        };
        let (response_status, response_headers, response_body, error, error_detail) = match exchange.result {
            Ok(response) => {
                let failed = !(200..300).contains(&response.status);
                let detail = failed.then(|| format!("the endpoint answered {}", response.status));
                let error = failed.then_some(AttemptError::Status);
                (Some(response.status), response.headers, Some(response.body), error, detail)
            }
            Err((kind, detail)) => (None, Vec::new(), None, Some(kind), Some(detail)),
        };
        tracing::debug!(delivery = %delivery.id, attempt = number, status = ?response_status, ?error, "attempt finished");
        let outcome = AttemptOutcome {
            delivery: delivery.id,
            lease: delivery.lease,
            attempt: Attempt {
                number,
                started,
                duration_ms: exchange.elapsed.as_millis() as u64,
                url: delivery.endpoint.url,
                request_headers: headers.into_iter().map(|(name, value)| (name.to_owned(), value)).collect(),
                response_status,
                response_headers,
                response_body,
                error,
                error_detail,
            },
            next,
        };
        // The recorder only stops after every attempt has finished, so the send cannot fail while it matters.
        let _ = self.outcomes.send(outcome);
    }
}

/// The exact bytes a delivery sends: the same on every attempt, so its signatures are the same too.
fn body_of(delivery: &ClaimedDelivery) -> String {
    build_body(
        delivery.format,
        delivery.escape,
        EventParts {
            topic: delivery.topic.as_str(),
            created: delivery.event_created,
            data: &delivery.data,
            meta: delivery.meta.as_deref(),
        },
    )
}

/// Writes attempt outcomes in batches: whatever has arrived while the previous batch was committing.
async fn record_outcomes(store: Store, mut queue: mpsc::UnboundedReceiver<AttemptOutcome>) {
    let work = store.work_signal();
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, 1024).await > 0 {
        let retries = batch.iter().any(|outcome| matches!(outcome.next, NextStep::RetryAt(_)));
        let outcomes: Arc<[AttemptOutcome]> = batch.drain(..).collect();
        loop {
            match store.record_outcomes(Arc::clone(&outcomes)).await {
                Ok(_) => break,
                Err(hookline_store::StoreError::Closed) => return,
                Err(error) => {
                    // Leases keep the deliveries safe meanwhile; if this never succeeds they expire and are retried.
                    tracing::error!(error = %error_chain(&error), count = outcomes.len(), "recording attempts failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        if retries {
            work.notify_one();
        }
    }
}

/// An error with its causes, for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
