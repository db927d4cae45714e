//! A small, strict JSON reader for the few documents the client reads
//! itself: the payloads of the gateway's SSE events, the gateway's JSON
//! error body and the `sessionStorage` record.
//!
//! Why not serde_json: in the wasm build serde_json cost about 35 KB of
//! code, plus about 18 KB of float formatting pulled in by its error
//! messages, which alone broke the size budget. The client only needs the
//! top-level fields of one object: strings (decoded), unsigned integers,
//! and the raw text of a value (`logData`, stored logs), which is validated
//! but never decoded here: JS `JSON.parse` builds the object the
//! application sees.
//!
//! The grammar is RFC 8259 as serde_json accepts it, and the tests hold the
//! two to the same verdict:
//!
//! - whitespace is space, tab, line feed and carriage return;
//! - numbers are `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`;
//! - strings hold no raw control character (U+0000 to U+001F); escapes are
//!   `\" \\ \/ \b \f \n \r \t \uXXXX`;
//! - a string *decoded* for a caller (keys of the object read, string
//!   fields) must be valid Unicode: an unpaired surrogate escape is an
//!   error, as in serde_json. Raw values may hold them (`JSON.parse`
//!   accepts them), as serde_json's `RawValue` does;
//! - nesting is walked with an explicit stack, not recursion, so a deeply
//!   nested value cannot overflow the call stack.
//!
//! Nothing here panics on input: every index is checked.

use std::borrow::Cow;

use super::text::{self, Part};

/// What is wrong with a document, and where (byte offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    /// Byte offset in the text handed to the function that failed.
    pub at: usize,
}

/// See [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    UnexpectedEnd,
    /// A character that cannot start or continue what was expected.
    Unexpected,
    ControlCharacter,
    InvalidEscape,
    /// A `\uXXXX` escape naming half of a surrogate pair without the other.
    LoneSurrogate,
    InvalidNumber,
    /// Text after the document.
    Trailing,
    ExpectedObject,
    ExpectedArray,
    ExpectedString,
    /// A number that is not a whole number in the target's range.
    ExpectedInteger,
    /// A member named twice (see [`known_fields`]).
    DuplicateField,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::UnexpectedEnd => "unexpected end",
            ErrorKind::Unexpected => "unexpected character",
            ErrorKind::ControlCharacter => "control character in a string",
            ErrorKind::InvalidEscape => "invalid escape",
            ErrorKind::LoneSurrogate => "unpaired surrogate escape",
            ErrorKind::InvalidNumber => "invalid number",
            ErrorKind::Trailing => "trailing characters",
            ErrorKind::ExpectedObject => "expected an object",
            ErrorKind::ExpectedArray => "expected an array",
            ErrorKind::ExpectedString => "expected a string",
            ErrorKind::ExpectedInteger => "expected a whole number in range",
            ErrorKind::DuplicateField => "duplicate field",
        }
    }
}

impl Part for Error {
    fn push_to(&self, out: &mut String) {
        text::push(out, &[&self.kind.describe(), &" at byte ", &self.at]);
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::text!(self))
    }
}

/// One validated JSON value: its exact text (no surrounding whitespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a str,
    /// Byte offset of `raw` in the text it was read from (for errors).
    at: usize,
}

impl<'a> Value<'a> {
    /// The value's text exactly as it appears in the document.
    pub fn raw(self) -> &'a str {
        self.raw
    }

    fn first(self) -> u8 {
        self.raw.as_bytes().first().copied().unwrap_or(0)
    }

    fn error(self, kind: ErrorKind) -> Error {
        Error { kind, at: self.at }
    }

    pub fn is_null(self) -> bool {
        self.raw == "null"
    }

    /// The decoded string; borrowed when it holds no escape.
    pub fn string(self) -> Result<Cow<'a, str>, Error> {
        if self.first() != b'"' {
            return Err(self.error(ErrorKind::ExpectedString));
        }
        decode_string(self.raw, self.at)
    }

    /// A non-negative whole number without fraction or exponent (serde's
    /// rule for unsigned integers: `1.0` and `1e3` are floats).
    pub fn u64(self) -> Result<u64, Error> {
        let bytes = self.raw.as_bytes();
        if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(self.error(ErrorKind::ExpectedInteger));
        }
        let mut n: u64 = 0;
        for &b in bytes {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .ok_or(self.error(ErrorKind::ExpectedInteger))?;
        }
        Ok(n)
    }

    pub fn u32(self) -> Result<u32, Error> {
        u32::try_from(self.u64()?).map_err(|_| self.error(ErrorKind::ExpectedInteger))
    }
}

