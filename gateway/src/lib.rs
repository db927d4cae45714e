//! Datashop logs gateway: backend services publish logs over HTTP, browsers
//! receive them live over one Server-Sent-Events stream per page.
//!
//! # Layout
//!
//! - [`run`] serves a bound listener until the shutdown future resolves;
//!   [`app`] builds the router so handlers can be tested with `oneshot`.
//! - [`server`] is the connection layer: the accept loop, the connection
//!   cap, hyper's HTTP/1.1 server with its timeouts, and a watchdog per
//!   connection (idle and write timeouts).
//! - [`head_limits`] refuses oversized request heads and [`fallback`] gives
//!   every error without a body (404, 405, …) the JSON error body;
//!   [`static_files`] serves `--static-dir`, confined to the folder.
//! - One module per endpoint: [`stream`] (`GET /api/logs/stream`),
//!   [`control`] (`POST /api/logs/stream/{connectionId}/channels`, with the
//!   registry of this node's open streams),
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
pub mod control;
pub mod cors;
pub mod error;
pub mod fallback;
pub mod frame;
pub mod head_limits;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod publish;
pub mod server;
pub mod state;
pub mod static_files;
pub mod stats;
pub mod stream;
pub mod subscriber;

use std::future::Future;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use config::Config;
pub use state::{AppState, ConfigError};

/// How often idle channels are looked for.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);

/// The router with every endpoint.
pub fn app(state: AppState) -> Router {
    // Validated when the state was built.
    let cors = cors::layer(&state.config().cors_origins).ok().flatten();
    let static_root = state
        .config()
        .static_dir
        .as_deref()
        .and_then(|dir| static_files::root(dir).ok());
    let limits = head_limits(state.config());
    let router = Router::new()
        .route(stream::STREAM_PATH, get(stream::stream))
        .route(
            "/api/logs/stream/{connection_id}/channels",
            post(control::change),
        )
        .route("/api/logs/publish", post(publish::publish))
        .route("/health", get(health::health))
        .route("/admin/logs/stats", get(stats::stats))
        .route("/metrics", get(stats::metrics))
        .route("/openapi.json", get(openapi::openapi))
        .with_state(state);
    // A built web app beside the API: one origin, no CORS needed.
    let router = match static_root {
        Some(root) => router.fallback(static_files::service(root)),
        None => router.fallback(fallback::not_found),
    };
    finish(router, limits, cors)
}

/// The router of connections beyond `--max-connections`: `/health` answers,
/// everything else is `503 too_many_connections`.
pub fn overflow_app(state: AppState) -> Router {
    let limits = head_limits(state.config());
    let max = server::Settings::from_config(state.config()).max_connections;
    let router = Router::new()
        .route("/health", get(health::health))
        .with_state(state)
        .fallback(move || async move {
            error::AppError::Unavailable {
                code: "too_many_connections",
                message: format!(
                    "the gateway serves its maximum of {max} connections; retry shortly"
                ),
            }
        });
    finish(router, limits, None)
}

fn head_limits(config: &Config) -> head_limits::HeadLimits {
    head_limits::HeadLimits {
        max_uri_bytes: usize::try_from(config.max_uri_bytes).unwrap_or(usize::MAX),
        max_header_bytes: usize::try_from(config.max_header_bytes).unwrap_or(usize::MAX),
    }
}

/// The layers every router gets: tracing, head limits, JSON error bodies and
/// CORS (outermost, so even refusals carry its headers).
fn finish(
    router: Router,
    limits: head_limits::HeadLimits,
    cors: Option<tower_http::cors::CorsLayer>,
) -> Router {
    let router = router
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(axum::middleware::from_fn(move |request, next| {
            head_limits::enforce(limits, request, next)
        }))
        .layer(axum::middleware::from_fn(fallback::json_error_bodies));
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
    if let Some(relay) = state.relay() {
        tokio::spawn(
            relay
                .clone()
                .run(control::owner_handler(state.clone()), token.clone()),
        );
    }
    let settings = server::Settings::from_config(state.config());
    server::serve(
        listener,
        app(state.clone()),
        overflow_app(state.clone()),
        settings,
        state,
    )
    .await;
    Ok(())
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
}
