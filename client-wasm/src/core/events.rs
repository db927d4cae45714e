//! The payloads of the gateway's SSE events (see `logs_sse_protocol::wire`),
//! read with [`super::json`] into the shared protocol types.
//!
//! The rules are those of the protocol's serde derives, so that the client
//! accepts exactly what the gateway's types describe: required fields must
//! be present, `Option` fields may be absent or `null`, unknown fields are
//! ignored (the protocol grows additively), a field given twice is an
//! error, and channel names and cursors go through the protocol's own
//! parsers. The tests check every decoder against serde_json on random
//! events and on random damage. One deliberate difference: a `hello`
//! without `heartbeatMs` is accepted (the watchdog then uses its default),
//! because a missing heartbeat is no reason to ignore the stream's
//! identity.

use std::borrow::Cow;

use logs_sse_protocol::{
    Channel, ChannelStatus, CloseEvent, CloseReason, Cursor, Epoch, StatusKind,
};

use super::json::{self, Value};
use super::text::{self, Part};

/// Why an event payload was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// Not a JSON object (or not valid JSON).
    Json(json::Error),
    Missing(&'static str),
    /// A field of the wrong JSON type.
    Field {
        field: &'static str,
        error: json::Error,
    },
    /// A field of the right type with a value the protocol does not allow.
    Invalid {
        field: &'static str,
        expected: &'static str,
    },
}

impl From<json::Error> for EventError {
    fn from(e: json::Error) -> Self {
        EventError::Json(e)
    }
}

impl Part for EventError {
    fn push_to(&self, out: &mut String) {
        let parts: &[&dyn Part] = match self {
            EventError::Json(e) => &[e],
            EventError::Missing(field) => &[&"missing field `", field, &"`"],
            EventError::Field { field, error } => &[&"`", field, &"`: ", error],
            EventError::Invalid { field, expected } => &[&"`", field, &"`: expected ", expected],
        };
        text::push(out, parts);
    }
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::text!(self))
    }
}

/// A field read by [`json::known_fields`].
#[derive(Clone, Copy)]
struct Field<'a> {
    name: &'static str,
    value: Option<Value<'a>>,
}

impl<'a> Field<'a> {
    fn required(self) -> Result<Value<'a>, EventError> {
        self.value.ok_or(EventError::Missing(self.name))
    }

    /// `None` when absent or `null`.
    fn optional(self) -> Option<Value<'a>> {
        self.value.filter(|v| !v.is_null())
    }

    fn typed<T>(
        self,
        v: Value<'a>,
        read: fn(Value<'a>) -> Result<T, json::Error>,
    ) -> Result<T, EventError> {
        read(v).map_err(|error| EventError::Field {
            field: self.name,
            error,
        })
    }

    fn string(self, v: Value<'a>) -> Result<Cow<'a, str>, EventError> {
        self.typed(v, Value::string)
    }

    fn u64(self) -> Result<u64, EventError> {
        self.typed(self.required()?, Value::u64)
    }

    fn invalid(self, expected: &'static str) -> EventError {
        EventError::Invalid {
            field: self.name,
            expected,
        }
    }

    fn channel(self) -> Result<Channel, EventError> {
        self.string(self.required()?)?
            .parse()
            .map_err(|_| self.invalid("a channel name"))
    }

    fn cursor(self, v: Value<'a>) -> Result<Cursor, EventError> {
        self.string(v)?
            .parse()
            .map_err(|_| self.invalid("a cursor"))
    }
}

/// Reads the members `names` of the object `text`.
fn read<'a, const N: usize>(
    text: &'a str,
    names: [&'static str; N],
) -> Result<[Field<'a>; N], EventError> {
    let mut slots = [None; N];
    json::known_fields(text, &names, &mut slots)?;
    Ok(std::array::from_fn(|i| Field {
        name: names[i],
        value: slots[i],
    }))
}

/// A `log` event. `log_data` is the raw text of `logData`, untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRef<'a> {
    pub channel: Channel,
    pub cursor: Cursor,
    pub ts: u64,
    pub log_data: &'a str,
}

pub fn log(text: &str) -> Result<LogRef<'_>, EventError> {
    let [channel, cursor, ts, log_data] = read(text, ["channel", "cursor", "ts", "logData"])?;
    Ok(LogRef {
        channel: channel.channel()?,
        cursor: cursor.cursor(cursor.required()?)?,
        ts: ts.u64()?,
        log_data: log_data.required()?.raw(),
    })
}

/// A `status` event.
pub fn status(text: &str) -> Result<ChannelStatus, EventError> {
    let [channel, status, cursor, replayed, reason] =
        read(text, ["channel", "status", "cursor", "replayed", "reason"])?;
    let kind = StatusKind::from_wire(&status.string(status.required()?)?)
        .ok_or_else(|| status.invalid("subscribed, resumed, gap or denied"))?;
    Ok(ChannelStatus {
        channel: channel.channel()?,
        status: kind,
        cursor: cursor.optional().map(|v| cursor.cursor(v)).transpose()?,
        replayed: match replayed.value {
            None => 0,
            Some(v) => replayed.typed(v, Value::u32)?,
        },
        reason: reason
            .optional()
            .map(|v| reason.string(v).map(Cow::into_owned))
            .transpose()?,
    })
}

/// A `hello` event; see the module docs for `heartbeat_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub connection_id: String,
    pub epoch: Epoch,
    pub heartbeat_ms: Option<u64>,
    /// The secret of the stream's control endpoint; absent from a gateway
    /// without one. A secret: never shown.
    pub control_secret: Option<String>,
}

pub fn hello(text: &str) -> Result<Hello, EventError> {
    let [id, epoch, heartbeat, secret] = read(
        text,
        ["connectionId", "epoch", "heartbeatMs", "controlSecret"],
    )?;
    let epoch_text = epoch.string(epoch.required()?)?;
    Ok(Hello {
        connection_id: id.string(id.required()?)?.into_owned(),
        // The protocol's rule (`u64::from_str_radix`), so the same texts pass.
        epoch: u64::from_str_radix(&epoch_text, 16)
            .map(Epoch)
            .map_err(|_| epoch.invalid("a hexadecimal epoch"))?,
        heartbeat_ms: heartbeat
            .optional()
            .map(|v| heartbeat.typed(v, Value::u64))
            .transpose()?,
        control_secret: secret
            .optional()
            .map(|v| secret.string(v).map(|s| s.into_owned()))
            .transpose()?,
    })
}

/// A `close` event.
pub fn close(text: &str) -> Result<CloseEvent, EventError> {
    let [reason, message, retry] = read(text, ["reason", "message", "retryMs"])?;
    let kind = CloseReason::from_wire(&reason.string(reason.required()?)?)
        .ok_or_else(|| reason.invalid("slow_consumer, shutdown or auth_expired"))?;
    Ok(CloseEvent {
        reason: kind,
        message: message.string(message.required()?)?.into_owned(),
        retry_ms: retry.u64()?,
    })
}

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests;
