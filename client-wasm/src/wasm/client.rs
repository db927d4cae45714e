//! `LogsClient`: the one `#[wasm_bindgen]` client type, its subscription
//! and status handles, and the pump that executes the core's effects.
//!
//! All state sits in one `Rc<RefCell<Inner>>`. Browser callbacks hold a
//! `Weak` to it, so dropping the client frees everything. JS callbacks
//! (`onUpdate`, `onStatus`, `onDiagnostic`) are always called with no
//! borrow held, so they may call back into the client; only filters run
//! during ingestion and must not.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Event, MessageEvent, Storage};

use super::convert::{
    self, json_parse, ClientError, ClientOptionsJs, LogEntries, StatsJs, StatusCallback, StatusJs,
    SubscribeOptionsJs, UpdateCallback,
};
use super::listener::{defer, Listener, OwnedEventSource};
use super::probe::{control, probe, Via};
use super::storage::{self, WriteError};
use super::token;
use crate::core::engine::{Diagnostic, Effect, Engine, Filter, CONTROL_TIMEOUT_MS};
use crate::core::persist;
use crate::core::registry::SubId;
use crate::core::status::PROBE_TIMEOUT_MS;
use logs_sse_protocol::Channel;

type Shared = Rc<RefCell<Inner>>;

fn now() -> u64 {
    js_sys::Date::now().max(0.0) as u64
}

use super::online;

/// Drops `value` after the current JS task step (a microtask), so a closure
/// is never freed while it is running.
fn drop_later<T: 'static>(value: T) {
    defer(Box::new(move || drop(value)));
}

struct SubState {
    on_update: Function,
    snapshot: Option<(u64, JsValue)>,
}

struct Inner {
    engine: Engine<JsValue>,
    url: String,
    with_credentials: bool,
    stream: Option<OwnedEventSource>,
    timer: Option<(u64, gloo_timers::callback::Timeout)>,
    global_listeners: Vec<Listener>,
    subs: Vec<(SubId, SubState)>,
    status_listeners: Vec<(u32, Function)>,
    next_listener: u32,
    status_js: JsValue,
    logs_update_js: JsValue,
    on_diagnostic: Option<Function>,
    /// The application's token getter (the engine decides when to call it).
    get_token: Option<Function>,
    /// The `transport` option: the stream and the requests go through it.
    transport: Option<convert::StreamTransport>,
    storage: Option<Option<Storage>>,
}

impl Inner {
    fn sub(&self, id: SubId) -> Option<&SubState> {
        self.subs.iter().find(|(k, _)| *k == id).map(|(_, s)| s)
    }

    fn storage(&mut self) -> Option<Storage> {
        self.storage
            .get_or_insert_with(storage::session_storage)
            .clone()
    }

    fn stream_url(&self, query: &str) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        crate::text!(self.url, sep, query)
    }

    /// `{stream path}/{connection id}/channels`, keeping the gateway URL's
    /// own query (the id is URL-safe: the engine checked it).
    fn control_url(&self, connection_id: &str) -> String {
        let at = self.url.bytes().position(|b| b == b'?');
        let at = at.unwrap_or(self.url.len());
        // `get`: no slicing panic (and its formatting) in the build.
        let (path, query) = (
            self.url.get(..at).unwrap_or_default(),
            self.url.get(at..).unwrap_or_default(),
        );
        let slash = if path.ends_with('/') { "" } else { "/" };
        crate::text!(path, slash, connection_id, "/channels", query)
    }
}

fn report(shared: &Shared, kind: &str, message: &str) {
    let callback = shared.borrow().on_diagnostic.clone();
    match callback {
        Some(f) => {
            let _ = f.call1(&JsValue::NULL, &convert::diagnostic_to_js(kind, message));
        }
        None => web_sys::console::warn_1(&crate::text!("logs-sse-client: ", message).into()),
    }
}

fn call(shared: &Shared, f: &Function, arg: &JsValue) {
    if let Err(e) = f.call1(&JsValue::NULL, arg) {
        let text = convert::error_text(&e);
        report(
            shared,
            "callback",
            &crate::text!("a callback threw: ", text),
        );
    }
}

