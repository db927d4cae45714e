//! The connection lifecycle: opening a stream for the channel set (after
//! a token fetch when needed), reconfiguring it after coalesced channel
//! changes, the heartbeat watchdog, failures, probe verdicts, backoff and
//! the published [`Status`].
//!
//! Connection phases and their observable [`ConnectionState`]:
//!
//! | phase        | state                                      | left by                                             |
//! |--------------|--------------------------------------------|-----------------------------------------------------|
//! | `Idle`       | `idle`                                     | a channel is added                                  |
//! | `Authorizing`| `connecting` (`reconnecting` if attempt>0) | the token getter answers, fails or times out        |
//! | `Connecting` | `connecting` (`reconnecting` if attempt>0) | `open` event, `error`, watchdog                     |
//! | `Open`       | `open`                                     | `error`, watchdog, gateway `close`, channel change  |
//! | `Waiting`    | `reconnecting`                             | backoff timer, `online`, fatal probe                |
//! | `Failed`     | `failed`                                   | channel change, `reconnect()`                       |
//! | `Closed`     | `closed`                                   | never                                               |
//!
//! Subscriber tokens (see [`crate::core::auth`] for the policy): a stream that
//! needs a fresh token goes through `Authorizing`, where the engine emits
//! [`Effect::FetchToken`] and waits for [`Engine::on_token`] (at most
//! [`TOKEN_TIMEOUT_MS`]). A gateway `close` with reason `auth_expired`
//! leads straight there (no backoff) and the new stream resumes from the
//! cursors; a 401 `expired_token` from the probe gets one such immediate
//! retry. A getter that fails is retried with backoff (reason
//! `unauthorized`, code `token_getter_failed`).
//!
//! A watchdog guards `Connecting` and `Open`: the gateway sends a `ping`
//! event every `heartbeatMs` (announced in `hello`), so a stream with no
//! event of any kind for [`SILENCE_FACTOR_PERCENT`](super::SILENCE_FACTOR_PERCENT) of that interval is
//! dead even if the browser has not noticed (a half-open TCP connection, a
//! stalled proxy, a frozen gateway). It is then dropped like a failed
//! stream: reason `network`, reconnect with backoff. The watchdog's
//! deadline moves only when its timer fires, never per event, so the
//! boundary does not re-arm a browser timer for every log.

use logs_sse_protocol::Cursor;

use super::effects::Effect;
use super::phase::{Detail, Phase};
use super::Engine;
use crate::core::auth::{
    append_token, Token, EXPIRED_TOKEN, TOKEN_GETTER_FAILED, TOKEN_TIMEOUT_MESSAGE,
    TOKEN_TIMEOUT_MS,
};
use crate::core::registry::{ChannelEntry, Position};
use crate::core::status::{bounded, classify, ConnectionState, ProbeResult, Reason, Status};

impl<P: Clone> Engine<P> {
    pub(super) fn public_state(&self) -> ConnectionState {
        match self.phase {
            Phase::Idle => ConnectionState::Idle,
            Phase::Connecting | Phase::Authorizing { .. } if self.attempt == 0 => {
                ConnectionState::Connecting
            }
            Phase::Connecting | Phase::Authorizing { .. } | Phase::Waiting { .. } => {
                ConnectionState::Reconnecting
            }
            Phase::Open { .. } => ConnectionState::Open,
            Phase::Failed => ConnectionState::Failed,
            Phase::Closed => ConnectionState::Closed,
        }
    }

    /// Publishes the status for the current phase; `detail` sets the reason
    /// fields (None keeps the previous reason while reconnecting).
    pub(super) fn publish(&mut self, now: u64, detail: Option<Detail>) {
        let state = self.public_state();
        let mut next = Status::new(state);
        next.attempt = self.attempt;
        if let Phase::Waiting { until } = self.phase {
            next.retry_in_ms = Some(until.saturating_sub(now).min(u64::from(u32::MAX)) as u32);
        }
        match state {
            ConnectionState::Open => {
                next.connection_id = self.status.connection_id.clone();
                next.channel_changes = Some(self.live.mode());
            }
            ConnectionState::Reconnecting | ConnectionState::Failed => {
                if let Some(d) = detail {
                    next.reason = Some(d.reason);
                    next.message = Some(d.message);
                    next.http_status = d.http_status;
                    next.code = d.code;
                } else {
                    next.reason = self.status.reason;
                    next.message = self.status.message.clone();
                    next.http_status = self.status.http_status;
                    next.code = self.status.code.clone();
                }
            }
            _ => {}
        }
        next.fallback = self.live.note;
        if next != self.status {
            self.status = next.clone();
            self.effects.push(Effect::Status(next));
        }
    }

