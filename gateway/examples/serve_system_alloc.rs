//! The gateway on the system allocator, for heap profilers that intercept
//! `malloc` (heaptrack, valgrind); the binary links jemalloc, which they do
//! not see. Same flags as the binary:
//!
//! ```text
//! cargo build --release -p logs-sse-gateway --example serve_system_alloc
//! GATEWAY_BIN=target/release/examples/serve_system_alloc GATEWAY_WRAP=heaptrack \
//!   target/release/examples/bench idle 2000 200
//! heaptrack_print --print-peaks heaptrack.serve_system_alloc.*.zst | less
//! ```

#![allow(clippy::unwrap_used)]

use std::io::Write;

use clap::Parser;
use logs_sse_gateway::config::Config;

#[tokio::main]
async fn main() {
    let config = Config::parse();
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    logs_sse_gateway::run(listener, config, shutdown)
        .await
        .unwrap();
}
