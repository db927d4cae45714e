//! Calls the application's token getter and hands its answer to a
//! callback (the client passes one that feeds the engine, as with the
//! probe, so this module knows nothing of the client).
//!
//! The getter may return a token, `null`/`undefined`, a promise of either,
//! or throw. Every outcome arrives through a promise, so the answer always
//! comes in a later microtask and never inside the effect pump that asked
//! for it (the engine sees it as a fresh input, in order).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;

use super::convert::{error_text, token_answer};
use super::listener::defer;

/// One call in flight. Its two callbacks hold it (a deliberate cycle, as
/// in the probe) until the promise settles; then they are released after
/// they return. A getter whose promise never settles keeps its call alive;
/// the engine stops waiting for it after its timeout.
struct Pending<F> {
    /// Gets the answer (once: only one callback runs). Generic rather than
    /// boxed: there is one caller, so no vtable in the build.
    done: F,
    /// The getter threw: the promise carries the thrown value.
    threw: bool,
    callbacks: Vec<Closure<dyn FnMut(JsValue)>>,
}

/// The getter's answer: a token, none, or why it failed.
pub(super) type Answer = Result<Option<String>, String>;

fn settle<F: FnMut(Answer)>(pending: &Rc<RefCell<Pending<F>>>, answer: Answer) {
    let mut p = pending.borrow_mut();
    let callbacks = std::mem::take(&mut p.callbacks);
    // One of the callbacks is running now: free them after it returns.
    defer(Box::new(move || drop(callbacks)));
    // Called with this call's borrow held: nothing `done` runs can reach
    // this `Pending` (its callbacks are already taken).
    (p.done)(answer);
}

/// Calls `getter` with no arguments and hands its answer to `done` (in a
/// later microtask, whatever the getter does).
pub(super) fn call(getter: &Function, done: impl FnMut(Answer) + 'static) {
    // `call1` with `undefined` rather than `call0`, and a thrown value
    // passed through `resolve` with a flag rather than `Promise.reject`:
    // the client already imports the former, and each import costs glue.
    let (value, threw) = match getter.call1(&JsValue::NULL, &JsValue::UNDEFINED) {
        Ok(value) => (value, false),
        Err(error) => (error, true),
    };
    let promise = Promise::resolve(&value);
    let pending = Rc::new(RefCell::new(Pending {
        done,
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
