//! The API's resources through a real `hookline serve`: the topic catalogue and deprecation, endpoint changes,
//! cursor pagination, and the exact JSON of every answer.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use hookline_core::time::Timestamp;
use serde_json::{Value, json};
use support::{Hookline, Receiver, TempDir};

const SEEDED: [&str; 11] = [
    "end_user.processed",
    "end_user.reviewed",
    "end_user.transactions_updated",
    "end_user.review_required",
    "transactions.deleted",
    "transactions.updated",
    "pdf.processed",
    "pdf.checks_passed",
    "pdf.checks_failed",
    "pdf.failed",
    "pdf.transactions_loaded",
];

async fn topics(server: &Hookline) -> Vec<Value> {
    let page = server.admin("GET", "/v1/topics", None).await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    page.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_catalogue_starts_with_herons_eleven_topics_and_takes_new_ones() {
    let dir = TempDir::new("topics-seeded");
    let server = Hookline::start(dir.path()).await;
    let listed = topics(&server).await;
    let names: HashSet<&str> = listed.iter().map(|topic| topic["name"].as_str().unwrap()).collect();
    let operational = hookline_core::topic::OPERATIONAL_TOPICS.iter().map(|topic| topic.name);
    assert_eq!(names, SEEDED.into_iter().chain(operational).collect::<HashSet<&str>>());
    for topic in &listed {
        let deprecated = topic["name"] == "end_user.transactions_updated";
        assert_eq!(topic["deprecated"], deprecated, "{topic:?}");
        assert!(topic["description"].as_str().is_some_and(|text| text.len() > 10), "{topic:?}");
    }

    let created = server
        .admin("POST", "/v1/topics", Some(json!({"name": "quote.ready", "description": "A quote is ready."})))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!((&created.body["name"], &created.body["deprecated"]), (&json!("quote.ready"), &json!(false)));
    assert_eq!(topics(&server).await.len(), 16);
    let again = server.admin("POST", "/v1/topics", Some(json!({"name": "quote.ready"}))).await;
    assert_eq!((again.status, again.code()), (409, "conflict"));
    for name in
        ["Quote.Ready", "quote", "quote.", ".ready", "quote.ready.now", "quote.*", "quote ready", "", "quote-x.ready"]
    {
        let refused = server.admin("POST", "/v1/topics", Some(json!({"name": name}))).await;
        assert_eq!((refused.status, refused.code()), (422, "invalid_topic"), "{name:?}: {:?}", refused.body);
    }
    assert_eq!(topics(&server).await.len(), 16);

    // A new topic is usable at once.
    let receiver = Receiver::start().await;
    server.tenant("herald").await;
    server.endpoint("herald", json!({"url": receiver.url, "topics": ["quote.ready"], "format": "data"})).await;
    server.publish("herald", "quote.ready", r#"{"quote_id":"q_1"}"#).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].text(), r#"{"quote_id":"q_1"}"#);
}

/// A topic's example: the seeded ones are built in; an operator sets, replaces and removes one; a tenant key
/// cannot; an oversized one is refused.
#[tokio::test]
async fn topics_carry_an_example_that_operators_set() {
    let dir = TempDir::new("topics-examples");
    let server = Hookline::start(dir.path()).await;
    for topic in topics(&server).await {
        assert!(topic["example"].is_object(), "a seeded topic has its built-in example: {topic:?}");
    }
    let processed = topics(&server).await.into_iter().find(|topic| topic["name"] == "pdf.processed").unwrap();
    assert_eq!(processed["example"]["end_user_id"], "myenduser");

    let example = json!({"quote_id": "q_1", "premium": 120.5, "currency": "GBP"});
    let created = server.admin("POST", "/v1/topics", Some(json!({"name": "quote.ready", "example": example}))).await;
    assert_eq!((created.status, &created.body["example"]), (201, &example), "{:?}", created.body);
    let replaced = server.admin("PATCH", "/v1/topics/quote.ready", Some(json!({"example": {"quote_id": "q_2"}}))).await;
    assert_eq!((replaced.status, &replaced.body["example"]), (200, &json!({"quote_id": "q_2"})));
    let kept = server.admin("PATCH", "/v1/topics/quote.ready", Some(json!({"description": "Ready"}))).await;
    assert_eq!(kept.body["example"], json!({"quote_id": "q_2"}));
    let removed = server.admin("PATCH", "/v1/topics/quote.ready", Some(json!({"example": null}))).await;
    assert_eq!((removed.status, &removed.body["example"]), (200, &Value::Null));
    // A seeded topic given its own example, then back to the built-in one.
    let own = server.admin("PATCH", "/v1/topics/pdf.processed", Some(json!({"example": {"mine": 1}}))).await;
    assert_eq!(own.body["example"], json!({"mine": 1}));
    let back = server.admin("PATCH", "/v1/topics/pdf.processed", Some(json!({"example": null}))).await;
    assert_eq!(back.body["example"], processed["example"]);

    let huge = json!({"text": "x".repeat(70_000)});
    let refused = server.admin("PATCH", "/v1/topics/quote.ready", Some(json!({"example": huge}))).await;
    assert_eq!((refused.status, refused.code()), (422, "invalid_example"), "{:?}", refused.body);
    let key = server.tenant("acme").await;
    let body = json!({"example": {"x": 1}}).to_string();
    let forbidden = server.call("PATCH", "/v1/topics/quote.ready", Some(&key), Some(&body)).await;
    assert_eq!(forbidden.status, 403, "{:?}", forbidden.body);
    let unchanged = topics(&server).await.into_iter().find(|topic| topic["name"] == "quote.ready").unwrap();
    assert_eq!(unchanged["example"], Value::Null);
}

#[tokio::test]
async fn a_deprecated_topic_refuses_new_subscriptions_but_existing_ones_keep_working() {
    let dir = TempDir::new("topics-deprecated");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let receiver = Receiver::start().await;
    let subscribed = server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed"]})).await;

    let patched = server.admin("PATCH", "/v1/topics/pdf.processed", Some(json!({"deprecated": true}))).await;
    assert_eq!((patched.status, &patched.body["deprecated"]), (200, &json!(true)), "{:?}", patched.body);
    let listed = topics(&server).await;
    let shown = listed.iter().find(|topic| topic["name"] == "pdf.processed").unwrap();
    assert_eq!(shown["deprecated"], true);

    let refused = server
        .admin("POST", "/v1/tenants/acme/endpoints", Some(json!({"url": receiver.url, "topics": ["pdf.processed"]})))
        .await;
    assert_eq!((refused.status, refused.code()), (422, "deprecated_topic"), "{:?}", refused.body);
    // An endpoint subscribed before may keep the topic while changing others.
    let path = format!("/v1/tenants/acme/endpoints/{}", subscribed["id"].as_str().unwrap());
    let kept = server.admin("PATCH", &path, Some(json!({"topics": ["pdf.processed", "pdf.failed"]}))).await;
    assert_eq!(kept.status, 200, "{:?}", kept.body);
    // But an endpoint not yet subscribed may not add it.
    let other = server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.failed"]})).await;
    let other_path = format!("/v1/tenants/acme/endpoints/{}", other["id"].as_str().unwrap());
    let added = server.admin("PATCH", &other_path, Some(json!({"topics": ["pdf.failed", "pdf.processed"]}))).await;
    assert_eq!((added.status, added.code()), (422, "deprecated_topic"), "{:?}", added.body);

    // Publishing to a deprecated topic still reaches existing subscribers.
    let event = server.publish("acme", "pdf.processed", r#"{"pdf_id":"pdf_9"}"#).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].header("hookline-event-id"), Some(event.as_str()));
    server.wait_for_deliveries("acme", &event, "succeeded", 1).await;
    assert_eq!(server.deliveries_of("acme", &event).await.len(), 1);

    // Un-deprecating opens it again.
    let restored = server.admin("PATCH", "/v1/topics/pdf.processed", Some(json!({"deprecated": false}))).await;
    assert_eq!(restored.body["deprecated"], false);
    server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed"]})).await;
}

#[tokio::test]
async fn endpoints_can_be_changed_and_deleted() {
    let dir = TempDir::new("endpoint-changes");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let (before, after) = (Receiver::start().await, Receiver::start().await);
    let created = server
        .endpoint(
            "acme",
            json!({"url": before.url, "topics": ["pdf.processed"], "description": "Ops", "retry_schedule": ["3m", "3m"]}),
        )
        .await;
    assert_eq!(created["description"], "Ops");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["format"], "envelope");
    let path = format!("/v1/tenants/acme/endpoints/{}", created["id"].as_str().unwrap());
    let change = json!({"url": after.url, "description": "Ops, moved", "signing": ["herald"], "secret": "sec_0123456789abcdefXYZ"});
    let patched = server.admin("PATCH", &path, Some(change)).await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["url"], after.url);
    assert_eq!(patched.body["signing"], json!(["herald"]));
    assert!(patched.body.get("secret").is_none(), "a change answers without the secret: {:?}", patched.body);
    let secret = server.admin("GET", &format!("{path}/secret"), None).await;
    assert_eq!(secret.body["secret"], "sec_0123456789abcdefXYZ");
    assert_eq!(patched.body["retry_schedule"], json!(["3m", "3m"]));
    let reset = server.admin("PATCH", &path, Some(json!({"retry_schedule": null}))).await;
    assert_eq!(reset.body["retry_schedule"], Value::Null);

    let event = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    let got = after.wait_for(1, Duration::from_secs(10)).await;
    let expected = hookline_verify::herald_signature("sec_0123456789abcdefXYZ", &got[0].body);
    assert_eq!(got[0].header("x-herald-signature"), Some(expected.as_str()));
    server.wait_for_deliveries("acme", &event, "succeeded", 1).await;
    assert!(before.requests().is_empty());

    assert_eq!(server.admin("DELETE", &path, None).await.status, 204);
    let gone = server.admin("GET", &path, None).await;
    assert_eq!((gone.status, gone.code()), (404, "not_found"));
    let accepted = server.publish_raw("acme", support::ADMIN_KEY, r#"{"topic":"pdf.processed","data":{}}"#, &[]).await;
    assert_eq!(accepted.body["endpoints"], 0);
    // The delivery log outlives the endpoint.
    assert_eq!(server.deliveries_of("acme", &event).await.len(), 1);
}

/// Follows `next_cursor` from `path` with `limit`, returning each page's ids.
async fn pages(server: &Hookline, path: &str, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{separator}limit={limit}");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page = server.admin("GET", &url, None).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let ids = page.body["data"].as_array().unwrap().iter().map(|item| item["id"].as_str().unwrap().to_owned());
        pages.push(ids.collect());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() <= 10, "pagination does not end: {pages:?}");
    }
}

