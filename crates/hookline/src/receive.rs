//! The receiver's side: `hookline verify` checks a captured request's signature, and `hookline listen` is a local
//! endpoint for development that prints, verifies and answers (or forwards) each delivery as it arrives.
#![allow(clippy::print_stdout)] // What these commands print is their output.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use hookline_core::time::Timestamp;
use hookline_dispatch::{HttpClient, TargetPolicy};
use hookline_verify::{
    DEFAULT_TOLERANCE, HERALD_HEADER, HERON_HEADER, STANDARD_SIGNATURE_HEADER, Scheme, SecretError, Verified, Verifier,
};
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;

/// How long `listen` waits for requests in flight when it is stopped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The endpoint's secret; repeat to accept any of several (during a rotation).
    #[arg(long = "secret", value_name = "SECRET", required = true)]
    secrets: Vec<String>,
    /// The scheme to check: heron, herald or standard.
    #[arg(long)]
    scheme: Scheme,
    /// A request header as `Name: value`; repeat for each (only the signature headers matter).
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// How far `webhook-timestamp` may be from now, in seconds (standard only).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TOLERANCE)]
    tolerance: u64,
}

#[derive(clap::Args)]
pub struct ListenArgs {
    /// The port to listen on, on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// The endpoint's secret, to verify each request; repeat to accept any of several.
    #[arg(long = "secret", value_name = "SECRET")]
    secrets: Vec<String>,
    /// The scheme to verify: heron, herald or standard (default: each one whose headers the request carries).
    #[arg(long, requires = "secrets")]
    scheme: Option<Scheme>,
    /// The status to answer.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(100..=599))]
    status: u16,
    /// Answer 500 to every Nth request, to watch the sender retry.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    fail_every: Option<u64>,
    /// Send each request on to this URL (your app) and answer with its response.
    #[arg(long, value_name = "URL")]
    forward_to: Option<String>,
}

/// Reads `Name: value`.
fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_owned(), value.trim().to_owned())),
        _ => Err(format!("invalid header {text:?}; expected \"Name: value\"")),
    }
}

/// A verifier for `scheme` accepting any of `secrets` (at least one).
fn verifier(scheme: Scheme, secrets: &[String]) -> Result<Verifier, SecretError> {
    // Cannot fail: `verify` requires --secret, and `listen` builds verifiers only when one was given.
    let (first, rest) = secrets.split_first().expect("callers pass at least one secret");
    rest.iter().try_fold(Verifier::new(scheme, first)?, |verifier, secret| verifier.with_secret(secret))
}

/// How a verified request reads: `heron signature "…" matched`, naming the secret when there are several.
fn describe(verified: &Verified, secrets: usize) -> String {
    let mut text = format!("{} signature {:?} matched", verified.scheme, verified.signature);
    if secrets > 1 {
        let _ = write!(text, " secret {} of {secrets}", verified.secret_index + 1);
    }
    text
}

