//! The requests whose answer is a status and the gateway's JSON error: the
//! probe and the control call.
//!
//! The probe: `EventSource` hides HTTP status codes, so after a
//! stream fails to open the same URL is fetched once to learn the status
//! and the gateway's JSON error. The control call POSTs a channel change
//! to the open stream and reports its answer the same way. A 2xx answer is aborted as soon as its
//! headers arrive; an error body is read (bounded) and then aborted. The
//! whole probe, body included, is aborted after a timeout, so a gateway
//! that accepts connections but never answers still yields a reason.
//!
//! Written with promise callbacks rather than `async`: the futures
//! executor of `wasm-bindgen-futures` cost about 5 KB of the gzipped
//! build for this one request.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{AbortController, RequestCredentials, RequestInit, Response};

use super::convert::{error_text, StreamTransport};
use super::listener::defer;
use crate::core::status::ProbeResult;

/// Longest error body looked at.
const MAX_BODY: usize = 4096;

type Callback = Closure<dyn FnMut(JsValue)>;

/// How a request travels: with the page's cookies or not, and through the
/// `transport` option's `fetch` when there is one.
#[derive(Debug, Clone, Copy)]
pub struct Via<'a> {
    pub with_credentials: bool,
    pub transport: Option<&'a StreamTransport>,
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// The global `fetch` (a page's or a worker's: a SharedWorker has no
    /// `window`).
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &RequestInit) -> Promise;
}

/// One probe in flight. Its callbacks hold it (a deliberate cycle) until
/// it reports; then the callbacks are released after they return.
struct Flight {
    controller: Option<AbortController>,
    timeout_ms: u32,
    timed_out: bool,
    /// Set once the response headers arrived.
    status: Option<u16>,
    timer: Option<gloo_timers::callback::Timeout>,
    callbacks: Vec<Callback>,
    done: Option<Box<dyn FnOnce(ProbeResult)>>,
}

type Shared = Rc<RefCell<Flight>>;

fn abort(flight: &Shared) {
    if let Some(c) = &flight.borrow().controller {
        c.abort();
    }
}

/// Reports `result` once and releases everything the probe holds.
fn finish(flight: &Shared, result: ProbeResult) {
    let (done, callbacks, timer) = {
        let mut f = flight.borrow_mut();
        (
            f.done.take(),
            std::mem::take(&mut f.callbacks),
            f.timer.take(),
        )
    };
    // One of the callbacks is running now: free them after it returns.
    defer(Box::new(move || drop((callbacks, timer))));
    if let Some(done) = done {
        done(result);
    }
}

fn callback(flight: &Shared, f: fn(&Shared, JsValue)) -> Callback {
    let flight = flight.clone();
    Closure::new(move |value| f(&flight, value))
}

/// `then(on_ok, on_failure)` with callbacks owned by the flight.
fn then(flight: &Shared, promise: &Promise, on_ok: fn(&Shared, JsValue)) {
    let ok = callback(flight, on_ok);
    let failed = callback(flight, on_failure);
    let _ = promise.then2(&ok, &failed);
    flight.borrow_mut().callbacks.extend([ok, failed]);
}

fn on_response(flight: &Shared, value: JsValue) {
    let response: Response = value.unchecked_into();
    let status = response.status();
    flight.borrow_mut().status = Some(status);
    if (200..300).contains(&status) {
        abort(flight);
        return finish(
            flight,
            ProbeResult::Http {
                status,
                code: None,
                message: None,
            },
        );
    }
    match response.text() {
        Ok(body) => then(flight, &body, on_body),
        Err(_) => finish(flight, ProbeResult::from_http(status, "")),
    }
}

fn on_body(flight: &Shared, value: JsValue) {
    abort(flight);
    let status = flight.borrow().status.unwrap_or_default();
    let body = value.as_string().unwrap_or_default();
    let end = body
        .char_indices()
        .map(|(i, _)| i)
        .find(|i| *i >= MAX_BODY)
        .unwrap_or(body.len());
    let body = body.get(..end).unwrap_or_default();
    finish(flight, ProbeResult::from_http(status, body));
}

