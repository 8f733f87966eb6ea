//! Slack, Discord and Teams endpoints through a real `hookline serve`: each gets a message its service accepts,
//! never the raw envelope, with the topic's template as its summary; chat endpoints go unsigned unless asked; a
//! service's refusal is recorded with its reason; a Slack, Discord or Teams URL chooses the format by itself, and
//! bad formats, templates and schemes are refused. The receivers here check each body as the service does and
//! answer as it does (Slack `200 ok` or `400 no_text`, Discord `204` or a JSON `message`, Teams `200 1`).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Hookline, Receiver, Reply, TempDir};

const WAIT: Duration = Duration::from_secs(15);
const DATA: &str = r#"{"heron_id":"eus_Eqio3Y4dhyNiMphrXwG58p","end_user_id":"myenduser","status":"review_required"}"#;

fn json_of(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    serde_json::from_slice::<Value>(body).ok()?.as_object().cloned()
}

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |text| text.chars().count())
}

/// Slack's incoming webhooks: `text` or `blocks`, each block of a known type, at most ten fields a section.
fn slack(path: &str, body: &[u8]) -> Reply {
    if path.ends_with("/gone") {
        return Reply::status(404).with_body("channel_not_found");
    }
    let Some(message) = json_of(body) else { return Reply::status(400).with_body("invalid_payload") };
    let text = message.get("text").filter(|text| chars(text) > 0);
    let blocks = message.get("blocks").and_then(Value::as_array);
    if text.is_none() && blocks.is_none_or(|blocks| blocks.is_empty()) {
        return Reply::status(400).with_body("no_text");
    }
    for block in blocks.into_iter().flatten() {
        let kind = block["type"].as_str().unwrap_or_default();
        let fields = block.get("fields").and_then(Value::as_array).map_or(0, Vec::len);
        let known = ["section", "context", "header", "divider"].contains(&kind);
        if !known || fields > 10 || chars(&block["text"]["text"]) > 3000 {
            return Reply::status(400).with_body("invalid_blocks");
        }
    }
    Reply::status(200).with_body("ok")
}

/// Discord's webhooks: `content` (at most 2,000 characters) or `embeds`, at most 25 fields an embed.
fn discord(_: &str, body: &[u8]) -> Reply {
    let refuse = |message: &str, code: u32| {
        Reply::status(400)
            .with_header("content-type", "application/json")
            .with_body(&json!({"message": message, "code": code}).to_string())
    };
    let Some(message) = json_of(body) else { return refuse("Cannot send an empty message", 50006) };
    let embeds = message.get("embeds").and_then(Value::as_array).cloned().unwrap_or_default();
    if chars(message.get("content").unwrap_or(&Value::Null)) == 0 && embeds.is_empty() {
        return refuse("Cannot send an empty message", 50006);
    }
    if chars(&message["content"]) > 2000 || embeds.len() > 10 {
        return refuse("Invalid Form Body", 50035);
    }
    for embed in &embeds {
        let fields = embed["fields"].as_array().cloned().unwrap_or_default();
        if fields.len() > 25 || fields.iter().any(|field| chars(&field["name"]) > 256 || chars(&field["value"]) > 1024)
        {
            return refuse("Invalid Form Body", 50035);
        }
    }
    Reply::status(204)
}

/// Teams: a message whose attachment is an Adaptive Card.
fn teams(_: &str, body: &[u8]) -> Reply {
    let card = json_of(body).and_then(|message| {
        let attachment = message.get("attachments")?.as_array()?.first()?.clone();
        (message.get("type")? == "message"
            && attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
            && attachment["content"]["type"] == "AdaptiveCard")
            .then_some(attachment)
    });
    match card {
        Some(_) => Reply::status(200).with_body("1"),
        None => Reply::status(400).with_body("Summary or Text is required."),
    }
}

async fn chat_receiver(judge: fn(&str, &[u8]) -> Reply) -> Receiver {
    let receiver = Receiver::start().await;
    receiver.judge(judge);
    receiver
}

