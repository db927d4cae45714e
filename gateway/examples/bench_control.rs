//! Latency of a channel change, gateway side: from sending
//! `POST /api/logs/stream/{id}/channels` to reading the first replayed log
//! of the added channel on the stream, over a few hundred changes, on the
//! memory backend and across two nodes on Redis (the stream on one node,
//! the changes sent to the other, so each is forwarded).
//!
//! ```text
//! cargo run --release -p logs-sse-gateway --example bench_control -- [changes]
//! ```
//!
//! Each change adds one of 20 resource channels with `since: last:1` and
//! removes the one added before, so the stream carries two channels at a
//! time; every channel has 20 logs of history. The gateways run in this
//! process on loopback ports; Redis is a local `redis-server`.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use logs_sse_gateway::Config;
use serde_json::{json, Value};

const TOKEN: &str = "bench-token-0001";
const CHANNELS: usize = 20;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_redis() -> (Proc, u16) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    for _ in 0..200 {
        let pong = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "PING"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
            .unwrap_or(false);
        if pong {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (Proc(child), port)
}

async fn start_gateway(redis_port: Option<u16>) -> String {
    let mut args = vec![
        "logs-sse-gateway".to_owned(),
        "--allow-anonymous".into(),
        "--service-token".into(),
        format!("bench={TOKEN}"),
        "--publish-rate".into(),
        "0".into(),
    ];
    if let Some(port) = redis_port {
        args.push("--redis-url".into());
        args.push(format!("redis://127.0.0.1:{port}/"));
    }
    let config = <Config as clap::Parser>::parse_from(args);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        logs_sse_gateway::run(listener, config, std::future::pending())
            .await
            .unwrap();
    });
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    base
}

fn channel(i: usize) -> String {
    format!("logs:bench:ws1:r{i}")
}

async fn run(label: &str, stream_node: &str, control_node: &str, changes: usize) {
    let http = reqwest::Client::new();
    let history: Vec<Value> = (0..CHANNELS)
        .flat_map(|i| {
            (0..20).map(move |n| json!({"service": "bench", "workspace_id": "ws1", "resource_id": format!("r{i}"), "logData": {"n": n}}))
        })
        .collect();
    let published = http
        .post(format!("{stream_node}/api/logs/publish"))
        .bearer_auth(TOKEN)
        .json(&history)
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 202);
    let response = http
        .get(format!(
            "{stream_node}/api/logs/stream?channels=logs:bench:ws1:anchor"
        ))
        .send()
        .await
        .unwrap();
    let mut events = response.bytes_stream().eventsource();
    let hello = events.next().await.unwrap().unwrap();
    let hello: Value = serde_json::from_str(&hello.data).unwrap();
    let id = hello["connectionId"].as_str().unwrap().to_owned();
    let secret = hello["controlSecret"].as_str().unwrap().to_owned();
    let url = format!("{control_node}/api/logs/stream/{id}/channels");
    let mut to_first_log = Vec::with_capacity(changes);
    let mut to_answer = Vec::with_capacity(changes);
    let mut previous: Option<String> = None;
    for n in 0..changes {
        let added = channel(n % CHANNELS);
        let mut body = json!({"add": [{"channel": added, "since": "last:1"}]});
        if let Some(previous) = previous.replace(added.clone()) {
            body["remove"] = json!([previous]);
        }
        let started = Instant::now();
        let answer = http
            .post(&url)
            .header("x-stream-secret", &secret)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
        to_answer.push(started.elapsed());
        loop {
            let event = events.next().await.unwrap().unwrap();
            if event.event == "log" && event.data.contains(&format!("\"channel\":\"{added}\"")) {
                break;
            }
        }
        to_first_log.push(started.elapsed());
    }
    println!(
        "{label}: {changes} changes; sent -> first replayed log: {}; sent -> answer: {}",
        summary(&mut to_first_log),
        summary(&mut to_answer)
    );
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(*samples.last().unwrap())
    )
}

#[tokio::main]
async fn main() {
    let changes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500);
    let memory = start_gateway(None).await;
    run("memory", &memory, &memory, changes).await;
    let (_redis, port) = start_redis();
    let (a, b) = (
        start_gateway(Some(port)).await,
        start_gateway(Some(port)).await,
    );
    // Give both relays time to subscribe.
    tokio::time::sleep(Duration::from_millis(300)).await;
    run("redis, same node", &a, &a, changes).await;
    run("redis, forwarded to the stream's node", &a, &b, changes).await;
}
