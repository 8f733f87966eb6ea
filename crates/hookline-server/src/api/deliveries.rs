//! `/v1/tenants/{tenant}/deliveries`: the delivery log, every attempt of each, and sending one again.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hookline_core::id::DeliveryId;
use serde::Deserialize;

use super::types::{AttemptResponse, DeliveryDetailResponse, DeliveryResponse, PageResponse};
use super::{AppState, Caller, PageQuery, Path, Query, parse_id};
use crate::error::ApiError;
use crate::service::FilterText;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    endpoint: Option<String>,
    event: Option<String>,
    status: Option<String>,
    topic: Option<String>,
    answer: Option<String>,
    since: Option<String>,
    until: Option<String>,
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
    let text = |value: &Option<String>| value.as_deref().unwrap_or_default().to_owned();
    let (endpoint, event, status, topic) =
        (text(&query.endpoint), text(&query.event), text(&query.status), text(&query.topic));
    let (answer, since, until) = (text(&query.answer), text(&query.since), text(&query.until));
    let filter = state.service.delivery_filter(FilterText {
        endpoint: &endpoint,
        event: &event,
        status: &status,
        topic: &topic,
        answer: &answer,
        since: &since,
        until: &until,
    })?;
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
