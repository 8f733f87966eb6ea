//! The body an endpoint receives: the Heron envelope or the bare data, as compact JSON, built the same way on
//! every attempt so that retries carry identical bytes and signatures.

use std::fmt;
use std::str::FromStr;

use crate::Scheme;
use crate::json::{Escape, to_ascii};
use crate::time::Timestamp;

/// What an endpoint's body holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `{"topic","created","data","meta"}`, as Heron sends.
    Envelope,
    /// The published `data` alone, as Herald sends its quote object.
    Data,
    /// A Slack incoming-webhook message (see `crate::chat`).
    Slack,
    /// A Discord webhook message.
    Discord,
    /// A Microsoft Teams incoming-webhook or workflow message.
    Teams,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payload format {value:?}; use envelope, data, slack, discord or teams")]
pub struct FormatError {
    pub value: String,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Envelope => "envelope",
            Format::Data => "data",
            Format::Slack => "slack",
            Format::Discord => "discord",
            Format::Teams => "teams",
        }
    }

    /// A message for a chat tool rather than the event itself.
    pub fn is_chat(self) -> bool {
        matches!(self, Format::Slack | Format::Discord | Format::Teams)
    }
}

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(value: &str) -> Result<Self, FormatError> {
        match value {
            "envelope" => Ok(Format::Envelope),
            "data" => Ok(Format::Data),
            "slack" => Ok(Format::Slack),
            "discord" => Ok(Format::Discord),
            "teams" => Ok(Format::Teams),
            _ => Err(FormatError { value: value.to_owned() }),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// How non-ASCII text is written for an endpoint. Heron's Python snippet re-serialises with `json.dumps`, which
/// escapes it as `\uXXXX`; Herald's Node snippet uses `JSON.stringify`, which writes raw UTF-8. An endpoint that
/// signs with `heron` gets the escaped form so that the seed's snippet reproduces the body byte for byte.
pub fn escape_for(schemes: &[Scheme]) -> Escape {
    if schemes.contains(&Scheme::Heron) { Escape::Ascii } else { Escape::Utf8 }
}

/// One event's parts as stored: `data` and `meta` are canonical compact UTF-8 JSON.
#[derive(Clone, Copy, Debug)]
pub struct EventParts<'a> {
    pub topic: &'a str,
    pub created: Timestamp,
    pub data: &'a str,
    pub meta: Option<&'a str>,
}

/// Builds the exact bytes sent to an endpoint of the event's own formats; chat messages are built by
/// `crate::chat::build`, and a chat format given here gets the envelope.
pub fn build_body(format: Format, escape: Escape, event: EventParts<'_>) -> String {
    let mut body = String::with_capacity(event.data.len() + event.meta.map_or(0, str::len) + 96);
    let push_json = |body: &mut String, json: &str| match escape {
        Escape::Utf8 => body.push_str(json),
        Escape::Ascii => to_ascii(json, body),
    };
    match format {
        Format::Data => push_json(&mut body, event.data),
        Format::Envelope | Format::Slack | Format::Discord | Format::Teams => {
            // Topic names are lowercase ASCII and the timestamp is ASCII, so neither needs escaping.
            body.push_str("{\"topic\":\"");
            body.push_str(event.topic);
            body.push_str("\",\"created\":\"");
            body.push_str(&event.created.to_rfc3339());
            body.push_str("\",\"data\":");
            push_json(&mut body, event.data);
            body.push_str(",\"meta\":");
            push_json(&mut body, event.meta.unwrap_or("null"));
            body.push('}');
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(data: &'a str, meta: Option<&'a str>) -> EventParts<'a> {
        EventParts { topic: "end_user.processed", created: Timestamp::from_unix_millis(1_621_502_633_000), data, meta }
    }

    fn check(format: Format, escape: Escape, parts: EventParts<'_>, expected: &str) {
        assert_eq!(build_body(format, escape, parts), expected);
    }

    #[test]
    fn the_envelope_matches_herons_example() {
        let data = r#"{"heron_id":"eus_Eqio3Y4dhyNiMphrXwG58p","end_user_id":"myenduser","status":"processed"}"#;
        check(
            Format::Envelope,
            Escape::Ascii,
            event(data, None),
            r#"{"topic":"end_user.processed","created":"2021-05-20T09:23:53+00:00","data":{"heron_id":"eus_Eqio3Y4dhyNiMphrXwG58p","end_user_id":"myenduser","status":"processed"},"meta":null}"#,
        );
    }

    #[test]
    fn non_ascii_text_follows_the_endpoints_scheme() {
        let data = r#"{"name":"Café 😀"}"#;
        check(Format::Data, Escape::Utf8, event(data, None), r#"{"name":"Café 😀"}"#);
        check(Format::Data, Escape::Ascii, event(data, None), r#"{"name":"Caf\u00e9 \ud83d\ude00"}"#);
        check(
            Format::Envelope,
            Escape::Ascii,
            event("[1]", Some(r#"{"note":"é"}"#)),
            r#"{"topic":"end_user.processed","created":"2021-05-20T09:23:53+00:00","data":[1],"meta":{"note":"\u00e9"}}"#,
        );
        assert_eq!(escape_for(&[Scheme::Standard, Scheme::Heron]), Escape::Ascii);
        assert_eq!(escape_for(&[Scheme::Herald]), Escape::Utf8);
    }

    #[test]
    fn formats_parse() {
        assert_eq!("data".parse::<Format>(), Ok(Format::Data));
        assert_eq!(
            "raw".parse::<Format>().unwrap_err().to_string(),
            "unknown payload format \"raw\"; use envelope, data, slack, discord or teams"
        );
    }
}
