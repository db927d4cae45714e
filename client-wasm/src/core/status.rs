//! Connection status as the JS side sees it: a state and, when something
//! went wrong, the reason.
//!
//! The transitions themselves live in [`super::engine`]; this module only
//! defines the observable values and how an HTTP answer to the probe `fetch`
//! is classified (retry or give up, and why).

use super::json;
use crate::text;

/// How long the probe may take before it counts as unanswered: a gateway
/// that accepts connections but never answers must not hold the reason
/// back.
pub const PROBE_TIMEOUT_MS: u32 = 5_000;

/// The observable connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The full observable status (turned into a JS object by the boundary's
/// `convert` module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: ConnectionState,
    pub reason: Option<Reason>,
    /// A human-readable explanation (the gateway's error message when known).
    pub message: Option<String>,
    /// The HTTP status learned by the probe request.
    pub http_status: Option<u16>,
    /// The gateway's error code (`invalid_channel`, ...) or close reason
    /// (`slow_consumer`, `shutdown`, `auth_expired`).
    pub code: Option<String>,
    /// Failed attempts since the last healthy connection.
    pub attempt: u32,
    /// Delay before the next attempt, when one is scheduled.
    pub retry_in_ms: Option<u32>,
    /// The gateway's id of the open stream.
    pub connection_id: Option<String>,
    /// How channel changes reach the open stream (set while `open`).
    pub channel_changes: Option<ChangeMode>,
    /// Why the last channel change reopened the stream instead of
    /// changing it live; set from that change until the next `hello`.
    pub fallback: Option<Fallback>,
}

/// How channel changes reach an open stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeMode {
    /// Through the gateway's control endpoint: the `EventSource` stays.
    Live,
    /// By reopening the stream with the new set, resuming from cursors
    /// (a gateway without the endpoint sends no control secret).
    Reconnect,
}

impl ChangeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeMode::Live => "live",
            ChangeMode::Reconnect => "reconnect",
        }
    }
}

/// Why a channel change reopened the stream rather than changing it live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The stream's `hello` carried no control secret (an older gateway).
    NoSecret,
    /// A channel wants history while a channel that covers it (or that it
    /// covers) stays on the stream: the gateway would not repeat what the
    /// stream already carried, so only a new stream brings it all.
    Overlap,
    /// 404: the stream is gone (ended, or its node is).
    NotFound,
    /// 405 or 501: the gateway (or a proxy) has no control endpoint; later
    /// changes reconnect without trying.
    Unsupported,
    /// 401 (after the one retry with a fresh token for `expired_token`).
    Unauthorized,
    /// 403: the reopened stream's probe tells the real reason.
    Forbidden,
    /// Another 4xx (400, 413, 415, ...).
    Rejected,
    /// 5xx, 408 or 429.
    GatewayError,
    /// No HTTP answer (network, CORS, DNS).
    Network,
    /// No answer within the control timeout.
    Timeout,
}

impl Fallback {
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::NoSecret => "no_secret",
            Fallback::Overlap => "overlap",
            Fallback::NotFound => "not_found",
            Fallback::Unsupported => "unsupported",
            Fallback::Unauthorized => "unauthorized",
            Fallback::Forbidden => "forbidden",
            Fallback::Rejected => "rejected",
            Fallback::GatewayError => "gateway_error",
            Fallback::Network => "network",
            Fallback::Timeout => "timeout",
        }
    }

    /// The fallback for the control call's HTTP answer `status` (not 2xx).
    pub fn for_http(status: u16) -> Fallback {
        match status {
            404 => Fallback::NotFound,
            405 | 501 => Fallback::Unsupported,
            401 => Fallback::Unauthorized,
            403 => Fallback::Forbidden,
            408 | 429 | 500.. => Fallback::GatewayError,
            _ => Fallback::Rejected,
        }
    }
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
            channel_changes: None,
            fallback: None,
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

/// Reads the gateway's JSON error body `{"error":{"code":..,"message":..}}`
/// (both optional strings, as a serde derive would); `None` when the body
/// has another shape.
fn error_body(body: &str) -> Option<(Option<String>, Option<String>)> {
    let mut error = [None];
    json::known_fields(body, &["error"], &mut error).ok()?;
    let mut detail = [None, None];
    json::known_fields(error[0]?.raw(), &["code", "message"], &mut detail).ok()?;
    let text = |v: Option<json::Value<'_>>| match v.filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(v) => v.string().map(|s| Some(bounded(s.into_owned()))),
    };
    Some((text(detail[0]).ok()?, text(detail[1]).ok()?))
}

/// Longest error code or message kept from an error body.
const MAX_ERROR_TEXT: usize = 512;

/// Cuts `text` to [`MAX_ERROR_TEXT`] characters (marking the cut).
pub fn bounded(mut text: String) -> String {
    if let Some((end, _)) = text.char_indices().nth(MAX_ERROR_TEXT) {
        // `end` is a char boundary; `get` keeps even a mistake panic-free
        // (and keeps the slicing panic's formatting out of the build).
        text = text.get(..end).unwrap_or_default().to_owned();
        text.push('…');
    }
    text
}

impl ProbeResult {
    /// Builds an HTTP result from the status and the (possibly non-JSON) body.
    pub fn from_http(status: u16, body: &str) -> Self {
        let (code, message) = error_body(body).unwrap_or_default();
        ProbeResult::Http {
            status,
            code,
            message,
        }
    }
}

impl ProbeResult {
    /// The probe got no answer within `after_ms` (normally
    /// [`PROBE_TIMEOUT_MS`]).
    pub fn timed_out(after_ms: u32) -> Self {
        ProbeResult::Unreachable {
            message: text!("no answer within ", after_ms, " ms"),
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
                text!("gateway unreachable: ", message)
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
                    .unwrap_or_else(|| text!("gateway answered HTTP ", status)),
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
