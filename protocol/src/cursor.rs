//! Resume cursors: `{epoch}-{seq}`.
//!
//! Every log a gateway accepts gets a sequence number from one counter that
//! only grows (`seq`), so within a channel a larger cursor is a later log.
//! The counter belongs to an *epoch*: a random identity chosen when the
//! history store starts. A cursor from another epoch (an earlier in-memory
//! process, another cluster) is recognised as foreign and answered with an
//! explicit gap, never trusted.
//!
//! Text form: the epoch in lowercase hex, `-`, the sequence in decimal,
//! e.g. `9f3a0c1d2e4b5a6f-1042`. The literal `earliest` asks for everything
//! the history still holds, and `last:{N}` (N from 1 to 4294967295) for the
//! channel's latest N logs the history still holds.

use std::fmt;
use std::num::NonZeroU32;

use crate::digits::Digits;
use std::str::FromStr;

/// Identity of one history store; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Digits::hex(self.0).as_str())
    }
}

/// A position in the log stream of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor {
    pub epoch: Epoch,
    pub seq: u64,
}

impl Cursor {
    pub fn new(epoch: Epoch, seq: u64) -> Self {
        Cursor { epoch, seq }
    }

    /// Appends the text form (what `Display` writes, without `core::fmt`).
    pub fn push_to(&self, out: &mut String) {
        out.push_str(Digits::hex(self.epoch.0).as_str());
        out.push('-');
        out.push_str(Digits::decimal(self.seq).as_str());
    }
}

/// Longest accepted cursor text: 16 hex digits, '-', 20 decimal digits.
pub const MAX_CURSOR_LEN: usize = 16 + 1 + 20;

/// Why a cursor was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("cursor must look like \"{{epoch-hex}}-{{seq}}\" or be \"earliest\"")]
    Malformed,
    #[error("cursor is longer than {MAX_CURSOR_LEN} bytes")]
    TooLong,
    /// A `last:{N}` entry whose N is not a decimal integer.
    #[error("last:{{N}} needs N as a decimal integer from 1 to {max}", max = u32::MAX)]
    LastMalformed,
    /// `last:0` asks for nothing; live is the default without a since entry.
    #[error("last:0 asks for no logs: N must be at least 1 (omit the since entry to start live)")]
    LastZero,
    /// N does not fit the bound of the grammar.
    #[error("last:{{N}} is larger than {max}", max = u32::MAX)]
    LastTooLarge,
}

impl CursorError {
    /// Whether the error is about a `last:{N}` entry.
    pub fn is_last(&self) -> bool {
        matches!(
            self,
            CursorError::LastMalformed | CursorError::LastZero | CursorError::LastTooLarge
        )
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Digits::hex(self.epoch.0).as_str())?;
        f.write_str("-")?;
        f.write_str(Digits::decimal(self.seq).as_str())
    }
}

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_CURSOR_LEN {
            return Err(CursorError::TooLong);
        }
        let (epoch, seq) = s.split_once('-').ok_or(CursorError::Malformed)?;
        let all =
            |text: &str, pred: fn(&u8) -> bool| !text.is_empty() && text.bytes().all(|b| pred(&b));
        if !all(epoch, u8::is_ascii_hexdigit) || !all(seq, u8::is_ascii_digit) {
            return Err(CursorError::Malformed);
        }
        let epoch = u64::from_str_radix(epoch, 16).map_err(|_| CursorError::Malformed)?;
        let seq = seq.parse().map_err(|_| CursorError::Malformed)?;
        Ok(Cursor::new(Epoch(epoch), seq))
    }
}

impl serde::Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a subscription asks to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeFrom {
    /// Only logs published after the subscription (the default).
    Live,
    /// Everything after this cursor (the last log the client holds).
    After(Cursor),
    /// Everything the history still holds, then live.
    Earliest,
    /// The channel's latest N logs the history still holds (fewer if it
    /// holds fewer), then live: a backfill such as `tail -n N -f`.
    Last(NonZeroU32),
}

/// Text of [`ResumeFrom::Earliest`].
pub const EARLIEST: &str = "earliest";

/// Prefix of [`ResumeFrom::Last`]'s text form, `last:{N}`.
pub const LAST_PREFIX: &str = "last:";

impl ResumeFrom {
    /// The text of a `since` entry after `{channel}@`; `None` for
    /// [`ResumeFrom::Live`], which has no entry.
    pub fn since_text(&self) -> Option<String> {
        match self {
            ResumeFrom::Live => None,
            ResumeFrom::After(cursor) => {
                let mut text = String::with_capacity(MAX_CURSOR_LEN);
                cursor.push_to(&mut text);
                Some(text)
            }
            ResumeFrom::Earliest => Some(EARLIEST.to_owned()),
            ResumeFrom::Last(n) => {
                Some(LAST_PREFIX.to_owned() + Digits::decimal(u64::from(n.get())).as_str())
            }
        }
    }
}

