//! The portal's delivery page: what was sent, every attempt and what came back, and "Retry now".

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hookline_core::id::DeliveryId;
use hookline_core::portal::Capability;
use hookline_store::PortalSession;

use super::{Fields, Frame, Signed, failed, form_allowed, form_refused, may, message, not_allowed, page, when};
use crate::api::AppState;
use crate::error::ApiError;
use crate::service::ServiceError;

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
}

#[derive(Template)]
#[template(path = "portal/delivery.html")]
struct DeliveryPage {
    tenant: Option<String>,
    user: Option<String>,
    csrf: String,
    section: &'static str,
    delivery: DeliveryView,
    attempts: Vec<AttemptView>,
    request_body: Option<String>,
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
        })
        .collect();
    let Frame { tenant, user, csrf, section } = Frame::of(session, "webhooks");
    page(&DeliveryPage {
        tenant,
        user,
        csrf,
        section,
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
        can_retry: may(session, Capability::Retry),
    })
}

/// `GET /portal/deliveries/{delivery}`.
pub(super) async fn show(State(state): State<AppState>, Signed(session): Signed, Path(id): Path<String>) -> Response {
    delivery_page(&state, &session, &id).await
}

/// `POST /portal/deliveries/{delivery}/retry`: another attempt now.
pub(super) async fn retry(
    State(state): State<AppState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    if !form_allowed(&headers, &state, &session, fields.get("csrf")) {
        return form_refused();
    }
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
