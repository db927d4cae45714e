//! The Redis store against a real `redis-server`: cursors, bounded history
//! and floors, epochs across restarts, the feed and its resyncs, timeouts.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use logs_sse_gateway::backend::entry::{StoreError, StoredEntry};
use logs_sse_gateway::backend::idempotency::MemoLimits;
use logs_sse_gateway::backend::redis::feed::{Feed, FeedEvent};
use logs_sse_gateway::backend::redis::{RedisConfig, RedisOps};
use logs_sse_gateway::backend::{Appended, ChannelRead, FamilyRead, NewLog};
use logs_sse_gateway::frame::log_frame;
use logs_sse_protocol::{Channel, Cursor, ResumeFrom};
use support::redis_server::{Persistence, RedisServer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn config(server: &RedisServer) -> RedisConfig {
    RedisConfig {
        url: server.url(),
        key_prefix: "t".into(),
        history_per_channel: 100,
        history_ttl: Duration::from_secs(600),
        timeout: Duration::from_millis(500),
        idempotency_ttl: Duration::from_secs(600),
    }
}

/// Appends without a key: every log is stored, so each result is its entry.
trait AppendNew {
    async fn append_new(&self, logs: &[NewLog]) -> Result<Vec<StoredEntry>, StoreError>;
}

impl AppendNew for RedisOps {
    async fn append_new(&self, logs: &[NewLog]) -> Result<Vec<StoredEntry>, StoreError> {
        let results = self.append(logs, None).await?;
        Ok(results
            .into_iter()
            .map(|r| match r {
                Ok(Appended::New(entry)) => entry,
                other => panic!("not stored: {other:?}"),
            })
            .collect())
    }
}

fn ch(s: &str) -> Channel {
    s.parse().unwrap()
}

fn log(channel: &str, n: u32) -> NewLog {
    NewLog {
        channel: ch(channel),
        log_data: format!("{{\"n\":{n}}}"),
        ts: u64::from(n),
    }
}

fn got(read: &FamilyRead, index: usize) -> &ChannelRead {
    read.channels[index].as_ref().unwrap()
}

fn seqs(entries: &[StoredEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.cursor.seq).collect()
}

#[tokio::test]
async fn two_nodes_share_one_counter_and_history_per_family() {
    let server = RedisServer::start(Persistence::None);
    let (a, b) = (
        RedisOps::new(config(&server)).unwrap(),
        RedisOps::new(config(&server)).unwrap(),
    );
    let first = a
        .append_new(&[
            log("logs:etl:ws1:wf1", 1),
            log("logs:faas:ws1:f1", 2),
            log("logs:etl:ws1:wf2", 3),
        ])
        .await
        .unwrap();
    let second = b.append_new(&[log("logs:etl:ws1:wf1", 4)]).await.unwrap();
    assert_eq!(first.len(), 3);
    let etl_epoch = first[0].cursor.epoch;
    assert_eq!(seqs(&first), [1, 1, 2], "one counter per family");
    assert_eq!(
        second[0].cursor,
        Cursor::new(etl_epoch, 3),
        "node B continues A's counter"
    );
    // The frame is the one the memory backend would encode.
    let l = log("logs:etl:ws1:wf2", 3);
    assert_eq!(
        first[2].frame,
        log_frame(&l.channel, first[2].cursor, l.ts, &l.log_data)
    );

    let read = b
        .read(
            &ch("logs:etl:ws1"),
            &[
                (ch("logs:etl:ws1"), ResumeFrom::Earliest),
                (ch("logs:etl:ws1:wf1"), ResumeFrom::After(first[0].cursor)),
                (ch("logs:etl:ws1:wf2"), ResumeFrom::Live),
            ],
        )
        .await
        .unwrap();
    assert_eq!((read.epoch, read.head), (etl_epoch, 3));
    assert_eq!(seqs(&got(&read, 0).entries), [1, 2, 3]);
    assert_eq!(
        got(&read, 1).entries,
        second,
        "entries read back are the appended ones"
    );
    assert!(got(&read, 2).entries.is_empty());
    assert!(read.channels.iter().all(|c| c.as_ref().unwrap().floor == 0));
}

#[tokio::test]
async fn bounded_history_raises_the_floor_and_a_stale_cursor_reads_after_it() {
    let server = RedisServer::start(Persistence::None);
    let mut cfg = config(&server);
    cfg.history_per_channel = 3;
    let store = RedisOps::new(cfg).unwrap();
    let logs: Vec<_> = (0..10).map(|n| log("logs:etl:ws:a", n)).collect();
    let entries = store.append_new(&logs).await.unwrap();
    let family = ch("logs:etl:ws");
    let read = |from| {
        let store = store.clone();
        let family = family.clone();
        async move {
            store
                .read(
                    &family,
                    &[(ch("logs:etl:ws:a"), from), (family.clone(), from)],
                )
                .await
                .unwrap()
        }
    };
    let exact = read(ResumeFrom::After(entries[7].cursor)).await;
    assert_eq!(got(&exact, 0).floor, 7);
    assert_eq!(got(&exact, 1).floor, 7);
    assert_eq!(seqs(&got(&exact, 0).entries), [9, 10]);
    let stale = read(ResumeFrom::After(entries[2].cursor)).await;
    assert_eq!(seqs(&got(&stale, 0).entries), [8, 9, 10], "after the floor");
    let foreign = read(ResumeFrom::After(Cursor::new(
        logs_sse_protocol::Epoch(1),
        9,
    )))
    .await;
    assert_eq!(seqs(&got(&foreign, 0).entries), [8, 9, 10]);
    let ahead = read(ResumeFrom::After(Cursor::new(entries[0].cursor.epoch, 99))).await;
    assert_eq!(seqs(&got(&ahead, 0).entries), [8, 9, 10]);
    assert_eq!(server.cli(&["LLEN", "t:{etl:ws}:h:a"]).trim(), "3");
}

#[tokio::test]
async fn a_redis_restart_keeps_the_epoch_with_aof_and_starts_a_new_one_without() {
    for persistence in [Persistence::Aof, Persistence::None] {
        let mut server = RedisServer::start(persistence);
        let store = RedisOps::new(config(&server)).unwrap();
        let before = store.append_new(&[log("logs:etl:ws:a", 1)]).await.unwrap();
        server.restart();
        // The connection manager reconnects by itself; the first call after
        // the restart may still see the broken connection.
        let mut after = store.append_new(&[log("logs:etl:ws:a", 2)]).await;
        for _ in 0..20 {
            if after.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            after = store.append_new(&[log("logs:etl:ws:a", 2)]).await;
        }
        let after = after.unwrap();
        match persistence {
            Persistence::Aof => assert_eq!(after[0].cursor, Cursor::new(before[0].cursor.epoch, 2)),
            Persistence::None => {
                assert_ne!(
                    after[0].cursor.epoch, before[0].cursor.epoch,
                    "lost data, new epoch"
                );
                assert_eq!(after[0].cursor.seq, 1);
            }
        }
    }
}

async fn next_event(events: &mut mpsc::Receiver<FeedEvent>) -> FeedEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("a feed event in time")
        .expect("feed open")
}

