//! Which channels the stream carries: reference counts, linger, cursors.
//!
//! A channel is on the stream while at least one subscription holds it, and
//! for `linger_ms` after the last one lets go, so that a React StrictMode
//! double mount or a quick route change does not reconnect. While a channel
//! lingers it keeps receiving logs into a small parked buffer (seeded with
//! the last subscription's logs) that a returning subscriber inherits.
//!
//! Each channel tracks its resume cursor: the position after which every
//! log of the channel is still to be received. It advances with the
//! `status` event of the channel and with every log it covers.

use std::collections::VecDeque;

use logs_sse_protocol::{Channel, Cursor, ResumeFrom, StatusKind, StreamQuery};

use super::buffer::Entry;

/// Subscription identifier, unique per client.
pub type SubId = u32;

/// Registry state of one channel.
#[derive(Debug)]
pub struct ChannelEntry<P> {
    pub channel: Channel,
    pub subs: Vec<SubId>,
    /// Set while nobody holds the channel: when it leaves the stream.
    pub linger_until: Option<u64>,
    /// Resume position; see the module docs.
    pub cursor: Option<Cursor>,
    /// Where to start while there is no cursor yet.
    pub start: ResumeFrom,
    /// The last status the gateway reported.
    pub status: Option<StatusKind>,
    pub status_reason: Option<String>,
    /// Logs kept while lingering, handed to the next subscriber.
    pub parked: VecDeque<Entry<P>>,
    pub parked_max: usize,
}

/// What [`Registry::acquire`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The channel was not on the stream: the set changed.
    New,
    /// The channel was lingering; it stays on the stream.
    Revived,
    /// Another subscription already holds it.
    Shared,
}

