//! `GET /api/logs/stream`: one Server-Sent-Events stream for many channels.
//!
//! The stream sends, in order: a `retry:` hint, `hello`, one `status` per
//! channel, the replay from history, then live logs and keep-alive comments
//! until the client leaves, the gateway shuts down (`close`, reason
//! `shutdown`) or the client reads too slowly (`close`, reason
//! `slow_consumer`). Frames are pre-encoded bytes shared with every other
//! stream; this module only moves them.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::BytesMut;
use futures_util::stream::{self, Stream, StreamExt};
use logs_sse_protocol::{
    Channel, ChannelStatus, CloseEvent, CloseReason, HelloEvent, ResumeFrom, StatusKind,
    StreamQuery, EVENT_CLOSE, EVENT_HELLO, EVENT_STATUS,
};
use serde::Deserialize;
use tokio::time::{interval_at, sleep_until, Instant, Interval, MissedTickBehavior, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::auth::subscriber::Principal;
use crate::control::registry::{Identity, StreamHandle};
use crate::control::secret;
use crate::error::{AppError, ErrorBody};
use crate::frame::{event_frame, retry_frame, Frame, KEEP_ALIVE};
use crate::limits::StreamPermit;
use crate::state::AppState;
use crate::subscriber::{Next, Subscriber, SubscriberQueue};

/// Where the stream is served (the connection layer serves it itself).
pub const STREAM_PATH: &str = "/api/logs/stream";

/// Most queued frames merged into one write.
const COALESCE_FRAMES: usize = 64;
/// Most bytes merged into one write. Each merge is a copy owned by this
/// stream; kept small so a stalled stream holds little (see `server`).
const COALESCE_BYTES: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
pub struct StreamParams {
    channels: Option<String>,
    since: Option<String>,
    access_token: Option<String>,
}

/// One Server-Sent-Events stream for many channels.
#[utoipa::path(get, path = "/api/logs/stream", tag = "logs",
    params(
        ("channels" = String, Query, description = "Comma-separated channel names", example = "logs:etl:ws123:wf456,logs:faas:ws123"),
        ("since" = Option<String>, Query, description = "Comma-separated `{channel}@{start}`, where `{start}` is a cursor (resume after it), `earliest` (all the history holds) or `last:{N}` (the channel's latest N logs, N from 1 to 4294967295, bounded by the per-channel history size `--history-size`), then live", example = "logs:etl:ws123:wf456@last:200,logs:etl:ws123@9f3a0c1d2e4b5a6f-1042"),
        ("access_token" = Option<String>, Query, description = "Subscriber JWT (only with --allow-query-token)"),
    ),
    responses(
        (status = 200, description = "Events: hello, status, log, ping, close", body = String, content_type = "text/event-stream"),
        (status = 400, description = "Malformed channels, cursors, `since` entries (`invalid_cursor`, `invalid_since`) or query", body = ErrorBody),
        (status = 401, description = "Missing or refused subscriber token", body = ErrorBody),
        (status = 403, description = "No requested channel is allowed", body = ErrorBody),
        (status = 429, description = "Too many open streams", body = ErrorBody),
        (status = 503, description = "Shutting down, or the history store (Redis) unreachable (`backend_unavailable`); see Retry-After", body = ErrorBody),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    params: Result<Query<StreamParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let ip = client_ip(
        &state,
        &headers,
        peer.map(|Extension(ConnectInfo(addr))| addr),
    );
    let result = open(state.clone(), &headers, ip, params).await;
    if result.is_err() {
        state.metrics().stream_rejections.inc();
    }
    result
}

/// The client's address: the TCP peer, or the last `X-Forwarded-For` entry
/// when the gateway is configured to trust its proxy.
fn client_ip(state: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    if state.config().trust_forwarded_for {
        let mut entries = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|ip| ip.trim().parse::<IpAddr>().ok());
        // The proxy appends the address it saw: the last entry.
        let forwarded = entries.next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|addr| addr.ip())
}

