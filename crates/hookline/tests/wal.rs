//! The embedded store's write-ahead log under steady load: while events are published and delivered without a
//! pause, and the API is read at the same time, the `hookline.db-wal` file stays under `max_wal_bytes`; once the
//! store is idle, the file is emptied.
//!
//! Only the embedded SQLite store has such a file: PostgreSQL keeps its own log.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookline_dispatch::{HttpClient, TargetPolicy};
use serde_json::json;
use support::{ADMIN_KEY, Hookline, Publisher, Receiver, TempDir};

/// The bound the test configures: small, so that a few seconds of publishing would pass it many times over.
const BOUND: u64 = 2 << 20;
/// How long events are published.
const PUBLISHING: Duration = Duration::from_secs(4);
/// Events per second, in all: steady, and more than a group commit per millisecond can carry one at a time.
const RATE: u32 = 1_000;
const PUBLISHERS: u32 = 16;
/// How often the file's size is looked at while events are published.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

fn wal_size(path: &Path) -> u64 {
    // The file does not exist before the first write, nor after a close that deleted it.
    std::fs::metadata(path).map_or(0, |metadata| metadata.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_under_its_bound_under_steady_load_and_is_emptied_when_idle() {
    if support::on_postgres() {
        eprintln!("skipping: the WAL bound is the embedded SQLite store's; the SQLite pass runs this test");
        return;
    }
    let dir = TempDir::new("wal");
    let bound = BOUND.to_string();
    let env = [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_MAX_WAL_BYTES", bound.as_str())];
    let server = Hookline::start_node(dir.path(), None, &env).await;
    let wal = dir.path().join("hookline.db-wal");
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    // Two endpoints: each event makes two deliveries, each delivery an attempt record.
    for path in ["/first", "/second"] {
        server.endpoint("acme", json!({"url": format!("{}{path}", receiver.url), "topics": ["pdf.processed"]})).await;
    }

    let publishing = Arc::new(AtomicBool::new(true));
    // The file's size as it was sampled: (time since the start, bytes).
    let sampler = tokio::spawn({
        let (wal, publishing) = (wal.clone(), Arc::clone(&publishing));
        async move {
            let started = Instant::now();
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            while publishing.load(Ordering::Relaxed) {
                tick.tick().await;
                samples.push((started.elapsed(), wal_size(&wal)));
            }
            samples
        }
    });
    // A reader of the API all along: its reads hold snapshots of the log, as a dashboard's would.
    let reading = tokio::spawn({
        let publishing = Arc::clone(&publishing);
        let url = format!("{}/v1/tenants/acme/deliveries?limit=100", server.url);
        async move {
            let client = HttpClient::new(TargetPolicy::DangerousAllowPrivate, Duration::from_secs(30), 1 << 20);
            let headers = [("authorization", format!("Bearer {ADMIN_KEY}"))];
            let mut lists = 0u32;
            while publishing.load(Ordering::Relaxed) {
                let listed = client.request(http::Method::GET, &url, &headers, Bytes::new()).await;
                assert_eq!(listed.result.map(|response| response.status).ok(), Some(200));
                lists += 1;
            }
            lists
        }
    });
    let publisher = Publisher::new(&server);
    let deadline = tokio::time::Instant::now() + PUBLISHING;
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|index| {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_secs(1) * PUBLISHERS / RATE);
                while tokio::time::Instant::now() < deadline {
                    tick.tick().await;
                    let data = json!({"publisher": index, "n": accepted.len(), "pad": "x".repeat(200)});
                    accepted.push(publisher.publish("acme", "pdf.processed", &data).await.unwrap());
                }
                accepted
            })
        })
        .collect();
    let mut accepted = 0;
    for publisher in publishers {
        accepted += publisher.await.unwrap().len();
    }
    // The deliveries go on after the last publish: the log is still written to, so keep sampling until they end.
    receiver
        .wait_until(Duration::from_secs(60), "every event delivered to both endpoints", |requests| {
            requests.len() >= 2 * accepted
        })
        .await;
    publishing.store(false, Ordering::Relaxed);
    let samples = sampler.await.unwrap();
    let lists = reading.await.unwrap();
    let largest = samples.iter().map(|&(_, bytes)| bytes).max().unwrap_or(0);
    let every_half_second: Vec<String> = samples
        .iter()
        .step_by((Duration::from_millis(500).as_millis() / SAMPLE_EVERY.as_millis()) as usize)
        .map(|(at, bytes)| format!("{:.1}s {} KiB", at.as_secs_f64(), bytes / 1024))
        .collect();
    eprintln!(
        "{accepted} events published in {PUBLISHING:?}, {lists} lists read meanwhile; the WAL peaked at {} KiB \
         (bound {} KiB): {every_half_second:?}",
        largest / 1024,
        BOUND / 1024
    );
    // The writer restarts the log at half the bound, so the file stays under the bound itself; the margin is for
    // a restart that has to wait a few groups for a long read to leave the old log.
    let margin = BOUND / 2;
    assert!(
        largest <= BOUND + margin,
        "the WAL reached {largest} bytes, past its bound of {BOUND} bytes and a margin of {margin}: \
         {every_half_second:?}"
    );
    // Without its upkeep, the log grew past the bound and margin within the first second, to 18 MiB after 739
    // events: fewer than this many would not show much.
    assert!(accepted >= 250, "too few events published to test the bound: {accepted}");

    // Idle now: the file is emptied within a few seconds (the store counts as idle after a second without a
    // commit).
    let idle_since = Instant::now();
    let emptied_within = Duration::from_secs(10);
    loop {
        let bytes = wal_size(&wal);
        if bytes == 0 {
            break;
        }
        assert!(
            idle_since.elapsed() < emptied_within,
            "the WAL still holds {bytes} bytes {emptied_within:?} after the store went idle"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("the idle WAL was emptied after {:?}", idle_since.elapsed());
}
