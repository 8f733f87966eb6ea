//! `/v1/topics`: the catalogue of topics endpoints subscribe to.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hookline_core::topic::TopicName;

use super::types::{CreateTopicRequest, PageResponse, TopicResponse, UpdateTopicRequest};
use super::{AppState, Caller, JsonBody, Path};
use crate::error::ApiError;

pub async fn list(
    _caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<PageResponse<TopicResponse>>, ApiError> {
    let topics = state.store.list_topics().await?;
    Ok(Json(PageResponse { data: topics.iter().map(TopicResponse::from).collect(), next_cursor: None }))
}

pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateTopicRequest>,
) -> Result<(StatusCode, Json<TopicResponse>), ApiError> {
    caller.require_admin()?;
    let name: TopicName = body.name.parse().map_err(|error: hookline_core::topic::TopicNameError| {
        ApiError::unprocessable("invalid_topic", error.to_string())
    })?;
    let topic = state.store.create_topic(name, body.description).await?;
    Ok((StatusCode::CREATED, Json(TopicResponse::from(&topic))))
}

pub async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<UpdateTopicRequest>,
) -> Result<Json<TopicResponse>, ApiError> {
    caller.require_admin()?;
    let topic_name: TopicName = name.parse().map_err(|_| ApiError::not_found("topic", &name))?;
    match state.store.update_topic(topic_name, body.description, body.deprecated).await? {
        Some(topic) => Ok(Json(TopicResponse::from(&topic))),
        None => Err(ApiError::not_found("topic", &name)),
    }
}
