//! The client state machine: subscriptions, routing, connection lifecycle.
//!
//! [`Engine`] owns everything that decides; the browser boundary only
//! executes the [`Effect`]s it emits and feeds it events. Inputs carry the
//! current time (`now` in milliseconds); randomness comes from an injected
//! function. Nothing here touches a browser API, so the whole lifecycle
//! (coalesced channel changes, linger, backoff, probe verdicts, gateway
//! `close` events, gaps, persistence throttling) is tested natively.
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
//! Every stream the engine asks for has a *generation*; events from an
//! older generation are ignored.
//!
//! Resume points: each [`Subscription`] owns its `cursor`, restored, given,
//! confirmed by the channel's `status` or moved by a covered log. It is
//! what the subscription persists (a move marks its record dirty), and the
//! stream resumes each channel after the oldest point of its holders; a
//! channel nobody placed starts at its [`Start`] (live, a `history`
//! backfill, earliest). A subscription joining behind the stream's
//! position is caught up from the parked logs or by reopening the stream,
//! during which the channel ignores the old stream (see `join`).
//!
//! Subscriber tokens (see [`super::auth`] for the policy): a stream that
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
//! event of any kind for [`SILENCE_FACTOR_PERCENT`] of that interval is
//! dead even if the browser has not noticed (a half-open TCP connection, a
//! stalled proxy, a frozen gateway). It is then dropped like a failed
//! stream: reason `network`, reconnect with backoff. The watchdog's
//! deadline moves only when its timer fires, never per event, so the
//! boundary does not re-arm a browser timer for every log.

use std::rc::Rc;

use logs_sse_protocol::{
    Channel, ChannelStatus, CloseEvent, CloseReason, Cursor, StatusKind, EVENT_CLOSE, EVENT_HELLO,
    EVENT_LOG, EVENT_STATUS,
};

use super::auth::{
    append_token, Auth, Token, EXPIRED_TOKEN, MIN_EXPIRED_STREAM_MS, TOKEN_GETTER_FAILED,
    TOKEN_TIMEOUT_MESSAGE, TOKEN_TIMEOUT_MS,
};
use super::backoff::Backoff;
use super::buffer::{Entry, Inserted, LogBuffer};
use super::events;
use super::options::{ClientOptions, SubscribeOptions};
use super::persist::{self, Restored};
use super::registry::{advance, Acquired, ChannelEntry, Position, Registry, Start, SubId};
use super::status::{bounded, classify, ConnectionState, ProbeResult, Reason, Status};

/// A subscription's filter: keep the log when it returns true.
pub type Filter<P> = Box<dyn Fn(&P) -> bool>;

/// Smallest persistence budget tried after quota errors.
pub const MIN_PERSIST_BUDGET: usize = 4 * 1024;
/// Pause after a write failed even with the smallest budget.
pub const PERSIST_GIVE_UP_MS: u64 = 30_000;

/// The heartbeat assumed until a `hello` announces one (the gateway's
/// default).
pub const DEFAULT_HEARTBEAT_MS: u64 = 15_000;
/// Bounds applied to an announced heartbeat (the gateway's own range), so
/// a zero or absurd value cannot make the watchdog fire at once or never.
pub const MIN_HEARTBEAT_MS: u64 = 1_000;
pub const MAX_HEARTBEAT_MS: u64 = 3_600_000;
/// A stream silent for this share of the heartbeat interval (2.5 ×) is
/// dead: two pings missed, with room for a slow network.
pub const SILENCE_FACTOR_PERCENT: u64 = 250;

/// Something that happened to one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Logs were added to the buffer.
    Logs { added: u32 },
    /// The gateway reported the channel's status.
    Status {
        status: StatusKind,
        cursor: Option<Cursor>,
        reason: Option<String>,
        replayed: u32,
    },
    /// Logs between `from` and `to` may be missing: refetch them elsewhere.
    Gap {
        from: Option<Cursor>,
        to: Option<Cursor>,
        reason: Option<String>,
    },
}

