//! Datashop logs gateway: backend services publish logs over HTTP, browsers
//! receive them live over one Server-Sent-Events stream per page.
//!
//! # Layout
//!
//! - [`run`] serves a bound listener until the shutdown future resolves;
//!   [`app`] builds the router so handlers can be tested with `oneshot`.
//! - One module per endpoint: [`stream`] (`GET /api/logs/stream`),
//!   [`publish`] (`POST /api/logs/publish`; the body parser is
//!   `logs_sse_protocol::publish`), [`health`] (`GET /health`), [`stats`]
//!   (`GET /admin/logs/stats`, `GET /metrics`), [`openapi`] (`GET /openapi.json`).
//! - [`backend`] is the seam for history and fan-out: a node-local router
//!   over a store; the embedded [`backend::memory`] is the default,
//!   [`backend::redis`] is shared by several nodes (`--redis-url`).
//! - [`subscriber`] is one stream's bounded send queue; [`frame`] encodes SSE
//!   frames once; [`metrics`] holds the counters.
//! - [`auth`] checks service, subscriber and admin tokens and decides what
//!   a subscriber may see; [`limits`] caps streams and publish rates;
//!   [`cors`] the browser origins;
//!   [`config`] the flags; [`error`] the one error type and its JSON body;
//!   [`state`] ties them together.

pub mod auth;
pub mod backend;
pub mod config;
pub mod cors;
pub mod error;
pub mod frame;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod publish;
pub mod state;
pub mod stats;
pub mod stream;
pub mod subscriber;

use std::future::Future;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

pub use config::Config;
pub use state::{AppState, ConfigError};

/// How often idle channels are looked for.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);

/// The router with every endpoint.
pub fn app(state: AppState) -> Router {
    // Validated when the state was built.
    let cors = cors::layer(&state.config().cors_origins).ok().flatten();
    let static_dir = state.config().static_dir.clone();
    let router = Router::new()
        .route("/api/logs/stream", get(stream::stream))
        .route("/api/logs/publish", post(publish::publish))
        .route("/health", get(health::health))
        .route("/admin/logs/stats", get(stats::stats))
        .route("/metrics", get(stats::metrics))
        .route("/openapi.json", get(openapi::openapi))
        .with_state(state);
    // A built web app beside the API: one origin, no CORS needed.
    let router = match static_dir {
        Some(dir) => {
            let index = dir.join("index.html");
            router.fallback_service(ServeDir::new(dir).fallback(ServeFile::new(index)))
        }
        None => router,
    };
    let router = router.layer(TraceLayer::new_for_http().make_span_with(request_span));
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The tracing span of a request: method and path only. The query is left
/// out because it may carry a subscriber token (`access_token`).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
}

/// Serves `listener` until `shutdown` resolves, then ends every open stream
/// with a `close` event and waits for connections to finish.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let state = AppState::new(config)?;
    serve(listener, state, shutdown).await
}

/// Like [`run`], with a prepared state (another backend, shared metrics).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let token = state.shutdown_token().clone();
    tokio::spawn({
        let token = token.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: ending open streams");
            token.cancel();
        }
    });
    tokio::spawn(housekeeping(state.clone()));
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(token.cancelled_owned())
        .await
        .map_err(RunError::Serve)
}

/// Samples counters for rates every second and sweeps idle channels.
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = state.shutdown_token().cancelled() => return,
            now = tick.tick() => {
                state.rates().record(now, stats::totals(&state));
                if now.duration_since(last_sweep) >= MAINTENANCE_EVERY {
                    last_sweep = now;
                    state.backend().maintain(now);
                }
            }
        }
    }
}

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("server error: {0}")]
    Serve(std::io::Error),
}