    pub(super) fn open(&mut self, now: u64) {
        self.open_with(now, None);
    }

    /// Opens a stream for the current channel set (or goes idle without
    /// one), fetching a fresh token first when the cached one is stale.
    /// `detail` is the reason shown meanwhile when reconnecting.
    pub(super) fn open_with(&mut self, now: u64, detail: Option<Detail>) {
        let streaming = matches!(self.phase, Phase::Connecting | Phase::Open { .. });
        // Whatever follows, the current stream (and a call on it) is over.
        self.live.reset();
        if self.registry.is_empty() {
            if streaming {
                self.effects.push(Effect::CloseStream);
            }
            self.phase = Phase::Idle;
            self.attempt = 0;
            self.streamed.clear();
            self.publish(now, None);
            return;
        }
        if self.auth.must_fetch() {
            if streaming {
                self.effects.push(Effect::CloseStream);
            }
            if !matches!(self.phase, Phase::Authorizing { .. }) {
                // A control call's fetch still out is this stream's too.
                if self.live.orphan_fetch.take() != Some(self.auth.request) {
                    let request = self.auth.start_fetch();
                    self.effects.push(Effect::FetchToken { request });
                }
                self.phase = Phase::Authorizing {
                    until: now + TOKEN_TIMEOUT_MS,
                };
            }
            self.publish(now, detail);
            return;
        }
        self.generation += 1;
        self.stats.opens += 1;
        self.rewind = false;
        self.streamed = self.registry.names();
        self.live.owed = self.streamed.clone();
        self.phase = Phase::Connecting;
        self.last_event = now;
        self.watchdog_at = now + self.silence_limit_ms();
        self.status.connection_id = None;
        self.effects.push(Effect::Open {
            query: self.stream_query(),
            generation: self.generation,
        });
        self.publish(now, detail);
    }

    /// The stream's query string: channels, where each starts, the token.
    pub(super) fn stream_query(&self) -> String {
        let mut query = self.registry.query_string(|e| self.position(e));
        if let Some(token) = &self.auth.token {
            append_token(&mut query, token);
        }
        query
    }

    /// The token getter's answer to fetch `request`: a token, none (stream
    /// without one), or why it failed.
    pub fn on_token(&mut self, request: u64, answer: Result<Option<String>, String>, now: u64) {
        if self.control_token(request, &answer, now) {
            return;
        }
        if request != self.auth.request || !matches!(self.phase, Phase::Authorizing { .. }) {
            return;
        }
        match answer.and_then(|t| t.map_or(Ok(None), Token::accept)) {
            Ok(token) => {
                self.auth.token = token;
                self.auth.stale = false;
                self.open(now);
            }
            Err(message) => self.getter_failed(now, &message),
        }
    }

    /// The getter threw, rejected, returned garbage or hung: retry with
    /// backoff (a getter that fails at once must not make the client spin).
    /// The getter answered with an error (`message`): [`Self::token_failed`]
    /// with the one wording both the stream and a channel change use.
    pub(super) fn getter_failed(&mut self, now: u64, message: &str) {
        let message = bounded(crate::text!("the token getter failed: ", message));
        self.token_failed(now, message);
    }

    pub(super) fn token_failed(&mut self, now: u64, message: String) {
        self.back_off(
            now,
            Detail {
                reason: Reason::Unauthorized,
                message,
                http_status: None,
                code: Some(TOKEN_GETTER_FAILED.to_owned()),
            },
        );
    }

