//! Which channels the stream carries: reference counts, linger, cursors.
//!
//! A channel is on the stream while at least one subscription holds it, and
//! for `linger_ms` after the last one lets go, so that a React StrictMode
//! double mount or a quick route change does not reconnect. While a channel
//! lingers it keeps receiving logs into a small parked buffer (seeded with
//! the last subscription's logs) that a returning subscriber inherits.
//!
//! Each channel tracks the newest position it has seen (`cursor`): it
//! advances with the `status` event of the channel, with every log it
//! covers and with a holder's point ahead of it (a restored record), so
//! what its holders keep and what it parks lie at or before it. Where the next stream starts a channel is decided by the engine
//! from its subscriptions' own resume points (see [`Registry::query_string`]);
//! a channel that nobody has placed yet starts at its [`Start`].

use std::collections::VecDeque;

use std::num::NonZeroU32;

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
    /// Where to start while no subscription and no event placed the channel.
    pub start: Start,
    /// The last status the gateway reported.
    pub status: Option<StatusKind>,
    pub status_reason: Option<String>,
    /// Logs kept while lingering, handed to the next subscriber.
    pub parked: VecDeque<Entry<P>>,
    pub parked_max: usize,
    /// Every log of the channel after this cursor is in `parked` (the
    /// channel's position when its last holder let go, moved forward when
    /// the parked buffer drops its oldest entries).
    pub parked_after: Option<Cursor>,
    /// Set (to the stream generation then) when the channel's holders are
    /// behind what the current stream carries for it: until a newer stream
    /// resumes from their point, its events would skip what they miss.
    pub rewinding: Option<u64>,
    /// Set while the channel waits for its `status` on the stream (it was
    /// added to the set with a position of its own): logs that reach it
    /// meanwhile, through a channel covering it or from an older add, are
    /// not its replay and would skip what the replay brings.
    pub awaiting_status: bool,
}

impl<P> ChannelEntry<P> {
    /// Whether events of stream `generation` apply to this channel.
    pub fn caught_up(&mut self, generation: u64) -> bool {
        self.rewound(generation) && !self.awaiting_status
    }

    /// Whether the stream `generation` is past the rewind (see `rewinding`).
    pub fn rewound(&mut self, generation: u64) -> bool {
        match self.rewinding {
            Some(then) if generation <= then => false,
            Some(_) => {
                self.rewinding = None;
                true
            }
            None => true,
        }
    }
}

/// Where a channel that has no resume point starts on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only logs published from now on.
    Live,
    /// The last `n` logs the gateway still holds, then live (`@last:{n}`).
    Last(u32),
    /// Everything the gateway still holds, then live.
    Earliest,
}

impl Start {
    /// The wider of two starts: when several subscriptions place a new
    /// channel, the one asking for the most history wins.
    pub fn widen(self, other: Start) -> Start {
        match (self, other) {
            (Start::Earliest, _) | (_, Start::Earliest) => Start::Earliest,
            (Start::Last(a), Start::Last(b)) => Start::Last(a.max(b)),
            (Start::Last(n), Start::Live) | (Start::Live, Start::Last(n)) => Start::Last(n),
            (Start::Live, Start::Live) => Start::Live,
        }
    }
}

/// Where one channel starts on the next stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    After(Cursor),
    Start(Start),
}

impl Position {
    /// The position in the gateway's `since` grammar.
    pub fn resume_from(self) -> ResumeFrom {
        match self {
            Position::After(c) => ResumeFrom::After(c),
            Position::Start(Start::Live) => ResumeFrom::Live,
            Position::Start(Start::Earliest) => ResumeFrom::Earliest,
            Position::Start(Start::Last(n)) => {
                NonZeroU32::new(n).map_or(ResumeFrom::Live, ResumeFrom::Last)
            }
        }
    }
}

