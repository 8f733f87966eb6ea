//! `hookline bench`: end-to-end throughput and latency of a real server against a built-in sink, beside the raw
//! ceiling of the same client posting the same bodies straight to the sink, with the server's CPU and memory.
//!
//! The server runs in this process on a temporary data dir (or elsewhere, with `--server`). The load (the
//! publishers, the sink and the progress line) runs on a runtime of its own whose threads are named
//! [`measure::LOAD_THREAD`], so that the in-process server's CPU time is the process's minus theirs.
#![allow(clippy::print_stdout)] // The report is the command's output.

mod chart;
mod measure;
mod progress;
mod report;
mod sink;
mod soak;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use hookline_core::time::Timestamp;
use hookline_dispatch::{HttpClient, TargetPolicy};
use hookline_verify::{Scheme, Verifier};
use serde_json::{Value, json};
use tokio::runtime::Handle;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use self::measure::{BUCKET, Buckets, ServerProcess};
use self::progress::{Phase, Ticker};
use self::report::{Backlog, Figures, Latency, SlowEndpoint};
use self::sink::{SENT_MARKER, Sink};

const TOPIC: &str = "pdf.processed";
/// How long the slow endpoint takes to answer.
const SLOW_ANSWER: Duration = Duration::from_millis(200);
/// How long the bench waits for the last delivery before giving up.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(600);
/// The raw ceiling posts as many requests as the run delivers, within these bounds.
const RAW_REQUESTS: (u64, u64) = (5_000, 50_000);

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Events to publish (`--events 2000` is a run of a few seconds).
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Endpoints subscribed to the topic (deliveries per event).
    #[arg(long, default_value_t = 1)]
    endpoints: u64,
    /// Concurrent publishers, each publishing one event at a time.
    #[arg(long, default_value_t = 64)]
    concurrency: u64,
    /// Publish at this many events per second in all (an open loop: each event has its time, and its latency is
    /// counted from that time even if a publisher was late), instead of as fast as the publishers can.
    #[arg(long, value_name = "EVENTS_PER_SEC")]
    rate: Option<f64>,
    /// Size of each event's data, in bytes.
    #[arg(long, default_value_t = 1024)]
    payload_bytes: usize,
    /// Add one endpoint that answers after 200 ms beside the fast ones, and report the fast ones' throughput on
    /// its own (the run ends with the last fast delivery).
    #[arg(long, conflicts_with = "backlog")]
    slow_endpoint: bool,
    /// Hold every delivery unanswered (the receiver is down) until all events are accepted and queued, then let
    /// the sink answer; reports the drain rate and peak memory.
    #[arg(long)]
    backlog: bool,
    /// Target this running server instead of one started in-process. It must reach the sink (run it with
    /// HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS=true for a sink on this machine).
    #[arg(long, value_name = "URL", requires = "key")]
    server: Option<String>,
    /// The admin key of the server given by --server.
    #[arg(long, requires = "server")]
    key: Option<String>,
    /// The process id of the server given by --server, if it runs on this machine: its CPU time and memory are
    /// then measured.
    #[arg(long, value_name = "PID", requires = "server")]
    server_pid: Option<u32>,
    /// Where the sink listens.
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:0")]
    sink_listen: SocketAddr,
    /// The base URL the server should deliver to, if not http://<the sink's address> (behind NAT, in a container).
    #[arg(long, value_name = "URL")]
    sink_url: Option<String>,
    /// Run the in-process server on this PostgreSQL database (postgres://…) instead of a temporary SQLite file.
    /// The bench's tenant is deleted at the end; the database is otherwise left as it was.
    #[arg(long, value_name = "URL", conflicts_with = "server")]
    database: Option<String>,
    /// In-process nodes sharing the --database, each with its own API and dispatcher; publishers spread over them.
    #[arg(long, default_value_t = 1, requires = "database")]
    nodes: u64,
    /// Soak: publish at --rate for this long (`30m`, `1m`) instead of --events, and report, window after window,
    /// deliveries per second, latency, memory, the WAL and database files and the bytes written per delivery.
    #[arg(long, value_name = "DURATION", requires = "rate", conflicts_with_all = ["slow_endpoint", "backlog"],
          value_parser = parse_bench_duration)]
    duration: Option<Duration>,
    /// The in-process server's retention period (`5m`), so that purges run during a soak.
    #[arg(long, value_name = "DURATION", conflicts_with = "server", value_parser = parse_bench_duration)]
    retention: Option<Duration>,
    /// The in-process embedded store's WAL bound, in bytes; a soak fails if the WAL file passes it.
    #[arg(long, value_name = "BYTES", conflicts_with = "server")]
    max_wal_bytes: Option<u64>,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
    /// Write an SVG chart: throughput over time, the latency distribution and memory.
    #[arg(long, value_name = "FILE.svg")]
    chart: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Steady,
    SlowEndpoint,
    Backlog,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Steady => "steady",
            Scenario::SlowEndpoint => "slow endpoint",
            Scenario::Backlog => "backlog",
        }
    }
}