/// Executes the engine's effects until there are none, then re-arms the
/// timer for the engine's next deadline.
fn pump(shared: &Shared) {
    loop {
        let effects = match shared.try_borrow_mut() {
            Ok(mut inner) => inner.engine.take_effects(),
            // Called from inside a callback that holds the borrow: the
            // outer pump picks the effects up.
            Err(_) => return,
        };
        if effects.is_empty() {
            break;
        }
        for effect in effects {
            execute(shared, effect);
        }
    }
    rearm(shared);
}

fn rearm(shared: &Shared) {
    let Ok(mut inner) = shared.try_borrow_mut() else {
        return;
    };
    let deadline = inner.engine.next_deadline();
    if inner.timer.as_ref().map(|t| t.0) == deadline {
        return;
    }
    if let Some(old) = inner.timer.take() {
        drop_later(old);
    }
    if let Some(at) = deadline {
        let delay = at.saturating_sub(now()).min(u64::from(u32::MAX)) as u32;
        let weak = Rc::downgrade(shared);
        let timeout = gloo_timers::callback::Timeout::new(delay, move || on_timer(&weak));
        inner.timer = Some((at, timeout));
    }
}

fn on_timer(weak: &Weak<RefCell<Inner>>) {
    let Some(shared) = weak.upgrade() else { return };
    {
        let Ok(mut inner) = shared.try_borrow_mut() else {
            return;
        };
        if let Some(fired) = inner.timer.take() {
            drop_later(fired);
        }
        inner.engine.on_timer(now());
    }
    pump(&shared);
}

fn execute(shared: &Shared, effect: Effect) {
    match effect {
        Effect::Open { query, generation } => open_stream(shared, &query, generation),
        Effect::CloseStream => {
            if let Some(old) = shared.borrow_mut().stream.take() {
                old.close();
                drop_later(old);
            }
        }
        Effect::Probe { query, generation } => {
            let (url, creds, transport) = {
                let inner = shared.borrow();
                let transport = inner.transport.clone();
                (inner.stream_url(&query), inner.with_credentials, transport)
            };
            let weak = Rc::downgrade(shared);
            let via = Via {
                with_credentials: creds,
                transport: transport.as_ref(),
            };
            probe(&url, via, PROBE_TIMEOUT_MS, move |result| {
                if let Some(shared) = weak.upgrade() {
                    if let Ok(mut inner) = shared.try_borrow_mut() {
                        inner.engine.on_probe(generation, result, online(), now());
                    }
                    pump(&shared);
                }
            });
        }
        Effect::ChangeChannels {
            connection_id,
            secret,
            token,
            change,
            request,
        } => {
            let (url, creds, transport) = {
                let inner = shared.borrow();
                let transport = inner.transport.clone();
                (
                    inner.control_url(&connection_id),
                    inner.with_credentials,
                    transport,
                )
            };
            let weak = Rc::downgrade(shared);
            control(
                &url,
                &change.body(),
                &secret.0,
                token.as_ref().map(|t| t.as_str()),
                Via {
                    with_credentials: creds,
                    transport: transport.as_ref(),
                },
                // The engine gives up at its own deadline; the abort only
                // frees the request a little later.
                CONTROL_TIMEOUT_MS as u32 + 1_000,
                move |result| {
                    if let Some(shared) = weak.upgrade() {
                        if let Ok(mut inner) = shared.try_borrow_mut() {
                            inner.engine.on_channels_answer(request, result, now());
                        }
                        pump(&shared);
                    }
                },
            );
        }
        Effect::FetchToken { request } => {
            // Cloned out: the getter runs with no borrow held.
            let getter = shared.borrow().get_token.clone();
            if let Some(getter) = getter {
                let weak = Rc::downgrade(shared);
                token::call(&getter, move |answer| {
                    if let Some(shared) = weak.upgrade() {
                        if let Ok(mut inner) = shared.try_borrow_mut() {
                            inner.engine.on_token(request, answer, now());
                        }
                        pump(&shared);
                    }
                });
            }
        }
        Effect::Status(status) => {
            let js = convert::status_to_js(&status);
            let listeners: Vec<Function> = {
                let mut inner = shared.borrow_mut();
                inner.status_js = js.clone();
                inner
                    .status_listeners
                    .iter()
                    .map(|(_, f)| f.clone())
                    .collect()
            };
            for f in listeners {
                call(shared, &f, &js);
            }
        }
        Effect::Update { sub, update } => {
            let (f, arg) = {
                let inner = shared.borrow();
                let Some(state) = inner.sub(sub) else {
                    return;
                };
                let arg = match update {
                    crate::core::engine::Update::Logs { added: 1 } => inner.logs_update_js.clone(),
                    ref other => convert::update_to_js(other),
                };
                (state.on_update.clone(), arg)
            };
            call(shared, &f, &arg);
        }
        Effect::Persist { sub, key, text } => {
            let storage = shared.borrow_mut().storage();
            let result = match &storage {
                Some(s) => storage::write(s, &key, &text),
                None => Err(WriteError::Unavailable),
            };
            if let Err(e) = result {
                shared
                    .borrow_mut()
                    .engine
                    .persist_failed(sub, e == WriteError::Quota, now());
            }
        }
        Effect::Forget { key } => {
            if let Some(s) = shared.borrow_mut().storage() {
                storage::remove(&s, &key);
            }
        }
        Effect::Diagnostic { kind, message } => {
            let kind = match kind {
                Diagnostic::MalformedEvent => "malformed_event",
                Diagnostic::Storage => "storage",
            };
            report(shared, kind, &message);
        }
    }
}

