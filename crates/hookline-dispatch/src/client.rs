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
use hookline_core::target::forbidden_reason;
use hookline_store::AttemptError;
use http::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;

/// How the client treats private and internal addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetPolicy {
    /// Refuse loopback, private, link-local, CGNAT and metadata addresses (the default).
    PublicOnly,
    /// Allow every address. For tests and local demos only.
    DangerousAllowPrivate,
}

/// A name resolved only to addresses the guard refuses.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to a {reason} address ({address}); the SSRF guard refuses it")]
pub struct BlockedAddress {
    pub host: String,
    pub address: IpAddr,
    pub reason: &'static str,
}

/// Resolves names with the system resolver, then drops every address the policy refuses.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: TargetPolicy,
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
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if policy == TargetPolicy::DangerousAllowPrivate {
                return Ok(resolved.into_iter());
            }
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| match forbidden_reason(address.ip()) {
                    Some(reason) => {
                        refused = Some((address.ip(), reason));
                        false
                    }
                    None => true,
                })
                .collect();
            match (allowed.is_empty(), refused) {
                // The error itself is boxed, not a box of it, so `classify` can downcast the cause.
                (true, Some((address, reason))) => Err(BlockedAddress { host, address, reason }.into()),
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
    policy: TargetPolicy,
    timeout: Duration,
    response_body_limit: usize,
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

/// What came back from one request.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
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
pub trait HeaderNameSource {
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

impl HttpClient {
    pub fn new(policy: TargetPolicy, timeout: Duration, response_body_limit: usize) -> HttpClient {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver { policy });
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
        HttpClient { shared: Arc::new(Shared { connector, pool, policy, timeout, response_body_limit }) }
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
        if self.shared.policy == TargetPolicy::PublicOnly
            && let Ok(address) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>()
            && let Some(reason) = forbidden_reason(address)
        {
            return Err((AttemptError::Blocked, format!("{address} is a {reason} address; the SSRF guard refuses it")));
        }
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = method;
        let map = request.headers_mut();
        map.reserve(headers.len() + 1);
        map.insert(http::header::HOST, host_header(&uri, https).map_err(|error| invalid(&error))?);
        for (name, value) in headers {
            let name = name.header_name().map_err(|error| (AttemptError::Io, error.to_string()))?;
            let value = HeaderValue::from_str(value).map_err(|error| (AttemptError::Io, error.to_string()))?;
            map.append(name, value);
        }
        // Sent in origin form (the path), as a request to the origin server is.
        *request.uri_mut() = match uri.path_and_query() {
            Some(path) => http::Uri::from(path.clone()),
            None => http::Uri::from_static("/"),
        };
        let key = PoolKey { https, authority };
        let mut request = Some(request);
        let (response, sender) = loop {
            let (mut sender, reused) = match self.checkout(&key).await {
                Some(sender) => (sender, true),
                None => (self.connect(&uri).await?, false),
            };
            let Some(outgoing) = request.take() else { unreachable!("a request is sent at most once") };
            match sender.try_send_request(outgoing).await {
                Ok(response) => break (response, sender),
                // A pooled connection the receiver closed meanwhile: the request was not written, so it goes out
                // on another connection.
                Err(mut error) if reused && error.message().is_some() => request = error.take_message(),
                Err(error) => return Err(classify(AttemptError::Io, &error.into_error())),
            }
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
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
        Ok(Response { status, headers, body: String::from_utf8_lossy(&collected).into_owned() })
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
            // Its task takes the next request once it has finished with the last response: usually at once.
            if idle.sender.ready().await.is_ok() {
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
        if cause.to_string().starts_with("dns error") {
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

    /// A receiver on a real socket that answers every request with `answer`, counting the connections it
    /// accepted; with `close_after_answer` it closes each connection once it has answered.
    async fn receiver(answer: &'static str, close_after_answer: bool) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook?x=1", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        // Each request here is a head and a 5-byte body.
                        while !request_complete(&buffer) {
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
                            }
                        }
                        let head = String::from_utf8_lossy(&buffer).into_owned();
                        assert!(head.starts_with("POST /hook?x=1 HTTP/1.1\r\n"), "origin form: {head}");
                        assert!(head.to_ascii_lowercase().contains("\r\nhost: 127.0.0.1:"), "a host header: {head}");
                        buffer.clear();
                        if stream.write_all(answer.as_bytes()).await.is_err() || close_after_answer {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    fn request_complete(buffer: &[u8]) -> bool {
        let text = String::from_utf8_lossy(buffer);
        text.find("\r\n\r\n").is_some_and(|end| buffer.len() >= end + 4 + 5)
    }

    fn client() -> HttpClient {
        HttpClient::new(TargetPolicy::DangerousAllowPrivate, Duration::from_secs(5), 1024)
    }

    async fn post(client: &HttpClient, url: &str) -> Response {
        let headers = [("content-type", "text/plain".to_owned()), ("X-Mixed-Case", "kept".to_owned())];
        client.post(url, &headers, Bytes::from_static(b"hello")).await.result.unwrap()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_response_is_read() {
        let (url, accepted) = receiver("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", false).await;
        let client = client();
        for _ in 0..5 {
            let response = post(&client, &url).await;
            assert_eq!((response.status, response.body.as_str()), (200, "ok"));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_receiver_that_closes_its_connections_gets_a_new_one_each_time() {
        let (url, accepted) =
            receiver("HTTP/1.1 201 Created\r\nconnection: close\r\ncontent-length: 0\r\n\r\n", true).await;
        let client = client();
        for _ in 0..3 {
            assert_eq!(post(&client, &url).await.status, 201);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_not_used_again() {
        // Keep-alive is not refused, but the receiver hangs up after each answer (as an idle timeout would).
        let (url, accepted) = receiver("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", true).await;
        let client = client();
        for _ in 0..3 {
            assert_eq!(post(&client, &url).await.status, 200);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
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
