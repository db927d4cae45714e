//! `GET /admin/logs/stats` (admin token) and `GET /metrics` (Prometheus).
//!
//! Rates are computed over a sliding window of once-a-second samples of the
//! counters ([`RateWindow`]); the sampler runs in [`crate::run`].

use std::collections::VecDeque;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::collections::BTreeMap;
use tokio::time::Instant;
use utoipa::ToSchema;

use crate::auth::require_admin;
use crate::error::{AppError, ErrorBody};
use crate::state::AppState;

/// Counter totals sampled for rates: publishes, deliveries, publish requests.
pub type Totals = [u64; 3];

/// Span the rates are averaged over.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Most channels listed by name in the stats.
const LISTED_CHANNELS: usize = 1000;

/// Recent samples of counter totals.
#[derive(Debug, Default)]
pub struct RateWindow {
    samples: VecDeque<(Instant, Totals)>,
}

impl RateWindow {
    pub fn record(&mut self, now: Instant, totals: Totals) {
        self.samples.push_back((now, totals));
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Per-second rates over the window (zero until two samples exist).
    pub fn per_sec(&self) -> [f64; 3] {
        let (Some((t0, first)), Some((t1, last))) = (self.samples.front(), self.samples.back())
        else {
            return [0.0; 3];
        };
        let secs = t1.saturating_duration_since(*t0).as_secs_f64();
        if secs <= 0.0 {
            return [0.0; 3];
        }
        std::array::from_fn(|i| last[i].saturating_sub(first[i]) as f64 / secs)
    }
}

/// Current counter totals for the rate sampler.
pub fn totals(state: &AppState) -> Totals {
    let m = state.metrics();
    [
        m.logs_published.get(),
        m.deliveries.get(),
        m.publish_requests.get(),
    ]
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Per-second rates over the last [`RATE_WINDOW`].
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rates {
    pub window_secs: u64,
    pub logs_published_per_sec: f64,
    pub deliveries_per_sec: f64,
    pub publish_requests_per_sec: f64,
}

/// What the history holds.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryStats {
    /// Entries this node holds; null on the Redis backend, whose history
    /// is shared by every node and not counted by any.
    pub entries: Option<usize>,
    /// Bytes of encoded frames this node holds; null on the Redis backend.
    pub bytes: Option<usize>,
    pub max_bytes: usize,
    pub per_channel: u32,
}

/// The shared store as this node sees it (zeros for the memory backend).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendStats {
    /// The store and its feed are reachable.
    pub ready: bool,
    /// Round trip of the last position check, in microseconds.
    pub rtt_micros: i64,
    /// Position checks after the feed may have missed logs.
    pub resyncs: u64,
    /// Logs the feed missed and were fetched from history.
    pub repaired_logs: u64,
    /// Families whose streams were cut because history no longer covered
    /// a hole (they resume and are told of the gap).
    pub lost_families: u64,
}

/// The gateway's figures.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// The node that answered (`--node-id`).
    pub node: String,
    pub uptime_secs: u64,
    /// `memory` or `redis`.
    pub backend: &'static str,
    pub backend_details: BackendStats,
    /// Epoch of the cursors issued (hex).
    pub epoch: String,
    /// Open streams.
    pub connections: i64,
    /// Channel subscriptions of open streams.
    pub stream_subscriptions: i64,
    /// Channels tracked by this node's history; null on the Redis backend.
    pub channels: Option<usize>,
    /// Open subscriptions per channel, largest first (at most 1000 listed).
    pub subscriptions: BTreeMap<String, usize>,
    pub subscriptions_truncated: bool,
    pub streams_opened: u64,
    pub stream_rejections: u64,
    pub publish_requests: u64,
    pub publish_rejected_requests: u64,
    pub logs_published: u64,
    pub logs_rejected: u64,
    pub deliveries: u64,
    pub slow_consumer_disconnects: u64,
    /// Bytes waiting in stream send queues.
    pub queued_bytes: usize,
    pub rates: Rates,
    pub history: HistoryStats,
}

/// Connections, channels, traffic totals and rates (admin token).
#[utoipa::path(get, path = "/admin/logs/stats", tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Figures", body = Stats),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Admin endpoints disabled", body = ErrorBody),
    ))]
pub async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Stats>, AppError> {
    require_admin(&headers, state.admin_digest())?;
    let store = state.backend().stats();
    let m = state.metrics();
    let [published, delivered, requests] = state.rates().per_sec();
    let truncated = store.subscriptions.len() > LISTED_CHANNELS;
    let subscriptions = store
        .subscriptions
        .into_iter()
        .take(LISTED_CHANNELS)
        .collect();
    let config = state.config();
    Ok(Json(Stats {
        node: state.node().to_owned(),
        uptime_secs: state.started().elapsed().as_secs(),
        backend: state.backend().name(),
        backend_details: BackendStats {
            ready: state.backend().ready(),
            rtt_micros: m.backend_rtt_micros.get(),
            resyncs: m.backend_resyncs.get(),
            repaired_logs: m.backend_repaired_logs.get(),
            lost_families: m.backend_lost_families.get(),
        },
        epoch: state.backend().epoch().to_string(),
        connections: m.open_streams.get(),
        stream_subscriptions: m.stream_subscriptions.get(),
        channels: store.history.map(|h| h.channels),
        subscriptions,
        subscriptions_truncated: truncated,
        streams_opened: m.streams_opened.get(),
        stream_rejections: m.stream_rejections.get(),
        publish_requests: m.publish_requests.get(),
        publish_rejected_requests: m.publish_rejected_requests.get(),
        logs_published: m.logs_published.get(),
        logs_rejected: m.logs_rejected.get(),
        deliveries: m.deliveries.get(),
        slow_consumer_disconnects: m.slow_consumer_disconnects.get(),
        queued_bytes: store.queued_bytes,
        rates: Rates {
            window_secs: RATE_WINDOW.as_secs(),
            logs_published_per_sec: round(published),
            deliveries_per_sec: round(delivered),
            publish_requests_per_sec: round(requests),
        },
        history: HistoryStats {
            entries: store.history.map(|h| h.entries),
            bytes: store.history.map(|h| h.bytes),
            max_bytes: config.history_max_bytes,
            per_channel: config.history_size,
        },
    }))
}

/// Counters and gauges in Prometheus/OpenMetrics text (admin token unless
/// `--public-metrics`).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text"),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Admin endpoints disabled", body = ErrorBody),
    ))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if !state.config().public_metrics {
        require_admin(&headers, state.admin_digest())?;
    }
    let store = state.backend().stats();
    let m = state.metrics();
    if let Some(h) = store.history {
        m.set_history_gauges(h.channels, h.entries, h.bytes);
    }
    m.set_queued_bytes(store.queued_bytes);
    let mut response = m.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rates_average_over_the_window() {
        let mut w = RateWindow::default();
        assert_eq!(w.per_sec(), [0.0; 3]);
        let start = Instant::now();
        for i in 0..=20u64 {
            w.record(start + Duration::from_secs(i), [i * 100, i * 300, i]);
        }
        assert_eq!(w.per_sec(), [100.0, 300.0, 1.0]);
        assert!(w.samples.len() <= 11);
    }
}