/// Reads a document that must be one object, calling `field` with each
/// member's decoded key and value, in document order (duplicates included).
/// The callback may stop the read with its own error.
pub fn object<'a, E: From<Error>>(
    text: &'a str,
    mut field: impl FnMut(Cow<'a, str>, Value<'a>) -> Result<(), E>,
) -> Result<(), E> {
    let mut r = Reader::new(text);
    r.ws();
    if r.peek() != Some(b'{') {
        return Err(r.error(ErrorKind::ExpectedObject).into());
    }
    r.pos += 1;
    r.ws();
    if r.peek() == Some(b'}') {
        r.pos += 1;
    } else {
        loop {
            let key_at = r.pos;
            r.string()?;
            let key = decode_string(r.since(key_at), key_at)?;
            r.ws();
            r.expect(b':')?;
            r.ws();
            let value = r.value()?;
            field(key, value)?;
            r.ws();
            match r.next() {
                Some(b',') => r.ws(),
                Some(b'}') => break,
                Some(_) => return Err(r.error_before(ErrorKind::Unexpected).into()),
                None => return Err(r.error(ErrorKind::UnexpectedEnd).into()),
            }
        }
    }
    r.end()?;
    Ok(())
}

/// Reads the members of an object named in `names` into the matching
/// `slots` (`None` when absent); other members are validated and skipped.
/// A name present twice is an error, as for serde's struct fields.
pub fn known_fields<'a>(
    text: &'a str,
    names: &[&str],
    slots: &mut [Option<Value<'a>>],
) -> Result<(), Error> {
    object(text, |key, value| {
        if let Some(slot) = names
            .iter()
            .position(|n| *n == key)
            .and_then(|i| slots.get_mut(i))
        {
            if slot.is_some() {
                return Err(Error {
                    kind: ErrorKind::DuplicateField,
                    at: value.at,
                });
            }
            *slot = Some(value);
        }
        Ok(())
    })
}

/// Reads a document that must be one array, calling `item` with each
/// element in order.
pub fn array<'a, E: From<Error>>(
    text: &'a str,
    mut item: impl FnMut(Value<'a>) -> Result<(), E>,
) -> Result<(), E> {
    let mut r = Reader::new(text);
    r.ws();
    if r.peek() != Some(b'[') {
        return Err(r.error(ErrorKind::ExpectedArray).into());
    }
    r.pos += 1;
    r.ws();
    if r.peek() == Some(b']') {
        r.pos += 1;
    } else {
        loop {
            r.ws();
            let value = r.value()?;
            item(value)?;
            r.ws();
            match r.next() {
                Some(b',') => {}
                Some(b']') => break,
                Some(_) => return Err(r.error_before(ErrorKind::Unexpected).into()),
                None => return Err(r.error(ErrorKind::UnexpectedEnd).into()),
            }
        }
    }
    r.end()?;
    Ok(())
}

/// Validates a whole document of any type.
pub fn validate(text: &str) -> Result<Value<'_>, Error> {
    let mut r = Reader::new(text);
    r.ws();
    let value = r.value()?;
    r.end()?;
    Ok(value)
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader { text, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn error(&self, kind: ErrorKind) -> Error {
        Error { kind, at: self.pos }
    }

    /// An error about the byte just consumed.
    fn error_before(&self, kind: ErrorKind) -> Error {
        Error {
            kind,
            at: self.pos.saturating_sub(1),
        }
    }

    /// The text from `start` to the current position. Both are at ASCII
    /// bytes (or the end), so the slice cannot fail; `get` keeps it
    /// panic-free regardless.
    fn since(&self, start: usize) -> &'a str {
        self.text.get(start..self.pos).unwrap_or_default()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), Error> {
        match self.next() {
            Some(b) if b == byte => Ok(()),
            Some(_) => Err(self.error_before(ErrorKind::Unexpected)),
            None => Err(self.error(ErrorKind::UnexpectedEnd)),
        }
    }

    fn end(&mut self) -> Result<(), Error> {
        self.ws();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error(ErrorKind::Trailing)),
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), Error> {
        for &b in word.as_bytes() {
            self.expect(b)?;
        }
        Ok(())
    }

    fn digits(&mut self) -> Result<(), Error> {
        match self.next() {
            Some(b'0'..=b'9') => {}
            Some(_) => return Err(self.error_before(ErrorKind::InvalidNumber)),
            None => return Err(self.error(ErrorKind::UnexpectedEnd)),
        }
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        Ok(())
    }

    fn number(&mut self) -> Result<(), Error> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            // One leading zero only; a digit after it ends the number and
            // is then rejected by whoever reads on.
            Some(b'0') => self.pos += 1,
            _ => self.digits()?,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.digits()?;
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<(), Error> {
        for _ in 0..4 {
            match self.next() {
                Some(b) if b.is_ascii_hexdigit() => {}
                Some(_) => return Err(self.error_before(ErrorKind::InvalidEscape)),
                None => return Err(self.error(ErrorKind::UnexpectedEnd)),
            }
        }
        Ok(())
    }

    /// Validates a string (the reader is at its opening quote).
    fn string(&mut self) -> Result<(), Error> {
        self.expect(b'"')?;
        loop {
            match self.next() {
                None => return Err(self.error(ErrorKind::UnexpectedEnd)),
                Some(b'"') => return Ok(()),
                Some(b'\\') => match self.next() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                    Some(b'u') => self.hex4()?,
                    Some(_) => return Err(self.error_before(ErrorKind::InvalidEscape)),
                    None => return Err(self.error(ErrorKind::UnexpectedEnd)),
                },
                Some(0..=0x1f) => return Err(self.error_before(ErrorKind::ControlCharacter)),
                Some(_) => {}
            }
        }
    }

    /// Validates one value of any type and returns its span.
    fn value(&mut self) -> Result<Value<'a>, Error> {
        let start = self.pos;
        // Open containers, innermost last: true for an object.
        let mut open: Vec<bool> = Vec::new();
        'value: loop {
            self.ws();
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        open.push(true);
                        self.member_key()?;
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        open.push(false);
                        continue 'value;
                    }
                }
                Some(b'"') => self.string()?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal("true")?,
                Some(b'f') => self.literal("false")?,
                Some(b'n') => self.literal("null")?,
                Some(_) => return Err(self.error(ErrorKind::Unexpected)),
                None => return Err(self.error(ErrorKind::UnexpectedEnd)),
            }
            // A value is complete: close containers or go to the next one.
            while let Some(&is_object) = open.last() {
                self.ws();
                match (self.next(), is_object) {
                    (Some(b','), true) => {
                        self.ws();
                        self.member_key()?;
                        continue 'value;
                    }
                    (Some(b','), false) => continue 'value,
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        open.pop();
                    }
                    (Some(_), _) => return Err(self.error_before(ErrorKind::Unexpected)),
                    (None, _) => return Err(self.error(ErrorKind::UnexpectedEnd)),
                }
            }
            return Ok(Value {
                raw: self.since(start),
                at: start,
            });
        }
    }

    /// `"key" :` inside a value being skipped (keys there are not decoded).
    fn member_key(&mut self) -> Result<(), Error> {
        if self.peek() != Some(b'"') {
            return Err(match self.peek() {
                None => self.error(ErrorKind::UnexpectedEnd),
                Some(_) => self.error(ErrorKind::Unexpected),
            });
        }
        self.string()?;
        self.ws();
        self.expect(b':')
    }
}

