//! `GET /api/logs/stream`: one Server-Sent-Events stream for many channels.
//!
//! The stream sends, in order: a `retry:` hint, `hello`, one `status` per
//! channel, the replay from history, then live logs and keep-alive comments
//! until the client leaves, the gateway shuts down (`close`, reason
//! `shutdown`) or the client reads too slowly (`close`, reason
//! `slow_consumer`). Frames are pre-encoded bytes shared with every other
//! stream; this module only moves them.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::stream::{self, Stream, StreamExt};
use logs_sse_protocol::{
    Channel, CloseEvent, CloseReason, HelloEvent, StatusKind, StreamQuery, EVENT_CLOSE,
    EVENT_HELLO, EVENT_STATUS,
};
use serde::Deserialize;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::error::AppError;
use crate::frame::{event_frame, retry_frame, Frame, KEEP_ALIVE};
use crate::state::AppState;
use crate::subscriber::{Next, Subscriber, SubscriberQueue};

/// Most queued frames merged into one write.
const COALESCE_FRAMES: usize = 64;
/// Most bytes merged into one write.
const COALESCE_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
pub struct StreamParams {
    channels: Option<String>,
    since: Option<String>,
}

pub async fn stream(
    State(state): State<AppState>,
    params: Result<Query<StreamParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let result = open(state.clone(), params).await;
    if result.is_err() {
        state.metrics().stream_rejections.inc();
    }
    result
}

async fn open(
    state: AppState,
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

    let id = state.next_connection_id();
    let (subscriber, queue) = Subscriber::new(
        id,
        config.send_queue_events as usize,
        config.send_queue_bytes,
    );
    let subscribed = state
        .backend()
        .subscribe(&subscriber, &query.channels)
        .await;
    let joined: Vec<Channel> = subscribed
        .statuses
        .iter()
        .filter(|s| s.status != StatusKind::Denied)
        .map(|s| s.channel.clone())
        .collect();
    let guard = StreamGuard::new(state.clone(), subscriber, joined);

    let mut prelude: Vec<Frame> =
        Vec::with_capacity(2 + subscribed.statuses.len() + subscribed.replay.len());
    prelude.push(retry_frame(config.retry_ms));
    prelude.push(event_frame(
        EVENT_HELLO,
        &HelloEvent {
            connection_id: format!("c{id}"),
            epoch: state.backend().epoch(),
            heartbeat_ms: config
                .heartbeat()
                .as_millis()
                .try_into()
                .unwrap_or(u64::MAX),
        },
    ));
    prelude.extend(
        subscribed
            .statuses
            .iter()
            .map(|s| event_frame(EVENT_STATUS, s)),
    );
    prelude.extend(subscribed.replay);
    tracing::debug!(
        connection = id,
        channels = query.channels.len(),
        "stream opened"
    );

    let heartbeat = config.heartbeat();
    let mut ticker = interval_at(Instant::now() + heartbeat, heartbeat);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let live = Live {
        queue,
        ticker,
        shutdown: state.shutdown_token().clone(),
        retry_ms: config.retry_ms,
        limits: (config.send_queue_events, config.send_queue_bytes),
        finished: false,
        _guard: guard,
    };
    let body = stream::iter(prelude)
        .chain(live.into_stream())
        .map(Ok::<_, Infallible>);

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

/// The live part of a stream.
struct Live {
    queue: SubscriberQueue,
    ticker: Interval,
    shutdown: CancellationToken,
    retry_ms: u64,
    limits: (u32, usize),
    finished: bool,
    _guard: StreamGuard,
}

impl Live {
    fn into_stream(self) -> impl Stream<Item = Frame> + Send {
        stream::unfold(self, |mut live| async move {
            if live.finished {
                return None;
            }
            let frame = tokio::select! {
                biased;
                () = live.shutdown.cancelled() => live.close(CloseReason::Shutdown),
                next = live.queue.next() => match next {
                    Next::Frame(frame) => live.coalesce(frame),
                    Next::Closed(reason) => live.close(reason),
                },
                _ = live.ticker.tick() => Bytes::from_static(KEEP_ALIVE),
            };
            Some((frame, live))
        })
    }

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
            CloseReason::AuthExpired => "your credentials expired; renew them and reconnect".to_owned(),
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

/// Leaves the channels and updates the gauges when a stream ends, however it
/// ends (client gone, shutdown, slow consumer).
struct StreamGuard {
    state: AppState,
    subscriber: Arc<Subscriber>,
    channels: Vec<Channel>,
}

impl StreamGuard {
    fn new(state: AppState, subscriber: Arc<Subscriber>, channels: Vec<Channel>) -> Self {
        let metrics = state.metrics();
        metrics.streams_opened.inc();
        metrics.open_streams.inc();
        metrics.stream_subscriptions.inc_by(channels.len() as i64);
        StreamGuard {
            state,
            subscriber,
            channels,
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.subscriber.close(CloseReason::Shutdown);
        self.state
            .backend()
            .unsubscribe(self.subscriber.id(), &self.channels);
        let metrics = self.state.metrics();
        metrics.open_streams.dec();
        metrics
            .stream_subscriptions
            .dec_by(self.channels.len() as i64);
        tracing::debug!(connection = self.subscriber.id(), "stream ended");
    }
}
