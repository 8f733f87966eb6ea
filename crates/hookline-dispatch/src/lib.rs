//! Hookline's dispatcher: claims due deliveries from the store, builds and signs each request, sends it, and
//! records the attempt with what happens next (done, or the time of the next try).
//!
//! Architecture invariant: the dispatcher knows nothing about the HTTP API (no axum); it talks to the store and
//! to receivers only. Which delivery takes a free slot is the fair queue's decision (`fair`): shares per
//! tenant and per endpoint, in turn, so that no tenant and no slow endpoint can take every slot.

mod chat;
pub mod client;
mod fair;
pub mod guard;
mod handoff;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hookline_core::body::{EventParts, Format, build_body};
use hookline_core::clock::{Clock, SystemClock};
use hookline_core::id::EventId;
use hookline_core::json::Escape;
use hookline_core::retry::{RetrySchedule, Verdict, parse_retry_after_seconds, verdict};
use hookline_store::{
    Attempt, AttemptError, AttemptOutcome, Busy, Claim, ClaimedDelivery, DeliveryStatus, NextStep, Store, StoreError,
};
use hookline_verify::{SecretError, Signer};
use rand::Rng;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::client::{HeadersLimit, HttpClient};
use crate::fair::{FairQueue, Pace, Shares};
pub use crate::guard::{TargetGuard, TargetPolicy};
pub use crate::handoff::Handoff;

/// The longest delivery timeout a dispatcher takes (the configuration refuses more): its leases, three timeouts
/// and 10 s, must end within the horizon a restart releases (`hookline_store::LEASE_HORIZON`).
pub const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(300);

/// The `User-Agent` every webhook request carries.
pub const USER_AGENT: &str = concat!("Hookline/", env!("CARGO_PKG_VERSION"), " (+webhooks)");

/// How the dispatcher behaves; built from the server's configuration.
#[derive(Clone, Debug)]
pub struct DispatchConfig {
    /// Attempts in flight at once, across all endpoints.
    pub concurrency: usize,
    /// Attempts in flight at once for one tenant: its share, which leaves the rest to the others however slow
    /// its receivers are. `None` is half of `concurrency`.
    pub per_tenant_concurrency: Option<usize>,
    /// Attempts in flight at once to one endpoint (fewer while it keeps timing out).
    pub per_endpoint_concurrency: usize,
    /// How long one attempt may take, response body included.
    pub timeout: Duration,
    /// The schedule for endpoints without their own.
    pub default_schedule: RetrySchedule,
    /// How much of a response body the delivery log keeps.
    pub response_body_limit: usize,
    /// How much of a response's headers the delivery log keeps.
    pub response_headers_limit: HeadersLimit,
    /// Where requests may go; the API checks endpoint URLs with the same guard.
    pub target_guard: TargetGuard,
    /// The dispatcher's only source of "now" (the store's, when a server runs both).
    pub clock: Arc<dyn Clock>,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            concurrency: 2048,
            per_tenant_concurrency: None,
            per_endpoint_concurrency: 64,
            timeout: Duration::from_secs(15),
            default_schedule: RetrySchedule::standard(),
            response_body_limit: 4096,
            response_headers_limit: HeadersLimit { count: 64, bytes: 4096 },
            target_guard: TargetGuard::new(TargetPolicy::PublicOnly),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Runs the dispatcher until `shutdown` is cancelled; then in-flight attempts finish and are recorded, and
/// deliveries claimed but not started go back to the queue.
pub async fn run(store: Store, config: DispatchConfig, shutdown: CancellationToken) {
    let client = HttpClient::with_guard(
        config.target_guard.clone(),
        config.timeout,
        config.response_body_limit,
        config.response_headers_limit,
    );
    let per_endpoint = config.per_endpoint_concurrency.min(u32::MAX as usize) as u32;
    let shares = Shares {
        total: config.concurrency,
        per_tenant: config
            .per_tenant_concurrency
            .unwrap_or(config.concurrency.div_ceil(2))
            .clamp(1, config.concurrency.max(1)),
        per_endpoint,
    };
    // A tenant's deliveries may fill the same share of the places for waiting ones as of the slots.
    let waiting_per_tenant = (WAITING * shares.per_tenant).div_ceil(shares.total.max(1)).max(1);
    let handoff =
        Arc::new(Handoff::new(lease_length(config.timeout), per_endpoint, waiting_per_tenant as u32, WAITING as u32));
    store.attach_dispatcher(Arc::clone(&handoff) as Arc<dyn hookline_store::HandoffSink>);
    let dispatcher = Dispatcher {
        store: store.clone(),
        client,
        handoff: Arc::clone(&handoff),
        queue: Arc::new(FairQueue::new(shares, Arc::clone(&handoff))),
        capacity_freed: Arc::new(Notify::new()),
        config: Arc::new(config),
        templates: chat::Templates::default(),
    };
    let (outcomes, outcome_queue) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_outcomes(store.clone(), Arc::clone(&handoff), outcome_queue));
    let tasks = TaskTracker::new();
    let queue = dispatcher.claim_loop(&tasks, outcomes, shutdown).await;
    tasks.close();
    tasks.wait().await;
    // Attempt tasks stop taking waiting deliveries once shutdown starts: give back what they left, and what
    // publishes handed over after the claim loop's last look.
    let left = queue.take_all().into_iter().chain(handoff.close()).collect::<Vec<_>>();
    if let Err(error) = store.release(fair::leases(&left)).await {
        tracing::error!(error = %error_chain(&error), "releasing unstarted deliveries failed; their leases expire");
    }
    // The claim loop and every attempt have dropped their senders, so the recorder drains and ends.
    if let Err(error) = recorder.await {
        tracing::error!(%error, "the outcome recorder failed");
    }
}

