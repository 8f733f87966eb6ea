//! The retry schedule as the dispatcher keeps it, tested without waiting: `hookline_dispatch::run` over a real
//! SQLite store and a real receiver on 127.0.0.1, with a manual clock as the only "now" of both. Each case says
//! when every attempt must be made; the test moves the clock there and checks that the attempt came then and not
//! a moment before, and that nothing comes once the delivery is finished.
//!
//! "Not before" is shown by a marker, not by waiting: a second endpoint's delivery, sent again by hand, makes the
//! dispatcher claim at the clock's current time. A claim takes every delivery that is due, so once the marker's
//! attempt is recorded, a delivery that claim left alone was not due: it still has its attempts and its due time
//! (a claimed delivery's due time becomes the end of its lease).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookline_core::Scheme;
use hookline_core::body::Format;
use hookline_core::clock::{Clock, ManualClock};
use hookline_core::duration::parse_duration;
use hookline_core::id::{DeliveryId, TenantId};
use hookline_core::retry::RetrySchedule;
use hookline_core::time::Timestamp;
use hookline_dispatch::{DispatchConfig, TargetGuard, TargetPolicy};
use hookline_store::{
    Attempt, Database, Delivery, DeliveryFilter, DeliveryStatus, NewEndpoint, NewEvent, PageRequest, Store,
    StoreOptions,
};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

/// How the receiver answers one attempt.
#[derive(Clone, Copy, Debug)]
struct Answer {
    status: u16,
    retry_after: Option<&'static str>,
}

const fn answer(status: u16) -> Answer {
    Answer { status, retry_after: None }
}

const fn answer_retry_after(status: u16, seconds: &'static str) -> Answer {
    Answer { status, retry_after: Some(seconds) }
}

/// One delivery's life: the endpoint's schedule, the receiver's answers in order (200 once they run out), when
/// each attempt is made (from the publish), and how the delivery ends.
struct Case {
    name: &'static str,
    schedule: &'static [&'static str],
    answers: &'static [Answer],
    attempts_at: &'static [Duration],
    ends: DeliveryStatus,
}

const fn minutes(count: u64) -> Duration {
    Duration::from_secs(count * 60)
}

const CASES: &[Case] = &[
    Case {
        name: "Herald's policy: three attempts three minutes apart, then failed",
        schedule: &["3m", "3m"],
        answers: &[answer(500), answer(500), answer(500)],
        attempts_at: &[Duration::ZERO, minutes(3), minutes(6)],
        ends: DeliveryStatus::Failed,
    },
    Case {
        name: "a failure, a second one, then success",
        schedule: &["200ms", "200ms"],
        answers: &[answer(500), answer(503)],
        attempts_at: &[Duration::ZERO, Duration::from_millis(200), Duration::from_millis(400)],
        ends: DeliveryStatus::Succeeded,
    },
    Case {
        name: "410 Gone stops at once, whatever the schedule",
        schedule: &["3m", "3m"],
        answers: &[answer(410)],
        attempts_at: &[Duration::ZERO],
        ends: DeliveryStatus::Failed,
    },
    Case {
        name: "Retry-After postpones the next attempt past the schedule's delay",
        schedule: &["100ms"],
        answers: &[answer_retry_after(503, "1")],
        attempts_at: &[Duration::ZERO, Duration::from_secs(1)],
        ends: DeliveryStatus::Succeeded,
    },
    Case {
        name: "Retry-After never brings an attempt forward",
        schedule: &["3m"],
        answers: &[answer_retry_after(503, "1")],
        attempts_at: &[Duration::ZERO, minutes(3)],
        ends: DeliveryStatus::Succeeded,
    },
    Case {
        name: "Retry-After is followed up to an hour",
        schedule: &["1s"],
        answers: &[answer_retry_after(429, "86400")],
        attempts_at: &[Duration::ZERO, minutes(60)],
        ends: DeliveryStatus::Succeeded,
    },
];

#[tokio::test]
async fn every_attempt_comes_when_the_schedule_says_and_none_before_or_after() {
    for case in CASES {
        eprintln!("case: {}", case.name);
        check(case).await;
    }
}

