//! SSE frames, encoded once.
//!
//! A published log becomes one [`Bytes`] frame when it is accepted; that
//! same buffer is kept in history and handed to every subscriber (cloning
//! `Bytes` only bumps a reference count). Nothing here runs per subscriber.
//!
//! SSE ends a `data:` line at `\n`, `\r` or `\r\n`, so a frame must not carry
//! a raw line break; published `logData` is made single-line when parsed
//! (`logs_sse_protocol::publish::single_line_json`).

use bytes::{BufMut, Bytes, BytesMut};
use logs_sse_protocol::{Channel, Cursor};
use serde::Serialize;

/// An encoded SSE event, shared by every receiver.
pub type Frame = Bytes;

/// Sent on an idle stream every heartbeat: a comment line, which keeps
/// proxies and load balancers from timing the connection out, and a `ping`
/// event, because `EventSource` hides comments and a client can only detect
/// a silently dead stream from events it sees.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\nevent: ping\ndata: {}\n\n";

/// Encodes a `log` event. `log_data` must already be single-line JSON.
pub fn log_frame(channel: &Channel, cursor: Cursor, ts: u64, log_data: &str) -> Frame {
    let parts = LogFrameParts::new(channel, ts, log_data);
    let cursor = cursor.to_string();
    let mut out = BytesMut::with_capacity(parts.head.len() + cursor.len() + parts.tail.len());
    out.put_slice(parts.head.as_bytes());
    out.put_slice(cursor.as_bytes());
    out.put_slice(parts.tail.as_bytes());
    out.freeze()
}

/// A `log` frame without its cursor: `head + cursor + tail` is the frame.
/// A store that assigns cursors itself (the Redis script) joins the parts,
/// so the frame is still encoded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFrameParts {
    pub head: String,
    pub tail: String,
}

impl LogFrameParts {
    pub fn new(channel: &Channel, ts: u64, log_data: &str) -> Self {
        debug_assert!(!log_data.contains(['\n', '\r']));
        // Channel names and cursors use only [A-Za-z0-9_.:-], so they need no
        // JSON escaping; the payload is inserted as the publisher sent it.
        let head = format!(
            "event: log\ndata: {{\"channel\":\"{}\",\"cursor\":\"",
            channel.as_str()
        );
        let mut tail = String::with_capacity(24 + log_data.len());
        tail.push_str("\",\"ts\":");
        tail.push_str(&ts.to_string());
        tail.push_str(",\"logData\":");
        tail.push_str(log_data);
        tail.push_str("}\n\n");
        LogFrameParts { head, tail }
    }
}

/// Encodes a control event (`hello`, `status`, `close`) from its payload.
pub fn event_frame(event: &str, payload: &impl Serialize) -> Frame {
    // Serialising these small, typed structs cannot fail.
    let json = serde_json::to_string(payload).unwrap_or_else(|_| "{}".to_owned());
    let mut out = BytesMut::with_capacity(16 + event.len() + json.len());
    out.put_slice(b"event: ");
    out.put_slice(event.as_bytes());
    out.put_slice(b"\ndata: ");
    out.put_slice(json.as_bytes());
    out.put_slice(b"\n\n");
    out.freeze()
}

/// The `retry:` hint a browser `EventSource` uses as its reconnect delay.
pub fn retry_frame(retry_ms: u64) -> Frame {
    Bytes::from(format!("retry: {retry_ms}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use logs_sse_protocol::publish::single_line_json;
    use logs_sse_protocol::{Epoch, LogEvent};

    #[test]
    fn log_frame_is_one_event_that_parses_back() {
        let channel: Channel = "logs:etl:ws1:wf9".parse().unwrap();
        let raw = "{\n  \"message\": \"line1\\nline2\\r\\ndata: event: x\",\r\n  \"n\": 1.50\n}";
        let data = single_line_json(raw);
        let frame = log_frame(&channel, Cursor::new(Epoch(0xab), 7), 42, &data);
        let text = std::str::from_utf8(&frame).unwrap();
        let body = text
            .strip_prefix("event: log\ndata: ")
            .unwrap()
            .strip_suffix("\n\n")
            .unwrap();
        assert!(!body.contains(['\n', '\r']), "{body}");
        let event: LogEvent<'_> = serde_json::from_str(body).unwrap();
        assert_eq!(event.channel, channel);
        assert_eq!(event.cursor.to_string(), "ab-7");
        assert_eq!(event.ts, 42);
        let value: serde_json::Value = serde_json::from_str(event.log_data.get()).unwrap();
        assert_eq!(value["message"], "line1\nline2\r\ndata: event: x");
        assert_eq!(
            event.log_data.get().matches("1.50").count(),
            1,
            "numbers are not re-encoded"
        );
    }

    #[test]
    fn control_frames_are_single_events() {
        let frame = event_frame("close", &serde_json::json!({"message": "a\nb"}));
        assert_eq!(
            &frame[..],
            b"event: close\ndata: {\"message\":\"a\\nb\"}\n\n"
        );
        assert_eq!(&retry_frame(2000)[..], b"retry: 2000\n\n");
    }
}
