//! Receiver tools: `hookline listen` and `hookline verify` on real deliveries from a running `hookline serve`, and
//! the verification examples in `examples/receivers/` (Python, Node, Go, openssl, Rust) that `docs/receiving.md`
//! shows, each run on a real delivery with the standard library of its language.

mod support;

/// The receivers' guide's Rust example, compiled into this test and run on real deliveries.
mod rust_example {
    include!("../../../examples/receivers/verify.rs");
}

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use hookline_core::time::Timestamp;
use hookline_verify::{Scheme, Verifier, VerifyError, decode_standard_secret, standard_signature};
use serde_json::{Value, json};
use support::{Hookline, Received, Receiver, Reply, TempDir};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The Standard Webhooks specification's example secret; any `whsec_` key works for heron and standard alike.
const LISTEN_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// How long a test waits for any one thing to happen.
const WAIT: Duration = Duration::from_secs(10);

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/receivers")
}

/// A running `hookline listen --port 0`, its stdout read one block at a time.
struct Listen {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    url: String,
}

impl Listen {
    async fn start(args: &[&str]) -> Listen {
        let mut child = Command::new(support::binary())
            .args(["listen", "--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("hookline listen starts");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut listen = Listen { child, lines, url: String::new() };
        let banner = listen.next_block().await;
        let first = banner.lines().next().unwrap_or_default();
        let url = first.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected banner:\n{banner}"));
        listen.url = url.to_owned();
        listen
    }

    /// The next lines up to a blank line: the start-up banner first, then one block per request.
    async fn next_block(&mut self) -> String {
        let lines = &mut self.lines;
        let read = async move {
            let mut block: Vec<String> = Vec::new();
            while let Some(line) = lines.next_line().await.unwrap() {
                match (line.is_empty(), block.is_empty()) {
                    (true, true) => {}
                    (true, false) => return block.join("\n"),
                    (false, _) => block.push(line),
                }
            }
            panic!("hookline listen exited after printing {block:?}");
        };
        tokio::time::timeout(WAIT, read).await.expect("hookline listen prints a block within 10s")
    }

    /// Stops it with SIGTERM; returns whether it exited successfully, and its stderr.
    async fn terminate(self) -> (bool, String) {
        let pid = self.child.id().unwrap();
        std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        let output = tokio::time::timeout(WAIT, self.child.wait_with_output()).await.expect("exits after SIGTERM");
        let output = output.unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The value of the `  name  value` line of a request block.
fn field<'a>(block: &'a str, name: &str) -> &'a str {
    block
        .lines()
        .find_map(|line| line.strip_prefix("  ")?.strip_prefix(name)?.strip_prefix(' ').map(str::trim))
        .unwrap_or_else(|| panic!("no {name} line in:\n{block}"))
}

/// Blocks in the order of their first line (`POST /path  time`), for requests that arrive in any order.
fn by_path(mut blocks: Vec<String>) -> Vec<String> {
    blocks.sort_by(|a, b| a.split("  ").next().cmp(&b.split("  ").next()));
    blocks
}

/// What a process did.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn both(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `program` with `args` and `env`, `stdin` as its input.
async fn run(program: &str, args: &[String], env: &[(&str, &str)], stdin: &[u8]) -> Outcome {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("could not run {program}: {error}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).await.unwrap();
    drop(input);
    let output = tokio::time::timeout(WAIT, child.wait_with_output()).await.expect("finishes within 10s").unwrap();
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    }
}

/// Data with what re-serialising JSON gets wrong: non-ASCII text, a trailing zero, an exponent.
const DATA: &str = r#"{"pdf_id":"pdf_123","owner":"Renée Café 日本","amount":1.50,"size":1e5}"#;

/// A server with tenant `acme` and one endpoint (from `endpoint`, its url filled in) to a recording receiver.
struct Capture {
    _dir: TempDir,
    server: Hookline,
    receiver: Receiver,
    secret: String,
}

impl Capture {
    async fn start(label: &str, mut endpoint: Value) -> Capture {
        let dir = TempDir::new(label);
        let server = Hookline::start(dir.path()).await;
        server.tenant("acme").await;
        let receiver = Receiver::start().await;
        endpoint["url"] = json!(format!("{}/webhooks", receiver.url));
        let created = server.endpoint("acme", endpoint).await;
        let secret = created["secret"].as_str().unwrap().to_owned();
        Capture { _dir: dir, server, receiver, secret }
    }

    /// Publishes [`DATA`] and returns the request the receiver got for it.
    async fn deliver(&self) -> Received {
        let before = self.receiver.requests().len();
        let event = self.server.publish("acme", "pdf.processed", DATA).await;
        let request = self.receiver.wait_for(before + 1, WAIT).await[before].clone();
        assert_eq!(request.header("hookline-event-id"), Some(event.as_str()));
        request
    }
}

fn header<'a>(request: &'a Received, name: &str) -> &'a str {
    request.header(name).unwrap_or_else(|| panic!("no {name} header in {:?}", request.headers))
}

