//! Retries and the delivery log through a real `hookline serve`: short per-endpoint schedules, identical bodies and
//! signatures on every attempt, the 410 rule, `Retry-After`, manual retries, and typed attempt errors. When each
//! attempt then comes (Herald's three-minute policy, `Retry-After`) is tested without waiting, on a manual clock, in
//! `hookline-dispatch/tests/schedule.rs`.

mod support;

use std::time::{Duration, Instant};

use hookline_core::time::Timestamp;
use serde_json::{Value, json};
use support::{Hookline, Receiver, Reply, TempDir, closed_port_url};

/// A server with tenant `acme` and one endpoint to a fresh receiver, created from `endpoint` (its `url` set).
async fn set_up(label: &str, mut endpoint: Value) -> (TempDir, Hookline, Receiver, Value) {
    let dir = TempDir::new(label);
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    endpoint["url"] = json!(format!("{}/hook", receiver.url));
    let created = server.endpoint("acme", endpoint).await;
    (dir, server, receiver, created)
}

/// The only delivery of `event`, once it reached `status`, with its attempts.
async fn settled(server: &Hookline, event: &str, status: &str) -> Value {
    let page = server.wait_for_deliveries("acme", event, status, 1).await;
    let deliveries = page["data"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{page:?}");
    server.delivery("acme", deliveries[0]["id"].as_str().unwrap()).await
}

fn attempt_errors(delivery: &Value) -> Vec<Value> {
    delivery["attempts"].as_array().unwrap().iter().map(|attempt| attempt["error"].clone()).collect()
}

#[tokio::test]
async fn a_failed_attempt_is_retried_with_the_same_body_and_signatures() {
    let endpoint =
        json!({"topics": ["pdf.processed"], "signing": ["heron", "herald"], "retry_schedule": ["200ms", "200ms"]});
    let (_dir, server, receiver, _) = set_up("retry-success", endpoint).await;
    receiver.script(vec![Reply::status(500), Reply::status(503)]);
    let event = server.publish("acme", "pdf.processed", r#"{"pdf_id":"pdf_1","amount":1.50}"#).await;
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    let delivery = settled(&server, &event, "succeeded").await;
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(attempt_errors(&delivery), [json!("status"), json!("status"), Value::Null]);
    assert_eq!(delivery["last_status"], 200);
    for header in ["heron-signature", "x-herald-signature", "hookline-event-id", "hookline-delivery-id"] {
        let values: Vec<Option<&str>> = got.iter().map(|request| request.header(header)).collect();
        assert!(values[0].is_some() && values.iter().all(|value| *value == values[0]), "{header}: {values:?}");
    }
    assert!(got.iter().all(|request| request.body == got[0].body));
    assert_eq!(delivery["request_body"].as_str(), Some(got[0].text()));
    let numbers: Vec<Option<&str>> = got.iter().map(|request| request.header("hookline-attempt")).collect();
    assert_eq!(numbers, [Some("1"), Some("2"), Some("3")]);
    for pair in got.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(180), "retried after {gap:?}, the schedule says 200ms");
    }
    assert_eq!(receiver.requests().len(), 3);
}

#[tokio::test]
async fn heralds_policy_means_three_attempts_in_all_then_failed() {
    let (_dir, server, receiver, _) =
        set_up("retry-herald", json!({"topics": ["pdf.processed"], "retry_schedule": ["100ms", "100ms"]})).await;
    receiver.answer(Reply::status(500));
    // Herald's own policy, two more attempts three minutes apart, is accepted and shown back as written.
    let herald = server
        .endpoint(
            "acme",
            json!({"url": receiver.url, "topics": ["pdf.failed"], "signing": ["herald"], "retry_schedule": ["3m", "3m"]}),
        )
        .await;
    assert_eq!(herald["retry_schedule"], json!(["3m", "3m"]));
    let shown =
        server.admin("GET", &format!("/v1/tenants/acme/endpoints/{}", herald["id"].as_str().unwrap()), None).await;
    assert_eq!(shown.body["retry_schedule"], json!(["3m", "3m"]));

    // The same policy with short delays: exactly three attempts, then the delivery is failed. Failed with no next
    // attempt is final (only pending deliveries are claimed), so the three requests are all there will be.
    let event = server.publish("acme", "pdf.processed", r#"{"quote_id":"q_1"}"#).await;
    let delivery = settled(&server, &event, "failed").await;
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 3, "{delivery:?}");
    assert_eq!(delivery["last_status"], 500);
    assert_eq!(delivery["next_attempt"], Value::Null);
    assert_eq!(receiver.requests().len(), 3);
}