async fn check(case: &Case) {
    let name = case.name;
    let harness = Harness::start(name).await;
    let delays = case.schedule.iter().map(|delay| parse_duration(delay).unwrap()).collect();
    let schedule = RetrySchedule::exact(delays).unwrap();
    harness.receiver.script("/hook", case.answers);
    create_endpoint(&harness.store, &harness.receiver, "/hook", "pdf.processed", Some(schedule)).await;
    let delivery = publish(&harness.store, "pdf.processed").await;

    for (made, offset) in case.attempts_at.iter().enumerate() {
        let due = start().saturating_add(*offset);
        if made > 0 {
            // The schedule as recorded: the delivery waits for `due`.
            let before = harness.delivery(&delivery).await.0;
            let expected = (DeliveryStatus::Pending, made as u32, Some(due));
            assert_eq!((before.status, before.attempts, before.next_attempt), expected, "{name}: after attempt {made}");
            // A millisecond before, the dispatcher claims and leaves it alone.
            harness.move_to(Timestamp::from_unix_millis(due.unix_millis() - 1));
            harness.look().await;
            let still = harness.delivery(&delivery).await.0;
            let found = (still.status, still.attempts, still.next_attempt);
            assert_eq!(found, expected, "{name}: attempt {} came before it was due", made + 1);
            // Then nothing wakes the dispatcher but its own wait for the next due time, read from the clock.
            harness.move_to(due);
        }
        let attempts = harness.wait_for_attempts(&delivery, made + 1).await;
        assert_eq!(attempts.len(), made + 1, "{name}: {attempts:?}");
        assert_eq!(attempts[made].started, due, "{name}: attempt {} started", made + 1);
    }

    let (finished, attempts) = harness.delivery(&delivery).await;
    assert_eq!((finished.status, finished.next_attempt), (case.ends, None), "{name}: {finished:?}");
    let statuses: Vec<Option<u16>> = attempts.iter().map(|attempt| attempt.response_status).collect();
    let mut expected: Vec<Option<u16>> = case.answers.iter().map(|answer| Some(answer.status)).collect();
    expected.resize(case.attempts_at.len(), Some(200));
    assert_eq!(statuses, expected, "{name}: the answers each attempt got");
    // A day later, a claim still finds nothing to do for it.
    let last = case.attempts_at.last().copied().unwrap_or_default();
    harness.move_to(start().saturating_add(last + Duration::from_secs(86_400)));
    harness.look().await;
    let (after, attempts) = harness.delivery(&delivery).await;
    assert_eq!((after.status, after.attempts), (case.ends, case.attempts_at.len() as u32), "{name}: {after:?}");
    assert_eq!(attempts.len(), case.attempts_at.len(), "{name}");
    assert_eq!(harness.receiver.requests_to("/hook"), case.attempts_at.len(), "{name}: requests received");
    harness.stop().await;
}

// ----- the harness -----

/// The clock's time when each case starts (2030-01-01T00:00:00Z): far from the machine's own, so that a "now"
/// read from anywhere but the clock would show.
fn start() -> Timestamp {
    Timestamp::from_unix_millis(1_893_456_000_000)
}

/// A dispatcher running over a fresh store, the clock they share, and the receiver every endpoint points at.
struct Harness {
    clock: Arc<ManualClock>,
    store: Store,
    receiver: Receiver,
    /// A delivery that succeeded once; sent again by hand, it shows that the dispatcher has claimed at the
    /// clock's current time (see the module's documentation).
    marker: DeliveryId,
    stop: CancellationToken,
    dispatcher: tokio::task::JoinHandle<()>,
    _dir: TempDir,
}

impl Harness {
    async fn start(label: &str) -> Harness {
        let dir = TempDir::new(label);
        let clock = Arc::new(ManualClock::new(start()));
        let options = StoreOptions { clock: Arc::clone(&clock) as Arc<dyn Clock>, ..StoreOptions::default() };
        let store = Store::open(&Database::Sqlite { data_dir: dir.0.clone() }, &dir.0, &options).await.unwrap();
        store.create_tenant(tenant(), "Acme".into()).await.unwrap();
        let config = DispatchConfig {
            // The receiver is on 127.0.0.1.
            target_guard: TargetGuard::new(TargetPolicy::DangerousAllowPrivate),
            clock: Arc::clone(&clock) as Arc<dyn Clock>,
            ..DispatchConfig::default()
        };
        let stop = CancellationToken::new();
        let dispatcher = tokio::spawn(hookline_dispatch::run(store.clone(), config, stop.clone()));
        let receiver = Receiver::start().await;
        create_endpoint(&store, &receiver, "/marker", "pdf.failed", None).await;
        let marker = publish(&store, "pdf.failed").await;
        let harness = Harness { clock, store, receiver, marker, stop, dispatcher, _dir: dir };
        harness.wait_for_attempts(&harness.marker, 1).await;
        harness
    }

