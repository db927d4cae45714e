//! `POST /api/logs/publish`: authenticate the service, parse the body, route
//! each log, and say exactly what was accepted and what was rejected.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use logs_sse_protocol::{Channel, Cursor};
use serde::Serialize;

use crate::backend::{NewLog, PublishRejection};
use crate::error::{AppError, ErrorDetail};
use crate::state::AppState;
use logs_sse_protocol::publish::{parse_body, BodyError, BodyFormat, ItemError, ParseLimits};

/// One accepted log.
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub index: usize,
    pub channel: Channel,
    pub cursor: Cursor,
}

/// One rejected log.
#[derive(Debug, Serialize)]
pub struct Rejected {
    pub index: usize,
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

/// The answer to a publish request (202, or the items' error status when
/// nothing was accepted).
#[derive(Debug, Serialize)]
pub struct PublishResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail<'a>>,
    pub accepted: usize,
    pub rejected: usize,
    pub cursors: Vec<Accepted>,
    pub errors: Vec<Rejected>,
}

pub async fn publish(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let metrics = state.metrics();
    metrics.publish_requests.inc();
    let response = match handle(&state, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    if !response.status().is_success() {
        metrics.publish_rejected_requests.inc();
    }
    response
}

fn body_format(headers: &HeaderMap) -> Result<BodyFormat, AppError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(BodyFormat::Json);
    };
    let text = value.to_str().unwrap_or_default();
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(BodyFormat::Json),
        "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => {
            Ok(BodyFormat::NdJson)
        }
        _ => Err(AppError::UnsupportedMediaType(
            text.chars().take(100).collect(),
        )),
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Response, AppError> {
    let config = state.config();
    // Once shutdown has begun, open streams are being ended: a log accepted
    // now could reach no one. Refuse it so the publisher retries elsewhere
    // or after the restart.
    if state.shutdown_token().is_cancelled() {
        return Err(AppError::shutting_down());
    }
    let format = body_format(headers)?;
    // Authenticate before reading the body: strangers do not get to make the
    // gateway buffer a megabyte.
    let publisher = state.tokens().authenticate(headers)?;
    let limit = config.max_body_bytes;
    if content_length(headers).is_some_and(|len| len > limit) {
        return Err(AppError::PayloadTooLarge { limit });
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|error| {
        if std::error::Error::source(&error)
            .is_some_and(|e| e.is::<http_body_util::LengthLimitError>())
        {
            AppError::PayloadTooLarge { limit }
        } else {
            AppError::bad_request(
                "body_read_failed",
                format!("could not read the request body: {error}"),
            )
        }
    })?;
    let limits = ParseLimits {
        max_items: config.max_batch,
        max_log_bytes: config.max_log_bytes,
    };
    let items = parse_body(&bytes, format, limits).map_err(|error| match error {
        BodyError::TooManyItems { .. } => AppError::TooLarge {
            code: error.code(),
            message: error.to_string(),
        },
        _ => AppError::bad_request(error.code(), error.to_string()),
    })?;

    let ts = now_ms();
    let mut errors = Vec::new();
    let mut routed: Vec<(usize, NewLog)> = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let checked = item.and_then(|log| {
            if publisher.may_publish(log.channel.service()) {
                Ok(log)
            } else {
                Err(ItemError {
                    status: 403,
                    code: "forbidden_service",
                    message: format!(
                        "this token may publish for {:?}, not for {:?}",
                        publisher.services(),
                        log.channel.service()
                    ),
                })
            }
        });
        match checked {
            Ok(log) => routed.push((
                index,
                NewLog {
                    channel: log.channel,
                    log_data: log.log_data,
                    ts,
                },
            )),
            Err(e) => errors.push(Rejected {
                index,
                status: e.status,
                code: e.code,
                message: e.message,
            }),
        }
    }

    // Rate limits apply per service to what would be published; a refused
    // request publishes nothing, so the publisher can simply retry it.
    let mut per_service: Vec<(&str, usize)> = Vec::new();
    for (_, log) in &routed {
        let service = log.channel.service();
        match per_service.iter_mut().find(|(s, _)| *s == service) {
            Some((_, n)) => *n += 1,
            None => per_service.push((service, 1)),
        }
    }
    for (service, count) in per_service {
        state.publish_limiter().check(service, count)?;
    }

    let (indices, logs): (Vec<usize>, Vec<NewLog>) = routed.into_iter().unzip();
    let channels: Vec<Channel> = logs.iter().map(|l| l.channel.clone()).collect();
    let results = state.backend().publish(logs).await;
    let mut cursors = Vec::with_capacity(results.len());
    for ((index, channel), result) in indices.into_iter().zip(channels).zip(results) {
        match result {
            Ok(cursor) => cursors.push(Accepted {
                index,
                channel,
                cursor,
            }),
            Err(rejection @ PublishRejection::ChannelLimit { .. }) => errors.push(Rejected {
                index,
                status: 503,
                code: "channel_limit",
                message: rejection.to_string(),
            }),
        }
    }
    errors.sort_by_key(|e| e.index);
    let metrics = state.metrics();
    metrics.logs_published.inc_by(cursors.len() as u64);
    metrics.logs_rejected.inc_by(errors.len() as u64);
    Ok(respond(cursors, errors))
}

fn respond(cursors: Vec<Accepted>, errors: Vec<Rejected>) -> Response {
    if !cursors.is_empty() {
        let body = PublishResponse {
            error: None,
            accepted: cursors.len(),
            rejected: errors.len(),
            cursors,
            errors,
        };
        return (StatusCode::ACCEPTED, Json(body)).into_response();
    }
    // Nothing accepted: answer with the items' status when they agree.
    let status = match errors.first() {
        Some(first) if errors.iter().all(|e| e.status == first.status) => first.status,
        _ => 400,
    };
    let (code, message) = match errors.as_slice() {
        [only] => (only.code, only.message.clone()),
        _ => (
            "all_rejected",
            format!("all {} logs were rejected; see errors", errors.len()),
        ),
    };
    let body = PublishResponse {
        error: Some(ErrorDetail {
            code,
            message: &message,
        }),
        accepted: 0,
        rejected: errors.len(),
        cursors,
        errors,
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(body)).into_response()
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
