//! Sending an event again (the seed's "re-process a company"): new deliveries of a stored event, now, to every
//! endpoint currently subscribed to its topic or to the listed ones, marked as a resend; through the API and
//! `hookline event resend`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{ADMIN_KEY, Hookline, Receiver, TempDir, event_id};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn an_event_sent_again_reaches_its_topics_current_subscribers() {
    let dir = TempDir::new("resend");
    let server = Hookline::start(dir.path()).await;
    let (slack, crm, later) = (Receiver::start().await, Receiver::start().await, Receiver::start().await);
    let key = server.tenant("acme").await;
    let slack_id =
        server.endpoint("acme", json!({"url": slack.url, "topics": ["end_user.review_required"]})).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
    server.endpoint("acme", json!({"url": crm.url, "topics": ["end_user.review_required"]})).await;
    let event = server.publish("acme", "end_user.review_required", r#"{"end_user_id":"myenduser"}"#).await;
    slack.wait_for(1, WAIT).await;
    crm.wait_for(1, WAIT).await;
    // An endpoint added since: a resend reaches it too, as the seed's Slack example needs.
    server.endpoint("acme", json!({"url": later.url, "topics": ["end_user.review_required"]})).await;

    let path = format!("/v1/tenants/acme/events/{event}/resend");
    let sent = server.call("POST", &path, Some(&key), None).await;
    assert_eq!(sent.status, 202, "{:?}", sent.body);
    let made = sent.body["deliveries"].as_array().unwrap();
    assert_eq!(made.len(), 3);
    assert!(made.iter().all(|delivery| delivery["origin"] == "resend" && delivery["status"] == "pending"), "{made:?}");
    for receiver in [&slack, &crm] {
        let got = receiver.wait_for(2, WAIT).await;
        assert_eq!(event_id(&got[1]), event);
        assert_eq!(got[0].body, got[1].body, "the same bytes again");
        assert_ne!(got[0].header("hookline-delivery-id"), got[1].header("hookline-delivery-id"), "a new delivery");
    }
    let got = later.wait_for(1, WAIT).await;
    assert_eq!(event_id(&got[0]), event);
    let delivery = made[0]["id"].as_str().unwrap();
    let logged = server.wait_for_attempts("acme", delivery, 1).await;
    assert_eq!(logged["attempts"][0]["cause"], "resend");

    // To one endpoint only, from the CLI.
    let output = tokio::process::Command::new(support::binary())
        .args(["event", "resend", "acme", &event, "--endpoint", &slack_id, "--json"])
        .args(["--server", &server.url, "--key", ADMIN_KEY])
        .env_remove("HOOKLINE_KEY")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(answer["deliveries"][0]["endpoint"], slack_id.as_str());
    slack.wait_for(3, WAIT).await;
    let all = server.admin("GET", &format!("/v1/tenants/acme/deliveries?event={event}"), None).await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 6, "{:?}", all.body);
}

#[tokio::test]
async fn a_resend_refuses_what_it_cannot_send_and_other_tenants() {
    let dir = TempDir::new("resend-refused");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;
    let acme_key = server.tenant("acme").await;
    let globex_key = server.tenant("globex").await;
    let subscribed = server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed"]})).await;
    let subscribed = subscribed["id"].as_str().unwrap();
    let elsewhere = server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.failed"]})).await;
    let elsewhere = elsewhere["id"].as_str().unwrap();
    let globex_endpoint = server.endpoint("globex", json!({"url": receiver.url, "topics": ["pdf.processed"]})).await;
    let globex_endpoint = globex_endpoint["id"].as_str().unwrap();
    let event = server.publish("acme", "pdf.processed", "{}").await;
    receiver.wait_for(1, WAIT).await;
    let path = format!("/v1/tenants/acme/events/{event}/resend");
    let globex_path = format!("/v1/tenants/globex/events/{event}/resend");
    let with = |endpoints: Value| json!({ "endpoints": endpoints }).to_string();
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Option<String>, u16, &str)> = vec![
        (&acme_key, &path, Some(with(json!([elsewhere]))), 422, "endpoint_not_subscribed"),
        (&acme_key, &path, Some(with(json!([]))), 422, "no_endpoints"),
        (&acme_key, &path, Some(with(json!(["nonsense"]))), 422, "invalid_endpoint"),
        (&acme_key, &path, Some(with(json!([globex_endpoint]))), 404, "not_found"),
        (&acme_key, &path, Some(with(json!(["ep_01m95j3yvbj6n95m7p5wv56vg1"]))), 404, "not_found"),
        (&acme_key, &path, Some(r#"{"endpoint":[]}"#.to_owned()), 400, "invalid_field"),
        (&acme_key, &path, Some("{".to_owned()), 400, "invalid_json"),
        (&acme_key, "/v1/tenants/acme/events/evt_01m95j3zc1c2yh6383ck3z4dwr/resend", None, 404, "not_found"),
        (&acme_key, "/v1/tenants/acme/events/nonsense/resend", None, 404, "not_found"),
        (&globex_key, &path, None, 404, "tenant_not_found"),
        (&globex_key, &globex_path, None, 404, "not_found"),
    ];
    for (key, path, body, status, code) in cases {
        let answer = server.call("POST", path, Some(key), body.as_deref()).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{path} {body:?}: {:?}", answer.body);
    }
    let disabled = format!("/v1/tenants/acme/endpoints/{subscribed}");
    server.admin("PATCH", &disabled, Some(json!({"enabled": false}))).await;
    let refused = server.call("POST", &path, Some(&acme_key), Some(&with(json!([subscribed])))).await;
    assert_eq!((refused.status, refused.code()), (422, "endpoint_not_subscribed"), "{:?}", refused.body);
    // Nothing was made by any of them.
    let all = server.admin("GET", &format!("/v1/tenants/acme/deliveries?event={event}"), None).await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 1, "{:?}", all.body);
}
