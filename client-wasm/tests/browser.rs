//! Browser tests: the real client in headless Chromium against the real
//! gateway, started and restarted by `tests/harness/control.py`.
//!
//! `test.sh` passes the URLs at compile time:
//! `LOGS_SSE_TEST_GATEWAY` (gateway base URL), `LOGS_SSE_TEST_AUTH_GATEWAY`
//! (a second gateway that requires subscriber JWTs in `access_token`) and
//! `LOGS_SSE_TEST_CONTROL`. Without them every test returns at once, saying
//! it was skipped.

#![cfg(target_arch = "wasm32")]
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Function, Object, Reflect, JSON};
use logs_sse_client_wasm::wasm::convert::{
    ClientOptionsJs, StatusCallback, SubscribeOptionsJs, UpdateCallback,
};
use logs_sse_client_wasm::wasm::LogsClient;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

mod support;
use support::{get, ns, sleep, wait_for};

wasm_bindgen_test_configure!(run_in_browser);

const GATEWAY: Option<&str> = option_env!("LOGS_SSE_TEST_GATEWAY");
const CONTROL: Option<&str> = option_env!("LOGS_SSE_TEST_CONTROL");
const AUTH_GATEWAY: Option<&str> = option_env!("LOGS_SSE_TEST_AUTH_GATEWAY");
const TOKEN: &str = "etl-test-token";

fn urls() -> Option<(String, &'static str)> {
    match (GATEWAY, CONTROL) {
        (Some(g), Some(c)) => Some((format!("{g}/api/logs/stream"), c)),
        _ => {
            console_log!(
                "skipped: LOGS_SSE_TEST_GATEWAY / LOGS_SSE_TEST_CONTROL not set (run test.sh)"
            );
            None
        }
    }
}

/// Waits until `cond` holds; false after `timeout_ms`.
async fn wait_until(timeout_ms: u32, mut cond: impl FnMut() -> bool) -> bool {
    let mut waited = 0;
    while !cond() {
        if waited >= timeout_ms {
            return false;
        }
        sleep(20).await;
        waited += 20;
    }
    true
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", (js_sys::Math::random() * 1e12) as u64)
}

fn json(text: &str) -> JsValue {
    JSON::parse(text).unwrap()
}

fn get_str(v: &JsValue, key: &str) -> Option<String> {
    get(v, key).as_string()
}

async fn fetch(url: &str, body: Option<&str>, token: Option<&str>) -> (u16, String) {
    let init = web_sys::RequestInit::new();
    init.set_method(if body.is_some() { "POST" } else { "GET" });
    let headers = Object::new();
    if let Some(b) = body {
        init.set_body(&JsValue::from_str(b));
        Reflect::set(&headers, &"Content-Type".into(), &"application/json".into()).unwrap();
    }
    if let Some(t) = token {
        Reflect::set(
            &headers,
            &"Authorization".into(),
            &format!("Bearer {t}").into(),
        )
        .unwrap();
    }
    init.set_headers(&headers);
    let window = web_sys::window().unwrap();
    let resp: web_sys::Response =
        wasm_bindgen_futures::JsFuture::from(window.fetch_with_str_and_init(url, &init))
            .await
            .unwrap()
            .unchecked_into();
    let text = wasm_bindgen_futures::JsFuture::from(resp.text().unwrap())
        .await
        .unwrap();
    (resp.status(), text.as_string().unwrap_or_default())
}

async fn control(control: &str, action: &str) {
    let (status, body) = fetch(&format!("{control}/{action}"), Some("{}"), None).await;
    assert_eq!(status, 200, "control {action}: {body}");
}

/// Publishes logs `{"n": i}` for i in `range` to `logs:etl:{ws}:{wf}`.
async fn publish(ws: &str, wf: &str, range: std::ops::RangeInclusive<u64>) {
    publish_to(GATEWAY.unwrap(), ws, wf, range).await;
}

