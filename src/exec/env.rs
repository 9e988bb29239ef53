//! The child's environment: a document's top-level values as variables,
//! formatted as the reference formats them, on top of what rsops inherited.
//!
//! The block is built by rsops and handed to `posix_spawn`/`execve` as is,
//! so secrets never pass through rsops' own environment (`setenv`), and every
//! buffer that held one is wiped when the block is dropped.

use std::collections::HashMap;
use std::ffi::CStr;
use std::os::unix::ffi::OsStrExt;

use zeroize::Zeroizing;

use crate::gofmt::{format_float, FloatFormat};
use crate::timefmt::parse_rfc3339;
use crate::tree::{Document, Entry, Value};

/// Why a document's values cannot become environment variables. Messages
/// name keys, never values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// A top-level value is a map or a list.
    #[error("cannot use complex value in environment; offending key {0}")]
    Complex(String),
    /// A key contains `=`, which would split differently in the child.
    #[error("cannot use keys with '=' in environment: {0}")]
    KeyWithEquals(String),
    /// A key is the empty string.
    #[error("cannot use an empty key in environment")]
    EmptyKey,
    /// A key or value contains a NUL byte, which no environment can hold.
    #[error("cannot use {0} in environment: its key or value contains a NUL byte")]
    Nul(String),
    /// A name of a variable to keep is not a variable name.
    #[error("`{0}` is not a variable name to keep")]
    BadKeep(String),
}

/// One variable from the document.
pub struct Variable {
    /// The key.
    pub name: String,
    /// The value, formatted as the reference does. Bytes, not text: a value
    /// may be any bytes, as a Go string may.
    pub value: Zeroizing<Vec<u8>>,
}

/// The top-level values of the first document, as `sops exec-env` turns
/// them into variables. Comments are skipped; a map or list is an error.
pub fn variables(document: &Document) -> Result<Vec<Variable>, EnvError> {
    let Some(branch) = document.branches.first() else {
        return Ok(Vec::new());
    };
    let mut vars = Vec::with_capacity(branch.len());
    for entry in branch {
        let Entry::Pair(name, value) = entry else {
            continue;
        };
        let value = format_value(value).ok_or_else(|| EnvError::Complex(name.clone()))?;
        if name.contains('=') {
            return Err(EnvError::KeyWithEquals(name.clone()));
        }
        vars.push(Variable {
            name: name.clone(),
            value,
        });
    }
    Ok(vars)
}

/// Formats a scalar as the reference does: a string as it is, anything else
/// as `stores.ValToString` (and Go's `%v`) prints it; `None` for maps and lists.
pub fn format_value(value: &Value) -> Option<Zeroizing<Vec<u8>>> {
    let text = match value {
        Value::Map(_) | Value::List(_) => return None,
        Value::Str(s) => s.clone(),
        // A `str` value that is not UTF-8 (a Go string holds any bytes): the
        // reference passes its bytes on unchanged. (A `type:bytes` value
        // also lands here; the reference cannot decrypt those at all.)
        Value::Bytes(b) => return Some(Zeroizing::new(b.clone())),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format_go_float(*f),
        Value::Bool(b) => b.to_string(),
        // Go prints a time.Time with the RFC 3339 layout: whole seconds.
        Value::Time(t) => parse_rfc3339(t).map_or_else(|| t.clone(), |t| t.rfc3339()),
        Value::Null => "<nil>".to_string(),
        Value::Comment(c) => c.text.clone(),
    };
    Some(Zeroizing::new(text.into_bytes()))
}

/// `strconv.FormatFloat(f, 'G', -1, 64)`, with `.0` added when that reads as
/// an integer, as `ValToString` does.
fn format_go_float(f: f64) -> String {
    let general = format_float(f, FloatFormat::GeneralUpper);
    if general.contains(['.', 'E']) || !f.is_finite() {
        general
    } else {
        format!("{f:.1}")
    }
}

/// Which of rsops' own variables the child inherits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inherit {
    /// All of them (the default, as the reference).
    All,
    /// Only these (`--pristine`, with `--keep NAMES`).
    Only(Vec<String>),
}

impl Inherit {
    /// `--pristine` with its `--keep` list, checked before any I/O.
    pub fn pristine(keep: &[String]) -> Result<Inherit, EnvError> {
        if let Some(bad) = keep
            .iter()
            .find(|k| k.is_empty() || k.contains(['=', '\0']))
        {
            return Err(EnvError::BadKeep(bad.clone()));
        }
        Ok(Inherit::Only(keep.to_vec()))
    }
}

