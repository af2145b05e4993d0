//! Quiet hours: a daily window in the recipient's local time (such as 21:00–08:00) when
//! marketing templates are held. The recipient's time zone comes from the number, as
//! libphonenumber derives it (its country and, where a country spans several zones, its
//! area code: `time_zone_data`). Pure code.

use chrono::{DateTime, Duration, NaiveTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::time_zone_data::TIME_ZONES;

/// Minutes after midnight of `HH:MM` (00:00 to 23:59).
pub fn parse_minutes(text: &str) -> Result<i64, String> {
    let bad = || format!("must be a time of day as HH:MM (00:00 to 23:59), got '{text}'");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// `HH:MM` of minutes after midnight.
pub fn format_minutes(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The time zone of a number (digits, calling code first) at `at_ms`: the zones of its longest
/// prefix in libphonenumber's table. `None` when unknown, or when the prefix has zones whose
/// offsets differ at that moment (a country code alone for a country of several zones): the
/// local time is then ambiguous, and nothing is held.
pub fn zone_of(number: &str, at_ms: i64) -> Option<Tz> {
    let at = DateTime::<Utc>::from_timestamp_millis(at_ms)?;
    let zones = (1..=number.len().min(9)).rev().find_map(|len| {
        let prefix = &number[..len];
        TIME_ZONES
            .binary_search_by(|(p, _)| (*p).cmp(prefix))
            .ok()
            .map(|i| TIME_ZONES[i].1)
    })?;
    let mut parsed = zones.iter().map(|z| z.parse::<Tz>().ok());
    let first = parsed.next()??;
    let offset = |tz: Tz| tz.offset_from_utc_datetime(&at.naive_utc()).fix();
    for other in parsed {
        if offset(other?) != offset(first) {
            return None;
        }
    }
    Some(first)
}

/// When a send at `at_ms` to a recipient in `zone` may go, given quiet hours from `start` to
/// `end` (minutes after local midnight): `None` when `at_ms` is outside the window, else the
/// window's end.
pub fn release_at(start: i64, end: i64, zone: Tz, at_ms: i64) -> Option<i64> {
    if start == end {
        return None;
    }
    let local = zone.from_utc_datetime(&DateTime::<Utc>::from_timestamp_millis(at_ms)?.naive_utc());
    let now = i64::from(local.hour()) * 60 + i64::from(local.minute());
    let inside = if start < end {
        (start..end).contains(&now)
    } else {
        now >= start || now < end
    };
    if !inside {
        return None;
    }
    let day = if now < end {
        local.date_naive()
    } else {
        local.date_naive() + Duration::days(1)
    };
    let end_time = NaiveTime::from_hms_opt(
        u32::try_from(end / 60).ok()?,
        u32::try_from(end % 60).ok()?,
        0,
    )?;
    let mut naive = day.and_time(end_time);
    // The end may fall in a daylight-saving gap: the first local time after it.
    for _ in 0..4 {
        if let Some(t) = zone.from_local_datetime(&naive).earliest() {
            return Some(t.with_timezone(&Utc).timestamp_millis());
        }
        naive += Duration::minutes(30);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn times_of_day_parse_strictly() {
        assert_eq!(parse_minutes("21:00"), Ok(1260));
        assert_eq!(parse_minutes("08:30"), Ok(510));
        for bad in ["24:00", "8:00", "08:60", "0800", "", "aa:bb"] {
            assert!(parse_minutes(bad).is_err(), "{bad}");
        }
        assert_eq!(format_minutes(510), "08:30");
    }

    #[test]
    fn zones_come_from_the_area_code() {
        let at = ms("2026-07-01T12:00:00Z");
        assert_eq!(zone_of("12125550100", at), Some(Tz::America__New_York));
        assert_eq!(zone_of("12065550100", at), Some(Tz::America__Los_Angeles));
        assert_eq!(zone_of("50755667788", at), Some(Tz::America__Panama));
        assert_eq!(zone_of("34612345678", at), Some(Tz::Europe__Madrid));
        assert_eq!(zone_of("34822123456", at), Some(Tz::Atlantic__Canary));
        // Part of Idaho's 208: Boise (UTC-6 in July) and Los Angeles (UTC-7) differ.
        assert_eq!(zone_of("12082001234", at), None, "Boise and Los Angeles");
        assert_eq!(
            zone_of("19995550100", at),
            None,
            "+1 alone spans many zones"
        );
    }

    #[test]
    fn a_night_window_holds_until_the_morning() {
        // 23:30 in New York (EDT, UTC-4) is 03:30Z; 08:00 there is 12:00Z.
        let ny = Tz::America__New_York;
        assert_eq!(
            release_at(21 * 60, 8 * 60, ny, ms("2026-07-02T03:30:00Z")),
            Some(ms("2026-07-02T12:00:00Z"))
        );
        // 21:30 local: released the next morning.
        assert_eq!(
            release_at(21 * 60, 8 * 60, ny, ms("2026-07-02T01:30:00Z")),
            Some(ms("2026-07-02T12:00:00Z"))
        );
        // Noon local: not held.
        assert_eq!(
            release_at(21 * 60, 8 * 60, ny, ms("2026-07-02T16:00:00Z")),
            None
        );
        // A day window.
        assert_eq!(
            release_at(12 * 60, 14 * 60, ny, ms("2026-07-02T16:30:00Z")),
            Some(ms("2026-07-02T18:00:00Z"))
        );
    }
}
