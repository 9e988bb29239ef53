//! The ordered document tree every format parses into and emits from.
//!
//! It mirrors the reference's `sops.TreeBranch` model exactly, because the
//! ciphertext of a file depends on it: map keys on the path form each value's
//! additional authenticated data, comments are items in the same ordered lists
//! as values, and the MAC hashes leaves in document order. Formats turn bytes
//! into a [`Document`] and back; nothing else in rsops knows about syntax.
//!
//! A decrypted tree is plaintext, so its `Debug` output shows only its shape
//! (keys, kinds, lengths), never a value or a comment: a `{:?}` in a log line
//! or a panic message must not leak a secret.

use std::fmt;

use zeroize::Zeroize;

/// A comment line, without its leading marker (`#` or `;`).
#[derive(Clone, PartialEq)]
pub struct Comment {
    /// The text after the marker, verbatim (a leading space is kept).
    pub text: String,
    /// True when the comment followed a value on the same line (YAML only).
    pub inline: bool,
}

impl Comment {
    /// A comment on its own line.
    pub fn new(text: impl Into<String>) -> Self {
        Comment {
            text: text.into(),
            inline: false,
        }
    }
}

/// One item of a map: a key with its value, or a comment between entries.
#[derive(Clone, PartialEq)]
pub enum Entry {
    /// `key: value`.
    Pair(String, Value),
    /// A comment line between entries.
    Comment(Comment),
}

/// An ordered map. Keys are kept in input order, and comments sit between entries.
pub type Map = Vec<Entry>;

/// A node of the tree.
#[derive(Clone, PartialEq)]
pub enum Value {
    /// A nested map.
    Map(Map),
    /// A list; its items may include [`Value::Comment`]s.
    List(Vec<Value>),
    /// A string (also used for encrypted `ENC[...]` values).
    Str(String),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A timestamp, held as the RFC 3339 text Go's `time.Time.MarshalText` prints.
    Time(String),
    /// A string whose bytes are not UTF-8: Go strings hold any bytes (a
    /// binary file's `data`, a Latin-1 dotenv value), and every format prints
    /// these as the reference prints such a string. A `type:bytes` value
    /// also decrypts to this; the reference cannot decrypt those at all.
    Bytes(Vec<u8>),
    /// An explicit null; never encrypted and never hashed.
    Null,
    /// A comment inside a list.
    Comment(Comment),
}

impl fmt::Debug for Comment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Comment")
            .field("text", &Redacted(self.text.len()))
            .field("inline", &self.inline)
            .finish()
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Pair(key, value) => f.debug_tuple("Pair").field(key).field(value).finish(),
            Entry::Comment(comment) => comment.fmt(f),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, len) = match self {
            Value::Map(map) => return f.debug_tuple("Map").field(map).finish(),
            Value::List(items) => return f.debug_tuple("List").field(items).finish(),
            Value::Null => return f.write_str("Null"),
            Value::Comment(comment) => return comment.fmt(f),
            Value::Str(s) => ("Str", s.len()),
            Value::Time(s) => ("Time", s.len()),
            Value::Bytes(b) => ("Bytes", b.len()),
            // Numbers and booleans are secrets too; their size says nothing.
            Value::Int(_) => return f.write_str("Int(<redacted>)"),
            Value::Float(_) => return f.write_str("Float(<redacted>)"),
            Value::Bool(_) => return f.write_str("Bool(<redacted>)"),
        };
        f.debug_tuple(kind).field(&Redacted(len)).finish()
    }
}

/// Stands for a secret of `.0` bytes in `Debug` output.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

impl Value {
    /// True for maps and lists, which formats like dotenv cannot hold.
    pub fn is_complex(&self) -> bool {
        matches!(self, Value::Map(_) | Value::List(_))
    }
}

/// A whole file: one map per document (YAML streams may hold several; every
/// other format has exactly one).
///
/// Decrypted documents hold plaintext, so every string in the tree is wiped
/// when the document is dropped.
#[derive(Debug, Default, PartialEq)]
pub struct Document {
    /// The documents of the file, in order.
    pub branches: Vec<Map>,
}

impl Document {
    /// A document of the given branches.
    pub fn new(branches: Vec<Map>) -> Self {
        Document { branches }
    }

    /// Wipes the document and leaves its memory to the end of the process
    /// instead of freeing it block by block: for a command about to exit,
    /// whose memory the system takes back whole (freeing a large tree's
    /// hundred thousand blocks costs about as much as wiping them).
    pub fn wipe_and_leak(mut self) {
        self.wipe();
        std::mem::forget(self);
    }

