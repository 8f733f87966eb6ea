//! Crash safety of a real `hookline serve`: SIGKILL while delivering or publishing loses nothing accepted, and
//! SIGTERM drains in-flight deliveries and exits cleanly.
//!
//! A slow suite: it runs only with `HOOKLINE_TEST_SLOW=1` (as `scripts/test` and CI set it).

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Hookline, Publisher, Receiver, Reply, TempDir, event_id, requests_per_event, wait_until_all_seen};
use tokio::task::JoinSet;

/// Whether slow tests are on; prints how to turn them on when they are not.
fn slow_tests_enabled(test: &str) -> bool {
    let enabled = std::env::var("HOOKLINE_TEST_SLOW").is_ok_and(|value| value == "1");
    if !enabled {
        eprintln!("skipping {test}: a slow crash test; set HOOKLINE_TEST_SLOW=1 to run it");
    }
    enabled
}

/// How long the deliveries of a killed server may take once it is back. On PostgreSQL, a statement the killed
/// process had already sent (a claim, say) still runs and commits after it died, possibly after the restarted
/// node has released its leases at start-up: those deliveries fall due when their lease ends, three delivery
/// timeouts and 10 s later (55 s with the default 15 s timeout). They are late, not lost.
const AFTER_A_KILL: Duration = Duration::from_secs(60);

/// Waits until the receiver has seen every accepted event; past `limit`, fails with what the store says of the
/// deliveries that have not succeeded, so a failure shows why they are late.
async fn wait_until_all_delivered(
    server: &Hookline,
    receiver: &Receiver,
    accepted: &HashSet<String>,
    limit: Duration,
) -> Vec<support::Received> {
    let waiting = wait_until_all_seen(receiver, accepted, limit + Duration::from_secs(60));
    match tokio::time::timeout(limit, waiting).await {
        Ok(requests) => requests,
        Err(_) => {
            let seen: HashSet<String> = receiver.requests().iter().map(event_id).collect();
            let missing: Vec<&String> = accepted.difference(&seen).collect();
            let deliveries = server.all_deliveries("acme", None).await;
            let late: Vec<&Value> = deliveries.iter().filter(|delivery| delivery["status"] != "succeeded").collect();
            panic!(
                "not every accepted event delivered within {limit:?}: {} missing ({missing:?}); deliveries not succeeded: {late:?}",
                missing.len()
            );
        }
    }
}

/// Asserts that every delivery of `tenant` succeeded and that there is one per accepted event.
async fn assert_all_succeeded(server: &Hookline, tenant: &str, accepted: &HashSet<String>) {
    server.wait_for_none(tenant, "pending", Duration::from_secs(15)).await;
    let deliveries = server.all_deliveries(tenant, None).await;
    let not_succeeded: Vec<&Value> = deliveries.iter().filter(|delivery| delivery["status"] != "succeeded").collect();
    assert!(not_succeeded.is_empty(), "deliveries that did not succeed: {not_succeeded:?}");
    let events: HashSet<String> =
        deliveries.iter().map(|delivery| delivery["event"].as_str().unwrap().to_owned()).collect();
    assert!(accepted.is_subset(&events), "accepted events without a delivery: {:?}", accepted.difference(&events));
}

#[tokio::test]
async fn sigkill_mid_delivery_loses_no_accepted_event() {
    if !slow_tests_enabled("sigkill_mid_delivery_loses_no_accepted_event") {
        return;
    }
    let dir = TempDir::new("crash-kill-delivery");
    let mut server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    receiver.answer(Reply::status(200).after(Duration::from_millis(300)));
    // Some early attempts fail, so retries are scheduled when the kill comes.
    let failures = 40;
    receiver.script(vec![Reply::status(500).after(Duration::from_millis(300)); failures]);
    let schedule = vec!["200ms"; 10];
    server
        .endpoint(
            "acme",
            json!({"url": format!("{}/hook", receiver.url), "topics": ["pdf.processed"], "retry_schedule": schedule}),
        )
        .await;

    let publisher = Publisher::new(&server);
    let mut publishes = JoinSet::new();
    for number in 0..300 {
        let publisher = publisher.clone();
        publishes.spawn(async move {
            publisher.publish("acme", "pdf.processed", &json!({"pdf_id": format!("pdf_{number}")})).await
        });
    }
    let mut accepted = HashSet::new();
    while let Some(published) = publishes.join_next().await {
        accepted.insert(published.unwrap().expect("every publish before the kill is accepted"));
    }
    assert_eq!(accepted.len(), 300);

    // Deliveries are under way: some answered, dozens waiting on the slow receiver, the rest queued.
    let before_kill = receiver.wait_for(80, Duration::from_secs(15)).await.len();
    server.kill().await;
    server.restart().await;

    wait_until_all_delivered(&server, &receiver, &accepted, AFTER_A_KILL).await;
    assert_all_succeeded(&server, "acme", &accepted).await;
    let requests = receiver.requests();
    let sent_again = requests_per_event(&requests).values().filter(|count| **count > 1).count();
    let extra = requests.len() - accepted.len();
    eprintln!(
        "sigkill mid-delivery: {} events accepted, {before_kill} requests before the kill, {} in all; {extra} beyond \
         one per event, of which {failures} retry a scripted 500, so {} duplicates caused by the kill; \
         {sent_again} events were sent more than once",
        accepted.len(),
        requests.len(),
        extra.saturating_sub(failures),
    );
}

