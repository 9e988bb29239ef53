//! YAML, as the reference reads it with go-yaml v3 (`stores/yaml/store.go`)
//! and prints it with go-yaml's encoder.
//!
//! Parsing is a port of go-yaml's scanner and parser that records comments
//! on the side; printing is a port of go-yaml's emitter for the node shapes
//! the reference builds.

mod comments;
mod emit;
mod load;
mod node;
mod parse;
mod resolve;
mod scalar;
mod scan;
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
    let text = std::str::from_utf8(input)
        .map_err(|e| syntax(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    check_characters(text)?;
    Ok(Document::new(load::Loader::new(text).documents()?))
}

/// go-yaml's reader refuses control characters before scanning; the
/// scanner relies on that (it reads a NUL as the end of the input).
fn check_characters(text: &str) -> Result<(), FormatError> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7E}' | '\u{85}')
            || matches!(c, '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    };
    let plain_ascii = |b: &u8| matches!(b, b'\t' | b'\n' | b'\r' | 0x20..=0x7E);
    if text.as_bytes().iter().all(plain_ascii) {
        return Ok(());
    }
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
pub fn emit(doc: &Document, options: EmitOptions) -> Result<Vec<u8>, FormatError> {
    doc.branches
        .iter()
        .try_for_each(|b| check_map_depth(b, 0))?;
    let roots: Vec<node::Node> = doc.branches.iter().map(node::mapping).collect();
    Ok(emit::emit_documents(
        &roots,
        options.indent.unwrap_or(DEFAULT_INDENT),
        0,
    ))
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
