//! Benchmark of the real gateway binary, one scenario per run:
//!
//! ```text
//! cargo build --release -p logs-sse-gateway --bin logs-sse-gateway --example bench
//! target/release/examples/bench idle     [streams=10000] [channels=1000]
//! target/release/examples/bench fanout   [streams=2000] [channels=100] [logs_per_s=2000] [secs=10]
//! target/release/examples/bench firehose [streams=20] [secs=5]
//! target/release/examples/bench ingest   [subscribers=0] [secs=5]
//! ```
//!
//! `BENCH_KEYED=1` gives every publish request its own `Idempotency-Key`,
//! as the SDKs do.
//!
//! `scripts/bench.sh` runs every scenario several times, pinned, and prints
//! the table of BENCHMARKS.md. Each run prints a `RESULT` line of
//! `key=value` figures. The gateway runs as its own process (`GATEWAY_BIN`,
//! pinned with `GATEWAY_CPU`): its memory and CPU time are read from
//! `/proc`; the streams and publishers are this process, over loopback.

#![allow(clippy::unwrap_used)]

mod gateway;
mod readers;
mod sse;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use gateway::{Gateway, TOKEN};
use readers::Readers;

/// Streams per loopback source address (each has ~28,000 ephemeral ports,
/// and closed ones linger in TIME_WAIT for a minute).
const STREAMS_PER_SOURCE: usize = 4_000;
/// Streams being opened at once.
const OPENING: usize = 256;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map(|a| a.parse().unwrap_or_else(|_| panic!("argument {n}: {a:?}")))
        .unwrap_or(default)
}

/// The source address of stream `i`: each run uses its own 127.N.0.0/24
/// (N from the process id), so ports a previous run left in TIME_WAIT do
/// not run out.
fn source(i: usize) -> IpAddr {
    let run = 1 + (std::process::id() % 250) as u8;
    IpAddr::V4(Ipv4Addr::new(
        127,
        run,
        0,
        1 + (i / STREAMS_PER_SOURCE) as u8,
    ))
}

/// The resource channel of stream or log `i` among `channels`.
fn channel(i: usize, channels: usize) -> (usize, String) {
    let c = i % channels;
    (c, format!("logs:bench:ws{}:wf{c}", c % 50))
}

async fn open_all(gw: &Gateway, streams: usize, channels: usize) -> Vec<sse::Stream> {
    let addr = gw.addr;
    futures_util::stream::iter(0..streams)
        .map(|i| async move {
            let (_, name) = channel(i, channels);
            sse::open(addr, source(i), &name)
                .await
                .unwrap_or_else(|e| panic!("stream {i}: {e}"))
        })
        .buffered(OPENING)
        .collect()
        .await
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64
}

