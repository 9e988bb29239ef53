//! The ordered document tree every format parses into and emits from.
//!
//! It mirrors the reference's `sops.TreeBranch` model exactly, because the
//! ciphertext of a file depends on it: map keys on the path form each value's
//! additional authenticated data, comments are items in the same ordered lists
//! as values, and the MAC hashes leaves in document order. Formats turn bytes
//! into a [`Document`] and back; nothing else in rsops knows about syntax.

use zeroize::Zeroize;

/// A comment line, without its leading marker (`#` or `;`).
#[derive(Clone, Debug, PartialEq)]
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
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// `key: value`.
    Pair(String, Value),
    /// A comment line between entries.
    Comment(Comment),
}

/// An ordered map. Keys are kept in input order, and comments sit between entries.
pub type Map = Vec<Entry>;

/// A node of the tree.
#[derive(Clone, Debug, PartialEq)]
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
    /// Raw bytes (from a `type:bytes` value).
    Bytes(Vec<u8>),
    /// An explicit null; never encrypted and never hashed.
    Null,
    /// A comment inside a list.
    Comment(Comment),
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
}

impl Drop for Document {
    fn drop(&mut self) {
        for branch in &mut self.branches {
            wipe_map(branch);
        }
    }
}

/// Overwrites every secret-bearing byte of a map (keys included) with zeros.
pub fn wipe_map(map: &mut Map) {
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
