//! `hookline topic`: the catalogue of topics (changes need the admin key).

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
    },
}

const FIELDS: &[Field<TopicResponse>] = &[
    ("name", |topic| topic.name.cell()),
    ("deprecated", |topic| topic.deprecated.cell()),
    ("description", |topic| topic.description.cell()),
];

pub async fn run(command: TopicCommand, connection: &Connection) -> anyhow::Result<()> {
    let api = Api::new(connection)?;
    match command {
        TopicCommand::List => {
            let page: Answer<PageResponse<TopicResponse>> = api.get("/v1/topics").await?;
            table(connection, &page, FIELDS);
        }
        TopicCommand::Add { name, description } => {
            let topic: Answer<TopicResponse> =
                api.post("/v1/topics", &CreateTopicRequest { name, description }, &[]).await?;
            show(connection, &topic, FIELDS);
        }
        TopicCommand::Update { name, description, deprecated } => {
            let change = UpdateTopicRequest { description, deprecated };
            let topic: Answer<TopicResponse> = api.patch(&format!("/v1/topics/{name}"), &change).await?;
            show(connection, &topic, FIELDS);
        }
    }
    Ok(())
}
