//! The seam between the HTTP layer and where history and fan-out live.
//!
//! [`Backend`] is all the HTTP layer knows: publish logs, subscribe a stream
//! to channels (getting per-channel statuses and the replay), unsubscribe,
//! report figures, add channels to an open stream. Both calls that touch storage can fail
//! ([`StoreError`]: the store is unreachable); the handlers answer 503.
//!
//! Behind it, every backend is a [`routed::RoutedBackend`]: the node-local
//! [`router::Router`] (this node's streams, the fan-out of one encoded frame
//! to their queues, once per stream, the merge of history and live by
//! cursor, the resume/gap rules in [`resume`]) over a [`Store`] (append a
//! batch, read history after a cursor with floors and epoch, and a feed of
//! new entries into the router). [`memory::MemoryStore`] is the embedded
//! default; [`redis::RedisStore`] is shared by several gateway nodes.

pub mod entry;
pub mod idempotency;
pub mod memory;
pub mod redis;
pub mod resume;
pub mod routed;
pub mod router;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use logs_sse_protocol::{Channel, ChannelStatus, Cursor, Epoch, ResumeFrom};

pub use self::entry::{StoreError, StoredEntry};
pub use self::idempotency::IdempotencyKey;
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
    #[error("this Idempotency-Key was used for a request with another body")]
    KeyReused,
}

impl PublishRejection {
    /// The HTTP status of a log refused so.
    pub fn status(&self) -> u16 {
        match self {
            PublishRejection::ChannelLimit { .. } => 503,
            PublishRejection::KeyReused => 422,
        }
    }

    /// The error code of a log refused so.
    pub fn code(&self) -> &'static str {
        match self {
            PublishRejection::ChannelLimit { .. } => "channel_limit",
            PublishRejection::KeyReused => "idempotency_key_reused",
        }
    }
}

/// What a store did with one log it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored now (and fed to the router).
    New(StoredEntry),
    /// Stored by an earlier request with the same idempotency key, at this
    /// cursor; stored nothing again.
    Duplicate(Cursor),
}

impl Appended {
    pub fn cursor(&self) -> Cursor {
        match self {
            Appended::New(entry) => entry.cursor,
            Appended::Duplicate(cursor) => *cursor,
        }
    }
}

/// One result per log of an append, in the order of the logs.
pub type AppendResults = Vec<Result<Appended, PublishRejection>>;

/// The families of `channels` (their service-level channels, first
/// appearance first), each with the indices of its members in order.
pub fn families_of<'a>(
    channels: impl IntoIterator<Item = &'a Channel>,
) -> Vec<(Channel, Vec<usize>)> {
    let mut families: Vec<(Channel, Vec<usize>)> = Vec::new();
    for (index, channel) in channels.into_iter().enumerate() {
        let family = channel.service_level();
        match families.iter_mut().find(|(f, _)| *f == family) {
            Some((_, members)) => members.push(index),
            None => families.push((family, vec![index])),
        }
    }
    families
}

/// What a stream receives when it subscribes: one status per requested
/// channel (request order), then the replay frames in publish order.
#[derive(Debug, Default)]
pub struct Subscribed {
    pub statuses: Vec<ChannelStatus>,
    pub replay: Vec<Frame>,
}

/// What a channel change did: per requested channel (request order) its
/// status if its family was joined, and the store error that stopped it.
#[derive(Debug, Default)]
pub struct Added {
    pub statuses: Vec<Option<ChannelStatus>>,
    pub error: Option<StoreError>,
}

/// Figures for `/admin/logs/stats` and `/metrics`.
#[derive(Debug, Default, Clone)]
pub struct StoreStats {
    /// Channels, entries and bytes of the history this node holds; `None`
    /// when history lives in a shared store (Redis) that no node counts.
    pub history: Option<HistoryFigures>,
    pub queued_bytes: usize,
    /// Open subscriptions per channel, largest first.
    pub subscriptions: Vec<(String, usize)>,
}

/// What a node-local history holds.
#[derive(Debug, Default, Clone, Copy)]
pub struct HistoryFigures {
    pub channels: usize,
    pub entries: usize,
    pub bytes: usize,
}

