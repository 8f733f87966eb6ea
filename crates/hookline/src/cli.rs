//! The operator's CLI: a client of the HTTP API, printing readable tables or, with `--json`, the API's JSON.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use hookline_dispatch::{HttpClient, TargetPolicy};
use serde_json::value::RawValue;
use serde_json::{Value, json};

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

impl Api {
    fn new(connection: &Connection) -> anyhow::Result<Api> {
        let Some(key) = connection.key.clone() else {
            bail!("no API key; pass --key or set HOOKLINE_KEY (the admin key is printed when the server first starts)");
        };
        // The operator's own server is usually on a private address, so the SSRF guard does not apply here.
        let client = HttpClient::new(TargetPolicy::DangerousAllowPrivate, Duration::from_secs(30), 64 * 1024 * 1024);
        Ok(Api { client, server: connection.server.trim_end_matches('/').to_owned(), key })
    }

    async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Value>,
        extra: &[(&'static str, String)],
    ) -> anyhow::Result<Value> {
        self.send(method, path, body.map(|body| body.to_string()), extra).await
    }

    /// Sends `body`, already JSON text, and returns the answer's JSON or the API's error as an error.
    async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Option<String>,
        extra: &[(&'static str, String)],
    ) -> anyhow::Result<Value> {
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
        let value: Value = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&response.body)
                .with_context(|| format!("the server answered {} with a body that is not JSON", response.status))?
        };
        if !(200..300).contains(&response.status) {
            let code = value.get("code").and_then(Value::as_str).unwrap_or("error");
            let detail = value.get("detail").and_then(Value::as_str).unwrap_or(&response.body);
            bail!("{} {code}: {detail}", response.status);
        }
        Ok(value)
    }
}

