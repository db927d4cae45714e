//! Benchmark of the Redis backend against the memory backend in the same
//! run: publish-to-receive latency at a steady publish rate fanned out to
//! many streams, Redis commands per publish request, and CPU of the
//! gateways and of Redis.
//!
//! ```text
//! cargo build --release -p logs-sse-gateway
//! cargo run --release -p logs-sse-gateway --example bench_nodes -- [logs_per_sec] [streams] [secs]
//! ```
//!
//! Defaults: 2000 logs/s (a batch every 10 ms) over 20 resource channels of
//! one family, 2000 streams (100 per channel), 10 s per backend. Memory: one
//! gateway holds every stream. Redis, twice on a fresh redis-server: one
//! gateway holding every stream (the Redis hop alone), then two gateways
//! holding half the streams each; publishes go to the first. The streams
//! are raw sockets read by one thread over epoll (`bench/readers.rs`), and
//! every log's latency is recorded (publish body built to log read); the
//! bench's own CPU is printed beside the gateways'.
//!
//! CPU pinning: with `BENCH_SERVER_CPUS` set (a `taskset -c` list such as
//! `0`) the gateway nodes and redis-server run on those CPUs only; run the
//! bench itself (the publisher and the stream readers) under `taskset` on
//! the others, so load and servers do not compete for one core. Under
//! `chrt -f 1` every process of the run (servers included) is at real-time
//! priority, so other processes on the machine cannot hold them off their
//! cores (see BENCHMARKS.md for what that does to two nodes on one core):
//!
//! ```text
//! BENCH_SERVER_CPUS=0 chrt -f 1 taskset -c 1 target/release/examples/bench_nodes
//! ```

#![allow(clippy::unwrap_used)]

#[path = "bench/readers.rs"]
mod readers;
#[path = "bench/sse.rs"]
mod sse;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use readers::Readers;

const TOKEN: &str = "bench-token-0001";
const CHANNELS: usize = 20;

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Kills a child process when dropped, also on a panic.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU time (user + system) of a process, in seconds (100 ticks/s).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// `program`, under `taskset -c $BENCH_SERVER_CPUS` when that is set
/// (taskset execs it, so the child's PID is the server's).
fn server_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    match std::env::var("BENCH_SERVER_CPUS") {
        Ok(cpus) if !cpus.is_empty() => {
            let mut command = Command::new("taskset");
            command.args(["-c", &cpus]).arg(program);
            command
        }
        _ => Command::new(program),
    }
}