#[tokio::test]
async fn a_410_stops_retrying_and_a_manual_retry_sends_it_again() {
    let (_dir, server, receiver, _) =
        set_up("retry-gone", json!({"topics": ["pdf.processed"], "retry_schedule": ["100ms", "100ms"]})).await;
    receiver.script(vec![Reply::status(410)]);
    let event = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    // Failed after one attempt with no next one: the 410 is final, and its request is the only one.
    let delivery = settled(&server, &event, "failed").await;
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(delivery["last_status"], 410);
    assert_eq!(delivery["next_attempt"], Value::Null);
    assert_eq!(receiver.requests().len(), 1);

    let id = delivery["id"].as_str().unwrap();
    let retried = server.admin("POST", &format!("/v1/tenants/acme/deliveries/{id}/retry"), None).await;
    assert_eq!(retried.status, 202, "{:?}", retried.body);
    assert_eq!(retried.body["status"], "pending");
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].body, got[0].body);
    let delivery = settled(&server, &event, "succeeded").await;
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_delivery_cancelled_with_its_endpoint_cannot_be_retried() {
    let (_dir, server, receiver, endpoint) = set_up("retry-cancelled", json!({"topics": ["pdf.processed"]})).await;
    receiver.answer(Reply::status(500));
    let endpoint = &endpoint["id"];
    let event = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let path = format!("/v1/tenants/acme/endpoints/{}", endpoint.as_str().unwrap());
    assert_eq!(server.admin("DELETE", &path, None).await.status, 204);
    let delivery = settled(&server, &event, "cancelled").await;
    let id = delivery["id"].as_str().unwrap();
    let retried = server.admin("POST", &format!("/v1/tenants/acme/deliveries/{id}/retry"), None).await;
    assert_eq!((retried.status, retried.code()), (409, "endpoint_deleted"), "{:?}", retried.body);
    assert!(retried.body["detail"].as_str().unwrap().contains(id), "{:?}", retried.body);
    assert_eq!(server.delivery("acme", id).await["status"], "cancelled");
}

