//! Backend conformance: the stream invariants every [`Backend`] must keep,
//! written over `Arc<dyn Backend>` so each backend runs the same checks.
//! A backend adds one `#[tokio::test]` per property at the bottom.
//!
//! The interleavings are randomised from a seed that is printed, so a
//! failure names the seed to rerun (`CONFORMANCE_SEED=…`).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support;

use logs_sse_gateway::backend::idempotency::MemoLimits;
use logs_sse_gateway::backend::memory::{MemoryBackend, MemoryLimits};
use logs_sse_gateway::backend::redis::{RedisConfig, RedisStore};
use logs_sse_gateway::backend::routed::RoutedBackend;
use logs_sse_gateway::backend::{Appended, Backend, IdempotencyKey, NewLog, PublishRejection};
use logs_sse_gateway::metrics::Metrics;
use logs_sse_gateway::subscriber::Subscriber;
use logs_sse_protocol::{Channel, Cursor, Epoch, LogEvent, ResumeFrom, StatusKind};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use support::redis_server::{Persistence, RedisServer};

mod properties {
    use super::*;

    /// One log of the flood as its publisher saw it accepted.
    #[derive(Debug, Clone, Copy)]
    struct Published {
        epoch: Epoch,
        seq: u64,
        resource: usize,
    }

    const FAMILY: &str = "logs:etl:flood";
    const RESOURCES: usize = 3;
    const BATCH: usize = 20;

    fn resource(index: usize) -> Channel {
        format!("{FAMILY}:r{index}").parse().unwrap()
    }

    /// Channels listed between a family's channels: other resources of the
    /// family, other workspaces, other services.
    fn others() -> Vec<Channel> {
        [
            "logs:etl:flood:r2",
            "logs:etl:quiet",
            "logs:etl:quiet:a",
            "logs:faas:flood",
            "logs:faas:flood:b",
            "logs:function:ws9:c",
        ]
        .iter()
        .map(|c| c.parse().unwrap())
        .collect()
    }