#[tokio::test]
async fn slack_discord_and_teams_get_messages_their_services_accept() {
    let dir = TempDir::new("chat-formats");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let template = json!({"template": "end user {data.end_user_id} needs review"});
    let topic = server.admin("PATCH", "/v1/topics/end_user.review_required", Some(template)).await;
    assert_eq!(topic.status, 200, "{}", topic.text);
    assert_eq!(topic.body["template"], "end user {data.end_user_id} needs review");
    let (slack_at, discord_at, teams_at) =
        (chat_receiver(slack).await, chat_receiver(discord).await, chat_receiver(teams).await);
    for (receiver, format, signing) in
        [(&slack_at, "slack", None), (&discord_at, "discord", Some(json!(["standard"]))), (&teams_at, "teams", None)]
    {
        let mut body =
            json!({"url": format!("{}/hook", receiver.url), "topics": ["end_user.review_required"], "format": format});
        if let Some(signing) = signing {
            body["signing"] = signing;
        }
        let created = server.endpoint("acme", body).await;
        assert_eq!(created["format"], format);
        assert!(created.get("notes").is_none(), "a format given is not a format chosen: {created}");
    }
    let event = server.publish("acme", "end_user.review_required", DATA).await;
    let page = server.wait_for_deliveries("acme", &event, "succeeded", 3).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 3, "{page}");

    let message = slack_at.wait_for(1, WAIT).await[0].json();
    assert_eq!(message["text"], "end_user.review_required: end user myenduser needs review");
    let context =
        message["blocks"].as_array().unwrap().last().unwrap()["elements"][0]["text"].as_str().unwrap().to_owned();
    assert!(context.contains("tenant acme") && context.contains(&event), "{context}");
    assert!(message.get("topic").is_none() && message.get("data").is_none(), "never the envelope: {message}");
    let slack_request = &slack_at.requests()[0];
    assert_eq!(slack_request.header("webhook-signature"), None, "chat endpoints go unsigned unless asked");
    assert_eq!(slack_request.header("content-type"), Some("application/json"));

    let discord_request = &discord_at.wait_for(1, WAIT).await[0];
    assert_eq!(discord_request.json()["content"], "end_user.review_required: end user myenduser needs review");
    assert!(discord_request.header("webhook-signature").is_some(), "signed when asked");
    let card = teams_at.wait_for(1, WAIT).await[0].json();
    assert_eq!(card["attachments"][0]["content"]["body"][1]["facts"][1]["value"], "myenduser");

    // A topic without a template shows its first fields; a test event reaches Slack too.
    let test = server
        .endpoint(
            "acme",
            json!({"url": format!("{}/hook", slack_at.url), "topics": ["pdf.processed"], "format": "slack"}),
        )
        .await;
    let sent = server
        .admin(
            "POST",
            &format!("/v1/tenants/acme/endpoints/{}/test", test["id"].as_str().unwrap()),
            Some(json!({"topic": "pdf.processed"})),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let message = slack_at.wait_for(2, WAIT).await[1].json();
    assert_eq!(
        message["text"],
        "pdf.processed: heron_id pdf_Q5mZt8rK2wXyL9vB3nH7cD, end_user_id myenduser, status processed"
    );
}

