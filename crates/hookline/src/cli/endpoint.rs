//! `hookline endpoint`: where a tenant's webhooks go.

use anyhow::{Context, bail};
use clap::Subcommand;
use hookline_core::duration::format_duration;
use hookline_server::api::types::{
    CreateEndpointRequest, DeliveryDetailResponse, EndpointResponse, EndpointSecretResponse, EndpointStatsResponse,
    EndpointWithSecret, PageResponse, RecoverRequest, RecoveryResponse, RotateSecretRequest, TestEventRequest,
    TestEventResponse, UpdateEndpointRequest,
};
use serde_json::value::RawValue;

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
        /// envelope (default), data, slack, discord or teams (a Slack, Discord or Teams URL chooses its own).
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
        /// A request header of its own, sent on every attempt, as 'Name: value'; repeat for several.
        #[arg(long = "header", value_parser = parse_header)]
        headers: Vec<(String, String)>,
    },
    /// List a tenant's endpoints.
    List { tenant: String },
    /// Show one endpoint.
    Show { tenant: String, endpoint: String },
    /// Show an endpoint's health and its successes and failures per hour over the last seven days.
    Stats { tenant: String, endpoint: String },
    /// Print an endpoint's signing secret and, during a rotation's grace period, the previous one.
    Secret { tenant: String, endpoint: String },
    /// Give an endpoint a new signing secret; the current one keeps signing for the grace period.
    RotateSecret {
        tenant: String,
        endpoint: String,
        /// How long the current secret keeps signing: 24h by default, at most 7d, 0s for none.
        #[arg(long)]
        grace: Option<String>,
        /// Use this secret instead of a generated one.
        #[arg(long)]
        secret: Option<String>,
    },
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
        /// envelope, data, slack, discord or teams.
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
        /// Its own request headers, replacing the current ones, as 'Name: value'; repeat for several.
        #[arg(long = "header", value_parser = parse_header, conflicts_with = "no_headers")]
        headers: Vec<(String, String)>,
        /// Remove its own request headers.
        #[arg(long)]
        no_headers: bool,
    },
    /// Stop sending to an endpoint; its deliveries wait until it is enabled again.
    Disable { tenant: String, endpoint: String },
    /// Send to an endpoint again.
    Enable { tenant: String, endpoint: String },
    /// Delete an endpoint: it sends nothing more and its pending deliveries are cancelled.
    Delete { tenant: String, endpoint: String },
    /// Send a test event of TOPIC to this endpoint alone, wait for its first attempt and print what happened.
    Test {
        tenant: String,
        endpoint: String,
        topic: String,
        /// The event's data, as JSON (default: the topic's example).
        #[arg(long)]
        data: Option<String>,
        /// How long to wait for the first attempt.
        #[arg(long, default_value = "30s", value_parser = parse_wait)]
        wait: std::time::Duration,
    },
    /// Queue again the endpoint's failed deliveries made since a time, and follow the recovery to its end.
    Recover {
        tenant: String,
        endpoint: String,
        /// The window's start, RFC 3339 (2026-12-01T00:00:00Z).
        #[arg(long)]
        since: String,
        /// The window's end, RFC 3339; now when left out.
        #[arg(long)]
        until: Option<String>,
        /// Print the recovery as it starts and leave it to run.
        #[arg(long)]
        no_wait: bool,
    },
}

/// A `--header` flag's `Name: value`.
fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once(':').ok_or_else(|| format!("{text:?} is not 'Name: value'"))?;
    Ok((name.trim().to_owned(), value.trim().to_owned()))
}

fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    hookline_core::duration::parse_duration(text).map_err(|error| error.to_string())
}

const DETAIL: &[Field<EndpointResponse>] = &[
    ("id", |shown| shown.id.cell()),
    ("url", |shown| shown.url.cell()),
    ("topics", |shown| shown.topics.cell()),
    ("description", |shown| shown.description.cell()),
    ("enabled", |shown| shown.enabled.cell()),
    ("format", |shown| shown.format.cell()),
    ("signing", |shown| shown.signing.cell()),
    ("retry_schedule", |shown| shown.retry_schedule.cell()),
    ("health", |shown| shown.health.state.clone()),
    ("headers", |shown| {
        let headers: Vec<String> = shown.headers.iter().map(|(name, value)| format!("{name}: {value}")).collect();
        if headers.is_empty() { "-".to_owned() } else { headers.join(", ") }
    }),
];

const STATS: &[Field<EndpointStatsResponse>] = &[
    ("health", |shown| shown.health.state.clone()),
    ("since", |shown| shown.health.since.cell()),
    ("reason", |shown| shown.health.reason.clone().unwrap_or_else(|| "-".to_owned())),
    ("consecutive_failures", |shown| shown.consecutive_failures.cell()),
    ("last_success", |shown| shown.last_success.cell()),
    ("last_failure", |shown| shown.last_failure.cell()),
];

const SECRETS: &[Field<EndpointSecretResponse>] = &[
    ("secret", |shown| shown.secret.cell()),
    ("previous", |shown| shown.previous.as_ref().map(|previous| previous.secret.clone()).cell()),
    ("previous_expires_at", |shown| shown.previous.as_ref().map(|previous| previous.expires_at).cell()),
];