/// A `NAME=value` entry, NUL-terminated, wiped on drop.
struct EnvEntry(Zeroizing<Vec<u8>>);

impl AsRef<CStr> for EnvEntry {
    fn as_ref(&self) -> &CStr {
        // Built with exactly one NUL, at the end (see `EnvBlock::set`).
        CStr::from_bytes_until_nul(&self.0).unwrap_or_default()
    }
}

/// A complete environment for the child, later entries overriding earlier
/// ones with the same name (as Go's `exec.Cmd` does).
#[derive(Default)]
pub struct EnvBlock {
    entries: Vec<EnvEntry>,
    index: HashMap<Vec<u8>, usize>,
}

impl EnvBlock {
    /// rsops' inherited variables, filtered by `inherit`, then `overrides`
    /// in order (the `--user` variables, then the secrets). Values are bytes
    /// (`&str` or `&[u8]`), as an environment's are.
    pub fn build<'a, V: AsRef<[u8]>>(
        inherit: &Inherit,
        overrides: impl IntoIterator<Item = (&'a str, V)>,
    ) -> Result<EnvBlock, EnvError> {
        let mut block = EnvBlock::default();
        for (name, value) in std::env::vars_os() {
            let keep = match inherit {
                Inherit::All => true,
                Inherit::Only(names) => names.iter().any(|n| n.as_bytes() == name.as_bytes()),
            };
            if keep {
                block.set(name.as_bytes(), value.as_bytes())?;
            }
        }
        for (name, value) in overrides {
            if name.is_empty() {
                return Err(EnvError::EmptyKey);
            }
            if name.contains('=') {
                return Err(EnvError::KeyWithEquals(name.to_string()));
            }
            block.set(name.as_bytes(), value.as_ref())?;
        }
        Ok(block)
    }

    pub(crate) fn set(&mut self, name: &[u8], value: &[u8]) -> Result<(), EnvError> {
        if name.contains(&0) || value.contains(&0) {
            return Err(EnvError::Nul(String::from_utf8_lossy(name).into_owned()));
        }
        let mut entry = Zeroizing::new(Vec::with_capacity(name.len() + value.len() + 2));
        entry.extend_from_slice(name);
        entry.push(b'=');
        entry.extend_from_slice(value);
        entry.push(0);
        match self.index.get(name) {
            Some(&i) => self.entries[i] = EnvEntry(entry),
            None => {
                self.index.insert(name.to_vec(), self.entries.len());
                self.entries.push(EnvEntry(entry));
            }
        }
        Ok(())
    }

