//! The seam between the HTTP layer and where history and fan-out live.
//!
//! [`Backend`] is all the HTTP layer knows: publish logs, subscribe a stream
//! to channels (getting per-channel statuses and the replay), unsubscribe,
//! report figures. [`memory::MemoryBackend`] is the embedded default; a
//! shared backend (e.g. Redis, for several gateway nodes) implements the same
//! trait and plugs in without touching the handlers.

pub mod entry;
pub mod memory;
pub mod redis;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use logs_sse_protocol::{Channel, ChannelStatus, Cursor, Epoch, ResumeFrom};

use crate::frame::Frame;
use crate::subscriber::Subscriber;

/// A validated log ready to be stored and routed.
#[derive(Debug, Clone)]
pub struct NewLog {
    /// The resource channel it was published to.
    pub channel: Channel,
    /// The publisher's `logData`, as single-line JSON text.
    pub log_data: String,
    /// Receive time, milliseconds since the Unix epoch.
    pub ts: u64,
}

/// Why one log of a publish was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishRejection {
    #[error("the gateway tracks its maximum of {max} channels; retry later")]
    ChannelLimit { max: usize },
}

/// What a stream receives when it subscribes: one status per requested
/// channel (request order), then the replay frames in publish order.
#[derive(Debug, Default)]
pub struct Subscribed {
    pub statuses: Vec<ChannelStatus>,
    pub replay: Vec<Frame>,
}

/// Figures for `/admin/logs/stats` and `/metrics`.
#[derive(Debug, Default, Clone)]
pub struct StoreStats {
    pub channels: usize,
    pub history_entries: usize,
    pub history_bytes: usize,
    pub queued_bytes: usize,
    /// Open subscriptions per channel, largest first.
    pub subscriptions: Vec<(String, usize)>,
}

/// History and fan-out, behind one interface.
pub trait Backend: Send + Sync + 'static {
    /// Short name for health and stats output.
    fn name(&self) -> &'static str;

    /// The epoch of the cursors this backend issues.
    fn epoch(&self) -> Epoch;

    /// Stores and routes logs in order; one result per log.
    fn publish(&self, logs: Vec<NewLog>) -> BoxFuture<'_, Vec<Result<Cursor, PublishRejection>>>;

    /// Joins `subscriber` to `channels` and returns statuses and replay.
    /// Logs published after this returns reach the subscriber's queue; logs
    /// before are in the replay; none is in both.
    fn subscribe<'a>(
        &'a self,
        subscriber: &'a Arc<Subscriber>,
        channels: &'a [(Channel, ResumeFrom)],
    ) -> BoxFuture<'a, Subscribed>;

    /// Removes a subscriber from channels it joined.
    fn unsubscribe(&self, subscriber_id: u64, channels: &[Channel]);

    /// Current figures; may take locks briefly, so not for hot paths.
    fn stats(&self) -> StoreStats;

    /// Periodic housekeeping (forget idle channels); `now` is injected so
    /// tests need not sleep.
    fn maintain(&self, now: tokio::time::Instant);
}
