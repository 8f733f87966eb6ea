//! Test support: a real `hookline serve` process on a temporary data dir, and real HTTP receivers that record
//! what they get and answer what the test tells them to.
#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookline_dispatch::{HttpClient, TargetPolicy};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

pub const ADMIN_KEY: &str = "hka_test_admin_key_0123456789";

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "hookline-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The PostgreSQL server tests may use: `HOOKLINE_TEST_POSTGRES_URL`, or the local one.
pub fn postgres_admin_url() -> String {
    std::env::var("HOOKLINE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// True when this run's servers use PostgreSQL (`HOOKLINE_TEST_BACKEND=postgres`) rather than SQLite.
pub fn on_postgres() -> bool {
    match std::env::var("HOOKLINE_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("HOOKLINE_TEST_BACKEND={other:?}; expected sqlite or postgres"),
    }
}

/// A database of its own for a test that needs PostgreSQL, or `None` (saying so) when this run is on SQLite.
pub async fn postgres_database() -> Option<Arc<TestDatabase>> {
    if !on_postgres() {
        eprintln!("skipping: this test needs PostgreSQL; set HOOKLINE_TEST_BACKEND=postgres to run it");
        return None;
    }
    Some(TestDatabase::create().await)
}

/// A PostgreSQL database of its own for one test, dropped (with its connections) when the last handle goes.
pub struct TestDatabase {
    pub url: String,
    /// The database itself, held by the handle that made it; an alias holds the one it stands for.
    _owner: Owner,
}

enum Owner {
    Made(hookline_store::scratch::ScratchDatabase),
    Alias(Arc<TestDatabase>),
}

impl TestDatabase {
    pub async fn create() -> Arc<TestDatabase> {
        let admin_url = postgres_admin_url();
        let database = hookline_store::scratch::ScratchDatabase::create(&admin_url, "test")
            .await
            .unwrap_or_else(|error| panic!("cannot reach PostgreSQL at {admin_url} for the tests: {error}"));
        Arc::new(TestDatabase { url: database.url.clone(), _owner: Owner::Made(database) })
    }

    /// The same database reached through another url (a relay); dropping the alias drops nothing.
    pub fn alias(database: &Arc<TestDatabase>, url: String) -> Arc<TestDatabase> {
        Arc::new(TestDatabase { url, _owner: Owner::Alias(Arc::clone(database)) })
    }

    /// Runs one SQL statement in this database and returns the first column of each row, as text.
    pub async fn query(&self, sql: &str) -> Vec<String> {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
            .simple_query(sql)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("").to_owned()),
                _ => None,
            })
            .collect()
    }
}

/// A running `hookline serve`.
pub struct Hookline {
    child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    client: HttpClient,
    env: Vec<(String, String)>,
    /// The PostgreSQL database this server uses, if it is not on its embedded store.
    pub database: Option<Arc<TestDatabase>>,
}

