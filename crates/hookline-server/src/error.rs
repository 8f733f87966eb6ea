//! The API's one error type: a status, a stable machine `code` and a human `detail`, sent as
//! `application/problem+json`. A 5xx says nothing internal; its cause is logged in the request's span.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hookline_store::StoreError;

use crate::api::types::ProblemResponse;
use crate::service::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError { status, code, detail: detail.into() }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} {id:?} does not exist"))
    }

    pub fn tenant_not_found(tenant: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "tenant_not_found", format!("tenant {tenant:?} does not exist"))
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Conflict { .. } => ApiError::new(StatusCode::CONFLICT, "conflict", error.to_string()),
            StoreError::BeingDeleted { .. } => ApiError::new(StatusCode::CONFLICT, "being_deleted", error.to_string()),
            StoreError::UnknownTopic { .. } => ApiError::unprocessable("unknown_topic", error.to_string()),
            StoreError::DeprecatedTopic { .. } => ApiError::unprocessable("deprecated_topic", error.to_string()),
            other if other.is_unavailable() => {
                tracing::warn!(error = %hookline_dispatch::error_chain(&other), "the database is unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is unreachable, so nothing was accepted or changed; retry shortly",
                )
            }
            other => {
                tracing::error!(error = %hookline_dispatch::error_chain(&other), "store failure");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store could not complete the request; nothing was changed, try again",
                )
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        let detail = error.to_string();
        match error {
            ServiceError::Malformed { code, .. } => ApiError::bad_request(code, detail),
            ServiceError::Invalid { code, .. } => ApiError::unprocessable(code, detail),
            ServiceError::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, "not_found", detail),
            ServiceError::TenantNotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, "tenant_not_found", detail),
            ServiceError::Purged { .. } => ApiError::new(StatusCode::GONE, "purged", detail),
            ServiceError::Conflict { code, .. } => ApiError::new(StatusCode::CONFLICT, code, detail),
            ServiceError::Store(error) => ApiError::from(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = ProblemResponse {
            status: self.status.as_u16(),
            code: self.code.to_owned(),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            detail: self.detail,
        };
        // Serialising a struct of strings and a number cannot fail.
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}