/// History and fan-out, behind one interface.
pub trait Backend: Send + Sync + 'static {
    /// Short name for health and stats output.
    fn name(&self) -> &'static str;

    /// The epoch reported in `hello` (cursors carry their own).
    fn epoch(&self) -> Epoch;

    /// Stores and routes logs in order; one result per log, or an error
    /// when none was stored. With `key`, logs of a family an earlier request
    /// with the same key and body stored are not stored again (see
    /// [`idempotency`]).
    fn publish(
        &self,
        logs: Vec<NewLog>,
        key: Option<IdempotencyKey>,
    ) -> BoxFuture<'_, Result<AppendResults, StoreError>>;

    /// Joins `subscriber` to `channels` and returns statuses and replay.
    /// Logs published after this returns reach the subscriber's queue; logs
    /// before are in the replay; none is in both. On an error the
    /// subscriber joined nothing.
    fn subscribe<'a>(
        &'a self,
        subscriber: &'a Arc<Subscriber>,
        channels: &'a [(Channel, ResumeFrom)],
    ) -> BoxFuture<'a, Result<Subscribed, StoreError>>;

    /// Joins an open stream to more channels (none it carries already).
    /// For each family, the statuses and then the replay are queued on the
    /// subscriber before any live log of the new channels, leaving out what
    /// the stream's other channels brought; `max_replay_frames` bounds the
    /// replay frames queued at once. A store error stops at that family:
    /// the families before it stay joined.
    fn add<'a>(
        &'a self,
        subscriber: &'a Arc<Subscriber>,
        channels: &'a [(Channel, ResumeFrom)],
        max_replay_frames: usize,
    ) -> BoxFuture<'a, Added>;

    /// Removes a subscriber from channels it joined.
    fn unsubscribe(&self, subscriber_id: u64, channels: &[Channel]);

    /// Current figures; may take locks briefly, so not for hot paths.
    fn stats(&self) -> StoreStats;

    /// Periodic housekeeping (forget idle channels); `now` is injected so
    /// tests need not sleep.
    fn maintain(&self, now: tokio::time::Instant);

    /// Whether the backend can serve (readiness in `/health`).
    fn ready(&self) -> bool {
        true
    }
}

/// One family's history as a store read it, in one consistent snapshot.
#[derive(Debug, Clone)]
pub struct FamilyRead {
    pub epoch: Epoch,
    /// The family's last sequence number (or any number at least as high
    /// that no later entry of the family will have).
    pub head: u64,
    /// Per requested channel, in request order; an error when the store
    /// refused to track the channel (its channel bound).
    pub channels: Vec<Result<ChannelRead, PublishRejection>>,
}

/// One channel of a [`FamilyRead`].
#[derive(Debug, Clone)]
pub struct ChannelRead {
    /// The highest sequence number this channel may have lost.
    pub floor: u64,
    /// The sequence number after which `entries` start: the cursor's when
    /// it resumes exactly, else the floor (or the head, for live).
    pub start: u64,
    /// Entries after `start`, oldest first.
    pub entries: Vec<StoredEntry>,
}

/// Where new entries go: the router. A store delivers each family's
/// entries in sequence order, never two batches of one family at once.
pub trait FeedSink: Send + Sync + 'static {
    fn deliver(&self, family: &Channel, entries: &[StoredEntry]);
    /// The family's entries may have been missed and cannot be repaired
    /// (history lost, new epoch): its streams must resume from cursors.
    fn lost(&self, family: &Channel);
    /// Whether any local stream watches `channel` (a store keeps watched
    /// channels when it forgets idle ones).
    fn watched(&self, channel: &Channel) -> bool;
}

/// What a store provides; see the module docs.
pub trait Store: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// The epoch reported in `hello`.
    fn epoch(&self) -> Epoch;

    /// Connects the store's feed to the router; called once.
    fn attach(&self, sink: Arc<dyn FeedSink>);

    /// Appends logs (any families) and feeds them to the sink; with `key`,
    /// idempotently per family (see [`idempotency`]).
    fn append(
        &self,
        logs: Vec<NewLog>,
        key: Option<IdempotencyKey>,
    ) -> BoxFuture<'_, Result<AppendResults, StoreError>>;

    /// Reads channels of one family (`family` is its service-level channel)
    /// in one snapshot.
    fn read<'a>(
        &'a self,
        family: &'a Channel,
        channels: &'a [(Channel, ResumeFrom)],
    ) -> BoxFuture<'a, Result<FamilyRead, StoreError>>;

    /// Starts feeding `family`: once this returns, every later entry of the
    /// family reaches the sink (or the sink hears `lost`).
    fn watch<'a>(&'a self, family: &'a Channel) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Stops feeding `family` (no local streams are left).
    fn unwatch(&self, family: &Channel);

    /// History figures (channels, entries, bytes).
    fn stats(&self) -> StoreStats;

    /// Periodic housekeeping (forget idle channels not watched).
    fn maintain(&self, now: tokio::time::Instant);

    /// Whether the store and its feed are reachable (readiness).
    fn ready(&self) -> bool {
        true
    }
}