#[tokio::test]
async fn a_services_refusal_is_recorded_with_its_reason() {
    let dir = TempDir::new("chat-refusal");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let slack_at = chat_receiver(slack).await;
    let body = json!({"url": format!("{}/services/gone", slack_at.url), "topics": ["pdf.processed"], "format": "slack", "retry_schedule": []});
    server.endpoint("acme", body).await;
    let event = server.publish("acme", "pdf.processed", DATA).await;
    let page = server.wait_for_deliveries("acme", &event, "failed", 1).await;
    let delivery = server.delivery("acme", page["data"][0]["id"].as_str().unwrap()).await;
    let attempt = &delivery["attempts"][0];
    assert_eq!(attempt["error_detail"], "the endpoint answered 404: channel_not_found", "{delivery}");
    assert_eq!(attempt["response_body"], "channel_not_found");

    // A body the service refuses is told apart by the receiver, so the checks above can fail.
    assert_eq!(slack("/hook", br#"{"topic":"pdf.processed"}"#).status, 400);
    assert_eq!(discord("/hook", br#"{"embeds":[]}"#).status, 400);
    assert_eq!(teams("/hook", br#"{"text":"hello"}"#).status, 400);
}

#[tokio::test]
async fn chat_urls_choose_their_format_and_bad_choices_are_refused() {
    let dir = TempDir::new("chat-detect");
    let server = Hookline::start(dir.path()).await;
    let key = server.tenant("acme").await;
    for (url, format) in [
        ("https://hooks.slack.com/services/T0000/B0000/XXXXXXXX", "slack"),
        ("https://discord.com/api/webhooks/1234/abcd", "discord"),
        ("https://acme.webhook.office.com/webhookb2/abc/IncomingWebhook/def", "teams"),
    ] {
        let created = server
            .call(
                "POST",
                "/v1/tenants/acme/endpoints",
                Some(&key),
                Some(&json!({"url": url, "topics": ["pdf.processed"]}).to_string()),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(
            (created.body["format"].as_str(), &created.body["signing"]),
            (Some(format), &json!([])),
            "{}",
            created.text
        );
        let note = created.body["notes"][0].as_str().unwrap_or_default();
        assert!(note.contains(&format!("format set to {format} from the URL")), "{}", created.text);
    }
    let chosen =
        json!({"url": "https://hooks.slack.com/services/T0/B0/X", "topics": ["pdf.processed"], "format": "envelope"});
    let created = server.call("POST", "/v1/tenants/acme/endpoints", Some(&key), Some(&chosen.to_string())).await;
    assert_eq!(
        (created.body["format"].as_str(), created.body.get("notes")),
        (Some("envelope"), None),
        "{}",
        created.text
    );
    let unsigned_slack = server
        .call(
            "POST",
            "/v1/tenants/acme/endpoints",
            Some(&key),
            Some(&json!({"url": "https://hooks.slack.com/services/T1/B1/Y", "topics": ["pdf.processed"]}).to_string()),
        )
        .await;
    let slack_path = format!("/v1/tenants/acme/endpoints/{}", unsigned_slack.body["id"].as_str().unwrap());

    for (method, path, body, key_used, status, code) in [
        (
            "POST",
            "/v1/tenants/acme/endpoints".to_owned(),
            json!({"url": "https://example.com/h", "topics": ["pdf.processed"], "format": "sms"}),
            key.as_str(),
            422,
            "invalid_format",
        ),
        (
            "POST",
            "/v1/tenants/acme/endpoints".to_owned(),
            json!({"url": "https://example.com/h", "topics": ["pdf.processed"], "signing": []}),
            key.as_str(),
            422,
            "invalid_signing",
        ),
        ("PATCH", slack_path.clone(), json!({"format": "envelope"}), key.as_str(), 422, "invalid_signing"),
        (
            "PATCH",
            "/v1/topics/end_user.review_required".to_owned(),
            json!({"template": "user {data.user} waits"}),
            support::ADMIN_KEY,
            422,
            "invalid_template",
        ),
        (
            "PATCH",
            "/v1/topics/end_user.review_required".to_owned(),
            json!({"template": "{topic} happened"}),
            support::ADMIN_KEY,
            422,
            "invalid_template",
        ),
        (
            "PATCH",
            "/v1/topics/end_user.review_required".to_owned(),
            json!({"template": "x".repeat(501)}),
            support::ADMIN_KEY,
            422,
            "invalid_template",
        ),
        (
            "PATCH",
            "/v1/topics/end_user.review_required".to_owned(),
            json!({"template": "{data.end_user_id}"}),
            key.as_str(),
            403,
            "forbidden",
        ),
        (
            "POST",
            "/v1/topics".to_owned(),
            json!({"name": "quote.ready", "template": "quote {data.id}"}),
            support::ADMIN_KEY,
            422,
            "invalid_template",
        ),
    ] {
        let answer = server.call(method, &path, Some(key_used), Some(&body.to_string())).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{method} {path} {body}: {}", answer.text);
    }
    // With its signing given, the Slack endpoint may carry the envelope.
    let signed = server
        .call(
            "PATCH",
            &slack_path,
            Some(&key),
            Some(&json!({"format": "envelope", "signing": ["standard"]}).to_string()),
        )
        .await;
    assert_eq!((signed.status, signed.body["format"].as_str()), (200, Some("envelope")), "{}", signed.text);
    // A template checked against the topic's example, and removed with null.
    let set = server
        .admin(
            "PATCH",
            "/v1/topics/pdf.processed",
            Some(json!({"template": "PDF {data.heron_id} of {data.end_user_id}"})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    let removed = server.admin("PATCH", "/v1/topics/pdf.processed", Some(json!({"template": null}))).await;
    assert_eq!(removed.body["template"], Value::Null);
}