/// `hookline verify`: checks the body on stdin against the headers given; exit code 0 when it verifies, else 1.
pub fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let verifier = verifier(args.scheme, &args.secrets)?.tolerance(args.tolerance);
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body).context("could not read the request body from stdin")?;
    let headers = args.headers.iter().map(|(name, value)| (name.as_str(), value.as_str()));
    match verifier.verify(headers, &body, Timestamp::now().unix_seconds()) {
        Ok(verified) => {
            println!("verified: {}", describe(&verified, args.secrets.len()));
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("not verified: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The header that carries `scheme`'s signature: its presence is how `listen` detects the scheme.
fn signature_header(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Heron => HERON_HEADER,
        Scheme::Herald => HERALD_HEADER,
        Scheme::Standard => STANDARD_SIGNATURE_HEADER,
    }
}

/// Headers that belong to one connection, not to the request, so a proxy does not pass them on. `host` and
/// `content-length` are set again for the new request.
const NOT_FORWARDED: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Where `listen` sends requests on to.
struct Forward {
    client: HttpClient,
    url: String,
}

/// What `listen` does with every request.
struct Listener {
    /// Empty without `--secret`: nothing is verified.
    verifiers: Vec<(Scheme, Result<Verifier, SecretError>)>,
    /// Whether `--scheme` named the one scheme to check, even when its headers are missing.
    scheme_given: bool,
    secrets: usize,
    status: StatusCode,
    fail_every: Option<u64>,
    forward: Option<Forward>,
    received: AtomicU64,
}

/// The answer to one request, and how it came about.
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: Bytes,
    note: String,
}

impl Listener {
    fn new(args: &ListenArgs) -> anyhow::Result<Listener> {
        let verifiers = match (args.scheme, args.secrets.is_empty()) {
            (_, true) => Vec::new(),
            // A secret that cannot serve the one scheme asked for is a mistake worth stopping for.
            (Some(scheme), false) => vec![(scheme, Ok(verifier(scheme, &args.secrets)?))],
            // Detecting: a `sec_…` secret cannot be a standard key, which matters only if a request says standard.
            (None, false) => Scheme::ALL.into_iter().map(|scheme| (scheme, verifier(scheme, &args.secrets))).collect(),
        };
        let forward = match &args.forward_to {
            Some(url) => {
                let uri: http::Uri = url.parse().with_context(|| format!("invalid --forward-to url {url:?}"))?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) {
                    bail!("invalid --forward-to url {url:?}; expected http://… or https://…");
                }
                // Your app runs on this machine, so private addresses are the point here.
                let client = HttpClient::new(TargetPolicy::DangerousAllowPrivate, Duration::from_secs(30), 1 << 20);
                Some(Forward { client, url: url.clone() })
            }
            None => None,
        };
        Ok(Listener {
            verifiers,
            scheme_given: args.scheme.is_some(),
            secrets: args.secrets.len(),
            // Cannot fail: clap limits --status to 100..=599.
            status: StatusCode::from_u16(args.status).expect("clap checked the range"),
            fail_every: args.fail_every,
            forward,
            received: AtomicU64::new(0),
        })
    }

    /// One line per checked scheme: `verified`, or `FAILED: why`.
    fn verification(&self, headers: &HeaderMap, body: &[u8]) -> Vec<(&'static str, String)> {
        if self.verifiers.is_empty() {
            return vec![("signature", "not checked; pass --secret to verify".to_owned())];
        }
        let pairs: Vec<(&str, &str)> =
            headers.iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))).collect();
        let now = Timestamp::now().unix_seconds();
        let mut lines = Vec::new();
        for (scheme, verifier) in &self.verifiers {
            if !self.scheme_given && !headers.contains_key(signature_header(*scheme)) {
                continue;
            }
            let outcome = match verifier {
                Ok(verifier) => match verifier.verify(pairs.iter().copied(), body, now) {
                    Ok(verified) if self.secrets > 1 => {
                        format!("verified with secret {} of {}", verified.secret_index + 1, self.secrets)
                    }
                    Ok(_) => "verified".to_owned(),
                    Err(error) => format!("FAILED: {error}"),
                },
                Err(error) => format!("FAILED: cannot check, {error}"),
            };
            lines.push((scheme.as_str(), outcome));
        }
        if lines.is_empty() {
            let expected = Scheme::ALL.map(signature_header).join(", ");
            lines.push(("signature", format!("FAILED: no signature header; expected one of {expected}")));
        }
        lines
    }

    /// Answers request number `number`: 500 when it is a `--fail-every` one, else forwarded or `--status`.
    async fn answer(&self, number: u64, method: &http::Method, headers: &HeaderMap, body: Bytes) -> Answer {
        if let Some(every) = self.fail_every
            && number.is_multiple_of(every)
        {
            return Answer {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                content_type: Some("text/plain".into()),
                body: Bytes::from(format!("failing request {number} on purpose (--fail-every {every})\n")),
                note: format!("(request {number}, --fail-every {every})"),
            };
        }
        let Some(forward) = &self.forward else {
            return Answer { status: self.status, content_type: None, body: Bytes::new(), note: String::new() };
        };
        // The client takes header values as text: one that is not (rare, and never one Hookline sends) is left out.
        let copied: Vec<(String, String)> = headers
            .iter()
            .filter(|(name, _)| !NOT_FORWARDED.contains(&name.as_str()))
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect();
        let exchange = forward.client.request(method.clone(), &forward.url, &copied, body).await;
        match exchange.result {
            Ok(response) => {
                let content_type =
                    response.headers.iter().find(|(name, _)| name == "content-type").map(|(_, value)| value.clone());
                Answer {
                    // Cannot fail for a status hyper parsed, but a 502 is the honest answer if it ever did.
                    status: StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY),
                    content_type,
                    body: Bytes::from(response.body),
                    note: format!("from {} in {} ms", forward.url, exchange.elapsed.as_millis()),
                }
            }
            Err((kind, detail)) => Answer {
                status: StatusCode::BAD_GATEWAY,
                content_type: Some("text/plain".into()),
                body: Bytes::from(format!("could not forward to {}: {detail}\n", forward.url)),
                note: format!("could not forward to {} ({kind:?}): {detail}", forward.url),
            },
        }
    }

    async fn handle(&self, request: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Full<Bytes>> {
        let arrived = Timestamp::now();
        let number = self.received.fetch_add(1, Ordering::Relaxed) + 1;
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                print_block(&format!(
                    "{} {}  {}\n  FAILED to read the body: {error}\n\n",
                    parts.method,
                    parts.uri,
                    arrived.to_rfc3339_millis()
                ));
                return text_response(StatusCode::BAD_REQUEST, "could not read the request body\n");
            }
        };
        let verification = self.verification(&parts.headers, &body);
        let answer = self.answer(number, &parts.method, &parts.headers, body.clone()).await;

        let header =
            |name: &str| parts.headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("-").to_owned();
        let mut fields = vec![
            ("topic", header("hookline-topic")),
            ("event", header("hookline-event-id")),
            ("delivery", header("hookline-delivery-id")),
            ("attempt", header("hookline-attempt")),
        ];
        fields.extend(verification);
        fields.push(("answered", format!("{} {}", answer.status.as_u16(), answer.note).trim_end().to_owned()));
        let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0);

        let mut block = format!("{} {}  {}\n", parts.method, parts.uri, arrived.to_rfc3339_millis());
        for (name, value) in &fields {
            let _ = writeln!(block, "  {name:<width$}  {value}");
        }
        block.push_str(&pretty_body(&body));
        block.push_str("\n\n");
        print_block(&block);

        let mut response = hyper::Response::builder().status(answer.status);
        if let Some(content_type) = &answer.content_type {
            response = response.header(http::header::CONTENT_TYPE, content_type);
        }
        match response.body(Full::new(answer.body)) {
            Ok(response) => response,
            // A forwarded content-type hyper cannot send again: answer the status without it.
            Err(_) => {
                let mut response = hyper::Response::new(Full::new(Bytes::new()));
                *response.status_mut() = answer.status;
                response
            }
        }
    }
}

