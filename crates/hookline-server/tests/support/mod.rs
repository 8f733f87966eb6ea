//! What the server's in-process tests share: a client of a running server's API with the admin key.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// How long a test waits for any one thing to happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// The API of a server at `address`, called with the admin key `key`.
pub struct Api {
    base: String,
    key: &'static str,
    client: Client<HttpConnector, Full<bytes::Bytes>>,
}

impl Api {
    pub fn new(address: SocketAddr, key: &'static str) -> Api {
        Api { base: format!("http://{address}"), key, client: Client::builder(TokioExecutor::new()).build_http() }
    }

    /// The status and the JSON body (`null` when there is none) of one request.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .body(Full::from(body.map(|body| body.to_string()).unwrap_or_default()))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// A page or a form as a browser on this server's own pages sends it (its `Origin`), with `cookie`: the
    /// status, the `location` and `set-cookie` headers, and the body as text.
    pub async fn browse(
        &self,
        path: &str,
        form: Option<&str>,
        cookie: &str,
    ) -> (u16, Option<String>, Option<String>, String) {
        let request = hyper::Request::builder()
            .method(if form.is_some() { "POST" } else { "GET" })
            .uri(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::from(form.unwrap_or_default().to_owned()))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
        let (location, cookie) = (header("location"), header("set-cookie"));
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, location, cookie, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The body of a request that must succeed.
    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method, path, body).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
        answer
    }

    /// Waits until `GET path` answers as `done` wants (its status and body), for up to `WAIT`: asking again is the
    /// only way for the API's state, which has no event to wait on (an attempt's record is written in a batch
    /// after its request was answered; a purge runs on its own period). The one place these tests poll.
    pub async fn until(&self, path: &str, what: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (status, answer) = self.call("GET", path, None).await;
            if done(status, &answer) {
                return answer;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}: {path} answers {status} {answer}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
