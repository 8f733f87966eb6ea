//! The outbound HTTP client: pooled hyper connections over plain TCP or rustls, with the SSRF guard applied to
//! every resolved address at connect time, and failures sorted into typed reasons.

use std::error::Error as StdError;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookline_core::target::forbidden_reason;
use hookline_store::AttemptError;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;

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

/// A pooled client for webhook requests.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
    policy: TargetPolicy,
    timeout: Duration,
    response_body_limit: usize,
}

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
        let client = Client::builder(TokioExecutor::new())
            // Every connection stays pooled: the dispatcher's concurrency already bounds how many there are, and
            // a cap below it made busy hosts (many endpoints on one receiver) reconnect all the time.
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        HttpClient { client, policy, timeout, response_body_limit }
    }

    /// POSTs `body` to `url` with `headers`, within the client's timeout.
    pub async fn post(&self, url: &str, headers: &[(&'static str, String)], body: Bytes) -> Exchange {
        self.request(http::Method::POST, url, headers, body).await
    }

    /// Sends any request, within the client's timeout.
    ///
    /// Header names may be borrowed (`&'static str`, as webhook requests use) or owned (`String`, for a request
    /// whose headers are copied from another, as `hookline listen --forward-to` does).
    pub async fn request<Name: AsRef<str>>(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(Name, String)],
        body: Bytes,
    ) -> Exchange {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, self.send(method, url, headers, body)).await {
            Ok(result) => result,
            Err(_) => Err((AttemptError::Timeout, format!("no complete response within {:?}", self.timeout))),
        };
        Exchange { elapsed: started.elapsed(), result }
    }

    async fn send<Name: AsRef<str>>(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(Name, String)],
        body: Bytes,
    ) -> Result<Response, (AttemptError, String)> {
        let uri: http::Uri = url
            .parse()
            .map_err(|error| (AttemptError::Io, format!("url {url:?} is not a valid request target: {error}")))?;
        if self.policy == TargetPolicy::PublicOnly
            && let Some(host) = uri.host()
            && let Ok(address) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>()
            && let Some(reason) = forbidden_reason(address)
        {
            return Err((AttemptError::Blocked, format!("{address} is a {reason} address; the SSRF guard refuses it")));
        }
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(name.as_ref(), value.as_str());
        }
        let request = request.body(Full::new(body)).map_err(|error| (AttemptError::Io, error.to_string()))?;
        let response = self.client.request(request).await.map_err(|error| classify(&error))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let mut body = response.into_body();
        let mut collected = Vec::new();
        while collected.len() < self.response_body_limit {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = self.response_body_limit - collected.len();
                        collected.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                // The status already arrived; a body cut short is recorded as far as it got.
                Some(Err(_)) => break,
            }
        }
        Ok(Response { status, headers, body: String::from_utf8_lossy(&collected).into_owned() })
    }
}

/// Sorts a client error into a reason by walking its causes.
fn classify(error: &hyper_util::client::legacy::Error) -> (AttemptError, String) {
    let mut detail = error.to_string();
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    let mut kind = if error.is_connect() { AttemptError::Connect } else { AttemptError::Io };
    while let Some(cause) = source {
        detail = format!("{detail}: {cause}");
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
