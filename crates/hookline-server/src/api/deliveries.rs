//! `/v1/tenants/{tenant}/deliveries`: the delivery log, every attempt of each, and sending one again.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hookline_core::body::{EventParts, build_body};
use hookline_core::id::DeliveryId;
use hookline_store::{DeliveryFilter, DeliveryStatus, Retried};
use serde::Deserialize;

use super::types::{AttemptResponse, DeliveryDetailResponse, DeliveryResponse, PageResponse};
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
) -> Result<Json<PageResponse<DeliveryResponse>>, ApiError> {
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
    Ok(Json(PageResponse::from(&state.store.list_deliveries(tenant, filter, page).await?)))
}

pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, delivery)): Path<(String, String)>,
) -> Result<Json<DeliveryDetailResponse>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: DeliveryId = parse_id("delivery", &delivery)?;
    let Some((found, attempts)) = state.store.get_delivery(tenant.clone(), id.clone()).await? else {
        return Err(super::missing(&state, "delivery", &delivery, id.time()).await);
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
    Ok(Json(DeliveryDetailResponse {
        delivery: DeliveryResponse::from(&found),
        request_body,
        attempts: attempts.iter().map(AttemptResponse::from).collect(),
    }))
}

pub async fn retry(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, delivery)): Path<(String, String)>,
) -> Result<(StatusCode, Json<DeliveryResponse>), ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: DeliveryId = parse_id("delivery", &delivery)?;
    match state.store.retry_delivery(tenant, id.clone()).await? {
        Some(Retried::Queued(found) | Retried::InFlight(found)) => {
            Ok((StatusCode::ACCEPTED, Json(DeliveryResponse::from(&found))))
        }
        Some(Retried::EndpointDeleted(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "endpoint_deleted",
            format!("delivery {id} cannot be sent again: its endpoint was deleted, which cancelled it"),
        )),
        None => Err(super::missing(&state, "delivery", &delivery, id.time()).await),
    }
}
