//! The embedded in-memory store: bounded per-channel history within one
//! process, fed synchronously to the router.
//!
//! Channels are grouped into *families*: a service-level channel
//! `logs:{service}:{workspace}` and its resource channels. One mutex guards a
//! family; an append assigns the sequence number, appends to both histories
//! and feeds the router while holding it, so a family's entries reach the
//! router in sequence order, and a read of several channels of a family is
//! one snapshot (one hold of the lock, the channels created where missing).
//!
//! A log's frame is encoded once and the same [`Entry`] sits in both
//! histories. Every channel has a *floor*: the highest sequence number it may
//! have lost (evicted from history, or from before the channel was tracked).
//! A cursor at or above the floor resumes exactly; below it is a gap.
//!
//! Bounds: entries per channel, bytes of all history (oldest families are
//! cleared first), and channels tracked (idle channels no local stream
//! watches are forgotten first; past the bound new channels are refused).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use std::sync::OnceLock;

use futures_util::future::BoxFuture;
use logs_sse_protocol::{Channel, Cursor, Epoch, ResumeFrom};
use tokio::time::Instant;

use super::idempotency::{Memo, MemoLimits, Recall, Stored};
use super::routed::RoutedBackend;
use super::{
    families_of, AppendResults, Appended, ChannelRead, FamilyRead, FeedSink, HistoryFigures,
    IdempotencyKey, NewLog, PublishRejection, Store, StoreError, StoreStats, StoredEntry,
};
use crate::frame::log_frame;
use crate::metrics::Metrics;

/// Bounds of the in-memory store.
#[derive(Debug, Clone)]
pub struct MemoryLimits {
    pub history_per_channel: usize,
    pub max_history_bytes: usize,
    pub max_channels: usize,
    pub channel_idle: Duration,
    /// How long, and for how many keyed requests, a publish's
    /// `Idempotency-Key` is remembered.
    pub idempotency: MemoLimits,
}

/// One stored log, shared by the histories that hold it.
#[derive(Debug)]
struct Entry {
    seq: u64,
    stored: StoredEntry,
    history_bytes: Arc<AtomicUsize>,
}

