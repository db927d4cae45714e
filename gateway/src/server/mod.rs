//! The connection layer: accepts TCP connections, serves each with hyper's
//! HTTP/1.1 server (with a timer, so its header-read timeout fires), and
//! holds every connection to its bounds.
//!
//! - **Cap.** At most `max_connections` are served normally. Beyond it, a
//!   few more ([`OVERFLOW_CONNECTIONS`]) are served by a router that answers
//!   only `/health` and refuses the rest with `503 too_many_connections`,
//!   without keep-alive and with a 1 s header-read timeout. When that lane
//!   is full its oldest connection is dropped for the newest, so a flood of
//!   silent sockets cannot keep a health probe (which sends its request at
//!   once) out. Health keeps answering on a saturated gateway because an
//!   orchestrator that cannot reach it would restart a gateway that is
//!   merely busy, ending every stream.
//! - **Timeouts.** hyper's header-read timeout; a watchdog per connection
//!   ([`io::Activity`]) ends connections on which no byte moved for the idle
//!   timeout, or whose client has not accepted bytes for the write timeout.
//!   Dropping the connection drops its response, so a stream's subscription,
//!   queue and slot are freed at once.
//! - **Bounded buffers.** hyper buffers at most `max_buf_size` per
//!   connection for reading and writing; the kernel's send buffer can be
//!   set with `--socket-send-buffer-bytes`.
//! - **Accept errors** (e.g. out of file descriptors) back off from 5 ms to
//!   1 s instead of spinning; existing connections are served meanwhile.
//! - **Shutdown** stops accepting, asks every connection to finish its
//!   response (streams end with `close`), and waits for them.

pub mod io;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{interval_at, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::Config;
use crate::state::AppState;
use io::{Activity, Expired, WatchedIo};

/// Connections beyond the cap that may still ask for `/health`.
pub const OVERFLOW_CONNECTIONS: usize = 32;
/// How long an over-capacity connection may take to send its request head.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// File descriptors left for everything but connections when the cap is
/// derived from the open-file limit (history is in memory; this covers
/// static files, the overflow lane and the runtime).
const RESERVED_FDS: u64 = 256;
/// Cap when the open-file limit is unknown.
const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;
/// Headers hyper itself parses; the head-limits layer refuses more than
/// `head_limits::MAX_HEADERS` with a JSON body before this is reached.
const HYPER_MAX_HEADERS: usize = 256;
/// hyper refuses a per-connection buffer bound below 8 KiB.
const MIN_BUF_SIZE: usize = 8 * 1024;
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The bounds of the connection layer, from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
    /// hyper's per-connection read and write buffer bound.
    pub max_buf_size: usize,
    pub send_buffer_bytes: Option<usize>,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        let head = to_usize(config.max_header_bytes);
        Settings {
            header_read_timeout: config.header_read_timeout(),
            idle_timeout: config.idle_timeout(),
            write_timeout: config.write_timeout(),
            max_connections: to_usize(config.max_connections.unwrap_or_else(default_cap)),
            // The head must fit with room to spare, so the head-limits layer
            // (not hyper) answers heads that are too large; the same bound
            // caps what hyper buffers for a client that stops reading.
            max_buf_size: (2 * head).max(MIN_BUF_SIZE),
            send_buffer_bytes: config.socket_send_buffer_bytes.map(to_usize),
        }
    }

    /// How often a connection's watchdog looks: a quarter of the shorter
    /// timeout, so a timeout is enforced within 125% of its value.
    fn check_every(&self) -> Duration {
        (self.idle_timeout.min(self.write_timeout) / 4).max(Duration::from_millis(50))
    }
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// The soft open-file limit minus [`RESERVED_FDS`].
fn default_cap() -> u64 {
    #[cfg(unix)]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if let Some(current) = limit.current {
            return current.saturating_sub(RESERVED_FDS).max(64);
        }
    }
    DEFAULT_MAX_CONNECTIONS
}

