//! The node-local router, shared by every store: this node's streams per
//! family, the fan-out of each entry's one encoded frame to their queues
//! (once per stream, even when a stream watches both a resource channel and
//! its service-level channel), and the join that merges history with live.
//!
//! **Exactly once across history and live.** A stream joins all its
//! channels of one family in one step: it is registered as *joining*
//! (entries fed meanwhile are kept aside), then the store reads the
//! family's history after the stream's cursors in one snapshot, then the
//! history and the entries kept aside are merged by cursor, the overlap
//! dropped, and the stream turns *live*, skipping any entry at or below
//! the newest it was given. Everything fed before the registration is in
//! the snapshot (a store feeds an entry only after storing it), everything
//! appended after the snapshot is fed after the registration, so nothing
//! is lost and nothing repeated, whatever the timing of the feed.
//!
//! **Channel changes.** A stream may join more channels of a family it
//! already carries. Each of its channels remembers where it started: the
//! stream has (or has queued) every entry of the channel after that, so the
//! new channels' replay leaves out what the others brought, and live
//! entries go to the stream once, whichever of its channels covers them.
//! The statuses and the replay of a change are queued under the family's
//! lock, before any live entry of the new channels.
//!
//! Families with local streams are *watched* in the store (for Redis: one
//! pub/sub subscription per family, shared by all its streams); the last
//! stream to leave unwatches.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use logs_sse_protocol::{Channel, ChannelStatus, CloseReason, Epoch, ResumeFrom, StatusKind};
use tokio::sync::OnceCell;

use logs_sse_protocol::EVENT_STATUS;

use super::{resume, FeedSink, Store, StoreError, StoredEntry};
use crate::frame::{event_frame, Frame};
use crate::metrics::Metrics;
use crate::subscriber::{Delivery, Subscriber};

/// Most entries kept aside for one stream while it joins (one store read);
/// past it the stream is cut as a slow consumer and resumes from cursors.
pub const MAX_JOINING_ENTRIES: usize = 10_000;

/// The router; see the module docs.
#[derive(Debug)]
pub struct Router {
    families: RwLock<HashMap<String, Arc<RouterFamily>>>,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Default)]
struct RouterFamily {
    watched: OnceCell<()>,
    state: Mutex<FamilyState>,
}

#[derive(Debug, Default)]
struct FamilyState {
    /// Set when the family is dropped from the map; holders of a stale
    /// `Arc` must look it up again.
    removed: bool,
    /// The epoch of the entries fed so far.
    epoch: Option<Epoch>,
    /// The highest sequence number fed so far (entries come in order).
    fed: u64,
    members: HashMap<u64, Member>,
    /// Streams watching the service-level channel.
    root: HashSet<u64>,
    /// Streams watching each resource channel.
    resources: HashMap<String, HashSet<u64>>,
}

#[derive(Debug)]
struct Member {
    subscriber: Arc<Subscriber>,
    /// The stream's channels of this family.
    watches: Vec<Watch>,
    /// Entries fed while some watch is joining, kept aside for the merge.
    kept: Vec<StoredEntry>,
}

/// One channel of a member. A stream has received (or has queued) every
/// entry of the channel after `start`, by replay up to `after` and live
/// above it; a channel change relies on that to replay only what the
/// stream's other channels did not bring.
#[derive(Debug)]
struct Watch {
    channel: Channel,
    start: u64,
    /// `None` while joining (history not merged yet: entries are kept
    /// aside); then every fed entry above it is delivered.
    after: Option<u64>,
}

impl Watch {
    fn covers(&self, entry: &StoredEntry) -> bool {
        match self.channel.resource() {
            None => true,
            Some(r) => entry.channel.resource() == Some(r),
        }
    }
}

/// What a fed entry is to a member.
enum Fate {
    Deliver,
    KeepAside,
    Skip,
}

impl Member {
    fn fate(&self, entry: &StoredEntry) -> Fate {
        let mut joining = false;
        for watch in &self.watches {
            if !watch.covers(entry) {
                continue;
            }
            match watch.after {
                Some(after) if entry.cursor.seq > after => return Fate::Deliver,
                Some(_) => {}
                None => joining = true,
            }
        }
        if joining {
            Fate::KeepAside
        } else {
            Fate::Skip
        }
    }

    /// Whether the stream has (or will get live) `entry` through a channel
    /// it already carried before this join.
    fn brought(&self, entry: &StoredEntry) -> bool {
        self.watches
            .iter()
            .any(|w| w.after.is_some() && w.covers(entry) && entry.cursor.seq > w.start)
    }
}

