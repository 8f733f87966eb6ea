//! `/v1/topics`: the catalogue of topics endpoints subscribe to.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::types::{CreateTopicRequest, PageResponse, TopicResponse, UpdateTopicRequest};
use super::{AppState, Caller, JsonBody, Path};
use crate::error::ApiError;

pub async fn list(
    _caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<PageResponse<TopicResponse>>, ApiError> {
    let topics = state.service.list_topics().await?;
    Ok(Json(PageResponse { data: topics.iter().map(TopicResponse::from).collect(), next_cursor: None }))
}

pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateTopicRequest>,
) -> Result<(StatusCode, Json<TopicResponse>), ApiError> {
    caller.require_admin()?;
    let topic = state.service.create_topic(body).await?;
    Ok((StatusCode::CREATED, Json(TopicResponse::from(&topic))))
}

pub async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<UpdateTopicRequest>,
) -> Result<Json<TopicResponse>, ApiError> {
    caller.require_admin()?;
    Ok(Json(TopicResponse::from(&state.service.update_topic(&name, body).await?)))
}
