//! Backfill (`since={channel}@last:{N}`) against a real gateway on a
//! loopback port: the latest N logs then live, bounded by the history, each
//! log once beside cursors and `earliest` on sibling channels, and a
//! randomised comparison of every start form with a model of the history.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use logs_sse_protocol::StatusKind;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use support::*;

/// Publishes `items` (`(workflow, logData)`) of one ETL workspace as one
/// batch; returns their cursors in order.
async fn publish_batch(gw: &TestGateway, workspace: &str, items: &[(&str, Value)]) -> Vec<String> {
    let body: Vec<Value> = items
        .iter()
        .map(|(wf, data)| json!({"service": "etl", "workspace_id": workspace, "workflow_id": wf, "logData": data}))
        .collect();
    let (status, answer) = gw.publish(ETL_TOKEN, &Value::Array(body)).await;
    assert_eq!(status, 202, "{answer}");
    let cursors: Vec<String> = answer["cursors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cursor"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(cursors.len(), items.len(), "{answer}");
    cursors
}

fn data(logs: &[Received]) -> Vec<Value> {
    logs.iter().map(|l| l.data.clone()).collect()
}

#[tokio::test]
async fn last_n_on_a_resource_channel_replays_its_latest_logs_then_live() {
    let gw = TestGateway::start().await;
    let mut items = Vec::new();
    for i in 0..7 {
        items.push(("wf1", json!(i)));
        items.push(("wf2", json!(format!("other {i}"))));
    }
    let cursors = publish_batch(&gw, "ws1", &items).await;
    let mut s = gw
        .subscribe("channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@last:3")
        .await;
    let status = &s.statuses[0];
    assert_eq!(status.status, StatusKind::Subscribed);
    assert_eq!(status.replayed, 3);
    // The position just before the first replayed log (wf1's log 3, item 6).
    assert_eq!(status.cursor.unwrap().to_string(), cursors[6]);
    assert_eq!(data(&s.logs(3).await), vec![json!(4), json!(5), json!(6)]);
    gw.publish_etl("ws1", "wf2", json!("not mine")).await;
    gw.publish_etl("ws1", "wf1", json!("live")).await;
    assert_eq!(s.next_log().await.data, json!("live"));
    s.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn last_n_on_a_service_level_channel_spans_its_resources_in_publish_order() {
    let gw = TestGateway::start().await;
    let items: Vec<_> = (0..9).map(|i| (["a", "b", "c"][i % 3], json!(i))).collect();
    publish_batch(&gw, "ws1", &items).await;
    publish_batch(&gw, "ws2", &[("a", json!("other workspace"))]).await;
    let mut s = gw
        .subscribe("channels=logs:etl:ws1&since=logs:etl:ws1@last:4")
        .await;
    assert_eq!(s.statuses[0].replayed, 4);
    let logs = s.logs(4).await;
    assert_eq!(data(&logs), (5..9).map(|i| json!(i)).collect::<Vec<_>>());
    assert_eq!(
        logs.iter().map(|l| l.channel.as_str()).collect::<Vec<_>>(),
        [
            "logs:etl:ws1:c",
            "logs:etl:ws1:a",
            "logs:etl:ws1:b",
            "logs:etl:ws1:c"
        ]
    );
    s.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn last_n_beyond_the_history_replays_what_it_holds() {
    let gw = TestGateway::start_with(|c| c.history_size = 5).await;
    let items: Vec<_> = (0..12).map(|i| ("wf1", json!(i))).collect();
    let cursors = publish_batch(&gw, "ws1", &items).await;
    let mut s = gw
        .subscribe("channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@last:200")
        .await;
    let status = &s.statuses[0];
    assert_eq!(
        (status.status, status.replayed),
        (StatusKind::Subscribed, 5)
    );
    // The floor: the newest evicted log.
    assert_eq!(status.cursor.unwrap().to_string(), cursors[6]);
    assert_eq!(
        data(&s.logs(5).await),
        (7..12).map(|i| json!(i)).collect::<Vec<_>>()
    );
    s.expect_silence(Duration::from_millis(200)).await;

    // A channel with no history: nothing to replay, live from here.
    let mut empty = gw
        .subscribe("channels=logs:etl:ws1:new&since=logs:etl:ws1:new@last:10")
        .await;
    assert_eq!(
        (empty.statuses[0].status, empty.statuses[0].replayed),
        (StatusKind::Subscribed, 0)
    );
    gw.publish_etl("ws1", "new", json!("first")).await;
    assert_eq!(empty.next_log().await.data, json!("first"));
}

#[tokio::test]
async fn last_n_beside_a_sibling_channel_sends_each_log_once_in_cursor_order() {
    let gw = TestGateway::start().await;
    let items: Vec<_> = (0..30)
        .map(|i| (if i % 3 == 0 { "wf1" } else { "wf2" }, json!(i)))
        .collect();
    let cursors = publish_batch(&gw, "ws1", &items).await;

    // A resource with last:200 (all 10 of wf1) and its service-level
    // channel with last:5 (items 25..30): the union, once each, in order.
    let mut s = gw
        .subscribe("channels=logs:etl:ws1:wf1,logs:etl:ws1&since=logs:etl:ws1:wf1@last:200,logs:etl:ws1@last:5")
        .await;
    assert_eq!(
        s.statuses.iter().map(|s| s.replayed).collect::<Vec<_>>(),
        [10, 5]
    );
    let expected: BTreeSet<i64> = (0..30).filter(|i| i % 3 == 0 || *i >= 25).collect();
    let logs = s.logs(expected.len()).await;
    assert_eq!(
        logs.iter()
            .map(|l| l.data.as_i64().unwrap())
            .collect::<Vec<_>>(),
        expected.into_iter().collect::<Vec<_>>()
    );
    s.expect_silence(Duration::from_millis(200)).await;

    // The service-level channel resumes after a cursor, the resource
    // backfills its last 4: wf1's 18, 21, 24, 27 and everything after 20.
    let mut s = gw
        .subscribe(&format!(
            "channels=logs:etl:ws1,logs:etl:ws1:wf1&since=logs:etl:ws1@{},logs:etl:ws1:wf1@last:4",
            cursors[20]
        ))
        .await;
    assert_eq!(s.statuses[0].status, StatusKind::Resumed);
    assert_eq!(s.statuses[0].replayed, 9);
    assert_eq!(s.statuses[1].replayed, 4);
    let expected: Vec<i64> = std::iter::once(18).chain(21..30).collect();
    let logs = s.logs(expected.len()).await;
    assert_eq!(
        logs.iter()
            .map(|l| l.data.as_i64().unwrap())
            .collect::<Vec<_>>(),
        expected
    );
    s.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn reconnecting_with_the_status_cursor_of_a_backfill_does_not_backfill_again() {
    let gw = TestGateway::start().await;
    let items: Vec<_> = (0..6).map(|i| ("wf1", json!(i))).collect();
    publish_batch(&gw, "ws1", &items).await;
    let mut first = gw
        .subscribe("channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@last:2")
        .await;
    let seen = first.logs(2).await;
    drop(first);
    gw.publish_etl("ws1", "wf1", json!("while away")).await;
    let mut second = gw
        .subscribe(&format!(
            "channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@{}",
            seen[1].cursor
        ))
        .await;
    assert_eq!(
        (second.statuses[0].status, second.statuses[0].replayed),
        (StatusKind::Resumed, 1)
    );
    assert_eq!(second.next_log().await.data, json!("while away"));
    second.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn malformed_last_n_is_refused_with_invalid_since_naming_the_entry() {
    let gw = TestGateway::start().await;
    for bad in [
        "last:0",
        "last:-1",
        "last:",
        "last:ten",
        "last:2.5",
        "last:4294967296",
        "last:99999999999999999999999",
    ] {
        let query = format!("channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@{bad}");
        let response = gw.stream_request(&query).send().await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_since", "{bad}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(bad), "{bad}: {message}");
    }
    // A valid entry beside a bad one still refuses the whole request.
    let (status, code, _) = gw
        .refused(gw.stream_request(
            "channels=logs:etl:ws1:a,logs:etl:ws1:b&since=logs:etl:ws1:a@last:5,logs:etl:ws1:b@last:0",
        ))
        .await;
    assert_eq!((status, code.as_str()), (400, "invalid_since"));
}

/// What the model expects of one channel's subscription.
#[derive(Debug, PartialEq, Eq)]
struct ExpectedStatus {
    status: StatusKind,
    cursor: u64,
    replay: Vec<u64>,
}

/// The gateway's history of one channel as the model sees it: the sequence
/// numbers it received, the bound, the head before the request that first
/// published to it (a channel is tracked from there), and the head when
/// subscribing.
fn model_open(
    seqs: &[u64],
    bound: usize,
    created: u64,
    head: u64,
    start: &Start,
) -> ExpectedStatus {
    let kept = &seqs[seqs.len().saturating_sub(bound)..];
    let floor = match (seqs.len().checked_sub(bound + 1), seqs.first()) {
        (Some(evicted), _) => seqs[evicted],
        (None, Some(_)) => created,
        (None, None) => head,
    };
    let after = |s: u64| kept.iter().copied().filter(|q| *q > s).collect::<Vec<_>>();
    match *start {
        Start::Live => ExpectedStatus {
            status: StatusKind::Subscribed,
            cursor: head,
            replay: vec![],
        },
        Start::Earliest => ExpectedStatus {
            status: StatusKind::Subscribed,
            cursor: floor,
            replay: kept.to_vec(),
        },
        Start::Last(n) => {
            let skip = kept.len().saturating_sub(n);
            let cursor = if skip == 0 { floor } else { kept[skip - 1] };
            ExpectedStatus {
                status: StatusKind::Subscribed,
                cursor,
                replay: after(cursor),
            }
        }
        Start::After(seq) if seq < floor => ExpectedStatus {
            status: StatusKind::Gap,
            cursor: floor,
            replay: kept.to_vec(),
        },
        Start::After(seq) => ExpectedStatus {
            status: StatusKind::Resumed,
            cursor: seq,
            replay: after(seq),
        },
    }
}

#[derive(Debug, Clone)]
enum Start {
    Live,
    Earliest,
    Last(usize),
    After(u64),
}

#[tokio::test]
async fn every_start_form_over_random_histories_matches_the_model() {
    const BOUND: usize = 6;
    const CASES: usize = 60;
    let seed: u64 = std::env::var("LOGS_SSE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let gw = TestGateway::start_with(|c| c.history_size = BOUND as u32).await;
    let resources = ["a", "b", "c"];
    let mut head = 0u64;
    let mut epoch = String::new();
    for case in 0..CASES {
        let ws = format!("m{case}");
        // A random history: up to 20 logs over two of the three resources
        // (the third is never published to).
        let count = rng.random_range(0..20);
        let items: Vec<(&str, Value)> = (0..count)
            .map(|i| (resources[rng.random_range(0..2)], json!(i)))
            .collect();
        let created = head;
        let mut family: Vec<u64> = Vec::new();
        let mut per_resource: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        if !items.is_empty() {
            for ((wf, _), cursor) in items.iter().zip(publish_batch(&gw, &ws, &items).await) {
                let (e, seq) = cursor.split_once('-').unwrap();
                epoch = e.to_owned();
                let seq: u64 = seq.parse().unwrap();
                head = seq;
                family.push(seq);
                per_resource.entry(wf).or_default().push(seq);
            }
        }

        // A random, non-empty set of the family's four channels, each with a
        // random start form.
        let mut names: Vec<(String, Vec<u64>)> = vec![(format!("logs:etl:{ws}"), family.clone())];
        for r in resources {
            names.push((
                format!("logs:etl:{ws}:{r}"),
                per_resource.get(r).cloned().unwrap_or_default(),
            ));
        }
        let mut chosen: Vec<(String, Vec<u64>, Start)> = Vec::new();
        for (name, seqs) in names {
            if rng.random_bool(0.5) {
                let start = match rng.random_range(0..4) {
                    0 => Start::Live,
                    1 => Start::Earliest,
                    2 => Start::Last(rng.random_range(1..=BOUND + 3)),
                    _ if family.is_empty() => Start::Last(1),
                    _ => Start::After(family[rng.random_range(0..family.len())]),
                };
                chosen.push((name, seqs, start));
            }
        }
        if chosen.is_empty() {
            chosen.push((format!("logs:etl:{ws}"), family.clone(), Start::Last(BOUND)));
        }

        let channels: Vec<&str> = chosen.iter().map(|(n, ..)| n.as_str()).collect();
        let since: Vec<String> = chosen
            .iter()
            .filter_map(|(name, _, start)| match start {
                Start::Live => None,
                Start::Earliest => Some(format!("{name}@earliest")),
                Start::Last(n) => Some(format!("{name}@last:{n}")),
                Start::After(seq) => Some(format!("{name}@{epoch}-{seq}")),
            })
            .collect();
        let query = format!("channels={}&since={}", channels.join(","), since.join(","));
        let context = format!("seed {seed}, case {case}: {query}, history {per_resource:?}");

        let mut stream = gw.subscribe(&query).await;
        let mut replay: BTreeSet<u64> = BTreeSet::new();
        for ((_, seqs, start), got) in chosen.iter().zip(&stream.statuses) {
            let want = model_open(seqs, BOUND, created, head, start);
            let got_status = ExpectedStatus {
                status: got.status,
                cursor: got.cursor.unwrap().seq,
                replay: want.replay.clone(),
            };
            assert_eq!(got_status, want, "{context}");
            assert_eq!(got.replayed as usize, want.replay.len(), "{context}");
            replay.extend(want.replay);
        }

        // Everything up to a live sentinel: the replay, once each and in
        // cursor order, then the sentinel.
        let target = chosen
            .iter()
            .find_map(|(name, ..)| name.rsplit(':').next().filter(|r| resources.contains(r)))
            .unwrap_or("c");
        let sentinel = publish_batch(&gw, &ws, &[(target, json!("sentinel"))]).await;
        head = sentinel[0].split_once('-').unwrap().1.parse().unwrap();
        let mut received = Vec::new();
        loop {
            let log = stream.next_log().await;
            if log.cursor == sentinel[0] {
                break;
            }
            received.push(log.seq);
        }
        assert_eq!(
            received,
            replay.into_iter().collect::<Vec<_>>(),
            "{context}"
        );
        stream.expect_silence(Duration::from_millis(20)).await;
    }
    gw.stop().await;
}

#[tokio::test]
async fn last_n_is_bounded_by_the_history_bytes_too() {
    // Histories are cleared, oldest family first, when all history outgrows
    // --history-max-bytes: last:N then replays only what is left.
    let gw = TestGateway::start_with(|c| c.history_max_bytes = 8 * 1024).await;
    let mut cursors = Vec::new();
    for i in 0..20 {
        cursors.push(
            gw.publish_etl("ws1", "wf1", json!({"i": i, "pad": "x".repeat(1000)}))
                .await,
        );
    }
    let mut s = gw
        .subscribe("channels=logs:etl:ws1:wf1&since=logs:etl:ws1:wf1@last:20")
        .await;
    let status = &s.statuses[0];
    let kept = status.replayed as usize;
    assert_eq!(status.status, StatusKind::Subscribed);
    assert!((1..20).contains(&kept), "replayed {kept} of 20");
    // The tail of what was published, in order, after the status cursor.
    assert_eq!(status.cursor.unwrap().to_string(), cursors[19 - kept]);
    let logs = s.logs(kept).await;
    assert_eq!(
        logs.iter()
            .map(|l| l.data["i"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        ((20 - kept) as i64..20).collect::<Vec<_>>()
    );
    s.expect_silence(Duration::from_millis(200)).await;
}
