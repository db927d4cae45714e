//! Parsing bodies of `POST /api/logs/publish`: one JSON object, a JSON array
//! of objects, or NDJSON (one object per line).
//!
//! The body format is part of the contract with publishers, so it lives
//! here, pure and synchronous, where it is fuzzed without the server. The body as a whole fails only
//! when it cannot be split into items (not JSON, not objects, too many);
//! otherwise each item succeeds or fails on its own, so one bad log in a
//! batch never drops the good ones.

use std::borrow::Cow;
use std::fmt;

use crate::channel::{Channel, Segment, SegmentKind};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Makes valid JSON text safe for one SSE `data:` line. Inside JSON strings
/// line breaks are always escaped; outside them they are insignificant
/// whitespace, so replacing them with spaces keeps the value identical.
pub fn single_line_json(json: &str) -> Cow<'_, str> {
    if json.bytes().any(|b| b == b'\n' || b == b'\r') {
        Cow::Owned(json.replace(['\n', '\r'], " "))
    } else {
        Cow::Borrowed(json)
    }
}

/// True when `text` is one valid JSON value (used by checks and fuzzing).
pub fn is_valid_json(text: &str) -> bool {
    serde_json::from_str::<&RawValue>(text).is_ok()
}

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    NdJson,
}

/// Bounds applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    pub max_items: usize,
    pub max_log_bytes: usize,
}

/// A log ready for routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLog {
    pub channel: Channel,
    /// `logData` as single-line JSON text.
    pub log_data: String,
}

/// Why the body as a whole was rejected (400 or 413).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body must be a JSON object or an array of objects")]
    NotAnObjectOrArray,
    #[error("body holds no logs")]
    Empty,
    #[error("body holds {found} logs; at most {max} are accepted per request")]
    TooManyItems { found: usize, max: usize },
}

impl BodyError {
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::InvalidJson(_) => "invalid_json",
            BodyError::NotAnObjectOrArray => "invalid_body",
            BodyError::Empty => "empty_body",
            BodyError::TooManyItems { .. } => "batch_too_large",
        }
    }
}

/// Why one item was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ItemError {
    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ItemError {
            status: 400,
            code,
            message: message.into(),
        }
    }
}

/// An id that may be sent as a JSON string or integer.
#[derive(Debug)]
struct Id<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Id<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl<'de> Visitor<'de> for IdVisitor {
            type Value = Id<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Id(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// The seed's publish item. Unknown fields are ignored so publishers can
/// add their own metadata.
#[derive(Debug, Deserialize)]
struct WireItem<'a> {
    #[serde(borrow, default)]
    service: Option<Id<'a>>,
    #[serde(borrow, default)]
    workspace_id: Option<Id<'a>>,
    #[serde(borrow, default)]
    workflow_id: Option<Id<'a>>,
    #[serde(borrow, default)]
    function_id: Option<Id<'a>>,
    #[serde(borrow, default)]
    resource_id: Option<Id<'a>>,
    #[serde(rename = "logData", alias = "log_data", borrow, default)]
    log_data: Option<&'a RawValue>,
}

/// Splits and parses a publish body.
pub fn parse_body(
    body: &[u8],
    format: BodyFormat,
    limits: ParseLimits,
) -> Result<Vec<Result<ParsedLog, ItemError>>, BodyError> {
    let items: Vec<Result<&RawValue, ItemError>> = match format {
        BodyFormat::Json => split_json(body, limits.max_items)?,
        BodyFormat::NdJson => split_ndjson(body, limits.max_items)?,
    };
    if items.is_empty() {
        return Err(BodyError::Empty);
    }
    Ok(items
        .into_iter()
        .map(|item| item.and_then(|raw| parse_item(raw, limits.max_log_bytes)))
        .collect())
}

fn first_non_space(body: &[u8]) -> Option<u8> {
    body.iter().copied().find(|b| !b.is_ascii_whitespace())
}

fn split_json(
    body: &[u8],
    max_items: usize,
) -> Result<Vec<Result<&RawValue, ItemError>>, BodyError> {
    match first_non_space(body) {
        None => Err(BodyError::Empty),
        Some(b'{') => {
            let raw: &RawValue =
                serde_json::from_slice(body).map_err(|e| BodyError::InvalidJson(e.to_string()))?;
            Ok(vec![Ok(raw)])
        }
        Some(b'[') => {
            let raws: Vec<&RawValue> =
                serde_json::from_slice(body).map_err(|e| BodyError::InvalidJson(e.to_string()))?;
            if raws.len() > max_items {
                return Err(BodyError::TooManyItems {
                    found: raws.len(),
                    max: max_items,
                });
            }
            Ok(raws.into_iter().map(Ok).collect())
        }
        Some(_) => {
            // Distinguish "not JSON at all" from "JSON of the wrong shape".
            serde_json::from_slice::<&RawValue>(body)
                .map_err(|e| BodyError::InvalidJson(e.to_string()))?;
            Err(BodyError::NotAnObjectOrArray)
        }
    }
}

fn split_ndjson(
    body: &[u8],
    max_items: usize,
) -> Result<Vec<Result<&RawValue, ItemError>>, BodyError> {
    let lines: Vec<&[u8]> = body
        .split(|&b| b == b'\n')
        .filter(|line| first_non_space(line).is_some())
        .collect();
    if lines.len() > max_items {
        return Err(BodyError::TooManyItems {
            found: lines.len(),
            max: max_items,
        });
    }
    Ok(lines
        .into_iter()
        .map(|line| {
            serde_json::from_slice::<&RawValue>(line)
                .map_err(|e| ItemError::bad("invalid_json", format!("line is not valid JSON: {e}")))
        })
        .collect())
}

fn required<'a>(value: Option<Id<'a>>, field: &str) -> Result<Cow<'a, str>, ItemError> {
    value
        .map(|id| id.0)
        .ok_or_else(|| ItemError::bad("missing_field", format!("{field} is required")))
}

