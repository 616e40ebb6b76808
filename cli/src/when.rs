//! Points in time on the command line: `now`, an age (`90m`, `24h`, `7d`), a date
//! (`2026-12-04`), an hour (`2026-12-04T13`) or an RFC 3339 time, all UTC.

use sluice_core::schema::{format_micros, parse_timestamp};

const MINUTE: i64 = 60_000_000;

/// Resolves `arg` to epoch microseconds, ages counted back from `now`.
pub fn resolve(arg: &str, now: i64) -> Result<i64, String> {
    let a = arg.trim();
    if a == "now" {
        return Ok(now);
    }
    if let Some(unit) = a.chars().last().filter(|c| matches!(c, 'm' | 'h' | 'd')) {
        if let Ok(n) = a[..a.len() - 1].parse::<i64>() {
            let per = match unit {
                'm' => MINUTE,
                'h' => 60 * MINUTE,
                _ => 24 * 60 * MINUTE,
            };
            return n
                .checked_mul(per)
                .and_then(|d| now.checked_sub(d))
                .filter(|_| n >= 0)
                .ok_or_else(|| format!("{arg:?}: the age is out of range"));
        }
    }
    let padded = match a.len() {
        10 => format!("{a}T00:00:00"),
        13 => format!("{a}:00:00"),
        _ => a.to_string(),
    };
    parse_timestamp(&padded).map_err(|_| {
        format!(
            "{arg:?} is not a time: use now, an age (90m, 24h, 7d), 2026-12-04, 2026-12-04T13 or an RFC 3339 time"
        )
    })
}

/// A clap value parser: `arg` if it is a time [`resolve`] understands (so a malformed time is a
/// usage error, exit status 2).
pub fn checked(arg: &str) -> Result<String, String> {
    resolve(arg, sluice_core::telemetry::now_micros()).map(|_| arg.to_string())
}

/// A closed range of time, epoch microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: i64,
    pub to: i64,
}

impl Span {
    /// The span of two arguments, refusing one that ends before it starts.
    pub fn parse(from: &str, to: &str, now: i64) -> Result<Span, String> {
        let span = Span {
            from: resolve(from, now)?,
            to: resolve(to, now)?,
        };
        if span.to < span.from {
            return Err(format!(
                "--to {} is before --from {}",
                format_micros(span.to),
                format_micros(span.from)
            ));
        }
        Ok(span)
    }

    /// Whether the hour `[start, start + 1 h)` overlaps the span.
    pub fn has_hour(&self, start: i64) -> bool {
        start <= self.to && start + 60 * MINUTE > self.from
    }

    /// Whether the instant is in the span.
    pub fn has(&self, t: i64) -> bool {
        (self.from..=self.to).contains(&t)
    }

    /// The UTC dates (`YYYY-MM-DD`) the span touches, oldest first.
    pub fn days(&self) -> Vec<String> {
        let day = 24 * 60 * MINUTE;
        let first = self.from.div_euclid(day);
        let last = self.to.div_euclid(day);
        (first..=last)
            .map(|d| format_micros(d * day)[..10].to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_806_400_000_000; // 2025-12-04T00:00:00Z

    #[test]
    fn ages_dates_hours_and_times() {
        assert_eq!(resolve("now", NOW), Ok(NOW));
        assert_eq!(resolve("90m", NOW), Ok(NOW - 90 * MINUTE));
        assert_eq!(resolve("24h", NOW), Ok(NOW - 24 * 60 * MINUTE));
        assert_eq!(resolve("7d", NOW), Ok(NOW - 7 * 24 * 60 * MINUTE));
        assert_eq!(resolve("2025-12-04", NOW), Ok(NOW));
        assert_eq!(resolve("2025-12-04T01", NOW), Ok(NOW + 60 * MINUTE));
        assert_eq!(resolve("2025-12-04T00:30:00Z", NOW), Ok(NOW + 30 * MINUTE));
        for bad in ["yesterday", "-1h", "5x", "2025-13-01", "99999999999999999d"] {
            assert!(resolve(bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn spans_know_their_hours_and_days() {
        let s = Span::parse("90m", "now", NOW).expect("span");
        assert!(s.has_hour(NOW - 2 * 60 * MINUTE));
        assert!(!s.has_hour(NOW - 3 * 60 * MINUTE));
        assert!(s.has_hour(NOW) && !s.has_hour(NOW + 60 * MINUTE));
        assert_eq!(s.days(), vec!["2025-12-03", "2025-12-04"]);
        assert!(s.has(NOW) && !s.has(NOW + 1));
        assert!(Span::parse("now", "1h", NOW).is_err());
    }
}
