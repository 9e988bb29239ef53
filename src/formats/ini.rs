//! INI files, as the reference's `stores/ini` reads and writes them through
//! the go-ini library: each section is a top-level map of string values
//! (keys before any header form a `DEFAULT` section), comments are kept
//! without their markers, and the `sops` metadata is a `[sops]` section of
//! flattened keys.

mod parse;
mod write;

use super::FormatError;
use crate::tree::{Comment, Document, Entry, Map, Value};

use write::WriteError;

const FORMAT: &str = "ini";

/// Parses an INI file into one map of sections (`DEFAULT` always first).
pub fn parse(input: &[u8]) -> Result<Document, FormatError> {
    let text = std::str::from_utf8(skip_bom(input)).map_err(|e| {
        let line = input[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        syntax(line, "invalid UTF-8")
    })?;
    let sections = parse::parse(text).map_err(|e| syntax(e.line, e.what))?;
    let branch = sections.into_iter().map(section_entry).collect();
    Ok(Document::new(vec![branch]))
}

/// go-ini drops a leading byte-order mark (UTF-8, or the two bytes of a UTF-16 one).
fn skip_bom(input: &[u8]) -> &[u8] {
    match input {
        [0xef, 0xbb, 0xbf, rest @ ..] | [0xfe, 0xff, rest @ ..] | [0xff, 0xfe, rest @ ..] => rest,
        _ => input,
    }
}

/// The store's `treeItemFromSection`: the section comment first, then each
/// key followed by its comment.
fn section_entry(section: parse::Section) -> Entry {
    let mut items: Map = Vec::with_capacity(section.keys.len() + 1);
    if !section.comment.is_empty() {
        items.push(comment_entry(&section.comment));
    }
    for key in section.keys {
        items.push(Entry::Pair(key.name, Value::Str(key.value)));
        if !key.comment.is_empty() {
            items.push(comment_entry(&key.comment));
        }
    }
    Entry::Pair(section.name.to_string(), Value::Map(items))
}

/// The store's `stripCommentChar`: drops the leading run of markers and spaces.
fn comment_entry(comment: &str) -> Entry {
    let text = if comment.starts_with(';') {
        comment.trim_start_matches([';', ' '])
    } else if comment.starts_with('#') {
        comment.trim_start_matches(['#', ' '])
    } else {
        comment
    };
    Entry::Comment(Comment::new(text))
}

fn syntax(line: usize, what: &str) -> FormatError {
    FormatError::Syntax {
        format: FORMAT,
        message: format!("{what} on line {line}"),
    }
}

/// Prints the sections of every branch as go-ini does.
pub fn emit(doc: &Document) -> Result<Vec<u8>, FormatError> {
    write::write(&doc.branches).map_err(|e| {
        let message = match e {
            WriteError::EmptySectionName => "empty section name".to_string(),
            WriteError::NotASection(name) => {
                format!("top-level key {name:?} is not a section (a map)")
            }
            WriteError::EmptyKeyName(section) => {
                format!("empty key name in section {section:?}")
            }
        };
        FormatError::Unrepresentable {
            format: FORMAT,
            message,
        }
    })
}

/// Prints one value as the reference's INI `EmitValue`: `json.Marshal`.
pub fn emit_value(value: &Value) -> Result<Vec<u8>, FormatError> {
    super::json::marshal(value, FORMAT)
}

#[cfg(test)]
mod tests;
