//! binary format (in progress).

use super::FormatError;
use crate::tree::{Document, Value};


pub fn emit(_doc: &Document) -> Result<Vec<u8>, FormatError> {
    Err(FormatError::Unrepresentable { format: "binary", message: "not implemented yet".into() })
}

pub fn emit_value(_value: &Value) -> Result<Vec<u8>, FormatError> {
    Err(FormatError::Unrepresentable { format: "binary", message: "not implemented yet".into() })
}
