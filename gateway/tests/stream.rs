//! The stream against a real gateway on a loopback port: routing, order,
//! resume, gaps, channel changes, framing and shutdown.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

#[tokio::test]
async fn each_subscriber_sees_only_its_channels() {
    let gw = TestGateway::start().await;
    let mut wf1 = gw.subscribe("channels=logs:etl:ws1:wf1").await;
    let mut wf2 = gw.subscribe("channels=logs:etl:ws1:wf2").await;
    let mut other_ws = gw.subscribe("channels=logs:etl:ws2:wf1").await;
    let mut faas = gw.subscribe("channels=logs:faas:ws1:wf1").await;

    gw.publish_etl("ws1", "wf1", json!({"n": 1})).await;
    gw.publish_etl("ws1", "wf2", json!({"n": 2})).await;
    gw.publish_etl("ws2", "wf1", json!({"n": 3})).await;
    gw.publish(FAAS_TOKEN, &json!({"service": "faas", "workspace_id": "ws1", "workflow_id": "wf1", "logData": {"n": 4}}))
        .await;

    for (stream, n, channel) in [
        (&mut wf1, 1, "logs:etl:ws1:wf1"),
        (&mut wf2, 2, "logs:etl:ws1:wf2"),
        (&mut other_ws, 3, "logs:etl:ws2:wf1"),
        (&mut faas, 4, "logs:faas:ws1:wf1"),
    ] {
        let log = stream.next_log().await;
        assert_eq!(
            (log.channel.as_str(), log.data["n"].as_i64()),
            (channel, Some(n))
        );
        stream.expect_silence(Duration::from_millis(200)).await;
    }
    gw.stop().await;
}

