//! The HTTP API: routing, authentication, request bodies and pagination shared by every resource, and the wire
//! types (`types`) its requests and responses are made of, which the CLI shares.

mod deliveries;
mod endpoints;
mod events;
mod portal_links;
mod tenants;
mod topics;
pub mod types;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bytes::Bytes;
use hookline_core::id::TenantId;
use hookline_core::secret::hash_api_key;
use hookline_store::{PageRequest, Principal, Store};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use self::types::HealthResponse;
use crate::error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub store: Store,
    /// The use cases, which hold the rules; the handlers translate HTTP to them.
    pub service: crate::service::Service,
    pub admin_key_hash: Arc<str>,
    pub settings: Arc<ApiSettings>,
}

/// The parts of the configuration the API itself applies.
#[derive(Debug)]
pub(crate) struct ApiSettings {
    pub max_payload_bytes: usize,
    /// Where users reach this server, without a trailing `/`: portal links start with it.
    pub public_url: String,
    /// The origins whose pages may frame the portal.
    pub portal_frame_ancestors: Vec<String>,
    /// How the portal looks unless a link says otherwise.
    pub portal_theme: hookline_core::portal::Theme,
}

pub(crate) fn router(state: AppState) -> Router {
    let tenant_routes = Router::new()
        .route("/keys", post(tenants::create_key))
        .route("/endpoints", post(endpoints::create).get(endpoints::list))
        .route("/endpoints/{endpoint}", get(endpoints::show).patch(endpoints::update).delete(endpoints::delete))
        .route("/endpoints/{endpoint}/secret", get(endpoints::secret))
        .route("/endpoints/{endpoint}/secret/rotate", post(endpoints::rotate_secret))
        .route("/endpoints/{endpoint}/stats", get(endpoints::stats))
        .route("/endpoints/{endpoint}/test", post(endpoints::test))
        .route("/endpoints/{endpoint}/recover", post(endpoints::recover))
        .route("/recoveries/{recovery}", get(endpoints::recovery))
        .route("/events", post(events::publish).get(events::list))
        .route("/events/{event}", get(events::show))
        .route("/events/{event}/resend", post(events::resend))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{delivery}", get(deliveries::show))
        .route("/deliveries/{delivery}/retry", post(deliveries::retry))
        .route("/portal-links", post(portal_links::create))
        .route("/portal-sessions", get(portal_links::list))
        .route("/portal-sessions/{session}", axum::routing::delete(portal_links::revoke));
    health_routes()
        .route("/v1/topics", get(topics::list).post(topics::create))
        .route("/v1/topics/{name}", axum::routing::patch(topics::update))
        .route("/v1/tenants", post(tenants::create).get(tenants::list))
        .route("/v1/tenants/{tenant}", get(tenants::show).delete(tenants::delete))
        .nest("/v1/tenants/{tenant}", tenant_routes)
        .merge(crate::portal::routes(&state.settings))
        .merge(crate::portal::console::routes())
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such API route; see docs/api.md for the API")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
        })
        .layer(axum::extract::DefaultBodyLimit::max(state.settings.max_payload_bytes))
        .with_state(state)
}

/// What a worker node (`--role worker`) serves: liveness and readiness only.
pub(crate) fn health_router(state: AppState) -> Router {
    health_routes()
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_route",
                "this node runs only the dispatcher (--role worker); send API requests to a node with --role api or all",
            )
        })
        .with_state(state)
}

fn health_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(HealthResponse { status: "ok".to_owned() }) }))
        .route("/readyz", get(readyz))
}

/// Ready when the store answers; a node whose database is unreachable says so with a 503.
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state.store.ping().await?;
    Ok(axum::Json(HealthResponse { status: "ready".to_owned() }))
}

/// The caller, from `Authorization: Bearer <key>`.
pub(crate) struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let unauthorized = |code, detail: &str| ApiError::new(StatusCode::UNAUTHORIZED, code, detail);
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(unauthorized("missing_key", "send your API key as Authorization: Bearer <key>"));
        };
        let key = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| unauthorized("missing_key", "the Authorization header must be Bearer <key>"))?;
        let hash = hash_api_key(key);
        if *hash == *state.admin_key_hash {
            return Ok(Caller(Principal::Admin));
        }
        match state.store.tenant_for_key_hash(hash).await? {
            Some(tenant) => Ok(Caller(Principal::Tenant(tenant))),
            None => {
                Err(unauthorized("invalid_key", "the API key is not valid; check it or ask the operator for a new one"))
            }
        }
    }
}

impl Caller {
    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        match self.0 {
            Principal::Admin => Ok(()),
            Principal::Tenant(_) => Err(ApiError::forbidden("this needs the operator's admin key")),
        }
    }

    /// The tenant a request names, when the caller may act for it, without checking that it exists: for writes
    /// whose store call reports an unknown tenant itself (a publish), which saves a read per request. A tenant
    /// key naming another tenant gets the same answer as an unknown tenant, so it learns nothing about the others.
    pub(crate) fn tenant_unchecked(&self, tenant: &str) -> Result<TenantId, ApiError> {
        let id: TenantId = tenant.parse().map_err(|_| ApiError::tenant_not_found(tenant))?;
        match &self.0 {
            Principal::Tenant(own) if *own != id => Err(ApiError::tenant_not_found(tenant)),
            _ => Ok(id),
        }
    }

    /// The tenant in the path, if this caller may act for it and it exists (a tenant key's own tenant does).
    pub(crate) async fn tenant(&self, state: &AppState, tenant: &str) -> Result<TenantId, ApiError> {
        let id = self.tenant_unchecked(tenant)?;
        if matches!(self.0, Principal::Admin) && state.store.get_tenant(id.clone()).await?.is_none() {
            return Err(ApiError::tenant_not_found(tenant));
        }
        Ok(id)
    }
}

/// A JSON request body whose errors (malformed JSON, wrong types, unknown fields, too large) use the API's shape.
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(request, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

pub(crate) async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state).await.map_err(|rejection: BytesRejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than the server's limit (max_payload_bytes); send a smaller payload",
            )
        } else {
            ApiError::bad_request("unreadable_body", format!("could not read the request body: {rejection}"))
        }
    })
}

pub(crate) fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("invalid_json", "the request body is empty; send a JSON object"));
    }
    serde_json::from_slice(bytes).map_err(|error| {
        let code = if error.is_data() { "invalid_field" } else { "invalid_json" };
        ApiError::bad_request(code, format!("invalid request body: {error}"))
    })
}

/// `?cursor=&limit=` on every list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

pub(crate) const DEFAULT_PAGE: u32 = 100;
pub(crate) const MAX_PAGE: u32 = 1000;

impl PageQuery {
    pub(crate) fn page(cursor: Option<String>, limit: Option<u32>) -> Result<PageRequest, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit {limit} is out of range; use 1 to {MAX_PAGE}"),
            ));
        }
        Ok(PageRequest { cursor, limit })
    }
}

/// Query strings with the API's error shape.
pub(crate) struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}

/// Path parameters with the API's error shape (a segment that is not valid UTF-8 once percent-decoded).
pub(crate) struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) if rejection.status().is_client_error() => Err(ApiError::bad_request(
                "invalid_path",
                format!("{}; check the ids in the URL", rejection.body_text()),
            )),
            Err(rejection) => {
                tracing::error!(error = %rejection.body_text(), "a route's path parameters do not match its handler");
                Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server could not read the URL"))
            }
        }
    }
}

/// Path segments that must parse as a typed id; a malformed one is simply not found.
pub(crate) fn parse_id<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, ApiError> {
    text.parse().map_err(|_| ApiError::not_found(what, text))
}
