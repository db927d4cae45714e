//! Every conversion between JS values and the core's types, the error type
//! thrown to JS, and the TypeScript declarations of the API.

use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::core::engine::{SubscribeError, Update};
use crate::core::options::{ClientOptions, OptionsError, RawSubscribeOptions};
use crate::core::status::{ConnectionState, Reason, Status};
use crate::core::text::{self, Part};
use crate::text;
use logs_sse_protocol::{ChannelError, Cursor, StatusKind};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Options of `new LogsClient(url, options)`. Every field is optional. */
export interface ClientOptions {
  /** Send cookies with the stream (EventSource withCredentials). Default false. */
  withCredentials?: boolean;
  /** Lower bound of the reconnect delay, ms. Default 500. */
  backoffMinMs?: number;
  /** Upper bound of the reconnect delay, ms. Default 30000. */
  backoffMaxMs?: number;
  /** A stream open this long resets the backoff, ms. Default 5000. */
  healthyAfterMs?: number;
  /** How long a channel stays on the stream after its last unsubscribe, ms. Default 1500. */
  lingerMs?: number;
  /** Channel changes closer together than this share one control call (or reconnect), ms. Default 25. */
  coalesceMs?: number;
  /** Most subscriptions. Default 256. */
  maxSubscriptions?: number;
  /** Most distinct channels on the stream. Default 64. */
  maxChannels?: number;
  /** Least interval between two sessionStorage writes of one subscription, ms. Default 1000. */
  persistThrottleMs?: number;
  /** Most bytes stored per sessionStorage key. Default 262144. */
  persistMaxBytes?: number;
  /** Receives diagnostics (malformed events, storage problems). Default: console.warn. */
  onDiagnostic?: (diagnostic: Diagnostic) => void;
  /**
   * A subscriber token, sent as `access_token` in the stream URL (the gateway
   * needs --allow-query-token). With getToken too, it is used first.
   */
  token?: string | null;
  /**
   * Returns the subscriber token (or null for none), possibly as a promise.
   * Called before the first stream and whenever the gateway says the token
   * expired; the token is cached in between.
   */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /**
   * Where the stream and the requests go instead of the browser's
   * `EventSource` and global `fetch` (e.g. a stream relayed from another
   * tab or a SharedWorker).
   */
  transport?: StreamTransport;
}

/** The stream and the requests of a client, in place of the browser's. */
export interface StreamTransport {
  /**
   * Instead of `new EventSource(url, {withCredentials})`. The object
   * dispatches `open` and `error` (plain `Event`s) and `MessageEvent`s named
   * `hello`, `status`, `log`, `ping`, `close` whose `data` is the JSON text,
   * exactly as an EventSource would; `close()` ends it.
   */
  open(url: string, withCredentials: boolean): EventTarget & { close(): void };
  /** Instead of the global `fetch`, for the probe and the control calls. */
  fetch(url: string, init: RequestInit): Promise<Response>;
}

/** Options of `client.subscribe(channel, options, onUpdate)`. */
export interface SubscribeOptions {
  /** Logs kept (oldest dropped first), 1..100000. Default 1000. */
  maxLogs?: number;
  /** Keep logs and cursor in sessionStorage under a key derived from the channel. Default false. */
  persist?: boolean;
  /** Persist under this key (implies persist unless persist is false). */
  persistKey?: string;
  /** Where a channel new to the stream starts: "live" (default), "earliest" or a cursor. */
  resumeFrom?: string;
  /**
   * Backfill: start with the last `history` logs the gateway still holds,
   * then live (0..100000, default 0). A restored cursor wins: a persisted
   * subscription resumes instead of backfilling again.
   */
  history?: number;
  /** Keep a log only when this returns true. Must not call the client. */
  filter?: (entry: LogEntry) => boolean;
}

/** One log: the gateway's `log` event as published. */
export interface LogEntry {
  /** The channel the log was published to. */
  channel: string;
  /** Its position, `{epoch-hex}-{seq}`. */
  cursor: string;
  /** Gateway receive time, ms since the Unix epoch. */
  ts: number;
  /** The publisher's logData, untouched. */
  logData: unknown;
}

export type ChannelStatusKind = "subscribed" | "resumed" | "gap" | "denied";