struct Dispatcher {
    store: Store,
    client: HttpClient,
    /// Deliveries published on this process come through here, and it counts every delivery that waits.
    handoff: Arc<Handoff>,
    /// The deliveries that wait for a slot, and who gets the next one.
    queue: Arc<FairQueue>,
    capacity_freed: Arc<Notify>,
    config: Arc<DispatchConfig>,
    /// The topics' chat templates, for the messages of chat endpoints.
    templates: chat::Templates,
}

/// How long a claim holds a delivery: it may wait in the queue for two attempts to end and 4 s more (see
/// `start_by`), then take its own attempt (the timeout at most), then 5 s to record the outcome, with a second to
/// spare. A lease that runs out (its node died, or could not record) makes the delivery due again: the attempt
/// may then be made twice, never lost.
fn lease_length(timeout: Duration) -> Duration {
    timeout * 3 + Duration::from_secs(10)
}

/// The latest a delivery leased at `leased` may start its attempt: one that waited longer is given back
/// (released) rather than attempted, since its lease could end before its outcome is recorded. A publish's lease
/// was taken a moment before its delivery is queued, at its commit: the spare second covers that.
fn start_by(leased: Instant, timeout: Duration) -> Instant {
    leased + lease_length(timeout) - timeout - Duration::from_secs(6)
}

#[cfg(test)]
#[test]
fn the_longest_lease_ends_within_the_horizon_a_restart_releases() {
    assert!(lease_length(MAX_DELIVERY_TIMEOUT) < hookline_store::LEASE_HORIZON);
}

/// The longest a dispatcher sleeps without looking at the queue, in case a clock jumped.
const MAX_IDLE: Duration = Duration::from_secs(30);
/// How many deliveries one claim may take.
const CLAIM_BATCH: usize = 256;
/// How many deliveries may wait for a slot in all, claimed or handed over by publishes; a tenant may fill the
/// same share of them as of the slots (half, by default: 1,024, which a lone tenant saturating ten endpoints needs).
const WAITING: usize = 2048;

