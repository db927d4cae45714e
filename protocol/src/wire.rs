//! JSON payloads of the SSE events on `GET /api/logs/stream`.
//!
//! | SSE `event:` | payload          | when                                            |
//! |--------------|------------------|-------------------------------------------------|
//! | `hello`      | [`HelloEvent`]   | first, once per stream                          |
//! | `status`     | [`ChannelStatus`]| once per channel opened or added, before its logs |
//! | `log`        | [`LogEvent`]     | replayed history, then live logs                |
//! | `ping`       | `{}`             | every `heartbeatMs` (after a `: keep-alive` comment) |
//! | `close`      | [`CloseEvent`]   | last, when the gateway ends the stream          |
//!
//! A [`LogEvent`] carries the channel the log was *published* to. A
//! subscriber of the service-level channel `logs:etl:ws1` therefore receives
//! events whose `channel` is e.g. `logs:etl:ws1:wf9`; use
//! [`Channel::covers`](crate::Channel::covers) to route them. The gateway
//! sends each log at most once per stream even when a stream subscribes to
//! both a resource channel and its service-level channel.
//!
//! Order: within a stream, replayed logs come in cursor order across all of
//! the stream's channels (merged, each once), all before any live log; live
//! logs of one service-level family come in cursor order. A client may thus
//! keep, per channel, the highest cursor it has seen as its resume point.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::channel::Channel;
use crate::cursor::{Cursor, Epoch};

pub const EVENT_HELLO: &str = "hello";
pub const EVENT_STATUS: &str = "status";
pub const EVENT_LOG: &str = "log";
pub const EVENT_CLOSE: &str = "close";
/// Heartbeat: a stream with no event for a few `heartbeatMs` is dead.
pub const EVENT_PING: &str = "ping";

/// One published log. `logData` is the publisher's JSON, byte for byte
/// (minus insignificant line breaks), never re-encoded.
#[derive(Debug, Serialize, Deserialize)]
pub struct LogEvent<'a> {
    /// The resource channel the log was published to.
    pub channel: Channel,
    /// Position of this log; resume with `since={channel}@{cursor}`.
    pub cursor: Cursor,
    /// Gateway receive time, milliseconds since the Unix epoch.
    pub ts: u64,
    #[serde(rename = "logData", borrow)]
    pub log_data: &'a RawValue,
}

/// The outcome of subscribing one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    /// Subscribed live (no cursor given), from `earliest` or `last:{N}`.
    Subscribed,
    /// The cursor was recognised; every log after it follows.
    Resumed,
    /// The cursor is foreign or older than the history: logs between it and
    /// the returned `cursor` may be missing. What history holds follows.
    Gap,
    /// Not allowed; `reason` says why. Nothing of this channel is sent.
    Denied,
}

impl StatusKind {
    pub const ALL: [StatusKind; 4] = [
        StatusKind::Subscribed,
        StatusKind::Resumed,
        StatusKind::Gap,
        StatusKind::Denied,
    ];

    /// The wire name (`subscribed`, `resumed`, `gap`, `denied`).
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Subscribed => "subscribed",
            StatusKind::Resumed => "resumed",
            StatusKind::Gap => "gap",
            StatusKind::Denied => "denied",
        }
    }

    /// Parses a wire name; for readers that do not use serde.
    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Sent once per channel the stream opens with or a channel change adds,
/// before any log of that channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStatus {
    pub channel: Channel,
    pub status: StatusKind,
    /// Every log of this channel after this cursor follows (replay, then
    /// live) and none at or before it. Absent when denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// How many logs of this channel are replayed from history.
    #[serde(default)]
    pub replayed: u32,
    /// Why the channel was denied or has a gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// First event of every stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelloEvent {
    pub connection_id: String,
    #[serde(with = "epoch_hex")]
    pub epoch: Epoch,
    /// Interval of keep-alive comments; a stream silent for much longer is dead.
    pub heartbeat_ms: u64,
    /// The secret that authorises changing this stream's channels
    /// (`POST /api/logs/stream/{connectionId}/channels`, header
    /// `X-Stream-Secret`). Absent from gateways without that endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_secret: Option<String>,
}

