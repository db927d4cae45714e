//! Channel changes for streams held by another node, over Redis pub/sub.
//!
//! Every node subscribes to two channels of its own, named after the node
//! part of its connection ids (`{prefix}:{node:<tag>}:control` and
//! `...:replies`, one hash tag per node). A node that receives a change for
//! a stream it does not hold publishes a [`Forwarded`] request on the
//! owner's control channel, with an id and its reply channel, and waits at
//! most [`REPLY_WAIT`] for the owner's [`Reply`] (its HTTP status and body,
//! answered as they are). `PUBLISH` counts the subscribers that got the
//! message: none means the owner is gone (killed, stopped, or its
//! connection to Redis is down), answered `404` at once so the client
//! reconnects; no reply in time is `503 stream_unreachable`.
//!
//! This module is transport only: the owner's side is a handler given to
//! [`Relay::run`]. Messages are bounded ([`MAX_MESSAGE_BYTES`]), and so are
//! the calls waiting for a reply ([`MAX_PENDING`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// Longest a forwarded call waits for the owner's reply.
pub const REPLY_WAIT: Duration = Duration::from_secs(5);
/// Largest request or reply message handled; larger ones are dropped.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Most forwarded calls of this node waiting for replies at once.
pub const MAX_PENDING: usize = 10_000;

/// Who is calling, as the receiving node authenticated them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub anonymous: bool,
    pub user: Option<String>,
    /// The token's grants as patterns; `None` grants everything.
    pub patterns: Option<Vec<String>>,
}

/// A change forwarded to the stream's node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Forwarded {
    pub connection_id: String,
    pub secret: String,
    pub caller: Caller,
    /// Channel and `since` (absent: live), as parsed by the receiving node.
    pub add: Vec<(String, Option<String>)>,
    pub remove: Vec<String>,
}

/// The owner's answer: its HTTP status, `Retry-After` and JSON body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    id: u64,
    reply_to: String,
    call: Forwarded,
}

#[derive(Debug, Serialize, Deserialize)]
struct Response {
    id: u64,
    reply: Reply,
}

/// Why a forwarded call got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    #[error("the stream's node is gone")]
    NodeGone,
    #[error("the stream's node did not answer within {} s", REPLY_WAIT.as_secs())]
    NoReply,
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
}

/// The pub/sub names of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeKeys {
    pub control: String,
    pub replies: String,
}

impl NodeKeys {
    pub fn new(prefix: &str, tag: &str) -> Self {
        let base = format!("{prefix}:{{node:{tag}}}");
        NodeKeys {
            control: format!("{base}:control"),
            replies: format!("{base}:replies"),
        }
    }
}

/// The handler of requests for this node's streams.
pub type Handler = Arc<dyn Fn(Forwarded) -> BoxFuture<'static, Reply> + Send + Sync>;

/// This node's side of the relay; see the module docs.
pub struct Relay {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    keys: NodeKeys,
    timeout: Duration,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    up: AtomicBool,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay for the node `tag`; connects lazily.
    pub fn new(url: &str, prefix: &str, tag: &str, timeout: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(|e| e.to_string())?;
        Ok(Relay {
            client,
            conn,
            prefix: prefix.to_owned(),
            keys: NodeKeys::new(prefix, tag),
            timeout,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            up: AtomicBool::new(false),
        })
    }