/// An API answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// The body as the server sent it, byte for byte.
    pub text: String,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The `code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The cookie (`name=value`) the answer sets.
    pub fn cookie(&self) -> String {
        let set = self.header("set-cookie").unwrap_or_else(|| panic!("no cookie: {:?}", self.headers));
        set.split(';').next().unwrap().to_owned()
    }
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_hookline")
}

impl Hookline {
    /// Starts a server on a fresh data dir, with private targets allowed so it can reach local receivers.
    pub async fn start(data_dir: &Path) -> Hookline {
        Hookline::start_with(data_dir, &[("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true")]).await
    }

    /// Starts a server with extra environment variables, on the backend this test run uses: its embedded store
    /// in `data_dir`, or a fresh PostgreSQL database when `HOOKLINE_TEST_BACKEND=postgres`.
    pub async fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Hookline {
        let database = if on_postgres() { Some(TestDatabase::create().await) } else { None };
        Hookline::start_node(data_dir, database, env).await
    }

    /// Starts a server on `database` (several servers may share one), or on its embedded store when `None`.
    pub async fn start_node(data_dir: &Path, database: Option<Arc<TestDatabase>>, env: &[(&str, &str)]) -> Hookline {
        let mut env: Vec<(String, String)> =
            env.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
        if let Some(database) = &database {
            env.push(("HOOKLINE_DATABASE_URL".to_owned(), database.url.clone()));
        }
        let mut server = Hookline {
            child: None,
            url: String::new(),
            data_dir: data_dir.to_owned(),
            client: HttpClient::new(TargetPolicy::DangerousAllowPrivate, Duration::from_secs(30), 64 << 20),
            env,
            database,
        };
        server.spawn("127.0.0.1:0").await;
        server
    }

    async fn spawn(&mut self, listen: &str) {
        let mut command = Command::new(binary());
        command
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(&self.data_dir)
            .env_remove("HOOKLINE_KEY")
            .env("HOOKLINE_ADMIN_KEY", ADMIN_KEY)
            .env("HOOKLINE_LOG", "warn")
            .envs(self.env.iter().cloned())
            .current_dir(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        // A fresh connection pool: after a kill, pooled connections to the old process are dead.
        self.client = HttpClient::new(TargetPolicy::DangerousAllowPrivate, Duration::from_secs(30), 64 << 20);
        let mut child = command.spawn().expect("hookline starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let started = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some((_, address)) = line.split_once("listening on ") {
                    return address.trim().to_owned();
                }
            }
            panic!("hookline exited before listening");
        })
        .await
        .expect("hookline listens within 30s");
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.url = started;
        self.child = Some(child);
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(Child::id).expect("server running")
    }

    /// Stops the process with SIGKILL: no chance to clean up.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// Stops the process with SIGTERM and waits for it to exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server running");
        let pid = child.id().unwrap();
        std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("exits after SIGTERM").unwrap()
    }

    /// Starts the server again on the same data dir and address.
    pub async fn restart(&mut self) {
        let listen = self.url.trim_start_matches("http://").to_owned();
        self.spawn(&listen).await;
    }

    /// Starts the server again on the same data dir and address, with `changes` made to its environment.
    pub async fn restart_with(&mut self, changes: &[(&str, &str)]) {
        for (key, value) in changes {
            self.env.retain(|(name, _)| name != key);
            self.env.push((key.to_string(), value.to_string()));
        }
        self.restart().await;
    }

    /// Calls the API with `key`, sending `body` as written.
    pub async fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Answer {
        self.call_with(method, path, key, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        extra: &[(&'static str, String)],
    ) -> Answer {
        let mut headers: Vec<(&'static str, String)> = extra.to_vec();
        if let Some(key) = key {
            headers.push(("authorization", format!("Bearer {key}")));
        }
        if body.is_some() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        let method: http::Method = method.parse().unwrap();
        let payload = Bytes::from(body.unwrap_or("").to_owned());
        let exchange = self.client.request(method, &format!("{}{path}", self.url), &headers, payload).await;
        let response = exchange.result.unwrap_or_else(|error| panic!("request to {path} failed: {error:?}"));
        let body = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&response.body).unwrap_or(Value::Null)
        };
        Answer { status: response.status, body, text: response.body, headers: response.headers }
    }

    /// Calls the API with the admin key and a JSON body.
    /// Posts a form to a page, as a browser would from `origin`'s page, with `cookie`.
    pub async fn form(&self, path: &str, body: &str, cookie: Option<&str>, origin: Option<&str>) -> Answer {
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded".to_owned())];
        if let Some(origin) = origin {
            headers.push(("origin", origin.to_owned()));
        }
        if let Some(cookie) = cookie {
            headers.push(("cookie", cookie.to_owned()));
        }
        self.call_with("POST", path, None, Some(body), &headers).await
    }

    /// A page, with `cookie`.
    pub async fn page(&self, path: &str, cookie: &str) -> Answer {
        self.call_with("GET", path, None, None, &[("cookie", cookie.to_owned())]).await
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let text = body.map(|body| body.to_string());
        self.call(method, path, Some(ADMIN_KEY), text.as_deref()).await
    }

    /// Creates a tenant and returns a tenant key for it.
    pub async fn tenant(&self, id: &str) -> String {
        let created = self.admin("POST", "/v1/tenants", Some(serde_json::json!({"id": id, "name": id}))).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let key = self.admin("POST", &format!("/v1/tenants/{id}/keys"), None).await;
        assert_eq!(key.status, 201, "{:?}", key.body);
        key.body["key"].as_str().unwrap().to_owned()
    }

    /// Creates an endpoint from a JSON body and returns the API's answer (with `id` and `secret`).
    pub async fn endpoint(&self, tenant: &str, body: Value) -> Value {
        let created = self.admin("POST", &format!("/v1/tenants/{tenant}/endpoints"), Some(body)).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        created.body
    }

    /// Publishes `data` (JSON text, sent as written) and returns the event id.
    pub async fn publish(&self, tenant: &str, topic: &str, data: &str) -> String {
        let body = format!("{{\"topic\":\"{topic}\",\"data\":{data}}}");
        let accepted = self.call("POST", &format!("/v1/tenants/{tenant}/events"), Some(ADMIN_KEY), Some(&body)).await;
        assert_eq!(accepted.status, 202, "{:?}", accepted.body);
        accepted.body["id"].as_str().unwrap().to_owned()
    }

    /// Waits until the server's deliveries reach `status` for `event`, returning the list.
    pub async fn wait_for_deliveries(&self, tenant: &str, event: &str, status: &str, count: usize) -> Value {
        let path = format!("/v1/tenants/{tenant}/deliveries?event={event}&status={status}");
        poll(Duration::from_secs(30), async || {
            let page = self.admin("GET", &path, None).await;
            if page.body["data"].as_array().map_or(0, Vec::len) >= count {
                Ok(page.body)
            } else {
                Err(format!("deliveries of {event} did not reach {status}: {:?}", page.body))
            }
        })
        .await
    }
}

/// Asks `check` again until it answers `Ok`, at most `limit`, and fails with its last `Err`. For the API's state,
/// which has no event to wait on: an attempt's record, written in a batch after its request was answered, or a
/// delivery's status.
pub async fn poll<T>(limit: Duration, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(found) => return found,
            Err(state) => assert!(Instant::now() < deadline, "{state} (after {limit:?})"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One request as a receiver got it.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How a receiver answers one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: String::new(), delay: Duration::ZERO }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn with_body(mut self, body: &str) -> Reply {
        self.body = body.to_owned();
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

struct ReceiverState {
    requests: Mutex<Vec<Received>>,
    count: watch::Sender<usize>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    /// Answers each request not scripted from its path and body, as a real service judges what it gets.
    judge: Mutex<Option<Judge>>,
}

type Judge = Arc<dyn Fn(&str, &[u8]) -> Reply + Send + Sync>;

/// A real HTTP server on 127.0.0.1 that records every request.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1 answering 200 to everything.
    pub async fn start() -> Receiver {
        Receiver::start_on(std::net::Ipv4Addr::LOCALHOST.into()).await
    }

    /// Starts a receiver on `ip` answering 200 to everything.
    pub async fn start_on(ip: std::net::IpAddr) -> Receiver {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let state = Arc::new(ReceiverState {
            requests: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::status(200)),
            judge: Mutex::new(None),
        });
        let served = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let state = Arc::clone(&served);
                tokio::spawn(async move {
                    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let state = Arc::clone(&state);
                        async move {
                            let path = request.uri().path().to_owned();
                            let headers = request
                                .headers()
                                .iter()
                                .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_owned()))
                                .collect();
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            let reply = {
                                let next = state.script.lock().unwrap().pop_front();
                                let judge = state.judge.lock().unwrap().clone();
                                next.or_else(|| judge.map(|judge| judge(&path, &body)))
                                    .unwrap_or_else(|| state.default.lock().unwrap().clone())
                            };
                            {
                                let mut requests = state.requests.lock().unwrap();
                                requests.push(Received { path, headers, body, at: Instant::now() });
                                state.count.send_replace(requests.len());
                            }
                            if !reply.delay.is_zero() {
                                tokio::time::sleep(reply.delay).await;
                            }
                            let mut response = hyper::Response::builder().status(reply.status);
                            for (name, value) in &reply.headers {
                                response = response.header(name, value);
                            }
                            Ok::<_, std::convert::Infallible>(
                                response.body(Full::new(Bytes::from(reply.body))).unwrap(),
                            )
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { url: format!("http://{address}"), state }
    }

    /// Answers the next requests with these replies, in order, then with the default.
    pub fn script(&self, replies: Vec<Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// Answers every request not scripted with what `judge` makes of its path and body.
    pub fn judge(&self, judge: impl Fn(&str, &[u8]) -> Reply + Send + Sync + 'static) {
        *self.state.judge.lock().unwrap() = Some(Arc::new(judge));
    }

    /// Answers every request not scripted with `reply`.
    pub fn answer(&self, reply: Reply) {
        *self.state.default.lock().unwrap() = reply;
    }

    pub fn requests(&self) -> Vec<Received> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Waits until at least `count` requests arrived (at most `limit`), and returns them all.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Received> {
        let mut seen = self.state.count.subscribe();
        let reached = tokio::time::timeout(limit, seen.wait_for(|arrived| *arrived >= count)).await;
        let requests = self.requests();
        assert!(reached.is_ok(), "expected {count} requests within {limit:?}, got {}", requests.len());
        requests
    }
}

/// Helpers for tests that look at many deliveries at once.
impl Hookline {
    /// Every delivery of `tenant` with `status` (any status when `None`), following the list's cursor.
    pub async fn all_deliveries(&self, tenant: &str, status: Option<&str>) -> Vec<Value> {
        let mut deliveries = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/tenants/{tenant}/deliveries?limit=1000");
            if let Some(status) = status {
                path.push_str(&format!("&status={status}"));
            }
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = self.admin("GET", &path, None).await;
            assert_eq!(page.status, 200, "{:?}", page.body);
            deliveries.extend(page.body["data"].as_array().unwrap().iter().cloned());
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return deliveries,
            }
        }
    }

    /// Waits until `tenant` has no delivery left with `status` (such as `pending`).
    pub async fn wait_for_none(&self, tenant: &str, status: &str, limit: Duration) {
        let path = format!("/v1/tenants/{tenant}/deliveries?status={status}&limit=5");
        poll(limit, async || {
            let page = self.admin("GET", &path, None).await;
            if page.body["data"].as_array().is_some_and(Vec::is_empty) {
                Ok(())
            } else {
                Err(format!("deliveries still {status}: {:?}", page.body))
            }
        })
        .await
    }
}

impl Receiver {
    /// Waits (at most `limit`) until the requests received so far satisfy `done`, and returns them all.
    /// `what` says what was awaited, for the failure message.
    pub async fn wait_until(&self, limit: Duration, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let mut seen = self.state.count.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // Mark the current count as seen before reading, so a request arriving meanwhile wakes the wait.
            seen.borrow_and_update();
            let requests = self.requests();
            if done(&requests) {
                return requests;
            }
            if tokio::time::timeout_at(deadline, seen.changed()).await.is_err() {
                panic!("{what}: not within {limit:?}, after {} requests", requests.len());
            }
        }
    }
}

/// Helpers for tests that look at one event's deliveries and their attempts.
impl Hookline {
    /// One delivery as `GET …/deliveries/{id}` shows it: its state, `request_body` and every attempt.
    pub async fn delivery(&self, tenant: &str, delivery: &str) -> Value {
        let found = self.admin("GET", &format!("/v1/tenants/{tenant}/deliveries/{delivery}"), None).await;
        assert_eq!(found.status, 200, "{:?}", found.body);
        found.body
    }

    /// One delivery once its log holds at least `count` attempts.
    pub async fn wait_for_attempts(&self, tenant: &str, delivery: &str, count: usize) -> Value {
        poll(Duration::from_secs(30), async || {
            let found = self.delivery(tenant, delivery).await;
            if found["attempts"].as_array().map_or(0, Vec::len) >= count {
                Ok(found)
            } else {
                Err(format!("delivery {delivery} did not get {count} attempts: {found}"))
            }
        })
        .await
    }

    /// The deliveries of `event`, whatever their status.
    pub async fn deliveries_of(&self, tenant: &str, event: &str) -> Vec<Value> {
        let page = self.admin("GET", &format!("/v1/tenants/{tenant}/deliveries?event={event}"), None).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        page.body["data"].as_array().unwrap().clone()
    }

    /// Publishes a request body sent as written, with `extra` headers, and returns the API's answer.
    pub async fn publish_raw(&self, tenant: &str, key: &str, body: &str, extra: &[(&'static str, String)]) -> Answer {
        self.call_with("POST", &format!("/v1/tenants/{tenant}/events"), Some(key), Some(body), extra).await
    }
}

/// An `http://127.0.0.1:PORT` URL where nothing listens: the port was bound, then closed.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

