//! End-to-end delivery through a real `hookline serve`: fan-out, topic filtering, signing and the delivery log.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Hookline, Receiver, TempDir};

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
