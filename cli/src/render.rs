//! How `tail` prints a log: `--json` gives the event's JSON line as the
//! gateway sent it; otherwise one readable line, with the level coloured
//! on a terminal.

use logs_sse_protocol::LogEvent;
use serde_json::{Map, Value};

/// Fields shown in their own place rather than among the extras.
const SHOWN: [&str; 6] = ["level", "message", "msg", "timestamp", "ts", "time"];

/// `HH:MM:SS.mmm LEVEL channel message {extra fields}`.
pub fn line(log: &LogEvent<'_>, color: bool) -> String {
    let data: Value = serde_json::from_str(log.log_data.get()).unwrap_or(Value::Null);
    let time = clock(log.ts);
    let channel = log.channel.as_str();
    let Value::Object(fields) = data else {
        return format!("{time} {channel} {}", log.log_data.get());
    };
    let level = fields
        .get("level")
        .and_then(Value::as_str)
        .unwrap_or("info")
        .to_ascii_uppercase();
    let message = fields
        .get("message")
        .or_else(|| fields.get("msg"))
        .map(|m| match m {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default();
    let extra: Map<String, Value> = fields
        .into_iter()
        .filter(|(k, _)| !SHOWN.contains(&k.as_str()))
        .collect();
    let level = paint(&format!("{level:<5}"), color);
    let mut out = format!("{time} {level} {channel} {message}");
    if !extra.is_empty() {
        out.push(' ');
        out.push_str(&Value::Object(extra).to_string());
    }
    out
}

fn paint(level: &str, color: bool) -> String {
    if !color {
        return level.to_owned();
    }
    let code = match level.trim_end() {
        "ERROR" | "FATAL" | "CRITICAL" => "31;1",
        "WARN" | "WARNING" => "33",
        "INFO" => "32",
        "DEBUG" | "TRACE" => "2",
        _ => "0",
    };
    format!("\x1b[{code}m{level}\x1b[0m")
}

/// UTC wall-clock time of day of a millisecond timestamp.
fn clock(ms: u64) -> String {
    let day_ms = ms % 86_400_000;
    let (h, m, s, milli) = (
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000,
    );
    format!("{h:02}:{m:02}:{s:02}.{milli:03}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use logs_sse_protocol::{Cursor, Epoch};
    use serde_json::value::RawValue;

    fn event(data: &RawValue) -> LogEvent<'_> {
        LogEvent {
            channel: "logs:etl:ws1:wf1".parse().unwrap(),
            cursor: Cursor::new(Epoch(1), 1),
            ts: 3_723_004,
            log_data: data,
        }
    }

    #[test]
    fn prints_time_level_channel_message_and_extras() {
        let data =
            RawValue::from_string(r#"{"level":"warn","message":"disk 91%","host":"a"}"#.into())
                .unwrap();
        assert_eq!(
            line(&event(&data), false),
            r#"01:02:03.004 WARN  logs:etl:ws1:wf1 disk 91% {"host":"a"}"#
        );
        assert!(line(&event(&data), true).contains("\x1b[33mWARN \x1b[0m"));
        let plain = RawValue::from_string("[1,2]".into()).unwrap();
        assert_eq!(
            line(&event(&plain), false),
            "01:02:03.004 logs:etl:ws1:wf1 [1,2]"
        );
    }
}
