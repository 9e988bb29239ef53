//! A fast reader for the plain shape most sops files have: block mappings
//! and sequences of one-line scalars, indented with spaces, without
//! comments, blank lines, anchors, tags, flow collections, block scalars or
//! escapes.
//!
//! It reads the longest run of top-level entries in that shape from the
//! start of a text and says where the run ends; the full loader reads the
//! rest (see [`super::split`], which joins the two only where a cut between
//! them cannot change the tree). Within the shape every line means one
//! thing, so the tree it builds is the full loader's: scalars are typed by
//! the same [`resolve_plain`], keys must resolve to strings and be unique,
//! and anything it is unsure of (a `#`, a tab, a trailing space, a `: `
//! inside a value, a line deeper than it should be) ends the run instead.

use super::resolve::{resolve_plain, Resolved};
use super::scan::is_indicator;
use crate::tree::{Document, Entry, Map, Value};

/// Deepest nesting followed; deeper entries are left to the full loader.
const MAX_DEPTH: usize = 64;

/// Longest key read: go-yaml refuses simple keys over 1024 characters.
const MAX_KEY: usize = 1000;

/// The top-level entries at the start of `text` that are in the plain
/// shape, as a one-branch document, and the offset where they end: the
/// text's length when all of it was read, else the start of the first
/// top-level entry that was not.
pub(super) fn prefix(text: &str) -> (Document, usize) {
    let mut doc = Document::new(vec![Map::new()]);
    let root = &mut doc.branches[0];
    let mut lines = Lines::new(text);
    let mut keys = Keys::default();
    loop {
        if lines.done() {
            return (doc, text.len());
        }
        let start = lines.start;
        let before = root.len();
        if lines.indent != 0 || entry(&mut lines, 0, root, &mut keys, 0).is_none() {
            // What the entry left behind is plaintext: wiped as it goes.
            drop(Document::new(vec![root.split_off(before)]));
            return (doc, start);
        }
    }
}

/// The line being read: where it starts and ends (before its `\n`) and how
/// many spaces indent it.
struct Lines<'a> {
    text: &'a str,
    start: usize,
    end: usize,
    indent: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        let mut lines = Lines {
            text,
            start: 0,
            end: 0,
            indent: 0,
        };
        lines.read_from(0);
        lines
    }

    fn read_from(&mut self, start: usize) {
        let bytes = &self.text.as_bytes()[start..];
        self.start = start;
        self.end = memchr::memchr(b'\n', bytes).map_or(self.text.len(), |n| start + n);
        self.indent = bytes.iter().take_while(|&&b| b == b' ').count();
    }

    fn done(&self) -> bool {
        self.start >= self.text.len()
    }

    fn advance(&mut self) {
        self.read_from((self.end + 1).min(self.text.len()));
    }

    /// The line after its indentation.
    fn content(&self) -> &'a str {
        &self.text[(self.start + self.indent).min(self.end)..self.end]
    }
}

/// The keys of one mapping, to refuse duplicates as the full loader does:
/// compared one by one while few, hashed from then on.
#[derive(Default)]
struct Keys<'a> {
    few: Vec<&'a str>,
    many: foldhash::HashSet<&'a str>,
}

impl<'a> Keys<'a> {
    const FEW: usize = 16;

    /// False when `key` was seen before.
    fn insert(&mut self, key: &'a str) -> bool {
        if self.few.len() < Self::FEW {
            if self.few.contains(&key) {
                return false;
            }
            self.few.push(key);
            return true;
        }
        if self.many.is_empty() {
            self.many.extend(self.few.iter().copied());
        }
        self.many.insert(key)
    }
}

/// One `key: value` or `key:` entry starting at the current line, pushed
/// onto `map` (even when its value fails half-way, so that what was read
/// is wiped with the map).
fn entry<'a>(
    lines: &mut Lines<'a>,
    indent: usize,
    map: &mut Map,
    keys: &mut Keys<'a>,
    depth: usize,
) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let content = lines.content();
    let key_len = key_length(content)?;
    let (key, rest) = content.split_at(key_len);
    let rest = rest.strip_prefix(':')?;
    if resolve_plain(key) != Resolved::Str || !keys.insert(key) {
        return None;
    }
    if !rest.is_empty() {
        let value = rest.strip_prefix(' ')?.trim_start_matches(' ');
        map.push(Entry::Pair(key.to_string(), scalar(value)?));
        lines.advance();
        return following(lines, indent);
    }
    lines.advance();
    if lines.done() || lines.indent <= indent {
        return None;
    }
    let child = lines.indent;
    let nested = if lines.content().starts_with("- ") {
        Value::List(Vec::new())
    } else {
        Value::Map(Map::new())
    };
    map.push(Entry::Pair(key.to_string(), nested));
    match map.last_mut() {
        Some(Entry::Pair(_, Value::List(list))) => sequence(lines, child, list, depth + 1)?,
        Some(Entry::Pair(_, Value::Map(inner))) => mapping(lines, child, inner, depth + 1)?,
        _ => return None,
    }
    following(lines, indent)
}

