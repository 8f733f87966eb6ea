//! `hookline bench`: end-to-end throughput and latency of a real server against a built-in sink, beside the raw
//! ceiling of the same client posting the same bodies straight to the sink.
#![allow(clippy::print_stdout)] // The report is the command's output.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hookline_dispatch::{HttpClient, TargetPolicy};
use hookline_server::Config;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Events to publish.
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Endpoints subscribed to the topic (deliveries per event).
    #[arg(long, default_value_t = 1)]
    endpoints: u64,
    /// Concurrent publishers.
    #[arg(long, default_value_t = 64)]
    concurrency: u64,
    /// Size of each event's data, in bytes.
    #[arg(long, default_value_t = 1024)]
    payload_bytes: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// The built-in receiver: answers 200 at once and records when each event's first delivery arrived.
struct Sink {
    received: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    count: watch::Sender<u64>,
    epoch: Instant,
}

/// Pulls the publish time out of a body: the data holds `"t":<microseconds since the bench's epoch>`.
fn sent_at(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("\"t\":")? + 4;
    let digits: String = text[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

async fn start_sink(sink: Arc<Sink>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sink = Arc::clone(&sink);
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let sink = Arc::clone(&sink);
                    async move {
                        let body = request.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
                        if let Some(sent) = sent_at(&body) {
                            let now = sink.epoch.elapsed().as_micros() as u64;
                            sink.latencies_us.lock().await.push(now.saturating_sub(sent));
                        }
                        let received = sink.received.fetch_add(1, Ordering::Relaxed) + 1;
                        sink.count.send_replace(received);
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}

fn percentile(sorted: &[u64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index] as f64 / 1000.0
}

/// Posts `count` bodies with `concurrency` workers; returns the elapsed time.
async fn drive<F, Fut>(count: u64, concurrency: u64, make: F) -> anyhow::Result<Duration>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let make = Arc::new(make);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
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

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let data_dir = std::env::temp_dir().join(format!("hookline-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let admin_key = hookline_core::secret::generate_api_key("hka_");
    let config = Config {
        listen: "127.0.0.1:0".parse().context("listen address")?,
        data_dir: data_dir.clone(),
        admin_key: Some(admin_key.clone()),
        dangerous_allow_private_targets: true,
        ..Config::default()
    };
    let server = hookline_server::Server::bind(config).await?;
    let base = format!("http://{}", server.local_addr()?);
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(server.run(shutdown.clone()));

    let epoch = Instant::now();
    let sink = Arc::new(Sink {
        received: AtomicU64::new(0),
        latencies_us: Mutex::new(Vec::new()),
        count: watch::channel(0).0,
        epoch,
    });
    let sink_address = start_sink(Arc::clone(&sink)).await?;
    let client = HttpClient::new(TargetPolicy::DangerousAllowPrivate, Duration::from_secs(30), 4096);
    let auth = vec![("authorization", format!("Bearer {admin_key}")), ("content-type", "application/json".to_owned())];
    let call_client = client.clone();
    let call = move |method: http::Method, path: String, body: String| {
        let client = call_client.clone();
        let auth = auth.clone();
        let url = format!("{base}{path}");
        async move {
            let exchange = client.request(method, &url, &auth, Bytes::from(body)).await;
            let response = exchange.result.map_err(|(kind, detail)| anyhow::anyhow!("{kind:?}: {detail}"))?;
            if !(200..300).contains(&response.status) {
                bail!("{url} answered {}: {}", response.status, response.body);
            }
            Ok(response)
        }
    };
    call(http::Method::POST, "/v1/tenants".into(), json!({"id": "bench"}).to_string()).await?;
    for _ in 0..args.endpoints {
        let endpoint =
            json!({"url": format!("http://{sink_address}/hook"), "topics": ["pdf.processed"], "signing": ["heron"]});
        call(http::Method::POST, "/v1/tenants/bench/endpoints".into(), endpoint.to_string()).await?;
    }
    let padding = "x".repeat(args.payload_bytes.saturating_sub(40));
    let expected = args.events * args.endpoints;

    // The raw ceiling: the same client posting bodies of the same size straight to the sink.
    let raw_count = (args.events * args.endpoints).min(50_000);
    let raw_body = format!("{{\"topic\":\"pdf.processed\",\"data\":{{\"pad\":\"{padding}\"}}}}");
    let raw_client = client.clone();
    let raw_url = format!("http://{sink_address}/raw");
    let raw_elapsed = drive(raw_count, args.concurrency, move |_| {
        let client = raw_client.clone();
        let url = raw_url.clone();
        let body = Bytes::from(raw_body.clone());
        async move {
            let exchange = client.post(&url, &[("content-type", "application/json".to_owned())], body).await;
            exchange.result.map(|_| ()).map_err(|(kind, detail)| anyhow::anyhow!("{kind:?}: {detail}"))
        }
    })
    .await?;
    let raw_per_sec = raw_count as f64 / raw_elapsed.as_secs_f64();
    sink.received.store(0, Ordering::Relaxed);
    sink.count.send_replace(0);

    let mut delivered = sink.count.subscribe();
    let started = Instant::now();
    let publish = Arc::new(call);
    let publish_elapsed = drive(args.events, args.concurrency, move |_| {
        let publish = Arc::clone(&publish);
        let sent = epoch.elapsed().as_micros();
        let body = format!("{{\"topic\":\"pdf.processed\",\"data\":{{\"t\":{sent},\"pad\":\"{padding}\"}}}}");
        async move { publish(http::Method::POST, "/v1/tenants/bench/events".into(), body).await.map(|_| ()) }
    })
    .await?;
    tokio::time::timeout(Duration::from_secs(600), delivered.wait_for(|count| *count >= expected))
        .await
        .context("not every delivery arrived within 10 minutes")??;
    let total = started.elapsed();

    let mut latencies = sink.latencies_us.lock().await.clone();
    latencies.sort_unstable();
    let deliveries_per_sec = expected as f64 / total.as_secs_f64();
    let accepted_per_sec = args.events as f64 / publish_elapsed.as_secs_f64();
    let report = json!({
        "events": args.events,
        "endpoints": args.endpoints,
        "concurrency": args.concurrency,
        "payload_bytes": args.payload_bytes,
        "accepted_per_sec": accepted_per_sec.round(),
        "deliveries_per_sec": deliveries_per_sec.round(),
        "raw_ceiling_per_sec": raw_per_sec.round(),
        "ratio_to_ceiling": (deliveries_per_sec / raw_per_sec * 1000.0).round() / 1000.0,
        "p50_ms": percentile(&latencies, 0.50),
        "p90_ms": percentile(&latencies, 0.90),
        "p99_ms": percentile(&latencies, 0.99),
        "max_ms": percentile(&latencies, 1.0),
    });
    shutdown.cancel();
    serving.await??;
    let _ = std::fs::remove_dir_all(&data_dir);
    if args.json {
        println!("{report}");
    } else {
        println!(
            "events {} × endpoints {} at concurrency {}, {} B payloads (SQLite, durable)",
            args.events, args.endpoints, args.concurrency, args.payload_bytes
        );
        println!("accepted/s          {:>10.0}", accepted_per_sec);
        println!("deliveries/s        {:>10.0}", deliveries_per_sec);
        println!("raw ceiling/s       {:>10.0}  (same client, straight to the sink)", raw_per_sec);
        println!("ratio to ceiling    {:>10.3}", deliveries_per_sec / raw_per_sec);
        println!(
            "publish→delivery    p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.9),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0)
        );
    }
    Ok(())
}
