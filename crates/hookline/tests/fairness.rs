//! One tenant must not starve the others: a tenant whose endpoints accept connections and never answer holds
//! attempts in flight until each times out, and before fair shares it could hold every one of the dispatcher's
//! slots while another tenant's deliveries to a healthy receiver waited behind it for minutes.
//!
//! The scenario, through a real `hookline serve` and real receivers: a quick tenant's burst is measured alone,
//! then a slow tenant fills the dispatcher with deliveries to 64 silent endpoints, then the quick tenant's burst
//! is measured again. Its p99 must stay within a few times what it was alone, and the slow tenant's deliveries must
//! all be attempted in the end. On PostgreSQL it runs again with two nodes on one database. And an endpoint that
//! keeps timing out gets fewer slots each round.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Hookline, Publisher, Receiver, TempDir, event_id, postgres_database};
use tokio::task::JoinSet;

/// Each silent attempt holds its slot this long.
const TIMEOUT: &str = "5s";
const SILENT_ENDPOINTS: usize = 64;
/// Every event of the slow tenant goes to each of its silent endpoints: 1,280 attempts, more than the
/// dispatcher's 1,024 slots.
const SLOW_EVENTS: usize = 20;
const QUICK_EVENTS: usize = 500;

/// A receiver that accepts every connection and never answers; counts the connections.
struct Silent {
    url: String,
    connections: Arc<AtomicUsize>,
}

impl Silent {
    async fn start() -> Silent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        Silent { url, connections }
    }
}

/// Publishes `count` events for `tenant` from 8 concurrent publishers; returns when each was accepted.
async fn burst(publisher: &Publisher, tenant: &str, topic: &str, count: usize) -> HashMap<String, Instant> {
    let mut tasks = JoinSet::new();
    for task in 0..8 {
        let (publisher, tenant, topic) = (publisher.clone(), tenant.to_owned(), topic.to_owned());
        tasks.spawn(async move {
            let mut accepted = Vec::new();
            for number in (task..count).step_by(8) {
                let id = publisher.publish(&tenant, &topic, &json!({"number": number})).await.expect("accepted");
                accepted.push((id, Instant::now()));
            }
            accepted
        });
    }
    let mut accepted = HashMap::new();
    while let Some(done) = tasks.join_next().await {
        accepted.extend(done.unwrap());
    }
    accepted
}

/// The 99th percentile of the time from each event's acceptance to its delivery's arrival at `receiver`, once
/// every event in `accepted` has arrived (at most `limit`).
async fn p99_until_delivered(receiver: &Receiver, accepted: &HashMap<String, Instant>, limit: Duration) -> Duration {
    let requests = receiver
        .wait_until(limit, "the quick tenant's burst delivered", |requests| {
            requests.iter().filter(|request| accepted.contains_key(&event_id(request))).count() >= accepted.len()
        })
        .await;
    let mut latencies: Vec<Duration> = requests
        .iter()
        .filter_map(|request| Some(request.at.saturating_duration_since(*accepted.get(&event_id(request))?)))
        .collect();
    latencies.sort();
    latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)]
}

/// The quick tenant's p99 behind the slow one stays within a few times its p99 alone. Slack for a machine's
/// noise: a burst of a debug build alone can take a few hundred milliseconds.
fn assert_fair(alone: Duration, behind: Duration) {
    let bound = (alone * 4).max(Duration::from_millis(1500));
    assert!(behind <= bound, "the quick tenant's p99 went from {alone:?} alone to {behind:?} behind the slow tenant");
}

/// Sets up both tenants on `admin` (any node): the slow one's endpoints retry only after an hour, so that each of its
/// deliveries is attempted once during the test.
async fn tenants(admin: &Hookline, silent: &[Silent], quick: &Receiver) {
    admin.tenant("slow").await;
    admin.tenant("quick").await;
    for receiver in silent {
        let body = json!({"url": receiver.url, "topics": ["pdf.processed"], "retry_schedule": ["1h"]});
        admin.endpoint("slow", body).await;
    }
    admin.endpoint("quick", json!({"url": format!("{}/hook", quick.url), "topics": ["pdf.processed"]})).await;
}

