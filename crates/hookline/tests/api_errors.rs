//! Bad input through a real `hookline serve`: every case is a 4xx with a stable code and a sentence saying what to
//! fix, in the API's `application/problem+json` shape, and no request ever gets a 5xx.

mod support;

use serde_json::{Value, json};
use support::{ADMIN_KEY, Answer, Hookline, TempDir, closed_port_url};

/// A server with tenant `acme`, one heron endpoint `{ep}`, one event `{evt}` and its delivery `{del}`.
struct Api {
    server: Hookline,
    endpoint: String,
    event: String,
    delivery: String,
    tenant_key: String,
    /// Last, so the server stops before its data directory goes.
    _dir: TempDir,
}

impl Api {
    async fn start(label: &str) -> Api {
        let dir = TempDir::new(label);
        let server = Hookline::start(dir.path()).await;
        let tenant_key = server.tenant("acme").await;
        // Deliveries go to a closed local port: they fail there, and nothing leaves the machine.
        let url = format!("{}/hook", closed_port_url().await);
        let created = server
            .endpoint(
                "acme",
                json!({"url": url, "topics": ["pdf.processed"], "signing": ["heron"], "retry_schedule": ["1h"]}),
            )
            .await;
        let endpoint = created["id"].as_str().unwrap().to_owned();
        let event = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
        let delivery = server.deliveries_of("acme", &event).await[0]["id"].as_str().unwrap().to_owned();
        Api { server, endpoint, event, delivery, tenant_key, _dir: dir }
    }

    fn path(&self, template: &str) -> String {
        template.replace("{ep}", &self.endpoint).replace("{evt}", &self.event).replace("{del}", &self.delivery)
    }

    /// Sends `body` (nothing when empty) with the admin key to `path` (`{ep}`, `{evt}`, `{del}` filled in) and
    /// checks that the answer is the API error `status` with `code`.
    async fn check(&self, (method, path, body, status, code): Case<'_>) -> Answer {
        self.check_with(ADMIN_KEY, &[], (method, path, body, status, code)).await
    }

    async fn check_with(&self, key: &str, extra: &[(&'static str, String)], case: Case<'_>) -> Answer {
        let (method, path, body, status, code) = case;
        let path = self.path(path);
        let body = (!body.is_empty()).then_some(body);
        let answer = self.server.call_with(method, &path, Some(key), body, extra).await;
        assert_problem(&answer, status, code, &format!("{method} {path} {}", body.unwrap_or("")));
        answer
    }
}

/// `(method, path, body, status, code)`.
type Case<'a> = (&'a str, &'a str, &'a str, u16, &'a str);

/// Asserts that `answer` is an API error with `status` and `code` in the problem shape, with a readable detail.
fn assert_problem(answer: &Answer, status: u16, code: &str, request: &str) {
    assert_eq!((answer.status, answer.code()), (status, code), "{request}\n{:?}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/problem+json"), "{request}");
    let keys: Vec<&str> = answer.body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["status", "code", "title", "detail"], "{request}");
    assert_eq!(answer.body["status"], status, "{request}");
    assert!(answer.body["title"].as_str().is_some_and(|title| !title.is_empty()), "{request}");
    let detail = answer.body["detail"].as_str().unwrap();
    assert!(detail.len() > 10 && !detail.ends_with('.'), "{request}: detail {detail:?}");
}

const EVENTS: &str = "/v1/tenants/acme/events";
const ENDPOINTS: &str = "/v1/tenants/acme/endpoints";
const ENDPOINT: &str = "/v1/tenants/acme/endpoints/{ep}";
const UNKNOWN_ENDPOINT: &str = "/v1/tenants/acme/endpoints/ep_00000000000000000000000000";

