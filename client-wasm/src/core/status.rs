//! Connection status as the JS side sees it: a state and, when something
//! went wrong, the reason.
//!
//! The transitions themselves live in [`super::engine`]; this module only
//! defines the observable values and how an HTTP answer to the probe `fetch`
//! is classified (retry or give up, and why).

use serde::Serialize;

/// The observable connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// No channel is subscribed, so no stream is open.
    Idle,
    /// The first stream for the current channel set is being opened.
    Connecting,
    /// The stream is open.
    Open,
    /// The stream failed; waiting for the backoff delay or retrying.
    Reconnecting,
    /// The client was closed with `close()`. Terminal.
    Closed,
    /// A failure that retrying cannot fix (unauthorised, forbidden, bad
    /// request). Changing the channel set or calling `reconnect()` retries.
    Failed,
}

/// Why the connection is not (or no longer) open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The browser is offline, or an open stream dropped.
    Network,
    /// The gateway could not be reached (refused, DNS, CORS, TLS).
    GatewayUnreachable,
    /// The gateway answered with a server error (5xx, 429, 408).
    GatewayError,
    /// 401: not signed in, or the session expired.
    Unauthorized,
    /// 403: a channel is not allowed for this user.
    Forbidden,
    /// 400 and other client errors: e.g. `invalid_channel`, `too_many_channels`.
    BadRequest,
    /// The gateway ended the stream with a `close` event (see `code`).
    GatewayClosed,
}

/// The full observable status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub state: ConnectionState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// A human-readable explanation (the gateway's error message when known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The HTTP status learned by the probe request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The gateway's error code (`invalid_channel`, ...) or close reason
    /// (`slow_consumer`, `shutdown`, `auth_expired`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Failed attempts since the last healthy connection.
    pub attempt: u32,
    /// Delay before the next attempt, when one is scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u32>,
    /// The gateway's id of the open stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
}

impl Status {
    pub fn new(state: ConnectionState) -> Self {
        Status {
            state,
            reason: None,
            message: None,
            http_status: None,
            code: None,
            attempt: 0,
            retry_in_ms: None,
            connection_id: None,
        }
    }
}

/// What the probe `fetch` learned after a stream failed to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// The request itself failed (no HTTP answer).
    Unreachable { message: String },
    /// An HTTP answer; `code`/`message` come from the JSON error body.
    Http {
        status: u16,
        code: Option<String>,
        message: Option<String>,
    },
}

/// The JSON error body of the gateway: `{"error":{"code":..,"message":..}}`.
#[derive(Debug, serde::Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, serde::Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
}

/// Longest error code or message kept from an error body.
const MAX_ERROR_TEXT: usize = 512;

fn bounded(text: String) -> String {
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

impl ProbeResult {
    /// Builds an HTTP result from the status and the (possibly non-JSON) body.
    pub fn from_http(status: u16, body: &str) -> Self {
        let (code, message) = match serde_json::from_str::<ErrorBody>(body) {
            Ok(b) => (b.error.code.map(bounded), b.error.message.map(bounded)),
            Err(_) => (None, None),
        };
        ProbeResult::Http {
            status,
            code,
            message,
        }
    }
}

/// How a probe outcome is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub reason: Reason,
    /// Retrying cannot help: stop and report `failed`.
    pub fatal: bool,
    pub http_status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
}

/// Classifies a probe outcome. `online` is `navigator.onLine`.
pub fn classify(result: &ProbeResult, online: bool) -> Option<Verdict> {
    match result {
        ProbeResult::Unreachable { message } => Some(Verdict {
            reason: if online {
                Reason::GatewayUnreachable
            } else {
                Reason::Network
            },
            fatal: false,
            http_status: None,
            code: None,
            message: if online {
                format!("gateway unreachable: {message}")
            } else {
                "the browser is offline".to_owned()
            },
        }),
        ProbeResult::Http {
            status,
            code,
            message,
        } => {
            let status = *status;
            let (reason, fatal) = match status {
                200..=299 => return None,
                401 => (Reason::Unauthorized, true),
                403 => (Reason::Forbidden, true),
                408 | 429 => (Reason::GatewayError, false),
                400..=499 => (Reason::BadRequest, true),
                _ => (Reason::GatewayError, false),
            };
            Some(Verdict {
                reason,
                fatal,
                http_status: Some(status),
                code: code.clone(),
                message: message
                    .clone()
                    .unwrap_or_else(|| format!("gateway answered HTTP {status}")),
            })
        }
    }
}

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests {
    use super::*;

    #[test]
    fn classifies_http_answers() {
        let v = classify(
            &ProbeResult::from_http(
                400,
                r#"{"error":{"code":"invalid_channel","message":"channel #0: bad"}}"#,
            ),
            true,
        )
        .unwrap();
        assert_eq!(v.reason, Reason::BadRequest);
        assert!(v.fatal);
        assert_eq!(v.code.as_deref(), Some("invalid_channel"));
        assert_eq!(v.message, "channel #0: bad");
        let v = classify(&ProbeResult::from_http(401, "nope"), true).unwrap();
        assert_eq!((v.reason, v.fatal), (Reason::Unauthorized, true));
        assert_eq!(v.message, "gateway answered HTTP 401");
        let v = classify(&ProbeResult::from_http(403, "{}"), true).unwrap();
        assert_eq!((v.reason, v.fatal), (Reason::Forbidden, true));
        let v = classify(&ProbeResult::from_http(503, ""), true).unwrap();
        assert_eq!((v.reason, v.fatal), (Reason::GatewayError, false));
        let v = classify(&ProbeResult::from_http(429, ""), true).unwrap();
        assert!(!v.fatal);
        assert_eq!(classify(&ProbeResult::from_http(200, ""), true), None);
    }

    #[test]
    fn unreachable_depends_on_online() {
        let r = ProbeResult::Unreachable {
            message: "Failed to fetch".into(),
        };
        assert_eq!(
            classify(&r, true).unwrap().reason,
            Reason::GatewayUnreachable
        );
        assert_eq!(classify(&r, false).unwrap().reason, Reason::Network);
    }

    #[test]
    fn bounds_error_text() {
        let body = format!(
            r#"{{"error":{{"code":"x","message":"{}"}}}}"#,
            "m".repeat(5000)
        );
        let ProbeResult::Http { message, .. } = ProbeResult::from_http(400, &body) else {
            panic!()
        };
        assert!(message.unwrap().len() < 600);
    }
}
