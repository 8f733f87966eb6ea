//! Endpoint health end to end, through the public API of a real server on a manual clock: a run of failures makes
//! an endpoint failing and tells its tenant (`endpoint.failing`, `delivery.exhausted`), five days of them with a
//! delivery that used its last retry disable it (`endpoint.disabled`) while its pending deliveries wait, and once
//! enabled again its first success is told (`endpoint.recovered`). The operator's endpoint gets every tenant's
//! operational events. Days pass on the clock, never in the test. Each test runs on the embedded store, and on
//! PostgreSQL too when `HOOKLINE_TEST_POSTGRES_URL` names a server.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use hookline_core::clock::{Clock, ManualClock};
use hookline_core::time::Timestamp;
use hookline_server::{Config, Server};
use serde_json::{Value, json};
use support::{Api, WAIT};
use tokio_util::sync::CancellationToken;

const ADMIN_KEY: &str = "hka_health_test_key_0123456789";
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
const OPERATIONAL: [&str; 4] = ["endpoint.failing", "endpoint.recovered", "endpoint.disabled", "delivery.exhausted"];

async fn publish(api: &Api, tenant: &str) -> Value {
    let event = json!({"topic": "pdf.processed", "data": {"pdf_id": "pdf_1"}});
    api.ok("POST", &format!("/v1/tenants/{tenant}/events"), Some(event)).await
}

/// A receiver that answers every request with the status it is set to, and keeps the JSON bodies it got.
#[derive(Clone, Default)]
struct Receiver {
    status: Arc<AtomicU16>,
    bodies: Arc<Mutex<Vec<Value>>>,
    got: Arc<tokio::sync::Notify>,
}

impl Receiver {
    async fn start(status: u16) -> (Receiver, SocketAddr) {
        let receiver = Receiver::default();
        receiver.status.store(status, Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route(
                "/hook",
                post(|State(receiver): State<Receiver>, body: bytes::Bytes| async move {
                    receiver.bodies.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    receiver.got.notify_waiters();
                    StatusCode::from_u16(receiver.status.load(Ordering::SeqCst)).unwrap()
                }),
            )
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, address)
    }

    /// Waits until it has got `count` bodies; returns them all.
    async fn wait_for(&self, count: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.got.notified();
            let bodies = self.bodies.lock().unwrap().clone();
            if bodies.len() >= count {
                return bodies;
            }
            assert!(
                tokio::time::timeout_at(deadline, notified).await.is_ok(),
                "{} of {count} requests arrived: {bodies:?}",
                bodies.len()
            );
        }
    }
}

/// The one delivery of `event`.
async fn delivery_of(api: &Api, event: &str) -> String {
    let page = api.ok("GET", &format!("/v1/tenants/acme/deliveries?event={event}"), None).await;
    page["data"][0]["id"].as_str().unwrap().to_owned()
}

/// The operational events among `bodies` (envelopes), as (topic, data).
fn topics(bodies: &[Value]) -> Vec<String> {
    bodies.iter().map(|body| body["topic"].as_str().unwrap_or_default().to_owned()).collect()
}

struct Running {
    api: Api,
    clock: Arc<ManualClock>,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<Result<(), hookline_server::ServeError>>,
}

/// A database of its own on the test PostgreSQL server, dropped afterwards.
type Postgres = hookline_store::scratch::ScratchDatabase;

/// The backends a test runs on: the embedded store, and PostgreSQL when there is one.
async fn backends(label: &str) -> Vec<Option<Postgres>> {
    let mut backends = vec![None];
    if let Ok(admin_url) = std::env::var("HOOKLINE_TEST_POSTGRES_URL") {
        let database = Postgres::create(&admin_url, &format!("health_{label}")).await;
        backends.push(Some(database.unwrap_or_else(|error| panic!("cannot reach PostgreSQL at {admin_url}: {error}"))));
    }
    backends
}

fn config(data_dir: &Path, postgres: Option<&Postgres>) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        database: postgres.map(|postgres| hookline_store::Database::Postgres { url: postgres.url.clone() }),
        admin_key: Some(ADMIN_KEY.to_owned()),
        dangerous_allow_private_targets: true,
        failing_after: 3,
        // Operational events are published by a job of this period.
        purge_interval: Duration::from_millis(100),
        ..Config::default()
    }
}

