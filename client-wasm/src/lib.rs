//! Browser client for the Datashop logs gateway.
//!
//! Layout:
//!
//! - [`core`]: the pure core (no web APIs): subscription registry, routing,
//!   buffers, cursors, backoff, persistence format, connection state
//!   machine. Tested natively with `cargo test`.
//! - `wasm` (only on `wasm32`): the thin browser boundary: the
//!   `#[wasm_bindgen]` `LogsClient`, the owned `EventSource`, timers,
//!   `sessionStorage`, the probe `fetch`, JS conversions.

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod wasm;
