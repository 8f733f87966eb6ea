//! End-to-end delivery through a real `hookline serve`: fan-out, topic filtering, signing and the delivery log.

mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use hookline_verify::{Scheme, Verifier};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::{ADMIN_KEY, Hookline, Receiver, Reply, TempDir};

#[tokio::test]
async fn an_event_fans_out_to_every_subscribed_endpoint_and_no_other() {
    let dir = TempDir::new("fanout");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let (first, second, other_topic) = (Receiver::start().await, Receiver::start().await, Receiver::start().await);
    for receiver in [&first, &second] {
        server.endpoint("acme", json!({"url": format!("{}/hook", receiver.url), "topics": ["pdf.processed"]})).await;
    }
    server.endpoint("acme", json!({"url": other_topic.url, "topics": ["pdf.failed"]})).await;
    let event = server.publish("acme", "pdf.processed", r#"{"pdf_id":"pdf_1","pages":3}"#).await;
    for receiver in [&first, &second] {
        let got = receiver.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(got[0].header("hookline-event-id"), Some(event.as_str()));
        let body = got[0].json();
        assert_eq!(body["topic"], "pdf.processed");
        assert_eq!(got[0].text().split(r#""data":"#).nth(1).unwrap(), r#"{"pdf_id":"pdf_1","pages":3},"meta":null}"#);
    }
    server.wait_for_deliveries("acme", &event, "succeeded", 2).await;
    assert!(other_topic.requests().is_empty());
}

#[tokio::test]
async fn an_endpoint_gets_every_topic_it_subscribed_to_and_no_other() {
    let dir = TempDir::new("topics");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed", "pdf.failed"]})).await;
    let processed = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    let skipped = server.publish("acme", "end_user.processed", r#"{"n":2}"#).await;
    let failed = server.publish("acme", "pdf.failed", r#"{"n":3}"#).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let mut topics: Vec<String> =
        got.iter().map(|request| request.json()["topic"].as_str().unwrap().to_owned()).collect();
    topics.sort();
    assert_eq!(topics, ["pdf.failed", "pdf.processed"]);
    for event in [&processed, &failed] {
        server.wait_for_deliveries("acme", event, "succeeded", 1).await;
    }
    assert!(server.deliveries_of("acme", &skipped).await.is_empty());
    assert_eq!(receiver.requests().len(), 2);
}

#[tokio::test]
async fn disabled_endpoints_get_nothing() {
    let dir = TempDir::new("disabled");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let (enabled, created_disabled, later_disabled) =
        (Receiver::start().await, Receiver::start().await, Receiver::start().await);
    server.endpoint("acme", json!({"url": enabled.url, "topics": ["pdf.processed"]})).await;
    let off = server
        .endpoint("acme", json!({"url": created_disabled.url, "topics": ["pdf.processed"], "enabled": false}))
        .await;
    assert_eq!(off["enabled"], false);
    let later = server.endpoint("acme", json!({"url": later_disabled.url, "topics": ["pdf.processed"]})).await;
    let path = format!("/v1/tenants/acme/endpoints/{}", later["id"].as_str().unwrap());
    let patched = server.admin("PATCH", &path, Some(json!({"enabled": false}))).await;
    assert_eq!((patched.status, &patched.body["enabled"]), (200, &json!(false)), "{:?}", patched.body);

    let accepted = server
        .call("POST", "/v1/tenants/acme/events", Some(ADMIN_KEY), Some(r#"{"topic":"pdf.processed","data":{}}"#))
        .await;
    assert_eq!((accepted.status, &accepted.body["endpoints"]), (202, &json!(1)), "{:?}", accepted.body);
    let event = accepted.body["id"].as_str().unwrap();
    enabled.wait_for(1, Duration::from_secs(10)).await;
    server.wait_for_deliveries("acme", event, "succeeded", 1).await;
    assert_eq!(server.deliveries_of("acme", event).await.len(), 1);
    assert!(created_disabled.requests().is_empty());
    assert!(later_disabled.requests().is_empty());
}

/// True for `2021-05-20T09:23:53+00:00`: UTC, whole seconds, `+00:00`.
fn is_utc_iso8601_seconds(text: &str) -> bool {
    let digits_at = |positions: &[usize]| positions.iter().all(|&at| text.as_bytes()[at].is_ascii_digit());
    text.len() == 25
        && text.ends_with("+00:00")
        && digits_at(&[0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
        && [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')]
            .iter()
            .all(|&(at, byte)| text.as_bytes()[at] == byte)
}

#[tokio::test]
async fn the_envelope_carries_the_published_data_byte_for_byte() {
    let dir = TempDir::new("envelope");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed"]})).await;
    let cases = [
        // (data as published, meta as published or None, data as sent, meta as sent)
        (
            r#"{ "zeta": 1, "alpha": { "price": 1.50, "big": 1e5, "neg": -0.0 }, "list": [3, 2, 1] }"#,
            None,
            r#"{"zeta":1,"alpha":{"price":1.50,"big":1e5,"neg":-0.0},"list":[3,2,1]}"#,
            "null",
        ),
        (
            r#"{"b":2,"a":1,"E":1E+2}"#,
            Some(r#"{ "trace": "t-1", "ratio": 2.50 }"#),
            r#"{"b":2,"a":1,"E":1E+2}"#,
            r#"{"trace":"t-1","ratio":2.50}"#,
        ),
        (r#"[1.0, "two", null, true]"#, Some("null"), r#"[1.0,"two",null,true]"#, "null"),
    ];
    for (index, (data, meta, sent_data, sent_meta)) in cases.iter().enumerate() {
        let body = match meta {
            Some(meta) => format!(r#"{{"topic":"pdf.processed","data":{data},"meta":{meta}}}"#),
            None => format!(r#"{{"topic":"pdf.processed","data":{data}}}"#),
        };
        let accepted = server.publish_raw("acme", ADMIN_KEY, &body, &[]).await;
        assert_eq!(accepted.status, 202, "{:?}", accepted.body);
        let created = accepted.body["created"].as_str().unwrap();
        assert!(is_utc_iso8601_seconds(created), "{created}");
        let got = receiver.wait_for(index + 1, Duration::from_secs(10)).await;
        let expected =
            format!(r#"{{"topic":"pdf.processed","created":"{created}","data":{sent_data},"meta":{sent_meta}}}"#);
        assert_eq!(got[index].text(), expected);
    }
}

#[tokio::test]
async fn the_data_format_sends_the_bare_data() {
    let dir = TempDir::new("data-format");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    let created =
        server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed"], "format": "data"})).await;
    assert_eq!(created["format"], "data");
    server.publish("acme", "pdf.processed", r#"{ "quote_id": "q_1", "premium": 120.50, "z": {"b": 1, "a": 2} }"#).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].text(), r#"{"quote_id":"q_1","premium":120.50,"z":{"b":1,"a":2}}"#);
}

#[tokio::test]
async fn every_request_carries_its_ids_and_the_signatures_of_its_exact_body() {
    let dir = TempDir::new("headers");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let (legacy, standard) = (Receiver::start().await, Receiver::start().await);
    let legacy_endpoint = server
        .endpoint("acme", json!({"url": legacy.url, "topics": ["pdf.processed"], "signing": ["heron", "herald"]}))
        .await;
    let standard_endpoint = server.endpoint("acme", json!({"url": standard.url, "topics": ["pdf.processed"]})).await;
    let legacy_secret = legacy_endpoint["secret"].as_str().unwrap();
    let standard_secret = standard_endpoint["secret"].as_str().unwrap();
    assert!(legacy_secret.starts_with("sec_"), "{legacy_secret}");
    assert!(standard_secret.starts_with("whsec_"), "{standard_secret}");
    assert_eq!(standard_endpoint["signing"], json!(["standard"]));

    let event = server.publish("acme", "pdf.processed", r#"{"pdf_id":"pdf_1","name":"Café"}"#).await;
    let deliveries = server.wait_for_deliveries("acme", &event, "succeeded", 2).await;
    let delivery_for = |endpoint: &Value| {
        let deliveries = deliveries["data"].as_array().unwrap();
        let found = deliveries.iter().find(|delivery| delivery["endpoint"] == endpoint["id"]).unwrap();
        found["id"].as_str().unwrap().to_owned()
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    for (receiver, endpoint) in [(&legacy, &legacy_endpoint), (&standard, &standard_endpoint)] {
        let request = receiver.wait_for(1, Duration::from_secs(10)).await.remove(0);
        assert_eq!(request.header("content-type"), Some("application/json"));
        let agent = request.header("user-agent").unwrap();
        assert!(agent.starts_with("Hookline/"), "{agent}");
        assert_eq!(request.header("hookline-event-id"), Some(event.as_str()));
        assert_eq!(request.header("hookline-delivery-id"), Some(delivery_for(endpoint).as_str()));
    }

    let request = &legacy.requests()[0];
    // A heron endpoint gets non-ASCII text escaped as Python writes it.
    assert!(request.text().contains(r#""name":"Caf\u00e9""#), "{}", request.text());
    let expected_heron = hookline_verify::heron_signature(legacy_secret, &request.body);
    let expected_herald = hookline_verify::herald_signature(legacy_secret, &request.body);
    assert_eq!(request.header("heron-signature"), Some(expected_heron.as_str()));
    assert_eq!(request.header("x-herald-signature"), Some(expected_herald.as_str()));
    // The same values computed from their definitions, as a receiver without hookline-verify would.
    let mut mac = Hmac::<Sha256>::new_from_slice(legacy_secret.as_bytes()).unwrap();
    mac.update(&request.body);
    assert_eq!(expected_heron, BASE64.encode(mac.finalize().into_bytes()));
    let herald_digest = Sha256::new().chain_update(legacy_secret).chain_update(&request.body).finalize();
    assert_eq!(expected_herald, BASE64.encode(herald_digest));
    let headers: Vec<(&str, &str)> =
        request.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    for scheme in [Scheme::Heron, Scheme::Herald] {
        let verified =
            Verifier::new(scheme, legacy_secret).unwrap().verify(headers.iter().copied(), &request.body, now);
        assert!(verified.is_ok(), "{scheme:?}: {verified:?}");
    }
    assert!(request.header("webhook-signature").is_none());

    let request = &standard.requests()[0];
    assert!(request.text().contains(r#""name":"Café""#), "{}", request.text());
    assert_eq!(request.header("webhook-id"), Some(event.as_str()));
    let headers: Vec<(&str, &str)> =
        request.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    let verified =
        Verifier::new(Scheme::Standard, standard_secret).unwrap().verify(headers.iter().copied(), &request.body, now);
    assert!(verified.is_ok(), "{verified:?}");
    let tampered =
        Verifier::new(Scheme::Standard, standard_secret).unwrap().verify(headers.iter().copied(), b"{}", now);
    assert!(tampered.is_err());
    assert!(request.header("heron-signature").is_none() && request.header("x-herald-signature").is_none());
}

#[tokio::test]
async fn a_slow_endpoint_does_not_delay_a_fast_one() {
    let dir = TempDir::new("slow");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let (slow, fast) = (Receiver::start().await, Receiver::start().await);
    slow.answer(Reply::status(200).after(Duration::from_secs(3)));
    server.endpoint("acme", json!({"url": slow.url, "topics": ["pdf.processed"]})).await;
    server.endpoint("acme", json!({"url": fast.url, "topics": ["pdf.processed"]})).await;
    let published = Instant::now();
    let first = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    let got = fast.wait_for(1, Duration::from_secs(2)).await;
    assert_eq!(got[0].header("hookline-event-id"), Some(first.as_str()));
    assert!(got[0].at.duration_since(published) < Duration::from_millis(1500));
    // The slow receiver now holds its request for 3 s; another event still reaches the fast one at once.
    slow.wait_for(1, Duration::from_secs(2)).await;
    let published = Instant::now();
    let second = server.publish("acme", "pdf.processed", r#"{"n":2}"#).await;
    let got = fast.wait_for(2, Duration::from_secs(2)).await;
    assert_eq!(got[1].header("hookline-event-id"), Some(second.as_str()));
    let waited = got[1].at.duration_since(published);
    assert!(waited < Duration::from_millis(1500), "the fast endpoint waited {waited:?}");
    assert!(slow.requests()[0].at.elapsed() < Duration::from_secs(3), "the slow reply was still pending");
}

#[tokio::test]
async fn an_endpoint_at_its_concurrency_cap_with_a_queue_does_not_hold_up_the_others() {
    let dir = TempDir::new("busy");
    let env = [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_ENDPOINT_CONCURRENCY", "2")];
    let server = Hookline::start_with(dir.path(), &env).await;
    server.tenant("acme").await;
    let (slow, fast) = (Receiver::start().await, Receiver::start().await);
    slow.answer(Reply::status(200).after(Duration::from_secs(3)));
    server.endpoint("acme", json!({"url": slow.url, "topics": ["pdf.processed"]})).await;
    server.endpoint("acme", json!({"url": fast.url, "topics": ["pdf.processed"]})).await;
    // The slow endpoint takes two attempts and then has eight queued behind them, due before any new event's.
    for number in 0..10 {
        server.publish("acme", "pdf.processed", &format!(r#"{{"n":{number}}}"#)).await;
    }
    slow.wait_for(2, Duration::from_secs(2)).await;
    fast.wait_for(10, Duration::from_secs(2)).await;
    let published = Instant::now();
    let late = server.publish("acme", "pdf.processed", r#"{"n":10}"#).await;
    let got = fast.wait_for(11, Duration::from_secs(2)).await;
    assert_eq!(got[10].header("hookline-event-id"), Some(late.as_str()));
    let waited = got[10].at.duration_since(published);
    assert!(waited < Duration::from_millis(1500), "the fast endpoint waited {waited:?} behind the busy one");
    assert_eq!(slow.requests().len(), 2, "the slow endpoint never has more than its cap in flight");
}

#[tokio::test]
async fn the_same_idempotency_key_never_makes_a_second_event() {
    let dir = TempDir::new("idempotent");
    let server = Hookline::start(dir.path()).await;
    let acme_key = server.tenant("acme").await;
    server.tenant("globex").await;
    let receiver = Receiver::start().await;
    server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed"]})).await;
    let body = r#"{"topic":"pdf.processed","data":{"pdf_id":"pdf_1"}}"#;
    let key = |value: &str| [("idempotency-key", value.to_owned())];

    let first = server.publish_raw("acme", &acme_key, body, &key("job-42")).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = server.publish_raw("acme", &acme_key, body, &key("job-42")).await;
    assert_eq!(again.status, 202, "{:?}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    // The admin key publishing for the same tenant hits the same key.
    let by_admin = server.publish_raw("acme", ADMIN_KEY, body, &key("job-42")).await;
    assert_eq!((by_admin.status, &by_admin.body["id"]), (202, &first.body["id"]));

    let event = first.body["id"].as_str().unwrap();
    receiver.wait_for(1, Duration::from_secs(10)).await;
    server.wait_for_deliveries("acme", event, "succeeded", 1).await;
    let events = server.admin("GET", "/v1/tenants/acme/events", None).await;
    assert_eq!(events.body["data"].as_array().unwrap().len(), 1, "{:?}", events.body);
    assert_eq!(server.all_deliveries("acme", None).await.len(), 1);

    // The same key with another event is refused, as payment APIs do, whatever differs; nothing is made.
    let refused = [
        r#"{"topic":"pdf.processed","data":{"pdf_id":"pdf_2"}}"#,
        r#"{"topic":"pdf.failed","data":{"pdf_id":"pdf_1"}}"#,
        r#"{"topic":"pdf.processed","data":{"pdf_id":"pdf_1"},"meta":{"attempt":2}}"#,
        r#"{"topic":"pdf.processed","data":{"pdf_id" : "pdf_1", "extra":1}}"#,
    ];
    for other_body in refused {
        let answer = server.publish_raw("acme", &acme_key, other_body, &key("job-42")).await;
        assert_eq!((answer.status, answer.code()), (422, "idempotency_key_reused"), "{other_body}: {:?}", answer.body);
        let detail = answer.body["detail"].as_str().unwrap();
        assert!(detail.contains("\"job-42\"") && detail.contains(event_of(&first)), "{detail}");
    }
    // The same event written with other whitespace is the same event.
    let spaced = server
        .publish_raw(
            "acme",
            &acme_key,
            r#"{ "topic": "pdf.processed", "data": { "pdf_id": "pdf_1" } }"#,
            &key("job-42"),
        )
        .await;
    assert_eq!((spaced.status, &spaced.body["id"]), (202, &first.body["id"]));

    let other = server.publish_raw("acme", &acme_key, body, &key("job-43")).await;
    assert_eq!(other.status, 202);
    assert_ne!(other.body["id"], first.body["id"]);
    assert_eq!(other.header("idempotent-replayed"), None);
    // Keys belong to a tenant: another tenant's "job-42" is its own event.
    let globex = server.publish_raw("globex", ADMIN_KEY, body, &key("job-42")).await;
    assert_eq!(globex.status, 202, "{:?}", globex.body);
    assert_ne!(globex.body["id"], first.body["id"]);
    assert_eq!(globex.header("idempotent-replayed"), None);

    receiver.wait_for(2, Duration::from_secs(10)).await;
    server.wait_for_none("acme", "pending", Duration::from_secs(10)).await;
    assert_eq!(receiver.requests().len(), 2);
}

fn event_of(answer: &support::Answer) -> &str {
    answer.body["id"].as_str().expect("a published event's id")
}

/// Publishes hand deliveries straight to the dispatcher with the endpoint as the store last read it: a change to
/// the endpoint must reach the very next publish.
#[tokio::test]
async fn a_change_to_an_endpoint_applies_from_the_next_publish() {
    let dir = TempDir::new("endpoint-change");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let (before, after) = (Receiver::start().await, Receiver::start().await);
    let endpoint =
        server.endpoint("acme", json!({"url": before.url, "topics": ["pdf.processed"], "signing": ["heron"]})).await;
    let path = format!("/v1/tenants/acme/endpoints/{}", endpoint["id"].as_str().unwrap());
    for number in 0..3 {
        let event = server.publish("acme", "pdf.processed", &format!(r#"{{"n":{number}}}"#)).await;
        server.wait_for_deliveries("acme", &event, "succeeded", 1).await;
    }
    assert_eq!(before.requests().len(), 3);

    let secret = "sec_0123456789abcdefXYZ";
    let patched = server.admin("PATCH", &path, Some(json!({"url": after.url, "secret": secret}))).await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    let event = server.publish("acme", "pdf.processed", r#"{"n":3}"#).await;
    let request = after.wait_for(1, Duration::from_secs(10)).await.remove(0);
    assert_eq!(request.header("hookline-event-id"), Some(event.as_str()));
    let expected = hookline_verify::heron_signature(secret, &request.body);
    assert_eq!(request.header("heron-signature"), Some(expected.as_str()), "signed with the new secret");
    assert_eq!(before.requests().len(), 3, "nothing more goes to the old url");

    let disabled = server.admin("PATCH", &path, Some(json!({"enabled": false}))).await;
    assert_eq!(disabled.status, 200, "{:?}", disabled.body);
    let accepted = server
        .call("POST", "/v1/tenants/acme/events", Some(ADMIN_KEY), Some(r#"{"topic":"pdf.processed","data":{}}"#))
        .await;
    assert_eq!((accepted.status, &accepted.body["endpoints"]), (202, &json!(0)), "{:?}", accepted.body);
    // A request is only ever made for a delivery, and a publish writes its deliveries before it answers: with none
    // written for this event, nothing is on its way to either url.
    let event = accepted.body["id"].as_str().unwrap();
    assert_eq!(server.deliveries_of("acme", event).await, Vec::<Value>::new(), "a disabled endpoint gets nothing");
    assert_eq!((before.requests().len(), after.requests().len()), (3, 1));
}
