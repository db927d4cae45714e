//! Live channel changes: while the stream is `Open` and its `hello` gave a
//! control secret, a coalesced change of the channel set becomes one
//! [`Effect::ChangeChannels`] call instead of a new stream. The statuses
//! and replays it causes arrive on the stream as `status` and `log` events
//! and go through the usual dispatch, so where each added channel starts
//! is the one rule of the reopen: the `since` the new stream would have
//! used (see `Engine::position`).
//!
//! - At most one call is in flight per stream; changes made meanwhile
//!   wait and are sent, coalesced, when it answers.
//! - Every added channel waits for its `status` before it takes a log
//!   (`ChannelEntry::awaiting_status`); its replay follows that status. A
//!   status the stream queued for an earlier addition of the channel (the
//!   open, or a call), which a call removed since, is not that one: the
//!   engine counts the statuses the stream owes and skips the stale ones.
//! - The gateway leaves out of an added channel's replay what the stream's
//!   other channels brought (those removed in the same call included), so
//!   a channel that wants history next to one covering it (or covered by
//!   it) would miss what the stream already carried: a lingering such
//!   channel is removed first, in a call of its own, and the addition
//!   follows; a held one makes the change reopen the stream.
//! - A subscription that wants a channel from an older point than the
//!   stream carries it makes the channel leave and come back, in two calls.
//!   So does one that takes up a channel whose linger just ended while the
//!   stream still carries it (the change removing it not yet sent): the
//!   stream owes that channel no status, and the new entry needs one.
//! - Anything but a 2xx reopens the stream, resuming from cursors as
//!   before ([`Fallback`] says why): a 404 (the stream is gone), 405/501
//!   (no endpoint: later changes reopen without trying), 403 (the new
//!   stream's probe tells the real reason), other 4xx, 5xx, no answer, or
//!   none within [`CONTROL_TIMEOUT_MS`]. A 401 `expired_token` first
//!   fetches a fresh token and retries once.
//! - A stream that ends while a call is in flight forgets the call: the
//!   next stream is opened for the whole desired set and a late answer is
//!   ignored (it no longer matches the call in flight).

use logs_sse_protocol::Channel;

use super::effects::{ChannelChange, ChannelChanges, Effect, Secret};
use super::phase::Phase;
use super::Engine;
use crate::core::auth::{Token, EXPIRED_TOKEN};
use crate::core::registry::{Position, Start};
use crate::core::status::{ChangeMode, Fallback, ProbeResult};

/// How long a control call (and the token fetch of its retry) may take
/// before the change reopens the stream instead.
pub const CONTROL_TIMEOUT_MS: u64 = 10_000;
/// Longest connection id and secret accepted from `hello`; longer ones (or
/// ones with characters a URL path or a header cannot carry as they are)
/// leave the stream without live changes.
pub const MAX_CONTROL_TEXT: usize = 256;

/// The open stream's control handle, from its `hello`.
#[derive(Debug)]
struct Handle {
    connection_id: String,
    secret: Secret,
}

/// The call in flight.
#[derive(Debug)]
struct Call {
    request: u64,
    change: ChannelChange,
    deadline: u64,
    /// The one retry after a 401 `expired_token` was used.
    retried: bool,
    /// The token fetch the retry waits for.
    token_request: Option<u64>,
}

/// The engine's control state; see the module docs.
#[derive(Debug, Default)]
pub(super) struct Live {
    handle: Option<Handle>,
    /// The stream's `hello` arrived (changes wait for it).
    greeted: bool,
    call: Option<Call>,
    next_request: u64,
    /// The gateway answered 405/501: no endpoint, stop trying.
    unsupported: bool,
    /// The token fetch of a call the stream's end forgot: the next stream
    /// waits for it rather than asking the getter again.
    pub(super) orphan_fetch: Option<u64>,
    pub(super) counts: ChannelChanges,
    /// The reason shown in the status from a fallback to the next `hello`.
    pub(super) note: Option<Fallback>,
    /// The `status` events the stream still owes (a multiset: one per
    /// channel it was opened with or a call added, gone as each arrives or
    /// with the stream). Those of a channel a call removed since move to
    /// `stale`: queued before the removal, they come before the status a
    /// later addition of the channel waits for, and are skipped.
    pub(super) owed: Vec<Channel>,
    stale: Vec<Channel>,
}

