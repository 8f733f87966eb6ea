//! Rotating an endpoint's signing secret through a real `hookline serve`: the new secret signs at once; during the
//! grace period Standard Webhooks carries a signature for each secret and heron and herald keep the old one; a
//! second rotation ends the first one's grace; a bad grace or secret, another tenant's endpoint and an unknown one
//! are refused. That the grace period ends on time is tested on a manual clock, in `hookline-dispatch`'s `fair.rs`.

mod support;

use std::time::Duration;

use hookline_core::time::Timestamp;
use hookline_verify::{Scheme, Verifier};
use serde_json::{Value, json};
use support::{Hookline, Received, Receiver, TempDir};

const WAIT: Duration = Duration::from_secs(15);
const OLD: &str = "whsec_b2xkIHNlY3JldCBvbGQgc2VjcmV0";
const NEW: &str = "whsec_bmV3IHNlY3JldCBuZXcgc2VjcmV0";

struct Setup {
    _dir: TempDir,
    server: Hookline,
    receiver: Receiver,
    key: String,
    endpoint: String,
}

async fn set_up(label: &str) -> Setup {
    let dir = TempDir::new(label);
    let server = Hookline::start(dir.path()).await;
    let key = server.tenant("acme").await;
    let receiver = Receiver::start().await;
    let body = json!({"url": receiver.url, "topics": ["pdf.processed"],
        "signing": ["heron", "herald", "standard"], "secret": OLD});
    let endpoint = server.endpoint("acme", body).await["id"].as_str().unwrap().to_owned();
    Setup { _dir: dir, server, receiver, key, endpoint }
}

impl Setup {
    async fn rotate(&self, body: Option<Value>) -> support::Answer {
        let path = format!("/v1/tenants/acme/endpoints/{}/secret/rotate", self.endpoint);
        self.server.call("POST", &path, Some(&self.key), body.map(|body| body.to_string()).as_deref()).await
    }

    async fn secrets(&self) -> Value {
        let path = format!("/v1/tenants/acme/endpoints/{}/secret", self.endpoint);
        let answer = self.server.call("GET", &path, Some(&self.key), None).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.body
    }

