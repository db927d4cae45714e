//! Counters and gauges of the gateway, exported in Prometheus text format by
//! `GET /metrics` and summarised as JSON by `GET /admin/logs/stats`.
//!
//! The hot paths only touch atomics; gauges that describe the history store
//! are filled from the backend when scraped.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Every metric the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub publish_requests: Counter,
    pub publish_rejected_requests: Counter,
    pub logs_published: Counter,
    pub logs_rejected: Counter,
    pub logs_duplicate: Counter,
    pub deliveries: Counter,
    pub slow_consumer_disconnects: Counter,
    pub streams_opened: Counter,
    pub stream_rejections: Counter,
    pub open_streams: Gauge,
    pub open_connections: Gauge,
    pub connections_over_capacity: Counter,
    pub overflow_evictions: Counter,
    pub accept_errors: Counter,
    pub idle_timeouts: Counter,
    pub write_timeouts: Counter,
    pub stream_subscriptions: Gauge,
    pub channels: Gauge,
    pub history_entries: Gauge,
    pub history_bytes: Gauge,
    pub queued_bytes: Gauge,
    pub backend_resyncs: Counter,
    pub backend_repaired_logs: Counter,
    pub backend_lost_families: Counter,
    pub backend_rtt_micros: Gauge,
    pub backend_up: Gauge,
    /// Channel changes by outcome: `ok` or the error code answered.
    pub stream_control: Family<[(&'static str, &'static str); 1], Counter>,
    /// Channel changes forwarded to the stream's node, by outcome.
    pub stream_control_forwarded: Family<[(&'static str, &'static str); 1], Counter>,
    /// Round trip of forwarded channel changes, in seconds.
    pub stream_control_forward_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("logs_sse");
        let mut counter = |name: &str, help: &str| {
            let metric = Counter::default();
            registry.register(name, help, metric.clone());
            metric
        };
        let publish_requests = counter("publish_requests", "Publish HTTP requests received");
        let publish_rejected_requests = counter(
            "publish_rejected_requests",
            "Publish HTTP requests answered with an error",
        );
        let logs_published = counter("logs_published", "Logs accepted and routed");
        let logs_rejected = counter("logs_rejected", "Logs rejected in publish requests");
        let logs_duplicate = counter(
            "logs_duplicate",
            "Logs of retried publish requests (same Idempotency-Key) not stored again",
        );
        let deliveries = counter("deliveries", "Log events queued to streams");
        let slow_consumer_disconnects = counter(
            "slow_consumer_disconnects",
            "Streams closed because their send queue was full",
        );
        let streams_opened = counter("streams_opened", "Streams opened");
        let backend_resyncs = counter(
            "backend_resyncs",
            "Position checks of the watched families after the feed may have missed logs",
        );
        let backend_repaired_logs = counter(
            "backend_repaired_logs",
            "Logs the feed missed and the node fetched from history",
        );
        let backend_lost_families = counter(
            "backend_lost_families",
            "Families whose streams were cut to resume because history no longer covered a hole",
        );
        let stream_rejections = counter(
            "stream_rejections",
            "Stream requests answered with an error",
        );
        let connections_over_capacity = counter(
            "connections_over_capacity",
            "Connections beyond --max-connections served only /health",
        );
        let overflow_evictions = counter(
            "overflow_evictions",
            "Over-capacity connections dropped to make room for newer ones",
        );
        let accept_errors = counter(
            "accept_errors",
            "Failed accepts (e.g. out of file descriptors), each followed by a back-off",
        );
        let idle_timeouts = counter(
            "idle_timeouts",
            "Connections closed after --idle-timeout-secs without traffic",
        );
        let write_timeouts = counter(
            "write_timeouts",
            "Connections dropped because the client accepted no bytes for --write-timeout-secs",
        );
        let stream_control = Family::<[(&'static str, &'static str); 1], Counter>::default();
        registry.register(
            "stream_control",
            "Channel changes of open streams by outcome (ok or the error code)",
            stream_control.clone(),
        );
        let stream_control_forwarded =
            Family::<[(&'static str, &'static str); 1], Counter>::default();
        registry.register(
            "stream_control_forwarded",
            "Channel changes forwarded to the node holding the stream, by outcome",
            stream_control_forwarded.clone(),
        );
        // 0.25 ms to about 8 s.
        let stream_control_forward_seconds = Histogram::new(exponential_buckets(0.00025, 2.0, 16));
        registry.register(
            "stream_control_forward_seconds",
            "Round trip of channel changes forwarded to the node holding the stream",
            stream_control_forward_seconds.clone(),
        );
        let mut gauge = |name: &str, help: &str| {
            let metric = Gauge::default();
            registry.register(name, help, metric.clone());
            metric
        };
        Metrics {
            open_streams: gauge("open_streams", "Streams currently open"),
            open_connections: gauge("open_connections", "TCP connections currently served"),
            stream_subscriptions: gauge(
                "stream_subscriptions",
                "Channel subscriptions of open streams",
            ),
            channels: gauge("channels", "Channels tracked by the history store"),
            history_entries: gauge("history_entries", "Log entries held in history"),
            history_bytes: gauge("history_bytes", "Bytes of encoded frames held in history"),
            queued_bytes: gauge("queued_bytes", "Bytes waiting in stream send queues"),
            backend_rtt_micros: gauge(
                "backend_rtt_micros",
                "Round trip of the last position check to the shared store, in microseconds",
            ),
            backend_up: gauge(
                "backend_up",
                "1 while the history store and its feed are reachable",
            ),
            stream_control,
            stream_control_forwarded,
            stream_control_forward_seconds,
            backend_resyncs,
            backend_repaired_logs,
            backend_lost_families,
            registry,
            publish_requests,
            publish_rejected_requests,
            logs_published,
            logs_rejected,
            logs_duplicate,
            deliveries,
            slow_consumer_disconnects,
            streams_opened,
            stream_rejections,
            connections_over_capacity,
            overflow_evictions,
            accept_errors,
            idle_timeouts,
            write_timeouts,
        }
    }
}

impl Metrics {
    /// Renders the Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

fn to_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Metrics {
    /// Counts one channel change answered with `outcome`.
    pub fn record_control(&self, outcome: &'static str) {
        self.stream_control
            .get_or_create(&[("outcome", outcome)])
            .inc();
    }

    /// Copies a node-local history's figures into their gauges (a shared
    /// store, Redis, has none: they stay 0 on every node).
    pub fn set_history_gauges(&self, channels: usize, entries: usize, bytes: usize) {
        self.channels.set(to_i64(channels));
        self.history_entries.set(to_i64(entries));
        self.history_bytes.set(to_i64(bytes));
    }

    pub fn set_queued_bytes(&self, queued: usize) {
        self.queued_bytes.set(to_i64(queued));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prefixed_counters_and_gauges() {
        let m = Metrics::default();
        m.logs_published.inc_by(3);
        m.open_streams.set(2);
        let text = m.render();
        assert!(text.contains("logs_sse_logs_published_total 3"), "{text}");
        assert!(text.contains("logs_sse_open_streams 2"), "{text}");
        assert!(
            text.contains("# TYPE logs_sse_deliveries counter"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