    /// The `(channel, seq)` of every log frame, in the order received.
    fn logs_of(frames: &[bytes::Bytes]) -> Vec<(String, u64)> {
        frames
            .iter()
            .flat_map(|frame| {
                std::str::from_utf8(frame)
                    .unwrap()
                    .split("\n\n")
                    .filter_map(|event| {
                        let data = event.strip_prefix("event: log\n")?.strip_prefix("data: ")?;
                        let log: LogEvent<'_> = serde_json::from_str(data).unwrap();
                        Some((log.channel.to_string(), log.cursor.seq))
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Two publishers flood one family with batches of 20 while streams
    /// subscribe to its service-level channel and one of its resources, in
    /// every order, with other channels listed between them and with
    /// cursors, live or from the earliest. Every stream must get each log
    /// at most once, in publish order per channel, and without a hole after
    /// its starting point. Publishers wait `pause` between batches (a
    /// networked store needs a flood it can absorb).
    pub async fn subscribing_during_a_flood_is_exactly_once(
        backend: Arc<dyn Backend>,
        seed: u64,
        trials: usize,
        pause: Duration,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let published: Arc<Mutex<Vec<Published>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut publishers = Vec::new();
        for p in 0..2usize {
            let (backend, published, stop) = (backend.clone(), published.clone(), stop.clone());
            publishers.push(tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let indices: Vec<usize> = (0..BATCH).map(|i| (p + n + i) % RESOURCES).collect();
                    let logs = indices
                        .iter()
                        .map(|&r| NewLog {
                            channel: resource(r),
                            log_data: format!("{{\"p\":{p},\"n\":{n}}}"),
                            ts: 0,
                        })
                        .collect();
                    let results = backend.publish(logs, None).await.unwrap();
                    published
                        .lock()
                        .unwrap()
                        .extend(indices.into_iter().zip(results).map(|(r, result)| {
                            let cursor = result.unwrap().cursor();
                            Published {
                                epoch: cursor.epoch,
                                seq: cursor.seq,
                                resource: r,
                            }
                        }));
                    n += 1;
                    if pause.is_zero() {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(pause).await;
                    }
                }
            }));
        }
        let service: Channel = FAMILY.parse().unwrap();
        let others = others();
        // Wait for some history to resume from.
        while published.lock().unwrap().len() < 200 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Cursors carry the epoch of the family's store (one per family
        // for Redis), not necessarily the backend's `hello` epoch.
        let epoch = published.lock().unwrap()[0].epoch;
        let mut subscriptions = Vec::new();
        for trial in 0..trials {
            let watched = rng.random_range(0..2usize);
            let head = published
                .lock()
                .unwrap()
                .iter()
                .map(|p| p.seq)
                .max()
                .unwrap();
            let resume = |rng: &mut StdRng| match rng.random_range(0..4) {
                0 => ResumeFrom::Live,
                1 => ResumeFrom::Earliest,
                _ => ResumeFrom::After(Cursor::new(epoch, head - rng.random_range(0..100))),
            };
            let mut channels = vec![
                (service.clone(), resume(&mut rng)),
                (resource(watched), resume(&mut rng)),
            ];
            let between = rng.random_range(0..=others.len());
            channels.extend(
                others
                    .choose_multiple(&mut rng, between)
                    .map(|c| (c.clone(), ResumeFrom::Live)),
            );
            channels.shuffle(&mut rng);
            // Keep the two family channels apart with the others between them.
            if rng.random_bool(0.5) {
                channels.sort_by_key(|(c, _)| *c != service);
                let last = channels.len() - 1;
                let at = channels
                    .iter()
                    .position(|(c, _)| *c == resource(watched))
                    .unwrap();
                channels.swap(at, last);
            }
            let (subscriber, queue) = Subscriber::new(trial as u64 + 1, 1 << 20, 1 << 30);
            let subscribed = backend.subscribe(&subscriber, &channels).await.unwrap();
            subscriptions.push((channels, subscriber, queue, subscribed));
            if rng.random_bool(0.3) {
                tokio::task::yield_now().await;
            }
        }
        // Let the last subscriptions receive some live logs, then stop.
        tokio::time::sleep(Duration::from_millis(20)).await;
        stop.store(true, Ordering::Relaxed);
        for publisher in publishers {
            publisher.await.unwrap();
        }
        let published = published.lock().unwrap().clone();
        let mut of_channel: HashMap<String, BTreeSet<u64>> = HashMap::new();
        for p in &published {
            of_channel
                .entry(resource(p.resource).to_string())
                .or_default()
                .insert(p.seq);
            of_channel
                .entry(FAMILY.to_owned())
                .or_default()
                .insert(p.seq);
        }

        for (trial, (channels, subscriber, mut queue, subscribed)) in
            subscriptions.into_iter().enumerate()
        {
            let listed: Vec<String> = channels.iter().map(|(c, r)| format!("{c}@{r:?}")).collect();
            let context = format!("seed {seed}, trial {trial}, channels {listed:?}");
            let mut frames = subscribed.replay.clone();
            while let Some(frame) = queue.try_next() {
                frames.push(frame);
            }
            assert!(!subscriber.is_closed(), "{context}: cut as slow");
            let received = logs_of(&frames);
            let mut seen = HashSet::new();
            for (channel, seq) in &received {
                assert!(seen.insert(*seq), "{context}: seq {seq} ({channel}) twice");
            }
            let mut last: HashMap<&str, u64> = HashMap::new();
            for (channel, seq) in &received {
                let previous = last.insert(channel, *seq).unwrap_or(0);
                assert!(
                    previous < *seq,
                    "{context}: {channel} got seq {seq} after {previous}"
                );
            }
            // No hole: from where each family channel starts to the last log
            // the stream got, every log of that channel is there.
            let newest = received.iter().map(|(_, s)| *s).max().unwrap_or(0);
            for status in &subscribed.statuses {
                let name = status.channel.to_string();
                let Some(all) = of_channel.get(&name) else {
                    continue;
                };
                assert_ne!(status.status, StatusKind::Denied, "{context}");
                let start = status.cursor.unwrap().seq;
                let missing: Vec<u64> = all
                    .range(start + 1..=newest)
                    .filter(|seq| !seen.contains(seq))
                    .copied()
                    .collect();
                assert!(
                    missing.is_empty(),
                    "{context}: {name} from {start} misses {missing:?}"
                );
            }
        }
    }

    /// Requests of one or two families, each sent one to three times with
    /// one `Idempotency-Key` (a retry after a lost answer), the attempts
    /// one after another or racing each other, from three publishers at
    /// once; some keys then reused with another body. Every attempt of a
    /// request must get the same cursors, a reused key must be refused,
    /// and streams on both families (live from the start, and from the
    /// earliest afterwards) must carry each stored log exactly once.
    pub async fn retried_publishes_are_stored_once(backend: Arc<dyn Backend>, seed: u64) {
        let families: [Channel; 2] =
            ["logs:etl:retry-a", "logs:etl:retry-b"].map(|c| c.parse().unwrap());
        let all: Vec<(Channel, ResumeFrom)> = families
            .iter()
            .map(|f| (f.clone(), ResumeFrom::Live))
            .collect();
        let (live, mut live_queue) = Subscriber::new(1, 1 << 20, 1 << 30);
        let joined = backend.subscribe(&live, &all).await.unwrap();
        assert!(joined.replay.is_empty(), "seed {seed}: fresh families");
        let mut publishers = Vec::new();
        for p in 0..3u64 {
            let (backend, families) = (backend.clone(), families.clone());
            publishers.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed ^ (p + 1));
                // (family, seq) of every log a first attempt got.
                let mut stored: Vec<(Channel, u64)> = Vec::new();
                for r in 0..40 {
                    let size = rng.random_range(1..=12);
                    let logs: Vec<NewLog> = (0..size)
                        .map(|i| {
                            let family = families.choose(&mut rng).unwrap();
                            NewLog {
                                channel: format!("{family}:r{}", rng.random_range(0..3))
                                    .parse()
                                    .unwrap(),
                                log_data: format!("{{\"p\":{p},\"r\":{r},\"i\":{i}}}"),
                                ts: 0,
                            }
                        })
                        .collect();
                    let body: String = logs
                        .iter()
                        .map(|l| format!("{}{}\n", l.channel, l.log_data))
                        .collect();
                    let key = IdempotencyKey::new(
                        format!("k-{seed}-{p}-{r}").as_bytes(),
                        body.as_bytes(),
                    )
                    .unwrap();
                    let attempts = rng.random_range(1..=3);
                    let answers = if rng.random_bool(0.5) {
                        let sends =
                            (0..attempts).map(|_| backend.publish(logs.clone(), Some(key.clone())));
                        futures_util::future::join_all(sends).await
                    } else {
                        let mut answers = Vec::new();
                        for _ in 0..attempts {
                            answers.push(backend.publish(logs.clone(), Some(key.clone())).await);
                        }
                        answers
                    };
                    let answers: Vec<Vec<Appended>> = answers
                        .into_iter()
                        .map(|a| a.unwrap().into_iter().map(Result::unwrap).collect())
                        .collect();
                    let cursors =
                        |a: &Vec<Appended>| a.iter().map(Appended::cursor).collect::<Vec<_>>();
                    for answer in &answers[1..] {
                        assert_eq!(
                            cursors(answer),
                            cursors(&answers[0]),
                            "seed {seed}: the first request's cursors"
                        );
                    }
                    let new: usize = answers
                        .iter()
                        .flatten()
                        .filter(|a| matches!(a, Appended::New(_)))
                        .count();
                    assert_eq!(new, size, "seed {seed}: stored by exactly one attempt");
                    stored.extend(
                        logs.iter()
                            .zip(cursors(&answers[0]))
                            .map(|(l, c)| (l.channel.service_level(), c.seq)),
                    );
                    if rng.random_bool(0.15) {
                        let mut other = logs.clone();
                        other[0].log_data = "{\"changed\":true}".into();
                        let reused =
                            IdempotencyKey::new(key.key().as_bytes(), b"another body").unwrap();
                        let refused = backend.publish(other, Some(reused)).await.unwrap();
                        assert!(
                            refused
                                .iter()
                                .all(|r| *r == Err(PublishRejection::KeyReused)),
                            "seed {seed}: a reused key is refused: {refused:?}"
                        );
                    }
                }
                stored
            }));
        }
        let mut stored = Vec::new();
        for publisher in publishers {
            stored.extend(publisher.await.unwrap());
        }
        stored.sort();
        let once = |received: Vec<(String, u64)>, what: &str| {
            let mut got: Vec<(Channel, u64)> = received
                .into_iter()
                .map(|(c, seq)| (c.parse::<Channel>().unwrap().service_level(), seq))
                .collect();
            got.sort();
            assert_eq!(
                got.len(),
                stored.len(),
                "seed {seed}: {what} has every stored log once"
            );
            assert_eq!(got, stored, "seed {seed}: {what}");
        };
        // A networked store's feed may still be on its way.
        let mut frames = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while logs_of(&frames).len() < stored.len() && tokio::time::Instant::now() < deadline {
            while let Some(frame) = live_queue.try_next() {
                frames.push(frame);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while let Some(frame) = live_queue.try_next() {
            frames.push(frame);
        }
        once(logs_of(&frames), "the live stream");
        let earliest: Vec<(Channel, ResumeFrom)> = families
            .iter()
            .map(|f| (f.clone(), ResumeFrom::Earliest))
            .collect();
        let (late, _queue) = Subscriber::new(2, 1 << 20, 1 << 30);
        let replay = backend.subscribe(&late, &earliest).await.unwrap().replay;
        once(logs_of(&replay), "history");
    }
}