fn parse_last(digits: &str) -> Result<NonZeroU32, CursorError> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CursorError::LastMalformed);
    }
    // Digits only, so the one way to fail is overflow.
    let n: u32 = digits.parse().map_err(|_| CursorError::LastTooLarge)?;
    NonZeroU32::new(n).ok_or(CursorError::LastZero)
}

impl FromStr for ResumeFrom {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == EARLIEST {
            Ok(ResumeFrom::Earliest)
        } else if let Some(digits) = s.strip_prefix(LAST_PREFIX) {
            parse_last(digits).map(ResumeFrom::Last)
        } else {
            s.parse().map(ResumeFrom::After)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_form_is_hex_epoch_dash_decimal_seq() {
        let c = Cursor::new(Epoch(0x9f3a), 1042);
        assert_eq!(c.to_string(), "9f3a-1042");
        assert_eq!("9f3a-1042".parse::<Cursor>(), Ok(c));
        assert_eq!("earliest".parse::<ResumeFrom>(), Ok(ResumeFrom::Earliest));
    }

    #[test]
    fn rejects_malformed_cursors() {
        for bad in [
            "",
            "-",
            "12",
            "x-1",
            "1-x",
            "1--2",
            "-1",
            "1-",
            "1-+2",
            "ffffffffffffffffff-1",
            "1-99999999999999999999",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?} was accepted");
        }
        assert_eq!("1-".repeat(30).parse::<Cursor>(), Err(CursorError::TooLong));
    }

    #[test]
    fn last_n_takes_a_positive_integer_that_fits() {
        let last = |n| ResumeFrom::Last(NonZeroU32::new(n).unwrap());
        assert_eq!("last:1".parse::<ResumeFrom>(), Ok(last(1)));
        assert_eq!("last:200".parse::<ResumeFrom>(), Ok(last(200)));
        assert_eq!("last:0200".parse::<ResumeFrom>(), Ok(last(200)));
        assert_eq!("last:4294967295".parse::<ResumeFrom>(), Ok(last(u32::MAX)));
        for (bad, error) in [
            ("last:0", CursorError::LastZero),
            ("last:000", CursorError::LastZero),
            ("last:-1", CursorError::LastMalformed),
            ("last:+5", CursorError::LastMalformed),
            ("last:", CursorError::LastMalformed),
            ("last:5x", CursorError::LastMalformed),
            ("last: 5", CursorError::LastMalformed),
            ("last:1.5", CursorError::LastMalformed),
            ("last:5:6", CursorError::LastMalformed),
            ("last:4294967296", CursorError::LastTooLarge),
            ("last:99999999999999999999999999", CursorError::LastTooLarge),
        ] {
            assert_eq!(bad.parse::<ResumeFrom>(), Err(error.clone()), "{bad:?}");
            assert!(error.is_last());
        }
        // Other spellings are not the last form; they fail as cursors.
        assert_eq!("LAST:5".parse::<ResumeFrom>(), Err(CursorError::Malformed));
        assert_eq!("last5".parse::<ResumeFrom>(), Err(CursorError::Malformed));
        assert!(CursorError::LastZero.to_string().contains("at least 1"));
        assert!(CursorError::LastTooLarge.to_string().contains("4294967295"));
    }

    proptest! {
        #[test]
        fn round_trips(epoch: u64, seq: u64) {
            let c = Cursor::new(Epoch(epoch), seq);
            prop_assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
            let json = serde_json::to_string(&c).unwrap();
            prop_assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), c);
        }

        #[test]
        fn resume_points_round_trip_through_their_text(epoch: u64, seq: u64, n in 1u32..) {
            for resume in [
                ResumeFrom::After(Cursor::new(Epoch(epoch), seq)),
                ResumeFrom::Earliest,
                ResumeFrom::Last(NonZeroU32::new(n).unwrap()),
            ] {
                let text = resume.since_text().unwrap();
                prop_assert_eq!(text.parse::<ResumeFrom>(), Ok(resume));
            }
            prop_assert_eq!(ResumeFrom::Live.since_text(), None);
        }

        #[test]
        fn never_panics(input in "\\PC{0,60}", digits in "[0-9]{0,30}") {
            let _ = input.parse::<ResumeFrom>();
            let _ = format!("last:{input}").parse::<ResumeFrom>();
            let parsed = format!("last:{digits}").parse::<ResumeFrom>();
            let value: Option<u128> = digits.parse().ok();
            match value {
                Some(v) if (1..=u128::from(u32::MAX)).contains(&v) => {
                    prop_assert!(matches!(parsed, Ok(ResumeFrom::Last(n)) if u128::from(n.get()) == v));
                }
                _ => prop_assert!(parsed.is_err()),
            }
        }
    }
}
