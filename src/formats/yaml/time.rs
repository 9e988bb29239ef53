//! Timestamps as go-yaml v3's `parseTimestamp` accepts them, printed the way
//! Go's `time.Time.MarshalText` (RFC 3339 with nanoseconds) prints them,
//! because the tree keeps timestamps as that text.

/// A parsed timestamp's fields.
struct Stamp {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// Offset east of UTC in minutes; `None` for UTC.
    offset: Option<i32>,
}

/// Parses `s` with go-yaml's timestamp layouts, returning Go's RFC3339Nano text.
pub fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let mut cur = Cursor { b, i: 0 };
    let stamp = cur.stamp()?;
    (cur.i == b.len()).then(|| format_stamp(&stamp))
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

    fn stamp(&mut self) -> Option<Stamp> {
        let mut year = 0;
        for _ in 0..4 {
            year = year * 10 + self.digit()?;
        }
        self.eat(b'-')?;
        let month = self.num12().filter(|m| (1..=12).contains(m))?;
        self.eat(b'-')?;
        let day = self.num12()?;
        if day < 1 || day > days_in_month(year, month) {
            return None;
        }
        let mut stamp = Stamp {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
            nanos: 0,
            offset: None,
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
            stamp.offset = self.zone()?;
        }
        Some(stamp)
    }

    fn clock(&mut self, stamp: &mut Stamp) -> Option<()> {
        stamp.hour = self.num12().filter(|h| *h < 24)?;
        self.eat(b':')?;
        stamp.minute = self.num12().filter(|m| *m < 60)?;
        self.eat(b':')?;
        stamp.second = self.num12().filter(|s| *s < 60)?;
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

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's RFC3339Nano layout: trailing fractional zeros dropped, `Z` for UTC.
fn format_stamp(s: &Stamp) -> String {
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        s.year, s.month, s.day, s.hour, s.minute, s.second
    );
    if s.nanos > 0 {
        let frac = format!("{:09}", s.nanos);
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    match s.offset {
        None => out.push('Z'),
        Some(m) => {
            let sign = if m < 0 { '-' } else { '+' };
            let m = m.unsigned_abs();
            out.push_str(&format!("{sign}{:02}:{:02}", m / 60, m % 60));
        }
    }
    out
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
