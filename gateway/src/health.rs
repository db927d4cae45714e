//! `GET /health`: liveness and readiness for load balancers and
//! orchestrators. Answers 200 while serving and 503 once shutting down, so a
//! balancer stops routing new streams here before they are ended.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let ready = !state.shutdown_token().is_cancelled();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ok" } else { "shutting_down" },
            "live": true,
            "ready": ready,
            "backend": state.backend().name(),
            "version": env!("CARGO_PKG_VERSION"),
            "uptimeSecs": state.started().elapsed().as_secs(),
        })),
    )
}
