//! The `sessionStorage` format of one subscription: encode with a byte
//! budget, and validate everything read back.
//!
//! ```json
//! {"format":"datashop-logs-sse","v":1,"channel":"logs:etl:ws1:wf9",
//!  "cursor":"9f3a-1042","savedAt":1700000000000,"logs":[{..log event..},...]}
//! ```
//!
//! `logs` holds the SSE `data` of each `log` event exactly as received,
//! oldest first. `cursor` is the channel's resume position when saved: every
//! log after it is fetched from the gateway's history on restore. Reading
//! back trusts nothing: wrong format or version, another channel, a log not
//! covered by the channel, a log after the cursor, oversize text: the whole
//! record is discarded with a reason.

use logs_sse_protocol::{Channel, Cursor};

use super::events;
use super::json::{self, Value};
use super::text::{self, Part};
use crate::text;

/// Value of the `format` field.
pub const FORMAT: &str = "datashop-logs-sse";
/// Current version.
pub const VERSION: u32 = 1;

/// Why a stored record was discarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    TooLarge { len: usize, max: usize },
    NotJson(String),
    Foreign,
    Version(u32),
    OtherChannel(String),
    BadLog { index: usize, why: String },
}

impl Part for DecodeError {
    fn push_to(&self, out: &mut String) {
        let parts: &[&dyn Part] = match self {
            DecodeError::TooLarge { len, max } => {
                &[&"stored record is ", len, &" bytes; the limit is ", max]
            }
            DecodeError::NotJson(e) => &[&"stored record is not valid: ", e],
            DecodeError::Foreign => &[&"stored record is not a ", &FORMAT, &" record"],
            DecodeError::Version(v) => &[&"stored record has unsupported version ", v],
            DecodeError::OtherChannel(c) => {
                &[&"stored record belongs to another channel (", c, &")"]
            }
            DecodeError::BadLog { index, why } => &[&"stored log #", index, &": ", why],
        };
        text::push(out, parts);
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&text!(self))
    }
}

/// The record's fields, typed but not yet checked against the channel.
#[derive(Debug)]
struct Stored<'a> {
    format: std::borrow::Cow<'a, str>,
    v: u32,
    channel: std::borrow::Cow<'a, str>,
    cursor: Option<Cursor>,
    logs: Vec<&'a str>,
}

/// Reads the envelope with the rules of a serde derive: all fields but
/// `cursor` required, unknown ones (`savedAt`) ignored.
fn read(text: &str) -> Result<Stored<'_>, String> {
    const NAMES: [&str; 5] = ["format", "v", "channel", "cursor", "logs"];
    let mut slots: [Option<Value<'_>>; 5] = [None; 5];
    json::known_fields(text, &NAMES, &mut slots).map_err(|e| text!(e))?;
    let [format, v, channel, cursor, logs] = slots;
    fn required<'a>(slot: Option<Value<'a>>, name: &str) -> Result<Value<'a>, String> {
        slot.ok_or_else(|| text!("missing field `", name, "`"))
    }
    let typed = |name: &str, e: json::Error| text!("`", name, "`: ", e);
    let mut items = Vec::new();
    json::array(required(logs, "logs")?.raw(), |item: Value<'_>| {
        items.push(item.raw());
        Ok::<(), json::Error>(())
    })
    .map_err(|e| typed("logs", e))?;
    Ok(Stored {
        format: required(format, "format")?
            .string()
            .map_err(|e| typed("format", e))?,
        v: required(v, "v")?.u32().map_err(|e| typed("v", e))?,
        channel: required(channel, "channel")?
            .string()
            .map_err(|e| typed("channel", e))?,
        cursor: match cursor.filter(|c| !c.is_null()) {
            None => None,
            Some(c) => Some(
                c.string()
                    .map_err(|e| typed("cursor", e))?
                    .parse()
                    .map_err(|_| "`cursor`: expected a cursor".to_owned())?,
            ),
        },
        logs: items,
    })
}

/// One restored log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredLog {
    pub cursor: Cursor,
    pub raw: String,
}

/// A validated record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Where the subscription resumes: the record's cursor, or its newest
    /// log when it has none.
    pub cursor: Option<Cursor>,
    pub logs: Vec<RestoredLog>,
}

