//! `hookline endpoint`: where a tenant's webhooks go.

use clap::Subcommand;
use hookline_server::api::types::{
    CreateEndpointRequest, EndpointResponse, EndpointWithSecret, PageResponse, UpdateEndpointRequest,
};

use super::{Answer, Api, Cell, Connection, Field, say, show, table};

#[derive(Subcommand)]
pub enum EndpointCommand {
    /// Add an endpoint for a tenant (Herald's "reach out to set up", done by the operator).
    Add {
        tenant: String,
        url: String,
        /// A topic to subscribe to; repeat for several.
        #[arg(long = "topic", required = true)]
        topics: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// envelope (default) or data.
        #[arg(long)]
        format: Option<String>,
        /// Comma-separated schemes: heron, herald, standard.
        #[arg(long, value_delimiter = ',')]
        signing: Vec<String>,
        /// Comma-separated retry delays, such as 3m,3m.
        #[arg(long, value_delimiter = ',')]
        retry: Vec<String>,
        /// Use this secret instead of a generated one.
        #[arg(long)]
        secret: Option<String>,
    },
    /// List a tenant's endpoints.
    List { tenant: String },
    /// Show one endpoint, with its secret.
    Show { tenant: String, endpoint: String },
    /// Change an endpoint: only what is given changes.
    Update {
        tenant: String,
        endpoint: String,
        #[arg(long)]
        url: Option<String>,
        /// The topics it subscribes to, replacing the current ones; repeat for several.
        #[arg(long = "topic")]
        topics: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// envelope or data.
        #[arg(long)]
        format: Option<String>,
        /// Comma-separated schemes: heron, herald, standard.
        #[arg(long, value_delimiter = ',')]
        signing: Vec<String>,
        /// Comma-separated retry delays, such as 3m,3m.
        #[arg(long, value_delimiter = ',', conflicts_with = "default_retry")]
        retry: Vec<String>,
        /// Go back to the server's retry schedule.
        #[arg(long)]
        default_retry: bool,
        /// A new secret, replacing the old one at once.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Stop sending to an endpoint; its deliveries wait until it is enabled again.
    Disable { tenant: String, endpoint: String },
    /// Send to an endpoint again.
    Enable { tenant: String, endpoint: String },
    /// Delete an endpoint: it sends nothing more and its pending deliveries are cancelled.
    Delete { tenant: String, endpoint: String },
}

const DETAIL: &[Field<EndpointWithSecret>] = &[
    ("id", |shown| shown.endpoint.id.cell()),
    ("url", |shown| shown.endpoint.url.cell()),
    ("topics", |shown| shown.endpoint.topics.cell()),
    ("description", |shown| shown.endpoint.description.cell()),
    ("enabled", |shown| shown.endpoint.enabled.cell()),
    ("format", |shown| shown.endpoint.format.cell()),
    ("signing", |shown| shown.endpoint.signing.cell()),
    ("retry_schedule", |shown| shown.endpoint.retry_schedule.cell()),
    ("secret", |shown| shown.secret.cell()),
];

pub async fn run(command: EndpointCommand, connection: &Connection) -> anyhow::Result<()> {
    let api = Api::new(connection)?;
    let path = |tenant: &str, endpoint: &str| format!("/v1/tenants/{tenant}/endpoints/{endpoint}");
    match command {
        EndpointCommand::Add { tenant, url, topics, description, format, signing, retry, secret } => {
            let body = CreateEndpointRequest {
                url,
                topics,
                description: description.unwrap_or_default(),
                enabled: None,
                format,
                signing: (!signing.is_empty()).then_some(signing),
                retry_schedule: (!retry.is_empty()).then_some(retry),
                secret,
            };
            let endpoint: Answer<EndpointWithSecret> =
                api.post(&format!("/v1/tenants/{tenant}/endpoints"), &body, &[]).await?;
            show(
                connection,
                &endpoint,
                &[
                    ("id", |shown| shown.endpoint.id.cell()),
                    ("url", |shown| shown.endpoint.url.cell()),
                    ("topics", |shown| shown.endpoint.topics.cell()),
                    ("format", |shown| shown.endpoint.format.cell()),
                    ("signing", |shown| shown.endpoint.signing.cell()),
                    ("secret", |shown| shown.secret.cell()),
                ],
            );
        }
        EndpointCommand::List { tenant } => {
            let page: Answer<PageResponse<EndpointResponse>> =
                api.get(&format!("/v1/tenants/{tenant}/endpoints?limit=1000")).await?;
            table(
                connection,
                &page,
                &[
                    ("id", |endpoint| endpoint.id.cell()),
                    ("url", |endpoint| endpoint.url.cell()),
                    ("topics", |endpoint| endpoint.topics.cell()),
                    ("enabled", |endpoint| endpoint.enabled.cell()),
                    ("signing", |endpoint| endpoint.signing.cell()),
                ],
            );
        }
        EndpointCommand::Show { tenant, endpoint } => {
            show(connection, &api.get(&path(&tenant, &endpoint)).await?, DETAIL)
        }
        EndpointCommand::Update {
            tenant,
            endpoint,
            url,
            topics,
            description,
            format,
            signing,
            retry,
            default_retry,
            secret,
        } => {
            let retry_schedule = match (default_retry, retry.is_empty()) {
                (true, _) => Some(None),
                (false, false) => Some(Some(retry)),
                (false, true) => None,
            };
            let change = UpdateEndpointRequest {
                url,
                topics: (!topics.is_empty()).then_some(topics),
                description,
                enabled: None,
                format,
                signing: (!signing.is_empty()).then_some(signing),
                retry_schedule,
                secret,
            };
            show(connection, &api.patch(&path(&tenant, &endpoint), &change).await?, DETAIL);
        }
        EndpointCommand::Disable { tenant, endpoint } => {
            let change = UpdateEndpointRequest { enabled: Some(false), ..UpdateEndpointRequest::default() };
            show(connection, &api.patch(&path(&tenant, &endpoint), &change).await?, DETAIL);
        }
        EndpointCommand::Enable { tenant, endpoint } => {
            let change = UpdateEndpointRequest { enabled: Some(true), ..UpdateEndpointRequest::default() };
            show(connection, &api.patch(&path(&tenant, &endpoint), &change).await?, DETAIL);
        }
        EndpointCommand::Delete { tenant, endpoint } => {
            api.delete(&path(&tenant, &endpoint)).await?;
            say(&format!("endpoint {endpoint} deleted; its pending deliveries are cancelled"));
        }
    }
    Ok(())
}
