//! JSON writers matching the reference's two ways of printing a tree.
//!
//! The store builds JSON by hand (`encodeTree`/`encodeArray`, comments
//! dropped, scalars through `json.Marshal`) and reindents it with
//! `json.Indent`; [`Indented`] produces that result in one pass. The INI
//! store's `EmitValue` instead calls `json.Marshal` on the raw Go value,
//! which prints a `sops.TreeBranch` as a list of `{"Key":…,"Value":…}`
//! structs; [`marshal_compact`] reproduces that.

use crate::gofmt::{format_float, FloatFormat};
use crate::tree::{Entry, Value};

/// A value `json.Marshal` refuses: a NaN or infinite float. Carries the
/// nearest enclosing key, once known, so errors can name it.
#[derive(Debug, PartialEq)]
pub(super) struct NonFinite {
    pub(super) key: Option<String>,
}

type Result<T = ()> = std::result::Result<T, NonFinite>;

/// Attaches `key` to an error that does not name a key yet.
fn at_key<T>(result: Result<T>, key: &str) -> Result<T> {
    result.map_err(|e| NonFinite {
        key: e.key.or_else(|| Some(key.to_string())),
    })
}

/// The store's output: `encodeValue` followed by `json.Indent(out, "", indent)`.
pub(super) struct Indented<'a> {
    pub(super) out: Vec<u8>,
    indent: &'a [u8],
}

impl<'a> Indented<'a> {
    pub(super) fn new(indent: &'a [u8]) -> Self {
        Self::with_capacity(indent, 0)
    }

    /// A writer whose buffer has room for `capacity` bytes.
    pub(super) fn with_capacity(indent: &'a [u8], capacity: usize) -> Self {
        Indented {
            out: Vec::with_capacity(capacity),
            indent,
        }
    }

    /// Writes `value` whose first line is at nesting `depth`.
    pub(super) fn value(&mut self, value: &Value, depth: usize) -> Result {
        match value {
            Value::Map(map) => self.map(map, depth),
            Value::List(items) => self.list(items, depth),
            // `json.Marshal(sops.Comment{…})`: a struct with one field.
            Value::Comment(c) => {
                self.open(b'{', depth + 1);
                write_string(&mut self.out, "Value");
                self.out.extend_from_slice(b": ");
                write_string(&mut self.out, &c.text);
                self.close(b'}', depth);
                Ok(())
            }
            scalar => write_scalar(&mut self.out, scalar),
        }
    }

    /// An object of the map's pairs; comments are skipped.
    pub(super) fn map(&mut self, map: &[Entry], depth: usize) -> Result {
        if !map.iter().any(|e| matches!(e, Entry::Pair(..))) {
            self.out.extend_from_slice(b"{}");
            return Ok(());
        }
        self.out.push(b'{');
        self.pairs(map, depth, true)?;
        self.close(b'}', depth);
        Ok(())
    }

    /// The pairs of a run of an object's entries, each on its own line;
    /// `first` when no pair of the object came before.
    pub(super) fn pairs(&mut self, entries: &[Entry], depth: usize, mut first: bool) -> Result {
        for entry in entries {
            let Entry::Pair(key, value) = entry else {
                continue;
            };
            if !first {
                self.out.push(b',');
            }
            first = false;
            self.newline(depth + 1);
            write_string(&mut self.out, key);
            self.out.extend_from_slice(b": ");
            at_key(self.value(value, depth + 1), key)?;
        }
        Ok(())
    }

    /// Closes an object whose pairs were written by [`Indented::pairs`].
    pub(super) fn close_object(&mut self, depth: usize) {
        self.close(b'}', depth);
    }

    /// An array of the list's items; comments are skipped.
    fn list(&mut self, items: &[Value], depth: usize) -> Result {
        let mut values = items.iter().filter(|v| !matches!(v, Value::Comment(_)));
        let Some(first) = values.next() else {
            self.out.extend_from_slice(b"[]");
            return Ok(());
        };
        self.out.push(b'[');
        for (i, value) in std::iter::once(first).chain(values).enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.newline(depth + 1);
            self.value(value, depth + 1)?;
        }
        self.close(b']', depth);
        Ok(())
    }

    fn open(&mut self, bracket: u8, depth: usize) {
        self.out.push(bracket);
        self.newline(depth);
    }

    fn close(&mut self, bracket: u8, depth: usize) {
        self.newline(depth);
        self.out.push(bracket);
    }

    fn newline(&mut self, depth: usize) {
        self.out.push(b'\n');
        for _ in 0..depth {
            self.out.extend_from_slice(self.indent);
        }
    }
}