fn on_failure(flight: &Shared, error: JsValue) {
    let (timed_out, timeout_ms, status) = {
        let f = flight.borrow();
        (f.timed_out, f.timeout_ms, f.status)
    };
    // Aborting makes the pending fetch or body read reject; the flag tells
    // that rejection apart from a network error.
    let result = match status {
        _ if timed_out => ProbeResult::timed_out(timeout_ms),
        Some(status) => ProbeResult::from_http(status, ""),
        None => ProbeResult::Unreachable {
            message: error_text(&error),
        },
    };
    finish(flight, result);
}

/// Fetches `url` the way the `EventSource` did and calls `done` with what
/// it learned, after at most `timeout_ms` (normally `PROBE_TIMEOUT_MS`)
/// when the browser can abort requests.
pub fn probe(url: &str, via: Via<'_>, timeout_ms: u32, done: impl FnOnce(ProbeResult) + 'static) {
    let headers = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&headers, &"Accept".into(), &"text/event-stream".into());
    let done = Box::new(done);
    request(url, "GET", &headers, None, via, timeout_ms, done);
}

/// POSTs a channel change to the stream's control endpoint `url` with its
/// secret and, when there is one, the subscriber token, and calls `done`
/// with the answer's status and error code (or why there was none), after
/// at most `timeout_ms`. The statuses it causes arrive on the stream.
pub fn control(
    url: &str,
    body: &str,
    secret: &str,
    token: Option<&str>,
    via: Via<'_>,
    timeout_ms: u32,
    done: impl FnOnce(ProbeResult) + 'static,
) {
    let headers = js_sys::Object::new();
    let header = |name: &str, value: &str| {
        let _ = js_sys::Reflect::set(&headers, &name.into(), &value.into());
    };
    header("Content-Type", "application/json");
    header("X-Stream-Secret", secret);
    if let Some(token) = token {
        header("Authorization", &crate::text!("Bearer ", token));
    }
    let done = Box::new(done);
    request(url, "POST", &headers, Some(body), via, timeout_ms, done);
}

/// One request whose answer is classified as a [`ProbeResult`] (`done`
/// boxed: one copy of this for both requests), through `transport.fetch`
/// when there is one, else the global `fetch`.
fn request(
    url: &str,
    method: &str,
    headers: &js_sys::Object,
    body: Option<&str>,
    via: Via<'_>,
    timeout_ms: u32,
    done: Box<dyn FnOnce(ProbeResult)>,
) {
    let controller = AbortController::new().ok();
    let init = RequestInit::new();
    init.set_method(method);
    init.set_credentials(if via.with_credentials {
        RequestCredentials::Include
    } else {
        RequestCredentials::SameOrigin
    });
    init.set_headers(headers);
    if let Some(body) = body {
        init.set_body(&body.into());
    }
    if let Some(c) = &controller {
        init.set_signal(Some(&c.signal()));
    }
    let flight = Rc::new(RefCell::new(Flight {
        controller,
        timeout_ms,
        timed_out: false,
        status: None,
        timer: None,
        callbacks: Vec::with_capacity(4),
        done: Some(done),
    }));
    let weak = Rc::downgrade(&flight);
    let timer = gloo_timers::callback::Timeout::new(timeout_ms, move || {
        if let Some(flight) = weak.upgrade() {
            flight.borrow_mut().timed_out = true;
            abort(&flight);
        }
    });
    flight.borrow_mut().timer = Some(timer);
    let promise = match via.transport {
        // Whatever it returns is awaited; a throw fails like a rejection.
        Some(t) => t.fetch(url, &init).map(|value| Promise::resolve(&value)),
        None => Ok(global_fetch(url, &init)),
    };
    match promise {
        Ok(promise) => then(&flight, &promise, on_response),
        // After the caller's step, as a rejection would be.
        Err(error) => defer(Box::new(move || on_failure(&flight, error))),
    }
}
