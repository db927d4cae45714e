//! What the engine reports: the [`Effect`]s the boundary executes, the
//! [`Update`]s of one subscription, why a subscription was refused, and the
//! counters behind diagnostics and benchmarks. Plain data, no behaviour.

use logs_sse_protocol::{Cursor, StatusKind};

use crate::core::registry::SubId;
use crate::core::status::Status;

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
    /// Call the token getter; answer with [`Engine::on_token`](super::Engine::on_token) and this
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
    /// [`Engine::persist_failed`](super::Engine::persist_failed).
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

impl crate::core::text::Part for SubscribeError {
    fn push_to(&self, out: &mut String) {
        let parts: &[&dyn crate::core::text::Part] = match self {
            SubscribeError::Closed => &[&"the client is closed"],
            SubscribeError::TooManySubscriptions(max) => &[
                &"too many subscriptions: the limit is ",
                max,
                &" (maxSubscriptions)",
            ],
            SubscribeError::TooManyChannels(max) => {
                &[&"too many channels: the limit is ", max, &" (maxChannels)"]
            }
        };
        crate::core::text::push(out, parts);
    }
}

impl std::fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::text!(self))
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
