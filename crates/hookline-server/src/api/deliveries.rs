//! `/v1/tenants/{tenant}/deliveries`: the delivery log, every attempt of each, and sending one again.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hookline_core::body::{EventParts, build_body};
use hookline_core::id::DeliveryId;
use hookline_store::{Attempt, Delivery, DeliveryFilter, DeliveryStatus, Page};
use serde::{Deserialize, Serialize};

use super::{AppState, Caller, PageQuery, Path, Query, parse_id};
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    endpoint: Option<String>,
    event: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(query): Query<DeliveryQuery>,
) -> Result<Json<Page<Delivery>>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let invalid = |detail: String| ApiError::bad_request("invalid_query", detail);
    let filter = DeliveryFilter {
        endpoint: query
            .endpoint
            .map(|id| id.parse().map_err(|error: hookline_core::id::IdError| invalid(error.to_string())))
            .transpose()?,
        event: query
            .event
            .map(|id| id.parse().map_err(|error: hookline_core::id::IdError| invalid(error.to_string())))
            .transpose()?,
        status: query
            .status
            .map(|status| {
                DeliveryStatus::parse(&status).ok_or_else(|| {
                    invalid(format!("unknown status {status:?}; use pending, succeeded, failed or cancelled"))
                })
            })
            .transpose()?,
    };
    let page = PageQuery::page(query.cursor, query.limit)?;
    Ok(Json(state.store.list_deliveries(tenant, filter, page).await?))
}

#[derive(Serialize)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    delivery: Delivery,
    /// The exact body every attempt of this delivery sends.
    request_body: Option<String>,
    attempts: Vec<Attempt>,
}

pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, delivery)): Path<(String, String)>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: DeliveryId = parse_id("delivery", &delivery)?;
    let Some((found, attempts)) = state.store.get_delivery(tenant.clone(), id).await? else {
        return Err(ApiError::not_found("delivery", &delivery));
    };
    let event = state.store.get_event(tenant, found.event.clone()).await?;
    let request_body = event.map(|event| {
        let parts = EventParts {
            topic: event.topic.as_str(),
            created: event.created,
            data: &event.data,
            meta: event.meta.as_deref(),
        };
        build_body(found.format, found.escape, parts)
    });
    Ok(Json(DeliveryDetail { delivery: found, request_body, attempts }))
}

pub async fn retry(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, delivery)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: DeliveryId = parse_id("delivery", &delivery)?;
    match state.store.retry_delivery(tenant, id).await? {
        Some(found) => Ok((StatusCode::ACCEPTED, Json(found))),
        None => Err(ApiError::not_found("delivery", &delivery)),
    }
}
