//! Idempotent publish: a request's `Idempotency-Key` with a fingerprint of
//! its body, and the bounded memo in which the embedded store remembers what
//! each family's part of a keyed request stored.
//!
//! A publisher whose answer was lost (a node or Redis died after the write,
//! a timeout, a cut connection) cannot know whether its logs were stored, so
//! it sends the same request again. With a key, a store that has a record of
//! the key for a family stores nothing again there and answers with the
//! cursors the first request got; the same key with another body is refused
//! for that family. Records are kept per family because a family is what a
//! store appends atomically (one Redis script, one lock). The Redis store
//! keeps its records in Redis, next to the family (see `redis::lua`), so a
//! retry that reaches another node is recognised as well.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logs_sse_protocol::Channel;
use tokio::time::Instant;

/// A validated `Idempotency-Key` and the fingerprint of its request's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    fingerprint: u64,
}

/// Why an `Idempotency-Key` header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Idempotency-Key must be 1 to {max} visible ASCII characters (no spaces)",
    max = IdempotencyKey::MAX_LEN
)]
pub struct InvalidKey;

impl IdempotencyKey {
    /// Longest key accepted, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Checks `key` and fingerprints `body` (byte-exact: a retry sends the
    /// same bytes).
    pub fn new(key: &[u8], body: &[u8]) -> Result<Self, InvalidKey> {
        let valid = (1..=Self::MAX_LEN).contains(&key.len())
            && key.iter().all(|b| (0x21..=0x7e).contains(b));
        if !valid {
            return Err(InvalidKey);
        }
        Ok(IdempotencyKey {
            // Visible ASCII only, so always UTF-8.
            key: String::from_utf8_lossy(key).into_owned(),
            fingerprint: xxhash_rust::xxh3::xxh3_64(body),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

/// The sequence numbers one family's part of a keyed request got, in the
/// order of its logs (`None`: that log was refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Every log stored, at `first`, `first + 1`, …
    Run { first: u64, count: usize },
    /// Some refused (rare: the channel bound).
    Each(Arc<[Option<u64>]>),
}

impl Stored {
    /// The sequence number of the family's `i`-th log.
    pub fn seq(&self, i: usize) -> Option<u64> {
        match self {
            Stored::Run { first, count } => (i < *count).then(|| first + i as u64),
            Stored::Each(seqs) => seqs.get(i).copied().flatten(),
        }
    }

    /// The compact form of `seqs`.
    pub fn from_seqs(seqs: &[Option<u64>]) -> Self {
        let first = seqs.first().copied().flatten();
        let run = first.is_some_and(|first| {
            seqs.iter()
                .enumerate()
                .all(|(i, s)| *s == Some(first + i as u64))
        });
        match (run, first) {
            (true, Some(first)) => Stored::Run {
                first,
                count: seqs.len(),
            },
            _ => Stored::Each(seqs.into()),
        }
    }
}

/// What the memo knows of a key for one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recall {
    /// Not seen (or forgotten): store the logs.
    New,
    /// Seen with the same body: these were stored.
    Stored(Stored),
    /// Seen with another body.
    Reused,
}

/// Bounds of the memo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoLimits {
    /// How long a record is kept.
    pub ttl: Duration,
    /// Most records kept; the oldest are forgotten first.
    pub max_keys: usize,
}

impl Default for MemoLimits {
    /// The defaults of `--idempotency-ttl-secs` and `--idempotency-max-keys`.
    fn default() -> Self {
        MemoLimits {
            ttl: Duration::from_secs(600),
            max_keys: 100_000,
        }
    }
}

struct Record {
    fingerprint: u64,
    stored: Stored,
    at: Instant,
}

/// Records by family and key, bounded by age and count.
pub struct Memo {
    limits: MemoLimits,
    inner: Mutex<MemoInner>,
}

#[derive(Default)]
struct MemoInner {
    records: HashMap<Arc<str>, Record>,
    /// Insertion order, for expiry and the count bound.
    order: VecDeque<(Instant, Arc<str>)>,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo")
            .field("limits", &self.limits)
            .field("records", &self.len())
            .finish()
    }
}

fn memo_key(family: &Channel, key: &IdempotencyKey) -> String {
    // Channels have no spaces, so the pair is unambiguous.
    format!("{} {}", family.as_str(), key.key())
}

