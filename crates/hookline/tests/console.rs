//! The operators' console over HTTP against a real `hookline serve`: the admin key alone signs in, its pages are
//! never framed, and an operator sees the queue and the endpoints in trouble, finds a delivery by id across
//! tenants and opens it in the tenant's portal (read-only), sends failed deliveries again, signs portal sessions
//! out and edits the topic catalogue; forms without the session's CSRF token or from elsewhere are refused.

mod support;

use serde_json::json;
use support::{ADMIN_KEY, Hookline, Receiver, Reply, TempDir};

/// Signs in with the admin key: the console's cookie and the CSRF token its pages carry.
async fn operator(server: &Hookline) -> (String, String) {
    let signed = server.form("/console/sign-in", &format!("key={ADMIN_KEY}"), None, Some(&server.url)).await;
    assert_eq!((signed.status, signed.header("location")), (303, Some("/console/queue")), "{}", signed.text);
    let cookie = signed.cookie();
    let queue = server.page("/console/queue", &cookie).await;
    assert_eq!(queue.status, 200, "{}", queue.text);
    let csrf = queue.text.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    (cookie, csrf)
}

/// Posts a console form from the console's own origin with the operator's cookie.
async fn post(server: &Hookline, cookie: &str, path: &str, body: String) -> support::Answer {
    server.form(path, &body, Some(cookie), Some(&server.url)).await
}

