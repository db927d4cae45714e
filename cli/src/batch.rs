//! Turns input lines into publish items and items into NDJSON bodies.
//! Pure; `publish` owns the reading, timing and sending.

use serde_json::value::RawValue;
use serde_json::{json, Value};

/// How stdin lines become `logData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// A line that is a JSON object is the log as is; any other line is a
    /// `{"level","message"}` log.
    Auto,
    /// Every line is a message.
    Lines,
    /// Every line is a JSON object; others are reported and skipped.
    Ndjson,
}

/// Plain lines are cut to this many bytes (the gateway's default
/// `--max-log-bytes` is 64 KiB) so a runaway line does not lose the log.
pub const MAX_LINE_BYTES: usize = 32 * 1024;

/// Where the logs go: `(service, workspace, resource)`.
#[derive(Debug, Clone)]
pub struct Target {
    pub service: String,
    pub workspace: String,
    pub resource: String,
    pub level: String,
}

impl Target {
    /// One NDJSON line of the publish body, or why the input line is not a
    /// log. `None` for blank lines.
    pub fn item(&self, line: &str, format: InputFormat) -> Option<Result<String, String>> {
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            return None;
        }
        let object = || -> Option<Box<RawValue>> {
            let trimmed = line.trim();
            if !trimmed.starts_with('{') {
                return None;
            }
            let raw: Box<RawValue> = serde_json::from_str(trimmed).ok()?;
            Some(raw)
        };
        let data: Box<RawValue> = match format {
            InputFormat::Ndjson => match object() {
                Some(raw) => raw,
                None => return Some(Err("not a JSON object".to_owned())),
            },
            InputFormat::Auto => match object() {
                Some(raw) => raw,
                None => self.message(line),
            },
            InputFormat::Lines => self.message(line),
        };
        let item = json!({
            "service": self.service,
            "workspace_id": self.workspace,
            "resource_id": self.resource,
            "logData": data,
        });
        Some(Ok(item.to_string()))
    }

    fn message(&self, line: &str) -> Box<RawValue> {
        let mut end = line.len().min(MAX_LINE_BYTES);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        let text = if end < line.len() {
            format!("{}…", &line[..end])
        } else {
            line.to_owned()
        };
        let value: Value = json!({ "level": self.level, "message": text });
        // A serde_json Value always renders to valid JSON.
        RawValue::from_string(value.to_string()).unwrap_or_else(|_| empty_object())
    }
}

fn empty_object() -> Box<RawValue> {
    serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("{{}} is JSON"))
}

/// Items collected for one request, bounded by count and bytes.
#[derive(Debug, Default)]
pub struct Batch {
    body: String,
    count: usize,
}

impl Batch {
    pub fn push(&mut self, item: &str) {
        self.body.push_str(item);
        self.body.push('\n');
        self.count += 1;
    }

    /// Whether `item` still fits under both bounds (an empty batch takes
    /// anything; the gateway judges an oversized log on its own).
    pub fn fits(&self, item: &str, max_count: usize, max_bytes: usize) -> bool {
        self.count == 0 || (self.count < max_count && self.body.len() + item.len() < max_bytes)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn take(&mut self) -> (String, usize) {
        let count = std::mem::take(&mut self.count);
        (std::mem::take(&mut self.body), count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            service: "etl".into(),
            workspace: "ws1".into(),
            resource: "job7".into(),
            level: "info".into(),
        }
    }

    #[test]
    fn lines_become_messages_and_objects_pass_through() {
        let t = target();
        let plain = t
            .item("step 1 done\r\n", InputFormat::Auto)
            .unwrap()
            .unwrap();
        assert_eq!(
            plain,
            r#"{"logData":{"level":"info","message":"step 1 done"},"resource_id":"job7","service":"etl","workspace_id":"ws1"}"#
        );
        let object = t.item(r#" {"level":"error","message":"x"}"#, InputFormat::Auto);
        assert!(object
            .unwrap()
            .unwrap()
            .contains(r#""logData":{"level":"error","message":"x"}"#));
        let forced = t.item(r#"{"a":1}"#, InputFormat::Lines).unwrap().unwrap();
        assert!(forced.contains(r#""message":"{\"a\":1}""#));
        assert_eq!(t.item("   ", InputFormat::Auto), None);
        assert!(t.item("nope", InputFormat::Ndjson).unwrap().is_err());
        assert!(t
            .item("{broken", InputFormat::Auto)
            .unwrap()
            .unwrap()
            .contains("{broken"));
    }

    #[test]
    fn long_lines_are_cut_at_a_character_boundary() {
        let line = "é".repeat(MAX_LINE_BYTES);
        let item = target().item(&line, InputFormat::Lines).unwrap().unwrap();
        assert!(item.len() < MAX_LINE_BYTES + 200);
        assert!(item.contains('…'));
    }

    #[test]
    fn batches_respect_count_and_bytes() {
        let mut b = Batch::default();
        assert!(b.fits(&"x".repeat(100), 2, 10));
        b.push("aaaa");
        assert!(b.fits("bbbb", 2, 100));
        assert!(!b.fits("bbbb", 2, 8));
        b.push("bbbb");
        assert!(!b.fits("c", 2, 100));
        assert_eq!(b.take(), ("aaaa\nbbbb\n".to_owned(), 2));
        assert!(b.is_empty());
    }
}
