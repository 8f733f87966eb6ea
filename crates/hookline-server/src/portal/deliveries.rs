//! The portal's delivery page: what was sent, every attempt and what came back, and "Retry now".

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hookline_core::id::{DeliveryId, EndpointId};
use hookline_core::portal::Capability;
use hookline_store::{Answer, DeliveryFilter, DeliveryStatus, PageRequest, PortalSession};

use super::{Fields, Frame, Posted, Signed, failed, may, message, not_allowed, page, when};
use crate::api::AppState;
use crate::error::ApiError;
use crate::service::{FilterText, ServiceError};

struct DeliveryView {
    id: String,
    endpoint: String,
    endpoint_url: String,
    event: String,
    topic: String,
    status: &'static str,
    next_attempt: Option<String>,
}

struct AttemptView {
    number: u32,
    started: String,
    duration_ms: u64,
    cause: &'static str,
    status: Option<u16>,
    error: Option<String>,
    response_body: Option<String>,
    response_headers: Vec<(String, String)>,
    /// How many more the attempt did not keep.
    headers_omitted: u32,
}

#[derive(Template)]
#[template(path = "portal/delivery.html")]
struct DeliveryPage {
    frame: Frame,
    delivery: DeliveryView,
    attempts: Vec<AttemptView>,
    request_body: Option<String>,
    /// The last attempt's request headers (the endpoint's own masked, as recorded).
    request_headers: Vec<(String, String)>,
    /// The last attempt as a `curl` command, to send it again by hand.
    curl: Option<String>,
    can_retry: bool,
}

fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "error", "Not found", "There is no such delivery here; go back to your webhooks.")
}

async fn delivery_page(state: &AppState, session: &PortalSession, id: &str) -> Response {
    let Ok(id) = id.parse::<DeliveryId>() else { return not_found() };
    let detail = match state.service.delivery(session.tenant.clone(), id).await {
        Ok(detail) => detail,
        Err(ServiceError::NotFound { .. } | ServiceError::Purged { .. }) => return not_found(),
        Err(error) => return failed(&error),
    };
    let delivery = &detail.delivery;
    let endpoint_url = match state.service.endpoint(session.tenant.clone(), delivery.endpoint.clone()).await {
        Ok(endpoint) => endpoint.url,
        Err(_) => "its webhook".to_owned(),
    };
    let attempts = detail
        .attempts
        .iter()
        .map(|attempt| AttemptView {
            number: attempt.number,
            started: when(attempt.started),
            duration_ms: attempt.duration_ms,
            cause: attempt.cause.as_str(),
            status: attempt.response_status,
            error: attempt.error_detail.clone(),
            response_body: attempt.response_body.clone().filter(|body| !body.is_empty()),
            response_headers: attempt.response_headers.clone(),
            headers_omitted: attempt.response_headers_omitted,
        })
        .collect();
    let frame = Frame::of(state, session, "webhooks");
    page(&DeliveryPage {
        frame,
        delivery: DeliveryView {
            id: delivery.id.to_string(),
            endpoint: delivery.endpoint.to_string(),
            endpoint_url,
            event: delivery.event.to_string(),
            topic: delivery.topic.to_string(),
            status: delivery.status.as_str(),
            next_attempt: delivery.next_attempt.map(when),
        },
        attempts,
        request_body: detail.request_body.clone(),
        request_headers: detail.attempts.last().map(|attempt| attempt.request_headers.clone()).unwrap_or_default(),
        curl: detail
            .attempts
            .last()
            .map(|attempt| curl(&attempt.url, &attempt.request_headers, detail.request_body.as_deref())),
        can_retry: may(session, Capability::Retry),
    })
}

/// A `curl` command that sends a request again: its URL, its headers and its body, each quoted for a POSIX
/// shell. Its signature headers are the recorded ones, so a receiver that checks timestamps may refuse it later.
fn curl(url: &str, headers: &[(String, String)], body: Option<&str>) -> String {
    let quote = |text: &str| format!("'{}'", text.replace('\'', r"'\''"));
    let mut command = format!("curl -X POST {}", quote(url));
    for (name, value) in headers {
        command.push_str(&format!(" \\\n  -H {}", quote(&format!("{name}: {value}"))));
    }
    if let Some(body) = body {
        command.push_str(&format!(" \\\n  --data-binary {}", quote(body)));
    }
    command
}

/// `GET /portal/deliveries/{delivery}`.
pub(super) async fn show(State(state): State<AppState>, Signed(session): Signed, Path(id): Path<String>) -> Response {
    delivery_page(&state, &session, &id).await
}

