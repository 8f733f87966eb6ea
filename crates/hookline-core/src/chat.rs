//! Messages for chat tools: an event as a Slack, Discord or Microsoft Teams incoming-webhook message, never the
//! raw envelope those services refuse. Each message has a one-line summary (a topic's text template, or one
//! built from the topic and the event's first fields), the event's key fields, the tenant, the event's time and
//! its id. Which URLs belong to which service, and what a refusal from each means, are here too.

use serde_json::{Map, Value, json};

use crate::body::Format;
use crate::time::Timestamp;

/// One event as a chat message shows it.
#[derive(Clone, Copy, Debug)]
pub struct ChatEvent<'a> {
    pub topic: &'a str,
    pub tenant: &'a str,
    pub event_id: &'a str,
    pub created: Timestamp,
    /// The event's `data`, as stored (compact JSON).
    pub data: &'a str,
    /// The topic's text template, if it has one.
    pub template: Option<&'a str>,
}

/// The most fields a message lists; Slack takes ten per section.
const MAX_FIELDS: usize = 10;
/// The longest a field's value is shown.
const MAX_VALUE_CHARS: usize = 200;
/// The longest summary: Discord's `content` takes 2,000 characters, Slack's `text` more.
const MAX_SUMMARY_CHARS: usize = 1_000;
/// The longest template a topic may carry.
pub const MAX_TEMPLATE_CHARS: usize = 500;

/// The chat service a URL belongs to, if any: `https://hooks.slack.com/…` is Slack,
/// `https://discord.com/api/webhooks/…` Discord, and Teams' incoming webhooks (`….webhook.office.com`) and
/// workflows (`….logic.azure.com/workflows/…`) Teams.
pub fn detect(url: &str) -> Option<Format> {
    let rest = url.strip_prefix("https://")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    if host == "hooks.slack.com" {
        return Some(Format::Slack);
    }
    let discord = ["discord.com", "discordapp.com", "canary.discord.com", "ptb.discord.com"];
    if discord.contains(&host.as_str()) && path.starts_with("api/webhooks/") {
        return Some(Format::Discord);
    }
    if host.ends_with(".webhook.office.com") || (host.ends_with(".logic.azure.com") && path.contains("workflows/")) {
        return Some(Format::Teams);
    }
    None
}

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the template is {length} characters long; at most {MAX_TEMPLATE_CHARS}")]
    TooLong { length: usize },
    #[error("the template has a {{ without its }} (write fields as {{data.field}})")]
    Unclosed,
    #[error("the template's {{{name}}} is not a field of the event; write fields as {{data.field}} or {{data.a.b}}")]
    NotData { name: String },
    #[error("the template names {{{name}}}, which the topic's example has no field for; name one of: {known}")]
    Unknown { name: String, known: String },
    #[error("the topic has no example to check the template's fields against; give the topic an example first")]
    NoExample,
}

/// The `{…}` placeholders of a template, each a path below `data` (`{data.a.b}` is `["a", "b"]`).
fn placeholders(template: &str) -> Result<Vec<(String, Vec<&str>)>, TemplateError> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or(TemplateError::Unclosed)?;
        let name = &after[..close];
        let path: Vec<&str> = match name.strip_prefix("data.") {
            Some(path) if !path.is_empty() && path.split('.').all(|part| !part.is_empty()) => path.split('.').collect(),
            _ => return Err(TemplateError::NotData { name: name.to_owned() }),
        };
        found.push((name.to_owned(), path));
        rest = &after[close + 1..];
    }
    Ok(found)
}

fn lookup<'v>(data: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(data, |value, key| value.get(key))
}

/// Checks a topic's template against its example `data`: every field it names must be in the example.
pub fn check_template(template: &str, example: Option<&str>) -> Result<(), TemplateError> {
    let length = template.chars().count();
    if length > MAX_TEMPLATE_CHARS {
        return Err(TemplateError::TooLong { length });
    }
    let names = placeholders(template)?;
    if names.is_empty() {
        return Ok(());
    }
    let example: Value = example.and_then(|text| serde_json::from_str(text).ok()).ok_or(TemplateError::NoExample)?;
    for (name, path) in names {
        if lookup(&example, &path).is_none() {
            let known = match example.as_object() {
                Some(object) => object.keys().map(|key| format!("{{data.{key}}}")).collect::<Vec<_>>().join(", "),
                None => "none (the example is not an object)".to_owned(),
            };
            return Err(TemplateError::Unknown { name, known });
        }
    }
    Ok(())
}

/// A value as a message shows it: text without its quotes, the rest as JSON, cut to a readable length.
fn shown(value: &Value) -> String {
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    cut(&text, MAX_VALUE_CHARS)
}