    async fn deliver(&self) -> Received {
        let before = self.receiver.requests().len();
        self.server.publish("acme", "pdf.processed", r#"{"pdf_id":"pdf_1"}"#).await;
        self.receiver.wait_for(before + 1, WAIT).await[before].clone()
    }
}

/// Which secrets of `secrets` verify `request` for `scheme`.
fn verifies(request: &Received, scheme: Scheme, secret: &str) -> bool {
    let headers = request.headers.iter().map(|(name, value)| (name.as_str(), value.as_str()));
    let verifier = Verifier::new(scheme, secret).unwrap();
    verifier.verify(headers, &request.body, Timestamp::now().unix_seconds()).is_ok()
}

fn entries(request: &Received) -> usize {
    request.header("webhook-signature").unwrap().split(' ').count()
}

#[tokio::test]
async fn during_the_grace_period_receivers_with_either_secret_verify() {
    let setup = set_up("rotation-grace").await;
    assert_eq!(setup.secrets().await, json!({"secret": OLD, "previous": null}));
    let rotated = setup.rotate(Some(json!({"secret": NEW}))).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!((rotated.body["secret"].as_str(), rotated.body["previous"]["secret"].as_str()), (Some(NEW), Some(OLD)));
    let ends = Timestamp::parse_rfc3339(rotated.body["previous"]["expires_at"].as_str().unwrap()).unwrap();
    let expected = Timestamp::now().saturating_add(Duration::from_secs(24 * 3600));
    assert!(ends.unix_seconds().abs_diff(expected.unix_seconds()) < 60, "the default grace is 24 hours: {ends:?}");
    assert_eq!(setup.secrets().await, rotated.body);
    let shown = setup
        .server
        .call("GET", &format!("/v1/tenants/acme/endpoints/{}", setup.endpoint), Some(&setup.key), None)
        .await;
    assert!(!shown.text.contains(OLD) && !shown.text.contains(NEW), "{}", shown.text);

    let request = setup.deliver().await;
    assert_eq!(entries(&request), 2, "one v1 entry per secret: {:?}", request.header("webhook-signature"));
    for secret in [OLD, NEW] {
        assert!(verifies(&request, Scheme::Standard, secret), "standard verifies with {secret}");
    }
    for scheme in [Scheme::Heron, Scheme::Herald] {
        assert!(verifies(&request, scheme, OLD), "{scheme} keeps the secret receivers hold");
        assert!(!verifies(&request, scheme, NEW), "{scheme} switches when the grace period ends");
    }

    // A second rotation ends the first one's grace: the oldest secret verifies nothing more.
    let again = setup.rotate(None).await;
    assert_eq!(again.status, 200, "{}", again.text);
    let newest = again.body["secret"].as_str().unwrap().to_owned();
    assert!(newest.starts_with("whsec_") && newest != NEW, "a generated secret for its schemes: {newest}");
    assert_eq!(again.body["previous"]["secret"], NEW);
    let request = setup.deliver().await;
    for scheme in [Scheme::Heron, Scheme::Herald, Scheme::Standard] {
        assert!(!verifies(&request, scheme, OLD), "{scheme} no longer signs with the oldest secret");
        assert!(verifies(&request, scheme, NEW), "{scheme} signs with the previous secret");
    }
    assert!(verifies(&request, Scheme::Standard, &newest));

    // No grace: the new secret alone signs at once.
    let now = setup.rotate(Some(json!({"grace": "0s"}))).await;
    assert_eq!((now.status, &now.body["previous"]), (200, &Value::Null), "{}", now.text);
    let only = now.body["secret"].as_str().unwrap().to_owned();
    let request = setup.deliver().await;
    assert_eq!(entries(&request), 1);
    for scheme in [Scheme::Heron, Scheme::Herald, Scheme::Standard] {
        assert!(verifies(&request, scheme, &only) && !verifies(&request, scheme, &newest), "{scheme}");
    }
}

#[tokio::test]
async fn a_change_of_secret_by_patch_ends_the_grace_period() {
    let setup = set_up("rotation-patch").await;
    assert_eq!(setup.rotate(Some(json!({"secret": NEW, "grace": "7d"}))).await.status, 200);
    let path = format!("/v1/tenants/acme/endpoints/{}", setup.endpoint);
    let third = "whsec_dGhpcmQgc2VjcmV0IHRoaXJkIHNlY3JldA==";
    let patched =
        setup.server.call("PATCH", &path, Some(&setup.key), Some(&json!({"secret": third}).to_string())).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(setup.secrets().await, json!({"secret": third, "previous": null}));
    let request = setup.deliver().await;
    assert!(verifies(&request, Scheme::Heron, third) && !verifies(&request, Scheme::Heron, NEW));
}

#[tokio::test]
async fn bad_rotations_are_refused_with_a_code_and_a_sentence() {
    let setup = set_up("rotation-refused").await;
    for (body, status, code) in [
        (json!({"grace": "8d"}), 422, "invalid_grace"),
        (json!({"grace": "soon"}), 422, "invalid_grace"),
        (json!({"grace": "-1h"}), 422, "invalid_grace"),
        (json!({"grace": 3600}), 400, "invalid_field"),
        (json!({"secret": "sec_0123456789abcdefghij"}), 422, "invalid_secret"),
        (json!({"secret": "short"}), 422, "invalid_secret"),
        (json!({"secret": OLD}), 422, "invalid_secret"),
        (json!({"secret": NEW, "extra": true}), 400, "invalid_field"),
    ] {
        let answer = setup.rotate(Some(body.clone())).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{body}: {}", answer.text);
        assert!(answer.body["detail"].as_str().is_some_and(|message| message.len() > 20), "{}", answer.text);
    }
    let malformed = setup
        .server
        .call(
            "POST",
            &format!("/v1/tenants/acme/endpoints/{}/secret/rotate", setup.endpoint),
            Some(&setup.key),
            Some("{"),
        )
        .await;
    assert_eq!((malformed.status, malformed.code()), (400, "invalid_json"), "{}", malformed.text);
    assert_eq!(setup.secrets().await, json!({"secret": OLD, "previous": null}), "nothing refused changed the secret");

    // Another tenant's key reaches neither the secret nor its rotation, and an unknown endpoint is named.
    let other = setup.server.tenant("globex").await;
    for (method, suffix) in [("GET", "secret"), ("POST", "secret/rotate")] {
        for path in [
            format!("/v1/tenants/acme/endpoints/{}/{suffix}", setup.endpoint),
            format!("/v1/tenants/globex/endpoints/{}/{suffix}", setup.endpoint),
        ] {
            let answer = setup.server.call(method, &path, Some(&other), None).await;
            assert!(matches!(answer.status, 403 | 404), "{method} {path}: {}", answer.text);
            assert!(!answer.text.contains(OLD), "{}", answer.text);
        }
    }
    let unknown = setup
        .server
        .call("POST", "/v1/tenants/acme/endpoints/ep_00000000000000000000000000/secret/rotate", Some(&setup.key), None)
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(setup.secrets().await["secret"], OLD);
}