/// [`publish`] to the gateway at `base`.
async fn publish_to(base: &str, ws: &str, wf: &str, range: std::ops::RangeInclusive<u64>) {
    let items: Vec<String> = range
        .map(|n| format!(r#"{{"service":"etl","workspace_id":"{ws}","workflow_id":"{wf}","logData":{{"n":{n},"msg":"log {n}"}}}}"#))
        .collect();
    let (status, body) = fetch(
        &format!("{base}/api/logs/publish"),
        Some(&format!("[{}]", items.join(","))),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 202, "publish: {body}");
}

/// Wraps `window.EventSource` once to count constructions.
fn event_sources_created() -> u32 {
    let code = r#"
        if (!window.__esWrapped) {
            const Original = window.EventSource;
            window.__esCount = 0;
            window.EventSource = class extends Original {
                constructor(url, init) { super(url, init); window.__esCount += 1; }
            };
            window.__esWrapped = true;
        }
        return window.__esCount;
    "#;
    Function::new_no_args(code)
        .call0(&JsValue::NULL)
        .unwrap()
        .as_f64()
        .unwrap() as u32
}

/// Collects the values a callback receives.
struct Recorder {
    seen: Rc<RefCell<Vec<JsValue>>>,
    closure: Closure<dyn FnMut(JsValue)>,
}

impl Recorder {
    fn new() -> Self {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let sink = seen.clone();
        let closure =
            Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| sink.borrow_mut().push(v));
        Recorder { seen, closure }
    }
    fn function(&self) -> Function {
        self.closure.as_ref().unchecked_ref::<Function>().clone()
    }
    fn update(&self) -> UpdateCallback {
        self.function().unchecked_into()
    }
    fn status(&self) -> StatusCallback {
        self.function().unchecked_into()
    }
    fn of_type(&self, key: &str, value: &str) -> Vec<JsValue> {
        self.seen
            .borrow()
            .iter()
            .filter(|v| get_str(v, key).as_deref() == Some(value))
            .cloned()
            .collect()
    }
}

fn client(url: &str, extra: &str, diagnostics: Option<&Recorder>) -> LogsClient {
    let options = json(&format!(
        r#"{{"backoffMinMs":50,"backoffMaxMs":400,"lingerMs":100,"coalesceMs":10{extra}}}"#
    ));
    if let Some(d) = diagnostics {
        Reflect::set(&options, &"onDiagnostic".into(), &d.function()).unwrap();
    }
    LogsClient::new(url, Some(options.unchecked_into::<ClientOptionsJs>())).unwrap()
}

fn sub_opts(text: &str) -> Option<SubscribeOptionsJs> {
    Some(json(text).unchecked_into())
}

fn state(c: &LogsClient) -> String {
    get_str(&c.status().into(), "state").unwrap_or_default()
}

fn session_storage() -> web_sys::Storage {
    web_sys::window()
        .unwrap()
        .session_storage()
        .unwrap()
        .unwrap()
}

#[wasm_bindgen_test]
async fn one_event_source_serves_many_subscriptions_and_routes_logs() {
    let Some((url, _)) = urls() else { return };
    let ws = unique("ws");
    let before = event_sources_created();
    let c = client(&url, "", None);
    let r = Recorder::new();
    let wf1 = c
        .subscribe(&format!("logs:etl:{ws}:wf1"), None, r.update())
        .unwrap();
    let wf1b = c
        .subscribe(&format!("logs:etl:{ws}:wf1"), None, r.update())
        .unwrap();
    let wf2 = c
        .subscribe(&format!("logs:etl:{ws}:wf2"), None, r.update())
        .unwrap();
    let svc = c
        .subscribe(&format!("logs:etl:{ws}"), None, r.update())
        .unwrap();
    let other = c
        .subscribe(&format!("logs:faas:{ws}:x"), None, r.update())
        .unwrap();
    wait_for("open", 5_000, || state(&c) == "open").await;
    wait_for("statuses", 5_000, || {
        [&wf1, &wf1b, &wf2, &svc, &other]
            .iter()
            .all(|s| s.channel_status().as_deref() == Some("subscribed"))
    })
    .await;
    publish(&ws, "wf1", 1..=3).await;
    publish(&ws, "wf2", 4..=5).await;
    wait_for("service-level logs", 5_000, || ns(&svc).len() == 5).await;
    assert_eq!(ns(&wf1), vec![1, 2, 3]);
    assert_eq!(ns(&wf1b), vec![1, 2, 3]);
    assert_eq!(ns(&wf2), vec![4, 5]);
    assert_eq!(ns(&svc), vec![1, 2, 3, 4, 5]);
    assert!(ns(&other).is_empty());
    assert_eq!(
        event_sources_created() - before,
        1,
        "one EventSource for five subscriptions"
    );
    // Entries are the gateway's events as published, and snapshots are stable.
    let first = Array::from(&wf1.snapshot().into()).get(0);
    assert_eq!(
        get_str(&first, "channel"),
        Some(format!("logs:etl:{ws}:wf1"))
    );
    assert!(get_str(&first, "cursor").unwrap().contains('-'));
    assert!(get(&first, "ts").as_f64().unwrap() > 0.0);
    assert_eq!(
        get_str(&get(&first, "logData"), "msg").as_deref(),
        Some("log 1")
    );
    assert!(Object::is(&wf1.snapshot().into(), &wf1.snapshot().into()));
    assert!(Object::is_frozen(
        &wf1.snapshot().unchecked_into::<Object>()
    ));
    assert!(!r.of_type("type", "logs").is_empty());
    // StrictMode-style unmount + remount: no new EventSource.
    let channel = wf2.channel();
    drop(wf2);
    let wf2 = c.subscribe(&channel, None, r.update()).unwrap();
    assert_eq!(
        ns(&wf2),
        vec![4, 5],
        "the lingering channel hands its logs over"
    );
    sleep(300).await;
    assert_eq!(event_sources_created() - before, 1);
    c.close().unwrap();
    assert_eq!(state(&c), "closed");
}

#[wasm_bindgen_test]
async fn channels_added_and_removed_mid_stream_lose_nothing() {
    let Some((url, _)) = urls() else { return };
    let ws = unique("ws");
    let before = event_sources_created();
    let c = client(&url, "", None);
    let r = Recorder::new();
    let a = c
        .subscribe(&format!("logs:etl:{ws}:wf1"), None, r.update())
        .unwrap();
    let removed = c
        .subscribe(&format!("logs:etl:{ws}:wf3"), None, r.update())
        .unwrap();
    wait_for("statuses", 5_000, || {
        a.channel_status().is_some() && removed.channel_status().is_some()
    })
    .await;
    let done = Rc::new(Cell::new(false));
    let flag = done.clone();
    let ws2 = ws.clone();
    wasm_bindgen_futures::spawn_local(async move {
        for n in 1..=40 {
            publish(&ws2, "wf1", n..=n).await;
            sleep(10).await;
        }
        flag.set(true);
    });
    sleep(80).await;
    let added = c
        .subscribe(&format!("logs:etl:{ws}:wf2"), None, r.update())
        .unwrap();
    sleep(120).await;
    drop(removed);
    sleep(150).await;
    let added2 = c
        .subscribe(&format!("logs:faas:{ws}:f1"), None, r.update())
        .unwrap();
    wait_for("publisher", 15_000, || done.get()).await;
    wait_for("all 40 logs", 5_000, || ns(&a).len() >= 40).await;
    sleep(100).await;
    assert_eq!(
        ns(&a),
        (1..=40).collect::<Vec<u64>>(),
        "no log lost or repeated"
    );
    // The gateway has the control endpoint: every change went live.
    let opened = event_sources_created() - before;
    assert_eq!(opened, 1, "channel changes keep the one EventSource");
    let changes = get(&c.stats(), "channelChanges");
    assert_eq!(get_str(&changes, "mode").as_deref(), Some("live"));
    let live = get(&changes, "live").as_f64().unwrap_or_default();
    assert!(live >= 3.0, "{live} live changes");
    assert_eq!(get(&changes, "reopened").as_f64(), Some(0.0));
    assert_eq!(
        get_str(&c.status(), "channelChanges").as_deref(),
        Some("live")
    );
    let streamed = c.streamed_channels();
    assert!(
        !streamed.iter().any(|s| s.ends_with(":wf3")),
        "{streamed:?}"
    );
    assert!(streamed.iter().any(|s| s.ends_with(":wf2")), "{streamed:?}");
    drop((added, added2));
}

#[wasm_bindgen_test]
async fn gateway_restart_reconnects_and_reports_the_gap() {
    let Some((url, ctl)) = urls() else { return };
    let ws = unique("ws");
    let c = client(&url, "", None);
    let statuses = Recorder::new();
    let _listener = c.on_status(statuses.status()).unwrap();
    let r = Recorder::new();
    let a = c
        .subscribe(&format!("logs:etl:{ws}:wf1"), None, r.update())
        .unwrap();
    wait_for("subscribed", 5_000, || {
        a.channel_status().as_deref() == Some("subscribed")
    })
    .await;
    publish(&ws, "wf1", 1..=3).await;
    wait_for("3 logs", 5_000, || ns(&a).len() == 3).await;
    control(ctl, "restart").await;
    wait_for("gap reported", 10_000, || {
        !r.of_type("type", "gap").is_empty()
    })
    .await;
    wait_for("open again", 10_000, || state(&c) == "open").await;
    assert!(!statuses.of_type("state", "reconnecting").is_empty());
    assert_eq!(a.channel_status().as_deref(), Some("gap"));
    let gap = r.of_type("type", "gap").remove(0);
    assert!(
        get_str(&gap, "from").is_some(),
        "the gap names the last cursor held"
    );
    publish(&ws, "wf1", 4..=5).await;
    wait_for("logs after the restart", 5_000, || ns(&a).len() == 5).await;
    assert_eq!(ns(&a), vec![1, 2, 3, 4, 5]);
}

#[wasm_bindgen_test]
async fn a_silent_stream_is_dropped_and_a_hanging_probe_times_out() {
    let Some((url, ctl)) = urls() else { return };
    let ws = unique("ws");
    let c = client(&url, "", None);
    let statuses = Recorder::new();
    let _listener = c.on_status(statuses.status()).unwrap();
    let r = Recorder::new();
    let a = c
        .subscribe(&format!("logs:etl:{ws}:wf1"), None, r.update())
        .unwrap();
    wait_for("subscribed", 5_000, || {
        a.channel_status().as_deref() == Some("subscribed")
    })
    .await;
    publish(&ws, "wf1", 1..=2).await;
    wait_for("2 logs", 5_000, || ns(&a).len() == 2).await;
    // The harness gateway pings every second: an idle stream stays open
    // well past the watchdog's 2.5 s.
    let events = || get(&c.stats().into(), "events").as_f64().unwrap_or(0.0);
    let before = events();
    sleep(3_500).await;
    assert_eq!(state(&c), "open");
    assert!(events() - before >= 2.0, "pings arrived");
    // A frozen gateway keeps the connection open and sends nothing. Check
    // without asserting until the gateway is thawed, so a failure here
    // cannot leave it frozen for the other tests.
    control(ctl, "freeze").await;
    let silent =
        wait_until(6_000, || {
            statuses.seen.borrow().iter().any(|s| {
                get_str(s, "message").is_some_and(|m| m.starts_with("the stream went silent"))
            })
        })
        .await;
    let status_when_silent: JsValue = c.status().into();
    let probed = Rc::new(RefCell::new(None));
    let slot = probed.clone();
    let started = js_sys::Date::now();
    logs_sse_client_wasm::wasm::probe::probe(
        &format!("{url}?channels=logs:etl:{ws}:wf1"),
        logs_sse_client_wasm::wasm::probe::Via {
            with_credentials: false,
            transport: None,
        },
        500,
        move |result| *slot.borrow_mut() = Some(result),
    );
    let answered = wait_until(3_000, || probed.borrow().is_some()).await;
    let probe_ms = js_sys::Date::now() - started;
    control(ctl, "thaw").await;
    assert!(silent, "the silent stream was not detected");
    assert_eq!(
        get_str(&status_when_silent, "reason").as_deref(),
        Some("network")
    );
    assert!(answered, "the probe did not give up");
    assert_eq!(
        probed.borrow_mut().take(),
        Some(logs_sse_client_wasm::core::status::ProbeResult::timed_out(
            500
        ))
    );
    assert!(probe_ms < 1_500.0, "probe took {probe_ms} ms");
    // Back to normal: it reconnects and resumes without loss.
    wait_for("open again", 15_000, || state(&c) == "open").await;
    publish(&ws, "wf1", 3..=4).await;
    wait_for("logs after the freeze", 5_000, || ns(&a).len() == 4).await;
    assert_eq!(ns(&a), vec![1, 2, 3, 4]);
}

#[wasm_bindgen_test]
async fn persistence_survives_recreating_the_client_and_fills_the_gap() {
    let Some((url, _)) = urls() else { return };
    let ws = unique("ws");
    let channel = format!("logs:etl:{ws}:wf1");
    let key = unique("test-key-");
    let opts = format!(r#"{{"persistKey":"{key}"}}"#);
    let r = Recorder::new();
    {
        let c1 = client(&url, "", None);
        let s = c1.subscribe(&channel, sub_opts(&opts), r.update()).unwrap();
        wait_for("subscribed", 5_000, || s.channel_status().is_some()).await;
        publish(&ws, "wf1", 1..=3).await;
        wait_for("3 logs", 5_000, || ns(&s).len() == 3).await;
        drop(s);
        c1.close().unwrap();
    }
    let stored = session_storage()
        .get_item(&key)
        .unwrap()
        .expect("persisted on unsubscribe");
    assert!(stored.contains("\"v\":1"), "{stored}");
    // Logs published while no client runs come from the gateway's history.
    publish(&ws, "wf1", 4..=5).await;
    let c2 = client(&url, "", None);
    let s = c2.subscribe(&channel, sub_opts(&opts), r.update()).unwrap();
    assert_eq!(ns(&s), vec![1, 2, 3], "restored at once");
    wait_for("resumed", 5_000, || ns(&s).len() == 5).await;
    assert_eq!(ns(&s), vec![1, 2, 3, 4, 5]);
    assert_eq!(s.channel_status().as_deref(), Some("resumed"));
    session_storage().remove_item(&key).unwrap();
}

#[wasm_bindgen_test]
async fn corrupt_or_foreign_stored_data_is_discarded() {
    let Some((url, _)) = urls() else { return };
    let diags = Recorder::new();
    let c = client(&url, "", Some(&diags));
    let storage = session_storage();
    let r = Recorder::new();
    let bad = unique("bad-");
    storage.set_item(&bad, "{not json").unwrap();
    let s = c
        .subscribe(
            "logs:etl:wsx:wf1",
            sub_opts(&format!(r#"{{"persistKey":"{bad}"}}"#)),
            r.update(),
        )
        .unwrap();
    assert!(ns(&s).is_empty());
    let foreign = unique("foreign-");
    storage
        .set_item(&foreign, r#"{"format":"datashop-logs-sse","v":1,"channel":"logs:etl:other:wf1","savedAt":1,"logs":[]}"#)
        .unwrap();
    let s2 = c
        .subscribe(
            "logs:etl:wsx:wf2",
            sub_opts(&format!(r#"{{"persistKey":"{foreign}"}}"#)),
            r.update(),
        )
        .unwrap();
    assert!(ns(&s2).is_empty());
    let storage_diags = diags.of_type("kind", "storage");
    assert_eq!(
        storage_diags.len(),
        2,
        "one diagnostic per discarded record"
    );
    assert_eq!(storage.get_item(&bad).unwrap(), None, "removed");
    assert_eq!(storage.get_item(&foreign).unwrap(), None, "removed");
    c.close().unwrap();
}

fn clear_fillers(storage: &web_sys::Storage) {
    let mut keys = Vec::new();
    for i in 0..storage.length().unwrap() {
        if let Some(k) = storage.key(i).unwrap() {
            if k.starts_with("filler-") {
                keys.push(k);
            }
        }
    }
    for k in keys {
        storage.remove_item(&k).unwrap();
    }
}

#[wasm_bindgen_test]
async fn full_storage_quota_does_not_break_streaming() {
    let Some((url, _)) = urls() else { return };
    let storage = session_storage();
    clear_fillers(&storage);
    // Fill sessionStorage until it refuses even small writes.
    let mut i = 0;
    for size in [1 << 20, 64 << 10, 1 << 10, 16] {
        let chunk = "x".repeat(size);
        while storage.set_item(&format!("filler-{i}"), &chunk).is_ok() {
            i += 1;
        }
    }
    let ws = unique("ws");
    let diags = Recorder::new();
    let c = client(&url, r#","persistThrottleMs":20"#, Some(&diags));
    let r = Recorder::new();
    let s = c
        .subscribe(
            &format!("logs:etl:{ws}:wf1"),
            sub_opts(r#"{"persist":true}"#),
            r.update(),
        )
        .unwrap();
    wait_for("subscribed", 5_000, || s.channel_status().is_some()).await;
    publish(&ws, "wf1", 1..=20).await;
    wait_for("20 logs", 5_000, || ns(&s).len() == 20).await;
    wait_for("quota diagnostic", 5_000, || {
        diags
            .of_type("kind", "storage")
            .iter()
            .any(|d| get_str(d, "message").unwrap_or_default().contains("quota"))
    })
    .await;
    publish(&ws, "wf1", 21..=25).await;
    wait_for("streaming goes on", 5_000, || ns(&s).len() == 25).await;
    assert_eq!(state(&c), "open");
    clear_fillers(&storage);
    drop(s);
    c.close().unwrap();
}

#[wasm_bindgen_test]
async fn malformed_events_are_ignored_with_a_diagnostic() {
    let Some((url, _)) = urls() else { return };
    let ws = unique("ws");
    let diags = Recorder::new();
    let c = client(&url, "", Some(&diags));
    let r = Recorder::new();
    let s = c
        .subscribe(&format!("logs:etl:{ws}:wf1"), None, r.update())
        .unwrap();
    wait_for("subscribed", 5_000, || s.channel_status().is_some()).await;
    c.ingest_event("log", &"not json".into());
    c.ingest_event(
        "log",
        &r#"{"channel":"logs:etl:x:y","cursor":"nope","ts":1,"logData":{}}"#.into(),
    );
    c.ingest_event("status", &"{}".into());
    let malformed = diags.of_type("kind", "malformed_event");
    assert_eq!(malformed.len(), 3);
    assert!(get_str(&malformed[0], "message")
        .unwrap()
        .contains("not json"));
    assert_eq!(get(&c.stats().into(), "malformed").as_f64(), Some(3.0));
    assert_eq!(state(&c), "open");
    publish(&ws, "wf1", 1..=1).await;
    wait_for("a real log still arrives", 5_000, || ns(&s) == vec![1]).await;
}

#[wasm_bindgen_test]
async fn failures_are_reported_with_their_reason() {
    let Some((url, _)) = urls() else { return };
    // 65 channels: the gateway answers 400 too_many_channels; the probe says so.
    let c = client(&url, r#","maxChannels":100"#, None);
    let r = Recorder::new();
    let subs: Vec<_> = (0..65)
        .map(|i| {
            c.subscribe(&format!("logs:etl:wsmany:wf{i}"), None, r.update())
                .unwrap()
        })
        .collect();
    wait_for("failed", 5_000, || state(&c) == "failed").await;
    let status: JsValue = c.status().into();
    assert_eq!(get_str(&status, "reason").as_deref(), Some("bad_request"));
    assert_eq!(
        get_str(&status, "code").as_deref(),
        Some("too_many_channels")
    );
    assert_eq!(get(&status, "httpStatus").as_f64(), Some(400.0));
    assert!(get_str(&status, "message").unwrap().contains("64"));
    drop(subs);
    c.close().unwrap();
    // Nothing listens on port 9: unreachable, and it keeps retrying.
    let c = client("http://127.0.0.1:9/api/logs/stream", "", None);
    let _s = c.subscribe("logs:etl:ws1:wf1", None, r.update()).unwrap();
    wait_for("unreachable", 5_000, || {
        get_str(&c.status().into(), "reason").as_deref() == Some("gateway_unreachable")
    })
    .await;
    assert_eq!(state(&c), "reconnecting");
    // Invalid input is refused with a named error.
    let err = c
        .subscribe("logs:etl", None, r.update())
        .err()
        .map(JsValue::from)
        .unwrap();
    assert_eq!(get_str(&err, "code").as_deref(), Some("invalid_channel"));
    let err = c
        .subscribe("logs:etl:ws1:wf1", sub_opts(r#"{"maxLogz":5}"#), r.update())
        .err()
        .map(JsValue::from)
        .unwrap();
    assert!(get_str(&err, "message").unwrap().contains("maxLogz"));
    c.close().unwrap();
}

#[wasm_bindgen_test]
async fn ingest_benchmark() {
    let Some((url, _)) = urls() else { return };
    const N: usize = 20_000;
    let ws = unique("ws");
    let c = client(&url, "", None);
    let r = Recorder::new();
    let _subs: Vec<_> = [
        format!("logs:etl:{ws}:wf1"),
        format!("logs:etl:{ws}:wf2"),
        format!("logs:etl:{ws}"),
        format!("logs:faas:{ws}:f1"),
    ]
    .iter()
    .map(|ch| c.subscribe(ch, None, r.update()).unwrap())
    .collect();
    wait_for("open", 5_000, || state(&c) == "open").await;
    let events: Vec<JsValue> = (0..N)
        .map(|i| {
            let wf = if i % 2 == 0 { "wf1" } else { "wf2" };
            JsValue::from_str(&format!(
                r#"{{"channel":"logs:etl:{ws}:{wf}","cursor":"beef-{}","ts":1700000000000,"logData":{{"level":"info","msg":"step {i} finished","rows":{i},"tags":["etl","bench"]}}}}"#,
                1_000_000 + i
            ))
        })
        .collect();
    let start = js_sys::Date::now();
    for e in &events {
        c.ingest_event("log", e);
    }
    let elapsed = js_sys::Date::now() - start;
    let per_log = elapsed * 1000.0 / N as f64;
    console_log!("ingest: {N} log events (parse + route to 2 of 4 subscriptions + buffer + notify) in {elapsed:.0} ms = {per_log:.2} µs/log");
    assert_eq!(get(&c.stats().into(), "logs").as_f64(), Some(N as f64));
    // The payload choice: JSON.parse of the JS string vs decoding in Rust.
    let texts: Vec<String> = events.iter().map(|e| e.as_string().unwrap()).collect();
    let start = js_sys::Date::now();
    for e in &events {
        let _ = logs_sse_client_wasm::wasm::convert::json_parse(e).unwrap();
    }
    let js_parse = (js_sys::Date::now() - start) * 1000.0 / N as f64;
    let start = js_sys::Date::now();
    for t in &texts {
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        let _ = serde_wasm_bindgen::to_value(&v).unwrap();
    }
    let rust_decode = (js_sys::Date::now() - start) * 1000.0 / N as f64;
    console_log!("payload: JSON.parse {js_parse:.2} µs/log vs serde_json::Value + serde-wasm-bindgen {rust_decode:.2} µs/log");
    c.close().unwrap();
}

// ----- subscriber tokens (the auth gateway) --------------------------------

fn auth_urls() -> Option<(String, &'static str, &'static str)> {
    match (AUTH_GATEWAY, CONTROL) {
        (Some(g), Some(c)) => Some((format!("{g}/api/logs/stream"), g, c)),
        _ => {
            console_log!(
                "skipped: LOGS_SSE_TEST_AUTH_GATEWAY / LOGS_SSE_TEST_CONTROL not set (run test.sh)"
            );
            None
        }
    }
}

/// A JS token getter that asks the control server for a token
/// (`/token?{query}`) and counts its calls in `window[counter]`.
fn token_getter(control: &str, query: &str, counter: &str) -> JsValue {
    Function::new_no_args(&format!(
        "window['{counter}'] = (window['{counter}'] || 0) + 1;
         return fetch('{control}/token?{query}').then((r) => r.json()).then((j) => j.token);"
    ))
    .into()
}

/// A JS function from `body` (e.g. a getter returning a fixed value).
fn js_fn(body: &str) -> JsValue {
    Function::new_no_args(body).into()
}

fn calls(counter: &str) -> u32 {
    Reflect::get(&js_sys::global(), &counter.into())
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0) as u32
}

/// A client whose `getToken` is `getter`.
fn token_client(url: &str, getter: &JsValue) -> LogsClient {
    let options = json(r#"{"backoffMinMs":50,"backoffMaxMs":400,"lingerMs":100,"coalesceMs":10}"#);
    Reflect::set(&options, &"getToken".into(), getter).unwrap();
    LogsClient::new(url, Some(options.unchecked_into::<ClientOptionsJs>())).unwrap()
}

fn status_field(c: &LogsClient, key: &str) -> Option<String> {
    get_str(&c.status().into(), key)
}

#[wasm_bindgen_test]
async fn token_refresh_mid_stream_loses_nothing() {
    let Some((url, gw, ctl)) = auth_urls() else {
        return;
    };
    let ws = unique("ws");
    // Tokens live 2 to 3 s (`exp` is in whole seconds; leeway 0).
    let getter = token_getter(
        ctl,
        &format!("sub=alice&ttl=2&workspaces={ws}"),
        "__refreshCalls",
    );
    let before = event_sources_created();
    let c = token_client(&url, &getter);
    let statuses = Recorder::new();
    let _listener = c.on_status(statuses.status()).unwrap();
    let r = Recorder::new();
    let a = c
        .subscribe(&format!("logs:etl:{ws}:wf1"), None, r.update())
        .unwrap();
    wait_for("subscribed", 5_000, || {
        a.channel_status().as_deref() == Some("subscribed")
    })
    .await;
    assert_eq!(calls("__refreshCalls"), 1, "one token for the first stream");
    // Publish continuously for 7 s: across at least two expiries.
    let published = Rc::new(Cell::new(0u64));
    let done = Rc::new(Cell::new(false));
    let (count, flag, ws2) = (published.clone(), done.clone(), ws.clone());
    wasm_bindgen_futures::spawn_local(async move {
        let start = js_sys::Date::now();
        let mut n = 0;
        while js_sys::Date::now() - start < 7_000.0 {
            n += 1;
            publish_to(gw, &ws2, "wf1", n..=n).await;
            count.set(n);
            sleep(25).await;
        }
        flag.set(true);
    });
    wait_for("the publisher", 20_000, || done.get()).await;
    let n = published.get();
    wait_for("every log", 10_000, || ns(&a).len() as u64 >= n).await;
    sleep(200).await;
    let got = ns(&a);
    let refreshes = calls("__refreshCalls");
    let opens = get(&c.stats().into(), "opens").as_f64().unwrap_or(0.0);
    let sources = event_sources_created() - before;
    console_log!(
        "token refresh: {n} logs over 7 s, {refreshes} getter calls, {opens} streams opened, {sources} EventSources, {} duplicates dropped",
        get(&c.stats().into(), "duplicates").as_f64().unwrap_or(0.0)
    );
    assert_eq!(
        got,
        (1..=n).collect::<Vec<u64>>(),
        "every log once, in order"
    );
    assert!(
        refreshes >= 3,
        "at least two refreshes ({refreshes} getter calls)"
    );
    assert!(opens >= 3.0, "a new stream per token ({opens})");
    assert_eq!(state(&c), "open");
    // At most one getter call per stream.
    assert!(
        f64::from(refreshes) <= opens,
        "{refreshes} calls for {opens} streams"
    );
    // The token never shows in a status.
    for s in statuses.seen.borrow().iter() {
        let text = JSON::stringify(s).unwrap().as_string().unwrap();
        assert!(!text.contains("eyJ"), "{text}");
    }
    c.close().unwrap();
}

#[wasm_bindgen_test]
async fn refused_tokens_fail_with_the_gateways_code() {
    let Some((url, _, ctl)) = auth_urls() else {
        return;
    };
    let ws = unique("ws");
    let channel = format!("logs:etl:{ws}:wf1");
    let r = Recorder::new();
    // Garbage from the getter: 401 invalid_token, no retry.
    let c = token_client(
        &url,
        &js_fn("window.__garbageCalls = (window.__garbageCalls || 0) + 1; return 'not a jwt';"),
    );
    let _s = c.subscribe(&channel, None, r.update()).unwrap();
    wait_for("failed", 5_000, || state(&c) == "failed").await;
    assert_eq!(status_field(&c, "reason").as_deref(), Some("unauthorized"));
    assert_eq!(status_field(&c, "code").as_deref(), Some("invalid_token"));
    assert_eq!(get(&c.status().into(), "httpStatus").as_f64(), Some(401.0));
    assert_eq!(calls("__garbageCalls"), 1);
    c.close().unwrap();
    // A token signed with another key: invalid_signature, and the token is
    // in no status.
    let c = token_client(
        &url,
        &token_getter(
            ctl,
            &format!("ttl=60&workspaces={ws}&secret=other"),
            "__wrongKeyCalls",
        ),
    );
    let _s = c.subscribe(&channel, None, r.update()).unwrap();
    wait_for("failed", 5_000, || state(&c) == "failed").await;
    assert_eq!(status_field(&c, "reason").as_deref(), Some("unauthorized"));
    assert_eq!(
        status_field(&c, "code").as_deref(),
        Some("invalid_signature")
    );
    let text = JSON::stringify(&c.status().into())
        .unwrap()
        .as_string()
        .unwrap();
    assert!(!text.contains("eyJ"), "{text}");
    console_log!("refused: {text}");
    c.close().unwrap();
    // An expired token: one retry with a fresh one (expired too), then failed.
    let c = token_client(
        &url,
        &token_getter(ctl, &format!("ttl=-10&workspaces={ws}"), "__expiredCalls"),
    );
    let _s = c.subscribe(&channel, None, r.update()).unwrap();
    wait_for("failed", 5_000, || state(&c) == "failed").await;
    assert_eq!(status_field(&c, "code").as_deref(), Some("expired_token"));
    assert_eq!(calls("__expiredCalls"), 2, "one immediate retry");
    // reconnect() tries again with a fresh token.
    c.reconnect().unwrap();
    wait_for("the getter again", 5_000, || calls("__expiredCalls") >= 3).await;
    c.close().unwrap();
    // A getter that throws: unauthorized, retried with backoff.
    let c = token_client(
        &url,
        &js_fn("window.__throwCalls = (window.__throwCalls || 0) + 1; throw new Error('session lost');"),
    );
    let _s = c.subscribe(&channel, None, r.update()).unwrap();
    wait_for("getter failure", 5_000, || {
        status_field(&c, "code").as_deref() == Some("token_getter_failed")
    })
    .await;
    assert_eq!(state(&c), "reconnecting");
    assert_eq!(status_field(&c, "reason").as_deref(), Some("unauthorized"));
    assert_eq!(
        status_field(&c, "message").as_deref(),
        Some("the token getter failed: session lost")
    );
    wait_for("a retry", 5_000, || calls("__throwCalls") >= 2).await;
    c.close().unwrap();
    // A rejecting promise counts the same.
    let c = token_client(
        &url,
        &js_fn("return Promise.reject(new Error('no session'));"),
    );
    let _s = c.subscribe(&channel, None, r.update()).unwrap();
    wait_for("getter failure", 5_000, || {
        status_field(&c, "message").as_deref() == Some("the token getter failed: no session")
    })
    .await;
    c.close().unwrap();
    // A token sent to a gateway without --allow-query-token: bad_request.
    let (plain, _) = urls().unwrap();
    let c = token_client(&plain, &token_getter(ctl, "ttl=60", "__plainCalls"));
    let _s = c.subscribe(&channel, None, r.update()).unwrap();
    wait_for("failed", 5_000, || state(&c) == "failed").await;
    assert_eq!(status_field(&c, "reason").as_deref(), Some("bad_request"));
    assert_eq!(
        status_field(&c, "code").as_deref(),
        Some("query_token_disabled")
    );
    c.close().unwrap();
}

#[wasm_bindgen_test]
async fn forbidden_streams_fail_and_denied_channels_are_reported_alone() {
    let Some((url, gw, ctl)) = auth_urls() else {
        return;
    };
    let ws = unique("ws");
    let r = Recorder::new();
    // No requested channel granted: 403 forbidden_channels.
    let c = token_client(
        &url,
        &token_getter(ctl, "ttl=60&workspaces=elsewhere", "__forbiddenCalls"),
    );
    let _s = c
        .subscribe(&format!("logs:etl:{ws}:wf1"), None, r.update())
        .unwrap();
    wait_for("failed", 5_000, || state(&c) == "failed").await;
    assert_eq!(status_field(&c, "reason").as_deref(), Some("forbidden"));
    assert_eq!(
        status_field(&c, "code").as_deref(),
        Some("forbidden_channels")
    );
    assert_eq!(get(&c.status().into(), "httpStatus").as_f64(), Some(403.0));
    assert!(status_field(&c, "message")
        .unwrap()
        .contains("no requested channel may be watched"));
    c.close().unwrap();
    // One channel granted, one not: the other is denied, the first streams.
    let c = token_client(
        &url,
        &token_getter(
            ctl,
            &format!("ttl=60&channels=logs:etl:{ws}:wf1"),
            "__deniedCalls",
        ),
    );
    let allowed_updates = Recorder::new();
    let denied_updates = Recorder::new();
    let allowed = c
        .subscribe(
            &format!("logs:etl:{ws}:wf1"),
            None,
            allowed_updates.update(),
        )
        .unwrap();
    let denied = c
        .subscribe(&format!("logs:etl:{ws}:wf2"), None, denied_updates.update())
        .unwrap();
    wait_for("statuses", 5_000, || {
        allowed.channel_status().is_some() && denied.channel_status().is_some()
    })
    .await;
    assert_eq!(state(&c), "open");
    assert_eq!(allowed.channel_status().as_deref(), Some("subscribed"));
    assert_eq!(denied.channel_status().as_deref(), Some("denied"));
    let update = denied_updates.of_type("status", "denied").remove(0);
    assert!(
        get_str(&update, "reason")
            .unwrap()
            .contains("does not grant"),
        "{:?}",
        get_str(&update, "reason")
    );
    assert!(allowed_updates.of_type("status", "denied").is_empty());
    publish_to(gw, &ws, "wf2", 1..=2).await;
    publish_to(gw, &ws, "wf1", 3..=4).await;
    wait_for("the granted channel's logs", 5_000, || {
        ns(&allowed).len() == 2
    })
    .await;
    assert_eq!(ns(&allowed), vec![3, 4]);
    assert!(ns(&denied).is_empty());
    c.close().unwrap();
}

#[wasm_bindgen_test]
async fn a_stream_opened_with_a_jwt_changes_its_channels_live_with_the_same_token() {
    let Some((url, gw, ctl)) = auth_urls() else {
        return;
    };
    let ws = unique("ws");
    let getter = token_getter(
        ctl,
        &format!("sub=carol&ttl=60&workspaces={ws}"),
        "__liveTokenCalls",
    );
    let before = event_sources_created();
    let c = token_client(&url, &getter);
    let r = Recorder::new();
    let a = c
        .subscribe(&format!("logs:etl:{ws}:wf1"), None, r.update())
        .unwrap();
    wait_for("subscribed", 5_000, || {
        a.channel_status().as_deref() == Some("subscribed")
    })
    .await;
    // Added on the open stream: the call carries `Authorization: Bearer`
    // (the stream got the token in its URL); the gateway must see one
    // subscriber in both.
    let b = c
        .subscribe(&format!("logs:faas:{ws}:f1"), None, r.update())
        .unwrap();
    wait_for("the added channel's status", 5_000, || {
        b.channel_status().as_deref() == Some("subscribed")
    })
    .await;
    publish_to(gw, &ws, "wf1", 1..=3).await;
    wait_for("3 logs", 5_000, || ns(&a).len() == 3).await;
    let changes = get(&c.stats(), "channelChanges");
    assert_eq!(get(&changes, "live").as_f64(), Some(1.0), "{changes:?}");
    assert_eq!(get(&changes, "reopened").as_f64(), Some(0.0), "{changes:?}");
    assert_eq!(event_sources_created() - before, 1);
    assert_eq!(calls("__liveTokenCalls"), 1, "the stream's token, reused");
}

/// A `transport` that relays a real `EventSource` into a hand-made
/// `EventTarget` (as a tab's relay from the connection's owner does: the
/// client sees only the `MessageEvent`s the relay dispatches) and sends
/// `fetch` on to the real one, recording every call.
fn relay_transport() -> JsValue {
    let code = r#"
        const t = { opened: [], fetched: [], closed: 0, hello: null };
        t.open = (url, withCredentials) => {
            const target = new EventTarget();
            const es = new EventSource(url, { withCredentials });
            for (const name of ["hello", "status", "log", "ping", "close"]) {
                es.addEventListener(name, (e) => {
                    if (name === "hello") t.hello = JSON.parse(e.data);
                    target.dispatchEvent(new MessageEvent(name, { data: e.data }));
                });
            }
            es.onopen = () => target.dispatchEvent(new Event("open"));
            es.onerror = () => target.dispatchEvent(new Event("error"));
            target.close = () => { es.close(); t.closed += 1; };
            t.opened.push({ url, withCredentials });
            return target;
        };
        t.fetch = (url, init) => {
            t.fetched.push({ url, method: init.method, headers: init.headers, body: init.body });
            return fetch(url, init);
        };
        return t;
    "#;
    Function::new_no_args(code).call0(&JsValue::NULL).unwrap()
}

#[wasm_bindgen_test]
async fn a_transport_carries_the_stream_and_the_control_calls() {
    let Some((url, _)) = urls() else { return };
    // Checked like every option.
    for bad in [r#"{}"#, r#"{"open": 1, "fetch": 1}"#, r#"1"#] {
        let options = json(r#"{}"#);
        Reflect::set(&options, &"transport".into(), &json(bad)).unwrap();
        let error: JsValue = LogsClient::new(&url, Some(options.unchecked_into()))
            .unwrap_err()
            .into();
        assert_eq!(get_str(&error, "code").as_deref(), Some("invalid_options"));
    }
    let ws = unique("ws");
    let t = relay_transport();
    let before = event_sources_created();
    let options = json(r#"{"coalesceMs":10,"lingerMs":100}"#);
    Reflect::set(&options, &"transport".into(), &t).unwrap();
    let c = LogsClient::new(&url, Some(options.unchecked_into())).unwrap();
    let r = Recorder::new();
    let a = c
        .subscribe(&format!("logs:etl:{ws}:wf1"), None, r.update())
        .unwrap();
    wait_for("subscribed", 5_000, || {
        a.channel_status().as_deref() == Some("subscribed")
    })
    .await;
    let opened = Array::from(&get(&t, "opened"));
    assert_eq!(opened.length(), 1);
    assert_eq!(
        get_str(&opened.get(0), "url"),
        Some(format!("{url}?channels=logs:etl:{ws}:wf1"))
    );
    assert_eq!(
        get(&opened.get(0), "withCredentials").as_bool(),
        Some(false)
    );
    publish(&ws, "wf1", 1..=2).await;
    wait_for("2 logs", 5_000, || ns(&a).len() == 2).await;
    // A channel added on the open stream: the control call goes to
    // `transport.fetch` with the stream's id and secret from its hello.
    let b = c
        .subscribe(&format!("logs:etl:{ws}:wf2"), None, r.update())
        .unwrap();
    wait_for("the added channel's status", 5_000, || {
        b.channel_status().as_deref() == Some("subscribed")
    })
    .await;
    let fetched = Array::from(&get(&t, "fetched"));
    assert_eq!(fetched.length(), 1, "one control call");
    let call = fetched.get(0);
    let hello = get(&t, "hello");
    let id = get_str(&hello, "connectionId").unwrap();
    assert_eq!(get_str(&call, "url"), Some(format!("{url}/{id}/channels")));
    assert_eq!(get_str(&call, "method").as_deref(), Some("POST"));
    assert_eq!(
        get_str(&get(&call, "headers"), "X-Stream-Secret"),
        get_str(&hello, "controlSecret")
    );
    assert_eq!(
        get_str(&call, "body"),
        Some(format!(
            r#"{{"add":[{{"channel":"logs:etl:{ws}:wf2"}}],"remove":[]}}"#
        ))
    );
    publish(&ws, "wf2", 3..=3).await;
    publish(&ws, "wf1", 4..=4).await;
    wait_for("the logs of both", 5_000, || {
        ns(&a).len() == 3 && ns(&b).len() == 1
    })
    .await;
    assert_eq!(ns(&a), vec![1, 2, 4]);
    assert_eq!(ns(&b), vec![3]);
    let changes = get(&c.stats(), "channelChanges");
    assert_eq!(get(&changes, "live").as_f64(), Some(1.0), "{changes:?}");
    // Every EventSource was the relay's: the client opened none itself.
    assert_eq!(event_sources_created() - before, 1);
    assert_eq!(Array::from(&get(&t, "opened")).length(), 1);
    c.close().unwrap();
    assert_eq!(get(&t, "closed").as_f64(), Some(1.0), "closed through it");
}
