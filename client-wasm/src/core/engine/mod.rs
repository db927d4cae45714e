//! The client state machine: [`Engine`] owns everything that decides; the
//! browser boundary only executes the [`Effect`]s it emits and feeds it
//! events. Inputs carry the current time (`now` in milliseconds);
//! randomness comes from an injected function. Nothing here touches a
//! browser API, so the whole lifecycle (coalesced channel changes, linger,
//! backoff, probe verdicts, gateway `close` events, gaps, persistence
//! throttling) is tested natively.
//!
//! This module holds the [`Engine`] type, its constructor and its read-only
//! API. Its behaviour is split by concern, each module one `impl` block:
//!
//! - `subscriptions`: subscribe/unsubscribe, joining a channel on the
//!   stream, coalesced channel changes,
//! - `connection`: phases, open/reconfigure, token fetches, the watchdog,
//!   failures, probe verdicts, backoff, the published status,
//! - `dispatch`: the gateway's events (`hello`, `status`, `log`, `close`),
//! - `control`: live channel changes through the gateway's control
//!   endpoint and their fallback to reopening,
//! - `persistence`: throttled `sessionStorage` writes and their failures,
//!
//! over plain data modules that import none of them: `effects` (what the
//! engine reports), `subscription` (one subscription's state) and
//! `phase` (the connection phases). Every stream the engine asks for has a
//! *generation*; events from an older generation are ignored.

mod connection;
mod control;
mod dispatch;
mod effects;
mod persistence;
mod phase;
mod subscription;
mod subscriptions;

use logs_sse_protocol::{Channel, Cursor};

pub use control::{CONTROL_TIMEOUT_MS, MAX_CONTROL_TEXT};
pub use effects::{
    ChannelChange, ChannelChanges, Diagnostic, Effect, Secret, Stats, SubscribeError, Update,
};
use phase::Phase;
pub use phase::{DEFAULT_HEARTBEAT_MS, MAX_HEARTBEAT_MS, MIN_HEARTBEAT_MS, SILENCE_FACTOR_PERCENT};
use subscription::SubMap;
pub use subscription::{Filter, Subscription, MIN_PERSIST_BUDGET, PERSIST_GIVE_UP_MS};

use super::auth::{Auth, Token};
use super::backoff::Backoff;
use super::options::ClientOptions;
use super::registry::{Registry, SubId};
use super::status::{ConnectionState, Status};

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
    live: control::Live,
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
            live: control::Live::default(),
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

    /// The position of a channel on the stream: the newest cursor its
    /// events or its holders' points reached.
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
        consider(self.live.deadline());
        for sub in self.subs.values() {
            if let Some(p) = &sub.persist {
                if p.dirty && !p.disabled {
                    consider(Some(p.due_at));
                }
            }
        }
        next
    }
}

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests;
