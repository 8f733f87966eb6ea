//! Retention end to end, through the public API of a real server on a manual clock: what is older than the
//! retention period is purged in the background, and a read of it says `410 purged`, while newer events, and
//! ids retention never reached, answer as before.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use hookline_core::clock::{Clock, ManualClock};
use hookline_core::time::Timestamp;
use hookline_server::{Config, Server};
use serde_json::json;
use support::Api;
use tokio_util::sync::CancellationToken;

const ADMIN_KEY: &str = "hka_retention_test_key_0123456789";

/// Publishes an event and waits until its one delivery succeeded; returns the event's and the delivery's ids.
async fn deliver(api: &Api) -> (String, String) {
    let event = json!({"topic": "pdf.processed", "data": {"pdf_id": "p"}});
    let accepted = api.ok("POST", "/v1/tenants/acme/events", Some(event)).await;
    let event = accepted["id"].as_str().unwrap().to_owned();
    let page = api
        .until(&format!("/v1/tenants/acme/deliveries?event={event}"), "the delivery succeeded", |_, page| {
            page["data"][0]["status"] == "succeeded"
        })
        .await;
    (event, page["data"][0]["id"].as_str().unwrap().to_owned())
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
    let api = Api::new(server.local_addr().unwrap(), ADMIN_KEY);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(server.run(shutdown.clone()));
    let hook = receiver().await;

    assert_eq!(api.call("POST", "/v1/tenants", Some(json!({"id": "acme", "name": "Acme"}))).await.0, 201);
    let endpoint = json!({"url": format!("http://{hook}/hook"), "topics": ["pdf.processed"]});
    assert_eq!(api.call("POST", "/v1/tenants/acme/endpoints", Some(endpoint)).await.0, 201);
    let (old_event, old_delivery) = deliver(&api).await;
    // Two days later by the store's clock: the first event is past the one-day retention, a new one is not.
    clock.advance(Duration::from_secs(2 * 86_400));
    let (new_event, new_delivery) = deliver(&api).await;

    let purged = api.until(&format!("/v1/tenants/acme/events/{old_event}"), "purged", |status, _| status == 410).await;
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
