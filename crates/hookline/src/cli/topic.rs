//! `hookline topic`: the catalogue of topics (changes need the admin key).

use anyhow::Context;
use clap::Subcommand;
use hookline_server::api::types::{CreateTopicRequest, PageResponse, TopicResponse, UpdateTopicRequest};

use super::{Answer, Api, Cell, Connection, Field, show, table};

#[derive(Subcommand)]
pub enum TopicCommand {
    /// List the topic catalogue.
    List,
    /// Add a topic (admin key).
    Add {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The `data` test events of this topic send, as JSON.
        #[arg(long)]
        example: Option<String>,
        /// The text of its chat messages, naming fields of the data: 'end user {data.end_user_id} needs review'.
        #[arg(long)]
        template: Option<String>,
    },
    /// Change a topic's description, or deprecate it (no new subscriptions; existing ones go on) or bring it
    /// back (admin key).
    Update {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// true to deprecate, false to undo it.
        #[arg(long)]
        deprecated: Option<bool>,
        /// A new example `data`, as JSON; `null` removes it.
        #[arg(long)]
        example: Option<String>,
        /// A new chat template, naming fields of the data ('{data.end_user_id} needs review'); '' removes it.
        #[arg(long)]
        template: Option<String>,
    },
}

const FIELDS: &[Field<TopicResponse>] = &[
    ("name", |topic| topic.name.cell()),
    ("deprecated", |topic| topic.deprecated.cell()),
    ("description", |topic| topic.description.cell()),
];

/// A topic shown alone: with its example.
const DETAIL: &[Field<TopicResponse>] = &[
    ("name", |topic| topic.name.cell()),
    ("deprecated", |topic| topic.deprecated.cell()),
    ("description", |topic| topic.description.cell()),
    ("example", |topic| topic.example.as_ref().map_or_else(|| "-".to_owned(), |example| example.to_string())),
    ("template", |topic| topic.template.cell()),
];

/// The example a flag gives, read as JSON.
fn example(text: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(text).context("--example is not valid JSON")
}

pub async fn run(command: TopicCommand, connection: &Connection) -> anyhow::Result<()> {
    let api = Api::new(connection)?;
    match command {
        TopicCommand::List => {
            let page: Answer<PageResponse<TopicResponse>> = api.get("/v1/topics").await?;
            table(connection, &page, FIELDS);
        }
        TopicCommand::Add { name, description, example: given, template } => {
            let example = given.as_deref().map(example).transpose()?;
            let topic: Answer<TopicResponse> =
                api.post("/v1/topics", &CreateTopicRequest { name, description, example, template }, &[]).await?;
            show(connection, &topic, DETAIL);
        }
        TopicCommand::Update { name, description, deprecated, example: given, template } => {
            let example =
                given.as_deref().map(example).transpose()?.map(|value| Some(value).filter(|value| !value.is_null()));
            let template = template.map(|template| Some(template).filter(|template| !template.is_empty()));
            let change = UpdateTopicRequest { description, deprecated, example, template };
            let topic: Answer<TopicResponse> = api.patch(&format!("/v1/topics/{name}"), &change).await?;
            show(connection, &topic, DETAIL);
        }
    }
    Ok(())
}
