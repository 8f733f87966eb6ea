//! API connections from clients that are slow or silent on purpose, through a real `hookline serve`: half-sent
//! request heads, heads sent a byte at a time, connections that never send anything, and more of them than the
//! server takes. Health checks, publishes and deliveries go on; the server closes the slow ones.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Hookline, Receiver, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the server gives a request head, in these tests.
const HEADER_TIMEOUT: Duration = Duration::from_secs(4);

/// Waits until the server closes `stream` (end of stream or a reset), at most `limit`; true if it did.
async fn closed_within(mut stream: TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A 408 or similar before closing is fine: keep reading until the end.
            Ok(Ok(_)) => continue,
        }
    }
}

fn address(server: &Hookline) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn slow_and_silent_connections_are_closed_and_crowd_no_one_out() {
    let dir = TempDir::new("slow-clients");
    let env = [
        ("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"),
        ("HOOKLINE_API_MAX_CONNECTIONS", "64"),
        ("HOOKLINE_API_HEADER_TIMEOUT", "4s"),
        ("HOOKLINE_API_IDLE_TIMEOUT", "4s"),
    ];
    let server = Hookline::start_with(dir.path(), &env).await;
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed"]})).await;

    // The open file limit is raised to the hard limit at start-up.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let open_files = limits.lines().find(|line| line.starts_with("Max open files")).unwrap();
    let numbers: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "soft and hard limits: {open_files}");

    // Three times the cap: silent connections, half-sent heads, and heads sent a byte at a time.
    let started = Instant::now();
    let mut silent = Vec::new();
    let mut half_heads = Vec::new();
    for _ in 0..100 {
        silent.push(TcpStream::connect(address(&server)).await.unwrap());
        let mut half = TcpStream::connect(address(&server)).await.unwrap();
        half.write_all(b"POST /v1/tenants/acme/events HTTP/1.1\r\nHost: hookline\r\nContent-Le").await.unwrap();
        half_heads.push(half);
    }
    let mut trickles = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(address(&server)).await.unwrap();
        trickles.push(tokio::spawn(async move {
            // One byte every 200 ms never completes a head within the timeout; the server must close it anyway.
            for byte in b"GET /healthz HTTP/1.1\r\nHost: hookline\r\nX-Padding: ".iter().chain([b'a'; 200].iter()) {
                if stream.write_all(&[*byte]).await.is_err() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            false
        }));
    }

    // Meanwhile the API answers at once: the cap makes room by closing the connections that waited longest,
    // instead of leaving new clients to wait for a timeout.
    for _ in 0..5 {
        let asked = Instant::now();
        let answer = server.call("GET", "/healthz", None, None).await;
        assert_eq!(answer.status, 200);
        assert!(asked.elapsed() < HEADER_TIMEOUT / 2, "/healthz took {:?} among slow clients", asked.elapsed());
    }
    let asked = Instant::now();
    let event = server.publish("acme", "pdf.processed", r#"{"pdf_id":"pdf_1"}"#).await;
    assert!(asked.elapsed() < HEADER_TIMEOUT / 2, "a publish took {:?} among slow clients", asked.elapsed());
    // And the delivery it made goes out: outbound connections are not starved of descriptors.
    server.wait_for_deliveries("acme", &event, "succeeded", 1).await;
    assert_eq!(receiver.wait_for(1, Duration::from_secs(10)).await.len(), 1);

    // Every slow connection is closed by the server, within the header timeout (and a margin for a loaded machine).
    let limit = HEADER_TIMEOUT * 3;
    let closings = silent.into_iter().chain(half_heads).map(|stream| tokio::spawn(closed_within(stream, limit)));
    for closing in closings {
        assert!(closing.await.unwrap(), "a silent or half-sent connection was still open after {limit:?}");
    }
    for trickle in trickles {
        assert!(trickle.await.unwrap(), "a connection sending a byte every 200 ms was never closed");
    }
    assert!(started.elapsed() < HEADER_TIMEOUT * 4, "closing them all took {:?}", started.elapsed());
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let dir = TempDir::new("idle-clients");
    let env = [("HOOKLINE_API_IDLE_TIMEOUT", "1s"), ("HOOKLINE_API_HEADER_TIMEOUT", "10s")];
    let server = Hookline::start_with(dir.path(), &env).await;
    let mut stream = TcpStream::connect(address(&server)).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: hookline\r\n\r\n").await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..read]));
    // Kept alive after the answer, then closed once idle for a second: well before the 10 s header timeout.
    let waited = Instant::now();
    assert!(closed_within(stream, Duration::from_secs(8)).await, "the idle connection stayed open");
    assert!(
        waited.elapsed() >= Duration::from_millis(900),
        "closed after {:?}, before the idle timeout",
        waited.elapsed()
    );
}