fn open_stream(shared: &Shared, query: &str, generation: u64) {
    let (url, creds, transport) = {
        let mut inner = shared.borrow_mut();
        if let Some(old) = inner.stream.take() {
            old.close();
            drop_later(old);
        }
        let transport = inner.transport.clone();
        (inner.stream_url(query), inner.with_credentials, transport)
    };
    let weak = Rc::downgrade(shared);
    let (w_open, w_error, w_event) = (weak.clone(), weak.clone(), weak);
    let opened = OwnedEventSource::open(
        &url,
        creds,
        transport.as_ref(),
        move |_| {
            if let Some(shared) = w_open.upgrade() {
                shared.borrow_mut().engine.on_open(generation, now());
                pump(&shared);
            }
        },
        move |_| {
            if let Some(shared) = w_error.upgrade() {
                shared
                    .borrow_mut()
                    .engine
                    .on_error(generation, online(), now());
                pump(&shared);
            }
        },
        move |name: &'static str, event: Event| {
            let Some(shared) = w_event.upgrade() else {
                return;
            };
            let Ok(message) = event.dyn_into::<MessageEvent>() else {
                return;
            };
            let data = message.data();
            ingest(&shared, generation, name, &data);
        },
    );
    match opened {
        Ok(stream) => shared.borrow_mut().stream = Some(stream),
        Err(_) => {
            // An invalid URL: the constructor threw. Treat as a failed open;
            // the probe will report why.
            shared
                .borrow_mut()
                .engine
                .on_error(generation, online(), now());
        }
    }
}

/// The ingest path of every SSE event: parse, route, buffer, notify.
fn ingest(shared: &Shared, generation: u64, event: &str, data_js: &JsValue) {
    let Some(data) = data_js.as_string() else {
        return;
    };
    {
        let Ok(mut inner) = shared.try_borrow_mut() else {
            return;
        };
        inner.engine.ingest(generation, event, &data, now(), |_| {
            json_parse(data_js).unwrap_or(JsValue::NULL)
        });
    }
    pump(shared);
}

/// Client for the Datashop logs gateway: one `EventSource`, many channels.
#[wasm_bindgen]
pub struct LogsClient {
    shared: Shared,
}

impl std::fmt::Debug for LogsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogsClient").finish_non_exhaustive()
    }
}

fn borrow_mut(shared: &Shared) -> Result<std::cell::RefMut<'_, Inner>, ClientError> {
    shared.try_borrow_mut().map_err(|_| ClientError::Reentrant)
}

