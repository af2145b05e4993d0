//! Per-channel send pacing: a generic cell rate algorithm. A channel at `rate` messages per
//! second with a burst of `burst` never sends more than `rate * t + burst` messages in any
//! window of `t` seconds.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Pacer {
    /// Theoretical arrival time of the next message.
    tat: Instant,
    interval: Duration,
    burst: u32,
    /// The configured rate and the rate in force (lower after throughput errors).
    rate: u32,
    effective: f64,
    adjusted_at: Instant,
}

/// After a throughput error the rate halves, then climbs back by this share of the configured
/// rate per second (from half to full in ten seconds).
const RECOVERY_PER_SEC: f64 = 0.05;

/// The burst a channel is allowed: a tenth of a second's worth, at least one. No one-second
/// window sees more than `rate + default_burst(rate)` messages.
pub fn default_burst(rate: u32) -> u32 {
    (rate / 10).max(1)
}

/// The burst the pacer schedules with: half the allowed one, keeping the other half as margin
/// for the jitter between a message's slot and its arrival at the provider (messages claimed
/// together leave a few milliseconds apart).
fn pacing_burst(rate: u32) -> u32 {
    (default_burst(rate) / 2).max(1)
}

impl Pacer {
    pub fn new(rate: u32, now: Instant) -> Self {
        let rate = rate.max(1);
        Self {
            tat: now,
            interval: Duration::from_secs(1) / rate,
            burst: pacing_burst(rate),
            rate,
            effective: f64::from(rate),
            adjusted_at: now,
        }
    }

    /// Changes the configured rate, keeping the schedule already promised.
    pub fn set_rate(&mut self, rate: u32) {
        let rate = rate.max(1);
        if rate != self.rate {
            self.rate = rate;
            self.effective = self.effective.min(f64::from(rate));
            self.burst = pacing_burst(rate);
            self.update_interval();
        }
    }

    fn update_interval(&mut self) {
        self.interval = Duration::from_secs_f64(1.0 / self.effective.max(1.0));
    }

    /// The rate in force now, in messages per second.
    pub fn effective_rate(&self) -> f64 {
        self.effective
    }

    /// A throughput error (Meta's 130429): halve the rate and hold sending for `pause`.
    pub fn throttle(&mut self, now: Instant, pause: Duration) {
        self.recover(now);
        self.effective = (self.effective / 2.0).max(1.0);
        self.burst = 1;
        self.adjusted_at = now;
        self.update_interval();
        self.pause(now, pause);
    }

    fn recover(&mut self, now: Instant) {
        let full = f64::from(self.rate);
        if self.effective < full {
            let secs = now
                .saturating_duration_since(self.adjusted_at)
                .as_secs_f64();
            self.effective = (self.effective + full * RECOVERY_PER_SEC * secs).min(full);
            if self.effective >= full {
                self.burst = pacing_burst(self.rate);
            }
            self.update_interval();
        }
        self.adjusted_at = now;
    }

    fn tolerance(&self) -> Duration {
        self.interval * (self.burst - 1)
    }

    /// How many messages may go now, at most `max`, and takes them.
    pub fn take(&mut self, now: Instant, max: u32) -> u32 {
        self.recover(now);
        let mut n = 0;
        while n < max && self.tat.saturating_duration_since(now) <= self.tolerance() {
            self.tat = self.tat.max(now) + self.interval;
            n += 1;
        }
        n
    }

    /// Gives back `n` messages taken but not sent (fewer jobs than allowed were due).
    pub fn give_back(&mut self, n: u32) {
        for _ in 0..n {
            self.tat = self.tat.checked_sub(self.interval).unwrap_or(self.tat);
        }
    }

    /// How long until one more message may go.
    pub fn wait(&self, now: Instant) -> Duration {
        self.tat
            .saturating_duration_since(now)
            .saturating_sub(self.tolerance())
    }

    /// Pushes the schedule back: nothing goes before `now + pause` (throughput errors).
    pub fn pause(&mut self, now: Instant, pause: Duration) {
        self.tat = self.tat.max(now + pause + self.tolerance());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends greedily over `secs` seconds in 1 ms steps; returns send times (ms).
    fn simulate(rate: u32, secs: u64) -> Vec<u64> {
        let start = Instant::now();
        let mut p = Pacer::new(rate, start);
        let mut sent = Vec::new();
        for ms in 0..secs * 1000 {
            let now = start + Duration::from_millis(ms);
            for _ in 0..p.take(now, u32::MAX) {
                sent.push(ms);
            }
        }
        sent
    }

    #[test]
    fn long_run_rate_matches() {
        let sent = simulate(80, 10);
        let n = sent.len() as i64;
        assert!((n - 800).abs() <= 8 + 1, "sent {n} in 10 s at 80/s");
    }

    #[test]
    fn no_one_second_window_exceeds_rate_plus_burst() {
        for rate in [1u32, 80, 1000] {
            let sent = simulate(rate, 5);
            let limit = (rate + default_burst(rate)) as usize;
            for (i, &t) in sent.iter().enumerate() {
                let in_window = sent[i..].iter().take_while(|&&u| u < t + 1000).count();
                assert!(
                    in_window <= limit,
                    "rate {rate}: {in_window} in a window from {t} ms"
                );
            }
        }
    }

    #[test]
    fn burst_is_available_at_once_then_paced() {
        let now = Instant::now();
        let mut p = Pacer::new(100, now);
        assert_eq!(p.take(now, 1000), 5, "half of the allowed burst of 10");
        assert_eq!(p.take(now, 1000), 0);
        assert_eq!(p.wait(now), Duration::from_millis(10));
        assert_eq!(p.take(now + Duration::from_millis(10), 1000), 1);
    }

    #[test]
    fn give_back_returns_unused_slots() {
        let now = Instant::now();
        let mut p = Pacer::new(100, now);
        assert_eq!(p.take(now, 10), 5);
        p.give_back(3);
        assert_eq!(p.take(now, 10), 3);
    }

    #[test]
    fn throttling_halves_the_rate_then_recovers_gradually() {
        let start = Instant::now();
        let mut p = Pacer::new(100, start);
        p.throttle(start, Duration::from_secs(1));
        assert_eq!(p.effective_rate(), 50.0);
        assert_eq!(p.take(start + Duration::from_millis(500), 10), 0, "paused");
        p.take(start + Duration::from_secs(3), 0);
        let mid = p.effective_rate();
        assert!(mid > 50.0 && mid < 100.0, "partly recovered: {mid}");
        p.take(start + Duration::from_secs(20), 0);
        assert_eq!(p.effective_rate(), 100.0);
    }

    #[test]
    fn pause_holds_sending() {
        let now = Instant::now();
        let mut p = Pacer::new(100, now);
        p.pause(now, Duration::from_secs(2));
        assert_eq!(p.take(now + Duration::from_secs(1), 10), 0);
        assert!(p.take(now + Duration::from_secs(2), 10) >= 1);
    }
}