impl Dispatcher {
    /// Claims and starts deliveries until `shutdown`; returns the queue, whose waiting deliveries the caller
    /// gives back once every attempt has ended.
    async fn claim_loop(
        self,
        tasks: &TaskTracker,
        outcomes: mpsc::UnboundedSender<AttemptOutcome>,
        shutdown: CancellationToken,
    ) -> Arc<FairQueue> {
        // Whether a claim may find something: due deliveries come from publishes the handoff had no room for
        // (the store says so through the handoff), retries falling due, expired leases, and endpoints that are no longer busy.
        let mut due_in_store = true;
        let mut skipped_busy = false;
        let mut next_look = Instant::now() + MAX_IDLE;
        while !shutdown.is_cancelled() {
            let handed = self.handoff.take();
            if !handed.is_empty() {
                self.enqueue(handed, Arrival::Handed).await;
            }
            self.start_waiting(tasks, &outcomes, &shutdown);
            due_in_store |= self.give_back().await;
            let room = WAITING.saturating_sub(self.handoff.queued()).min(CLAIM_BATCH);
            if due_in_store && room < CLAIM_BATCH / 2 {
                // Publishes keep handing over new deliveries: make them leave room for the due ones.
                self.handoff.want_room(CLAIM_BATCH as u32);
            } else if due_in_store && self.queue.slot_free() {
                let busy = self.queue.busy();
                skipped_busy = !busy.is_empty();
                match self.claim(room, busy).await {
                    Ok(true) => continue,
                    Ok(false) => {
                        due_in_store = false;
                        let wait = match self.store.next_due(self.queue.busy()).await {
                            Ok(Some(due)) => Duration::from_millis(
                                (due.unix_millis() - self.config.clock.now().unix_millis()).max(1) as u64,
                            ),
                            Ok(None) => MAX_IDLE,
                            Err(error) => {
                                tracing::error!(error = %error_chain(&error), "reading the queue failed");
                                Duration::from_secs(1)
                            }
                        };
                        next_look = Instant::now() + wait.min(MAX_IDLE);
                    }
                    Err(error) => {
                        tracing::error!(error = %error_chain(&error), "claiming due deliveries failed; retrying in 1s");
                        due_in_store = false;
                        next_look = Instant::now() + Duration::from_secs(1);
                    }
                }
            }
            tokio::select! {
                _ = self.handoff.arrived() => {}
                _ = self.handoff.room_made() => {}
                _ = self.handoff.work_due_in_store() => due_in_store = true,
                // A claim skips busy endpoints; once one has room, its due deliveries may be claimed.
                _ = self.capacity_freed.notified() => due_in_store |= skipped_busy,
                _ = tokio::time::sleep_until(next_look) => {
                    due_in_store = true;
                    next_look = Instant::now() + MAX_IDLE;
                }
                _ = shutdown.cancelled() => {}
            }
        }
        self.queue
    }

    /// Claims up to `room` due deliveries and starts what it can; false when there were none.
    async fn claim(&self, room: usize, busy: Busy) -> Result<bool, StoreError> {
        let now = self.config.clock.now();
        let claim = Claim {
            now,
            lease_until: now.saturating_add(lease_length(self.config.timeout)),
            limit: room as u32,
            per_endpoint: self.config.per_endpoint_concurrency.min(u32::MAX as usize) as u32,
            busy,
        };
        let claimed = self.store.claim_due(claim).await?;
        if claimed.is_empty() {
            return Ok(false);
        }
        self.enqueue(claimed, Arrival::Claimed).await;
        self.queue.forget_idle_endpoints(Instant::now());
        Ok(true)
    }

    /// Releases the deliveries the queue gave back (they could not start within their leases); true when there
    /// were some, which are due in the store again.
    async fn give_back(&self) -> bool {
        let given_back = self.queue.take_given_back();
        if given_back.is_empty() {
            return false;
        }
        if let Err(error) = self.store.release(fair::leases(&given_back)).await {
            tracing::error!(error = %error_chain(&error), "releasing deliveries failed; their leases expire");
        }
        true
    }

    /// Queues deliveries for their attempts, building each body once per event and format. Claimed ones take a
    /// place in the handoff's count; handed-over ones have theirs.
    async fn enqueue(&self, deliveries: Vec<ClaimedDelivery>, arrival: Arrival) {
        let start_by = start_by(Instant::now(), self.config.timeout);
        let mut bodies: HashMap<(EventId, Format, Escape), Bytes> = HashMap::new();
        if deliveries.iter().any(|delivery| delivery.format.is_chat()) {
            self.templates.prepare(&self.store, &deliveries).await;
        }
        for delivery in deliveries {
            let body = bodies
                .entry((delivery.event_id.clone(), delivery.format, delivery.escape))
                .or_insert_with(|| Bytes::from(self.body_of(&delivery)))
                .clone();
            if arrival == Arrival::Claimed {
                self.handoff.joined(&delivery.endpoint.id, &delivery.endpoint.tenant);
            }
            self.queue.push(delivery, body, start_by);
        }
    }