fn seed() -> u64 {
    let seed = std::env::var("CONFORMANCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("CONFORMANCE_SEED={seed}");
    seed
}

fn memory_backend() -> Arc<dyn Backend> {
    let limits = MemoryLimits {
        history_per_channel: 100_000,
        max_history_bytes: 1 << 30,
        max_channels: 1000,
        channel_idle: Duration::from_secs(3600),
        idempotency: MemoLimits::default(),
    };
    Arc::new(MemoryBackend::new(limits, Arc::new(Metrics::default())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn memory_subscribing_during_a_flood_is_exactly_once() {
    properties::subscribing_during_a_flood_is_exactly_once(
        memory_backend(),
        seed(),
        400,
        Duration::ZERO,
    )
    .await;
}

fn redis_backend(server: &RedisServer) -> Arc<dyn Backend> {
    let config = RedisConfig {
        url: server.url(),
        key_prefix: "conformance".into(),
        history_per_channel: 5_000,
        history_ttl: Duration::from_secs(600),
        timeout: Duration::from_secs(2),
        idempotency_ttl: Duration::from_secs(600),
    };
    let metrics = Arc::new(Metrics::default());
    let store = RedisStore::new(config, Duration::from_millis(100), metrics.clone()).unwrap();
    Arc::new(RoutedBackend::from_store(store, metrics))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn redis_subscribing_during_a_flood_is_exactly_once() {
    let server = RedisServer::start(Persistence::None);
    properties::subscribing_during_a_flood_is_exactly_once(
        redis_backend(&server),
        seed(),
        150,
        Duration::from_millis(2),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn memory_retried_publishes_are_stored_once() {
    properties::retried_publishes_are_stored_once(memory_backend(), seed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn redis_retried_publishes_are_stored_once() {
    let server = RedisServer::start(Persistence::None);
    properties::retried_publishes_are_stored_once(redis_backend(&server), seed()).await;
}