    /// Whether this node's relay subscriptions are up.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Reply>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RelayError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(|e| RelayError::Unavailable(e.to_string())),
            Err(_) => Err(RelayError::Unavailable(format!(
                "Redis did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    /// Sends `call` to node `tag` and waits for its reply.
    pub async fn forward(&self, tag: &str, call: Forwarded) -> Result<Reply, RelayError> {
        let owner = NodeKeys::new(&self.prefix, tag);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let payload = serde_json::to_vec(&Request {
            id,
            reply_to: self.keys.replies.clone(),
            call,
        })
        .map_err(|e| RelayError::Unavailable(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.pending();
            if pending.len() >= MAX_PENDING {
                return Err(RelayError::Unavailable(
                    "too many forwarded calls in flight".into(),
                ));
            }
            pending.insert(id, tx);
        }
        let result = self.send_and_wait(&owner, payload, rx).await;
        self.pending().remove(&id);
        result
    }

    async fn send_and_wait(
        &self,
        owner: &NodeKeys,
        payload: Vec<u8>,
        rx: oneshot::Receiver<Reply>,
    ) -> Result<Reply, RelayError> {
        if !self.is_up() {
            return Err(RelayError::Unavailable(
                "this node's relay is not connected".into(),
            ));
        }
        let mut conn = self.conn.clone();
        let receivers: i64 = self
            .timed(
                redis::cmd("PUBLISH")
                    .arg(&owner.control)
                    .arg(payload)
                    .query_async(&mut conn),
            )
            .await?;
        if receivers == 0 {
            return Err(RelayError::NodeGone);
        }
        match tokio::time::timeout(REPLY_WAIT, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            _ => Err(RelayError::NoReply),
        }
    }

    /// Serves this node's control channel with `handler` and routes replies
    /// to waiting calls, reconnecting until `shutdown`.
    pub async fn run(self: Arc<Self>, handler: Handler, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let connected = tokio::select! {
                () = shutdown.cancelled() => return,
                c = tokio::time::timeout(self.timeout, self.client.get_async_pubsub()) => c,
            };
            let reason = match connected {
                Ok(Ok(pubsub)) => {
                    backoff = Duration::from_millis(50);
                    match self.session(pubsub, &handler, &shutdown).await {
                        None => return,
                        Some(reason) => reason,
                    }
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "connecting to Redis timed out".to_owned(),
            };
            self.up.store(false, Ordering::Relaxed);
            tracing::warn!(%reason, "control relay connection down");
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// One connected session; `None` when shutting down, else why it broke.
    async fn session(
        &self,
        pubsub: redis::aio::PubSub,
        handler: &Handler,
        shutdown: &CancellationToken,
    ) -> Option<String> {
        let (mut sink, mut stream) = pubsub.split();
        let names = [&self.keys.control, &self.keys.replies];
        match tokio::time::timeout(self.timeout, sink.subscribe(&names[..])).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Some(e.to_string()),
            Err(_) => return Some("subscribing timed out".into()),
        }
        self.up.store(true, Ordering::Relaxed);
        let mut ping = tokio::time::interval(self.timeout);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                message = stream.next() => {
                    let Some(message) = message else {
                        return Some("the pub/sub connection closed".into());
                    };
                    let payload = message.get_payload_bytes();
                    if payload.len() > MAX_MESSAGE_BYTES {
                        tracing::warn!(bytes = payload.len(), "oversized control message dropped");
                        continue;
                    }
                    if message.get_channel_name() == self.keys.replies {
                        self.take_reply(payload);
                    } else {
                        self.serve(payload, handler);
                    }
                }
                _ = ping.tick() => {
                    if !matches!(tokio::time::timeout(self.timeout, sink.ping::<redis::Value>()).await, Ok(Ok(_))) {
                        return Some("the pub/sub connection stopped answering".into());
                    }
                }
            }
        }
    }

    fn take_reply(&self, payload: &[u8]) {
        let Ok(response) = serde_json::from_slice::<Response>(payload) else {
            tracing::warn!("undecodable control reply dropped");
            return;
        };
        if let Some(waiting) = self.pending().remove(&response.id) {
            let _ = waiting.send(response.reply);
        }
    }

    fn serve(&self, payload: &[u8], handler: &Handler) {
        let Ok(request) = serde_json::from_slice::<Request>(payload) else {
            tracing::warn!("undecodable control request dropped");
            return;
        };
        let handler = handler.clone();
        let mut conn = self.conn.clone();
        let timeout = self.timeout;
        tokio::spawn(async move {
            let reply = handler(request.call).await;
            let Ok(payload) = serde_json::to_vec(&Response {
                id: request.id,
                reply,
            }) else {
                return;
            };
            let sent = tokio::time::timeout(
                timeout,
                redis::cmd("PUBLISH")
                    .arg(&request.reply_to)
                    .arg(payload)
                    .query_async::<i64>(&mut conn),
            )
            .await;
            if !matches!(sent, Ok(Ok(_))) {
                tracing::warn!("a control reply could not be sent");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_keeps_its_names_under_one_hash_tag() {
        let keys = NodeKeys::new("logs-sse", "3fa2c9d1");
        assert_eq!(keys.control, "logs-sse:{node:3fa2c9d1}:control");
        assert_eq!(keys.replies, "logs-sse:{node:3fa2c9d1}:replies");
    }
}
