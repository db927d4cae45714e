//! The body of a channel change: `{"add": [{"channel", "since"}], "remove":
//! [...]}`, parsed strictly (unknown fields refused) and bounded before any
//! channel is parsed.

use logs_sse_protocol::{Channel, ResumeFrom};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::AppError;

/// A change as sent (documentation and parsing).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlBody {
    /// Channels to add, each with where to start (absent: live).
    #[serde(default)]
    pub add: Option<Vec<AddItem>>,
    /// Channels to remove.
    #[serde(default)]
    #[schema(example = json!(["logs:faas:ws123"]))]
    pub remove: Option<Vec<String>>,
}

/// One channel to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    #[schema(example = "logs:etl:ws123:wf456")]
    pub channel: String,
    /// A cursor (resume after it), `earliest` or `last:{N}`; absent: live.
    #[serde(default)]
    #[schema(example = "last:200")]
    pub since: Option<String>,
}

/// A parsed change: each channel once, the first mention of a channel in
/// `add` winning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRequest {
    pub add: Vec<(Channel, ResumeFrom)>,
    pub remove: Vec<Channel>,
}

fn invalid_body(message: impl Into<String>) -> AppError {
    AppError::bad_request("invalid_body", message)
}

fn too_many(list: &str, found: usize, max: usize) -> AppError {
    AppError::bad_request(
        "too_many_channels",
        format!("`{list}` lists {found} channels; at most {max} are allowed per stream"),
    )
}

fn quote(text: &str) -> String {
    text.chars().take(80).collect()
}

fn channel(text: &str, list: &str, index: usize) -> Result<Channel, AppError> {
    text.parse().map_err(|error| {
        AppError::bad_request(
            "invalid_channel",
            format!("{list}[{index}] ({:?}): {error}", quote(text)),
        )
    })
}

impl ChangeRequest {
    pub fn parse(bytes: &[u8], max_channels: usize) -> Result<Self, AppError> {
        let body: ControlBody = serde_json::from_slice(bytes)
            .map_err(|e| invalid_body(format!("the body must be {{\"add\": [{{\"channel\", \"since\"}}], \"remove\": [channel]}}: {e}")))?;
        let add = body.add.unwrap_or_default();
        let remove = body.remove.unwrap_or_default();
        if add.is_empty() && remove.is_empty() {
            return Err(invalid_body(
                "nothing to change: give `add`, `remove` or both",
            ));
        }
        // Bound the work before parsing any channel.
        if add.len() > max_channels {
            return Err(too_many("add", add.len(), max_channels));
        }
        if remove.len() > max_channels {
            return Err(too_many("remove", remove.len(), max_channels));
        }
        let mut parsed = ChangeRequest {
            add: Vec::with_capacity(add.len()),
            remove: Vec::with_capacity(remove.len()),
        };
        for (index, item) in add.iter().enumerate() {
            let channel = channel(&item.channel, "add", index)?;
            let since = match &item.since {
                None => ResumeFrom::Live,
                Some(text) => text
                    .parse()
                    .map_err(|error: logs_sse_protocol::CursorError| {
                        let code = if error.is_last() {
                            "invalid_since"
                        } else {
                            "invalid_cursor"
                        };
                        AppError::bad_request(
                            code,
                            format!("add[{index}].since ({:?}): {error}", quote(text)),
                        )
                    })?,
            };
            if !parsed.add.iter().any(|(c, _)| *c == channel) {
                parsed.add.push((channel, since));
            }
        }
        for (index, text) in remove.iter().enumerate() {
            let channel = channel(text, "remove", index)?;
            if parsed.add.iter().any(|(c, _)| *c == channel) {
                return Err(invalid_body(format!("{channel} is both added and removed")));
            }
            if !parsed.remove.contains(&channel) {
                parsed.remove.push(channel);
            }
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> &'static str {
        ChangeRequest::parse(body.as_bytes(), 3).unwrap_err().code()
    }

    #[test]
    fn parses_adds_and_removes_once_each() {
        let parsed = ChangeRequest::parse(
            br#"{"add":[{"channel":"logs:etl:ws1:wf1","since":"last:5"},{"channel":"logs:etl:ws1:wf1"},{"channel":"logs:etl:ws1"}],"remove":["logs:faas:ws1","logs:faas:ws1"]}"#,
            3,
        )
        .unwrap();
        assert_eq!(parsed.add.len(), 2);
        assert!(matches!(parsed.add[0].1, ResumeFrom::Last(n) if n.get() == 5));
        assert_eq!(parsed.add[1].1, ResumeFrom::Live);
        assert_eq!(parsed.remove.len(), 1);
    }

    #[test]
    fn refuses_bad_bodies_with_their_codes() {
        assert_eq!(code("{}"), "invalid_body");
        assert_eq!(code(r#"{"add":[],"remove":[]}"#), "invalid_body");
        assert_eq!(code("[1]"), "invalid_body");
        assert_eq!(
            code(r#"{"add":[{"channel":"logs:a:b","x":1}]}"#),
            "invalid_body"
        );
        assert_eq!(
            code(r#"{"remove":["logs:a:b"],"extra":true}"#),
            "invalid_body"
        );
        assert_eq!(
            code(r#"{"add":[{"channel":"logs:a:b"}],"remove":["logs:a:b"]}"#),
            "invalid_body"
        );
        assert_eq!(code(r#"{"remove":["nope"]}"#), "invalid_channel");
        assert_eq!(
            code(r#"{"add":[{"channel":"logs:a:b","since":"last:0"}]}"#),
            "invalid_since"
        );
        assert_eq!(
            code(r#"{"add":[{"channel":"logs:a:b","since":"zz"}]}"#),
            "invalid_cursor"
        );
        assert_eq!(
            code(r#"{"remove":["logs:a:b","logs:a:c","logs:a:d","logs:a:e"]}"#),
            "too_many_channels"
        );
    }
}
