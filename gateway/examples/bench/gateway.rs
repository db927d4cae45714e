//! The gateway under test as its own process: start it (optionally pinned
//! to a core), read its resident memory and CPU time from `/proc`, and kill
//! it when the bench ends.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

pub const TOKEN: &str = "bench-token-0001";

/// Kills the gateway when dropped, also on a panic.
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
}

impl Gateway {
    /// Starts `GATEWAY_BIN` (default: the release build), under
    /// `taskset -c $GATEWAY_CPU` when that is set, or under the command in
    /// `GATEWAY_WRAP` (e.g. a heap profiler), with the extra flags in
    /// `GATEWAY_ARGS`.
    pub fn start() -> Gateway {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let bin = std::env::var("GATEWAY_BIN")
            .map_or_else(|_| root.join("target/release/logs-sse-gateway"), Into::into);
        assert!(
            bin.exists(),
            "{} not found: run `cargo build --release -p logs-sse-gateway` first",
            bin.display()
        );
        let mut wrap: Vec<String> = std::env::var("GATEWAY_WRAP")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if let Ok(cpu) = std::env::var("GATEWAY_CPU") {
            wrap.splice(0..0, ["taskset".to_owned(), "-c".to_owned(), cpu]);
        }
        let mut command = match wrap.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = command
            .args([
                "--listen",
                "127.0.0.1:0",
                "--allow-anonymous",
                "--service-token",
            ])
            .arg(format!("bench={TOKEN}"))
            .args([
                "--publish-rate",
                "0",
                // Every stream comes from this host: lift the per-IP bound.
                "--max-streams-per-ip",
                "1000000",
            ])
            // More flags, e.g. another backend's.
            .args(
                std::env::var("GATEWAY_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .env("LOGS_SSE_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // A wrapper may print first: skip to the gateway's line.
        let addr = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .find_map(|line| {
                let line = line.ok()?;
                line.trim()
                    .strip_prefix("listening on http://")?
                    .parse()
                    .ok()
            })
            .expect("the gateway did not say where it listens");
        Gateway { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// User + system CPU time in seconds (resolution: the kernel's tick).
    pub fn cpu_secs(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name, which is in parentheses.
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / clock_ticks_per_sec()
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn clock_ticks_per_sec() -> f64 {
    // USER_HZ is 100 on every Linux architecture this runs on.
    100.0
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
