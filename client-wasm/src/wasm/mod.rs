//! The browser boundary (compiled for `wasm32` only): a thin layer that
//! executes what the core decides.
//!
//! - [`client`]: the `#[wasm_bindgen]` `LogsClient` and its handles, the
//!   effect pump, timers and window listeners,
//! - [`listener`]: owned event listeners and the owned `EventSource`
//!   (their `Drop` removes the listeners and closes the stream),
//! - [`probe`]: the `fetch` that learns why a stream failed to open,
//! - [`storage`]: `sessionStorage` access that never throws,
//! - [`token`]: calling the application's token getter (its answer goes to
//!   a callback, as the probe's does: neither module imports [`client`]),
//! - [`convert`]: every JS <-> Rust conversion, errors and TypeScript types.

pub mod client;
pub mod convert;
pub mod listener;
pub mod probe;
pub mod storage;
pub mod token;

pub use client::{LogsClient, LogsSubscription, StatusListener};
pub use convert::ClientError;

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(thread_local_v2, js_name = window)]
    static WINDOW: Option<web_sys::Window>;
    /// The global scope: the `window` of a page, the `self` of a worker.
    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL: web_sys::EventTarget;
    /// The global `navigator` (`Navigator` or `WorkerNavigator`).
    type GlobalNavigator;
    #[wasm_bindgen(thread_local_v2, js_name = navigator)]
    static NAVIGATOR: Option<GlobalNavigator>;
    #[wasm_bindgen(method, getter, js_name = onLine)]
    fn on_line(this: &GlobalNavigator) -> bool;
}

/// The page's `window` (`None` where there is none, as in a worker). One
/// import, where `web_sys::window()` asks `js_sys::global()`, which tries
/// `globalThis`, `self`, `window` and `global` through four. Only what a
/// worker lacks anyway goes through it (`document`, `sessionStorage`):
/// streams, requests, timers and `online()` use globals.
pub fn window() -> Option<web_sys::Window> {
    WINDOW.with(Clone::clone)
}

/// The global scope, for its `online` and `pagehide` events.
pub fn global() -> web_sys::EventTarget {
    GLOBAL.with(Clone::clone)
}

/// `navigator.onLine` of the page or the worker (true where there is none).
pub fn online() -> bool {
    NAVIGATOR.with(|n| n.as_ref().map_or(true, GlobalNavigator::on_line))
}

/// Makes panics readable: the message goes to `console.error` and is thrown
/// as a JS `Error` instead of an opaque `unreachable` trap. The size build
/// (`-Cpanic=immediate-abort`) has no hook to call: a panic traps at once,
/// and the messages are left out of the module.
pub fn install_panic_hook() {
    #[cfg(not(panic = "immediate-abort"))]
    install();
}

#[cfg(not(panic = "immediate-abort"))]
fn install() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = format!("logs-sse-client: {info}");
            web_sys::console::error_1(&message.as_str().into());
            wasm_bindgen::throw_str(&message);
        }));
    });
}