    async fn delivery(&self, id: &DeliveryId) -> (Delivery, Vec<Attempt>) {
        self.store.get_delivery(tenant(), id.clone()).await.unwrap().expect("the delivery exists")
    }

    /// Waits until `count` attempts of the delivery are recorded, and returns them.
    async fn wait_for_attempts(&self, id: &DeliveryId, count: usize) -> Vec<Attempt> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (delivery, attempts) = self.delivery(id).await;
            if attempts.len() >= count {
                return attempts;
            }
            assert!(Instant::now() < deadline, "attempt {count} not recorded within 10 s: {delivery:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends the marker again and waits for its attempt: the dispatcher has then claimed at the clock's time.
    async fn look(&self) {
        let made = self.delivery(&self.marker).await.1.len();
        self.store.retry_delivery(tenant(), self.marker.clone()).await.unwrap().expect("the marker exists");
        let attempts = self.wait_for_attempts(&self.marker, made + 1).await;
        assert_eq!(attempts[made].started, self.clock.now(), "the marker was claimed at the clock's time");
    }

    /// Sets the clock the store and the dispatcher share.
    fn move_to(&self, time: Timestamp) {
        self.clock.set(time);
    }

    async fn stop(self) {
        self.stop.cancel();
        self.dispatcher.await.unwrap();
        self.store.close().await;
    }
}

fn tenant() -> TenantId {
    "acme".parse().unwrap()
}

/// An endpoint at `path` on the receiver, subscribed to `topic` alone.
async fn create_endpoint(
    store: &Store,
    receiver: &Receiver,
    path: &str,
    topic: &str,
    retry_schedule: Option<RetrySchedule>,
) {
    let endpoint = NewEndpoint {
        tenant: tenant(),
        url: format!("{}{path}", receiver.url),
        topics: vec![topic.parse().unwrap()],
        description: String::new(),
        enabled: true,
        format: Format::Envelope,
        signing: vec![Scheme::Standard],
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        retry_schedule,
        headers: Vec::new(),
    };
    store.create_endpoint(endpoint).await.unwrap().expect("the tenant exists");
}

/// Publishes an event to `topic`, which one endpoint subscribes to, and returns its delivery.
async fn publish(store: &Store, topic: &str) -> DeliveryId {
    let event = NewEvent {
        tenant: tenant(),
        topic: topic.parse().unwrap(),
        data: r#"{"pdf_id":"pdf_1"}"#.to_owned(),
        meta: None,
        idempotency_key: None,
        route: hookline_store::Route::default(),
    };
    let published = store.publish(event).await.unwrap().expect("the tenant exists");
    assert_eq!(published.deliveries, 1);
    let filter = DeliveryFilter { event: Some(published.event.id), ..DeliveryFilter::default() };
    let page = store.list_deliveries(tenant(), filter, PageRequest { cursor: None, limit: 10 }).await;
    let mut deliveries = page.unwrap().data;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    deliveries.remove(0).id
}

/// A real HTTP server on 127.0.0.1: answers each path's scripted replies in order (then 200), and counts the
/// requests to each path.
#[derive(Clone)]
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
}

#[derive(Default)]
struct ReceiverState {
    scripts: HashMap<String, VecDeque<Answer>>,
    requests: HashMap<String, usize>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let served = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&served);
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let answer = {
                        let mut state = state.lock().unwrap();
                        let path = request.uri().path().to_owned();
                        *state.requests.entry(path.clone()).or_default() += 1;
                        state.scripts.get_mut(&path).and_then(VecDeque::pop_front).unwrap_or(answer(200))
                    };
                    let mut response = hyper::Response::builder().status(answer.status);
                    if let Some(seconds) = answer.retry_after {
                        response = response.header("retry-after", seconds);
                    }
                    std::future::ready(response.body(Full::new(Bytes::new())))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Receiver { url, state }
    }

    fn script(&self, path: &str, answers: &[Answer]) {
        self.state.lock().unwrap().scripts.entry(path.to_owned()).or_default().extend(answers.iter().copied());
    }

    fn requests_to(&self, path: &str) -> usize {
        self.state.lock().unwrap().requests.get(path).copied().unwrap_or(0)
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let label: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(40).collect();
        let path = std::env::temp_dir().join(format!(
            "hookline-dispatch-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