async fn next_batch(events: &mut mpsc::Receiver<FeedEvent>) -> Vec<StoredEntry> {
    loop {
        if let FeedEvent::Batch { entries, .. } = next_event(events).await {
            return entries;
        }
    }
}

#[tokio::test]
async fn the_feed_announces_appended_batches_and_resyncs_after_its_connection_is_cut() {
    let server = RedisServer::start(Persistence::None);
    let store = RedisOps::new(config(&server)).unwrap();
    let (tx, mut events) = mpsc::channel(64);
    let stop = CancellationToken::new();
    let feed = Feed::start(&store, tx, stop.clone());
    assert!(matches!(next_event(&mut events).await, FeedEvent::Resync));
    feed.subscribe(&ch("logs:etl:ws")).await.unwrap();
    // Another family's batch is not delivered.
    store.append_new(&[log("logs:faas:ws:x", 0)]).await.unwrap();
    let appended = store
        .append_new(&[log("logs:etl:ws:a", 1), log("logs:etl:ws:b", 2)])
        .await
        .unwrap();
    assert_eq!(next_batch(&mut events).await, appended);

    let killed = server.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed.trim(), "1", "one pub/sub connection per node");
    assert!(matches!(next_event(&mut events).await, FeedEvent::Down(_)));
    assert!(matches!(next_event(&mut events).await, FeedEvent::Resync));
    let later = store.append_new(&[log("logs:etl:ws:a", 3)]).await.unwrap();
    assert_eq!(
        next_batch(&mut events).await,
        later,
        "resubscribed by itself"
    );

    feed.unsubscribe(&ch("logs:etl:ws"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        server
            .cli(&["PUBSUB", "NUMSUB", "t:{etl:ws}:feed"])
            .lines()
            .nth(1),
        Some("0")
    );
    stop.cancel();
}

