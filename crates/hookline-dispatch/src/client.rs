//! The outbound HTTP client: a pool of hyper HTTP/1.1 connections over plain TCP or rustls, with the SSRF guard applied to
//! every resolved address at connect time, and failures sorted into typed reasons.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookline_core::attempt::AttemptError;
use http::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;

use crate::guard::{Refusal, TargetGuard, TargetPolicy};

/// A name that resolved only to addresses the guard refuses.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {address} only, which is {reason}; the SSRF guard refuses it", address = refusal.address, reason = refusal.reason)]
pub struct BlockedAddress {
    pub host: String,
    pub refusal: Refusal,
}

/// A name the system resolver could not resolve.
#[derive(Debug, thiserror::Error)]
#[error("could not resolve {host}")]
pub struct ResolveError {
    pub host: String,
    #[source]
    pub source: std::io::Error,
}

/// Resolves names with the system resolver, then drops every address the guard refuses.
#[derive(Clone)]
pub struct GuardedResolver {
    guard: TargetGuard,
}

type ResolveFuture =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, Box<dyn StdError + Send + Sync>>> + Send>>;

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = Box<dyn StdError + Send + Sync>;
    type Future = ResolveFuture;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let looked_up: std::io::Result<Vec<SocketAddr>> =
                tokio::net::lookup_host((host.as_str(), 0)).await.map(Iterator::collect);
            let resolved = match looked_up {
                Ok(addresses) => addresses,
                // Boxed as itself, so `classify` can downcast the cause.
                Err(source) => return Err(ResolveError { host, source }.into()),
            };
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| match guard.check(address.ip()) {
                    Err(refusal) => {
                        refused = Some(refusal);
                        false
                    }
                    Ok(()) => true,
                })
                .collect();
            // The connector connects to exactly these addresses, so what was checked is what is reached.
            match (allowed.is_empty(), refused) {
                // The error itself is boxed, not a box of it, so `classify` can downcast the cause.
                (true, Some(refusal)) => Err(BlockedAddress { host, refusal }.into()),
                _ => Ok(allowed.into_iter()),
            }
        })
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>;
type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A pooled client for webhook requests: HTTP/1.1 connections kept open per scheme and authority, each driven
/// by its own task, and taken by one request at a time.
#[derive(Clone)]
pub struct HttpClient {
    shared: Arc<Shared>,
}

struct Shared {
    connector: Connector,
    pool: Mutex<Pool>,
    guard: TargetGuard,
    timeout: Duration,
    response_body_limit: usize,
    headers_limit: HeadersLimit,
}

/// How much of a response's headers a request keeps: whole headers, in the order received, while both the count
/// and the total size of names and values stay within the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadersLimit {
    pub count: usize,
    pub bytes: usize,
}

impl HeadersLimit {
    pub const UNLIMITED: HeadersLimit = HeadersLimit { count: usize::MAX, bytes: usize::MAX };
}

/// Idle connections by host, the most recently used last.
struct Pool {
    idle: HashMap<PoolKey, Vec<Idle>>,
    swept: Instant,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    https: bool,
    authority: http::uri::Authority,
}

struct Idle {
    sender: Sender,
    since: Instant,
}

/// How long a connection may stay unused in the pool.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request waits for a pooled connection to be ready before it takes another.
const READY_WAIT: Duration = Duration::from_millis(100);

/// What came back from one request.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// How many headers were past the limit and not kept.
    pub headers_omitted: u32,
    pub body: String,
}

/// One request's result: a response (of any status) or a typed failure.
#[derive(Debug)]
pub struct Exchange {
    pub elapsed: Duration,
    pub result: Result<Response, (AttemptError, String)>,
}

/// A header name a request is given: webhook requests use constants (`&'static str`), which need no parsing or
/// copying; a request copied from another (`hookline listen --forward-to`) has owned names.
pub trait HeaderNameSource: Sync {
    fn header_name(&self) -> Result<HeaderName, http::header::InvalidHeaderName>;
}

impl HeaderNameSource for &'static str {
    fn header_name(&self) -> Result<HeaderName, http::header::InvalidHeaderName> {
        // `from_static` refuses (panics on) what is not a lowercase token; anything else is parsed.
        let lowercase_token = !self.is_empty()
            && self.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        if lowercase_token { Ok(HeaderName::from_static(self)) } else { HeaderName::from_bytes(self.as_bytes()) }
    }
}

