//! What the browser and the SharedWorker tests share: waiting without a
//! `window` (gloo timers run in both) and reading the client's snapshots.

use js_sys::{Array, Reflect};
use wasm_bindgen::{JsCast, JsValue};

pub async fn sleep(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// Waits until `cond` holds; fails the test after `timeout_ms`.
pub async fn wait_for(what: &str, timeout_ms: u32, mut cond: impl FnMut() -> bool) {
    let mut waited = 0;
    while !cond() {
        assert!(
            waited < timeout_ms,
            "timed out after {timeout_ms} ms waiting for {what}"
        );
        sleep(20).await;
        waited += 20;
    }
}

pub fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// The `logData.n` of a subscription's buffered logs, in order.
pub fn ns(s: &logs_sse_client_wasm::wasm::LogsSubscription) -> Vec<u64> {
    let entries: Array = s.snapshot().unchecked_into();
    entries
        .iter()
        .map(|e| get(&get(&e, "logData"), "n").as_f64().unwrap_or(-1.0) as u64)
        .collect()
}
