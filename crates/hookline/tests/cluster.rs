//! Several `hookline serve` nodes on one PostgreSQL database: they share the work, a killed node loses nothing,
//! concurrent claims never attempt a delivery twice, and a database outage makes nodes unready until it ends.
//!
//! Runs in the PostgreSQL pass of the suite (`HOOKLINE_TEST_BACKEND=postgres`, as `scripts/test` does when a
//! PostgreSQL server is at hand); each test makes a database of its own and drops it.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{
    Hookline, Publisher, Receiver, Reply, TempDir, TestDatabase, event_id, postgres_database, requests_per_event,
    wait_until_all_seen,
};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Short attempts, so leases (three times the timeout and 10 s more) of a killed node run out quickly.
const NODE_ENV: &[(&str, &str)] =
    &[("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_DELIVERY_TIMEOUT", "1s")];

async fn start_nodes(database: &Arc<TestDatabase>, dirs: &[TempDir]) -> Vec<Hookline> {
    let mut nodes = Vec::new();
    for dir in dirs {
        nodes.push(Hookline::start_node(dir.path(), Some(Arc::clone(database)), NODE_ENV).await);
    }
    nodes
}

#[tokio::test]
async fn three_nodes_share_the_work_and_a_killed_node_loses_nothing() {
    let Some(database) = postgres_database().await else { return };
    let dirs = [TempDir::new("node-a"), TempDir::new("node-b"), TempDir::new("node-c")];
    let mut nodes = start_nodes(&database, &dirs).await;
    nodes[0].tenant("acme").await;
    let receiver = Receiver::start().await;
    // A receiver slow enough that every node has attempts in flight at any moment, the killed one included.
    receiver.answer(Reply::status(200).after(Duration::from_millis(50)));
    nodes[1].endpoint("acme", json!({"url": format!("{}/hook", receiver.url), "topics": ["pdf.processed"]})).await;

    // Publishers spread over the three nodes; once a node is gone, its publishers move on to the next one.
    const EVENTS: usize = 3000;
    let publishers: Vec<Publisher> = nodes.iter().map(Publisher::new).collect();
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let (progress, mut accepted_count) = watch::channel(0usize);
    let progress = Arc::new(progress);
    let mut tasks = JoinSet::new();
    for task in 0..24usize {
        let (publishers, accepted, progress) = (publishers.clone(), Arc::clone(&accepted), Arc::clone(&progress));
        tasks.spawn(async move {
            let mut refused = 0;
            for number in (task..EVENTS).step_by(24) {
                let data = json!({"pdf_id": format!("pdf_{number}")});
                // A publish whose answer was lost (its node died after committing) is sent again elsewhere; the
                // idempotency key makes that the same event, whichever node it reaches.
                let key = format!("pdf_{number}");
                let mut node = number % 3;
                loop {
                    match publishers[node].publish_once("acme", "pdf.processed", &data, Some(&key)).await {
                        Ok(id) => {
                            let mut accepted = accepted.lock().unwrap();
                            accepted.insert(id);
                            progress.send_replace(accepted.len());
                            break;
                        }
                        // Not acknowledged: try the same event on another node.
                        Err(_) => {
                            refused += 1;
                            node = (node + 1) % 3;
                        }
                    }
                }
            }
            refused
        });
    }
    tokio::time::timeout(Duration::from_secs(60), accepted_count.wait_for(|count| *count >= EVENTS / 3))
        .await
        .expect("a third of the events accepted within 60s")
        .unwrap();
    nodes[2].kill().await;
    let killed_node = std::fs::read_to_string(dirs[2].path().join("node-id")).unwrap();
    let held = database
        .query(&format!(
            "SELECT COUNT(*) FROM deliveries WHERE lease_node = '{}' AND lease IS NOT NULL",
            killed_node.trim()
        ))
        .await;
    let held: usize = held[0].parse().unwrap();
    assert!(held > 0, "the killed node held no lease, so this test proves nothing about lease expiry");
    let mut refused = 0;
    while let Some(task) = tasks.join_next().await {
        refused += task.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), EVENTS, "every event was accepted by one node or another");

    wait_until_all_seen(&receiver, &accepted, Duration::from_secs(60)).await;
    for node in &nodes[..2] {
        node.wait_for_none("acme", "pending", Duration::from_secs(30)).await;
    }
    // Every delivery is settled, so every request there will be has arrived.
    let requests = receiver.requests();
    let deliveries = nodes[0].all_deliveries("acme", None).await;
    assert_eq!(deliveries.len(), EVENTS, "one delivery per event");
    let stuck: Vec<_> = deliveries.iter().filter(|delivery| delivery["status"] != "succeeded").collect();
    assert!(stuck.is_empty(), "deliveries that did not succeed: {stuck:?}");
    let duplicates = requests.len() - accepted.len();
    let events_twice = requests_per_event(&requests).values().filter(|count| **count > 1).count();
    eprintln!(
        "three nodes, one killed: {EVENTS} events accepted ({refused} publishes refused by the dying node and \
         retried elsewhere), {held} deliveries leased by the killed node, {} requests, {duplicates} duplicates \
         ({events_twice} events sent more than once)",
        requests.len()
    );
    // Duplicates come only from attempts the killed node had in flight: a small fraction at most.
    assert!(duplicates * 20 < EVENTS, "{duplicates} duplicates out of {EVENTS} events is not rare");
}

