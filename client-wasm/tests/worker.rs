//! The client in a SharedWorker (no `window`, no `document`, no
//! `sessionStorage`): it streams from the real gateway, changes channels
//! live and reports what it cannot persist. URLs as for `browser.rs`.

#![cfg(target_arch = "wasm32")]
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Reflect, JSON};
use logs_sse_client_wasm::wasm::LogsClient;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

mod support;
use support::{get, ns, wait_for};

wasm_bindgen_test_configure!(run_in_shared_worker);

const GATEWAY: Option<&str> = option_env!("LOGS_SSE_TEST_GATEWAY");
const TOKEN: &str = "etl-test-token";

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &web_sys::RequestInit) -> js_sys::Promise;
}

async fn publish(base: &str, ws: &str, wf: &str, range: std::ops::RangeInclusive<u64>) {
    let items: Vec<String> = range
        .map(|n| format!(r#"{{"service":"etl","workspace_id":"{ws}","workflow_id":"{wf}","logData":{{"n":{n}}}}}"#))
        .collect();
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&format!("[{}]", items.join(","))));
    let headers = Object::new();
    Reflect::set(&headers, &"Content-Type".into(), &"application/json".into()).unwrap();
    Reflect::set(
        &headers,
        &"Authorization".into(),
        &format!("Bearer {TOKEN}").into(),
    )
    .unwrap();
    init.set_headers(&headers);
    let url = format!("{base}/api/logs/publish");
    let resp: web_sys::Response = wasm_bindgen_futures::JsFuture::from(global_fetch(&url, &init))
        .await
        .unwrap()
        .unchecked_into();
    assert_eq!(resp.status(), 202, "publish");
}

#[wasm_bindgen_test]
async fn the_client_streams_in_a_shared_worker() {
    let Some(base) = GATEWAY else {
        console_log!("skipped: LOGS_SSE_TEST_GATEWAY not set (run test.sh)");
        return;
    };
    let global = js_sys::global();
    assert!(
        get(&global, "window").is_undefined(),
        "a worker has no window"
    );
    assert!(get(&global, "SharedWorkerGlobalScope").is_function());
    let url = format!("{base}/api/logs/stream");
    let ws = format!("ws{}", (js_sys::Math::random() * 1e12) as u64);
    let diagnostics = Rc::new(RefCell::new(Vec::<String>::new()));
    let sink = diagnostics.clone();
    let on_diagnostic = Closure::<dyn FnMut(JsValue)>::new(move |d: JsValue| {
        sink.borrow_mut()
            .push(get(&d, "kind").as_string().unwrap_or_default());
    });
    let options = JSON::parse(r#"{"coalesceMs":10,"lingerMs":100}"#).unwrap();
    Reflect::set(&options, &"onDiagnostic".into(), on_diagnostic.as_ref()).unwrap();
    let c = LogsClient::new(&url, Some(options.unchecked_into())).unwrap();
    let noop: Function = Function::new_no_args("");
    let a = c
        .subscribe(
            &format!("logs:etl:{ws}:wf1"),
            None,
            noop.clone().unchecked_into(),
        )
        .unwrap();
    wait_for("subscribed", 5_000, || {
        a.channel_status().as_deref() == Some("subscribed")
    })
    .await;
    // No sessionStorage here: a persisted subscription says so and streams.
    let persisted = JSON::parse(r#"{"persist":true}"#).unwrap();
    let b = c
        .subscribe(
            &format!("logs:etl:{ws}:wf2"),
            Some(persisted.unchecked_into()),
            noop.unchecked_into(),
        )
        .unwrap();
    assert_eq!(diagnostics.borrow().as_slice(), ["storage"]);
    wait_for("the added channel", 5_000, || {
        b.channel_status().as_deref() == Some("subscribed")
    })
    .await;
    publish(base, &ws, "wf1", 1..=2).await;
    publish(base, &ws, "wf2", 3..=3).await;
    wait_for("the logs", 5_000, || ns(&a).len() == 2 && ns(&b).len() == 1).await;
    assert_eq!(ns(&a), vec![1, 2]);
    assert_eq!(ns(&b), vec![3]);
    let status: JsValue = c.status().into();
    assert_eq!(get(&status, "state").as_string().as_deref(), Some("open"));
    let changes = get(&c.stats(), "channelChanges");
    assert_eq!(
        get(&changes, "live").as_f64(),
        Some(1.0),
        "added live (global fetch)"
    );
    c.close().unwrap();
}