#[wasm_bindgen(js_class = LogsClient)]
impl LogsClient {
    /// Creates a client for `gatewayUrl` (absolute, or relative to the page,
    /// e.g. `/api/logs/stream`). Nothing connects until a subscription.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = gatewayUrl)] gateway_url: &str,
        options: Option<ClientOptionsJs>,
    ) -> Result<LogsClient, ClientError> {
        super::install_panic_hook();
        let url = gateway_url.trim();
        if url.is_empty() || url.contains('#') || url.chars().any(char::is_whitespace) {
            return Err(ClientError::InvalidUrl(crate::text!(
                "\"",
                gateway_url,
                "\": expected e.g. \"/api/logs/stream\""
            )));
        }
        let options: JsValue = options.map_or(JsValue::UNDEFINED, Into::into);
        let convert::JsClientOptions {
            options: opts,
            on_diagnostic,
            token,
            get_token,
            transport,
        } = convert::client_options(&options)?;
        let with_credentials = opts.with_credentials;
        let mut engine = Engine::new(opts, Box::new(js_sys::Math::random));
        engine.set_auth(get_token.is_some(), token);
        let status_js = convert::status_to_js(engine.status());
        let logs_update_js = convert::update_to_js(&crate::core::engine::Update::Logs { added: 1 });
        let shared = Rc::new(RefCell::new(Inner {
            engine,
            url: url.to_owned(),
            with_credentials,
            stream: None,
            timer: None,
            global_listeners: Vec::new(),
            subs: Vec::new(),
            status_listeners: Vec::new(),
            next_listener: 1,
            status_js,
            logs_update_js,
            on_diagnostic,
            get_token,
            transport,
            storage: None,
        }));
        {
            // On the global scope: a worker has `online` too (and no
            // `pagehide` or `document`).
            let global = super::global();
            let mut listeners = Vec::new();
            let weak = Rc::downgrade(&shared);
            listeners.push(Listener::new(&global, "online", move |_| {
                if let Some(shared) = weak.upgrade() {
                    shared.borrow_mut().engine.on_online(now());
                    pump(&shared);
                }
            }));
            let weak = Rc::downgrade(&shared);
            listeners.push(Listener::new(&global, "pagehide", move |_| {
                if let Some(shared) = weak.upgrade() {
                    shared.borrow_mut().engine.flush(now());
                    pump(&shared);
                }
            }));
            if let Some(document) = super::window().and_then(|w| w.document()) {
                let weak = Rc::downgrade(&shared);
                let doc = document.clone();
                listeners.push(Listener::new(
                    document.as_ref(),
                    "visibilitychange",
                    move |_| {
                        if doc.visibility_state() != web_sys::VisibilityState::Hidden {
                            return;
                        }
                        if let Some(shared) = weak.upgrade() {
                            shared.borrow_mut().engine.flush(now());
                            pump(&shared);
                        }
                    },
                ));
            }
            shared.borrow_mut().global_listeners = listeners;
        }
        Ok(LogsClient { shared })
    }

    /// Subscribes to `channel`. `onUpdate` is called when logs arrive, the
    /// gateway reports the channel's status, or a gap. Read the logs with
    /// `subscription.snapshot()`.
    pub fn subscribe(
        &self,
        channel: &str,
        options: Option<SubscribeOptionsJs>,
        #[wasm_bindgen(js_name = onUpdate)] on_update: UpdateCallback,
    ) -> Result<LogsSubscription, ClientError> {
        let parsed: Channel = channel.parse().map_err(ClientError::InvalidChannel)?;
        let options: JsValue = options.map_or(JsValue::UNDEFINED, Into::into);
        let (raw, filter_fn) = convert::subscribe_options(&options)?;
        let opts = raw.validate(parsed.as_str())?;
        let filter: Option<Filter<JsValue>> = filter_fn.map(|f| {
            Box::new(move |entry: &JsValue| {
                // A throwing filter keeps the log: better shown than lost.
                f.call1(&JsValue::NULL, entry)
                    .map_or(true, |v| v.is_truthy())
            }) as Filter<JsValue>
        });
        let id = {
            let mut inner = borrow_mut(&self.shared)?;
            let persist_limit = inner.engine.options().persist_max_bytes as usize * 2;
            let mut storage_missing = false;
            let restored = match &opts.persist_key {
                None => None,
                Some(key) => match inner.storage() {
                    None => {
                        storage_missing = true;
                        None
                    }
                    Some(s) => match storage::read(&s, key) {
                        Ok(Some(text)) => match persist::decode(
                            &text,
                            &parsed,
                            persist_limit,
                            opts.max_logs as usize,
                        ) {
                            Ok(r) => Some(r),
                            Err(e) => {
                                inner.engine.discard_stored(key, &crate::text!(e));
                                None
                            }
                        },
                        Ok(None) => None,
                        Err(_) => {
                            storage_missing = true;
                            None
                        }
                    },
                },
            };
            let id = inner
                .engine
                .subscribe(parsed.clone(), opts, filter, restored, now(), |raw| {
                    json_parse(&JsValue::from_str(raw)).unwrap_or(JsValue::NULL)
                })
                .map_err(ClientError::Subscribe)?;
            if storage_missing {
                inner.engine.persist_failed(id, false, now());
            }
            inner.subs.push((
                id,
                SubState {
                    on_update: on_update.unchecked_into(),
                    snapshot: None,
                },
            ));
            id
        };
        pump(&self.shared);
        Ok(LogsSubscription {
            client: Rc::downgrade(&self.shared),
            id,
            channel: parsed.as_str().to_owned(),
        })
    }

    /// Calls `callback` with every status change. Returns a handle; the
    /// listener is removed by `handle.unsubscribe()` or `handle.free()`.
    #[wasm_bindgen(js_name = onStatus)]
    pub fn on_status(&self, callback: StatusCallback) -> Result<StatusListener, ClientError> {
        let mut inner = borrow_mut(&self.shared)?;
        let id = inner.next_listener;
        inner.next_listener += 1;
        inner.status_listeners.push((id, callback.unchecked_into()));
        Ok(StatusListener {
            client: Rc::downgrade(&self.shared),
            id,
        })
    }

    /// The current status. The same object is returned until it changes.
    #[wasm_bindgen(getter)]
    pub fn status(&self) -> StatusJs {
        self.shared.borrow().status_js.clone().unchecked_into()
    }

    /// Counters: events, logs, duplicates, malformed events, opens, gaps,
    /// and how channel changes were applied.
    pub fn stats(&self) -> StatsJs {
        let inner = self.shared.borrow();
        convert::stats_to_js(&inner.engine.stats(), &inner.engine.channel_changes())
            .unchecked_into()
    }

    /// Retries at once after `failed`, or skips a pending backoff delay.
    pub fn reconnect(&self) -> Result<(), ClientError> {
        borrow_mut(&self.shared)?.engine.reconnect(now());
        pump(&self.shared);
        Ok(())
    }

    /// Closes the stream for good and writes persisted subscriptions.
    pub fn close(&self) -> Result<(), ClientError> {
        borrow_mut(&self.shared)?.engine.close(now());
        pump(&self.shared);
        let mut inner = borrow_mut(&self.shared)?;
        inner.global_listeners.clear();
        if let Some(t) = inner.timer.take() {
            drop_later(t);
        }
        Ok(())
    }
}