#[tokio::test]
async fn bad_events_are_refused_with_a_clear_error() {
    let api = Api::start("errors-events").await;
    #[rustfmt::skip]
    let cases: &[Case] = &[
        ("POST", EVENTS, "", 400, "invalid_json"),
        ("POST", EVENTS, "{", 400, "invalid_json"),
        ("POST", EVENTS, "not json", 400, "invalid_json"),
        ("POST", EVENTS, r#"{"topic":"pdf.processed","data":{}} trailing"#, 400, "invalid_json"),
        ("POST", EVENTS, r#"{"topic":"pdf.processed","data":{"a":1,}}"#, 400, "invalid_json"),
        ("POST", EVENTS, "[]", 400, "invalid_field"),
        ("POST", EVENTS, r#"{"topic":"pdf.processed","data":{},"extra":1}"#, 400, "invalid_field"),
        ("POST", EVENTS, r#"{"topic":5,"data":{}}"#, 400, "invalid_field"),
        ("POST", EVENTS, r#"{"data":{}}"#, 400, "invalid_field"),
        ("POST", EVENTS, r#"{"topic":"pdf.processed","topic":"pdf.failed","data":{}}"#, 400, "invalid_field"),
        ("POST", EVENTS, r#"{"topic":"pdf.processed"}"#, 400, "missing_data"),
        ("POST", EVENTS, r#"{"topic":"pdf.processed","data":null}"#, 400, "missing_data"),
        ("POST", EVENTS, r#"{"topic":"quote.unknown","data":{}}"#, 422, "unknown_topic"),
        ("POST", EVENTS, r#"{"topic":"Not A Topic","data":{}}"#, 422, "invalid_topic"),
        ("POST", EVENTS, r#"{"topic":"pdf.*","data":{}}"#, 422, "invalid_topic"),
        ("POST", "/v1/tenants/nobody/events", r#"{"topic":"pdf.processed","data":{}}"#, 404, "tenant_not_found"),
    ];
    for case in cases {
        api.check(*case).await;
    }
    let valid = r#"{"topic":"pdf.processed","data":{}}"#;
    for bad_key in [String::new(), "k".repeat(256), "tab\there".to_owned()] {
        let extra = [("idempotency-key", bad_key)];
        api.check_with(ADMIN_KEY, &extra, ("POST", EVENTS, valid, 400, "invalid_idempotency_key")).await;
    }
    // None of these made an event: only the set-up's exists.
    let events = api.server.admin("GET", EVENTS, None).await;
    assert_eq!(events.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_endpoints_are_refused_with_a_clear_error() {
    let api = Api::start("errors-endpoints").await;
    #[rustfmt::skip]
    let cases: &[Case] = &[
        ("POST", ENDPOINTS, "{", 400, "invalid_json"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf.processed"],"colour":"red"}"#, 400, "invalid_field"),
        ("POST", ENDPOINTS, r#"{"url":5,"topics":["pdf.processed"]}"#, 400, "invalid_field"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":"pdf.processed"}"#, 400, "invalid_field"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf.processed"],"enabled":"yes"}"#, 400, "invalid_field"),
        ("POST", ENDPOINTS, r#"{"topics":["pdf.processed"]}"#, 400, "invalid_field"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/"}"#, 400, "invalid_field"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":[]}"#, 422, "no_topics"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["quote.unknown"]}"#, 422, "unknown_topic"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["end_user.transactions_updated"]}"#, 422, "deprecated_topic"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf.processed","end_user.transactions_updated"]}"#, 422, "deprecated_topic"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf"]}"#, 422, "invalid_topic"),
        ("POST", ENDPOINTS, r#"{"url":"ftp://example.com/hook","topics":["pdf.processed"]}"#, 422, "invalid_url"),
        ("POST", ENDPOINTS, r#"{"url":"https:///hook","topics":["pdf.processed"]}"#, 422, "invalid_url"),
        ("POST", ENDPOINTS, r#"{"url":"http://","topics":["pdf.processed"]}"#, 422, "invalid_url"),
        ("POST", ENDPOINTS, r#"{"url":"https://exa mple.com/hook","topics":["pdf.processed"]}"#, 422, "invalid_url"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/my hook","topics":["pdf.processed"]}"#, 422, "invalid_url"),
        ("POST", ENDPOINTS, r#"{"url":"not a url","topics":["pdf.processed"]}"#, 422, "invalid_url"),
        ("POST", ENDPOINTS, r#"{"url":"example.com/hook","topics":["pdf.processed"]}"#, 422, "invalid_url"),
        ("POST", ENDPOINTS, r#"{"url":"","topics":["pdf.processed"]}"#, 422, "invalid_url"),
        ("POST", ENDPOINTS, r#"{"url":"https://user:pw@example.com/","topics":["pdf.processed"]}"#, 422, "invalid_url"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com:99999/","topics":["pdf.processed"]}"#, 422, "invalid_url"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf.processed"],"format":"xml"}"#, 422, "invalid_format"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf.processed"],"signing":["rsa"]}"#, 422, "invalid_signing"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf.processed"],"signing":[]}"#, 422, "invalid_signing"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf.processed"],"retry_schedule":["5"]}"#, 422, "invalid_retry_schedule"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf.processed"],"retry_schedule":["soon"]}"#, 422, "invalid_retry_schedule"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf.processed"],"retry_schedule":["25h"]}"#, 422, "invalid_retry_schedule"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf.processed"],"retry_schedule":["-1s"]}"#, 422, "invalid_retry_schedule"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf.processed"],"retry_schedule":"3m"}"#, 400, "invalid_field"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf.processed"],"signing":["heron"],"secret":"short"}"#, 422, "invalid_secret"),
        ("POST", ENDPOINTS, r#"{"url":"https://example.com/","topics":["pdf.processed"],"secret":"sec_0123456789abcdef"}"#, 422, "invalid_secret"),
        ("POST", "/v1/tenants/nobody/endpoints", r#"{"url":"https://example.com/","topics":["pdf.processed"]}"#, 404, "tenant_not_found"),
        ("PATCH", ENDPOINT, "", 400, "invalid_json"),
        ("PATCH", ENDPOINT, r#"{"colour":"red"}"#, 400, "invalid_field"),
        ("PATCH", ENDPOINT, r#"{"enabled":"no"}"#, 400, "invalid_field"),
        ("PATCH", ENDPOINT, r#"{"url":"ftp://example.com/"}"#, 422, "invalid_url"),
        ("PATCH", ENDPOINT, r#"{"topics":[]}"#, 422, "no_topics"),
        ("PATCH", ENDPOINT, r#"{"topics":["quote.unknown"]}"#, 422, "unknown_topic"),
        ("PATCH", ENDPOINT, r#"{"topics":["end_user.transactions_updated"]}"#, 422, "deprecated_topic"),
        ("PATCH", ENDPOINT, r#"{"retry_schedule":["soon"]}"#, 422, "invalid_retry_schedule"),
        ("PATCH", ENDPOINT, r#"{"signing":["rsa"]}"#, 422, "invalid_signing"),
        ("PATCH", ENDPOINT, r#"{"signing":["standard"]}"#, 422, "invalid_secret"),
        ("PATCH", ENDPOINT, r#"{"format":"xml"}"#, 422, "invalid_format"),
        ("GET", UNKNOWN_ENDPOINT, "", 404, "not_found"),
        ("PATCH", UNKNOWN_ENDPOINT, r#"{"enabled":false}"#, 404, "not_found"),
        ("DELETE", UNKNOWN_ENDPOINT, "", 404, "not_found"),
        ("GET", "/v1/tenants/acme/endpoints/nonsense", "", 404, "not_found"),
        ("GET", "/v1/tenants/acme/endpoints/ep_%ff", "", 400, "invalid_path"),
    ];
    for case in cases {
        api.check(*case).await;
    }
    let too_many =
        json!({"url": "https://example.com/", "topics": ["pdf.processed"], "retry_schedule": vec!["1s"; 31]});
    api.check(("POST", ENDPOINTS, &too_many.to_string(), 422, "invalid_retry_schedule")).await;
    let long = json!({"url": "https://example.com/", "topics": ["pdf.processed"], "description": "d".repeat(1025)});
    api.check(("POST", ENDPOINTS, &long.to_string(), 422, "invalid_description")).await;
    // Nothing was created or changed: the set-up's endpoint is the only one, as it was.
    let endpoints = api.server.admin("GET", ENDPOINTS, None).await;
    let data = endpoints.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!((&data[0]["topics"], &data[0]["signing"]), (&json!(["pdf.processed"]), &json!(["heron"])));
}

#[tokio::test]
async fn unknown_ids_bad_queries_and_bad_tenants_are_refused_with_a_clear_error() {
    let api = Api::start("errors-ids").await;
    #[rustfmt::skip]
    let cases: &[Case] = &[
        ("GET", "/v1/tenants/acme/events/evt_00000000000000000000000000", "", 404, "not_found"),
        ("GET", "/v1/tenants/acme/events/nonsense", "", 404, "not_found"),
        ("GET", "/v1/tenants/acme/events/{del}", "", 404, "not_found"),
        ("GET", "/v1/tenants/acme/deliveries/del_00000000000000000000000000", "", 404, "not_found"),
        ("GET", "/v1/tenants/acme/deliveries/{evt}", "", 404, "not_found"),
        ("POST", "/v1/tenants/acme/deliveries/del_00000000000000000000000000/retry", "", 404, "not_found"),
        ("GET", "/v1/tenants/nobody", "", 404, "tenant_not_found"),
        ("GET", "/v1/tenants/Not-A-Tenant!", "", 404, "tenant_not_found"),
        ("DELETE", "/v1/tenants/nobody", "", 404, "tenant_not_found"),
        ("POST", "/v1/tenants/nobody/keys", "", 404, "tenant_not_found"),
        ("GET", "/v1/tenants/nobody/deliveries", "", 404, "tenant_not_found"),
        ("GET", "/v1/tenants/acme/endpoints?limit=0", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/endpoints?limit=1001", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/endpoints?limit=abc", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/endpoints?limit=-1", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/endpoints?colour=red", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/events?limit=0", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/events?after=yesterday", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/events?topic=NOPE", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/deliveries?limit=100000", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/deliveries?status=lost", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/deliveries?event=nonsense", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/deliveries?endpoint=nonsense", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/deliveries?answer=6xx", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/deliveries?topic=NOPE", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/deliveries?since=yesterday", "", 400, "invalid_query"),
        ("GET", "/v1/tenants/acme/deliveries?until=2026-13-01T00:00:00Z", "", 400, "invalid_query"),
        (
            "GET",
            "/v1/tenants/acme/deliveries?since=2026-12-06T10:00:00Z&until=2026-12-06T09:00:00Z",
            "",
            400,
            "invalid_query",
        ),
        ("GET", "/v1/tenants?limit=0", "", 400, "invalid_query"),
        ("POST", "/v1/tenants", "{", 400, "invalid_json"),
        ("POST", "/v1/tenants", r#"{"name":"No Id"}"#, 400, "invalid_field"),
        ("POST", "/v1/tenants", r#"{"id":"ok","plan":"gold"}"#, 400, "invalid_field"),
        ("POST", "/v1/tenants", r#"{"id":"Bad Tenant"}"#, 422, "invalid_tenant_id"),
        ("POST", "/v1/tenants", r#"{"id":""}"#, 422, "invalid_tenant_id"),
        ("POST", "/v1/tenants", r#"{"id":"-acme"}"#, 422, "invalid_tenant_id"),
        ("POST", "/v1/tenants", r#"{"id":"acme/../globex"}"#, 422, "invalid_tenant_id"),
        ("POST", "/v1/tenants", r#"{"id":"acme"}"#, 409, "conflict"),
        ("POST", "/v1/tenants/acme/keys", "{", 400, "invalid_json"),
        ("POST", "/v1/tenants/acme/keys", r#"{"nme":"ci"}"#, 400, "invalid_field"),
        ("POST", "/v1/topics", r#"{"name":"Quote.Ready"}"#, 422, "invalid_topic"),
        ("POST", "/v1/topics", r#"{"name":"pdf.processed"}"#, 409, "conflict"),
        ("POST", "/v1/topics", r#"{"title":"quote.ready"}"#, 400, "invalid_field"),
        ("PATCH", "/v1/topics/quote.unknown", r#"{"deprecated":true}"#, 404, "not_found"),
        ("PATCH", "/v1/topics/pdf.processed", r#"{"deprecated":"yes"}"#, 400, "invalid_field"),
        ("GET", "/v1/nothing", "", 404, "no_route"),
        ("PUT", "/v1/topics", "", 405, "method_not_allowed"),
        ("DELETE", "/v1/tenants/acme/events", "", 405, "method_not_allowed"),
    ];
    for case in cases {
        api.check(*case).await;
    }
}

#[tokio::test]
async fn the_details_say_what_was_wrong_and_how_to_fix_it() {
    let api = Api::start("errors-details").await;
    let detail = |answer: Answer| answer.body["detail"].as_str().unwrap().to_owned();
    let url = r#"{"url":"ftp://example.com/hook","topics":["pdf.processed"]}"#;
    let answer = api.check(("POST", ENDPOINTS, url, 422, "invalid_url")).await;
    assert_eq!(detail(answer), r#"invalid endpoint url "ftp://example.com/hook"; the scheme must be http or https"#);
    let topic = r#"{"url":"https://example.com/","topics":["end_user.transactions_updated"]}"#;
    let answer = api.check(("POST", ENDPOINTS, topic, 422, "deprecated_topic")).await;
    assert!(detail(answer).contains("end_user.transactions_updated"));
    let answer = api.check(("POST", EVENTS, r#"{"topic":"quote.unknown","data":{}}"#, 422, "unknown_topic")).await;
    assert!(detail(answer).contains("\"quote.unknown\""));
    let schedule = r#"{"url":"https://example.com/","topics":["pdf.processed"],"retry_schedule":["5"]}"#;
    let answer = api.check(("POST", ENDPOINTS, schedule, 422, "invalid_retry_schedule")).await;
    assert!(detail(answer).contains("\"5\""));
    let answer =
        api.check(("POST", EVENTS, r#"{"topic":"pdf.processed","data":{},"extra":1}"#, 400, "invalid_field")).await;
    assert!(detail(answer).contains("extra"));
}

#[tokio::test]
async fn private_and_metadata_addresses_are_refused_unless_the_dangerous_switch_is_on() {
    let dir = TempDir::new("errors-ssrf");
    let server = Hookline::start_with(dir.path(), &[]).await;
    server.tenant("acme").await;
    for url in [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://192.0.2.2:19100/a",
        "http://[::127.0.0.1]/hook",
        "http://[2002:7f00:1::1]/hook",
    ] {
        let body = json!({"url": url, "topics": ["pdf.processed"]}).to_string();
        let answer = server.call("POST", ENDPOINTS, Some(ADMIN_KEY), Some(&body)).await;
        assert_problem(&answer, 422, "blocked_url", url);
        assert!(answer.body["detail"].as_str().unwrap().contains("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS"));
    }
    // Names and public addresses are accepted; a name is checked where it resolves, at connect time.
    for url in ["https://example.com/hook", "http://localhost:9/hook", "http://93.184.216.34/hook"] {
        server.endpoint("acme", json!({"url": url, "topics": ["pdf.processed"]})).await;
    }
    let endpoint =
        server.endpoint("acme", json!({"url": "https://example.com/two", "topics": ["pdf.processed"]})).await;
    let path = format!("{ENDPOINTS}/{}", endpoint["id"].as_str().unwrap());
    let answer = server.call("PATCH", &path, Some(ADMIN_KEY), Some(r#"{"url":"http://169.254.169.254/"}"#)).await;
    assert_problem(&answer, 422, "blocked_url", "PATCH to the metadata address");

    // With the switch on (tests and local demos), the same literal addresses are allowed.
    let dir = TempDir::new("errors-ssrf-allowed");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    server.endpoint("acme", json!({"url": "http://127.0.0.1:9/hook", "topics": ["pdf.processed"]})).await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_one_just_under_it_is_accepted() {
    let api = Api::start("errors-size").await;
    let event = |size: usize| format!(r#"{{"topic":"pdf.processed","data":"{}"}}"#, "x".repeat(size));
    let answer = api.server.call("POST", EVENTS, Some(ADMIN_KEY), Some(&event(300 * 1024))).await;
    assert_problem(&answer, 413, "payload_too_large", "a 300 KiB event");
    let endpoint =
        json!({"url": "https://example.com/", "topics": ["pdf.processed"], "description": "d".repeat(300 * 1024)});
    let answer = api.server.call("POST", ENDPOINTS, Some(ADMIN_KEY), Some(&endpoint.to_string())).await;
    assert_problem(&answer, 413, "payload_too_large", "a 300 KiB endpoint");
    let answer = api.server.call("POST", EVENTS, Some(ADMIN_KEY), Some(&event(250 * 1024))).await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
}

#[tokio::test]
async fn no_request_gets_a_5xx() {
    let api = Api::start("errors-no-5xx").await;
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let deep_event = format!(r#"{{"topic":"pdf.processed","data":{deep}}}"#);
    let bodies = [
        "",
        "{",
        "null",
        "[]",
        "{}",
        "\"text\"",
        r#"{"topic":"pdf.processed","data":{"n":1e999999,"s":"\ud800"}}"#,
        deep_event.as_str(),
        r#"{"url":"http://[::1","topics":["pdf.processed"],"retry_schedule":["99999999999999999999d"]}"#,
        r#"{"id":"x","name":null,"topics":[null],"url":null,"enabled":null,"deprecated":null}"#,
    ];
    let paths = [
        "/healthz",
        "/v1/topics",
        "/v1/topics/pdf.processed",
        "/v1/topics/%00",
        "/v1/tenants",
        "/v1/tenants/%2e%2e",
        "/v1/tenants/acme/keys",
        ENDPOINTS,
        "/v1/tenants/acme/endpoints/ep_%ff",
        EVENTS,
        "/v1/tenants/acme/events/{evt}",
        "/v1/tenants/acme/events?after=2021-13-45T99:99:99%2B00:00&limit=1",
        "/v1/tenants/acme/deliveries?cursor=%27%20OR%201%3D1%20--",
        "/v1/tenants/acme/deliveries/{del}",
        "/v1/tenants/acme/deliveries/{del}/retry",
        // Last, as DELETE removes them.
        ENDPOINT,
        "/v1/tenants/acme",
    ];
    let keys = [Some(ADMIN_KEY), Some(api.tenant_key.as_str()), None];
    for path in paths {
        let path = api.path(path);
        for method in ["GET", "POST", "PATCH", "PUT", "DELETE"] {
            for body in bodies {
                for key in keys {
                    let body = (!body.is_empty()).then_some(body);
                    let answer = api.server.call(method, &path, key, body).await;
                    assert!(answer.status < 500, "{method} {path} {body:?} with {key:?}: {:?}", answer.body);
                    if answer.status >= 400 {
                        assert!(
                            answer.body.get("code").and_then(Value::as_str).is_some(),
                            "{method} {path}: {:?}",
                            answer.body
                        );
                    }
                }
            }
        }
    }
    assert_eq!(api.server.call("GET", "/healthz", None, None).await.status, 200);
}
