//! Client and subscription options: every bound with its documented default.
//!
//! The JS side passes plain objects; the boundary's `convert` module reads
//! them field by field into these structs. Everything is validated here so that the core
//! never works with a zero, inverted or unbounded limit.

use logs_sse_protocol::ResumeFrom;

use crate::text;

/// Default lower bound of the reconnect delay.
pub const DEFAULT_BACKOFF_MIN_MS: u32 = 500;
/// Default upper bound of the reconnect delay.
pub const DEFAULT_BACKOFF_MAX_MS: u32 = 30_000;
/// A connection open at least this long resets the backoff.
pub const DEFAULT_HEALTHY_AFTER_MS: u32 = 5_000;
/// How long a channel with no subscriber stays on the stream.
pub const DEFAULT_LINGER_MS: u32 = 1_500;
/// Channel-set changes closer together than this share one control call
/// (or one reconnect).
pub const DEFAULT_COALESCE_MS: u32 = 25;
/// Subscriptions per client.
pub const DEFAULT_MAX_SUBSCRIPTIONS: u32 = 256;
/// Distinct channels per stream (the gateway's default per-stream limit).
pub const DEFAULT_MAX_CHANNELS: u32 = 64;
/// Minimum interval between two `sessionStorage` writes of one subscription.
pub const DEFAULT_PERSIST_THROTTLE_MS: u32 = 1_000;
/// Most bytes written to one `sessionStorage` key.
pub const DEFAULT_PERSIST_MAX_BYTES: u32 = 256 * 1024;
/// Logs kept per subscription.
pub const DEFAULT_MAX_LOGS: u32 = 1_000;
/// Hard ceiling of `maxLogs`.
pub const MAX_MAX_LOGS: u32 = 100_000;
/// Hard ceiling of every millisecond option (one day).
pub const MAX_MS: u32 = 86_400_000;
/// Most logs a subscription may ask to backfill (`history`); the gateway
/// replays at most what its per-channel history holds.
pub const MAX_HISTORY: u32 = MAX_MAX_LOGS;
/// Longest accepted `persistKey`.
pub const MAX_PERSIST_KEY_LEN: usize = 256;

/// Why options were rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsError(pub String);

