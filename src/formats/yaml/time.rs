//! Timestamps as go-yaml v3's `parseTimestamp` accepts them, printed the way
//! Go's `time.Time.MarshalText` (RFC 3339 with nanoseconds) prints them,
//! because the tree keeps timestamps as that text.

use crate::timefmt::{days_in_month, Timestamp};

/// Parses `s` with go-yaml's timestamp layouts, returning Go's RFC3339Nano text.
pub fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let mut cur = Cursor { b, i: 0 };
    let stamp = cur.stamp()?;
    (cur.i == b.len()).then(|| stamp.rfc3339_nano())
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// Go's `getnum`: one or two digits.
    fn num12(&mut self) -> Option<u32> {
        let d1 = self.digit()?;
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                self.i += 1;
                Some(d1 * 10 + u32::from(c - b'0'))
            }
            _ => Some(d1),
        }
    }

    fn digit(&mut self) -> Option<u32> {
        let c = self.peek().filter(u8::is_ascii_digit)?;
        self.i += 1;
        Some(u32::from(c - b'0'))
    }

    fn stamp(&mut self) -> Option<Timestamp> {
        let mut year = 0;
        for _ in 0..4 {
            year = year * 10 + self.digit()?;
        }
        self.eat(b'-')?;
        let month = self.num12().filter(|m| (1..=12).contains(m))?;
        self.eat(b'-')?;
        let day = self.num12()?;
        if day < 1 || day > days_in_month(year as i32, month) {
            return None;
        }
        let mut stamp = Timestamp {
            date: (year as i32, month, day),
            time: (0, 0, 0),
            nanos: 0,
            offset: 0,
        };
        let with_zone = match self.peek() {
            None => return Some(stamp),
            Some(b'T' | b't') => true,
            Some(b' ') => false,
            Some(_) => return None,
        };
        self.i += 1;
        self.clock(&mut stamp)?;
        if with_zone {
            stamp.offset = self.zone()?.unwrap_or(0) * 60;
        }
        Some(stamp)
    }

    fn clock(&mut self, stamp: &mut Timestamp) -> Option<()> {
        let hour = self.num12().filter(|h| *h < 24)?;
        self.eat(b':')?;
        let minute = self.num12().filter(|m| *m < 60)?;
        self.eat(b':')?;
        let second = self.num12().filter(|s| *s < 60)?;
        stamp.time = (hour, minute, second);
        let frac_follows = matches!(self.peek(), Some(b'.' | b','))
            && self.b.get(self.i + 1).is_some_and(u8::is_ascii_digit);
        if frac_follows {
            self.i += 1;
            let mut nanos = 0u32;
            let mut scale = 100_000_000u32;
            while let Some(d) = self.digit() {
                nanos += d * scale;
                scale /= 10;
            }
            stamp.nanos = nanos;
        }
        Some(())
    }

    /// `Z` or `±hh:mm`; `Some(None)` means UTC.
    fn zone(&mut self) -> Option<Option<i32>> {
        let sign = match self.peek()? {
            b'Z' => {
                self.i += 1;
                return Some(None);
            }
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.i += 1;
        let hh = self.two_digits().filter(|h| *h <= 24)?;
        self.eat(b':')?;
        let mm = self.two_digits().filter(|m| *m <= 60)?;
        let offset = sign * (hh * 60 + mm) as i32;
        Some((offset != 0).then_some(offset))
    }

    fn two_digits(&mut self) -> Option<u32> {
        Some(self.digit()? * 10 + self.digit()?)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp as p;

    #[test]
    fn layouts() {
        assert_eq!(p("2024-01-02").as_deref(), Some("2024-01-02T00:00:00Z"));
        assert_eq!(p("2024-1-2").as_deref(), Some("2024-01-02T00:00:00Z"));
        assert_eq!(
            p("2001-12-14t21:59:43.10-05:00").as_deref(),
            Some("2001-12-14T21:59:43.1-05:00")
        );
        assert_eq!(
            p("2001-12-14 21:59:43.10").as_deref(),
            Some("2001-12-14T21:59:43.1Z")
        );
        assert_eq!(
            p("2024-01-02T03:04:05+00:00").as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(p("2024-02-30"), None);
        assert_eq!(p("2024-01-02 03:04:05Z"), None);
        assert_eq!(p("2024-01-02T03:04:05"), None);
        assert_eq!(p("20240-01-02"), None);
    }
}
