//! YAML, as the reference reads it with go-yaml v3 (`stores/yaml/store.go`)
//! and prints it with go-yaml's encoder.
//!
//! Parsing is a port of go-yaml's scanner and parser that records comments
//! on the side; printing is a port of go-yaml's emitter for the node shapes
//! the reference builds.

mod comments;
mod emit;
mod fast;
mod load;
mod node;
mod parse;
mod resolve;
mod scalar;
mod scan;
mod split;
#[cfg(test)]
mod tests;
mod time;

use super::{EmitOptions, FormatError};
use crate::tree::{Document, Entry, Map, Value};

/// The reference's default `--indent` for YAML.
const DEFAULT_INDENT: usize = 4;

fn syntax(message: String) -> FormatError {
    FormatError::Syntax {
        format: "yaml",
        message,
    }
}

/// Parses a YAML stream into one map per document, as `LoadPlainFile` does.
pub fn parse(input: &[u8]) -> Result<Document, FormatError> {
    if input.is_empty() {
        return Ok(Document::new(Vec::new()));
    }
    let (text, ascii) = match ascii_text(input) {
        Some(text) => (text, true),
        None => {
            let text = std::str::from_utf8(input)
                .map_err(|e| syntax(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
            let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
            check_characters(text)?;
            (text, false)
        }
    };
    if ascii || !has_unicode_line_break(text) && !text.contains('\u{FEFF}') {
        let parts = if text.len() >= PARALLEL_BYTES {
            crate::par::threads()
        } else {
            1
        };
        if let Some(docs) = split::load(text, parts) {
            return Ok(Document::new(docs));
        }
    }
    Ok(Document::new(load::Loader::new(text).documents()?))
}

/// A large plaintext YAML file in pieces to load, transform and print one
/// at a time, on every core (see [`crate::encrypt::encrypt_plain`]): cut
/// just before top-level keys, as [`split`] cuts. Joined in order, the
/// pieces' entries are the file's root mapping, and their printings the
/// whole's printing, when every piece loads ([`PlainPieces::load`]), no
/// two pieces share a key and no piece's root holds a comment (checked by
/// [`PlainPieces::load`] too).
pub struct PlainPieces<'t> {
    chunks: Vec<&'t str>,
}

impl<'t> PlainPieces<'t> {
    /// `input` in pieces of about [`PIECE`] bytes, or `None` when it is
    /// small, or has to be loaded whole (it is not UTF-8, holds what
    /// [`parse`] checks for or a byte-order mark, or cannot be cut).
    pub fn cut(input: &'t [u8]) -> Option<PlainPieces<'t>> {
        if input.len() < PARALLEL_BYTES {
            return None;
        }
        let text = match ascii_text(input) {
            Some(text) => text,
            None => {
                let text = std::str::from_utf8(input).ok()?;
                if check_characters(text).is_err()
                    || has_unicode_line_break(text)
                    || text.contains('\u{FEFF}')
                {
                    return None;
                }
                text
            }
        };
        let chunks = split::chunks(text, text.len().div_ceil(PIECE))?;
        Some(PlainPieces { chunks })
    }

    /// How many pieces there are (at least two).
    pub fn count(&self) -> usize {
        self.chunks.len()
    }

    /// Loads piece `index`: its entries, as a one-branch document, or
    /// `None` when it does not load as a piece of the whole (the file then
    /// has to be loaded whole) or its root holds a comment.
    pub fn load(&self, index: usize) -> Option<Document> {
        let doc = split::load_piece(self.chunks.get(index)?)?;
        let commented = doc.branches[0]
            .iter()
            .any(|e| matches!(e, Entry::Comment(_)));
        (!commented).then_some(doc)
    }

    /// The top-level keys of a loaded piece, which no other piece may hold.
    pub fn keys(piece: &Document) -> impl Iterator<Item = &str> {
        piece.branches.iter().flatten().filter_map(|e| match e {
            Entry::Pair(key, _) => Some(key.as_str()),
            Entry::Comment(_) => None,
        })
    }

    /// Prints a piece's entries (or any one-branch document without
    /// comments in its root, such as the metadata) as they print within
    /// the whole: nothing, when a change took every entry out of it.
    pub fn print(
        piece: &Document,
        options: EmitOptions,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, FormatError> {
        let [branch] = piece.branches.as_slice() else {
            return Err(syntax("a piece holds one mapping".into()));
        };
        if branch.is_empty() {
            return Ok(zeroize::Zeroizing::new(Vec::new()));
        }
        check_map_depth(branch, 0)?;
        let indent = options.indent.unwrap_or(DEFAULT_INDENT);
        let capacity = crate::tree::printed_size(branch, indent, 0);
        Ok(zeroize::Zeroizing::new(emit::emit_documents(
            &[node::mapping(branch)],
            indent,
            capacity,
        )))
    }
}

/// Bytes of a large plaintext file per [`PlainPieces`] piece.
const PIECE: usize = 256 * 1024;

/// From this size on, a file is loaded on every core (see [`split`]).
const PARALLEL_BYTES: usize = 256 * 1024;

/// `input` as text if it is [`plain_ascii`], which is then valid UTF-8
/// and needs none of [`check_characters`]' checks: the common case, checked
/// on every core for a large file (a pass over it, like the UTF-8 check it
/// replaces, is a millisecond per 13 MB on one core).
fn ascii_text(input: &[u8]) -> Option<&str> {
    let parts = if input.len() >= PARALLEL_BYTES {
        crate::par::threads()
    } else {
        1
    };
    let chunks: Vec<&[u8]> = input.chunks(input.len().div_ceil(parts).max(1)).collect();
    let ascii = crate::par::map(chunks, plain_ascii)
        .into_iter()
        .all(|ascii| ascii);
    // SAFETY: ASCII bytes are valid UTF-8.
    ascii.then(|| unsafe { std::str::from_utf8_unchecked(input) })
}

/// Whether `bytes` are printable ASCII, tabs and line breaks only: the
/// common case, which needs no closer look. Checked 64 bytes at a time
/// without branching, which the compiler turns into vector instructions.
fn plain_ascii(bytes: &[u8]) -> bool {
    let allowed = |b: u8| (0x20..=0x7E).contains(&b) | (b == b'\t') | (b == b'\n') | (b == b'\r');
    bytes
        .chunks(64)
        .all(|chunk| chunk.iter().fold(true, |ok, &b| ok & allowed(b)))
}

/// Whether `text` holds a line break go-yaml knows besides `\n` and `\r`:
/// NEL, LINE SEPARATOR or PARAGRAPH SEPARATOR.
fn has_unicode_line_break(text: &str) -> bool {
    text.contains(['\u{85}', '\u{2028}', '\u{2029}'])
}

/// go-yaml's reader refuses control characters before scanning; the
/// scanner relies on that (it reads a NUL as the end of the input).
fn check_characters(text: &str) -> Result<(), FormatError> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7E}' | '\u{85}')
            || matches!(c, '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    };
    match text.char_indices().find(|&(_, c)| !allowed(c)) {
        None => Ok(()),
        Some((at, _)) => {
            let line = text[..at].matches('\n').count() + 1;
            let column = at - text[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
            Err(syntax(format!(
                "control characters are not allowed (line {line} column {column})"
            )))
        }
    }
}

/// Prints a document as `EmitPlainFile` does.
pub fn emit(doc: &Document, options: EmitOptions) -> Result<super::Printed, FormatError> {
    doc.branches
        .iter()
        .try_for_each(|b| check_map_depth(b, 0))?;
    let indent = options.indent.unwrap_or(DEFAULT_INDENT);
    if let [branch] = doc.branches.as_slice() {
        if let Some(parts) = parallel_parts(branch) {
            return Ok(emit_parts(parts, indent));
        }
    }
    let roots: Vec<node::Node> = doc.branches.iter().map(|b| node::mapping(b)).collect();
    let capacity = doc
        .branches
        .iter()
        .map(|b| crate::tree::printed_size(b, indent, 0))
        .sum();
    Ok(emit::emit_documents(&roots, indent, capacity).into())
}

/// From this many nodes on, a document is printed on every core.
const PARALLEL_NODES: usize = 16_384;

/// How to print a large one-document file on every core: in runs of its
/// root mapping's entries, each printed as a document of its own. That
/// prints what the whole does when the root mapping carries no comments of
/// its own: each top-level key then starts a line in column 0 with nothing
/// pending from the entry before, and a document ends its last line as
/// the next key's indentation would.
fn parallel_parts(branch: &Map) -> Option<Vec<&[Entry]>> {
    let commented = branch.iter().any(|e| matches!(e, Entry::Comment(_)));
    if branch.len() < 2 || commented || !crate::tree::has_nodes(branch, PARALLEL_NODES) {
        return None;
    }
    let size = branch.len().div_ceil(crate::par::threads());
    Some(branch.chunks(size).collect())
}

/// Prints each run of entries on a core of its own.
fn emit_parts(parts: Vec<&[Entry]>, indent: usize) -> super::Printed {
    let capacities = super::part_capacities(&parts, indent, 0);
    let printed = crate::par::map(
        parts.into_iter().zip(capacities).collect(),
        |(part, capacity)| {
            zeroize::Zeroizing::new(emit::emit_documents(
                &[node::mapping(part)],
                indent,
                capacity,
            ))
        },
    );
    super::Printed::from_parts(printed)
}

/// Prints one value as `EmitValue` does: `yaml.Marshal`, whose encoder
/// always uses its default indentation (the store's `--indent` is not applied).
pub fn emit_value(value: &Value, _options: EmitOptions) -> Result<Vec<u8>, FormatError> {
    check_depth(value, 0)?;
    Ok(emit::emit_documents(
        &[node::value_node(value)],
        DEFAULT_INDENT,
        0,
    ))
}

/// Rejects trees too deep to print without risking the stack.
fn check_map_depth(map: &Map, depth: usize) -> Result<(), FormatError> {
    map.iter().try_for_each(|e| match e {
        Entry::Pair(_, v) => check_depth(v, depth + 1),
        Entry::Comment(_) => Ok(()),
    })
}

fn check_depth(value: &Value, depth: usize) -> Result<(), FormatError> {
    if depth > load::MAX_DEPTH {
        return Err(FormatError::Unrepresentable {
            format: "yaml",
            message: "nesting too deep".into(),
        });
    }
    match value {
        Value::Map(m) => check_map_depth(m, depth),
        Value::List(l) => l.iter().try_for_each(|v| check_depth(v, depth + 1)),
        _ => Ok(()),
    }
}