async fn start(config: Config, clock: Arc<ManualClock>) -> Running {
    let server = Server::bind_with_clock(config, Arc::clone(&clock) as Arc<dyn Clock>).await.unwrap();
    let api = Api::new(server.local_addr().unwrap(), ADMIN_KEY);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(server.run(shutdown.clone()));
    Running { api, clock, shutdown, running }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        self.running.await.unwrap().unwrap();
    }
}

fn data_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookline-health-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs `test` on the embedded store, then on PostgreSQL when there is one.
async fn on_each_backend(label: &str, test: impl AsyncFn(Option<&Postgres>)) {
    for postgres in backends(label).await {
        eprintln!("backend: {}", if postgres.is_some() { "postgres" } else { "sqlite" });
        test(postgres.as_ref()).await;
    }
}

#[tokio::test]
async fn a_failing_endpoint_is_told_disabled_after_five_days_and_told_again_when_it_recovers() {
    on_each_backend("lifecycle", lifecycle).await;
}

async fn lifecycle(postgres: Option<&Postgres>) {
    let dir = data_dir("lifecycle");
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(1_893_456_000_000)));
    let server = start(config(&dir, postgres), Arc::clone(&clock)).await;
    let api = &server.api;
    let (failing, failing_at) = Receiver::start(503).await;
    let (alerts, alerts_at) = Receiver::start(200).await;
    api.ok("POST", "/v1/tenants", Some(json!({"id": "acme", "name": "Acme"}))).await;
    // One retry a day later: each delivery's second attempt is its last.
    let endpoint = api
        .ok(
            "POST",
            "/v1/tenants/acme/endpoints",
            Some(json!({"url": format!("http://{failing_at}/hook"), "topics": ["pdf.processed"], "retry_schedule": ["1d"]})),
        )
        .await;
    let path = format!("/v1/tenants/acme/endpoints/{}", endpoint["id"].as_str().unwrap());
    assert_eq!(endpoint["health"], json!({"state": "healthy"}));
    let alerting = json!({"url": format!("http://{alerts_at}/hook"), "topics": OPERATIONAL});
    let alerting = api.ok("POST", "/v1/tenants/acme/endpoints", Some(alerting)).await;
    let alerts_delivered =
        format!("/v1/tenants/acme/deliveries?endpoint={}&status=succeeded", alerting["id"].as_str().unwrap());

    // Three failures an hour apart: the third makes the endpoint failing, told once.
    let started = server.clock.now();
    let mut events = Vec::new();
    for hour in 0..3 {
        let event = publish(api, "acme").await["id"].as_str().unwrap().to_owned();
        failing.wait_for(hour + 1).await;
        // Recorded before the clock moves, or its lease would look expired and the attempt be made again.
        let deliveries = format!("/v1/tenants/acme/deliveries?event={event}");
        api.until(&deliveries, "the attempt recorded", |_, page| page["data"][0]["attempts"] == 1).await;
        events.push(event);
        if hour < 2 {
            clock.advance(HOUR);
        }
    }
    let told = alerts.wait_for(1).await;
    assert_eq!(topics(&told), ["endpoint.failing"]);
    let data = &told[0]["data"];
    assert_eq!((data["tenant"].as_str(), data["consecutive_failures"].as_u64()), (Some("acme"), Some(3)), "{data}");
    assert_eq!(data["failing_since"], started.to_rfc3339_millis());
    assert_eq!(data["last_error"], "the endpoint answered 503");
    // Recorded before the clock moves on (see above).
    api.until(&alerts_delivered, "the alert recorded", |_, page| {
        page["data"].as_array().is_some_and(|data| data.len() == 1)
    })
    .await;
    let shown = api.ok("GET", &path, None).await;
    assert_eq!(shown["health"], json!({"state": "failing", "since": started.to_rfc3339_millis()}));
    let listed = api.ok("GET", "/v1/tenants/acme/endpoints", None).await;
    let listed = listed["data"].as_array().unwrap().iter().find(|listed| listed["id"] == endpoint["id"]).unwrap();
    assert_eq!(listed["health"]["state"], "failing");
    let stats = api.ok("GET", &format!("{path}/stats"), None).await;
    assert_eq!(stats["consecutive_failures"], 3);
    assert_eq!(stats["last_success"], Value::Null);
    let hours: Vec<(u64, u64)> = stats["hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hour| (hour["successes"].as_u64().unwrap(), hour["failures"].as_u64().unwrap()))
        .collect();
    assert_eq!(hours, [(0, 1), (0, 1), (0, 1)], "{stats}");

    // Five days on, the retries are due and fail for the last time, and a new event fails its first attempt: the
    // endpoint is disabled, its new delivery kept pending.
    clock.set(started.saturating_add(5 * DAY));
    // A retry by hand wakes the dispatcher, whose claim takes every retry due by the clock.
    let first = delivery_of(api, &events[0]).await;
    api.ok("POST", &format!("/v1/tenants/acme/deliveries/{first}/retry"), None).await;
    failing.wait_for(6).await;
    let fifth_day = publish(api, "acme").await;
    failing.wait_for(7).await;
    let told = alerts.wait_for(5).await;
    let mut counted = topics(&told);
    counted.sort();
    assert_eq!(
        counted,
        ["delivery.exhausted", "delivery.exhausted", "delivery.exhausted", "endpoint.disabled", "endpoint.failing"],
        "{told:#?}"
    );
    let disabled = told.iter().find(|body| body["topic"] == "endpoint.disabled").unwrap();
    assert!(disabled["data"]["reason"].as_str().unwrap().contains("5d"), "{disabled}");
    let exhausted = told.iter().find(|body| body["topic"] == "delivery.exhausted").unwrap();
    assert_eq!(
        (exhausted["data"]["attempts"].as_u64(), exhausted["data"]["last_status"].as_u64()),
        (Some(2), Some(503))
    );
    let shown = api.until(&path, "disabled", |_, shown| shown["enabled"] == false).await;
    assert_eq!(shown["health"]["state"], "disabled");
    assert_eq!(shown["health"]["since"], server.clock.now().to_rfc3339_millis());
    assert!(shown["health"]["reason"].as_str().unwrap().starts_with("every attempt failed for 5d"), "{shown}");
    let pending =
        api.ok("GET", &format!("/v1/tenants/acme/deliveries?event={}", fifth_day["id"].as_str().unwrap()), None).await;
    assert_eq!(pending["data"][0]["status"], "pending", "{pending}");

    // Enabled again, with the receiver back: the pending delivery goes out and the recovery is told.
    failing.status.store(200, Ordering::SeqCst);
    let enabled = api.ok("PATCH", &path, Some(json!({"enabled": true}))).await;
    assert_eq!(enabled["health"], json!({"state": "healthy"}));
    let held = delivery_of(api, fifth_day["id"].as_str().unwrap()).await;
    api.ok("POST", &format!("/v1/tenants/acme/deliveries/{held}/retry"), None).await;
    failing.wait_for(8).await;
    publish(api, "acme").await;
    failing.wait_for(9).await;
    let told = alerts.wait_for(6).await;
    assert_eq!(told[5]["topic"], "endpoint.recovered", "{told:?}");
    let stats =
        api.until(&format!("{path}/stats"), "two successes", |_, stats| stats["consecutive_failures"] == 0).await;
    assert_eq!(stats["last_success"], server.clock.now().to_rfc3339_millis());
    // The alerts' own deliveries count for nothing: the alerting endpoint has no attempts in its health.
    let listed = api.ok("GET", "/v1/tenants/acme/endpoints", None).await;
    let alerting = listed["data"].as_array().unwrap().iter().find(|endpoint| endpoint["id"] != shown["id"]).unwrap();
    let alerting_stats =
        api.ok("GET", &format!("/v1/tenants/acme/endpoints/{}/stats", alerting["id"].as_str().unwrap()), None).await;
    assert_eq!(alerting_stats["hours"], json!([]), "{alerting_stats}");
    // Tenants cannot publish operational events themselves.
    let (status, refused) =
        api.call("POST", "/v1/tenants/acme/events", Some(json!({"topic": "endpoint.failing", "data": {}}))).await;
    assert_eq!((status, refused["code"].as_str()), (422, Some("reserved_topic")), "{refused}");

    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_portals_banner_enables_an_endpoint_hookline_disabled_and_sends_again_what_failed() {
    on_each_backend("revive", revive).await;
}

async fn revive(postgres: Option<&Postgres>) {
    let dir = data_dir("revive");
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(1_893_456_000_000)));
    let server = start(config(&dir, postgres), Arc::clone(&clock)).await;
    let api = &server.api;
    let (receiver, address) = Receiver::start(503).await;
    api.ok("POST", "/v1/tenants", Some(json!({"id": "acme", "name": "Acme"}))).await;
    let body = json!({"url": format!("http://{address}/hook"), "topics": ["pdf.processed"], "retry_schedule": []});
    let endpoint = api.ok("POST", "/v1/tenants/acme/endpoints", Some(body)).await["id"].as_str().unwrap().to_owned();
    // A delivery that fails for good now, another five days later: the endpoint is disabled.
    for (count, day) in [(1, 0), (2, 5)] {
        clock.set(Timestamp::from_unix_millis(1_893_456_000_000).saturating_add(day * DAY));
        let event = publish(api, "acme").await["id"].as_str().unwrap().to_owned();
        receiver.wait_for(count).await;
        let deliveries = format!("/v1/tenants/acme/deliveries?event={event}");
        api.until(&deliveries, "failed", |_, page| page["data"][0]["status"] == "failed").await;
    }
    let path = format!("/v1/tenants/acme/endpoints/{endpoint}");
    api.until(&path, "disabled", |_, shown| shown["health"]["state"] == "disabled").await;

    // The portal's Webhooks page says so, with one action that enables it and sends both again.
    let link = api.ok("POST", "/v1/tenants/acme/portal-links", None).await;
    let token = link["url"].as_str().unwrap().split_once("#token=").unwrap().1.to_owned();
    let (_, _, cookie, _) = api.browse("/portal/session", Some(&format!("token={token}")), "").await;
    let cookie = cookie.unwrap().split(';').next().unwrap().to_owned();
    let (status, _, _, page) = api.browse("/portal/webhooks", None, &cookie).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!(r#"data-disabled="{endpoint}""#)), "{page}");
    assert!(page.contains(&format!("failing since {}", Timestamp::from_unix_millis(1_893_456_000_000).to_rfc3339())));
    let csrf = page.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    let revive = format!("/portal/webhooks/{endpoint}/revive");
    let (status, _, _, _) = api.browse(&revive, Some("csrf="), &cookie).await;
    assert_eq!(status, 403, "no CSRF token");
    receiver.status.store(200, Ordering::SeqCst);
    // The user comes a minute later: a recovery takes what failed up to now, and the clock stands still here.
    clock.advance(Duration::from_secs(60));
    let (status, _, _, page) = api.browse(&revive, Some(&format!("csrf={csrf}")), &cookie).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("2 that failed are being sent again"), "{page}");
    receiver.wait_for(4).await;
    let shown = api.ok("GET", &path, None).await;
    assert_eq!(shown["enabled"], true);
    api.until("/v1/tenants/acme/deliveries?status=succeeded", "both sent again", |_, page| {
        page["data"].as_array().is_some_and(|data| data.len() == 2)
    })
    .await;
    let (_, _, _, page) = api.browse("/portal/webhooks", None, &cookie).await;
    assert!(!page.contains("data-disabled="), "no banner once enabled: {page}");

    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_operators_endpoint_gets_every_tenants_operational_events() {
    on_each_backend("operator", operator).await;
}

