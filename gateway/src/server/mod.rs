//! The connection layer: accepts TCP connections, serves their requests
//! with hyper's HTTP/1.1 server (with a timer, so its header-read timeout
//! fires) or, for streams, a writer of its own, and holds every connection
//! to its bounds.
//!
//! - **Streams without hyper's buffers.** Each request head is read here
//!   ([`first_head`]). A plain stream request is run through the router and
//!   its response written by [`direct`], which holds no buffer between
//!   writes (hyper holds 16 KiB per connection while it serves one).
//!   Anything else is served by hyper from the bytes already read, one
//!   request at a time, after which hyper hands the connection back
//!   ([`exchange`]), so a stream after a publish on a keep-alive
//!   connection (a proxy's pool) is written directly too.
//! - **Cap.** At most `max_connections` are served normally. Beyond it, a
//!   few more ([`OVERFLOW_CONNECTIONS`]) are served by a router that answers
//!   only `/health` and refuses the rest with `503 too_many_connections`,
//!   without keep-alive and with a 1 s header-read timeout. When that lane
//!   is full its oldest connection is dropped for the newest, so a flood of
//!   silent sockets cannot keep a health probe (which sends its request at
//!   once) out. Health keeps answering on a saturated gateway because an
//!   orchestrator that cannot reach it would restart a gateway that is
//!   merely busy, ending every stream.
//! - **Timeouts.** The header-read timeout (here, and hyper's for the
//!   requests it reads itself); a watchdog per connection
//!   ([`io::Activity`]) ends connections on which no byte moved for the idle
//!   timeout, or whose client has not accepted bytes for the write timeout.
//!   Dropping the connection drops its response, so a stream's subscription,
//!   queue and slot are freed at once.
//! - **Bounded buffers.** A head is read into at most
//!   `max_buf_size`, and hyper buffers at most that per connection for
//!   reading and writing; a direct stream holds one frame being written (at
//!   most the body's merge bound, 16 KiB); the kernel's send buffer can be
//!   set with `--socket-send-buffer-bytes`.
//! - **Accept errors** (e.g. out of file descriptors) back off from 5 ms to
//!   1 s instead of spinning; existing connections are served meanwhile.
//! - **Shutdown** stops accepting, asks every connection to finish its
//!   response (streams end with `close`), and waits for them.

mod direct;
mod exchange;
mod first_head;
pub mod io;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use bytes::BytesMut;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{interval_at, Instant, Interval};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::state::AppState;
use direct::After;
use exchange::HyperSettings;
use first_head::FirstHead;
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
const HYPER_MAX_HEADERS: usize = first_head::MAX_HEADERS;
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
    let activity = Activity::new();
    let mut io = WatchedIo::new(stream, activity.clone());
    let mut watchdog = Watchdog::new(activity, &settings, &state, peer);
    let shutdown = state.shutdown_token();
    let mut hyper = HyperSettings {
        header_read_timeout: settings.header_read_timeout,
        keep_alive: true,
        max_buf_size: settings.max_buf_size,
        max_headers: HYPER_MAX_HEADERS,
    };
    match &lane {
        Lane::Normal(_) => {
            // Each request head is read here: a stream is written directly,
            // anything else is served by hyper, one request at a time.
            let mut unread = BytesMut::new();
            loop {
                let head = {
                    let head = pin!(next_head(&mut io, unread, peer, &settings, shutdown));
                    watchdog.run(head).await.flatten()
                };
                let next = match head {
                    None | Some(FirstHead::Closed) => None,
                    Some(FirstHead::Stream(request)) => {
                        let after = {
                            let served = pin!(direct::serve(&mut io, request, &router, peer));
                            watchdog.run(served).await
                        };
                        match after {
                            Some(After::KeepAlive(early)) => Some((io, early)),
                            _ => None,
                        }
                    }
                    Some(FirstHead::Other { bytes, length }) => {
                        let router = router.clone();
                        let served =
                            exchange::serve(io, bytes, length, peer, router, hyper, shutdown);
                        // Boxed: hyper's state machine is only paid for while it serves.
                        watchdog.run(Box::pin(served).as_mut()).await.flatten()
                    }
                };
                match next {
                    Some(next) if !shutdown.is_cancelled() => (io, unread) = next,
                    _ => break,
                }
            }
        }
        // Only the overflow lane is evicted: a normal connection holds no
        // token (a tree node of ~100 bytes per stream) and polls none.
        Lane::Overflow(slot) => {
            hyper.header_read_timeout = OVERFLOW_HEADER_TIMEOUT;
            hyper.keep_alive = false;
            let served = exchange::serve(io, BytesMut::new(), None, peer, router, hyper, shutdown);
            let mut served = Box::pin(served);
            tokio::select! {
                _ = watchdog.run(served.as_mut()) => {}
                () = slot.evicted.cancelled() => {
                    metrics.overflow_evictions.inc();
                }
            }
        }
    }
    metrics.open_connections.dec();
    drop(lane);
}

/// The connection's next request head ([`first_head`]) after the bytes
/// already read, within the header-read timeout; `None` when it does not
/// come in time or shutdown begins first.
async fn next_head<IO>(
    io: &mut IO,
    unread: BytesMut,
    peer: SocketAddr,
    settings: &Settings,
    shutdown: &CancellationToken,
) -> Option<FirstHead>
where
    IO: tokio::io::AsyncRead + Unpin,
{
    let head = first_head::read(io, unread, settings.max_buf_size, HYPER_MAX_HEADERS);
    let head = tokio::select! {
        biased;
        () = shutdown.cancelled() => return None,
        head = tokio::time::timeout(settings.header_read_timeout, head) => head,
    };
    match head {
        Ok(Ok(head)) => Some(head),
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "connection failed before a request");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "request head not complete in time: closed");
            None
        }
    }
}

/// Ends a connection that outlives its idle or write timeout. One per
/// connection: its ticks run on across the requests it watches.
struct Watchdog<'a> {
    activity: Arc<Activity>,
    ticks: Interval,
    settings: &'a Settings,
    state: &'a AppState,
    peer: SocketAddr,
}

impl<'a> Watchdog<'a> {
    fn new(
        activity: Arc<Activity>,
        settings: &'a Settings,
        state: &'a AppState,
        peer: SocketAddr,
    ) -> Self {
        let check = settings.check_every();
        Watchdog {
            activity,
            ticks: interval_at(Instant::now() + check, check),
            settings,
            state,
            peer,
        }
    }

    /// Runs `work` to its end, or `None` when a timeout ends the connection.
    /// Pinned by the caller: a future passed by value would be kept twice in
    /// this one's state, for the connection's life.
    async fn run<F: Future>(&mut self, mut work: Pin<&mut F>) -> Option<F::Output> {
        let (idle, write) = (self.settings.idle_timeout, self.settings.write_timeout);
        let metrics = self.state.metrics();
        loop {
            tokio::select! {
                output = work.as_mut() => return Some(output),
                now = self.ticks.tick() => match self.activity.expired(now, idle, write) {
                    None => {}
                    Some(Expired::Idle) => {
                        metrics.idle_timeouts.inc();
                        tracing::debug!(peer = %self.peer, "connection idle for too long: closed");
                        return None;
                    }
                    Some(Expired::WriteStalled) => {
                        metrics.write_timeouts.inc();
                        tracing::debug!(peer = %self.peer, "client stopped reading: connection dropped");
                        return None;
                    }
                },
            }
        }
    }
}
