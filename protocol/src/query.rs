//! The query of `GET /api/logs/stream`: which channels, and where to resume.
//!
//! ```text
//! channels=logs:etl:ws1:wf9,logs:faas:ws1&since=logs:etl:ws1:wf9@9f3a-1042,logs:faas:ws1@last:50
//! ```
//!
//! `channels` is a comma-separated list. `since` is an optional
//! comma-separated list of `{channel}@{start}` pairs (a fresh `EventSource`
//! cannot send a `Last-Event-ID` per channel, so cursors travel in the URL),
//! where `{start}` is a cursor (resume after it), `earliest` (all the history
//! holds) or `last:{N}` (the latest N logs the history holds); see
//! [`ResumeFrom`]. A channel without a `since` entry starts live. Every
//! character used is legal in a URL query, so the string needs no
//! percent-encoding.

use std::collections::HashMap;

use crate::channel::{Channel, ChannelError};
use crate::cursor::{CursorError, ResumeFrom};

/// A parsed stream request: each channel once, in the order first listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamQuery {
    pub channels: Vec<(Channel, ResumeFrom)>,
}

/// Why a stream query was rejected. The gateway answers these with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error(
        "no channels given: use ?channels=logs:{{service}}:{{workspace_id}}[:{{resource_id}}],..."
    )]
    NoChannels,
    #[error("{found} channels requested; at most {max} are allowed per stream")]
    TooManyChannels { found: usize, max: usize },
    #[error("channel #{index} ({text:?}): {error}")]
    BadChannel {
        index: usize,
        text: String,
        error: ChannelError,
    },
    #[error("since entry #{index} ({text:?}) must be {{channel}}@{{cursor}}, {{channel}}@earliest or {{channel}}@last:{{N}}")]
    BadSinceEntry { index: usize, text: String },
    #[error("since entry #{index} ({text:?}): {error}")]
    BadCursor {
        index: usize,
        text: String,
        error: CursorError,
    },
    #[error("since entry #{index} names {channel}, which is not in channels")]
    SinceForUnlistedChannel { index: usize, channel: String },
}

/// Longest piece of offending input quoted back in an error.
const QUOTE_LIMIT: usize = 80;

fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