/// After an entry or item at `indent`: the next line must not be deeper
/// (it would continue a scalar, or be an error).
fn following(lines: &Lines, indent: usize) -> Option<()> {
    (lines.done() || lines.indent <= indent).then_some(())
}

/// The entries of a block mapping whose lines are indented by `indent`.
fn mapping<'a>(lines: &mut Lines<'a>, indent: usize, map: &mut Map, depth: usize) -> Option<()> {
    let mut keys = Keys::default();
    loop {
        entry(lines, indent, map, &mut keys, depth)?;
        if lines.done() || lines.indent < indent {
            return Some(());
        }
    }
}

/// The items of a block sequence whose `- ` are indented by `indent`.
fn sequence(lines: &mut Lines, indent: usize, list: &mut Vec<Value>, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    loop {
        let item = lines.content().strip_prefix("- ")?.trim_start_matches(' ');
        list.push(scalar(item)?);
        lines.advance();
        following(lines, indent)?;
        if lines.done() || lines.indent < indent {
            return Some(());
        }
    }
}

/// How long the plain key at the start of `content` is: it starts with a
/// letter, digit or `_`, and goes on with those and `-`, `.` and `/`.
fn key_length(content: &str) -> Option<usize> {
    let bytes = content.as_bytes();
    let first = *bytes.first()?;
    if !(first.is_ascii_alphanumeric() || first == b'_') {
        return None;
    }
    let len = bytes
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
        .count();
    (len <= MAX_KEY).then_some(len)
}

