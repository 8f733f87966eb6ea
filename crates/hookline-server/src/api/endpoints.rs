//! `/v1/tenants/{tenant}/endpoints`: where a tenant's webhooks go. The rules live in the service
//! (`crate::service`); these handlers translate HTTP to it and back.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use hookline_core::id::{EndpointId, RecoveryId};

use super::types::{
    CreateEndpointRequest, EndpointHealthResponse, EndpointResponse, EndpointSecretResponse, EndpointStatsResponse,
    EndpointWithSecret, HourResponse, PageResponse, RecoverRequest, RecoveryResponse, RotateSecretRequest,
    TestEventRequest, TestEventResponse, UpdateEndpointRequest,
};
use super::{AppState, Caller, JsonBody, PageQuery, Path, Query, body_bytes, parse_id, parse_json};
use crate::error::ApiError;

pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<CreateEndpointRequest>,
) -> Result<(StatusCode, Json<EndpointWithSecret>), ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let chose_format = body.format.is_none();
    let endpoint = state.service.create_endpoint(tenant, body).await?;
    let mut answer = EndpointWithSecret::from(&endpoint);
    if chose_format && endpoint.format.is_chat() {
        answer.notes.push(format!(
            "format set to {} from the URL: it gets {} messages, unsigned; give \"format\" to choose another",
            endpoint.format, endpoint.format
        ));
    }
    Ok((StatusCode::CREATED, Json(answer)))
}

pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<PageResponse<EndpointResponse>>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let page = PageQuery::page(query.cursor, query.limit)?;
    let page = state.service.list_endpoints(tenant, page).await?;
    let data = state.service.with_health(page.data).await?;
    let data = data.iter().map(|(endpoint, shown, health)| EndpointResponse::new(endpoint, *shown, health)).collect();
    Ok(Json(PageResponse { data, next_cursor: page.next_cursor }))
}

/// The endpoint as an answer shows it, with its health.
async fn shown(state: &AppState, endpoint: hookline_store::Endpoint) -> Result<EndpointResponse, ApiError> {
    let with = state.service.with_health(vec![endpoint]).await?;
    let (endpoint, shown, health) = with.first().expect("one endpoint in, one out");
    Ok(EndpointResponse::new(endpoint, *shown, health))
}

/// `GET …/endpoints/{endpoint}/stats`: its health and its attempts per hour over the last seven days.
pub async fn stats(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, endpoint)): Path<(String, String)>,
) -> Result<Json<EndpointStatsResponse>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EndpointId = parse_id("endpoint", &endpoint)?;
    let (endpoint, shown, stats) = state.service.endpoint_stats(tenant, id).await?;
    let health = &stats.health;
    Ok(Json(EndpointStatsResponse {
        endpoint: endpoint.id.clone(),
        health: EndpointHealthResponse::new(&endpoint, shown, health),
        consecutive_failures: health.consecutive_failures,
        last_success: health.last_success,
        last_failure: health.last_failure,
        hours: stats
            .hours
            .iter()
            .map(|hour| HourResponse { hour: hour.hour, successes: hour.successes, failures: hour.failures })
            .collect(),
    }))
}

pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, endpoint)): Path<(String, String)>,
) -> Result<Json<EndpointResponse>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EndpointId = parse_id("endpoint", &endpoint)?;
    let endpoint = state.service.endpoint(tenant, id).await?;
    Ok(Json(shown(&state, endpoint).await?))
}

/// `GET …/endpoints/{endpoint}/secret`: its signing secret, which no other answer but its creation carries.
pub async fn secret(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, endpoint)): Path<(String, String)>,
) -> Result<Json<EndpointSecretResponse>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EndpointId = parse_id("endpoint", &endpoint)?;
    let endpoint = state.service.endpoint(tenant, id).await?;
    Ok(Json(EndpointSecretResponse::at(&endpoint, state.service.now())))
}

/// `POST …/endpoints/{endpoint}/secret/rotate {"grace"?, "secret"?}`: a new secret, the current one still signing
/// for the grace period; answers with both.
pub async fn rotate_secret(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, endpoint)): Path<(String, String)>,
    request: Request,
) -> Result<Json<EndpointSecretResponse>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EndpointId = parse_id("endpoint", &endpoint)?;
    let bytes = body_bytes(request, &state).await?;
    let body: RotateSecretRequest = if bytes.is_empty() { RotateSecretRequest::default() } else { parse_json(&bytes)? };
    let endpoint = state.service.rotate_secret(tenant, id, body.grace.as_deref(), body.secret).await?;
    Ok(Json(EndpointSecretResponse::at(&endpoint, state.service.now())))
}

pub async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, endpoint)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateEndpointRequest>,
) -> Result<Json<EndpointResponse>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EndpointId = parse_id("endpoint", &endpoint)?;
    let endpoint = state.service.update_endpoint(tenant, id, body).await?;
    Ok(Json(shown(&state, endpoint).await?))
}

pub async fn delete(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, endpoint)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EndpointId = parse_id("endpoint", &endpoint)?;
    state.service.delete_endpoint(tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/endpoints/{endpoint}/test`: one event for this endpoint alone; answers `202` with the delivery to
/// watch.
pub async fn test(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, endpoint)): Path<(String, String)>,
    request: Request,
) -> Result<(StatusCode, Json<TestEventResponse>), ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EndpointId = parse_id("endpoint", &endpoint)?;
    let bytes = body_bytes(request, &state).await?;
    let body: TestEventRequest<'_> = parse_json(&bytes)?;
    let sent = state.service.send_test_event(tenant, id, &body.topic, body.data).await?;
    let answer = TestEventResponse {
        event: sent.event.id,
        delivery: sent.delivery.id,
        endpoint: sent.delivery.endpoint,
        topic: sent.event.topic,
    };
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// `POST …/endpoints/{endpoint}/recover {"since", "until"?}`: answers `202` at once with the recovery, whose
/// deliveries are queued in the background.
pub async fn recover(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, endpoint)): Path<(String, String)>,
    JsonBody(body): JsonBody<RecoverRequest>,
) -> Result<(StatusCode, Json<RecoveryResponse>), ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EndpointId = parse_id("endpoint", &endpoint)?;
    let recovery = state.service.recover_endpoint(tenant, id, &body.since, body.until.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(RecoveryResponse::from(&recovery))))
}

/// `GET /v1/tenants/{tenant}/recoveries/{recovery}`: how far a recovery has gone.
pub async fn recovery(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, recovery)): Path<(String, String)>,
) -> Result<Json<RecoveryResponse>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: RecoveryId = parse_id("recovery", &recovery)?;
    Ok(Json(RecoveryResponse::from(&state.service.recovery(tenant, id).await?)))
}