impl StreamQuery {
    /// Parses the raw (already percent-decoded) `channels` and `since` values.
    pub fn parse(
        channels: &str,
        since: Option<&str>,
        max_channels: usize,
    ) -> Result<Self, QueryError> {
        let items: Vec<&str> = channels.split(',').filter(|s| !s.is_empty()).collect();
        if items.is_empty() {
            return Err(QueryError::NoChannels);
        }
        // Bound the work before parsing anything: a huge list is rejected whole.
        if items.len() > max_channels {
            return Err(QueryError::TooManyChannels {
                found: items.len(),
                max: max_channels,
            });
        }
        let mut parsed: Vec<(Channel, ResumeFrom)> = Vec::with_capacity(items.len());
        let mut index_of: HashMap<String, usize> = HashMap::with_capacity(items.len());
        for (index, text) in items.into_iter().enumerate() {
            let channel: Channel = text.parse().map_err(|error| QueryError::BadChannel {
                index,
                text: quote(text),
                error,
            })?;
            if !index_of.contains_key(channel.as_str()) {
                index_of.insert(channel.as_str().to_owned(), parsed.len());
                parsed.push((channel, ResumeFrom::Live));
            }
        }
        let since_items = since
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty());
        for (index, text) in since_items.enumerate() {
            let (name, cursor) =
                text.rsplit_once('@')
                    .ok_or_else(|| QueryError::BadSinceEntry {
                        index,
                        text: quote(text),
                    })?;
            let resume: ResumeFrom = cursor.parse().map_err(|error| QueryError::BadCursor {
                index,
                text: quote(text),
                error,
            })?;
            let slot = index_of
                .get(name)
                .ok_or_else(|| QueryError::SinceForUnlistedChannel {
                    index,
                    channel: quote(name),
                })?;
            parsed[*slot].1 = resume;
        }
        Ok(StreamQuery { channels: parsed })
    }

    /// Renders the query string (without a leading `?`).
    pub fn to_query_string(&self) -> String {
        let mut out = String::from("channels=");
        for (i, (channel, _)) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(channel.as_str());
        }
        let mut first = true;
        for (channel, resume) in &self.channels {
            let Some(cursor) = resume.since_text() else {
                continue;
            };
            out.push_str(if first { "&since=" } else { "," });
            first = false;
            out.push_str(channel.as_str());
            out.push('@');
            out.push_str(&cursor);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::{Cursor, Epoch};
    use proptest::prelude::*;

    fn ch(s: &str) -> Channel {
        s.parse().unwrap()
    }

    #[test]
    fn parses_channels_and_cursors() {
        let q = StreamQuery::parse(
            "logs:etl:ws1:wf9,logs:faas:ws1,logs:etl:ws1:wf9",
            Some("logs:etl:ws1:wf9@ab-12,logs:faas:ws1@earliest"),
            10,
        )
        .unwrap();
        assert_eq!(
            q.channels,
            vec![
                (
                    ch("logs:etl:ws1:wf9"),
                    ResumeFrom::After(Cursor::new(Epoch(0xab), 12))
                ),
                (ch("logs:faas:ws1"), ResumeFrom::Earliest),
            ]
        );
        assert_eq!(
            q.to_query_string(),
            "channels=logs:etl:ws1:wf9,logs:faas:ws1&since=logs:etl:ws1:wf9@ab-12,logs:faas:ws1@earliest"
        );
    }

    #[test]
    fn names_the_offending_entry() {
        assert_eq!(StreamQuery::parse("", None, 5), Err(QueryError::NoChannels));
        assert_eq!(
            StreamQuery::parse("logs:a:b,logs:a:c,logs:a:d", None, 2),
            Err(QueryError::TooManyChannels { found: 3, max: 2 })
        );
        let err = StreamQuery::parse("logs:a:b,logs:a:<script>", None, 5).unwrap_err();
        assert!(
            matches!(err, QueryError::BadChannel { index: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("channel #1 (\"logs:a:<script>\")"));
        assert!(matches!(
            StreamQuery::parse("logs:a:b", Some("logs:a:b"), 5),
            Err(QueryError::BadSinceEntry { index: 0, .. })
        ));
        assert!(matches!(
            StreamQuery::parse("logs:a:b", Some("logs:a:b@zz"), 5),
            Err(QueryError::BadCursor { index: 0, .. })
        ));
        for bad in ["last:0", "last:-3", "last:ten", "last:4294967296"] {
            let err =
                StreamQuery::parse("logs:a:b", Some(&format!("logs:a:b@{bad}")), 5).unwrap_err();
            assert!(
                matches!(&err, QueryError::BadCursor { index: 0, error, .. } if error.is_last()),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains(bad), "{err}");
        }
        assert!(matches!(
            StreamQuery::parse("logs:a:b", Some("logs:a:c@1-1"), 5),
            Err(QueryError::SinceForUnlistedChannel { index: 0, .. })
        ));
        let long = "x".repeat(10_000);
        let err = StreamQuery::parse(&long, None, 5).unwrap_err().to_string();
        assert!(
            err.len() < 400,
            "error quotes too much input: {} bytes",
            err.len()
        );
    }

    #[test]
    fn last_n_sits_beside_cursors_on_sibling_channels() {
        let q = StreamQuery::parse(
            "logs:etl:ws1:wf9,logs:etl:ws1",
            Some("logs:etl:ws1:wf9@last:200,logs:etl:ws1@ab-12"),
            10,
        )
        .unwrap();
        assert_eq!(
            q.channels,
            vec![
                (
                    ch("logs:etl:ws1:wf9"),
                    ResumeFrom::Last(std::num::NonZeroU32::new(200).unwrap())
                ),
                (
                    ch("logs:etl:ws1"),
                    ResumeFrom::After(Cursor::new(Epoch(0xab), 12))
                ),
            ]
        );
        assert_eq!(
            q.to_query_string(),
            "channels=logs:etl:ws1:wf9,logs:etl:ws1&since=logs:etl:ws1:wf9@last:200,logs:etl:ws1@ab-12"
        );
    }

    fn resume_from() -> impl Strategy<Value = ResumeFrom> {
        prop_oneof![
            Just(ResumeFrom::Live),
            Just(ResumeFrom::Earliest),
            any::<u64>().prop_map(|s| ResumeFrom::After(Cursor::new(Epoch(7), s))),
            (1u32..).prop_map(|n| ResumeFrom::Last(std::num::NonZeroU32::new(n).unwrap())),
        ]
    }

    proptest! {
        #[test]
        fn rendered_queries_parse_back(
            names in proptest::collection::vec("[a-z]{1,8}", 1..6),
            starts in proptest::collection::vec(resume_from(), 6),
            service_level in any::<bool>(),
        ) {
            let mut channels: Vec<(Channel, ResumeFrom)> = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let channel = Channel::new("svc", "ws", Some(&format!("{name}{i}"))).unwrap();
                channels.push((channel, starts[i]));
            }
            if service_level {
                channels.push((Channel::new("svc", "ws", None).unwrap(), starts[5]));
            }
            let query = StreamQuery { channels };
            let text = query.to_query_string();
            let (c, s) = text.strip_prefix("channels=").unwrap().split_once("&since=").map_or_else(
                || (text.strip_prefix("channels=").unwrap(), None),
                |(c, s)| (c, Some(s)),
            );
            prop_assert_eq!(StreamQuery::parse(c, s, 10).unwrap(), query);
        }
    }
}