async fn operator(postgres: Option<&Postgres>) {
    let dir = data_dir("operator");
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(1_893_456_000_000)));
    let first = start(config(&dir, postgres), Arc::clone(&clock)).await;
    let (operator, operator_at) = Receiver::start(200).await;
    first.api.ok("POST", "/v1/tenants", Some(json!({"id": "ops", "name": "Operator"}))).await;
    let ops = first
        .api
        .ok(
            "POST",
            "/v1/tenants/ops/endpoints",
            Some(json!({"url": format!("http://{operator_at}/hook"), "topics": OPERATIONAL})),
        )
        .await;
    first.stop().await;

    let config = Config {
        operational_endpoint: Some(ops["id"].as_str().unwrap().parse().unwrap()),
        failing_after: 1,
        ..config(&dir, postgres)
    };
    let server = start(config, clock).await;
    let (failing, failing_at) = Receiver::start(500).await;
    server.api.ok("POST", "/v1/tenants", Some(json!({"id": "acme", "name": "Acme"}))).await;
    let endpoint =
        json!({"url": format!("http://{failing_at}/hook"), "topics": ["pdf.processed"], "retry_schedule": []});
    server.api.ok("POST", "/v1/tenants/acme/endpoints", Some(endpoint)).await;
    publish(&server.api, "acme").await;
    failing.wait_for(1).await;
    let told = operator.wait_for(2).await;
    let mut counted = topics(&told);
    counted.sort();
    assert_eq!(counted, ["delivery.exhausted", "endpoint.failing"]);
    assert!(told.iter().all(|body| body["data"]["tenant"] == "acme"), "{told:?}");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
