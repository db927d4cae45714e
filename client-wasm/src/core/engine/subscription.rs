//! One subscription's state (its channel, resume point, buffer, filter and
//! persistence bookkeeping) and [`SubMap`], the subscriptions sorted by id.
//! Plain data: what the engine does with it lives in the sibling modules.

use logs_sse_protocol::{Channel, Cursor, StatusKind};

use crate::core::buffer::LogBuffer;
use crate::core::registry::SubId;

/// A subscription's filter: keep the log when it returns true.
pub type Filter<P> = Box<dyn Fn(&P) -> bool>;

/// Smallest persistence budget tried after quota errors.
pub const MIN_PERSIST_BUDGET: usize = 4 * 1024;
/// Pause after a write failed even with the smallest budget.
pub const PERSIST_GIVE_UP_MS: u64 = 30_000;

/// Where a persisted subscription's record stands: dirty since the last
/// write, when the next write is due, and the byte budget it gets.
#[derive(Debug)]
pub(super) struct PersistState {
    pub(super) key: String,
    pub(super) dirty: bool,
    pub(super) due_at: u64,
    pub(super) last_write: Option<u64>,
    pub(super) budget: usize,
    pub(super) disabled: bool,
}

/// One subscription.
pub struct Subscription<P> {
    pub channel: Channel,
    /// Its resume point: every log of the channel after it is still to come
    /// to this subscription, and every log up to it that it kept is in its
    /// buffer. What is persisted, and where the stream resumes the channel.
    pub cursor: Option<Cursor>,
    pub buffer: LogBuffer<P>,
    pub(super) filter: Option<Filter<P>>,
    pub(super) persist: Option<PersistState>,
    /// The channel's last status as reported by the gateway.
    pub status: Option<StatusKind>,
    pub status_reason: Option<String>,
}

impl<P: std::fmt::Debug> std::fmt::Debug for Subscription<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("channel", &self.channel)
            .field("buffer", &self.buffer.len())
            .field("filter", &self.filter.is_some())
            .field("persist", &self.persist)
            .field("status", &self.status)
            .finish()
    }
}

/// Subscriptions sorted by id (a few hundred at most: a sorted `Vec` is
/// smaller than a tree in wasm).
pub(super) struct SubMap<P>(pub(super) Vec<(SubId, Subscription<P>)>);

impl<P> SubMap<P> {
    pub(super) fn find(&self, id: SubId) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |(k, _)| *k)
    }
    pub(super) fn get(&self, id: &SubId) -> Option<&Subscription<P>> {
        self.find(*id).ok().map(|i| &self.0[i].1)
    }
    pub(super) fn get_mut(&mut self, id: &SubId) -> Option<&mut Subscription<P>> {
        self.find(*id).ok().map(|i| &mut self.0[i].1)
    }
    pub(super) fn insert(&mut self, id: SubId, sub: Subscription<P>) {
        match self.find(id) {
            Ok(i) => self.0[i].1 = sub,
            Err(i) => self.0.insert(i, (id, sub)),
        }
    }
    pub(super) fn remove(&mut self, id: &SubId) -> Option<Subscription<P>> {
        self.find(*id).ok().map(|i| self.0.remove(i).1)
    }
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
    pub(super) fn values(&self) -> impl Iterator<Item = &Subscription<P>> {
        self.0.iter().map(|(_, s)| s)
    }
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&SubId, &mut Subscription<P>)> {
        self.0.iter_mut().map(|(k, s)| (&*k, s))
    }
}
