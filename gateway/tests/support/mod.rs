//! Test support: a real gateway on an ephemeral loopback port and a real
//! SSE client reading its stream over HTTP.

#![allow(dead_code)]

pub mod redis_server;

use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use logs_sse_gateway::Config;
use logs_sse_protocol::{ChannelStatus, CloseEvent, LogEvent};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ETL_TOKEN: &str = "etl-test-token";
pub const FAAS_TOKEN: &str = "faas-test-token";
pub const FUNCTION_TOKEN: &str = "function-test-token";
pub const ADMIN_TOKEN: &str = "admin-test-token";
/// Longest a test waits for one event before failing.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestGateway {
    pub base: String,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// The gateway's own Redis when the suite runs on the Redis backend.
    redis: Option<redis_server::RedisServer>,
}

/// Whether the suite runs on the Redis backend (`LOGS_SSE_TEST_BACKEND=redis`):
/// every test gateway then gets a redis-server of its own.
pub fn on_redis() -> bool {
    std::env::var("LOGS_SSE_TEST_BACKEND").is_ok_and(|b| b == "redis")
}

impl TestGateway {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::for_tests();
        let redis = on_redis().then(|| {
            let server = redis_server::RedisServer::start(redis_server::Persistence::None);
            config.redis_url = Some(server.url());
            config.redis_check_ms = 100;
            server
        });
        configure(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            logs_sse_gateway::run(listener, config, async {
                let _ = stopped.await;
            })
            .await
            .expect("gateway run");
        });
        TestGateway {
            base,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
            redis,
        }
    }

    /// A handle on a gateway running elsewhere (a `logs-sse-gateway`
    /// process) at `base`; dropping or stopping it leaves that one alone.
    pub fn external(base: String) -> Self {
        TestGateway {
            base,
            http: reqwest::Client::new(),
            stop: None,
            task: None,
            redis: None,
        }
    }

    /// Signals shutdown and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("gateway stops in time")
                .expect("gateway task");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Publishes a JSON body with a service token; returns status and body.
    pub async fn publish(&self, token: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/api/logs/publish"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("publish request");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.expect("publish answer is JSON"),
        )
    }

    /// Publishes `body` with an `Idempotency-Key`; returns status and body.
    pub async fn publish_keyed(&self, token: &str, key: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/api/logs/publish"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .expect("publish request");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.expect("publish answer is JSON"),
        )
    }

    /// Publishes one ETL log and returns its cursor.
    pub async fn publish_etl(&self, workspace: &str, workflow: &str, log_data: Value) -> String {
        let (status, body) = self
            .publish(
                ETL_TOKEN,
                &serde_json::json!({"service": "etl", "workspace_id": workspace, "workflow_id": workflow, "logData": log_data}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["cursors"][0]["cursor"]
            .as_str()
            .expect("cursor")
            .to_owned()
    }

    pub async fn stats(&self) -> Value {
        self.http
            .get(self.url("/admin/logs/stats"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats JSON")
    }

    /// The `/metrics` text (admin token).
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Opens a stream and reads its hello and one status per channel.
    pub async fn subscribe(&self, query: &str) -> Stream {
        self.subscribe_request(query, self.stream_request(query))
            .await
    }

    /// Like [`Self::subscribe`], for a customised request of `query`.
    pub async fn subscribe_request(&self, query: &str, request: reqwest::RequestBuilder) -> Stream {
        let mut stream = self.open_request(request).await;
        let hello = stream.next_event().await;
        assert_eq!(hello.event, "hello");
        let expected = query
            .split('&')
            .find_map(|p| p.strip_prefix("channels="))
            .map_or(0, |c| {
                c.split(',').collect::<std::collections::HashSet<_>>().len()
            });
        for _ in 0..expected {
            let status = stream.next_event().await;
            assert_eq!(status.event, "status", "{status:?}");
            stream
                .statuses
                .push(serde_json::from_str(&status.data).expect("status JSON"));
        }
        stream
    }

    /// Opens a stream without reading anything.
    pub async fn open(&self, query: &str) -> Stream {
        self.open_request(self.stream_request(query)).await
    }

    /// A stream request to customise (headers, cookies) before opening.
    pub fn stream_request(&self, query: &str) -> reqwest::RequestBuilder {
        self.http
            .get(self.url(&format!("/api/logs/stream?{query}")))
    }

    /// Sends a stream request that must succeed, without reading anything.
    pub async fn open_request(&self, request: reqwest::RequestBuilder) -> Stream {
        let response = request.send().await.expect("stream request");
        assert_eq!(
            response.status(),
            200,
            "stream refused: {}",
            response.text().await.unwrap_or_default()
        );
        Stream {
            events: response.bytes_stream().eventsource().boxed(),
            statuses: Vec::new(),
        }
    }

    /// Sends a request that must fail; returns its status, error code and
    /// `Retry-After`.
    pub async fn refused(&self, request: reqwest::RequestBuilder) -> (u16, String, Option<String>) {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        (
            status,
            body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            retry_after,
        )
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A log as received, with the raw `logData` parsed for assertions.
#[derive(Debug, Clone)]
pub struct Received {
    pub channel: String,
    pub cursor: String,
    pub seq: u64,
    pub data: Value,
}

pub struct Stream {
    events: BoxStream<'static, Result<Event, eventsource_stream::EventStreamError<reqwest::Error>>>,
    pub statuses: Vec<ChannelStatus>,
}

impl Stream {
    /// The next event, failing the test after [`WAIT`].
    pub async fn next_event(&mut self) -> Event {
        self.try_next_event(WAIT)
            .await
            .expect("an event before the timeout")
    }

    /// The next event, or `None` if none comes within `wait` or the stream ended.
    pub async fn try_next_event(&mut self, wait: Duration) -> Option<Event> {
        match tokio::time::timeout(wait, self.events.next()).await {
            Ok(Some(Ok(event))) => Some(event),
            Ok(Some(Err(error))) => panic!("stream error: {error}"),
            Ok(None) | Err(_) => None,
        }
    }

    /// The next event; `None` when the stream ends, breaks or stays silent
    /// for `wait` (a node that died).
    pub async fn next_event_or_end(&mut self, wait: Duration) -> Option<Event> {
        match tokio::time::timeout(wait, self.events.next()).await {
            Ok(Some(Ok(event))) => Some(event),
            _ => None,
        }
    }

    /// The next `log` event; fails on any other event.
    pub async fn next_log(&mut self) -> Received {
        let event = self.next_event().await;
        assert_eq!(event.event, "log", "expected a log, got {event:?}");
        parse_log(&event.data)
    }

    /// Reads `n` logs.
    pub async fn logs(&mut self, n: usize) -> Vec<Received> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next_log().await);
        }
        out
    }

    /// Asserts nothing arrives for a short while.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(event) = self.try_next_event(wait).await {
            panic!("expected no event, got {event:?}");
        }
    }

    /// Reads until the `close` event.
    pub async fn until_close(&mut self) -> (Vec<Received>, CloseEvent) {
        let mut logs = Vec::new();
        loop {
            let event = self.next_event().await;
            match event.event.as_str() {
                "log" => logs.push(parse_log(&event.data)),
                "close" => return (logs, serde_json::from_str(&event.data).expect("close JSON")),
                other => panic!("unexpected event {other}"),
            }
        }
    }
}

pub fn parse_log(data: &str) -> Received {
    let event: LogEvent<'_> = serde_json::from_str(data).expect("log event JSON");
    Received {
        channel: event.channel.to_string(),
        cursor: event.cursor.to_string(),
        seq: event.cursor.seq,
        data: serde_json::from_str(event.log_data.get()).expect("logData JSON"),
    }
}
