//! RFC 3339 timestamps as Go's `time` package reads and prints them.
//!
//! The MAC's additional data is `lastmodified` re-printed with Go's
//! `time.RFC3339` layout, so `2024-01-02T03:04:05.5+00:00` must become
//! `2024-01-02T03:04:05Z` exactly as the reference prints it.

/// A parsed timestamp: civil date and time in its own offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Year, month (1–12), day (1–31).
    pub date: (i32, u32, u32),
    /// Hour, minute, second.
    pub time: (u32, u32, u32),
    /// Nanoseconds within the second.
    pub nanos: u32,
    /// Offset from UTC in seconds.
    pub offset: i32,
}

fn number(s: &str, len: usize) -> Option<u32> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days in a month of the proleptic Gregorian calendar.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as Go's
/// `time.Parse(time.RFC3339, …)` does.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = number(s.get(0..4)?, 4)? as i32;
    let month = number(s.get(5..7)?, 2)?;
    let day = number(s.get(8..10)?, 2)?;
    let hour = number(s.get(11..13)?, 2)?;
    let minute = number(s.get(14..16)?, 2)?;
    let second = number(s.get(17..19)?, 2)?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut nanos = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let padded = format!("{:0<9}", &fraction[..digits]);
        nanos = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let h = number(&rest[1..3], 2)?;
            let m = number(&rest[4..6], 2)?;
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60) as i32
        }
    };
    Some(Timestamp {
        date: (year, month, day),
        time: (hour, minute, second),
        nanos,
        offset,
    })
}

/// True when `s` parses as RFC 3339.
pub fn is_rfc3339(s: &str) -> bool {
    parse_rfc3339(s).is_some()
}

fn push_offset(out: &mut String, offset: i32) {
    if offset == 0 {
        out.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60));
    }
}

impl Timestamp {
    /// The UTC time `seconds` after the Unix epoch.
    pub fn from_unix(seconds: i64) -> Timestamp {
        let days = seconds.div_euclid(86_400);
        let secs = seconds.rem_euclid(86_400) as u32;
        // Howard Hinnant's days-to-civil algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Timestamp {
            date: (year, month, day),
            time: (secs / 3600, secs / 60 % 60, secs % 60),
            nanos: 0,
            offset: 0,
        }
    }

    /// Now, in UTC, to the second (what sops writes as `lastmodified`).
    pub fn now() -> Timestamp {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Timestamp::from_unix(seconds)
    }

    /// Go's `t.Format(time.RFC3339)`: whole seconds.
    pub fn rfc3339(&self) -> String {
        let (y, mo, d) = self.date;
        let (h, mi, s) = self.time;
        let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
        push_offset(&mut out, self.offset);
        out
    }

    /// Go's `t.Format(time.RFC3339Nano)`: fraction without trailing zeros.
    pub fn rfc3339_nano(&self) -> String {
        let (y, mo, d) = self.date;
        let (h, mi, s) = self.time;
        let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
        if self.nanos != 0 {
            let fraction = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(fraction.trim_end_matches('0'));
        }
        push_offset(&mut out, self.offset);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reprints_like_go() {
        let t = parse_rfc3339("2024-01-02T03:04:05.500+00:00").unwrap();
        assert_eq!(t.rfc3339(), "2024-01-02T03:04:05Z");
        assert_eq!(t.rfc3339_nano(), "2024-01-02T03:04:05.5Z");
        let t = parse_rfc3339("2024-02-29T23:59:59-05:30").unwrap();
        assert_eq!(t.rfc3339(), "2024-02-29T23:59:59-05:30");
        assert!(parse_rfc3339("2023-02-29T00:00:00Z").is_none());
        assert!(parse_rfc3339("2024-01-02 03:04:05Z").is_none());
        assert!(parse_rfc3339("2024-01-02T03:04:05").is_none());
    }

    #[test]
    fn unix_seconds_become_civil_utc_time() {
        assert_eq!(Timestamp::from_unix(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_unix(1_709_210_096).rfc3339(),
            "2024-02-29T12:34:56Z"
        );
        assert_eq!(Timestamp::from_unix(-1).rfc3339(), "1969-12-31T23:59:59Z");
    }
}
