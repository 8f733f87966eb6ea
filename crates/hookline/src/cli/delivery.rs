//! `hookline deliveries` and `hookline delivery`: the delivery log, every attempt, and sending again.

use clap::{Args, Subcommand};
use hookline_server::api::types::{DeliveryDetailResponse, DeliveryResponse, PageResponse};

use super::{Answer, Api, Cell, Connection, Field, say, show, table};

/// `hookline deliveries TENANT`: the filters of the list.
#[derive(Args)]
pub struct DeliveryList {
    tenant: String,
    #[arg(long)]
    endpoint: Option<String>,
    #[arg(long)]
    event: Option<String>,
    /// pending, succeeded, failed or cancelled.
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    topic: Option<String>,
    /// The class of the last attempt's answer: 2xx, 3xx, 4xx, 5xx or none.
    #[arg(long)]
    answer: Option<String>,
    /// Made at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Made before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

#[derive(Subcommand)]
pub enum DeliveryCommand {
    /// Show one delivery, the body it sends and every attempt.
    Show { tenant: String, delivery: String },
    /// Send a delivery again now, whatever its state.
    Retry { tenant: String, delivery: String },
}

pub(super) const FIELDS: &[Field<DeliveryResponse>] = &[
    ("id", |delivery| delivery.id.cell()),
    ("event", |delivery| delivery.event.cell()),
    ("endpoint", |delivery| delivery.endpoint.cell()),
    ("topic", |delivery| delivery.topic.cell()),
    ("status", |delivery| delivery.status.cell()),
    ("attempts", |delivery| delivery.attempts.cell()),
    ("last_status", |delivery| delivery.last_status.cell()),
    ("updated", |delivery| delivery.updated.cell()),
];

pub async fn list(list: DeliveryList, connection: &Connection) -> anyhow::Result<()> {
    let api = Api::new(connection)?;
    let DeliveryList { tenant, endpoint, event, status, topic, answer, since, until, limit } = list;
    let mut path = format!("/v1/tenants/{tenant}/deliveries?limit={limit}");
    let filters = [
        ("endpoint", endpoint),
        ("event", event),
        ("status", status),
        ("topic", topic),
        ("answer", answer),
        ("since", since),
        ("until", until),
    ];
    for (name, value) in filters {
        if let Some(value) = value {
            path.push_str(&format!("&{name}={}", super::query_value(&value)));
        }
    }
    let page: Answer<PageResponse<DeliveryResponse>> = api.get(&path).await?;
    table(connection, &page, FIELDS);
    Ok(())
}

pub async fn run(command: DeliveryCommand, connection: &Connection) -> anyhow::Result<()> {
    let api = Api::new(connection)?;
    match command {
        DeliveryCommand::Show { tenant, delivery } => {
            let found: Answer<DeliveryDetailResponse> =
                api.get(&format!("/v1/tenants/{tenant}/deliveries/{delivery}")).await?;
            if connection.json {
                show(connection, &found, &[]);
                return Ok(());
            }
            for (name, cell) in FIELDS {
                say(&format!("{name:<12}  {}", cell(&found.value.delivery)));
            }
            say(&format!("{:<12}  {}", "request_body", found.value.request_body.cell()));
            for attempt in &found.value.attempts {
                let outcome = match (&attempt.response_status, &attempt.error_detail) {
                    (Some(status), _) if (200..300).contains(status) => format!("answered {status}"),
                    (_, Some(detail)) => detail.clone(),
                    (Some(status), None) => format!("answered {status}"),
                    (None, None) => "no answer".to_owned(),
                };
                say(&format!(
                    "attempt {}     {}  {} ms  {outcome}",
                    attempt.number,
                    attempt.started.cell(),
                    attempt.duration_ms
                ));
            }
        }
        DeliveryCommand::Retry { tenant, delivery } => {
            let path = format!("/v1/tenants/{tenant}/deliveries/{delivery}/retry");
            let queued: Answer<DeliveryResponse> = api.post(&path, &serde_json::json!({}), &[]).await?;
            show(connection, &queued, FIELDS);
        }
    }
    Ok(())
}