/// Waits until every delivery of the slow tenant has been attempted once.
async fn wait_until_all_attempted(server: &Hookline, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let deliveries = server.all_deliveries("slow", None).await;
        let unattempted = deliveries.iter().filter(|delivery| delivery["attempts"] == json!(0)).count();
        if deliveries.len() == SILENT_ENDPOINTS * SLOW_EVENTS && unattempted == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{unattempted} of the slow tenant's {} deliveries not attempted after {limit:?}",
            deliveries.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs the scenario: `quick_node` takes the quick tenant's publishes, `slow_node` the slow tenant's.
async fn scenario(quick_node: &Hookline, slow_node: &Hookline) {
    let silent: Vec<Silent> = start_silent(SILENT_ENDPOINTS).await;
    let quick = Receiver::start().await;
    tenants(quick_node, &silent, &quick).await;
    let (quick_publisher, slow_publisher) = (Publisher::new(quick_node), Publisher::new(slow_node));

    let accepted = burst(&quick_publisher, "quick", "pdf.processed", QUICK_EVENTS).await;
    let alone = p99_until_delivered(&quick, &accepted, Duration::from_secs(60)).await;

    burst(&slow_publisher, "slow", "pdf.processed", SLOW_EVENTS).await;
    // The slow tenant holds as much as it may before the quick one publishes again.
    let opened = || silent.iter().map(|receiver| receiver.connections.load(Ordering::SeqCst)).sum::<usize>();
    let deadline = Instant::now() + Duration::from_secs(30);
    while opened() < 256 {
        assert!(Instant::now() < deadline, "the silent endpoints got {} connections in 30 s", opened());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let accepted = burst(&quick_publisher, "quick", "pdf.processed", QUICK_EVENTS).await;
    let behind = p99_until_delivered(&quick, &accepted, Duration::from_secs(60)).await;
    eprintln!("quick tenant p99: {alone:?} alone, {behind:?} behind the slow tenant ({} connections held)", opened());
    assert_fair(alone, behind);

    wait_until_all_attempted(quick_node, Duration::from_secs(120)).await;
}

async fn start_silent(count: usize) -> Vec<Silent> {
    let mut silent = Vec::with_capacity(count);
    for _ in 0..count {
        silent.push(Silent::start().await);
    }
    silent
}

fn node_env() -> [(&'static str, &'static str); 2] {
    [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_DELIVERY_TIMEOUT", TIMEOUT)]
}

#[tokio::test]
async fn a_tenant_with_silent_endpoints_does_not_starve_another() {
    let dir = TempDir::new("fairness");
    let server = Hookline::start_with(dir.path(), &node_env()).await;
    scenario(&server, &server).await;
}

#[tokio::test]
async fn two_nodes_share_fairly_on_postgres() {
    let Some(database) = postgres_database().await else { return };
    let dirs = [TempDir::new("fair-node-a"), TempDir::new("fair-node-b")];
    let first = Hookline::start_node(dirs[0].path(), Some(Arc::clone(&database)), &node_env()).await;
    let second = Hookline::start_node(dirs[1].path(), Some(database), &node_env()).await;
    scenario(&first, &second).await;
}

/// An endpoint that keeps timing out gets fewer slots each round until it answers again: a round of 64 silent
/// attempts, then at most 32, and so on, rather than 64 every timeout.
#[tokio::test]
async fn an_endpoint_that_keeps_timing_out_gets_fewer_slots_each_round() {
    let dir = TempDir::new("fairness-throttle");
    let env = [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_DELIVERY_TIMEOUT", "2s")];
    let server = Hookline::start_with(dir.path(), &env).await;
    server.tenant("slow").await;
    let silent = Silent::start().await;
    let accepted = Arc::clone(&silent.connections);
    server.endpoint("slow", json!({"url": silent.url, "topics": ["pdf.processed"], "retry_schedule": ["1h"]})).await;
    // Stamps each new connection's arrival, so that rounds can be told apart by their time, until all 120 came.
    let stamps = Arc::new(std::sync::Mutex::new(Vec::new()));
    let watcher = {
        let (stamps, accepted) = (Arc::clone(&stamps), Arc::clone(&accepted));
        tokio::spawn(async move {
            let mut seen = 0;
            while seen < 120 {
                let now = accepted.load(Ordering::SeqCst);
                for _ in seen..now {
                    stamps.lock().unwrap().push(Instant::now());
                }
                seen = now;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    burst(&Publisher::new(&server), "slow", "pdf.processed", 120).await;
    let attempted = tokio::time::timeout(Duration::from_secs(60), watcher).await;
    assert!(attempted.is_ok(), "{} of 120 attempted in 60 s", accepted.load(Ordering::SeqCst));
    // Rounds: a connection that arrives more than half a timeout (1 s) after the previous one starts a new round.
    let stamps = stamps.lock().unwrap().clone();
    let mut rounds = vec![1usize];
    for pair in stamps.windows(2) {
        if pair[1].duration_since(pair[0]) > Duration::from_secs(1) {
            rounds.push(1);
        } else if let Some(last) = rounds.last_mut() {
            *last += 1;
        }
    }
    eprintln!("connections to the silent endpoint per round: {rounds:?}");
    assert_eq!(rounds.iter().sum::<usize>(), 120);
    assert!(rounds[0] <= 64, "the first round holds the endpoint's 64 slots at most: {rounds:?}");
    assert!(rounds.len() >= 3, "120 deliveries take three rounds or more: {rounds:?}");
    assert!(rounds[1] <= 32, "a round of timeouts halves the endpoint's slots: {rounds:?}");
    assert!(rounds[2] <= 16, "and another halves them again: {rounds:?}");
}