fn cut(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The event's first fields, as (name, value): the top-level fields of an object, in the publisher's order.
fn key_fields(data: &Value) -> Vec<(String, String)> {
    match data {
        Value::Object(object) => {
            object.iter().take(MAX_FIELDS).map(|(name, value)| (name.clone(), shown(value))).collect()
        }
        other => vec![("data".to_owned(), shown(other))],
    }
}

/// The one-line summary: `topic: ` and the rendered template, or the first fields.
pub fn summary(event: &ChatEvent<'_>) -> String {
    let data: Value = serde_json::from_str(event.data).unwrap_or(Value::Null);
    let text = match event.template {
        Some(template) => render(template, &data),
        None => {
            let fields: Vec<String> =
                key_fields(&data).into_iter().take(3).map(|(name, value)| format!("{name} {value}")).collect();
            fields.join(", ")
        }
    };
    let line = if text.is_empty() { event.topic.to_owned() } else { format!("{}: {text}", event.topic) };
    cut(&line.replace(['\n', '\r'], " "), MAX_SUMMARY_CHARS)
}

/// Fills a template's fields from `data`; a field the event lacks shows as `?`.
fn render(template: &str, data: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        let value = name
            .strip_prefix("data.")
            .and_then(|path| lookup(data, &path.split('.').collect::<Vec<_>>()))
            .map_or_else(|| "?".to_owned(), shown);
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The bytes sent to a chat endpoint; `None` for the other formats.
pub fn build(format: Format, event: &ChatEvent<'_>) -> Option<String> {
    let data: Value = serde_json::from_str(event.data).unwrap_or(Value::Null);
    let summary = summary(event);
    let fields = key_fields(&data);
    let created = event.created.to_rfc3339();
    let footer = format!("tenant {} · {} · {}", event.tenant, created, event.event_id);
    let message = match format {
        Format::Slack => {
            let mut blocks =
                vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(&summary)}})];
            if !fields.is_empty() {
                let fields: Vec<Value> = fields
                    .iter()
                    .map(|(name, value)| {
                        json!({"type": "mrkdwn", "text": format!("*{}*\n{}", slack_escape(name), slack_escape(value))})
                    })
                    .collect();
                blocks.push(json!({"type": "section", "fields": fields}));
            }
            blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(&footer)}]}));
            json!({"text": summary, "blocks": blocks})
        }
        Format::Discord => {
            let fields: Vec<Value> =
                fields.iter().map(|(name, value)| json!({"name": name, "value": value, "inline": true})).collect();
            let mut embed = Map::new();
            embed.insert("title".into(), json!(cut(event.topic, 256)));
            embed.insert("fields".into(), json!(fields));
            embed.insert("timestamp".into(), json!(created));
            embed.insert("footer".into(), json!({"text": format!("tenant {} · {}", event.tenant, event.event_id)}));
            json!({"content": summary, "embeds": [embed], "allowed_mentions": {"parse": []}})
        }
        Format::Teams => {
            let facts: Vec<Value> = fields.iter().map(|(name, value)| json!({"title": name, "value": value})).collect();
            let card = json!({
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": summary, "weight": "Bolder", "wrap": true},
                    {"type": "FactSet", "facts": facts},
                    {"type": "TextBlock", "text": footer, "isSubtle": true, "size": "Small", "wrap": true},
                ],
            });
            json!({
                "type": "message",
                "summary": summary,
                "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
            })
        }
        Format::Envelope | Format::Data => return None,
    };
    Some(message.to_string())
}

