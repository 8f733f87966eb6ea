//! The built-in receiver: answers `200` (at once; after a delay for the slow endpoint; or, in the backlog
//! scenario, only once the gate opens), records when each delivery arrived and how long after its publish, and
//! verifies the signature of a sample of deliveries.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hookline_verify::Verifier;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use super::measure::Buckets;

/// One delivery in this many has its signature verified.
const SIGNATURE_SAMPLE_EVERY: u64 = 50;

/// What starts every published event's data: the publish time in microseconds since the epoch follows.
pub const SENT_MARKER: &str = "\"bench_sent_us\":";

/// Requests answered so far, by kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub fast: u64,
    pub slow: u64,
    pub raw: u64,
}

impl Counts {
    /// The deliveries that count for the figures: the fast endpoints' alone, or all of them.
    pub fn answered(&self, fast_only: bool) -> u64 {
        if fast_only { self.fast } else { self.fast + self.slow }
    }
}

/// What one kind of endpoint (the fast ones, or the slow one) received.
#[derive(Clone, Debug, Default)]
pub struct Received {
    /// Publish→delivery, in microseconds, in arrival order.
    pub latencies_us: Vec<u64>,
    pub per_bucket: Buckets,
    /// When the last delivery was answered, since the epoch.
    pub last_at: Duration,
}

/// Everything the sink recorded.
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub fast: Received,
    pub slow: Received,
    pub signatures_checked: u64,
    pub signature_failures: u64,
    pub first_signature_failure: Option<String>,
}

pub struct Sink {
    epoch: Instant,
    /// The index of the endpoint that answers after `slow_answer`.
    slow_endpoint: Option<usize>,
    slow_answer: Duration,
    /// Endpoint requests wait until this is true.
    gate: watch::Sender<bool>,
    /// One per endpoint, by index; set once the endpoints exist.
    verifiers: OnceLock<Vec<Verifier>>,
    record: Mutex<Record>,
    /// In a soak, the fast endpoints' latencies go here, a histogram per window, instead of into the record.
    window: Option<Mutex<hdrhistogram::Histogram<u64>>>,
    counts: watch::Sender<Counts>,
    sequence: AtomicU64,
}

/// Which path a request came to.
enum Route {
    Raw,
    Endpoint(usize),
    Unknown,
}

impl Sink {
    /// A sink; `soak` keeps latencies per window (see `take_window`) rather than every one of them.
    pub fn new(
        epoch: Instant,
        slow_endpoint: Option<usize>,
        slow_answer: Duration,
        gate_open: bool,
        soak: bool,
    ) -> Sink {
        Sink {
            window: soak.then(|| Mutex::new(super::soak::histogram())),
            epoch,
            slow_endpoint,
            slow_answer,
            gate: watch::channel(gate_open).0,
            verifiers: OnceLock::new(),
            record: Mutex::new(Record::default()),
            counts: watch::channel(Counts::default()).0,
            sequence: AtomicU64::new(0),
        }
    }

    /// The path endpoint `index` delivers to, under the sink's base URL.
    pub fn endpoint_path(index: usize) -> String {
        format!("/e/{index}")
    }

    /// The path the raw-ceiling requests go to.
    pub const RAW_PATH: &str = "/raw";

    pub fn set_verifiers(&self, verifiers: Vec<Verifier>) {
        let _ = self.verifiers.set(verifiers);
    }

    /// Lets every held request be answered, and every later one at once.
    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    pub fn counts(&self) -> watch::Receiver<Counts> {
        self.counts.subscribe()
    }

    /// The latencies since the last call, in a soak; an empty histogram otherwise.
    pub fn take_window(&self) -> hdrhistogram::Histogram<u64> {
        match &self.window {
            Some(window) => {
                let mut window = window.lock().unwrap_or_else(PoisonError::into_inner);
                std::mem::replace(&mut *window, super::soak::histogram())
            }
            None => super::soak::histogram(),
        }
    }