#[tokio::test]
async fn service_level_channel_receives_every_resource_of_its_workspace() {
    let gw = TestGateway::start().await;
    let mut service = gw.subscribe("channels=logs:etl:ws1").await;
    gw.publish_etl("ws1", "wf1", json!("a")).await;
    gw.publish_etl("ws10", "wf1", json!("not mine")).await;
    gw.publish_etl("ws1", "wf2", json!("b")).await;
    let logs = service.logs(2).await;
    assert_eq!(logs[0].channel, "logs:etl:ws1:wf1");
    assert_eq!(logs[1].channel, "logs:etl:ws1:wf2");
    assert_eq!(
        (logs[0].data.clone(), logs[1].data.clone()),
        (json!("a"), json!("b"))
    );
    service.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_log_reaches_a_stream_once_even_through_two_subscribed_channels() {
    let gw = TestGateway::start().await;
    let mut both = gw.subscribe("channels=logs:etl:ws1:wf1,logs:etl:ws1").await;
    let c1 = gw.publish_etl("ws1", "wf1", json!(1)).await;
    let c2 = gw.publish_etl("ws1", "wf2", json!(2)).await;
    let logs = both.logs(2).await;
    assert_eq!((logs[0].cursor.clone(), logs[1].cursor.clone()), (c1, c2));
    both.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn logs_arrive_in_publish_order_from_concurrent_publishers() {
    let gw = TestGateway::start().await;
    let mut stream = gw.subscribe("channels=logs:etl:ws1").await;
    let mut tasks = Vec::new();
    for p in 0..4 {
        let http = gw.http.clone();
        let url = gw.url("/api/logs/publish");
        tasks.push(tokio::spawn(async move {
            for batch in 0..10 {
                let items: Vec<_> = (0..10)
                    .map(|i| json!({"service": "etl", "workspace_id": "ws1", "workflow_id": format!("wf{p}"), "logData": {"p": p, "i": batch * 10 + i}}))
                    .collect();
                let r = http.post(&url).bearer_auth(ETL_TOKEN).json(&items).send().await.unwrap();
                assert_eq!(r.status(), 202);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let logs = stream.logs(400).await;
    assert!(
        logs.windows(2).all(|w| w[0].seq < w[1].seq),
        "cursors increase"
    );
    for p in 0..4 {
        let own: Vec<i64> = logs
            .iter()
            .filter(|l| l.data["p"] == p)
            .map(|l| l.data["i"].as_i64().unwrap())
            .collect();
        assert_eq!(
            own,
            (0..100).collect::<Vec<_>>(),
            "publisher {p} in order, none lost"
        );
    }
}

#[tokio::test]
async fn resume_after_disconnect_loses_and_repeats_nothing() {
    let gw = TestGateway::start().await;
    let mut first = gw.subscribe("channels=logs:etl:ws1:wf1").await;
    for i in 0..5 {
        gw.publish_etl("ws1", "wf1", json!(i)).await;
    }
    let seen = first.logs(3).await;
    let cursor = seen[2].cursor.clone();
    drop(first);
    for i in 5..8 {
        gw.publish_etl("ws1", "wf1", json!(i)).await;
    }
    let mut second = gw
        .subscribe(&format!(
            "channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@{cursor}"
        ))
        .await;
    let status = &second.statuses[0];
    assert_eq!(status.status, logs_sse_protocol::StatusKind::Resumed);
    assert_eq!(status.replayed, 5);
    assert_eq!(status.cursor.unwrap().to_string(), cursor);
    gw.publish_etl("ws1", "wf1", json!(8)).await;
    let rest: Vec<_> = second.logs(6).await.into_iter().map(|l| l.data).collect();
    assert_eq!(rest, (3..9).map(|i| json!(i)).collect::<Vec<_>>());
    second.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_fresh_subscription_resumes_from_its_status_cursor() {
    // A client that reconnects before any log arrived must not lose the
    // logs published in between: the status cursor is its position.
    let gw = TestGateway::start().await;
    gw.publish_etl("ws1", "wf1", json!("before")).await;
    let first = gw.subscribe("channels=logs:etl:ws1:wf1").await;
    let cursor = first.statuses[0].cursor.unwrap().to_string();
    drop(first);
    gw.publish_etl("ws1", "wf1", json!("while away")).await;
    let mut second = gw
        .subscribe(&format!(
            "channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@{cursor}"
        ))
        .await;
    assert_eq!(second.next_log().await.data, json!("while away"));
}

#[tokio::test]
async fn foreign_and_expired_cursors_are_reported_as_gaps() {
    let gw = TestGateway::start_with(|c| c.history_size = 5).await;
    let mut cursors = Vec::new();
    for i in 0..20 {
        cursors.push(gw.publish_etl("ws1", "wf1", json!(i)).await);
    }
    let expired = &cursors[2];
    let mut s = gw
        .subscribe(&format!(
            "channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@{expired}"
        ))
        .await;
    let status = &s.statuses[0];
    assert_eq!(status.status, logs_sse_protocol::StatusKind::Gap);
    assert!(
        status.reason.as_deref().unwrap().starts_with("expired"),
        "{status:?}"
    );
    assert_eq!(status.replayed, 5);
    assert_eq!(status.cursor.unwrap().to_string(), cursors[14]);
    let replay: Vec<_> = s.logs(5).await.into_iter().map(|l| l.data).collect();
    assert_eq!(replay, (15..20).map(|i| json!(i)).collect::<Vec<_>>());

    let mut foreign = gw
        .subscribe("channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@123abc-19")
        .await;
    let status = &foreign.statuses[0];
    assert_eq!(status.status, logs_sse_protocol::StatusKind::Gap);
    assert!(
        status
            .reason
            .as_deref()
            .unwrap()
            .starts_with("foreign_epoch"),
        "{status:?}"
    );
    assert_eq!(foreign.logs(5).await[0].data, json!(15));

    let mut earliest = gw
        .subscribe("channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@earliest")
        .await;
    assert_eq!(
        earliest.statuses[0].status,
        logs_sse_protocol::StatusKind::Subscribed
    );
    assert_eq!(earliest.statuses[0].replayed, 5);
    assert_eq!(earliest.next_log().await.data, json!(15));
}

#[tokio::test]
async fn changing_the_channel_set_with_cursors_loses_nothing() {
    let gw = TestGateway::start().await;
    let mut old = gw.subscribe("channels=logs:etl:ws1:a").await;
    gw.publish_etl("ws1", "a", json!("a1")).await;
    let a1 = old.next_log().await;
    // While the client swaps streams, both channels keep publishing.
    gw.publish_etl("ws1", "a", json!("a2")).await;
    gw.publish_etl("ws1", "b", json!("b1")).await;
    drop(old);
    gw.publish_etl("ws1", "a", json!("a3")).await;
    let mut new = gw
        .subscribe(&format!(
            "channels=logs:etl:ws1:a,logs:etl:ws1:b&since=logs:etl:ws1:a@{}",
            a1.cursor
        ))
        .await;
    gw.publish_etl("ws1", "a", json!("a4")).await;
    gw.publish_etl("ws1", "b", json!("b2")).await;
    let got: Vec<_> = new.logs(4).await.into_iter().map(|l| l.data).collect();
    assert_eq!(
        got,
        vec![json!("a2"), json!("a3"), json!("a4"), json!("b2")]
    );
    new.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn messages_with_line_breaks_and_sse_keywords_arrive_intact() {
    let gw = TestGateway::start().await;
    let mut s = gw.subscribe("channels=logs:etl:ws1:wf1").await;
    let tricky = "line1\nline2\r\nline3\rdata: fake\nevent: close\nid: 9\n\n: comment\u{2028}ü";
    gw.publish_etl(
        "ws1",
        "wf1",
        json!({"message": tricky, "nested": {"m": tricky}}),
    )
    .await;
    // Pretty-printed JSON with raw line breaks between tokens.
    let pretty = format!(
        "{{\n \"service\": \"etl\",\r\n \"workspace_id\": \"ws1\",\n \"workflow_id\": \"wf1\",\n \"logData\": {{\n  \"message\": {}\n }}\n}}",
        serde_json::to_string(tricky).unwrap()
    );
    let r = gw
        .http
        .post(gw.url("/api/logs/publish"))
        .bearer_auth(ETL_TOKEN)
        .header("content-type", "application/json")
        .body(pretty)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let logs = s.logs(2).await;
    assert_eq!(logs[0].data["message"], tricky);
    assert_eq!(logs[0].data["nested"]["m"], tricky);
    assert_eq!(logs[1].data["message"], tricky);
    s.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn shutdown_ends_open_streams_with_a_close_event() {
    let gw = TestGateway::start_with(|c| c.retry_ms = 1234).await;
    let mut s = gw.subscribe("channels=logs:etl:ws1:wf1").await;
    gw.publish_etl("ws1", "wf1", json!(1)).await;
    // On Redis the feed is asynchronous: a log stored just before the
    // shutdown may miss the stream (it resumes from its cursor), so the
    // log is read first.
    assert_eq!(s.next_log().await.data, json!(1));
    let stop = tokio::spawn(gw.stop());
    let (logs, close) = s.until_close().await;
    assert!(logs.is_empty());
    assert_eq!(close.reason, logs_sse_protocol::CloseReason::Shutdown);
    assert_eq!(close.retry_ms, 1234);
    stop.await.unwrap();
}

#[tokio::test]
async fn slow_consumer_is_cut_off_with_bounded_memory_and_resumes_without_loss() {
    const QUEUE_BYTES: usize = 256 * 1024;
    let gw = TestGateway::start_with(|c| {
        c.send_queue_events = 64;
        c.send_queue_bytes = QUEUE_BYTES;
        c.history_size = 10_000;
    })
    .await;
    // Open the stream but do not read it: the socket buffers fill, then the queue.
    let mut slow = gw.subscribe("channels=logs:etl:ws1:wf1").await;
    let payload = "x".repeat(8 * 1024);
    let mut published = 0;
    let mut disconnected = false;
    for _ in 0..200 {
        let items: Vec<_> = (0..20)
            .map(|i| json!({"service": "etl", "workspace_id": "ws1", "workflow_id": "wf1", "logData": {"i": published + i, "pad": payload}}))
            .collect();
        let (status, _) = gw.publish(ETL_TOKEN, &json!(items)).await;
        assert_eq!(status, 202);
        published += 20;
        let stats = gw.stats().await;
        assert!(
            stats["queuedBytes"].as_u64().unwrap() <= QUEUE_BYTES as u64,
            "{stats}"
        );
        if stats["slowConsumerDisconnects"] == 1 {
            disconnected = true;
            assert_eq!(
                stats["subscriptions"],
                json!({}),
                "the slow stream left its channels"
            );
            break;
        }
    }
    assert!(disconnected, "a stream that never reads is cut off");

    // Now read: whatever was buffered, then the reason.
    let (received, close) = slow.until_close().await;
    assert_eq!(close.reason, logs_sse_protocol::CloseReason::SlowConsumer);
    let numbers: Vec<i64> = received
        .iter()
        .map(|l| l.data["i"].as_i64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        (0..numbers.len() as i64).collect::<Vec<_>>(),
        "no hole before the cut"
    );
    let query = match received.last() {
        Some(last) => format!(
            "channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@{}",
            last.cursor
        ),
        None => "channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@earliest".to_owned(),
    };
    let mut resumed = gw.subscribe(&query).await;
    let rest = resumed.logs(published - numbers.len()).await;
    let all: Vec<i64> = numbers
        .into_iter()
        .chain(rest.iter().map(|l| l.data["i"].as_i64().unwrap()))
        .collect();
    assert_eq!(all, (0..published as i64).collect::<Vec<_>>());
}