pub async fn run(command: EndpointCommand, connection: &Connection) -> anyhow::Result<()> {
    let api = Api::new(connection)?;
    let path = |tenant: &str, endpoint: &str| format!("/v1/tenants/{tenant}/endpoints/{endpoint}");
    match command {
        EndpointCommand::Add { tenant, url, topics, description, format, signing, retry, secret, headers } => {
            let body = CreateEndpointRequest {
                url,
                topics,
                description: description.unwrap_or_default(),
                enabled: None,
                format,
                signing: (!signing.is_empty()).then_some(signing),
                retry_schedule: (!retry.is_empty()).then_some(retry),
                secret,
                headers: (!headers.is_empty()).then(|| headers.into_iter().collect()),
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
                    ("health", |endpoint| endpoint.health.state.clone()),
                    ("signing", |endpoint| endpoint.signing.cell()),
                ],
            );
        }
        EndpointCommand::Show { tenant, endpoint } => {
            show(connection, &api.get(&path(&tenant, &endpoint)).await?, DETAIL)
        }
        EndpointCommand::Stats { tenant, endpoint } => {
            let stats: Answer<EndpointStatsResponse> = api.get(&format!("{}/stats", path(&tenant, &endpoint))).await?;
            show(connection, &stats, STATS);
            if !connection.json && !stats.value.hours.is_empty() {
                say("");
                say(&format!("{:<31}{:>10}{:>10}", "HOUR", "SUCCESSES", "FAILURES"));
                for hour in &stats.value.hours {
                    say(&format!("{:<31}{:>10}{:>10}", hour.hour.cell(), hour.successes, hour.failures));
                }
            }
        }
        EndpointCommand::Secret { tenant, endpoint } => {
            let secret: Answer<EndpointSecretResponse> =
                api.get(&format!("{}/secret", path(&tenant, &endpoint))).await?;
            show(connection, &secret, SECRETS);
        }
        EndpointCommand::RotateSecret { tenant, endpoint, grace, secret } => {
            let body = RotateSecretRequest { grace, secret };
            let secret: Answer<EndpointSecretResponse> =
                api.post(&format!("{}/secret/rotate", path(&tenant, &endpoint)), &body, &[]).await?;
            show(connection, &secret, SECRETS);
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
            headers,
            no_headers,
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
                headers: match (no_headers, headers.is_empty()) {
                    (true, _) => Some(Default::default()),
                    (false, false) => Some(headers.into_iter().collect()),
                    (false, true) => None,
                },
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
        EndpointCommand::Test { tenant, endpoint, topic, data, wait } => {
            let data: Option<Box<RawValue>> =
                data.map(|data| serde_json::from_str(&data).context("--data is not valid JSON")).transpose()?;
            let body = TestEventRequest { topic, data: data.as_deref() };
            let sent: Answer<TestEventResponse> =
                api.post(&format!("{}/test", path(&tenant, &endpoint)), &body, &[]).await?;
            let delivery_path = format!("/v1/tenants/{tenant}/deliveries/{}", sent.value.delivery);
            let deadline = tokio::time::Instant::now() + wait;
            let detail: Answer<DeliveryDetailResponse> = loop {
                let detail: Answer<DeliveryDetailResponse> = api.get(&delivery_path).await?;
                if !detail.value.attempts.is_empty() {
                    break detail;
                }
                if tokio::time::Instant::now() >= deadline {
                    bail!(
                        "test event {} sent as delivery {}, but no attempt within {}; see it with: hookline delivery \
                         show {tenant} {}",
                        sent.value.event,
                        sent.value.delivery,
                        format_duration(wait),
                        sent.value.delivery
                    );
                }
                // Polling the API: an attempt is recorded within about 100 ms of its answer.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            };
            if connection.json {
                show(connection, &detail, &[]);
                return Ok(());
            }
            let attempt = &detail.value.attempts[0];
            say(&format!("{:<10}  {}", "event", sent.value.event));
            say(&format!("{:<10}  {}", "delivery", sent.value.delivery));
            say(&format!("{:<10}  {}", "status", attempt.response_status.cell()));
            let reason = match (&attempt.error, &attempt.error_detail) {
                (None, _) => "delivered".to_owned(),
                (Some(_), Some(detail)) => detail.clone(),
                (Some(error), None) => format!("{error:?}").to_lowercase(),
            };
            say(&format!("{:<10}  {reason}", "outcome"));
            say(&format!("{:<10}  {} ms", "took", attempt.duration_ms));
            say(&format!("{:<10}  {}", "answer", attempt.response_body.cell()));
            if attempt.error.is_some() {
                bail!("the endpoint did not accept the test event");
            }
        }
        EndpointCommand::Recover { tenant, endpoint, since, until, no_wait } => {
            let body = RecoverRequest { since, until };
            let mut recovery: Answer<RecoveryResponse> =
                api.post(&format!("{}/recover", path(&tenant, &endpoint)), &body, &[]).await?;
            let progress = |recovery: &RecoveryResponse| {
                let state = if recovery.finished.is_some() { "done" } else { "running" };
                format!(
                    "{}  {} of {} failed deliveries queued again, {state}",
                    recovery.id, recovery.queued, recovery.total
                )
            };
            if !connection.json {
                say(&progress(&recovery.value));
            }
            let recovery_path = format!("/v1/tenants/{tenant}/recoveries/{}", recovery.value.id);
            while !no_wait && recovery.value.finished.is_none() {
                // Polling the API: the server queues a batch each `purge_interval` (10 s by default).
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let next: Answer<RecoveryResponse> = api.get(&recovery_path).await?;
                let moved = next.value.queued != recovery.value.queued || next.value.finished.is_some();
                if moved && !connection.json {
                    say(&progress(&next.value));
                }
                recovery = next;
            }
            if connection.json {
                show(connection, &recovery, &[]);
            }
        }
        EndpointCommand::Delete { tenant, endpoint } => {
            api.delete(&path(&tenant, &endpoint)).await?;
            say(&format!("endpoint {endpoint} deleted; its pending deliveries are cancelled"));
        }
    }
    Ok(())
}
