//! The writing half of go-ini as sops drives it: `encodeTree` fills a fresh
//! `ini.File` from the tree, then `File.WriteTo` prints it with go-ini's
//! defaults (`PrettyFormat`: `=` aligned per section; `PrettySection`: a
//! blank line between sections). Values are bytes, as Go strings are: a
//! `str` value that is not UTF-8 is written as it is.

use std::borrow::Cow;
use std::collections::HashMap;

use super::parse::DEFAULT_SECTION;
use crate::formats::dotenv::val_to_string;
use crate::tree::{Entry, Map, Value};

/// A section as `encodeTree` builds it.
struct Section<'a> {
    name: &'a str,
    comment: &'a str,
    keys: Vec<Key<'a>>,
}

struct Key<'a> {
    name: &'a str,
    value: Cow<'a, [u8]>,
    comment: &'a str,
}

/// Why a tree cannot be printed; names the offending section or key.
pub(super) enum WriteError {
    EmptySectionName,
    NotASection(String),
    EmptyKeyName(String),
}

/// Prints every branch's sections into one file, as the reference does.
pub(super) fn write(branches: &[Map]) -> Result<Vec<u8>, WriteError> {
    let mut sections = Vec::new();
    for entry in branches.iter().flatten() {
        if let Entry::Pair(name, value) = entry {
            sections.push(section(name, value)?);
        }
    }
    let mut out = Vec::new();
    let last = sections.len().saturating_sub(1);
    for (i, section) in sections.iter().enumerate() {
        push_comment(&mut out, section.comment, false);
        let headless = i == 0 && section.name.eq_ignore_ascii_case(DEFAULT_SECTION);
        if !headless {
            out.push(b'[');
            out.extend_from_slice(section.name.as_bytes());
            out.extend_from_slice(b"]\n");
        } else if section.keys.is_empty() {
            continue;
        }
        push_keys(&mut out, &section.keys);
        if i != last {
            out.push(b'\n');
        }
    }
    Ok(out)
}

/// One top-level entry as a section: a leading comment is the section's,
/// later comments belong to the key before them (the last one wins).
fn section<'a>(name: &'a str, value: &'a Value) -> Result<Section<'a>, WriteError> {
    if name.is_empty() {
        return Err(WriteError::EmptySectionName);
    }
    let Value::Map(items) = value else {
        return Err(WriteError::NotASection(name.to_string()));
    };
    let mut section = Section {
        name,
        comment: "",
        keys: Vec::new(),
    };
    let mut items = items.as_slice();
    if let [Entry::Comment(c), rest @ ..] = items {
        section.comment = &c.text;
        items = rest;
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut last = None;
    for item in items {
        match item {
            Entry::Comment(c) => {
                if let Some(at) = last {
                    let key: &mut Key = &mut section.keys[at];
                    key.comment = &c.text;
                }
            }
            Entry::Pair(key, value) => {
                if key.is_empty() {
                    return Err(WriteError::EmptyKeyName(name.to_string()));
                }
                last = Some(set_key(&mut section.keys, &mut index, key, value));
            }
        }
    }
    Ok(section)
}

/// go-ini's `NewKey`: a repeated name overwrites the first one's value.
fn set_key<'a>(
    keys: &mut Vec<Key<'a>>,
    index: &mut HashMap<&'a str, usize>,
    name: &'a str,
    value: &'a Value,
) -> usize {
    let value = match value {
        Value::Str(s) => Cow::Borrowed(s.as_bytes()),
        Value::Bytes(b) => Cow::Borrowed(b.as_slice()),
        other => Cow::Owned(val_to_string(other).into_bytes()),
    };
    match index.get(name) {
        Some(&at) => {
            keys[at].value = value;
            at
        }
        None => {
            index.insert(name, keys.len());
            keys.push(Key {
                name,
                value,
                comment: "",
            });
            keys.len() - 1
        }
    }
}

/// A section's keys, `=` aligned on the longest (quoted) name.
fn push_keys(out: &mut Vec<u8>, keys: &[Key]) {
    let width = keys
        .iter()
        .map(|k| quoted_key_len(k.name))
        .max()
        .unwrap_or(0);
    for key in keys {
        push_comment(out, key.comment, true);
        push_key(out, key.name);
        out.extend(std::iter::repeat_n(b' ', width - quoted_key_len(key.name)));
        out.extend_from_slice(b" = ");
        push_value(out, &key.value);
        out.push(b'\n');
    }
}

/// Comment lines: each gets a `; ` marker unless it has one; key comments
/// (`trim_plain`) also trim unmarked lines.
fn push_comment(out: &mut Vec<u8>, comment: &str, trim_plain: bool) {
    if comment.is_empty() {
        return;
    }
    for line in comment.split('\n') {
        match line.chars().next() {
            Some(marker @ ('#' | ';')) => {
                out.push(marker as u8);
                out.push(b' ');
                out.extend_from_slice(line[1..].trim().as_bytes());
            }
            _ => {
                out.extend_from_slice(b"; ");
                out.extend_from_slice(if trim_plain { line.trim() } else { line }.as_bytes());
            }
        }
        out.push(b'\n');
    }
}

/// True if any byte of `s` is one of `set` (all ASCII); one `memchr`
/// scan per byte of `set`, which beats a single byte-by-byte pass.
fn has_any(s: &[u8], set: &[u8]) -> bool {
    set.iter().any(|b| s.contains(b))
}

/// The quote go-ini puts around a key name: back quotes if it holds `"` or
/// a delimiter, triple quotes if it holds a back quote.
fn key_quote(name: &str) -> &'static str {
    if has_any(name.as_bytes(), b"\"=:") {
        "`"
    } else if has_any(name.as_bytes(), b"`") {
        r#"""""#
    } else {
        ""
    }
}

fn quoted_key_len(name: &str) -> usize {
    name.len() + 2 * key_quote(name).len()
}

fn push_key(out: &mut Vec<u8>, name: &str) {
    let quote = key_quote(name).as_bytes();
    out.extend_from_slice(quote);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(quote);
}

/// A value as go-ini writes it: triple-quoted across lines or around back
/// quotes, back-quoted around comment markers, double-quoted to keep
/// surrounding whitespace.
fn push_value(out: &mut Vec<u8>, value: &[u8]) {
    let quote: &[u8] = if has_any(value, b"\n`") {
        br#"""""#
    } else if has_any(value, b"#;") {
        b"`"
    } else if edge_is_space(value) {
        b"\""
    } else {
        b""
    };
    out.extend_from_slice(quote);
    out.extend_from_slice(value);
    out.extend_from_slice(quote);
}

/// Whether the first or last character is white space (Go's
/// `unicode.IsSpace` on runes; bytes that are not UTF-8 are not space).
fn edge_is_space(value: &[u8]) -> bool {
    let first = value
        .utf8_chunks()
        .next()
        .and_then(|c| c.valid().chars().next());
    let last = value
        .utf8_chunks()
        .last()
        .filter(|c| c.invalid().is_empty())
        .and_then(|c| c.valid().chars().next_back());
    first.is_some_and(char::is_whitespace) || last.is_some_and(char::is_whitespace)
}
