//! The time the dispatcher and the send decisions go by: the system clock, which tests can
//! move forward (a scheduled send, quiet hours, the messaging limit's rolling day) without
//! sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

/// The system clock plus an offset (zero unless a test moves it).
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// Milliseconds since the Unix epoch, as this clock reads.
    pub fn now_ms(&self) -> i64 {
        crate::now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }

    /// Test hook: moves the clock `ms` forward (negative: back).
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Test hook: makes the clock read `at_ms` now (and run on from there).
    pub fn set(&self, at_ms: i64) {
        self.offset_ms
            .store(at_ms - crate::now_ms(), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_and_sets() {
        let clock = Clock::default();
        let before = clock.now_ms();
        clock.advance(3_600_000);
        assert!(clock.now_ms() >= before + 3_600_000);
        clock.set(1_000);
        assert!((1_000..1_000 + 60_000).contains(&clock.now_ms()));
    }
}
