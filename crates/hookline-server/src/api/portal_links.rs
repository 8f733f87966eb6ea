//! `/v1/tenants/{tenant}/portal-links` and `/portal-sessions`: how a platform lets its customer into the portal,
//! and the sessions that are open.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use hookline_core::id::PortalSessionId;

use super::types::{PortalLinkRequest, PortalLinkResponse, PortalSessionResponse};
use super::{AppState, Caller, Path, body_bytes, parse_id, parse_json};
use crate::error::ApiError;

/// `POST …/portal-links {"capabilities"?, "ttl"?, "user"?}` (admin key): a single-use link to the tenant's portal.
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    request: Request,
) -> Result<(StatusCode, Json<PortalLinkResponse>), ApiError> {
    caller.require_admin()?;
    let tenant = caller.tenant(&state, &tenant).await?;
    let bytes = body_bytes(request, &state).await?;
    let body: PortalLinkRequest = if bytes.is_empty() { PortalLinkRequest::default() } else { parse_json(&bytes)? };
    let made = state
        .service
        .create_portal_link(tenant, body.capabilities.as_deref(), body.ttl.as_deref(), body.user, body.theme)
        .await?;
    // The token goes in the fragment: browsers never send it, so it stays out of logs and Referer headers.
    let url = format!("{}/portal/#token={}", state.settings.public_url, made.token);
    Ok((StatusCode::CREATED, Json(PortalLinkResponse { url, expires_at: made.expires })))
}

/// `GET …/portal-sessions`: the tenant's open sessions, newest first.
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<Json<super::types::PageResponse<PortalSessionResponse>>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let sessions = state.service.list_portal_sessions(tenant).await?;
    let data = sessions.iter().map(PortalSessionResponse::from).collect();
    Ok(Json(super::types::PageResponse { data, next_cursor: None }))
}

/// `DELETE …/portal-sessions/{session}`: ends it at once; its next request is signed out.
pub async fn revoke(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, session)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: PortalSessionId = parse_id("portal session", &session)?;
    state.service.revoke_portal_session(tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