/// The body with one byte changed: `pdf_123` becomes `pdf_124`.
fn tampered(body: &[u8]) -> Vec<u8> {
    String::from_utf8(body.to_vec()).unwrap().replace("pdf_123", "pdf_124").into_bytes()
}

/// Standard Webhooks headers for `body` signed `age_seconds` ago with `secret`, as a sender would have made them.
fn standard_headers_from_the_past(secret: &str, msg_id: &str, body: &[u8], age_seconds: i64) -> [String; 3] {
    let timestamp = Timestamp::now().unix_seconds() - age_seconds;
    let signature = standard_signature(&decode_standard_secret(secret).unwrap(), msg_id, timestamp, body);
    [msg_id.to_owned(), timestamp.to_string(), signature]
}

// ---------------------------------------------------------------------------------------------------------------
// hookline listen

#[tokio::test]
async fn listen_prints_each_delivery_and_verifies_the_schemes_it_carries() {
    let dir = TempDir::new("listen-verify");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let mut listen = Listen::start(&["--secret", LISTEN_SECRET]).await;
    let both = json!({"url": format!("{}/both", listen.url), "topics": ["pdf.processed"],
        "signing": ["heron", "standard"], "secret": LISTEN_SECRET});
    let other = json!({"url": format!("{}/other", listen.url), "topics": ["pdf.processed"],
        "signing": ["heron"], "secret": "sec_someone_elses_secret"});
    server.endpoint("acme", both).await;
    server.endpoint("acme", other).await;
    let event = server.publish("acme", "pdf.processed", DATA).await;

    let blocks = by_path(vec![listen.next_block().await, listen.next_block().await]);
    let (both, other) = (&blocks[0], &blocks[1]);
    assert!(both.starts_with("POST /both  "), "{both}");
    assert_eq!(field(both, "topic"), "pdf.processed");
    assert_eq!(field(both, "event"), event);
    assert!(field(both, "delivery").starts_with("del_"), "{both}");
    assert_eq!(field(both, "attempt"), "1");
    assert_eq!(field(both, "heron"), "verified");
    assert_eq!(field(both, "standard"), "verified");
    assert!(!both.contains("herald"), "only the schemes whose headers came are checked:\n{both}");
    assert_eq!(field(both, "answered"), "200");
    // The body, pretty-printed.
    assert!(both.contains("\n{\n  \"topic\": \"pdf.processed\",\n"), "{both}");
    assert!(both.contains("\n    \"owner\": \"Renée Café 日本\",\n"), "{both}");

    assert!(other.starts_with("POST /other  "), "{other}");
    assert_eq!(field(other, "event"), event);
    assert_eq!(
        field(other, "heron"),
        "FAILED: no heron signature matched; check the secret and that the body is the raw request bytes"
    );
    server.wait_for_deliveries("acme", &event, "succeeded", 2).await;

    let (success, stderr) = listen.terminate().await;
    assert!(success, "hookline listen exits cleanly on SIGTERM: {stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[tokio::test]
async fn listen_with_one_scheme_says_which_header_is_missing() {
    const SECRET: &str = "sec_new_secret_0123456789";
    let dir = TempDir::new("listen-scheme");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let mut listen =
        Listen::start(&["--secret", "sec_old_secret_0123456789", "--secret", SECRET, "--scheme", "herald"]).await;
    for (path, signing) in [("/herald", "herald"), ("/heron", "heron")] {
        let endpoint = json!({"url": format!("{}{path}", listen.url), "topics": ["pdf.processed"],
            "signing": [signing], "secret": SECRET});
        server.endpoint("acme", endpoint).await;
    }
    server.publish("acme", "pdf.processed", DATA).await;
    let blocks = by_path(vec![listen.next_block().await, listen.next_block().await]);
    assert_eq!(field(&blocks[0], "herald"), "verified with secret 2 of 2", "{}", blocks[0]);
    assert_eq!(
        field(&blocks[1], "herald"),
        r#"FAILED: missing header "x-herald-signature"; check that the sender signs with this scheme"#,
        "{}",
        blocks[1]
    );
}

#[tokio::test]
async fn listen_fail_every_makes_hookline_retry() {
    let dir = TempDir::new("listen-fail-every");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let mut listen = Listen::start(&["--fail-every", "2"]).await;
    let endpoint = json!({"url": format!("{}/hook", listen.url), "topics": ["pdf.processed"],
        "signing": ["heron"], "retry_schedule": ["100ms"]});
    server.endpoint("acme", endpoint).await;

    let first = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    let block = listen.next_block().await;
    assert_eq!((field(&block, "event"), field(&block, "answered")), (first.as_str(), "200"));
    assert_eq!(field(&block, "signature"), "not checked; pass --secret to verify");

    let second = server.publish("acme", "pdf.processed", r#"{"n":2}"#).await;
    let failed = listen.next_block().await;
    assert_eq!(field(&failed, "event"), second);
    assert_eq!(field(&failed, "attempt"), "1");
    assert_eq!(field(&failed, "answered"), "500 (request 2, --fail-every 2)");
    let retried = listen.next_block().await;
    assert_eq!(field(&retried, "event"), second);
    assert_eq!(field(&retried, "attempt"), "2");
    assert_eq!(field(&retried, "answered"), "200");

    let page = server.wait_for_deliveries("acme", &second, "succeeded", 1).await;
    let delivery = server.delivery("acme", page["data"][0]["id"].as_str().unwrap()).await;
    let statuses: Vec<&Value> =
        delivery["attempts"].as_array().unwrap().iter().map(|a| &a["response_status"]).collect();
    assert_eq!(statuses, [&json!(500), &json!(200)], "{delivery:#}");
    assert!(delivery["attempts"][0]["response_body"].as_str().unwrap().contains("--fail-every 2"), "{delivery:#}");
}

#[tokio::test]
async fn listen_forwards_to_your_app_and_answers_with_its_status() {
    let dir = TempDir::new("listen-forward");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let app = Receiver::start().await;
    app.script(vec![Reply::status(503).with_body("warming up")]);
    app.answer(Reply::status(202));
    let app_url = format!("{}/app/webhooks", app.url);
    let mut listen = Listen::start(&["--forward-to", &app_url]).await;
    let endpoint = json!({"url": format!("{}/hook", listen.url), "topics": ["pdf.processed"],
        "signing": ["heron", "standard"], "retry_schedule": ["100ms"]});
    let secret = server.endpoint("acme", endpoint).await["secret"].as_str().unwrap().to_owned();
    let event = server.publish("acme", "pdf.processed", DATA).await;

    let refused = listen.next_block().await;
    assert!(field(&refused, "answered").starts_with(&format!("503 from {app_url} in ")), "{refused}");
    let accepted = listen.next_block().await;
    assert!(field(&accepted, "answered").starts_with(&format!("202 from {app_url} in ")), "{accepted}");

    let page = server.wait_for_deliveries("acme", &event, "succeeded", 1).await;
    let delivery = server.delivery("acme", page["data"][0]["id"].as_str().unwrap()).await;
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!((&attempts[0]["response_status"], &attempts[0]["response_body"]), (&json!(503), &json!("warming up")));
    assert_eq!(attempts[1]["response_status"], 202);

    let sent_body = delivery["request_body"].as_str().unwrap();
    let got = app.wait_for(2, WAIT).await;
    let heron = Verifier::new(Scheme::Heron, &secret).unwrap();
    let standard = Verifier::new(Scheme::Standard, &secret).unwrap();
    for (request, attempt) in got.iter().zip(attempts) {
        assert_eq!(request.path, "/app/webhooks");
        assert_eq!(request.body, sent_body.as_bytes(), "the app gets the body byte for byte");
        let sent: Vec<(String, String)> = serde_json::from_value(attempt["request_headers"].clone()).unwrap();
        for (name, value) in &sent {
            assert_eq!(request.header(name), Some(value.as_str()), "forwarded header {name}");
        }
        assert_eq!(request.header("host"), Some(app.url.trim_start_matches("http://")));
        let headers = || request.headers.iter().map(|(name, value)| (name.as_str(), value.as_str()));
        let now = Timestamp::now().unix_seconds();
        heron.verify(headers(), &request.body, now).unwrap();
        standard.verify(headers(), &request.body, now).unwrap();
    }
}

#[tokio::test]
async fn listen_answers_the_status_it_is_told() {
    let dir = TempDir::new("listen-status");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let mut listen = Listen::start(&["--status", "410"]).await;
    let endpoint = json!({"url": format!("{}/hook", listen.url), "topics": ["pdf.processed"],
        "signing": ["heron"], "retry_schedule": ["100ms", "100ms"]});
    server.endpoint("acme", endpoint).await;
    let event = server.publish("acme", "pdf.processed", DATA).await;
    let block = listen.next_block().await;
    assert_eq!((field(&block, "event"), field(&block, "answered")), (event.as_str(), "410"), "{block}");
    // 410 Gone stops Hookline's retries: one attempt, recorded with the status listen answered.
    let page = server.wait_for_deliveries("acme", &event, "failed", 1).await;
    let delivery = server.delivery("acme", page["data"][0]["id"].as_str().unwrap()).await;
    let statuses: Vec<&Value> =
        delivery["attempts"].as_array().unwrap().iter().map(|a| &a["response_status"]).collect();
    assert_eq!(statuses, [&json!(410)], "{delivery:#}");
}

#[tokio::test]
async fn listen_refuses_bad_options_and_a_port_in_use() {
    let run_listen = |args: &'static [&'static str]| async move {
        run(support::binary(), &[&["listen".to_owned()], &strings(args)[..]].concat(), &[], b"").await
    };
    // Usage errors are clap's: exit code 2, naming the option.
    for (args, expected) in [
        (&["--status", "99"][..], "--status"),
        (&["--status", "600"][..], "--status"),
        (&["--fail-every", "0"][..], "--fail-every"),
        (&["--scheme", "heron"][..], "--secret"),
        (&["--secret", "sec_x", "--scheme", "sha1"][..], "expected one of heron, herald, standard"),
    ] {
        let outcome = run_listen(args).await;
        assert_eq!(outcome.code, Some(2), "hookline listen {args:?}:\n{}", outcome.both());
        assert!(outcome.stderr.contains(expected), "hookline listen {args:?}: {:?} lacks {expected:?}", outcome.stderr);
    }
    // Checked before listening: exit code 1 with the reason.
    let outcome = run_listen(&["--port", "0", "--forward-to", "ftp://127.0.0.1/app"]).await;
    assert_eq!(outcome.code, Some(1), "{}", outcome.both());
    assert!(outcome.stderr.contains(r#"invalid --forward-to url "ftp://127.0.0.1/app""#), "{}", outcome.stderr);
    let outcome = run_listen(&["--port", "0", "--scheme", "standard", "--secret", "sec_not_a_standard_key"]).await;
    assert_eq!(outcome.code, Some(1), "{}", outcome.both());
    assert!(outcome.stderr.contains("invalid standard webhooks secret"), "{}", outcome.stderr);

    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let args = ["listen".to_owned(), "--port".to_owned(), port.clone()];
    let outcome = run(support::binary(), &args, &[], b"").await;
    assert_eq!(outcome.code, Some(1), "{}", outcome.both());
    let expected = format!("could not listen on 127.0.0.1:{port}; pick another --port");
    assert!(outcome.stderr.contains(&expected), "{}", outcome.stderr);
}

// ---------------------------------------------------------------------------------------------------------------
// hookline verify

/// `--header 'Name: value'` for each of `headers`.
fn header_args<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    headers.into_iter().flat_map(|(name, value)| ["--header".to_owned(), format!("{name}: {value}")]).collect()
}

/// Runs `hookline verify` with `args` on `body` and checks its exit code and that its output contains `expected`.
async fn check_verify(args: &[String], body: &[u8], code: i32, expected: &str) {
    let outcome = run(support::binary(), &[&["verify".to_owned()], args].concat(), &[], body).await;
    assert_eq!(outcome.code, Some(code), "hookline verify {args:?}:\n{}", outcome.both());
    assert!(
        outcome.both().contains(expected),
        "hookline verify {args:?}: expected {expected:?} in\n{}",
        outcome.both()
    );
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

#[tokio::test]
async fn verify_checks_a_captured_delivery_for_each_scheme() {
    let capture = Capture::start(
        "verify-schemes",
        json!({"topics": ["pdf.processed"], "signing": ["heron", "herald", "standard"]}),
    )
    .await;
    assert!(capture.secret.starts_with("whsec_"), "{}", capture.secret);
    let request = capture.deliver().await;
    let secret = capture.secret.as_str();
    let all_headers = header_args(request.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())));
    let without = |missing: &str| {
        header_args(request.headers.iter().filter(|(name, _)| name != missing).map(|(n, v)| (n.as_str(), v.as_str())))
    };

    for scheme in ["heron", "herald", "standard"] {
        let args = [strings(&["--secret", secret, "--scheme", scheme]), all_headers.clone()].concat();
        check_verify(&args, &request.body, 0, &format!("verified: {scheme} signature \"")).await;
        let tampered_body = tampered(&request.body);
        check_verify(&args, &tampered_body, 1, &format!("not verified: no {scheme} signature matched")).await;
        let wrong_secret = [strings(&["--secret", "whsec_d3Jvbmcgc2VjcmV0", "--scheme", scheme]), all_headers.clone()];
        check_verify(&wrong_secret.concat(), &request.body, 1, "signature matched").await;
    }

    // A rotation: the old secret still verifies, and the output says which one matched.
    let rotation = strings(&["--secret", "whsec_bmV3IHNlY3JldA==", "--secret", secret, "--scheme", "standard"]);
    check_verify(&[rotation, all_headers.clone()].concat(), &request.body, 0, "matched secret 2 of 2").await;

    // A missing header is named.
    let no_heron = [strings(&["--secret", secret, "--scheme", "heron"]), without("heron-signature")].concat();
    check_verify(&no_heron, &request.body, 1, r#"missing header "heron-signature""#).await;
    let no_timestamp = [strings(&["--secret", secret, "--scheme", "standard"]), without("webhook-timestamp")].concat();
    check_verify(&no_timestamp, &request.body, 1, r#"missing header "webhook-timestamp""#).await;

    // An old request, signed ten minutes ago: refused by the default five-minute tolerance, accepted by a longer one.
    let event = header(&request, "hookline-event-id");
    let [id, timestamp, signature] = standard_headers_from_the_past(secret, event, &request.body, 600);
    let old = header_args([
        ("webhook-id", id.as_str()),
        ("webhook-timestamp", &timestamp),
        ("webhook-signature", &signature),
    ]);
    let standard = strings(&["--secret", secret, "--scheme", "standard"]);
    check_verify(&[standard.clone(), old.clone()].concat(), &request.body, 1, "is too old").await;
    let patient = [standard, strings(&["--tolerance", "3600"]), old].concat();
    check_verify(&patient, &request.body, 0, "verified: standard signature").await;

    // Usage errors are clap's: exit code 2.
    check_verify(
        &strings(&["--secret", secret, "--scheme", "sha1"]),
        b"",
        2,
        "expected one of heron, herald, standard",
    )
    .await;
    check_verify(&strings(&["--scheme", "heron"]), b"", 2, "--secret").await;
    check_verify(&strings(&["--secret", secret, "--scheme", "heron", "--header", "no colon"]), b"", 2, "Name: value")
        .await;
}

// ---------------------------------------------------------------------------------------------------------------
// The examples in the receivers' guide (docs/receiving.md)

/// One example run: `program script args…` with the secret in `WEBHOOK_SECRET` and `body` on stdin.
async fn run_example(program: &str, script: &str, secret: &str, args: &[&str], body: &[u8]) -> Outcome {
    let path = examples_dir().join(script);
    if program == "go" {
        let binary = go_build(&path).await;
        return run(&binary, &strings(args), &[("WEBHOOK_SECRET", secret)], body).await;
    }
    let args = [vec![path.display().to_string()], strings(args)].concat();
    run(program, &args, &[("WEBHOOK_SECRET", secret)], body).await
}

/// A Go example compiled once under the test's target directory (the first build compiles the standard library's
/// packages it uses, which can take a while on a busy machine).
async fn go_build(source: &std::path::Path) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("go-examples");
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join(source.file_stem().unwrap());
    let built = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&binary)
        .arg(source)
        .env("GOCACHE", dir.join("cache"))
        .env("GOPATH", dir.join("path"))
        .env("GO111MODULE", "off")
        .kill_on_drop(true)
        .output();
    let built = tokio::time::timeout(Duration::from_secs(300), built)
        .await
        .expect("go build finishes within 5 minutes")
        .unwrap_or_else(|error| panic!("could not run go (Debian's golang-go; scripts/test installs it): {error}"));
    assert!(built.status.success(), "go build {}:\n{}", source.display(), String::from_utf8_lossy(&built.stderr));
    binary.display().to_string()
}

/// Asserts that the example verifies `body` (exit 0, `verified`) or refuses it (exit 1, output containing `refusal`).
async fn check_example(example: (&str, &str), secret: &str, args: &[&str], body: &[u8], refusal: Option<&str>) {
    let (program, script) = example;
    let outcome = run_example(program, script, secret, args, body).await;
    match refusal {
        None => {
            assert_eq!(outcome.code, Some(0), "{program} {script}:\n{}", outcome.both());
            assert_eq!(outcome.stdout, "verified");
        }
        Some(refusal) => {
            assert_eq!(outcome.code, Some(1), "{program} {script} should refuse:\n{}", outcome.both());
            assert!(outcome.stdout.starts_with("not verified"), "{program} {script}:\n{}", outcome.both());
            assert!(
                outcome.both().contains(refusal),
                "{program} {script}: expected {refusal:?} in\n{}",
                outcome.both()
            );
        }
    }
}

const HERON_EXAMPLES: [(&str, &str); 4] =
    [("python3", "verify_heron.py"), ("node", "verify_heron.js"), ("sh", "verify_heron.sh"), ("go", "verify_heron.go")];
const HERALD_EXAMPLES: [(&str, &str); 3] =
    [("python3", "verify_herald.py"), ("node", "verify_herald.js"), ("go", "verify_herald.go")];
const STANDARD_EXAMPLES: [(&str, &str); 3] =
    [("python3", "verify_standard.py"), ("node", "verify_standard.js"), ("go", "verify_standard.go")];

#[tokio::test]
async fn the_heron_examples_verify_a_real_delivery_over_its_raw_body() {
    let capture = Capture::start("examples-heron", json!({"topics": ["pdf.processed"], "signing": ["heron"]})).await;
    let request = capture.deliver().await;
    let signature = header(&request, "heron-signature");
    for example in HERON_EXAMPLES {
        check_example(example, &capture.secret, &[signature], &request.body, None).await;
        check_example(example, &capture.secret, &[signature], &tampered(&request.body), Some("not verified")).await;
        check_example(example, "sec_wrong", &[signature], &request.body, Some("not verified")).await;
    }
}

#[tokio::test]
async fn the_herald_examples_verify_a_real_delivery_over_its_raw_body() {
    let capture = Capture::start("examples-herald", json!({"topics": ["pdf.processed"], "signing": ["herald"]})).await;
    let request = capture.deliver().await;
    let signature = header(&request, "x-herald-signature");
    for example in HERALD_EXAMPLES {
        check_example(example, &capture.secret, &[signature], &request.body, None).await;
        check_example(example, &capture.secret, &[signature], &tampered(&request.body), Some("not verified")).await;
        check_example(example, "sec_wrong", &[signature], &request.body, Some("not verified")).await;
    }
}

#[tokio::test]
async fn the_standard_examples_verify_a_real_delivery_and_refuse_old_ones() {
    let capture =
        Capture::start("examples-standard", json!({"topics": ["pdf.processed"], "signing": ["standard"]})).await;
    assert!(capture.secret.starts_with("whsec_"), "{}", capture.secret);
    let request = capture.deliver().await;
    let secret = capture.secret.as_str();
    let headers = ["webhook-id", "webhook-timestamp", "webhook-signature"].map(|name| header(&request, name));
    let [id, _, signature] = headers;
    let [_, old_timestamp, old_signature] = standard_headers_from_the_past(secret, id, &request.body, 600);
    let wrong = "whsec_d3Jvbmcgc2VjcmV0";
    for example in STANDARD_EXAMPLES {
        check_example(example, secret, &headers, &request.body, None).await;
        check_example(example, secret, &headers, &tampered(&request.body), Some("no webhook-signature matches")).await;
        check_example(example, wrong, &headers, &request.body, Some("no webhook-signature matches")).await;
        let old = [id, old_timestamp.as_str(), old_signature.as_str()];
        check_example(example, secret, &old, &request.body, Some("too far from now")).await;
        // Several signatures, as during a rotation: any one matching is enough.
        let rotated = format!("v1,bm90IHRoaXMgb25lIGVpdGhlciwgc29ycnkgOik= {signature}");
        check_example(example, secret, &[id, headers[1], &rotated], &request.body, None).await;
    }
}

#[tokio::test]
async fn the_rust_example_verifies_real_deliveries() {
    let capture =
        Capture::start("examples-rust", json!({"topics": ["pdf.processed"], "signing": ["heron", "standard"]})).await;
    let request = capture.deliver().await;
    let mut headers = http::HeaderMap::new();
    for (name, value) in &request.headers {
        headers.append(http::HeaderName::try_from(name.as_str()).unwrap(), value.parse().unwrap());
    }
    for scheme in [Scheme::Heron, Scheme::Standard] {
        let verifier = Verifier::new(scheme, &capture.secret).unwrap();
        let verified = rust_example::verify_delivery(&verifier, &headers, &request.body).unwrap();
        assert_eq!(verified.scheme, scheme);
        let refused = rust_example::verify_delivery(&verifier, &headers, &tampered(&request.body));
        assert_eq!(refused, Err(VerifyError::NoMatch { scheme }));
    }
}

/// The receivers' guide's code blocks marked `<!-- from examples/receivers/FILE -->` are excerpts of that file, so
/// what `docs/receiving.md` shows is what the tests above run; and it shows every example.
#[test]
fn the_receivers_guide_shows_the_examples_as_they_are() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let guide = std::fs::read_to_string(root.join("docs/receiving.md")).unwrap();
    let mut shown = Vec::new();
    for marked in guide.split("<!-- from ").skip(1) {
        let (path, rest) = marked.split_once(" -->").unwrap();
        let code = rest.split("```").nth(1).expect("a code block follows the marker");
        let code = code.split_once('\n').expect("the fence line ends").1;
        let file = std::fs::read_to_string(root.join(path)).unwrap_or_else(|error| panic!("{path}: {error}"));
        assert!(file.contains(code), "docs/receiving.md's block marked {path} is not an excerpt of it:\n{code}");
        shown.push(path.to_owned());
    }
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let path = format!("examples/receivers/{name}");
        assert!(shown.contains(&path), "docs/receiving.md does not show {path}; shown: {shown:?}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// A secret being rotated

#[tokio::test]
async fn during_a_rotation_verify_and_listen_pass_with_the_old_secret_or_both() {
    const NEW: &str = "whsec_bmV3IHNlY3JldCBuZXcgc2VjcmV0";
    let dir = TempDir::new("rotation-receivers");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let mut listen = Listen::start(&["--secret", NEW, "--secret", LISTEN_SECRET]).await;
    let receiver = Receiver::start().await;
    for url in [format!("{}/listen", listen.url), format!("{}/capture", receiver.url)] {
        let body = json!({"url": url, "topics": ["pdf.processed"], "signing": ["heron", "herald", "standard"],
            "secret": LISTEN_SECRET});
        let endpoint = server.endpoint("acme", body).await;
        let path = format!("/v1/tenants/acme/endpoints/{}/secret/rotate", endpoint["id"].as_str().unwrap());
        let rotated = server.admin("POST", &path, Some(json!({"secret": NEW}))).await;
        assert_eq!(rotated.status, 200, "{}", rotated.text);
    }
    server.publish("acme", "pdf.processed", DATA).await;

    // A receiver that holds both secrets verifies every scheme.
    let block = listen.next_block().await;
    for scheme in ["heron", "herald"] {
        assert_eq!(field(&block, scheme), "verified with secret 2 of 2", "{block}");
    }
    assert!(field(&block, "standard").starts_with("verified with secret"), "{block}");
    let request = receiver.wait_for(1, WAIT).await[0].clone();
    let headers = header_args(request.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())));
    for scheme in ["heron", "herald", "standard"] {
        // One that changed nothing yet...
        let old = [strings(&["--secret", LISTEN_SECRET, "--scheme", scheme]), headers.clone()].concat();
        check_verify(&old, &request.body, 0, &format!("verified: {scheme} signature")).await;
        // ...and one that added the new secret beside the old one.
        let both = [strings(&["--secret", NEW, "--secret", LISTEN_SECRET, "--scheme", scheme]), headers.clone()];
        check_verify(&both.concat(), &request.body, 0, "verified").await;
    }
    // Only Standard Webhooks carries the new secret's signature before the grace period ends.
    let new_only = [strings(&["--secret", NEW, "--scheme", "standard"]), headers.clone()].concat();
    check_verify(&new_only, &request.body, 0, "verified: standard signature").await;
    let new_heron = [strings(&["--secret", NEW, "--scheme", "heron"]), headers].concat();
    check_verify(&new_heron, &request.body, 1, "no heron signature matched").await;
    listen.terminate().await;
}
