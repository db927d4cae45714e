//! What crosses the seam between a store and the node-local router: a
//! stored log with its cursor, and the error a store call can end with.

use logs_sse_protocol::{Channel, Cursor};

use crate::frame::Frame;

/// One stored log: its cursor, the resource channel it was published to and
/// its encoded frame. The cursor travels with the entry so that a subscriber
/// can merge history and live entries and drop the overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub cursor: Cursor,
    pub channel: Channel,
    pub frame: Frame,
}

/// A store call that did not complete (the store is unreachable, timed out
/// or answered something unexpected). Nothing was half-done: a failed
/// append stored none of its logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the history store is unavailable: {0}")]
    Unavailable(String),
    #[error("the history store answered unexpectedly: {0}")]
    Protocol(String),
}