impl LogsClient {
    /// Feeds one SSE event to the current stream through the same path as
    /// the `EventSource` listeners (tests and benchmarks).
    pub fn ingest_event(&self, event: &str, data: &JsValue) {
        let generation = self.shared.borrow().engine.generation();
        ingest(&self.shared, generation, event, data);
    }

    /// Channels of the current stream, in query order.
    pub fn streamed_channels(&self) -> Vec<String> {
        self.shared
            .borrow()
            .engine
            .streamed_channels()
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect()
    }
}

impl Drop for LogsClient {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.shared.try_borrow_mut() {
            inner.engine.close(now());
        }
        pump(&self.shared);
        if let Ok(mut inner) = self.shared.try_borrow_mut() {
            if let Some(stream) = inner.stream.take() {
                drop_later(stream);
            }
            if let Some(t) = inner.timer.take() {
                drop_later(t);
            }
            let listeners = std::mem::take(&mut inner.global_listeners);
            drop_later(listeners);
        }
    }
}

/// A subscription to one channel; `unsubscribe()` or `free()` ends it.
#[wasm_bindgen]
pub struct LogsSubscription {
    client: Weak<RefCell<Inner>>,
    id: SubId,
    channel: String,
}

impl std::fmt::Debug for LogsSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogsSubscription")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .finish()
    }
}

