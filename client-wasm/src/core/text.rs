//! Messages built without `core::fmt`.
//!
//! `format!`, `to_string` and `write!` link the formatting machinery
//! (`core::fmt::write`, padding, one digit routine per integer width) into
//! the wasm module for what are only concatenations of words and whole
//! numbers. [`text!`](crate::text) concatenates [`Part`]s instead: strings,
//! unsigned integers (through the protocol's [`Digits`]) and the error
//! types whose messages the client shows.
//!
//! The protocol's error types keep their `Display` (thiserror) for the
//! gateway; [`Part`] writes the same words for the client, and the tests
//! hold the two to the same text.

use logs_sse_protocol::digits::Digits;
use logs_sse_protocol::{Channel, ChannelError, Cursor, CursorError};

/// Something that appends its text to a message.
pub trait Part {
    fn push_to(&self, out: &mut String);
}

/// Concatenates [`Part`]s into a `String`: `text!("took ", ms, " ms")`.
#[macro_export]
macro_rules! text {
    ($($part:expr),+ $(,)?) => {{
        let mut out = String::new();
        $( $crate::core::text::Part::push_to(&$part, &mut out); )+
        out
    }};
}

impl Part for str {
    fn push_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Part for String {
    fn push_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Part for char {
    fn push_to(&self, out: &mut String) {
        out.push(*self);
    }
}

impl<T: Part + ?Sized> Part for &T {
    fn push_to(&self, out: &mut String) {
        (**self).push_to(out);
    }
}

impl<T: Part + ?Sized> Part for std::borrow::Cow<'_, T>
where
    T: ToOwned,
{
    fn push_to(&self, out: &mut String) {
        self.as_ref().push_to(out);
    }
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Part for $t {
            fn push_to(&self, out: &mut String) {
                out.push_str(Digits::decimal(*self as u64).as_str());
            }
        }
    )*};
}
unsigned!(u16, u32, u64, usize);

impl Part for Channel {
    fn push_to(&self, out: &mut String) {
        out.push_str(self.as_str());
    }
}

impl Part for Cursor {
    fn push_to(&self, out: &mut String) {
        Cursor::push_to(self, out);
    }
}

/// The words of the protocol's `Display` (see the tests).
impl Part for ChannelError {
    fn push_to(&self, out: &mut String) {
        use logs_sse_protocol::channel::{MAX_CHANNEL_LEN, MAX_SEGMENT_LEN};
        match self {
            ChannelError::MissingPrefix => out.push_str("channel must start with \"logs:\""),
            ChannelError::SegmentCount { found } => push(out, &[
                &"channel must be logs:{service}:{workspace_id} or logs:{service}:{workspace_id}:{resource_id}, found ",
                found,
                &" segment(s) after \"logs\"",
            ]),
            ChannelError::EmptySegment { kind } => {
                push(out, &[&kind.field_name(), &" is empty"]);
            }
            ChannelError::SegmentTooLong { kind, len } => push(out, &[
                &kind.field_name(),
                &" is ",
                len,
                &" bytes long; the limit is ",
                &MAX_SEGMENT_LEN,
            ]),
            ChannelError::InvalidCharacter {
                kind,
                found,
                position,
            } => {
                push(out, &[&kind.field_name(), &" contains '"]);
                out.extend(found.escape_default());
                push(out, &[
                    &"' at byte ",
                    position,
                    &"; only A-Z, a-z, 0-9, '_', '.' and '-' are allowed",
                ]);
            }
            ChannelError::TooLong => {
                push(out, &[&"channel name is longer than ", &MAX_CHANNEL_LEN, &" bytes"]);
            }
        }
    }
}

/// The words of the protocol's `Display` (see the tests).
impl Part for CursorError {
    fn push_to(&self, out: &mut String) {
        use logs_sse_protocol::cursor::MAX_CURSOR_LEN;
        match self {
            CursorError::Malformed => {
                out.push_str("cursor must look like \"{epoch-hex}-{seq}\" or be \"earliest\"");
            }
            CursorError::TooLong => {
                push(out, &[&"cursor is longer than ", &MAX_CURSOR_LEN, &" bytes"]);
            }
            CursorError::LastMalformed => {
                push(out, &[&"last:{N} needs N as a decimal integer from 1 to ", &u32::MAX]);
            }
            CursorError::LastZero => out.push_str(
                "last:0 asks for no logs: N must be at least 1 (omit the since entry to start live)",
            ),
            CursorError::LastTooLarge => push(out, &[&"last:{N} is larger than ", &u32::MAX]),
        }
    }
}

/// Appends `parts` (what [`text!`](crate::text) does, into an existing string).
pub fn push(out: &mut String, parts: &[&dyn Part]) {
    for part in parts {
        part.push_to(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logs_sse_protocol::channel::SegmentKind;

    fn part(p: &dyn Part) -> String {
        let mut out = String::new();
        p.push_to(&mut out);
        out
    }

    #[test]
    fn concatenates_words_and_numbers() {
        let ms = 2500u64;
        assert_eq!(text!("no event for ", ms, " ms"), "no event for 2500 ms");
        assert_eq!(
            text!(String::from("a"), 'b', 0u16, usize::MAX),
            format!("ab0{}", usize::MAX)
        );
    }

    #[test]
    fn protocol_errors_read_as_their_display() {
        let kinds = [
            SegmentKind::Service,
            SegmentKind::Workspace,
            SegmentKind::Resource,
        ];
        let mut channel = vec![
            ChannelError::MissingPrefix,
            ChannelError::SegmentCount { found: 7 },
            ChannelError::TooLong,
        ];
        for kind in kinds {
            channel.push(ChannelError::EmptySegment { kind });
            channel.push(ChannelError::SegmentTooLong { kind, len: 65 });
            for found in ['<', '\n', '\'', 'é', '\u{1F600}'] {
                channel.push(ChannelError::InvalidCharacter {
                    kind,
                    found,
                    position: 3,
                });
            }
        }
        for e in channel {
            assert_eq!(part(&e), e.to_string());
        }
        for e in [
            CursorError::Malformed,
            CursorError::TooLong,
            CursorError::LastMalformed,
            CursorError::LastZero,
            CursorError::LastTooLarge,
        ] {
            assert_eq!(part(&e), e.to_string());
        }
        let cursor: Cursor = "9f3a0c1d2e4b5a6f-1042"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(part(&cursor), cursor.to_string());
    }
}
