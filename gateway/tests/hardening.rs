//! Hostile and broken clients against the real gateway on a loopback port:
//! slow request heads, silent sockets, trickled bodies, clients that stop
//! reading, more connections than the cap, symlinks out of the static
//! folder, and errors that hyper or axum answer. Timeouts are lowered to a
//! second or two so each test takes a few seconds on real sockets.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{sleep, timeout, Instant};

fn addr(gw: &TestGateway) -> std::net::SocketAddr {
    gw.base.trim_start_matches("http://").parse().unwrap()
}

async fn connect(gw: &TestGateway) -> TcpStream {
    TcpStream::connect(addr(gw)).await.unwrap()
}

/// Reads (and discards) until the gateway closes the socket; the time it
/// took, or `None` if it is still open after `wait`.
async fn closed_within(socket: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    timeout(wait, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// Sends a raw request and returns the status and JSON body of the answer.
async fn raw_request(gw: &TestGateway, request: &[u8]) -> (u16, Value) {
    let mut socket = connect(gw).await;
    socket.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    timeout(WAIT, socket.read_to_end(&mut answer))
        .await
        .unwrap()
        .ok();
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn metric(gw: &TestGateway, name: &str) -> u64 {
    let text = gw.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("logs_sse_{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn request_heads_trickled_byte_by_byte_are_cut_at_the_header_read_timeout() {
    let gw = TestGateway::start_with(|c| c.header_read_timeout_secs = 1).await;
    let mut crowd = Vec::new();
    for _ in 0..30 {
        let mut socket = connect(&gw).await;
        socket
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        crowd.push(socket);
    }
    // One more header byte every 300 ms: each arrives well within any
    // per-read timeout, but the head never completes.
    for _ in 0..4 {
        sleep(Duration::from_millis(300)).await;
        for socket in &mut crowd {
            let _ = socket.write_all(b"X").await;
        }
    }
    for socket in &mut crowd {
        let took = closed_within(socket, Duration::from_secs(3)).await;
        assert!(took.is_some(), "a slow head is still open after 4 s");
    }
    let (status, _, _) = gw.refused(gw.http.get(gw.url("/nope"))).await;
    assert_eq!(status, 404, "the gateway still serves");
}

#[tokio::test]
async fn silent_connections_are_closed_and_streams_are_not() {
    let gw = TestGateway::start_with(|c| {
        c.header_read_timeout_secs = 30;
        c.idle_timeout_secs = 2;
        c.heartbeat_secs = 1;
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(connect(&gw).await);
    }
    let mut stream = gw.subscribe("channels=logs:etl:ws1:wf1").await;
    for socket in &mut silent {
        let took = closed_within(socket, Duration::from_secs(5)).await;
        assert!(took.is_some(), "a silent socket outlived the idle timeout");
    }
    // The stream's heartbeats keep it alive past the idle timeout.
    sleep(Duration::from_millis(500)).await;
    gw.publish_etl("ws1", "wf1", json!({"n": 1})).await;
    loop {
        let event = stream.next_event().await;
        if event.event == "log" {
            break;
        }
        assert_eq!(event.event, "ping", "{event:?}");
    }
    assert!(metric(&gw, "idle_timeouts_total").await >= 50);
}

#[tokio::test]
async fn a_trickled_publish_body_is_refused_with_408_body_timeout() {
    let gw = TestGateway::start_with(|c| c.body_timeout_secs = 1).await;
    let body = br#"{"service":"etl","workspace_id":"ws1","workflow_id":"wf1","logData":{"message":"trickled one byte at a time, far too slowly"}}"#;
    let mut socket = connect(&gw).await;
    let head = format!(
        "POST /api/logs/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ETL_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = socket.into_split();
    let trickle = tokio::spawn(async move {
        for byte in body {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            sleep(Duration::from_millis(200)).await;
        }
    });
    let mut answer = Vec::new();
    timeout(WAIT, reader.read_to_end(&mut answer))
        .await
        .unwrap()
        .ok();
    trickle.abort();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let json: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["error"]["code"], "body_timeout", "{json}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing of it was published.
    let mut stream = gw
        .subscribe("channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@earliest")
        .await;
    assert_eq!(stream.statuses[0].replayed, 0);
    stream.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_publish_body_that_pauses_is_refused_with_408() {
    let gw = TestGateway::start_with(|c| {
        c.body_timeout_secs = 30;
        c.body_idle_timeout_secs = 1;
    })
    .await;
    let mut socket = connect(&gw).await;
    let head = format!(
        "POST /api/logs/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ETL_TOKEN}\r\nContent-Length: 100\r\n\r\n{{\"service\":"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let started = Instant::now();
    timeout(WAIT, socket.read_to_end(&mut answer))
        .await
        .unwrap()
        .ok();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("paused"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A stream request from a socket with a small receive buffer that is
/// never read.
async fn stalled_stream(gw: &TestGateway, channel: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr(gw)).await.unwrap();
    stream
        .write_all(
            format!("GET /api/logs/stream?channels={channel} HTTP/1.1\r\nHost: x\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    stream
}

/// Publishes `batches` batches of 50 logs of ~1 KB to `logs:etl:{ws}:wf1`.
async fn flood(gw: &TestGateway, ws: &str, batches: usize) {
    let item = json!({"service": "etl", "workspace_id": ws, "workflow_id": "wf1", "logData": {"pad": "x".repeat(1000)}});
    let batch = Value::Array(vec![item; 50]);
    for _ in 0..batches {
        let (status, body) = gw.publish(ETL_TOKEN, &batch).await;
        assert_eq!(status, 202, "{body}");
    }
}

async fn open_streams(gw: &TestGateway) -> i64 {
    gw.stats().await["connections"].as_i64().unwrap()
}

#[tokio::test]
async fn a_stream_whose_client_stopped_reading_is_dropped_and_its_slot_freed() {
    let gw = TestGateway::start_with(|c| {
        c.write_timeout_secs = 1;
        c.socket_send_buffer_bytes = Some(8192);
        c.max_streams_per_ip = 3;
    })
    .await;
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(stalled_stream(&gw, "logs:etl:ws1").await);
    }
    sleep(Duration::from_millis(200)).await;
    assert_eq!(open_streams(&gw).await, 3);
    // Enough to fill the socket buffers and hyper's, not the send queues:
    // only the write timeout can end these streams.
    flood(&gw, "ws1", 4).await;
    let started = Instant::now();
    while open_streams(&gw).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "stalled streams still hold their slots"
        );
        sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&gw, "write_timeouts_total").await, 3);
    // The per-IP slots are free again, while the stalled clients have
    // still not read a byte.
    let _fresh = gw.subscribe("channels=logs:etl:ws1").await;
    for socket in &mut stalled {
        assert!(closed_within(socket, Duration::from_secs(2))
            .await
            .is_some());
    }
}

#[tokio::test]
async fn a_slow_consumer_cut_frees_its_slot_without_the_client_reading() {
    let gw = TestGateway::start_with(|c| {
        c.write_timeout_secs = 1;
        c.send_queue_events = 20;
        c.max_streams_per_ip = 1;
    })
    .await;
    let _stalled = stalled_stream(&gw, "logs:etl:ws2").await;
    sleep(Duration::from_millis(200)).await;
    flood(&gw, "ws2", 20).await;
    assert!(metric(&gw, "slow_consumer_disconnects_total").await >= 1);
    let started = Instant::now();
    while open_streams(&gw).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the cut stream keeps its slot"
        );
        sleep(Duration::from_millis(100)).await;
    }
    let _fresh = gw.subscribe("channels=logs:etl:ws2").await;
}

/// Reads from `socket` into `seen` until it holds `needle`.
async fn read_until(socket: &mut TcpStream, seen: &mut Vec<u8>, needle: &str) {
    let mut buf = [0u8; 4096];
    timeout(WAIT, async {
        while !String::from_utf8_lossy(seen).contains(needle) {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in {}", String::from_utf8_lossy(seen)));
}

// The gateway writes stream responses itself (no hyper buffers for the
// stream's life): these check that writer on the wire.

#[tokio::test]
async fn a_raw_stream_is_chunked_carries_logs_and_ends_cleanly_at_shutdown() {
    let gw = TestGateway::start().await;
    let mut socket = connect(&gw).await;
    socket
        .write_all(b"GET /api/logs/stream?channels=logs:etl:ws1:wf1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut socket, &mut seen, "event: hello").await;
    let text = String::from_utf8_lossy(&seen).to_string();
    let (head, _) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    for line in [
        "content-type: text/event-stream",
        "transfer-encoding: chunked",
        "cache-control: no-cache",
        "date: ",
    ] {
        assert!(
            head.contains(&format!("\r\n{line}")),
            "{line} missing: {head}"
        );
    }
    gw.publish_etl("ws1", "wf1", json!({"n": 7})).await;
    read_until(&mut socket, &mut seen, "\"n\":7").await;
    assert_eq!(open_streams(&gw).await, 1);
    let base = gw.base.clone();
    gw.stop().await;
    let mut rest = Vec::new();
    timeout(WAIT, socket.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    seen.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("event: close"), "{text}");
    assert!(
        text.ends_with("\r\n0\r\n\r\n"),
        "the chunked body is terminated: {text}"
    );
    // Every chunk's size line matches its data.
    let (_, mut body) = text.split_once("\r\n\r\n").unwrap();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            assert_eq!(rest, "\r\n");
            break;
        }
        assert_eq!(&rest[size..size + 2], "\r\n", "chunk of {size} in {base}");
        body = &rest[size + 2..];
    }
}

#[tokio::test]
async fn a_refused_stream_keeps_its_connection_unless_asked_to_close() {
    let gw = TestGateway::start().await;
    let mut socket = connect(&gw).await;
    socket
        .write_all(b"GET /api/logs/stream?channels=nope HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut socket, &mut seen, "}}").await;
    let text = String::from_utf8_lossy(&seen).to_string();
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap()["error"]["code"],
        "invalid_channel"
    );
    // The same connection serves the next requests (hyper answers them and
    // hands the connection back), and a stream after them.
    socket
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut socket, &mut seen, "HTTP/1.1 200 OK").await;
    let publish =
        json!({"service": "etl", "workspace_id": "ws1", "workflow_id": "wf1", "logData": {"n": 1}})
            .to_string();
    let request = format!(
        "POST /api/logs/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ETL_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{publish}",
        publish.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    read_until(&mut socket, &mut seen, "HTTP/1.1 202").await;
    let stream = "GET /api/logs/stream?channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@earliest HTTP/1.1\r\nHost: x\r\n\r\n";
    socket.write_all(stream.as_bytes()).await.unwrap();
    read_until(&mut socket, &mut seen, "\"n\":1").await;
    drop(socket);

    let mut socket = connect(&gw).await;
    socket
        .write_all(
            b"GET /api/logs/stream?channels=nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    timeout(WAIT, socket.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
}

#[tokio::test]
async fn streams_that_hyper_serves_still_stream_and_leaving_frees_them() {
    // hyper notices a client gone from a stream it serves at the next write
    // (a heartbeat); the gateway's own writer as soon as the socket closes.
    let gw = TestGateway::start_with(|c| c.heartbeat_secs = 1).await;
    let requests = [
        // HTTP/1.0 (no chunked encoding) and a pipelined request after the head.
        "GET /api/logs/stream?channels=logs:etl:ws1:wf1 HTTP/1.0\r\n\r\n".to_owned(),
        "GET /api/logs/stream?channels=logs:etl:ws1:wf1 HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\n\r\n".to_owned(),
    ];
    let mut sockets = Vec::new();
    for request in &requests {
        let mut socket = connect(&gw).await;
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        read_until(&mut socket, &mut seen, "event: hello").await;
        sockets.push((socket, seen));
    }
    let mut direct = connect(&gw).await;
    direct
        .write_all(b"GET /api/logs/stream?channels=logs:etl:ws1:wf1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut direct, &mut seen, "event: hello").await;
    assert_eq!(open_streams(&gw).await, 3);
    gw.publish_etl("ws1", "wf1", json!({"n": 1})).await;
    for (socket, seen) in &mut sockets {
        read_until(socket, seen, "\"n\":1").await;
    }
    read_until(&mut direct, &mut seen, "\"n\":1").await;
    drop(direct);
    drop(sockets);
    let deadline = Instant::now() + WAIT;
    while open_streams(&gw).await != 0 {
        assert!(
            Instant::now() < deadline,
            "streams still open after their clients left"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn beyond_the_connection_cap_health_answers_and_the_rest_is_refused() {
    let gw = TestGateway::start_with(|c| c.max_connections = Some(20)).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect(&gw).await);
    }
    sleep(Duration::from_millis(100)).await;
    let (status, body) = raw_request(&gw, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ok")),
        "{body}"
    );
    let (status, body) = raw_request(
        &gw,
        b"GET /api/logs/stream?channels=logs:etl:a HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
    // A flood of silent sockets beyond the cap cannot keep health out:
    // each newcomer takes the place of the oldest over-capacity connection.
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(connect(&gw).await);
    }
    let (status, _) = raw_request(&gw, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status, 200);
    let mut closed = 0;
    for socket in &mut flood {
        if closed_within(socket, Duration::from_millis(1500))
            .await
            .is_some()
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 200, "over-capacity sockets are closed within 1.5 s");
    drop(held);
    sleep(Duration::from_millis(200)).await;
    gw.publish_etl("ws1", "wf1", json!({"n": 1})).await;
}

#[tokio::test]
async fn every_error_status_has_a_json_body() {
    let gw = TestGateway::start().await;
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (gw.http.get(gw.url("/nothing/here")), 404, "not_found"),
        (gw.http.delete(gw.url("/health")), 405, "method_not_allowed"),
        (
            gw.http.get(gw.url("/api/logs/publish")),
            405,
            "method_not_allowed",
        ),
        (
            gw.http
                .get(gw.url(&format!("/health?pad={}", "a".repeat(9000)))),
            414,
            "uri_too_long",
        ),
        (
            gw.http
                .get(gw.url("/health"))
                .header("x-pad", "a".repeat(20_000)),
            431,
            "headers_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        let allow = response.headers().get("allow").cloned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().len() > 10,
            "{body}"
        );
        if status == 405 {
            assert!(allow.is_some(), "405 keeps its Allow header");
        }
    }
    let many: String = (0..120).map(|i| format!("x-h{i}: v\r\n")).collect();
    let (status, body) = raw_request(
        &gw,
        format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (431, Some("headers_too_large"))
    );
}

#[tokio::test]
async fn static_files_do_not_follow_symlinks_out_of_their_folder() {
    let base = std::env::temp_dir().join(format!("logs-sse-static-{}", std::process::id()));
    let (site, secret) = (base.join("site"), base.join("secret"));
    std::fs::create_dir_all(site.join("assets")).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(site.join("index.html"), "<h1>app</h1>").unwrap();
    std::fs::write(site.join("assets/app.js"), "app()").unwrap();
    std::fs::write(secret.join("secret.txt"), "SECRET").unwrap();
    std::fs::write(secret.join("index.html"), "SECRET INDEX").unwrap();
    std::os::unix::fs::symlink("../secret/secret.txt", site.join("link.txt")).unwrap();
    std::os::unix::fs::symlink("../secret", site.join("dir")).unwrap();
    std::os::unix::fs::symlink("assets/app.js", site.join("inside.js")).unwrap();
    let dir = site.clone();
    let gw = TestGateway::start_with(move |c| c.static_dir = Some(dir)).await;
    let get = |path: &str| gw.http.get(gw.url(path)).send();
    for path in [
        "/link.txt",
        "/dir/secret.txt",
        "/dir/",
        "/dir",
        "/%6cink.txt",
    ] {
        let response = get(path).await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert!(!text.contains("SECRET"), "{path} leaked: {text}");
        assert_eq!(status, 404, "{path}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
    let inside = get("/inside.js").await.unwrap();
    assert_eq!(
        inside.text().await.unwrap(),
        "app()",
        "links within the folder work"
    );
    let route = get("/some/client/route").await.unwrap();
    assert_eq!(route.text().await.unwrap(), "<h1>app</h1>");
    gw.stop().await;
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn configurations_that_would_cut_healthy_streams_or_leak_files_are_refused() {
    use logs_sse_gateway::{AppState, Config, ConfigError};
    let mut config = Config::for_tests();
    config.idle_timeout_secs = 15;
    config.heartbeat_secs = 15;
    assert!(matches!(
        AppState::new(config),
        Err(ConfigError::IdleBelowHeartbeat { .. })
    ));
    let base = std::env::temp_dir().join(format!("logs-sse-index-{}", std::process::id()));
    std::fs::create_dir_all(base.join("site")).unwrap();
    std::fs::write(base.join("elsewhere.html"), "x").unwrap();
    std::os::unix::fs::symlink("../elsewhere.html", base.join("site/index.html")).unwrap();
    let mut config = Config::for_tests();
    config.static_dir = Some(base.join("site"));
    let error = AppState::new(config).unwrap_err();
    assert!(error.to_string().contains("outside the folder"), "{error}");
    std::fs::remove_dir_all(&base).unwrap();
}
