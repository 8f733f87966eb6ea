//! The API's connections: accepted under a cap, and each watched by a deadline for what it is doing (sending a
//! request head, being served, or idling between requests), so that clients that are slow or silent on purpose
//! cannot hold the process's file descriptors.
//!
//! Each connection is in one phase at a time, and its deadline follows from the phase:
//! - waiting for a request head: a new connection must send its first head within `header_timeout`; between
//!   requests a kept-alive connection may stay silent for `idle_timeout`, and once a head's first byte arrives,
//!   the whole head must follow within `header_timeout`;
//! - in a request (from a complete head to the response, the request body included): `request_timeout`.
//!
//! At the cap, the connection that has waited longest for a request head is closed to make room, so a crowd of
//! idle or slow connections cannot keep new clients out.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How the API treats its connections; from the server's configuration.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// How long a request head may take, from a new connection or from its first byte.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may stay silent between requests.
    pub idle_timeout: Duration,
    /// How long a request may take from its complete head to its response, the request body included.
    pub request_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown`; then stops accepting, lets requests in progress finish (within
/// their deadline), closes idle connections, and returns once every connection has ended.
pub async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits, shutdown: CancellationToken) {
    let open = Arc::new(Registry::default());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let tasks = TaskTracker::new();
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors or memory for a moment: the connections that end free some.
                tracing::warn!(%error, "accepting an API connection failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if last_warning.is_none_or(|warned| warned.elapsed() >= Duration::from_secs(60)) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(
                        max = limits.max_connections,
                        "the API has as many connections open as it may; closing the one that waited longest for a request"
                    );
                }
                open.evict_longest_waiting();
                tokio::select! {
                    // The semaphore is never closed.
                    permit = Arc::clone(&slots).acquire_owned() => permit.expect("the connection semaphore is open"),
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        // Responses are written whole; without this a small one can wait for the client's delayed ACK.
        let _ = stream.set_nodelay(true);
        let watch = open.add();
        let (app, open, shutdown) = (app.clone(), Arc::clone(&open), shutdown.clone());
        tasks.spawn(async move {
            serve_connection(stream, app, &watch, limits, shutdown).await;
            open.remove(watch.id);
            drop(permit);
        });
    }
    tasks.close();
    tasks.wait().await;
}

/// Serves one connection until it ends, its deadline passes, it is evicted, or shutdown has let it finish.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    watch: &Arc<Watch>,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let io = TokioIo::new(Watched { inner: stream, watch: Arc::clone(watch) });
    let service_watch = Arc::clone(watch);
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let in_request = InRequest::start(Arc::clone(&service_watch));
        let mut app = app.clone();
        async move {
            let response = tower_service::Service::call(&mut app, request).await;
            drop(in_request);
            response
        }
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let deadline = watch.deadline(&limits);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "an API connection ended with an error");
                }
                return;
            }
            _ = watch.sooner.notified() => {}
            _ = tokio::time::sleep_until(deadline) => {
                if watch.deadline(&limits) <= Instant::now() {
                    tracing::debug!(phase = watch.phase_name(), "closing an API connection past its deadline");
                    return;
                }
            }
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The open connections, so that the cap can make room.
#[derive(Default)]
struct Registry {
    connections: Mutex<HashMap<u64, Arc<Watch>>>,
    next_id: AtomicU64,
}

impl Registry {
    fn add(&self) -> Arc<Watch> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let watch = Arc::new(Watch {
            id,
            phase: Mutex::new(Phase::AwaitingHead { since: now, first_byte: None, first: true }),
            sooner: Notify::new(),
        });
        self.connections.lock().unwrap_or_else(PoisonError::into_inner).insert(id, Arc::clone(&watch));
        watch
    }

    fn remove(&self, id: u64) {
        self.connections.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }

    /// Closes the connection that has waited longest for a request head (idle, or sending one slowly); none is
    /// closed while it is being served.
    fn evict_longest_waiting(&self) {
        let connections = self.connections.lock().unwrap_or_else(PoisonError::into_inner);
        let longest = connections
            .values()
            .filter_map(|watch| match *watch.phase() {
                Phase::AwaitingHead { since, .. } => Some((since, watch)),
                _ => None,
            })
            .min_by_key(|(since, _)| *since);
        if let Some((_, watch)) = longest {
            let mut phase = watch.phase();
            // It may have received its head meanwhile.
            if matches!(*phase, Phase::AwaitingHead { .. }) {
                *phase = Phase::Evicted;
                drop(phase);
                watch.sooner.notify_one();
            }
        }
    }
}

/// What one connection is doing, shared by its reader, its service and its watcher.
struct Watch {
    id: u64,
    phase: Mutex<Phase>,
    /// Wakes the watcher when the deadline moved earlier.
    sooner: Notify,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    AwaitingHead { since: Instant, first_byte: Option<Instant>, first: bool },
    InRequest { since: Instant },
    Evicted,
}

impl Watch {
    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn deadline(&self, limits: &ConnectionLimits) -> Instant {
        match *self.phase() {
            Phase::AwaitingHead { since, first: true, .. } => since + limits.header_timeout,
            Phase::AwaitingHead { first_byte: Some(at), .. } => at + limits.header_timeout,
            Phase::AwaitingHead { since, first_byte: None, .. } => since + limits.idle_timeout,
            Phase::InRequest { since } => since + limits.request_timeout,
            Phase::Evicted => Instant::now(),
        }
    }

    fn phase_name(&self) -> &'static str {
        match *self.phase() {
            Phase::AwaitingHead { first: true, .. } => "first request head",
            Phase::AwaitingHead { first_byte: Some(_), .. } => "request head",
            Phase::AwaitingHead { .. } => "idle",
            Phase::InRequest { .. } => "request",
            Phase::Evicted => "evicted",
        }
    }

    /// Bytes arrived from the client.
    fn received(&self) {
        let mut phase = self.phase();
        if let Phase::AwaitingHead { first_byte: first_byte @ None, first: false, .. } = &mut *phase {
            *first_byte = Some(Instant::now());
            drop(phase);
            // The head's deadline is sooner than the idle one the watcher sleeps until.
            self.sooner.notify_one();
        }
    }
}

/// Marks its connection as being served from its creation (a complete head) until it is dropped (the response
/// is ready, or the request was abandoned).
struct InRequest(Arc<Watch>);

impl InRequest {
    fn start(watch: Arc<Watch>) -> InRequest {
        let mut phase = watch.phase();
        if !matches!(*phase, Phase::Evicted) {
            *phase = Phase::InRequest { since: Instant::now() };
        }
        drop(phase);
        InRequest(watch)
    }
}

impl Drop for InRequest {
    fn drop(&mut self) {
        let mut phase = self.0.phase();
        if !matches!(*phase, Phase::Evicted) {
            *phase = Phase::AwaitingHead { since: Instant::now(), first_byte: None, first: false };
        }
        drop(phase);
        // The idle deadline may be sooner than the request's, which the watcher sleeps until.
        self.0.sooner.notify_one();
    }
}

/// A connection's stream, telling its watch when bytes arrive.
struct Watched {
    inner: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, context: &mut Context<'_>, buffer: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buffer.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(context, buffer);
        if matches!(polled, Poll::Ready(Ok(()))) && buffer.filled().len() > before {
            this.watch.received();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, context: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(context, bytes)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(context)
    }
}

/// Raises the soft limit on open files to the hard limit, and returns the limit now in force (`None` where it
/// cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "could not raise the open file limit");
            rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
        }
    }
}

/// The API's connection cap under an open file limit: it leaves room for the dispatcher's outbound connections
/// (`delivery_concurrency` in flight, as many idle in its pool) and the store's files, so deliveries never fail
/// for want of a descriptor.
pub fn connection_cap(configured: usize, open_file_limit: Option<u64>, delivery_concurrency: usize) -> usize {
    let Some(limit) = open_file_limit else { return configured };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let reserved = delivery_concurrency.saturating_mul(2).saturating_add(256).min(limit / 2);
    configured.min(limit - reserved).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_deliveries() {
        assert_eq!(connection_cap(4096, Some(1_048_576), 1024), 4096);
        assert_eq!(connection_cap(4096, Some(20_000), 1024), 4096);
        assert_eq!(connection_cap(8192, Some(8192), 1024), 8192 - 2304);
        assert_eq!(connection_cap(4096, Some(4096), 1024), 2048);
        assert_eq!(connection_cap(4096, Some(1024), 1024), 512);
        assert_eq!(connection_cap(4096, None, 1024), 4096);
    }
}
