//! Recovering an endpoint: after its receiver was down, every delivery of a window that failed for good is
//! queued again in the background and delivered, marked as recovered; one still pending is not sent twice.
//! Through the API and `hookline endpoint recover`.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use support::{ADMIN_KEY, Hookline, Receiver, Reply, TempDir, event_id};

const WAIT: Duration = Duration::from_secs(20);

/// The server runs its background jobs (recoveries among them) every 100 ms here.
async fn server(dir: &TempDir) -> Hookline {
    let env = [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_PURGE_INTERVAL", "100ms")];
    Hookline::start_with(dir.path(), &env).await
}

#[tokio::test]
async fn a_recovery_sends_an_endpoints_failed_deliveries_again_and_not_its_pending_ones() {
    let dir = TempDir::new("recover");
    let server = server(&dir).await;
    let receiver = Receiver::start().await;
    let key = server.tenant("acme").await;
    // One attempt each, then failed; the schedule's one retry is an hour away.
    let endpoint = server
        .endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed"], "retry_schedule": ["1h"]}))
        .await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let since = server.admin("GET", "/v1/tenants/acme", None).await.body["created"].as_str().unwrap().to_owned();
    // Gone for the first five (failed for good), busy for the sixth (pending, its retry an hour away).
    receiver.script(vec![Reply::status(410); 5]);
    let mut failed = HashSet::new();
    for number in 0..5 {
        failed.insert(server.publish("acme", "pdf.processed", &format!(r#"{{"n":{number}}}"#)).await);
        receiver.wait_for(number + 1, WAIT).await;
    }
    receiver.answer(Reply::status(503));
    let pending = server.publish("acme", "pdf.processed", r#"{"n":5}"#).await;
    receiver.wait_for(6, WAIT).await;
    for event in &failed {
        server.wait_for_deliveries("acme", event, "failed", 1).await;
    }
    server.wait_for_deliveries("acme", &pending, "pending", 1).await;

    // The receiver is back; recover everything since the tenant was made.
    receiver.answer(Reply::status(200));
    let path = format!("/v1/tenants/acme/endpoints/{endpoint_id}/recover");
    let started = server.call("POST", &path, Some(&key), Some(&json!({"since": since}).to_string())).await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    assert_eq!((&started.body["total"], &started.body["endpoint"]), (&json!(5), &json!(endpoint_id)));
    let recovery = started.body["id"].as_str().unwrap().to_owned();
    assert!(recovery.starts_with("rcv_"), "{recovery}");
    let got = receiver
        .wait_until(WAIT, "every failed delivery sent again", |requests| {
            let again: HashSet<String> = requests[6..].iter().map(event_id).collect();
            failed.is_subset(&again)
        })
        .await;
    assert!(!got[6..].iter().any(|request| event_id(request) == pending), "the pending delivery was sent twice");
    for event in &failed {
        let succeeded = server.wait_for_deliveries("acme", event, "succeeded", 1).await;
        let delivery = server.delivery("acme", succeeded["data"][0]["id"].as_str().unwrap()).await;
        assert_eq!(delivery["attempts"][1]["cause"], "recover", "{delivery}");
    }
    let progress = server.call("GET", &format!("/v1/tenants/acme/recoveries/{recovery}"), Some(&key), None).await;
    assert_eq!((progress.status, &progress.body["queued"]), (200, &json!(5)), "{:?}", progress.body);
    assert!(progress.body["finished"].is_string(), "{:?}", progress.body);

    // From the CLI, following it to its end: nothing failed is left.
    let output = tokio::process::Command::new(support::binary())
        .args(["endpoint", "recover", "acme", &endpoint_id, "--since", &since])
        .args(["--server", &server.url, "--key", ADMIN_KEY])
        .env_remove("HOOKLINE_KEY")
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}{}", String::from_utf8_lossy(&output.stderr));
    assert!(said.contains("0 of 0 failed deliveries queued again, done"), "{said}");
}

#[tokio::test]
async fn a_recovery_refuses_a_bad_window_and_other_tenants() {
    let dir = TempDir::new("recover-refused");
    let server = server(&dir).await;
    let receiver = Receiver::start().await;
    let acme_key = server.tenant("acme").await;
    let globex_key = server.tenant("globex").await;
    let endpoint = server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed"]})).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let path = format!("/v1/tenants/acme/endpoints/{endpoint_id}/recover");
    let window = |since: &str, until: &str| json!({"since": since, "until": until}).to_string();
    #[rustfmt::skip]
    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        (&acme_key, path.clone(), Some(window("2026-12-02T00:00:00Z", "2026-12-01T00:00:00Z")), 422, "invalid_window"),
        (&acme_key, path.clone(), Some(window("2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z")), 422, "invalid_window"),
        (&acme_key, path.clone(), Some(window("2026-12-01T00:00:00Z", "2999-01-01T00:00:00Z")), 422, "invalid_window"),
        (&acme_key, path.clone(), Some(json!({"since": "yesterday"}).to_string()), 422, "invalid_window"),
        (&acme_key, path.clone(), Some(json!({"until": "2026-12-01T00:00:00Z"}).to_string()), 400, "invalid_field"),
        (&acme_key, path.clone(), Some("{".to_owned()), 400, "invalid_json"),
        (&acme_key, "/v1/tenants/acme/endpoints/ep_01m95j3yvbj6n95m7p5wv56vg1/recover".to_owned(), Some(json!({"since": "2026-12-01T00:00:00Z"}).to_string()), 404, "not_found"),
        (&globex_key, path.clone(), Some(json!({"since": "2026-12-01T00:00:00Z"}).to_string()), 404, "tenant_not_found"),
        (&globex_key, format!("/v1/tenants/globex/endpoints/{endpoint_id}/recover"), Some(json!({"since": "2026-12-01T00:00:00Z"}).to_string()), 404, "not_found"),
        (&acme_key, "/v1/tenants/acme/recoveries/rcv_01m95j3yvbj6n95m7p5wv56vg1".to_owned(), None, 404, "not_found"),
        (&acme_key, "/v1/tenants/acme/recoveries/nonsense".to_owned(), None, 404, "not_found"),
    ];
    for (key, path, body, status, code) in cases {
        let method = if body.is_some() { "POST" } else { "GET" };
        let answer = server.call(method, &path, Some(key), body.as_deref()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{path} {body:?}: {:?}", answer.body);
        assert!(answer.body["detail"].as_str().is_some_and(|detail| !detail.is_empty()));
    }
    // Another tenant cannot read a recovery either.
    let body = json!({"since": "2026-12-01T00:00:00Z"}).to_string();
    let started = server.call("POST", &path, Some(&acme_key), Some(&body)).await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    let recovery = started.body["id"].as_str().unwrap();
    let read = server.call("GET", &format!("/v1/tenants/globex/recoveries/{recovery}"), Some(&globex_key), None).await;
    assert_eq!((read.status, read.code()), (404, "not_found"));
}
