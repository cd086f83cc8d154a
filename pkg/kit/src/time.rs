//! Times as this workspace stores and shows them: Unix milliseconds in the database (zone-free,
//! sortable), RFC 3339 in UTC on the wire. DTM issue #306 is what zone mix-ups cost.

use std::ops::{Add, Sub};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An instant as Unix milliseconds (UTC): what the stores hold (an integer column: zone-free and
/// sortable), with the arithmetic the rules need — plus a [`Duration`], the time between two —
/// saturating, so no stored or configured value can overflow it. No `Display`: a store writes
/// `.0`, a reader sees [`UnixMs::rfc3339`], and neither by accident.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMs(pub i64);

impl UnixMs {
    /// Now, from the system clock.
    pub fn now() -> UnixMs {
        UnixMs(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// Whole seconds since the epoch (DTM's second-resolution fields).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `2026-11-21T16:43:53.405Z`.
    pub fn rfc3339(self) -> String {
        rfc3339(self.0)
    }
}

impl Add<Duration> for UnixMs {
    type Output = UnixMs;
    fn add(self, d: Duration) -> UnixMs {
        UnixMs(self.0.saturating_add(millis(d)))
    }
}

impl Sub<Duration> for UnixMs {
    type Output = UnixMs;
    fn sub(self, d: Duration) -> UnixMs {
        UnixMs(self.0.saturating_sub(millis(d)))
    }
}

/// The time from `earlier` to `self`; zero if `earlier` is later.
impl Sub for UnixMs {
    type Output = Duration;
    fn sub(self, earlier: UnixMs) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

/// A duration in whole milliseconds, saturating (as the stores keep intervals).
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Unix milliseconds → `2026-11-21T16:43:53.405Z`.
pub fn rfc3339(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_279_433_405), "2026-11-21T16:43:53.405Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn instants_and_durations_saturate() {
        let t = UnixMs(1_000);
        assert_eq!(t + Duration::from_millis(500), UnixMs(1_500));
        assert_eq!(t - Duration::from_secs(2), UnixMs(-1_000));
        assert_eq!(UnixMs(1_500) - t, Duration::from_millis(500));
        assert_eq!(t - UnixMs(1_500), Duration::ZERO);
        assert_eq!(UnixMs(i64::MAX - 1) + Duration::MAX, UnixMs(i64::MAX));
        assert_eq!(UnixMs(1_999).secs(), 1);
        assert_eq!(UnixMs(-1).secs(), -1);
        assert_eq!(
            UnixMs(951_782_400_000).rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
