//! Benchmark of the real gateway binary: memory of idle streams, publish
//! throughput, fan-out throughput and publish-to-receive latency.
//!
//! ```text
//! cargo build --release -p logs-sse-gateway
//! cargo run --release -p logs-sse-gateway --example bench -- [idle_streams] [subscribers] [logs]
//! ```
//!
//! Defaults: 2000 idle streams, 100 subscribers, 20000 logs. The gateway runs
//! as its own process so its resident memory can be read from /proc; the
//! load comes from this process over loopback, on the same cores.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

const TOKEN: &str = "bench-token-0001";

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Kills the gateway when the bench ends, also on a panic.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_gateway() -> (Child, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = std::env::var("GATEWAY_BIN")
        .map_or_else(|_| root.join("target/release/logs-sse-gateway"), Into::into);
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --release -p logs-sse-gateway` first",
        bin.display()
    );
    let mut child = Command::new(bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--allow-anonymous",
            "--service-token",
        ])
        .arg(format!("bench={TOKEN}"))
        .args([
            "--max-channels-per-stream",
            "64",
            "--history-size",
            "1000",
            "--publish-rate",
            "0",
            // Every stream comes from this one address: lift the per-IP bound.
            "--max-streams-per-ip",
            "1000000",
        ])
        .env("LOGS_SSE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    (child, base)
}

/// Opens a stream and waits until its status events have arrived.
async fn open(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
) -> impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> {
    let response = http
        .get(format!("{base}/api/logs/stream?channels={channel}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "stream refused: {}",
        response.text().await.unwrap_or_default()
    );
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: status") {
        seen.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }
    body
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let (idle_streams, subscribers, logs) = (arg(1, 2000), arg(2, 100), arg(3, 20_000));
    let (child, base) = start_gateway();
    let pid = child.id();
    let _gateway = Gateway(child);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    println!("gateway {base} (pid {pid})");

    // Warm up allocator and code paths, then measure idle streams.
    drop(open(&http, &base, "logs:bench:warm:up").await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib(pid);
    let opening = Instant::now();
    let idle = futures_util::future::join_all((0..idle_streams).map(|i| {
        let (http, base) = (&http, &base);
        async move { open(http, base, &format!("logs:bench:ws{}:wf{i}", i % 50)).await }
    }))
    .await;
    println!(
        "opened {idle_streams} streams in {:.2}s",
        opening.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid);
    println!(
        "idle streams: {idle_streams} open, gateway RSS {before} KiB -> {after} KiB, {:.1} KiB per idle stream (connection, queue, subscription, channel)",
        (after.saturating_sub(before)) as f64 / idle_streams as f64
    );
    drop(idle);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Fan-out: every subscriber watches the same workflow.
    let channel = "logs:bench:ws0:hot";
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        let mut body = open(&http, &base, channel).await;
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            let mut count = 0usize;
            let mut carry: Vec<u8> = Vec::new();
            while count < logs {
                let Some(Ok(chunk)) = body.next().await else {
                    break;
                };
                // A frame may be split across chunks: keep the tail.
                carry.extend_from_slice(&chunk);
                count += count_logs(&carry);
                let keep = carry.len().min(MARKER.len() - 1);
                carry.drain(..carry.len() - keep);
            }
            received.fetch_add(count as u64, Ordering::Relaxed);
        }));
    }
    // One more subscriber parses every event to measure latency.
    let t0 = Instant::now();
    let mut latency_body = open(&http, &base, channel).await;
    let latency = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(logs);
        let mut buf = String::new();
        while samples.len() < logs {
            let Some(Ok(chunk)) = latency_body.next().await else {
                break;
            };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    if let Some(sent) = data
                        .split("\"t\":")
                        .nth(1)
                        .and_then(|t| t.split(['}', ',']).next())
                        .and_then(|t| t.parse::<u64>().ok())
                    {
                        let now = t0.elapsed().as_micros() as u64;
                        samples.push(now.saturating_sub(sent));
                    }
                }
            }
        }
        samples
    });

    let payload = "x".repeat(120);
    let started = Instant::now();
    let publishers = 4;
    let per_publisher = logs / publishers;
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let http = http.clone();
        let url = format!("{base}/api/logs/publish");
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            for batch in 0..per_publisher / 100 {
                let t = t0.elapsed().as_micros() as u64;
                let items: Vec<_> = (0..100)
                    .map(|i| serde_json::json!({"service": "bench", "workspace_id": "ws0", "workflow_id": "hot",
                        "logData": {"level": "info", "p": p, "i": batch * 100 + i, "message": payload, "t": t}}))
                    .collect();
                let r = http.post(&url).bearer_auth(TOKEN).json(&items).send().await.unwrap();
                assert_eq!(r.status(), 202);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let published_in = started.elapsed();
    let total = (per_publisher / 100 * 100 * publishers) as f64;
    for r in readers {
        if tokio::time::timeout(Duration::from_secs(60), r)
            .await
            .is_err()
        {
            println!("a subscriber did not receive every log within 60 s");
        }
    }
    let delivered_in = started.elapsed();
    let mut samples = tokio::time::timeout(Duration::from_secs(60), latency)
        .await
        .map(|r| r.unwrap())
        .unwrap_or_default();
    samples.sort_unstable();
    println!(
        "publish: {total} logs in batches of 100 from {publishers} publishers in {:.2}s = {:.0} logs/s",
        published_in.as_secs_f64(),
        total / published_in.as_secs_f64()
    );
    println!(
        "fan-out: {} subscribers received {} events in {:.2}s = {:.0} deliveries/s",
        subscribers + 1,
        received.load(Ordering::Relaxed) + samples.len() as u64,
        delivered_in.as_secs_f64(),
        (received.load(Ordering::Relaxed) + samples.len() as u64) as f64
            / delivered_in.as_secs_f64()
    );
    if !samples.is_empty() {
        println!(
            "latency publish-request-start -> received (batch of 100, under load): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&samples, 0.5) as f64 / 1000.0,
            percentile(&samples, 0.99) as f64 / 1000.0,
            *samples.last().unwrap() as f64 / 1000.0
        );
    }
    println!("gateway RSS after the run: {} KiB", rss_kib(pid));
}

const MARKER: &[u8] = b"event: log\n";

fn count_logs(bytes: &[u8]) -> usize {
    bytes.windows(MARKER.len()).filter(|w| *w == MARKER).count()
}
