//! The delay before a failed send is tried again, in one function. No I/O.
//!
//! Schedule: exponential, `initial * 2^(attempt-1)` capped at `max`, with
//! **equal jitter**: the delay is half the step plus a random part of up to the
//! other half, so it lies in `[step/2, step]`. (Full jitter, `[0, step]`, could
//! retry a throttled channel almost at once; equal jitter keeps a minimum
//! spacing while still spreading retries apart.) Then:
//!
//! - a floor per class: at least [`THROUGHPUT_FLOOR`] for
//!   [`ErrorClass::RetryChannel`] and [`PAIR_RATE_FLOOR`] for
//!   [`ErrorClass::RetryRecipient`] (Meta allows about one message every 6
//!   seconds to the same recipient);
//! - `Retry-After`, when the response had one: the delay is at least that;
//! - everything bounded by `max`.

use std::time::Duration;

use rand::Rng;

use super::meta_error::ErrorClass;

/// Minimum delay after a throughput error (130429, 80007, 4, …).
pub const THROUGHPUT_FLOOR: Duration = Duration::from_secs(1);
/// Minimum delay after a pair rate error (131056).
pub const PAIR_RATE_FLOOR: Duration = Duration::from_secs(6);

/// How often and how far apart a message's sends are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The step after the first failed attempt.
    pub initial: Duration,
    /// The longest delay, whatever the attempt, floor or `Retry-After`.
    pub max: Duration,
    /// Attempts in all, the first included. After the attempt numbered
    /// `max_attempts` fails, the message fails.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 1 s, doubling, at most 10 min apart, 10 attempts.
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(600),
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// The un-jittered step after `attempt` (1-based) failed:
    /// `initial * 2^(attempt-1)`, capped at `max`. Attempt 0 counts as 1.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1);
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay before the next attempt, after `attempt` (1-based: the
    /// attempt that just failed) failed with `class`; `None` when the
    /// message must fail instead: the class is [`ErrorClass::Permanent`] or
    /// `attempt` was the last one allowed.
    ///
    /// [`ErrorClass::ChannelHalt`] also gives `None`, but the dispatcher does
    /// not call this for it: a halted channel keeps its messages queued and
    /// the failed attempt is not counted against the message.
    pub fn next_delay(
        &self,
        attempt: u32,
        class: ErrorClass,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let floor = match class {
            // 131049 has its own schedule (`marketing_retry_delay`).
            ErrorClass::Permanent | ErrorClass::ChannelHalt | ErrorClass::MarketingLimit => {
                return None;
            }
            ErrorClass::RetryChannel => THROUGHPUT_FLOOR,
            ErrorClass::RetryRecipient => PAIR_RATE_FLOOR,
            ErrorClass::Retry => Duration::ZERO,
        };
        if attempt.max(1) >= self.max_attempts {
            return None;
        }
        let step = self.backoff(attempt);
        let half = step / 2;
        let spread = u64::try_from((step - half).as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(uniform_up_to(rng, spread));
        let delay = (half + jitter)
            .max(floor)
            .max(retry_after.unwrap_or(Duration::ZERO));
        Some(delay.min(self.max))
    }
}

/// A random number in `0..=max`, by the multiply-high method on one `u64`
/// (bias below 2^-64 per value: irrelevant for jitter). Uses only
/// `RngCore::next_u64`, which rand 0.8 and 0.9 both have.
fn uniform_up_to(rng: &mut impl Rng, max: u64) -> u64 {
    let range = u128::from(max) + 1;
    ((u128::from(rng.next_u64()) * range) >> 64) as u64
}

/// The delay before a MARKETING message Meta declined with 131049 ("not delivered to maintain
/// healthy ecosystem engagement") is tried again: Meta advises waiting hours, not seconds, so
/// these retries follow their own schedule. `declined_before` is how many earlier attempts of
/// the message Meta declined so; `None` when the schedule is used up (the message fails).
pub fn marketing_retry_delay(delays: &[Duration], declined_before: usize) -> Option<Duration> {
    delays.get(declined_before).copied()
}

/// Parses a schedule of delays such as `6h,12h,24h`: comma-separated whole numbers, each with
/// a unit `s`, `m`, `h` or `d`. Empty (or `none`): no retries.
pub fn parse_delays(text: &str) -> Result<Vec<Duration>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|part| {
            let part = part.trim();
            let split = part
                .find(|c: char| !c.is_ascii_digit())
                .ok_or_else(|| format!("'{part}' has no unit (s, m, h or d)"))?;
            let (n, unit) = part.split_at(split);
            let n: u64 = n
                .parse()
                .map_err(|_| format!("'{part}' does not start with a whole number"))?;
            let secs = match unit {
                "s" => n,
                "m" => n.saturating_mul(60),
                "h" => n.saturating_mul(3600),
                "d" => n.saturating_mul(86_400),
                _ => return Err(format!("'{part}': the unit must be s, m, h or d")),
            };
            if secs == 0 {
                return Err(format!("'{part}' is not a delay"));
            }
            Ok(Duration::from_secs(secs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn default_policy() {
        let p = RetryPolicy::default();
        assert_eq!(p.initial, S(1));
        assert_eq!(p.max, S(600));
        assert_eq!(p.max_attempts, 10);
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let p = RetryPolicy::default();
        let steps: Vec<u64> = (1..=11).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(steps, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600]);
        assert_eq!(p.backoff(0), S(1));
        assert_eq!(p.backoff(40), S(600));
        assert_eq!(p.backoff(u32::MAX), S(600));
    }

    #[test]
    fn delays_grow_within_equal_jitter_bounds() {
        let p = RetryPolicy {
            max_attempts: 100,
            ..RetryPolicy::default()
        };
        let mut rng = rng();
        for attempt in 1..=12 {
            let step = p.backoff(attempt);
            for _ in 0..200 {
                let d = p
                    .next_delay(attempt, ErrorClass::Retry, None, &mut rng)
                    .unwrap();
                assert!(
                    d >= step / 2 && d <= step,
                    "attempt {attempt}: {d:?} vs {step:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let p = RetryPolicy::default();
        let mut rng = rng();
        let delays: Vec<Duration> = (0..500)
            .map(|_| p.next_delay(5, ErrorClass::Retry, None, &mut rng).unwrap())
            .collect();
        let min = delays.iter().min().unwrap();
        let max = delays.iter().max().unwrap();
        // step 16 s: delays in [8 s, 16 s], spread over most of it.
        assert!(*min < S(9), "{min:?}");
        assert!(*max > S(15), "{max:?}");
    }

    #[test]
    fn delay_is_capped_at_max() {
        let p = RetryPolicy {
            max_attempts: 1000,
            ..RetryPolicy::default()
        };
        let mut rng = rng();
        for attempt in [11, 20, 64, 999] {
            let d = p
                .next_delay(attempt, ErrorClass::Retry, None, &mut rng)
                .unwrap();
            assert!(d >= S(300) && d <= S(600), "{d:?}");
        }
    }

    #[test]
    fn throughput_and_pair_rate_floors() {
        let p = RetryPolicy {
            initial: Duration::from_millis(10),
            ..RetryPolicy::default()
        };
        let mut rng = rng();
        for _ in 0..100 {
            let channel = p
                .next_delay(1, ErrorClass::RetryChannel, None, &mut rng)
                .unwrap();
            assert_eq!(channel, THROUGHPUT_FLOOR);
            let recipient = p
                .next_delay(1, ErrorClass::RetryRecipient, None, &mut rng)
                .unwrap();
            assert_eq!(recipient, PAIR_RATE_FLOOR);
            let plain = p.next_delay(1, ErrorClass::Retry, None, &mut rng).unwrap();
            assert!(plain <= Duration::from_millis(10));
        }
    }

    #[test]
    fn retry_after_is_honoured_and_bounded_by_max() {
        let p = RetryPolicy::default();
        let mut rng = rng();
        let d = p
            .next_delay(1, ErrorClass::RetryChannel, Some(S(30)), &mut rng)
            .unwrap();
        assert_eq!(d, S(30));
        let d = p
            .next_delay(1, ErrorClass::Retry, Some(S(3600)), &mut rng)
            .unwrap();
        assert_eq!(d, S(600));
        // A Retry-After shorter than the backoff does not shorten it.
        let d = p
            .next_delay(9, ErrorClass::Retry, Some(S(1)), &mut rng)
            .unwrap();
        assert!(d >= S(128), "{d:?}");
    }

    #[test]
    fn floors_are_bounded_by_max_too() {
        let p = RetryPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(500),
            max_attempts: 10,
        };
        let d = p
            .next_delay(1, ErrorClass::RetryRecipient, None, &mut rng())
            .unwrap();
        assert_eq!(d, Duration::from_millis(500));
    }

    #[test]
    fn permanent_and_halt_give_none() {
        let p = RetryPolicy::default();
        let mut rng = rng();
        assert_eq!(p.next_delay(1, ErrorClass::Permanent, None, &mut rng), None);
        assert_eq!(
            p.next_delay(1, ErrorClass::ChannelHalt, Some(S(5)), &mut rng),
            None
        );
    }

    #[test]
    fn attempts_are_exhausted_after_max_attempts() {
        let p = RetryPolicy::default();
        let mut rng = rng();
        for attempt in 1..10 {
            assert!(
                p.next_delay(attempt, ErrorClass::Retry, None, &mut rng)
                    .is_some(),
                "attempt {attempt}"
            );
        }
        assert_eq!(p.next_delay(10, ErrorClass::Retry, None, &mut rng), None);
        assert_eq!(
            p.next_delay(11, ErrorClass::RetryChannel, None, &mut rng),
            None
        );
        let once = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        assert_eq!(once.next_delay(1, ErrorClass::Retry, None, &mut rng), None);
        assert_eq!(once.next_delay(0, ErrorClass::Retry, None, &mut rng), None);
    }

    #[test]
    fn uniform_up_to_stays_in_range_and_reaches_both_ends() {
        let mut rng = rng();
        let draws: Vec<u64> = (0..2000).map(|_| uniform_up_to(&mut rng, 3)).collect();
        assert!(draws.iter().all(|d| *d <= 3));
        for v in 0..=3 {
            assert!(draws.contains(&v), "{v} never drawn");
        }
        assert_eq!(uniform_up_to(&mut rng, 0), 0);
        let _ = uniform_up_to(&mut rng, u64::MAX); // no overflow at the top of the range
    }

    #[test]
    fn zero_initial_gives_zero_delay_without_panicking() {
        let p = RetryPolicy {
            initial: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(
            p.next_delay(3, ErrorClass::Retry, None, &mut rng()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn marketing_retries_follow_their_schedule_then_stop() {
        let delays = parse_delays("6h, 12h,24h").unwrap();
        assert_eq!(delays, [S(6 * 3600), S(12 * 3600), S(24 * 3600)]);
        assert_eq!(marketing_retry_delay(&delays, 0), Some(S(6 * 3600)));
        assert_eq!(marketing_retry_delay(&delays, 1), Some(S(12 * 3600)));
        assert_eq!(marketing_retry_delay(&delays, 2), Some(S(24 * 3600)));
        assert_eq!(marketing_retry_delay(&delays, 3), None);
        assert_eq!(marketing_retry_delay(&[], 0), None);
    }

    #[test]
    fn delay_schedules_are_parsed_strictly() {
        assert_eq!(parse_delays("").unwrap(), []);
        assert_eq!(parse_delays("none").unwrap(), []);
        assert_eq!(
            parse_delays("90s,2m,1d").unwrap(),
            [S(90), S(120), S(86_400)]
        );
        for bad in ["6", "h", "6x", "0h", "6h,,12h", "-1h", "1.5h"] {
            assert!(parse_delays(bad).is_err(), "{bad}");
        }
    }
}
