//! Adding and removing subscriptions: limits, where a subscription starts
//! (restored record, `resumeFrom`, `history`), joining a channel already
//! on the stream, and coalescing the channel changes that follow.
//!
//! Resume points: each [`Subscription`] owns its `cursor`, restored, given,
//! confirmed by the channel's `status` or moved by a covered log. It is
//! what the subscription persists (a move marks its record dirty), and the
//! stream resumes each channel after the oldest point of its holders; a
//! channel nobody placed starts at its [`Start`] (live, a `history`
//! backfill, earliest). A subscription joining behind the stream's
//! position is caught up from the parked logs or by reopening the stream,
//! during which the channel ignores the old stream (see `join`).

use std::rc::Rc;

use logs_sse_protocol::{Channel, StatusKind};

use super::effects::{Effect, Stats, SubscribeError, Update};
use super::phase::Phase;
use super::subscription::{Filter, PersistState, Subscription};
use super::Engine;
use crate::core::buffer::{Entry, Inserted, LogBuffer};
use crate::core::options::SubscribeOptions;
use crate::core::persist::Restored;
use crate::core::registry::{advance, Acquired, Start, SubId};

impl<P: Clone> Engine<P> {
    /// Adds a subscription. `restored` is a validated stored record; its
    /// logs are inserted (through `filter`) and, when the channel is new to
    /// the stream, its cursor is where the channel resumes.
    pub fn subscribe(
        &mut self,
        channel: Channel,
        opts: SubscribeOptions,
        filter: Option<Filter<P>>,
        restored: Option<Restored>,
        now: u64,
        mut make_payload: impl FnMut(&str) -> P,
    ) -> Result<SubId, SubscribeError> {
        if self.phase == Phase::Closed {
            return Err(SubscribeError::Closed);
        }
        if self.subs.len() >= self.opts.max_subscriptions as usize {
            return Err(SubscribeError::TooManySubscriptions(
                self.opts.max_subscriptions,
            ));
        }
        if self.registry.get(&channel).is_none()
            && self.registry.len() >= self.opts.max_channels as usize
            && !self.registry.evict_one_lingering()
        {
            return Err(SubscribeError::TooManyChannels(self.opts.max_channels));
        }
        let id = self.next_sub;
        self.next_sub = self.next_sub.wrapping_add(1).max(1);
        // The resume point: a restored record's, else a cursor given as
        // `resumeFrom`. It wins over every other start.
        let given = match opts.resume_from {
            logs_sse_protocol::ResumeFrom::After(c) => Some(c),
            _ => None,
        };
        let resume = restored.as_ref().and_then(|r| r.cursor).or(given);
        let start = match (opts.resume_from, opts.history) {
            (logs_sse_protocol::ResumeFrom::Earliest, _) => Start::Earliest,
            (_, 0) => Start::Live,
            (_, n) => Start::Last(n),
        };
        let acquired = self.registry.acquire(&channel, id, start, resume);
        let mut sub = Subscription {
            channel: channel.clone(),
            cursor: resume,
            buffer: LogBuffer::new(opts.max_logs as usize),
            filter,
            persist: opts.persist_key.map(|key| PersistState {
                key,
                dirty: false,
                due_at: now,
                last_write: None,
                budget: self.opts.persist_max_bytes as usize,
                disabled: false,
            }),
            status: None,
            status_reason: None,
        };
        if let Some(restored) = restored {
            for log in restored.logs {
                let payload = make_payload(&log.raw);
                let entry = Entry {
                    cursor: log.cursor,
                    raw: Rc::from(log.raw),
                    payload,
                };
                Self::offer(&mut sub, entry, &mut self.stats);
            }
        }
        if acquired != Acquired::New {
            self.join(id, &mut sub, acquired, opts.history);
        } else if resume.is_some()
            || start != Start::Live
            || self
                .streamed
                .iter()
                .any(|c| c.covers(&channel) || channel.covers(c))
        {
            // The current stream may carry the channel's logs from another
            // point (a service-level channel covers it, or it left the set
            // a moment ago): take nothing before the channel's own status,
            // which the live change or the new stream sends first. A live
            // channel next to one that overlaps it too: what it took from
            // the other before then would not run on without a hole (its
            // other resources' logs start at its status).
            if let Some(entry) = self.registry.get_mut(&channel) {
                entry.awaiting_status = true;
            }
        }
        if acquired == Acquired::New && self.streamed.contains(&channel) {
            // Still on the stream from its old entry (it left the set a
            // moment ago and no change has taken it off yet): the stream
            // owes it no status, so only a removal and a new addition (or a
            // new stream) give it one of its own, from where it asked.
            self.rewind = true;
            if let Some(entry) = self.registry.get_mut(&channel) {
                entry.rewinding = Some(self.generation);
            }
        }
        if let Some(p) = &mut sub.persist {
            // Record the state we start from as soon as there is one.
            p.dirty = sub.cursor.is_some() || !sub.buffer.is_empty();
        }
        self.subs.insert(id, sub);
        if acquired == Acquired::New || self.rewind {
            self.mark_changed(now);
        }
        Ok(id)
    }

