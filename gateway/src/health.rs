//! `GET /health`: liveness and readiness for load balancers and
//! orchestrators. Answers 200 while serving and 503 once shutting down or
//! while the shared store (Redis) or its feed is unreachable, so a balancer
//! stops routing new streams here.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Liveness and readiness.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `ok`, `shutting_down` or `backend_unavailable`.
    pub status: &'static str,
    /// The process answers.
    pub live: bool,
    /// New streams and publishes are accepted.
    pub ready: bool,
    /// History backend: `memory` or `redis`.
    pub backend: &'static str,
    /// The node that answered (`--node-id`).
    pub node: String,
    pub version: &'static str,
    pub uptime_secs: u64,
}

/// Liveness and readiness of the gateway.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "Serving", body = Health),
        (status = 503, description = "Shutting down, or the shared store is unreachable: stop routing here", body = Health),
    ))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let stopping = state.shutdown_token().is_cancelled();
    let backend_ready = state.backend().ready();
    let ready = !stopping && backend_ready;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if stopping {
                "shutting_down"
            } else if !backend_ready {
                "backend_unavailable"
            } else {
                "ok"
            },
            live: true,
            ready,
            backend: state.backend().name(),
            node: state.node().to_owned(),
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: state.started().elapsed().as_secs(),
        }),
    )
}
