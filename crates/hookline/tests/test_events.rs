//! Test events: one event of a topic sent to one endpoint alone, with the topic's example or the given data,
//! delivered, signed and logged like any other and marked as a test; through the API and `hookline endpoint test`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{ADMIN_KEY, Hookline, Receiver, Reply, TempDir};

const WAIT: Duration = Duration::from_secs(15);

async fn send_test(server: &Hookline, key: &str, tenant: &str, endpoint: &str, body: Value) -> support::Answer {
    let path = format!("/v1/tenants/{tenant}/endpoints/{endpoint}/test");
    server.call("POST", &path, Some(key), Some(&body.to_string())).await
}

#[tokio::test]
async fn a_test_event_reaches_one_endpoint_signed_and_marked_as_a_test() {
    let dir = TempDir::new("test-events");
    let server = Hookline::start(dir.path()).await;
    let (tested, other) = (Receiver::start().await, Receiver::start().await);
    let key = server.tenant("acme").await;
    let endpoint = server
        .endpoint(
            "acme",
            json!({"url": tested.url, "topics": ["pdf.processed", "end_user.reviewed"], "signing": ["heron"]}),
        )
        .await;
    let (endpoint_id, secret) = (endpoint["id"].as_str().unwrap(), endpoint["secret"].as_str().unwrap());
    server.endpoint("acme", json!({"url": other.url, "topics": ["pdf.processed"]})).await;

    // With the topic's example, sent with a tenant key.
    let sent = send_test(&server, &key, "acme", endpoint_id, json!({"topic": "pdf.processed"})).await;
    assert_eq!(sent.status, 202, "{:?}", sent.body);
    assert_eq!((&sent.body["endpoint"], &sent.body["topic"]), (&json!(endpoint_id), &json!("pdf.processed")));
    let delivery = sent.body["delivery"].as_str().unwrap().to_owned();
    let event = sent.body["event"].as_str().unwrap().to_owned();
    let got = tested.wait_for(1, WAIT).await;
    let body = got[0].json();
    assert_eq!(body["topic"], "pdf.processed");
    assert_eq!(body["data"]["end_user_id"], "myenduser", "the seeded example: {body}");
    assert_eq!(body["meta"], json!({"test": true}));
    assert_eq!(got[0].header("hookline-delivery-id"), Some(delivery.as_str()));
    let signature = hookline_verify::heron_signature(secret, &got[0].body);
    assert_eq!(got[0].header("heron-signature"), Some(signature.as_str()));

    // One delivery only, to this endpoint, marked as a test; its attempt too.
    let deliveries = server.admin("GET", &format!("/v1/tenants/acme/deliveries?event={event}"), None).await;
    assert_eq!(deliveries.body["data"].as_array().unwrap().len(), 1, "{:?}", deliveries.body);
    let detail = server.wait_for_deliveries("acme", &event, "succeeded", 1).await;
    assert_eq!(detail["data"][0]["origin"], "test");
    let logged = server.delivery("acme", &delivery).await;
    assert_eq!(logged["attempts"][0]["cause"], "test");
    assert!(other.requests().is_empty(), "another endpoint got the test event");

    // With data of its own.
    let data = json!({"end_user_id": "u_42", "status": "reviewed"});
    let sent =
        send_test(&server, ADMIN_KEY, "acme", endpoint_id, json!({"topic": "end_user.reviewed", "data": data})).await;
    assert_eq!(sent.status, 202, "{:?}", sent.body);
    let got = tested.wait_for(2, WAIT).await;
    assert_eq!(got[1].json()["data"], data);

    // A publish still reaches both, and the test events reached one.
    server.publish("acme", "pdf.processed", "{}").await;
    let got = other.wait_for(1, WAIT).await;
    assert_eq!(got[0].json()["meta"], Value::Null);
}