/// The slowest `--rate`: slower would schedule publishes beyond any run one would wait for.
const MIN_RATE: f64 = 0.01;
/// The fastest `--rate`: well beyond what one machine publishes, so a typo does not make a run that never reports.
const MAX_RATE: f64 = 1_000_000.0;
/// The largest `--payload-bytes`: the server's own limit on a request body is 64 MiB.
const MAX_PAYLOAD_BYTES: usize = 16 << 20;
/// The shortest soak that reports a window.
const MIN_DURATION: Duration = Duration::from_secs(1);
/// The shortest retention a server takes.
const MIN_RETENTION: Duration = Duration::from_secs(60);
/// The WAL bounds a server takes: 1 MiB to 1 TiB.
const WAL_BYTES: std::ops::RangeInclusive<u64> = (1 << 20)..=(1 << 40);

/// Refuses options that a server would refuse, or that would run away (memory, a run that never ends).
fn check(args: &BenchArgs) -> anyhow::Result<()> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    if args.events == 0 || args.endpoints == 0 || args.concurrency == 0 {
        bail!("--events, --endpoints and --concurrency must each be at least 1");
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && (MIN_RATE..=MAX_RATE).contains(&rate))
    {
        bail!("invalid --rate {rate}; expected {MIN_RATE} to {MAX_RATE} events per second");
    }
    if !(1..=MAX_PAYLOAD_BYTES).contains(&args.payload_bytes) {
        bail!("invalid --payload-bytes {}; expected 1 to {MAX_PAYLOAD_BYTES} (16 MiB)", args.payload_bytes);
    }
    if let Some(duration) = args.duration
        && duration < MIN_DURATION
    {
        bail!("invalid --duration {}; a soak runs for 1s or more", hookline_core::duration::format_duration(duration));
    }
    if let Some(retention) = args.retention
        && retention < MIN_RETENTION
    {
        let retention = hookline_core::duration::format_duration(retention);
        bail!("invalid --retention {retention}; a server keeps events a minute (1m) or more");
    }
    if let Some(bytes) = args.max_wal_bytes
        && !WAL_BYTES.contains(&bytes)
    {
        bail!("invalid --max-wal-bytes {bytes}; expected 1048576 (1 MiB) to 1099511627776 (1 TiB)");
    }
    Ok(())
}

fn parse_bench_duration(value: &str) -> Result<Duration, String> {
    hookline_core::duration::parse_duration(value).map_err(|error| error.to_string())
}

pub async fn run(mut args: BenchArgs) -> anyhow::Result<()> {
    if let (Some(duration), Some(rate)) = (args.duration, args.rate) {
        args.events = (duration.as_secs_f64() * rate).ceil().max(1.0) as u64;
    }
    check(&args)?;
    let database = args.database.as_deref().map(hookline_server::Database::parse).transpose()?;
    if args.nodes > 1 && !matches!(database, Some(hookline_server::Database::Postgres { .. })) {
        bail!("--nodes {} needs a shared database: give --database postgres://…", args.nodes);
    }
    let scenario = match (args.slow_endpoint, args.backlog) {
        (true, _) => Scenario::SlowEndpoint,
        (_, true) => Scenario::Backlog,
        _ => Scenario::Steady,
    };
    let load = tokio::runtime::Builder::new_multi_thread()
        .thread_name(measure::LOAD_THREAD)
        .enable_all()
        .build()
        .context("could not start the load's runtime")?;
    let result = bench(&args, database, scenario, load.handle()).await;
    load.shutdown_background();
    let (figures, chart) = result?;
    if let (Some(path), Some(chart)) = (&args.chart, chart) {
        std::fs::write(path, chart).with_context(|| format!("could not write the chart to {path:?}"))?;
    }
    if args.json {
        println!("{}", figures.json());
    } else {
        println!("{}", figures.table());
        if let Some(path) = &args.chart {
            println!("{:<22}{}", "chart", path.display());
        }
    }
    if figures.signature_failures > 0 {
        bail!("{} of {} sampled signatures did not verify", figures.signature_failures, figures.signatures_checked);
    }
    if let Some(soak) = &figures.soak {
        soak.check_wal()?;
    }
    Ok(())
}

