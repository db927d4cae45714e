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
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use crate::auth::require_admin;
use crate::error::AppError;
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

pub async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, AppError> {
    require_admin(&headers, state.admin_digest())?;
    let store = state.backend().stats();
    let m = state.metrics();
    let [published, delivered, requests] = state.rates().per_sec();
    let truncated = store.subscriptions.len() > LISTED_CHANNELS;
    let subscriptions: Map<String, Value> = store
        .subscriptions
        .into_iter()
        .take(LISTED_CHANNELS)
        .map(|(channel, n)| (channel, json!(n)))
        .collect();
    let config = state.config();
    Ok(Json(json!({
        "uptimeSecs": state.started().elapsed().as_secs(),
        "backend": state.backend().name(),
        "epoch": state.backend().epoch().to_string(),
        "connections": m.open_streams.get(),
        "streamSubscriptions": m.stream_subscriptions.get(),
        "channels": store.channels,
        "subscriptions": subscriptions,
        "subscriptionsTruncated": truncated,
        "streamsOpened": m.streams_opened.get(),
        "streamRejections": m.stream_rejections.get(),
        "publishRequests": m.publish_requests.get(),
        "publishRejectedRequests": m.publish_rejected_requests.get(),
        "logsPublished": m.logs_published.get(),
        "logsRejected": m.logs_rejected.get(),
        "deliveries": m.deliveries.get(),
        "slowConsumerDisconnects": m.slow_consumer_disconnects.get(),
        "queuedBytes": store.queued_bytes,
        "rates": {
            "windowSecs": RATE_WINDOW.as_secs(),
            "logsPublishedPerSec": round(published),
            "deliveriesPerSec": round(delivered),
            "publishRequestsPerSec": round(requests),
        },
        "history": {
            "entries": store.history_entries,
            "bytes": store.history_bytes,
            "maxBytes": config.history_max_bytes,
            "perChannel": config.history_size,
        },
    })))
}

pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if !state.config().public_metrics {
        require_admin(&headers, state.admin_digest())?;
    }
    let store = state.backend().stats();
    let m = state.metrics();
    m.set_store_gauges(
        store.channels,
        store.history_entries,
        store.history_bytes,
        store.queued_bytes,
    );
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