impl std::fmt::Display for OptionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Options of the client (`new LogsClient(url, options)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Send cookies with the stream request (`EventSource` `withCredentials`).
    pub with_credentials: bool,
    pub backoff_min_ms: u32,
    pub backoff_max_ms: u32,
    pub healthy_after_ms: u32,
    pub linger_ms: u32,
    pub coalesce_ms: u32,
    pub max_subscriptions: u32,
    pub max_channels: u32,
    pub persist_throttle_ms: u32,
    pub persist_max_bytes: u32,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            with_credentials: false,
            backoff_min_ms: DEFAULT_BACKOFF_MIN_MS,
            backoff_max_ms: DEFAULT_BACKOFF_MAX_MS,
            healthy_after_ms: DEFAULT_HEALTHY_AFTER_MS,
            linger_ms: DEFAULT_LINGER_MS,
            coalesce_ms: DEFAULT_COALESCE_MS,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            max_channels: DEFAULT_MAX_CHANNELS,
            persist_throttle_ms: DEFAULT_PERSIST_THROTTLE_MS,
            persist_max_bytes: DEFAULT_PERSIST_MAX_BYTES,
        }
    }
}

fn check_ms(name: &str, value: u32) -> Result<(), OptionsError> {
    if value > MAX_MS {
        return Err(OptionsError(text!(
            name,
            " is ",
            value,
            "; the limit is ",
            MAX_MS,
            " (one day)"
        )));
    }
    Ok(())
}

fn check_nonzero(name: &str, value: u32) -> Result<(), OptionsError> {
    if value == 0 {
        return Err(OptionsError(text!(name, " must be at least 1")));
    }
    Ok(())
}

impl ClientOptions {
    /// Checks every bound; returns the options unchanged when they are sane.
    pub fn validate(self) -> Result<Self, OptionsError> {
        for (name, value) in [
            ("backoffMinMs", self.backoff_min_ms),
            ("backoffMaxMs", self.backoff_max_ms),
            ("healthyAfterMs", self.healthy_after_ms),
            ("lingerMs", self.linger_ms),
            ("coalesceMs", self.coalesce_ms),
            ("persistThrottleMs", self.persist_throttle_ms),
        ] {
            check_ms(name, value)?;
        }
        check_nonzero("backoffMinMs", self.backoff_min_ms)?;
        check_nonzero("maxSubscriptions", self.max_subscriptions)?;
        check_nonzero("maxChannels", self.max_channels)?;
        if self.backoff_min_ms > self.backoff_max_ms {
            return Err(OptionsError(text!(
                "backoffMinMs (",
                self.backoff_min_ms,
                ") is larger than backoffMaxMs (",
                self.backoff_max_ms,
                ")"
            )));
        }
        if self.persist_max_bytes < 1024 {
            return Err(OptionsError("persistMaxBytes must be at least 1024".into()));
        }
        Ok(self)
    }
}

/// Subscription options as given, before validation (the `filter`
/// function is taken separately by the boundary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSubscribeOptions {
    pub max_logs: Option<u32>,
    pub persist: Option<bool>,
    pub persist_key: Option<String>,
    pub resume_from: Option<String>,
    pub history: Option<u32>,
}

/// Validated options of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Logs kept in the buffer (oldest dropped first).
    pub max_logs: u32,
    /// `sessionStorage` key, when persistence is on.
    pub persist_key: Option<String>,
    /// Where a channel new to the stream starts when nothing is restored.
    pub resume_from: ResumeFrom,
    /// Backfill: start with the last `history` logs the gateway holds (0:
    /// none). A restored or given cursor wins over it.
    pub history: u32,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            max_logs: DEFAULT_MAX_LOGS,
            persist_key: None,
            resume_from: ResumeFrom::Live,
            history: 0,
        }
    }
}

/// Prefix of derived `sessionStorage` keys; the channel name follows.
pub const PERSIST_KEY_PREFIX: &str = "datashop-logs-sse:v1:";

impl RawSubscribeOptions {
    /// Validates the options of a subscription to `channel`.
    pub fn validate(self, channel: &str) -> Result<SubscribeOptions, OptionsError> {
        let max_logs = self.max_logs.unwrap_or(DEFAULT_MAX_LOGS);
        if max_logs == 0 || max_logs > MAX_MAX_LOGS {
            return Err(OptionsError(text!(
                "maxLogs is ",
                max_logs,
                "; it must be between 1 and ",
                MAX_MAX_LOGS
            )));
        }
        let persist_key = match (self.persist, self.persist_key) {
            (Some(false), _) => None,
            (_, Some(key)) => {
                if key.is_empty() || key.len() > MAX_PERSIST_KEY_LEN {
                    return Err(OptionsError(text!(
                        "persistKey must be 1 to ",
                        MAX_PERSIST_KEY_LEN,
                        " bytes long"
                    )));
                }
                Some(key)
            }
            (Some(true), None) => Some(text!(PERSIST_KEY_PREFIX, channel)),
            (None, None) => None,
        };
        let mut resume_from = match self.resume_from.as_deref() {
            None | Some("live") => ResumeFrom::Live,
            Some(text) => text.parse().map_err(|e| {
                OptionsError(text!(
                    "resumeFrom must be \"live\", \"earliest\", \"last:N\" or a cursor: ",
                    e
                ))
            })?,
        };
        let mut history = self.history.unwrap_or(0);
        if let ResumeFrom::Last(n) = resume_from {
            // `resumeFrom: "last:N"` is `history: N` spelled as on the wire.
            if self.history.is_some() {
                return Err(OptionsError(
                    "history and resumeFrom both say where to start: give one of them".into(),
                ));
            }
            history = n.get();
            resume_from = ResumeFrom::Live;
        }
        if history > MAX_HISTORY {
            return Err(OptionsError(text!(
                "history is ",
                history,
                "; it must be between 0 and ",
                MAX_HISTORY
            )));
        }
        if history > 0 && resume_from != ResumeFrom::Live {
            return Err(OptionsError(
                "history and resumeFrom both say where to start: give one of them".into(),
            ));
        }
        Ok(SubscribeOptions {
            max_logs,
            persist_key,
            resume_from,
            history,
        })
    }
}

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests {
    use super::*;
    use logs_sse_protocol::{Cursor, Epoch};

    #[test]
    fn defaults_are_valid() {
        assert_eq!(
            ClientOptions::default().validate(),
            Ok(ClientOptions::default())
        );
        let o = RawSubscribeOptions::default().validate("logs:a:b").unwrap();
        assert_eq!(o, SubscribeOptions::default());
    }

    #[test]
    fn rejects_inverted_and_unbounded_values() {
        let bad = ClientOptions {
            backoff_min_ms: 10_000,
            backoff_max_ms: 100,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().0.contains("backoffMinMs"));
        let bad = ClientOptions {
            linger_ms: MAX_MS + 1,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().0.contains("lingerMs"));
        let raw = RawSubscribeOptions {
            max_logs: Some(0),
            ..Default::default()
        };
        assert!(raw.validate("logs:a:b").is_err());
    }

    #[test]
    fn persist_key_is_given_or_derived() {
        let raw = RawSubscribeOptions {
            persist: Some(true),
            ..Default::default()
        };
        assert_eq!(
            raw.validate("logs:a:b").unwrap().persist_key.as_deref(),
            Some("datashop-logs-sse:v1:logs:a:b")
        );
        let raw = RawSubscribeOptions {
            persist_key: Some("k".into()),
            ..Default::default()
        };
        assert_eq!(
            raw.validate("logs:a:b").unwrap().persist_key.as_deref(),
            Some("k")
        );
        let raw = RawSubscribeOptions {
            persist: Some(false),
            persist_key: Some("k".into()),
            ..Default::default()
        };
        assert_eq!(raw.validate("logs:a:b").unwrap().persist_key, None);
    }

    #[test]
    fn resume_from_accepts_live_earliest_and_cursors() {
        let parse = |s: &str| {
            RawSubscribeOptions {
                resume_from: Some(s.into()),
                ..Default::default()
            }
            .validate("logs:a:b")
            .map(|o| o.resume_from)
        };
        assert_eq!(parse("live"), Ok(ResumeFrom::Live));
        assert_eq!(parse("earliest"), Ok(ResumeFrom::Earliest));
        assert_eq!(
            parse("ff-3"),
            Ok(ResumeFrom::After(Cursor::new(Epoch(255), 3)))
        );
        assert!(parse("yesterday").is_err());
        assert!(parse("last:0").is_err());
    }

    #[test]
    fn history_is_bounded_and_exclusive_with_resume_from() {
        let raw = |history: u32, resume_from: Option<&str>| RawSubscribeOptions {
            history: Some(history),
            resume_from: resume_from.map(str::to_owned),
            ..Default::default()
        };
        assert_eq!(raw(200, None).validate("logs:a:b").unwrap().history, 200);
        assert_eq!(
            raw(0, Some("earliest"))
                .validate("logs:a:b")
                .unwrap()
                .history,
            0
        );
        let e = raw(MAX_HISTORY + 1, None).validate("logs:a:b").unwrap_err();
        assert!(e.0.contains("history"), "{e}");
        let e = raw(5, Some("earliest")).validate("logs:a:b").unwrap_err();
        assert!(e.0.contains("resumeFrom"), "{e}");
        let last = RawSubscribeOptions {
            resume_from: Some("last:7".into()),
            ..Default::default()
        }
        .validate("logs:a:b")
        .unwrap();
        assert_eq!((last.history, last.resume_from), (7, ResumeFrom::Live));
        assert!(raw(5, Some("last:7")).validate("logs:a:b").is_err());
    }
}