/// Starts the target, runs the scenario, stops the target whatever happened.
async fn bench(
    args: &BenchArgs,
    database: Option<hookline_server::Database>,
    scenario: Scenario,
    load: &Handle,
) -> anyhow::Result<(Figures, Option<String>)> {
    let epoch = Instant::now();
    let slow_endpoint = (scenario == Scenario::SlowEndpoint).then_some(args.endpoints as usize);
    let gate_open = scenario != Scenario::Backlog;
    let sink = Arc::new(Sink::new(epoch, slow_endpoint, SLOW_ANSWER, gate_open, args.duration.is_some()));
    let target = Target::start(args, database, scenario).await?;
    let result = measure(args, scenario, load, &target, &sink, epoch).await;
    // Held requests would keep an in-process server's shutdown waiting for them.
    sink.open_gate();
    let stopped = target.stop().await;
    let outcome = result?;
    stopped?;
    Ok(outcome)
}

/// The server under test and how to reach it.
struct Target {
    /// Every node's API, which publishers take in turn.
    nodes: Vec<Api>,
    tenant: String,
    process: ServerProcess,
    description: String,
    in_process: Vec<InProcess>,
    store: TargetStore,
}

/// Where the server under test keeps its store.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TargetStore {
    /// A server of its own (`--server`): its store outlives the bench, which deletes its tenant when done.
    Elsewhere,
    /// The embedded store, on a temporary data dir per node.
    Embedded,
    /// A PostgreSQL database (`--database`), which outlives the bench, as `Elsewhere`.
    Postgres { url: String },
}

struct InProcess {
    shutdown: CancellationToken,
    serving: tokio::task::JoinHandle<Result<(), hookline_server::ServeError>>,
    data_dir: PathBuf,
}

