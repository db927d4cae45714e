//! User-facing texts whose standard formatting is too costly in the wasm
//! build.
//!
//! The protocol's `ChannelError` quotes the offending character with
//! `{:?}`; `char`'s `Debug` links about 3 KB of gzipped Unicode tables
//! into the client. [`channel_error`] writes the protocol's messages word
//! for word, except that the character is quoted with `escape_default`
//! (the same for printable ASCII; `\u{..}` beyond). The tests hold the two
//! to each other, so a changed protocol message is noticed.

use std::fmt::{self, Write};

use logs_sse_protocol::channel::{MAX_CHANNEL_LEN, MAX_SEGMENT_LEN};
use logs_sse_protocol::ChannelError;

/// Writes the message of `e`; see the module docs.
pub fn channel_error(out: &mut impl Write, e: &ChannelError) -> fmt::Result {
    match e {
        ChannelError::MissingPrefix => out.write_str("channel must start with \"logs:\""),
        ChannelError::SegmentCount { found } => write!(
            out,
            "channel must be logs:{{service}}:{{workspace_id}} or logs:{{service}}:{{workspace_id}}:{{resource_id}}, found {found} segment(s) after \"logs\""
        ),
        ChannelError::EmptySegment { kind } => write!(out, "{kind} is empty"),
        ChannelError::SegmentTooLong { kind, len } => write!(
            out,
            "{kind} is {len} bytes long; the limit is {MAX_SEGMENT_LEN}"
        ),
        ChannelError::InvalidCharacter {
            kind,
            found,
            position,
        } => write!(
            out,
            "{kind} contains '{}' at byte {position}; only A-Z, a-z, 0-9, '_', '.' and '-' are allowed",
            found.escape_default()
        ),
        ChannelError::TooLong => write!(
            out,
            "channel name is longer than {MAX_CHANNEL_LEN} bytes"
        ),
    }
}

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests {
    use super::*;
    use logs_sse_protocol::Channel;

    fn both(input: &str) -> (String, String) {
        let e = input.parse::<Channel>().unwrap_err();
        let mut mine = String::new();
        channel_error(&mut mine, &e).unwrap();
        (mine, e.to_string())
    }

    #[test]
    fn matches_the_protocol_messages() {
        let long_segment = format!("logs:etl:{}", "w".repeat(65));
        let too_long = "x".repeat(1000);
        let mut inputs = vec![
            "etl:ws:wf",
            "logs:etl",
            "logs:a:b:c:d",
            "logs::ws",
            "logs:etl:",
            long_segment.as_str(),
            too_long.as_str(),
        ];
        let printable: Vec<String> = (0x20u8..0x7f)
            .map(char::from)
            .filter(|c| !(c.is_ascii_alphanumeric() || "_.-:\"".contains(*c)))
            .map(|c| format!("logs:etl:ws{c}1"))
            .collect();
        inputs.extend(printable.iter().map(String::as_str));
        for input in inputs {
            let (mine, protocol) = both(input);
            assert_eq!(mine, protocol, "{input:?}");
        }
        // Beyond printable ASCII only the quoting differs.
        let (mine, _) = both("logs:etl:ws\né");
        assert_eq!(
            mine,
            "workspace_id contains '\\n' at byte 2; only A-Z, a-z, 0-9, '_', '.' and '-' are allowed"
        );
        let (mine, _) = both("logs:etl:wsé");
        assert!(mine.contains("'\\u{e9}'"), "{mine}");
    }
}
