//! A change applied to a stream of this node: the secret and identity
//! check (one 403 for both), the per-channel decision, the channel bound,
//! the additions through the backend's live join, then the removals, and
//! the answer.

use std::sync::Arc;

use axum::http::StatusCode;
use logs_sse_protocol::{Channel, ChannelStatus, ResumeFrom, StatusKind, EVENT_STATUS};
use serde::Serialize;
use utoipa::ToSchema;

use super::registry::{Identity, StreamHandle};
use super::request::ChangeRequest;
use super::secret;
use crate::auth::grants::Grants;
use crate::error::AppError;
use crate::frame::event_frame;
use crate::state::AppState;
use crate::subscriber::Delivery;

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

/// Checks the secret and the identity, then applies the change.
pub async fn authorize_and_apply(
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

/// No such open stream here (or, forwarded, on its node).
pub fn unknown_stream() -> AppError {
    AppError::status_with(
        StatusCode::NOT_FOUND,
        "unknown_stream",
        "no such open stream on this gateway (it ended or never existed); open a new stream",
    )
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
