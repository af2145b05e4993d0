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
    /// Throughput errors so far: a slot given out before the latest one is not kept.
    throttles: u64,
    /// Theoretical arrival time of the next send, over the messages actually sent
    /// ([`Pacer::go`]): the same cell rate algorithm with [`LATE`] more tolerance.
    sent_tat: Instant,
}

/// How far ahead a pass claims a busy channel's messages ([`Pacer::ahead`]): each claimed
/// message gets the instant of its slot ([`Pacer::take_slots`]) and waits for it, so a busy
/// channel costs a claim per [`REFILL`], not one per slot (at 80/s, one every 12.5 ms), and a
/// pass that comes late loses none of the channel's slots.
pub const LOOKAHEAD: Duration = Duration::from_millis(400);

/// A channel's next pass is due when its next free slot is this close
/// ([`Pacer::refill_in`]): what was claimed before covers the pass's own time.
pub const REFILL: Duration = Duration::from_millis(200);

/// How much later than their slots the sends themselves may come ([`Pacer::go`]). Each send is
/// checked against the sends before it by the pacer's own algorithm with this much more
/// tolerance: messages sent up to `LATE` after their slots always pass, and so does a late one
/// while the channel's sends have room for it; a late one that would make a run (its instance
/// stalled: a blocked runtime, a slow lease renewal, and every message whose slot passed
/// meanwhile wakes at once) gives its slot up and takes the next free one. Sent together after
/// a 120 ms stall at 20/s, passed slots put 23 messages in one second (limit 22).
/// The pacer schedules with half the allowed burst, so a one-second window of its slots holds
/// more than 50 ms' worth of slots fewer than rate + burst at any rate (at 20/s two slots,
/// 100 ms); the sends use half of that at most, leaving the rest for the way to the provider.
pub const LATE: Duration = Duration::from_millis(25);