fn hex_value(b: u8) -> u32 {
    match b {
        b'0'..=b'9' => u32::from(b - b'0'),
        b'a'..=b'f' => u32::from(b - b'a' + 10),
        b'A'..=b'F' => u32::from(b - b'A' + 10),
        _ => 0,
    }
}

/// The code unit of the `\uXXXX` escape whose `u` is at `bytes[at]`.
fn unit_at(bytes: &[u8], at: usize) -> Option<u32> {
    let hex = bytes.get(at + 1..at + 5)?;
    if !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    Some(hex.iter().fold(0, |n, &b| n * 16 + hex_value(b)))
}

/// Decodes a validated string token (with its quotes) that starts at byte
/// `at` of its document.
fn decode_string(token: &str, at: usize) -> Result<Cow<'_, str>, Error> {
    let fail = |offset: usize, kind| Error {
        kind,
        at: at + offset,
    };
    let inner = token
        .get(1..token.len().saturating_sub(1))
        .ok_or(fail(0, ErrorKind::ExpectedString))?;
    if !inner.contains('\\') {
        return Ok(Cow::Borrowed(inner));
    }
    let bytes = inner.as_bytes();
    let mut out = String::with_capacity(inner.len());
    let mut done = 0;
    while let Some(found) = inner.get(done..).and_then(|rest| rest.find('\\')) {
        let slash = done + found;
        out.push_str(inner.get(done..slash).unwrap_or_default());
        let mut len = 2;
        let c = match bytes.get(slash + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let lone = fail(1 + slash, ErrorKind::LoneSurrogate);
                let unit =
                    unit_at(bytes, slash + 1).ok_or(fail(1 + slash, ErrorKind::InvalidEscape))?;
                len = 6;
                let code = match unit {
                    0xd800..=0xdbff => {
                        // A high surrogate must be followed at once by a
                        // `\u` escape of a low one.
                        if bytes.get(slash + 6..slash + 8) != Some(b"\\u") {
                            return Err(lone);
                        }
                        let low = unit_at(bytes, slash + 7).ok_or(lone)?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return Err(lone);
                        }
                        len = 12;
                        0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                    }
                    0xdc00..=0xdfff => return Err(lone),
                    _ => unit,
                };
                char::from_u32(code).ok_or(lone)?
            }
            _ => return Err(fail(1 + slash, ErrorKind::InvalidEscape)),
        };
        out.push(c);
        done = slash + len;
    }
    out.push_str(inner.get(done..).unwrap_or_default());
    Ok(Cow::Owned(out))
}

/// Tests; the document generators are shared with the decoders' tests.
#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod tests;
