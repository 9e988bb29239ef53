//! Binary files: the reference keeps the whole file as one value, `data`,
//! in a JSON envelope (parsed with the JSON format). Decrypting prints that
//! value's raw bytes and nothing else.

use super::FormatError;
use crate::tree::{Document, Entry, Value};

const FORMAT: &str = "binary";

/// Prints the top-level `data` value verbatim, as `BinaryStore.EmitPlainFile` does.
pub fn emit(doc: &Document) -> Result<Vec<u8>, FormatError> {
    let [branch] = doc.branches.as_slice() else {
        return Err(unrepresentable(
            "error emitting binary store: there must be exactly one tree branch",
        ));
    };
    let data = branch.iter().find_map(|entry| match entry {
        Entry::Pair(key, value) if key == "data" => Some(value),
        _ => None,
    });
    match data {
        Some(Value::Str(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Bytes(b)) => Ok(b.clone()),
        Some(_) => Err(unrepresentable(
            "error emitting binary store: 'data' key in tree does not have a string value",
        )),
        None => Err(unrepresentable(
            "error emitting binary store: no binary data found in tree",
        )),
    }
}

/// Always fails: a binary file has no structure to extract from.
pub fn emit_value(_value: &Value) -> Result<Vec<u8>, FormatError> {
    Err(unrepresentable(
        "Binary files are not structured and extracting a single value is not possible",
    ))
}

fn unrepresentable(message: &str) -> FormatError {
    FormatError::Unrepresentable {
        format: FORMAT,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{EmitOptions, Format};

    fn doc(entries: Vec<Entry>) -> Document {
        Document::new(vec![entries])
    }

    #[test]
    fn prints_data_verbatim() {
        let d = doc(vec![Entry::Pair("data".into(), Value::Str("a\nb".into()))]);
        assert_eq!(emit(&d).unwrap(), b"a\nb");
        let d = doc(vec![Entry::Pair(
            "data".into(),
            Value::Bytes(vec![0xff, 0]),
        )]);
        assert_eq!(emit(&d).unwrap(), [0xff, 0]);
    }

    #[test]
    fn takes_the_first_data_key() {
        let d = doc(vec![
            Entry::Pair("other".into(), Value::Int(1)),
            Entry::Pair("data".into(), Value::Str("first".into())),
            Entry::Pair("data".into(), Value::Str("second".into())),
        ]);
        assert_eq!(emit(&d).unwrap(), b"first");
    }

    #[test]
    fn refuses_missing_or_non_string_data() {
        let missing = doc(vec![Entry::Pair("x".into(), Value::Str("y".into()))]);
        let err = emit(&missing).unwrap_err().to_string();
        assert!(err.contains("no binary data found in tree"), "{err}");
        let number = doc(vec![Entry::Pair("data".into(), Value::Int(3))]);
        let err = emit(&number).unwrap_err().to_string();
        assert!(err.contains("does not have a string value"), "{err}");
        assert!(emit(&Document::new(vec![])).is_err());
        assert!(emit_value(&Value::Int(1)).is_err());
    }

    /// An envelope the reference wrote for a file of bytes `61 ff fe 62`
    /// kept in plain text: invalid UTF-8 became U+FFFD in the JSON.
    #[test]
    fn envelope_parses_as_json() {
        let input = "{\n\t\"data\": \"a\u{fffd}\u{fffd}b\"\n}\n";
        let d = Format::Binary.parse(input.as_bytes()).unwrap();
        assert_eq!(emit(&d).unwrap(), "a\u{fffd}\u{fffd}b".as_bytes());
        let again = Format::Json.emit(&d, EmitOptions::default()).unwrap();
        assert_eq!(again, input.as_bytes());
    }
}