/// Why the gateway ended a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The client read too slowly and its send queue filled up.
    SlowConsumer,
    /// The gateway is shutting down.
    Shutdown,
    /// The subscriber's credentials expired.
    AuthExpired,
}

impl CloseReason {
    pub const ALL: [CloseReason; 3] = [
        CloseReason::SlowConsumer,
        CloseReason::Shutdown,
        CloseReason::AuthExpired,
    ];

    /// The wire name (`slow_consumer`, `shutdown`, `auth_expired`).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::Shutdown => "shutdown",
            CloseReason::AuthExpired => "auth_expired",
        }
    }

    /// Parses a wire name; for readers that do not use serde.
    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// Last event of a stream the gateway ends; reconnect after `retryMs` and
/// resume from your cursors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseEvent {
    pub reason: CloseReason,
    pub message: String,
    pub retry_ms: u64,
}

mod epoch_hex {
    use super::Epoch;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(epoch: &Epoch, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(epoch)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Epoch, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        u64::from_str_radix(&text, 16)
            .map(Epoch)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_event_keeps_log_data_raw() {
        let text = r#"{"channel":"logs:etl:ws1:wf9","cursor":"a-7","ts":5,"logData":{"b":1.50,"a":"x\ny"}}"#;
        let event: LogEvent<'_> = serde_json::from_str(text).unwrap();
        assert_eq!(event.channel.as_str(), "logs:etl:ws1:wf9");
        assert_eq!(event.cursor, Cursor::new(Epoch(10), 7));
        assert_eq!(event.log_data.get(), r#"{"b":1.50,"a":"x\ny"}"#);
        assert_eq!(serde_json::to_string(&event).unwrap(), text);
    }

    #[test]
    fn wire_names_agree_with_serde() {
        for kind in StatusKind::ALL {
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.as_str())
            );
            assert_eq!(StatusKind::from_wire(kind.as_str()), Some(kind));
        }
        for reason in CloseReason::ALL {
            assert_eq!(
                serde_json::to_string(&reason).unwrap(),
                format!("\"{}\"", reason.as_str())
            );
            assert_eq!(CloseReason::from_wire(reason.as_str()), Some(reason));
        }
        assert_eq!(StatusKind::from_wire("Gap"), None);
    }

    #[test]
    fn status_uses_camel_case_and_snake_case_values() {
        let status = ChannelStatus {
            channel: "logs:etl:ws1".parse().unwrap(),
            status: StatusKind::Gap,
            cursor: Some(Cursor::new(Epoch(255), 3)),
            replayed: 2,
            reason: Some("expired".into()),
        };
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(
            json,
            r#"{"channel":"logs:etl:ws1","status":"gap","cursor":"ff-3","replayed":2,"reason":"expired"}"#
        );
        assert_eq!(
            serde_json::from_str::<ChannelStatus>(&json).unwrap(),
            status
        );
        let hello = HelloEvent {
            connection_id: "c1".into(),
            epoch: Epoch(0xabc),
            heartbeat_ms: 15000,
            control_secret: None,
        };
        let json = serde_json::to_string(&hello).unwrap();
        assert_eq!(
            json,
            r#"{"connectionId":"c1","epoch":"abc","heartbeatMs":15000}"#
        );
        assert_eq!(serde_json::from_str::<HelloEvent>(&json).unwrap(), hello);
        let hello = HelloEvent {
            control_secret: Some("s3cr3t".into()),
            ..hello
        };
        let json = serde_json::to_string(&hello).unwrap();
        assert_eq!(
            json,
            r#"{"connectionId":"c1","epoch":"abc","heartbeatMs":15000,"controlSecret":"s3cr3t"}"#
        );
        assert_eq!(serde_json::from_str::<HelloEvent>(&json).unwrap(), hello);
    }
}