    /// The null-terminated pointer array `execve` takes as `envp`; it points
    /// into this block, which must outlive its use.
    pub(crate) fn pointers(&self) -> Vec<*const std::ffi::c_char> {
        self.entries
            .iter()
            .map(|entry| entry.as_ref().as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let &i = self.index.get(name.as_bytes())?;
        let entry = &self.entries[i].0;
        entry.get(name.len() + 1..entry.len() - 1)
    }

    /// How many variables the block holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the block holds no variable.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Comment;

    fn doc(entries: Vec<Entry>) -> Document {
        Document::new(vec![entries])
    }

    fn pair(k: &str, v: Value) -> Entry {
        Entry::Pair(k.to_string(), v)
    }

    fn formatted(v: Value) -> String {
        format_value(&v)
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .unwrap_or_default()
    }

    #[test]
    fn scalars_are_formatted_as_the_reference() {
        assert_eq!(formatted(Value::Str("a b\nc".into())), "a b\nc");
        assert_eq!(formatted(Value::Int(-42)), "-42");
        assert_eq!(formatted(Value::Int(i64::MAX)), "9223372036854775807");
        assert_eq!(formatted(Value::Bool(true)), "true");
        assert_eq!(formatted(Value::Bool(false)), "false");
        assert_eq!(formatted(Value::Float(1.5)), "1.5");
        assert_eq!(formatted(Value::Float(100.0)), "100.0");
        assert_eq!(formatted(Value::Float(-0.0)), "-0.0");
        assert_eq!(formatted(Value::Float(1e6)), "1E+06");
        assert_eq!(formatted(Value::Float(123456.0)), "123456.0");
        assert_eq!(formatted(Value::Float(0.00001)), "1E-05");
        assert_eq!(formatted(Value::Float(f64::INFINITY)), "+Inf");
        assert_eq!(formatted(Value::Float(f64::NAN)), "NaN");
        assert_eq!(
            formatted(Value::Time("2024-01-02T03:04:05.5+01:00".into())),
            "2024-01-02T03:04:05+01:00"
        );
        assert_eq!(formatted(Value::Null), "<nil>");
    }

    /// A `str` value holding `caf\xe9` (Latin-1) reaches the child as those
    /// four bytes, as with the reference, not as Go's `%v` of a byte slice.
    #[test]
    fn strings_that_are_not_utf8_keep_their_bytes() {
        let raw = b"caf\xe9\n\x01".to_vec();
        let value = format_value(&Value::Bytes(raw.clone()));
        assert_eq!(value.as_deref().map(Vec::as_slice), Some(&raw[..]));
        let d = doc(vec![pair("LATIN", Value::Bytes(raw.clone()))]);
        let vars = variables(&d).unwrap_or_default();
        let block = EnvBlock::build(
            &Inherit::Only(vec![]),
            vars.iter().map(|v| (v.name.as_str(), v.value.as_slice())),
        )
        .unwrap_or_default();
        assert_eq!(block.get("LATIN"), Some(&raw[..]));
        let entries: Vec<&CStr> = block.entries.iter().map(AsRef::as_ref).collect();
        assert_eq!(entries[0].to_bytes(), b"LATIN=caf\xe9\n\x01");
    }

    #[test]
    fn nested_values_name_the_key_not_the_value() {
        let d = doc(vec![
            pair("OK", Value::Str("x".into())),
            pair(
                "NESTED",
                Value::Map(vec![pair("in", Value::Str("s3cr3t".into()))]),
            ),
        ]);
        let err = variables(&d)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            err,
            "cannot use complex value in environment; offending key NESTED"
        );
        let d = doc(vec![pair(
            "LIST",
            Value::List(vec![Value::Str("s3cr3t".into())]),
        )]);
        assert!(variables(&d).is_err());
    }

    #[test]
    fn keys_with_equals_are_rejected() {
        let d = doc(vec![pair("A=B", Value::Str("v".into()))]);
        assert!(matches!(variables(&d), Err(EnvError::KeyWithEquals(k)) if k == "A=B"));
    }

    #[test]
    fn comments_are_skipped_and_order_kept() {
        let d = doc(vec![
            Entry::Comment(Comment::new(" note")),
            pair("B", Value::Int(2)),
            pair("A", Value::Str("1".into())),
        ]);
        let vars = variables(&d).unwrap_or_default();
        let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["B", "A"]);
        assert!(variables(&Document::default()).is_ok_and(|v| v.is_empty()));
    }

    #[test]
    fn later_values_override_and_pristine_keeps_only_the_list() {
        let block = EnvBlock::build(
            &Inherit::pristine(&["PATH".into()]).unwrap_or(Inherit::All),
            [("X", "1"), ("Y", "2"), ("X", "3")],
        );
        let block = block.unwrap_or_default();
        assert_eq!(block.get("X"), Some(&b"3"[..]));
        assert_eq!(block.get("Y"), Some(&b"2"[..]));
        let path_inherited = std::env::var_os("PATH").is_some();
        assert_eq!(block.len(), 2 + usize::from(path_inherited));
        assert!(block.get("HOME").is_none());
        let c: Vec<&CStr> = block.entries.iter().map(AsRef::as_ref).collect();
        assert!(c.iter().any(|e| e.to_bytes() == b"X=3"));
    }

    #[test]
    fn bad_names_and_nul_bytes_are_errors() {
        assert!(matches!(
            EnvBlock::build(&Inherit::Only(vec![]), [("", "v")]),
            Err(EnvError::EmptyKey)
        ));
        assert!(matches!(
            EnvBlock::build(&Inherit::Only(vec![]), [("A=B", "v")]),
            Err(EnvError::KeyWithEquals(_))
        ));
        let err = EnvBlock::build(&Inherit::Only(vec![]), [("K", "s3\0cret")])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("cannot use K in environment: its key or value contains a NUL byte")
        );
        assert!(Inherit::pristine(&["A=B".into()]).is_err());
        assert!(Inherit::pristine(&[String::new()]).is_err());
    }
}