    /// Gives up the branches of a sealed document, unwiped: every value its
    /// rule selects is encrypted, so it holds nothing that the file it is
    /// printed to does not show, and wiping it (every string, once more
    /// when the allocator frees it) would only cost time.
    pub(crate) fn into_sealed_branches(mut self) -> Vec<Map> {
        std::mem::take(&mut self.branches)
    }

    /// Wipes every branch, a large one on every core, a run of its
    /// top-level entries each.
    fn wipe(&mut self) {
        for branch in &mut self.branches {
            if is_large(branch) {
                let size = branch.len().div_ceil(crate::par::threads());
                crate::par::map(branch.chunks_mut(size).collect(), wipe_map);
            } else {
                wipe_map(branch);
            }
        }
    }
}

impl Drop for Document {
    /// Wipes every branch, then frees it; a large one on every core. (Wiped
    /// where they are first: moving entries leaves copies of the numbers
    /// and booleans held in them behind.)
    fn drop(&mut self) {
        self.wipe();
        for branch in &mut self.branches {
            if is_large(branch) {
                let threads = crate::par::threads();
                crate::par::map(split_evenly(std::mem::take(branch), threads), drop);
            }
        }
    }
}

/// Whether a branch is worth wiping and freeing on every core.
fn is_large(branch: &Map) -> bool {
    branch.len() >= 2 && has_nodes(branch, PARALLEL_NODES)
}

/// Moves every entry of `from` to the end of `into`, wiping what moving
/// leaves behind in `from`'s buffer (copies of the numbers and booleans
/// held in the entries).
pub(crate) fn move_entries(into: &mut Map, from: &mut Map) {
    into.append(from);
    from.spare_capacity_mut().zeroize();
}

/// From this many nodes on, a document is wiped on every core.
const PARALLEL_NODES: usize = 16_384;

/// Whether `map` holds at least `n` nodes (counting stops there).
pub(crate) fn has_nodes(map: &[Entry], n: usize) -> bool {
    fn count(value: &Value, left: &mut usize) {
        *left = left.saturating_sub(1);
        match value {
            Value::Map(map) => count_map(map, left),
            Value::List(items) => {
                for item in items {
                    if *left == 0 {
                        return;
                    }
                    count(item, left);
                }
            }
            _ => {}
        }
    }
    fn count_map(map: &[Entry], left: &mut usize) {
        for entry in map {
            if *left == 0 {
                return;
            }
            match entry {
                Entry::Pair(_, value) => count(value, left),
                Entry::Comment(_) => *left = left.saturating_sub(1),
            }
        }
    }
    let mut left = n;
    count_map(map, &mut left);
    left == 0
}

/// About how many bytes `entries` take printed as an indented map of
/// keys and values (`indent` bytes per level, their own lines `depth`
/// levels in: 0 for YAML's root map, 1 for JSON's, inside its braces), for
/// printers to reserve their buffer once instead of growing it by copies.
/// Only an estimate: escapes and quoting can make the text longer.
pub(crate) fn printed_size(entries: &[Entry], indent: usize, depth: usize) -> usize {
    fn value_size(value: &Value, depth: usize, indent: usize) -> usize {
        match value {
            Value::Map(map) => 4 + map_size(map, depth + 1, indent),
            Value::List(items) => {
                4 + items
                    .iter()
                    .map(|item| 4 + (depth + 1) * indent + value_size(item, depth + 1, indent))
                    .sum::<usize>()
            }
            Value::Str(s) | Value::Time(s) => s.len() + 2,
            Value::Bytes(b) => b.len() + 2,
            Value::Comment(c) => c.text.len() + 2,
            Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Null => 24,
        }
    }
    fn map_size(map: &[Entry], depth: usize, indent: usize) -> usize {
        map.iter()
            .map(|entry| match entry {
                Entry::Pair(key, value) => {
                    depth * indent + key.len() + 6 + value_size(value, depth, indent)
                }
                Entry::Comment(c) => depth * indent + c.text.len() + 2,
            })
            .sum()
    }
    map_size(entries, depth, indent)
}

/// Cuts a map's entries into `parts` runs of about equal length.
fn split_evenly(mut map: Map, parts: usize) -> Vec<Map> {
    let size = map.len().div_ceil(parts.max(1));
    let mut runs = Vec::with_capacity(parts);
    while map.len() > size {
        let rest = map.split_off(size);
        runs.push(map);
        map = rest;
    }
    runs.push(map);
    runs
}

/// Overwrites every secret-bearing byte of a map (keys included) with zeros.
pub fn wipe_map(map: &mut [Entry]) {
    for entry in map.iter_mut() {
        match entry {
            Entry::Pair(key, value) => {
                key.zeroize();
                wipe_value(value);
            }
            Entry::Comment(comment) => comment.text.zeroize(),
        }
    }
}

