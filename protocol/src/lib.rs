//! The wire contract between the Datashop logs gateway and its clients.
//!
//! This crate is pure (no I/O, no async runtime, no web APIs) so that the
//! gateway and the WebAssembly client share exactly one implementation of:
//!
//! - [`channel`]: the channel name grammar `logs:{service}:{workspace}[:{resource}]`,
//! - [`cursor`]: resume positions (`{epoch}-{seq}`) and how they are written,
//! - [`digits`]: integers as text without `core::fmt` (for the wasm client's size),
//! - [`query`]: the `channels=` / `since=` query of `GET /api/logs/stream`,
//! - [`wire`]: the JSON payloads of the SSE events the gateway sends,
//! - [`publish`]: the body of `POST /api/logs/publish`.
//!
//! Everything that parses untrusted input returns a typed error that names
//! the problem; nothing here panics on input.

pub mod channel;
pub mod cursor;
pub mod digits;
pub mod publish;
pub mod query;
pub mod wire;

pub use channel::{Channel, ChannelError, Segment};
pub use cursor::{Cursor, CursorError, Epoch, ResumeFrom};
pub use query::{QueryError, StreamQuery};
pub use wire::{
    ChannelStatus, CloseEvent, CloseReason, HelloEvent, LogEvent, StatusKind, EVENT_CLOSE,
    EVENT_HELLO, EVENT_LOG, EVENT_PING, EVENT_STATUS,
};