/// Encodes a record holding the newest logs of `raw_logs` (oldest first)
/// that fit in `max_bytes` in total. Returns `None` when not even the
/// envelope fits.
pub fn encode<'a, I>(
    channel: &Channel,
    cursor: Option<Cursor>,
    saved_at_ms: u64,
    raw_logs: I,
    max_bytes: usize,
) -> Option<String>
where
    I: DoubleEndedIterator<Item = &'a str>,
{
    // Channel and cursor text use only [A-Za-z0-9_.:-]: no escaping needed.
    let mut head = text!(
        r#"{"format":""#,
        FORMAT,
        r#"","v":"#,
        VERSION,
        r#","channel":""#,
        channel,
        r#"","#
    );
    if let Some(c) = cursor {
        text::push(&mut head, &[&r#""cursor":""#, &c, &r#"","#]);
    }
    text::push(
        &mut head,
        &[&r#""savedAt":"#, &saved_at_ms, &r#","logs":["#],
    );
    let tail = "]}";
    let mut budget = max_bytes.checked_sub(head.len() + tail.len())?;
    let mut kept: Vec<&str> = Vec::new();
    for raw in raw_logs.rev() {
        let cost = raw.len() + 1;
        if cost > budget {
            break;
        }
        budget -= cost;
        kept.push(raw);
    }
    let mut out = head;
    for (i, raw) in kept.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(raw);
    }
    out.push_str(tail);
    Some(out)
}

/// Validates a stored record for `channel`; keeps at most `max_logs` (the
/// newest).
pub fn decode(
    text: &str,
    channel: &Channel,
    max_bytes: usize,
    max_logs: usize,
) -> Result<Restored, DecodeError> {
    if text.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            len: text.len(),
            max: max_bytes,
        });
    }
    let stored = read(text).map_err(DecodeError::NotJson)?;
    if stored.format != FORMAT {
        return Err(DecodeError::Foreign);
    }
    if stored.v != VERSION {
        return Err(DecodeError::Version(stored.v));
    }
    if stored.channel != channel.as_str() {
        return Err(DecodeError::OtherChannel(
            stored.channel.chars().take(200).collect(),
        ));
    }
    let skip = stored.logs.len().saturating_sub(max_logs);
    let mut logs = Vec::with_capacity(stored.logs.len() - skip);
    for (index, raw) in stored.logs.iter().enumerate().skip(skip) {
        let bad = |why: String| DecodeError::BadLog { index, why };
        let event = events::log(raw).map_err(|e| bad(text!(e)))?;
        if !channel.covers(&event.channel) {
            return Err(bad(text!(event.channel, " is not covered by ", channel)));
        }
        if let Some(c) = stored.cursor {
            if c.epoch == event.cursor.epoch && event.cursor.seq > c.seq {
                return Err(bad(text!(
                    "cursor ",
                    event.cursor,
                    " is after the record's ",
                    c
                )));
            }
        }
        logs.push(RestoredLog {
            cursor: event.cursor,
            raw: (*raw).to_owned(),
        });
    }
    // A record may hold logs but no cursor (written before the channel was
    // confirmed): its resume point is then its newest log, never "live".
    let cursor = stored.cursor.or_else(|| logs.last().map(|l| l.cursor));
    Ok(Restored { cursor, logs })
}

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests {
    use super::*;
    use logs_sse_protocol::Epoch;
    use proptest::prelude::*;

    fn ch(s: &str) -> Channel {
        s.parse().unwrap()
    }

    fn log(channel: &str, seq: u64, msg: &str) -> String {
        format!(
            r#"{{"channel":"{channel}","cursor":"ab-{seq}","ts":1,"logData":{{"msg":{}}}}}"#,
            serde_json::to_string(msg).unwrap()
        )
    }

    #[test]
    fn round_trips() {
        let c = ch("logs:etl:ws1");
        let logs = [
            log("logs:etl:ws1:wf9", 3, "a"),
            log("logs:etl:ws1:wf8", 5, "b\n\"c"),
        ];
        let cursor = Some(Cursor::new(Epoch(0xab), 7));
        let text = encode(&c, cursor, 42, logs.iter().map(String::as_str), 10_000).unwrap();
        let r = decode(&text, &c, 10_000, 100).unwrap();
        assert_eq!(r.cursor, cursor);
        assert_eq!(r.logs.len(), 2);
        assert_eq!(r.logs[1].raw, logs[1]);
        assert_eq!(r.logs[1].cursor, Cursor::new(Epoch(0xab), 5));
        // max_logs keeps the newest.
        let r = decode(&text, &c, 10_000, 1).unwrap();
        assert_eq!(r.logs[0].raw, logs[1]);
    }

    #[test]
    fn budget_keeps_the_newest_logs() {
        let c = ch("logs:etl:ws1:wf9");
        let logs: Vec<String> = (0..100)
            .map(|i| log("logs:etl:ws1:wf9", i, "xxxxxxxx"))
            .collect();
        let text = encode(&c, None, 1, logs.iter().map(String::as_str), 1_000).unwrap();
        assert!(text.len() <= 1_000);
        let r = decode(&text, &c, 1_000, 1_000).unwrap();
        assert!(!r.logs.is_empty());
        assert_eq!(r.logs.last().unwrap().cursor.seq, 99);
        assert!(encode(&c, None, 1, logs.iter().map(String::as_str), 10).is_none());
    }

    #[test]
    fn rejects_foreign_and_corrupt_records() {
        let c = ch("logs:etl:ws1:wf9");
        let good = encode(
            &c,
            None,
            1,
            [log("logs:etl:ws1:wf9", 1, "a")].iter().map(String::as_str),
            10_000,
        )
        .unwrap();
        assert!(decode(&good, &c, 10_000, 10).is_ok());
        assert_eq!(
            decode(&good, &ch("logs:etl:ws1:wf8"), 10_000, 10),
            Err(DecodeError::OtherChannel("logs:etl:ws1:wf9".into()))
        );
        assert!(matches!(
            decode(&good, &c, 10, 10),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            decode("{", &c, 100, 10),
            Err(DecodeError::NotJson(_))
        ));
        assert!(matches!(
            decode("[1,2]", &c, 100, 10),
            Err(DecodeError::NotJson(_))
        ));
        let foreign = good.replace(FORMAT, "something-else");
        assert_eq!(decode(&foreign, &c, 10_000, 10), Err(DecodeError::Foreign));
        let v2 = good.replace("\"v\":1", "\"v\":2");
        assert_eq!(decode(&v2, &c, 10_000, 10), Err(DecodeError::Version(2)));
        let other = good.replace(
            "\"channel\":\"logs:etl:ws1:wf9\",\"cursor",
            "\"channel\":\"logs:etl:ws1:wf7\",\"cursor",
        );
        let bad_log = good.replacen(
            "logs:etl:ws1:wf9\",\"cursor\":\"ab",
            "logs:faas:ws1:wf9\",\"cursor\":\"ab",
            1,
        );
        assert!(
            matches!(
                decode(&bad_log, &c, 10_000, 10),
                Err(DecodeError::BadLog { index: 0, .. })
            ),
            "{bad_log}"
        );
        let _ = other;
        let after = encode(
            &c,
            Some(Cursor::new(Epoch(0xab), 0)),
            1,
            [log("logs:etl:ws1:wf9", 1, "a")].iter().map(String::as_str),
            10_000,
        )
        .unwrap();
        assert!(matches!(
            decode(&after, &c, 10_000, 10),
            Err(DecodeError::BadLog { .. })
        ));
    }

    proptest! {
        #[test]
        fn decode_never_panics(input in "\\PC{0,400}") {
            let _ = decode(&input, &ch("logs:a:b"), 10_000, 10);
        }

        #[test]
        fn encoded_records_always_decode(msgs in proptest::collection::vec("\\PC{0,40}", 0..30), budget in 100usize..4_000) {
            let c = ch("logs:a:b:c");
            let logs: Vec<String> = msgs.iter().enumerate().map(|(i, m)| log("logs:a:b:c", i as u64, m)).collect();
            if let Some(text) = encode(&c, Some(Cursor::new(Epoch(0xab), 1_000)), 9, logs.iter().map(String::as_str), budget) {
                prop_assert!(text.len() <= budget);
                let r = decode(&text, &c, budget, 1_000).unwrap();
                let n = r.logs.len();
                prop_assert_eq!(r.logs.iter().map(|l| l.raw.clone()).collect::<Vec<_>>(), logs[logs.len() - n..].to_vec());
            }
        }
    }
}
