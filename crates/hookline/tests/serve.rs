//! `hookline serve` as a newcomer and an operator start it: no config at all (a data directory in the working
//! directory and an admin key printed once, stored hashed), a config file, environment variables and flags in
//! that order, and a clear refusal to start on an invalid value.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use hookline_dispatch::{HttpClient, TargetPolicy};
use serde_json::{Value, json};
use support::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long a test waits for any one thing to happen.
const WAIT: Duration = Duration::from_secs(30);

/// `hookline serve ARGS` in `dir`, with only the `HOOKLINE_*` variables in `env` set.
fn serve_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(support::binary());
    command.arg("serve").args(args).current_dir(dir).env("HOOKLINE_LOG", "warn");
    for (name, _) in std::env::vars() {
        if name.starts_with("HOOKLINE_") && name != "HOOKLINE_LOG" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied()).stdin(Stdio::null()).kill_on_drop(true);
    command
}

/// A running `hookline serve` and what it printed up to its store line.
struct Serve {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    banner: Vec<String>,
    url: String,
    client: HttpClient,
}

impl Serve {
    async fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut child = serve_command(dir, args, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("hookline starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        let read = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let done = line.starts_with("store: ");
                banner.push(line);
                if done {
                    return;
                }
            }
            panic!("hookline serve exited after printing {banner:?}");
        };
        tokio::time::timeout(WAIT, read).await.expect("hookline serve starts within 30s");
        let url = banner[0].split_once("listening on ").expect("the first line says where it listens").1.to_owned();
        let client = HttpClient::new(TargetPolicy::DangerousAllowPrivate, WAIT, 1 << 20);
        let mut serve = Serve { child, lines, banner, url, client };
        // Whatever start-up prints comes before the server answers: wait for that, then read the rest of it.
        assert_eq!(serve.call("GET", "/healthz", None, None).await.0, 200);
        while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_millis(300), serve.lines.next_line()).await {
            serve.banner.push(line);
        }
        serve
    }

    /// The admin key the banner shows, if it shows one.
    fn printed_admin_key(&self) -> Option<String> {
        let line = self.banner.iter().find(|line| line.starts_with("admin key"))?;
        Some(line.rsplit(' ').next().unwrap().to_owned())
    }

    async fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut headers = Vec::new();
        if let Some(key) = key {
            headers.push(("authorization", format!("Bearer {key}")));
        }
        if body.is_some() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        let payload = Bytes::from(body.map(|body| body.to_string()).unwrap_or_default());
        let method: http::Method = method.parse().unwrap();
        let exchange = self.client.request(method, &format!("{}{path}", self.url), &headers, payload).await;
        let response = exchange.result.unwrap_or_else(|error| panic!("{path}: {error:?}"));
        (response.status, serde_json::from_str(&response.body).unwrap_or(Value::Null))
    }

    /// Stops the server with SIGTERM and checks that it exits cleanly.
    async fn stop(mut self) {
        let pid = self.child.id().unwrap();
        std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        let status = tokio::time::timeout(WAIT, self.child.wait()).await.expect("exits after SIGTERM").unwrap();
        assert!(status.success(), "hookline serve exited with {status}");
    }
}

/// Every byte of every file under `dir`.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            files.push((path.display().to_string(), bytes));
        }
    }
    files
}