#[tokio::test]
async fn sigkill_while_publishing_keeps_every_accepted_event() {
    if !slow_tests_enabled("sigkill_while_publishing_keeps_every_accepted_event") {
        return;
    }
    let dir = TempDir::new("crash-kill-publish");
    let mut server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    server.endpoint("acme", json!({"url": format!("{}/hook", receiver.url), "topics": ["pdf.processed"]})).await;

    let publisher = Publisher::new(&server);
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let (progress, mut accepted_count) = tokio::sync::watch::channel(0usize);
    let progress = Arc::new(progress);
    let mut publishers = JoinSet::new();
    for task in 0..6 {
        let (publisher, accepted, progress) = (publisher.clone(), Arc::clone(&accepted), Arc::clone(&progress));
        publishers.spawn(async move {
            // Publish until the server goes away; a request that fails without a 202 promises nothing.
            for number in 0u64.. {
                let data = json!({"pdf_id": format!("pdf_{task}_{number}"), "pages": number});
                match publisher.publish("acme", "pdf.processed", &data).await {
                    Ok(id) => {
                        let mut accepted = accepted.lock().unwrap();
                        accepted.insert(id);
                        progress.send_replace(accepted.len());
                    }
                    Err(error) => return error,
                }
            }
            String::from("ran out of numbers")
        });
    }
    tokio::time::timeout(Duration::from_secs(15), accepted_count.wait_for(|count| *count >= 200))
        .await
        .expect("200 events accepted within 15s")
        .unwrap();
    server.kill().await;
    let mut failures = Vec::new();
    while let Some(failure) = publishers.join_next().await {
        failures.push(failure.unwrap());
    }
    let accepted = accepted.lock().unwrap().clone();
    eprintln!(
        "publishing through a kill: {} accepted before it; the publishers stopped on {failures:?}",
        accepted.len()
    );

    server.restart().await;
    for event in &accepted {
        let found = server.admin("GET", &format!("/v1/tenants/acme/events/{event}"), None).await;
        assert_eq!(found.status, 200, "accepted event {event} is gone after the kill: {:?}", found.body);
    }
    wait_until_all_delivered(&server, &receiver, &accepted, AFTER_A_KILL).await;
    assert_all_succeeded(&server, "acme", &accepted).await;
}

#[tokio::test]
async fn sigterm_finishes_in_flight_deliveries_and_exits_cleanly() {
    if !slow_tests_enabled("sigterm_finishes_in_flight_deliveries_and_exits_cleanly") {
        return;
    }
    let dir = TempDir::new("crash-term");
    // Two attempts at a time to the endpoint: at SIGTERM two are in flight and the rest are queued.
    let mut server = Hookline::start_with(
        dir.path(),
        &[("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_ENDPOINT_CONCURRENCY", "2")],
    )
    .await;
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    receiver.answer(Reply::status(200).after(Duration::from_secs(1)));
    server.endpoint("acme", json!({"url": format!("{}/hook", receiver.url), "topics": ["pdf.processed"]})).await;
    let mut accepted = HashSet::new();
    for number in 0..6 {
        accepted.insert(server.publish("acme", "pdf.processed", &format!(r#"{{"pdf_id":"pdf_{number}"}}"#)).await);
    }
    let in_flight: HashSet<String> = receiver.wait_for(2, Duration::from_secs(10)).await.iter().map(event_id).collect();

    let status = server.terminate().await;
    assert!(status.success(), "hookline exited with {status} after SIGTERM");
    // The attempts in flight finished and were recorded before the process exited.
    let at_exit = receiver.requests();
    let sent_before_exit: HashSet<String> = at_exit.iter().map(event_id).collect();
    assert!(in_flight.is_subset(&sent_before_exit));

    server.restart().await;
    for event in &in_flight {
        let done = server.wait_for_deliveries("acme", event, "succeeded", 1).await;
        assert_eq!(done["data"][0]["attempts"], 1, "{done:?}");
    }
    // A sentinel published after the restart: once it has arrived, anything the restart would re-send has too.
    let sentinel = server.publish("acme", "pdf.processed", r#"{"pdf_id":"sentinel"}"#).await;
    accepted.insert(sentinel);
    let requests = wait_until_all_delivered(&server, &receiver, &accepted, Duration::from_secs(15)).await;
    assert_all_succeeded(&server, "acme", &accepted).await;
    let per_event = requests_per_event(&receiver.requests());
    let sent_twice: Vec<_> = per_event.iter().filter(|(_, count)| **count > 1).collect();
    assert!(sent_twice.is_empty(), "delivered again after a clean shutdown: {sent_twice:?}");
    assert_eq!(requests.len(), accepted.len());
}
