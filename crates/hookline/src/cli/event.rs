//! `hookline publish` and `hookline event`: what the platform publishes for a tenant.

use anyhow::Context;
use clap::{Args, Subcommand};
use hookline_server::api::types::{
    EventResponse, PageResponse, PublishRequest, PublishResponse, ResendRequest, ResendResponse,
};
use serde_json::value::RawValue;

use super::{Answer, Api, Cell, Connection, Field, show, table};

/// `hookline publish TENANT TOPIC DATA`.
#[derive(Args)]
pub struct EventToPublish {
    tenant: String,
    topic: String,
    /// The event's data, as JSON.
    data: String,
    /// Optional meta, as JSON.
    #[arg(long)]
    meta: Option<String>,
    /// Makes the publish safe to repeat.
    #[arg(long)]
    idempotency_key: Option<String>,
}

#[derive(Subcommand)]
pub enum EventCommand {
    /// List a tenant's events, newest first.
    List {
        tenant: String,
        /// Only events of this topic.
        #[arg(long)]
        topic: Option<String>,
        /// Only events created after this time (RFC 3339, as `created` shows it).
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one event with its data.
    Show { tenant: String, event: String },
    /// Send an event again, now, to every endpoint subscribed to its topic, or to those given.
    Resend {
        tenant: String,
        event: String,
        /// Only this endpoint; repeat for several.
        #[arg(long = "endpoint")]
        endpoints: Vec<String>,
    },
}

pub async fn publish(publish: EventToPublish, connection: &Connection) -> anyhow::Result<()> {
    let api = Api::new(connection)?;
    let EventToPublish { tenant, topic, data, meta, idempotency_key } = publish;
    // The data goes to the server as written, so key order and number literals are kept exactly.
    let data: Box<RawValue> = serde_json::from_str(&data).context("DATA is not valid JSON")?;
    let meta: Option<Box<RawValue>> =
        meta.map(|meta| serde_json::from_str(&meta).context("--meta is not valid JSON")).transpose()?;
    let body = PublishRequest { topic, data: Some(&data), meta: meta.as_deref() };
    let extra: Vec<(&'static str, String)> = idempotency_key.into_iter().map(|key| ("idempotency-key", key)).collect();
    let accepted: Answer<PublishResponse> = api.post(&format!("/v1/tenants/{tenant}/events"), &body, &extra).await?;
    show(
        connection,
        &accepted,
        &[
            ("id", |accepted| accepted.id.cell()),
            ("topic", |accepted| accepted.topic.cell()),
            // The publish answer gives its time in whole seconds.
            ("created", |accepted| accepted.created.to_rfc3339()),
            ("endpoints", |accepted| accepted.endpoints.cell()),
        ],
    );
    Ok(())
}

const FIELDS: &[Field<EventResponse>] = &[
    ("id", |event| event.id.cell()),
    ("topic", |event| event.topic.cell()),
    ("created", |event| event.created.cell()),
    ("idempotency_key", |event| event.idempotency_key.cell()),
    ("data", |event| event.data.get().to_owned()),
    ("meta", |event| event.meta.as_ref().map_or_else(|| "-".to_owned(), |meta| meta.get().to_owned())),
];

pub async fn run(command: EventCommand, connection: &Connection) -> anyhow::Result<()> {
    let api = Api::new(connection)?;
    match command {
        EventCommand::List { tenant, topic, after, limit } => {
            let mut path = format!("/v1/tenants/{tenant}/events?limit={limit}");
            for (name, value) in [("topic", topic), ("after", after)] {
                if let Some(value) = value {
                    path.push_str(&format!("&{name}={}", super::query_value(&value)));
                }
            }
            let page: Answer<PageResponse<EventResponse>> = api.get(&path).await?;
            table(connection, &page, &FIELDS[..4]);
        }
        EventCommand::Show { tenant, event } => {
            show(connection, &api.get(&format!("/v1/tenants/{tenant}/events/{event}")).await?, FIELDS);
        }
        EventCommand::Resend { tenant, event, endpoints } => {
            let body = ResendRequest { endpoints: (!endpoints.is_empty()).then_some(endpoints) };
            let path = format!("/v1/tenants/{tenant}/events/{event}/resend");
            let made: Answer<ResendResponse> = api.post(&path, &body, &[]).await?;
            if connection.json {
                show(connection, &made, &[]);
                return Ok(());
            }
            let page = Answer {
                text: made.text.clone(),
                value: PageResponse { data: made.value.deliveries.clone(), next_cursor: None },
            };
            table(connection, &page, super::delivery::FIELDS);
        }
    }
    Ok(())
}