/// Publishes over its own connections, so publishing can go on while the test kills the server.
#[derive(Clone)]
pub struct Publisher {
    client: HttpClient,
    url: String,
}

impl Publisher {
    pub fn new(server: &Hookline) -> Publisher {
        let client = HttpClient::new(TargetPolicy::DangerousAllowPrivate, Duration::from_secs(30), 1 << 20);
        Publisher { client, url: server.url.clone() }
    }

    /// The event id when the server answered 202, else what happened instead.
    pub async fn publish(&self, tenant: &str, topic: &str, data: &Value) -> Result<String, String> {
        self.publish_once(tenant, topic, data, None).await
    }

    /// Publishes with an `Idempotency-Key`, so that sending it again (to any node) never makes a second event.
    pub async fn publish_once(
        &self,
        tenant: &str,
        topic: &str,
        data: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<String, String> {
        let body = json!({"topic": topic, "data": data}).to_string();
        let mut headers =
            vec![("authorization", format!("Bearer {ADMIN_KEY}")), ("content-type", "application/json".to_owned())];
        if let Some(key) = idempotency_key {
            headers.push(("idempotency-key", key.to_owned()));
        }
        let url = format!("{}/v1/tenants/{tenant}/events", self.url);
        let exchange = self.client.request(http::Method::POST, &url, &headers, Bytes::from(body)).await;
        match exchange.result {
            Ok(response) if response.status == 202 => {
                let accepted: Value = serde_json::from_str(&response.body).map_err(|error| error.to_string())?;
                Ok(accepted["id"].as_str().ok_or("202 without an id")?.to_owned())
            }
            Ok(response) => Err(format!("status {}: {}", response.status, response.body)),
            Err((kind, detail)) => Err(format!("{kind:?}: {detail}")),
        }
    }
}

pub fn event_id(request: &Received) -> String {
    request.header("hookline-event-id").expect("every delivery names its event").to_owned()
}

/// How many requests each event got.
pub fn requests_per_event(requests: &[Received]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in requests {
        *counts.entry(event_id(request)).or_insert(0) += 1;
    }
    counts
}

/// Waits until `receiver` has seen every event in `accepted` at least once.
pub async fn wait_until_all_seen(receiver: &Receiver, accepted: &HashSet<String>, limit: Duration) -> Vec<Received> {
    receiver
        .wait_until(limit, &format!("every one of the {} accepted events delivered", accepted.len()), |requests| {
            let seen: HashSet<String> = requests.iter().map(event_id).collect();
            accepted.is_subset(&seen)
        })
        .await
}