impl Entry {
    fn new(stored: StoredEntry, history_bytes: &Arc<AtomicUsize>) -> Arc<Self> {
        history_bytes.fetch_add(stored.frame.len(), Ordering::Relaxed);
        Arc::new(Entry {
            seq: stored.cursor.seq,
            stored,
            history_bytes: history_bytes.clone(),
        })
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.history_bytes
            .fetch_sub(self.stored.frame.len(), Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct ChannelLog {
    channel: Channel,
    history: VecDeque<Arc<Entry>>,
    floor: u64,
    last_active: Instant,
}

impl ChannelLog {
    fn new(channel: Channel, floor: u64, now: Instant) -> Self {
        ChannelLog {
            channel,
            history: VecDeque::new(),
            floor,
            last_active: now,
        }
    }

    fn push(&mut self, entry: Arc<Entry>, capacity: usize, now: Instant) {
        while self.history.len() >= capacity {
            match self.history.pop_front() {
                Some(old) => self.floor = old.seq,
                None => break,
            }
        }
        self.history.push_back(entry);
        self.last_active = now;
    }

    fn clear_history(&mut self) {
        if let Some(last) = self.history.back() {
            self.floor = last.seq;
        }
        self.history.clear();
    }

    /// What a stream starting at `resume` reads: the floor, where it
    /// starts (see [`super::resume`]) and the entries after that.
    fn read(&self, epoch: Epoch, resume: ResumeFrom, head: u64) -> ChannelRead {
        let entries_after = |seq: u64| -> Vec<StoredEntry> {
            let start = self.history.partition_point(|e| e.seq <= seq);
            self.history
                .range(start..)
                .map(|e| e.stored.clone())
                .collect()
        };
        let start = match resume {
            ResumeFrom::Live => head,
            ResumeFrom::Earliest => self.floor,
            ResumeFrom::Last(n) => {
                // The latest n entries, or all of them: start after the
                // entry just before the first one (or the floor).
                let wanted = usize::try_from(n.get()).unwrap_or(usize::MAX);
                let skip = self.history.len().saturating_sub(wanted);
                match skip.checked_sub(1) {
                    Some(i) => self.history[i].seq,
                    None => self.floor,
                }
            }
            ResumeFrom::After(cursor)
                if super::resume::resumes_exactly(cursor, epoch, self.floor, head) =>
            {
                cursor.seq
            }
            ResumeFrom::After(_) => self.floor,
        };
        ChannelRead {
            floor: self.floor,
            start,
            entries: if start >= head {
                Vec::new()
            } else {
                entries_after(start)
            },
        }
    }
}

/// A service-level channel and its resource channels.
#[derive(Debug)]
struct Family {
    root: ChannelLog,
    resources: HashMap<String, ChannelLog>,
    /// Set when the family is dropped from the map; holders of a stale
    /// `Arc` must look it up again.
    removed: bool,
}

type FamilyRef = Arc<Mutex<Family>>;

/// The embedded store; see the module docs.
pub struct MemoryStore {
    epoch: Epoch,
    last_seq: AtomicU64,
    families: RwLock<HashMap<String, FamilyRef>>,
    channel_count: AtomicUsize,
    history_bytes: Arc<AtomicUsize>,
    limits: MemoryLimits,
    sink: OnceLock<Arc<dyn FeedSink>>,
    memo: Memo,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("epoch", &self.epoch)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The embedded default backend: the router over a [`MemoryStore`].
pub type MemoryBackend = RoutedBackend<MemoryStore>;

impl MemoryBackend {
    pub fn new(limits: MemoryLimits, metrics: Arc<Metrics>) -> Self {
        RoutedBackend::from_store(MemoryStore::new(limits), metrics)
    }

    pub fn with_epoch(epoch: Epoch, limits: MemoryLimits, metrics: Arc<Metrics>) -> Self {
        RoutedBackend::from_store(MemoryStore::with_epoch(epoch, limits), metrics)
    }
}

fn lock(family: &FamilyRef) -> MutexGuard<'_, Family> {
    // A panic while holding the lock leaves consistent data (every mutation
    // is a single push/insert), so a poisoned lock is still usable.
    family
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether a sweep forgets only idle channels or makes room under pressure.
#[derive(Debug, Clone, Copy)]
enum Sweep {
    Idle,
    ToCount(usize),
}

impl MemoryStore {
    pub fn new(limits: MemoryLimits) -> Self {
        Self::with_epoch(Epoch(rand::random()), limits)
    }

    pub fn with_epoch(epoch: Epoch, limits: MemoryLimits) -> Self {
        MemoryStore {
            epoch,
            last_seq: AtomicU64::new(0),
            families: RwLock::new(HashMap::new()),
            channel_count: AtomicUsize::new(0),
            history_bytes: Arc::new(AtomicUsize::new(0)),
            memo: Memo::new(limits.idempotency),
            limits,
            sink: OnceLock::new(),
        }
    }

    fn watched(&self, channel: &Channel) -> bool {
        self.sink.get().is_some_and(|sink| sink.watched(channel))
    }

    fn families_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, FamilyRef>> {
        self.families.read().unwrap_or_else(|p| p.into_inner())
    }

    fn families_write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, FamilyRef>> {
        self.families.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one more tracked channel, unless the bound is reached.
    fn reserve_channel(&self) -> Result<(), PublishRejection> {
        let max = self.limits.max_channels;
        if self.channel_count.fetch_add(1, Ordering::Relaxed) >= max {
            self.channel_count.fetch_sub(1, Ordering::Relaxed);
            return Err(PublishRejection::ChannelLimit { max });
        }
        Ok(())
    }

    /// Locks the family of `service_channel`, creating it if needed.
    fn family(&self, service_channel: &Channel) -> Result<FamilyRef, PublishRejection> {
        loop {
            let existing = self.families_read().get(service_channel.as_str()).cloned();
            let family = match existing {
                Some(family) => family,
                None => {
                    self.reserve_channel()?;
                    let mut map = self.families_write();
                    match map.get(service_channel.as_str()) {
                        Some(family) => {
                            self.channel_count.fetch_sub(1, Ordering::Relaxed);
                            family.clone()
                        }
                        None => {
                            let floor = self.last_seq.load(Ordering::SeqCst);
                            let family = Arc::new(Mutex::new(Family {
                                root: ChannelLog::new(
                                    service_channel.clone(),
                                    floor,
                                    Instant::now(),
                                ),
                                resources: HashMap::new(),
                                removed: false,
                            }));
                            map.insert(service_channel.as_str().to_owned(), family.clone());
                            family
                        }
                    }
                }
            };
            if !lock(&family).removed {
                return Ok(family);
            }
        }
    }

    /// Runs `op` once on the locked family `service_channel` with the logs
    /// of the resource channels `resources` created where missing (those the channel
    /// bound refuses stay missing). On the bound, makes room and retries.
    fn with_family<T>(
        &self,
        service_channel: &Channel,
        resources: &[&Channel],
        op: impl FnOnce(&mut Family, u64) -> T,
    ) -> Result<T, PublishRejection> {
        // Room is made at most once for the family and once for its resources.
        let (mut room_for_family, mut room_for_resources) = (false, false);
        loop {
            let family_ref = match self.family(service_channel) {
                Ok(family) => family,
                Err(_) if !room_for_family => {
                    room_for_family = true;
                    self.make_room();
                    continue;
                }
                Err(error) => return Err(error),
            };
            let mut family = lock(&family_ref);
            if family.removed {
                continue;
            }
            let mut refused = false;
            for channel in resources {
                let Some(resource) = channel.resource() else {
                    continue;
                };
                if family.resources.contains_key(resource) {
                    continue;
                }
                if self.reserve_channel().is_err() {
                    refused = true;
                    continue;
                }
                let floor = self.last_seq.load(Ordering::SeqCst);
                family.resources.insert(
                    resource.to_owned(),
                    ChannelLog::new((*channel).clone(), floor, Instant::now()),
                );
            }
            if refused && !room_for_resources {
                // Nothing is joined yet: make room without the lock and retry.
                drop(family);
                room_for_resources = true;
                self.make_room();
                continue;
            }
            let head = self.last_seq.load(Ordering::SeqCst);
            return Ok(op(&mut family, head));
        }
    }

    /// Forgets channels until a tenth of the bound (and at least one) is
    /// free, so a burst of new channels does not sweep on every publish.
    fn make_room(&self) {
        let max = self.limits.max_channels;
        let target = max.saturating_sub(max / 10).saturating_sub(1);
        self.sweep(Instant::now(), Sweep::ToCount(target));
    }

    /// Appends the logs of one family (`members`: their indices in `logs`)
    /// under one hold of its lock: sequence numbers in one run, both
    /// histories, the router fed once. With `key`, a record of an earlier
    /// request with that key answers instead.
    fn append_family(
        &self,
        family: &Channel,
        logs: &[NewLog],
        members: &[usize],
        key: Option<&IdempotencyKey>,
        out: &mut [Option<Result<Appended, PublishRejection>>],
    ) {
        let channels: Vec<&Channel> = members.iter().map(|&i| &logs[i].channel).collect();
        let done = self.with_family(family, &channels, |held, _| {
            let now = Instant::now();
            match key.map_or(Recall::New, |k| self.memo.recall(family, k, now)) {
                Recall::Reused => members
                    .iter()
                    .map(|_| Err(PublishRejection::KeyReused))
                    .collect(),
                Recall::Stored(stored) => (0..members.len())
                    .map(|k| match stored.seq(k) {
                        Some(seq) => Ok(Appended::Duplicate(Cursor::new(self.epoch, seq))),
                        None => Err(self.channel_limit()),
                    })
                    .collect(),
                Recall::New => {
                    let (results, seqs) = self.store_in(held, logs, members, now);
                    if let Some(key) = key {
                        self.memo
                            .remember(family, key, Stored::from_seqs(&seqs), now);
                    }
                    results
                }
            }
        });
        let results: AppendResults = match done {
            Ok(results) => results,
            Err(rejection) => members.iter().map(|_| Err(rejection.clone())).collect(),
        };
        for (&i, result) in members.iter().zip(results) {
            out[i] = Some(result);
        }
    }

    /// Stores `members` of `logs` in the locked family `held` and feeds
    /// them to the router; returns each one's result and sequence number.
    fn store_in(
        &self,
        held: &mut Family,
        logs: &[NewLog],
        members: &[usize],
        now: Instant,
    ) -> (AppendResults, Vec<Option<u64>>) {
        let capacity = self.limits.history_per_channel;
        // A resource the channel bound refused has no log; the others get
        // one run of sequence numbers.
        let present: Vec<bool> = members
            .iter()
            .map(|&i| {
                logs[i]
                    .channel
                    .resource()
                    .is_none_or(|r| held.resources.contains_key(r))
            })
            .collect();
        let count = present.iter().filter(|p| **p).count() as u64;
        let mut next = self.last_seq.fetch_add(count, Ordering::SeqCst);
        let mut fed = Vec::with_capacity(members.len());
        let mut seqs = Vec::with_capacity(members.len());
        for (&i, present) in members.iter().zip(present) {
            if !present {
                seqs.push(None);
                continue;
            }
            next += 1;
            let log = &logs[i];
            let cursor = Cursor::new(self.epoch, next);
            let stored = StoredEntry {
                cursor,
                channel: log.channel.clone(),
                frame: log_frame(&log.channel, cursor, log.ts, &log.log_data),
            };
            let entry = Entry::new(stored.clone(), &self.history_bytes);
            if let Some(resource) = log
                .channel
                .resource()
                .and_then(|r| held.resources.get_mut(r))
            {
                resource.push(entry.clone(), capacity, now);
            }
            held.root.push(entry, capacity, now);
            seqs.push(Some(next));
            fed.push(stored);
        }
        // Fed under the family's lock: the router sees the family's entries
        // in sequence order.
        if let (Some(sink), false) = (self.sink.get(), fed.is_empty()) {
            sink.deliver(&held.root.channel, &fed);
        }
        // The fed entries, in order, are the stored logs' results.
        let mut fed = fed.into_iter();
        let results = seqs
            .iter()
            .map(|seq| {
                seq.and_then(|_| fed.next())
                    .map(Appended::New)
                    .ok_or_else(|| self.channel_limit())
            })
            .collect();
        (results, seqs)
    }

    fn channel_limit(&self) -> PublishRejection {
        PublishRejection::ChannelLimit {
            max: self.limits.max_channels,
        }
    }

    /// Clears the histories of the least recently active families until the
    /// history fits in three quarters of its byte bound.
    fn shed_history(&self) {
        let target = self.limits.max_history_bytes / 4 * 3;
        let mut families: Vec<(Instant, FamilyRef)> = self
            .families_read()
            .values()
            .map(|f| (lock(f).root.last_active, f.clone()))
            .collect();
        families.sort_by_key(|(at, _)| *at);
        for (_, family) in families {
            if self.history_bytes.load(Ordering::Relaxed) <= target {
                break;
            }
            let mut family = lock(&family);
            family.root.clear_history();
            family
                .resources
                .values_mut()
                .for_each(ChannelLog::clear_history);
        }
    }

    /// Forgets channels nobody subscribes to: idle ones, or under pressure
    /// the least recently active until at most `ToCount` remain.
    fn sweep(&self, now: Instant, mode: Sweep) {
        let families: Vec<(String, FamilyRef)> = self
            .families_read()
            .iter()
            .map(|(k, f)| (k.clone(), f.clone()))
            .collect();
        let idle = self.limits.channel_idle;
        let eligible = |log: &ChannelLog| {
            !self.watched(&log.channel)
                && match mode {
                    Sweep::Idle => now.saturating_duration_since(log.last_active) >= idle,
                    Sweep::ToCount(_) => true,
                }
        };
        let mut resources: Vec<(Instant, usize, String)> = Vec::new();
        let mut roots: Vec<(Instant, usize)> = Vec::new();
        for (index, (_, family)) in families.iter().enumerate() {
            let family = lock(family);
            for (id, log) in &family.resources {
                if eligible(log) {
                    resources.push((log.last_active, index, id.clone()));
                }
            }
            if eligible(&family.root) {
                roots.push((family.root.last_active, index));
            }
        }
        resources.sort_by_key(|(at, ..)| *at);
        roots.sort_by_key(|(at, _)| *at);
        let done = || match mode {
            Sweep::Idle => false,
            Sweep::ToCount(target) => self.channel_count.load(Ordering::Relaxed) <= target,
        };
        for (_, index, id) in resources {
            if done() {
                return;
            }
            let mut family = lock(&families[index].1);
            if family.resources.get(&id).is_some_and(&eligible) {
                family.resources.remove(&id);
                self.channel_count.fetch_sub(1, Ordering::Relaxed);
            }
        }
        for (_, index) in roots {
            if done() {
                return;
            }
            let (key, family_ref) = &families[index];
            let mut map = self.families_write();
            let mut family = lock(family_ref);
            if !family.removed && family.resources.is_empty() && eligible(&family.root) {
                family.removed = true;
                map.remove(key);
                self.channel_count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Reads channels of one family in one hold of its lock, creating the
    /// channels that are missing (those the channel bound refuses read as
    /// refused).
    fn read_sync(&self, family: &Channel, channels: &[(Channel, ResumeFrom)]) -> FamilyRead {
        let resources: Vec<&Channel> = channels
            .iter()
            .map(|(c, _)| c)
            .filter(|c| !c.is_service_level())
            .collect();
        let max = self.limits.max_channels;
        let read = self.with_family(family, &resources, |family, head| {
            let reads = channels
                .iter()
                .map(|(channel, resume)| {
                    let log = match channel.resource() {
                        Some(r) => family.resources.get(r),
                        None => Some(&family.root),
                    };
                    log.map(|log| log.read(self.epoch, *resume, head))
                        .ok_or(PublishRejection::ChannelLimit { max })
                })
                .collect();
            (head, reads)
        });
        let (head, channels) = match read {
            Ok(read) => read,
            Err(rejection) => (
                self.last_seq.load(Ordering::SeqCst),
                channels.iter().map(|_| Err(rejection.clone())).collect(),
            ),
        };
        FamilyRead {
            epoch: self.epoch,
            head,
            channels,
        }
    }
}

impl Store for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn epoch(&self) -> Epoch {
        self.epoch
    }

    fn attach(&self, sink: Arc<dyn FeedSink>) {
        let _ = self.sink.set(sink);
    }

    fn append(
        &self,
        logs: Vec<NewLog>,
        key: Option<IdempotencyKey>,
    ) -> BoxFuture<'_, Result<AppendResults, StoreError>> {
        // Every log belongs to one family, so every slot is filled.
        let mut slots = vec![None; logs.len()];
        for (family, members) in families_of(logs.iter().map(|l| &l.channel)) {
            self.append_family(&family, &logs, &members, key.as_ref(), &mut slots);
        }
        let results: AppendResults = slots.into_iter().flatten().collect();
        if self.history_bytes.load(Ordering::Relaxed) > self.limits.max_history_bytes {
            self.shed_history();
        }
        Box::pin(std::future::ready(Ok(results)))
    }

    fn read<'a>(
        &'a self,
        family: &'a Channel,
        channels: &'a [(Channel, ResumeFrom)],
    ) -> BoxFuture<'a, Result<FamilyRead, StoreError>> {
        Box::pin(std::future::ready(Ok(self.read_sync(family, channels))))
    }

    fn watch<'a>(&'a self, _family: &'a Channel) -> BoxFuture<'a, Result<(), StoreError>> {
        // Every family is always fed.
        Box::pin(std::future::ready(Ok(())))
    }

    fn unwatch(&self, _family: &Channel) {}

    fn stats(&self) -> StoreStats {
        let mut history = HistoryFigures {
            channels: self.channel_count.load(Ordering::Relaxed),
            bytes: self.history_bytes.load(Ordering::Relaxed),
            entries: 0,
        };
        let families: Vec<FamilyRef> = self.families_read().values().cloned().collect();
        for family in families {
            let family = lock(&family);
            for log in std::iter::once(&family.root).chain(family.resources.values()) {
                history.entries += log.history.len();
            }
        }
        StoreStats {
            history: Some(history),
            ..StoreStats::default()
        }
    }

    fn maintain(&self, now: Instant) {
        self.sweep(now, Sweep::Idle);
        self.memo.maintain(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, Subscribed};
    use crate::subscriber::{Next, Subscriber, SubscriberQueue};
    use futures_util::FutureExt;
    use logs_sse_protocol::StatusKind;

    fn backend(configure: impl FnOnce(&mut MemoryLimits)) -> MemoryBackend {
        let mut limits = MemoryLimits {
            history_per_channel: 100,
            max_history_bytes: 1 << 20,
            max_channels: 1000,
            channel_idle: Duration::from_secs(60),
            idempotency: MemoLimits::default(),
        };
        configure(&mut limits);
        MemoryBackend::with_epoch(Epoch(1), limits, Arc::new(Metrics::default()))
    }

    fn ch(s: &str) -> Channel {
        s.parse().unwrap()
    }

    fn log(channel: &str, data: &str) -> NewLog {
        NewLog {
            channel: ch(channel),
            log_data: data.to_owned(),
            ts: 0,
        }
    }

    async fn publish(
        b: &MemoryBackend,
        channel: &str,
        data: &str,
    ) -> Result<Cursor, PublishRejection> {
        let result = b
            .publish(vec![log(channel, data)], None)
            .await
            .unwrap()
            .remove(0);
        result.map(|appended| appended.cursor())
    }

    fn subscribe(
        b: &MemoryBackend,
        id: u64,
        channels: &[(&str, ResumeFrom)],
    ) -> (Arc<Subscriber>, SubscriberQueue, Subscribed) {
        let (sub, queue) = Subscriber::new(id, 100, 1 << 20);
        let request: Vec<_> = channels.iter().map(|(c, r)| (ch(c), *r)).collect();
        // The memory store never waits, so neither does subscribing.
        let subscribed = b
            .subscribe(&sub, &request)
            .now_or_never()
            .expect("ready at once")
            .unwrap();
        (sub, queue, subscribed)
    }

    #[tokio::test(start_paused = true)]
    async fn idle_unsubscribed_channels_are_forgotten_and_old_cursors_become_gaps() {
        let b = backend(|_| {});
        let cursor = publish(&b, "logs:etl:ws1:wf1", "1").await.unwrap();
        let (_keep, _q, _) = subscribe(&b, 1, &[("logs:etl:ws2:wf1", ResumeFrom::Live)]);
        assert_eq!(b.stats().history.unwrap().channels, 4);
        b.maintain(Instant::now() + Duration::from_secs(59));
        assert_eq!(b.stats().history.unwrap().channels, 4, "not idle yet");
        b.maintain(Instant::now() + Duration::from_secs(61));
        assert_eq!(
            b.stats().history.unwrap().channels,
            2,
            "only the subscribed family is kept"
        );
        assert_eq!(
            b.stats().history.unwrap().bytes,
            0,
            "forgotten history is freed"
        );
        // While the channel was forgotten, the gateway went on publishing.
        publish(&b, "logs:etl:ws3:wf1", "2").await.unwrap();
        let (_s, _q, subscribed) =
            subscribe(&b, 2, &[("logs:etl:ws1:wf1", ResumeFrom::After(cursor))]);
        assert_eq!(subscribed.statuses[0].status, StatusKind::Gap);
    }

    #[tokio::test]
    async fn channel_bound_evicts_idle_channels_then_refuses() {
        let b = backend(|l| l.max_channels = 4);
        publish(&b, "logs:etl:ws1:a", "1").await.unwrap();
        publish(&b, "logs:etl:ws1:b", "1").await.unwrap();
        publish(&b, "logs:etl:ws1:c", "1").await.unwrap();
        assert_eq!(b.stats().history.unwrap().channels, 4);
        // Room is made by forgetting the least recently active channels.
        publish(&b, "logs:etl:ws1:d", "1").await.unwrap();
        assert!(b.stats().history.unwrap().channels <= 4);
        // With every channel subscribed, nothing can be forgotten.
        let (_s, _q, _) = subscribe(
            &b,
            1,
            &[
                ("logs:etl:ws1", ResumeFrom::Live),
                ("logs:etl:ws1:d", ResumeFrom::Live),
            ],
        );
        let (_s2, _q2, _) = subscribe(
            &b,
            2,
            &[
                ("logs:faas:ws1", ResumeFrom::Live),
                ("logs:faas:ws1:x", ResumeFrom::Live),
            ],
        );
        assert_eq!(b.stats().history.unwrap().channels, 4);
        let refused = publish(&b, "logs:etl:ws1:e", "1").await;
        assert_eq!(refused, Err(PublishRejection::ChannelLimit { max: 4 }));
        let (_s3, _q3, subscribed) = subscribe(&b, 3, &[("logs:etl:ws9:z", ResumeFrom::Live)]);
        assert_eq!(subscribed.statuses[0].status, StatusKind::Denied);
        assert!(subscribed.statuses[0]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("channel_limit"));
    }

    #[tokio::test]
    async fn history_byte_bound_clears_the_oldest_families_first() {
        let b = backend(|l| l.max_history_bytes = 4000);
        let old = publish(&b, "logs:etl:old:a", &"1".repeat(1000))
            .await
            .unwrap();
        for _ in 0..3 {
            publish(&b, "logs:etl:new:a", &"2".repeat(1000))
                .await
                .unwrap();
        }
        let stats = b.stats().history.unwrap();
        assert!(stats.bytes <= 4000, "{stats:?}");
        let (_s, _q, subscribed) = subscribe(
            &b,
            1,
            &[(
                "logs:etl:old:a",
                ResumeFrom::After(Cursor::new(Epoch(1), old.seq - 1)),
            )],
        );
        assert_eq!(
            subscribed.statuses[0].status,
            StatusKind::Gap,
            "cleared history is reported"
        );
    }

    #[tokio::test]
    async fn per_channel_history_is_bounded_and_its_floor_follows() {
        let b = backend(|l| l.history_per_channel = 3);
        let mut cursors = Vec::new();
        for i in 0..10 {
            cursors.push(publish(&b, "logs:etl:ws:a", &i.to_string()).await.unwrap());
        }
        assert_eq!(
            b.stats().history.unwrap().entries,
            6,
            "3 in the resource and 3 in the service-level history"
        );
        let at = |c: Cursor| ResumeFrom::After(c);
        let (_s, _q, ok) = subscribe(&b, 1, &[("logs:etl:ws:a", at(cursors[6]))]);
        assert_eq!(
            (ok.statuses[0].status, ok.replay.len()),
            (StatusKind::Resumed, 3)
        );
        let (_s, _q, gap) = subscribe(&b, 2, &[("logs:etl:ws:a", at(cursors[5]))]);
        assert_eq!(
            (gap.statuses[0].status, gap.replay.len()),
            (StatusKind::Gap, 3)
        );
        let (_s, _q, future) =
            subscribe(&b, 3, &[("logs:etl:ws:a", at(Cursor::new(Epoch(1), 999)))]);
        assert!(future.statuses[0]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("unknown_cursor"));
    }

    #[tokio::test]
    async fn replay_of_overlapping_channels_is_merged_in_order_without_duplicates() {
        let b = backend(|_| {});
        let c1 = publish(&b, "logs:etl:ws:a", "1").await.unwrap();
        publish(&b, "logs:etl:ws:b", "2").await.unwrap();
        publish(&b, "logs:etl:ws:a", "3").await.unwrap();
        let (_s, mut queue, subscribed) = subscribe(
            &b,
            1,
            &[
                ("logs:etl:ws:a", ResumeFrom::Earliest),
                ("logs:etl:ws", ResumeFrom::After(c1)),
            ],
        );
        let replayed: Vec<_> = subscribed
            .replay
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        assert_eq!(replayed.len(), 3, "{replayed:?}");
        assert!(replayed[0].contains("\"logData\":1}") && replayed[2].contains("\"logData\":3}"));
        publish(&b, "logs:etl:ws:a", "4").await.unwrap();
        let Next::Frame(live) = queue.next().await else {
            panic!("closed")
        };
        assert!(String::from_utf8_lossy(&live).contains("\"logData\":4}"));
        assert!(
            queue.try_next().is_none(),
            "delivered once although two channels match"
        );
    }

    #[tokio::test]
    async fn a_closed_subscriber_is_dropped_from_its_channels_on_the_next_publish() {
        let b = backend(|_| {});
        let (sub, queue, _) = subscribe(&b, 1, &[("logs:etl:ws:a", ResumeFrom::Live)]);
        drop(queue);
        drop(sub);
        publish(&b, "logs:etl:ws:a", "1").await.unwrap();
        assert!(b.stats().subscriptions.is_empty());
    }
}