fn lock(state: &Mutex<FamilyState>) -> MutexGuard<'_, FamilyState> {
    // Every mutation is a single insert/remove, so a poisoned lock still
    // holds consistent data.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl FamilyState {
    /// Registers `channels` as joining for `subscriber`, a new member or
    /// one that already carries other channels of the family.
    fn insert(&mut self, subscriber: &Arc<Subscriber>, channels: &[(Channel, ResumeFrom)]) {
        let id = subscriber.id();
        let member = self.members.entry(id).or_insert_with(|| Member {
            subscriber: subscriber.clone(),
            watches: Vec::new(),
            kept: Vec::new(),
        });
        for (channel, _) in channels {
            member.watches.retain(|w| w.channel != *channel);
            member.watches.push(Watch {
                channel: channel.clone(),
                start: 0,
                after: None,
            });
        }
        for (channel, _) in channels {
            self.add_channel(id, channel);
        }
    }

    fn add_channel(&mut self, id: u64, channel: &Channel) {
        match channel.resource() {
            None => {
                self.root.insert(id);
            }
            Some(r) => {
                self.resources.entry(r.to_owned()).or_default().insert(id);
            }
        }
    }

    fn remove_channel(&mut self, id: u64, channel: &Channel) {
        if let Some(member) = self.members.get_mut(&id) {
            member.watches.retain(|w| w.channel != *channel);
        }
        match channel.resource() {
            None => {
                self.root.remove(&id);
            }
            Some(r) => {
                if let Some(set) = self.resources.get_mut(r) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.resources.remove(r);
                    }
                }
            }
        }
    }

    fn remove_member(&mut self, id: u64) {
        self.members.remove(&id);
        self.root.remove(&id);
        self.resources.retain(|_, set| {
            set.remove(&id);
            !set.is_empty()
        });
    }

    /// Forgets a member left without channels of this family.
    fn forget_if_idle(&mut self, id: u64) {
        if self
            .members
            .get(&id)
            .is_some_and(|member| member.watches.is_empty())
        {
            self.remove_member(id);
        }
    }

    /// Closes every stream (they resume from their cursors elsewhere or
    /// again) and forgets them.
    fn close_all(&mut self) {
        for member in self.members.values() {
            member.subscriber.close(CloseReason::Shutdown);
        }
        self.members.clear();
        self.root.clear();
        self.resources.clear();
    }
}

