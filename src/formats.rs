//! File formats: each parses bytes into a [`Document`] and emits one back,
//! byte for byte as the reference `sops` does.
//!
//! A format knows syntax only. The `sops` metadata travels through the tree
//! like any other key (flattened for dotenv and INI, see [`MetadataLayout`]);
//! `metadata.rs` pulls it out after parsing.

mod binary;
mod dotenv;
mod ini;
mod json;
mod yaml;

use std::path::Path;

pub use json::Pieces;
pub use yaml::PlainPieces;

use crate::tree::{Document, Value};

/// The formats the reference supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// YAML, possibly a stream of several documents.
    Yaml,
    /// JSON.
    Json,
    /// dotenv `KEY=value` lines.
    Dotenv,
    /// INI sections.
    Ini,
    /// Any other file: the whole content is one value, `data`.
    Binary,
}

/// How the `sops` metadata is stored in a format's tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataLayout {
    /// A top-level `sops` map (YAML, JSON, binary).
    Nested,
    /// A top-level `sops` map whose keys are flattened (INI's `[sops]` section).
    FlattenedBelowTop,
    /// Top-level `sops_`-prefixed flattened keys (dotenv).
    FlattenedFull,
}

/// Options that change how a document is printed.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmitOptions {
    /// `--indent`: spaces per level for YAML and JSON; `None` is the format's default.
    pub indent: Option<usize>,
}

/// A syntax or shape error in a file, or a tree a format cannot hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The input is not valid in this format.
    #[error("invalid {format}: {message}")]
    Syntax {
        /// The format's name.
        format: &'static str,
        /// What is wrong, and where (line/column when known). Never contains values.
        message: String,
    },
    /// The tree cannot be printed in this format (e.g. a nested map in dotenv).
    #[error("cannot print as {format}: {message}")]
    Unrepresentable {
        /// The format's name.
        format: &'static str,
        /// What cannot be printed; names keys, never values.
        message: String,
    },
}

impl Format {
    /// Picks the format from a file name's extension, as the reference does.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("env") => Format::Dotenv,
            Some("ini") => Format::Ini,
            _ => Format::Binary,
        }
    }

    /// Parses a `--input-type`/`--output-type` name.
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "yaml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "dotenv" => Some(Format::Dotenv),
            "ini" => Some(Format::Ini),
            "binary" => Some(Format::Binary),
            _ => None,
        }
    }

    /// The format's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Dotenv => "dotenv",
            Format::Ini => "ini",
            Format::Binary => "binary",
        }
    }

    /// Where this format keeps the `sops` metadata.
    pub fn metadata_layout(self) -> MetadataLayout {
        match self {
            Format::Yaml | Format::Json | Format::Binary => MetadataLayout::Nested,
            Format::Ini => MetadataLayout::FlattenedBelowTop,
            Format::Dotenv => MetadataLayout::FlattenedFull,
        }
    }

    /// Parses an encrypted file (metadata included) into a tree.
    pub fn parse(self, input: &[u8]) -> Result<Document, FormatError> {
        match self {
            Format::Yaml => yaml::parse(input),
            Format::Json | Format::Binary => json::parse(input),
            Format::Dotenv => dotenv::parse(input),
            Format::Ini => ini::parse(input),
        }
    }

    /// A large encrypted file to parse without holding it whole in
    /// memory, from `read_at` (which fills a buffer from an offset): JSON
    /// only (see [`Pieces`]). `None` when it has to be read whole and
    /// parsed with [`Format::parse`] (which then reports any error).
    pub fn pieces<'r>(
        self,
        len: usize,
        read_at: &'r (dyn Fn(u64, &mut [u8]) -> std::io::Result<()> + Sync),
    ) -> Option<Pieces<'r>> {
        match self {
            Format::Json => Pieces::plan(len, read_at),
            Format::Yaml | Format::Binary | Format::Dotenv | Format::Ini => None,
        }
    }

    /// Parses a plaintext file to encrypt. The same as [`Format::parse`]
    /// but for binary, whose plaintext is the file itself: one `data` value
    /// (text, or bytes when not UTF-8), as the reference's binary store
    /// loads a plain file.
    pub fn parse_plain(self, input: &[u8]) -> Result<Document, FormatError> {
        match self {
            Format::Binary => {
                let value = match std::str::from_utf8(input) {
                    Ok(text) => Value::Str(text.to_string()),
                    Err(_) => Value::Bytes(input.to_vec()),
                };
                Ok(Document::new(vec![vec![crate::tree::Entry::Pair(
                    "data".into(),
                    value,
                )]]))
            }
            other => other.parse(input),
        }
    }

    /// Prints an encrypted document (metadata included) as `sops encrypt`
    /// writes it: binary files are JSON documents.
    pub fn emit_encrypted(
        self,
        doc: &Document,
        options: EmitOptions,
    ) -> Result<Vec<u8>, FormatError> {
        Ok(self.print_encrypted(doc, options)?.into_bytes())
    }

    /// Prints like [`Format::emit_encrypted`], keeping the parts printed on
    /// each core apart (see [`Printed`]).
    pub fn print_encrypted(
        self,
        doc: &Document,
        options: EmitOptions,
    ) -> Result<Printed, FormatError> {
        match self {
            Format::Binary => json::emit(doc, options),
            other => other.print(doc, options),
        }
    }

    /// Prints a decrypted document (metadata already removed) as `sops decrypt` does.
    ///
    /// The buffer is no larger than its contents: the plaintext is wiped
    /// when dropped, and wiping spare room the printing never wrote would
    /// only bring its pages into memory.
    pub fn emit(self, doc: &Document, options: EmitOptions) -> Result<Vec<u8>, FormatError> {
        Ok(self.print(doc, options)?.into_bytes())
    }

    /// Prints like [`Format::emit`], keeping the parts printed on each core
    /// apart (see [`Printed`]).
    pub fn print(self, doc: &Document, options: EmitOptions) -> Result<Printed, FormatError> {
        match self {
            Format::Yaml => yaml::emit(doc, options),
            Format::Json => json::emit(doc, options),
            Format::Dotenv => dotenv::emit(doc).map(Printed::from),
            Format::Ini => ini::emit(doc).map(Printed::from),
            Format::Binary => binary::emit(doc).map(Printed::from),
        }
    }

    /// Prints one value as `sops decrypt --extract` does.
    pub fn emit_value(self, value: &Value, options: EmitOptions) -> Result<Vec<u8>, FormatError> {
        match self {
            Format::Yaml => yaml::emit_value(value, options),
            Format::Json => json::emit_value(value, options),
            Format::Dotenv => dotenv::emit_value(value),
            Format::Ini => ini::emit_value(value),
            Format::Binary => binary::emit_value(value),
        }
    }
}

