//! `GET /health`: liveness and readiness for load balancers and
//! orchestrators. Answers 200 while serving and 503 once shutting down, so a
//! balancer stops routing new streams here before they are ended.

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
    /// `ok`, or `shutting_down`.
    pub status: &'static str,
    /// The process answers.
    pub live: bool,
    /// New streams and publishes are accepted.
    pub ready: bool,
    /// History backend: `memory`.
    pub backend: &'static str,
    pub version: &'static str,
    pub uptime_secs: u64,
}

/// Liveness and readiness of the gateway.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "Serving", body = Health),
        (status = 503, description = "Shutting down: stop routing here", body = Health),
    ))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let ready = !state.shutdown_token().is_cancelled();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if ready { "ok" } else { "shutting_down" },
            live: true,
            ready,
            backend: state.backend().name(),
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: state.started().elapsed().as_secs(),
        }),
    )
}
