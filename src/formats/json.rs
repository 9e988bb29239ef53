//! JSON, as the reference's `stores/json` reads and writes it (the binary
//! store keeps its envelope in the same JSON).

mod decode;
mod encode;

use super::{EmitOptions, FormatError};
use crate::tree::{Document, Value};

use decode::{DecodeError, Decoder};
use encode::{Indented, NonFinite};

const FORMAT: &str = "json";

/// Parses a JSON file whose top level is an object.
pub fn parse(input: &[u8]) -> Result<Document, FormatError> {
    let map = Decoder::new(input)
        .top_level()
        .map_err(|e| syntax_error(input, e))?;
    Ok(Document::new(vec![map]))
}

/// Prints the first branch as `sops decrypt` does: indented, with a final newline.
pub fn emit(doc: &Document, options: EmitOptions) -> Result<Vec<u8>, FormatError> {
    let indent = indent_unit(options);
    let mut writer = Indented::new(&indent);
    writer
        .map(doc.branches.first().map_or(&[][..], Vec::as_slice), 0)
        .map_err(|e| non_finite(FORMAT, e))?;
    let mut out = writer.out;
    out.push(b'\n');
    Ok(out)
}

/// Prints one value as `sops decrypt --extract` does: indented, no final newline.
pub fn emit_value(value: &Value, options: EmitOptions) -> Result<Vec<u8>, FormatError> {
    let indent = indent_unit(options);
    let mut writer = Indented::new(&indent);
    writer.value(value, 0).map_err(|e| non_finite(FORMAT, e))?;
    Ok(writer.out)
}

/// `json.Marshal(value)` of the reference's Go value, compact; the INI store
/// prints extracted values this way.
pub(super) fn marshal(value: &Value, format: &'static str) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    encode::marshal_compact(&mut out, value).map_err(|e| non_finite(format, e))?;
    Ok(out)
}

/// One level of indentation: a tab unless `--indent` asks for spaces.
fn indent_unit(options: EmitOptions) -> Vec<u8> {
    match options.indent {
        Some(n) => vec![b' '; n],
        None => b"\t".to_vec(),
    }
}

fn non_finite(format: &'static str, e: NonFinite) -> FormatError {
    let message = match e.key {
        Some(key) => format!("NaN or infinite number under key {key:?}"),
        None => "NaN or infinite number".to_string(),
    };
    FormatError::Unrepresentable { format, message }
}

/// Locates a decode error by line and column (1-based; columns count bytes).
fn syntax_error(input: &[u8], e: DecodeError) -> FormatError {
    let (offset, what) = match e {
        DecodeError::Eof => (input.len(), "unexpected end of input"),
        DecodeError::Syntax(offset, what) => (offset.min(input.len()), what),
    };
    let before = &input[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    FormatError::Syntax {
        format: FORMAT,
        message: format!("{what} at line {line}, column {column}"),
    }
}

#[cfg(test)]
mod tests;
