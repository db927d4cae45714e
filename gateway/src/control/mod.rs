//! `POST /api/logs/stream/{connectionId}/channels`: change the channels of
//! an open stream without reopening it.
//!
//! The caller proves it may change the stream twice: the stream's secret
//! (sent once, in `hello`; header `X-Stream-Secret`) and the identity that
//! opened it (the same JWT subject, or anonymous for an anonymous stream).
//! Both failures answer the same 403, so neither is an oracle for the
//! other. Added channels get the same per-channel decision as on open and
//! count toward `--max-channels-per-stream` (the set after the change).
//! Additions go through the router's live join ([`crate::backend`]), whose
//! replay leaves out what the stream's channels, removed ones included,
//! already brought; removals follow. The answer comes once the change is in
//! effect on the stream.
//!
//! A stream held by another node (the Redis backend; the connection id
//! names its node) is changed there: the call is authenticated here and
//! forwarded with the caller's identity and grants over [`relay`]; the
//! owner checks the secret and the identity and answers.
//!
//! [`registry`] finds the stream; [`secret`] makes and checks secrets;
//! [`request`] parses and bounds the body; [`apply`] checks and applies a
//! change here; [`forward`] sends one to, or serves one from, another node.

pub mod apply;
pub mod forward;
pub mod registry;
pub mod relay;
pub mod request;
pub mod secret;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use self::apply::{authorize_and_apply, ChangeResponse};
use self::forward::{forward, known_code, reply_response};
use self::registry::Identity;
use self::relay::Reply;
use self::request::{ChangeRequest, ControlBody};
use crate::error::{AppError, ErrorBody};
use crate::state::AppState;

pub use self::forward::owner_handler;

/// The header that carries the stream's secret.
pub const SECRET_HEADER: &str = "x-stream-secret";

/// Change the channels of an open stream.
#[utoipa::path(post, path = "/api/logs/stream/{connectionId}/channels", tag = "logs",
    params(
        ("connectionId" = String, Path, description = "The stream's `connectionId` from its `hello` event"),
        ("X-Stream-Secret" = String, Header, description = "The stream's `controlSecret` from its `hello` event"),
    ),
    request_body(content = ControlBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The change is in effect on the stream: each added channel's status, replay and live logs follow on it", body = ChangeResponse),
        (status = 400, description = "Malformed body (`invalid_body`), channel (`invalid_channel`), `since` (`invalid_since`, `invalid_cursor`), or the stream would exceed --max-channels-per-stream (`too_many_channels`)", body = ErrorBody),
        (status = 401, description = "Missing or refused subscriber token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 403, description = "Wrong or missing secret, or not the stream's subscriber (`stream_forbidden`); no added channel allowed and nothing to remove (`forbidden_channels`)", body = ErrorBody),
        (status = 404, description = "No such open stream (`unknown_stream`): reconnect", body = ErrorBody),
        (status = 408, description = "The body did not arrive within --body-timeout-secs, or paused longer than --body-idle-timeout-secs", body = ErrorBody),
        (status = 413, description = "Body larger than --max-body-bytes", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Shutting down, the history store unreachable (`backend_unavailable`) or the stream's node did not answer (`stream_unreachable`); see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn change(
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (outcome, response) = match handle(&state, &connection_id, &headers, body).await {
        Ok(Answer::Local(answer)) => ("ok", Json(answer).into_response()),
        Ok(Answer::Forwarded(reply)) => (known_code(&reply), reply_response(reply)),
        Err(error) => (error.code(), error.into_response()),
    };
    state.metrics().record_control(outcome);
    response
}

/// A change applied here, or the answer of the node holding the stream.
enum Answer {
    Local(ChangeResponse),
    Forwarded(Reply),
}

async fn handle(
    state: &AppState,
    connection_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Answer, AppError> {
    let config = state.config();
    require_json(headers)?;
    let limit = config.max_body_bytes;
    if crate::publish::content_length(headers).is_some_and(|len| len > limit) {
        return Err(AppError::PayloadTooLarge { limit });
    }
    let bytes = crate::publish::read_body(
        body,
        limit,
        config.body_timeout(),
        config.body_idle_timeout(),
    )
    .await?;
    let change = ChangeRequest::parse(&bytes, config.max_channels_per_stream as usize)?;
    if state.shutdown_token().is_cancelled() {
        return Err(AppError::shutting_down());
    }
    // Tokens in the URL are not accepted here: the query is ignored.
    let principal = state.subscribers().authenticate(headers, None)?;
    let presented = headers
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match state.streams().get(connection_id) {
        Some(handle) => {
            let identity = Identity::of(&principal);
            authorize_and_apply(
                state,
                &handle,
                presented,
                &identity,
                &principal.grants,
                change,
            )
            .await
            .map(Answer::Local)
        }
        None => forward(state, connection_id, presented, &principal, change)
            .await
            .map(Answer::Forwarded),
    }
}

fn require_json(headers: &HeaderMap) -> Result<(), AppError> {
    let text = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?"))
        .unwrap_or_default();
    let essence = text.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(AppError::status_with(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "Content-Type must be application/json, got {:?}",
            text.chars().take(100).collect::<String>()
        ),
    ))
}