    /// Places a subscription on a channel that is already on the stream
    /// (held by others, or lingering). Without a resume point it starts
    /// where the channel is, with the lingering channel's parked logs or,
    /// for a backfill, the newest logs its co-holders keep. With one behind
    /// the channel's position it gets what it missed: from the parked logs
    /// when they reach back to it, else from the gateway (the stream
    /// reopens from its point; co-holders drop what they already have).
    /// When the channel's status is settled and no rewind is needed, the
    /// subscription hears a status of its own.
    pub(super) fn join(
        &mut self,
        id: SubId,
        sub: &mut Subscription<P>,
        acquired: Acquired,
        history: u32,
    ) {
        let Some(entry) = self.registry.get_mut(&sub.channel) else {
            return;
        };
        sub.status = entry.status;
        sub.status_reason = entry.status_reason.clone();
        // A status is coming on the stream when the channel waits for one
        // or rewinds: the subscription hears that one instead.
        let settled = entry
            .status
            .filter(|_| !entry.awaiting_status && entry.rewinding.is_none());
        let parked = std::mem::take(&mut entry.parked);
        let parked_after = entry.parked_after.take();
        let at = entry.cursor;
        let holders = entry.subs.clone();
        // Behind, or the channel has no position yet to compare with.
        let behind = match (sub.cursor, at) {
            (Some(mine), Some(at)) if mine.epoch == at.epoch => mine.seq < at.seq,
            (Some(_), None) => true,
            _ => false,
        };
        let parked_covers = match (sub.cursor, parked_after) {
            (None, _) => true,
            (Some(mine), Some(after)) => mine.epoch == after.epoch && mine.seq >= after.seq,
            (Some(_), None) => false,
        };
        if behind && !(acquired == Acquired::Revived && parked_covers) {
            // The reopened stream brings (mine, at]; parked logs would put
            // logs after the resume point into the buffer before then.
            self.rewind = true;
            entry.rewinding = Some(self.generation);
            return;
        }
        let point = sub.cursor;
        let foreign = matches!((point, at), (Some(mine), Some(at)) if mine.epoch != at.epoch);
        let mut given = 0u32;
        for log in parked {
            // At or before its own point: not something it missed.
            if point.is_some_and(|m| m.epoch == log.cursor.epoch && log.cursor.seq <= m.seq) {
                continue;
            }
            given += u32::from(Self::offer(sub, log, &mut self.stats));
        }
        if sub.cursor.is_none() && history > 0 && acquired == Acquired::Shared {
            given += self.backfill_from(sub, &holders, history as usize);
        }
        if let Some(kind) = settled {
            // As if the gateway had answered it alone. A status cursor means
            // "what follows comes after it": the channel's position only
            // when nothing was given to it (parked or backfilled logs).
            let (status, cursor) = match (kind, point) {
                (StatusKind::Denied, _) => (kind, None),
                _ if foreign => (StatusKind::Gap, at),
                (_, Some(mine)) => (StatusKind::Resumed, Some(mine)),
                (_, None) => (StatusKind::Subscribed, at.filter(|_| given == 0)),
            };
            if status != StatusKind::Denied {
                sub.status_reason = foreign.then(|| "foreign_epoch".into());
            }
            sub.status = Some(status);
            self.effects.push(Effect::Update {
                sub: id,
                update: Update::Status {
                    status,
                    cursor,
                    reason: sub.status_reason.clone(),
                    replayed: given,
                },
            });
        }
        if let (true, Some(mine)) = (foreign, point) {
            // The channel already moved to another gateway epoch: the
            // history this point refers to is gone.
            self.stats.gaps += 1;
            self.effects.push(Effect::Update {
                sub: id,
                update: Update::Gap {
                    from: Some(mine),
                    to: at,
                    reason: Some("foreign_epoch".into()),
                },
            });
        }
        if let Some(at) = at {
            advance(&mut sub.cursor, at);
        }
        // A point ahead of the channel's (a restored record) moves it: the
        // channel's position stays at or after every holder's, so the logs
        // a last holder parks and a backfill copies lie at or before it.
        if let (Some(entry), Some(mine)) = (self.registry.get_mut(&sub.channel), sub.cursor) {
            advance(&mut entry.cursor, mine);
        }
    }

