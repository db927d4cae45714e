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
//! [`request`] parses and bounds the body.

pub mod registry;
pub mod relay;
pub mod request;
pub mod secret;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use logs_sse_protocol::{Channel, ChannelStatus, ResumeFrom, StatusKind, EVENT_STATUS};
use serde::Serialize;
use utoipa::ToSchema;

use self::registry::{Identity, StreamHandle};
use self::relay::{Caller, Forwarded, Handler, RelayError, Reply};
use self::request::{ChangeRequest, ControlBody};
use crate::auth::grants::{Grants, Pattern};
use crate::auth::subscriber::Principal;
use crate::error::{AppError, ErrorBody};
use crate::frame::event_frame;
use crate::state::AppState;
use crate::subscriber::Delivery;

/// The header that carries the stream's secret.
pub const SECRET_HEADER: &str = "x-stream-secret";

/// The answer to a channel change.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeResponse {
    #[schema(example = "3fa2c9d1.42")]
    pub connection_id: String,
    /// One per added channel, in request order: as the stream was told.
    #[schema(value_type = Vec<StatusDoc>)]
    pub statuses: Vec<ChannelStatus>,
    /// Every channel the stream now carries.
    #[schema(value_type = Vec<String>, example = json!(["logs:etl:ws123:wf456"]))]
    pub channels: Vec<Channel>,
}

/// A channel's status, as in the stream's `status` event (documentation).
#[derive(Debug, ToSchema)]
#[schema(as = ChannelStatus)]
#[allow(dead_code)]
pub struct StatusDoc {
    #[schema(example = "logs:etl:ws123:wf456")]
    channel: String,
    #[schema(example = "subscribed", pattern = "^(subscribed|resumed|gap|denied)$")]
    status: String,
    #[schema(example = "9f3a0c1d2e4b5a6f-1042")]
    cursor: Option<String>,
    replayed: u32,
    reason: Option<String>,
}

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

/// Checks the secret and the identity, then applies the change.
async fn authorize_and_apply(
    state: &AppState,
    handle: &Arc<StreamHandle>,
    presented: &str,
    identity: &Identity,
    grants: &Grants,
    change: ChangeRequest,
) -> Result<ChangeResponse, AppError> {
    // Both checks always run: the answer and its timing say nothing of
    // which one failed.
    let secret_ok = secret::matches(&handle.secret, presented);
    let identity_ok = *identity == handle.identity;
    if !(secret_ok && identity_ok) {
        return Err(AppError::Forbidden {
            code: "stream_forbidden",
            message:
                "this stream may be changed only with its secret, by the subscriber that opened it"
                    .into(),
        });
    }
    apply(state, handle, grants, change).await
}

/// Sends a change for a stream this node does not hold to the node its
/// connection id names.
async fn forward(
    state: &AppState,
    connection_id: &str,
    presented: &str,
    principal: &Principal,
    change: ChangeRequest,
) -> Result<Reply, AppError> {
    let Some(relay) = state.relay() else {
        return Err(unknown_stream());
    };
    let tag = connection_id
        .split_once('.')
        .map(|(tag, _)| tag)
        .filter(|tag| {
            tag.len() == 8
                && tag.bytes().all(|b| b.is_ascii_hexdigit())
                && state.connection_prefix() != format!("{tag}.")
        })
        .ok_or_else(unknown_stream)?;
    let call = Forwarded {
        connection_id: connection_id.to_owned(),
        secret: presented.to_owned(),
        caller: caller_of(principal),
        add: change
            .add
            .iter()
            .map(|(c, since)| (c.to_string(), since.since_text()))
            .collect(),
        remove: change.remove.iter().map(ToString::to_string).collect(),
    };
    let metrics = state.metrics();
    let started = std::time::Instant::now();
    let result = relay.forward(tag, call).await;
    metrics
        .stream_control_forward_seconds
        .observe(started.elapsed().as_secs_f64());
    let outcome = match &result {
        Ok(_) => "answered",
        Err(RelayError::NodeGone) => "node_gone",
        Err(RelayError::NoReply) => "no_reply",
        Err(RelayError::Unavailable(_)) => "unavailable",
    };
    metrics
        .stream_control_forwarded
        .get_or_create(&[("outcome", outcome)])
        .inc();
    result.map_err(|error| match error {
        RelayError::NodeGone => unknown_stream(),
        RelayError::NoReply => AppError::Unavailable {
            code: "stream_unreachable",
            message: format!("{error}; retry shortly or open a new stream"),
        },
        RelayError::Unavailable(_) => AppError::Unavailable {
            code: "backend_unavailable",
            message: format!("{error}; retry shortly"),
        },
    })
}

