//! Plain-scalar typing exactly as go-yaml v3's `resolve.go` decides it when
//! decoding into `interface{}`: the tree's value types (and so the MAC and
//! the printed output) depend on which plain scalars count as numbers,
//! booleans, nulls or timestamps.

use crate::tree::Value;

/// What a scalar resolved to, before it becomes a tree [`Value`].
#[derive(Debug, PartialEq)]
pub enum Resolved {
    /// A string (any scalar no other rule claims).
    Str,
    /// `null`, `~`, empty.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// An integer above `i64::MAX` (Go's `uint64`), which the tree cannot hold.
    BigUint,
    /// A float.
    Float(f64),
    /// A timestamp, already in Go's RFC 3339 text form.
    Time(String),
}

impl Resolved {
    /// The tree value for `text` resolved as `self`; `None` for [`Resolved::BigUint`].
    pub fn into_value(self, text: &str) -> Option<Value> {
        Some(match self {
            Resolved::Str => Value::Str(text.to_string()),
            Resolved::Null => Value::Null,
            Resolved::Bool(b) => Value::Bool(b),
            Resolved::Int(i) => Value::Int(i),
            Resolved::BigUint => return None,
            Resolved::Float(f) => Value::Float(f),
            Resolved::Time(t) => Value::Time(t),
        })
    }
}

/// Resolves a plain, untagged scalar as go-yaml's `resolve("", s)` does.
pub fn resolve_plain(s: &str) -> Resolved {
    let Some(&first) = s.as_bytes().first() else {
        return Resolved::Null;
    };
    match first {
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => {
            resolve_word(s)
        }
        b'.' => resolve_word(s).or_else_dot(s),
        b'+' | b'-' | b'0'..=b'9' => resolve_word(s).or_else_number(s),
        _ => Resolved::Str,
    }
}

impl Resolved {
    fn or_else_dot(self, s: &str) -> Resolved {
        if self != Resolved::Str {
            return self;
        }
        parse_go_float(s).map_or(Resolved::Str, Resolved::Float)
    }

    fn or_else_number(self, s: &str) -> Resolved {
        if self != Resolved::Str {
            return self;
        }
        resolve_number(s)
    }
}

/// The fixed words of go-yaml's `resolveMap`.
fn resolve_word(s: &str) -> Resolved {
    match s {
        "true" | "True" | "TRUE" => Resolved::Bool(true),
        "false" | "False" | "FALSE" => Resolved::Bool(false),
        "~" | "null" | "Null" | "NULL" => Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Resolved::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Resolved::Float(f64::NEG_INFINITY),
        _ => Resolved::Str,
    }
}

/// The digit/sign branch: timestamp, then Go base-0 integer, then float.
fn resolve_number(s: &str) -> Resolved {
    if let Some(t) = super::time::parse_timestamp(s) {
        return Resolved::Time(t);
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    match parse_go_int(&plain) {
        Some(IntParse::Signed(i)) => return Resolved::Int(i),
        Some(IntParse::Unsigned) => return Resolved::BigUint,
        None => {}
    }
    if is_yaml_style_float(&plain) {
        if let Some(f) = parse_go_float(&plain) {
            return Resolved::Float(f);
        }
    }
    Resolved::Str
}

enum IntParse {
    Signed(i64),
    Unsigned,
}

/// Go's `strconv.ParseInt(s, 0, 64)`, falling back to `ParseUint` (which
/// takes no sign) for values above `i64::MAX`.
fn parse_go_int(s: &str) -> Option<IntParse> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let signed = s.starts_with(['-', '+']);
    let lower = body.get(..2).map(|p| p.to_ascii_lowercase());
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &body[2..]),
        Some("0o") => (8, &body[2..]),
        Some("0b") => (2, &body[2..]),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..]),
        _ => (10, body),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if magnitude <= i64::MAX as u64 + 1 {
            return Some(IntParse::Signed((magnitude as i64).wrapping_neg()));
        }
        return None;
    }
    if magnitude <= i64::MAX as u64 {
        Some(IntParse::Signed(magnitude as i64))
    } else if signed {
        None
    } else {
        Some(IntParse::Unsigned)
    }
}

/// go-yaml's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal text: out-of-range values
/// are errors there (so the scalar stays a string), and Go's word forms
/// (`inf`, `nan`) never reach here because callers only pass digit- or
/// dot-led text.
fn parse_go_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let ok = b
        .iter()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !ok || !b.iter().any(u8::is_ascii_digit) {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    (!f.is_infinite()).then_some(f)
}