    /// Backfills a subscription joining a shared channel from the newest
    /// logs of the co-holder that keeps the most (the gateway is not asked
    /// again; that co-holder's own filter may have dropped some).
    /// Returns how many it accepted.
    pub(super) fn backfill_from(
        &mut self,
        sub: &mut Subscription<P>,
        holders: &[SubId],
        n: usize,
    ) -> u32 {
        let Some(richest) = holders
            .iter()
            .filter_map(|id| self.subs.get(id))
            .max_by_key(|o| o.buffer.len())
        else {
            return 0;
        };
        let logs = richest.buffer.entries();
        let skip = logs.len().saturating_sub(n);
        let mut accepted = 0;
        for log in logs.skip(skip) {
            accepted += u32::from(Self::offer(sub, log.clone(), &mut self.stats));
        }
        accepted
    }

    /// Offers an entry to a subscription's filter and buffer.
    pub(super) fn offer(sub: &mut Subscription<P>, entry: Entry<P>, stats: &mut Stats) -> bool {
        if !sub.buffer.would_accept(&entry.cursor) {
            stats.duplicates += 1;
            return false;
        }
        if let Some(filter) = &sub.filter {
            if !filter(&entry.payload) {
                stats.filtered += 1;
                return false;
            }
        }
        sub.buffer.insert(entry) == Inserted::Added
    }

    /// Removes a subscription; its final state is persisted at once.
    pub fn unsubscribe(&mut self, sub: SubId, now: u64) -> bool {
        let Some(mut s) = self.subs.remove(&sub) else {
            return false;
        };
        if let Some(p) = &mut s.persist {
            if p.dirty && !p.disabled {
                if let Some(text) = Self::encode(&s.channel, s.cursor, now, &s.buffer, p.budget) {
                    self.effects.push(Effect::Persist {
                        sub,
                        key: p.key.clone(),
                        text,
                    });
                }
            }
        }
        let max = s.buffer.capacity();
        let parked = std::mem::replace(&mut s.buffer, LogBuffer::new(1));
        let parked_entries: Vec<Entry<P>> = parked.entries().cloned().collect();
        if self.registry.release(
            &s.channel,
            sub,
            now,
            self.opts.linger_ms,
            parked_entries.into_iter(),
            max,
        ) {
            self.mark_changed(now);
        }
        true
    }

    pub(super) fn mark_changed(&mut self, now: u64) {
        if self.reconfigure_at.is_none() {
            self.reconfigure_at = Some(now + u64::from(self.opts.coalesce_ms));
        }
    }
}