impl Memo {
    pub fn new(limits: MemoLimits) -> Self {
        Memo {
            limits,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoInner> {
        // Every mutation leaves the maps consistent, so a poisoned lock is
        // still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is known of `key` for `family`. The caller holds the family's
    /// lock until it has [`remember`](Self::remember)ed, so a concurrent
    /// request with the same key waits and then finds the record.
    pub fn recall(&self, family: &Channel, key: &IdempotencyKey, now: Instant) -> Recall {
        let inner = self.lock();
        match inner.records.get(memo_key(family, key).as_str()) {
            Some(record) if now.duration_since(record.at) < self.limits.ttl => {
                if record.fingerprint == key.fingerprint() {
                    Recall::Stored(record.stored.clone())
                } else {
                    Recall::Reused
                }
            }
            _ => Recall::New,
        }
    }

    /// Records what `key`'s request stored for `family`.
    pub fn remember(&self, family: &Channel, key: &IdempotencyKey, stored: Stored, now: Instant) {
        if self.limits.max_keys == 0 {
            return;
        }
        let mut inner = self.lock();
        let name: Arc<str> = memo_key(family, key).into();
        Self::expire(&mut inner, self.limits, now, self.limits.max_keys - 1);
        inner.order.push_back((now, name.clone()));
        inner.records.insert(
            name,
            Record {
                fingerprint: key.fingerprint(),
                stored,
                at: now,
            },
        );
    }

    /// Forgets expired records.
    pub fn maintain(&self, now: Instant) {
        let mut inner = self.lock();
        Self::expire(&mut inner, self.limits, now, self.limits.max_keys);
    }

    /// Drops records older than the TTL, then the oldest until at most
    /// `keep` remain.
    fn expire(inner: &mut MemoInner, limits: MemoLimits, now: Instant, keep: usize) {
        while let Some((at, _)) = inner.order.front() {
            let expired = now.duration_since(*at) >= limits.ttl;
            if !expired && inner.records.len() <= keep {
                break;
            }
            let Some((at, name)) = inner.order.pop_front() else {
                break;
            };
            // An older entry of a name recorded again later is skipped.
            if inner.records.get(&name).is_some_and(|r| r.at == at) {
                inner.records.remove(&name);
            }
        }
    }

    /// Records kept.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family() -> Channel {
        "logs:etl:ws1".parse().unwrap()
    }

    fn key(name: &str, body: &str) -> IdempotencyKey {
        IdempotencyKey::new(name.as_bytes(), body.as_bytes()).unwrap()
    }

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(IdempotencyKey::new(b"0b6f-4c2e:7", b"").is_ok());
        assert!(IdempotencyKey::new(&[b'k'; 128], b"").is_ok());
        for bad in [
            &b""[..],
            &[b'k'; 129],
            b"has space",
            b"tab\t",
            "é".as_bytes(),
        ] {
            assert_eq!(IdempotencyKey::new(bad, b""), Err(InvalidKey), "{bad:?}");
        }
    }

    #[test]
    fn the_fingerprint_is_of_the_exact_body() {
        assert_eq!(key("k", "[1]").fingerprint(), key("k", "[1]").fingerprint());
        assert_ne!(
            key("k", "[1]").fingerprint(),
            key("k", "[1] ").fingerprint()
        );
    }

    #[test]
    fn stored_sequence_numbers_are_compact_when_they_are_a_run() {
        let run = Stored::from_seqs(&[Some(7), Some(8), Some(9)]);
        assert_eq!(run, Stored::Run { first: 7, count: 3 });
        assert_eq!(
            (run.seq(0), run.seq(2), run.seq(3)),
            (Some(7), Some(9), None)
        );
        let gaps = Stored::from_seqs(&[Some(7), None, Some(8)]);
        assert!(matches!(gaps, Stored::Each(_)));
        assert_eq!(
            (gaps.seq(0), gaps.seq(1), gaps.seq(2)),
            (Some(7), None, Some(8))
        );
        assert!(matches!(Stored::from_seqs(&[None]), Stored::Each(_)));
    }

    #[test]
    fn a_key_is_recalled_per_family_with_its_body_until_it_expires() {
        let limits = MemoLimits {
            ttl: Duration::from_secs(10),
            max_keys: 100,
        };
        let memo = Memo::new(limits);
        let now = Instant::now();
        let k = key("k1", "body");
        assert_eq!(memo.recall(&family(), &k, now), Recall::New);
        let stored = Stored::Run { first: 3, count: 2 };
        memo.remember(&family(), &k, stored.clone(), now);
        assert_eq!(memo.recall(&family(), &k, now), Recall::Stored(stored));
        assert_eq!(
            memo.recall(&family(), &key("k1", "other"), now),
            Recall::Reused
        );
        let elsewhere: Channel = "logs:etl:ws2".parse().unwrap();
        assert_eq!(memo.recall(&elsewhere, &k, now), Recall::New);
        let later = now + Duration::from_secs(10);
        assert_eq!(memo.recall(&family(), &k, later), Recall::New);
        memo.maintain(later);
        assert!(memo.is_empty());
    }

    #[test]
    fn past_the_count_bound_the_oldest_records_are_forgotten() {
        let memo = Memo::new(MemoLimits {
            ttl: Duration::from_secs(600),
            max_keys: 3,
        });
        let now = Instant::now();
        let stored = Stored::Run { first: 1, count: 1 };
        for i in 0..5 {
            memo.remember(&family(), &key(&format!("k{i}"), ""), stored.clone(), now);
        }
        assert_eq!(memo.len(), 3);
        assert_eq!(memo.recall(&family(), &key("k1", ""), now), Recall::New);
        assert!(matches!(
            memo.recall(&family(), &key("k4", ""), now),
            Recall::Stored(_)
        ));
        let none = Memo::new(MemoLimits {
            ttl: Duration::from_secs(600),
            max_keys: 0,
        });
        none.remember(&family(), &key("k", ""), stored, now);
        assert!(none.is_empty());
    }
}
