//! The portal's way in, over HTTP against a real `hookline serve`: the platform mints a single-use link, its token
//! starts a session whose cookie shows the tenant's webhooks and nobody else's; a used, unknown or expired link,
//! a form from another origin or without its CSRF token, and a revoked session are refused. (What a browser does
//! with the pages is in `portal_browser.rs`.)

mod support;

use serde_json::{Value, json};
use support::{Answer, Hookline, Receiver, TempDir};

/// The token in a portal link's fragment.
fn token_of(link: &Answer) -> String {
    let url = link.body["url"].as_str().unwrap_or_else(|| panic!("no url: {}", link.text));
    url.split_once("#token=").unwrap_or_else(|| panic!("no token in the fragment: {url}")).1.to_owned()
}

#[tokio::test]
async fn a_link_starts_one_session_that_sees_its_tenant_alone() {
    let dir = TempDir::new("portal-links");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;
    let acme_key = server.tenant("acme").await;
    server.tenant("globex").await;
    server.endpoint("acme", json!({"url": format!("{}/acme-hook", receiver.url), "topics": ["pdf.processed"]})).await;
    server
        .endpoint("globex", json!({"url": format!("{}/globex-hook", receiver.url), "topics": ["pdf.processed"]}))
        .await;
    let origin = server.url.clone();

    let link = server.admin("POST", "/v1/tenants/acme/portal-links", Some(json!({"user": "ada@acme.example"}))).await;
    assert_eq!(link.status, 201, "{}", link.text);
    assert!(link.body["url"].as_str().unwrap().starts_with(&format!("{}/portal/#token=hpl_", server.url)));
    assert!(!link.body["url"].as_str().unwrap().contains('?'), "the token is never in the query");
    let token = token_of(&link);

    // The landing page has no token of its own to see: it asks the script to post the fragment's.
    let landing = server.call("GET", "/portal/", None, None).await;
    assert_eq!(landing.status, 200);
    assert!(landing.text.contains(r#"data-portal-state="signing-in""#), "{}", landing.text);
    let policy = landing.header("content-security-policy").unwrap();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(!landing.text.contains("<script>"), "no inline script");

    // From another origin, or with none, the link is not even tried (and so still works after).
    let elsewhere = server.form("/portal/session", &format!("token={token}"), None, Some("https://evil.example")).await;
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.text);
    assert_eq!(server.form("/portal/session", &format!("token={token}"), None, None).await.status, 403);
    let signed_in = server.form("/portal/session", &format!("token={token}"), None, Some(&origin)).await;
    assert_eq!((signed_in.status, signed_in.header("location")), (303, Some("/portal/webhooks")), "{}", signed_in.text);
    let set = signed_in.header("set-cookie").unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/portal"), "{set}");
    let cookie = signed_in.cookie();
    let again = server.form("/portal/session", &format!("token={token}"), None, Some(&origin)).await;
    assert_eq!(again.status, 401, "a link works once");
    assert!(again.text.contains("This link no longer works"), "{}", again.text);
    let unknown = server.form("/portal/session", "token=hpl_nothing", None, Some(&origin)).await;
    assert_eq!(unknown.status, 401);

    // The session shows acme's webhooks and nothing of globex.
    let webhooks = server.page("/portal/webhooks", &cookie).await;
    assert_eq!(webhooks.status, 200, "{}", webhooks.text);
    assert!(webhooks.text.contains("/acme-hook") && webhooks.text.contains("healthy"), "{}", webhooks.text);
    assert!(webhooks.text.contains("ada@acme.example"));
    let catalogue = server.page("/portal/catalogue", &cookie).await;
    assert_eq!(catalogue.status, 200);
    assert!(
        catalogue.text.contains(r#"data-topic="pdf.processed""#) && catalogue.text.contains("&#34;end_user_id&#34;"),
        "{}",
        catalogue.text
    );
    assert!(catalogue.text.contains("deprecated: no new subscriptions"));
    assert!(!webhooks.text.contains("globex"), "{}", webhooks.text);
    let none = server.call("GET", "/portal/webhooks", None, None).await;
    assert_eq!((none.status, none.header("location")), (303, Some("/portal/signed-out")));

    // Its tenant lists it, another tenant's key does not see it, and revoking it signs it out at its next request.
    let sessions = server.call("GET", "/v1/tenants/acme/portal-sessions", Some(&acme_key), None).await;
    assert_eq!(sessions.body["data"].as_array().unwrap().len(), 1, "{}", sessions.text);
    assert_eq!(sessions.body["data"][0]["user"], "ada@acme.example");
    assert!(!sessions.text.contains(&cookie["hookline_portal=".len()..]), "never the token");
    let id = sessions.body["data"][0]["id"].as_str().unwrap().to_owned();
    let globex_key =
        server.admin("POST", "/v1/tenants/globex/keys", None).await.body["key"].as_str().unwrap().to_owned();
    let elsewhere =
        server.call("DELETE", &format!("/v1/tenants/globex/portal-sessions/{id}"), Some(&globex_key), None).await;
    assert_eq!(elsewhere.status, 404, "{}", elsewhere.text);
    assert_eq!(server.page("/portal/webhooks", &cookie).await.status, 200, "globex revoked nothing");
    let revoked = server.call("DELETE", &format!("/v1/tenants/acme/portal-sessions/{id}"), Some(&acme_key), None).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    let after = server.page("/portal/webhooks", &cookie).await;
    assert_eq!((after.status, after.header("location")), (303, Some("/portal/signed-out")));
    let signed_out = server.call("GET", "/portal/signed-out", None, None).await;
    assert!(signed_out.text.contains(r#"data-portal-state="signed-out""#), "{}", signed_out.text);
}

#[tokio::test]
async fn sign_out_needs_the_sessions_csrf_token_and_the_portals_origin() {
    let dir = TempDir::new("portal-csrf");
    let server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let origin = server.url.clone();
    let token = token_of(&server.admin("POST", "/v1/tenants/acme/portal-links", None).await);
    let cookie = server.form("/portal/session", &format!("token={token}"), None, Some(&origin)).await.cookie();
    let webhooks = server.page("/portal/webhooks", &cookie).await;
    assert!(webhooks.text.contains("No webhooks yet"), "an empty state says what to do: {}", webhooks.text);
    let csrf = webhooks.text.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert!(csrf.len() >= 32, "{csrf}");

    for (body, from) in [
        ("csrf=".to_owned(), Some(origin.as_str())),
        ("csrf=wrong".to_owned(), Some(origin.as_str())),
        (format!("csrf={csrf}"), Some("https://evil.example")),
        (format!("csrf={csrf}"), None),
    ] {
        let refused = server.form("/portal/sign-out", &body, Some(&cookie), from).await;
        assert_eq!(refused.status, 403, "{body} from {from:?}: {}", refused.text);
    }
    assert_eq!(server.page("/portal/webhooks", &cookie).await.status, 200, "still signed in");
    let out = server.form("/portal/sign-out", &format!("csrf={csrf}"), Some(&cookie), Some(&origin)).await;
    assert_eq!((out.status, out.header("location")), (303, Some("/portal/signed-out")));
    assert_eq!(server.page("/portal/webhooks", &cookie).await.status, 303);
}

#[tokio::test]
async fn links_are_for_the_operator_and_their_requests_are_checked() {
    let dir = TempDir::new("portal-link-errors");
    let server = Hookline::start(dir.path()).await;
    let key = server.tenant("acme").await;
    let tenant_made = server.call("POST", "/v1/tenants/acme/portal-links", Some(&key), Some("{}")).await;
    assert_eq!((tenant_made.status, tenant_made.code()), (403, "forbidden"), "the platform's backend mints links");
    for (body, status, code) in [
        (json!({"capabilities": ["admin"]}), 422, "invalid_capability"),
        (json!({"ttl": "2h"}), 422, "invalid_ttl"),
        (json!({"ttl": "0s"}), 422, "invalid_ttl"),
        (json!({"ttl": "soon"}), 422, "invalid_ttl"),
        (json!({"user": "x".repeat(300)}), 422, "invalid_user"),
        (json!({"user": "a\nb"}), 422, "invalid_user"),
        (json!({"extra": true}), 400, "invalid_field"),
    ] {
        let answer = server.admin("POST", "/v1/tenants/acme/portal-links", Some(body.clone())).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{body}: {}", answer.text);
    }
    let unknown = server.admin("POST", "/v1/tenants/nobody/portal-links", None).await;
    assert_eq!((unknown.status, unknown.code()), (404, "tenant_not_found"));
    let narrowed = server
        .admin("POST", "/v1/tenants/acme/portal-links", Some(json!({"capabilities": ["retry"], "ttl": "10m"})))
        .await;
    assert_eq!(narrowed.status, 201, "{}", narrowed.text);
    let expires = hookline_core::time::Timestamp::parse_rfc3339(narrowed.body["expires_at"].as_str().unwrap()).unwrap();
    let expected = hookline_core::time::Timestamp::now().saturating_add(std::time::Duration::from_secs(600));
    assert!(expires.unix_seconds().abs_diff(expected.unix_seconds()) < 30, "{}", narrowed.text);
    let token = token_of(&narrowed);
    let origin = server.url.clone();
    server.form("/portal/session", &format!("token={token}"), None, Some(&origin)).await;
    let sessions = server.admin("GET", "/v1/tenants/acme/portal-sessions", None).await;
    assert_eq!(sessions.body["data"][0]["capabilities"], json!(["read", "retry"]));
    assert_eq!(sessions.body["data"][0]["user"], Value::Null);
    let missing = server.admin("DELETE", "/v1/tenants/acme/portal-sessions/ps_00000000000000000000000000", None).await;
    assert_eq!(missing.status, 404);
}

/// Signs in to `tenant`'s portal with a link of `capabilities` (all when `None`): the session cookie and the CSRF
/// token its forms carry.
async fn sign_in(server: &Hookline, tenant: &str, capabilities: Option<Value>) -> (String, String) {
    let body = capabilities.map(|capabilities| json!({"capabilities": capabilities}));
    let token = token_of(&server.admin("POST", &format!("/v1/tenants/{tenant}/portal-links"), body).await);
    let origin = server.url.clone();
    let cookie = server.form("/portal/session", &format!("token={token}"), None, Some(&origin)).await.cookie();
    let webhooks = server.page("/portal/webhooks", &cookie).await;
    let csrf = webhooks.text.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn a_session_reaches_nothing_of_another_tenant_and_nothing_beyond_its_capabilities() {
    let dir = TempDir::new("portal-hostile");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;
    server.tenant("acme").await;
    server.tenant("globex").await;
    let endpoint =
        server.endpoint("acme", json!({"url": format!("{}/acme", receiver.url), "topics": ["pdf.processed"]})).await;
    let endpoint = endpoint["id"].as_str().unwrap().to_owned();
    let event = server.publish("acme", "pdf.processed", "{}").await;
    let delivery =
        server.wait_for_deliveries("acme", &event, "succeeded", 1).await["data"][0]["id"].as_str().unwrap().to_owned();
    let origin = server.url.clone();

    // Globex's session, however it edits the URL, finds none of acme's things and changes nothing.
    let (globex, globex_csrf) = sign_in(&server, "globex", None).await;
    for path in [
        format!("/portal/webhooks/{endpoint}"),
        format!("/portal/deliveries/{delivery}"),
        "/portal/webhooks/ep_not_an_id".to_owned(),
        "/portal/deliveries/../webhooks".to_owned(),
    ] {
        let answer = server.page(&path, &globex).await;
        assert!(matches!(answer.status, 404), "{path}: {} {}", answer.status, answer.text);
        assert!(!answer.text.contains("/acme"), "{path} leaked acme's URL");
    }
    for (path, body) in [
        (format!("/portal/webhooks/{endpoint}/test"), "topic=pdf.processed".to_owned()),
        (format!("/portal/webhooks/{endpoint}/enabled"), "enabled=false".to_owned()),
        (format!("/portal/webhooks/{endpoint}/secret"), String::new()),
        (format!("/portal/webhooks/{endpoint}/secret/rotate"), "grace=0s".to_owned()),
        (format!("/portal/deliveries/{delivery}/retry"), String::new()),
    ] {
        let answer = server.form(&path, &format!("csrf={globex_csrf}&{body}"), Some(&globex), Some(&origin)).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.text);
        assert!(!answer.text.contains("whsec_"), "{path} leaked a secret");
    }
    for query in [String::new(), format!("?endpoint={endpoint}"), format!("?event={event}")] {
        let listed = server.page(&format!("/portal/deliveries{query}"), &globex).await;
        assert_eq!(listed.status, 200, "{query}: {}", listed.text);
        assert!(!listed.text.contains(&delivery) && listed.text.contains("No deliveries match"), "{query}");
    }
    let acme_endpoint = server.admin("GET", &format!("/v1/tenants/acme/endpoints/{endpoint}"), None).await;
    assert_eq!(acme_endpoint.body["enabled"], true);
    assert_eq!(server.all_deliveries("acme", None).await.len(), 1, "no test event, no retry");

    // A read-only session of acme sees its webhooks but can add, test, reveal and retry nothing.
    let (reader, reader_csrf) = sign_in(&server, "acme", Some(json!([]))).await;
    let webhooks = server.page("/portal/webhooks", &reader).await;
    assert!(webhooks.text.contains("/acme") && !webhooks.text.contains("Add webhook"), "{}", webhooks.text);
    // Its deliveries, filtered by status, webhook and event; a malformed filter is said and ignored.
    let listed = server.page("/portal/deliveries", &reader).await;
    assert!(listed.text.contains(&delivery) && listed.text.contains("/acme"), "{}", listed.text);
    for (query, shown) in [
        ("?status=succeeded".to_owned(), true),
        ("?status=failed".to_owned(), false),
        (format!("?endpoint={endpoint}&status=succeeded"), true),
        (format!("?event={event}"), true),
        ("?event=evt_00000000000000000000000000".to_owned(), false),
    ] {
        let listed = server.page(&format!("/portal/deliveries{query}"), &reader).await;
        assert_eq!(listed.text.contains(&delivery), shown, "{query}: {}", listed.text);
    }
    let malformed = server.page("/portal/deliveries?event=nonsense&status=lost", &reader).await;
    assert_eq!(malformed.status, 200);
    assert!(malformed.text.contains(r#"id="filter-error""#), "{}", malformed.text);
    assert!(malformed.text.contains("evt_") && malformed.text.contains(&delivery), "{}", malformed.text);
    let shown = server.page(&format!("/portal/webhooks/{endpoint}"), &reader).await;
    assert!(!shown.text.contains("Reveal secret") && !shown.text.contains("Send test event"), "{}", shown.text);
    assert_eq!(server.page("/portal/webhooks/new", &reader).await.status, 403);
    let create = format!("csrf={reader_csrf}&url=https%3A%2F%2Fexample.com%2Fh&topics=pdf.processed");
    for (path, body) in [
        ("/portal/webhooks/new".to_owned(), create),
        (format!("/portal/webhooks/{endpoint}/test"), format!("csrf={reader_csrf}&topic=pdf.processed")),
        (format!("/portal/webhooks/{endpoint}/secret"), format!("csrf={reader_csrf}")),
        (format!("/portal/deliveries/{delivery}/retry"), format!("csrf={reader_csrf}")),
    ] {
        let answer = server.form(&path, &body, Some(&reader), Some(&origin)).await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.text);
        assert!(!answer.text.contains("whsec_"));
    }
    assert_eq!(server.admin("GET", "/v1/tenants/acme/endpoints", None).await.body["data"].as_array().unwrap().len(), 1);

    // Deleting needs the capability, a ticked box, and the tenant's own endpoint.
    let delete = format!("/portal/webhooks/{endpoint}/delete");
    let refused = server.form(&delete, &format!("csrf={reader_csrf}&confirm=yes"), Some(&reader), Some(&origin)).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let refused = server.form(&delete, &format!("csrf={globex_csrf}&confirm=yes"), Some(&globex), Some(&origin)).await;
    assert_eq!(refused.status, 404, "{}", refused.text);

    // A full session's forms still need their CSRF token.
    let (full, _) = sign_in(&server, "acme", None).await;
    let forged = server
        .form(
            "/portal/webhooks/new",
            "url=https%3A%2F%2Fexample.com%2Fh&topics=pdf.processed",
            Some(&full),
            Some(&origin),
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    assert_eq!(server.admin("GET", "/v1/tenants/acme/endpoints", None).await.body["data"].as_array().unwrap().len(), 1);
    let (full, full_csrf) = sign_in(&server, "acme", None).await;
    let unticked = server.form(&delete, &format!("csrf={full_csrf}"), Some(&full), Some(&origin)).await;
    assert_eq!(unticked.status, 422, "{}", unticked.text);
    let deleted = server.form(&delete, &format!("csrf={full_csrf}&confirm=yes"), Some(&full), Some(&origin)).await;
    assert_eq!((deleted.status, deleted.header("location")), (303, Some("/portal/webhooks")), "{}", deleted.text);
    assert_eq!(server.admin("GET", "/v1/tenants/acme/endpoints", None).await.body["data"], json!([]));
    let log = server.page(&format!("/portal/deliveries/{delivery}"), &full).await;
    assert_eq!(log.status, 200, "the delivery log stays readable: {}", log.text);
}

#[tokio::test]
async fn recover_sends_again_what_failed_and_needs_the_retry_capability() {
    let dir = TempDir::new("portal-recover");
    let env = [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_PURGE_INTERVAL", "100ms")];
    let server = Hookline::start_with(dir.path(), &env).await;
    let receiver = Receiver::start().await;
    receiver.answer(support::Reply::status(503));
    server.tenant("acme").await;
    let body = json!({"url": format!("{}/hook", receiver.url), "topics": ["pdf.processed"], "retry_schedule": []});
    let endpoint = server.endpoint("acme", body).await["id"].as_str().unwrap().to_owned();
    let event = server.publish("acme", "pdf.processed", "{}").await;
    server.wait_for_deliveries("acme", &event, "failed", 1).await;
    let origin = server.url.clone();
    let path = format!("/portal/webhooks/{endpoint}/recover");

    let (reader, reader_csrf) = sign_in(&server, "acme", Some(json!([]))).await;
    let refused = server.form(&path, &format!("csrf={reader_csrf}&since=24h"), Some(&reader), Some(&origin)).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let (full, csrf) = sign_in(&server, "acme", None).await;
    let bad = server.form(&path, &format!("csrf={csrf}&since=forever"), Some(&full), Some(&origin)).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    receiver.answer(support::Reply::status(200));
    let recovered = server.form(&path, &format!("csrf={csrf}&since=24h"), Some(&full), Some(&origin)).await;
    assert_eq!(recovered.status, 200, "{}", recovered.text);
    assert!(recovered.text.contains("1 failed delivery is being sent again."), "{}", recovered.text);
    server.wait_for_deliveries("acme", &event, "succeeded", 1).await;

    // The endpoint's overview and the list's sparkline count the failure and the success (on PostgreSQL the
    // counts are written just after the attempts).
    let shown = support::poll(std::time::Duration::from_secs(10), async || {
        let shown = server.page(&format!("/portal/webhooks/{endpoint}"), &full).await;
        if shown.text.contains(r#"<dd data-rate="day">50%</dd>"#) { Ok(shown) } else { Err(shown.text) }
    })
    .await;
    assert!(shown.text.contains(r#"aria-label="Last 24 hours: 1 succeeded, 1 failed""#), "{}", shown.text);
    assert!(shown.text.contains(r#"aria-label="Last 7 days: 1 succeeded, 1 failed""#), "{}", shown.text);
    assert_eq!(shown.text.matches(r#"<rect class="failed""#).count(), 2, "a failed bar a chart");
    let list = server.page("/portal/webhooks", &full).await;
    assert!(list.text.contains(r#"<svg class="spark""#), "{}", list.text);
    assert!(list.text.contains(r#"aria-label="Last 24 hours: 1 succeeded, 1 failed""#), "{}", list.text);
    assert!(!list.text.contains("never"), "its last attempt is shown: {}", list.text);
}

#[tokio::test]
async fn a_tenant_key_signs_in_at_the_portal_and_other_keys_do_not() {
    let dir = TempDir::new("portal-key");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;
    let key = server.tenant("acme").await;
    server.endpoint("acme", json!({"url": format!("{}/acme-hook", receiver.url), "topics": ["pdf.processed"]})).await;
    let origin = server.url.clone();
    let landing = server.call("GET", "/portal/", None, None).await;
    assert!(landing.text.contains(r#"action="/portal/sign-in""#), "{}", landing.text);

    for wrong in ["hk_not_a_key".to_owned(), support::ADMIN_KEY.to_owned(), String::new()] {
        let refused = server.form("/portal/sign-in", &format!("key={wrong}"), None, Some(&origin)).await;
        assert_eq!(refused.status, 401, "{wrong:?}: {}", refused.text);
        assert!(refused.text.contains("That key does not open a portal") && refused.header("set-cookie").is_none());
    }
    let elsewhere = server.form("/portal/sign-in", &format!("key={key}"), None, Some("https://evil.example")).await;
    assert_eq!(elsewhere.status, 403);
    let signed_in = server.form("/portal/sign-in", &format!("key={key}"), None, Some(&origin)).await;
    assert_eq!((signed_in.status, signed_in.header("location")), (303, Some("/portal/webhooks")), "{}", signed_in.text);
    let webhooks = server.page("/portal/webhooks", &signed_in.cookie()).await;
    assert!(webhooks.text.contains("/acme-hook") && webhooks.text.contains("Add webhook"), "{}", webhooks.text);
    assert!(!webhooks.text.contains(&key), "the key is never shown back");
    let sessions = server.admin("GET", "/v1/tenants/acme/portal-sessions", None).await;
    assert_eq!(sessions.body["data"].as_array().unwrap().len(), 1, "{}", sessions.text);
}

#[tokio::test]
async fn a_links_theme_names_and_colours_its_sessions_pages() {
    let dir = TempDir::new("portal-theme");
    let server = Hookline::start_with(dir.path(), &[("HOOKLINE_PORTAL_NAME", "Platform Webhooks")]).await;
    // Signed out (a framed portal before and after its session), the operator's name.
    for path in ["/portal/", "/portal/signed-out"] {
        let shown = server.call("GET", path, None, None).await;
        assert!(shown.text.contains(r#"<span class="brand">Platform Webhooks</span>"#), "{path}: {}", shown.text);
    }
    server.tenant("acme").await;
    for (theme, field) in [
        (json!({"accent": "orange"}), "accent"),
        (json!({"accent": "#ff6600;}"}), "accent"),
        (json!({"mode": "blue"}), "mode"),
        (json!({"name": ""}), "name"),
        (json!({"logo": "x"}), "logo"),
        (json!({"logo": "http://cdn.heron.example/logo.svg"}), "logo"),
        (json!({"logo": "https://cdn.heron.example/\"onerror=\"alert(1)"}), "logo"),
        (json!({"logo": "javascript:alert(1)"}), "logo"),
        (json!({"font": "Comic Sans"}), "font"),
    ] {
        let refused = server.admin("POST", "/v1/tenants/acme/portal-links", Some(json!({"theme": theme}))).await;
        assert!(matches!(refused.status, 400 | 422), "{theme}: {}", refused.text);
        assert!(refused.text.contains(field), "{theme}: the refusal names {field}: {}", refused.text);
    }
    let signed_out = server.call("GET", "/portal/theme.css", None, None).await;
    assert!(signed_out.text.contains("--accent: #2456c8") && !signed_out.text.contains("dark"), "{}", signed_out.text);
    assert_eq!(signed_out.header("content-type"), Some("text/css"));

    let logo = "https://cdn.heron.example/logo.svg";
    let theme = json!({"theme": {"name": "Heron Data", "accent": "#FF6600", "mode": "dark", "logo": logo}});
    let token = token_of(&server.admin("POST", "/v1/tenants/acme/portal-links", Some(theme)).await);
    let origin = server.url.clone();
    let cookie = server.form("/portal/session", &format!("token={token}"), None, Some(&origin)).await.cookie();
    let webhooks = server.page("/portal/webhooks", &cookie).await;
    let brand = format!(r#"<span class="brand"><img src="{logo}" alt="" class="logo">Heron Data</span>"#);
    assert!(webhooks.text.contains(&brand), "{}", webhooks.text);
    let policy = webhooks.header("content-security-policy").unwrap();
    assert!(policy.contains("img-src 'self' data: https:;") && policy.contains("script-src 'self';"), "{policy}");
    assert!(
        webhooks.text.contains(r#"href="/portal/theme.css""#) && !webhooks.text.contains("style="),
        "no inline style"
    );
    let css = server.page("/portal/theme.css", &cookie).await;
    assert!(css.text.contains("--accent: #ff6600") && css.text.contains("color-scheme: dark"), "{}", css.text);
}

/// The hidden fields of the "send again what failed in this range" form of a deliveries page.
fn range_form(page: &str) -> Option<String> {
    let form = page.split(r#"id="recover-range""#).nth(1)?.split("</form>").next()?;
    let value = |name: &str| {
        let after = form.split(&format!(r#"name="{name}" value=""#)).nth(1).unwrap();
        after.split('"').next().unwrap().to_owned()
    };
    Some(
        format!("since={}&until={}&endpoint={}", value("since"), value("until"), value("endpoint")).replace('+', "%2B"),
    )
}

#[tokio::test]
async fn the_deliveries_list_filters_by_topic_answer_and_time_and_recovers_a_range() {
    let dir = TempDir::new("portal-filters");
    let env = [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_PURGE_INTERVAL", "100ms")];
    let server = Hookline::start_with(dir.path(), &env).await;
    let receiver = Receiver::start().await;
    receiver.answer(support::Reply::status(503));
    server.tenant("acme").await;
    server.tenant("globex").await;
    let body = json!({"url": format!("{}/hook", receiver.url), "topics": ["pdf.processed"], "retry_schedule": []});
    server.endpoint("acme", body).await;
    let globex = server
        .endpoint("globex", json!({"url": format!("{}/globex", receiver.url), "topics": ["pdf.processed"]}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut events = Vec::new();
    for _ in 0..2 {
        let event = server.publish("acme", "pdf.processed", "{}").await;
        server.wait_for_deliveries("acme", &event, "failed", 1).await;
        events.push(event);
    }
    let (cookie, csrf) = sign_in(&server, "acme", None).await;
    let rows = |text: &str| text.matches("<tr data-delivery=").count();
    let list = |query: &str| {
        let path = format!("/portal/deliveries{query}");
        let (server, cookie) = (&server, &cookie);
        async move { server.page(&path, cookie).await }
    };

    assert_eq!(rows(&list("?answer=5xx").await.text), 2);
    assert_eq!(rows(&list("?answer=2xx").await.text), 0);
    assert_eq!(rows(&list("?topic=end_user.processed").await.text), 0);
    assert_eq!(rows(&list("?topic=pdf.processed&status=failed&answer=5xx").await.text), 2);
    let old = list("?window=range&since=2000-01-01T00:00&until=2000-01-02T00:00").await;
    assert_eq!(rows(&old.text), 0);
    // A range outside the filter's window is not what "Send again" acts on: only a window shown is.
    assert!(range_form(&list("").await.text).is_none(), "no window, no range to recover");
    for bad in
        ["?window=range&since=yesterday", "?window=range&since=2026-12-06T10:00&until=2026-12-06T09:00", "?answer=6xx"]
    {
        let shown = list(bad).await;
        assert_eq!(shown.status, 200, "{bad}");
        assert!(shown.text.contains(r#"id="filter-error""#), "{bad}: {}", shown.text);
        assert_eq!(rows(&shown.text), 2, "{bad}: every delivery is shown");
        assert!(range_form(&shown.text).is_none());
    }
    let hour = list("?window=1h&status=failed").await;
    assert_eq!(rows(&hour.text), 2);
    let range = range_form(&hour.text).expect("a window shown can be recovered");

    // A read-only session sees no such form and may not post it; another tenant's webhook is not found.
    let (reader, reader_csrf) = sign_in(&server, "acme", Some(json!([]))).await;
    let read_only = server.page("/portal/deliveries?window=1h", &reader).await;
    assert!(range_form(&read_only.text).is_none());
    let refused = server
        .form("/portal/deliveries/recover", &format!("csrf={reader_csrf}&{range}"), Some(&reader), Some(&server.url))
        .await;
    assert_eq!(refused.status, 403);
    let (since_until, _) = range.rsplit_once("&endpoint=").unwrap();
    let foreign = format!("csrf={csrf}&{since_until}&endpoint={globex}");
    let foreign = server.form("/portal/deliveries/recover", &foreign, Some(&cookie), Some(&server.url)).await;
    assert_eq!(foreign.status, 404, "{}", foreign.text);
    let no_csrf = server.form("/portal/deliveries/recover", &range, Some(&cookie), Some(&server.url)).await;
    assert_eq!(no_csrf.status, 403);

    receiver.answer(support::Reply::status(200));
    let body = format!("csrf={csrf}&{range}");
    let recovered = server.form("/portal/deliveries/recover", &body, Some(&cookie), Some(&server.url)).await;
    assert_eq!(recovered.status, 200, "{}", recovered.text);
    assert!(recovered.text.contains("2 failed deliveries are being sent again."), "{}", recovered.text);
    for event in &events {
        server.wait_for_deliveries("acme", event, "succeeded", 1).await;
    }
}

#[tokio::test]
async fn a_webhooks_settings_headers_schedule_and_test_data_are_set_from_the_portal() {
    let dir = TempDir::new("portal-settings");
    let server = Hookline::start_with(dir.path(), &[("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true")]).await;
    let receiver = Receiver::start().await;
    server.tenant("acme").await;
    server.tenant("globex").await;
    let (cookie, csrf) = sign_in(&server, "acme", None).await;
    let post = |path: &str, body: String| {
        let (server, cookie, path) = (&server, &cookie, path.to_owned());
        async move { server.form(&path, &body, Some(cookie), Some(&server.url)).await }
    };
    let url = format!("{}/hook", receiver.url).replace(':', "%3A").replace('/', "%2F");

    // Refusals next to their fields, what was typed kept.
    let bad_header = post("/portal/webhooks/new", format!("csrf={csrf}&url={url}&all_topics=yes&headers=broken")).await;
    assert_eq!(bad_header.status, 422);
    assert!(bad_header.text.contains(r#"id="headers-error""#) && bad_header.text.contains(">broken</textarea>"));
    let bad_schedule =
        post("/portal/webhooks/new", format!("csrf={csrf}&url={url}&all_topics=yes&retry_schedule=soon")).await;
    assert_eq!(bad_schedule.status, 422);
    assert!(bad_schedule.text.contains(r#"id="retry-error""#), "{}", bad_schedule.text);
    let created = post(
        "/portal/webhooks/new",
        format!("csrf={csrf}&url={url}&all_topics=yes&headers=X-Api-Key%3A+abc123%0D%0A&retry_schedule=10s+1m"),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let endpoints = server.admin("GET", "/v1/tenants/acme/endpoints", None).await;
    let endpoint = endpoints.body["data"][0].clone();
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let catalogue = server.call("GET", "/v1/topics", Some(support::ADMIN_KEY), None).await;
    let live: Vec<&str> = catalogue.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|topic| topic["deprecated"] == false)
        .map(|topic| topic["name"].as_str().unwrap())
        .collect();
    let mut topics: Vec<&str> = endpoint["topics"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    topics.sort_unstable();
    let mut expected = live.clone();
    expected.sort_unstable();
    assert_eq!(topics, expected, "all topics: every one not deprecated");
    assert_eq!(endpoint["retry_schedule"], json!(["10s", "1m"]), "{endpoint}");
    assert!(endpoint["headers"]["x-api-key"].is_string(), "{endpoint}");

    // Its settings, as they are; a session without see_secrets neither sees nor changes its headers.
    let settings = server.page(&format!("/portal/webhooks/{id}/settings"), &cookie).await;
    assert!(
        settings.text.contains("x-api-key: abc123") && settings.text.contains(r#"value="10s 1m""#),
        "{}",
        settings.text
    );
    let (manager, manager_csrf) = sign_in(&server, "acme", Some(json!(["manage_endpoints"]))).await;
    let limited = server.page(&format!("/portal/webhooks/{id}/settings"), &manager).await;
    assert!(!limited.text.contains("abc123"), "{}", limited.text);
    let saved = server
        .form(
            &format!("/portal/webhooks/{id}/settings"),
            &format!("csrf={manager_csrf}&url={url}&topics=pdf.processed&description=Billing&signing=standard"),
            Some(&manager),
            Some(&server.url),
        )
        .await;
    assert!(saved.text.contains("Saved."), "{}", saved.text);
    let changed = server.admin("GET", &format!("/v1/tenants/acme/endpoints/{id}"), None).await.body;
    assert_eq!((changed["description"].as_str(), &changed["topics"]), (Some("Billing"), &json!(["pdf.processed"])));
    assert_eq!(changed["retry_schedule"], Value::Null, "an empty schedule is the server's");
    assert!(changed["headers"]["x-api-key"].is_string(), "kept: {changed}");
    // A session without see_secrets may not send those headers to another address.
    let elsewhere = format!("{url}-elsewhere");
    let moved = server
        .form(
            &format!("/portal/webhooks/{id}/settings"),
            &format!("csrf={manager_csrf}&url={elsewhere}&topics=pdf.processed&signing=standard"),
            Some(&manager),
            Some(&server.url),
        )
        .await;
    assert_eq!(moved.status, 422, "{}", moved.text);
    assert!(moved.text.contains(r#"id="url-error""#) && moved.text.contains("custom headers"), "{}", moved.text);
    let kept = server.admin("GET", &format!("/v1/tenants/acme/endpoints/{id}"), None).await.body;
    assert_eq!(kept["url"], changed["url"], "not moved");
    // Nothing ticked is unsigned, which an envelope may not be; a set format offers no "chosen from the URL".
    let unsigned =
        post(&format!("/portal/webhooks/{id}/settings"), format!("csrf={csrf}&url={url}&topics=pdf.processed")).await;
    assert_eq!(unsigned.status, 422, "{}", unsigned.text);
    assert!(unsigned.text.contains("None ticked: unsigned") && unsigned.text.contains("signing"), "{}", unsigned.text);
    assert!(!settings.text.contains(r#"<option value="">"#), "{}", settings.text);
    // A topic deprecated since it was chosen stays chosen, and a save keeps it.
    let with_new = post(
        &format!("/portal/webhooks/{id}/settings"),
        format!(
            "csrf={csrf}&url={url}&topics=pdf.processed&topics=pdf.failed&signing=standard&headers=x-api-key%3A+abc123"
        ),
    )
    .await;
    assert!(with_new.text.contains("Saved."), "{}", with_new.text);
    server.admin("PATCH", "/v1/topics/pdf.failed", Some(json!({"deprecated": true}))).await;
    let form = server.page(&format!("/portal/webhooks/{id}/settings"), &cookie).await;
    assert!(form.text.contains(r#"value="pdf.failed" checked>"#), "ticked and not disabled: {}", form.text);
    let kept_old = post(
        &format!("/portal/webhooks/{id}/settings"),
        format!("csrf={csrf}&url={url}&topics=pdf.processed&topics=pdf.failed&signing=standard&description=Kept&headers=x-api-key%3A+abc123"),
    )
    .await;
    assert!(kept_old.text.contains("Saved."), "{}", kept_old.text);
    let all = post(
        &format!("/portal/webhooks/{id}/settings"),
        format!("csrf={csrf}&url={url}&all_topics=yes&topics=pdf.failed&signing=standard&headers=x-api-key%3A+abc123"),
    )
    .await;
    assert!(all.text.contains("Saved."), "{}", all.text);
    let topics = server.admin("GET", &format!("/v1/tenants/acme/endpoints/{id}"), None).await.body["topics"].clone();
    assert!(topics.as_array().unwrap().contains(&json!("pdf.failed")), "all topics keeps its deprecated one: {topics}");
    let bad_url = post(
        &format!("/portal/webhooks/{id}/settings"),
        format!("csrf={csrf}&url=nope&topics=pdf.processed&signing=standard"),
    )
    .await;
    assert_eq!(bad_url.status, 422);
    assert!(bad_url.text.contains(r#"id="url-error""#) && bad_url.text.contains(r#"value="nope""#));
    let (reader, _) = sign_in(&server, "acme", Some(json!([]))).await;
    assert_eq!(server.page(&format!("/portal/webhooks/{id}/settings"), &reader).await.status, 403);
    let (globex, _) = sign_in(&server, "globex", None).await;
    assert_eq!(server.page(&format!("/portal/webhooks/{id}/settings"), &globex).await.status, 404);

    // A test event with data of the user's own, or the topic's example; data that is not JSON is refused.
    let page = server.page(&format!("/portal/webhooks/{id}"), &cookie).await;
    assert!(page.text.contains(r#"id="test-data""#) && page.text.contains("data-example="), "{}", page.text);
    let not_json =
        post(&format!("/portal/webhooks/{id}/test"), format!("csrf={csrf}&topic=pdf.processed&data=%7Bnope")).await;
    assert_eq!(not_json.status, 422);
    assert!(not_json.text.contains("is not JSON"), "{}", not_json.text);
    let sent = post(
        &format!("/portal/webhooks/{id}/test"),
        format!("csrf={csrf}&topic=pdf.processed&data=%7B%22pages%22%3A+9%7D"),
    )
    .await;
    assert_eq!(sent.status, 303, "{}", sent.text);
    let got = receiver.wait_for(1, std::time::Duration::from_secs(10)).await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["data"], json!({"pages": 9}));
    assert_eq!(got[0].header("X-Api-Key"), Some("abc123"), "its custom header");
    // Its page shows the attempt with the receiver's answer: status, headers and body.
    let delivery_page = sent.header("location").unwrap().to_owned();
    let shown = support::poll(std::time::Duration::from_secs(10), async || {
        let shown = server.page(&delivery_page, &cookie).await;
        if shown.text.contains("Response headers") { Ok(shown) } else { Err(shown.text) }
    })
    .await;
    assert!(shown.text.contains("content-length") && shown.text.contains("Answered"), "{}", shown.text);

    // Snippets that verify the schemes it signs with, and no other.
    assert!(page.text.contains(r#"data-snippet="standard-Go""#) && page.text.contains("func verifyStandard"));
    assert!(page.text.contains(r#"data-snippet="standard-Rust""#) && page.text.contains("Scheme::Standard"));
    assert!(!page.text.contains("verifyHeron"), "not a scheme it signs with");
    let resigned = post(
        &format!("/portal/webhooks/{id}/settings"),
        format!("csrf={csrf}&url={url}&topics=pdf.processed&signing=heron&signing=herald"),
    )
    .await;
    assert!(resigned.text.contains("Saved."), "{}", resigned.text);
    let page = server.page(&format!("/portal/webhooks/{id}"), &cookie).await;
    for shown in ["def verify_heron", "function verifyHeron", "func verifyHerald", "Scheme::Herald"] {
        assert!(page.text.contains(shown), "{shown}: {}", page.text);
    }
    assert!(!page.text.contains("verifyStandard"));
}
