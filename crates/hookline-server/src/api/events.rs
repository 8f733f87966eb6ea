//! `/v1/tenants/{tenant}/events`: publishing (durable before it answers) and reading back what was published.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hookline_core::id::EventId;
use hookline_core::time::Timestamp;
use hookline_store::EventFilter;
use serde::Deserialize;

use super::types::{
    DeliveryResponse, EventResponse, PageResponse, PublishRequest, PublishResponse, ResendRequest, ResendResponse,
};
use super::{AppState, Caller, PageQuery, Path, Query, body_bytes, parse_id, parse_json};
use crate::error::ApiError;
use crate::service::Publication;

/// The longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let invalid = || {
        ApiError::bad_request("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable ASCII characters")
    };
    let text = value.to_str().map_err(|_| invalid())?;
    if text.is_empty() || text.len() > MAX_IDEMPOTENCY_KEY || !text.bytes().all(|byte| (0x20..0x7f).contains(&byte)) {
        return Err(invalid());
    }
    Ok(Some(text.to_owned()))
}

pub async fn publish(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    // The store answers `None` for an unknown tenant, in the same transaction as the publish.
    let tenant = caller.tenant_unchecked(&tenant)?;
    let idempotency_key = idempotency_key(request.headers())?;
    let bytes = body_bytes(request, &state).await?;
    let body: PublishRequest<'_> = parse_json(&bytes)?;
    let publication = Publication { topic: &body.topic, data: body.data, meta: body.meta, idempotency_key };
    let published = state.service.publish(tenant, publication).await?;
    let mut response = (StatusCode::ACCEPTED, Json(PublishResponse::from(&published))).into_response();
    if published.replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    topic: Option<String>,
    after: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(query): Query<EventQuery>,
) -> Result<Json<PageResponse<EventResponse>>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let invalid = |detail: String| ApiError::bad_request("invalid_query", detail);
    let filter = EventFilter {
        topic: query
            .topic
            .map(|topic| {
                topic.parse().map_err(|error: hookline_core::topic::TopicNameError| invalid(error.to_string()))
            })
            .transpose()?,
        // `created` is shown in whole seconds, so `after` compares whole seconds: passing an event's `created`
        // lists the events of later seconds, never that event again.
        after: query
            .after
            .map(|after| {
                Timestamp::parse_rfc3339(&after)
                    .map(|after| Timestamp::from_unix_millis((after.unix_seconds() + 1) * 1000 - 1))
                    .map_err(|error| invalid(error.to_string()))
            })
            .transpose()?,
    };
    let page = PageQuery::page(query.cursor, query.limit)?;
    Ok(Json(PageResponse::from(&state.service.list_events(tenant, filter, page).await?)))
}

pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, event)): Path<(String, String)>,
) -> Result<Json<EventResponse>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EventId = parse_id("event", &event)?;
    Ok(Json(EventResponse::from(&state.service.event(tenant, id).await?)))
}

/// `POST …/events/{event}/resend`: the event again, now, to its topic's current subscribers or the listed ones.
pub async fn resend(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, event)): Path<(String, String)>,
    request: Request,
) -> Result<(StatusCode, Json<ResendResponse>), ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EventId = parse_id("event", &event)?;
    let bytes = body_bytes(request, &state).await?;
    // No body is the same as an empty object: every subscribed endpoint.
    let body: ResendRequest = if bytes.is_empty() { ResendRequest::default() } else { parse_json(&bytes)? };
    let made = state.service.resend_event(tenant, id.clone(), body.endpoints).await?;
    let answer = ResendResponse { event: id, deliveries: made.iter().map(DeliveryResponse::from).collect() };
    Ok((StatusCode::ACCEPTED, Json(answer)))
}