async fn open(
    state: AppState,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
    params: Result<Query<StreamParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(params) =
        params.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
    let config = state.config();
    let query = StreamQuery::parse(
        params.channels.as_deref().unwrap_or_default(),
        params.since.as_deref(),
        config.max_channels_per_stream as usize,
    )?;
    if state.shutdown_token().is_cancelled() {
        return Err(AppError::shutting_down());
    }
    let principal = state
        .subscribers()
        .authenticate(headers, params.access_token.as_deref())?;
    let (allowed, denied) = authorize(&principal, query.channels);
    if allowed.is_empty() {
        let reason = denied
            .first()
            .and_then(|s| s.reason.clone())
            .unwrap_or_default();
        return Err(AppError::Forbidden {
            code: "forbidden_channels",
            message: format!("no requested channel may be watched with this token ({reason})"),
        });
    }
    let permit = state
        .stream_limits()
        .acquire(principal.user.as_deref(), ip)?;

    let (id, connection_id) = state.next_connection_id();
    let (subscriber, queue) = Subscriber::new(
        id,
        config.send_queue_events as usize,
        config.send_queue_bytes,
    );
    let mut subscribed = state.backend().subscribe(&subscriber, &allowed).await?;
    let joined: Vec<ChannelStatus> = subscribed
        .statuses
        .iter()
        .filter(|s| s.status != StatusKind::Denied)
        .cloned()
        .collect();
    subscribed.statuses.extend(denied);
    let (control_secret, secret_digest) = secret::generate();
    let handle = Arc::new(StreamHandle::new(
        connection_id.clone(),
        secret_digest,
        Identity::of(&principal),
        subscriber,
        joined,
    ));
    let guard = StreamGuard::new(state.clone(), handle, permit);

    let mut prelude: Vec<Frame> =
        Vec::with_capacity(2 + subscribed.statuses.len() + subscribed.replay.len());
    prelude.push(retry_frame(config.retry_ms));
    prelude.push(event_frame(
        EVENT_HELLO,
        &HelloEvent {
            connection_id,
            epoch: state.backend().epoch(),
            heartbeat_ms: config
                .heartbeat()
                .as_millis()
                .try_into()
                .unwrap_or(u64::MAX),
            control_secret: Some(control_secret),
        },
    ));
    prelude.extend(
        subscribed
            .statuses
            .iter()
            .map(|s| event_frame(EVENT_STATUS, s)),
    );
    prelude.extend(subscribed.replay);
    tracing::debug!(connection = id, channels = allowed.len(), "stream opened");

    let heartbeat = config.heartbeat();
    let mut ticker = interval_at(Instant::now() + heartbeat, heartbeat);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let shutdown = state.shutdown_token().clone();
    let live = Live {
        queue,
        ticker,
        expiry: expiry(principal.expires_at),
        shutdown_wait: Box::pin(shutdown.clone().cancelled_owned()),
        shutdown,
        retry_ms: config.retry_ms,
        limits: (config.send_queue_events, config.send_queue_bytes),
        finished: false,
        _guard: guard,
    };
    let body = stream::iter(prelude).chain(live).map(Ok::<_, Infallible>);

    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// Splits the requested channels into those the principal may watch and
/// `denied` statuses for the others.
fn authorize(
    principal: &Principal,
    channels: Vec<(Channel, ResumeFrom)>,
) -> (Vec<(Channel, ResumeFrom)>, Vec<ChannelStatus>) {
    let mut allowed = Vec::with_capacity(channels.len());
    let mut denied = Vec::new();
    for (channel, resume) in channels {
        match principal.grants.denial(&channel) {
            None => allowed.push((channel, resume)),
            Some(reason) => denied.push(ChannelStatus {
                channel,
                status: StatusKind::Denied,
                cursor: None,
                replayed: 0,
                reason: Some(reason),
            }),
        }
    }
    (allowed, denied)
}

/// A timer that fires when the subscriber's token expires; none for
/// anonymous subscribers, so their streams hold no timer.
fn expiry(expires_at: Option<u64>) -> Option<Pin<Box<Sleep>>> {
    let exp = expires_at?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let remaining = Duration::from_secs(exp).saturating_sub(now);
    Some(Box::pin(sleep_until(Instant::now() + remaining)))
}

/// The live part of a stream, polled by hyper in the connection's task.
/// Its waits are kept across polls (nothing is re-created per frame), and
/// a frame is sent as soon as it is taken: the shutdown token is only
/// looked at before, and subscribed to when the stream is about to wait.
struct Live {
    queue: SubscriberQueue,
    ticker: Interval,
    expiry: Option<Pin<Box<Sleep>>>,
    shutdown: CancellationToken,
    shutdown_wait: Pin<Box<WaitForCancellationFutureOwned>>,
    retry_ms: u64,
    limits: (u32, usize),
    finished: bool,
    _guard: StreamGuard,
}

impl Stream for Live {
    type Item = Frame;

    /// In order of priority: shutdown, token expiry, queued frames (or the
    /// subscriber's close), the keep-alive.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let live = &mut *self;
        if live.finished {
            return Poll::Ready(None);
        }
        if live.shutdown.is_cancelled() {
            return Poll::Ready(Some(live.close(CloseReason::Shutdown)));
        }
        if let Some(expiry) = &mut live.expiry {
            if expiry.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Some(live.close(CloseReason::AuthExpired)));
            }
        }
        if let Poll::Ready(next) = live.queue.poll_next(cx) {
            let frame = match next {
                Next::Frame(frame) => live.coalesce(frame),
                Next::Closed(reason) => live.close(reason),
            };
            return Poll::Ready(Some(frame));
        }
        if live.shutdown_wait.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(live.close(CloseReason::Shutdown)));
        }
        if live.ticker.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Bytes::from_static(KEEP_ALIVE)));
        }
        Poll::Pending
    }
}

