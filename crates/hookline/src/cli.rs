//! The operator's CLI: a client of the HTTP API, printing readable tables or, with `--json`, the API's JSON.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use hookline_core::Scheme;
use hookline_core::body::Format;
use hookline_core::duration::format_duration;
use hookline_core::id::{DeliveryId, EndpointId, EventId, KeyId, TenantId};
use hookline_core::time::Timestamp;
use hookline_core::topic::TopicName;
use hookline_dispatch::{HttpClient, TargetPolicy};
use hookline_server::api::types::{
    ApiKeyWithSecret, CreateEndpointRequest, CreateKeyRequest, CreateTenantRequest, CreateTopicRequest,
    DeliveryResponse, DeliveryStatus, EndpointResponse, EndpointWithSecret, PageResponse, ProblemResponse,
    PublishRequest, PublishResponse, TenantResponse, TopicResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

#[derive(Args)]
pub struct Connection {
    /// The Hookline server.
    #[arg(long, env = "HOOKLINE_SERVER", default_value = "http://127.0.0.1:8750", global = true)]
    server: String,
    /// API key: the admin key or a tenant key.
    #[arg(long, env = "HOOKLINE_KEY", global = true, hide_env_values = true)]
    key: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Manage tenants (admin key).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// Manage a tenant's endpoints.
    Endpoint {
        #[command(subcommand)]
        command: EndpointCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// List or add topics.
    Topic {
        #[command(subcommand)]
        command: TopicCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// Publish an event: hookline publish TENANT TOPIC '{"json":"data"}'.
    Publish {
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
        #[command(flatten)]
        connection: Connection,
    },
    /// List a tenant's deliveries, newest first.
    Deliveries {
        tenant: String,
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long)]
        event: Option<String>,
        /// pending, succeeded, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Add {
        id: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List,
    /// Create an API key for a tenant (shown once).
    Key { tenant: String },
}

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
}

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
}

struct Api {
    client: HttpClient,
    server: String,
    key: String,
}

/// What the server answered: its JSON as sent (what `--json` prints), and that JSON read into its type.
struct Answer<T> {
    text: String,
    value: T,
}