fn start_redis() -> (Proc, u16, std::path::PathBuf) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("logs-sse-bench-redis-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let child = server_command("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--dir",
            &dir.to_string_lossy(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    for _ in 0..200 {
        if redis_cli(port, &["PING"]).trim() == "PONG" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (Proc(child), port, dir)
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Calls per command from `INFO commandstats`.
fn command_calls(port: u16) -> Vec<(String, u64)> {
    redis_cli(port, &["INFO", "commandstats"])
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

fn start_gateway(redis_port: Option<u16>) -> (Proc, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = std::env::var("GATEWAY_BIN")
        .map_or_else(|_| root.join("target/release/logs-sse-gateway"), Into::into);
    assert!(bin.exists(), "{} not found: build it first", bin.display());
    let mut command = server_command(bin);
    command
        .args(["--listen", "127.0.0.1:0", "--allow-anonymous"])
        .arg("--service-token")
        .arg(format!("bench={TOKEN}"))
        .args(["--publish-rate", "0", "--max-streams-per-ip", "1000000"])
        .env("LOGS_SSE_LOG", "warn")
        .stdout(Stdio::piped());
    if let Some(port) = redis_port {
        command.args(["--redis-url", &format!("redis://127.0.0.1:{port}/")]);
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    (Proc(child), base)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Figures {
    p50: u64,
    p99: u64,
    max: u64,
    deliveries_per_sec: f64,
    requests: u64,
    publish_p50: u64,
    gateway_cpu: f64,
    bench_cpu: f64,
    reader_cpu: f64,
    cut: usize,
}

async fn run(bases: &[String], pids: &[u32], rate: u64, streams: u64, secs: u64) -> Figures {
    // Publishers keep their connections (as the SDKs do); requests that
    // overlap open more.
    let http = reqwest::Client::new();
    let mut open = Vec::new();
    for i in 0..streams {
        let base = &bases[i as usize % bases.len()];
        let addr = base.strip_prefix("http://").unwrap().parse().unwrap();
        let channel = format!("logs:bench:ws0:c{}", i as usize % CHANNELS);
        let stream = sse::open(addr, std::net::Ipv4Addr::LOCALHOST.into(), &channel)
            .await
            .unwrap();
        open.push(stream.into_std());
    }
    let readers = Readers::start(open, |_| true, micros_now);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_batch = (rate / 100).max(1);
    let pad = "x".repeat(100);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let publish = |n: u64| {
        let body: Vec<serde_json::Value> = (0..per_batch)
            .map(|k| {
                serde_json::json!({
                    "service": "bench", "workspace_id": "ws0",
                    "resource_id": format!("c{}", (n * per_batch + k) as usize % CHANNELS),
                    "logData": {"t": micros_now(), "pad": pad},
                })
            })
            .collect();
        let request = http
            .post(format!("{}/api/logs/publish", bases[0]))
            .bearer_auth(TOKEN)
            .json(&body);
        async move {
            let started = Instant::now();
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 202);
            started.elapsed().as_micros() as u64
        }
    };
    // Warm-up second, then the measured run.
    for n in 0..100 {
        tick.tick().await;
        publish(n).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Else the interval would make up for the ticks missed meanwhile with a
    // burst of 30 batches at once.
    tick.reset();
    readers.count(true);
    let cpu_before: f64 = pids.iter().map(|p| cpu_secs(*p)).sum();
    let own_before = cpu_secs(std::process::id());
    let started = Instant::now();
    let batches = secs * 100;
    let mut inflight = Vec::with_capacity(batches as usize);
    for n in 0..batches {
        tick.tick().await;
        // Each request is its own task, so it goes out at once and
        // requests overlap when one is slow, as independent publishers
        // would.
        inflight.push(tokio::spawn(publish(100 + n)));
    }
    let mut publish_times = Vec::with_capacity(inflight.len());
    for request in inflight {
        publish_times.push(request.await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after: f64 = pids.iter().map(|p| cpu_secs(*p)).sum();
    let own = cpu_secs(std::process::id()) - own_before;
    readers.count(false);
    let received = readers.stop();
    let sorted = received.samples;
    publish_times.sort_unstable();
    Figures {
        p50: percentile(&sorted, 0.5),
        p99: percentile(&sorted, 0.99),
        max: sorted.last().copied().unwrap_or(0),
        deliveries_per_sec: received.deliveries as f64 / elapsed,
        requests: batches,
        publish_p50: percentile(&publish_times, 0.5),
        gateway_cpu: (cpu_after - cpu_before) / elapsed * 100.0,
        bench_cpu: own / elapsed * 100.0,
        reader_cpu: received.cpu_secs / elapsed * 100.0,
        cut: received.cut,
    }
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name}: latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.0} deliveries/s; publish request p50 {:.2} ms; gateway CPU {:.0}% of one core; bench CPU {:.0}% (reader thread {:.0}%); {} streams cut",
        f.p50 as f64 / 1000.0,
        f.p99 as f64 / 1000.0,
        f.max as f64 / 1000.0,
        f.deliveries_per_sec,
        f.publish_p50 as f64 / 1000.0,
        f.gateway_cpu,
        f.bench_cpu,
        f.reader_cpu,
        f.cut,
    );
}

/// One run on `nodes` gateways over one fresh redis-server; prints the
/// figures and Redis's commands per publish request.
async fn redis_run(nodes: usize, rate: u64, streams: u64, secs: u64) {
    let (redis, port, dir) = start_redis();
    let gateways: Vec<(Proc, String)> = (0..nodes).map(|_| start_gateway(Some(port))).collect();
    let bases: Vec<String> = gateways.iter().map(|(_, b)| b.clone()).collect();
    let pids: Vec<u32> = gateways.iter().map(|(p, _)| p.0.id()).collect();
    let calls_before = command_calls(port);
    let redis_cpu_before = cpu_secs(redis.0.id());
    let started = Instant::now();
    let figures = run(&bases, &pids, rate, streams, secs).await;
    let redis_cpu =
        (cpu_secs(redis.0.id()) - redis_cpu_before) / started.elapsed().as_secs_f64() * 100.0;
    let plural = if nodes == 1 { "" } else { "s" };
    print(&format!("redis ({nodes} node{plural})"), &figures);
    let calls_after = command_calls(port);
    let mut per_command: Vec<(String, u64)> = calls_after
        .iter()
        .map(|(name, after)| {
            let before = calls_before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, c)| *c);
            (name.clone(), after - before)
        })
        .filter(|(_, calls)| *calls > 0)
        .collect();
    per_command.sort_by_key(|(_, calls)| std::cmp::Reverse(*calls));
    let requests = figures.requests + 100;
    let scripts: u64 = per_command
        .iter()
        .filter(|(n, _)| n.starts_with("eval"))
        .map(|(_, c)| c)
        .sum();
    // One read script per stream open; the rest are publish scripts.
    let scripts = scripts.saturating_sub(streams);
    println!(
        "  redis: {:.2} publish scripts per publish request ({} requests), Redis CPU {:.0}% of one core; commands during the run: {}",
        scripts as f64 / requests as f64,
        requests,
        redis_cpu,
        per_command
            .iter()
            .map(|(n, c)| format!("{n} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    drop(gateways);
    drop(redis);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::main]
async fn main() {
    let (rate, streams, secs) = (arg(1, 2000), arg(2, 2000), arg(3, 10));
    println!("{rate} logs/s over {CHANNELS} channels, {streams} streams, {secs} s per backend");
    match std::env::var("BENCH_SERVER_CPUS") {
        Ok(cpus) if !cpus.is_empty() => println!("gateways and redis-server pinned to CPUs {cpus}"),
        _ => println!("no CPU pinning (set BENCH_SERVER_CPUS)"),
    }

    let (memory, base) = start_gateway(None);
    let figures = run(&[base], &[memory.0.id()], rate, streams, secs).await;
    print("memory (1 node)", &figures);
    drop(memory);

    // One node measures the Redis hop alone; two add a second gateway
    // process on the same CPUs.
    redis_run(1, rate, streams, secs).await;
    redis_run(2, rate, streams, secs).await;
}