/// Whether the program's global allocator zeroes every block before it
/// frees it (see [`declare_freed_memory_wiped`]).
static FREED_MEMORY_IS_WIPED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Declares that the program's global allocator zeroes every block before
/// freeing it, as the rsops binary's does: a value [`replace_value`] frees
/// at once is then wiped by the allocator alone, not first byte by byte.
/// A program whose allocator does not must never call this.
pub fn declare_freed_memory_wiped() {
    FREED_MEMORY_IS_WIPED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Puts `value` in `slot` and frees the old value, wiped (by the
/// allocator, where it wipes what it frees).
pub fn replace_value(slot: &mut Value, value: Value) {
    let mut old = std::mem::replace(slot, value);
    if !FREED_MEMORY_IS_WIPED.load(std::sync::atomic::Ordering::Relaxed) {
        wipe_value(&mut old);
    }
}

/// Overwrites every secret-bearing byte of a value with zeros.
pub fn wipe_value(value: &mut Value) {
    match value {
        Value::Map(map) => wipe_map(map),
        Value::List(items) => items.iter_mut().for_each(wipe_value),
        Value::Str(s) | Value::Time(s) => s.zeroize(),
        Value::Comment(c) => c.text.zeroize(),
        Value::Bytes(b) => b.zeroize(),
        Value::Int(i) => i.zeroize(),
        Value::Float(f) => f.zeroize(),
        Value::Bool(b) => *b = false,
        Value::Null => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_value_puts_the_new_value_in() {
        let mut slot = Value::Str("secret".into());
        replace_value(&mut slot, Value::Int(3));
        assert_eq!(slot, Value::Int(3));
    }

    /// The size estimate printers reserve is near what they print.
    #[test]
    fn printed_size_is_near_the_printed_length() {
        let section = |i: i64| {
            Entry::Pair(
                format!("section_{i}"),
                Value::Map(vec![
                    Entry::Pair("token".into(), Value::Str("x".repeat(40))),
                    Entry::Pair("port".into(), Value::Int(i)),
                    Entry::Pair(
                        "list".into(),
                        Value::List(vec![Value::Str("a".into()), Value::Bool(true)]),
                    ),
                ]),
            )
        };
        let doc = Document::new(vec![(0..100).map(section).collect()]);
        // JSON's entries sit one level in, inside the braces.
        for (format, depth) in [(crate::Format::Json, 1), (crate::Format::Yaml, 0)] {
            let printed = format
                .emit(&doc, crate::formats::EmitOptions::default())
                .expect("prints")
                .len();
            let estimate = printed_size(&doc.branches[0], 4, depth);
            assert!(
                printed <= estimate && estimate < printed * 2,
                "{format:?}: printed {printed}, estimated {estimate}"
            );
        }
    }

    #[test]
    fn debug_shows_the_shape_but_no_value() {
        let doc = Document::new(vec![vec![
            Entry::Comment(Comment::new(" s3cr3t note")),
            Entry::Pair(
                "db".into(),
                Value::Map(vec![
                    Entry::Pair("password".into(), Value::Str("s3cr3t".into())),
                    Entry::Pair("port".into(), Value::Int(5432)),
                    Entry::Pair("ratio".into(), Value::Float(3.25)),
                    Entry::Pair("on".into(), Value::Bool(true)),
                    Entry::Pair("raw".into(), Value::Bytes(b"s3cr3t\xff".to_vec())),
                    Entry::Pair("at".into(), Value::Time("2024-01-02T03:04:05Z".into())),
                    Entry::Pair("none".into(), Value::Null),
                ]),
            ),
            Entry::Pair(
                "tags".into(),
                Value::List(vec![
                    Value::Str("s3cr3t".into()),
                    Value::Comment(Comment::new("s3cr3t")),
                ]),
            ),
        ]]);
        let shown = format!("{doc:?}");
        for secret in ["s3cr3t", "5432", "3.25", "true", "2024"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(
            shown,
            "Document { branches: [[Comment { text: <12 bytes>, inline: false }, \
             Pair(\"db\", Map([Pair(\"password\", Str(<6 bytes>)), Pair(\"port\", Int(<redacted>)), \
             Pair(\"ratio\", Float(<redacted>)), Pair(\"on\", Bool(<redacted>)), \
             Pair(\"raw\", Bytes(<7 bytes>)), Pair(\"at\", Time(<20 bytes>)), Pair(\"none\", Null)])), \
             Pair(\"tags\", List([Str(<6 bytes>), Comment { text: <6 bytes>, inline: false }]))]] }"
        );
    }
}
