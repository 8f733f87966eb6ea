//! The operator's CLI, run as the real `hookline` binary against a real `hookline serve`: tables by default,
//! the API's JSON with `--json`, and the API's error on stderr with a non-zero exit.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{ADMIN_KEY, Hookline, Receiver, TempDir};

/// What one CLI run printed.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.stdout))
    }

    /// The value of `field` in a `field  value` record.
    fn field(&self, field: &str) -> &str {
        let line = self.stdout.lines().find(|line| line.split_whitespace().next() == Some(field));
        line.unwrap_or_else(|| panic!("no {field} in:\n{}", self.stdout))[field.len()..].trim()
    }
}

/// Runs `command` to its end, within `limit`.
async fn run(mut command: tokio::process::Command, limit: Duration) -> Run {
    let output = tokio::time::timeout(limit, command.output()).await.unwrap().unwrap();
    Run {
        success: output.status.success(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `hookline ARGS --server URL --key ADMIN_KEY`.
async fn hookline(server: &Hookline, args: &[&str]) -> Run {
    hookline_with_key(server, Some(ADMIN_KEY), args).await
}

async fn hookline_with_key(server: &Hookline, key: Option<&str>, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(support::binary());
    command.args(args).args(["--server", &server.url]).env_remove("HOOKLINE_KEY").env_remove("HOOKLINE_SERVER");
    if let Some(key) = key {
        command.args(["--key", key]);
    }
    run(command, Duration::from_secs(20)).await
}

async fn ok(server: &Hookline, args: &[&str]) -> Run {
    let run = hookline(server, args).await;
    assert!(run.success, "hookline {args:?} failed:\n{}\n{}", run.stdout, run.stderr);
    run
}

#[tokio::test]
async fn an_operator_sets_up_a_tenant_and_publishes_from_the_cli() {
    let dir = TempDir::new("cli");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;

    let added = ok(&server, &["tenant", "add", "herald", "--name", "Herald Insurance"]).await;
    assert_eq!(added.field("id"), "herald");
    assert_eq!(added.field("name"), "Herald Insurance");
    ok(&server, &["tenant", "add", "acme"]).await;
    let listed = ok(&server, &["tenant", "list"]).await;
    let header = listed.stdout.lines().next().unwrap();
    assert!(header.starts_with("ID") && header.contains("NAME"), "{}", listed.stdout);
    assert!(listed.stdout.lines().any(|line| line.starts_with("herald") && line.contains("Herald Insurance")));
    assert!(listed.stdout.lines().any(|line| line.starts_with("acme ")));
    let tenants = ok(&server, &["tenant", "list", "--json"]).await.json();
    assert_eq!(tenants["data"].as_array().unwrap().len(), 2);

    // Herald's set-up: its quote topic, the bare quote as the body, its signature and its retry policy.
    ok(&server, &["topic", "add", "quote.ready", "--description", "A quote is ready"]).await;
    let url = format!("{}/herald", receiver.url);
    let args = [
        "endpoint",
        "add",
        "herald",
        &url,
        "--topic",
        "quote.ready",
        "--topic",
        "pdf.processed",
        "--format",
        "data",
        "--signing",
        "herald",
        "--retry",
        "3m,3m",
        "--json",
    ];
    let endpoint = ok(&server, &args).await.json();
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let secret = endpoint["secret"].as_str().unwrap();
    assert!(endpoint_id.starts_with("ep_") && secret.starts_with("sec_"), "{endpoint}");
    assert_eq!(endpoint["signing"], serde_json::json!(["herald"]));
    assert_eq!(endpoint["retry_schedule"], serde_json::json!(["3m", "3m"]));
    assert_eq!(endpoint["topics"], serde_json::json!(["quote.ready", "pdf.processed"]));

    let table =
        ok(&server, &["endpoint", "add", "acme", &receiver.url, "--topic", "pdf.processed", "--signing", "heron"])
            .await;
    assert!(table.field("id").starts_with("ep_"));
    assert_eq!(table.field("signing"), "heron");
    assert!(table.field("secret").starts_with("sec_"));

    let list = ok(&server, &["endpoint", "list", "herald"]).await;
    assert!(list.stdout.lines().next().unwrap().starts_with("ID"), "{}", list.stdout);
    let row = list.stdout.lines().find(|line| line.starts_with(endpoint_id)).unwrap();
    assert!(row.contains(&url) && row.contains("quote.ready,pdf.processed") && row.contains("herald"), "{row}");
    assert_eq!(ok(&server, &["endpoint", "list", "herald", "--json"]).await.json()["data"][0]["id"], endpoint_id);
    let shown = ok(&server, &["endpoint", "show", "herald", endpoint_id]).await;
    assert_eq!(shown.field("retry_schedule"), "3m,3m");
    assert_eq!(shown.field("format"), "data");
    assert!(!shown.stdout.contains(secret), "the secret has a command of its own: {}", shown.stdout);
    assert_eq!(ok(&server, &["endpoint", "secret", "herald", endpoint_id]).await.field("secret"), secret);
    assert_eq!(ok(&server, &["endpoint", "secret", "herald", endpoint_id, "--json"]).await.json()["secret"], secret);
    assert_eq!(ok(&server, &["endpoint", "secret", "herald", endpoint_id]).await.field("previous"), "-");
    assert_eq!(shown.field("health"), "healthy");
    let stats = ok(&server, &["endpoint", "stats", "herald", endpoint_id]).await;
    assert_eq!((stats.field("health"), stats.field("consecutive_failures")), ("healthy", "0"));
    let stats = ok(&server, &["endpoint", "stats", "herald", endpoint_id, "--json"]).await.json();
    assert_eq!(stats["hours"], json!([]));

    // A rotation: the new secret, and the old one beside it until its grace period ends.
    let rotated = ok(&server, &["endpoint", "rotate-secret", "herald", endpoint_id, "--grace", "2h"]).await;
    let new_secret = rotated.field("secret").to_owned();
    assert!(new_secret.starts_with("sec_") && new_secret != secret, "{}", rotated.stdout);
    assert_eq!(rotated.field("previous"), secret);
    assert!(rotated.field("previous_expires_at").starts_with("20"), "{}", rotated.stdout);
    let shown = ok(&server, &["endpoint", "secret", "herald", endpoint_id, "--json"]).await.json();
    assert_eq!((shown["secret"].as_str(), shown["previous"]["secret"].as_str()), (Some(&*new_secret), Some(secret)));
    let refused = hookline(&server, &["endpoint", "rotate-secret", "herald", endpoint_id, "--grace", "8d"]).await;
    assert!(!refused.success && refused.stderr.contains("invalid_grace"), "{}", refused.stderr);
    // Herald carries one signature: during the grace period it is still made with the old secret (below).

    // Publishing: the data goes out as written, key order and number literals kept, signed for herald.
    let published =
        ok(&server, &["publish", "herald", "quote.ready", r#"{"quote_id":"q_1","premium":120.50,"a":1e5}"#]).await;
    let event = published.field("id").to_owned();
    assert!(event.starts_with("evt_"), "{}", published.stdout);
    assert_eq!(published.field("endpoints"), "1");
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].path, "/herald");
    assert_eq!(got[0].text(), r#"{"quote_id":"q_1","premium":120.50,"a":1e5}"#);
    let signature = hookline_verify::herald_signature(secret, &got[0].body);
    assert_eq!(got[0].header("x-herald-signature"), Some(signature.as_str()));

    let page = server.wait_for_deliveries("herald", &event, "succeeded", 1).await;
    let delivery = page["data"][0]["id"].as_str().unwrap();
    let deliveries = ok(&server, &["deliveries", "herald"]).await;
    assert!(deliveries.stdout.lines().next().unwrap().starts_with("ID"), "{}", deliveries.stdout);
    let row = deliveries.stdout.lines().find(|line| line.starts_with(delivery)).unwrap();
    assert!(row.contains(&event) && row.contains("succeeded"), "{row}");
    let as_json = ok(&server, &["deliveries", "herald", "--status", "succeeded", "--json"]).await.json();
    assert_eq!(as_json["data"][0]["id"], delivery);
    // The log's other filters: the topic, the last answer's class, a time window (a `+` in it sent as it is).
    let filtered = |args: &'static [&'static str]| {
        let server = &server;
        async move {
            let mut all = vec!["deliveries", "herald", "--json"];
            all.extend_from_slice(args);
            ok(server, &all).await.json()["data"].as_array().unwrap().len()
        }
    };
    assert_eq!(filtered(&["--topic", "quote.ready", "--answer", "2xx"]).await, 1);
    assert_eq!(filtered(&["--topic", "pdf.processed"]).await, 0);
    assert_eq!(filtered(&["--answer", "5xx"]).await, 0);
    assert_eq!(filtered(&["--since", "2000-01-01T00:00:00+00:00", "--until", "2100-01-01T00:00:00Z"]).await, 1);
    assert_eq!(filtered(&["--until", "2000-01-01T00:00:00+00:00"]).await, 0);
    let refused = hookline(&server, &["deliveries", "herald", "--answer", "6xx"]).await;
    assert!(!refused.success && refused.stderr.contains("6xx"), "{}", refused.stderr);
    let published =
        ok(&server, &["publish", "herald", "pdf.processed", "{}", "--json", "--idempotency-key", "k1"]).await.json();
    assert_eq!(published["endpoints"], 1);
    let replayed =
        ok(&server, &["publish", "herald", "pdf.processed", "{}", "--json", "--idempotency-key", "k1"]).await.json();
    assert_eq!(replayed["id"], published["id"]);
}

/// The CLI covers the whole API: an endpoint changed, disabled and enabled, deleted; events and a delivery shown;
/// a delivery sent again; a topic deprecated; a tenant shown and deleted. A tenant key reaches no other tenant.
#[tokio::test]
async fn the_cli_changes_disables_and_deletes_endpoints_and_reads_and_retries_deliveries() {
    let dir = TempDir::new("cli-lifecycle");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;
    ok(&server, &["tenant", "add", "acme", "--name", "Acme"]).await;
    assert_eq!(ok(&server, &["tenant", "show", "acme"]).await.field("name"), "Acme");
    let first_url = format!("{}/first", receiver.url);
    let endpoint = ok(&server, &["endpoint", "add", "acme", &first_url, "--topic", "pdf.processed", "--json"]).await;
    let endpoint = endpoint.json()["id"].as_str().unwrap().to_owned();

    // Changed: a new URL and topics, then a retry schedule of its own and back to the server's.
    let second_url = format!("{}/second", receiver.url);
    let args = ["endpoint", "update", "acme", &endpoint, "--url", &second_url, "--topic", "pdf.processed"];
    let changed = ok(&server, &[&args[..], &["--topic", "end_user.reviewed", "--retry", "1m,2m"]].concat()).await;
    assert_eq!(changed.field("url"), second_url);
    assert_eq!(changed.field("topics"), "pdf.processed,end_user.reviewed");
    assert_eq!(changed.field("retry_schedule"), "1m,2m");
    let back = ok(&server, &["endpoint", "update", "acme", &endpoint, "--default-retry"]).await;
    assert_eq!(back.field("retry_schedule"), "-");
    let refused = hookline(&server, &["endpoint", "update", "acme", &endpoint, "--url", "ftp://nowhere"]).await;
    assert!(!refused.success && refused.stderr.contains("422 invalid_url"), "{}", refused.stderr);

    // Disabled: a publish makes no delivery for it; enabled again, the next one goes out to the new URL.
    assert_eq!(ok(&server, &["endpoint", "disable", "acme", &endpoint]).await.field("enabled"), "false");
    let skipped = ok(&server, &["publish", "acme", "pdf.processed", r#"{"pdf_id":"p_0"}"#]).await;
    assert_eq!(skipped.field("endpoints"), "0");
    assert_eq!(ok(&server, &["endpoint", "enable", "acme", &endpoint]).await.field("enabled"), "true");
    let event = ok(&server, &["publish", "acme", "pdf.processed", r#"{"pdf_id":"p_1"}"#]).await.field("id").to_owned();
    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].path, "/second");
    let delivery =
        server.wait_for_deliveries("acme", &event, "succeeded", 1).await["data"][0]["id"].as_str().unwrap().to_owned();

    // Events and the delivery log, read back.
    let events = ok(&server, &["event", "list", "acme", "--topic", "pdf.processed"]).await;
    assert!(events.stdout.lines().any(|line| line.starts_with(&event)), "{}", events.stdout);
    let shown = ok(&server, &["event", "show", "acme", &event]).await;
    assert_eq!(shown.field("data"), r#"{"pdf_id":"p_1"}"#);
    let detail = ok(&server, &["delivery", "show", "acme", &delivery]).await;
    assert_eq!(detail.field("status"), "succeeded");
    assert!(detail.stdout.lines().any(|line| line.starts_with("attempt 1") && line.contains("answered 200")));
    assert_eq!(ok(&server, &["delivery", "show", "acme", &delivery, "--json"]).await.json()["id"], delivery);

    // Sent again by hand: a second attempt, which the log says was a retry.
    ok(&server, &["delivery", "retry", "acme", &delivery]).await;
    receiver.wait_for(2, Duration::from_secs(15)).await;
    let log = server.wait_for_deliveries("acme", &event, "succeeded", 1).await;
    assert_eq!(log["data"][0]["origin"], "publish");
    // The second attempt's record follows its request by a moment (outcomes are written in batches).
    server.wait_for_attempts("acme", &delivery, 2).await;
    let detail = ok(&server, &["delivery", "show", "acme", &delivery, "--json"]).await.json();
    let causes: Vec<&str> =
        detail["attempts"].as_array().unwrap().iter().map(|a| a["cause"].as_str().unwrap()).collect();
    assert_eq!(causes, ["schedule", "retry"]);

    // A tenant key sees only its own tenant.
    ok(&server, &["tenant", "add", "globex"]).await;
    let key = ok(&server, &["tenant", "key", "globex", "--json"]).await.json()["key"].as_str().unwrap().to_owned();
    for args in [
        &["event", "show", "acme", &event][..],
        &["delivery", "show", "acme", &delivery],
        &["delivery", "retry", "acme", &delivery],
        &["endpoint", "disable", "acme", &endpoint],
        &["endpoint", "delete", "acme", &endpoint],
    ] {
        let refused = hookline_with_key(&server, Some(&key), args).await;
        assert!(!refused.success && refused.stderr.contains("404 tenant_not_found"), "{args:?}: {}", refused.stderr);
    }

    // A topic deprecated takes no new subscriptions.
    ok(&server, &["topic", "add", "quote.ready"]).await;
    let deprecated = ok(&server, &["topic", "update", "quote.ready", "--deprecated", "true"]).await;
    assert_eq!(deprecated.field("deprecated"), "true");
    let args = ["endpoint", "add", "acme", &receiver.url, "--topic", "quote.ready"];
    let refused = hookline(&server, &args).await;
    assert!(!refused.success && refused.stderr.contains("deprecated_topic"), "{}", refused.stderr);

    // Deleted: the endpoint, then the tenant.
    let deleted = ok(&server, &["endpoint", "delete", "acme", &endpoint]).await;
    assert!(deleted.stdout.contains("deleted"), "{}", deleted.stdout);
    let gone = hookline(&server, &["endpoint", "show", "acme", &endpoint]).await;
    assert!(!gone.success && gone.stderr.contains("404 not_found"), "{}", gone.stderr);
    ok(&server, &["tenant", "delete", "acme"]).await;
    let gone = hookline(&server, &["tenant", "show", "acme"]).await;
    assert!(!gone.success && gone.stderr.contains("tenant"), "{}", gone.stderr);
}

#[tokio::test]
async fn cli_errors_exit_non_zero_with_the_apis_detail() {
    let dir = TempDir::new("cli-errors");
    let server = Hookline::start(dir.path()).await;
    ok(&server, &["tenant", "add", "acme"]).await;
    let cases: [(&[&str], &str); 6] = [
        (&["endpoint", "list", "nobody"], r#"tenant "nobody" does not exist"#),
        (&["publish", "nobody", "pdf.processed", "{}"], r#"tenant "nobody" does not exist"#),
        (&["publish", "acme", "quote.unknown", "{}"], r#"unknown topic "quote.unknown""#),
        (&["publish", "acme", "pdf.processed", "{not json"], "DATA is not valid JSON"),
        (
            &["endpoint", "add", "acme", "ftp://example.com/", "--topic", "pdf.processed"],
            "the scheme must be http or https",
        ),
        (&["tenant", "add", "acme"], r#"tenant "acme" already exists"#),
    ];
    for (args, detail) in cases {
        let run = hookline(&server, args).await;
        assert!(!run.success, "hookline {args:?} succeeded:\n{}", run.stdout);
        assert!(run.stderr.contains(detail), "hookline {args:?}: stderr {:?} lacks {detail:?}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
    let run = hookline_with_key(&server, None, &["tenant", "list"]).await;
    assert!(!run.success && run.stderr.contains("--key"), "{}", run.stderr);
    let run = hookline_with_key(&server, Some("hk_wrong"), &["tenant", "list"]).await;
    assert!(!run.success && run.stderr.contains("invalid_key"), "{}", run.stderr);
    let events = server.admin("GET", "/v1/tenants/acme/events", None).await;
    assert!(events.body["data"].as_array().unwrap().is_empty());
}

/// Runs `hookline ARGS --server URL` with the key only in `HOOKLINE_KEY`, as an operator's shell would have it.
async fn hookline_with_env_key(server: &Hookline, key: &str, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(support::binary());
    command.args(args).env("HOOKLINE_SERVER", &server.url).env("HOOKLINE_KEY", key);
    run(command, Duration::from_secs(20)).await
}

#[tokio::test]
async fn the_cli_takes_its_key_from_the_environment_and_makes_tenant_keys() {
    let dir = TempDir::new("cli-keys");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;
    for tenant in ["acme", "globex"] {
        let run = hookline_with_env_key(&server, ADMIN_KEY, &["tenant", "add", tenant]).await;
        assert!(run.success, "{}", run.stderr);
    }

    // The topic catalogue, as a table and as JSON.
    let topics = hookline_with_env_key(&server, ADMIN_KEY, &["topic", "list"]).await;
    assert!(topics.success, "{}", topics.stderr);
    let header = topics.stdout.lines().next().unwrap();
    assert!(header.starts_with("NAME") && header.contains("DEPRECATED"), "{}", topics.stdout);
    let deprecated = topics.stdout.lines().find(|line| line.starts_with("end_user.transactions_updated")).unwrap();
    assert!(deprecated.contains("true"), "{deprecated}");
    assert_eq!(
        topics.stdout.lines().count(),
        16,
        "a header, Heron's eleven topics and the four operational ones:\n{}",
        topics.stdout
    );
    let json = hookline_with_env_key(&server, ADMIN_KEY, &["topic", "list", "--json"]).await.json();
    assert_eq!(json["data"].as_array().unwrap().len(), 15);

    // A tenant key, shown once by `tenant key`, works from HOOKLINE_KEY for its own tenant only.
    let made = ok(&server, &["tenant", "key", "acme"]).await;
    let tenant_key = made.field("key").to_owned();
    assert!(tenant_key.starts_with("hk_"), "{}", made.stdout);
    assert_eq!(made.field("tenant"), "acme");
    let json = ok(&server, &["tenant", "key", "acme", "--json"]).await.json();
    assert_ne!(json["key"].as_str().unwrap(), tenant_key, "each call makes a new key");

    let run = hookline_with_env_key(
        &server,
        &tenant_key,
        &["endpoint", "add", "acme", &receiver.url, "--topic", "pdf.processed", "--json"],
    )
    .await;
    assert!(run.success, "{}", run.stderr);
    let endpoint = run.json();
    let published = hookline_with_env_key(&server, &tenant_key, &["publish", "acme", "pdf.processed", "{}"]).await;
    assert!(published.success, "{}", published.stderr);
    let event = published.field("id").to_owned();
    server.wait_for_deliveries("acme", &event, "succeeded", 1).await;
    let shown = hookline_with_env_key(&server, &tenant_key, &["deliveries", "acme", "--json"]).await.json();
    assert_eq!((&shown["data"][0]["event"], &shown["data"][0]["endpoint"]), (&json!(event), &endpoint["id"]));

    // Another tenant's data, and the operator's commands, are refused with the API's words.
    let cases: [(&[&str], &str); 4] = [
        (&["endpoint", "list", "globex"], r#"tenant "globex" does not exist"#),
        (&["deliveries", "globex"], r#"tenant "globex" does not exist"#),
        (&["tenant", "list"], "403 forbidden"),
        (&["tenant", "key", "globex"], "403 forbidden"),
    ];
    for (args, detail) in cases {
        let run = hookline_with_env_key(&server, &tenant_key, args).await;
        assert!(!run.success, "hookline {args:?} with a tenant key succeeded:\n{}", run.stdout);
        assert!(run.stderr.contains(detail), "hookline {args:?}: stderr {:?} lacks {detail:?}", run.stderr);
    }
    // --key beats HOOKLINE_KEY.
    let mut command = tokio::process::Command::new(support::binary());
    command
        .args(["tenant", "list", "--key", ADMIN_KEY])
        .env("HOOKLINE_SERVER", &server.url)
        .env("HOOKLINE_KEY", &tenant_key);
    let output = command.output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Runs `hookline store vacuum --data-dir DIR`.
async fn vacuum(dir: &std::path::Path) -> Run {
    let mut command = tokio::process::Command::new(support::binary());
    command.args(["store", "vacuum", "--data-dir"]).arg(dir).env_remove("HOOKLINE_DATABASE_URL").current_dir(dir);
    run(command, Duration::from_secs(60)).await
}

#[tokio::test]
async fn an_operator_vacuums_the_embedded_store_once_its_server_has_stopped() {
    if support::on_postgres() {
        eprintln!("skipping: vacuum rebuilds the embedded store; the SQLite pass runs this test");
        return;
    }
    let dir = TempDir::new("cli-vacuum");
    let nothing = vacuum(dir.path()).await;
    assert!(!nothing.success && nothing.stderr.contains("there is no store in"), "{}", nothing.stderr);

    let mut server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let tenant = "acme";
    let receiver = Receiver::start().await;
    server.endpoint(tenant, json!({ "url": receiver.url, "topics": ["pdf.processed"] })).await;
    let event = server.publish(tenant, "pdf.processed", r#"{"pages":3}"#).await;
    server.wait_for_deliveries(tenant, &event, "succeeded", 1).await;
    let busy = vacuum(dir.path()).await;
    assert!(!busy.success && busy.stderr.contains("in use by another hookline process"), "{}", busy.stderr);

    assert!(server.terminate().await.success());
    let done = vacuum(dir.path()).await;
    assert!(done.success, "{}\n{}", done.stdout, done.stderr);
    assert!(
        done.stdout.contains("hookline.db: ") && done.stdout.contains("pages of 1024 B → 1024 B"),
        "{}",
        done.stdout
    );
    // The store works as before, with its event and delivery.
    server.restart().await;
    let delivered = server.wait_for_deliveries(tenant, &event, "succeeded", 1).await;
    assert_eq!(delivered["data"].as_array().map(Vec::len), Some(1), "{delivered}");
}