/// `POST /portal/deliveries/{delivery}/retry`: another attempt now.
pub(super) async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, .. }: Posted,
) -> Response {
    if !may(&session, Capability::Retry) {
        return not_allowed();
    }
    let Ok(delivery) = id.parse::<DeliveryId>() else { return not_found() };
    match state.service.retry_delivery(session.tenant.clone(), delivery).await {
        Ok(_) => Redirect::to(&format!("/portal/deliveries/{id}")).into_response(),
        Err(ServiceError::NotFound { .. }) => not_found(),
        Err(error) => {
            let error = ApiError::from(error);
            message(error.status, "error", "That did not work", &error.detail)
        }
    }
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// One delivery in a list: the deliveries page's, or an endpoint's.
pub(super) struct DeliveryRow {
    pub(super) id: String,
    /// Its webhook's URL.
    pub(super) endpoint: String,
    pub(super) topic: String,
    pub(super) status: &'static str,
    pub(super) attempts: u32,
    /// The last answer's status, or why there was none.
    pub(super) last: String,
    pub(super) created: String,
    pub(super) test: bool,
}

impl DeliveryRow {
    pub(super) fn new(delivery: &hookline_store::Delivery, endpoint: String) -> DeliveryRow {
        DeliveryRow {
            id: delivery.id.to_string(),
            endpoint,
            topic: delivery.topic.to_string(),
            status: delivery.status.as_str(),
            attempts: delivery.attempts,
            last: match (delivery.last_status, &delivery.last_error) {
                (Some(status), _) => status.to_string(),
                (None, Some(error)) => error.clone(),
                (None, None) => "-".to_owned(),
            },
            created: when(delivery.created),
            test: delivery.origin == hookline_core::attempt::Origin::Test,
        }
    }
}

#[derive(Template)]
#[template(path = "portal/deliveries.html")]
struct DeliveriesPage {
    frame: Frame,
    statuses: Vec<Choice>,
    endpoints: Vec<Choice>,
    topics: Vec<Choice>,
    answers: Vec<Choice>,
    windows: Vec<Choice>,
    event: String,
    since: String,
    until: String,
    error: Option<String>,
    rows: Vec<DeliveryRow>,
    next: Option<String>,
    /// The window "Recover failed" acts on, when the list has one and the session may retry: RFC 3339 times.
    recover: Option<(String, String)>,
    /// The webhook it acts on ("" for every one).
    recover_endpoint: String,
}

/// A page of the list.
const PAGE: u32 = 50;

/// The fields a list is filtered by, kept in its "Older" link.
const FILTER_FIELDS: [&str; 8] = ["status", "endpoint", "event", "topic", "answer", "window", "since", "until"];

/// Choices of a `<select>`, the one `chosen` selected.
fn choices(options: &[(&str, &str)], chosen: &str) -> Vec<Choice> {
    options
        .iter()
        .map(|(value, label)| Choice {
            value: (*value).to_owned(),
            label: (*label).to_owned(),
            selected: *value == chosen,
        })
        .collect()
}

/// `GET /portal/deliveries?status=&endpoint=&event=&topic=&answer=&window=&since=&until=&cursor=`: the tenant's
/// deliveries, newest first, filtered; a window is a preset (`1h` … `30d`) or a range (`since`, `until`, UTC).
pub(super) async fn list(
    State(state): State<AppState>,
    Signed(session): Signed,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let fields = Fields::parse(query.unwrap_or_default().as_bytes());
    let now = state.service.now();
    let window = fields.get("window");
    let preset = match window {
        "" | "range" => None,
        text => hookline_core::duration::parse_duration(text).ok().filter(|window| !window.is_zero()),
    };
    let since_text = match preset {
        Some(window) => now.saturating_sub(window).to_rfc3339(),
        None if window == "range" => fields.get("since").to_owned(),
        None => String::new(),
    };
    let until_text = if window == "range" { fields.get("until").to_owned() } else { String::new() };
    let text = FilterText {
        endpoint: fields.get("endpoint"),
        event: fields.get("event"),
        status: fields.get("status"),
        topic: fields.get("topic"),
        answer: fields.get("answer"),
        since: &since_text,
        until: &until_text,
    };
    let (filter, error) = match state.service.delivery_filter(text) {
        Ok(filter) => (filter, None),
        Err(error) => (DeliveryFilter::default(), Some(format!("{error}. Showing every delivery."))),
    };
    let cursor = Some(fields.get("cursor").to_owned()).filter(|cursor| !cursor.is_empty());
    let page_request = PageRequest { cursor, limit: PAGE };
    let found = match state.service.list_deliveries(session.tenant.clone(), filter.clone(), page_request).await {
        Ok(found) => found,
        Err(error) => return failed(&error),
    };
    let webhooks =
        match state.service.list_endpoints(session.tenant.clone(), PageRequest { cursor: None, limit: 1000 }).await {
            Ok(page) => page.data,
            Err(error) => return failed(&error),
        };
    let catalogue = match state.service.list_topics().await {
        Ok(topics) => topics,
        Err(error) => return failed(&error),
    };
    let url_of = |id: &EndpointId| {
        webhooks.iter().find(|webhook| webhook.id == *id).map_or_else(|| id.to_string(), |webhook| webhook.url.clone())
    };
    let rows = found.data.iter().map(|delivery| DeliveryRow::new(delivery, url_of(&delivery.endpoint))).collect();
    let next = found.next_cursor.map(|cursor| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for name in FILTER_FIELDS {
            // A preset window stays the same window: its times are those of the first page.
            let value = match name {
                "window" if preset.is_some() => "range",
                "since" if preset.is_some() => since_text.as_str(),
                "until" if window != "range" => "",
                value => fields.get(value),
            };
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.append_pair("cursor", &cursor);
        format!("/portal/deliveries?{}", query.finish())
    });
    let chosen = |value: Option<&str>| value.unwrap_or_default().to_owned();
    let statuses = choices(
        &[
            ("", "Any status"),
            ("pending", "Pending"),
            ("succeeded", "Succeeded"),
            ("failed", "Failed"),
            ("cancelled", "Cancelled"),
        ],
        &chosen(filter.status.map(DeliveryStatus::as_str)),
    );
    let answers = choices(
        &[("", "Any answer"), ("2xx", "2xx"), ("3xx", "3xx"), ("4xx", "4xx"), ("5xx", "5xx"), ("none", "No answer")],
        &chosen(filter.answer.map(Answer::as_str)),
    );
    let windows = choices(
        &[
            ("", "Any time"),
            ("1h", "Last hour"),
            ("24h", "Last 24 hours"),
            ("7d", "Last 7 days"),
            ("30d", "Last 30 days"),
            ("range", "From … to … (UTC)"),
        ],
        if preset.is_some() || window == "range" { window } else { "" },
    );
    let chosen_endpoint = filter.endpoint.as_ref().map(|id| id.to_string()).unwrap_or_default();
    let endpoints = std::iter::once(Choice {
        value: String::new(),
        label: "Every webhook".to_owned(),
        selected: chosen_endpoint.is_empty(),
    })
    .chain(webhooks.iter().map(|webhook| Choice {
        value: webhook.id.to_string(),
        label: webhook.url.clone(),
        selected: webhook.id.as_str() == chosen_endpoint,
    }))
    .collect();
    let chosen_topic = filter.topic.as_ref().map(|topic| topic.to_string()).unwrap_or_default();
    let topics = std::iter::once(Choice {
        value: String::new(),
        label: "Any topic".to_owned(),
        selected: chosen_topic.is_empty(),
    })
    .chain(catalogue.iter().map(|topic| Choice {
        value: topic.name.to_string(),
        label: topic.name.to_string(),
        selected: topic.name.as_str() == chosen_topic,
    }))
    .collect();
    let recover = match filter.since {
        Some(since) if may(&session, Capability::Retry) && error.is_none() => {
            // Up to the moment it is sent when the window ends now.
            let until = filter.until.filter(|until| *until < now).map(|until| until.to_rfc3339());
            Some((since.to_rfc3339(), until.unwrap_or_default()))
        }
        _ => None,
    };
    // A range is shown as the date-time fields take it.
    let field_time = |time: Option<hookline_core::time::Timestamp>| {
        time.map(|time| time.to_rfc3339().chars().take(16).collect()).unwrap_or_default()
    };
    let frame = Frame::of(&state, &session, "deliveries");
    page(&DeliveriesPage {
        frame,
        statuses,
        endpoints,
        topics,
        answers,
        windows,
        event: fields.get("event").trim().to_owned(),
        since: field_time(filter.since),
        until: field_time(filter.until),
        error,
        rows,
        next,
        recover,
        recover_endpoint: chosen_endpoint,
    })
}

/// `POST /portal/deliveries/recover` (`since`, `until`, `endpoint`?): every failed delivery of the window is sent
/// again, the chosen webhook's or every webhook's.
pub(super) async fn recover(State(state): State<AppState>, Posted { session, fields }: Posted) -> Response {
    if !may(&session, Capability::Retry) {
        return not_allowed();
    }
    let endpoints = match fields.get("endpoint") {
        "" => None,
        id => match id.parse::<EndpointId>() {
            Ok(id) => Some(vec![id]),
            Err(_) => return not_found(),
        },
    };
    let until = Some(fields.get("until")).filter(|until| !until.is_empty());
    let (total, stopped) =
        state.service.recover_endpoints(session.tenant.clone(), endpoints, fields.get("since"), until).await;
    match stopped {
        None => {}
        Some(ServiceError::NotFound { .. }) => return not_found(),
        Some(error) => {
            let error = ApiError::from(error);
            let started =
                if total > 0 { format!(" ({total} failed deliveries are being sent again.)") } else { String::new() };
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "error",
                "That did not work",
                &format!("{}{started}", error.detail),
            );
        }
    }
    let text = match total {
        0 => "Nothing failed in that range: there is nothing to send again.".to_owned(),
        1 => "1 failed delivery is being sent again.".to_owned(),
        count => format!("{count} failed deliveries are being sent again."),
    };
    message(StatusCode::OK, "recovered", "Sending again", &text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn curl_quotes_what_it_sends() {
        let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        let command = super::curl("https://example.com/h?a=1", &headers, Some(r#"{"note":"it's"}"#));
        assert_eq!(
            command,
            "curl -X POST 'https://example.com/h?a=1' \\\n  -H 'content-type: application/json' \\\n  --data-binary '{\"note\":\"it'\\''s\"}'"
        );
    }
}