#[tokio::test]
async fn two_nodes_claiming_at_once_never_attempt_a_delivery_twice() {
    let Some(database) = postgres_database().await else { return };
    let dirs = [TempDir::new("claim-a"), TempDir::new("claim-b")];
    let mut nodes = start_nodes(&database, &dirs).await;
    nodes[0].tenant("acme").await;
    let receiver = Receiver::start().await;
    // Ten endpoints, so each event makes ten deliveries for the two dispatchers to race for.
    for number in 0..10 {
        nodes[0]
            .endpoint("acme", json!({"url": format!("{}/hook/{number}", receiver.url), "topics": ["pdf.processed"]}))
            .await;
    }
    const EVENTS: usize = 400;
    let publishers: Vec<Publisher> = nodes.iter().map(Publisher::new).collect();
    let mut tasks = JoinSet::new();
    for number in 0..EVENTS {
        let publisher = publishers[number % 2].clone();
        tasks.spawn(async move {
            publisher.publish("acme", "pdf.processed", &json!({"pdf_id": format!("pdf_{number}")})).await
        });
    }
    let mut accepted = HashSet::new();
    while let Some(published) = tasks.join_next().await {
        accepted.insert(published.unwrap().expect("every publish is accepted"));
    }
    receiver.wait_for(EVENTS * 10, Duration::from_secs(60)).await;
    nodes[0].wait_for_none("acme", "pending", Duration::from_secs(30)).await;
    // Stop both nodes before counting: a node stops once its attempts in flight have ended, so a second attempt of
    // any delivery, if one was made, has reached the receiver by then.
    for node in &mut nodes {
        let stopped = node.terminate().await;
        assert!(stopped.success(), "a node stopped with {stopped}");
    }
    let requests = receiver.requests();

    let mut seen = HashSet::new();
    let twice: Vec<String> = requests
        .iter()
        .map(|request| request.header("hookline-delivery-id").unwrap().to_owned())
        .filter(|delivery| !seen.insert(delivery.clone()))
        .collect();
    let events: HashSet<String> = requests.iter().map(event_id).collect();
    assert_eq!(events, accepted);
    // Exactly one successful attempt per delivery. Nodes use a 1 s timeout here, so on a loaded machine an attempt
    // can time out: its retry is a second attempt (and, if the receiver took the first after all, a second
    // request), but never a race between nodes.
    let succeeded = database.query("SELECT COUNT(*) FROM attempts WHERE response_status BETWEEN 200 AND 299").await;
    assert_eq!(succeeded, [(EVENTS * 10).to_string()], "one successful attempt per delivery");
    let retries = database
        .query(
            "SELECT a.delivery_id || ' attempt ' || a.number || ' after ' || COALESCE(p.error_kind, 'no error') || ' '
                || COALESCE(p.response_status::text, '') || ' ' || COALESCE(p.error_detail, '')
             FROM attempts a JOIN attempts p ON p.delivery_id = a.delivery_id AND p.number = a.number - 1",
        )
        .await;
    let after_success: Vec<&String> = retries.iter().filter(|retry| retry.contains(" after no error 2")).collect();
    assert!(after_success.is_empty(), "attempts made after a successful one: {after_success:?}");
    let raced: Vec<&String> =
        twice.iter().filter(|delivery| !retries.iter().any(|retry| retry.starts_with(delivery.as_str()))).collect();
    assert!(raced.is_empty(), "deliveries sent twice with no failed attempt between: {raced:?}");
    assert_eq!(requests.len() - twice.len(), EVENTS * 10);
    if !retries.is_empty() {
        eprintln!("attempts made again after a failure (not a race): {retries:?}");
    }
}

