//! The operator's CLI: a client of the HTTP API, printing readable tables or, with `--json`, the API's JSON. One
//! module per resource (as `hookline <resource> <action>`), each a clap enum and its `run`; this module holds what
//! they share: the connection flags, the API client and the output.

mod delivery;
mod endpoint;
mod event;
mod tenant;
mod topic;

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
use hookline_server::api::types::{DeliveryStatus, PageResponse, ProblemResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;

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
        command: tenant::TenantCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// Manage a tenant's endpoints.
    Endpoint {
        #[command(subcommand)]
        command: endpoint::EndpointCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// List, add or change topics.
    Topic {
        #[command(subcommand)]
        command: topic::TopicCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// Publish an event: hookline publish TENANT TOPIC '{"json":"data"}'.
    Publish {
        #[command(flatten)]
        event: event::EventToPublish,
        #[command(flatten)]
        connection: Connection,
    },
    /// List or show a tenant's events.
    Event {
        #[command(subcommand)]
        command: event::EventCommand,
        #[command(flatten)]
        connection: Connection,
    },
    /// List a tenant's deliveries, newest first.
    Deliveries {
        #[command(flatten)]
        filter: delivery::DeliveryList,
        #[command(flatten)]
        connection: Connection,
    },
    /// Show one delivery with its attempts, or send it again.
    Delivery {
        #[command(subcommand)]
        command: delivery::DeliveryCommand,
        #[command(flatten)]
        connection: Connection,
    },
}

pub async fn run(command: ClientCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClientCommand::Tenant { command, connection } => tenant::run(command, &connection).await?,
        ClientCommand::Endpoint { command, connection } => endpoint::run(command, &connection).await?,
        ClientCommand::Topic { command, connection } => topic::run(command, &connection).await?,
        ClientCommand::Publish { event, connection } => event::publish(event, &connection).await?,
        ClientCommand::Event { command, connection } => event::run(command, &connection).await?,
        ClientCommand::Deliveries { filter, connection } => delivery::list(filter, &connection).await?,
        ClientCommand::Delivery { command, connection } => delivery::run(command, &connection).await?,
    }
    Ok(ExitCode::SUCCESS)
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

    async fn patch<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> anyhow::Result<Answer<T>> {
        let body = serde_json::to_string(body).context("could not write the request body")?;
        self.send(http::Method::PATCH, path, Some(body), &[]).await
    }

    /// A `DELETE`, whose success has no body.
    async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.exchange(http::Method::DELETE, path, None, &[]).await.map(|_| ())
    }

    /// Sends `body`, already JSON text, and returns the answer read as `T`, or the API's error as an error.
    async fn send<T: DeserializeOwned>(
        &self,
        method: http::Method,
        path: &str,
        body: Option<String>,
        extra: &[(&'static str, String)],
    ) -> anyhow::Result<Answer<T>> {
        let (status, text) = self.exchange(method, path, body, extra).await?;
        let value = serde_json::from_str(&text).with_context(|| {
            format!("the server answered {status} with a body that is not the JSON expected: {text}")
        })?;
        Ok(Answer { text, value })
    }

    /// Sends `body` and returns a success's status and body, or the API's error as an error.
    async fn exchange(
        &self,
        method: http::Method,
        path: &str,
        body: Option<String>,
        extra: &[(&'static str, String)],
    ) -> anyhow::Result<(u16, String)> {
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
        Ok((response.status, response.body))
    }
}

/// `value` written into a query string: what is not a letter, digit or one of `-._~` percent-encoded.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
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