/// `json.Marshal(v)` of the Go value the reference holds for `value`.
pub(super) fn marshal_compact(out: &mut Vec<u8>, value: &Value) -> Result {
    match value {
        Value::Map(map) => {
            out.push(b'[');
            for (i, entry) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                marshal_item(out, entry)?;
            }
            out.push(b']');
            Ok(())
        }
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                marshal_compact(out, item)?;
            }
            out.push(b']');
            Ok(())
        }
        Value::Comment(c) => {
            marshal_comment(out, &c.text);
            Ok(())
        }
        scalar => write_scalar(out, scalar),
    }
}

/// A `sops.TreeItem` struct: `{"Key":…,"Value":…}`.
fn marshal_item(out: &mut Vec<u8>, entry: &Entry) -> Result {
    out.extend_from_slice(b"{\"Key\":");
    match entry {
        Entry::Pair(key, value) => {
            write_string(out, key);
            out.extend_from_slice(b",\"Value\":");
            at_key(marshal_compact(out, value), key)?;
        }
        Entry::Comment(c) => {
            marshal_comment(out, &c.text);
            out.extend_from_slice(b",\"Value\":null");
        }
    }
    out.push(b'}');
    Ok(())
}

/// A `sops.Comment` struct: `{"Value":"text"}`.
fn marshal_comment(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"{\"Value\":");
    write_string(out, text);
    out.push(b'}');
}

/// `json.Marshal` of a non-container value.
fn write_scalar(out: &mut Vec<u8>, value: &Value) -> Result {
    match value {
        Value::Str(s) | Value::Time(s) => write_string(out, s),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => write_float(out, *f)?,
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Bytes(b) => write_invalid_utf8_string(out, b),
        Value::Null => out.extend_from_slice(b"null"),
        Value::Map(_) | Value::List(_) | Value::Comment(_) => {
            marshal_compact(out, value)?;
        }
    }
    Ok(())
}

/// A Go string holding bytes that are not UTF-8 (`Value::Bytes`): Go's
/// encoder writes every invalid byte as the escape `\ufffd`.
fn write_invalid_utf8_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(valid) => (valid, 0),
            Err(e) => {
                let valid = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default();
                let bad = e.error_len().unwrap_or(rest.len() - e.valid_up_to());
                (valid, bad)
            }
        };
        write_escaped(out, valid);
        for _ in 0..bad {
            out.extend_from_slice(b"\\ufffd");
        }
        rest = &rest[valid.len() + bad..];
    }
    out.push(b'"');
}

/// A float as Go's JSON encoder prints it: `'f'` form, except `'e'` below
/// 1e-6 and from 1e21, with a one-digit negative exponent unpadded.
fn write_float(out: &mut Vec<u8>, f: f64) -> Result {
    if !f.is_finite() {
        return Err(NonFinite { key: None });
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let mut text = format_float(f, FloatFormat::Exponent);
        if let Some(pos) = text.find("e-0") {
            text.remove(pos + 2);
        }
        out.extend_from_slice(text.as_bytes());
    } else {
        out.extend_from_slice(format_float(f, FloatFormat::Decimal).as_bytes());
    }
    Ok(())
}

/// Bytes that may need escaping: controls, `"`, `\\`, `<`, `>`, `&`, and
/// 0xE2, the lead byte of U+2028 and U+2029. Without branches, so that a
/// check over a whole string becomes vector instructions.
fn is_special(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\') | (b == b'<') | (b == b'>') | (b == b'&') | (b == 0xe2)
}

/// A quoted string escaped as `json.Marshal` does (HTML-safe, U+2028/2029 escaped).
pub(super) fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// The inside of a JSON string, escaped as `json.Marshal` does.
fn write_escaped(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Most strings need no escape: checked whole, then copied whole.
    let plain = s.bytes().fold(true, |plain, b| plain & !is_special(b));
    if plain {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    let mut rest = s.as_bytes();
    while let Some(at) = rest.iter().position(|&b| is_special(b)) {
        out.extend_from_slice(&rest[..at]);
        let b = rest[at];
        let mut used = 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            // U+2028 and U+2029 are E2 80 A8 and E2 80 A9.
            0xe2 => match rest.get(at + 1..at + 3) {
                Some([0x80, last @ (0xa8 | 0xa9)]) => {
                    out.extend_from_slice(b"\\u202");
                    out.push(HEX[(last & 0x0f) as usize]);
                    used = 3;
                }
                _ => out.push(b),
            },
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0x0f) as usize]);
            }
        }
        rest = &rest[at + used..];
    }
    out.extend_from_slice(rest);
}
