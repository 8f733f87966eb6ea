//! Retention end to end, through the public API of a real server on a manual clock: what is older than the
//! retention period is purged in the background, and a read of it says `410 purged`, while newer events, and
//! ids retention never reached, answer as before.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use hookline_core::clock::{Clock, ManualClock};
use hookline_core::time::Timestamp;
use hookline_server::{Config, Server};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const ADMIN_KEY: &str = "hka_retention_test_key_0123456789";

struct Api {
    base: String,
    client: Client<HttpConnector, Full<bytes::Bytes>>,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {ADMIN_KEY}"))
            .header("content-type", "application/json")
            .body(Full::from(body.map(|body| body.to_string()).unwrap_or_default()))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Waits until `path` answers `status` (the state the test waits for), for up to ten seconds.
    async fn until(&self, path: &str, status: u16) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (answered, body) = self.call("GET", path, None).await;
            if answered == status {
                return body;
            }
            assert!(tokio::time::Instant::now() < deadline, "{path} still answers {answered}: {body}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Publishes an event and waits until its one delivery succeeded; returns the event's and the delivery's ids.
    async fn deliver(&self) -> (String, String) {
        let (status, accepted) = self
            .call("POST", "/v1/tenants/acme/events", Some(json!({"topic": "pdf.processed", "data": {"pdf_id": "p"}})))
            .await;
        assert_eq!(status, 202, "{accepted}");
        let event = accepted["id"].as_str().unwrap().to_owned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, page) = self.call("GET", &format!("/v1/tenants/acme/deliveries?event={event}"), None).await;
            if let Some(delivery) = page["data"].as_array().and_then(|data| data.first())
                && delivery["status"] == "succeeded"
            {
                return (event, delivery["id"].as_str().unwrap().to_owned());
            }
            assert!(tokio::time::Instant::now() < deadline, "the delivery of {event} did not succeed: {page}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A receiver that answers every webhook with 200.
async fn receiver() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/hook", post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[tokio::test]
async fn events_past_the_retention_period_are_purged_and_reads_of_them_say_so() {
    let data_dir = std::env::temp_dir().join(format!("hookline-retention-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.clone(),
        admin_key: Some(ADMIN_KEY.to_owned()),
        dangerous_allow_private_targets: true,
        retention: Some(Duration::from_secs(86_400)),
        purge_interval: Duration::from_millis(20),
        ..Config::default()
    };
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(1_893_456_000_000)));
    let server = Server::bind_with_clock(config, Arc::clone(&clock) as Arc<dyn Clock>).await.unwrap();
    let api = Api {
        base: format!("http://{}", server.local_addr().unwrap()),
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(server.run(shutdown.clone()));
    let hook = receiver().await;

    assert_eq!(api.call("POST", "/v1/tenants", Some(json!({"id": "acme", "name": "Acme"}))).await.0, 201);
    let endpoint = json!({"url": format!("http://{hook}/hook"), "topics": ["pdf.processed"]});
    assert_eq!(api.call("POST", "/v1/tenants/acme/endpoints", Some(endpoint)).await.0, 201);
    let (old_event, old_delivery) = api.deliver().await;
    // Two days later by the store's clock: the first event is past the one-day retention, a new one is not.
    clock.advance(Duration::from_secs(2 * 86_400));
    let (new_event, new_delivery) = api.deliver().await;

    let purged = api.until(&format!("/v1/tenants/acme/events/{old_event}"), 410).await;
    assert_eq!(purged["code"], "purged", "{purged}");
    let detail = purged["detail"].as_str().unwrap();
    assert!(detail.contains(&old_event) && detail.contains("retention period is 1d"), "{detail}");
    let (status, body) = api.call("GET", &format!("/v1/tenants/acme/deliveries/{old_delivery}"), None).await;
    assert_eq!((status, body["code"].as_str()), (410, Some("purged")), "{body}");
    let (status, body) = api.call("POST", &format!("/v1/tenants/acme/deliveries/{old_delivery}/retry"), None).await;
    assert_eq!((status, body["code"].as_str()), (410, Some("purged")), "{body}");
    let (_, page) = api.call("GET", "/v1/tenants/acme/events", None).await;
    let listed: Vec<&str> =
        page["data"].as_array().unwrap().iter().map(|event| event["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [new_event.as_str()]);

    // What retention has not reached answers as before.
    assert_eq!(api.call("GET", &format!("/v1/tenants/acme/events/{new_event}"), None).await.0, 200);
    assert_eq!(api.call("GET", &format!("/v1/tenants/acme/deliveries/{new_delivery}"), None).await.0, 200);
    let unknown = hookline_core::id::EventId::generate_at(clock.now());
    let (status, body) = api.call("GET", &format!("/v1/tenants/acme/events/{unknown}"), None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{body}");

    shutdown.cancel();
    running.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&data_dir);
}
