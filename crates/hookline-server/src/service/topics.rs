//! The catalogue of topics: their names, descriptions, deprecation and example `data`.

use hookline_core::topic::{TopicName, seed_example};
use hookline_store::{Topic, TopicPatch};

use super::{Service, ServiceError};
use crate::api::types::{CreateTopicRequest, UpdateTopicRequest};

/// The largest example a topic may carry, as compact JSON.
const MAX_EXAMPLE_BYTES: usize = 64 * 1024;

impl Service {
    pub async fn list_topics(&self) -> Result<Vec<Topic>, ServiceError> {
        Ok(self.store.list_topics().await?)
    }

    pub async fn create_topic(&self, request: CreateTopicRequest) -> Result<Topic, ServiceError> {
        let name: TopicName = request.name.parse().map_err(|error: hookline_core::topic::TopicNameError| {
            ServiceError::invalid("invalid_topic", error.to_string())
        })?;
        let example = request.example.as_ref().map(check_example).transpose()?;
        if let Some(template) = &request.template {
            check_template(template, example.as_deref().or_else(|| seed_example(name.as_str())))?;
        }
        Ok(self.store.create_topic(name, request.description, example, request.template).await?)
    }

    pub async fn update_topic(&self, name: &str, change: UpdateTopicRequest) -> Result<Topic, ServiceError> {
        let topic: TopicName = name.parse().map_err(|_| ServiceError::not_found("topic", name))?;
        let example = match &change.example {
            Some(Some(example)) => Some(Some(check_example(example)?)),
            Some(None) => Some(None),
            None => None,
        };
        if let Some(Some(template)) = &change.template {
            // Checked against the example the topic will have after this change.
            let example = match &example {
                Some(Some(example)) => Some(example.clone()),
                Some(None) => seed_example(topic.as_str()).map(str::to_owned),
                None => {
                    let current = self.store.get_topic(topic.clone()).await?;
                    current.ok_or_else(|| ServiceError::not_found("topic", name))?.example
                }
            };
            check_template(template, example.as_deref())?;
        }
        let patch = TopicPatch {
            description: change.description,
            deprecated: change.deprecated,
            example,
            template: change.template,
        };
        self.store.update_topic(topic, patch).await?.ok_or_else(|| ServiceError::not_found("topic", name))
    }
}

/// A chat template, checked against the example `data` of its topic.
fn check_template(template: &str, example: Option<&str>) -> Result<(), ServiceError> {
    hookline_core::chat::check_template(template, example)
        .map_err(|error| ServiceError::invalid("invalid_template", error.to_string()))
}

/// An example as it is stored: compact JSON, of bounded size.
fn check_example(example: &serde_json::Value) -> Result<String, ServiceError> {
    // A `Value` always serialises.
    let text = serde_json::to_string(example).unwrap_or_default();
    if text.len() > MAX_EXAMPLE_BYTES {
        return Err(ServiceError::invalid(
            "invalid_example",
            format!("the example is {} bytes of JSON; keep it under {MAX_EXAMPLE_BYTES}", text.len()),
        ));
    }
    Ok(text)
}
