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
//! the history still holds.

use std::fmt;
use std::str::FromStr;

/// Identity of one history store; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
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
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.epoch, self.seq)
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
}

/// Text of [`ResumeFrom::Earliest`].
pub const EARLIEST: &str = "earliest";

impl FromStr for ResumeFrom {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == EARLIEST {
            Ok(ResumeFrom::Earliest)
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

    proptest! {
        #[test]
        fn round_trips(epoch: u64, seq: u64) {
            let c = Cursor::new(Epoch(epoch), seq);
            prop_assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
            let json = serde_json::to_string(&c).unwrap();
            prop_assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), c);
        }

        #[test]
        fn never_panics(input in "\\PC{0,60}") {
            let _ = input.parse::<ResumeFrom>();
        }
    }
}