/// A claimed message's slot: when it may go, and how many throughput errors its pacer had seen
/// when the slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub at: Instant,
    throttles: u64,
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
            throttles: 0,
            sent_tat: now,
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
        self.throttles += 1;
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

    /// How many messages have a slot from `now` to `horizon` (at most `max`): what a pass
    /// claims. Nothing is taken: [`Pacer::take_slots`] takes them once they are claimed.
    pub fn ahead(&self, now: Instant, horizon: Instant, max: u32) -> u32 {
        let slots = self.clone().slots(now, Some(horizon), max);
        u32::try_from(slots.len()).unwrap_or(u32::MAX)
    }

    /// Takes the next `n` slots: for each message, the instant it may go, in order, none
    /// before `now`. Each is the instant [`Pacer::take`] would first let that message go, so
    /// messages sent at (or after) their slots keep the rate and burst exactly as if each had
    /// been taken at its instant.
    pub fn take_slots(&mut self, now: Instant, n: u32) -> Vec<Slot> {
        let throttles = self.throttles;
        self.slots(now, None, n)
            .into_iter()
            .map(|at| Slot { at, throttles })
            .collect()
    }

    /// Whether a message holding `slot` is sent at `now` (`None`: it is counted as sent) or
    /// waits until an instant and asks again. It goes once its slot has come and the sends
    /// before it leave room for it (see [`LATE`]); short of room it waits for it, or, more
    /// than `LATE` after its slot, gives the slot up for the next free one, written to `slot`.
    /// A slot given before a throughput error (the rate halved and sending paused since) is
    /// given up too.
    pub fn go(&mut self, slot: &mut Slot, now: Instant) -> Option<Instant> {
        if slot.throttles == self.throttles {
            if now < slot.at {
                return Some(slot.at);
            }
            let room_at = self
                .sent_tat
                .checked_sub(self.tolerance() + LATE)
                .unwrap_or(now);
            if room_at <= now {
                self.sent_tat = self.sent_tat.max(now) + self.interval;
                return None;
            }
            if now.duration_since(slot.at) <= LATE {
                return Some(room_at);
            }
        }
        *slot = self.take_slots(now, 1)[0];
        Some(slot.at.max(now))
    }

    fn slots(&mut self, now: Instant, horizon: Option<Instant>, max: u32) -> Vec<Instant> {
        self.recover(now);
        let mut slots = Vec::new();
        while u32::try_from(slots.len()).unwrap_or(u32::MAX) < max {
            let at = self
                .tat
                .checked_sub(self.tolerance())
                .map_or(now, |earliest| earliest.max(now));
            if horizon.is_some_and(|h| at > h) {
                break;
            }
            slots.push(at);
            self.tat = self.tat.max(at) + self.interval;
        }
        slots
    }

    /// How long until a pass should claim more for this channel: until its next free slot
    /// is [`REFILL`] away (zero: now).
    pub fn refill_in(&self, now: Instant) -> Duration {
        self.wait(now).saturating_sub(REFILL)
    }

    /// How many throughput errors throttled this pacer: a slot taken ahead before a newer
    /// one is taken again ([`Pacer::take`]) at the lower rate.
    pub fn throttles(&self) -> u64 {
        self.throttles
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

    /// Passes as the dispatcher runs them: one when `refill_in` says so and the last claim
    /// is done, claiming up to `LOOKAHEAD` and taking the slots when the claim (`claim_ms`)
    /// returns. Returns the slots (ms) over `secs` seconds.
    fn simulate_ahead(rate: u32, secs: u64, claim_ms: u64) -> Vec<u64> {
        let start = Instant::now();
        let mut p = Pacer::new(rate, start);
        let mut sent = Vec::new();
        let mut claim: Option<(u64, u32)> = None;
        for ms in 0..secs * 1000 {
            let now = start + Duration::from_millis(ms);
            if let Some((done, n)) = claim
                && done == ms
            {
                for slot in p.take_slots(now, n) {
                    assert!(slot.at >= now, "a slot before its claim returned");
                    sent.push(u64::try_from((slot.at - start).as_millis()).unwrap());
                }
                claim = None;
            }
            if claim.is_none() && p.refill_in(now).is_zero() {
                claim = Some((ms + claim_ms, p.ahead(now, now + LOOKAHEAD, 100)));
            }
        }
        sent.retain(|t| *t < secs * 1000);
        sent
    }

    #[test]
    fn slots_taken_ahead_keep_the_rate_and_the_burst() {
        for claim_ms in [1, 20, 150, 350] {
            for rate in [1u32, 80, 1000] {
                let sent = simulate_ahead(rate, 10, claim_ms);
                let limit = (rate + pacing_burst(rate)) as usize;
                for (i, &t) in sent.iter().enumerate() {
                    let in_window = sent[i..].iter().take_while(|&&u| u < t + 1000).count();
                    assert!(
                        in_window <= limit,
                        "rate {rate}, claims of {claim_ms} ms: {in_window} in a window from {t} ms"
                    );
                }
                // The rate holds while a claim returns before the slots of the one before
                // run out (at 1,000/s a claim of 100 covers 100 ms).
                if claim_ms <= 20 {
                    let n = sent.len() as f64;
                    let want = f64::from(rate) * 10.0;
                    assert!(
                        (n - want).abs() <= want * 0.02 + 2.0,
                        "rate {rate}, claims of {claim_ms} ms: {n} in 10 s"
                    );
                }
            }
        }
    }

    #[test]
    fn slots_are_where_take_would_let_each_message_go() {
        let now = Instant::now();
        let mut p = Pacer::new(80, now);
        p.take(now, 2);
        let before = p.clone();
        let slots: Vec<Instant> = p.take_slots(now, 10).iter().map(|s| s.at).collect();
        assert_eq!(slots.len(), 10);
        assert_eq!(slots[0], now, "the rest of the burst goes at once");
        let mut by_take = before;
        for (k, &slot) in slots.iter().enumerate() {
            if slot > now {
                let early = slot - Duration::from_micros(500);
                assert_eq!(
                    by_take.clone().take(early, 1),
                    0,
                    "slot {k} is the earliest"
                );
            }
            assert_eq!(by_take.take(slot, 1), 1, "slot {k} is allowed");
        }
        assert_eq!(
            p.tat, by_take.tat,
            "taking the slots is taking those messages"
        );
    }

    #[test]
    fn ahead_takes_nothing_stops_at_its_horizon_and_refill_waits_for_the_claimed_slots() {
        let now = Instant::now();
        let mut p = Pacer::new(80, now);
        assert!(p.refill_in(now).is_zero());
        let n = p.ahead(now, now + LOOKAHEAD, 1000);
        assert_eq!(n, p.ahead(now, now + LOOKAHEAD, 1000), "nothing taken");
        // 400 ms at 12.5 ms a slot, and the burst's 3 more at once.
        assert_eq!(n, 32 + 1 + 3);
        assert_eq!(p.ahead(now, now + LOOKAHEAD, 10), 10);
        // A nearer horizon (the channel's lease ends sooner) claims less: 100 ms' worth.
        assert_eq!(
            p.ahead(now, now + Duration::from_millis(100), 1000),
            8 + 1 + 3
        );
        let slots = p.take_slots(now, n);
        let last = slots.last().unwrap().at;
        assert_eq!(last, now + LOOKAHEAD);
        // The next pass is due when the next free slot is REFILL away.
        let refill = p.refill_in(now);
        assert_eq!(refill, LOOKAHEAD + p.interval - REFILL);
        assert!(p.refill_in(now + refill).is_zero());
    }

    /// Every 1-s window of `sent` (ms) holds at most `limit` sends.
    fn assert_windows(sent: &[u64], limit: u32, what: &str) {
        for (i, &t) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().take_while(|&&u| u < t + 1000).count();
            assert!(
                in_window <= limit as usize,
                "{what}: {in_window} in the second from {t} ms (limit {limit})"
            );
        }
    }

    /// The dispatcher as [`simulate_ahead`] runs it (claims of `claim_ms`, up to 100 jobs),
    /// each claimed message waking `jitter(k)` ms after its slot (k: the message's number) and
    /// asking [`Pacer::go`], and again at each instant it answers; the runtime blocked for
    /// `stall_ms` from `stall_at` (ms): nothing runs meanwhile (no pass, no claim returning,
    /// no message), and everything that came due runs when it ends, in slot order. Returns the
    /// sends (ms) over `secs` seconds.
    fn simulate_go(
        rate: u32,
        secs: u64,
        claim_ms: u64,
        (stall_at, stall_ms): (u64, u64),
        jitter: impl Fn(u64) -> u64,
    ) -> Vec<u64> {
        let start = Instant::now();
        let mut p = Pacer::new(rate, start);
        let mut waiting: Vec<(Instant, Slot)> = Vec::new();
        let mut sent = Vec::new();
        let mut claim: Option<(u64, u32)> = None;
        let mut claimed = 0u64;
        for ms in 0..secs * 1000 {
            if (stall_at..stall_at + stall_ms).contains(&ms) {
                continue;
            }
            let now = start + Duration::from_millis(ms);
            if let Some((done, n)) = claim
                && done <= ms
            {
                for slot in p.take_slots(now, n) {
                    claimed += 1;
                    waiting.push((slot.at + Duration::from_millis(jitter(claimed)), slot));
                }
                claim = None;
            }
            if claim.is_none() && p.refill_in(now).is_zero() {
                claim = Some((ms + claim_ms, p.ahead(now, now + LOOKAHEAD, 100)));
            }
            waiting.sort_by_key(|(wake, slot)| (*wake, slot.at));
            let mut still = Vec::new();
            for (wake, mut slot) in waiting.drain(..) {
                if wake > now {
                    still.push((wake, slot));
                    continue;
                }
                match p.go(&mut slot, now) {
                    None => sent.push(ms),
                    Some(next) => still.push((next, slot)),
                }
            }
            waiting = still;
        }
        sent
    }

    /// `n` sends in `secs` seconds are `rate` a second, within 2 % (and the burst).
    fn assert_rate(n: usize, rate: u32, secs: f64, what: &str) {
        let want = f64::from(rate) * secs;
        let n = n as f64;
        assert!(
            n >= want * 0.98 - 1.0 && n <= want * 1.02 + f64::from(default_burst(rate)),
            "{what}: {n} sent, {want} expected"
        );
    }

    #[test]
    fn a_stalled_instance_sends_no_run_of_passed_slots_at_once() {
        for rate in [20u32, 80, 1000] {
            for stall_ms in [30, 60, 120, 250, 500, 900] {
                for claim_ms in [1, 20] {
                    let what =
                        format!("rate {rate}, claims of {claim_ms} ms, a stall of {stall_ms} ms");
                    let sent = simulate_go(rate, 6, claim_ms, (2_003, stall_ms), |_| 0);
                    assert_windows(&sent, rate + default_burst(rate), &what);
                    // What the stall did not take is sent at the rate.
                    assert_rate(sent.len(), rate, 6.0 - stall_ms as f64 / 1000.0, &what);
                }
            }
        }
    }

    #[test]
    fn messages_sent_late_keep_the_rate_and_the_burst() {
        // Each message 0-40 ms after its slot (a loaded machine), spread by a fixed sequence.
        let jitter = |k: u64| (k * 7_919) % 41;
        for rate in [20u32, 80, 1000] {
            let what = format!("rate {rate}, 0-40 ms late");
            let sent = simulate_go(rate, 6, 1, (0, 0), jitter);
            assert_windows(&sent, rate + default_burst(rate), &what);
            // 6 s less the last message's lateness.
            assert_rate(sent.len(), rate, 5.96, &what);
        }
    }

    #[test]
    fn a_message_goes_at_its_slot_while_the_sends_have_room_else_at_the_next_free_one() {
        let ms = Duration::from_millis;
        let now = Instant::now();
        let mut p = Pacer::new(20, now);
        // A burst of one at 20/s: slots 50 ms apart.
        let slots = p.take_slots(now, 4);
        let at: Vec<Instant> = slots.iter().map(|s| s.at).collect();
        assert_eq!(at, [now, now + ms(50), now + ms(100), now + ms(150)]);
        let mut first = slots[0];
        assert_eq!(
            p.go(&mut first, now + LATE),
            None,
            "LATE after its slot it goes"
        );
        assert_eq!(first, slots[0]);
        let mut second = slots[1];
        assert_eq!(p.go(&mut second, now), Some(at[1]), "it waits for its slot");
        // Later than LATE, it still goes while the sends leave room: the first went at 25 ms.
        assert_eq!(p.go(&mut second, now + ms(80)), None);
        assert_eq!(second, slots[1]);
        // A stall: the last two wake together at 300 ms. The third goes (the second went at
        // 80 ms), the fourth has no room for 25 ms more and, late, takes the next free slot:
        // now, since the schedule ran out meanwhile; there it waits for room.
        let (mut third, mut fourth) = (slots[2], slots[3]);
        let woke = now + ms(300);
        assert_eq!(p.go(&mut third, woke), None);
        assert_eq!(p.go(&mut fourth, woke), Some(woke));
        assert_eq!(fourth.at, woke, "a new slot");
        assert_eq!(
            p.go(&mut fourth, woke),
            Some(woke + LATE),
            "room 25 ms later"
        );
        assert_eq!(p.go(&mut fourth, woke + LATE), None);
        // A slot given out before a throughput error is given up too, for one after the pause.
        let mut fifth = p.take_slots(woke, 1)[0];
        p.throttle(woke, Duration::from_secs(1));
        let due = fifth.at;
        let renewed = p.go(&mut fifth, due).expect("a new slot");
        assert!(renewed >= woke + Duration::from_secs(1), "after the pause");
        assert_eq!(p.go(&mut fifth, renewed), None);
    }

    #[test]
    fn a_throttle_is_counted() {
        let now = Instant::now();
        let mut p = Pacer::new(100, now);
        assert_eq!(p.throttles(), 0);
        p.throttle(now, Duration::from_secs(1));
        assert_eq!(p.throttles(), 1);
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