impl Target {
    async fn start(
        args: &BenchArgs,
        database: Option<hookline_server::Database>,
        scenario: Scenario,
    ) -> anyhow::Result<Target> {
        let client = HttpClient::new(TargetPolicy::DangerousAllowPrivate, Duration::from_secs(60), 64 * 1024);
        if let (Some(url), Some(key)) = (&args.server, &args.key) {
            let api = Api::new(client, url.trim_end_matches('/'), key);
            let tenant = shared_store_tenant();
            api.call_json(http::Method::POST, "/v1/tenants", json!({"id": tenant, "name": "hookline bench"}))
                .await
                .with_context(|| format!("could not create the bench's tenant on {url}"))?;
            let mut description = format!("{url} (its own process and store)");
            if scenario == Scenario::Backlog {
                description.push_str(
                    "; the held deliveries time out unless the server's delivery_timeout outlasts the publishing",
                );
            }
            return Ok(Target {
                nodes: vec![api],
                tenant,
                process: args.server_pid.map_or(ServerProcess::Unknown, ServerProcess::Pid),
                description,
                in_process: Vec::new(),
                store: TargetStore::Elsewhere,
            });
        }
        let admin_key = hookline_core::secret::generate_api_key("hka_");
        let mut nodes = Vec::new();
        let mut in_process = Vec::new();
        for node in 0..args.nodes {
            let millis = Timestamp::now().unix_millis();
            let data_dir = std::env::temp_dir().join(format!("hookline-bench-{}-{node}-{millis}", std::process::id()));
            let mut config = hookline_server::Config {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                data_dir: data_dir.clone(),
                database: database.clone(),
                admin_key: Some(admin_key.clone()),
                dangerous_allow_private_targets: true,
                // The deleted tenant's rows go soon after the run, which waits for them.
                purge_interval: Duration::from_millis(100),
                ..hookline_server::Config::default()
            };
            if let Some(retention) = args.retention {
                config.retention = Some(retention);
            }
            if let Some(bytes) = args.max_wal_bytes {
                config.max_wal_bytes = bytes;
            }
            // Room for the event's data and the rest of the publish request around it.
            config.max_payload_bytes = config.max_payload_bytes.max(args.payload_bytes + 4096);
            if scenario == Scenario::Backlog {
                // The held deliveries must not time out (and be retried later) while the queue builds up.
                config.delivery_timeout = DELIVERY_DEADLINE;
            }
            let bound: anyhow::Result<_> = async {
                let server = hookline_server::Server::bind(config).await?;
                let address = server.local_addr()?;
                Ok((server, address))
            }
            .await;
            let (server, address) = match bound {
                Ok(bound) => bound,
                Err(error) => {
                    stop_servers(in_process).await;
                    return Err(error);
                }
            };
            nodes.push(Api::new(client.clone(), &format!("http://{address}"), &admin_key));
            let shutdown = CancellationToken::new();
            let serving = tokio::spawn(server.run(shutdown.clone()));
            in_process.push(InProcess { shutdown, serving, data_dir });
        }
        let (tenant, description, store) = match &database {
            Some(hookline_server::Database::Postgres { url }) => {
                let nodes = if args.nodes == 1 { "one node".to_owned() } else { format!("{} nodes", args.nodes) };
                let description = format!("in-process, PostgreSQL, {nodes} sharing one database");
                (shared_store_tenant(), description, TargetStore::Postgres { url: url.clone() })
            }
            _ => {
                let description = "in-process, SQLite (durable) on a temporary data dir".to_owned();
                ("bench".to_owned(), description, TargetStore::Embedded)
            }
        };
        let target = Target { nodes, tenant, process: ServerProcess::InProcess, description, in_process, store };
        if let Err(error) =
            target.api().call_json(http::Method::POST, "/v1/tenants", json!({"id": target.tenant})).await
        {
            stop_servers(target.in_process).await;
            return Err(error.context("could not create the bench's tenant"));
        }
        Ok(target)
    }

