//! Outbound connections through a real `hookline serve`: requests to an endpoint reuse pooled connections, and
//! the attempts in flight are bounded per endpoint, per tenant and for the whole process.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use support::{Hookline, TempDir};

/// What a set of sinks saw: connections accepted, requests answered, and the most requests in flight at once.
#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    answered: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// A real HTTP server on 127.0.0.1 that answers 200 after `delay`, counting into `counters` (which several sinks
/// may share).
async fn sink(delay: Duration, counters: Arc<Counters>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            counters.connections.fetch_add(1, Ordering::SeqCst);
            let counters = Arc::clone(&counters);
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let counters = Arc::clone(&counters);
                    async move {
                        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        counters.most_in_flight.fetch_max(now, Ordering::SeqCst);
                        let _ = request.into_body().collect().await;
                        tokio::time::sleep(delay).await;
                        counters.in_flight.fetch_sub(1, Ordering::SeqCst);
                        counters.answered.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    url
}

/// Publishes `count` events for tenant `acme` and waits until every delivery succeeded.
async fn publish_and_settle(server: &Hookline, count: usize) {
    for number in 0..count {
        server.publish("acme", "pdf.processed", &format!(r#"{{"n":{number}}}"#)).await;
    }
    server.wait_for_none("acme", "pending", Duration::from_secs(30)).await;
    let failed = server.all_deliveries("acme", Some("failed")).await;
    assert!(failed.is_empty(), "{failed:?}");
}

#[tokio::test]
async fn one_after_another_deliveries_reuse_a_pooled_connection() {
    let dir = TempDir::new("pooled");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let counters = Arc::new(Counters::default());
    let url = sink(Duration::ZERO, Arc::clone(&counters)).await;
    server.endpoint("acme", json!({"url": url, "topics": ["pdf.processed"]})).await;
    for number in 0..10 {
        let event = server.publish("acme", "pdf.processed", &format!(r#"{{"n":{number}}}"#)).await;
        server.wait_for_deliveries("acme", &event, "succeeded", 1).await;
    }
    assert_eq!(counters.answered.load(Ordering::SeqCst), 10);
    let connections = counters.connections.load(Ordering::SeqCst);
    assert!(connections <= 2, "10 deliveries one after another opened {connections} connections; expected one, reused");
}

/// The most attempts in flight at once under `env`, to `endpoints` slow endpoints of one tenant that each get
/// `events` deliveries.
async fn most_in_flight(label: &str, env: &[(&str, &str)], endpoints: usize, events: usize) -> usize {
    let dir = TempDir::new(label);
    let mut env = env.to_vec();
    env.push(("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"));
    let server = Hookline::start_with(dir.path(), &env).await;
    server.tenant("acme").await;
    let counters = Arc::new(Counters::default());
    for _ in 0..endpoints {
        let url = sink(Duration::from_millis(300), Arc::clone(&counters)).await;
        server.endpoint("acme", json!({"url": url, "topics": ["pdf.processed"]})).await;
    }
    publish_and_settle(&server, events).await;
    assert_eq!(counters.answered.load(Ordering::SeqCst), endpoints * events, "{label}");
    counters.most_in_flight.load(Ordering::SeqCst)
}

#[tokio::test]
async fn attempts_in_flight_are_capped_per_endpoint_per_tenant_and_for_the_process() {
    // Per endpoint: at most 3 at a time to one slow endpoint, though 12 are due at once.
    let most = most_in_flight("endpoint-cap", &[("HOOKLINE_ENDPOINT_CONCURRENCY", "3")], 1, 12).await;
    assert_eq!(most, 3, "HOOKLINE_ENDPOINT_CONCURRENCY=3");
    // For the process: at most 2 at a time across two endpoints, each allowed more (and the tenant too).
    let env = [("HOOKLINE_DELIVERY_CONCURRENCY", "2"), ("HOOKLINE_TENANT_CONCURRENCY", "2")];
    assert_eq!(most_in_flight("process-cap", &env, 2, 4).await, 2, "HOOKLINE_DELIVERY_CONCURRENCY=2");
    // For a tenant: by default half of the process's slots, however many endpoints it has.
    let env = [("HOOKLINE_DELIVERY_CONCURRENCY", "6")];
    assert_eq!(most_in_flight("tenant-cap", &env, 3, 4).await, 3, "half of HOOKLINE_DELIVERY_CONCURRENCY=6");
}