pub async fn run(command: ClientCommand) -> anyhow::Result<ExitCode> {
    use http::Method;
    match command {
        ClientCommand::Tenant { command, connection } => {
            let api = Api::new(&connection)?;
            match command {
                TenantCommand::Add { id, name } => {
                    let tenant =
                        api.call(Method::POST, "/v1/tenants", Some(json!({"id": id, "name": name})), &[]).await?;
                    show(&connection, &tenant, &["id", "name", "created"]);
                }
                TenantCommand::List => {
                    let page = api.call(Method::GET, "/v1/tenants?limit=1000", None, &[]).await?;
                    table(&connection, &page, &["id", "name", "created"]);
                }
                TenantCommand::Key { tenant } => {
                    let key =
                        api.call(Method::POST, &format!("/v1/tenants/{tenant}/keys"), Some(json!({})), &[]).await?;
                    show(&connection, &key, &["id", "tenant", "key"]);
                }
            }
        }
        ClientCommand::Endpoint { command, connection } => {
            let api = Api::new(&connection)?;
            match command {
                EndpointCommand::Add { tenant, url, topics, description, format, signing, retry, secret } => {
                    let mut body = json!({"url": url, "topics": topics});
                    let fields = [
                        ("description", description.map(Value::from)),
                        ("format", format.map(Value::from)),
                        ("secret", secret.map(Value::from)),
                    ];
                    for (name, value) in fields {
                        if let Some(value) = value {
                            body[name] = value;
                        }
                    }
                    if !signing.is_empty() {
                        body["signing"] = json!(signing);
                    }
                    if !retry.is_empty() {
                        body["retry_schedule"] = json!(retry);
                    }
                    let endpoint =
                        api.call(Method::POST, &format!("/v1/tenants/{tenant}/endpoints"), Some(body), &[]).await?;
                    show(&connection, &endpoint, &["id", "url", "topics", "format", "signing", "secret"]);
                }
                EndpointCommand::List { tenant } => {
                    let page =
                        api.call(Method::GET, &format!("/v1/tenants/{tenant}/endpoints?limit=1000"), None, &[]).await?;
                    table(&connection, &page, &["id", "url", "topics", "enabled", "signing"]);
                }
                EndpointCommand::Show { tenant, endpoint } => {
                    let found =
                        api.call(Method::GET, &format!("/v1/tenants/{tenant}/endpoints/{endpoint}"), None, &[]).await?;
                    show(
                        &connection,
                        &found,
                        &[
                            "id",
                            "url",
                            "topics",
                            "description",
                            "enabled",
                            "format",
                            "signing",
                            "retry_schedule",
                            "secret",
                        ],
                    );
                }
            }
        }
        ClientCommand::Topic { command, connection } => {
            let api = Api::new(&connection)?;
            match command {
                TopicCommand::List => {
                    let page = api.call(Method::GET, "/v1/topics", None, &[]).await?;
                    table(&connection, &page, &["name", "deprecated", "description"]);
                }
                TopicCommand::Add { name, description } => {
                    let topic = api
                        .call(Method::POST, "/v1/topics", Some(json!({"name": name, "description": description})), &[])
                        .await?;
                    show(&connection, &topic, &["name", "description"]);
                }
            }
        }
        ClientCommand::Publish { tenant, topic, data, meta, idempotency_key, connection } => {
            let api = Api::new(&connection)?;
            // The data goes to the server as written, so key order and number literals are kept exactly.
            let data: Box<RawValue> = serde_json::from_str(&data).context("DATA is not valid JSON")?;
            let mut body = format!("{{\"topic\":{},\"data\":{}", json!(topic), data.get());
            if let Some(meta) = meta {
                let meta: Box<RawValue> = serde_json::from_str(&meta).context("--meta is not valid JSON")?;
                body.push_str(&format!(",\"meta\":{}", meta.get()));
            }
            body.push('}');
            let extra: Vec<(&'static str, String)> =
                idempotency_key.into_iter().map(|key| ("idempotency-key", key)).collect();
            let accepted = api.send(Method::POST, &format!("/v1/tenants/{tenant}/events"), Some(body), &extra).await?;
            show(&connection, &accepted, &["id", "topic", "created", "endpoints"]);
        }
        ClientCommand::Deliveries { tenant, endpoint, event, status, limit, connection } => {
            let api = Api::new(&connection)?;
            let mut path = format!("/v1/tenants/{tenant}/deliveries?limit={limit}");
            for (name, value) in [("endpoint", endpoint), ("event", event), ("status", status)] {
                if let Some(value) = value {
                    path.push_str(&format!("&{name}={value}"));
                }
            }
            let page = api.call(Method::GET, &path, None, &[]).await?;
            table(
                &connection,
                &page,
                &["id", "event", "endpoint", "topic", "status", "attempts", "last_status", "updated"],
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

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items.iter().map(|item| cell(Some(item))).collect::<Vec<_>>().join(","),
        Some(other) => other.to_string(),
    }
}

/// One record as `field: value` lines.
fn show(connection: &Connection, value: &Value, fields: &[&str]) {
    if connection.json {
        say(&serde_json::to_string_pretty(value).unwrap_or_default());
        return;
    }
    let width = fields.iter().map(|field| field.len()).max().unwrap_or(0);
    for field in fields {
        say(&format!("{field:<width$}  {}", cell(value.get(field))));
    }
}

/// A page's `data` as an aligned table.
fn table(connection: &Connection, page: &Value, columns: &[&str]) {
    if connection.json {
        say(&serde_json::to_string_pretty(page).unwrap_or_default());
        return;
    }
    let rows: Vec<Vec<String>> = page
        .get("data")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(|item| columns.iter().map(|column| cell(item.get(column))).collect()).collect())
        .unwrap_or_default();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(index, column)| rows.iter().map(|row| row[index].chars().count()).max().unwrap_or(0).max(column.len()))
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(text, width)| format!("{text:<width$}")).collect();
        say(padded.join("  ").trim_end());
    };
    line(columns.iter().map(|column| column.to_uppercase()).collect());
    if rows.is_empty() {
        say("(none)");
    }
    for row in rows {
        line(row);
    }
}
