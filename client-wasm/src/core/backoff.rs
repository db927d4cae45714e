//! Reconnect delays: full-jitter exponential backoff with bounds.
//!
//! Attempt `n` (1-based) waits a uniformly random time in
//! `[min, min(max, min * 2^n)]`. The randomness is a parameter (a number in
//! `[0, 1)`), so the policy is deterministic under test. The attempt counter
//! belongs to the connection state machine, which resets it once a
//! connection has stayed open long enough to count as healthy.

/// The delay policy; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min_ms: u32,
    pub max_ms: u32,
}

impl Backoff {
    pub fn new(min_ms: u32, max_ms: u32) -> Self {
        let min_ms = min_ms.max(1);
        Backoff {
            min_ms,
            max_ms: max_ms.max(min_ms),
        }
    }

    /// Upper end of the random range for `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> u32 {
        let shift = attempt.min(31);
        let grown = u64::from(self.min_ms) << shift;
        grown.min(u64::from(self.max_ms)) as u32
    }

    /// Delay before `attempt` given `unit_random` in `[0, 1)`; values outside
    /// that range (or NaN) are clamped.
    pub fn delay(&self, attempt: u32, unit_random: f64) -> u32 {
        let r = if unit_random.is_finite() {
            unit_random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let low = f64::from(self.min_ms);
        let high = f64::from(self.ceiling(attempt));
        let delay = low + (high - low) * r;
        (delay.round() as u32).clamp(self.min_ms, self.max_ms)
    }
}

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grows_exponentially_until_the_cap() {
        let b = Backoff::new(500, 30_000);
        assert_eq!(b.ceiling(1), 1_000);
        assert_eq!(b.ceiling(2), 2_000);
        assert_eq!(b.ceiling(6), 30_000);
        assert_eq!(b.ceiling(1_000), 30_000);
        assert_eq!(b.delay(3, 0.0), 500);
        assert_eq!(b.delay(3, 0.999_999), 4_000);
        assert_eq!(b.delay(3, f64::NAN), 500);
    }

    proptest! {
        #[test]
        fn always_within_bounds(min in 1u32..100_000, extra in 0u32..1_000_000, attempt: u32, r in -1.0f64..2.0) {
            let b = Backoff::new(min, min.saturating_add(extra));
            let d = b.delay(attempt, r);
            prop_assert!(d >= b.min_ms && d <= b.max_ms);
            prop_assert!(d <= b.ceiling(attempt));
        }

        #[test]
        fn ceiling_never_shrinks(min in 1u32..10_000, max in 10_000u32..1_000_000, attempt in 0u32..40) {
            let b = Backoff::new(min, max);
            prop_assert!(b.ceiling(attempt + 1) >= b.ceiling(attempt));
        }
    }
}
