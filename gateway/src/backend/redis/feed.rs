//! The node's one pub/sub connection: a subscription per family that has
//! local streams, decoded into entries.
//!
//! Pub/sub is at-most-once: a reconnect, Redis cutting a slow subscriber at
//! its `client-output-buffer-limit`, or a full event queue here drops
//! messages silently. The feed never pretends otherwise: after every
//! (re)connection and after it had to drop a batch it emits
//! [`FeedEvent::Resync`], and its consumer checks every family's position
//! against history. A frozen connection is found by a `PING` every
//! `timeout` and replaced.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use logs_sse_protocol::{Channel, Epoch};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::keys::{family_of_feed, FamilyKeys};
use super::wire::decode_message;
use super::RedisOps;
use crate::backend::entry::{StoreError, StoredEntry};

/// What the feed reports to its consumer.
#[derive(Debug)]
pub enum FeedEvent {
    /// One published batch of a family, in publish order.
    Batch {
        family: Channel,
        epoch: Epoch,
        entries: Vec<StoredEntry>,
    },
    /// Messages may have been lost (the connection was (re)made, or a batch
    /// had to be dropped): compare every family's position with history.
    Resync,
    /// The pub/sub connection is down; a `Resync` follows when it is back.
    Down(String),
}

enum Command {
    Subscribe(Channel, oneshot::Sender<Result<(), StoreError>>),
    Unsubscribe(Channel),
}

/// Handle of the feed task; dropping every handle ends the task.
#[derive(Debug, Clone)]
pub struct Feed {
    commands: mpsc::UnboundedSender<Command>,
    up: Arc<AtomicBool>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Subscribe(c, _) => write!(f, "Subscribe({c})"),
            Command::Unsubscribe(c) => write!(f, "Unsubscribe({c})"),
        }
    }
}

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Feed {
    /// Starts the feed task; events go to `events` (bounded: a full queue
    /// drops the batch and asks for a resync).
    pub fn start(
        store: &RedisOps,
        events: mpsc::Sender<FeedEvent>,
        shutdown: CancellationToken,
    ) -> Feed {
        let (commands, rx) = mpsc::unbounded_channel();
        let up = Arc::new(AtomicBool::new(false));
        let task = Task {
            up: up.clone(),
            client: store.client().clone(),
            prefix: store.config().key_prefix.clone(),
            timeout: store.config().timeout,
            commands: rx,
            events,
            wanted: HashMap::new(),
        };
        tokio::spawn(task.run(shutdown));
        Feed { commands, up }
    }

    /// Whether the pub/sub connection is up and subscribed.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Subscribes to the feed of `family`; returns once Redis confirmed, so
    /// every batch published afterwards is delivered (or a resync follows).
    pub async fn subscribe(&self, family: &Channel) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Subscribe(family.clone(), reply))
            .map_err(|_| StoreError::Unavailable("the feed has stopped".into()))?;
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the feed has stopped".into())))
    }

    /// Stops receiving the feed of `family`.
    pub fn unsubscribe(&self, family: &Channel) {
        let _ = self.commands.send(Command::Unsubscribe(family.clone()));
    }
}

struct Task {
    up: Arc<AtomicBool>,
    client: redis::Client,
    prefix: String,
    timeout: Duration,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<FeedEvent>,
    /// Feed channel name → family, for every family subscribed.
    wanted: HashMap<String, Channel>,
}

/// Why a connected session ended.
enum Ended {
    Stop,
    Broken(String),
}

