//! Tenant isolation and authentication through a real `hookline serve`: a tenant key sees only its own tenant, learns
//! nothing about the others, and cannot use the operator's routes.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Answer, Hookline, Receiver, TempDir};

/// One tenant's endpoint, event and delivery, created through the API.
struct Owned {
    key: String,
    endpoint: Value,
    event: String,
    delivery: String,
}

async fn populate(server: &Hookline, tenant: &str, receiver: &Receiver) -> Owned {
    let key = server.tenant(tenant).await;
    let url = format!("{}/{tenant}", receiver.url);
    let endpoint =
        server.endpoint(tenant, json!({"url": url, "topics": ["pdf.processed"], "description": tenant})).await;
    let event = server.publish(tenant, "pdf.processed", &format!(r#"{{"owner":"{tenant}"}}"#)).await;
    let page = server.wait_for_deliveries(tenant, &event, "succeeded", 1).await;
    let delivery = page["data"][0]["id"].as_str().unwrap().to_owned();
    Owned { key, endpoint, event, delivery }
}

fn ids(answer: &Answer) -> Vec<String> {
    let items = answer.body["data"].as_array().unwrap_or_else(|| panic!("not a list: {:?}", answer.body));
    items.iter().map(|item| item["id"].as_str().unwrap().to_owned()).collect()
}

/// Asserts a 404 `code` whose body gives away nothing of `other` beyond what `request` itself named.
fn assert_hidden(answer: &Answer, code: &str, other: &Owned, request: &str) {
    assert_eq!((answer.status, answer.code()), (404, code), "{request}: {:?}", answer.body);
    let text = answer.body.to_string();
    let secret = other.endpoint["secret"].as_str().unwrap();
    for private in [other.endpoint["id"].as_str().unwrap(), other.event.as_str(), other.delivery.as_str(), secret] {
        assert!(request.contains(private) || !text.contains(private), "{request} leaked {private}: {text}");
    }
    assert!(!text.contains("127.0.0.1"), "{request} leaked the endpoint url: {text}");
}

#[tokio::test]
async fn a_tenant_key_sees_only_its_own_tenant() {
    let dir = TempDir::new("isolation");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;
    let acme = populate(&server, "acme", &receiver).await;
    let globex = populate(&server, "globex", &receiver).await;
    let as_acme = |method: &'static str, path: String, body: Option<&'static str>| {
        let key = acme.key.clone();
        let server = &server;
        async move { server.call(method, &path, Some(&key), body).await }
    };

    // Its own things, in full.
    let tenant = as_acme("GET", "/v1/tenants/acme".into(), None).await;
    assert_eq!((tenant.status, &tenant.body["id"]), (200, &json!("acme")));
    assert_eq!(
        ids(&as_acme("GET", "/v1/tenants/acme/endpoints".into(), None).await),
        [acme.endpoint["id"].as_str().unwrap()]
    );
    assert_eq!(ids(&as_acme("GET", "/v1/tenants/acme/events".into(), None).await), [acme.event.as_str()]);
    assert_eq!(ids(&as_acme("GET", "/v1/tenants/acme/deliveries".into(), None).await), [acme.delivery.as_str()]);
    let secret =
        as_acme("GET", format!("/v1/tenants/acme/endpoints/{}/secret", acme.endpoint["id"].as_str().unwrap()), None)
            .await;
    assert_eq!((secret.status, &secret.body["secret"]), (200, &acme.endpoint["secret"]));
    assert_eq!(as_acme("GET", format!("/v1/tenants/acme/events/{}", acme.event), None).await.status, 200);
    assert_eq!(as_acme("GET", format!("/v1/tenants/acme/deliveries/{}", acme.delivery), None).await.status, 200);
    let published =
        as_acme("POST", "/v1/tenants/acme/events".into(), Some(r#"{"topic":"pdf.processed","data":{}}"#)).await;
    assert_eq!(published.status, 202, "{:?}", published.body);
    let topics = as_acme("GET", "/v1/topics".into(), None).await;
    assert_eq!(topics.status, 200);

    // Another tenant's paths answer exactly as an unknown tenant's do.
    let globex_endpoint = globex.endpoint["id"].as_str().unwrap();
    let paths = [
        ("GET", "".to_owned(), None),
        ("GET", "/endpoints".to_owned(), None),
        ("POST", "/endpoints".to_owned(), Some(r#"{"url":"https://example.com/","topics":["pdf.processed"]}"#)),
        ("GET", format!("/endpoints/{globex_endpoint}"), None),
        ("PATCH", format!("/endpoints/{globex_endpoint}"), Some(r#"{"enabled":false}"#)),
        ("DELETE", format!("/endpoints/{globex_endpoint}"), None),
        ("GET", "/events".to_owned(), None),
        ("POST", "/events".to_owned(), Some(r#"{"topic":"pdf.processed","data":{}}"#)),
        ("GET", format!("/events/{}", globex.event), None),
        ("GET", "/deliveries".to_owned(), None),
        ("GET", format!("/deliveries/{}", globex.delivery), None),
        ("POST", format!("/deliveries/{}/retry", globex.delivery), None),
        ("GET", format!("/endpoints/{globex_endpoint}/secret"), None),
        ("POST", format!("/endpoints/{globex_endpoint}/secret/rotate"), Some(r#"{"grace":"1h"}"#)),
        ("GET", format!("/endpoints/{globex_endpoint}/stats"), None),
        ("POST", format!("/endpoints/{globex_endpoint}/test"), Some(r#"{"topic":"pdf.processed"}"#)),
        ("POST", format!("/endpoints/{globex_endpoint}/recover"), Some(r#"{"since":"2026-01-01T00:00:00Z"}"#)),
        ("POST", format!("/events/{}/resend", globex.event), None),
        ("GET", "/recoveries/rcv_01m95j3yvbj6n95m7p5wv56vg1".to_owned(), None),
    ];
    for (method, rest, body) in &paths {
        let other = as_acme(method, format!("/v1/tenants/globex{rest}"), *body).await;
        assert_hidden(&other, "tenant_not_found", &globex, &format!("{method} globex{rest}"));
        let unknown = as_acme(method, format!("/v1/tenants/nobody{rest}"), *body).await;
        assert_eq!(other.body["detail"].as_str().unwrap().replace("globex", "nobody"), unknown.body["detail"]);
    }
    // Another tenant's ids under its own tenant are simply not found, as ids that never existed are.
    for (kind, id) in [("endpoints", globex_endpoint), ("events", &globex.event), ("deliveries", &globex.delivery)] {
        let path = format!("/v1/tenants/acme/{kind}/{id}");
        let answer = as_acme("GET", path.clone(), None).await;
        assert_hidden(&answer, "not_found", &globex, &path);
        let never = format!("{}_{}", id.split('_').next().unwrap(), "0".repeat(26));
        let unknown = as_acme("GET", format!("/v1/tenants/acme/{kind}/{never}"), None).await;
        assert_eq!(answer.body["detail"].as_str().unwrap().replace(id, &never), unknown.body["detail"]);
    }
    let path = format!("/v1/tenants/acme/deliveries/{}/retry", globex.delivery);
    assert_hidden(&as_acme("POST", path.clone(), None).await, "not_found", &globex, &path);
    // Nor its secret, its rotation, its health, a test event, a recovery or a resend, under acme's own name.
    let under_acme = [
        ("GET", format!("/endpoints/{globex_endpoint}/secret"), None),
        ("POST", format!("/endpoints/{globex_endpoint}/secret/rotate"), Some(r#"{"grace":"1h"}"#)),
        ("GET", format!("/endpoints/{globex_endpoint}/stats"), None),
        ("POST", format!("/endpoints/{globex_endpoint}/test"), Some(r#"{"topic":"pdf.processed"}"#)),
        ("POST", format!("/endpoints/{globex_endpoint}/recover"), Some(r#"{"since":"2026-01-01T00:00:00Z"}"#)),
        ("POST", format!("/events/{}/resend", globex.event), None),
    ];
    for (method, rest, body) in under_acme {
        let path = format!("/v1/tenants/acme{rest}");
        assert_hidden(&as_acme(method, path.clone(), body).await, "not_found", &globex, &path);
    }
    let filtered = as_acme("GET", format!("/v1/tenants/acme/deliveries?event={}", globex.event), None).await;
    assert_eq!((filtered.status, ids(&filtered).len()), (200, 0));

    // Nothing of globex changed, and nothing more was sent for it.
    let endpoint = server.admin("GET", &format!("/v1/tenants/globex/endpoints/{globex_endpoint}"), None).await;
    assert_eq!(endpoint.body["enabled"], true);
    let secrets = server.admin("GET", &format!("/v1/tenants/globex/endpoints/{globex_endpoint}/secret"), None).await;
    assert_eq!((&secrets.body["secret"], &secrets.body["previous"]), (&globex.endpoint["secret"], &Value::Null));
    assert_eq!(server.all_deliveries("globex", None).await.len(), 1);
    let events = server.admin("GET", "/v1/tenants/globex/events", None).await;
    assert_eq!(ids(&events), [globex.event.as_str()]);
    server.wait_for_none("acme", "pending", Duration::from_secs(10)).await;
    assert_eq!(receiver.requests().iter().filter(|request| request.path == "/globex").count(), 1);
    // globex's key works for globex.
    let own = server.call("GET", "/v1/tenants/globex/events", Some(&globex.key), None).await;
    assert_eq!(ids(&own), [globex.event.as_str()]);
}

#[tokio::test]
async fn a_tenant_key_cannot_use_the_operators_routes() {
    let dir = TempDir::new("isolation-admin");
    let server = Hookline::start(dir.path()).await;
    let key = server.tenant("acme").await;
    let cases = [
        ("POST", "/v1/tenants", Some(r#"{"id":"mallory"}"#)),
        ("GET", "/v1/tenants", None),
        ("DELETE", "/v1/tenants/acme", None),
        ("POST", "/v1/tenants/acme/keys", None),
        ("POST", "/v1/topics", Some(r#"{"name":"quote.ready"}"#)),
        ("PATCH", "/v1/topics/pdf.processed", Some(r#"{"deprecated":true}"#)),
    ];
    for (method, path, body) in cases {
        let answer = server.call(method, path, Some(&key), body).await;
        assert_eq!((answer.status, answer.code()), (403, "forbidden"), "{method} {path}: {:?}", answer.body);
        assert_eq!(answer.header("content-type"), Some("application/problem+json"));
    }
    // Nothing happened.
    let tenants = server.admin("GET", "/v1/tenants", None).await;
    assert_eq!(tenants.body["data"].as_array().unwrap().len(), 1);
    let topics = server.admin("GET", "/v1/topics", None).await;
    let topics = topics.body["data"].as_array().unwrap();
    assert_eq!(topics.len(), 15, "Heron's eleven and the four operational topics");
    assert!(topics.iter().any(|topic| topic["name"] == "pdf.processed" && topic["deprecated"] == false));
}

#[tokio::test]
async fn a_request_without_a_valid_key_is_401() {
    let dir = TempDir::new("isolation-keys");
    let server = Hookline::start(dir.path()).await;
    let key = server.tenant("acme").await;
    let paths = ["/v1/topics", "/v1/tenants", "/v1/tenants/acme/endpoints", "/v1/tenants/acme/events"];
    for path in paths {
        let missing = server.call("GET", path, None, None).await;
        assert_eq!((missing.status, missing.code()), (401, "missing_key"), "{path}");
        assert_eq!(missing.header("content-type"), Some("application/problem+json"));
        let basic =
            server.call_with("GET", path, None, None, &[("authorization", "Basic YWRtaW46YWRtaW4=".into())]).await;
        assert_eq!((basic.status, basic.code()), (401, "missing_key"), "{path}");
        for wrong in ["hk_not_a_real_key", "hka_test_admin_key_012345678", &format!("{key}x"), ""] {
            let answer = server.call("GET", path, Some(wrong), None).await;
            assert_eq!(answer.status, 401, "{path} with {wrong:?}: {:?}", answer.body);
            assert!(["invalid_key", "missing_key"].contains(&answer.code()), "{:?}", answer.body);
        }
        let wrong = server.call("GET", path, Some("hk_not_a_real_key"), None).await;
        assert_eq!(wrong.code(), "invalid_key");
    }
    // A wrong key publishes nothing.
    let body = r#"{"topic":"pdf.processed","data":{}}"#;
    assert_eq!(server.call("POST", "/v1/tenants/acme/events", Some("hk_nope"), Some(body)).await.status, 401);
    let events = server.admin("GET", "/v1/tenants/acme/events", None).await;
    assert!(events.body["data"].as_array().unwrap().is_empty());
    // A deleted tenant's key stops working.
    assert_eq!(server.call("GET", "/v1/tenants/acme/events", Some(&key), None).await.status, 200);
    assert_eq!(server.admin("DELETE", "/v1/tenants/acme", None).await.status, 204);
    let after = server.call("GET", "/v1/tenants/acme/events", Some(&key), None).await;
    assert_eq!((after.status, after.code()), (401, "invalid_key"));
}
