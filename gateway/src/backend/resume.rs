//! The resume/gap rules, shared by every store: from a channel's floor, the
//! family's epoch and head, and where the stream asked to start, the status
//! the stream is told.
//!
//! A cursor of the same epoch at or above the floor and not ahead of the
//! head resumes exactly; otherwise the stream is told `gap` (with the
//! reason) and replays from the floor. Never silence.

use logs_sse_protocol::{Channel, ChannelStatus, Cursor, Epoch, ResumeFrom, StatusKind};

use super::ChannelRead;

pub const FOREIGN_EPOCH: &str = "foreign_epoch: the cursor comes from another gateway epoch (a restart or another cluster); logs since then may be missing";
pub const EXPIRED: &str =
    "expired: the history no longer reaches back to the cursor; logs in between are missing";
pub const UNKNOWN_CURSOR: &str = "unknown_cursor: the cursor is ahead of this gateway";

/// Whether `resume` continues exactly from history with this floor, epoch
/// and head (what a store needs to know to choose where to start reading).
pub fn resumes_exactly(cursor: Cursor, epoch: Epoch, floor: u64, head: u64) -> bool {
    cursor.epoch == epoch && cursor.seq >= floor && cursor.seq <= head
}

/// The status of one channel; `replayed` is filled in by the caller.
pub fn status(
    channel: &Channel,
    resume: ResumeFrom,
    epoch: Epoch,
    head: u64,
    read: &ChannelRead,
) -> ChannelStatus {
    let reason = match resume {
        ResumeFrom::After(c) if c.epoch != epoch => Some(FOREIGN_EPOCH),
        ResumeFrom::After(c) if c.seq < read.floor => Some(EXPIRED),
        ResumeFrom::After(c) if c.seq > head => Some(UNKNOWN_CURSOR),
        _ => None,
    };
    let status = match (resume, reason) {
        (_, Some(_)) => StatusKind::Gap,
        (ResumeFrom::After(_), None) => StatusKind::Resumed,
        _ => StatusKind::Subscribed,
    };
    ChannelStatus {
        channel: channel.clone(),
        status,
        cursor: Some(Cursor::new(epoch, read.start)),
        replayed: 0,
        reason: reason.map(str::to_owned),
    }
}

/// The status of a channel the store refused to track.
pub fn denied(channel: &Channel, rejection: &super::PublishRejection) -> ChannelStatus {
    let reason = match rejection {
        super::PublishRejection::ChannelLimit { max } => {
            format!("channel_limit: the gateway tracks its maximum of {max} channels")
        }
        other => format!("{}: {other}", other.code()),
    };
    ChannelStatus {
        channel: channel.clone(),
        status: StatusKind::Denied,
        cursor: None,
        replayed: 0,
        reason: Some(reason),
    }
}