/// What a chat service's refusal says, in a few words: Slack answers a short code (`invalid_payload`,
/// `no_text`, `channel_not_found`), Discord a JSON `message`, Teams a line of text.
pub fn refusal(format: Format, body: &str) -> Option<String> {
    let body = body.trim();
    if body.is_empty() {
        return None;
    }
    let reason = match format {
        Format::Discord => serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|value| value.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| body.to_owned()),
        Format::Slack | Format::Teams => body.lines().next().unwrap_or(body).to_owned(),
        Format::Envelope | Format::Data => return None,
    };
    Some(cut(&reason, 200))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &str =
        r#"{"heron_id":"eus_Eqio3Y4dhyNiMphrXwG58p","end_user_id":"myenduser","status":"review_required"}"#;

    fn event(template: Option<&str>) -> ChatEvent<'_> {
        ChatEvent {
            topic: "end_user.review_required",
            tenant: "acme",
            event_id: "evt_01m95j4ch6ky1cx6q0dh5k5r3x",
            created: Timestamp::from_unix_millis(1_765_000_000_000),
            data: DATA,
            template,
        }
    }

    #[test]
    fn the_summary_fills_the_template_or_shows_the_first_fields() {
        let templated = event(Some("end user {data.end_user_id} needs review"));
        assert_eq!(summary(&templated), "end_user.review_required: end user myenduser needs review");
        assert_eq!(
            summary(&event(None)),
            "end_user.review_required: heron_id eus_Eqio3Y4dhyNiMphrXwG58p, end_user_id myenduser, status review_required"
        );
        let missing = event(Some("{data.nothing} and {data.status}"));
        assert_eq!(summary(&missing), "end_user.review_required: ? and review_required");
    }

    #[test]
    fn a_slack_message_has_text_blocks_and_the_events_particulars() {
        let body: Value = serde_json::from_str(&build(Format::Slack, &event(None)).unwrap()).unwrap();
        assert!(body["text"].as_str().unwrap().starts_with("end_user.review_required: "));
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks[1]["fields"][1]["text"], "*end_user_id*\nmyenduser");
        let footer = blocks[2]["elements"][0]["text"].as_str().unwrap();
        assert!(footer.contains("acme") && footer.contains("evt_01m95j4ch6ky1cx6q0dh5k5r3x"), "{footer}");
        assert!(footer.contains("2025-12-06T05:46:40+00:00"), "{footer}");
        let escaped = ChatEvent { data: r#"{"note":"<b>&"}"#, ..event(None) };
        assert!(build(Format::Slack, &escaped).unwrap().contains("&lt;b&gt;&amp;"));
    }

    #[test]
    fn discord_and_teams_messages_carry_the_same() {
        let discord: Value = serde_json::from_str(&build(Format::Discord, &event(None)).unwrap()).unwrap();
        assert_eq!(discord["embeds"][0]["title"], "end_user.review_required");
        assert_eq!(
            discord["embeds"][0]["fields"][2],
            json!({"name": "status", "value": "review_required", "inline": true})
        );
        assert!(discord["content"].as_str().unwrap().len() <= 2000);
        let teams: Value = serde_json::from_str(&build(Format::Teams, &event(None)).unwrap()).unwrap();
        let card = &teams["attachments"][0]["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["body"][1]["facts"][1], json!({"title": "end_user_id", "value": "myenduser"}));
        assert_eq!(build(Format::Envelope, &event(None)), None);
    }

    #[test]
    fn chat_urls_are_recognised() {
        assert_eq!(detect("https://hooks.slack.com/services/T000/B000/XXXX"), Some(Format::Slack));
        assert_eq!(detect("https://discord.com/api/webhooks/123/abc"), Some(Format::Discord));
        assert_eq!(detect("https://discord.com/channels/1"), None);
        assert_eq!(detect("https://acme.webhook.office.com/webhookb2/x"), Some(Format::Teams));
        assert_eq!(
            detect("https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke"),
            Some(Format::Teams)
        );
        assert_eq!(detect("http://hooks.slack.com/services/x"), None, "only over https");
        assert_eq!(detect("https://hooks.slack.com.evil.example/x"), None);
    }

    #[test]
    fn templates_are_checked_against_the_topics_example() {
        assert_eq!(check_template("end user {data.end_user_id} needs review", Some(DATA)), Ok(()));
        assert_eq!(check_template("no fields at all", None), Ok(()));
        assert!(matches!(check_template("{data.user}", Some(DATA)), Err(TemplateError::Unknown { .. })));
        assert!(matches!(check_template("{topic}", Some(DATA)), Err(TemplateError::NotData { .. })));
        assert_eq!(check_template("{data.end_user_id", Some(DATA)), Err(TemplateError::Unclosed));
        assert_eq!(check_template("{data.end_user_id}", None), Err(TemplateError::NoExample));
        assert!(matches!(check_template(&"x".repeat(501), None), Err(TemplateError::TooLong { .. })));
        let message = check_template("{data.user}", Some(DATA)).unwrap_err().to_string();
        assert!(message.contains("{data.end_user_id}"), "{message}");
    }

    #[test]
    fn refusals_are_read_as_each_service_writes_them() {
        assert_eq!(refusal(Format::Slack, "invalid_payload"), Some("invalid_payload".to_owned()));
        assert_eq!(
            refusal(Format::Discord, r#"{"message": "Cannot send an empty message", "code": 50006}"#),
            Some("Cannot send an empty message".to_owned())
        );
        assert_eq!(
            refusal(Format::Teams, "Summary or Text is required.\n"),
            Some("Summary or Text is required.".to_owned())
        );
        assert_eq!(refusal(Format::Envelope, "nope"), None);
    }
}
