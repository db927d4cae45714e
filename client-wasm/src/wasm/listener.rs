//! Owned event listeners, the owned `EventSource`, and deferred work.
//!
//! Every closure handed to the browser is owned by a [`Listener`], whose
//! `Drop` removes it from its target before the closure is freed. An
//! [`OwnedEventSource`] owns the stream (an `EventSource`, or what the
//! `transport` option opened) and its listeners; dropping it closes the
//! stream. Nothing is leaked with `Closure::forget`. [`defer`]
//! runs work after the current callback returns, so that a closure is
//! never freed while it runs.

use std::cell::RefCell;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventSource, EventSourceInit, EventTarget};

use super::convert::StreamTransport;

#[wasm_bindgen]
extern "C" {
    /// The global `queueMicrotask` (windows and workers alike).
    #[wasm_bindgen(js_name = queueMicrotask)]
    fn queue_microtask(callback: &wasm_bindgen::JsValue);
}

thread_local! {
    /// Work waiting for the next microtask, in order.
    static DEFERRED: RefCell<Vec<Box<dyn FnOnce()>>> = const { RefCell::new(Vec::new()) };
    /// The one callback that runs it (one closure for all deferred work
    /// keeps the wasm-bindgen glue per closure type to a single copy).
    static RUN_DEFERRED: Closure<dyn FnMut()> = Closure::new(|| {
        for task in DEFERRED.with(RefCell::take) {
            task();
        }
    });
}

/// Runs `f` in a microtask: after the current JS callback (and the Rust
/// code it called) has returned.
pub fn defer(f: Box<dyn FnOnce()>) {
    let first = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        d.push(f);
        d.len() == 1
    });
    if first {
        RUN_DEFERRED.with(|run| queue_microtask(run.as_ref()));
    }
}

/// One registered listener; removed on drop.
pub struct Listener {
    target: EventTarget,
    name: &'static str,
    closure: Closure<dyn FnMut(Event)>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("name", &self.name)
            .finish()
    }
}

impl Listener {
    pub fn new(target: &EventTarget, name: &'static str, f: impl FnMut(Event) + 'static) -> Self {
        let closure = Closure::<dyn FnMut(Event)>::new(f);
        // addEventListener only throws for a non-callable listener.
        let _ = target.add_event_listener_with_callback(name, closure.as_ref().unchecked_ref());
        Listener {
            target: target.clone(),
            name,
            closure,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(self.name, self.closure.as_ref().unchecked_ref());
    }
}

/// The SSE event names the client listens to (`ping` only feeds the
/// core's watchdog: keep-alive comments are invisible to JS).
pub const STREAM_EVENTS: [&str; 5] = [
    logs_sse_protocol::EVENT_HELLO,
    logs_sse_protocol::EVENT_STATUS,
    logs_sse_protocol::EVENT_LOG,
    logs_sse_protocol::EVENT_PING,
    logs_sse_protocol::EVENT_CLOSE,
];

/// An `EventSource` with its listeners; closed and unhooked on drop.
#[derive(Debug)]
pub struct OwnedEventSource {
    source: EventSource,
    listeners: Vec<Listener>,
}

impl OwnedEventSource {
    /// Opens `url` (through `transport.open` when there is one, else
    /// `new EventSource`). `on_open`, `on_error` and `on_event(name, event)`
    /// are called for the stream's events.
    pub fn open(
        url: &str,
        with_credentials: bool,
        transport: Option<&StreamTransport>,
        on_open: impl FnMut(Event) + 'static,
        on_error: impl FnMut(Event) + 'static,
        on_event: impl Fn(&'static str, Event) + Clone + 'static,
    ) -> Result<Self, wasm_bindgen::JsValue> {
        let source = match transport {
            // Its listeners and `close` are called by name (structurally):
            // any EventTarget with a `close` method works.
            Some(t) => t.open(url, with_credentials)?,
            None => {
                let init = EventSourceInit::new();
                init.set_with_credentials(with_credentials);
                EventSource::new_with_event_source_init_dict(url, &init)?
            }
        };
        let target: &EventTarget = source.as_ref();
        let mut listeners = Vec::with_capacity(2 + STREAM_EVENTS.len());
        listeners.push(Listener::new(target, "open", on_open));
        listeners.push(Listener::new(target, "error", on_error));
        for name in STREAM_EVENTS {
            let on_event = on_event.clone();
            listeners.push(Listener::new(target, name, move |e| on_event(name, e)));
        }
        Ok(OwnedEventSource { source, listeners })
    }

    /// Stops the stream at once (no more events), keeping the closures
    /// alive until drop.
    pub fn close(&self) {
        self.source.close();
    }
}

impl Drop for OwnedEventSource {
    fn drop(&mut self) {
        self.source.close();
        self.listeners.clear();
    }
}