impl Task {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let connected = tokio::select! {
                () = shutdown.cancelled() => return,
                c = timeout(self.timeout, self.client.get_async_pubsub()) => c,
            };
            let reason = match connected {
                Ok(Ok(pubsub)) => match self.session(pubsub, &shutdown).await {
                    Ended::Stop => return,
                    Ended::Broken(reason) => {
                        backoff = Duration::from_millis(50);
                        reason
                    }
                },
                Ok(Err(e)) => e.to_string(),
                Err(_) => "connecting to Redis timed out".to_owned(),
            };
            self.up.store(false, Ordering::Relaxed);
            tracing::warn!(%reason, "Redis pub/sub connection down");
            self.signal(FeedEvent::Down(reason.clone()));
            // While down, subscriptions are refused (their streams answer 503).
            let wake = tokio::time::sleep(backoff);
            tokio::pin!(wake);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = &mut wake => break,
                    command = self.commands.recv() => match command {
                        None => return,
                        Some(Command::Subscribe(_, reply)) => {
                            let _ = reply.send(Err(StoreError::Unavailable(reason.clone())));
                        }
                        Some(Command::Unsubscribe(family)) => {
                            self.wanted.remove(&FamilyKeys::new(&self.prefix, &family).feed);
                        }
                    },
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn session(&mut self, pubsub: redis::aio::PubSub, shutdown: &CancellationToken) -> Ended {
        let (mut sink, mut stream) = pubsub.split();
        if !self.wanted.is_empty() {
            let names: Vec<&String> = self.wanted.keys().collect();
            match timeout(self.timeout, sink.subscribe(names)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Ended::Broken(e.to_string()),
                Err(_) => return Ended::Broken("resubscribing timed out".into()),
            }
        }
        self.up.store(true, Ordering::Relaxed);
        self.signal(FeedEvent::Resync);
        let mut ping = tokio::time::interval(self.timeout);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ended::Stop,
                command = self.commands.recv() => match command {
                    None => return Ended::Stop,
                    Some(Command::Subscribe(family, reply)) => {
                        let name = FamilyKeys::new(&self.prefix, &family).feed;
                        match timeout(self.timeout, sink.subscribe(&name)).await {
                            Ok(Ok(())) => {
                                self.wanted.insert(name, family);
                                let _ = reply.send(Ok(()));
                            }
                            Ok(Err(e)) => {
                                let _ = reply.send(Err(StoreError::Unavailable(e.to_string())));
                                return Ended::Broken(e.to_string());
                            }
                            Err(_) => {
                                let reason = "subscribing timed out".to_owned();
                                let _ = reply.send(Err(StoreError::Unavailable(reason.clone())));
                                return Ended::Broken(reason);
                            }
                        }
                    }
                    Some(Command::Unsubscribe(family)) => {
                        let name = FamilyKeys::new(&self.prefix, &family).feed;
                        if self.wanted.remove(&name).is_some()
                            && !matches!(timeout(self.timeout, sink.unsubscribe(&name)).await, Ok(Ok(())))
                        {
                            return Ended::Broken("unsubscribing failed".into());
                        }
                    }
                },
                message = stream.next() => {
                    let Some(message) = message else {
                        return Ended::Broken("the pub/sub connection closed".into());
                    };
                    self.forward(message.get_channel_name(), message.get_payload_bytes());
                }
                _ = ping.tick() => {
                    if !matches!(timeout(self.timeout, sink.ping::<redis::Value>()).await, Ok(Ok(_))) {
                        return Ended::Broken("the pub/sub connection stopped answering".into());
                    }
                }
            }
        }
    }

    fn forward(&self, name: &str, payload: &[u8]) {
        // Messages of a family just unsubscribed may still arrive.
        if !self.wanted.contains_key(name) {
            return;
        }
        let Some(family) = family_of_feed(&self.prefix, name) else {
            return;
        };
        let event = match decode_message(&family, payload) {
            Ok((epoch, entries)) => FeedEvent::Batch {
                family,
                epoch,
                entries,
            },
            Err(error) => {
                tracing::warn!(%error, "undecodable feed message; resyncing");
                FeedEvent::Resync
            }
        };
        if self.events.try_send(event).is_err() {
            // Dropped: the consumer is behind. Ask it to resync once it has
            // room; until then its sequence checks see the jump.
            self.signal(FeedEvent::Resync);
        }
    }

    /// Sends a control event without ever blocking the feed (its consumer
    /// may be waiting on a subscription from this task).
    fn signal(&self, event: FeedEvent) {
        if let Err(mpsc::error::TrySendError::Full(event)) = self.events.try_send(event) {
            let events = self.events.clone();
            tokio::spawn(async move {
                let _ = events.send(event).await;
            });
        }
    }
}