#[tokio::test]
async fn a_frozen_redis_fails_calls_within_the_timeout_and_they_recover() {
    let server = RedisServer::start(Persistence::None);
    let store = RedisOps::new(config(&server)).unwrap();
    store.append_new(&[log("logs:etl:ws:a", 1)]).await.unwrap();
    server.signal("STOP");
    let started = std::time::Instant::now();
    let frozen = store.append_new(&[log("logs:etl:ws:a", 2)]).await;
    assert!(
        matches!(frozen, Err(StoreError::Unavailable(_))),
        "{frozen:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a timeout, not a hang"
    );
    assert!(store.ping().await.is_err());
    server.signal("CONT");
    let mut ok = false;
    for _ in 0..30 {
        if store.ping().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "calls succeed again once Redis answers");
}

#[tokio::test]
async fn concurrent_appends_from_several_nodes_give_each_family_one_gapless_order() {
    let server = RedisServer::start(Persistence::None);
    let mut cfg = config(&server);
    cfg.history_per_channel = 1000;
    let stores: Vec<_> = (0..3)
        .map(|_| RedisOps::new(cfg.clone()).unwrap())
        .collect();
    let resources = ["a", "b", "c"];
    let mut tasks = Vec::new();
    for (node, store) in stores.iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng_state = node as u32 * 7 + 1;
            for round in 0..20 {
                rng_state = rng_state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let size = (rng_state >> 16) % 4 + 1;
                let batch: Vec<_> = (0..size)
                    .map(|i| {
                        let r = resources[((rng_state >> (i + 3)) % 3) as usize];
                        log(&format!("logs:etl:ws:{r}"), round * 10 + i)
                    })
                    .collect();
                store.append_new(&batch).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let family = ch("logs:etl:ws");
    let mut request = vec![(family.clone(), ResumeFrom::Earliest)];
    request.extend(
        resources
            .iter()
            .map(|r| (ch(&format!("logs:etl:ws:{r}")), ResumeFrom::Earliest)),
    );
    let read = stores[0].read(&family, &request).await.unwrap();
    let all = &got(&read, 0).entries;
    assert_eq!(
        seqs(all),
        (1..=read.head).collect::<Vec<_>>(),
        "gapless, in order"
    );
    for (i, r) in resources.iter().enumerate() {
        let expected: Vec<_> = all
            .iter()
            .filter(|e| e.channel.resource() == Some(r))
            .cloned()
            .collect();
        assert_eq!(
            got(&read, i + 1).entries,
            expected,
            "resource {r} is its slice of the family"
        );
    }
}

/// Randomised batches over several resources of one family, many of them
/// overflowing the bound within one request: after every request each
/// channel's history and floor are exactly those of pushing the logs one at
/// a time into lists of the bound (a model), and its entries are the memory
/// store's.
#[tokio::test]
async fn batches_overflowing_the_bound_keep_the_order_and_floors_of_single_pushes() {
    use std::collections::{BTreeMap, VecDeque};

    use logs_sse_gateway::backend::memory::{MemoryLimits, MemoryStore};
    use logs_sse_gateway::backend::Store;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    let server = RedisServer::start(Persistence::None);
    let family = ch("logs:etl:ws");
    for seed in 0..12u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let bound = rng.random_range(1..=5usize);
        let mut cfg = config(&server);
        cfg.key_prefix = format!("t{seed}");
        cfg.history_per_channel = bound;
        let redis = RedisOps::new(cfg).unwrap();
        let memory = MemoryStore::new(MemoryLimits {
            history_per_channel: bound,
            max_history_bytes: usize::MAX,
            max_channels: 1000,
            channel_idle: Duration::from_secs(600),
            idempotency: MemoLimits::default(),
        });
        // Per channel: its bounded list of sequence numbers and its floor.
        let mut model: BTreeMap<Channel, (VecDeque<u64>, u64)> = BTreeMap::new();
        let mut head = 0;
        let mut sent = std::collections::HashMap::new();
        for round in 0..8u32 {
            let size = rng.random_range(1..=4 * bound + 2);
            let batch: Vec<_> = (0..size)
                .map(|i| {
                    let r = ["a", "b", "c", "d"][rng.random_range(0..4)];
                    log(&format!("logs:etl:ws:{r}"), round * 100 + i as u32)
                })
                .collect();
            let appended = redis.append_new(&batch).await.unwrap();
            sent.extend(appended.iter().map(|e| (e.cursor.seq, e.clone())));
            let remembered = memory.append(batch.clone(), None).await.unwrap();
            for ((log, entry), kept) in batch.iter().zip(&appended).zip(remembered) {
                head += 1;
                assert_eq!(entry.cursor.seq, head, "seed {seed}: in request order");
                assert_eq!(entry.channel, log.channel);
                assert_eq!(kept.unwrap().cursor().seq, head);
                for channel in [family.clone(), log.channel.clone()] {
                    let (list, floor) = model.entry(channel).or_default();
                    list.push_back(head);
                    if list.len() > bound {
                        *floor = list.pop_front().unwrap();
                    }
                }
            }
            let request: Vec<_> = model
                .keys()
                .map(|c| (c.clone(), ResumeFrom::Earliest))
                .collect();
            let from_redis = redis.read(&family, &request).await.unwrap();
            let from_memory = memory.read(&family, &request).await.unwrap();
            assert_eq!(from_redis.head, head);
            for (i, (channel, (list, floor))) in model.iter().enumerate() {
                let (r, m) = (got(&from_redis, i), got(&from_memory, i));
                let context = format!("seed {seed}, round {round}, {channel}");
                assert_eq!(seqs(&r.entries), Vec::from(list.clone()), "{context}");
                assert_eq!(r.floor, *floor, "{context}: floor past what was dropped");
                assert_eq!(seqs(&r.entries), seqs(&m.entries), "{context}");
                if *floor > 0 {
                    // A channel never trimmed starts, in memory, at its
                    // creation's head instead of 0.
                    assert_eq!(m.floor, *floor, "{context}: memory's floor");
                }
                for entry in &r.entries {
                    assert_eq!(
                        Some(entry),
                        sent.get(&entry.cursor.seq),
                        "{context}: as appended"
                    );
                }
            }
        }
        for key in ["meta", "chans", "h", "h:a", "h:b", "h:c", "h:d"] {
            let ttl = server.cli(&["TTL", &format!("t{seed}:{{etl:ws}}:{key}")]);
            let ttl: i64 = ttl.trim().parse().unwrap();
            assert!(ttl > 0 || ttl == -2, "seed {seed}: {key} expires ({ttl})");
        }
    }
}
