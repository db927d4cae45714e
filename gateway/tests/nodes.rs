//! Several gateway nodes on one real `redis-server`: delivery across nodes,
//! resuming on another node, a node killed or restarted, and Redis
//! restarted, stopped, frozen or cutting the pub/sub connection.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::redis_server::{Persistence, RedisServer};
use support::*;

async fn node(server: &RedisServer, name: &str) -> TestGateway {
    let url = server.url();
    let name = name.to_owned();
    TestGateway::start_with(move |c| {
        c.redis_url = Some(url);
        c.redis_check_ms = 100;
        c.redis_timeout_ms = 500;
        c.node_id = Some(name);
    })
    .await
}

/// A batch of ETL logs `from..to` of workflow `wf` in workspace `ws`.
fn batch(ws: &str, wf: &str, range: std::ops::Range<u64>) -> Value {
    Value::Array(
        range
            .map(|n| json!({"service": "etl", "workspace_id": ws, "workflow_id": wf, "logData": {"n": n}}))
            .collect(),
    )
}

/// Publishes, retrying while the gateway answers 503 (as the SDKs do).
async fn publish_retrying(gateway: &TestGateway, body: &Value) -> Value {
    for _ in 0..100 {
        let (status, answer) = gateway.publish(ETL_TOKEN, body).await;
        if status == 202 {
            return answer;
        }
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer["error"]["code"], "backend_unavailable", "{answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("publish kept failing");
}

fn numbers(logs: &[Received]) -> Vec<u64> {
    logs.iter().map(|l| l.data["n"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn a_publish_on_one_node_reaches_streams_on_the_others_once_in_order() {
    let server = RedisServer::start(Persistence::None);
    let (a, b, c) = (
        node(&server, "a").await,
        node(&server, "b").await,
        node(&server, "c").await,
    );
    let query = "channels=logs:etl:ws1,logs:etl:ws1:wf1";
    let mut on_b = b.subscribe(query).await;
    let mut on_c = c.subscribe(query).await;
    for start in (0..200).step_by(20) {
        publish_retrying(&a, &batch("ws1", "wf1", start..start + 20)).await;
    }
    let (got_b, got_c) = (on_b.logs(200).await, on_c.logs(200).await);
    assert_eq!(
        numbers(&got_b),
        (0..200).collect::<Vec<_>>(),
        "once, in order, though two channels match"
    );
    assert_eq!(numbers(&got_c), numbers(&got_b));
    let cursors = |logs: &[Received]| logs.iter().map(|l| l.cursor.clone()).collect::<Vec<_>>();
    assert_eq!(
        cursors(&got_b),
        cursors(&got_c),
        "every node issues the same cursors"
    );
    on_b.expect_silence(Duration::from_millis(200)).await;
    let stats = b.stats().await;
    assert_eq!(stats["node"], "b");
    assert_eq!(stats["backend"], "redis");
    assert!(
        stats["history"]["entries"].is_null() && stats["channels"].is_null(),
        "a node does not count the shared history: {stats}"
    );
    assert_eq!(
        server
            .cli(&["PUBSUB", "NUMSUB", "logs-sse:{etl:ws1}:feed"])
            .lines()
            .nth(1),
        Some("2"),
        "one subscription per node with streams, not per stream"
    );
}

#[tokio::test]
async fn a_stream_hopping_between_nodes_under_publishing_loses_and_repeats_nothing() {
    let server = RedisServer::start(Persistence::None);
    let nodes = [
        node(&server, "a").await,
        node(&server, "b").await,
        node(&server, "c").await,
    ];
    const TOTAL: u64 = 600;
    let publisher = {
        let base = nodes[0].base.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for start in (0..TOTAL).step_by(10) {
                let response = http
                    .post(format!("{base}/api/logs/publish"))
                    .bearer_auth(ETL_TOKEN)
                    .json(&batch("ws2", "wf1", start..start + 10))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 202);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };
    let channel = "logs:etl:ws2:wf1";
    let mut received: Vec<Received> = Vec::new();
    let mut hop = 0usize;
    while (received.len() as u64) < TOTAL {
        let query = match received.last() {
            None => format!("channels={channel}&since={channel}@earliest"),
            Some(last) => format!("channels={channel}&since={channel}@{}", last.cursor),
        };
        let mut stream = nodes[hop % 3].subscribe(&query).await;
        let status = &stream.statuses[0];
        assert_ne!(
            status.status,
            logs_sse_protocol::StatusKind::Gap,
            "{status:?}"
        );
        // Read a varying number of logs, then hop to the next node.
        let take = (17 + hop * 31 % 50).min((TOTAL - received.len() as u64) as usize);
        received.extend(stream.logs(take).await);
        hop += 1;
    }
    publisher.await.unwrap();
    assert!(hop >= 10);
    assert_eq!(numbers(&received), (0..TOTAL).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_node_restarted_with_redis_up_resumes_without_a_gap() {
    let server = RedisServer::start(Persistence::None);
    let a = node(&server, "a").await;
    let cursor = a.publish_etl("ws3", "wf1", json!({"n": 0})).await;
    a.stop().await;
    let b = node(&server, "b").await;
    publish_retrying(&b, &batch("ws3", "wf1", 1..4)).await;
    let a = node(&server, "a").await;
    let mut stream = a
        .subscribe(&format!(
            "channels=logs:etl:ws3:wf1&since=logs:etl:ws3:wf1@{cursor}"
        ))
        .await;
    assert_eq!(
        stream.statuses[0].status,
        logs_sse_protocol::StatusKind::Resumed
    );
    assert_eq!(numbers(&stream.logs(3).await), [1, 2, 3]);
}

/// The gateway binary on a free port, for a node killed with SIGKILL.
fn spawn_node(server: &RedisServer) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_logs-sse-gateway"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--allow-anonymous",
        ])
        .args(["--service-token", &format!("etl={ETL_TOKEN}")])
        .args(["--redis-url", &server.url(), "--redis-check-ms", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn clients_of_a_killed_node_resume_on_another_without_loss() {
    let server = RedisServer::start(Persistence::None);
    let (mut child, base) = spawn_node(&server);
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{base}/health")).send().await {
            if r.status() == 200 {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the node process became ready");
    let b = node(&server, "b").await;
    let channel = "logs:etl:ws4:wf1";
    let response = http
        .get(format!("{base}/api/logs/stream?channels={channel}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    use eventsource_stream::Eventsource;
    use futures_util::StreamExt;
    let mut events = response.bytes_stream().eventsource();
    publish_retrying(&b, &batch("ws4", "wf1", 0..5)).await;
    let mut last_cursor = None;
    let mut got = Vec::new();
    while got.len() < 5 {
        let event = tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if event.event == "log" {
            let log = parse_log(&event.data);
            last_cursor = Some(log.cursor.clone());
            got.push(log);
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Logs published while the client reconnects elsewhere.
    publish_retrying(&b, &batch("ws4", "wf1", 5..10)).await;
    let ended = tokio::time::timeout(WAIT, events.next()).await.unwrap();
    assert!(
        !matches!(ended, Some(Ok(ref e)) if e.event == "log"),
        "{ended:?}"
    );
    let mut stream = b
        .subscribe(&format!(
            "channels={channel}&since={channel}@{}",
            last_cursor.unwrap()
        ))
        .await;
    assert_eq!(
        stream.statuses[0].status,
        logs_sse_protocol::StatusKind::Resumed
    );
    got.extend(stream.logs(5).await);
    assert_eq!(numbers(&got), (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn redis_restarted_keeps_history_with_aof_and_gives_a_gap_without() {
    for persistence in [Persistence::Aof, Persistence::None] {
        let mut server = RedisServer::start(persistence);
        let (a, b) = (node(&server, "a").await, node(&server, "b").await);
        let channel = "logs:etl:ws5:wf1";
        let mut open = b.subscribe(&format!("channels={channel}")).await;
        publish_retrying(&a, &batch("ws5", "wf1", 0..3)).await;
        let before = open.logs(3).await;
        server.restart();
        publish_retrying(&a, &batch("ws5", "wf1", 3..6)).await;
        let resume = format!("channels={channel}&since={channel}@{}", before[2].cursor);
        match persistence {
            Persistence::Aof => {
                // The open stream resyncs and goes on; a resume is exact.
                assert_eq!(numbers(&open.logs(3).await), [3, 4, 5]);
                let mut again = a.subscribe(&resume).await;
                assert_eq!(
                    again.statuses[0].status,
                    logs_sse_protocol::StatusKind::Resumed
                );
                assert_eq!(numbers(&again.logs(3).await), [3, 4, 5]);
            }
            Persistence::None => {
                // A new epoch: the open stream is cut, and resuming says gap.
                let mut rest = Vec::new();
                while let Some(event) = open.next_event_or_end(WAIT).await {
                    if event.event == "close" {
                        break;
                    }
                    rest.push(event);
                }
                let mut again = a.subscribe(&resume).await;
                let status = &again.statuses[0];
                assert_eq!(
                    status.status,
                    logs_sse_protocol::StatusKind::Gap,
                    "{status:?}"
                );
                assert!(status
                    .reason
                    .as_deref()
                    .unwrap()
                    .starts_with("foreign_epoch"));
                assert_eq!(numbers(&again.logs(3).await), [3, 4, 5]);
            }
        }
    }
}

#[tokio::test]
async fn while_redis_is_down_publishes_and_opens_answer_503_and_streams_resync_after() {
    let mut server = RedisServer::start(Persistence::Aof);
    let (a, b) = (node(&server, "a").await, node(&server, "b").await);
    let channel = "logs:etl:ws6:wf1";
    let mut open = b.subscribe(&format!("channels={channel}")).await;
    publish_retrying(&a, &batch("ws6", "wf1", 0..2)).await;
    assert_eq!(numbers(&open.logs(2).await), [0, 1]);
    server.kill();
    let (status, code, retry_after) = a
        .refused(
            a.http
                .post(a.url("/api/logs/publish"))
                .bearer_auth(ETL_TOKEN)
                .json(&batch("ws6", "wf1", 2..3)),
        )
        .await;
    assert_eq!(
        (status, code.as_str(), retry_after.as_deref()),
        (503, "backend_unavailable", Some("1"))
    );
    let (status, code, _) = a
        .refused(a.stream_request("channels=logs:etl:ws6:other"))
        .await;
    assert_eq!((status, code.as_str()), (503, "backend_unavailable"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = b.http.get(b.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let health: Value = health.json().await.unwrap();
    assert_eq!(
        (health["ready"].as_bool(), health["status"].as_str()),
        (Some(false), Some("backend_unavailable"))
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.restart();
    publish_retrying(&a, &batch("ws6", "wf1", 2..5)).await;
    assert_eq!(
        numbers(&open.logs(3).await),
        [2, 3, 4],
        "the open stream resynced"
    );
    let mut ready = false;
    for _ in 0..50 {
        let r = b.http.get(b.url("/health")).send().await.unwrap();
        if r.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready again");
}

#[tokio::test]
async fn logs_missed_by_a_cut_pubsub_connection_are_repaired_from_history() {
    let server = RedisServer::start(Persistence::None);
    let (a, b) = (node(&server, "a").await, node(&server, "b").await);
    let channel = "logs:etl:ws7:wf1";
    let mut open = b.subscribe(&format!("channels={channel}")).await;
    let publishing = {
        let base = a.base.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for n in 0..300u64 {
                let response = http
                    .post(format!("{base}/api/logs/publish"))
                    .bearer_auth(ETL_TOKEN)
                    .json(&batch("ws7", "wf1", n..n + 1))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 202);
            }
        })
    };
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        server.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    }
    publishing.await.unwrap();
    let got = open.logs(300).await;
    let unique: HashSet<u64> = numbers(&got).into_iter().collect();
    assert_eq!(unique.len(), 300);
    assert_eq!(numbers(&got), (0..300).collect::<Vec<_>>());
    let stats = b.stats().await;
    assert!(
        stats["backendDetails"]["resyncs"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    println!("repaired logs: {}", stats["backendDetails"]["repairedLogs"]);
}

#[tokio::test]
async fn a_frozen_redis_makes_calls_time_out_instead_of_hanging() {
    let server = RedisServer::start(Persistence::None);
    let a = node(&server, "a").await;
    publish_retrying(&a, &batch("ws8", "wf1", 0..1)).await;
    server.signal("STOP");
    let started = std::time::Instant::now();
    let (status, _) = a.publish(ETL_TOKEN, &batch("ws8", "wf1", 1..2)).await;
    assert_eq!(status, 503);
    let (status, code, _) = a.refused(a.stream_request("channels=logs:etl:ws8:x")).await;
    assert_eq!((status, code.as_str()), (503, "backend_unavailable"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered within the timeouts"
    );
    server.signal("CONT");
    publish_retrying(&a, &batch("ws8", "wf1", 1..2)).await;
}
