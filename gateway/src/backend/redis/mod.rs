//! The Redis store: history, cursors and the feed shared by several gateway
//! nodes.
//!
//! [`RedisOps`] keeps each family's epoch, sequence counter, bounded
//! per-channel history and floors in Redis ([`keys`] has the layout) and
//! announces every appended batch on the family's pub/sub channel
//! ([`feed`]). An append is one Lua script per family ([`lua::PUBLISH`]);
//! the scripts of one request are sent together on one multiplexed
//! connection, so a publish request costs one round trip. A read of several
//! channels of a family is one script too ([`lua::READ`]), one consistent
//! snapshot.
//!
//! Epochs are per family and live in Redis: every node issues cursors of the
//! same epoch, and a Redis that lost its data (restart without persistence,
//! expired family) starts a new epoch, so old cursors get an explicit gap.
//!
//! Every call is bounded in time (`timeout`): a frozen Redis makes calls
//! fail with [`StoreError::Unavailable`], never hang.

pub mod feed;
pub mod keys;
pub mod lua;
pub mod tracker;
pub mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::{try_join_all, BoxFuture};
use logs_sse_protocol::{Channel, Cursor, Epoch, ResumeFrom};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Value;

use tokio_util::sync::CancellationToken;

use self::keys::FamilyKeys;
use self::tracker::Tracker;
use super::entry::{StoreError, StoredEntry};
use super::{
    families_of, AppendResults, Appended, ChannelRead, FamilyRead, FeedSink, IdempotencyKey,
    NewLog, PublishRejection, Store, StoreStats,
};
use crate::frame::{log_frame, LogFrameParts};
use crate::metrics::Metrics;

/// How to reach Redis and the bounds of what is kept there.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Prefix of every key and pub/sub channel.
    pub key_prefix: String,
    /// Most entries kept per channel.
    pub history_per_channel: usize,
    /// A family's keys expire after this long without publishes.
    pub history_ttl: Duration,
    /// Longest a Redis command (or a connection attempt) may take.
    pub timeout: Duration,
    /// How long a publish's `Idempotency-Key` is remembered.
    pub idempotency_ttl: Duration,
}

/// The Redis store as the router sees it: [`RedisOps`] plus this node's
/// feed and the [`tracker`] that repairs its holes.
pub struct RedisStore {
    ops: RedisOps,
    tracker: OnceLock<Tracker>,
    hello_epoch: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    check_every: Duration,
    stop: CancellationToken,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("ops", &self.ops)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `config`; `check_every` is the period of the position
    /// check that finds holes in the feed.
    pub fn new(
        config: RedisConfig,
        check_every: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        Ok(RedisStore {
            ops: RedisOps::new(config)?,
            tracker: OnceLock::new(),
            hello_epoch: Arc::new(AtomicU64::new(0)),
            metrics,
            check_every,
            stop: CancellationToken::new(),
        })
    }

    pub fn ops(&self) -> &RedisOps {
        &self.ops
    }

    fn tracker(&self) -> Result<&Tracker, StoreError> {
        self.tracker
            .get()
            .ok_or_else(|| StoreError::Unavailable("the Redis store is not attached".into()))
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Store for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    /// The `{prefix}:epoch` key, the identity of the shared store (0 until
    /// read). Cursors carry their family's epoch.
    fn epoch(&self) -> Epoch {
        Epoch(self.hello_epoch.load(Ordering::Relaxed))
    }

    fn attach(&self, sink: Arc<dyn FeedSink>) {
        let tracker = Tracker::start(
            self.ops.clone(),
            sink,
            self.metrics.clone(),
            self.check_every,
            self.stop.clone(),
        );
        let _ = self.tracker.set(tracker);
        let (ops, epoch, stop) = (
            self.ops.clone(),
            self.hello_epoch.clone(),
            self.stop.clone(),
        );
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if let Ok(value) = ops.store_epoch().await {
                    epoch.store(value.0, Ordering::Relaxed);
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    fn append(
        &self,
        logs: Vec<NewLog>,
        key: Option<IdempotencyKey>,
    ) -> BoxFuture<'_, Result<AppendResults, StoreError>> {
        Box::pin(async move { self.ops.append(&logs, key.as_ref()).await })
    }

    fn read<'a>(
        &'a self,
        family: &'a Channel,
        channels: &'a [(Channel, ResumeFrom)],
    ) -> BoxFuture<'a, Result<FamilyRead, StoreError>> {
        Box::pin(self.ops.read(family, channels))
    }