/// Drops the oldest parked entries beyond `max`; whatever is dropped moves
/// `after` forward, so `after` stays the point from which `parked` is whole.
fn trim_parked<P>(parked: &mut VecDeque<Entry<P>>, max: usize, after: &mut Option<Cursor>) {
    while parked.len() > max {
        if let Some(dropped) = parked.pop_front() {
            advance(after, dropped.cursor);
        }
    }
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

    pub fn remove(&mut self, channel: &Channel) -> bool {
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

    /// The stream's query string (no leading `?`) for the current set:
    /// `position` says where each channel starts.
    pub fn query_string(&self, position: impl Fn(&ChannelEntry<P>) -> Position) -> String {
        StreamQuery {
            channels: self
                .channels
                .iter()
                .map(|e| (e.channel.clone(), position(e).resume_from()))
                .collect(),
        }
        .to_query_string()
    }

    /// Adds `sub` as a holder of `channel`; a new channel starts at `start`
    /// and, with a `resume` point, is placed there.
    pub fn acquire(
        &mut self,
        channel: &Channel,
        sub: SubId,
        start: Start,
        resume: Option<Cursor>,
    ) -> Acquired {
        let at = match self.find(channel) {
            Ok(i) => {
                let entry = &mut self.channels[i];
                entry.subs.push(sub);
                if entry.cursor.is_none() {
                    entry.start = entry.start.widen(start);
                }
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
                cursor: resume,
                start,
                status: None,
                status_reason: None,
                parked: VecDeque::new(),
                parked_max: 0,
                parked_after: None,
                rewinding: None,
                awaiting_status: false,
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
        entry.parked_after = entry.cursor;
        trim_parked(&mut entry.parked, parked_max, &mut entry.parked_after);
        false
    }

    /// Parks a log that reached a channel nobody holds.
    pub fn park(entry: &mut ChannelEntry<P>, log: Entry<P>) {
        entry.parked.push_back(log);
        trim_parked(&mut entry.parked, entry.parked_max, &mut entry.parked_after);
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
        assert_eq!(r.acquire(&a, 1, Start::Live, None), Acquired::New);
        assert_eq!(r.acquire(&a, 2, Start::Live, None), Acquired::Shared);
        assert!(!r.release(&a, 1, 0, 100, std::iter::empty(), 0));
        assert!(!r.release(&a, 2, 10, 100, std::iter::empty(), 0));
        assert_eq!(r.next_deadline(), Some(110));
        assert!(!r.expire(109));
        assert_eq!(r.acquire(&a, 3, Start::Live, None), Acquired::Revived);
        assert_eq!(r.next_deadline(), None);
        r.release(&a, 3, 200, 100, std::iter::empty(), 0);
        assert!(r.expire(300));
        assert!(r.is_empty());
        r.acquire(&a, 4, Start::Live, None);
        assert!(r.release(&a, 4, 0, 0, std::iter::empty(), 0));
        assert!(r.is_empty());
    }

    #[test]
    fn query_resumes_from_cursors() {
        let mut r: Registry<()> = Registry::default();
        let a = ch("logs:etl:ws1:wf9");
        let b = ch("logs:faas:ws1");
        let c = ch("logs:etl:ws1:wf8");
        r.acquire(&a, 1, Start::Live, Some(Cursor::new(Epoch(0xab), 12)));
        r.acquire(&b, 2, Start::Earliest, None);
        r.acquire(&c, 3, Start::Last(200), None);
        let at = |e: &ChannelEntry<()>| e.cursor.map_or(Position::Start(e.start), Position::After);
        assert_eq!(
            r.query_string(at),
            "channels=logs:etl:ws1:wf8,logs:etl:ws1:wf9,logs:faas:ws1&since=logs:etl:ws1:wf8@last:200,logs:etl:ws1:wf9@ab-12,logs:faas:ws1@earliest"
        );
        // A channel placed by nobody takes the widest start asked for.
        r.acquire(&c, 4, Start::Last(500), None);
        r.acquire(&c, 5, Start::Live, None);
        assert_eq!(r.get(&c).unwrap().start, Start::Last(500));
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
                        r.acquire(&names[which], next, Start::Live, None);
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
