//! The gateway's events on the current stream: `hello` opens it, `status`
//! confirms a channel's position (or reports a gap; one the stream owed an
//! earlier addition of the channel, removed since, is skipped), `log` is
//! routed to every subscription whose channel covers it (once each,
//! deduplicated by cursor), `close` ends it; `ping` only feeds the
//! watchdog. Malformed events are counted and reported, never fatal.

use std::rc::Rc;

use logs_sse_protocol::{
    Channel, ChannelStatus, CloseEvent, CloseReason, Cursor, StatusKind, EVENT_CLOSE, EVENT_HELLO,
    EVENT_LOG, EVENT_STATUS,
};

use super::effects::{Diagnostic, Effect, Update};
use super::phase::{Detail, Phase, MAX_HEARTBEAT_MS, MIN_HEARTBEAT_MS};
use super::Engine;
use crate::core::auth::MIN_EXPIRED_STREAM_MS;
use crate::core::buffer::Entry;
use crate::core::events;
use crate::core::registry::{advance, Registry};
use crate::core::status::Reason;

impl<P: Clone> Engine<P> {
    pub(super) fn malformed(
        &mut self,
        event: &str,
        error: impl crate::core::text::Part,
        data: &str,
    ) {
        self.stats.malformed += 1;
        let sample: String = data.chars().take(120).collect();
        self.effects.push(Effect::Diagnostic {
            kind: Diagnostic::MalformedEvent,
            message: crate::text!(
                "ignored malformed `",
                event,
                "` event (",
                error,
                "): ",
                sample
            ),
        });
    }

    /// Handles one SSE event of stream `generation`. `make_payload` turns
    /// the raw `data` into the value handed out in snapshots; it is called
    /// at most once per event, and only when some subscription keeps it.
    pub fn ingest(
        &mut self,
        generation: u64,
        event: &str,
        data: &str,
        now: u64,
        make_payload: impl FnOnce(&str) -> P,
    ) {
        if generation != self.generation
            || !matches!(self.phase, Phase::Open { .. } | Phase::Connecting)
        {
            return;
        }
        self.stats.events += 1;
        // Any event, even a malformed or unknown one, shows the stream lives.
        self.last_event = now;
        match event {
            EVENT_LOG => match events::log(data) {
                Ok(log) => self.route(&log.channel, log.cursor, data, now, make_payload),
                Err(e) => self.malformed(event, e, data),
            },
            EVENT_STATUS => match events::status(data) {
                Ok(status) => self.channel_status(status, now),
                Err(e) => self.malformed(event, e, data),
            },
            EVENT_HELLO => match events::hello(data) {
                Ok(hello) => {
                    if self.phase == Phase::Connecting {
                        self.phase = Phase::Open { since: now };
                        self.auth.expired_retry_used = false;
                    }
                    if let Some(ms) = hello.heartbeat_ms {
                        self.heartbeat_ms = ms.clamp(MIN_HEARTBEAT_MS, MAX_HEARTBEAT_MS);
                    }
                    // The interval may have shrunk: look again in time.
                    self.watchdog_at = now + self.silence_limit_ms();
                    self.status.connection_id =
                        Some(hello.connection_id.chars().take(128).collect());
                    self.live.hello(&hello.connection_id, hello.control_secret);
                    let mut s = self.status.clone();
                    s.state = self.public_state();
                    s.channel_changes = Some(self.live.mode());
                    s.fallback = None;
                    s.reason = None;
                    s.message = None;
                    s.http_status = None;
                    s.code = None;
                    s.retry_in_ms = None;
                    if s != self.status {
                        self.status = s.clone();
                        self.effects.push(Effect::Status(s));
                    }
                    // Changes made while the stream was opening.
                    if self.registry.names() != self.streamed || self.rewind {
                        self.reconfigure(now);
                    }
                }
                Err(e) => self.malformed(event, e, data),
            },
            EVENT_CLOSE => match events::close(data) {
                Ok(close) => self.gateway_close(close, now),
                Err(e) => self.malformed(event, e, data),
            },
            // `ping` only feeds the watchdog (above). Unknown event types
            // are additive extensions: ignore them.
            _ => {}
        }
    }