export type SubscriptionUpdate =
  | { type: "logs"; added: number }
  | { type: "status"; status: ChannelStatusKind; cursor?: string; reason?: string; replayed: number }
  | { type: "gap"; from?: string; to?: string; reason?: string };

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed" | "failed";

export type FailureReason =
  | "network" | "gateway_unreachable" | "gateway_error" | "unauthorized"
  | "forbidden" | "bad_request" | "gateway_closed";

export interface ConnectionStatus {
  state: ConnectionState;
  reason?: FailureReason;
  message?: string;
  httpStatus?: number;
  code?: string;
  attempt: number;
  retryInMs?: number;
  connectionId?: string;
  /** How channel changes reach the open stream (set while open). */
  channelChanges?: ChannelChangeMode;
  /** Why the last channel change reopened the stream; until the next stream's hello. */
  fallback?: ChannelChangeFallback;
}

/** "live": through the gateway's control endpoint; "reconnect": a new stream, resuming from cursors. */
export type ChannelChangeMode = "live" | "reconnect";

export type ChannelChangeFallback =
  | "no_secret" | "overlap" | "not_found" | "unsupported" | "unauthorized"
  | "forbidden" | "rejected" | "gateway_error" | "network" | "timeout";

export interface ChannelChangeStats {
  mode: ChannelChangeMode;
  /** Changes applied live. */
  live: number;
  /** Changes that reopened the stream instead. */
  reopened: number;
  lastFallback?: ChannelChangeFallback;
}

export interface Diagnostic {
  kind: "malformed_event" | "storage" | "callback";
  message: string;
}

export interface ClientStats {
  events: number; logs: number; delivered: number; duplicates: number;
  filtered: number; malformed: number; opens: number; gaps: number;
  channelChanges: ChannelChangeStats;
}
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "ClientOptions")]
    pub type ClientOptionsJs;
    #[wasm_bindgen(typescript_type = "SubscribeOptions")]
    pub type SubscribeOptionsJs;
    #[wasm_bindgen(extends = Function, typescript_type = "(update: SubscriptionUpdate) => void")]
    pub type UpdateCallback;
    #[wasm_bindgen(extends = Function, typescript_type = "(status: ConnectionStatus) => void")]
    pub type StatusCallback;
    #[wasm_bindgen(typescript_type = "LogEntry[]")]
    pub type LogEntries;
    #[wasm_bindgen(typescript_type = "ConnectionStatus")]
    pub type StatusJs;
    #[wasm_bindgen(typescript_type = "ClientStats")]
    pub type StatsJs;

    /// The `transport` option (checked to have `open` and `fetch`).
    #[wasm_bindgen(typescript_type = "StreamTransport")]
    #[derive(Debug, Clone)]
    pub type StreamTransport;
    /// `transport.open(url, withCredentials)`: an `EventSource` look-alike
    /// (only `addEventListener`, `removeEventListener` and `close` are used,
    /// called by name).
    #[wasm_bindgen(method, catch)]
    pub fn open(
        this: &StreamTransport,
        url: &str,
        with_credentials: bool,
    ) -> Result<web_sys::EventSource, JsValue>;
    /// `transport.fetch(url, init)`: anything, wrapped in `Promise.resolve`.
    #[wasm_bindgen(method, catch)]
    pub fn fetch(
        this: &StreamTransport,
        url: &str,
        init: &web_sys::RequestInit,
    ) -> Result<JsValue, JsValue>;

    /// `JSON.parse` on a JS string, without copying it through Rust.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    pub fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;
}

/// Errors thrown to JS (as `Error` objects with `name` and `code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    InvalidUrl(String),
    InvalidOptions(String),
    InvalidChannel(ChannelError),
    Subscribe(SubscribeError),
    /// The client was called from inside a filter.
    Reentrant,
}

impl ClientError {
    fn code(&self) -> &'static str {
        match self {
            ClientError::InvalidUrl(_) => "invalid_url",
            ClientError::InvalidOptions(_) => "invalid_options",
            ClientError::InvalidChannel(_) => "invalid_channel",
            ClientError::Subscribe(SubscribeError::Closed) => "closed",
            ClientError::Subscribe(SubscribeError::TooManySubscriptions(_)) => {
                "too_many_subscriptions"
            }
            ClientError::Subscribe(SubscribeError::TooManyChannels(_)) => "too_many_channels",
            ClientError::Reentrant => "reentrant_call",
        }
    }
}

