//! The SSRF guard through a real `hookline serve` without the dangerous switch: a receiver listening on the host's
//! own network address gets nothing, whether the endpoint is created now or was created before the guard knew
//! better, and a blocked delivery fails at once instead of retrying through its schedule.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use serde_json::json;
use support::{Hookline, Receiver, TempDir};

/// An address of one of this host's interfaces other than loopback: what a service bound to `0.0.0.0` listens on.
fn own_address() -> IpAddr {
    let addresses = hookline_dispatch::guard::host_addresses();
    let usable = |address: &&IpAddr| match address {
        IpAddr::V4(v4) => !v4.is_loopback(),
        // A link-local address needs a scope to be reached, and is refused as link-local in any case.
        IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unicast_link_local(),
    };
    let found = addresses.iter().filter(usable).min_by_key(|address| address.is_ipv6()).copied();
    found.unwrap_or_else(|| panic!("this test needs an interface address besides loopback; found {addresses:?}"))
}

#[tokio::test]
async fn a_listener_on_the_hosts_own_address_receives_nothing() {
    let address = own_address();
    let receiver = Receiver::start_on(address).await;
    let url = format!("{}/a", receiver.url);
    let dir = TempDir::new("ssrf-own-address");

    // An endpoint made while the switch was on (as before an upgrade), with a quick schedule that would show retries.
    let mut server = Hookline::start(dir.path()).await;
    server.tenant("acme").await;
    let endpoint = json!({"url": url, "topics": ["pdf.processed"], "retry_schedule": ["100ms", "100ms"]});
    server.endpoint("acme", endpoint.clone()).await;
    server.terminate().await;
    server.restart_with(&[("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "false")]).await;

    // The same URL is refused now, naming why.
    let answer = server.admin("POST", "/v1/tenants/acme/endpoints", Some(endpoint)).await;
    assert_eq!((answer.status, answer.code()), (422, "blocked_url"), "{:?}", answer.body);
    let detail = answer.body["detail"].as_str().unwrap();
    assert!(detail.contains("an address of this host"), "{detail}");

    // The one made before is refused when connecting: once, with the reason, and nothing reaches the listener.
    let event = server.publish("acme", "pdf.processed", r#"{"pdf_id":"pdf_1"}"#).await;
    let page = server.wait_for_deliveries("acme", &event, "failed", 1).await;
    let delivery_id = page["data"][0]["id"].as_str().unwrap().to_owned();
    let delivery = server.delivery("acme", &delivery_id).await;
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "a blocked delivery is not retried on its schedule: {delivery:?}");
    assert_eq!(attempts[0]["error"], "blocked", "{delivery:?}");
    let detail = attempts[0]["error_detail"].as_str().unwrap();
    assert!(detail.contains(&address.to_string()) && detail.contains("an address of this host"), "{detail}");
    assert_eq!(delivery["next_attempt"], serde_json::Value::Null, "{delivery:?}");
    assert!(receiver.requests().is_empty(), "{:?}", receiver.requests());

    // Once the operator allows it, the failed delivery can be retried by hand.
    server.terminate().await;
    server.restart_with(&[("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true")]).await;
    let answer = server.admin("POST", &format!("/v1/tenants/acme/deliveries/{delivery_id}/retry"), None).await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].path, "/a");
    server.wait_for_deliveries("acme", &event, "succeeded", 1).await;
}

#[tokio::test]
async fn every_literal_form_of_an_internal_address_is_refused_when_set() {
    let dir = TempDir::new("ssrf-literals");
    let server = Hookline::start_with(dir.path(), &[]).await;
    server.tenant("acme").await;
    let own = match own_address() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let blocked = [
        format!("http://{own}:19100/a"),
        "http://192.0.2.2:19100/a".to_owned(),
        "http://198.51.100.7/a".to_owned(),
        "http://203.0.113.255/a".to_owned(),
        "http://198.18.0.1/a".to_owned(),
        "http://0.1.2.3/a".to_owned(),
        "http://240.0.0.1/a".to_owned(),
        "http://255.255.255.255/a".to_owned(),
        "http://224.0.0.1/a".to_owned(),
        "http://192.0.0.8/a".to_owned(),
        "http://[::127.0.0.1]/a".to_owned(),
        "http://[::ffff:0:127.0.0.1]/a".to_owned(),
        "http://[::ffff:127.0.0.1]/a".to_owned(),
        "http://[2002:7f00:1::1]/a".to_owned(),
        "http://[2002:a9fe:a9fe::1]/a".to_owned(),
        "http://[64:ff9b::7f00:1]/a".to_owned(),
        "http://[64:ff9b:1::1]/a".to_owned(),
        "http://[2001:db8::1]/a".to_owned(),
        "http://[2001::1]/a".to_owned(),
        "http://[fd00::2]/a".to_owned(),
        "http://[fec0::1]/a".to_owned(),
    ];
    for url in &blocked {
        let answer = server
            .admin("POST", "/v1/tenants/acme/endpoints", Some(json!({"url": url, "topics": ["pdf.processed"]})))
            .await;
        assert_eq!((answer.status, answer.code()), (422, "blocked_url"), "{url}: {:?}", answer.body);
    }
    for url in
        ["http://0x7f000001/a", "http://0x7f.0.0.1/a", "http://0177.0.0.1/a", "http://127.1/a", "http://2130706433/a"]
    {
        let answer = server
            .admin("POST", "/v1/tenants/acme/endpoints", Some(json!({"url": url, "topics": ["pdf.processed"]})))
            .await;
        assert_eq!((answer.status, answer.code()), (422, "invalid_url"), "{url}: {:?}", answer.body);
        let detail = answer.body["detail"].as_str().unwrap();
        assert!(detail.contains("four decimal numbers"), "{url}: {detail}");
    }
    // Public addresses, and public addresses in IPv6 forms, are accepted.
    for url in ["http://93.184.216.34/a", "http://[::ffff:93.184.216.34]/a", "http://[2606:4700::1111]/a"] {
        server.endpoint("acme", json!({"url": url, "topics": ["pdf.processed"]})).await;
    }
}