impl Router {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Router {
            families: RwLock::new(HashMap::new()),
            metrics,
        }
    }

    fn get(&self, family: &Channel) -> Option<Arc<RouterFamily>> {
        self.families
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(family.as_str())
            .cloned()
    }

    fn get_or_create(&self, family: &Channel) -> Arc<RouterFamily> {
        if let Some(existing) = self.get(family) {
            return existing;
        }
        self.families
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(family.as_str().to_owned())
            .or_default()
            .clone()
    }

    /// Drops `family` from the map if it has no streams; returns whether it
    /// did (the caller then unwatches it in the store).
    fn remove_if_empty(&self, family: &Channel, entry: &Arc<RouterFamily>) -> bool {
        let mut map = self.families.write().unwrap_or_else(|p| p.into_inner());
        let mut state = lock(&entry.state);
        if state.removed || !state.members.is_empty() {
            return false;
        }
        state.removed = true;
        if map
            .get(family.as_str())
            .is_some_and(|current| Arc::ptr_eq(current, entry))
        {
            map.remove(family.as_str());
        }
        true
    }

    /// Joins `subscriber` to `channels`, all of the family `family` (its
    /// service-level channel), in one step; returns a status per channel
    /// (request order) and the entries to replay, in sequence order.
    ///
    /// The stream may already carry other channels of the family (a
    /// channel change, `requeue` set): then the replay leaves out what
    /// those channels brought or will bring, and the status frames and the
    /// replay are queued on the subscriber under the family's lock, so they
    /// precede every live entry of the new channels (the returned entries
    /// are then empty). `requeue` bounds the replay frames queued at once.
    pub async fn join(
        &self,
        store: &dyn Store,
        subscriber: &Arc<Subscriber>,
        family: &Channel,
        channels: &[(Channel, ResumeFrom)],
        requeue: Option<usize>,
    ) -> Result<(Vec<ChannelStatus>, Vec<StoredEntry>), StoreError> {
        let id = subscriber.id();
        let entry = loop {
            let entry = self.get_or_create(family);
            if let Err(error) = entry.watched.get_or_try_init(|| store.watch(family)).await {
                if self.remove_if_empty(family, &entry) {
                    store.unwatch(family);
                }
                return Err(error);
            }
            let mut state = lock(&entry.state);
            if state.removed {
                continue;
            }
            state.insert(subscriber, channels);
            drop(state);
            break entry;
        };
        let read = store.read(family, channels).await;
        let mut state = lock(&entry.state);
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                for (channel, _) in channels {
                    state.remove_channel(id, channel);
                }
                if let Some(member) = state.members.get_mut(&id) {
                    member.kept = Vec::new();
                }
                state.forget_if_idle(id);
                let empty = state.members.is_empty();
                drop(state);
                if empty && self.remove_if_empty(family, &entry) {
                    store.unwatch(family);
                }
                return Err(error);
            }
        };
        let kept_aside = match state.members.get_mut(&id) {
            Some(member) => std::mem::take(&mut member.kept),
            None => Vec::new(),
        };
        if state.epoch.is_none() {
            state.epoch = Some(read.epoch);
        }
        let mut statuses = Vec::with_capacity(channels.len());
        let mut starts: Vec<(Option<&str>, u64)> = Vec::new();
        let mut merged: Vec<StoredEntry> = Vec::new();
        for ((channel, resume_from), result) in channels.iter().zip(&read.channels) {
            match result {
                Ok(channel_read) => {
                    statuses.push(resume::status(
                        channel,
                        *resume_from,
                        read.epoch,
                        read.head,
                        channel_read,
                    ));
                    starts.push((channel.resource(), channel_read.start));
                    merged.extend(channel_read.entries.iter().cloned());
                }
                Err(rejection) => {
                    statuses.push(resume::denied(channel, rejection));
                    state.remove_channel(id, channel);
                }
            }
        }
        merged.extend(
            kept_aside
                .into_iter()
                .filter(|e| e.cursor.epoch == read.epoch),
        );
        let wanted = |e: &StoredEntry| {
            starts.iter().any(|(resource, start)| {
                (resource.is_none() || *resource == e.channel.resource()) && e.cursor.seq > *start
            })
        };
        let member = state.members.get(&id);
        let brought = |e: &StoredEntry| member.is_some_and(|m| m.brought(e));
        // An entry another channel brings but the feed has not delivered
        // yet (a store whose feed lags its reads) will come live after the
        // replay: the replay stops before it, and the rest comes live too,
        // so the new channels see their logs in order.
        let fed = state.fed;
        let cut = merged
            .iter()
            .filter(|e| e.cursor.seq > fed && wanted(e) && brought(e))
            .map(|e| e.cursor.seq - 1)
            .min();
        merged.retain(|e| wanted(e) && !brought(e) && cut.is_none_or(|c| e.cursor.seq <= c));
        merged.sort_by_key(|e| e.cursor.seq);
        merged.dedup_by_key(|e| e.cursor.seq);
        for status in &mut statuses {
            if status.status == StatusKind::Denied {
                continue;
            }
            let start = status.cursor.map_or(0, |c| c.seq);
            let resource = status.channel.resource();
            let count = merged
                .iter()
                .filter(|e| {
                    (resource.is_none() || resource == e.channel.resource()) && e.cursor.seq > start
                })
                .count();
            status.replayed = u32::try_from(count).unwrap_or(u32::MAX);
        }
        let after = match cut {
            Some(cut) => cut,
            None => merged
                .last()
                .map_or(read.head, |e| e.cursor.seq.max(read.head)),
        };
        if let Some(member) = state.members.get_mut(&id) {
            for status in &statuses {
                if let Some(watch) = member
                    .watches
                    .iter_mut()
                    .find(|w| w.channel == status.channel)
                {
                    let start = status.cursor.map_or(0, |c| c.seq);
                    watch.start = start;
                    watch.after = Some(after.max(start));
                }
            }
        }
        if let Some(max_replay) = requeue {
            let frames: Vec<Frame> = statuses
                .iter()
                .map(|s| event_frame(EVENT_STATUS, s))
                .chain(merged.drain(..).map(|e| e.frame))
                .collect();
            match subscriber.deliver_replay(frames, max_replay) {
                Delivery::Queued => {}
                Delivery::SlowConsumer => {
                    self.metrics.slow_consumer_disconnects.inc();
                    state.remove_member(id);
                }
                Delivery::Gone => state.remove_member(id),
            }
        }
        state.forget_if_idle(id);
        let empty = state.members.is_empty();
        drop(state);
        if empty && self.remove_if_empty(family, &entry) {
            store.unwatch(family);
        }
        Ok((statuses, merged))
    }

    /// Removes a stream from channels of one family.
    pub fn leave(&self, store: &dyn Store, id: u64, family: &Channel, channels: &[Channel]) {
        let Some(entry) = self.get(family) else {
            return;
        };
        let mut state = lock(&entry.state);
        for channel in channels {
            state.remove_channel(id, channel);
        }
        state.forget_if_idle(id);
        let empty = state.members.is_empty();
        drop(state);
        if empty && self.remove_if_empty(family, &entry) {
            store.unwatch(family);
        }
    }

    /// The families with local streams, copied out so no lock is held
    /// while each is visited.
    fn snapshot(&self) -> Vec<(String, Arc<RouterFamily>)> {
        self.families
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Forgets families whose streams all went away without leaving (cut
    /// while the family was fed) and unwatches them.
    pub fn sweep(&self, store: &dyn Store) {
        let families = self.snapshot();
        for (name, entry) in families {
            let Ok(family) = name.parse::<Channel>() else {
                continue;
            };
            if lock(&entry.state).members.is_empty() && self.remove_if_empty(&family, &entry) {
                store.unwatch(&family);
            }
        }
    }

    /// Families with local streams (what a store's feed must cover).
    pub fn families(&self) -> Vec<Channel> {
        self.families
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter_map(|k| k.parse().ok())
            .collect()
    }

    /// Open subscriptions per channel and the bytes queued to this node's
    /// streams.
    pub fn subscriptions(&self) -> (Vec<(String, usize)>, usize) {
        let families = self.snapshot();
        let mut subscriptions = Vec::new();
        let mut queued = 0;
        let mut seen = HashSet::new();
        for (name, entry) in families {
            let state = lock(&entry.state);
            if !state.root.is_empty() {
                subscriptions.push((name.clone(), state.root.len()));
            }
            for (resource, set) in &state.resources {
                subscriptions.push((format!("{name}:{resource}"), set.len()));
            }
            for (id, member) in &state.members {
                if seen.insert(*id) {
                    queued += member.subscriber.queued_bytes();
                }
            }
        }
        subscriptions.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        (subscriptions, queued)
    }
}

impl FeedSink for Router {
    fn deliver(&self, family: &Channel, entries: &[StoredEntry]) {
        let Some(entry) = self.get(family) else {
            return;
        };
        let mut state = lock(&entry.state);
        let (mut queued, mut slow) = (0u64, 0u64);
        let mut dropped: Vec<u64> = Vec::new();
        for log in entries {
            match state.epoch {
                None => state.epoch = Some(log.cursor.epoch),
                Some(epoch) if epoch != log.cursor.epoch => {
                    // The store lost this family's history: the streams
                    // resume from their cursors and are told of the gap.
                    state.close_all();
                    state.epoch = Some(log.cursor.epoch);
                    state.fed = log.cursor.seq;
                    continue;
                }
                Some(_) => {}
            }
            state.fed = state.fed.max(log.cursor.seq);
            let FamilyState {
                members,
                root,
                resources,
                ..
            } = &mut *state;
            let of_resource = log.channel.resource().and_then(|r| resources.get(r));
            let targets = root.iter().chain(
                of_resource
                    .into_iter()
                    .flatten()
                    .filter(|id| !root.contains(id)),
            );
            for id in targets {
                let Some(member) = members.get_mut(id) else {
                    continue;
                };
                match member.fate(log) {
                    Fate::KeepAside => {
                        if member.kept.len() >= MAX_JOINING_ENTRIES {
                            member.subscriber.close(CloseReason::SlowConsumer);
                            slow += 1;
                            dropped.push(*id);
                        } else {
                            member.kept.push(log.clone());
                        }
                    }
                    Fate::Deliver => match member.subscriber.deliver(&log.frame) {
                        Delivery::Queued => queued += 1,
                        Delivery::SlowConsumer => {
                            slow += 1;
                            dropped.push(*id);
                        }
                        Delivery::Gone => dropped.push(*id),
                    },
                    Fate::Skip => {}
                }
            }
            for id in dropped.drain(..) {
                state.remove_member(id);
            }
        }
        drop(state);
        self.metrics.deliveries.inc_by(queued);
        self.metrics.slow_consumer_disconnects.inc_by(slow);
    }

    fn lost(&self, family: &Channel) {
        if let Some(entry) = self.get(family) {
            let mut state = lock(&entry.state);
            state.close_all();
            state.epoch = None;
            state.fed = 0;
        }
    }

    fn watched(&self, channel: &Channel) -> bool {
        let Some(entry) = self.get(&channel.service_level()) else {
            return false;
        };
        let state = lock(&entry.state);
        match channel.resource() {
            None => !state.root.is_empty(),
            Some(r) => state.resources.get(r).is_some_and(|set| !set.is_empty()),
        }
    }
}