    /// Waits until the deleted tenant at `path` is removed from the store, for at most ten minutes.
    async fn wait_for_removal(&self, path: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        loop {
            if self.api().error_code(path).await?.as_deref() != Some("being_deleted") {
                return Ok(());
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the bench's tenant was not removed in 10 minutes");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The embedded store's files, when the bench runs it: one node on a temporary data dir.
    fn store_files(&self) -> Option<soak::StoreFiles> {
        match (&self.store, self.in_process.as_slice()) {
            (TargetStore::Embedded, [only]) => Some(soak::StoreFiles { data_dir: only.data_dir.clone() }),
            _ => None,
        }
    }

    /// Where the store's disk writes are counted: PostgreSQL's own processes write a database. A soak goes on
    /// without the figure when PostgreSQL's statistics cannot be read.
    async fn writes(&self) -> soak::Writes {
        match &self.store {
            TargetStore::Postgres { url } => soak::Writes::postgres(url).await.unwrap_or_else(|error| {
                eprintln!("warning: could not read PostgreSQL's statistics of disk writes: {error:#}");
                soak::Writes::Unmeasured
            }),
            TargetStore::Elsewhere | TargetStore::Embedded => soak::Writes::Process(self.process),
        }
    }

    /// The first node's API, where the bench sets up its tenant and endpoints.
    fn api(&self) -> &Api {
        &self.nodes[0]
    }

    async fn stop(self) -> anyhow::Result<()> {
        if self.store != TargetStore::Embedded {
            let path = format!("/v1/tenants/{}", self.tenant);
            self.api()
                .call(http::Method::DELETE, &path, String::new())
                .await
                .context("could not delete the bench's tenant")?;
            if !self.in_process.is_empty()
                && let Err(error) = self.wait_for_removal(&path).await
            {
                // The figures stand; the rows go when a server runs on the database again.
                eprintln!("warning: {error:#}");
            }
        }
        for server in self.in_process {
            server.shutdown.cancel();
            let served = server.serving.await;
            let _ = std::fs::remove_dir_all(&server.data_dir);
            served.context("the server task failed")??;
        }
        Ok(())
    }
}

/// Stops servers started before a later step of the set-up failed, and removes their data dirs.
async fn stop_servers(servers: Vec<InProcess>) {
    for server in servers {
        server.shutdown.cancel();
        let _ = server.serving.await;
        let _ = std::fs::remove_dir_all(&server.data_dir);
    }
}

/// A tenant name of its own for a run on a store that outlives it (another server's, or PostgreSQL).
fn shared_store_tenant() -> String {
    format!("bench-{}", Timestamp::now().unix_millis())
}

/// A client of the server's API.
#[derive(Clone)]
struct Api {
    client: HttpClient,
    base: Arc<str>,
    headers: Arc<[(&'static str, String)]>,
}

impl Api {
    fn new(client: HttpClient, base: &str, key: &str) -> Api {
        let headers = [("authorization", format!("Bearer {key}")), ("content-type", "application/json".to_owned())];
        Api { client, base: Arc::from(base), headers: Arc::new(headers) }
    }

    /// Sends a request; an answer other than 2xx is an error. Returns the body.
    async fn call(&self, method: http::Method, path: &str, body: String) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let exchange = self.client.request(method, &url, &self.headers, Bytes::from(body)).await;
        let response = exchange.result.map_err(|(kind, detail)| anyhow!("{url}: {kind:?}: {detail}"))?;
        if !(200..300).contains(&response.status) {
            bail!("{url} answered {}: {}", response.status, response.body);
        }
        Ok(response.body)
    }

    /// The `code` of the error a `GET` of `path` answers, or `None` when it succeeds.
    async fn error_code(&self, path: &str) -> anyhow::Result<Option<String>> {
        let url = format!("{}{path}", self.base);
        let exchange = self.client.request(http::Method::GET, &url, &self.headers, Bytes::new()).await;
        let response = exchange.result.map_err(|(kind, detail)| anyhow!("{url}: {kind:?}: {detail}"))?;
        if (200..300).contains(&response.status) {
            return Ok(None);
        }
        let problem: Value = serde_json::from_str(&response.body)
            .with_context(|| format!("{url} answered {} without the API's error shape", response.status))?;
        Ok(problem["code"].as_str().map(str::to_owned))
    }

    async fn call_json(&self, method: http::Method, path: &str, body: Value) -> anyhow::Result<Value> {
        let text = self.call(method, path, body.to_string()).await?;
        serde_json::from_str(&text).with_context(|| format!("{path} answered something other than JSON: {text}"))
    }
}

/// Sets up the endpoints and the sink, measures the raw ceiling, then publishes and waits for the deliveries.
async fn measure(
    args: &BenchArgs,
    scenario: Scenario,
    load: &Handle,
    target: &Target,
    sink: &Arc<Sink>,
    epoch: Instant,
) -> anyhow::Result<(Figures, Option<String>)> {
    let sink_address = load.spawn(Arc::clone(sink).listen(args.sink_listen)).await??;
    let sink_base = match &args.sink_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None if sink_address.ip().is_unspecified() => {
            bail!("the sink listens on {sink_address}, which the server cannot deliver to; pass --sink-url too")
        }
        None => format!("http://{sink_address}"),
    };
    let accepted = Arc::new(AtomicU64::new(0));
    // A burst charts series of 100 ms (deliveries, acceptances, memory); a soak charts its windows instead and keeps
    // no series, so that the bench's own memory stays flat however long the soak runs.
    let series = args.duration.is_none();
    let ticker = Ticker::start(load, epoch, series.then_some(target.process), sink.counts(), Arc::clone(&accepted));

    let fast_endpoints = args.endpoints as usize;
    let all_endpoints = fast_endpoints + usize::from(scenario == Scenario::SlowEndpoint);
    let mut verifiers = Vec::with_capacity(all_endpoints);
    for index in 0..all_endpoints {
        let endpoint = json!({
            "url": format!("{sink_base}{}", Sink::endpoint_path(index)),
            "topics": [TOPIC],
            "signing": ["heron"],
            "description": if index < fast_endpoints { "hookline bench" } else { "hookline bench: answers after 200 ms" },
        });
        let created = target
            .api()
            .call_json(http::Method::POST, &format!("/v1/tenants/{}/endpoints", target.tenant), endpoint)
            .await?;
        let secret = created["secret"].as_str().context("the endpoint's answer has no secret")?;
        verifiers.push(Verifier::new(Scheme::Heron, secret)?);
    }
    sink.set_verifiers(verifiers);

    // The same bytes the server will send: an envelope around data of the requested size.
    let padding: Arc<str> = Arc::from("x".repeat(args.payload_bytes.saturating_sub(SENT_MARKER.len() + 24)));
    let expected_fast = args.events * args.endpoints;
    let expected_all = args.events * all_endpoints as u64;

    // The raw ceiling: the same client posting bodies of the same size straight to the sink.
    let raw_requests = expected_all.clamp(RAW_REQUESTS.0, RAW_REQUESTS.1);
    let raw_concurrency = args.concurrency.max(64);
    ticker.set(Phase::Raw { requests: raw_requests });
    let raw_body = Bytes::from(format!(
        r#"{{"topic":"{TOPIC}","created":"2026-01-01T00:00:00+00:00","data":{{{SENT_MARKER}{},"pad":"{padding}"}},"meta":null}}"#,
        u64::MAX / 2
    ));
    let raw_client = target.api().client.clone();
    let raw_url: Arc<str> = Arc::from(format!("{sink_base}{}", Sink::RAW_PATH));
    let raw_elapsed = load
        .spawn(drive(raw_requests, raw_concurrency, move |_| {
            let (client, url, body) = (raw_client.clone(), Arc::clone(&raw_url), raw_body.clone());
            async move {
                let headers = [("content-type", "application/json".to_owned())];
                let exchange = client.post(&url, &headers, body).await;
                match exchange.result {
                    Ok(response) if response.status == 200 => Ok(()),
                    Ok(response) => bail!("the sink answered {} to a raw request", response.status),
                    Err((kind, detail)) => bail!("a raw request to the sink failed: {kind:?}: {detail}"),
                }
            }
        }))
        .await??;
    let raw_ceiling_per_sec = raw_requests as f64 / raw_elapsed.as_secs_f64();

    let writes = match args.duration {
        Some(_) => Some(target.writes().await),
        None => None,
    };
    let written_by = writes.as_ref().map_or("", soak::Writes::scope);
    // The run proper.
    let peak_reset = target.process.reset_peak_rss();
    let cpu_before = target.process.cpu_seconds();
    let load_cpu_before = load_cpu_seconds(target.process);
    let fast_only = scenario == Scenario::SlowEndpoint;
    let wanted = if fast_only { expected_fast } else { expected_all };
    let label = if scenario == Scenario::Backlog { "queueing" } else { "publishing" };
    ticker.set(Phase::Deliveries { label, events: args.events, deliveries: wanted, fast_only });
    let accepted_buckets = series.then(|| Arc::new(Mutex::new(Buckets::default())));
    let started = epoch.elapsed();
    let publish_path: Arc<str> = Arc::from(format!("/v1/tenants/{}/events", target.tenant));
    let (nodes, publish_accepted, publish_buckets) =
        (Arc::new(target.nodes.clone()), Arc::clone(&accepted), accepted_buckets.clone());
    let (rate, publishing_started) = (args.rate, Instant::now());
    let soak_stop = CancellationToken::new();
    let sampler = args.duration.zip(writes).map(|(duration, writes)| {
        let window = (duration / 120).max(Duration::from_secs(1));
        let sampled = soak::sample(
            Arc::clone(sink),
            target.process,
            target.store_files(),
            writes,
            window,
            publishing_started,
            soak_stop.clone(),
        );
        (window, load.spawn(sampled))
    });
    let publish_elapsed = load
        .spawn(drive(args.events, args.concurrency, move |index| {
            let scheduled = rate.map(|rate| publishing_started + Duration::from_secs_f64(index as f64 / rate));
            let api = nodes[(index % nodes.len() as u64) as usize].clone();
            let (path, padding) = (Arc::clone(&publish_path), Arc::clone(&padding));
            let (accepted, buckets) = (Arc::clone(&publish_accepted), publish_buckets.clone());
            async move {
                if let Some(at) = scheduled {
                    tokio::time::sleep_until(at.into()).await;
                }
                let sent = scheduled.map_or_else(|| epoch.elapsed(), |at| at.duration_since(epoch)).as_micros();
                let body = format!(r#"{{"topic":"{TOPIC}","data":{{{SENT_MARKER}{sent},"pad":"{padding}"}}}}"#);
                api.call(http::Method::POST, &path, body).await?;
                accepted.fetch_add(1, Ordering::Relaxed);
                if let Some(buckets) = buckets {
                    buckets.lock().await.add(epoch.elapsed());
                }
                Ok(())
            }
        }))
        .await??;
    let published = epoch.elapsed();

    let mut backlog_start = None;
    if scenario == Scenario::Backlog {
        let answered = sink.counts().borrow().fast;
        backlog_start = Some((epoch.elapsed(), expected_all.saturating_sub(answered)));
        sink.open_gate();
        ticker.set(Phase::Deliveries { label: "draining", events: args.events, deliveries: wanted, fast_only });
    } else {
        ticker.set(Phase::Deliveries { label: "delivering", events: args.events, deliveries: wanted, fast_only });
    }
    let mut counts = sink.counts();
    let arrived = counts.wait_for(|counts| counts.answered(fast_only) >= wanted);
    tokio::time::timeout(DELIVERY_DEADLINE, arrived)
        .await
        .map_err(|_| anyhow!("not every delivery arrived within {} s", DELIVERY_DEADLINE.as_secs()))?
        .context("the sink stopped")?;
    let cpu_after = target.process.cpu_seconds();
    let load_cpu_after = load_cpu_seconds(target.process);
    // Without a reset the peak may be from before the run, so there is none to report.
    let peak_rss_bytes = if peak_reset { target.process.peak_rss_bytes() } else { None };
    let memory = ticker.finish().await;
    soak_stop.cancel();
    let soaked = match sampler {
        Some((window, sampler)) => Some((window, sampler.await?)),
        None => None,
    };

    let mut record = sink.record();
    let counted = *sink.counts().borrow();
    record.fast.latencies_us.sort_unstable();
    record.slow.latencies_us.sort_unstable();
    let last = if fast_only { record.fast.last_at } else { record.fast.last_at.max(record.slow.last_at) };
    let elapsed = last.saturating_sub(started).max(Duration::from_micros(1));
    let deliveries = counted.answered(fast_only);
    let deliveries_per_sec = deliveries as f64 / elapsed.as_secs_f64();
    let figures = Figures {
        scenario: scenario.name(),
        server: target.description.clone(),
        events: args.events,
        endpoints: args.endpoints,
        concurrency: args.concurrency,
        rate: args.rate,
        payload_bytes: args.payload_bytes,
        deliveries,
        elapsed_seconds: elapsed.as_secs_f64(),
        accepted_per_sec: args.events as f64 / publish_elapsed.as_secs_f64(),
        deliveries_per_sec,
        raw_ceiling_per_sec,
        raw_concurrency,
        latency: match &soaked {
            Some((_, (_, histogram, _))) => Latency::of_histogram(histogram),
            None => Latency::of(&record.fast.latencies_us),
        },
        server_cpu_seconds: cpu_before.zip(cpu_after).map(|(before, after)| after - before),
        cpu_scope: target.process.cpu_scope(),
        load_cpu_seconds: load_cpu_before.zip(load_cpu_after).map(|(before, after)| after - before),
        cpu_deliveries: counted.fast + counted.slow,
        peak_rss_bytes,
        rss_scope: target.process.rss_scope(),
        signatures_checked: record.signatures_checked,
        signature_failures: record.signature_failures,
        slow_endpoint: fast_only.then(|| SlowEndpoint {
            answer_ms: SLOW_ANSWER.as_millis() as u64,
            delivered: counted.slow,
            per_sec: counted.slow as f64 / elapsed.as_secs_f64(),
            p50_ms: measure::percentile_ms(&record.slow.latencies_us, 0.5),
        }),
        backlog: backlog_start.map(|(opened, queued)| {
            let drain_seconds = last.saturating_sub(opened).as_secs_f64().max(1e-6);
            Backlog { queued, drain_seconds, drain_per_sec: queued as f64 / drain_seconds }
        }),
        soak: soaked.map(|(window, (samples, _, written))| soak::SoakFigures {
            duration_seconds: args.duration.map_or(0.0, |duration| duration.as_secs_f64()),
            window_seconds: window.as_secs_f64(),
            max_wal_bytes: target
                .store_files()
                .map(|_| args.max_wal_bytes.unwrap_or(hookline_server::Config::default().max_wal_bytes)),
            wal_peak_bytes: samples.iter().filter_map(|sample| sample.wal_bytes).max(),
            written_per_delivery: written.filter(|_| deliveries > 0).map(|bytes| bytes as f64 / deliveries as f64),
            written_by,
            samples,
        }),
    };
    if let Some(problem) = &record.first_signature_failure {
        eprintln!("warning: a sampled signature did not verify: {problem}");
    }

    if args.chart.is_none() {
        return Ok((figures, None));
    }
    if let Some(soak) = &figures.soak {
        let title =
            format!("hookline bench, soak: {} s at {} events/s", soak.duration_seconds, args.rate.unwrap_or_default());
        let subtitle = format!(
            "{} endpoint(s), {} B payloads{}; {}",
            args.endpoints,
            args.payload_bytes,
            args.retention
                .map(|retention| format!(", retention {}", hookline_core::duration::format_duration(retention)))
                .unwrap_or_default(),
            target.description
        );
        return Ok((figures.clone(), Some(chart::render_soak(&title, &subtitle, soak, target.process.rss_scope()))));
    }
    let end = last.max(published);
    let delivered = record.fast.per_bucket.between(started, end);
    let slow = record.slow.per_bucket.between(started, end);
    let accepted_series = match &accepted_buckets {
        Some(buckets) => buckets.lock().await.between(started, end),
        None => Vec::new(),
    };
    let memory: Vec<(f64, u64)> = memory
        .into_iter()
        .filter(|(at, _)| *at >= started)
        .map(|(at, bytes)| ((at - started).as_secs_f64(), bytes))
        .collect();
    let chart = chart::render(&chart::ChartData {
        title: format!(
            "hookline bench, {}: {} deliveries/s ({:.1}% of the raw ceiling, {} /s)",
            figures.scenario,
            report::thousands(deliveries_per_sec.round() as u64),
            figures.ratio(deliveries_per_sec) * 100.0,
            report::thousands(raw_ceiling_per_sec.round() as u64)
        ),
        subtitle: format!(
            "{} events × {} endpoint(s){}, {} publishers{}, {} B payloads; {}",
            report::thousands(args.events),
            args.endpoints,
            if fast_only { " + 1 slow (200 ms)" } else { "" },
            args.concurrency,
            args.rate.map(|rate| format!(" at {rate} events/s")).unwrap_or_default(),
            args.payload_bytes,
            target.description
        ),
        bucket_seconds: BUCKET.as_secs_f64(),
        delivered: &delivered,
        accepted: &accepted_series,
        slow: fast_only.then_some(slow.as_slice()),
        gate_opened_seconds: backlog_start.map(|(opened, _)| opened.saturating_sub(started).as_secs_f64()),
        latencies_us: &record.fast.latencies_us,
        memory: &memory,
        memory_scope: target.process.rss_scope(),
    });
    Ok((figures, Some(chart)))
}

/// The load's CPU seconds: its own threads beside an in-process server, else the whole bench process.
fn load_cpu_seconds(server: ServerProcess) -> Option<f64> {
    match server {
        ServerProcess::InProcess => Some(measure::load_threads_cpu_seconds()),
        _ => measure::bench_process_cpu_seconds(),
    }
}

/// Runs `make(index)` for every index below `count` with `concurrency` workers on the current runtime; returns
/// the elapsed time.
async fn drive<F, Fut>(count: u64, concurrency: u64, make: F) -> anyhow::Result<Duration>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let make = Arc::new(make);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.min(count) {
        let next = Arc::clone(&next);
        let make = Arc::clone(&make);
        workers.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                make(index).await?;
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    Ok(started.elapsed())
}