/// Moves `slot` forward to `cursor`: later in the same epoch, or any cursor
/// of another epoch (a new gateway history supersedes the old one).
pub fn advance(slot: &mut Option<Cursor>, cursor: Cursor) -> bool {
    match slot {
        Some(old) if old.epoch == cursor.epoch && old.seq >= cursor.seq => false,
        _ => {
            *slot = Some(cursor);
            true
        }
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct Registry<P> {
    /// Sorted by channel name (a few dozen entries: a sorted `Vec` is
    /// smaller and faster here than a tree).
    channels: Vec<ChannelEntry<P>>,
}

impl<P> Default for Registry<P> {
    fn default() -> Self {
        Registry {
            channels: Vec::new(),
        }
    }
}

impl<P> Registry<P> {
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    fn find(&self, channel: &Channel) -> Result<usize, usize> {
        self.channels
            .binary_search_by(|e| e.channel.as_str().cmp(channel.as_str()))
    }

    pub fn get(&self, channel: &Channel) -> Option<&ChannelEntry<P>> {
        self.find(channel).ok().map(|i| &self.channels[i])
    }

    pub fn get_mut(&mut self, channel: &Channel) -> Option<&mut ChannelEntry<P>> {
        self.find(channel).ok().map(|i| &mut self.channels[i])
    }

    fn remove(&mut self, channel: &Channel) -> bool {
        match self.find(channel) {
            Ok(i) => {
                self.channels.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = &ChannelEntry<P>> {
        self.channels.iter()
    }

    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut ChannelEntry<P>> {
        self.channels.iter_mut()
    }

    /// Channel names on the stream, in order.
    pub fn names(&self) -> Vec<Channel> {
        self.channels.iter().map(|e| e.channel.clone()).collect()
    }

    /// The stream query for the current set, resuming every channel that
    /// has a cursor.
    pub fn query(&self) -> StreamQuery {
        StreamQuery {
            channels: self
                .channels
                .iter()
                .map(|e| {
                    let from = e.cursor.map_or(e.start, ResumeFrom::After);
                    (e.channel.clone(), from)
                })
                .collect(),
        }
    }

    /// Adds `sub` as a holder of `channel`.
    pub fn acquire(&mut self, channel: &Channel, sub: SubId, start: ResumeFrom) -> Acquired {
        let at = match self.find(channel) {
            Ok(i) => {
                let entry = &mut self.channels[i];
                entry.subs.push(sub);
                if entry.linger_until.take().is_some() {
                    return Acquired::Revived;
                }
                return Acquired::Shared;
            }
            Err(at) => at,
        };
        self.channels.insert(
            at,
            ChannelEntry {
                channel: channel.clone(),
                subs: vec![sub],
                linger_until: None,
                cursor: None,
                start,
                status: None,
                status_reason: None,
                parked: VecDeque::new(),
                parked_max: 0,
            },
        );
        Acquired::New
    }

    /// Removes `sub` as a holder. When it was the last one the channel
    /// lingers until `now + linger_ms`, parking `parked` (the released
    /// subscription's logs, at most `parked_max`). Returns true when the
    /// channel left the set at once (`linger_ms == 0`).
    pub fn release(
        &mut self,
        channel: &Channel,
        sub: SubId,
        now: u64,
        linger_ms: u32,
        parked: impl Iterator<Item = Entry<P>>,
        parked_max: usize,
    ) -> bool {
        let Some(entry) = self.get_mut(channel) else {
            return false;
        };
        entry.subs.retain(|s| *s != sub);
        if !entry.subs.is_empty() {
            return false;
        }
        if linger_ms == 0 {
            self.remove(channel);
            return true;
        }
        entry.linger_until = Some(now + u64::from(linger_ms));
        entry.parked_max = parked_max;
        entry.parked = parked.collect();
        while entry.parked.len() > parked_max {
            entry.parked.pop_front();
        }
        false
    }

    /// Drops channels whose linger ended; returns whether any did.
    pub fn expire(&mut self, now: u64) -> bool {
        let before = self.channels.len();
        self.channels
            .retain(|e| !matches!(e.linger_until, Some(until) if until <= now));
        self.channels.len() != before
    }

    /// Drops the lingering channel that would leave first, to make room.
    pub fn evict_one_lingering(&mut self) -> bool {
        let victim = self
            .channels
            .iter()
            .filter_map(|e| e.linger_until.map(|t| (t, e.channel.clone())))
            .min_by_key(|(t, _)| *t);
        match victim {
            Some((_, channel)) => self.remove(&channel),
            None => false,
        }
    }

    /// The earliest linger deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.channels.iter().filter_map(|e| e.linger_until).min()
    }
}

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests {
    use super::*;
    use logs_sse_protocol::Epoch;
    use proptest::prelude::*;

    fn ch(s: &str) -> Channel {
        s.parse().unwrap()
    }

    #[test]
    fn refcounts_and_lingers() {
        let mut r: Registry<()> = Registry::default();
        let a = ch("logs:etl:ws1:wf9");
        assert_eq!(r.acquire(&a, 1, ResumeFrom::Live), Acquired::New);
        assert_eq!(r.acquire(&a, 2, ResumeFrom::Live), Acquired::Shared);
        assert!(!r.release(&a, 1, 0, 100, std::iter::empty(), 0));
        assert!(!r.release(&a, 2, 10, 100, std::iter::empty(), 0));
        assert_eq!(r.next_deadline(), Some(110));
        assert!(!r.expire(109));
        assert_eq!(r.acquire(&a, 3, ResumeFrom::Live), Acquired::Revived);
        assert_eq!(r.next_deadline(), None);
        r.release(&a, 3, 200, 100, std::iter::empty(), 0);
        assert!(r.expire(300));
        assert!(r.is_empty());
        r.acquire(&a, 4, ResumeFrom::Live);
        assert!(r.release(&a, 4, 0, 0, std::iter::empty(), 0));
        assert!(r.is_empty());
    }

    #[test]
    fn query_resumes_from_cursors() {
        let mut r: Registry<()> = Registry::default();
        let a = ch("logs:etl:ws1:wf9");
        let b = ch("logs:faas:ws1");
        r.acquire(&a, 1, ResumeFrom::Live);
        r.acquire(&b, 2, ResumeFrom::Earliest);
        r.get_mut(&a).unwrap().cursor = Some(Cursor::new(Epoch(0xab), 12));
        assert_eq!(
            r.query().to_query_string(),
            "channels=logs:etl:ws1:wf9,logs:faas:ws1&since=logs:etl:ws1:wf9@ab-12,logs:faas:ws1@earliest"
        );
    }

    #[test]
    fn advance_only_moves_forward_within_an_epoch() {
        let mut slot = None;
        assert!(advance(&mut slot, Cursor::new(Epoch(1), 5)));
        assert!(!advance(&mut slot, Cursor::new(Epoch(1), 4)));
        assert!(!advance(&mut slot, Cursor::new(Epoch(1), 5)));
        assert!(advance(&mut slot, Cursor::new(Epoch(2), 1)));
        assert_eq!(slot, Some(Cursor::new(Epoch(2), 1)));
    }

    proptest! {
        /// Whatever the order of acquire/release/expire, a channel is in the
        /// registry iff it has a holder or its linger has not ended.
        #[test]
        fn set_matches_holders(ops in proptest::collection::vec((0u8..3, 0u32..4, 0u64..50), 0..100)) {
            let names = [ch("logs:a:b:c0"), ch("logs:a:b:c1"), ch("logs:a:b:c2"), ch("logs:a:b")];
            let mut r: Registry<()> = Registry::default();
            let mut holders: Vec<(usize, SubId)> = Vec::new();
            let mut last_release: std::collections::HashMap<usize, u64> = Default::default();
            let mut now = 0u64;
            let mut next = 0;
            for (op, which, dt) in ops {
                now += dt;
                let which = which as usize;
                match op {
                    0 => {
                        next += 1;
                        r.acquire(&names[which], next, ResumeFrom::Live);
                        holders.push((which, next));
                    }
                    1 => {
                        if let Some(pos) = holders.iter().position(|(w, _)| *w == which) {
                            let (_, id) = holders.remove(pos);
                            r.release(&names[which], id, now, 20, std::iter::empty(), 0);
                            if !holders.iter().any(|(w, _)| *w == which) {
                                last_release.insert(which, now);
                            }
                        }
                    }
                    _ => { r.expire(now); }
                }
                r.expire(now);
                for (i, name) in names.iter().enumerate() {
                    let held = holders.iter().any(|(w, _)| *w == i);
                    let lingering = last_release.get(&i).is_some_and(|t| t + 20 > now);
                    prop_assert_eq!(r.get(name).is_some(), held || lingering, "channel {} at {}", i, now);
                }
            }
        }
    }
}