/// Which router serves a connection, and what counts it.
enum Lane {
    Normal(#[allow(dead_code)] OwnedSemaphorePermit),
    Overflow(OverflowSlot),
}

/// The connections served beyond the cap, oldest first; a newcomer evicts
/// the oldest when all [`OVERFLOW_CONNECTIONS`] are taken.
#[derive(Debug, Default)]
struct OverflowLane {
    slots: Mutex<VecDeque<(u64, CancellationToken)>>,
    next_id: AtomicU64,
}

/// One connection's place in the [`OverflowLane`]; freed on drop.
struct OverflowSlot {
    lane: Arc<OverflowLane>,
    id: u64,
    evicted: CancellationToken,
}

impl OverflowLane {
    fn enter(self: &Arc<Self>) -> OverflowSlot {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evicted = CancellationToken::new();
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots.len() >= OVERFLOW_CONNECTIONS {
            if let Some((_, oldest)) = slots.pop_front() {
                oldest.cancel();
            }
        }
        slots.push_back((id, evicted.clone()));
        OverflowSlot {
            lane: self.clone(),
            id,
            evicted,
        }
    }
}

impl Drop for OverflowSlot {
    fn drop(&mut self) {
        let mut slots = self.lane.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|(id, _)| *id != self.id);
    }
}

/// Accepts and serves connections until `shutdown` is cancelled, then waits
/// for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    overflow: Router,
    settings: Settings,
    state: AppState,
) {
    let shutdown = state.shutdown_token().clone();
    let normal = Arc::new(Semaphore::new(settings.max_connections));
    let extra = Arc::new(OverflowLane::default());
    let settings = Arc::new(settings);
    let tracker = TaskTracker::new();
    let mut backoff = Duration::ZERO;
    tracing::debug!(
        max_connections = settings.max_connections,
        "accepting connections"
    );
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = Duration::ZERO;
                accepted
            }
            Err(error) if is_per_connection(&error) => continue,
            Err(error) => {
                // Out of file descriptors or memory: retrying at once would
                // spin. Existing connections keep being served meanwhile.
                backoff = (backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
                state.metrics().accept_errors.inc();
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => continue,
                }
            }
        };
        let (lane, router) = if let Ok(permit) = normal.clone().try_acquire_owned() {
            (Lane::Normal(permit), app.clone())
        } else {
            state.metrics().connections_over_capacity.inc();
            (Lane::Overflow(extra.enter()), overflow.clone())
        };
        tracker.spawn(connection(
            stream,
            peer,
            lane,
            router,
            settings.clone(),
            state.clone(),
        ));
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// Errors that concern one connection only; accepting again is fine.
fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Serves one connection until it ends, times out or shutdown completes.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    lane: Lane,
    router: Router,
    settings: Arc<Settings>,
    state: AppState,
) {
    let metrics = state.metrics();
    metrics.open_connections.inc();
    if let Some(bytes) = settings.send_buffer_bytes {
        if let Err(error) = socket2::SockRef::from(&stream).set_send_buffer_size(bytes) {
            tracing::debug!(%error, "could not set the socket send buffer");
        }
    }
    // Only the overflow lane is evicted: a normal connection holds no token
    // (a tree node of ~100 bytes per stream) and polls none.
    let evicted = match &lane {
        Lane::Normal(_) => None,
        Lane::Overflow(slot) => Some(slot.evicted.clone()),
    };
    let overflow = evicted.is_some();
    let activity = Activity::new();
    let io = TokioIo::new(WatchedIo::new(stream, activity.clone()));
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move { Ok::<_, Infallible>(router.oneshot(request).await.unwrap_or_else(|e| match e {})) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(if overflow {
            OVERFLOW_HEADER_TIMEOUT
        } else {
            settings.header_read_timeout
        })
        .keep_alive(!overflow)
        .max_buf_size(settings.max_buf_size)
        .max_headers(HYPER_MAX_HEADERS);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let check = settings.check_every();
    let mut watchdog = interval_at(Instant::now() + check, check);
    let shutdown = state.shutdown_token().clone();
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                break;
            }
            () = async {
                match &evicted {
                    Some(token) => token.cancelled().await,
                    None => std::future::pending().await,
                }
            }, if overflow => {
                metrics.overflow_evictions.inc();
                break;
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            now = watchdog.tick() => {
                match activity.expired(now, settings.idle_timeout, settings.write_timeout) {
                    None => {}
                    Some(Expired::Idle) => {
                        metrics.idle_timeouts.inc();
                        tracing::debug!(%peer, "connection idle for too long: closed");
                        break;
                    }
                    Some(Expired::WriteStalled) => {
                        metrics.write_timeouts.inc();
                        tracing::debug!(%peer, "client stopped reading: connection dropped");
                        break;
                    }
                }
            }
        }
    }
    metrics.open_connections.dec();
    drop(lane);
}