#[tokio::test]
async fn a_test_event_refuses_what_it_cannot_send_and_other_tenants() {
    let dir = TempDir::new("test-events-refused");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;
    let acme_key = server.tenant("acme").await;
    let globex_key = server.tenant("globex").await;
    server.admin("POST", "/v1/topics", Some(json!({"name": "quote.ready"}))).await;
    let endpoint =
        server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed", "quote.ready"]})).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let test = |topic: &str| json!({"topic": topic});
    let path = format!("/v1/tenants/acme/endpoints/{endpoint_id}/test");
    #[rustfmt::skip]
    let cases: Vec<(support::Answer, u16, &str)> = vec![
        (send_test(&server, &acme_key, "acme", endpoint_id, test("pdf.failed")).await, 422, "topic_not_subscribed"),
        (send_test(&server, &acme_key, "acme", endpoint_id, test("Not A Topic")).await, 422, "invalid_topic"),
        (send_test(&server, &acme_key, "acme", endpoint_id, test("quote.ready")).await, 422, "no_example"),
        (send_test(&server, &acme_key, "acme", "ep_01m95j3yvbj6n95m7p5wv56vg1", test("pdf.processed")).await, 404, "not_found"),
        (send_test(&server, &acme_key, "acme", "nonsense", test("pdf.processed")).await, 404, "not_found"),
        (send_test(&server, &globex_key, "acme", endpoint_id, test("pdf.processed")).await, 404, "tenant_not_found"),
        (send_test(&server, &globex_key, "globex", endpoint_id, test("pdf.processed")).await, 404, "not_found"),
        (server.call("POST", &path, Some(&acme_key), Some("{")).await, 400, "invalid_json"),
        (server.call("POST", &path, Some(&acme_key), Some(r#"{"topic":"pdf.processed","extra":1}"#)).await, 400, "invalid_field"),
        (server.call("POST", &path, Some(&acme_key), Some(r#"{"data":{}}"#)).await, 400, "invalid_field"),
    ];
    for (answer, status, code) in cases {
        assert_eq!((answer.status, answer.code()), (status, code), "{:?}", answer.body);
        assert!(answer.body["detail"].as_str().is_some_and(|detail| !detail.is_empty()));
    }
    let disabled = server
        .admin("PATCH", &format!("/v1/tenants/acme/endpoints/{endpoint_id}"), Some(json!({"enabled": false})))
        .await;
    assert_eq!(disabled.status, 200);
    let refused = send_test(&server, &acme_key, "acme", endpoint_id, test("pdf.processed")).await;
    assert_eq!((refused.status, refused.code()), (409, "endpoint_disabled"), "{:?}", refused.body);
    // Nothing was sent, and no event was stored for any of them.
    let events = server.admin("GET", "/v1/tenants/acme/events", None).await;
    assert_eq!(events.body["data"].as_array().unwrap().len(), 0, "{:?}", events.body);
    assert!(receiver.requests().is_empty());
}

/// `hookline endpoint test` waits for the first attempt and prints what the receiver did with it.
#[tokio::test]
async fn the_cli_sends_a_test_event_and_prints_the_receivers_answer() {
    let dir = TempDir::new("test-events-cli");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;
    server.tenant("acme").await;
    let endpoint = server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed"]})).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let run = |extra: &'static [&'static str]| {
        let mut command = tokio::process::Command::new(support::binary());
        command
            .args(["endpoint", "test", "acme", endpoint_id, "pdf.processed"])
            .args(extra)
            .args(["--server", &server.url, "--key", ADMIN_KEY])
            .env_remove("HOOKLINE_KEY");
        async move { tokio::time::timeout(Duration::from_secs(30), command.output()).await.unwrap().unwrap() }
    };
    receiver.answer(Reply::status(200).with_body("thanks"));
    let accepted = run(&[]).await;
    let said = String::from_utf8_lossy(&accepted.stdout);
    assert!(accepted.status.success(), "{said}{}", String::from_utf8_lossy(&accepted.stderr));
    assert!(said.lines().any(|line| line.starts_with("status") && line.ends_with("200")), "{said}");
    assert!(said.lines().any(|line| line.starts_with("answer") && line.ends_with("thanks")), "{said}");
    assert!(said.lines().any(|line| line.starts_with("delivery") && line.contains("del_")), "{said}");

    receiver.answer(Reply::status(500).with_body("broken"));
    let refused = run(&["--data", r#"{"pdf_id":"p_9"}"#]).await;
    let said = String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success(), "{said}");
    assert!(said.lines().any(|line| line.starts_with("status") && line.ends_with("500")), "{said}");
    assert!(said.contains("the endpoint answered 500") && said.contains("broken"), "{said}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("did not accept the test event"));
    assert_eq!(receiver.requests()[1].json()["data"], json!({"pdf_id": "p_9"}));
}