#[tokio::test]
async fn a_manual_retry_sends_a_delivered_event_again_with_the_same_signature() {
    let (_dir, server, receiver, _) =
        set_up("retry-manual", json!({"topics": ["pdf.processed"], "signing": ["heron"]})).await;
    let event = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    let delivery = settled(&server, &event, "succeeded").await;
    let id = delivery["id"].as_str().unwrap();
    let retried = server.admin("POST", &format!("/v1/tenants/acme/deliveries/{id}/retry"), None).await;
    assert_eq!(retried.status, 202, "{:?}", retried.body);
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].body, got[0].body);
    assert_eq!(got[1].header("heron-signature"), got[0].header("heron-signature"));
    assert_eq!(got[1].header("hookline-delivery-id"), Some(id));
    server.wait_for_none("acme", "pending", Duration::from_secs(10)).await;
    assert_eq!(server.delivery("acme", id).await["attempts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn retry_after_postpones_the_next_attempt() {
    // What the server records after a `503` with `Retry-After: 5`: the next attempt five seconds on, not the
    // schedule's 100 ms. That the attempt then comes at that time, and not before, is the dispatcher's schedule test.
    let (_dir, server, receiver, _) =
        set_up("retry-after", json!({"topics": ["pdf.processed"], "retry_schedule": ["100ms"]})).await;
    receiver.script(vec![Reply::status(503).with_header("retry-after", "5")]);
    let event = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let id = server.deliveries_of("acme", &event).await[0]["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.delivery("acme", &id).await["attempts"].as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the first attempt was not recorded within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Read again: the attempt and the delivery's new state are one commit, but one read of both is two queries.
    let delivery = server.delivery("acme", &id).await;
    let attempt = &delivery["attempts"][0];
    assert_eq!((&delivery["status"], &attempt["response_status"]), (&json!("pending"), &json!(503)), "{delivery:?}");
    let time = |value: &Value| Timestamp::parse_rfc3339(value.as_str().unwrap()).unwrap().unix_millis();
    let due_in = time(&delivery["next_attempt"]) - time(&attempt["started"]);
    // The delay counts from the answer, `duration_ms` after the attempt started.
    let answered = attempt["duration_ms"].as_i64().unwrap();
    assert!((5000..=5000 + answered + 5).contains(&due_in), "Retry-After: 5, and the retry is due in {due_in} ms");
}

#[tokio::test]
async fn the_delivery_log_records_every_attempt() {
    let (_dir, server, receiver, endpoint) =
        set_up("retry-log", json!({"topics": ["pdf.processed"], "signing": ["heron"], "retry_schedule": ["100ms"]}))
            .await;
    let long_body = "0123456789".repeat(1024);
    receiver.script(vec![Reply::status(500).with_header("x-reason", "busy").with_body(&long_body)]);
    receiver.answer(Reply::status(200).with_body("thanks"));
    let event = server.publish("acme", "pdf.processed", r#"{"pdf_id":"pdf_1"}"#).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let delivery = settled(&server, &event, "succeeded").await;
    assert_eq!(delivery["event"], event.as_str());
    assert_eq!(delivery["endpoint"], endpoint["id"]);
    assert_eq!(delivery["request_body"].as_str(), Some(got[0].text()));
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    for (index, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt["number"], index + 1);
        assert_eq!(attempt["url"], format!("{}/hook", receiver.url));
        assert!(attempt["duration_ms"].is_u64(), "{attempt:?}");
        assert!(attempt["started"].is_string(), "{attempt:?}");
        let sent: Vec<(String, String)> = serde_json::from_value(attempt["request_headers"].clone()).unwrap();
        for (name, value) in &sent {
            assert_eq!(got[index].header(name), Some(value.as_str()), "request header {name}");
        }
        let names: Vec<&str> = sent.iter().map(|(name, _)| name.as_str()).collect();
        for name in ["content-type", "user-agent", "hookline-event-id", "hookline-delivery-id", "heron-signature"] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
    }
    let failed = &attempts[0];
    assert_eq!(failed["response_status"], 500);
    assert_eq!(failed["error"], "status");
    assert!(failed["error_detail"].as_str().unwrap().contains("500"), "{failed:?}");
    let headers: Vec<(String, String)> = serde_json::from_value(failed["response_headers"].clone()).unwrap();
    assert!(headers.contains(&("x-reason".to_owned(), "busy".to_owned())), "{headers:?}");
    assert_eq!(failed["response_body"].as_str(), Some(&long_body[..4096]));
    let delivered = &attempts[1];
    assert_eq!((&delivered["response_status"], &delivered["error"]), (&json!(200), &Value::Null));
    assert_eq!(delivered["response_body"], "thanks");
}

#[tokio::test]
async fn an_attempt_keeps_a_bounded_part_of_the_response_headers() {
    // 90 headers of 3.9 KB each: 351 KB a response, which every attempt used to store whole.
    let big = "h".repeat(3900);
    let mut flood = Reply::status(500);
    for number in 0..90 {
        flood = flood.with_header(&format!("x-flood-{number:02}"), &big);
    }
    let endpoint = json!({"topics": ["pdf.processed"], "retry_schedule": ["100ms"]});
    let (_dir, server, receiver, _) = set_up("response-headers-cap", endpoint).await;
    receiver.script(vec![flood.clone().with_header("x-first", "kept")]);
    receiver.answer(flood);
    let event = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    let delivery = settled(&server, &event, "failed").await;
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{delivery:?}");
    for attempt in attempts {
        let headers: Vec<(String, String)> = serde_json::from_value(attempt["response_headers"].clone()).unwrap();
        let size: usize = headers.iter().map(|(name, value)| name.len() + value.len()).sum();
        // The default keeps 4 KiB: the small headers before the flood, and none of the flood's 3.9 KB ones past it.
        assert!(size <= 4096, "{size} bytes of headers kept");
        assert!(headers.iter().any(|(name, _)| name == "x-flood-00"), "the first header that fits is kept");
        let omitted = attempt["response_headers_omitted"].as_u64().unwrap();
        assert_eq!(omitted as usize + headers.len(), 90 + 2 + usize::from(attempt["number"] == 1), "{headers:?}");
        assert!(omitted >= 89, "{omitted} omitted");
    }

    // The count is capped too, and both limits are settings.
    let dir = TempDir::new("response-headers-count");
    let env = [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_RESPONSE_HEADERS_MAX_COUNT", "2")];
    let server = Hookline::start_with(dir.path(), &env).await;
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    receiver.answer(Reply::status(200).with_header("x-one", "1").with_header("x-two", "2").with_header("x-three", "3"));
    let attempt = only_successful_attempt(&server, &receiver.url).await;
    let headers: Vec<(String, String)> = serde_json::from_value(attempt["response_headers"].clone()).unwrap();
    assert_eq!(headers, [("x-one".to_owned(), "1".to_owned()), ("x-two".to_owned(), "2".to_owned())]);
    // x-three, content-length and date.
    assert_eq!(attempt["response_headers_omitted"], 3, "{attempt:?}");
}

/// The one attempt of a delivery to `url` under `server`, once the delivery has succeeded.
async fn only_successful_attempt(server: &Hookline, url: &str) -> Value {
    server.endpoint("acme", json!({"url": url, "topics": ["pdf.processed"]})).await;
    let event = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    let delivery = settled(server, &event, "succeeded").await;
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{delivery:?}");
    attempts[0].clone()
}

/// The one attempt of a delivery to `url` under `server`, once the delivery has failed.
async fn only_attempt(server: &Hookline, url: &str) -> Value {
    server.endpoint("acme", json!({"url": url, "topics": ["pdf.processed"], "retry_schedule": []})).await;
    let event = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    let delivery = settled(server, &event, "failed").await;
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{delivery:?}");
    assert_eq!(attempts[0]["response_status"], Value::Null);
    assert!(attempts[0]["error_detail"].as_str().is_some_and(|detail| !detail.is_empty()), "{delivery:?}");
    attempts[0].clone()
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let dir = TempDir::new("error-connect");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let attempt = only_attempt(&server, &format!("{}/hook", closed_port_url().await)).await;
    assert_eq!(attempt["error"], "connect", "{attempt:?}");
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_is_a_timeout_error() {
    let dir = TempDir::new("error-timeout");
    let env = [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_DELIVERY_TIMEOUT", "500ms")];
    let server = Hookline::start_with(dir.path(), &env).await;
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    receiver.answer(Reply::status(200).after(Duration::from_secs(2)));
    let started = Instant::now();
    let attempt = only_attempt(&server, &receiver.url).await;
    assert_eq!(attempt["error"], "timeout", "{attempt:?}");
    let duration = attempt["duration_ms"].as_u64().unwrap();
    assert!((450..1900).contains(&duration), "the attempt took {duration}ms, the timeout is 500ms");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_name_resolving_to_a_private_address_is_blocked_at_connect_time() {
    let dir = TempDir::new("error-blocked");
    // The dangerous switch is off, as in production.
    let server = Hookline::start_with(dir.path(), &[]).await;
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    let port = receiver.url.rsplit(':').next().unwrap();
    // A name is accepted when the endpoint is created: only connecting shows where it points.
    let attempt = only_attempt(&server, &format!("http://localhost:{port}/hook")).await;
    assert_eq!(attempt["error"], "blocked", "{attempt:?}");
    assert!(attempt["error_detail"].as_str().unwrap().contains("SSRF guard"), "{attempt:?}");
    assert!(receiver.requests().is_empty());
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_dns_error() {
    let dir = TempDir::new("error-dns");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    // `.invalid` is reserved (RFC 2606): no resolver answers it with an address.
    let attempt = only_attempt(&server, "http://hookline-test.invalid/hook").await;
    assert_eq!(attempt["error"], "dns", "{attempt:?}");
}

#[tokio::test]
async fn the_configured_default_schedule_applies_to_endpoints_without_their_own() {
    let dir = TempDir::new("retry-configured-default");
    let env = [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_RETRY_SCHEDULE", "100ms,100ms")];
    let server = Hookline::start_with(dir.path(), &env).await;
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    receiver.answer(Reply::status(500));
    let created = server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed"]})).await;
    assert_eq!(created["retry_schedule"], Value::Null, "{created:?}");
    let event = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    let delivery = settled(&server, &event, "failed").await;
    assert_eq!(attempt_errors(&delivery), [json!("status"), json!("status"), json!("status")], "{delivery:?}");
    assert_eq!(receiver.requests().len(), 3);
}

#[tokio::test]
async fn https_to_a_server_that_does_not_speak_tls_is_a_tls_error() {
    let dir = TempDir::new("error-tls");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    // A plain HTTP server: it answers the TLS client hello with something that is not a TLS record.
    let receiver = Receiver::start().await;
    let url = format!("{}/hook", receiver.url.replacen("http://", "https://", 1));
    let attempt = only_attempt(&server, &url).await;
    assert_eq!(attempt["error"], "tls", "{attempt:?}");
    assert!(receiver.requests().is_empty(), "no HTTP request got through: {:?}", receiver.requests());
}
