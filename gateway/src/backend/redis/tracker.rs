//! Turns the at-most-once feed into an exactly-once, in-order feed for the
//! router: per watched family it knows the epoch and the last sequence
//! number delivered, and repairs every hole from history.
//!
//! - A batch whose first sequence number jumps past the next expected one
//!   reveals a hole: the missing entries are read from the family's
//!   service-level history (which holds every entry of the family) and
//!   delivered first. Entries at or below what was delivered are dropped.
//! - A periodic position check (`check_every`) compares each family's head
//!   in Redis with what was delivered; a family still behind a head seen on
//!   the previous check is repaired (so a trailing lost message is found
//!   without waiting for the next publish). After a feed reconnection, or
//!   a batch the feed had to drop, every family is checked at once.
//! - When history no longer covers a hole, or the family's epoch changed (a
//!   Redis that lost its data), the family's streams are cut
//!   ([`FeedSink::lost`]) and resume from their cursors, where the
//!   resume rules tell them of the gap.
//!
//! One task does all of it, so a family's entries reach the router one
//! batch at a time, in order. The position check's round trip runs beside
//! the feed (batches keep flowing while it is out); only a repair holds
//! the feed back, so the entries it reads go out before later ones.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use logs_sse_protocol::{Channel, Cursor, Epoch};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::feed::{Feed, FeedEvent};
use super::RedisOps;
use crate::backend::{FeedSink, StoreError, StoredEntry};
use crate::metrics::Metrics;

/// Handle of the tracker task.
#[derive(Debug, Clone)]
pub struct Tracker {
    commands: mpsc::UnboundedSender<Command>,
    feed: Feed,
}

#[derive(Debug)]
enum Command {
    Watch(Channel, oneshot::Sender<Result<(), StoreError>>),
    Unwatch(Channel),
}

#[derive(Debug)]
struct Position {
    family: Channel,
    epoch: Option<Epoch>,
    delivered: u64,
    /// The head seen by the previous position check.
    seen_head: u64,
    /// Bumped by every new epoch: a check read before it is stale.
    generation: u64,
}

/// A position check on its way: the families asked for (name and
/// generation when asked), when, and the answer.
struct CheckResult {
    now: bool,
    asked: Vec<(String, u64)>,
    families: usize,
    started: Instant,
    positions: Result<Vec<Option<(Epoch, u64)>>, StoreError>,
    ping: Option<Duration>,
}

/// Batches waiting for the tracker; past it the feed drops and resyncs.
const FEED_QUEUE: usize = 4096;

impl Tracker {
    pub fn start(
        ops: RedisOps,
        sink: Arc<dyn FeedSink>,
        metrics: Arc<Metrics>,
        check_every: Duration,
        shutdown: CancellationToken,
    ) -> Tracker {
        let (events_tx, events) = mpsc::channel(FEED_QUEUE);
        let feed = Feed::start(&ops, events_tx, shutdown.clone());
        let (commands, rx) = mpsc::unbounded_channel();
        let task = Task {
            ops,
            feed: feed.clone(),
            sink,
            metrics,
            positions: HashMap::new(),
        };
        tokio::spawn(task.run(rx, events, check_every, shutdown));
        Tracker { commands, feed }
    }

    /// Subscribes to the family's feed and records its position; every
    /// later entry of the family reaches the sink once, in order.
    pub async fn watch(&self, family: &Channel) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the Redis feed has stopped".into());
        self.commands
            .send(Command::Watch(family.clone(), reply))
            .map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    pub fn unwatch(&self, family: &Channel) {
        let _ = self.commands.send(Command::Unwatch(family.clone()));
    }

    pub fn feed_is_up(&self) -> bool {
        self.feed.is_up()
    }
}