#[tokio::test]
async fn with_no_config_it_makes_its_data_dir_and_prints_an_admin_key_once() {
    let dir = TempDir::new("serve-first-start");
    // Only the address is set, so tests can run side by side; everything else is the built-in default.
    let env = [("HOOKLINE_LISTEN", "127.0.0.1:0")];
    let server = Serve::start(dir.path(), &[], &env).await;
    assert!(
        server.banner[0].starts_with("hookline ") && server.url.starts_with("http://127.0.0.1:"),
        "{:?}",
        server.banner
    );
    let data_dir = dir.path().join("hookline-data");
    assert!(data_dir.is_dir(), "no ./hookline-data after the first start: {:?}", server.banner);
    assert!(server.banner[1].contains("hookline-data"), "{:?}", server.banner);
    let key = server.printed_admin_key().unwrap_or_else(|| panic!("no admin key printed: {:?}", server.banner));
    assert!(key.starts_with("hka_") && key.len() > 20, "{key}");
    assert!(
        server.banner.iter().any(|line| line.trim() == format!("export HOOKLINE_KEY={key}")),
        "{:?}",
        server.banner
    );

    // The key is the operator's: it creates tenants. Another key does not.
    let (status, body) = server.call("POST", "/v1/tenants", Some(&key), Some(json!({"id": "acme"}))).await;
    assert_eq!(status, 201, "{body:?}");
    let (status, body) = server.call("GET", "/v1/tenants", Some("hka_not_the_printed_key_000000"), None).await;
    assert_eq!((status, &body["code"]), (401, &json!("invalid_key")), "{body:?}");
    assert_eq!(server.call("GET", "/readyz", None, None).await.0, 200);
    server.stop().await;

    // Stored only as a hash: the key itself is nowhere in the data directory.
    let files = files_under(&data_dir);
    assert!(!files.is_empty());
    for (path, bytes) in &files {
        assert!(!bytes.windows(key.len()).any(|window| window == key.as_bytes()), "{path} holds the admin key");
    }

    // The next start keeps the key and prints none.
    let server = Serve::start(dir.path(), &[], &env).await;
    assert_eq!(server.printed_admin_key(), None, "{:?}", server.banner);
    let (status, body) = server.call("GET", "/v1/tenants", Some(&key), None).await;
    assert_eq!((status, &body["data"][0]["id"]), (200, &json!("acme")), "{body:?}");
    server.stop().await;
}

#[tokio::test]
async fn the_config_file_then_the_environment_then_flags_decide() {
    const FILE_KEY: &str = "hka_from_the_config_file_0123";
    let dir = TempDir::new("serve-layers");
    let file = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"from-file\"\nadmin_key = \"{FILE_KEY}\"\n\
         dangerous_allow_private_targets = true\ndefault_signing = [\"herald\"]\n"
    );
    std::fs::write(dir.path().join("hookline.toml"), &file).unwrap();
    let endpoint = json!({"url": "http://127.0.0.1:9/hook", "topics": ["pdf.processed"]});

    // ./hookline.toml is read when nothing else is said.
    let server = Serve::start(dir.path(), &[], &[]).await;
    assert!(dir.path().join("from-file").is_dir());
    assert_eq!(server.printed_admin_key(), None, "a configured admin key is not printed: {:?}", server.banner);
    assert_eq!(server.call("POST", "/v1/tenants", Some(FILE_KEY), Some(json!({"id": "acme"}))).await.0, 201);
    // A private address is allowed (the file's switch) and the file's default signing applies.
    let (status, created) =
        server.call("POST", "/v1/tenants/acme/endpoints", Some(FILE_KEY), Some(endpoint.clone())).await;
    assert_eq!((status, &created["signing"]), (201, &json!(["herald"])), "{created:?}");
    assert!(created["secret"].as_str().unwrap().starts_with("sec_"), "{created:?}");
    server.stop().await;

    // --config names another file; the environment beats it, and a flag beats the environment.
    std::fs::write(dir.path().join("other.toml"), file.replace("from-file", "other-dir")).unwrap();
    let env = [("HOOKLINE_DEFAULT_SIGNING", "heron,standard"), ("HOOKLINE_DATA_DIR", "from-env")];
    let server = Serve::start(dir.path(), &["--config", "other.toml", "--data-dir", "from-flag"], &env).await;
    assert!(dir.path().join("from-flag").is_dir());
    assert!(!dir.path().join("other-dir").exists() && !dir.path().join("from-env").exists());
    assert_eq!(server.call("POST", "/v1/tenants", Some(FILE_KEY), Some(json!({"id": "acme"}))).await.0, 201);
    let (status, created) = server.call("POST", "/v1/tenants/acme/endpoints", Some(FILE_KEY), Some(endpoint)).await;
    assert_eq!((status, &created["signing"]), (201, &json!(["heron", "standard"])), "{created:?}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"), "{created:?}");
    server.stop().await;
}

/// `(args, environment, what stderr must say)`.
type Refusal<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

