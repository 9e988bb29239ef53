//! dotenv `KEY=value` files, as the reference's `stores/dotenv` reads and
//! writes them: no quoting, no trimming, `\n` as the only escape. The `sops`
//! metadata lives in ordinary top-level `sops_…` entries.

mod gostring;

pub(super) use gostring::{go_type_name, val_to_string};

use super::FormatError;
use crate::tree::{Comment, Document, Entry, Map, Value};

const FORMAT: &str = "dotenv";

/// Parses lines: `#comment`, `KEY=value` (split at the first `=`), blank lines skipped.
pub fn parse(input: &[u8]) -> Result<Document, FormatError> {
    let mut branch = Map::new();
    for (index, line) in input.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let line = std::str::from_utf8(line).map_err(|_| syntax(index, "invalid UTF-8"))?;
        branch.push(parse_line(line).ok_or_else(|| syntax(index, "no '=' in line"))?);
    }
    Ok(Document::new(vec![branch]))
}

/// One non-empty line, or `None` when it is neither a comment nor has a `=`.
fn parse_line(line: &str) -> Option<Entry> {
    if let Some(text) = line.strip_prefix('#') {
        return Some(Entry::Comment(Comment::new(text)));
    }
    let (key, value) = line.split_once('=')?;
    Some(Entry::Pair(
        key.into(),
        Value::Str(value.replace("\\n", "\n")),
    ))
}

/// An error on the 0-based line `index`; never quotes the line.
fn syntax(index: usize, what: &str) -> FormatError {
    FormatError::Syntax {
        format: FORMAT,
        message: format!("{what} on line {}", index + 1),
    }
}

/// Prints the first branch as `KEY=value` and `#comment` lines.
pub fn emit(doc: &Document) -> Result<Vec<u8>, FormatError> {
    let mut out: Vec<u8> = Vec::new();
    for entry in doc.branches.first().map_or(&[][..], Vec::as_slice) {
        match entry {
            Entry::Comment(c) => {
                out.push(b'#');
                out.extend_from_slice(c.text.as_bytes());
            }
            Entry::Pair(key, value) => {
                if value.is_complex() {
                    return Err(FormatError::Unrepresentable {
                        format: FORMAT,
                        message: format!(
                            "cannot use complex value in dotenv file; offending key {key}"
                        ),
                    });
                }
                out.extend_from_slice(key.as_bytes());
                out.push(b'=');
                match value {
                    Value::Str(s) => out.extend_from_slice(s.replace('\n', "\\n").as_bytes()),
                    // A Go string of arbitrary bytes (e.g. a binary file's data).
                    Value::Bytes(b) => push_escaped_newlines(&mut out, b),
                    other => out.extend_from_slice(val_to_string(other).as_bytes()),
                }
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// Appends `bytes` with every newline written as `\\n`.
fn push_escaped_newlines(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            out.extend_from_slice(b"\\n");
        } else {
            out.push(b);
        }
    }
}

/// dotenv can only print strings; `--extract` of anything else fails.
pub fn emit_value(value: &Value) -> Result<Vec<u8>, FormatError> {
    match value {
        Value::Str(s) => Ok(s.as_bytes().to_vec()),
        other => Err(FormatError::Unrepresentable {
            format: FORMAT,
            message: format!(
                "the dotenv store only supports emitting strings, got {}",
                go_type_name(other)
            ),
        }),
    }
}

#[cfg(test)]
mod tests;
