//! The pure core of the client: everything that decides, nothing that
//! touches a browser API. Compiled and tested natively.
//!
//! - [`events`]: the gateway's SSE event payloads, read into protocol types,
//! - [`json`]: a small strict JSON reader (fields, strings, raw values),
//! - [`options`]: client and subscription options, bounds and defaults,
//! - [`backoff`]: full-jitter exponential reconnect delays,
//! - [`buffer`]: the bounded, deduplicated log buffer of a subscription,
//! - [`registry`]: channel reference counts, linger, resume cursors,
//! - [`status`]: observable connection states and failure reasons,
//! - [`auth`]: the subscriber token, its refresh policy and its place in the URL,
//! - [`persist`]: the versioned `sessionStorage` record format,
//! - [`text`]: messages built without `core::fmt` (the `text!` macro),
//! - [`engine`]: the state machine tying them together.

pub mod auth;
pub mod backoff;
pub mod buffer;
pub mod engine;
pub mod events;
pub mod json;
pub mod options;
pub mod persist;
pub mod registry;
pub mod status;
pub mod text;