fn assert_each_once(pages: &[Vec<String>], expected: &[String]) {
    let seen: Vec<&String> = pages.iter().flatten().collect();
    assert_eq!(seen.len(), expected.len(), "{pages:?}");
    assert_eq!(seen.into_iter().cloned().collect::<HashSet<_>>(), expected.iter().cloned().collect::<HashSet<_>>());
}

#[tokio::test]
async fn lists_follow_their_cursor_to_every_item_exactly_once() {
    let dir = TempDir::new("pagination");
    let server = Hookline::start(dir.path()).await;
    for tenant in ["acme", "beta", "gamma"] {
        server.tenant(tenant).await;
    }
    let receiver = Receiver::start().await;
    let mut endpoints = Vec::new();
    for index in 0..5 {
        let url = format!("{}/{index}", receiver.url);
        let created = server.endpoint("acme", json!({"url": url, "topics": ["pdf.processed"]})).await;
        endpoints.push(created["id"].as_str().unwrap().to_owned());
    }
    let endpoint_pages = pages(&server, "/v1/tenants/acme/endpoints", 2).await;
    assert_eq!(endpoint_pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_each_once(&endpoint_pages, &endpoints);

    let mut events = Vec::new();
    for index in 0..5 {
        events.push(server.publish("acme", "pdf.processed", &format!(r#"{{"n":{index}}}"#)).await);
    }
    assert_each_once(&pages(&server, "/v1/tenants/acme/events", 2).await, &events);
    assert_each_once(&pages(&server, "/v1/tenants/acme/events?topic=pdf.processed", 3).await, &events);
    receiver.wait_for(25, Duration::from_secs(10)).await;
    server.wait_for_none("acme", "pending", Duration::from_secs(10)).await;
    let deliveries: Vec<String> = server
        .all_deliveries("acme", None)
        .await
        .iter()
        .map(|delivery| delivery["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deliveries.len(), 25);
    assert_each_once(&pages(&server, "/v1/tenants/acme/deliveries", 4).await, &deliveries);
    let tenant_pages = pages(&server, "/v1/tenants", 2).await;
    assert_each_once(&tenant_pages, &["acme".to_owned(), "beta".to_owned(), "gamma".to_owned()]);
}

fn list_ids(answer: &support::Answer) -> Vec<String> {
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let items = answer.body["data"].as_array().unwrap_or_else(|| panic!("not a list: {:?}", answer.body));
    items.iter().map(|item| item["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn events_filter_by_topic_and_time_and_deliveries_by_endpoint() {
    let dir = TempDir::new("list-filters");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let (first, second) = (Receiver::start().await, Receiver::start().await);
    let first_endpoint = server.endpoint("acme", json!({"url": first.url, "topics": ["pdf.processed"]})).await;
    let second_endpoint =
        server.endpoint("acme", json!({"url": second.url, "topics": ["pdf.processed", "pdf.failed"]})).await;

    let early = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    let processed = server.publish("acme", "pdf.processed", r#"{"n":2}"#).await;
    let failed = server.publish("acme", "pdf.failed", r#"{"n":3}"#).await;

    let events = |query: String| {
        let server = &server;
        async move { list_ids(&server.admin("GET", &format!("/v1/tenants/acme/events{query}"), None).await) }
    };
    assert_eq!(events(String::new()).await, [failed.as_str(), processed.as_str(), early.as_str()], "newest first");
    assert_eq!(events("?topic=pdf.failed".into()).await, [failed.as_str()]);
    assert_eq!(events("?topic=pdf.processed".into()).await, [processed.as_str(), early.as_str()]);
    assert!(events("?topic=pdf.checks_passed".into()).await.is_empty());

    // `after` compares whole seconds: passing an event's `created` lists the events of later seconds, never that
    // event again nor another of its second. Whether the three events share a second or not, what each `after`
    // lists follows from their `created`, so the test need not wait for a second to pass.
    let listed = server.admin("GET", "/v1/tenants/acme/events", None).await;
    let created: Vec<(String, String)> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| (event["id"].as_str().unwrap().to_owned(), event["created"].as_str().unwrap().to_owned()))
        .collect();
    let second_of = |created: &str| Timestamp::parse_rfc3339(created).unwrap().unix_seconds();
    let after = |time: &str| time.replace('+', "%2B");
    for (id, time) in &created {
        let later: Vec<&str> = created
            .iter()
            .filter(|(_, other)| second_of(other) > second_of(time))
            .map(|(other, _)| other.as_str())
            .collect();
        assert_eq!(events(format!("?after={}", after(time))).await, later, "after {time}, the created of {id}");
    }
    // A second before the first event's, every event is of a later second.
    let (_, early_created) = created.iter().find(|(id, _)| *id == early).unwrap();
    let second_before = Timestamp::from_unix_millis((second_of(early_created) - 1) * 1000);
    let before = after(&second_before.to_rfc3339());
    assert_eq!(events(format!("?after={before}")).await, [failed.as_str(), processed.as_str(), early.as_str()]);
    assert_eq!(events(format!("?after={before}&topic=pdf.processed")).await, [processed.as_str(), early.as_str()]);
    assert_eq!(events(format!("?after={before}&limit=1")).await, [failed.as_str()]);
    let future = Timestamp::now().saturating_add(Duration::from_secs(3600));
    assert!(events(format!("?after={}", after(&future.to_rfc3339()))).await.is_empty());

    // Deliveries of one endpoint: the first got the two pdf.processed events, the second all three.
    first.wait_for(2, Duration::from_secs(10)).await;
    second.wait_for(3, Duration::from_secs(10)).await;
    server.wait_for_none("acme", "pending", Duration::from_secs(10)).await;
    let deliveries = |query: String| {
        let server = &server;
        async move {
            let answer = server.admin("GET", &format!("/v1/tenants/acme/deliveries{query}"), None).await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
            answer.body["data"].as_array().unwrap().clone()
        }
    };
    for (endpoint, expected) in [(&first_endpoint, 2), (&second_endpoint, 3)] {
        let id = endpoint["id"].as_str().unwrap();
        let found = deliveries(format!("?endpoint={id}")).await;
        assert_eq!(found.len(), expected, "{found:?}");
        assert!(found.iter().all(|delivery| delivery["endpoint"] == id), "{found:?}");
    }
    let id = second_endpoint["id"].as_str().unwrap();
    let found = deliveries(format!("?endpoint={id}&event={failed}&status=succeeded")).await;
    assert_eq!((found.len(), &found[0]["event"]), (1, &json!(failed)), "{found:?}");
    assert!(deliveries(format!("?endpoint={id}&status=failed")).await.is_empty());
    let unknown = deliveries("?endpoint=ep_00000000000000000000000000".into()).await;
    assert!(unknown.is_empty(), "{unknown:?}");
    // By topic, by the class of the last answer, and by when they were made.
    let pdfs = deliveries("?topic=pdf.processed".into()).await;
    assert!(pdfs.len() == 4 && pdfs.iter().all(|delivery| delivery["topic"] == "pdf.processed"), "{pdfs:?}");
    assert_eq!(deliveries("?answer=2xx".into()).await.len(), 5);
    assert!(deliveries("?answer=5xx".into()).await.is_empty());
    assert_eq!(deliveries(format!("?since={before}")).await.len(), 5);
    assert!(deliveries(format!("?until={before}")).await.is_empty());
    assert!(deliveries(format!("?since={}", after(&future.to_rfc3339()))).await.is_empty());
}

#[tokio::test]
async fn deleting_a_tenant_removes_everything_it_owns() {
    let dir = TempDir::new("tenant-delete");
    let env = [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_PURGE_INTERVAL", "50ms")];
    let server = Hookline::start_with(dir.path(), &env).await;
    server.tenant("acme").await;
    server.tenant("globex").await;
    let receiver = Receiver::start().await;
    server.endpoint("acme", json!({"url": receiver.url, "topics": ["pdf.processed"]})).await;
    server.endpoint("globex", json!({"url": receiver.url, "topics": ["pdf.processed"]})).await;
    let event = server.publish("acme", "pdf.processed", r#"{"n":1}"#).await;
    server.wait_for_deliveries("acme", &event, "succeeded", 1).await;

    let shown = server.admin("GET", "/v1/tenants/acme", None).await;
    assert_eq!((shown.status, &shown.body["id"]), (200, &json!("acme")), "{:?}", shown.body);
    assert_eq!(server.admin("DELETE", "/v1/tenants/acme", None).await.status, 204);
    // Gone from the API at once; its rows are removed in the background.
    for path in ["/v1/tenants/acme/endpoints", "/v1/tenants/acme/events"] {
        let gone = server.admin("GET", path, None).await;
        assert_eq!((gone.status, gone.code()), (404, "tenant_not_found"), "{path}: {:?}", gone.body);
    }
    let again = server.admin("DELETE", "/v1/tenants/acme", None).await;
    assert_eq!((again.status, again.code()), (404, "tenant_not_found"));
    let listed = server.admin("GET", "/v1/tenants", None).await;
    assert_eq!(list_ids(&listed), ["globex"]);
    // The operator can watch the removal: the tenant is being deleted until nothing of it is left.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let shown = server.admin("GET", "/v1/tenants/acme", None).await;
        assert_eq!(shown.status, 404, "{:?}", shown.body);
        match shown.code() {
            "tenant_not_found" => break,
            "being_deleted" => {}
            other => panic!("unexpected {other}: {:?}", shown.body),
        }
        assert!(tokio::time::Instant::now() < deadline, "the tenant's rows were not removed in 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A tenant made again with the same id starts empty: nothing of the old one comes back.
    server.tenant("acme").await;
    for kind in ["endpoints", "events", "deliveries"] {
        let page = server.admin("GET", &format!("/v1/tenants/acme/{kind}"), None).await;
        assert!(list_ids(&page).is_empty(), "{kind}: {:?}", page.body);
    }
    let old = server.admin("GET", &format!("/v1/tenants/acme/events/{event}"), None).await;
    assert_eq!((old.status, old.code()), (404, "not_found"));
    let accepted = server.publish_raw("acme", support::ADMIN_KEY, r#"{"topic":"pdf.processed","data":{}}"#, &[]).await;
    assert_eq!((accepted.status, &accepted.body["endpoints"]), (202, &json!(0)), "{:?}", accepted.body);
    // The other tenant is untouched.
    let globex = server.admin("GET", "/v1/tenants/globex/endpoints", None).await;
    assert_eq!(list_ids(&globex).len(), 1);
}

/// `text` with what differs from run to run written as a placeholder: `<time>` for a time with milliseconds,
/// `<seconds>` for one in whole seconds, `<evt>`, `<ep>`, `<del>` and `<key>` for ids, `<secret>` for endpoint
/// secrets and API keys. Everything else is kept byte for byte.
fn placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let mut end = 0;
        let bytes = after.as_bytes();
        while bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        let content = &after[..end];
        out.push('"');
        out.push_str(&placeholder(content).unwrap_or_else(|| content.to_owned()));
        out.push('"');
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn placeholder(content: &str) -> Option<String> {
    let shape: String = content.chars().map(|char| if char.is_ascii_digit() { '0' } else { char }).collect();
    match shape.as_str() {
        "0000-00-00T00:00:00.000+00:00" => return Some("<time>".to_owned()),
        "0000-00-00T00:00:00+00:00" => return Some("<seconds>".to_owned()),
        _ => {}
    }
    for prefix in ["evt", "ep", "del", "key"] {
        if let Some(body) = content.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('_'))
            && body.len() == 26
            && body.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
        {
            return Some(format!("<{prefix}>"));
        }
    }
    ["sec_", "whsec_", "hk_"].iter().any(|prefix| content.starts_with(prefix)).then(|| "<secret>".to_owned())
}

/// Checks that `answer` has `status` and a body that is `expected` once run-dependent values are placeholders.
fn check(answer: &support::Answer, status: u16, expected: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(placeholders(&answer.text), expected, "as sent: {}", answer.text);
}

/// The keys of a JSON object, in the order the server wrote them.
fn keys(object: &Value) -> Vec<&str> {
    object.as_object().unwrap_or_else(|| panic!("not an object: {object}")).keys().map(String::as_str).collect()
}

#[tokio::test]
async fn every_answer_keeps_its_exact_json() {
    let dir = TempDir::new("wire-format");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;

    let tenant = r#"{"id":"acme","name":"Acme","created":"<time>"}"#;
    check(&server.admin("POST", "/v1/tenants", Some(json!({"id": "acme", "name": "Acme"}))).await, 201, tenant);
    check(&server.admin("GET", "/v1/tenants/acme", None).await, 200, tenant);
    check(
        &server.admin("GET", "/v1/tenants", None).await,
        200,
        &format!(r#"{{"data":[{tenant}],"next_cursor":null}}"#),
    );
    let key = server.admin("POST", "/v1/tenants/acme/keys", Some(json!({"name": "ci"}))).await;
    check(&key, 201, r#"{"id":"<key>","tenant":"acme","name":"ci","created":"<time>","key":"<secret>"}"#);

    let topic =
        server.admin("POST", "/v1/topics", Some(json!({"name": "quote.ready", "description": "A quote"}))).await;
    check(
        &topic,
        201,
        r#"{"name":"quote.ready","description":"A quote","deprecated":false,"created":"<time>","example":null,"template":null}"#,
    );
    let deprecated = server.admin("PATCH", "/v1/topics/quote.ready", Some(json!({"deprecated": true}))).await;
    check(
        &deprecated,
        200,
        r#"{"name":"quote.ready","description":"A quote","deprecated":true,"created":"<time>","example":null,"template":null}"#,
    );
    let catalogue = placeholders(&server.admin("GET", "/v1/topics", None).await.text);
    assert!(catalogue.starts_with(r#"{"data":[{"name":""#) && catalogue.ends_with(r#"}],"next_cursor":null}"#));
    assert!(catalogue.contains(r#"{"name":"quote.ready","description":"A quote","deprecated":true,"#), "{catalogue}");

    let url = &receiver.url;
    let body = json!({"url": url, "topics": ["pdf.processed"], "description": "Ops", "format": "data",
        "signing": ["heron", "standard"], "retry_schedule": ["3m", "1h30m"]});
    let created = server.admin("POST", "/v1/tenants/acme/endpoints", Some(body)).await;
    let endpoint = format!(
        r#"{{"id":"<ep>","tenant":"acme","url":"{url}","topics":["pdf.processed"],"description":"Ops","enabled":true,"format":"data","signing":["heron","standard"],"retry_schedule":["3m","1h30m"],"headers":{{}},"health":{{"state":"healthy"}},"created":"<time>","updated":"<time>""#
    );
    check(&created, 201, &format!(r#"{endpoint},"secret":"<secret>"}}"#));
    let endpoint_id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/tenants/acme/endpoints/{endpoint_id}");
    check(&server.admin("GET", &path, None).await, 200, &format!("{endpoint}}}"));
    check(&server.admin("GET", &format!("{path}/secret"), None).await, 200, r#"{"secret":"<secret>","previous":null}"#);
    let rotated = server.admin("POST", &format!("{path}/secret/rotate"), None).await;
    check(&rotated, 200, r#"{"secret":"<secret>","previous":{"secret":"<secret>","expires_at":"<time>"}}"#);
    let listed = server.admin("GET", "/v1/tenants/acme/endpoints", None).await;
    check(&listed, 200, &format!(r#"{{"data":[{endpoint}}}],"next_cursor":null}}"#));
    let patched = server.admin("PATCH", &path, Some(json!({"retry_schedule": null}))).await;
    let reset = endpoint.replace(r#""retry_schedule":["3m","1h30m"]"#, r#""retry_schedule":null"#);
    check(&patched, 200, &format!("{reset}}}"));

    // Data and meta come back exactly as published: key order, number literals and non-ASCII text.
    let events = "/v1/tenants/acme/events";
    let published = r#"{"topic":"pdf.processed","data":{"b":1,"a":2.50,"s":"café"},"meta":{"m":1e2}}"#;
    let idempotent = [("idempotency-key", "k1".to_owned())];
    let accepted = server.call_with("POST", events, Some(support::ADMIN_KEY), Some(published), &idempotent).await;
    check(&accepted, 202, r#"{"id":"<evt>","topic":"pdf.processed","created":"<seconds>","endpoints":1}"#);
    let event = accepted.body["id"].as_str().unwrap().to_owned();
    let shown = server.admin("GET", &format!("{events}/{event}"), None).await;
    check(
        &shown,
        200,
        r#"{"id":"<evt>","tenant":"acme","topic":"pdf.processed","created":"<time>","data":{"b":1,"a":2.50,"s":"café"},"meta":{"m":1e2},"idempotency_key":"k1"}"#,
    );
    let bare = server.publish("acme", "pdf.failed", "[1]").await;
    let page = server.admin("GET", &format!("{events}?topic=pdf.failed"), None).await;
    check(
        &page,
        200,
        r#"{"data":[{"id":"<evt>","tenant":"acme","topic":"pdf.failed","created":"<time>","data":[1],"meta":null,"idempotency_key":null}],"next_cursor":null}"#,
    );
    assert_eq!(page.body["data"][0]["id"], bare);

    let settled = server.wait_for_deliveries("acme", &event, "succeeded", 1).await;
    let delivery_id = settled["data"][0]["id"].as_str().unwrap().to_owned();
    let delivery = r#"{"id":"<del>","tenant":"acme","event":"<evt>","endpoint":"<ep>","topic":"pdf.processed","format":"data","status":"succeeded","attempts":1,"next_attempt":null,"last_status":200,"last_error":null,"created":"<time>","updated":"<time>","origin":"publish""#;
    let listed = server.admin("GET", &format!("/v1/tenants/acme/deliveries?event={event}"), None).await;
    check(&listed, 200, &format!(r#"{{"data":[{delivery}}}],"next_cursor":null}}"#));
    let detail = server.admin("GET", &format!("/v1/tenants/acme/deliveries/{delivery_id}"), None).await;
    let request_body = r#""request_body":"{\"b\":1,\"a\":2.50,\"s\":\"caf\\u00e9\"}""#;
    let text = placeholders(&detail.text);
    assert!(
        text.starts_with(&format!(r#"{delivery},{request_body},"attempts":[{{"number":1,"started":"<time>","#)),
        "{text}"
    );
    let attempt = &detail.body["attempts"][0];
    assert_eq!(
        keys(attempt),
        [
            "number",
            "started",
            "duration_ms",
            "url",
            "request_headers",
            "response_status",
            "response_headers",
            "response_headers_omitted",
            "response_body",
            "error",
            "error_detail",
            "cause"
        ]
    );
    assert_eq!(attempt["cause"], "schedule");
    assert!(attempt["duration_ms"].is_u64() && attempt["url"] == url.as_str(), "{attempt}");
    let pairs = |headers: &Value| headers.as_array().unwrap().iter().all(|pair| pair.as_array().unwrap().len() == 2);
    assert!(pairs(&attempt["request_headers"]) && pairs(&attempt["response_headers"]), "{attempt}");
    assert_eq!(
        (
            &attempt["response_status"],
            &attempt["response_headers_omitted"],
            &attempt["error"],
            &attempt["error_detail"]
        ),
        (&json!(200), &json!(0), &Value::Null, &Value::Null)
    );
    assert!(text.ends_with(r#"}]}"#), "{text}");

    let retried = server.admin("POST", &format!("/v1/tenants/acme/deliveries/{delivery_id}/retry"), None).await;
    let pending = delivery
        .replace(r#""status":"succeeded""#, r#""status":"pending""#)
        .replace(r#""next_attempt":null"#, r#""next_attempt":"<time>""#);
    check(&retried, 202, &format!("{pending}}}"));

    check(&server.call("GET", "/healthz", None, None).await, 200, r#"{"status":"ok"}"#);
    check(&server.call("GET", "/readyz", None, None).await, 200, r#"{"status":"ready"}"#);
    let unknown = server.admin("GET", "/v1/tenants/acme/endpoints/ep_00000000000000000000000000", None).await;
    check(
        &unknown,
        404,
        r#"{"status":404,"code":"not_found","title":"Not Found","detail":"endpoint \"ep_00000000000000000000000000\" does not exist"}"#,
    );
}