/// Kinds of diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diagnostic {
    MalformedEvent,
    Storage,
}

/// What the boundary must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Replace any current stream with one for `query` (no leading `?`;
    /// it ends with `&access_token=…` when there is a token, so it is a
    /// secret: never show it).
    Open {
        query: String,
        generation: u64,
    },
    /// Close the current stream.
    CloseStream,
    /// Fetch the stream URL (the same `query`) once to learn why it failed
    /// to open.
    Probe {
        query: String,
        generation: u64,
    },
    /// Call the token getter; answer with [`Engine::on_token`] and this
    /// `request`.
    FetchToken {
        request: u64,
    },
    /// The observable status changed.
    Status(Status),
    Update {
        sub: SubId,
        update: Update,
    },
    /// Write `text` to `sessionStorage[key]`; report failure with
    /// [`Engine::persist_failed`].
    Persist {
        sub: SubId,
        key: String,
        text: String,
    },
    /// Remove a stored record (it was invalid).
    Forget {
        key: String,
    },
    Diagnostic {
        kind: Diagnostic,
        message: String,
    },
}

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeError {
    Closed,
    TooManySubscriptions(u32),
    TooManyChannels(u32),
}

impl std::fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubscribeError::Closed => f.write_str("the client is closed"),
            SubscribeError::TooManySubscriptions(max) => {
                write!(
                    f,
                    "too many subscriptions: the limit is {max} (maxSubscriptions)"
                )
            }
            SubscribeError::TooManyChannels(max) => {
                write!(f, "too many channels: the limit is {max} (maxChannels)")
            }
        }
    }
}

/// Counters for diagnostics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub logs: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub filtered: u64,
    pub malformed: u64,
    pub opens: u64,
    pub gaps: u64,
}

#[derive(Debug)]
struct PersistState {
    key: String,
    dirty: bool,
    due_at: u64,
    last_write: Option<u64>,
    budget: usize,
    disabled: bool,
}

/// One subscription.
pub struct Subscription<P> {
    pub channel: Channel,
    /// Its resume point: every log of the channel after it is still to come
    /// to this subscription, and every log up to it that it kept is in its
    /// buffer. What is persisted, and where the stream resumes the channel.
    pub cursor: Option<Cursor>,
    pub buffer: LogBuffer<P>,
    filter: Option<Filter<P>>,
    persist: Option<PersistState>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Waiting for the token getter (until the timeout).
    Authorizing {
        until: u64,
    },
    Connecting,
    Open {
        since: u64,
    },
    Waiting {
        until: u64,
    },
    Failed,
    Closed,
}

/// See the module docs.
pub struct Engine<P> {
    opts: ClientOptions,
    backoff: Backoff,
    rng: Box<dyn FnMut() -> f64>,
    subs: SubMap<P>,
    next_sub: SubId,
    registry: Registry<P>,
    phase: Phase,
    attempt: u32,
    generation: u64,
    streamed: Vec<Channel>,
    reconfigure_at: Option<u64>,
    /// A subscription joined a channel on the stream behind its position:
    /// the stream must reopen even if its channel set is unchanged.
    rewind: bool,
    /// The heartbeat interval of the gateway (last `hello`, or the default).
    heartbeat_ms: u64,
    /// When the current stream last showed life (opened, any event).
    last_event: u64,
    /// When the watchdog next looks (only in `Connecting` and `Open`).
    watchdog_at: u64,
    status: Status,
    effects: Vec<Effect>,
    stats: Stats,
    auth: Auth,
}

impl<P> std::fmt::Debug for Engine<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("phase", &self.phase)
            .field("attempt", &self.attempt)
            .field("generation", &self.generation)
            .field("subs", &self.subs.len())
            .field("channels", &self.registry.len())
            .finish()
    }
}

