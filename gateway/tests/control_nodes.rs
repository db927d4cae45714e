//! Channel changes across nodes: three gateways on one real
//! `redis-server`, the change sent to each node in turn reaches the node
//! holding the stream (exactly once checked against the stream model), and
//! a stream whose node is gone answers 404 (or 503 after the bounded wait),
//! never a hang.

#![allow(clippy::unwrap_used)]

mod control_support;
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use control_support::*;
use serde_json::json;
use support::redis_server::{Persistence, RedisServer};
use support::*;

async fn node(server: &RedisServer) -> TestGateway {
    let url = server.url();
    TestGateway::start_with(move |c| {
        c.redis_url = Some(url);
        c.redis_check_ms = 100;
        c.redis_timeout_ms = 500;
    })
    .await
}

/// Waits until every node's relay is subscribed to its control channel.
async fn relays_up(server: &RedisServer, count: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = Command::new("redis-cli")
            .args([
                "-p",
                &server.port.to_string(),
                "pubsub",
                "channels",
                "logs-sse:{node:*}:control",
            ])
            .output()
            .unwrap();
        let found = String::from_utf8_lossy(&out.stdout).lines().count();
        if found >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "relays not up: {found} of {count}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const WF: [&str; 3] = ["logs:etl:ws1:wf1", "logs:etl:ws1:wf2", "logs:etl:ws1:wf3"];

#[tokio::test]
async fn a_change_sent_to_any_node_reaches_the_streams_node_and_keeps_it_exact() {
    let server = RedisServer::start(Persistence::None);
    let (a, b, c) = (
        node(&server).await,
        node(&server).await,
        node(&server).await,
    );
    relays_up(&server, 3).await;
    let mut stream = open(&a, &[WF[0]]).await;
    assert!(
        stream.id.contains('.'),
        "a Redis node names itself: {}",
        stream.id
    );
    // Each node answers for the stream on `a`, with `a`'s result.
    for (n, target) in [&a, &b, &c].into_iter().enumerate() {
        let channel = WF[1 + n % 2];
        let body = if n == 2 {
            json!({"remove": [WF[1]]})
        } else {
            json!({"add": [{"channel": channel, "since": "earliest"}]})
        };
        let (status, answer) = change(target, &stream.id, &stream.secret, &body, None).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["connectionId"], stream.id.as_str());
        if n < 2 {
            assert_eq!(answer["statuses"][0]["channel"], channel);
            let Ev::Status(status) = stream.next().await else {
                panic!()
            };
            assert_eq!(status.channel.as_str(), channel);
        }
    }
    let (status, answer) = change(&b, &stream.id, "wrong", &json!({"remove": [WF[0]]}), None).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("stream_forbidden"))
    );
    let forged = format!("{}.999999", stream.id.split('.').next().unwrap());
    let (status, answer) = change(
        &b,
        &forged,
        &stream.secret,
        &json!({"remove": [WF[0]]}),
        None,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("unknown_stream"))
    );
    let (status, _) = change(
        &c,
        "0badc0de.1",
        &stream.secret,
        &json!({"remove": [WF[0]]}),
        None,
    )
    .await;
    assert_eq!(status, 404, "a node that never existed");
    drop(stream);

    // Under publishing, changes through every node in turn.
    run_changes(
        &[&a, &b, &c],
        &[WF[0]],
        &[WF[0], WF[1], WF[2], "logs:faas:ws1:f1"],
        &[
            json!({"add": [{"channel": "logs:etl:ws1", "since": "earliest"}]}),
            json!({"add": [{"channel": WF[1], "since": "last:3"}], "remove": [WF[0]]}),
            json!({"add": [{"channel": "logs:faas:ws1:f1", "since": "earliest"}], "remove": ["logs:etl:ws1"]}),
            json!({"add": [{"channel": "logs:etl:ws1", "since": "last:10"}]}),
            json!({"remove": [WF[1], "logs:faas:ws1:f1"]}),
            json!({"add": [{"channel": WF[0]}, {"channel": WF[2], "since": "earliest"}]}),
        ],
    )
    .await;
    let metrics = b.metrics().await;
    assert!(
        metrics.contains("logs_sse_stream_control_forwarded_total{outcome=\"answered\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("logs_sse_stream_control_forward_seconds_count"));
}

#[tokio::test]
async fn a_change_for_a_killed_node_answers_404_or_503_without_hanging() {
    let server = RedisServer::start(Persistence::None);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_logs-sse-gateway"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--allow-anonymous",
        ])
        .args(["--redis-url", &server.url(), "--redis-check-ms", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let doomed = TestGateway::external(format!("http://127.0.0.1:{port}"));
    let other = node(&server).await;
    let deadline = Instant::now() + WAIT;
    while !doomed
        .http
        .get(doomed.url("/health"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "the spawned node never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    relays_up(&server, 2).await;
    let stream = open(&doomed, &[WF[0]]).await;
    let body = json!({"add": [{"channel": WF[1]}]});
    assert_eq!(
        change(&other, &stream.id, &stream.secret, &body, None)
            .await
            .0,
        200
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let started = Instant::now();
    let (status, answer) = change(&other, &stream.id, &stream.secret, &body, None).await;
    // Its pub/sub connection died with it, so nobody receives the call: 404
    // at once (503 after the bounded wait if Redis has not noticed yet).
    assert!(
        (status == 404 && answer["error"]["code"] == "unknown_stream")
            || (status == 503 && answer["error"]["code"] == "stream_unreachable"),
        "{status} {answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
}