/// The body as indented JSON, or as text when it is not JSON.
fn pretty_body(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty body)".to_owned();
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// Prints a whole block at once, so requests served concurrently do not interleave.
fn print_block(block: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (`hookline listen | head`) must not stop the answers the sender is waiting for.
    let _ = stdout.write_all(block.as_bytes()).and_then(|()| stdout.flush());
}

fn text_response(status: StatusCode, text: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

/// `hookline listen`: serves until Ctrl-C or SIGTERM, then lets requests in flight finish.
pub async fn listen(args: ListenArgs) -> anyhow::Result<()> {
    let listener = Arc::new(Listener::new(&args)?);
    let socket = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("could not listen on 127.0.0.1:{}; pick another --port", args.port))?;
    let address = socket.local_addr()?;
    println!("listening on http://{address}");
    if !args.secrets.is_empty() {
        let schemes = match args.scheme {
            Some(scheme) => scheme.to_string(),
            None => "the signature headers each request carries".to_owned(),
        };
        println!("verifying {schemes} with {} secret(s)", args.secrets.len());
    }
    match &args.forward_to {
        Some(url) => println!("forwarding to {url} and answering with its response"),
        None => println!("answering {}", args.status),
    }
    if let Some(every) = args.fail_every {
        println!(
            "except requests {}, {}, {}, … which get 500",
            every,
            every.saturating_mul(2),
            every.saturating_mul(3)
        );
    }
    println!();
    std::io::stdout().flush()?;

    let graceful = GracefulShutdown::new();
    let signal = crate::wait_for_signal();
    tokio::pin!(signal);
    loop {
        let stream = tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Such as too many open files: the next accept may well succeed.
                Err(error) => {
                    eprintln!("could not accept a connection: {error}");
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let listener = Arc::clone(&listener);
        let service = service_fn(move |request| {
            let listener = Arc::clone(&listener);
            async move { Ok::<_, std::convert::Infallible>(listener.handle(request).await) }
        });
        let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that hangs up mid-request is its own business.
            let _ = connection.await;
        });
    }
    drop(socket);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        eprintln!("stopped with requests still in flight after {SHUTDOWN_GRACE:?}");
    } else {
        eprintln!("stopped");
    }
    Ok(())
}