struct Task {
    ops: RedisOps,
    feed: Feed,
    sink: Arc<dyn FeedSink>,
    metrics: Arc<Metrics>,
    positions: HashMap<String, Position>,
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut events: mpsc::Receiver<FeedEvent>,
        check_every: Duration,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(check_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut checking: Option<BoxFuture<'static, CheckResult>> = None;
        // A check asked for (`Some(now)`) while another was out.
        let mut wanted: Option<bool> = None;
        loop {
            if checking.is_none() {
                if let Some(now) = wanted.take() {
                    checking = Some(self.start_check(now));
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Watch(family, reply)) => {
                        let _ = reply.send(self.watch(family).await);
                    }
                    Some(Command::Unwatch(family)) => {
                        self.positions.remove(family.as_str());
                        self.feed.unsubscribe(&family);
                    }
                },
                event = events.recv() => match event {
                    None => return,
                    Some(FeedEvent::Batch { family, epoch, entries }) => {
                        self.on_batch(&family, epoch, entries).await;
                    }
                    Some(FeedEvent::Resync) => {
                        self.metrics.backend_resyncs.inc();
                        // A check already out may have read before the
                        // loss: another, repairing everything behind, follows.
                        wanted = Some(true);
                    }
                    Some(FeedEvent::Down(_)) => {
                        self.metrics.backend_up.set(0);
                    }
                },
                result = async {
                    match checking.as_mut() {
                        Some(check) => check.await,
                        None => std::future::pending().await,
                    }
                }, if checking.is_some() => {
                    checking = None;
                    self.finish_check(result).await;
                }
                _ = tick.tick() => {
                    wanted.get_or_insert(false);
                }
            }
        }
    }

    async fn watch(&mut self, family: Channel) -> Result<(), StoreError> {
        self.feed.subscribe(&family).await?;
        // Subscribed first, then the position: every entry after it comes
        // through the feed (or is repaired).
        let position = match self.ops.positions(std::slice::from_ref(&family)).await {
            Ok(mut positions) => positions.pop().flatten(),
            Err(error) => {
                self.feed.unsubscribe(&family);
                return Err(error);
            }
        };
        let (epoch, head) = match position {
            Some((epoch, head)) => (Some(epoch), head),
            None => (None, 0),
        };
        self.positions.insert(
            family.as_str().to_owned(),
            Position {
                family,
                epoch,
                delivered: head,
                seen_head: head,
                generation: 0,
            },
        );
        Ok(())
    }

    /// A new epoch for the family: its streams resume (and are told of the
    /// gap); delivery restarts from the epoch's beginning.
    fn new_epoch(&mut self, name: &str, epoch: Option<Epoch>) {
        let Some(position) = self.positions.get_mut(name) else {
            return;
        };
        if position.epoch.is_some() {
            self.sink.lost(&position.family);
            self.metrics.backend_lost_families.inc();
        }
        position.epoch = epoch;
        position.delivered = 0;
        position.seen_head = 0;
        position.generation += 1;
    }

    async fn on_batch(&mut self, family: &Channel, epoch: Epoch, entries: Vec<StoredEntry>) {
        let name = family.as_str();
        let Some(position) = self.positions.get(name) else {
            return;
        };
        if position.epoch != Some(epoch) {
            self.new_epoch(name, Some(epoch));
        }
        let first = entries.first().map_or(0, |e| e.cursor.seq);
        let delivered = self.positions.get(name).map_or(0, |p| p.delivered);
        if first > delivered + 1 {
            self.repair(name).await;
        }
        let Some(position) = self.positions.get_mut(name) else {
            return;
        };
        if position.epoch != Some(epoch) {
            return;
        }
        let fresh: Vec<StoredEntry> = entries
            .into_iter()
            .filter(|e| e.cursor.seq > position.delivered)
            .collect();
        if let Some(last) = fresh.last() {
            if fresh[0].cursor.seq != position.delivered + 1 {
                // The repair could not reach Redis: keep the order, and let
                // the next position check fill the hole.
                return;
            }
            position.delivered = last.cursor.seq;
            self.sink.deliver(family, &fresh);
        }
    }

    /// Delivers what the family's history holds after the last delivered
    /// entry; cuts the family's streams when history no longer covers it.
    async fn repair(&mut self, name: &str) {
        let Some(position) = self.positions.get(name) else {
            return;
        };
        let (family, epoch, delivered) =
            (position.family.clone(), position.epoch, position.delivered);
        let after = Cursor::new(epoch.unwrap_or(Epoch(0)), delivered);
        let Ok(read) = self.ops.read_family_after(&family, after).await else {
            return;
        };
        let mut delivered = delivered;
        if Some(read.epoch) != epoch {
            // A cursor of another epoch reads from the floor: all there is.
            self.new_epoch(name, Some(read.epoch));
            delivered = 0;
        }
        let Some(Ok(channel)) = read.channels.into_iter().next() else {
            return;
        };
        let Some(position) = self.positions.get_mut(name) else {
            return;
        };
        if channel.floor > delivered {
            // Evicted before it could be repaired: the streams resume and
            // are told of the gap. What history still holds is fed on, for
            // streams joining meanwhile from a later cursor.
            self.sink.lost(&family);
            self.metrics.backend_lost_families.inc();
        }
        match channel.entries.last() {
            Some(last) => {
                position.delivered = last.cursor.seq;
                self.metrics
                    .backend_repaired_logs
                    .inc_by(channel.entries.len() as u64);
                self.sink.deliver(&family, &channel.entries);
            }
            // Nothing after `delivered` is left: all of it was evicted.
            None => position.delivered = position.delivered.max(read.head),
        }
    }

    /// Reads every watched family's head (one round trip, awaited beside
    /// the feed by the caller); with `now`, every family behind is
    /// repaired, else only those still behind a head seen on the previous
    /// check.
    fn start_check(&self, now: bool) -> BoxFuture<'static, CheckResult> {
        let asked: Vec<(String, u64)> = self
            .positions
            .iter()
            .map(|(name, p)| (name.clone(), p.generation))
            .collect();
        let families: Vec<Channel> = asked
            .iter()
            .filter_map(|(n, _)| self.positions.get(n).map(|p| p.family.clone()))
            .collect();
        let ops = self.ops.clone();
        Box::pin(async move {
            let started = Instant::now();
            let positions = ops.positions(&families).await;
            // The round trip of a check with no family is measured by a ping.
            let ping = if families.is_empty() && positions.is_ok() {
                ops.ping().await.ok()
            } else {
                None
            };
            CheckResult {
                now,
                families: families.len(),
                asked,
                started,
                positions,
                ping,
            }
        })
    }

    /// Compares the heads a check read with what was delivered since, and
    /// repairs the families behind. A family whose epoch changed after the
    /// read is left to the next check.
    async fn finish_check(&mut self, result: CheckResult) {
        let positions = match result.positions {
            Ok(positions) => positions,
            Err(_) => {
                self.metrics.backend_up.set(0);
                return;
            }
        };
        let rtt = if result.families == 0 {
            result.ping
        } else {
            Some(result.started.elapsed())
        };
        match rtt {
            Some(rtt) => {
                self.metrics
                    .backend_rtt_micros
                    .set(i64::try_from(rtt.as_micros()).unwrap_or(i64::MAX));
                self.metrics.backend_up.set(i64::from(self.feed.is_up()));
            }
            None => {
                self.metrics.backend_up.set(0);
            }
        }
        for ((name, generation), position) in result.asked.iter().zip(positions) {
            let (epoch, head) = match position {
                Some((epoch, head)) => (Some(epoch), head),
                None => (None, 0),
            };
            let Some(current) = self.positions.get(name) else {
                continue;
            };
            if current.generation != *generation {
                continue;
            }
            if current.epoch != epoch && !(current.epoch.is_none() && epoch.is_some()) {
                self.new_epoch(name, epoch);
                continue;
            }
            let behind = if result.now { head } else { current.seen_head };
            let needs_repair = current.delivered < behind.min(head);
            if let Some(current) = self.positions.get_mut(name) {
                if current.epoch.is_none() {
                    current.epoch = epoch;
                }
                current.seen_head = head;
            }
            if needs_repair {
                self.repair(name).await;
            }
        }
    }
}
