//! Persisted subscriptions: when a moved resume point is written (at most
//! once per throttle interval, all at once on flush or close), the record
//! under the subscription's budget, and what a failed write costs (half
//! the budget after a quota error, down to [`MIN_PERSIST_BUDGET`], then a
//! pause; storage that is unusable disables the key).

use logs_sse_protocol::{Channel, Cursor};

use super::effects::{Diagnostic, Effect};
use super::subscription::{Subscription, MIN_PERSIST_BUDGET, PERSIST_GIVE_UP_MS};
use super::Engine;
use crate::core::buffer::LogBuffer;
use crate::core::persist;
use crate::core::registry::SubId;

impl<P: Clone> Engine<P> {
    pub(super) fn encode(
        channel: &Channel,
        cursor: Option<Cursor>,
        now: u64,
        buffer: &LogBuffer<P>,
        budget: usize,
    ) -> Option<String> {
        persist::encode(
            channel,
            cursor,
            now,
            buffer.entries().map(|e| &*e.raw),
            budget,
        )
    }

    /// The subscription's resume point moved: it is to be persisted (at
    /// most once per throttle interval).
    pub(super) fn touch(sub: &mut Subscription<P>, now: u64, throttle: u64) {
        if let Some(p) = &mut sub.persist {
            if !p.dirty {
                p.dirty = true;
                p.due_at = p.last_write.map_or(now, |t| (t + throttle).max(now));
            }
        }
    }

    pub(super) fn persist_due(&mut self, now: u64, all: bool) {
        for (id, sub) in self.subs.iter_mut() {
            let Some(p) = &mut sub.persist else { continue };
            if !p.dirty || p.disabled || (!all && p.due_at > now) {
                continue;
            }
            p.dirty = false;
            p.last_write = Some(now);
            if let Some(text) = Self::encode(&sub.channel, sub.cursor, now, &sub.buffer, p.budget) {
                self.effects.push(Effect::Persist {
                    sub: *id,
                    key: p.key.clone(),
                    text,
                });
            }
        }
    }

    /// Writes every dirty persisted subscription now (page hidden/unloading).
    pub fn flush(&mut self, now: u64) {
        self.persist_due(now, true);
    }

    /// A `Persist` write failed. `quota` for `QuotaExceededError` (retry
    /// with half the bytes), otherwise storage is unusable for this key.
    pub fn persist_failed(&mut self, sub: SubId, quota: bool, now: u64) {
        let Some(p) = self.subs.get_mut(&sub).and_then(|s| s.persist.as_mut()) else {
            return;
        };
        p.dirty = true;
        if !quota {
            p.disabled = true;
            self.effects.push(Effect::Diagnostic {
                kind: Diagnostic::Storage,
                message: crate::text!(
                    "sessionStorage is unavailable; `",
                    p.key,
                    "` will not be persisted"
                ),
            });
            return;
        }
        if p.budget > MIN_PERSIST_BUDGET {
            p.budget = (p.budget / 2).max(MIN_PERSIST_BUDGET);
            p.due_at = now;
        } else {
            p.due_at = now + PERSIST_GIVE_UP_MS;
            self.effects.push(Effect::Diagnostic {
                kind: Diagnostic::Storage,
                message: crate::text!(
                    "sessionStorage quota exceeded for `",
                    p.key,
                    "`; retrying in ",
                    PERSIST_GIVE_UP_MS / 1000,
                    "s"
                ),
            });
        }
    }

    /// The current persistence budget of a subscription, in bytes.
    pub fn persist_budget(&self, sub: SubId) -> Option<usize> {
        self.subs
            .get(&sub)
            .and_then(|s| s.persist.as_ref())
            .map(|p| p.budget)
    }

    /// Reports an invalid stored record (it is removed).
    pub fn discard_stored(&mut self, key: &str, why: &str) {
        self.effects.push(Effect::Forget {
            key: key.to_owned(),
        });
        self.effects.push(Effect::Diagnostic {
            kind: Diagnostic::Storage,
            message: crate::text!("discarded stored logs `", key, "`: ", why),
        });
    }
}
