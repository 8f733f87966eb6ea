//! `/v1/tenants`: the platform's customers, and the API keys that act for each of them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hookline_core::id::TenantId;
use hookline_core::secret::{generate_api_key, hash_api_key};

use super::types::{
    ApiKeyResponse, ApiKeyWithSecret, CreateKeyRequest, CreateTenantRequest, PageResponse, TenantResponse,
};
use super::{AppState, Caller, JsonBody, PageQuery, Path, Query};
use crate::error::ApiError;

pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateTenantRequest>,
) -> Result<(StatusCode, Json<TenantResponse>), ApiError> {
    caller.require_admin()?;
    let id: TenantId = body
        .id
        .parse()
        .map_err(|error: hookline_core::id::IdError| ApiError::unprocessable("invalid_tenant_id", error.to_string()))?;
    let name = body.name.unwrap_or_else(|| id.to_string());
    let tenant = state.store.create_tenant(id, name).await?;
    Ok((StatusCode::CREATED, Json(TenantResponse::from(&tenant))))
}

pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> Result<Json<PageResponse<TenantResponse>>, ApiError> {
    caller.require_admin()?;
    let page = PageQuery::page(query.cursor, query.limit)?;
    Ok(Json(PageResponse::from(&state.store.list_tenants(page).await?)))
}

pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<TenantResponse>, ApiError> {
    // The operator may watch a deleted tenant's rows go: it is gone from the API, and says so until they are.
    if caller.require_admin().is_ok()
        && let Ok(id) = tenant.parse::<TenantId>()
        && state.store.tenant_being_deleted(id).await?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "being_deleted",
            format!("tenant {tenant:?} was deleted, and what it owned is being removed in the background"),
        ));
    }
    let id = caller.tenant(&state, &tenant).await?;
    match state.store.get_tenant(id).await? {
        Some(found) => Ok(Json(TenantResponse::from(&found))),
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

pub async fn create_key(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<ApiKeyWithSecret>), ApiError> {
    caller.require_admin()?;
    let body: CreateKeyRequest = if body.is_empty() { CreateKeyRequest::default() } else { super::parse_json(&body)? };
    let id: TenantId = tenant.parse().map_err(|_| ApiError::tenant_not_found(&tenant))?;
    let secret = generate_api_key("hk_");
    let name = body.name.unwrap_or_else(|| "default".to_owned());
    match state.store.insert_api_key(id, hash_api_key(&secret), name).await? {
        Some(key) => {
            Ok((StatusCode::CREATED, Json(ApiKeyWithSecret { api_key: ApiKeyResponse::from(&key), key: secret })))
        }
        None => Err(ApiError::tenant_not_found(&tenant)),
    }
}
