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
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--window-size=1280,900"],
            }),
        );
        let deadline = tokio::time::Instant::now() + WAIT;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(error) => {
                    assert!(tokio::time::Instant::now() < deadline, "chromedriver did not start a session: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        Browser { client, _driver: driver }
    }

    /// Waits until the page has an element `css` matches, and returns the page's text.
    async fn text_once(&self, css: &str) -> String {
        if let Err(error) = self.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
            let at = self.client.current_url().await.map(|url| url.to_string()).unwrap_or_default();
            let source = self.client.source().await.unwrap_or_default();
            panic!("no {css} on the page within {WAIT:?} ({error}); at {at}:\n{source}");
        }
        self.client.find(Locator::Css("body")).await.unwrap().text().await.unwrap()
    }

    /// Reloads the page until it has an element `css` matches (server-rendered pages show new state on a reload).
    async fn reload_until(&self, css: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if self.client.find(Locator::Css(css)).await.is_ok() {
                return self.client.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
            }
            assert!(tokio::time::Instant::now() < deadline, "no {css} after reloading for {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.client.refresh().await.unwrap();
        }
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css}: {error}"))
            .click()
            .await
            .unwrap();
    }

    async fn text_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css}: {error}"))
            .text()
            .await
            .unwrap()
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
    browser.client.find(Locator::Css("#url")).await.unwrap().send_keys("not a url").await.unwrap();
    browser.click("input[name=topics][value='pdf.processed']").await;
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

    // A test event: its delivery and its first attempt.
    browser.click("form[action$='/test'] button").await;
    let text = browser.reload_until("[data-attempt='1'] .answer").await;
    assert!(text.contains("Answered 200") && text.contains("test"), "{text}");
    assert_eq!(browser.text_of("[data-status]").await, "succeeded");
    browser.screenshot("delivery").await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("hookline-topic"), Some("pdf.processed"));

    // The receiver fails; Retry now makes a second attempt, which shows its answer.
    receiver.answer(Reply::status(500).with_body("database down"));
    browser.click("form[action$='/retry'] button").await;
    let text = browser.reload_until("[data-attempt='2'] .answer").await;
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
    browser.close().await;
}
