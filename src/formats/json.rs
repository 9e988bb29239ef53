//! json format (in progress).

use super::{EmitOptions, FormatError};
use crate::tree::{Document, Value};

pub fn parse(_input: &[u8]) -> Result<Document, FormatError> {
    Err(FormatError::Syntax { format: "json", message: "not implemented yet".into() })
}

pub fn emit(_doc: &Document, _options: EmitOptions) -> Result<Vec<u8>, FormatError> {
    Err(FormatError::Unrepresentable { format: "json", message: "not implemented yet".into() })
}

pub fn emit_value(_value: &Value, _options: EmitOptions) -> Result<Vec<u8>, FormatError> {
    Err(FormatError::Unrepresentable { format: "json", message: "not implemented yet".into() })
}