    pub fn record(&self) -> Record {
        self.record.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Binds `address` and serves on the current runtime; returns the bound address.
    pub async fn listen(self: Arc<Sink>, address: SocketAddr) -> anyhow::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("the sink could not listen on {address}"))?;
        let bound = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let sink = Arc::clone(&self);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let sink = Arc::clone(&sink);
                        async move { Ok::<_, std::convert::Infallible>(sink.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(bound)
    }

    async fn answer(&self, request: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Full<Bytes>> {
        let path = request.uri().path();
        let route = if path == Sink::RAW_PATH {
            Route::Raw
        } else {
            match path.strip_prefix("/e/").and_then(|index| index.parse().ok()) {
                Some(index) => Route::Endpoint(index),
                None => Route::Unknown,
            }
        };
        let (parts, body) = request.into_parts();
        let body = body.collect().await.map(|body| body.to_bytes()).unwrap_or_default();
        let index = match route {
            Route::Endpoint(index) => index,
            Route::Raw => {
                self.counts.send_modify(|counts| counts.raw += 1);
                return hyper::Response::new(Full::new(Bytes::new()));
            }
            Route::Unknown => {
                let mut response = hyper::Response::new(Full::new(Bytes::from_static(b"unknown path")));
                *response.status_mut() = hyper::StatusCode::NOT_FOUND;
                return response;
            }
        };
        // The gate is open unless the backlog scenario is holding deliveries back.
        let _ = self.gate.subscribe().wait_for(|open| *open).await;
        let slow = self.slow_endpoint == Some(index);
        if slow {
            tokio::time::sleep(self.slow_answer).await;
        }
        let answered = self.epoch.elapsed();
        let signature = self
            .sequence
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SIGNATURE_SAMPLE_EVERY)
            .then(|| self.check_signature(index, &parts.headers, &body));
        self.note(slow, answered, sent_at(&body), signature);
        self.counts.send_modify(|counts| if slow { counts.slow += 1 } else { counts.fast += 1 });
        hyper::Response::new(Full::new(Bytes::new()))
    }

    /// Records one answered delivery: its latency (publish to answer) when the body says when it was published,
    /// and the sampled signature check's outcome. In a soak, the fast endpoints' latencies go into the window's
    /// histogram and no 100 ms series is kept (the soak charts its windows), so the sink's memory stays the same
    /// however long the soak runs.
    fn note(&self, slow: bool, answered: Duration, sent: Option<u64>, signature: Option<Result<(), String>>) {
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        let received = if slow { &mut record.slow } else { &mut record.fast };
        if let Some(sent) = sent {
            let latency = (answered.as_micros() as u64).saturating_sub(sent);
            match &self.window {
                Some(window) if !slow => {
                    let _ = window.lock().unwrap_or_else(PoisonError::into_inner).record(latency.max(1));
                }
                _ => received.latencies_us.push(latency),
            }
        }
        if self.window.is_none() {
            received.per_bucket.add(answered);
        }
        received.last_at = received.last_at.max(answered);
        match signature {
            Some(Ok(())) => record.signatures_checked += 1,
            Some(Err(problem)) => {
                record.signatures_checked += 1;
                record.signature_failures += 1;
                record.first_signature_failure.get_or_insert(problem);
            }
            None => {}
        }
    }

    fn check_signature(&self, index: usize, headers: &http::HeaderMap, body: &[u8]) -> Result<(), String> {
        let Some(verifier) = self.verifiers.get().and_then(|verifiers| verifiers.get(index)) else {
            return Err(format!("a delivery came to endpoint {index}, whose secret the sink does not know"));
        };
        let headers = headers.iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        let now = hookline_core::time::Timestamp::now().unix_seconds();
        verifier.verify(headers, body, now).map(|_| ()).map_err(|error| format!("endpoint {index}: {error}"))
    }
}

/// The publish time a body carries: `"bench_sent_us":<microseconds since the epoch>`.
fn sent_at(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(SENT_MARKER)? + SENT_MARKER.len();
    let digits = &text[start..];
    let end = digits.find(|character: char| !character.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_publish_time_in_an_envelope() {
        let body = br#"{"topic":"pdf.processed","created":"2021-05-20T09:23:53+00:00","data":{"bench_sent_us":1234,"pad":"x"},"meta":null}"#;
        assert_eq!(sent_at(body), Some(1234));
        assert_eq!(sent_at(br#"{"data":{}}"#), None);
    }

    #[test]
    fn a_soak_keeps_no_series_however_long_it_runs() {
        let epoch = Instant::now();
        let soak = Sink::new(epoch, None, Duration::ZERO, true, true);
        let burst = Sink::new(epoch, None, Duration::ZERO, true, false);
        // An hour of deliveries, one every 100 ms, each a millisecond after its publish.
        let count = 36_000u64;
        for tenth in 0..count {
            let answered = Duration::from_millis(tenth * 100 + 1);
            soak.note(false, answered, Some(tenth * 100_000), None);
            burst.note(false, answered, Some(tenth * 100_000), None);
        }
        let (soaked, burst) = (soak.record(), burst.record());
        assert!(soaked.fast.latencies_us.is_empty(), "a soak kept {} latencies", soaked.fast.latencies_us.len());
        assert!(soaked.fast.per_bucket.is_empty(), "a soak kept a 100 ms series");
        let window = soak.take_window();
        assert_eq!((window.len(), window.max()), (count, 1000));
        assert_eq!(soaked.fast.last_at, Duration::from_millis((count - 1) * 100 + 1));
        // A burst keeps both for its chart.
        assert_eq!(burst.fast.latencies_us.len() as u64, count);
        let hour = Duration::from_secs(3600);
        assert_eq!(burst.fast.per_bucket.between(Duration::ZERO, hour).iter().sum::<u64>(), count);
    }
}
