//! The bounded log buffer of one subscription.
//!
//! Keeps at most `max` entries, ordered by cursor within an epoch (arrival
//! order across epochs), deduplicated by cursor. Every log of a gateway gets
//! its sequence number from one counter, so a cursor names one log and
//! "dedupe by (channel, cursor)" is dedupe by cursor.
//!
//! The payload type `P` is what the host hands out in snapshots: a parsed JS
//! object in the browser, the raw text in native tests. The raw event text
//! is kept beside it (shared between subscriptions) for persistence.

use std::collections::VecDeque;
use std::rc::Rc;

use logs_sse_protocol::Cursor;

/// One buffered log.
#[derive(Debug, Clone)]
pub struct Entry<P> {
    pub cursor: Cursor,
    /// The SSE `data` of the `log` event, exactly as received.
    pub raw: Rc<str>,
    pub payload: P,
}

/// What [`LogBuffer::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Added,
    /// The cursor is already buffered.
    Duplicate,
    /// The buffer is full and the log is older than everything in it.
    TooOld,
}

/// See the module docs.
#[derive(Debug)]
pub struct LogBuffer<P> {
    max: usize,
    entries: VecDeque<Entry<P>>,
    version: u64,
}

impl<P> LogBuffer<P> {
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        LogBuffer {
            max,
            entries: VecDeque::with_capacity(max.min(1024)),
            version: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.max
    }

    /// Grows with every change; a snapshot cache compares it.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn entries(&self) -> impl ExactSizeIterator<Item = &Entry<P>> + DoubleEndedIterator {
        self.entries.iter()
    }

    /// Where a log with `cursor` goes: `None` when it is already there.
    /// Searching from the back is O(1) for the usual in-order arrival.
    fn slot(&self, cursor: &Cursor) -> Option<usize> {
        let mut at = self.entries.len();
        while at > 0 {
            let prev = &self.entries[at - 1].cursor;
            if prev == cursor {
                return None;
            }
            if prev.epoch != cursor.epoch {
                // Another epoch follows: a log of an older epoch showing up
                // again is rare; check the whole buffer for it.
                if self.entries.iter().any(|e| e.cursor == *cursor) {
                    return None;
                }
                return Some(self.entries.len());
            }
            if prev.seq < cursor.seq {
                break;
            }
            at -= 1;
        }
        Some(at)
    }

    pub fn contains(&self, cursor: &Cursor) -> bool {
        self.slot(cursor).is_none()
    }

    /// Whether [`insert`](Self::insert) would add a log with this cursor.
    pub fn would_accept(&self, cursor: &Cursor) -> bool {
        self.check(cursor).is_ok()
    }

    fn check(&self, cursor: &Cursor) -> Result<usize, Inserted> {
        let at = self.slot(cursor).ok_or(Inserted::Duplicate)?;
        if self.entries.len() >= self.max && at == 0 {
            // Full, and older than everything kept: it would be evicted at once.
            return Err(Inserted::TooOld);
        }
        Ok(at)
    }

    /// Inserts in cursor order, evicting the oldest entry when full.
    pub fn insert(&mut self, entry: Entry<P>) -> Inserted {
        let at = match self.check(&entry.cursor) {
            Ok(at) => at,
            Err(why) => return why,
        };
        self.entries.insert(at, entry);
        while self.entries.len() > self.max {
            self.entries.pop_front();
        }
        self.version += 1;
        Inserted::Added
    }

    pub fn clear(&mut self) {
        if !self.entries.is_empty() {
            self.entries.clear();
            self.version += 1;
        }
    }
}

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests {
    use super::*;
    use logs_sse_protocol::Epoch;
    use proptest::prelude::*;

    fn entry(epoch: u64, seq: u64) -> Entry<u64> {
        Entry {
            cursor: Cursor::new(Epoch(epoch), seq),
            raw: Rc::from(""),
            payload: seq,
        }
    }

    fn seqs(b: &LogBuffer<u64>) -> Vec<u64> {
        b.entries().map(|e| e.payload).collect()
    }

    #[test]
    fn keeps_the_newest_and_drops_duplicates() {
        let mut b = LogBuffer::new(3);
        for s in [1, 2, 3, 4] {
            assert_eq!(b.insert(entry(1, s)), Inserted::Added);
        }
        assert_eq!(seqs(&b), vec![2, 3, 4]);
        assert_eq!(b.insert(entry(1, 3)), Inserted::Duplicate);
        assert_eq!(b.insert(entry(1, 1)), Inserted::TooOld);
        assert_eq!(b.version(), 4);
    }

    #[test]
    fn orders_by_seq_within_an_epoch_and_appends_new_epochs() {
        let mut b = LogBuffer::new(10);
        for s in [5, 7, 3, 6] {
            b.insert(entry(1, s));
        }
        b.insert(entry(2, 1));
        assert_eq!(seqs(&b), vec![3, 5, 6, 7, 1]);
    }

    proptest! {
        #[test]
        fn bounded_unique_and_sorted(max in 1usize..20, input in proptest::collection::vec(0u64..60, 0..200)) {
            let mut b = LogBuffer::new(max);
            for s in &input {
                b.insert(entry(1, *s));
            }
            let got = seqs(&b);
            prop_assert!(got.len() <= max);
            prop_assert!(got.windows(2).all(|w| w[0] < w[1]));
            let mut distinct: Vec<u64> = input.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let expected: Vec<u64> = distinct.iter().rev().take(max).rev().copied().collect();
            // It always holds exactly the `max` largest distinct values seen.
            prop_assert_eq!(got, expected);
        }
    }
}
