//! `/v1/tenants/{tenant}/deliveries`: the delivery log, every attempt of each, and sending one again.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hookline_core::id::DeliveryId;
use hookline_store::{DeliveryFilter, DeliveryStatus};
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
    Ok(Json(PageResponse::from(&state.service.list_deliveries(tenant, filter, page).await?)))
}

pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, delivery)): Path<(String, String)>,
) -> Result<Json<DeliveryDetailResponse>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: DeliveryId = parse_id("delivery", &delivery)?;
    let detail = state.service.delivery(tenant, id).await?;
    Ok(Json(DeliveryDetailResponse {
        delivery: DeliveryResponse::from(&detail.delivery),
        request_body: detail.request_body,
        attempts: detail.attempts.iter().map(AttemptResponse::from).collect(),
    }))
}

pub async fn retry(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, delivery)): Path<(String, String)>,
) -> Result<(StatusCode, Json<DeliveryResponse>), ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: DeliveryId = parse_id("delivery", &delivery)?;
    let retried = state.service.retry_delivery(tenant, id).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryResponse::from(&retried))))
}
