//! dotenv format (in progress).

use super::FormatError;
use crate::tree::{Document, Value};

pub fn parse(_input: &[u8]) -> Result<Document, FormatError> {
    Err(FormatError::Syntax { format: "dotenv", message: "not implemented yet".into() })
}

pub fn emit(_doc: &Document) -> Result<Vec<u8>, FormatError> {
    Err(FormatError::Unrepresentable { format: "dotenv", message: "not implemented yet".into() })
}

pub fn emit_value(_value: &Value) -> Result<Vec<u8>, FormatError> {
    Err(FormatError::Unrepresentable { format: "dotenv", message: "not implemented yet".into() })
}