impl HeaderNameSource for String {
    fn header_name(&self) -> Result<HeaderName, http::header::InvalidHeaderName> {
        HeaderName::from_bytes(self.as_bytes())
    }
}

/// An endpoint's own headers beside the constant ones: borrowed constants, owned names.
impl HeaderNameSource for std::borrow::Cow<'static, str> {
    fn header_name(&self) -> Result<HeaderName, http::header::InvalidHeaderName> {
        match self {
            std::borrow::Cow::Borrowed(name) => name.header_name(),
            std::borrow::Cow::Owned(name) => name.header_name(),
        }
    }
}

impl HttpClient {
    pub fn new(policy: TargetPolicy, timeout: Duration, response_body_limit: usize) -> HttpClient {
        HttpClient::with_guard(TargetGuard::new(policy), timeout, response_body_limit, HeadersLimit::UNLIMITED)
    }

    /// A client whose requests go only where `guard` allows, keeping at most `headers_limit` of a response's
    /// headers.
    pub fn with_guard(
        guard: TargetGuard,
        timeout: Duration,
        response_body_limit: usize,
        headers_limit: HeadersLimit,
    ) -> HttpClient {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver { guard: guard.clone() });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout.min(Duration::from_secs(10))));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // Every idle connection stays pooled: the dispatcher's concurrency already bounds how many there are, and
        // a cap below it made busy hosts (many endpoints on one receiver) reconnect all the time.
        let pool = Mutex::new(Pool { idle: HashMap::new(), swept: Instant::now() });
        HttpClient { shared: Arc::new(Shared { connector, pool, guard, timeout, response_body_limit, headers_limit }) }
    }

    /// POSTs `body` to `url` with `headers`, within the client's timeout.
    pub async fn post(&self, url: &str, headers: &[(&'static str, String)], body: Bytes) -> Exchange {
        self.request(http::Method::POST, url, headers, body).await
    }

    /// Sends any request, within the client's timeout.
    pub async fn request<Name: HeaderNameSource>(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(Name, String)],
        body: Bytes,
    ) -> Exchange {
        let started = Instant::now();
        let timeout = self.shared.timeout;
        let result = match tokio::time::timeout(timeout, self.send(method, url, headers, body)).await {
            Ok(result) => result,
            Err(_) => Err((AttemptError::Timeout, format!("no complete response within {timeout:?}"))),
        };
        Exchange { elapsed: started.elapsed(), result }
    }

    async fn send<Name: HeaderNameSource>(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(Name, String)],
        body: Bytes,
    ) -> Result<Response, (AttemptError, String)> {
        let invalid = |error: &dyn std::fmt::Display| {
            (AttemptError::Io, format!("url {url:?} is not a valid request target: {error}"))
        };
        let uri: http::Uri = url.parse().map_err(|error| invalid(&error))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(invalid(&"it needs an http:// or https:// scheme")),
        };
        let (Some(authority), Some(host)) = (uri.authority().cloned(), uri.host()) else {
            return Err(invalid(&"it has no host"));
        };
        // An address in the URL is connected to without resolving, so it is checked here.
        if let Ok(address) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>()
            && let Err(refusal) = self.shared.guard.check(address)
        {
            return Err((AttemptError::Blocked, refusal.to_string()));
        }
        let host = host_header(&uri, https).map_err(|error| invalid(&error))?;
        // Sent in origin form (the path), as a request to the origin server is.
        let target = match uri.path_and_query() {
            Some(path) => http::Uri::from(path.clone()),
            None => http::Uri::from_static("/"),
        };
        let build = || -> Result<http::Request<Full<Bytes>>, (AttemptError, String)> {
            let mut request = http::Request::new(Full::new(body.clone()));
            *request.method_mut() = method.clone();
            *request.uri_mut() = target.clone();
            let map = request.headers_mut();
            map.reserve(headers.len() + 1);
            for (name, value) in headers {
                let name = name.header_name().map_err(|error| (AttemptError::Io, error.to_string()))?;
                let value = HeaderValue::from_str(value).map_err(|error| (AttemptError::Io, error.to_string()))?;
                map.append(name, value);
            }
            map.entry(http::header::HOST).or_insert_with(|| host.clone());
            Ok(request)
        };
        let key = PoolKey { https, authority };
        let pooled = self.checkout(&key).await;
        let (response, sender) = self.send_on(pooled, &uri, &build).await?;
        let status = response.status().as_u16();
        let (headers, headers_omitted) = kept_headers(response.headers(), self.shared.headers_limit);
        let limit = self.shared.response_body_limit;
        let mut body = response.into_body();
        let mut collected = Vec::new();
        let mut complete = false;
        while collected.len() < limit {
            match body.frame().await {
                None => {
                    complete = true;
                    break;
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = limit - collected.len();
                        collected.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                // The status already arrived; a body cut short is recorded as far as it got.
                Some(Err(_)) => break,
            }
        }
        // A connection is reused only once its response was read to the end (a zero limit never reads it).
        if complete || body.is_end_stream() {
            self.put(key, sender);
        }
        Ok(Response { status, headers, headers_omitted, body: String::from_utf8_lossy(&collected).into_owned() })
    }

    /// Sends the request `build` makes on `pooled`, or on a new connection. A pooled connection that the
    /// receiver closed meanwhile (the request came back unsent, or the connection ended before any answer) gets
    /// the request once more on a new connection: a webhook is delivered at least once, and a failed attempt
    /// would be retried later in any case.
    async fn send_on(
        &self,
        pooled: Option<Sender>,
        uri: &http::Uri,
        build: &(dyn Fn() -> Result<http::Request<Full<Bytes>>, (AttemptError, String)> + Sync),
    ) -> Result<(http::Response<hyper::body::Incoming>, Sender), (AttemptError, String)> {
        if let Some(mut sender) = pooled {
            match sender.try_send_request(build()?).await {
                Ok(response) => return Ok((response, sender)),
                Err(error) if error.message().is_some() || error.error().is_incomplete_message() => {}
                Err(error) => return Err(classify(AttemptError::Io, &error.into_error())),
            }
        }
        let mut sender = self.connect(uri).await?;
        match sender.try_send_request(build()?).await {
            Ok(response) => Ok((response, sender)),
            Err(error) => Err(classify(AttemptError::Io, &error.into_error())),
        }
    }

    /// An idle connection to `key` that is ready for a request, if the pool has one.
    async fn checkout(&self, key: &PoolKey) -> Option<Sender> {
        loop {
            let mut idle = {
                let mut pool = self.shared.pool.lock().unwrap_or_else(PoisonError::into_inner);
                let connections = pool.idle.get_mut(key)?;
                let idle = connections.pop()?;
                if connections.is_empty() {
                    pool.idle.remove(key);
                }
                idle
            };
            if idle.since.elapsed() >= IDLE_TIMEOUT || idle.sender.is_closed() {
                continue;
            }
            if idle.sender.is_ready() {
                return Some(idle.sender);
            }
            // Its task takes the next request once it has finished with the last exchange, usually at once. One
            // still sending the last request's body (a receiver answered before reading it all) is left behind.
            if let Ok(Ok(())) = tokio::time::timeout(READY_WAIT, idle.sender.ready()).await {
                return Some(idle.sender);
            }
        }
    }

    fn put(&self, key: PoolKey, sender: Sender) {
        let now = Instant::now();
        let mut pool = self.shared.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if now.duration_since(pool.swept) >= IDLE_TIMEOUT / 2 {
            // Connections to hosts no longer delivered to would otherwise stay open.
            pool.swept = now;
            pool.idle.retain(|_, connections| {
                connections.retain(|idle| now.duration_since(idle.since) < IDLE_TIMEOUT && !idle.sender.is_closed());
                !connections.is_empty()
            });
        }
        pool.idle.entry(key).or_default().push(Idle { sender, since: now });
    }

    /// Opens a connection (through the SSRF guard, with TLS for https) and starts the task that drives it.
    async fn connect(&self, uri: &http::Uri) -> Result<Sender, (AttemptError, String)> {
        let mut connector = self.shared.connector.clone();
        let connecting = async {
            std::future::poll_fn(|context| tower_service::Service::poll_ready(&mut connector, context)).await?;
            tower_service::Service::call(&mut connector, uri.clone()).await
        };
        let stream = connecting.await.map_err(|error| classify(AttemptError::Connect, error.as_ref()))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(stream)
            .await
            .map_err(|error| classify(AttemptError::Connect, &error))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a receiver connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// The headers `limit` keeps, and how many it left out.
fn kept_headers(headers: &http::HeaderMap, limit: HeadersLimit) -> (Vec<(String, String)>, u32) {
    let mut kept = Vec::with_capacity(headers.len().min(limit.count));
    let (mut bytes, mut omitted) = (0usize, 0u32);
    for (name, value) in headers {
        let size = name.as_str().len() + value.len();
        if kept.len() < limit.count && bytes.saturating_add(size) <= limit.bytes {
            bytes += size;
            kept.push((name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()));
        } else {
            omitted = omitted.saturating_add(1);
        }
    }
    (kept, omitted)
}

/// The `Host` header for `uri`: its host, with the port unless it is the scheme's default.
fn host_header(uri: &http::Uri, https: bool) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    let host = uri.host().unwrap_or_default();
    match uri.port_u16() {
        Some(port) if port != if https { 443 } else { 80 } => HeaderValue::from_str(&format!("{host}:{port}")),
        _ => HeaderValue::from_str(host),
    }
}