fn segment(kind: SegmentKind, field: &str, value: &str) -> Result<(), ItemError> {
    Segment::parse(kind, value).map(|_| ()).map_err(|e| {
        // The protocol names the segment by its channel role; name the field
        // the publisher actually sent instead.
        ItemError::bad(
            "invalid_segment",
            e.to_string().replacen(kind.field_name(), field, 1),
        )
    })
}

fn parse_item(raw: &RawValue, max_log_bytes: usize) -> Result<ParsedLog, ItemError> {
    if !raw.get().starts_with('{') {
        return Err(ItemError::bad(
            "invalid_item",
            "each log must be a JSON object",
        ));
    }
    let item: WireItem<'_> = serde_json::from_str(raw.get())
        .map_err(|e| ItemError::bad("invalid_item", e.to_string()))?;
    let service = required(item.service, "service")?;
    let workspace = required(item.workspace_id, "workspace_id")?;
    let ids = [
        ("workflow_id", item.workflow_id),
        ("function_id", item.function_id),
        ("resource_id", item.resource_id),
    ];
    let mut present = ids
        .into_iter()
        .filter_map(|(field, id)| id.map(|id| (field, id.0)));
    let (id_field, resource) = present.next().ok_or_else(|| {
        ItemError::bad(
            "missing_field",
            "one of workflow_id, function_id or resource_id is required",
        )
    })?;
    if let Some((other, _)) = present.next() {
        return Err(ItemError::bad(
            "conflicting_ids",
            format!("give exactly one of workflow_id, function_id or resource_id (found {id_field} and {other})"),
        ));
    }
    let log_data = item
        .log_data
        .ok_or_else(|| ItemError::bad("missing_field", "logData is required"))?;
    segment(SegmentKind::Service, "service", &service)?;
    segment(SegmentKind::Workspace, "workspace_id", &workspace)?;
    segment(SegmentKind::Resource, id_field, &resource)?;
    let log_data = log_data.get();
    if log_data.len() > max_log_bytes {
        return Err(ItemError {
            status: 413,
            code: "log_too_large",
            message: format!(
                "logData is {} bytes; the limit is {max_log_bytes}",
                log_data.len()
            ),
        });
    }
    let channel = Channel::new(&service, &workspace, Some(&resource))
        .map_err(|e| ItemError::bad("invalid_segment", e.to_string()))?;
    Ok(ParsedLog {
        channel,
        log_data: single_line_json(log_data).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: ParseLimits = ParseLimits {
        max_items: 3,
        max_log_bytes: 100,
    };

    fn parse(
        body: &str,
        format: BodyFormat,
    ) -> Result<Vec<Result<ParsedLog, ItemError>>, BodyError> {
        parse_body(body.as_bytes(), format, LIMITS)
    }

    #[test]
    fn accepts_the_seed_body_and_each_id_field() {
        for (field, channel) in [
            ("workflow_id", "logs:etl:workspace123:workflow456"),
            ("function_id", "logs:etl:workspace123:workflow456"),
            ("resource_id", "logs:etl:workspace123:workflow456"),
        ] {
            let body = format!(
                r#"{{"service":"etl","workspace_id":"workspace123","{field}":"workflow456","logData":{{"level":"info","message":"hi"}},"extra":1}}"#
            );
            let items = parse(&body, BodyFormat::Json).unwrap();
            let log = items[0].as_ref().unwrap();
            assert_eq!(log.channel.as_str(), channel);
            assert_eq!(log.log_data, r#"{"level":"info","message":"hi"}"#);
        }
        let items = parse(
            r#"{"service":"etl","workspace_id":123,"workflow_id":7,"log_data":"x"}"#,
            BodyFormat::Json,
        )
        .unwrap();
        assert_eq!(
            items[0].as_ref().unwrap().channel.as_str(),
            "logs:etl:123:7"
        );
    }

    #[test]
    fn a_bad_item_does_not_sink_the_batch() {
        let body = r#"[{"service":"etl","workspace_id":"w","workflow_id":"a","logData":1},
                       {"service":"etl","workspace_id":"w b","workflow_id":"a","logData":2},
                       {"service":"etl","workspace_id":"w","logData":3}]"#;
        let items = parse(body, BodyFormat::Json).unwrap();
        assert!(items[0].is_ok());
        let e1 = items[1].as_ref().unwrap_err();
        assert_eq!((e1.status, e1.code), (400, "invalid_segment"));
        assert!(
            e1.message.starts_with("workspace_id contains ' '"),
            "{}",
            e1.message
        );
        assert_eq!(items[2].as_ref().unwrap_err().code, "missing_field");
    }

    #[test]
    fn names_each_problem() {
        let code = |body: &str| {
            parse(body, BodyFormat::Json).unwrap()[0]
                .as_ref()
                .unwrap_err()
                .code
        };
        assert_eq!(
            code(r#"{"workspace_id":"w","workflow_id":"a","logData":1}"#),
            "missing_field"
        );
        assert_eq!(
            code(r#"{"service":"etl","workspace_id":"w","workflow_id":"a"}"#),
            "missing_field"
        );
        assert_eq!(
            code(
                r#"{"service":"etl","workspace_id":"w","workflow_id":"a","function_id":"b","logData":1}"#
            ),
            "conflicting_ids"
        );
        assert_eq!(
            code(r#"{"service":["etl"],"workspace_id":"w","workflow_id":"a","logData":1}"#),
            "invalid_item"
        );
        assert_eq!(
            code(&format!(
                r#"{{"service":"etl","workspace_id":"w","workflow_id":"a","logData":"{}"}}"#,
                "x".repeat(200)
            )),
            "log_too_large"
        );
        assert_eq!(code("[1]"), "invalid_item");
        let function = parse(
            r#"{"service":"function","workspace_id":"w","function_id":"f:1","logData":1}"#,
            BodyFormat::Json,
        )
        .unwrap();
        assert!(function[0]
            .as_ref()
            .unwrap_err()
            .message
            .starts_with("function_id contains ':'"));
        assert_eq!(
            parse("{", BodyFormat::Json).unwrap_err().code(),
            "invalid_json"
        );
        assert_eq!(
            parse("\"x\"", BodyFormat::Json).unwrap_err(),
            BodyError::NotAnObjectOrArray
        );
        assert_eq!(parse("  ", BodyFormat::Json).unwrap_err(), BodyError::Empty);
        assert_eq!(parse("[]", BodyFormat::Json).unwrap_err(), BodyError::Empty);
        assert_eq!(
            parse("[{},{},{},{}]", BodyFormat::Json).unwrap_err(),
            BodyError::TooManyItems { found: 4, max: 3 }
        );
    }

    #[test]
    fn ndjson_lines_are_items() {
        let body = "{\"service\":\"etl\",\"workspace_id\":\"w\",\"workflow_id\":\"a\",\"logData\":{\"m\":\"x\"}}\r\n\nnot json\n";
        let items = parse(body, BodyFormat::NdJson).unwrap();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1].as_ref().unwrap_err().code, "invalid_json");
    }

    #[test]
    fn pretty_printed_log_data_becomes_one_line() {
        let body = "{\"service\":\"etl\",\"workspace_id\":\"w\",\"workflow_id\":\"a\",\"logData\":{\n\"m\": \"a\\nb\"\r\n}}";
        let items = parse(body, BodyFormat::Json).unwrap();
        let data = &items[0].as_ref().unwrap().log_data;
        assert!(!data.contains(['\n', '\r']));
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["m"], "a\nb");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..400), nd: bool) {
            let format = if nd { BodyFormat::NdJson } else { BodyFormat::Json };
            let _ = parse_body(&body, format, LIMITS);
        }

        #[test]
        fn accepted_logs_are_single_line_json(message in "\\PC{0,40}", pretty: bool) {
            let data = serde_json::json!({"message": message, "n": [1, 2]});
            let data = if pretty { serde_json::to_string_pretty(&data).unwrap() } else { data.to_string() };
            let body = format!(r#"{{"service":"s","workspace_id":"w","resource_id":"r","logData":{data}}}"#);
            let items = parse_body(body.as_bytes(), BodyFormat::Json, ParseLimits { max_items: 1, max_log_bytes: 10_000 }).unwrap();
            let log = items[0].as_ref().unwrap();
            prop_assert!(!log.log_data.contains(['\n', '\r']));
            let back: serde_json::Value = serde_json::from_str(&log.log_data).unwrap();
            prop_assert_eq!(&back["message"], &serde_json::Value::String(message));
        }
    }
}