    /// Counts a failed attempt and waits the backoff delay.
    pub(super) fn back_off(&mut self, now: u64, detail: Detail) {
        self.attempt = self.attempt.saturating_add(1);
        let delay = self.backoff.delay(self.attempt, (self.rng)());
        self.wait(now, delay, detail);
    }

    /// Where a channel starts on the next stream: after the oldest resume
    /// point of its holders (each then gets everything it still misses;
    /// the others drop what they have), else after the channel's own
    /// position (lingering), else at its start.
    pub(super) fn position(&self, entry: &ChannelEntry<P>) -> Position {
        let mut oldest: Option<Cursor> = None;
        for c in entry.subs.iter().filter_map(|id| self.subs.get(id)?.cursor) {
            oldest = match oldest {
                Some(o) if o.epoch == c.epoch && o.seq <= c.seq => Some(o),
                // Points of an older epoch than the channel's are moot.
                Some(o) if o.epoch != c.epoch && entry.cursor.map(|e| e.epoch) == Some(o.epoch) => {
                    Some(o)
                }
                _ => Some(c),
            };
        }
        match oldest.or(entry.cursor) {
            Some(c) => Position::After(c),
            None => Position::Start(entry.start),
        }
    }

    pub(super) fn reconfigure(&mut self, now: u64) {
        let desired = self.registry.names();
        match self.phase {
            Phase::Closed => {}
            Phase::Waiting { .. } if !desired.is_empty() => {}
            Phase::Failed if !desired.is_empty() => {
                self.attempt = 0;
                self.open(now);
            }
            Phase::Idle if !desired.is_empty() => {
                self.attempt = 0;
                self.open(now);
            }
            // The stream opened when the token arrives takes the new set.
            Phase::Authorizing { .. } if !desired.is_empty() => {}
            Phase::Open { .. } | Phase::Connecting if desired == self.streamed && !self.rewind => {}
            // Its `hello` says whether the change can be made live.
            Phase::Connecting if !desired.is_empty() && !self.rewind => {}
            Phase::Open { .. } if !desired.is_empty() => self.change_channels(now),
            _ => self.open(now),
        }
    }

    /// Runs whatever is due at `now`: linger expiry, coalesced channel
    /// changes, the backoff timer, throttled persistence.
    pub fn on_timer(&mut self, now: u64) {
        if self.registry.expire(now) {
            self.mark_changed(now);
        }
        if self.reconfigure_at.is_some_and(|t| t <= now) {
            self.reconfigure_at = None;
            self.reconfigure(now);
        }
        if matches!(self.phase, Phase::Open { .. }) {
            self.control_timer(now);
        }
        match self.phase {
            Phase::Waiting { until } if until <= now => self.open(now),
            Phase::Authorizing { until } if until <= now => {
                self.token_failed(now, TOKEN_TIMEOUT_MESSAGE.to_owned());
            }
            Phase::Connecting | Phase::Open { .. } if self.watchdog_at <= now => {
                let limit = self.silence_limit_ms();
                if now.saturating_sub(self.last_event) >= limit {
                    self.silent(now, limit);
                } else {
                    self.watchdog_at = self.last_event + limit;
                }
            }
            _ => {}
        }
        self.persist_due(now, false);
    }

    /// The watchdog found the stream silent for `limit` ms.
    pub(super) fn silent(&mut self, now: u64, limit: u64) {
        let message = if matches!(self.phase, Phase::Open { .. }) {
            crate::text!("the stream went silent: no event for ", limit, " ms")
        } else {
            crate::text!("the stream did not open: no answer for ", limit, " ms")
        };
        self.drop_stream(now, true, message);
    }

    /// The stream's `open` event.
    pub fn on_open(&mut self, generation: u64, now: u64) {
        if generation != self.generation || self.phase != Phase::Connecting {
            return;
        }
        self.phase = Phase::Open { since: now };
        self.last_event = now;
        self.auth.expired_retry_used = false;
        self.publish(now, None);
    }

    pub(super) fn healthy(&self, now: u64) -> bool {
        matches!(self.phase, Phase::Open { since } if now.saturating_sub(since) >= u64::from(self.opts.healthy_after_ms))
    }

    pub(super) fn wait(&mut self, now: u64, delay: u32, detail: Detail) {
        self.phase = Phase::Waiting {
            until: now + u64::from(delay),
        };
        self.publish(now, Some(detail));
    }

