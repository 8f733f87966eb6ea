//! An endpoint's own request headers: sent on every attempt, masked in every answer and in the delivery log,
//! replaced or removed by a change; names the delivery owns are refused, as are oversized or malformed ones.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Hookline, Receiver, TempDir};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn an_endpoints_own_headers_go_on_every_attempt_and_are_shown_masked() {
    let dir = TempDir::new("headers");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;
    let key = server.tenant("acme").await;
    let body = json!({
        "url": receiver.url, "topics": ["pdf.processed"],
        "headers": {"Authorization": "Bearer abc123xyz", "X-Team": "risk"}
    });
    let created = server.endpoint("acme", body).await;
    assert_eq!(created["headers"], json!({"authorization": "B…z", "x-team": "…"}), "{created}");
    let endpoint = created["id"].as_str().unwrap().to_owned();
    let shown = server.call("GET", &format!("/v1/tenants/acme/endpoints/{endpoint}"), Some(&key), None).await;
    assert_eq!(shown.body["headers"], created["headers"]);
    assert!(!shown.text.contains("abc123"), "a stored value is never read back whole: {}", shown.text);

    let event = server.publish("acme", "pdf.processed", "{}").await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!((got[0].header("authorization"), got[0].header("x-team")), (Some("Bearer abc123xyz"), Some("risk")));
    // A second attempt (sent again by hand) carries them too.
    let delivery =
        server.wait_for_deliveries("acme", &event, "succeeded", 1).await["data"][0]["id"].as_str().unwrap().to_owned();
    server.admin("POST", &format!("/v1/tenants/acme/deliveries/{delivery}/retry"), None).await;
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got[1].header("authorization"), Some("Bearer abc123xyz"));
    let logged = server.delivery("acme", &delivery).await;
    let sent: Vec<(String, String)> = serde_json::from_value(logged["attempts"][0]["request_headers"].clone()).unwrap();
    assert!(sent.contains(&("authorization".to_owned(), "B…z".to_owned())), "{sent:?}");
    assert!(!logged.to_string().contains("abc123"), "the delivery log keeps it masked: {logged}");

    // Replaced, then removed.
    let path = format!("/v1/tenants/acme/endpoints/{endpoint}");
    let replaced =
        server.call("PATCH", &path, Some(&key), Some(&json!({"headers": {"X-Route": "eu-west"}}).to_string())).await;
    assert_eq!((replaced.status, &replaced.body["headers"]), (200, &json!({"x-route": "e…t"})));
    server.publish("acme", "pdf.processed", "{}").await;
    let got = receiver.wait_for(3, WAIT).await;
    assert_eq!((got[2].header("x-route"), got[2].header("authorization")), (Some("eu-west"), None));
    let removed = server.call("PATCH", &path, Some(&key), Some(r#"{"headers":{}}"#)).await;
    assert_eq!(removed.body["headers"], json!({}));
    server.publish("acme", "pdf.processed", "{}").await;
    let got = receiver.wait_for(4, WAIT).await;
    assert_eq!(got[3].header("x-route"), None);
}

#[tokio::test]
async fn headers_the_delivery_owns_or_that_are_malformed_are_refused() {
    let dir = TempDir::new("headers-refused");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;
    server.tenant("acme").await;
    let globex_key = server.tenant("globex").await;
    let with = |headers: Value| json!({"url": receiver.url, "topics": ["pdf.processed"], "headers": headers});
    let many: serde_json::Map<String, Value> = (0..21).map(|index| (format!("x-{index}"), json!("v"))).collect();
    #[rustfmt::skip]
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (with(json!({"Content-Type": "text/plain"})), 422, "invalid_header", "Content-Type"),
        (with(json!({"Host": "evil.example"})), 422, "invalid_header", "Host"),
        (with(json!({"Heron-Signature": "x"})), 422, "invalid_header", "Heron-Signature"),
        (with(json!({"webhook-signature": "v1,x"})), 422, "invalid_header", "webhook-signature"),
        (with(json!({"Hookline-Topic": "x"})), 422, "invalid_header", "Hookline-Topic"),
        (with(json!({"X-Team": "a\r\nInjected: yes"})), 422, "invalid_header", "X-Team"),
        (with(json!({"X Team": "a"})), 422, "invalid_header", "X Team"),
        (with(json!({"X-Long": "x".repeat(1025)})), 422, "invalid_header", "X-Long"),
        (with(Value::Object(many)), 422, "invalid_header", "at most 20"),
        (with(json!({"X-Team": 1})), 400, "invalid_field", ""),
        (with(json!(["X-Team: a"])), 400, "invalid_field", ""),
    ];
    for (body, status, code, named) in cases {
        let refused = server.admin("POST", "/v1/tenants/acme/endpoints", Some(body.clone())).await;
        assert_eq!((refused.status, refused.code()), (status, code), "{body}: {:?}", refused.body);
        assert!(refused.body["detail"].as_str().unwrap().contains(named), "{:?}", refused.body);
    }
    let listed = server.admin("GET", "/v1/tenants/acme/endpoints", None).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 0, "nothing was made");
    let endpoint = server.endpoint("acme", with(json!({"X-Team": "risk"}))).await;
    let path = format!("/v1/tenants/acme/endpoints/{}", endpoint["id"].as_str().unwrap());
    let other = server.call("PATCH", &path, Some(&globex_key), Some(r#"{"headers":{}}"#)).await;
    assert_eq!((other.status, other.code()), (404, "tenant_not_found"));
    let refused = server.admin("PATCH", &path, Some(json!({"headers": {"Content-Length": "1"}}))).await;
    assert_eq!((refused.status, refused.code()), (422, "invalid_header"));
    assert_eq!(server.admin("GET", &path, None).await.body["headers"], json!({"x-team": "…"}), "unchanged");
}
