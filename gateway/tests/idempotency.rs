//! `Idempotency-Key` on `POST /api/logs/publish`, over HTTP against a real
//! gateway: a retry stores nothing again and gets the first answer's
//! cursors, on this node or (Redis) another one; a key reused with another
//! body and a malformed key are refused with clear errors.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::redis_server::{Persistence, RedisServer};
use support::*;

fn log(ws: &str, wf: &str, n: u64) -> Value {
    json!({"service": "etl", "workspace_id": ws, "workflow_id": wf, "logData": {"n": n}})
}

fn cursors(answer: &Value) -> Vec<String> {
    answer["cursors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cursor"].as_str().unwrap().to_owned())
        .collect()
}

fn numbers(logs: &[Received]) -> Vec<u64> {
    logs.iter().map(|l| l.data["n"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn a_retry_with_the_same_key_is_answered_as_the_first_and_stored_once() {
    let gw = TestGateway::start().await;
    let mut stream = gw
        .subscribe("channels=logs:etl:ws1:wf1,logs:etl:ws2:wf1")
        .await;
    // Two families in one request: each is remembered on its own.
    let body = json!([
        log("ws1", "wf1", 1),
        log("ws2", "wf1", 2),
        log("ws1", "wf1", 3)
    ]);
    let (status, first) = gw.publish_keyed(ETL_TOKEN, "batch-7f3a", &body).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(
        (first["accepted"].as_u64(), first["duplicates"].as_u64()),
        (Some(3), Some(0))
    );
    for _ in 0..2 {
        let (status, again) = gw.publish_keyed(ETL_TOKEN, "batch-7f3a", &body).await;
        assert_eq!(status, 202, "{again}");
        assert_eq!(again["accepted"], 3, "{again}");
        assert_eq!(again["duplicates"], 3, "{again}");
        assert_eq!(
            cursors(&again),
            cursors(&first),
            "the first answer's cursors"
        );
    }
    // Another key is another request.
    let (status, other) = gw.publish_keyed(ETL_TOKEN, "batch-9c1d", &body).await;
    assert_eq!(
        (status, other["duplicates"].as_u64()),
        (202, Some(0)),
        "{other}"
    );

    // In publish order per channel (families are independent).
    let logs = stream.logs(6).await;
    let of = |channel: &str| -> Vec<Received> {
        logs.iter()
            .filter(|l| l.channel == channel)
            .cloned()
            .collect()
    };
    assert_eq!(numbers(&of("logs:etl:ws1:wf1")), [1, 3, 1, 3]);
    assert_eq!(numbers(&of("logs:etl:ws2:wf1")), [2, 2]);
    stream.expect_silence(Duration::from_millis(300)).await;
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("logs_sse_logs_duplicate_total 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains("logs_sse_logs_published_total 6"),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_refused_for_its_families() {
    let gw = TestGateway::start().await;
    let mut stream = gw
        .subscribe("channels=logs:etl:ws1:wf1,logs:etl:ws3:wf1")
        .await;
    let (status, _) = gw
        .publish_keyed(ETL_TOKEN, "k1", &json!([log("ws1", "wf1", 1)]))
        .await;
    assert_eq!(status, 202);
    let (status, refused) = gw
        .publish_keyed(ETL_TOKEN, "k1", &json!([log("ws1", "wf1", 2)]))
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        refused["error"]["code"], "idempotency_key_reused",
        "{refused}"
    );
    // A family the key was not used for is stored; the other is refused.
    let body = json!([log("ws1", "wf1", 3), log("ws3", "wf1", 4)]);
    let (status, mixed) = gw.publish_keyed(ETL_TOKEN, "k1", &body).await;
    assert_eq!(status, 202, "{mixed}");
    assert_eq!(
        (mixed["accepted"].as_u64(), mixed["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(mixed["errors"][0]["index"], 0, "{mixed}");
    assert_eq!(mixed["errors"][0]["status"], 422, "{mixed}");
    assert_eq!(
        mixed["errors"][0]["code"], "idempotency_key_reused",
        "{mixed}"
    );
    assert_eq!(numbers(&stream.logs(2).await), [1, 4]);
    stream.expect_silence(Duration::from_millis(300)).await;
    gw.stop().await;
}

#[tokio::test]
async fn a_malformed_key_is_a_clear_error_and_stores_nothing() {
    let gw = TestGateway::start().await;
    let mut stream = gw.subscribe("channels=logs:etl:ws1:wf1").await;
    let long = "k".repeat(129);
    for key in ["has space", long.as_str()] {
        let (status, answer) = gw
            .publish_keyed(ETL_TOKEN, key, &json!([log("ws1", "wf1", 1)]))
            .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(
            answer["error"]["code"], "invalid_idempotency_key",
            "{answer}"
        );
        assert!(
            answer["error"]["message"].as_str().unwrap().contains("128"),
            "{answer}"
        );
    }
    let (status, answer) = gw
        .publish_keyed(ETL_TOKEN, &"k".repeat(128), &json!([log("ws1", "wf1", 2)]))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(numbers(&stream.logs(1).await), [2]);
    stream.expect_silence(Duration::from_millis(200)).await;
    gw.stop().await;
}

#[tokio::test]
async fn a_retry_that_reaches_another_node_is_recognised() {
    let server = RedisServer::start(Persistence::None);
    let node = |name: &'static str| {
        let url = server.url();
        TestGateway::start_with(move |c| {
            c.redis_url = Some(url);
            c.redis_check_ms = 100;
            c.node_id = Some(name.into());
        })
    };
    let (a, b) = (node("a").await, node("b").await);
    let mut stream = b.subscribe("channels=logs:etl:ws1").await;
    let body = json!([log("ws1", "wf1", 1), log("ws1", "wf2", 2)]);
    let (status, first) = a.publish_keyed(ETL_TOKEN, "hop-1", &body).await;
    assert_eq!(status, 202, "{first}");
    let (status, retry) = b.publish_keyed(ETL_TOKEN, "hop-1", &body).await;
    assert_eq!(status, 202, "{retry}");
    assert_eq!(retry["duplicates"], 2, "{retry}");
    assert_eq!(cursors(&retry), cursors(&first));
    assert_eq!(numbers(&stream.logs(2).await), [1, 2]);
    stream.expect_silence(Duration::from_millis(300)).await;
    a.stop().await;
    b.stop().await;
}
