//! The browser boundary (wasm32 only).