impl Api {
    fn new(connection: &Connection) -> anyhow::Result<Api> {
        let Some(key) = connection.key.clone() else {
            bail!("no API key; pass --key or set HOOKLINE_KEY (the admin key is printed when the server first starts)");
        };
        // The operator's own server is usually on a private address, so the SSRF guard does not apply here.
        let client = HttpClient::new(TargetPolicy::DangerousAllowPrivate, Duration::from_secs(30), 64 * 1024 * 1024);
        Ok(Api { client, server: connection.server.trim_end_matches('/').to_owned(), key })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Answer<T>> {
        self.send(http::Method::GET, path, None, &[]).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        extra: &[(&'static str, String)],
    ) -> anyhow::Result<Answer<T>> {
        let body = serde_json::to_string(body).context("could not write the request body")?;
        self.send(http::Method::POST, path, Some(body), extra).await
    }

    /// Sends `body`, already JSON text, and returns the answer read as `T`, or the API's error as an error.
    async fn send<T: DeserializeOwned>(
        &self,
        method: http::Method,
        path: &str,
        body: Option<String>,
        extra: &[(&'static str, String)],
    ) -> anyhow::Result<Answer<T>> {
        let url = format!("{}{path}", self.server);
        let mut headers = vec![("authorization", format!("Bearer {}", self.key))];
        headers.extend(extra.iter().cloned());
        let payload = match body {
            Some(body) => {
                headers.push(("content-type", "application/json".to_owned()));
                Bytes::from(body)
            }
            None => Bytes::new(),
        };
        let exchange = self.client.request(method, &url, &headers, payload).await;
        let response =
            exchange.result.map_err(|(kind, detail)| anyhow::anyhow!("could not reach {url} ({kind:?}): {detail}"))?;
        if !(200..300).contains(&response.status) {
            match serde_json::from_str::<ProblemResponse>(&response.body) {
                Ok(problem) => bail!("{} {}: {}", response.status, problem.code, problem.detail),
                Err(_) => bail!("{} error: {}", response.status, response.body),
            }
        }
        let value = serde_json::from_str(&response.body).with_context(|| {
            format!(
                "the server answered {} with a body that is not the JSON expected: {}",
                response.status, response.body
            )
        })?;
        Ok(Answer { text: response.body, value })
    }
}

pub async fn run(command: ClientCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClientCommand::Tenant { command, connection } => {
            let api = Api::new(&connection)?;
            let fields: &[Field<TenantResponse>] = &[
                ("id", |tenant| tenant.id.cell()),
                ("name", |tenant| tenant.name.cell()),
                ("created", |tenant| tenant.created.cell()),
            ];
            match command {
                TenantCommand::Add { id, name } => {
                    let tenant = api.post("/v1/tenants", &CreateTenantRequest { id, name }, &[]).await?;
                    show(&connection, &tenant, fields);
                }
                TenantCommand::List => {
                    let page = api.get("/v1/tenants?limit=1000").await?;
                    table(&connection, &page, fields);
                }
                TenantCommand::Key { tenant } => {
                    let path = format!("/v1/tenants/{tenant}/keys");
                    let key: Answer<ApiKeyWithSecret> = api.post(&path, &CreateKeyRequest::default(), &[]).await?;
                    show(
                        &connection,
                        &key,
                        &[
                            ("id", |key| key.api_key.id.cell()),
                            ("tenant", |key| key.api_key.tenant.cell()),
                            ("key", |key| key.key.cell()),
                        ],
                    );
                }
            }
        }
        ClientCommand::Endpoint { command, connection } => {
            let api = Api::new(&connection)?;
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
                        &connection,
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
                        &connection,
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
                    let found: Answer<EndpointWithSecret> =
                        api.get(&format!("/v1/tenants/{tenant}/endpoints/{endpoint}")).await?;
                    show(
                        &connection,
                        &found,
                        &[
                            ("id", |shown| shown.endpoint.id.cell()),
                            ("url", |shown| shown.endpoint.url.cell()),
                            ("topics", |shown| shown.endpoint.topics.cell()),
                            ("description", |shown| shown.endpoint.description.cell()),
                            ("enabled", |shown| shown.endpoint.enabled.cell()),
                            ("format", |shown| shown.endpoint.format.cell()),
                            ("signing", |shown| shown.endpoint.signing.cell()),
                            ("retry_schedule", |shown| shown.endpoint.retry_schedule.cell()),
                            ("secret", |shown| shown.secret.cell()),
                        ],
                    );
                }
            }
        }
        ClientCommand::Topic { command, connection } => {
            let api = Api::new(&connection)?;
            match command {
                TopicCommand::List => {
                    let page: Answer<PageResponse<TopicResponse>> = api.get("/v1/topics").await?;
                    table(
                        &connection,
                        &page,
                        &[
                            ("name", |topic| topic.name.cell()),
                            ("deprecated", |topic| topic.deprecated.cell()),
                            ("description", |topic| topic.description.cell()),
                        ],
                    );
                }
                TopicCommand::Add { name, description } => {
                    let topic: Answer<TopicResponse> =
                        api.post("/v1/topics", &CreateTopicRequest { name, description }, &[]).await?;
                    show(
                        &connection,
                        &topic,
                        &[("name", |topic| topic.name.cell()), ("description", |topic| topic.description.cell())],
                    );
                }
            }
        }
        ClientCommand::Publish { tenant, topic, data, meta, idempotency_key, connection } => {
            let api = Api::new(&connection)?;
            // The data goes to the server as written, so key order and number literals are kept exactly.
            let data: Box<RawValue> = serde_json::from_str(&data).context("DATA is not valid JSON")?;
            let meta: Option<Box<RawValue>> =
                meta.map(|meta| serde_json::from_str(&meta).context("--meta is not valid JSON")).transpose()?;
            let body = PublishRequest { topic, data: Some(&data), meta: meta.as_deref() };
            let extra: Vec<(&'static str, String)> =
                idempotency_key.into_iter().map(|key| ("idempotency-key", key)).collect();
            let accepted: Answer<PublishResponse> =
                api.post(&format!("/v1/tenants/{tenant}/events"), &body, &extra).await?;
            show(
                &connection,
                &accepted,
                &[
                    ("id", |accepted| accepted.id.cell()),
                    ("topic", |accepted| accepted.topic.cell()),
                    // The publish answer gives its time in whole seconds.
                    ("created", |accepted| accepted.created.to_rfc3339()),
                    ("endpoints", |accepted| accepted.endpoints.cell()),
                ],
            );
        }
        ClientCommand::Deliveries { tenant, endpoint, event, status, limit, connection } => {
            let api = Api::new(&connection)?;
            let mut path = format!("/v1/tenants/{tenant}/deliveries?limit={limit}");
            for (name, value) in [("endpoint", endpoint), ("event", event), ("status", status)] {
                if let Some(value) = value {
                    path.push_str(&format!("&{name}={value}"));
                }
            }
            let page: Answer<PageResponse<DeliveryResponse>> = api.get(&path).await?;
            table(
                &connection,
                &page,
                &[
                    ("id", |delivery| delivery.id.cell()),
                    ("event", |delivery| delivery.event.cell()),
                    ("endpoint", |delivery| delivery.endpoint.cell()),
                    ("topic", |delivery| delivery.topic.cell()),
                    ("status", |delivery| delivery.status.cell()),
                    ("attempts", |delivery| delivery.attempts.cell()),
                    ("last_status", |delivery| delivery.last_status.cell()),
                    ("updated", |delivery| delivery.updated.cell()),
                ],
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a line; a closed pipe (`hookline … | head`) ends the program quietly instead of panicking.
fn say(line: &str) {
    use std::io::Write;
    if writeln!(std::io::stdout().lock(), "{line}").is_err() {
        std::process::exit(0);
    }
}

/// A line of a record or a column of a table: its name, and its text from a field of the record.
type Field<T> = (&'static str, fn(&T) -> String);

/// A field's text in a record or a table, as the API writes the value: `-` for none, lists joined by commas.
trait Cell {
    fn cell(&self) -> String;
}

/// Values whose text is their `Display`.
macro_rules! display_cell {
    ($($type:ty),*) => {
        $(impl Cell for $type {
            fn cell(&self) -> String {
                self.to_string()
            }
        })*
    };
}

display_cell!(String, bool, u16, u32, u64, TenantId, KeyId, EndpointId, EventId, DeliveryId, TopicName, Format, Scheme);

impl Cell for Timestamp {
    fn cell(&self) -> String {
        self.to_rfc3339_millis()
    }
}

impl Cell for Duration {
    fn cell(&self) -> String {
        format_duration(*self)
    }
}

impl Cell for DeliveryStatus {
    fn cell(&self) -> String {
        self.as_str().to_owned()
    }
}

impl<T: Cell> Cell for Option<T> {
    fn cell(&self) -> String {
        self.as_ref().map_or_else(|| "-".to_owned(), Cell::cell)
    }
}

impl<T: Cell> Cell for Vec<T> {
    fn cell(&self) -> String {
        self.iter().map(Cell::cell).collect::<Vec<_>>().join(",")
    }
}

/// The server's JSON, indented. It was read into its type already, so it is JSON; `Value` only re-indents it.
fn pretty(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_else(|_| text.to_owned())
}

/// One record as `field: value` lines, or with `--json` the server's JSON.
fn show<T>(connection: &Connection, answer: &Answer<T>, fields: &[Field<T>]) {
    if connection.json {
        say(&pretty(&answer.text));
        return;
    }
    let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, cell) in fields {
        say(&format!("{name:<width$}  {}", cell(&answer.value)));
    }
}

/// A page's `data` as an aligned table, or with `--json` the server's JSON.
fn table<T>(connection: &Connection, answer: &Answer<PageResponse<T>>, columns: &[Field<T>]) {
    if connection.json {
        say(&pretty(&answer.text));
        return;
    }
    let rows: Vec<Vec<String>> =
        answer.value.data.iter().map(|item| columns.iter().map(|(_, cell)| cell(item)).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(index, (name, _))| rows.iter().map(|row| row[index].chars().count()).max().unwrap_or(0).max(name.len()))
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(text, width)| format!("{text:<width$}")).collect();
        say(padded.join("  ").trim_end());
    };
    line(columns.iter().map(|(name, _)| name.to_uppercase()).collect());
    if rows.is_empty() {
        say("(none)");
    }
    for row in rows {
        line(row);
    }
}
