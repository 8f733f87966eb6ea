//! The portal in a real browser: Debian's Chromium, headless, driven through chromedriver by WebDriver, against a
//! real `hookline serve`. A link minted through the API opens the tenant's Webhooks page; the same link opened
//! again does not. Each page is saved as a screenshot under the test's target directory (`portal-screenshots/`).
//!
//! Browser tests run when `HOOKLINE_TEST_BROWSER=1` (`scripts/test` sets it, and installs `chromium` and
//! `chromium-driver` from Debian's packages when they are missing); otherwise they say so and pass.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use support::{Hookline, Receiver, Reply, TempDir};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(15);

/// Whether this run drives a browser.
fn browser_wanted() -> bool {
    match std::env::var("HOOKLINE_TEST_BROWSER").as_deref() {
        Ok("1") => true,
        Ok("0") | Err(_) => {
            eprintln!("skipping: set HOOKLINE_TEST_BROWSER=1 to run the browser tests (scripts/test does)");
            false
        }
        Ok(other) => panic!("HOOKLINE_TEST_BROWSER={other:?}; expected 1 or 0"),
    }
}

/// A chromedriver of this test's own, and a headless Chromium session through it.
struct Browser {
    client: Client,
    _driver: Child,
}

impl Browser {
    async fn start() -> Browser {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(program).exists(),
                "{program} is missing: install Debian's chromium and chromium-driver (scripts/test does)"
            );
        }
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        // It says when it listens.
        let mut lines = BufReader::new(driver.stdout.take().unwrap()).lines();
        let ready = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("started successfully") {
                    return;
                }
            }
            panic!("chromedriver exited before it was ready");
        };
        tokio::time::timeout(WAIT, ready).await.expect("chromedriver is ready within the wait");
        // What it prints later is not read; keep the pipe open so that it never blocks on a full one.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--window-size=1280,900",
                    // Third-party cookies blocked, as browsers now do: the framed portal must work even so.
                    "--test-third-party-cookie-phaseout"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|error| panic!("chromedriver did not start a session: {error}"));
        Browser { client, _driver: driver }
    }

    /// Waits until the page has an element `css` matches, and returns the page's text.
    async fn text_once(&self, css: &str) -> String {
        if let Err(error) = self.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
            let at = self.client.current_url().await.map(|url| url.to_string()).unwrap_or_default();
            let source = self.client.source().await.unwrap_or_default();
            panic!("no {css} on the page within {WAIT:?} ({error}); at {at}:\n{source}");
        }
        self.body_text().await
    }

    async fn body_text(&self) -> String {
        self.client.find(Locator::Css("body")).await.unwrap().text().await.unwrap()
    }

    /// The id of the delivery whose page is shown.
    async fn shown_delivery(&self) -> String {
        let address = self.client.current_url().await.unwrap();
        let id = address.path().strip_prefix("/portal/deliveries/");
        id.unwrap_or_else(|| panic!("not a delivery's page: {address}")).to_owned()
    }

    /// Loads the page again, and waits until the new copy is there.
    async fn reload(&self) {
        self.mark_old().await;
        self.client.refresh().await.unwrap();
        self.wait_for_new().await;
    }

    /// Marks the page shown now, so that `wait_for_new` can tell the next one from it.
    async fn mark_old(&self) {
        self.client.execute("document.documentElement.dataset.old = '1';", Vec::new()).await.unwrap();
    }

    /// Waits until the page marked by `mark_old` has been replaced: the new one's root carries no mark.
    async fn wait_for_new(&self) {
        let new = self.client.wait().at_most(WAIT).for_element(Locator::Css("html:not([data-old])")).await;
        new.unwrap_or_else(|error| panic!("no new page came within {WAIT:?}: {error}"));
    }

    /// Clicks what `css` matches (a link or a form's button) and waits until the next page has replaced this
    /// one, so that what is read next is read from it.
    async fn click(&self, css: &str) {
        let target = self.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await;
        let target = target.unwrap_or_else(|error| panic!("no {css}: {error}"));
        self.mark_old().await;
        target.click().await.unwrap();
        self.wait_for_new().await;
    }

    /// The text of what `css` matches, once it is on the page.
    async fn text_of(&self, css: &str) -> String {
        let element = self.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await;
        element.unwrap_or_else(|error| panic!("no {css}: {error}")).text().await.unwrap()
    }

    /// Saves a screenshot of the page as `name.png` among the test's artefacts.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("portal-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await.unwrap()).unwrap();
        path
    }

    async fn close(self) {
        self.client.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_link_opens_the_tenants_webhooks_once() {
    if !browser_wanted() {
        return;
    }
    let dir = TempDir::new("portal-browser");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;
    server.tenant("acme").await;
    server.tenant("globex").await;
    let hook = format!("{}/acme-hook", receiver.url);
    server.endpoint("acme", json!({"url": hook, "topics": ["pdf.processed"], "description": "Risk team"})).await;
    server
        .endpoint("globex", json!({"url": format!("{}/globex-hook", receiver.url), "topics": ["pdf.processed"]}))
        .await;
    let link = server.admin("POST", "/v1/tenants/acme/portal-links", Some(json!({"user": "ada@acme.example"}))).await;
    let url = link.body["url"].as_str().unwrap().to_owned();

    let browser = Browser::start().await;
    browser.client.goto(&url).await.unwrap();
    let text = browser.text_once("table.list").await;
    browser.screenshot("webhooks").await;
    assert!(text.contains(&hook) && text.contains("Risk team") && text.contains("healthy"), "{text}");
    assert!(text.contains("acme") && text.contains("ada@acme.example"), "{text}");
    assert!(!text.contains("globex"), "another tenant's webhooks never show: {text}");
    let address = browser.client.current_url().await.unwrap();
    assert_eq!(address.path(), "/portal/webhooks");
    assert!(!address.as_str().contains("hpl_"), "the link's token left the address: {address}");

    // The same link, in a browser with no session: it worked once and does not work again.
    browser.client.delete_all_cookies().await.unwrap();
    browser.client.goto(&url).await.unwrap();
    let text = browser.text_once("[data-portal-state=link-refused]").await;
    browser.screenshot("link-used").await;
    assert!(text.contains("This link no longer works"), "{text}");
    browser.close().await;
}

#[tokio::test]
async fn a_tenant_adds_a_webhook_tests_it_and_debugs_a_failing_delivery() {
    if !browser_wanted() {
        return;
    }
    let dir = TempDir::new("portal-browser-flow");
    let server = Hookline::start(dir.path()).await;
    let receiver = Receiver::start().await;
    server.tenant("acme").await;
    let link = server.admin("POST", "/v1/tenants/acme/portal-links", None).await;
    let browser = Browser::start().await;
    browser.client.goto(link.body["url"].as_str().unwrap()).await.unwrap();
    let text = browser.text_once("[data-portal-state=empty]").await;
    assert!(text.contains("No webhooks yet"), "{text}");
    browser.screenshot("webhooks-empty").await;

    // Add webhook: a bad URL is refused next to its field, and what was typed stays.
    browser.click("a.button.primary").await;
    browser.text_once("form[data-portal-state=new-webhook]").await;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#url"))
        .await
        .unwrap()
        .send_keys("not a url")
        .await
        .unwrap();
    browser
        .client
        .find(Locator::Css("input[name=topics][value='pdf.processed']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.click("button[type=submit].primary").await;
    let error = browser.client.wait().at_most(WAIT).for_element(Locator::Css("#url-error")).await.unwrap();
    assert!(error.text().await.unwrap().contains("not a url"), "the error names the value");
    browser.screenshot("add-webhook-error").await;
    let checked = browser.client.find(Locator::Css("input[name=topics][value='pdf.processed']")).await.unwrap();
    assert_eq!(checked.prop("checked").await.unwrap().as_deref(), Some("true"), "the topic stays picked");
    let url = browser.client.find(Locator::Css("#url")).await.unwrap();
    url.clear().await.unwrap();
    url.send_keys(&format!("{}/hook", receiver.url)).await.unwrap();
    browser.click("button[type=submit].primary").await;
    browser.text_once("[data-portal-state=created]").await;
    let secret = browser.text_of("#secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    browser.screenshot("webhook-created").await;

    // A test event: its delivery, and its first attempt as soon as it is made (the page looks again by itself).
    browser.click("form[action$='/test'] button").await;
    let delivery = browser.shown_delivery().await;
    let text = browser.text_once("[data-attempt='1'] .answer").await;
    assert!(text.contains("Answered 200") && text.contains("test"), "{text}");
    assert_eq!(browser.text_of("[data-status]").await, "succeeded");
    let curl = browser.text_of("#curl").await;
    assert!(curl.starts_with(&format!("curl -X POST '{}/hook'", receiver.url)), "{curl}");
    assert!(
        curl.contains("-H 'webhook-signature: v1,") && curl.contains("--data-binary '{\"topic\":\"pdf.processed\""),
        "{curl}"
    );
    browser.screenshot("delivery").await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("hookline-topic"), Some("pdf.processed"));

    // The receiver fails; Retry now makes a second attempt, which shows its answer.
    receiver.answer(Reply::status(500).with_body("database down"));
    browser.click("form[action$='/retry'] button").await;
    server.wait_for_attempts("acme", &delivery, 2).await;
    browser.reload().await;
    let text = browser.text_once("[data-attempt='2'] .answer").await;
    assert!(text.contains("Answered 500") && text.contains("the endpoint answered 500"), "{text}");
    browser.screenshot("delivery-retried").await;

    // Reveal the secret, then rotate it: the new one shows, the old one keeps signing for a day.
    browser.click("a[href^='/portal/webhooks/ep_']").await;
    browser.click("form[action$='/secret'] button").await;
    assert_eq!(browser.text_of("#revealed-secret").await, secret);
    browser.click("form[action$='/secret/rotate'] button").await;
    let text = browser.text_once("#revealed-secret").await;
    let rotated = browser.text_of("#revealed-secret").await;
    assert!(rotated.starts_with("whsec_") && rotated != secret, "{rotated}");
    assert!(text.contains("The previous secret still signs until"), "{text}");
    browser.screenshot("endpoint-rotated").await;

    // The deliveries whose last answer was a 5xx, in the last 24 hours: the retried one, with a way to send
    // again what failed in that window.
    browser.click("nav a[href='/portal/deliveries']").await;
    for (select, value) in [("#answer", "5xx"), ("#window", "24h")] {
        let field = browser.client.find(Locator::Css(select)).await.unwrap();
        field.select_by_value(value).await.unwrap();
    }
    browser.click("form.filters button[type=submit]").await;
    let text = browser.text_once(&format!("tr[data-delivery='{delivery}']")).await;
    assert!(text.contains("Send again what failed from"), "{text}");
    assert_eq!(browser.client.find_all(Locator::Css("tr[data-delivery]")).await.unwrap().len(), 1);
    browser.screenshot("deliveries-filtered").await;
    browser.close().await;
}

/// A page of another site that frames `src` and notes on itself (`p.heard[data-what]`) what it hears: the frame's
/// loads (`frame-loaded`) and the portal's messages (their `type`).
fn framing_page(src: &str) -> String {
    format!(
        r#"<!doctype html><html><head><title>platform</title></head><body><h1>A platform's dashboard</h1>
<script>
function heard(what) {{ var note = document.createElement("p"); note.className = "heard"; note.dataset.what = what; document.body.appendChild(note); }}
window.addEventListener("message", function (event) {{ heard(event.data && event.data.type); }});
</script>
<iframe id="portal" src="{src}" width="1100" height="700" onload="heard('frame-loaded')"></iframe>
</body></html>"#
    )
}

async fn framing_site(src: &str) -> (Receiver, String) {
    let site = Receiver::start().await;
    site.answer(
        Reply::status(200).with_header("content-type", "text/html; charset=utf-8").with_body(&framing_page(src)),
    );
    // `localhost` is another site than the portal's `127.0.0.1`: the frame is cross-site, its cookie third-party.
    let origin = site.url.replace("127.0.0.1", "localhost");
    (site, origin)
}

#[tokio::test]
async fn the_portal_works_framed_by_an_allowed_site_and_is_refused_by_another() {
    if !browser_wanted() {
        return;
    }
    // The allowed site first: the server is told its origin.
    let allowed = Receiver::start().await;
    let allowed_origin = allowed.url.replace("127.0.0.1", "localhost");
    let dir = TempDir::new("portal-browser-frame");
    let env =
        [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_PORTAL_FRAME_ANCESTORS", &allowed_origin)];
    let server = Hookline::start_with(dir.path(), &env).await;
    let receiver = Receiver::start().await;
    server.tenant("acme").await;
    let hook = format!("{}/framed-hook", receiver.url);
    server.endpoint("acme", json!({"url": hook, "topics": ["pdf.processed"]})).await;
    let link = server.admin("POST", "/v1/tenants/acme/portal-links", None).await;
    allowed.answer(
        Reply::status(200)
            .with_header("content-type", "text/html; charset=utf-8")
            .with_body(&framing_page(link.body["url"].as_str().unwrap())),
    );

    let browser = Browser::start().await;
    browser.client.goto(&format!("{allowed_origin}/dashboard")).await.unwrap();
    browser.client.wait().at_most(WAIT).for_element(Locator::Css("iframe#portal")).await.unwrap();
    browser.client.enter_frame(0).await.unwrap();
    let text = browser.text_once("table.list").await;
    assert!(text.contains(&hook), "{text}");
    browser.client.enter_parent_frame().await.unwrap();
    browser.screenshot("framed").await;

    // The session ends while framed: the portal tells the platform's page.
    let sessions = server.admin("GET", "/v1/tenants/acme/portal-sessions", None).await;
    let session = sessions.body["data"][0]["id"].as_str().unwrap().to_owned();
    server.admin("DELETE", &format!("/v1/tenants/acme/portal-sessions/{session}"), None).await;
    browser.client.enter_frame(0).await.unwrap();
    browser.click("nav a[href='/portal/webhooks']").await;
    browser.text_once("[data-portal-state=signed-out]").await;
    browser.client.enter_parent_frame().await.unwrap();
    browser.text_once("p.heard[data-what='hookline:signed-out']").await;

    // Another site may not frame it: the browser refuses the frame, and the link inside is never used.
    let link = server.admin("POST", "/v1/tenants/acme/portal-links", None).await;
    let url = link.body["url"].as_str().unwrap().to_owned();
    let (_other, other_origin) = framing_site(&url).await;
    browser.client.goto(&format!("{other_origin}/dashboard")).await.unwrap();
    browser.text_once("p.heard[data-what='frame-loaded']").await;
    browser.client.enter_frame(0).await.unwrap();
    assert!(browser.client.find(Locator::Css("[data-portal-state]")).await.is_err(), "the portal showed in the frame");
    browser.client.enter_parent_frame().await.unwrap();
    browser.screenshot("frame-refused").await;
    let token = url.split_once("#token=").unwrap().1;
    let unused = server
        .call_with(
            "POST",
            "/portal/session",
            None,
            Some(&format!("token={token}")),
            &[("content-type", "application/x-www-form-urlencoded".to_owned()), ("origin", server.url.clone())],
        )
        .await;
    assert_eq!(unused.status, 303, "the refused frame's link was never used: {}", unused.text);
    browser.close().await;
}

#[tokio::test]
async fn an_operator_signs_in_to_the_console_and_finds_a_failing_delivery() {
    if !browser_wanted() {
        return;
    }
    let dir = TempDir::new("console-browser");
    let env = [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_FAILING_AFTER", "1")];
    let server = Hookline::start_with(dir.path(), &env).await;
    let receiver = Receiver::start().await;
    receiver.answer(Reply::status(503));
    server.tenant("acme").await;
    server.tenant("globex").await;
    let body = json!({"url": format!("{}/hooks", receiver.url), "topics": ["pdf.processed"], "retry_schedule": []});
    server.endpoint("acme", body).await;
    let event = server.publish("acme", "pdf.processed", r#"{"pages":3}"#).await;
    let failed = server.wait_for_deliveries("acme", &event, "failed", 1).await;
    let delivery = failed["data"][0]["id"].as_str().unwrap().to_owned();

    let browser = Browser::start().await;
    browser.client.goto(&format!("{}/console/", server.url)).await.unwrap();
    browser.text_once("[data-console-state=signed-out]").await;
    let key = browser.client.find(Locator::Css("#key")).await.unwrap();
    key.send_keys("not the key").await.unwrap();
    browser.click("#sign-in button").await;
    assert!(browser.text_of("#key-error").await.contains("not the admin key"));
    let key = browser.client.find(Locator::Css("#key")).await.unwrap();
    key.send_keys(support::ADMIN_KEY).await.unwrap();
    browser.click("#sign-in button").await;
    let text = browser.text_once("[data-queue=pending]").await;
    assert!(text.contains("Endpoints in trouble") && text.contains("failing"), "{text}");
    browser.screenshot("console-queue").await;

    browser.click("nav a[href='/console/tenants']").await;
    browser.text_once("[data-tenant=globex]").await;
    browser.screenshot("console-tenants").await;
    browser.click("a[href='/console/tenants/acme']").await;
    let text = browser.text_once(&format!("[data-delivery='{delivery}']")).await;
    assert!(text.contains("Retry failed"), "{text}");
    browser.screenshot("console-tenant").await;

    // Found by its id from the search box, then opened in acme's portal, read-only.
    browser.client.find(Locator::Css("#find")).await.unwrap().send_keys(&delivery).await.unwrap();
    browser.click("form.search button").await;
    let text = browser.text_once("[data-console-state=found]").await;
    assert!(text.contains("acme's") && text.contains("answered 503"), "{text}");
    browser.screenshot("console-found").await;
    browser.click("form[action='/console/tenants/acme/portal'] button").await;
    assert_eq!(browser.shown_delivery().await, delivery);
    let text = browser.text_once("[data-status=failed]").await;
    assert!(!text.contains("Retry now"), "read-only: {text}");
    browser.close().await;
}

/// What a page breaks of the portal's rules for a phone and for assistive technology: a page wider than the
/// screen, a form field without a label, an image without alternative text, a button without a name.
const PAGE_PROBLEMS: &str = r#"
const problems = [];
if (document.documentElement.scrollWidth > window.innerWidth + 1) {
  // The elements that stick out, or whose content overflows them (a long word), innermost last.
  const wide = [...document.querySelectorAll("body *")].filter((element) =>
    element.getBoundingClientRect().right > window.innerWidth + 1 || element.scrollWidth > element.clientWidth + 1);
  problems.push("wider than the screen: " + document.documentElement.scrollWidth + " > " + window.innerWidth + ", " +
    wide.slice(-3).map((element) => element.tagName + "." + element.className).join(" "));
}
for (const field of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
  if (field.labels.length === 0 && !field.getAttribute("aria-label")) {
    problems.push("a field without a label: " + field.outerHTML.slice(0, 80));
  }
}
for (const image of document.querySelectorAll("img")) {
  if (!image.hasAttribute("alt")) { problems.push("an image without alt: " + image.outerHTML.slice(0, 80)); }
}
for (const button of document.querySelectorAll("button, a")) {
  if (button.textContent.trim() === "" && !button.getAttribute("aria-label")) {
    problems.push("a control without a name: " + button.outerHTML.slice(0, 80));
  }
}
if (!document.documentElement.lang) { problems.push("no lang on the page"); }
// Text against what is behind it: at least 4.5:1 (WCAG AA for body text). SVG charts are left to their labels.
const channel = (value) => { value /= 255; return value <= 0.03928 ? value / 12.92 : Math.pow((value + 0.055) / 1.055, 2.4); };
const rgb = (colour) => (colour.match(/[\d.]+/g) || []).map(Number);
const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
const behind = (element) => {
  for (let at = element; at; at = at.parentElement) {
    const [r, g, b, a] = rgb(getComputedStyle(at).backgroundColor);
    if (a === undefined || a > 0) { return [r, g, b]; }
  }
  return [255, 255, 255];
};
for (const element of document.querySelectorAll("body *:not(svg):not(svg *)")) {
  const own = [...element.childNodes].some((node) => node.nodeType === 3 && node.textContent.trim() !== "");
  if (!own || element.getClientRects().length === 0) { continue; }
  const [light, dark] = [luminance(rgb(getComputedStyle(element).color)), luminance(behind(element))].sort((x, y) => y - x);
  const ratio = (light + 0.05) / (dark + 0.05);
  if (ratio < 4.5) {
    problems.push("contrast " + ratio.toFixed(2) + ": " + element.tagName + "." + element.className + " " + element.textContent.trim().slice(0, 30));
  }
}
return problems;
"#;

#[tokio::test]
async fn every_page_fits_a_phone_and_names_its_fields() {
    if !browser_wanted() {
        return;
    }
    let dir = TempDir::new("portal-phone");
    let env = [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_FAILING_AFTER", "1")];
    let server = Hookline::start_with(dir.path(), &env).await;
    let receiver = Receiver::start().await;
    receiver.answer(Reply::status(503).with_body("down for maintenance"));
    server.tenant("acme").await;
    let body = json!({"url": format!("{}/a-rather-long-path/for/a/webhook/receiver?with=query", receiver.url),
        "topics": ["pdf.processed"], "retry_schedule": []});
    let endpoint = server.endpoint("acme", body).await["id"].as_str().unwrap().to_owned();
    let event = server.publish("acme", "pdf.processed", r#"{"pages":3}"#).await;
    let failed = server.wait_for_deliveries("acme", &event, "failed", 1).await;
    let delivery = failed["data"][0]["id"].as_str().unwrap().to_owned();
    let link = server.admin("POST", "/v1/tenants/acme/portal-links", None).await;

    let browser = Browser::start().await;
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.client.goto(link.body["url"].as_str().unwrap()).await.unwrap();
    browser.text_once("[data-endpoint]").await;
    let pages = [
        ("webhooks", "/portal/webhooks".to_owned()),
        ("add-webhook", "/portal/webhooks/new".to_owned()),
        ("endpoint", format!("/portal/webhooks/{endpoint}")),
        ("settings", format!("/portal/webhooks/{endpoint}/settings")),
        ("deliveries", "/portal/deliveries?window=24h&answer=5xx".to_owned()),
        ("delivery", format!("/portal/deliveries/{delivery}")),
        ("catalogue", "/portal/catalogue".to_owned()),
    ];
    let check = async |name: &str, path: &str| {
        browser.mark_old().await;
        browser.client.goto(&format!("{}{path}", server.url)).await.unwrap();
        browser.wait_for_new().await;
        browser.text_once("main").await;
        let problems = browser.client.execute(PAGE_PROBLEMS, Vec::new()).await.unwrap();
        assert_eq!(problems, json!([]), "{name}: {path}");
        browser.screenshot(&format!("phone-{name}")).await;
    };
    for (name, path) in &pages {
        check(name, path).await;
    }
    // The same pages in a dark theme with another accent.
    let theme = json!({"theme": {"mode": "dark", "accent": "#ff6600"}});
    let dark = server.admin("POST", "/v1/tenants/acme/portal-links", Some(theme)).await;
    // A browser signed in goes on to its webhooks: this link starts a session of its own once the other is gone.
    browser.client.delete_all_cookies().await.unwrap();
    browser.mark_old().await;
    browser.client.goto(dark.body["url"].as_str().unwrap()).await.unwrap();
    browser.wait_for_new().await;
    browser.text_once("[data-endpoint]").await;
    for (name, path) in &pages {
        check(&format!("dark-{name}"), path).await;
    }
    // The console too, signed in with the admin key.
    browser.client.goto(&format!("{}/console/", server.url)).await.unwrap();
    browser.client.find(Locator::Css("#key")).await.unwrap().send_keys(support::ADMIN_KEY).await.unwrap();
    browser.click("#sign-in button").await;
    for (name, path) in [
        ("console-queue", "/console/queue".to_owned()),
        ("console-tenants", "/console/tenants".to_owned()),
        ("console-tenant", "/console/tenants/acme".to_owned()),
        ("console-found", format!("/console/search?id={delivery}")),
        ("console-topics", "/console/topics".to_owned()),
    ] {
        check(name, &path).await;
    }
    browser.close().await;
}