/// Whether `text` can travel as it is in a URL path segment and a header.
fn url_safe(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_CONTROL_TEXT
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// Takes one `channel` out of `list` (a multiset); false when none is in.
fn take_one(list: &mut Vec<Channel>, channel: &Channel) -> bool {
    match list.iter().position(|c| c == channel) {
        Some(i) => {
            list.swap_remove(i);
            true
        }
        None => false,
    }
}

/// Channels that one another's logs reach: the same, or a service-level
/// channel and one of its resources.
fn overlap(a: &Channel, b: &Channel) -> bool {
    a.covers(b) || b.covers(a)
}

impl Live {
    /// A new stream: no handle until its `hello`, no call.
    pub(super) fn reset(&mut self) {
        self.handle = None;
        self.greeted = false;
        self.owed.clear();
        self.stale.clear();
        if let Some(fetch) = self.call.take().and_then(|c| c.token_request) {
            self.orphan_fetch = Some(fetch);
        }
    }

    /// The stream ended: a call in flight is forgotten.
    pub(super) fn stream_ended(&mut self) {
        self.reset();
    }

    pub(super) fn mode(&self) -> ChangeMode {
        if self.handle.is_some() && !self.unsupported {
            ChangeMode::Live
        } else {
            ChangeMode::Reconnect
        }
    }

    pub(super) fn deadline(&self) -> Option<u64> {
        self.call.as_ref().map(|c| c.deadline)
    }

    pub(super) fn in_flight(&self) -> bool {
        self.call.is_some()
    }

    /// Whether a `status` event for `channel` is stale (see `owed`).
    pub(super) fn stale_status(&mut self, channel: &Channel) -> bool {
        let stale = take_one(&mut self.stale, channel);
        if !stale {
            take_one(&mut self.owed, channel);
        }
        stale
    }

    /// Takes the control handle of a `hello` (when it has a usable one).
    pub(super) fn hello(&mut self, connection_id: &str, secret: Option<String>) {
        self.call = None;
        self.greeted = true;
        self.handle = secret
            .filter(|s| url_safe(s) && url_safe(connection_id))
            .map(|s| Handle {
                connection_id: connection_id.to_owned(),
                secret: Secret(s),
            });
        self.note = None;
        self.counts.mode = self.mode();
    }
}

impl<P: Clone> Engine<P> {
    /// Applies the coalesced channel change to the open stream, live when
    /// it can (or waits for the call in flight); otherwise reopens it.
    pub(super) fn change_channels(&mut self, now: u64) {
        // Before its `hello` the stream's support is unknown: the hello
        // sends what changed meanwhile.
        if self.live.in_flight() || !self.live.greeted {
            return;
        }
        if let Err(why) = self.try_live(now) {
            self.fall_back(now, why);
        }
    }

    fn try_live(&mut self, now: u64) -> Result<(), Fallback> {
        if self.live.unsupported {
            return Err(Fallback::Unsupported);
        }
        if self.live.handle.is_none() {
            return Err(Fallback::NoSecret);
        }
        let mut change = ChannelChange::default();
        if self.rewind {
            change = self.rewind_plan();
        }
        // Nothing to rewind on the stream: the usual plan.
        if change.remove.is_empty() {
            change = self.plan()?;
        }
        if change.add.is_empty() && change.remove.is_empty() {
            return Ok(());
        }
        let Live { owed, stale, .. } = &mut self.live;
        for channel in &change.remove {
            while take_one(owed, channel) {
                stale.push(channel.clone());
            }
        }
        for (channel, _) in &change.add {
            if let Some(entry) = self.registry.get_mut(channel) {
                entry.awaiting_status = true;
            }
            owed.push(channel.clone());
        }
        // What this call leaves the stream with (a plan that removes
        // first has its additions in the next call).
        if change.add.is_empty() {
            self.streamed.retain(|c| !change.remove.contains(c));
        } else {
            self.streamed = self.registry.names();
        }
        self.live.next_request += 1;
        let request = self.live.next_request;
        self.live.call = Some(Call {
            request,
            change,
            deadline: now + CONTROL_TIMEOUT_MS,
            retried: false,
            token_request: None,
        });
        self.send_call();
        Ok(())
    }

    /// What to add and remove to bring the stream to the registry's set.
    ///
    /// The gateway leaves out of an added channel's replay what the
    /// stream's other channels brought, those removed in the same call
    /// included; channels added together are merged like at open. So a
    /// channel with history next to one covering it (or covered by it)
    /// waits: a lingering one is removed first, in a call of its own; a
    /// held one refuses the plan.
    fn plan(&mut self) -> Result<ChannelChange, Fallback> {
        let mut removal_first = false;
        let mut lingering = Vec::new();
        for added in self.registry.entries() {
            if self.streamed.contains(&added.channel)
                || self.position(added) == Position::Start(Start::Live)
            {
                continue;
            }
            for other in &self.streamed {
                if *other == added.channel || !overlap(other, &added.channel) {
                    continue;
                }
                match self.registry.get(other) {
                    Some(entry) if !entry.subs.is_empty() => return Err(Fallback::Overlap),
                    Some(_) => lingering.push(other.clone()),
                    // Leaving already, in this very call: first.
                    None => {}
                }
                removal_first = true;
            }
        }
        for channel in &lingering {
            self.registry.remove(channel);
        }
        let mut change = ChannelChange::default();
        if !removal_first {
            for entry in self.registry.entries() {
                if !self.streamed.contains(&entry.channel) {
                    let since = self.position(entry).resume_from().since_text();
                    change.add.push((entry.channel.clone(), since));
                }
            }
        }
        for channel in &self.streamed {
            if self.registry.get(channel).is_none() {
                change.remove.push(channel.clone());
            }
        }
        Ok(change)
    }

    /// A subscription wants a channel the stream carries from an older
    /// point (see `join`): the channel leaves the stream in this call and
    /// comes back from its holders' point in the next one, taking nothing
    /// meanwhile (its holders get what they miss from the replay and drop
    /// what they have).
    fn rewind_plan(&mut self) -> ChannelChange {
        self.rewind = false;
        let mut change = ChannelChange::default();
        for entry in self.registry.entries_mut() {
            if entry.rewinding == Some(self.generation) {
                entry.rewinding = None;
                entry.awaiting_status = true;
                if self.streamed.contains(&entry.channel) {
                    change.remove.push(entry.channel.clone());
                }
            }
        }
        for channel in &self.streamed {
            if self.registry.get(channel).is_none() {
                change.remove.push(channel.clone());
            }
        }
        change
    }

    /// Emits the call in flight (again, for its retry).
    fn send_call(&mut self) {
        let (Some(handle), Some(call)) = (&self.live.handle, &self.live.call) else {
            return;
        };
        self.effects.push(Effect::ChangeChannels {
            connection_id: handle.connection_id.clone(),
            secret: handle.secret.clone(),
            token: self.auth.token.clone(),
            change: call.change.clone(),
            request: call.request,
        });
    }

    /// Reopens the stream for the desired set, resuming from cursors.
    fn fall_back(&mut self, now: u64, why: Fallback) {
        self.count_fallback(why);
        self.open(now);
    }

    fn count_fallback(&mut self, why: Fallback) {
        self.live.counts.reopened += 1;
        self.live.counts.last_fallback = Some(why);
        self.live.note = Some(why);
        if why == Fallback::Unsupported {
            self.live.unsupported = true;
        }
    }

    /// The answer to control call `request`: an HTTP status (with the
    /// gateway's error code) or no answer.
    pub fn on_channels_answer(&mut self, request: u64, answer: ProbeResult, now: u64) {
        let Some(call) = &mut self.live.call else {
            return;
        };
        if call.request != request || call.token_request.is_some() {
            return;
        }
        if !matches!(self.phase, Phase::Open { .. }) {
            self.live.call = None;
            return;
        }
        let why = match answer {
            ProbeResult::Http { status, .. } if (200..300).contains(&status) => {
                self.live.call = None;
                self.live.counts.live += 1;
                // Changes made meanwhile go out now, coalesced.
                if self.registry.names() != self.streamed || self.rewind {
                    self.change_channels(now);
                }
                return;
            }
            ProbeResult::Http {
                status: 401,
                code: Some(code),
                ..
            } if code == EXPIRED_TOKEN && self.auth.getter && !call.retried => {
                call.retried = true;
                self.auth.stale = true;
                let fetch = self.auth.start_fetch();
                call.token_request = Some(fetch);
                call.deadline = now + CONTROL_TIMEOUT_MS;
                self.effects.push(Effect::FetchToken { request: fetch });
                return;
            }
            ProbeResult::Http { status, .. } => Fallback::for_http(status),
            ProbeResult::Unreachable { .. } => Fallback::Network,
        };
        self.live.call = None;
        self.fall_back(now, why);
    }

    /// The token getter's answer for a control call's retry; false when
    /// `request` is not that fetch.
    pub(super) fn control_token(
        &mut self,
        request: u64,
        answer: &Result<Option<String>, String>,
        now: u64,
    ) -> bool {
        let Some(call) = &mut self.live.call else {
            return false;
        };
        if call.token_request != Some(request) {
            return false;
        }
        call.token_request = None;
        match answer
            .clone()
            .and_then(|t| t.map_or(Ok(None), Token::accept))
        {
            Ok(token) => {
                self.auth.token = token;
                self.auth.stale = false;
                self.live.next_request += 1;
                call.request = self.live.next_request;
                call.deadline = now + CONTROL_TIMEOUT_MS;
                self.send_call();
            }
            Err(message) => {
                // As when the getter fails before a stream: the next one
                // waits the backoff (a getter that fails at once must not
                // make the client spin), the status says why.
                self.live.call = None;
                self.count_fallback(Fallback::Unauthorized);
                self.effects.push(Effect::CloseStream);
                self.live.stream_ended();
                self.getter_failed(now, &message);
            }
        }
        true
    }

    /// The call in flight (or its token fetch) took too long.
    pub(super) fn control_timer(&mut self, now: u64) {
        if self.live.deadline().is_some_and(|d| d <= now) {
            self.live.call = None;
            self.fall_back(now, Fallback::Timeout);
        }
    }

    /// How channel changes are applied, for diagnostics.
    pub fn channel_changes(&self) -> ChannelChanges {
        ChannelChanges {
            mode: self.live.mode(),
            ..self.live.counts
        }
    }
}