    fn watch<'a>(&'a self, family: &'a Channel) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.tracker()?.watch(family).await })
    }

    fn unwatch(&self, family: &Channel) {
        if let Ok(tracker) = self.tracker() {
            tracker.unwatch(family);
        }
    }

    /// History lives in Redis, shared by every node: no node counts it
    /// (`history: None`; Redis's own `INFO` reports its memory).
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }

    /// Redis forgets idle families by TTL.
    fn maintain(&self, _now: tokio::time::Instant) {}

    fn ready(&self) -> bool {
        self.tracker().is_ok_and(Tracker::feed_is_up) && self.metrics.backend_up.get() == 1
    }
}

/// The Redis store; see the module docs.
#[derive(Clone)]
pub struct RedisOps {
    client: redis::Client,
    conn: ConnectionManager,
    config: RedisConfig,
}

impl std::fmt::Debug for RedisOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("RedisOps")
            .field("key_prefix", &self.config.key_prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn protocol(what: &str) -> StoreError {
    StoreError::Protocol(format!("unexpected reply to {what}"))
}

fn candidate_epoch() -> String {
    format!("{:x}", rand::random::<u64>())
}

impl RedisOps {
    /// A store for `config`; the connection is made on first use (and made
    /// again after it breaks), so a gateway starts while Redis is down.
    pub fn new(config: RedisConfig) -> Result<Self, StoreError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| StoreError::Unavailable(format!("invalid --redis-url: {e}")))?;
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.timeout))
            .set_connection_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(unavailable)?;
        Ok(RedisOps {
            client,
            conn,
            config,
        })
    }

    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Keys of the family of `channel`.
    pub fn keys(&self, channel: &Channel) -> FamilyKeys {
        FamilyKeys::new(&self.config.key_prefix, channel)
    }

    /// Runs one command future under the store's timeout.
    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.config.timeout, call).await {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable(format!(
                "Redis did not answer within {} ms",
                self.config.timeout.as_millis()
            ))),
        }
    }

    /// The store-wide epoch (`{prefix}:epoch`), created if absent.
    pub async fn store_epoch(&self) -> Result<Epoch, StoreError> {
        let key = format!("{}:epoch", self.config.key_prefix);
        let mut conn = self.conn.clone();
        let (_, value): ((), Vec<u8>) = self
            .timed(
                redis::pipe()
                    .cmd("SET")
                    .arg(&key)
                    .arg(candidate_epoch())
                    .arg("NX")
                    .ignore()
                    .cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn),
            )
            .await?;
        wire::parse_epoch(&value)
    }

    /// Round trip of a `PING`.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let started = Instant::now();
        let mut conn = self.conn.clone();
        let _: String = self
            .timed(redis::cmd("PING").query_async(&mut conn))
            .await?;
        Ok(started.elapsed())
    }

    /// Appends `logs` (any families) and announces them; returns one
    /// result per log, in the order of `logs`. With `key`, each family's
    /// part is idempotent (see [`lua::PUBLISH`]). All scripts of the request
    /// go out on one connection together: one round trip.
    pub async fn append(
        &self,
        logs: &[NewLog],
        key: Option<&IdempotencyKey>,
    ) -> Result<AppendResults, StoreError> {
        let families = families_of(logs.iter().map(|l| &l.channel));
        let fingerprint = key.map(|k| format!("{:016x}", k.fingerprint()));
        let record_ttl_ms = self.config.idempotency_ttl.as_millis().max(1);
        let calls = families.iter().map(|(family, members)| {
            let keys = self.keys(family);
            let mut invocation = lua::PUBLISH.prepare_invoke();
            invocation
                .key(&keys.meta)
                .key(&keys.chans)
                .key(&keys.root)
                .key(&keys.feed)
                .key(keys.idempotency(key.map_or("", IdempotencyKey::key)));
            for &i in members {
                let resource = logs[i].channel.resource().unwrap_or_default();
                invocation.key(keys.resource(resource));
            }
            invocation
                .arg(candidate_epoch())
                .arg(self.config.history_per_channel.max(1))
                .arg(self.config.history_ttl.as_secs().max(1))
                .arg(fingerprint.as_deref().unwrap_or_default())
                .arg(u64::try_from(record_ttl_ms).unwrap_or(u64::MAX));
            for &i in members {
                let log = &logs[i];
                let parts = LogFrameParts::new(&log.channel, log.ts, &log.log_data);
                invocation
                    .arg(log.channel.resource().unwrap_or_default())
                    .arg(parts.head)
                    .arg(parts.tail);
            }
            let mut conn = self.conn.clone();
            async move {
                let reply: Value = self.timed(invocation.invoke_async(&mut conn)).await?;
                parse_publish_reply(&reply)
            }
        });
        let replies = try_join_all(calls).await?;
        // Every log belongs to one family, so every slot is filled.
        let mut out: Vec<Option<Result<Appended, PublishRejection>>> = vec![None; logs.len()];
        for ((_, members), reply) in families.iter().zip(replies) {
            for (k, &i) in members.iter().enumerate() {
                let log = &logs[i];
                out[i] = Some(match reply {
                    PublishReply::Reused => Err(PublishRejection::KeyReused),
                    PublishReply::Duplicate { epoch, first } => {
                        Ok(Appended::Duplicate(Cursor::new(epoch, first + k as u64)))
                    }
                    PublishReply::Stored { epoch, first } => {
                        let cursor = Cursor::new(epoch, first + k as u64);
                        Ok(Appended::New(StoredEntry {
                            cursor,
                            channel: log.channel.clone(),
                            frame: log_frame(&log.channel, cursor, log.ts, &log.log_data),
                        }))
                    }
                });
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Reads channels of one family (`family` is its service-level channel)
    /// in one snapshot; see [`lua::READ`].
    pub async fn read(
        &self,
        family: &Channel,
        channels: &[(Channel, ResumeFrom)],
    ) -> Result<FamilyRead, StoreError> {
        let keys = self.keys(family);
        let mut invocation = lua::READ.prepare_invoke();
        invocation.key(&keys.meta).key(&keys.chans);
        for (channel, _) in channels {
            invocation.key(match channel.resource() {
                Some(r) => keys.resource(r),
                None => keys.root.clone(),
            });
        }
        invocation
            .arg(candidate_epoch())
            .arg(self.config.history_ttl.as_secs().max(1));
        for (channel, from) in channels {
            let (mode, epoch, seq) = match from {
                ResumeFrom::Live => ("L", String::new(), 0),
                ResumeFrom::Earliest => ("E", String::new(), 0),
                ResumeFrom::After(c) => ("A", c.epoch.to_string(), c.seq),
                ResumeFrom::Last(n) => ("N", String::new(), u64::from(n.get())),
            };
            invocation
                .arg(channel.resource().unwrap_or_default())
                .arg(mode)
                .arg(epoch)
                .arg(seq);
        }
        let mut conn = self.conn.clone();
        let reply: Value = self.timed(invocation.invoke_async(&mut conn)).await?;
        parse_read_reply(family, &reply, channels.len())
    }

    /// Entries of the family after `seq` (from its service-level history,
    /// which holds every entry of the family): what repairs a hole in the
    /// feed. `floor` tells whether the history still reaches back to `seq`.
    pub async fn read_family_after(
        &self,
        family: &Channel,
        after: Cursor,
    ) -> Result<FamilyRead, StoreError> {
        self.read(family, &[(family.clone(), ResumeFrom::After(after))])
            .await
    }

    /// The epoch and head of each family (`None` when Redis holds nothing of
    /// it): the periodic position check. One pipelined round trip.
    pub async fn positions(
        &self,
        families: &[Channel],
    ) -> Result<Vec<Option<(Epoch, u64)>>, StoreError> {
        if families.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for family in families {
            pipe.cmd("HMGET")
                .arg(self.keys(family).meta)
                .arg("epoch")
                .arg("seq");
        }
        let mut conn = self.conn.clone();
        let replies: Vec<(Option<Vec<u8>>, Option<u64>)> =
            self.timed(pipe.query_async(&mut conn)).await?;
        replies
            .into_iter()
            .map(|(epoch, seq)| match epoch {
                None => Ok(None),
                Some(epoch) => Ok(Some((wire::parse_epoch(&epoch)?, seq.unwrap_or(0)))),
            })
            .collect()
    }
}

fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// What [`lua::PUBLISH`] did with one family's part of a request.
#[derive(Debug, Clone, Copy)]
enum PublishReply {
    Stored { epoch: Epoch, first: u64 },
    Duplicate { epoch: Epoch, first: u64 },
    Reused,
}

fn parse_publish_reply(reply: &Value) -> Result<PublishReply, StoreError> {
    let Value::Array(items) = reply else {
        return Err(protocol("publish"));
    };
    let run = |epoch: &[u8], first: &Value| -> Result<(Epoch, u64), StoreError> {
        Ok((
            wire::parse_epoch(epoch)?,
            as_u64(first).ok_or_else(|| protocol("publish"))?,
        ))
    };
    match items.as_slice() {
        [Value::BulkString(epoch), first] => {
            let (epoch, first) = run(epoch, first)?;
            Ok(PublishReply::Stored { epoch, first })
        }
        [Value::BulkString(epoch), first, Value::BulkString(tag)] if tag == b"duplicate" => {
            let (epoch, first) = run(epoch, first)?;
            Ok(PublishReply::Duplicate { epoch, first })
        }
        [Value::BulkString(tag)] if tag == b"reused" => Ok(PublishReply::Reused),
        _ => Err(protocol("publish")),
    }
}

fn parse_read_reply(
    family: &Channel,
    reply: &Value,
    count: usize,
) -> Result<FamilyRead, StoreError> {
    let Value::Array(items) = reply else {
        return Err(protocol("read"));
    };
    let [Value::BulkString(epoch), head, channels @ ..] = items.as_slice() else {
        return Err(protocol("read"));
    };
    if channels.len() != count {
        return Err(protocol("read"));
    }
    let epoch = wire::parse_epoch(epoch)?;
    let head = as_u64(head).ok_or_else(|| protocol("read"))?;
    let channels = channels
        .iter()
        .map(|channel| {
            let Value::Array(parts) = channel else {
                return Err(protocol("read"));
            };
            let [floor, start, items] = parts.as_slice() else {
                return Err(protocol("read"));
            };
            let floor = as_u64(floor).ok_or_else(|| protocol("read"))?;
            let start = as_u64(start).ok_or_else(|| protocol("read"))?;
            let entries = match items {
                Value::Array(items) => items
                    .iter()
                    .map(|item| match item {
                        Value::BulkString(bytes) => wire::decode_item(family, epoch, bytes),
                        _ => Err(protocol("read")),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                // Redis turns an empty Lua table into an empty array, or nil.
                Value::Nil => Vec::new(),
                _ => return Err(protocol("read")),
            };
            Ok(Ok(ChannelRead {
                floor,
                start,
                entries,
            }))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(FamilyRead {
        epoch,
        head,
        channels,
    })
}
