//! `POST /api/logs/publish`: authenticate the service, parse the body, route
//! each log, and say exactly what was accepted and what was rejected.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::BytesMut;
use http_body_util::BodyExt;
use logs_sse_protocol::{Channel, Cursor};
use serde::Serialize;
use tokio::time::Instant;
use utoipa::ToSchema;

use crate::backend::{Appended, IdempotencyKey, NewLog};
use crate::error::{AppError, ErrorBody, ErrorDetail};
use crate::state::AppState;
use logs_sse_protocol::publish::{parse_body, BodyError, BodyFormat, ItemError, ParseLimits};

/// One accepted log.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Position of the log in the request.
    pub index: usize,
    /// The resource channel it was published to.
    #[schema(value_type = String, example = "logs:etl:ws123:wf456")]
    pub channel: Channel,
    #[schema(value_type = String, example = "9f3a0c1d2e4b5a6f-1042")]
    pub cursor: Cursor,
}

/// One rejected log.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rejected {
    pub index: usize,
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

/// The answer to a publish request (202, or the items' error status when
/// nothing was accepted).
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail<'a>>,
    pub accepted: usize,
    /// Accepted logs an earlier request with the same `Idempotency-Key`
    /// had stored (their cursors are the ones it got); not stored again.
    pub duplicates: usize,
    pub rejected: usize,
    pub cursors: Vec<Accepted>,
    pub errors: Vec<Rejected>,
}

/// Error answer of a publish request: the `error`, plus the per-log
/// accounting when the body could be split into logs (documentation only).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PublishError {
    error: ErrorDetail<'static>,
    accepted: Option<usize>,
    rejected: Option<usize>,
    cursors: Option<Vec<Accepted>>,
    errors: Option<Vec<Rejected>>,
}

/// One log as a publisher sends it (documentation of the request body).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PublishItem {
    #[schema(example = "etl", pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    service: String,
    #[schema(example = "workspace123", pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    workspace_id: String,
    /// Exactly one of `workflow_id`, `function_id` and `resource_id`.
    #[schema(example = "workflow456", pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    workflow_id: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    function_id: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    resource_id: Option<String>,
    /// Any JSON; delivered to subscribers untouched.
    #[schema(rename = "logData", value_type = Object)]
    log_data: serde_json::Value,
}

/// Publish one log, a batch (JSON array) or NDJSON (service token).
#[utoipa::path(post, path = "/api/logs/publish", tag = "logs",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "1 to 128 visible ASCII characters naming this request: a retry with the same key and the same body stores nothing again (per family, for --idempotency-ttl-secs) and is answered with the first request's cursors; the same key with another body gets 422 `idempotency_key_reused` for those logs")),
    request_body(description = "One log object, a JSON array of them, or NDJSON (application/x-ndjson)", content(
        (Vec<PublishItem> = "application/json"),
        (String = "application/x-ndjson"),
    )),
    responses(
        (status = 202, description = "At least one log accepted; `errors` lists the rejected ones", body = PublishResponse),
        (status = 400, description = "Invalid body, every log invalid, or an invalid Idempotency-Key (`invalid_idempotency_key`)", body = PublishError),
        (status = 401, description = "Missing or unknown service token", body = ErrorBody),
        (status = 403, description = "The token may not publish for the logs' service", body = PublishError),
        (status = 413, description = "Body, batch or log too large", body = PublishError),
        (status = 408, description = "The body did not arrive within --body-timeout-secs, or paused longer than --body-idle-timeout-secs", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Type", body = ErrorBody),
        (status = 422, description = "Every log's family already had this Idempotency-Key from a request with another body (`idempotency_key_reused`)", body = PublishError),
        (status = 429, description = "The service's publish rate is exceeded; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Shutting down, channel limit reached, or the history store (Redis) unreachable (`backend_unavailable`); see Retry-After", body = PublishError,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
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
    let bytes = read_body(
        body,
        limit,
        config.body_timeout(),
        config.body_idle_timeout(),
    )
    .await?;
    let key = idempotency_key(headers, &bytes)?;
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
    let results = state.backend().publish(logs, key).await?;
    let mut cursors = Vec::with_capacity(results.len());
    let mut duplicates = 0;
    for ((index, channel), result) in indices.into_iter().zip(channels).zip(results) {
        match result {
            Ok(appended) => {
                duplicates += usize::from(matches!(appended, Appended::Duplicate(_)));
                cursors.push(Accepted {
                    index,
                    channel,
                    cursor: appended.cursor(),
                });
            }
            Err(rejection) => errors.push(Rejected {
                index,
                status: rejection.status(),
                code: rejection.code(),
                message: rejection.to_string(),
            }),
        }
    }
    errors.sort_by_key(|e| e.index);
    let metrics = state.metrics();
    metrics
        .logs_published
        .inc_by((cursors.len() - duplicates) as u64);
    metrics.logs_duplicate.inc_by(duplicates as u64);
    metrics.logs_rejected.inc_by(errors.len() as u64);
    Ok(respond(cursors, duplicates, errors))
}

/// The request's `Idempotency-Key`, fingerprinting `body`.
fn idempotency_key(headers: &HeaderMap, body: &[u8]) -> Result<Option<IdempotencyKey>, AppError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    IdempotencyKey::new(value.as_bytes(), body)
        .map(Some)
        .map_err(|e| AppError::bad_request("invalid_idempotency_key", e.to_string()))
}

fn respond(cursors: Vec<Accepted>, duplicates: usize, errors: Vec<Rejected>) -> Response {
    if !cursors.is_empty() {
        let body = PublishResponse {
            error: None,
            accepted: cursors.len(),
            duplicates,
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
        duplicates: 0,
        rejected: errors.len(),
        cursors,
        errors,
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(body)).into_response()
}

/// Reads the whole body within `limit` bytes, `total` time and at most
/// `idle` between two chunks, so a publisher that trickles its body cannot
/// hold a connection and a buffer for long.
pub(crate) async fn read_body(
    body: Body,
    limit: usize,
    total: Duration,
    idle: Duration,
) -> Result<Bytes, AppError> {
    let deadline = Instant::now() + total;
    let mut body = body;
    let mut out = BytesMut::new();
    loop {
        let wait = idle.min(deadline.saturating_duration_since(Instant::now()));
        let frame = match tokio::time::timeout(wait, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(Err(error))) => {
                return Err(AppError::bad_request(
                    "body_read_failed",
                    format!("could not read the request body: {error}"),
                ))
            }
            Err(_) => {
                let message = if Instant::now() >= deadline {
                    format!(
                        "the request body did not arrive within {} s",
                        total.as_secs()
                    )
                } else {
                    format!("the request body paused for more than {} s", idle.as_secs())
                };
                return Err(AppError::status_with(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    message,
                ));
            }
        };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(AppError::PayloadTooLarge { limit });
            }
            out.extend_from_slice(&data);
        }
    }
}

pub(crate) fn content_length(headers: &HeaderMap) -> Option<usize> {
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