fn unsubscribe(client: &Weak<RefCell<Inner>>, id: SubId) {
    let Some(shared) = client.upgrade() else {
        return;
    };
    match shared.try_borrow_mut() {
        Ok(mut inner) => {
            inner.subs.retain(|(k, _)| *k != id);
            inner.engine.unsubscribe(id, now());
        }
        Err(_) => {
            // Freed from inside a filter: finish once the borrow is gone.
            let weak = client.clone();
            defer(Box::new(move || unsubscribe(&weak, id)));
            return;
        }
    }
    pump(&shared);
}

#[wasm_bindgen(js_class = LogsSubscription)]
impl LogsSubscription {
    /// The buffered logs, oldest first, as a frozen array. The same array
    /// is returned until the buffer changes (cheap to call every render).
    pub fn snapshot(&self) -> LogEntries {
        let Some(shared) = self.client.upgrade() else {
            return js_sys::Array::new().unchecked_into();
        };
        let Ok(mut inner) = shared.try_borrow_mut() else {
            return js_sys::Array::new().unchecked_into();
        };
        let inner = &mut *inner;
        let Some(sub) = inner.engine.subscription(self.id) else {
            return js_sys::Array::new().unchecked_into();
        };
        let version = sub.buffer.version();
        let Some((_, state)) = inner.subs.iter_mut().find(|(k, _)| *k == self.id) else {
            return js_sys::Array::new().unchecked_into();
        };
        if let Some((v, js)) = &state.snapshot {
            if *v == version {
                return js.clone().unchecked_into();
            }
        }
        let js = convert::entries_to_js(sub.buffer.entries().map(|e| &e.payload));
        state.snapshot = Some((version, js.clone()));
        js.unchecked_into()
    }

    /// The subscribed channel.
    #[wasm_bindgen(getter)]
    pub fn channel(&self) -> String {
        self.channel.clone()
    }

    /// The channel's last status from the gateway (`subscribed`, `resumed`,
    /// `gap`, `denied`), or `undefined` before the stream reported it.
    #[wasm_bindgen(
        getter,
        js_name = channelStatus,
        unchecked_return_type = "ChannelStatusKind | undefined"
    )]
    pub fn channel_status(&self) -> Option<String> {
        let shared = self.client.upgrade()?;
        let inner = shared.try_borrow().ok()?;
        let status = inner.engine.subscription(self.id)?.status?;
        Some(convert::status_kind_name(status).to_owned())
    }

    /// Ends the subscription (idempotent). The channel lingers briefly.
    pub fn unsubscribe(&self) {
        unsubscribe(&self.client, self.id);
    }
}

impl Drop for LogsSubscription {
    fn drop(&mut self) {
        unsubscribe(&self.client, self.id);
    }
}

/// A status listener; `unsubscribe()` or `free()` removes it.
#[wasm_bindgen]
#[derive(Debug)]
pub struct StatusListener {
    client: Weak<RefCell<Inner>>,
    id: u32,
}

#[wasm_bindgen(js_class = StatusListener)]
impl StatusListener {
    pub fn unsubscribe(&self) {
        if let Some(shared) = self.client.upgrade() {
            if let Ok(mut inner) = shared.try_borrow_mut() {
                inner.status_listeners.retain(|(id, _)| *id != self.id);
            }
        }
    }
}

impl Drop for StatusListener {
    fn drop(&mut self) {
        self.unsubscribe();
    }
}