/// A one-line scalar: plain, or quoted without escapes or inner quotes.
fn scalar(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    let (&first, &last) = (bytes.first()?, bytes.last()?);
    if last == b' ' || memchr::memchr3(b'#', b'\t', b'\r', bytes).is_some() {
        return None;
    }
    match first {
        b'"' | b'\'' => {
            let inner = bytes.get(1..bytes.len() - 1).filter(|_| last == first)?;
            let escaped = first == b'"' && inner.contains(&b'\\');
            (!inner.contains(&first) && !escaped)
                .then(|| Value::Str(text[1..text.len() - 1].to_string()))
        }
        _ => {
            let dash = first == b'-' && bytes.get(1).is_some_and(|&b| b != b' ');
            if is_indicator(first) && !dash {
                return None;
            }
            let ends_key = |at: usize| bytes.get(at + 1).is_none_or(|&b| b == b' ');
            if memchr::memchr_iter(b':', bytes).any(ends_key) {
                return None;
            }
            resolve_plain(text).into_value(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::Loader;
    use super::*;

    /// Reads `text` with the fast reader and checks that what it read is
    /// what the full loader reads from the same lines.
    fn check(text: &str) -> usize {
        let (doc, end) = prefix(text);
        if end > 0 {
            let whole = Loader::new(&text[..end]).documents().unwrap();
            assert_eq!(whole, doc.branches, "{text:?} up to {end}");
        } else {
            assert!(doc.branches[0].is_empty());
        }
        end
    }

    #[test]
    fn reads_the_plain_shape_whole() {
        for text in [
            "a: 1\nb: x\n",
            "a: 1\nb: x",
            "a:\n    b: ENC[AES256_GCM,data:x/y+=,iv:z,tag:w,type:str]\n    c: -1\nd: 2\n",
            "a:\n  - x\n  - 'y'\n  - \"z\"\n  - -x\nb:\n  c:\n    d: 2024-01-02\n    e: 0x10\n",
            "a: ~\nb: null\nc: 1e6\nd: .inf\ne: 'it'\nf: \"\"\ng: ''\nh: a b c\ni: a:b\n",
            "a_b-c.d/e: x [y] {z}, w\nb: ---\n",
            "a:   spaced\nb: \"#\"\n",
        ] {
            // `b: "#"` is in YAML's shape but not the reader's: it stops there.
            let end = check(text);
            if !text.contains('#') {
                assert_eq!(end, text.len(), "{text:?}");
            }
        }
    }

    #[test]
    fn stops_before_what_it_does_not_read() {
        for (text, stop) in [
            ("a: 1\n# c\nb: 2\n", "# c"),
            ("a: 1\nb: 2 # c\n", "b: 2"),
            ("a: 1\n\nb: 2\n", "\nb"),
            ("a: 1\nb: |\n  x\n", "b: |"),
            ("a: 1\nb: &x 1\n", "b: &x"),
            ("a: 1\nb: [1, 2]\n", "b: ["),
            ("a: 1\nb: x\n  continued\n", "b: x"),
            ("a: 1\nb:\n  c: 1\n    d: 2\n", "b:\n"),
            ("a: 1\nb:\n  c: 1\n d: 2\n", "b:\n"),
            ("a: 1\nb:\n- x\n", "b:\n"),
            ("a: 1\nb:\n  - x\n  c: 1\n", "b:\n"),
            ("a: 1\nb:\n  - x: 1\n", "b:\n"),
            ("a: 1\nb:\n  - - x\n", "b:\n"),
            ("a: 1\nb: x: y\n", "b: x"),
            ("a: 1\nb: x:\n", "b: x"),
            ("a: 1\nb: x \n", "b: x"),
            ("a: 1\nb: \"x\\n\"\n", "b: \""),
            ("a: 1\nb: 'it''s'\n", "b: '"),
            ("a: 1\nb: \"x\" y\n", "b: \""),
            ("a: 1\nb:\tx\n", "b:"),
            ("a: 1\r\nb: 2\r\n", "a: 1"),
            ("a: 1\na: 2\n", "a: 2"),
            ("a: 1\nb:\n  c: 1\n  c: 2\n", "b:\n"),
            ("a: 1\ntrue: 2\n", "true"),
            ("a: 1\n2001-01-01: 2\n", "2001"),
            ("a: 1\nb: 18446744073709551615\n", "b: 1"),
            ("a: 1\nb:\n", "b:"),
            ("a: 1\nb:\nc: 2\n", "b:"),
            ("a: 1\n---\nb: 2\n", "---"),
            ("a: 1\nb: - x\n", "b: -"),
            ("a: 1\nb: ? x\n", "b: ?"),
            ("a: 1\n\"b\": 2\n", "\"b\""),
            ("a: 1\nb c: 2\n", "b c"),
        ] {
            let end = check(text);
            let at = text.find(stop).unwrap();
            assert_eq!(end, at, "{text:?} should stop at {stop:?}");
        }
    }

    /// Random texts built from lines in and near the shape: whatever the
    /// fast reader and the full loader give together must be what the full
    /// loader gives alone (the split loader may refuse, never differ).
    #[test]
    fn agrees_with_the_loader_on_random_texts() {
        const KEYS: &[&str] = &["a", "b", "k_1", "a.b", "true", "x y", "\"q\"", "2001-01-01"];
        const VALUES: &[&str] = &[
            "1",
            "x",
            "ENC[AES256_GCM,data:a/b+=,iv:c,tag:d,type:str]",
            "'s'",
            "\"d\"",
            "\"e\\n\"",
            "- x",
            "x: y",
            "x #c",
            "|",
            "[1, 2]",
            "&a 1",
            "*a",
            "~",
            "-1",
            "0x10",
            "18446744073709551615",
            "x:",
            "",
            " ",
            "a b",
            "it's",
            "'it''s'",
            "-",
            "2001-01-01",
        ];
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut agreed = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..1 + next(10) {
                let indent = " ".repeat([0, 0, 0, 1, 2, 2, 4, 4, 6][next(9)]);
                let line = match next(12) {
                    0..=5 => format!("{}: {}", KEYS[next(KEYS.len())], VALUES[next(VALUES.len())]),
                    6..=8 => format!("{}:", KEYS[next(KEYS.len())]),
                    9 => format!("- {}", VALUES[next(VALUES.len())]),
                    10 => "# c".to_string(),
                    _ => ["", "---", "a: 1\r"][next(3)].to_string(),
                };
                text.push_str(&indent);
                text.push_str(&line);
                text.push('\n');
            }
            let whole = Loader::new(&text).documents();
            for parts in [1, 2] {
                if let Some(docs) = super::super::split::load(&text, parts) {
                    assert_eq!(whole.as_ref().ok(), Some(&docs), "{text:?} in {parts}");
                    agreed += 1;
                }
            }
        }
        assert!(agreed > 2_000, "{agreed}");
    }

    #[test]
    fn deep_nesting_is_left_to_the_loader() {
        let mut text = String::new();
        for depth in 0..=MAX_DEPTH + 1 {
            text.push_str(&" ".repeat(depth));
            text.push_str("a:\n");
        }
        text.push_str(&" ".repeat(MAX_DEPTH + 2));
        text.push_str("b: 1\n");
        assert_eq!(check(&text), 0);
    }

    #[test]
    fn many_keys_are_checked_for_duplicates() {
        let mut text: String = (0..100).map(|i| format!("k{i}: {i}\n")).collect();
        assert_eq!(check(&text), text.len());
        text.push_str("k42: again\n");
        assert_eq!(check(&text), text.len() - "k42: again\n".len());
    }
}