impl Live {
    /// Merges frames already waiting into one write: fewer syscalls when a
    /// channel is busy, no delay when it is not.
    fn coalesce(&mut self, first: Frame) -> Frame {
        let Some(second) = self.queue.try_next() else {
            return first;
        };
        let mut out = BytesMut::with_capacity(first.len() + second.len());
        out.extend_from_slice(&first);
        out.extend_from_slice(&second);
        for _ in 2..COALESCE_FRAMES {
            if out.len() >= COALESCE_BYTES {
                break;
            }
            match self.queue.try_next() {
                Some(frame) => out.extend_from_slice(&frame),
                None => break,
            }
        }
        out.freeze()
    }

    fn close(&mut self, reason: CloseReason) -> Frame {
        self.finished = true;
        let message = match reason {
            CloseReason::SlowConsumer => format!(
                "the stream was read too slowly: its send queue reached {} events or {} bytes; reconnect and resume from your cursors",
                self.limits.0, self.limits.1
            ),
            CloseReason::Shutdown => "the gateway is shutting down; reconnect and resume from your cursors".to_owned(),
            CloseReason::AuthExpired => {
                "your token expired; get a new one and reconnect, resuming from your cursors".to_owned()
            }
        };
        tracing::debug!(
            connection = self.queue.subscriber().id(),
            ?reason,
            "stream closed by the gateway"
        );
        event_frame(
            EVENT_CLOSE,
            &CloseEvent {
                reason,
                message,
                retry_ms: self.retry_ms,
            },
        )
    }
}

/// Registers the stream for control calls while it is open, then leaves
/// the channels it carries at the end (after any change) and updates the
/// gauges, however it ends (client gone, shutdown, slow consumer).
struct StreamGuard {
    state: AppState,
    handle: Arc<StreamHandle>,
    _permit: StreamPermit,
}

impl StreamGuard {
    fn new(state: AppState, handle: Arc<StreamHandle>, permit: StreamPermit) -> Self {
        let metrics = state.metrics();
        metrics.streams_opened.inc();
        metrics.open_streams.inc();
        metrics
            .stream_subscriptions
            .inc_by(handle.carried().channels.len() as i64);
        state.streams().insert(handle.clone());
        StreamGuard {
            state,
            handle,
            _permit: permit,
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let subscriber = &self.handle.subscriber;
        subscriber.close(CloseReason::Shutdown);
        self.state.streams().remove(&self.handle.connection_id);
        let channels = self.handle.end();
        self.state.backend().unsubscribe(subscriber.id(), &channels);
        let metrics = self.state.metrics();
        metrics.open_streams.dec();
        metrics.stream_subscriptions.dec_by(channels.len() as i64);
        tracing::debug!(connection = subscriber.id(), "stream ended");
    }
}
