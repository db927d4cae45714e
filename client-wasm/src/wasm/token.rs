//! Calls the application's token getter and hands its answer to the engine.
//!
//! The getter may return a token, `null`/`undefined`, a promise of either,
//! or throw. Every outcome arrives through a promise, so the answer always
//! comes in a later microtask and never inside the effect pump that asked
//! for it (the engine sees it as a fresh input, in order).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;

use super::client::{deliver_token, Inner};
use super::convert::{error_text, token_answer};
use super::listener::defer;

/// One call in flight. Its two callbacks hold it (a deliberate cycle, as
/// in the probe) until the promise settles; then they are released after
/// they return. A getter whose promise never settles keeps its call alive;
/// the engine stops waiting for it after its timeout.
struct Pending {
    client: Weak<RefCell<Inner>>,
    request: u64,
    /// The getter threw: the promise carries the thrown value.
    threw: bool,
    callbacks: Vec<Closure<dyn FnMut(JsValue)>>,
}

fn settle(pending: &Rc<RefCell<Pending>>, answer: Result<Option<String>, String>) {
    let (client, request, callbacks) = {
        let mut p = pending.borrow_mut();
        let callbacks = std::mem::take(&mut p.callbacks);
        (p.client.clone(), p.request, callbacks)
    };
    // One of the callbacks is running now: free them after it returns.
    defer(Box::new(move || drop(callbacks)));
    deliver_token(&client, request, answer);
}

/// Calls `getter` with no arguments; its answer goes to the client's engine
/// as the answer to fetch `request`.
pub(super) fn call(getter: &Function, client: Weak<RefCell<Inner>>, request: u64) {
    // `call1` with `undefined` rather than `call0`, and a thrown value
    // passed through `resolve` with a flag rather than `Promise.reject`:
    // the client already imports the former, and each import costs glue.
    let (value, threw) = match getter.call1(&JsValue::NULL, &JsValue::UNDEFINED) {
        Ok(value) => (value, false),
        Err(error) => (error, true),
    };
    let promise = Promise::resolve(&value);
    let pending = Rc::new(RefCell::new(Pending {
        client,
        request,
        threw,
        callbacks: Vec::with_capacity(2),
    }));
    // One closure type for both outcomes: one copy of its glue.
    let callback = |fulfilled: bool| {
        let p = pending.clone();
        Closure::new(move |value: JsValue| {
            let answer = if fulfilled && !p.borrow().threw {
                token_answer(&value)
            } else {
                Err(error_text(&value))
            };
            settle(&p, answer);
        })
    };
    let (ok, failed) = (callback(true), callback(false));
    let _ = promise.then2(&ok, &failed);
    pending.borrow_mut().callbacks.extend([ok, failed]);
}
