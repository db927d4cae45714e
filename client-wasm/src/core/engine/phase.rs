//! The connection's phases, the reason shown while reconnecting, and the
//! bounds of the heartbeat watchdog. Plain data; the transitions live in
//! `connection`.

use crate::core::status::Reason;

/// The heartbeat assumed until a `hello` announces one (the gateway's
/// default).
pub const DEFAULT_HEARTBEAT_MS: u64 = 15_000;
/// Bounds applied to an announced heartbeat (the gateway's own range), so
/// a zero or absurd value cannot make the watchdog fire at once or never.
pub const MIN_HEARTBEAT_MS: u64 = 1_000;
pub const MAX_HEARTBEAT_MS: u64 = 3_600_000;
/// A stream silent for this share of the heartbeat interval (2.5 ×) is
/// dead: two pings missed, with room for a slow network.
pub const SILENCE_FACTOR_PERCENT: u64 = 250;

/// Where the connection is (the table in `connection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Idle,
    /// Waiting for the token getter (until the timeout).
    Authorizing {
        until: u64,
    },
    Connecting,
    Open {
        since: u64,
    },
    Waiting {
        until: u64,
    },
    Failed,
    Closed,
}

/// Why the last attempt failed: the reason fields of the published status.
#[derive(Debug)]
pub(super) struct Detail {
    pub(super) reason: Reason,
    pub(super) message: String,
    pub(super) http_status: Option<u16>,
    pub(super) code: Option<String>,
}
