//! An injectable clock: system time, a fixed instant, or either shifted by an offset.
//!
//! Every timestamp the mock produces (token `iat`/`exp`, user `created_at`, webhook
//! `svix-timestamp`) comes from one [`Clock`], so a test can move time forwards or backwards
//! without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Shared handle to the mock's notion of "now". Cloning shares the same clock.
///
/// ```
/// use mock_clerk::Clock;
/// use std::time::Duration;
/// let clock = Clock::fixed_at_unix(1_700_000_000);
/// clock.advance(Duration::from_secs(61));
/// assert_eq!(clock.now_unix(), 1_700_000_061);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Clock {
    inner: Arc<ClockInner>,
}

#[derive(Debug, Default)]
struct ClockInner {
    /// `None` follows the system clock; `Some` is a frozen instant (ms since the epoch).
    fixed_ms: RwLock<Option<i64>>,
    offset_ms: AtomicI64,
}

impl Clock {
    /// Follows the system clock.
    #[must_use]
    pub fn system() -> Self {
        Self::default()
    }

    /// Frozen at the given Unix time (seconds) until moved.
    #[must_use]
    pub fn fixed_at_unix(secs: i64) -> Self {
        let clock = Self::default();
        clock.set_fixed_ms(Some(secs.saturating_mul(1000)));
        clock
    }

    /// Freezes the clock at `secs` (Unix seconds); the offset is kept.
    pub fn freeze_at_unix(&self, secs: i64) {
        self.set_fixed_ms(Some(secs.saturating_mul(1000)));
    }

    /// Goes back to following the system clock (the offset is kept).
    pub fn unfreeze(&self) {
        self.set_fixed_ms(None);
    }

    fn set_fixed_ms(&self, value: Option<i64>) {
        *self.inner.fixed_ms.write().unwrap_or_else(std::sync::PoisonError::into_inner) = value;
    }

    /// Moves the clock forwards by `by` without sleeping.
    pub fn advance(&self, by: Duration) {
        self.shift_ms(i64::try_from(by.as_millis()).unwrap_or(i64::MAX));
    }

    /// Moves the clock by `ms` milliseconds (negative goes back in time).
    pub fn shift_ms(&self, ms: i64) {
        // Saturating, not `fetch_add` (which wraps): a shift past the range stops at its end.
        let _ = self.inner.offset_ms.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |offset| Some(offset.saturating_add(ms)));
    }

    /// Sets the offset from the base time (system or frozen), in seconds.
    pub fn set_offset_secs(&self, secs: i64) {
        self.inner.offset_ms.store(secs.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Sets the offset from the base time (system or frozen), in milliseconds.
    pub fn set_offset_ms(&self, ms: i64) {
        self.inner.offset_ms.store(ms, Ordering::SeqCst);
    }

    /// The current offset in milliseconds.
    #[must_use]
    pub fn offset_ms(&self) -> i64 {
        self.inner.offset_ms.load(Ordering::SeqCst)
    }

    /// Resets the offset to zero and unfreezes.
    pub fn reset(&self) {
        self.inner.offset_ms.store(0, Ordering::SeqCst);
        self.unfreeze();
    }

    /// Now, in milliseconds since the Unix epoch (Clerk's API timestamps).
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        let base = self.inner.fixed_ms.read().unwrap_or_else(std::sync::PoisonError::into_inner).unwrap_or_else(system_ms);
        base.saturating_add(self.offset_ms())
    }

    /// Now, in whole seconds since the Unix epoch (JWT `iat`/`exp`).
    #[must_use]
    pub fn now_unix(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Now as a [`SystemTime`].
    #[must_use]
    pub fn now(&self) -> SystemTime {
        let ms = self.now_ms();
        if ms >= 0 {
            UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
        }
    }
}

fn system_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_moves_a_system_clock_without_sleeping() {
        let clock = Clock::system();
        let before = clock.now_unix();
        clock.set_offset_secs(-3600);
        assert!(clock.now_unix() <= before - 3599);
        clock.reset();
        assert!(clock.now_unix() >= before);
    }

    #[test]
    fn a_cloned_clock_shares_time() {
        let a = Clock::fixed_at_unix(100);
        let b = a.clone();
        a.advance(Duration::from_secs(5));
        assert_eq!(b.now_unix(), 105);
        assert_eq!(b.now_ms(), 105_000);
    }
}
