//! `/v1/tenants/{tenant}/endpoints`: where a tenant's webhooks go, which topics they carry, and how they are
//! signed and retried.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hookline_core::Scheme;
use hookline_core::body::Format;
use hookline_core::duration::parse_duration;
use hookline_core::id::EndpointId;
use hookline_core::retry::RetrySchedule;
use hookline_core::secret::{generate_secret, validate_secret};
use hookline_core::target::{EndpointUrl, Host};
use hookline_core::topic::TopicName;
use hookline_store::{EndpointPatch, NewEndpoint};

use super::types::{CreateEndpointRequest, EndpointResponse, EndpointWithSecret, PageResponse, UpdateEndpointRequest};
use super::{AppState, Caller, JsonBody, PageQuery, Path, Query, parse_id};
use crate::error::ApiError;

/// The longest description an endpoint may have.
const MAX_DESCRIPTION: usize = 1024;

fn check_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    let parsed = EndpointUrl::parse(url).map_err(|error| ApiError::unprocessable("invalid_url", error.to_string()))?;
    if let Host::Ip(address) = parsed.host()
        && let Err(refusal) = state.settings.target_guard.check(*address)
    {
        return Err(ApiError::unprocessable(
            "blocked_url",
            format!(
                "endpoint url {url:?} points at {reason}; webhooks go to public addresses \
                 (operators can set HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS=true for local testing)",
                reason = refusal.reason
            ),
        ));
    }
    Ok(parsed.to_string())
}

fn check_topics(topics: &[String]) -> Result<Vec<TopicName>, ApiError> {
    if topics.is_empty() {
        return Err(ApiError::unprocessable(
            "no_topics",
            "an endpoint needs at least one topic; add one to \"topics\"",
        ));
    }
    let mut names: Vec<TopicName> = Vec::with_capacity(topics.len());
    for topic in topics {
        let name: TopicName = topic.parse().map_err(|error: hookline_core::topic::TopicNameError| {
            ApiError::unprocessable("invalid_topic", error.to_string())
        })?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

fn check_format(format: &str) -> Result<Format, ApiError> {
    format
        .parse()
        .map_err(|error: hookline_core::body::FormatError| ApiError::unprocessable("invalid_format", error.to_string()))
}

fn check_signing(names: &[String]) -> Result<Vec<Scheme>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_signing",
            "\"signing\" needs at least one of heron, herald, standard",
        ));
    }
    let mut schemes = Vec::with_capacity(names.len());
    for name in names {
        let scheme: Scheme = name.parse().map_err(|error: hookline_verify::ParseSchemeError| {
            ApiError::unprocessable("invalid_signing", error.to_string())
        })?;
        if !schemes.contains(&scheme) {
            schemes.push(scheme);
        }
    }
    Ok(schemes)
}

fn check_schedule(delays: &[String]) -> Result<RetrySchedule, ApiError> {
    let invalid = |detail: String| ApiError::unprocessable("invalid_retry_schedule", detail);
    let parsed = delays
        .iter()
        .map(|delay| parse_duration(delay).map_err(|error| invalid(error.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    RetrySchedule::exact(parsed).map_err(|error| invalid(error.to_string()))
}

fn check_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::unprocessable("invalid_description", "the description is longer than 1024 characters"));
    }
    Ok(())
}

fn check_secret(secret: &str, signing: &[Scheme]) -> Result<(), ApiError> {
    validate_secret(secret, signing).map_err(|error| ApiError::unprocessable("invalid_secret", error.to_string()))
}

pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<CreateEndpointRequest>,
) -> Result<(StatusCode, Json<EndpointWithSecret>), ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let url = check_url(&state, &body.url)?;
    let topics = check_topics(&body.topics)?;
    check_description(&body.description)?;
    let format = body.format.as_deref().map(check_format).transpose()?.unwrap_or(Format::Envelope);
    let signing = match &body.signing {
        Some(names) => check_signing(names)?,
        None => state.settings.default_signing.clone(),
    };
    let retry_schedule = body.retry_schedule.as_deref().map(check_schedule).transpose()?;
    let secret = match body.secret {
        Some(secret) => {
            check_secret(&secret, &signing)?;
            secret
        }
        None => generate_secret(&signing),
    };
    let new = NewEndpoint {
        tenant: tenant.clone(),
        url,
        topics,
        description: body.description,
        enabled: body.enabled.unwrap_or(true),
        format,
        signing,
        secret,
        retry_schedule,
    };
    match state.store.create_endpoint(new).await? {
        Some(endpoint) => Ok((StatusCode::CREATED, Json(EndpointWithSecret::from(&endpoint)))),
        None => Err(ApiError::tenant_not_found(tenant.as_str())),
    }
}

pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<PageResponse<EndpointResponse>>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let page = PageQuery::page(query.cursor, query.limit)?;
    Ok(Json(PageResponse::from(&state.store.list_endpoints(tenant, page).await?)))
}

pub async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, endpoint)): Path<(String, String)>,
) -> Result<Json<EndpointWithSecret>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EndpointId = parse_id("endpoint", &endpoint)?;
    match state.store.get_endpoint(tenant, id).await? {
        Some(found) => Ok(Json(EndpointWithSecret::from(&found))),
        None => Err(ApiError::not_found("endpoint", &endpoint)),
    }
}

pub async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, endpoint)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateEndpointRequest>,
) -> Result<Json<EndpointWithSecret>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EndpointId = parse_id("endpoint", &endpoint)?;
    let Some(current) = state.store.get_endpoint(tenant.clone(), id.clone()).await? else {
        return Err(ApiError::not_found("endpoint", &endpoint));
    };
    let signing = body.signing.as_deref().map(check_signing).transpose()?;
    let effective_signing = signing.as_ref().unwrap_or(&current.signing);
    match &body.secret {
        Some(secret) => check_secret(secret, effective_signing)?,
        None if signing.is_some() => check_secret(&current.secret, effective_signing).map_err(|_| {
            ApiError::unprocessable(
                "invalid_secret",
                "the endpoint's secret cannot sign with the new schemes (standard needs a whsec_ secret); \
                 send a new \"secret\" with the change",
            )
        })?,
        None => {}
    }
    if let Some(description) = &body.description {
        check_description(description)?;
    }
    let patch = EndpointPatch {
        url: body.url.as_deref().map(|url| check_url(&state, url)).transpose()?,
        topics: body.topics.as_deref().map(check_topics).transpose()?,
        description: body.description,
        enabled: body.enabled,
        format: body.format.as_deref().map(check_format).transpose()?,
        signing,
        secret: body.secret,
        retry_schedule: match body.retry_schedule {
            Some(Some(delays)) => Some(Some(check_schedule(&delays)?)),
            Some(None) => Some(None),
            None => None,
        },
    };
    match state.store.update_endpoint(tenant, id, patch).await? {
        Some(updated) => Ok(Json(EndpointWithSecret::from(&updated))),
        None => Err(ApiError::not_found("endpoint", &endpoint)),
    }
}

pub async fn delete(
    caller: Caller,
    State(state): State<AppState>,
    Path((tenant, endpoint)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id: EndpointId = parse_id("endpoint", &endpoint)?;
    if state.store.delete_endpoint(tenant, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("endpoint", &endpoint))
    }
}