impl Part for ClientError {
    fn push_to(&self, out: &mut String) {
        let parts: &[&dyn Part] = match self {
            ClientError::InvalidUrl(m) => &[&"invalid gateway URL: ", m],
            ClientError::InvalidOptions(m) => &[&"invalid options: ", m],
            ClientError::InvalidChannel(e) => &[&"invalid channel: ", e],
            ClientError::Subscribe(e) => &[&"cannot subscribe: ", e],
            ClientError::Reentrant => {
                &[&"the client was called from inside a filter; filters must be pure"]
            }
        };
        text::push(out, parts);
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&text!(self))
    }
}

impl From<OptionsError> for ClientError {
    fn from(e: OptionsError) -> Self {
        ClientError::InvalidOptions(e.0)
    }
}

impl From<ClientError> for JsValue {
    fn from(e: ClientError) -> Self {
        let error = js_sys::Error::new(&text!(e));
        error.set_name("LogsClientError");
        set(&error, "code", &e.code().into());
        error.into()
    }
}

fn set(target: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

fn set_opt_str(target: &Object, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        set(target, key, &JsValue::from_str(v));
    }
}

fn set_opt_cursor(target: &Object, key: &str, value: Option<Cursor>) {
    if let Some(c) = value {
        set(target, key, &JsValue::from_str(&text!(c)));
    }
}

/// Reads the own enumerable keys of an options object and rejects unknown
/// ones (typos would otherwise be silently ignored).
fn object_fields(
    value: &JsValue,
    what: &str,
    known: &[&str],
) -> Result<Option<Object>, ClientError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let Some(obj) = value.dyn_ref::<Object>() else {
        return Err(ClientError::InvalidOptions(text!(
            what,
            " must be an object"
        )));
    };
    for key in Object::keys(obj).iter() {
        let key = key.as_string().unwrap_or_default();
        if !known.contains(&key.as_str()) {
            // Pushed piece by piece: `join` costs a generic copy routine.
            let mut message = text!("unknown ", what, " field `", key, "`; known fields: ");
            for (i, name) in known.iter().enumerate() {
                if i > 0 {
                    message.push_str(", ");
                }
                message.push_str(name);
            }
            return Err(ClientError::InvalidOptions(message));
        }
    }
    Ok(Some(obj.clone()))
}

fn field(obj: &Object, key: &str) -> Option<JsValue> {
    Reflect::get(obj, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn u32_field(obj: &Object, key: &str) -> Result<Option<u32>, ClientError> {
    match field(obj, key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) => {
                Ok(Some(n as u32))
            }
            _ => Err(ClientError::InvalidOptions(text!(
                key,
                " must be a whole number between 0 and ",
                u32::MAX
            ))),
        },
    }
}

fn bool_field(obj: &Object, key: &str) -> Result<Option<bool>, ClientError> {
    match field(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| ClientError::InvalidOptions(text!(key, " must be a boolean"))),
    }
}

fn string_field(obj: &Object, key: &str) -> Result<Option<String>, ClientError> {
    match field(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_string()
            .map(Some)
            .ok_or_else(|| ClientError::InvalidOptions(text!(key, " must be a string"))),
    }
}

fn function_field(obj: &Object, key: &str) -> Result<Option<Function>, ClientError> {
    match field(obj, key) {
        None => Ok(None),
        Some(v) => v
            .dyn_into::<Function>()
            .map(Some)
            .map_err(|_| ClientError::InvalidOptions(text!(key, " must be a function"))),
    }
}

/// Client options as read from JS: the core's options, the callbacks and
/// the token settings (kept out of `ClientOptions`, whose `Debug` would show
/// the token).
#[derive(Debug)]
pub struct JsClientOptions {
    pub options: ClientOptions,
    pub on_diagnostic: Option<Function>,
    pub token: Option<crate::core::auth::Token>,
    pub get_token: Option<Function>,
    pub transport: Option<StreamTransport>,
}