/// How much each part's printer reserves: its own printed size, estimated
/// on every core (see [`crate::tree::printed_size`]).
fn part_capacities(parts: &[&[crate::tree::Entry]], indent: usize, depth: usize) -> Vec<usize> {
    crate::par::map(parts.to_vec(), |part| {
        crate::tree::printed_size(part, indent, depth)
    })
}

/// A printed file in the parts its printers made on each core, one after
/// the other: written part by part, a large file is never copied into one
/// buffer. Each part is no larger than its contents (wiping room a printer
/// reserved but never wrote would only bring its pages into memory) and
/// is wiped when dropped, as it may hold plaintext.
#[derive(Default)]
pub struct Printed {
    parts: Vec<zeroize::Zeroizing<Vec<u8>>>,
}

impl Printed {
    /// The parts of a file printed on several cores, in order.
    pub(crate) fn from_parts(parts: Vec<zeroize::Zeroizing<Vec<u8>>>) -> Printed {
        let mut printed = Printed { parts };
        for part in &mut printed.parts {
            part.shrink_to_fit();
        }
        printed
    }

    /// The parts, in order.
    pub fn parts(&self) -> Vec<&[u8]> {
        self.parts.iter().map(|part| part.as_slice()).collect()
    }

    /// How many bytes the file has.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|part| part.len()).sum()
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the file is exactly `bytes`.
    pub fn is(&self, bytes: &[u8]) -> bool {
        let mut rest = bytes;
        for part in &self.parts {
            match rest.split_at_checked(part.len()) {
                Some((head, tail)) if head == part.as_slice() => rest = tail,
                _ => return false,
            }
        }
        rest.is_empty()
    }

    /// Replaces the last `from` in the last part with `to`, of the same
    /// length; `false` (and nothing changed) if there is none.
    pub fn replace_last(&mut self, from: &[u8], to: &[u8]) -> bool {
        let Some(last) = self.parts.last_mut() else {
            return false;
        };
        match memchr::memmem::rfind(last, from) {
            Some(at) if from.len() == to.len() => {
                last[at..at + to.len()].copy_from_slice(to);
                true
            }
            _ => false,
        }
    }

    /// The file in one buffer: a file printed in one part is returned as
    /// it is, one printed in several is joined.
    pub fn into_bytes(mut self) -> Vec<u8> {
        if let [only] = self.parts.as_mut_slice() {
            return std::mem::take(&mut **only);
        }
        let mut out = Vec::with_capacity(self.len());
        for part in &self.parts {
            out.extend_from_slice(part);
        }
        out
    }
}

impl From<Vec<u8>> for Printed {
    fn from(bytes: Vec<u8>) -> Printed {
        Printed::from_parts(vec![zeroize::Zeroizing::new(bytes)])
    }
}

impl std::fmt::Debug for Printed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printed")
            .field("parts", &self.parts.len())
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod printed_tests {
    use super::Printed;
    use zeroize::Zeroizing;

    #[test]
    fn parts_join_and_patch_in_the_last_part() {
        let parts = ["a: X\n", "b: X\nmac: X\n"].map(|p| Zeroizing::new(p.as_bytes().to_vec()));
        let mut printed = Printed::from_parts(parts.to_vec());
        assert_eq!(printed.len(), 17);
        assert_eq!(printed.parts(), [&b"a: X\n"[..], &b"b: X\nmac: X\n"[..]]);
        assert!(printed.is(b"a: X\nb: X\nmac: X\n"));
        assert!(!printed.is(b"a: X\nb: X\nmac: X"), "shorter");
        assert!(!printed.is(b"a: X\nb: X\nmac: X\n\n"), "longer");
        assert!(
            !printed.is(b"a: Xb: X\nmac: X\n\n"),
            "same length, other bytes"
        );
        assert!(Printed::default().is(b""));
        assert!(!printed.replace_last(b"X", b"YY"), "lengths differ");
        assert!(
            !printed.replace_last(b"a: X", b"a: Y"),
            "not in the last part"
        );
        assert!(printed.replace_last(b"X", b"Y"));
        assert_eq!(printed.into_bytes(), b"a: X\nb: X\nmac: Y\n");
        assert_eq!(Printed::from(b"one".to_vec()).into_bytes(), b"one");
    }
}