    pub(super) fn gateway_close(&mut self, close: CloseEvent, now: u64) {
        self.effects.push(Effect::CloseStream);
        self.live.stream_ended();
        let detail = Detail {
            reason: Reason::GatewayClosed,
            message: close.message.chars().take(512).collect(),
            http_status: None,
            code: Some(close.reason.as_str().to_owned()),
        };
        let healthy = self.healthy(now);
        if healthy {
            self.attempt = 0;
        }
        if close.reason == CloseReason::AuthExpired && self.auth.getter {
            // Fetch a fresh token and resume from the cursors at once;
            // only a stream that expired right after opening backs off.
            self.auth.stale = true;
            let lived = match self.phase {
                Phase::Open { since } => now.saturating_sub(since),
                _ => 0,
            };
            if lived >= MIN_EXPIRED_STREAM_MS {
                // The stream is closed above: not `Open` any more.
                self.phase = Phase::Waiting { until: now };
                self.open_with(now, Some(detail));
            } else {
                self.back_off(now, detail);
            }
            return;
        }
        if !healthy {
            self.attempt = self.attempt.saturating_add(1);
        }
        let delay = close.retry_ms.min(u64::from(self.opts.backoff_max_ms)) as u32;
        self.wait(now, delay, detail);
    }

    pub(super) fn channel_status(&mut self, status: ChannelStatus, now: u64) {
        let stale = self.live.stale_status(&status.channel);
        let Some(entry) = self.registry.get_mut(&status.channel) else {
            return;
        };
        if stale {
            return;
        }
        if !entry.rewound(self.generation) {
            return;
        }
        // The channel's own status: its replay and live logs follow.
        entry.awaiting_status = false;
        if let Some(c) = status.cursor {
            advance(&mut entry.cursor, c);
        }
        entry.status = Some(status.status);
        entry.status_reason = status.reason.clone();
        let subs = entry.subs.clone();
        if status.status == StatusKind::Gap {
            self.stats.gaps += 1;
        }
        let throttle = u64::from(self.opts.persist_throttle_ms);
        for id in subs {
            let Some(s) = self.subs.get_mut(&id) else {
                continue;
            };
            s.status = Some(status.status);
            s.status_reason = status.reason.clone();
            let previous = s.cursor;
            // The confirmed position is a resume point too: a quiet channel
            // must resume there, not live.
            let moved = status.cursor.is_some_and(|c| advance(&mut s.cursor, c));
            if moved {
                Self::touch(s, now, throttle);
            }
            self.effects.push(Effect::Update {
                sub: id,
                update: Update::Status {
                    status: status.status,
                    cursor: status.cursor,
                    reason: status.reason.clone(),
                    replayed: status.replayed,
                },
            });
            // A gap before this subscription's own point cost it nothing.
            if status.status == StatusKind::Gap && (moved || previous.is_none()) {
                self.effects.push(Effect::Update {
                    sub: id,
                    update: Update::Gap {
                        from: previous,
                        to: status.cursor,
                        reason: status.reason.clone(),
                    },
                });
            }
        }
    }

    pub(super) fn route(
        &mut self,
        published: &Channel,
        cursor: Cursor,
        data: &str,
        now: u64,
        make_payload: impl FnOnce(&str) -> P,
    ) {
        self.stats.logs += 1;
        let mut make = Some(make_payload);
        let mut shared: Option<Entry<P>> = None;
        let throttle = u64::from(self.opts.persist_throttle_ms);
        for ch in self.registry.entries_mut() {
            if !ch.channel.covers(published) || !ch.caught_up(self.generation) {
                continue;
            }
            advance(&mut ch.cursor, cursor);
            if ch.subs.is_empty() {
                if ch.parked_max > 0 && !ch.parked.iter().any(|e| e.cursor == cursor) {
                    if let Some(e) = shared_entry(&mut shared, &mut make, cursor, data) {
                        Registry::park(ch, e);
                    }
                }
                continue;
            }
            for sub_id in &ch.subs {
                let Some(sub) = self.subs.get_mut(sub_id) else {
                    continue;
                };
                // Behind or at its resume point: this subscription has it
                // (or filtered it out) already.
                if !advance(&mut sub.cursor, cursor) || !sub.buffer.would_accept(&cursor) {
                    self.stats.duplicates += 1;
                    continue;
                }
                // Persisted even when the log is filtered out: the point moved.
                Self::touch(sub, now, throttle);
                let Some(e) = shared_entry(&mut shared, &mut make, cursor, data) else {
                    continue;
                };
                if Self::offer(sub, e, &mut self.stats) {
                    self.stats.delivered += 1;
                    self.effects.push(Effect::Update {
                        sub: *sub_id,
                        update: Update::Logs { added: 1 },
                    });
                }
            }
        }
    }
}

/// The entry of the log being routed, built on first use and shared.
fn shared_entry<P: Clone, F: FnOnce(&str) -> P>(
    slot: &mut Option<Entry<P>>,
    make: &mut Option<F>,
    cursor: Cursor,
    data: &str,
) -> Option<Entry<P>> {
    if slot.is_none() {
        let make = make.take()?;
        *slot = Some(Entry {
            cursor,
            raw: Rc::from(data),
            payload: make(data),
        });
    }
    slot.clone()
}
