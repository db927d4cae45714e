//! What the engine reports: the [`Effect`]s the boundary executes, the
//! [`Update`]s of one subscription, why a subscription was refused, and the
//! counters behind diagnostics and benchmarks. Plain data, no behaviour.

use logs_sse_protocol::{Channel, Cursor, StatusKind};

use crate::core::auth::Token;
use crate::core::registry::SubId;
use crate::core::status::{ChangeMode, Fallback, Status};

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
    /// POST `change` to the open stream's control endpoint
    /// (`{gateway}/{connection_id}/channels`) with `X-Stream-Secret:
    /// secret`, `Authorization: Bearer token` when there is one, cookies
    /// when `withCredentials`; abort it after
    /// [`CONTROL_TIMEOUT_MS`](super::CONTROL_TIMEOUT_MS) and answer with
    /// [`Engine::on_channels_answer`](super::Engine::on_channels_answer) and
    /// this `request`. The secret and the token are secrets: never show
    /// them (this type's `Debug` hides both).
    ChangeChannels {
        connection_id: String,
        secret: Secret,
        token: Option<Token>,
        change: ChannelChange,
        request: u64,
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

/// The stream's control secret; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One control call's change of the stream's channel set: each added
/// channel with the `since` text the reopened stream would have used
/// (`None`: live), the channels removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelChange {
    pub add: Vec<(Channel, Option<String>)>,
    pub remove: Vec<Channel>,
}

impl ChannelChange {
    /// The JSON body of the control call. Channel names and `since` texts
    /// are plain ASCII from the protocol's grammar: nothing to escape.
    pub fn body(&self) -> String {
        let mut out = String::from("{\"add\":[");
        for (i, (channel, since)) in self.add.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"channel\":\"");
            out.push_str(channel.as_str());
            out.push('"');
            if let Some(since) = since {
                out.push_str(",\"since\":\"");
                out.push_str(since);
                out.push('"');
            }
            out.push('}');
        }
        out.push_str("],\"remove\":[");
        for (i, channel) in self.remove.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(channel.as_str());
            out.push('"');
        }
        out.push_str("]}");
        out
    }
}

/// How channel changes were applied (diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelChanges {
    /// How the next change will travel.
    pub mode: ChangeMode,
    /// Changes applied live by the control endpoint.
    pub live: u64,
    /// Changes that reopened the stream instead (fallbacks included).
    pub reopened: u64,
    /// Why the last of those reopened it.
    pub last_fallback: Option<Fallback>,
}

impl Default for ChannelChanges {
    fn default() -> Self {
        ChannelChanges {
            mode: ChangeMode::Reconnect,
            live: 0,
            reopened: 0,
            last_fallback: None,
        }
    }
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