    /// Starts an attempt task for every waiting delivery that has a slot. Each task goes on with whichever
    /// delivery the queue gives next until there is none (or shutdown has begun).
    fn start_waiting(
        &self,
        tasks: &TaskTracker,
        outcomes: &mpsc::UnboundedSender<AttemptOutcome>,
        shutdown: &CancellationToken,
    ) {
        while let Some(first) = self.queue.next(Instant::now()) {
            let attempt =
                Attempter { client: self.client.clone(), config: Arc::clone(&self.config), outcomes: outcomes.clone() };
            let (queue, capacity_freed, stopping) =
                (Arc::clone(&self.queue), Arc::clone(&self.capacity_freed), shutdown.clone());
            tasks.spawn(async move {
                let mut next = Some(first);
                while let Some(start) = next {
                    let signers = start.signers.signers(&start.delivery.endpoint, attempt.config.clock.now());
                    let pace = attempt.clone().deliver(start.delivery, start.body, signers).await;
                    queue.finish(start.ticket, pace, Instant::now());
                    next = if stopping.is_cancelled() { None } else { queue.next(Instant::now()) };
                }
                capacity_freed.notify_one();
            });
        }
    }
}

/// How a delivery reached the dispatcher.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// A claim leased it from the store.
    Claimed,
    /// A publish on this process leased it and handed it over, its place in the handoff's count taken.
    Handed,
}

/// Everything one attempt needs, moved into its task.
#[derive(Clone)]
struct Attempter {
    client: HttpClient,
    config: Arc<DispatchConfig>,
    outcomes: mpsc::UnboundedSender<AttemptOutcome>,
}

impl Attempter {
    /// Sends `body` (the delivery's exact bytes, see `body_of`) signed by `signers`, and queues the outcome;
    /// says whether the receiver kept the attempt waiting for the whole timeout.
    async fn deliver(
        self,
        delivery: ClaimedDelivery,
        body: Bytes,
        signers: Result<Arc<[Signer]>, SecretError>,
    ) -> Pace {
        let number = delivery.attempts + 1;
        let started = self.config.clock.now();
        let mut headers: Vec<(&'static str, String)> = vec![
            ("content-type", "application/json".to_owned()),
            ("user-agent", USER_AGENT.to_owned()),
            ("hookline-event-id", delivery.event_id.to_string()),
            ("hookline-delivery-id", delivery.id.to_string()),
            ("hookline-topic", delivery.topic.to_string()),
            ("hookline-attempt", number.to_string()),
        ];
        let exchange = match signers {
            Ok(signers) => {
                for signer in signers.iter() {
                    signer.sign(delivery.event_id.as_str(), started.unix_seconds(), &body, &mut headers);
                }
                let own = &delivery.endpoint.headers;
                if own.is_empty() {
                    self.client.post(&delivery.endpoint.url, &headers, body).await
                } else {
                    // The endpoint's own headers after the delivery's; names owned, so only endpoints with some pay
                    // for them.
                    let mut all: Vec<(std::borrow::Cow<'static, str>, String)> = headers
                        .iter()
                        .map(|(name, value)| (std::borrow::Cow::Borrowed(*name), value.clone()))
                        .collect();
                    all.extend(own.iter().map(|(name, value)| (std::borrow::Cow::Owned(name.clone()), value.clone())));
                    self.client.request(http::Method::POST, &delivery.endpoint.url, &all, body).await
                }
            }
            // A secret that cannot sign is the endpoint's configuration problem; sending unsigned would be worse.
            Err(error) => {
                client::Exchange { elapsed: Duration::ZERO, result: Err((AttemptError::Signing, error.to_string())) }
            }
        };
        let retry_after = exchange.result.as_ref().ok().and_then(|response| {
            let (_, value) = response.headers.iter().find(|(name, _)| name == "retry-after")?;
            parse_retry_after_seconds(value)
        });
        let next = match verdict(exchange.result.as_ref().map(|response| response.status).map_err(|(kind, _)| *kind)) {
            Verdict::Delivered => NextStep::Done(DeliveryStatus::Succeeded),
            Verdict::Gone | Verdict::Blocked => NextStep::Done(DeliveryStatus::Failed),
            Verdict::Retry => {
                let schedule = delivery.endpoint.retry_schedule.as_ref().unwrap_or(&self.config.default_schedule);
                let jitter = rand::rng().random::<f64>();
                match schedule.next_delay(number, retry_after, jitter) {
                    Some(delay) => NextStep::RetryAt(self.config.clock.now().saturating_add(delay)),
                    None => NextStep::Done(DeliveryStatus::Failed),
                }
            }
        };
        let (response_status, response_headers, response_headers_omitted, response_body, error, error_detail) =
            match exchange.result {
                Ok(response) => {
                    let failed = !(200..300).contains(&response.status);
                    let detail = failed.then(|| {
                        // A chat service says why it refused, in a word or a sentence: keep it with the status.
                        let reason = hookline_core::chat::refusal(delivery.endpoint.format, &response.body);
                        match reason {
                            Some(reason) => format!("the endpoint answered {}: {reason}", response.status),
                            None => format!("the endpoint answered {}", response.status),
                        }
                    });
                    let error = failed.then_some(AttemptError::Status);
                    let body = Some(response.body);
                    (Some(response.status), response.headers, response.headers_omitted, body, error, detail)
                }
                Err((kind, detail)) => (None, Vec::new(), 0, None, Some(kind), Some(detail)),
            };
        tracing::debug!(delivery = %delivery.id, attempt = number, status = ?response_status, ?error, "attempt finished");
        let outcome = AttemptOutcome {
            delivery: delivery.id,
            endpoint: Arc::clone(&delivery.endpoint),
            event: delivery.event_id,
            topic: delivery.topic,
            lease: delivery.lease,
            attempt: Attempt {
                number,
                started,
                duration_ms: exchange.elapsed.as_millis() as u64,
                url: delivery.endpoint.url.clone(),
                // The endpoint's own header values are recorded masked, as the API shows them.
                request_headers: headers
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value))
                    .chain(
                        delivery
                            .endpoint
                            .headers
                            .iter()
                            .map(|(name, value)| (name.clone(), hookline_core::headers::mask(value))),
                    )
                    .collect(),
                response_status,
                response_headers,
                response_headers_omitted,
                response_body,
                error,
                error_detail,
                cause: delivery.cause,
            },
            next,
        };
        let pace = if outcome.attempt.error == Some(AttemptError::Timeout) { Pace::TimedOut } else { Pace::Answered };
        // The recorder only stops after every attempt has finished, so the send cannot fail while it matters.
        let _ = self.outcomes.send(outcome);
        pace
    }
}