#[tokio::main]
async fn main() {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    let gw = Gateway::start();
    // Warm the allocator and code paths before measuring anything.
    drop(open_all(&gw, 1, 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    match scenario.as_str() {
        "idle" => idle(&gw, arg(2, 10_000), arg(3, 1000)).await,
        "fanout" => fanout(&gw, arg(2, 2000), arg(3, 100), arg(4, 2000), arg(5, 10)).await,
        "firehose" => firehose(&gw, arg(2, 20), arg(3, 5)).await,
        "ingest" => ingest(&gw, arg(2, 0), arg(3, 5)).await,
        other => panic!("unknown scenario {other:?}: idle, fanout, firehose or ingest"),
    }
}

async fn idle(gw: &Gateway, streams: usize, channels: usize) {
    let before = gw.rss_kib();
    let opening = Instant::now();
    let open = open_all(gw, streams, channels).await;
    let opened_in = opening.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = gw.rss_kib();
    println!(
        "RESULT idle streams={streams} channels={channels} rss_before_kib={before} rss_after_kib={after} kib_per_stream={:.2} open_secs={opened_in:.2}",
        after.saturating_sub(before) as f64 / streams as f64
    );
    drop(open);
}

/// Reads `streams` on the reader thread, counting from now; latencies in
/// µs since `t0` if `sample`.
fn start_readers(streams: Vec<sse::Stream>, t0: Instant, sample: bool) -> Readers {
    let streams = streams.into_iter().map(sse::Stream::into_std).collect();
    let readers = Readers::start(
        streams,
        move |_| sample,
        move || t0.elapsed().as_micros() as u64,
    );
    readers.count(true);
    readers
}

/// CPU time (user + system) of this process, in seconds.
fn own_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

fn log_json(channel: usize, t: u64, seq: usize, message: &str) -> String {
    format!(
        r#"{{"service":"bench","workspace_id":"ws{}","workflow_id":"wf{channel}","logData":{{"level":"info","seq":{seq},"message":"{message}","t":{t}}}}}"#,
        channel % 50
    )
}

fn publisher() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

/// With `BENCH_KEYED=1` every publish carries its own `Idempotency-Key`,
/// as the SDKs send them.
static KEYED: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var("BENCH_KEYED").is_ok_and(|v| v == "1"));
static REQUESTS: AtomicU64 = AtomicU64::new(0);

async fn post(http: &reqwest::Client, url: &str, body: impl Into<reqwest::Body>) {
    let mut request = http
        .post(url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json");
    if *KEYED {
        let n = REQUESTS.fetch_add(1, Ordering::Relaxed);
        request = request.header(
            "idempotency-key",
            format!("bench-{}-{n}", std::process::id()),
        );
    }
    let r = request.body(body).send().await.unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
}

/// `streams` on `channels`, logs published round-robin over the channels at
/// `rate` per second, in batches every 10 ms.
async fn fanout(gw: &Gateway, streams: usize, channels: usize, rate: usize, secs: usize) {
    let open = open_all(gw, streams, channels).await;
    let t0 = Instant::now();
    let readers = start_readers(open, t0, true);
    let http = publisher();
    let url = format!("{}/api/logs/publish", gw.base_url());
    let per_tick = (rate / 100).max(1);
    let ticks = secs * 100;
    let message = "x".repeat(100);
    let cpu_before = gw.cpu_secs();
    let own_before = own_cpu_secs();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let mut inflight = Vec::with_capacity(ticks);
    let mut seq = 0;
    for _ in 0..ticks {
        ticker.tick().await;
        let t = t0.elapsed().as_micros() as u64;
        let items: Vec<String> = (0..per_tick)
            .map(|_| {
                seq += 1;
                log_json(seq % channels, t, seq, &message)
            })
            .collect();
        let body = format!("[{}]", items.join(","));
        let (http, url) = (http.clone(), url.clone());
        inflight.push(tokio::spawn(async move { post(&http, &url, body).await }));
    }
    for request in inflight {
        request.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let the last deliveries arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = gw.cpu_secs() - cpu_before;
    let wall = started.elapsed().as_secs_f64();
    let own = own_cpu_secs() - own_before;
    let r = readers.stop();
    let expected = (seq as u64) * (streams / channels) as u64;
    println!(
        "RESULT fanout streams={streams} channels={channels} logs={seq} deliveries={} expected={expected} deliveries_per_s={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} cpu_us_per_delivery={:.2} gateway_cpu_pct={:.0} bench_cpu_pct={:.0} reader_cpu_pct={:.0} cut={}",
        r.deliveries,
        r.deliveries as f64 / elapsed,
        percentile(&r.samples, 0.5) / 1000.0,
        percentile(&r.samples, 0.99) / 1000.0,
        percentile(&r.samples, 1.0) / 1000.0,
        cpu * 1e6 / r.deliveries.max(1) as f64,
        cpu / wall * 100.0,
        own / wall * 100.0,
        r.cpu_secs / wall * 100.0,
        r.cut,
    );
}

/// Publishes batches of `batch` logs from `publishers` concurrent
/// publishers for `secs`; returns the logs accepted.
async fn flood(
    gw: &Gateway,
    publishers: usize,
    secs: usize,
    body: impl Fn() -> (Bytes, u64) + Send + Sync + 'static,
) -> u64 {
    let url = format!("{}/api/logs/publish", gw.base_url());
    let done = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let body = Arc::new(body);
    let tasks: Vec<_> = (0..publishers)
        .map(|_| {
            let (http, url, done, sent, body) = (
                publisher(),
                url.clone(),
                done.clone(),
                sent.clone(),
                body.clone(),
            );
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    let (bytes, logs) = body();
                    post(&http, &url, bytes).await;
                    sent.fetch_add(logs, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs as u64)).await;
    done.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    sent.load(Ordering::Relaxed)
}

/// `streams` on one channel while 4 publishers send batches of 100 flat out.
async fn firehose(gw: &Gateway, streams: usize, secs: usize) {
    let open = open_all(gw, streams, 1).await;
    let t0 = Instant::now();
    let readers = start_readers(open, t0, true);
    let message = "x".repeat(100);
    let cpu_before = gw.cpu_secs();
    let started = Instant::now();
    let seq = AtomicU64::new(0);
    let logs = flood(gw, 4, secs, move || {
        let t = t0.elapsed().as_micros() as u64;
        let items: Vec<String> = (0..100)
            .map(|_| log_json(0, t, seq.fetch_add(1, Ordering::Relaxed) as usize, &message))
            .collect();
        (Bytes::from(format!("[{}]", items.join(","))), 100)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = gw.cpu_secs() - cpu_before;
    let elapsed = started.elapsed().as_secs_f64();
    let r = readers.stop();
    println!(
        "RESULT firehose streams={streams} logs={logs} logs_per_s={:.0} deliveries={} deliveries_per_s={:.0} p50_ms={:.2} p99_ms={:.2} cpu_us_per_delivery={:.2} cut={}",
        logs as f64 / secs as f64,
        r.deliveries,
        r.deliveries as f64 / elapsed,
        percentile(&r.samples, 0.5) / 1000.0,
        percentile(&r.samples, 0.99) / 1000.0,
        cpu * 1e6 / r.deliveries.max(1) as f64,
        r.cut,
    );
}

/// Batches of 500 logs of ~200 B spread over 100 channels, 2 publishers
/// flat out; `subscribers` streams, one channel each.
async fn ingest(gw: &Gateway, subscribers: usize, secs: usize) {
    const CHANNELS: usize = 100;
    const BATCH: usize = 500;
    let open = open_all(gw, subscribers, CHANNELS).await;
    let readers = start_readers(open, Instant::now(), false);
    let message = "x".repeat(90);
    let items: Vec<String> = (0..BATCH)
        .map(|i| log_json(i % CHANNELS, 0, i, &message))
        .collect();
    let body = Bytes::from(format!("[{}]", items.join(",")));
    let log_bytes = body.len() / BATCH;
    let cpu_before = gw.cpu_secs();
    let logs = flood(gw, 2, secs, move || (body.clone(), BATCH as u64)).await;
    let cpu = gw.cpu_secs() - cpu_before;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = readers.stop();
    println!(
        "RESULT ingest subscribers={subscribers} log_bytes={log_bytes} logs={logs} logs_per_s={:.0} logs_per_cpu_s={:.0} deliveries={} cut={}",
        logs as f64 / secs as f64,
        logs as f64 / cpu.max(0.01),
        r.deliveries,
        r.cut,
    );
}