fn caller_of(principal: &Principal) -> Caller {
    Caller {
        anonymous: principal.expires_at.is_none(),
        user: principal.user.clone(),
        patterns: match &principal.grants {
            Grants::Everything => None,
            Grants::Patterns(patterns) => Some(patterns.iter().map(ToString::to_string).collect()),
        },
    }
}

/// The identity and grants a forwarded call carries.
fn from_caller(caller: &Caller) -> Option<(Identity, Grants)> {
    let grants = match &caller.patterns {
        None => Grants::Everything,
        Some(patterns) => Grants::Patterns(
            patterns
                .iter()
                .map(|p| Pattern::parse(p).ok())
                .collect::<Option<Vec<_>>>()?,
        ),
    };
    let identity = match (&caller.user, caller.anonymous) {
        (_, true) => Identity::Anonymous,
        (Some(user), false) => Identity::Subject(user.clone()),
        (None, false) => Identity::Unnamed(grants.clone()),
    };
    Some((identity, grants))
}

/// The handler of changes forwarded to this node by others.
pub fn owner_handler(state: AppState) -> Handler {
    Arc::new(move |call: Forwarded| {
        let state = state.clone();
        Box::pin(async move {
            let result = serve_forwarded(&state, call).await;
            let outcome = match &result {
                Ok(_) => "ok",
                Err(error) => error.code(),
            };
            state.metrics().record_control(outcome);
            match result {
                Ok(answer) => Reply {
                    status: 200,
                    retry_after: None,
                    body: serde_json::to_value(answer).unwrap_or_default(),
                },
                Err(error) => Reply {
                    status: error.status().as_u16(),
                    retry_after: error.retry_after(),
                    body: serde_json::json!({"error": {"code": error.code(), "message": error.to_string()}}),
                },
            }
        })
    })
}

async fn serve_forwarded(state: &AppState, call: Forwarded) -> Result<ChangeResponse, AppError> {
    if state.shutdown_token().is_cancelled() {
        return Err(AppError::shutting_down());
    }
    let handle = state
        .streams()
        .get(&call.connection_id)
        .ok_or_else(unknown_stream)?;
    let (identity, grants) = from_caller(&call.caller)
        .ok_or_else(|| AppError::Internal("a forwarded call carried unreadable grants".into()))?;
    // The receiving node parsed and bounded the change; parse it again
    // rather than trust the wire.
    let body = serde_json::json!({
        "add": call.add.iter().map(|(channel, since)| match since {
            Some(since) => serde_json::json!({"channel": channel, "since": since}),
            None => serde_json::json!({"channel": channel}),
        }).collect::<Vec<_>>(),
        "remove": call.remove,
    });
    let change = ChangeRequest::parse(
        body.to_string().as_bytes(),
        state.config().max_channels_per_stream as usize,
    )?;
    authorize_and_apply(state, &handle, &call.secret, &identity, &grants, change).await
}

/// The metric label of a forwarded answer: its code, if it is one this
/// endpoint answers.
fn known_code(reply: &Reply) -> &'static str {
    const CODES: [&str; 14] = [
        "invalid_body",
        "invalid_channel",
        "invalid_since",
        "invalid_cursor",
        "too_many_channels",
        "stream_forbidden",
        "forbidden_channels",
        "unknown_stream",
        "shutting_down",
        "backend_unavailable",
        "stream_unreachable",
        "missing_token",
        "invalid_token",
        "internal",
    ];
    if reply.status == 200 {
        return "ok";
    }
    let code = reply.body["error"]["code"].as_str().unwrap_or_default();
    CODES.into_iter().find(|c| *c == code).unwrap_or("other")
}

