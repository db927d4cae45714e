//! Integers as text without `core::fmt`: the browser client builds its
//! cursors, query strings and messages with these, so the formatting
//! machinery (padding, flags, every integer width's own routine) stays out
//! of its WebAssembly module. No allocation: the digits live on the stack.

/// The digits of one `u64`, decimal or lowercase hex.
#[derive(Debug, Clone, Copy)]
pub struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    /// `n` in decimal.
    pub fn decimal(n: u64) -> Self {
        Self::new(n, 10)
    }

    /// `n` in lowercase hexadecimal, without prefix or padding.
    pub fn hex(n: u64) -> Self {
        Self::new(n, 16)
    }

    fn new(mut n: u64, radix: u64) -> Self {
        let mut digits = Digits {
            buf: [0; 20],
            start: 20,
        };
        loop {
            digits.start -= 1;
            // `n % radix` < 16, so the index and the cast are in range.
            digits.buf[digits.start] = b"0123456789abcdef"[(n % radix) as usize];
            n /= radix;
            if n == 0 {
                return digits;
            }
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(self.start..).unwrap_or_default()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounds() {
        assert_eq!(Digits::decimal(0).as_str(), "0");
        assert_eq!(Digits::hex(0).as_str(), "0");
        assert_eq!(Digits::decimal(u64::MAX).as_str(), u64::MAX.to_string());
        assert_eq!(Digits::hex(u64::MAX).as_str(), "ffffffffffffffff");
    }

    proptest! {
        #[test]
        fn matches_core_fmt(n in any::<u64>()) {
            prop_assert_eq!(Digits::decimal(n).as_str().to_owned(), n.to_string());
            prop_assert_eq!(Digits::hex(n).as_str().to_owned(), format!("{n:x}"));
        }
    }
}