/// Reads `new LogsClient(url, options)`'s options.
pub fn client_options(value: &JsValue) -> Result<JsClientOptions, ClientError> {
    const KNOWN: [&str; 14] = [
        "withCredentials",
        "backoffMinMs",
        "backoffMaxMs",
        "healthyAfterMs",
        "lingerMs",
        "coalesceMs",
        "maxSubscriptions",
        "maxChannels",
        "persistThrottleMs",
        "persistMaxBytes",
        "onDiagnostic",
        "token",
        "getToken",
        "transport",
    ];
    let mut o = ClientOptions::default();
    let Some(obj) = object_fields(value, "client option", &KNOWN)? else {
        return Ok(JsClientOptions {
            options: o,
            on_diagnostic: None,
            token: None,
            get_token: None,
            transport: None,
        });
    };
    if let Some(v) = bool_field(&obj, "withCredentials")? {
        o.with_credentials = v;
    }
    for (key, slot) in [
        ("backoffMinMs", &mut o.backoff_min_ms),
        ("backoffMaxMs", &mut o.backoff_max_ms),
        ("healthyAfterMs", &mut o.healthy_after_ms),
        ("lingerMs", &mut o.linger_ms),
        ("coalesceMs", &mut o.coalesce_ms),
        ("maxSubscriptions", &mut o.max_subscriptions),
        ("maxChannels", &mut o.max_channels),
        ("persistThrottleMs", &mut o.persist_throttle_ms),
        ("persistMaxBytes", &mut o.persist_max_bytes),
    ] {
        if let Some(v) = u32_field(&obj, key)? {
            *slot = v;
        }
    }
    let token = match string_field(&obj, "token")? {
        Some(text) => {
            crate::core::auth::Token::accept(text).map_err(ClientError::InvalidOptions)?
        }
        None => None,
    };
    Ok(JsClientOptions {
        options: o.validate()?,
        on_diagnostic: function_field(&obj, "onDiagnostic")?,
        token,
        get_token: function_field(&obj, "getToken")?,
        transport: transport_field(&obj)?,
    })
}

/// The `transport` option: an object whose `open` and `fetch` are functions.
fn transport_field(obj: &Object) -> Result<Option<StreamTransport>, ClientError> {
    let Some(value) = field(obj, "transport") else {
        return Ok(None);
    };
    let has = |key: &str| {
        value.is_object() && Reflect::get(&value, &key.into()).is_ok_and(|f| f.is_function())
    };
    if has("open") && has("fetch") {
        return Ok(Some(value.unchecked_into()));
    }
    Err(ClientError::InvalidOptions(
        "transport must be an object with the functions open(url, withCredentials) and fetch(url, init)".into(),
    ))
}

/// The text of a thrown value: an `Error`'s message, or a thrown string.
pub fn error_text(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "not an Error".into())
}

/// What a token getter's (awaited) result means: a string is the token,
/// `null`/`undefined` none, anything else a mistake.
pub fn token_answer(value: &JsValue) -> Result<Option<String>, String> {
    if value.is_null() || value.is_undefined() {
        return Ok(None);
    }
    match value.as_string() {
        Some(text) => Ok(Some(text)),
        None => Err("not a string".into()),
    }
}

/// Subscription options and the optional filter.
pub fn subscribe_options(
    value: &JsValue,
) -> Result<(RawSubscribeOptions, Option<Function>), ClientError> {
    const KNOWN: [&str; 6] = [
        "maxLogs",
        "persist",
        "persistKey",
        "resumeFrom",
        "history",
        "filter",
    ];
    let Some(obj) = object_fields(value, "subscribe option", &KNOWN)? else {
        return Ok((RawSubscribeOptions::default(), None));
    };
    Ok((
        RawSubscribeOptions {
            max_logs: u32_field(&obj, "maxLogs")?,
            persist: bool_field(&obj, "persist")?,
            persist_key: string_field(&obj, "persistKey")?,
            resume_from: string_field(&obj, "resumeFrom")?,
            history: u32_field(&obj, "history")?,
        },
        function_field(&obj, "filter")?,
    ))
}