fn reply_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, Json(reply.body)).into_response();
    if let Some(secs) = reply.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn unknown_stream() -> AppError {
    AppError::status_with(
        StatusCode::NOT_FOUND,
        "unknown_stream",
        "no such open stream on this gateway (it ended or never existed); open a new stream",
    )
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

/// Applies an authorised change to a stream of this node.
async fn apply(
    state: &AppState,
    handle: &Arc<StreamHandle>,
    grants: &Grants,
    change: ChangeRequest,
) -> Result<ChangeResponse, AppError> {
    let config = state.config();
    let _serial = handle.serial.lock().await;
    // Decide everything before changing anything.
    let (removed, mut statuses, to_add, kept_count) = {
        let carried = handle.carried();
        if carried.ended || handle.subscriber.is_closed() {
            return Err(unknown_stream());
        }
        let removed: Vec<Channel> = change
            .remove
            .iter()
            .filter(|c| carried.status_of(c).is_some())
            .cloned()
            .collect();
        let kept_count = carried.channels.len() - removed.len();
        let mut statuses: Vec<Option<ChannelStatus>> = Vec::with_capacity(change.add.len());
        let mut to_add: Vec<(usize, Channel, ResumeFrom)> = Vec::new();
        for (index, (channel, since)) in change.add.into_iter().enumerate() {
            if let Some(current) = carried.status_of(&channel) {
                statuses.push(Some(current.clone()));
                continue;
            }
            match grants.denial(&channel) {
                None => {
                    statuses.push(None);
                    to_add.push((index, channel, since));
                }
                Some(reason) => statuses.push(Some(ChannelStatus {
                    channel,
                    status: StatusKind::Denied,
                    cursor: None,
                    replayed: 0,
                    reason: Some(reason),
                })),
            }
        }
        (removed, statuses, to_add, kept_count)
    };
    let max = config.max_channels_per_stream as usize;
    if kept_count + to_add.len() > max {
        return Err(AppError::bad_request(
            "too_many_channels",
            format!(
                "the stream would carry {} channels; at most {max} are allowed per stream",
                kept_count + to_add.len()
            ),
        ));
    }
    let nothing_allowed = to_add.is_empty()
        && statuses
            .iter()
            .all(|s| s.as_ref().is_some_and(|s| s.status == StatusKind::Denied));
    if nothing_allowed && !statuses.is_empty() && change.remove.is_empty() {
        let reason = statuses
            .iter()
            .flatten()
            .find_map(|s| s.reason.clone())
            .unwrap_or_default();
        return Err(AppError::Forbidden {
            code: "forbidden_channels",
            message: format!("no added channel may be watched with this token ({reason})"),
        });
    }

    // Denied channels are told on the stream too, as on open.
    let denied: Vec<_> = statuses
        .iter()
        .flatten()
        .filter(|s| s.status == StatusKind::Denied)
        .map(|s| event_frame(EVENT_STATUS, s))
        .collect();
    let max_replay = max * (config.history_size as usize + 1);
    if handle.subscriber.deliver_replay(denied, max_replay) != Delivery::Queued {
        return Err(unknown_stream());
    }
    let request: Vec<(Channel, ResumeFrom)> = to_add
        .iter()
        .map(|(_, channel, since)| (channel.clone(), *since))
        .collect();
    let added = if request.is_empty() {
        crate::backend::Added::default()
    } else {
        state
            .backend()
            .add(&handle.subscriber, &request, max_replay)
            .await
    };
    let joined: Vec<ChannelStatus> = added
        .statuses
        .iter()
        .flatten()
        .filter(|s| s.status != StatusKind::Denied)
        .cloned()
        .collect();
    {
        let mut carried = handle.carried();
        if carried.ended || handle.subscriber.is_closed() {
            drop(carried);
            // The stream ended meanwhile; its guard left what it knew of.
            let channels: Vec<Channel> = joined.into_iter().map(|s| s.channel).collect();
            state
                .backend()
                .unsubscribe(handle.subscriber.id(), &channels);
            return Err(unknown_stream());
        }
        state
            .metrics()
            .stream_subscriptions
            .inc_by(joined.len() as i64);
        carried.channels.extend(joined);
    }
    // Removals after the additions: the new channels' replay leaves out
    // what the removed channels brought too, so nothing is repeated.
    if !removed.is_empty() {
        let ended = {
            let mut carried = handle.carried();
            if !carried.ended {
                carried.channels.retain(|s| !removed.contains(&s.channel));
                state
                    .metrics()
                    .stream_subscriptions
                    .dec_by(removed.len() as i64);
            }
            carried.ended
        };
        if ended {
            return Err(unknown_stream());
        }
        state
            .backend()
            .unsubscribe(handle.subscriber.id(), &removed);
    }
    if let Some(error) = added.error {
        return Err(AppError::backend_unavailable(&error));
    }
    for ((index, _, _), status) in to_add.iter().zip(added.statuses) {
        statuses[*index] = status;
    }
    let channels = handle
        .carried()
        .channels
        .iter()
        .map(|s| s.channel.clone())
        .collect();
    Ok(ChangeResponse {
        connection_id: handle.connection_id.clone(),
        statuses: statuses.into_iter().flatten().collect(),
        channels,
    })
}
