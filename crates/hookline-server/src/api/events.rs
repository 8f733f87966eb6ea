//! `/v1/tenants/{tenant}/events`: publishing (durable before it answers) and reading back what was published.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hookline_core::id::EventId;
use hookline_core::json::{Escape, canonicalize};
use hookline_core::time::Timestamp;
use hookline_core::topic::TopicName;
use hookline_store::{EventFilter, NewEvent};
use serde::Deserialize;

use super::types::{EventResponse, PageResponse, PublishRequest, PublishResponse};
use super::{AppState, Caller, PageQuery, Path, Query, body_bytes, parse_id, parse_json};
use crate::error::ApiError;

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
    let topic: TopicName = body.topic.parse().map_err(|error: hookline_core::topic::TopicNameError| {
        ApiError::unprocessable("invalid_topic", error.to_string())
    })?;
    let Some(data) = body.data else {
        return Err(ApiError::bad_request(
            "missing_data",
            "the event needs a \"data\" field holding the resource as JSON",
        ));
    };
    // serde_json already checked the JSON; canonicalising keeps key order and number literals exactly.
    let invalid = |error: hookline_core::json::JsonError| ApiError::bad_request("invalid_json", error.to_string());
    let data = canonicalize(data.get().as_bytes(), Escape::Utf8).map_err(invalid)?;
    let meta = match body.meta {
        Some(meta) if meta.get() != "null" => Some(canonicalize(meta.get().as_bytes(), Escape::Utf8).map_err(invalid)?),
        _ => None,
    };
    // A key used again must come with the same event: kept only then, to compare with what the key made.
    let asked = idempotency_key.as_ref().map(|_| (topic.clone(), data.clone(), meta.clone()));
    let new = NewEvent { tenant: tenant.clone(), topic, data, meta, idempotency_key };
    let Some(published) = state.store.publish(new).await? else {
        return Err(ApiError::tenant_not_found(tenant.as_str()));
    };
    if published.replayed
        && let Some((topic, data, meta)) = asked
        && (published.event.topic != topic || published.event.data != data || published.event.meta != meta)
    {
        let key = published.event.idempotency_key.as_deref().unwrap_or_default();
        return Err(ApiError::unprocessable(
            "idempotency_key_reused",
            format!(
                "Idempotency-Key {key:?} already made event {} with another topic, data or meta; send the same \
                 event again to get its answer, or use a new key for a new event",
                published.event.id
            ),
        ));
    }
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
    Ok(Json(PageResponse::from(&state.store.list_events(tenant, filter, page).await?)))
}

pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, event)): Path<(String, String)>,
) -> Result<Json<EventResponse>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EventId = parse_id("event", &event)?;
    match state.store.get_event(tenant, id.clone()).await? {
        Some(found) => Ok(Json(EventResponse::from(&found))),
        None => Err(super::missing(&state, "event", &event, id.time()).await),
    }
}
