//! `logs-sse-gateway`: parses configuration, binds, and runs until SIGINT or
//! SIGTERM. Everything else lives in the library; the binary also picks the
//! allocator (embedders of the library keep their own).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use logs_sse_gateway::config::{Config, LogFormat};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// jemalloc hands memory freed by cut connections back to the system within
/// seconds; with glibc's malloc the gateway's RSS stayed at its peak after
/// a crowd of stalled or hostile clients was gone (see BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    init_tracing(config.log_format);
    let listener = match TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "logs-sse-gateway: cannot listen on {}: {error}",
                config.listen
            );
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!("logs-sse-gateway: {error}");
            return ExitCode::FAILURE;
        }
    };
    if config.all_service_tokens().next().is_none() {
        tracing::warn!("no --service-token configured: every publish will be refused with 401");
    }
    if !config.allow_anonymous {
        tracing::warn!(
            "subscribers are not authenticated yet; pass --allow-anonymous to acknowledge this"
        );
    }
    // Scripts and tests read the bound port from this line.
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(%addr, history_size = config.history_size, "gateway started");
    match logs_sse_gateway::run(listener, config, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("gateway stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("logs-sse-gateway: {error}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_env("LOGS_SSE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