pub fn state_name(s: ConnectionState) -> &'static str {
    match s {
        ConnectionState::Idle => "idle",
        ConnectionState::Connecting => "connecting",
        ConnectionState::Open => "open",
        ConnectionState::Reconnecting => "reconnecting",
        ConnectionState::Closed => "closed",
        ConnectionState::Failed => "failed",
    }
}

pub fn reason_name(r: Reason) -> &'static str {
    match r {
        Reason::Network => "network",
        Reason::GatewayUnreachable => "gateway_unreachable",
        Reason::GatewayError => "gateway_error",
        Reason::Unauthorized => "unauthorized",
        Reason::Forbidden => "forbidden",
        Reason::BadRequest => "bad_request",
        Reason::GatewayClosed => "gateway_closed",
    }
}

pub fn status_kind_name(k: StatusKind) -> &'static str {
    match k {
        StatusKind::Subscribed => "subscribed",
        StatusKind::Resumed => "resumed",
        StatusKind::Gap => "gap",
        StatusKind::Denied => "denied",
    }
}

pub fn status_to_js(s: &Status) -> JsValue {
    let o = Object::new();
    set(&o, "state", &state_name(s.state).into());
    set_opt_str(&o, "reason", s.reason.map(reason_name));
    set_opt_str(&o, "message", s.message.as_deref());
    if let Some(h) = s.http_status {
        set(&o, "httpStatus", &h.into());
    }
    set_opt_str(&o, "code", s.code.as_deref());
    set(&o, "attempt", &s.attempt.into());
    if let Some(r) = s.retry_in_ms {
        set(&o, "retryInMs", &r.into());
    }
    set_opt_str(&o, "connectionId", s.connection_id.as_deref());
    set_opt_str(&o, "channelChanges", s.channel_changes.map(|m| m.as_str()));
    set_opt_str(&o, "fallback", s.fallback.map(|f| f.as_str()));
    Object::freeze(&o).into()
}

pub fn update_to_js(u: &Update) -> JsValue {
    let o = Object::new();
    match u {
        Update::Logs { added } => {
            set(&o, "type", &"logs".into());
            set(&o, "added", &(*added).into());
        }
        Update::Status {
            status,
            cursor,
            reason,
            replayed,
        } => {
            set(&o, "type", &"status".into());
            set(&o, "status", &status_kind_name(*status).into());
            set_opt_cursor(&o, "cursor", *cursor);
            set_opt_str(&o, "reason", reason.as_deref());
            set(&o, "replayed", &(*replayed).into());
        }
        Update::Gap { from, to, reason } => {
            set(&o, "type", &"gap".into());
            set_opt_cursor(&o, "from", *from);
            set_opt_cursor(&o, "to", *to);
            set_opt_str(&o, "reason", reason.as_deref());
        }
    }
    Object::freeze(&o).into()
}

pub fn stats_to_js(
    s: &crate::core::engine::Stats,
    c: &crate::core::engine::ChannelChanges,
) -> JsValue {
    let o = Object::new();
    for (k, v) in [
        ("events", s.events),
        ("logs", s.logs),
        ("delivered", s.delivered),
        ("duplicates", s.duplicates),
        ("filtered", s.filtered),
        ("malformed", s.malformed),
        ("opens", s.opens),
        ("gaps", s.gaps),
    ] {
        set(&o, k, &(v as f64).into());
    }
    let changes = Object::new();
    set(&changes, "mode", &c.mode.as_str().into());
    set(&changes, "live", &(c.live as f64).into());
    set(&changes, "reopened", &(c.reopened as f64).into());
    set_opt_str(
        &changes,
        "lastFallback",
        c.last_fallback.map(|f| f.as_str()),
    );
    set(&o, "channelChanges", &changes);
    o.into()
}

pub fn diagnostic_to_js(kind: &str, message: &str) -> JsValue {
    let o = Object::new();
    set(&o, "kind", &kind.into());
    set(&o, "message", &message.into());
    o.into()
}

/// A frozen array of payloads.
pub fn entries_to_js<'a>(payloads: impl ExactSizeIterator<Item = &'a JsValue>) -> JsValue {
    let array = Array::new_with_length(payloads.len() as u32);
    for (i, p) in payloads.enumerate() {
        array.set(i as u32, p.clone());
    }
    Object::freeze(&array).into()
}