    /// The stream's `error` event. `online` is `navigator.onLine`.
    pub fn on_error(&mut self, generation: u64, online: bool, now: u64) {
        if generation != self.generation {
            return;
        }
        let message = match self.phase {
            Phase::Open { .. } | Phase::Connecting if !online => "the browser is offline",
            Phase::Open { .. } => "the stream was interrupted",
            Phase::Connecting => "the stream could not be opened",
            _ => return,
        };
        self.drop_stream(now, online, message.to_owned());
    }

    /// Ends a stream that failed (`Connecting` or `Open`) and schedules
    /// the next attempt. A stream that never opened is probed when online.
    pub(super) fn drop_stream(&mut self, now: u64, online: bool, message: String) {
        let was_open = matches!(self.phase, Phase::Open { .. });
        self.live.stream_ended();
        if self.healthy(now) {
            self.attempt = 0;
        }
        self.effects.push(Effect::CloseStream);
        self.back_off(
            now,
            Detail {
                reason: Reason::Network,
                message,
                http_status: None,
                code: None,
            },
        );
        if !was_open && online {
            self.effects.push(Effect::Probe {
                query: self.stream_query(),
                generation: self.generation,
            });
        }
    }

    /// The outcome of the probe for `generation`.
    pub fn on_probe(&mut self, generation: u64, result: ProbeResult, online: bool, now: u64) {
        // The verdict explains the current run of failures: while waiting
        // to retry, or when the retry it preceded has not opened yet (a slow
        // probe may answer after the backoff elapsed). Once a stream opened,
        // an old verdict is stale.
        let waiting = generation == self.generation && matches!(self.phase, Phase::Waiting { .. });
        let retrying = generation + 1 == self.generation && self.phase == Phase::Connecting;
        if !(waiting || retrying) {
            return;
        }
        match classify(&result, online) {
            None => self.publish(
                now,
                Some(Detail {
                    reason: Reason::Network,
                    message: "the stream failed to open but the gateway answers".into(),
                    http_status: None,
                    code: None,
                }),
            ),
            Some(v) => {
                let expired = v.http_status == Some(401)
                    && v.code.as_deref() == Some(EXPIRED_TOKEN)
                    && self.auth.getter;
                let auth = matches!(v.reason, Reason::Unauthorized | Reason::Forbidden);
                let detail = Detail {
                    reason: v.reason,
                    message: v.message,
                    http_status: v.http_status,
                    code: v.code,
                };
                if expired && !self.auth.expired_retry_used {
                    // One immediate retry with a fresh token.
                    self.auth.expired_retry_used = true;
                    self.auth.stale = true;
                    self.open_with(now, Some(detail));
                    return;
                }
                if v.fatal {
                    if retrying {
                        self.effects.push(Effect::CloseStream);
                    }
                    self.phase = Phase::Failed;
                    // Retrying from `failed` (a channel change, reconnect())
                    // starts with a fresh token and its own expiry retry.
                    self.auth.stale |= auth;
                    self.auth.expired_retry_used = false;
                }
                self.publish(now, Some(detail));
            }
        }
    }

    /// The browser's `online` event: retry at once when waiting.
    pub fn on_online(&mut self, now: u64) {
        if matches!(self.phase, Phase::Waiting { .. }) {
            self.open(now);
        }
    }

    /// Retries now (after `failed`, or to skip a backoff delay).
    pub fn reconnect(&mut self, now: u64) {
        if matches!(self.phase, Phase::Failed | Phase::Waiting { .. }) {
            self.attempt = 0;
            self.open(now);
        }
    }

    /// Closes the client for good; dirty persisted state is written.
    pub fn close(&mut self, now: u64) {
        if self.phase == Phase::Closed {
            return;
        }
        self.persist_due(now, true);
        self.live.stream_ended();
        if matches!(self.phase, Phase::Connecting | Phase::Open { .. }) {
            self.effects.push(Effect::CloseStream);
        }
        self.phase = Phase::Closed;
        self.reconfigure_at = None;
        self.publish(now, None);
    }
}