/// Sorts a client error into a reason by walking its causes; `kind` is the reason when none is more precise.
fn classify(mut kind: AttemptError, error: &(dyn StdError + 'static)) -> (AttemptError, String) {
    let mut detail = error.to_string();
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(cause) = source {
        if !std::ptr::addr_eq(cause, error) {
            detail = format!("{detail}: {cause}");
        }
        if let Some(blocked) = cause.downcast_ref::<BlockedAddress>() {
            return (AttemptError::Blocked, blocked.to_string());
        }
        if cause.downcast_ref::<rustls::Error>().is_some() {
            kind = AttemptError::Tls;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if wraps_tls_error(io) {
                kind = AttemptError::Tls;
            }
            if matches!(io.kind(), std::io::ErrorKind::TimedOut) {
                kind = AttemptError::Timeout;
            }
        }
        if cause.is::<ResolveError>() {
            kind = AttemptError::Dns;
        }
        source = cause.source();
    }
    (kind, detail)
}

/// Whether `io` carries a rustls error, however deeply wrapped: hyper-rustls wraps tokio-rustls's `io::Error`
/// (which holds the `rustls::Error`) in another `io::Error`, and `io::Error::source` skips the error it wraps.
fn wraps_tls_error(io: &std::io::Error) -> bool {
    match io.get_ref() {
        Some(inner) if inner.is::<rustls::Error>() => true,
        Some(inner) => inner.downcast_ref::<std::io::Error>().is_some_and(wraps_tls_error),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A receiver on a real socket: it answers every request with `answer` (closing the connection after each
    /// answer with `close_after_answer`), and keeps the connections it accepted and every request head.
    struct Receiver {
        url: String,
        accepted: Arc<AtomicUsize>,
        heads: Arc<Mutex<Vec<String>>>,
    }

    impl Receiver {
        async fn start(answer: String, close_after_answer: bool) -> Receiver {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/hook?x=1", listener.local_addr().unwrap());
            let (accepted, heads) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
            let (counter, kept) = (Arc::clone(&accepted), Arc::clone(&heads));
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let (kept, answer) = (Arc::clone(&kept), answer.clone());
                    tokio::spawn(async move {
                        let mut buffer = Vec::new();
                        let mut chunk = [0u8; 4096];
                        loop {
                            // Every request here has a 5-byte body.
                            let end = loop {
                                if let Some(end) = request_end(&buffer) {
                                    break end;
                                }
                                match stream.read(&mut chunk).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(read) => buffer.extend_from_slice(&chunk[..read]),
                                }
                            };
                            kept.lock().unwrap().push(String::from_utf8_lossy(&buffer[..end]).into_owned());
                            buffer.drain(..end);
                            if stream.write_all(answer.as_bytes()).await.is_err() || close_after_answer {
                                return;
                            }
                        }
                    });
                }
            });
            Receiver { url, accepted, heads }
        }

        fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }

        fn heads(&self) -> Vec<String> {
            self.heads.lock().unwrap().clone()
        }
    }

    /// Where the first request in `buffer` ends (its head and a 5-byte body), once it is all there.
    fn request_end(buffer: &[u8]) -> Option<usize> {
        let head = buffer.windows(4).position(|window| window == b"\r\n\r\n")? + 4;
        (buffer.len() >= head + 5).then_some(head + 5)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    fn client() -> HttpClient {
        HttpClient::new(TargetPolicy::DangerousAllowPrivate, Duration::from_secs(5), 1024)
    }

    async fn post(client: &HttpClient, url: &str) -> Response {
        let headers = [("content-type", "text/plain".to_owned()), ("X-Mixed-Case", "kept".to_owned())];
        client.post(url, &headers, Bytes::from_static(b"hello")).await.result.unwrap()
    }

    fn key_of(url: &str) -> PoolKey {
        let uri: http::Uri = url.parse().unwrap();
        PoolKey { https: false, authority: uri.authority().unwrap().clone() }
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_response_is_read() {
        let receiver = Receiver::start(OK.to_owned(), false).await;
        let client = client();
        for _ in 0..5 {
            let response = post(&client, &receiver.url).await;
            assert_eq!((response.status, response.body.as_str()), (200, "ok"));
        }
        assert_eq!(receiver.accepted(), 1);
        let heads = receiver.heads();
        assert_eq!(heads.len(), 5);
        let port = key_of(&receiver.url).authority.port_u16().unwrap();
        for head in heads {
            let head = head.to_ascii_lowercase();
            assert!(head.starts_with("post /hook?x=1 http/1.1\r\n"), "origin form: {head}");
            assert!(head.contains(&format!("\r\nhost: 127.0.0.1:{port}\r\n")), "a host header: {head}");
            assert!(head.contains("\r\nx-mixed-case: kept\r\n"), "{head}");
        }
    }

    #[tokio::test]
    async fn a_host_header_given_by_the_caller_is_sent_alone() {
        let receiver = Receiver::start(OK.to_owned(), false).await;
        let headers = [("host".to_owned(), "example.test".to_owned())];
        let exchange =
            client().request(http::Method::POST, &receiver.url, &headers, Bytes::from_static(b"hello")).await;
        assert_eq!(exchange.result.unwrap().status, 200);
        let head = receiver.heads().remove(0).to_ascii_lowercase();
        assert_eq!(head.matches("\r\nhost:").count(), 1, "{head}");
        assert!(head.contains("\r\nhost: example.test\r\n"), "{head}");
    }

    #[tokio::test]
    async fn a_response_not_read_to_the_end_leaves_its_connection_unused() {
        // Far more than one read brings: the client stops at its limit of 1,024 bytes with most still to come.
        let long = format!("HTTP/1.1 200 OK\r\ncontent-length: {0}\r\n\r\n{1}", 4 << 20, "a".repeat(4 << 20));
        let receiver = Receiver::start(long, false).await;
        let client = client();
        for _ in 0..2 {
            assert_eq!(post(&client, &receiver.url).await.body.len(), 1024);
        }
        assert_eq!(receiver.accepted(), 2);
    }

    #[tokio::test]
    async fn a_receiver_that_closes_its_connections_gets_a_new_one_each_time() {
        let answer = "HTTP/1.1 201 Created\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let receiver = Receiver::start(answer.to_owned(), true).await;
        let client = client();
        for _ in 0..3 {
            assert_eq!(post(&client, &receiver.url).await.status, 201);
        }
        assert_eq!(receiver.accepted(), 3);
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_leaves_the_pool() {
        // Keep-alive is not refused, but the receiver hangs up after each answer (as an idle timeout would).
        let receiver = Receiver::start(OK.to_owned(), true).await;
        let client = client();
        assert_eq!(post(&client, &receiver.url).await.status, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(client.checkout(&key_of(&receiver.url)).await.is_none());
        assert_eq!(post(&client, &receiver.url).await.status, 200);
        assert_eq!(receiver.accepted(), 2);
    }

    #[tokio::test]
    async fn a_request_a_closed_connection_gave_back_goes_out_on_a_new_one() {
        let receiver = Receiver::start(OK.to_owned(), false).await;
        let client = client();
        // A connection whose task is gone: it takes no request and gives it back unsent.
        let stream = tokio::net::TcpStream::connect(key_of(&receiver.url).authority.as_str()).await.unwrap();
        let io = hyper_rustls::MaybeHttpsStream::Http(hyper_util::rt::TokioIo::new(stream));
        let (closed, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
        drop(connection);
        let uri: http::Uri = receiver.url.parse().unwrap();
        let build = || {
            let mut request = http::Request::new(Full::new(Bytes::from_static(b"hello")));
            *request.method_mut() = http::Method::POST;
            *request.uri_mut() = http::Uri::from_static("/hook?x=1");
            Ok(request)
        };
        let (response, _) = client.send_on(Some(closed), &uri, &build).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(receiver.accepted(), 2);
        assert_eq!(receiver.heads().len(), 1);
    }

    #[tokio::test]
    async fn urls_without_an_http_scheme_or_a_host_are_refused() {
        let client = client();
        for url in ["ftp://example.com/", "/relative", "http://"] {
            let (kind, detail) = client.post(url, &[], Bytes::new()).await.result.unwrap_err();
            assert_eq!(kind, AttemptError::Io, "{url}");
            assert!(detail.contains("not a valid request target"), "{url}: {detail}");
        }
    }
}