impl<P: Clone> Engine<P> {
    /// `rng` returns numbers in `[0, 1)` for backoff jitter.
    pub fn new(opts: ClientOptions, rng: Box<dyn FnMut() -> f64>) -> Self {
        Engine {
            backoff: Backoff::new(opts.backoff_min_ms, opts.backoff_max_ms),
            opts,
            rng,
            subs: SubMap(Vec::new()),
            next_sub: 1,
            registry: Registry::default(),
            phase: Phase::Idle,
            attempt: 0,
            generation: 0,
            streamed: Vec::new(),
            reconfigure_at: None,
            rewind: false,
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
            last_event: 0,
            watchdog_at: 0,
            status: Status::new(ConnectionState::Idle),
            effects: Vec::new(),
            stats: Stats::default(),
            auth: Auth::default(),
        }
    }

    /// Configures subscriber tokens: `getter` when a token getter exists
    /// (the boundary calls it on [`Effect::FetchToken`]), `token` a static
    /// token used until a fresh one is needed. Call before subscribing.
    pub fn set_auth(&mut self, getter: bool, token: Option<Token>) {
        self.auth = Auth::new(getter, token);
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    pub fn status(&self) -> &Status {
        &self.status
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How long a stream may stay silent before it counts as dead.
    pub fn silence_limit_ms(&self) -> u64 {
        self.heartbeat_ms * SILENCE_FACTOR_PERCENT / 100
    }

    pub fn subscription(&self, sub: SubId) -> Option<&Subscription<P>> {
        self.subs.get(&sub)
    }

    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// Channels on the current (or last opened) stream.
    pub fn streamed_channels(&self) -> &[Channel] {
        &self.streamed
    }

    /// The resume cursor of a channel on the stream.
    pub fn channel_cursor(&self, channel: &Channel) -> Option<Cursor> {
        self.registry.get(channel).and_then(|e| e.cursor)
    }

    /// Takes the effects emitted since the last call, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub fn has_effects(&self) -> bool {
        !self.effects.is_empty()
    }

    /// When [`on_timer`](Self::on_timer) must next run.
    pub fn next_deadline(&self) -> Option<u64> {
        let mut next = self.reconfigure_at;
        let mut consider = |t: Option<u64>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        match self.phase {
            Phase::Waiting { until } | Phase::Authorizing { until } => consider(Some(until)),
            Phase::Connecting | Phase::Open { .. } => consider(Some(self.watchdog_at)),
            _ => {}
        }
        consider(self.registry.next_deadline());
        for sub in self.subs.values() {
            if let Some(p) = &sub.persist {
                if p.dirty && !p.disabled {
                    consider(Some(p.due_at));
                }
            }
        }
        next
    }

    // ----- subscriptions -------------------------------------------------

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
        } else if resume.is_some() || start != Start::Live {
            // The current stream may carry the channel's logs from another
            // point (it left the set a moment ago, or a service-level
            // channel covers it): take nothing from it before the stream
            // that starts the channel where it asked.
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
    fn join(&mut self, id: SubId, sub: &mut Subscription<P>, acquired: Acquired, history: u32) {
        let Some(entry) = self.registry.get_mut(&sub.channel) else {
            return;
        };
        sub.status = entry.status;
        sub.status_reason = entry.status_reason.clone();
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
        if let (Some(mine), Some(at)) = (sub.cursor, at) {
            if mine.epoch != at.epoch {
                // The channel already moved to another gateway epoch: the
                // history this point refers to is gone.
                self.stats.gaps += 1;
                self.effects.push(Effect::Update {
                    sub: id,
                    update: Update::Gap {
                        from: Some(mine),
                        to: Some(at),
                        reason: Some("foreign_epoch".into()),
                    },
                });
            }
        }
        for log in parked {
            Self::offer(sub, log, &mut self.stats);
        }
        if sub.cursor.is_none() && history > 0 && acquired == Acquired::Shared {
            self.backfill_from(sub, &holders, history as usize);
        }
        if let Some(at) = at {
            advance(&mut sub.cursor, at);
        }
    }

    /// Backfills a subscription joining a shared channel from the newest
    /// logs of the co-holder that keeps the most (the gateway is not asked
    /// again; that co-holder's own filter may have dropped some).
    fn backfill_from(&mut self, sub: &mut Subscription<P>, holders: &[SubId], n: usize) {
        let Some(richest) = holders
            .iter()
            .filter_map(|id| self.subs.get(id))
            .max_by_key(|o| o.buffer.len())
        else {
            return;
        };
        let logs = richest.buffer.entries();
        let skip = logs.len().saturating_sub(n);
        for log in logs.skip(skip) {
            Self::offer(sub, log.clone(), &mut self.stats);
        }
    }

    /// Offers an entry to a subscription's filter and buffer.
    fn offer(sub: &mut Subscription<P>, entry: Entry<P>, stats: &mut Stats) -> bool {
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

    fn encode(
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

    fn mark_changed(&mut self, now: u64) {
        if self.reconfigure_at.is_none() {
            self.reconfigure_at = Some(now + u64::from(self.opts.coalesce_ms));
        }
    }

    // ----- connection ----------------------------------------------------

    fn public_state(&self) -> ConnectionState {
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
    fn publish(&mut self, now: u64, detail: Option<Detail>) {
        let state = self.public_state();
        let mut next = Status::new(state);
        next.attempt = self.attempt;
        if let Phase::Waiting { until } = self.phase {
            next.retry_in_ms = Some(until.saturating_sub(now).min(u64::from(u32::MAX)) as u32);
        }
        match state {
            ConnectionState::Open => {
                next.connection_id = self.status.connection_id.clone();
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
        if next != self.status {
            self.status = next.clone();
            self.effects.push(Effect::Status(next));
        }
    }

    fn open(&mut self, now: u64) {
        self.open_with(now, None);
    }

    /// Opens a stream for the current channel set (or goes idle without
    /// one), fetching a fresh token first when the cached one is stale.
    /// `detail` is the reason shown meanwhile when reconnecting.
    fn open_with(&mut self, now: u64, detail: Option<Detail>) {
        let streaming = matches!(self.phase, Phase::Connecting | Phase::Open { .. });
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
                let request = self.auth.start_fetch();
                self.effects.push(Effect::FetchToken { request });
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
    fn stream_query(&self) -> String {
        let mut query = self.registry.query_string(|e| self.position(e));
        if let Some(token) = &self.auth.token {
            append_token(&mut query, token);
        }
        query
    }

    /// The token getter's answer to fetch `request`: a token, none (stream
    /// without one), or why it failed.
    pub fn on_token(&mut self, request: u64, answer: Result<Option<String>, String>, now: u64) {
        if request != self.auth.request || !matches!(self.phase, Phase::Authorizing { .. }) {
            return;
        }
        match answer.and_then(|t| t.map_or(Ok(None), Token::accept)) {
            Ok(token) => {
                self.auth.token = token;
                self.auth.stale = false;
                self.open(now);
            }
            Err(message) => {
                let message = bounded(format!("the token getter failed: {message}"));
                self.token_failed(now, message);
            }
        }
    }

    /// The getter threw, rejected, returned garbage or hung: retry with
    /// backoff (a getter that fails at once must not make the client spin).
    fn token_failed(&mut self, now: u64, message: String) {
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
    fn back_off(&mut self, now: u64, detail: Detail) {
        self.attempt = self.attempt.saturating_add(1);
        let delay = self.backoff.delay(self.attempt, (self.rng)());
        self.wait(now, delay, detail);
    }

    /// Where a channel starts on the next stream: after the oldest resume
    /// point of its holders (each then gets everything it still misses;
    /// the others drop what they have), else after the channel's own
    /// position (lingering), else at its start.
    fn position(&self, entry: &ChannelEntry<P>) -> Position {
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

    fn reconfigure(&mut self, now: u64) {
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
    fn silent(&mut self, now: u64, limit: u64) {
        let message = if matches!(self.phase, Phase::Open { .. }) {
            format!("the stream went silent: no event for {limit} ms")
        } else {
            format!("the stream did not open: no answer for {limit} ms")
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

    fn healthy(&self, now: u64) -> bool {
        matches!(self.phase, Phase::Open { since } if now.saturating_sub(since) >= u64::from(self.opts.healthy_after_ms))
    }

    fn wait(&mut self, now: u64, delay: u32, detail: Detail) {
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
    fn drop_stream(&mut self, now: u64, online: bool, message: String) {
        let was_open = matches!(self.phase, Phase::Open { .. });
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
        if matches!(self.phase, Phase::Connecting | Phase::Open { .. }) {
            self.effects.push(Effect::CloseStream);
        }
        self.phase = Phase::Closed;
        self.reconfigure_at = None;
        self.publish(now, None);
    }

    // ----- events --------------------------------------------------------

    fn malformed(&mut self, event: &str, error: impl std::fmt::Display, data: &str) {
        self.stats.malformed += 1;
        let sample: String = data.chars().take(120).collect();
        self.effects.push(Effect::Diagnostic {
            kind: Diagnostic::MalformedEvent,
            message: format!("ignored malformed `{event}` event ({error}): {sample}"),
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
                    let mut s = self.status.clone();
                    s.state = self.public_state();
                    s.reason = None;
                    s.message = None;
                    s.http_status = None;
                    s.code = None;
                    s.retry_in_ms = None;
                    if s != self.status {
                        self.status = s.clone();
                        self.effects.push(Effect::Status(s));
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

    fn gateway_close(&mut self, close: CloseEvent, now: u64) {
        self.effects.push(Effect::CloseStream);
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

    fn channel_status(&mut self, status: ChannelStatus, now: u64) {
        let Some(entry) = self.registry.get_mut(&status.channel) else {
            return;
        };
        if !entry.caught_up(self.generation) {
            return;
        }
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

    /// The subscription's resume point moved: it is to be persisted (at
    /// most once per throttle interval).
    fn touch(sub: &mut Subscription<P>, now: u64, throttle: u64) {
        if let Some(p) = &mut sub.persist {
            if !p.dirty {
                p.dirty = true;
                p.due_at = p.last_write.map_or(now, |t| (t + throttle).max(now));
            }
        }
    }

    fn route(
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

    // ----- persistence ---------------------------------------------------

    fn persist_due(&mut self, now: u64, all: bool) {
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
                message: format!(
                    "sessionStorage is unavailable; `{}` will not be persisted",
                    p.key
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
                message: format!(
                    "sessionStorage quota exceeded for `{}`; retrying in {}s",
                    p.key,
                    PERSIST_GIVE_UP_MS / 1000
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
            message: format!("discarded stored logs `{key}`: {why}"),
        });
    }
}

/// Subscriptions sorted by id (a few hundred at most: a sorted `Vec` is
/// smaller than a tree in wasm).
struct SubMap<P>(Vec<(SubId, Subscription<P>)>);

impl<P> SubMap<P> {
    fn find(&self, id: SubId) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |(k, _)| *k)
    }
    fn get(&self, id: &SubId) -> Option<&Subscription<P>> {
        self.find(*id).ok().map(|i| &self.0[i].1)
    }
    fn get_mut(&mut self, id: &SubId) -> Option<&mut Subscription<P>> {
        self.find(*id).ok().map(|i| &mut self.0[i].1)
    }
    fn insert(&mut self, id: SubId, sub: Subscription<P>) {
        match self.find(id) {
            Ok(i) => self.0[i].1 = sub,
            Err(i) => self.0.insert(i, (id, sub)),
        }
    }
    fn remove(&mut self, id: &SubId) -> Option<Subscription<P>> {
        self.find(*id).ok().map(|i| self.0.remove(i).1)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn values(&self) -> impl Iterator<Item = &Subscription<P>> {
        self.0.iter().map(|(_, s)| s)
    }
    fn iter_mut(&mut self) -> impl Iterator<Item = (&SubId, &mut Subscription<P>)> {
        self.0.iter_mut().map(|(k, s)| (&*k, s))
    }
}

#[derive(Debug)]
struct Detail {
    reason: Reason,
    message: String,
    http_status: Option<u16>,
    code: Option<String>,
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

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests;