/// Runs `hookline serve ARGS` in `dir` and checks that it refuses to start, saying `expected` on stderr.
async fn check_refused(dir: &Path, args: &[&str], env: &[(&str, &str)], expected: &str) {
    let run = serve_command(dir, args, env).stdout(Stdio::piped()).stderr(Stdio::piped()).output();
    let output = tokio::time::timeout(WAIT, run).await.expect("hookline serve stops at once").unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "hookline serve {args:?} {env:?} started:\n{stdout}");
    assert!(!stdout.contains("listening on"), "{stdout}");
    assert!(stderr.contains(expected), "hookline serve {args:?} {env:?}: stderr lacks {expected:?}:\n{stderr}");
}

#[tokio::test]
async fn an_invalid_setting_stops_start_up_naming_the_key_and_the_value() {
    let dir = TempDir::new("serve-invalid");
    let listen = ("HOOKLINE_LISTEN", "127.0.0.1:0");
    std::fs::write(dir.path().join("bad-value.toml"), "delivery_timeout = \"forever\"\n").unwrap();
    std::fs::write(dir.path().join("typo.toml"), "lisen = \"127.0.0.1:0\"\n").unwrap();
    std::fs::write(dir.path().join("not-toml.toml"), "listen = \n").unwrap();
    #[rustfmt::skip]
    let cases: &[Refusal] = &[
        (&[], &[("HOOKLINE_LISTEN", "nowhere")], r#"invalid HOOKLINE_LISTEN "nowhere""#),
        (&["--listen", "localhost"], &[], r#"invalid --listen "localhost""#),
        (&[], &[listen, ("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "yes")], r#"invalid HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS "yes""#),
        (&[], &[listen, ("HOOKLINE_DEFAULT_SIGNING", "hmac")], r#"invalid HOOKLINE_DEFAULT_SIGNING "hmac""#),
        (&[], &[listen, ("HOOKLINE_MAX_PAYLOAD_BYTES", "lots")], r#"invalid HOOKLINE_MAX_PAYLOAD_BYTES "lots""#),
        (&[], &[listen, ("HOOKLINE_RETRY_SCHEDULE", "5s,soon")], "invalid HOOKLINE_RETRY_SCHEDULE"),
        (&[], &[listen, ("HOOKLINE_ADMIN_KEY", "short")], "invalid HOOKLINE_ADMIN_KEY"),
        (&["--config", "bad-value.toml"], &[listen], r#"invalid delivery_timeout "forever""#),
        (&["--config", "typo.toml"], &[listen], r#"unknown key "lisen" in the config file "typo.toml""#),
        (&["--config", "not-toml.toml"], &[listen], r#"could not parse the config file "not-toml.toml""#),
        (&["--config", "missing.toml"], &[listen], r#"could not read the config file "missing.toml""#),
    ];
    for (args, env, expected) in cases {
        check_refused(dir.path(), args, env, expected).await;
    }
    // Nothing was started, so no data directory was made.
    assert!(!dir.path().join("hookline-data").exists());
}

/// Under a supervisor whose log reader has died, SIGTERM still stops the server: nothing it writes to a closed
/// stdout or stderr (the banner, the log lines of its shutdown) may stop it.
#[tokio::test]
async fn sigterm_stops_a_server_whose_output_nobody_reads() {
    let dir = TempDir::new("serve-closed-output");
    let mut child = serve_command(dir.path(), &["--listen", "127.0.0.1:0"], &[("HOOKLINE_LOG", "debug")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hookline starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line()).await.expect("a first line within 30s").unwrap();
    let first = first.expect("a first line");
    let (_, url) = first.split_once("listening on ").expect("the first line says where it listens");
    // As `hookline serve 2>&1 | head -1` does: the reader goes after the first line.
    drop(lines);
    drop(child.stderr.take());
    // A request answered with both readers gone: its log line, at debug, went to the closed stderr.
    let client = HttpClient::new(TargetPolicy::DangerousAllowPrivate, WAIT, 1 << 20);
    let health = client
        .request(http::Method::GET, &format!("{}/healthz", url.trim()), &[] as &[(&str, String)], Bytes::new())
        .await;
    assert_eq!(health.result.map(|response| response.status).ok(), Some(200));
    let pid = child.id().unwrap();
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("exits after SIGTERM");
    assert!(status.unwrap().success());
}