/// A TCP relay between a node and PostgreSQL that the test can cut (closing every connection and refusing new
/// ones) and restore: a real network outage, as a node sees one.
struct Relay {
    port: u16,
    cut: watch::Sender<bool>,
    /// How many connections it has turned away while cut.
    refused: watch::Sender<usize>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, _) = watch::channel(false);
        let (refused, _) = watch::channel(0);
        let (cut_state, refused_count) = (cut.clone(), refused.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cut = cut_state.subscribe();
                if *cut.borrow() {
                    refused_count.send_modify(|count| *count += 1);
                    continue; // Dropped: the connection closes at once.
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Relay { port, cut, refused }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }

    fn refused(&self) -> usize {
        *self.refused.borrow()
    }

    /// Waits until the relay has turned away `count` connections in all.
    async fn wait_for_refused(&self, count: usize, limit: Duration) {
        let mut refused = self.refused.subscribe();
        let reached = tokio::time::timeout(limit, refused.wait_for(|refused| *refused >= count)).await;
        assert!(reached.is_ok(), "{count} connections turned away not within {limit:?}, only {}", self.refused());
    }
}

#[tokio::test]
async fn a_database_outage_makes_nodes_unready_and_loses_nothing_acknowledged() {
    let Some(database) = postgres_database().await else { return };
    let server_address = {
        let config: tokio_postgres::Config = database.url.parse().unwrap();
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            other => panic!("the tests need PostgreSQL over TCP, not {other:?}"),
        };
        format!("{host}:{}", config.get_ports().first().copied().unwrap_or(5432))
    };
    let relay = Relay::start(server_address.clone()).await;
    let relay_url = database.url.replace(&server_address, &format!("127.0.0.1:{}", relay.port));
    let via_relay = TestDatabase::alias(&database, relay_url);
    let dir = TempDir::new("outage");
    let node = Hookline::start_node(dir.path(), Some(via_relay), NODE_ENV).await;
    node.tenant("acme").await;
    let receiver = Receiver::start().await;
    node.endpoint("acme", json!({"url": format!("{}/hook", receiver.url), "topics": ["pdf.processed"]})).await;
    let mut accepted = HashSet::new();
    for number in 0..20 {
        accepted.insert(node.publish("acme", "pdf.processed", &format!("{{\"pdf_id\":\"before_{number}\"}}")).await);
    }
    assert_eq!(node.call("GET", "/readyz", None, None).await.status, 200);

    relay.set_cut(true);
    let publisher = Publisher::new(&node);
    let refused = publisher.publish("acme", "pdf.processed", &json!({"pdf_id": "during"})).await.unwrap_err();
    assert!(refused.starts_with("status 503"), "{refused}");
    assert!(refused.contains("database_unavailable") && refused.contains("retry"), "{refused}");
    let ready = node.call("GET", "/readyz", None, None).await;
    assert_eq!((ready.status, ready.code()), (503, "database_unavailable"), "{:?}", ready.body);
    assert_eq!(node.call("GET", "/healthz", None, None).await.status, 200, "the process itself is alive");
    // The outage lasts until the node has been turned away again on its own, after the test's calls: its
    // background work (the work listener reconnecting, the dispatcher claiming again) has met the outage too.
    relay.wait_for_refused(relay.refused() + 1, Duration::from_secs(10)).await;

    relay.set_cut(false);
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.call("GET", "/readyz", None, None).await.status != 200 {
        assert!(Instant::now() < deadline, "the node did not become ready again within 30s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for number in 0..20 {
        accepted.insert(node.publish("acme", "pdf.processed", &format!("{{\"pdf_id\":\"after_{number}\"}}")).await);
    }
    wait_until_all_seen(&receiver, &accepted, Duration::from_secs(30)).await;
    node.wait_for_none("acme", "pending", Duration::from_secs(30)).await;
    let pdfs: HashSet<String> = receiver
        .requests()
        .iter()
        .map(|request| request.json()["data"]["pdf_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!pdfs.contains("during"), "the event refused with a 503 was not delivered");
}

#[tokio::test]
async fn nodes_starting_together_on_an_empty_database_migrate_and_seed_once() {
    let Some(database) = postgres_database().await else { return };
    let dirs = [TempDir::new("start-a"), TempDir::new("start-b"), TempDir::new("start-c")];
    let (first, second, third) = tokio::join!(
        Hookline::start_node(dirs[0].path(), Some(Arc::clone(&database)), NODE_ENV),
        Hookline::start_node(dirs[1].path(), Some(Arc::clone(&database)), NODE_ENV),
        Hookline::start_node(dirs[2].path(), Some(Arc::clone(&database)), NODE_ENV),
    );
    let nodes = [first, second, third];
    // One version row, and the last migration's index is there: every migration ran, once.
    assert_eq!(database.query("SELECT COUNT(*) FROM schema_version").await, ["1"]);
    let last =
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'topics' AND column_name = 'template'";
    assert_eq!(database.query(last).await, ["1"]);
    for node in &nodes {
        let topics = node.admin("GET", "/v1/topics", None).await;
        assert_eq!(
            topics.body["data"].as_array().unwrap().len(),
            15,
            "Heron's eleven and the four operational topics, once: {:?}",
            topics.body
        );
        assert_eq!(node.call("GET", "/readyz", None, None).await.status, 200);
    }
    // What one node writes, every node reads.
    nodes[0].tenant("acme").await;
    let found = nodes[2].admin("GET", "/v1/tenants/acme", None).await;
    assert_eq!(found.status, 200, "{:?}", found.body);
}

#[tokio::test]
async fn an_api_node_and_a_worker_node_split_the_work_and_a_publish_wakes_the_worker() {
    let Some(database) = postgres_database().await else { return };
    let (api_dir, worker_dir) = (TempDir::new("role-api"), TempDir::new("role-worker"));
    let api_env = [NODE_ENV, &[("HOOKLINE_ROLE", "api")]].concat();
    let api = Hookline::start_node(api_dir.path(), Some(Arc::clone(&database)), &api_env).await;
    api.tenant("acme").await;
    let receiver = Receiver::start().await;
    api.endpoint("acme", json!({"url": format!("{}/hook", receiver.url), "topics": ["pdf.processed"]})).await;

    // An API node accepts events but does not deliver them: the delivery waits for the worker (which node
    // claimed each delivery is checked once both are delivered).
    let first = api.publish("acme", "pdf.processed", r#"{"pdf_id":"pdf_1"}"#).await;
    assert_eq!(api.deliveries_of("acme", &first).await[0]["status"], "pending");

    // A worker node serves no API, delivers what is queued, and then wakes for each new publish: without the
    // notification it would look at the queue again only after its 30 s idle wait.
    let worker_env = [NODE_ENV, &[("HOOKLINE_ROLE", "worker")]].concat();
    let worker = Hookline::start_node(worker_dir.path(), Some(Arc::clone(&database)), &worker_env).await;
    let refused = worker.admin("GET", "/v1/tenants", None).await;
    assert_eq!((refused.status, refused.code()), (404, "no_route"), "{:?}", refused.body);
    assert!(refused.body["detail"].as_str().unwrap().contains("--role worker"), "{:?}", refused.body);
    assert_eq!(worker.call("GET", "/readyz", None, None).await.status, 200);
    receiver.wait_for(1, Duration::from_secs(10)).await;
    // The worker looked at the queue again right after claiming the first delivery, as its attempt went out, and
    // found nothing; by the time that attempt is recorded it waits idle (nothing is due): publish through the API
    // node then.
    api.wait_for_deliveries("acme", &first, "succeeded", 1).await;
    let published = Instant::now();
    let second = api.publish("acme", "pdf.processed", r#"{"pdf_id":"pdf_2"}"#).await;
    let requests = receiver.wait_for(2, Duration::from_secs(10)).await;
    let woke_after = published.elapsed();
    assert_eq!(event_id(&requests[1]), second);
    assert!(woke_after < Duration::from_secs(10), "the worker was not woken: {woke_after:?}");
    eprintln!("publish on the api node to delivery by the worker node: {woke_after:?}");

    // Both deliveries were claimed by the worker, and attempted once: the API node sent nothing. A delivery keeps
    // the node of its last claim once its attempt is recorded.
    api.wait_for_deliveries("acme", &second, "succeeded", 1).await;
    let worker_node = std::fs::read_to_string(worker_dir.path().join("node-id")).unwrap();
    let claimed_by = database.query("SELECT lease_node || ' ' || attempts FROM deliveries ORDER BY created_at").await;
    let once_by_worker = format!("{} 1", worker_node.trim());
    assert_eq!(claimed_by, [once_by_worker.as_str(); 2], "which node made how many attempts of each delivery");
    assert_eq!(receiver.requests().len(), 2, "{:?}", receiver.requests());
}
