//! `/v1/tenants`: the platform's customers, and the API keys that act for each of them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hookline_core::id::TenantId;
use hookline_core::secret::{generate_api_key, hash_api_key};
use hookline_store::{Page, Tenant};
use serde::{Deserialize, Serialize};

use super::{AppState, Caller, JsonBody, PageQuery, Path, Query};
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    id: String,
    name: Option<String>,
}

pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewTenant>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    caller.require_admin()?;
    let id: TenantId = body
        .id
        .parse()
        .map_err(|error: hookline_core::id::IdError| ApiError::unprocessable("invalid_tenant_id", error.to_string()))?;
    let name = body.name.unwrap_or_else(|| id.to_string());
    let tenant = state.store.create_tenant(id, name).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<Tenant>>, ApiError> {
    caller.require_admin()?;
    let page = PageQuery::page(query.cursor, query.limit)?;
    Ok(Json(state.store.list_tenants(page).await?))
}

pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<Tenant>, ApiError> {
    let id = caller.tenant(&state, &tenant).await?;
    match state.store.get_tenant(id).await? {
        Some(tenant) => Ok(Json(tenant)),
        None => Err(ApiError::tenant_not_found(&tenant)),
    }
}

pub async fn delete(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id: TenantId = tenant.parse().map_err(|_| ApiError::tenant_not_found(&tenant))?;
    if state.store.delete_tenant(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::tenant_not_found(&tenant))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: Option<String>,
}

#[derive(Serialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    key: hookline_store::ApiKey,
    /// The key itself, shown only in this response.
    #[serde(rename = "key")]
    secret: String,
}

pub async fn create_key(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require_admin()?;
    let body: NewKey = if body.is_empty() { NewKey::default() } else { super::parse_json(&body)? };
    let id: TenantId = tenant.parse().map_err(|_| ApiError::tenant_not_found(&tenant))?;
    let secret = generate_api_key("hk_");
    let name = body.name.unwrap_or_else(|| "default".to_owned());
    match state.store.insert_api_key(id, hash_api_key(&secret), name).await? {
        Some(key) => Ok((StatusCode::CREATED, Json(CreatedKey { key, secret }))),
        None => Err(ApiError::tenant_not_found(&tenant)),
    }
}
