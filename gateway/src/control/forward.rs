//! The cross-node side of a change: forwarding a change for a stream this
//! node does not hold to the node its connection id names ([`super::relay`]
//! carries it), and serving the changes other nodes forward here.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::apply::{authorize_and_apply, unknown_stream, ChangeResponse};
use super::registry::Identity;
use super::relay::{Caller, Forwarded, Handler, RelayError, Reply};
use super::request::ChangeRequest;
use crate::auth::grants::{Grants, Pattern};
use crate::auth::subscriber::Principal;
use crate::error::AppError;
use crate::state::AppState;

/// Sends a change for a stream this node does not hold to the node its
/// connection id names.
pub async fn forward(
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
pub fn known_code(reply: &Reply) -> &'static str {
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

pub fn reply_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, Json(reply.body)).into_response();
    if let Some(secs) = reply.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