#[tokio::test]
async fn the_admin_key_alone_opens_the_console_which_is_never_framed() {
    let dir = TempDir::new("console-sign-in");
    let server = Hookline::start(dir.path()).await;
    let acme_key = server.tenant("acme").await;
    let origin = server.url.clone();

    let landing = server.call("GET", "/console/", None, None).await;
    assert_eq!(landing.status, 200);
    assert!(landing.text.contains(r#"data-console-state="signed-out""#), "{}", landing.text);
    let policy = landing.header("content-security-policy").unwrap();
    assert!(policy.contains("frame-ancestors 'none'") && policy.contains("script-src 'self'"), "{policy}");
    assert_eq!(landing.header("x-frame-options"), Some("DENY"));
    // Not even a portal allowed to be framed makes the console frameable.
    let framed_dir = TempDir::new("console-framed");
    let framed =
        Hookline::start_with(framed_dir.path(), &[("HOOKLINE_PORTAL_FRAME_ANCESTORS", "https://app.example")]).await;
    let policy =
        framed.call("GET", "/console/", None, None).await.header("content-security-policy").unwrap().to_owned();
    assert!(policy.ends_with("frame-ancestors 'none'"), "{policy}");

    // Pages need a session; keys other than the admin's, or a form from elsewhere, start none.
    for path in
        ["/console/queue", "/console/tenants", "/console/tenants/acme", "/console/topics", "/console/search?id=x"]
    {
        let answer = server.call("GET", path, None, None).await;
        assert_eq!((answer.status, answer.header("location")), (303, Some("/console/")), "{path}");
    }
    for key in [acme_key.as_str(), "hka_wrong", "", &"k".repeat(10_000)] {
        let refused = server.form("/console/sign-in", &format!("key={key}"), None, Some(&origin)).await;
        assert_eq!(refused.status, 401, "{}", refused.text);
        assert!(refused.text.contains("That is not the admin key"), "{}", refused.text);
        assert!(refused.header("set-cookie").is_none());
    }
    let elsewhere =
        server.form("/console/sign-in", &format!("key={ADMIN_KEY}"), None, Some("https://evil.example")).await;
    assert_eq!(elsewhere.status, 403);
    assert_eq!(server.form("/console/sign-in", "nothing=1", None, Some(&origin)).await.status, 422);

    let signed = server.form("/console/sign-in", &format!("key={ADMIN_KEY}"), None, Some(&origin)).await;
    let set = signed.header("set-cookie").unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/console"), "{set}");
    let (cookie, csrf) = operator(&server).await;
    // A portal session's cookie is not a console session, and the console's opens no portal.
    let portal = server.page("/portal/webhooks", &cookie.replace("hookline_console", "hookline_portal")).await;
    assert_eq!(portal.header("location"), Some("/portal/signed-out"));

    // Signing out needs the token and the origin; then the cookie opens nothing.
    assert_eq!(server.form("/console/sign-out", "csrf=", Some(&cookie), Some(&origin)).await.status, 403);
    let body = format!("csrf={csrf}");
    let forged = server.form("/console/sign-out", &body, Some(&cookie), Some("https://evil.example")).await;
    assert_eq!(forged.status, 403);
    // A new admin key signs out every session of the former one.
    let (other_cookie, _) = operator(&server).await;
    let mut server = server;
    server.terminate().await;
    server.restart_with(&[("HOOKLINE_ADMIN_KEY", "hka_another_admin_key_0123456789")]).await;
    assert_eq!(server.page("/console/queue", &other_cookie).await.header("location"), Some("/console/"));
    server.terminate().await;
    server.restart_with(&[("HOOKLINE_ADMIN_KEY", ADMIN_KEY)]).await;
    let out = post(&server, &cookie, "/console/sign-out", format!("csrf={csrf}")).await;
    assert_eq!((out.status, out.header("location")), (303, Some("/console/")));
    assert_eq!(server.page("/console/queue", &cookie).await.header("location"), Some("/console/"));
}

#[tokio::test]
async fn an_operator_finds_a_failing_delivery_opens_it_read_only_and_sends_it_again() {
    let dir = TempDir::new("console-queue");
    let env = [
        ("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"),
        ("HOOKLINE_FAILING_AFTER", "1"),
        ("HOOKLINE_PURGE_INTERVAL", "100ms"),
    ];
    let server = Hookline::start_with(dir.path(), &env).await;
    let receiver = Receiver::start().await;
    receiver.answer(Reply::status(503));
    server.tenant("acme").await;
    server.tenant("globex").await;
    let body = json!({"url": format!("{}/acme", receiver.url), "topics": ["pdf.processed"], "retry_schedule": []});
    let endpoint = server.endpoint("acme", body).await["id"].as_str().unwrap().to_owned();
    let event = server.publish("acme", "pdf.processed", "{}").await;
    let failed = server.wait_for_deliveries("acme", &event, "failed", 1).await;
    let delivery = failed["data"][0]["id"].as_str().unwrap().to_owned();
    let origin = server.url.clone();
    let (cookie, csrf) = operator(&server).await;

    // The queue: nothing waits, the endpoint is in trouble, the hour's attempts are counted.
    let queue = support::poll(std::time::Duration::from_secs(10), async || {
        let queue = server.page("/console/queue", &cookie).await;
        if queue.text.contains(&endpoint) { Ok(queue) } else { Err(queue.text) }
    })
    .await;
    assert!(queue.text.contains(r#"<dd data-queue="pending">0</dd>"#), "{}", queue.text);
    assert!(queue.text.contains(r#"<dd data-queue="last-hour">0 succeeded, 1 failed</dd>"#), "{}", queue.text);
    assert!(queue.text.contains(r#"<span class="health failing">failing</span>"#), "{}", queue.text);
    assert!(queue.text.contains(r#"<svg class="chart""#));
    let tenants = server.page("/console/tenants", &cookie).await;
    assert!(tenants.text.contains(r#"data-tenant="acme""#) && tenants.text.contains(r#"data-tenant="globex""#));
    assert!(tenants.text.contains(r#"<span class="health failing">1</span>"#), "{}", tenants.text);

    // Found by id across tenants, and opened in acme's portal, read-only, at the delivery's page.
    let found = server.page(&format!("/console/search?id={delivery}"), &cookie).await;
    assert!(found.text.contains(r#"data-console-state="found""#), "{}", found.text);
    assert!(found.text.contains("acme</a>&#x27;s") || found.text.contains("acme</a>'s"), "{}", found.text);
    assert!(found.text.contains("attempt 1 at") && found.text.contains("answered 503"), "{}", found.text);
    let of_event = server.page(&format!("/console/search?id={event}"), &cookie).await;
    assert!(of_event.text.contains(&delivery), "an event's deliveries: {}", of_event.text);
    let of_endpoint = server.page(&format!("/console/search?id={endpoint}"), &cookie).await;
    assert!(of_endpoint.text.contains(r#"data-console-state="found""#));
    for (id, state) in [
        ("del_00000000000000000000000000", "not-found"),
        ("acme", "not-an-id"),
        ("", "not-an-id"),
        ("del_%27%3B--", "not-found"),
        (&format!("del_{}", "x".repeat(5000)), "not-found"),
    ] {
        let answer = server.page(&format!("/console/search?id={id}"), &cookie).await;
        assert_eq!(answer.status, 200);
        assert!(answer.text.contains(&format!(r#"data-console-state="{state}""#)), "{id}: {}", answer.text);
    }
    let path = "/console/tenants/acme/portal";
    let opened = post(&server, &cookie, path, format!("csrf={csrf}&access=read&delivery={delivery}"));
    let opened = opened.await;
    assert_eq!(opened.header("location"), Some(format!("/portal/deliveries/{delivery}").as_str()), "{}", opened.text);
    let portal = opened.cookie();
    assert!(portal.starts_with("hookline_portal="), "{portal}");
    let page = server.page(&format!("/portal/deliveries/{delivery}"), &portal).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(!page.text.contains("Retry now"), "read-only: {}", page.text);
    assert!(page.text.contains("operator"), "the session says who it is");
    // Only a delivery id is followed; anything else lands on the webhooks.
    let elsewhere = post(&server, &cookie, path, format!("csrf={csrf}&delivery=https://evil.example")).await;
    assert_eq!(elsewhere.header("location"), Some("/portal/webhooks"));
    assert_eq!(server.form(path, "access=full", Some(&cookie), Some(&origin)).await.status, 403, "no CSRF token");
    let unknown = post(&server, &cookie, "/console/tenants/nobody/portal", format!("csrf={csrf}"));
    assert_eq!(unknown.await.status, 404);

    // The tenant's page lists the failed delivery and the portal sessions; one "Retry failed" sends it again.
    let tenant = server.page("/console/tenants/acme", &cookie).await;
    assert!(tenant.text.contains(&format!(r#"data-delivery="{delivery}""#)), "{}", tenant.text);
    let sessions = server.admin("GET", "/v1/tenants/acme/portal-sessions", None).await;
    let sessions: Vec<String> =
        sessions.body["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(sessions.len(), 2, "the two the operator opened");
    for session in &sessions {
        assert!(tenant.text.contains(&format!(r#"data-session="{session}""#)), "{}", tenant.text);
    }
    receiver.answer(Reply::status(200));
    let recovered = post(&server, &cookie, "/console/tenants/acme/recover", format!("csrf={csrf}&since=24h"));
    let recovered = recovered.await;
    assert!(recovered.text.contains("1 failed deliveries of acme are being sent again."), "{}", recovered.text);
    server.wait_for_deliveries("acme", &event, "succeeded", 1).await;
    let bad = post(&server, &cookie, "/console/tenants/acme/recover", format!("csrf={csrf}&since=ever"));
    assert_eq!(bad.await.status, 422);

    // A session signed out from the console is over at its next request; another tenant's id revokes nothing.
    let revoke = format!("/console/tenants/globex/sessions/{}/revoke", sessions[0]);
    assert_eq!(post(&server, &cookie, &revoke, format!("csrf={csrf}")).await.status, 422);
    for session in &sessions {
        let revoke = format!("/console/tenants/acme/sessions/{session}/revoke");
        let revoked = post(&server, &cookie, &revoke, format!("csrf={csrf}")).await;
        assert!(revoked.text.contains("The session is signed out."), "{}", revoked.text);
    }
    let gone = server.page(&format!("/portal/deliveries/{delivery}"), &portal).await;
    assert_eq!(gone.header("location"), Some("/portal/signed-out"));
    for path in ["/console/tenants/nobody", "/console/tenants/..%2F..", "/console/tenants/ACME"] {
        assert_eq!(server.page(path, &cookie).await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn the_catalogue_is_edited_from_the_console() {
    let dir = TempDir::new("console-topics");
    let server = Hookline::start(dir.path()).await;
    let (cookie, csrf) = operator(&server).await;
    let topics = server.page("/console/topics", &cookie).await;
    assert!(topics.text.contains(r#"data-topic="pdf.processed""#), "{}", topics.text);

    let add = |body: String| post(&server, &cookie, "/console/topics", body);
    let bad = add(format!("csrf={csrf}&name=invoice.paid&example=%7Bnot+json")).await;
    assert_eq!(bad.status, 422);
    assert!(bad.text.contains("The example is not JSON"), "{}", bad.text);
    let bad = add(format!("csrf={csrf}&name=Not+A+Topic")).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains(r#"id="topic-error""#), "{}", bad.text);
    assert_eq!(add("name=invoice.paid".to_owned()).await.status, 403, "no CSRF token");
    let added = add(format!("csrf={csrf}&name=invoice.paid&description=Paid&example=%7B%22amount%22%3A1%7D")).await;
    assert_eq!(added.status, 200, "{}", added.text);
    assert!(added.text.contains("invoice.paid was added."), "{}", added.text);
    let listed = server.call("GET", "/v1/topics", Some(ADMIN_KEY), None).await;
    let topic = listed.body["data"].as_array().unwrap().iter().find(|t| t["name"] == "invoice.paid").unwrap().clone();
    assert_eq!((topic["description"].as_str(), &topic["example"]), (Some("Paid"), &json!({"amount": 1})));

    let saved = post(
        &server,
        &cookie,
        "/console/topics/invoice.paid",
        format!("csrf={csrf}&description=Settled&deprecated=true"),
    )
    .await;
    assert!(saved.text.contains("invoice.paid was saved."), "{}", saved.text);
    let listed = server.call("GET", "/v1/topics", Some(ADMIN_KEY), None).await;
    let topic = listed.body["data"].as_array().unwrap().iter().find(|t| t["name"] == "invoice.paid").unwrap().clone();
    assert_eq!((topic["description"].as_str(), topic["deprecated"].as_bool()), (Some("Settled"), Some(true)));
    let unknown = post(&server, &cookie, "/console/topics/no.such", format!("csrf={csrf}")).await;
    assert_eq!(unknown.status, 422);
}

#[tokio::test]
async fn every_page_renders_with_no_data_and_says_what_to_do() {
    let dir = TempDir::new("console-empty");
    let server = Hookline::start(dir.path()).await;
    let (cookie, _) = operator(&server).await;
    for (path, state) in
        [("/console/queue", "no-trouble"), ("/console/tenants", "no-tenants"), ("/console/search?id=", "not-an-id")]
    {
        let page = server.page(path, &cookie).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.text.contains(&format!(r#"data-console-state="{state}""#)), "{path}: {}", page.text);
    }
    assert!(server.page("/console/queue", &cookie).await.text.contains("nothing is overdue"));
    // A tenant with nothing yet: every portal page, and its console page.
    server.tenant("acme").await;
    let tenant = server.page("/console/tenants/acme", &cookie).await;
    assert!(tenant.text.contains(r#"data-console-state="no-failed""#) && tenant.text.contains("No endpoints."));
    let link = server.admin("POST", "/v1/tenants/acme/portal-links", None).await;
    let token = link.body["url"].as_str().unwrap().split_once("#token=").unwrap().1.to_owned();
    let portal = server.form("/portal/session", &format!("token={token}"), None, Some(&server.url)).await.cookie();
    for (path, shown) in [
        ("/portal/webhooks", r#"data-portal-state="empty""#),
        ("/portal/webhooks/new", r#"data-portal-state="new-webhook""#),
        ("/portal/deliveries", r#"data-portal-state="no-deliveries""#),
        ("/portal/deliveries?window=24h&topic=pdf.processed&answer=none", r#"data-portal-state="no-deliveries""#),
        ("/portal/catalogue", "pdf.processed"),
    ] {
        let page = server.page(path, &portal).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        assert!(page.text.contains(shown), "{path}: {}", page.text);
    }
}
