//! `/v1/topics`: the catalogue of topics endpoints subscribe to.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hookline_core::topic::TopicName;
use hookline_store::{Page, Topic};
use serde::Deserialize;

use super::{AppState, Caller, JsonBody, Path};
use crate::error::ApiError;

pub async fn list(_caller: Caller, State(state): State<AppState>) -> Result<Json<Page<Topic>>, ApiError> {
    let topics = state.store.list_topics().await?;
    Ok(Json(Page { data: topics, next_cursor: None }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTopic {
    name: String,
    #[serde(default)]
    description: String,
}

pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewTopic>,
) -> Result<(StatusCode, Json<Topic>), ApiError> {
    caller.require_admin()?;
    let name: TopicName = body.name.parse().map_err(|error: hookline_core::topic::TopicNameError| {
        ApiError::unprocessable("invalid_topic", error.to_string())
    })?;
    let topic = state.store.create_topic(name, body.description).await?;
    Ok((StatusCode::CREATED, Json(topic)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicPatch {
    description: Option<String>,
    deprecated: Option<bool>,
}

pub async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<TopicPatch>,
) -> Result<Json<Topic>, ApiError> {
    caller.require_admin()?;
    let topic_name: TopicName = name.parse().map_err(|_| ApiError::not_found("topic", &name))?;
    match state.store.update_topic(topic_name, body.description, body.deprecated).await? {
        Some(topic) => Ok(Json(topic)),
        None => Err(ApiError::not_found("topic", &name)),
    }
}