impl Dispatcher {
    /// The exact bytes a delivery sends: the same on every attempt, so its signatures are the same too (a chat
    /// message follows its topic's template as the dispatcher last read it).
    fn body_of(&self, delivery: &ClaimedDelivery) -> String {
        if delivery.format.is_chat() {
            let template = self.templates.of(&delivery.topic);
            let event = hookline_core::chat::ChatEvent {
                topic: delivery.topic.as_str(),
                tenant: delivery.endpoint.tenant.as_str(),
                event_id: delivery.event_id.as_str(),
                created: delivery.event_created,
                data: &delivery.data,
                template: template.as_deref(),
            };
            if let Some(message) = hookline_core::chat::build(delivery.format, &event) {
                return message;
            }
        }
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
}

/// The most outcomes one write records.
const MAX_OUTCOMES: usize = 1024;
/// A batch this big is recorded at once: it already shares its pages widely, and a longer write would only hold
/// up the publishes queued behind it.
const ENOUGH_OUTCOMES: usize = 64;
/// Smaller batches are recorded at most this often. Each recording rewrites the same few pages (the deliveries' and
/// attempts' newest), so under light traffic one write per outcome cost several pages of disk each; gathered,
/// they share them. Nobody waits on it: the attempt's slot is free once its outcome is queued, and the delivery
/// log shows the outcome this much later at most. A crash loses at most this much of them, and those deliveries
/// are sent again once their leases expire (delivery is at least once).
const RECORD_EVERY: Duration = Duration::from_millis(100);

/// Writes attempt outcomes in batches: the first after a quiet spell at once, then, unless `ENOUGH_OUTCOMES` have
/// queued, at most one batch every `RECORD_EVERY`, of whatever has arrived meanwhile.
async fn record_outcomes(store: Store, handoff: Arc<Handoff>, mut queue: mpsc::UnboundedReceiver<AttemptOutcome>) {
    let mut batch = Vec::new();
    let mut last_recorded: Option<tokio::time::Instant> = None;
    while queue.recv_many(&mut batch, MAX_OUTCOMES).await > 0 {
        if let Some(last) = last_recorded {
            let until = last + RECORD_EVERY;
            while batch.len() < ENOUGH_OUTCOMES {
                let room = MAX_OUTCOMES - batch.len();
                match tokio::time::timeout_at(until, queue.recv_many(&mut batch, room)).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        last_recorded = Some(tokio::time::Instant::now());
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
            // The claim loop looks again when the earliest of them falls due.
            hookline_store::HandoffSink::work_due(handoff.as_ref());
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
