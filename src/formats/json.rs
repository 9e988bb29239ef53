//! JSON, as the reference's `stores/json` reads and writes it (the binary
//! store keeps its envelope in the same JSON).

mod decode;
mod encode;

use super::{EmitOptions, FormatError};
use crate::tree::{Document, Entry, Map, Value};

use decode::{DecodeError, Decoder, Part};
use encode::{Indented, NonFinite};

const FORMAT: &str = "json";

/// Parses a JSON file whose top level is an object.
pub fn parse(input: &[u8]) -> Result<Document, FormatError> {
    let map = if input.len() >= PARALLEL_BYTES {
        parse_in_parts(input, &cuts(input, crate::par::threads()))
    } else {
        Decoder::new(input).top_level()
    };
    Ok(Document::new(
        vec![map.map_err(|e| syntax_error(input, e))?],
    ))
}

/// From this size on, a file is read on every core.
const PARALLEL_BYTES: usize = 256 * 1024;

/// Reads the top-level object in parts, each on a core of its own, cut at
/// `cuts`: offsets of `,`s that may be between two of its entries. Reading
/// from the start confirms each cut in turn (see
/// [`Decoder::top_level_part`]); from the first part that finds its end
/// not to be one, that part's reading goes on to the end of the input and
/// the later parts are dropped. So the result, errors included, is the
/// one-thread reading's.
fn parse_in_parts(input: &[u8], cuts: &[usize]) -> Result<Map, DecodeError> {
    let bounds: Vec<(usize, usize)> = std::iter::once(0)
        .chain(cuts.iter().copied())
        .zip(cuts.iter().copied().chain(std::iter::once(usize::MAX)))
        .collect();
    let parts = crate::par::map(bounds, |(start, stop)| {
        Decoder::new(input)
            .top_level_part((start > 0).then_some(start), stop)
            .map(Held::from)
    });
    let mut map = Held::new();
    let total = parts
        .iter()
        .flatten()
        .map(|p| p.entries.branches[0].len())
        .sum();
    map.entries.branches[0].reserve_exact(total);
    for part in parts {
        let part = part?;
        map.append(part.entries);
        if part.last {
            return Ok(map.into_entries());
        }
    }
    Err(DecodeError::Syntax(input.len(), "unexpected end of input"))
}

/// Entries read by a part, held as a [`Document`] (wiped when dropped)
/// until they are joined: parts read in vain, or before an error, may
/// hold plaintext.
struct Held {
    entries: Document,
    last: bool,
}

impl Held {
    fn new() -> Held {
        Held {
            entries: Document::new(vec![Vec::new()]),
            last: false,
        }
    }

    fn append(&mut self, mut other: Document) {
        crate::tree::move_entries(&mut self.entries.branches[0], &mut other.branches[0]);
    }

    fn into_entries(mut self) -> Map {
        std::mem::take(&mut self.entries.branches[0])
    }
}

impl From<Part> for Held {
    fn from(part: Part) -> Held {
        let (entries, last) = match part {
            Part::Entries(entries) => (entries, false),
            Part::Last(entries) => (entries, true),
        };
        Held {
            entries: Document::new(vec![entries]),
            last,
        }
    }
}

/// Where the parts of a large input may be cut: after about every
/// `1/parts` of it, the first [`cut_after`] line break.
fn cuts(input: &[u8], parts: usize) -> Vec<usize> {
    let Some(indent) = key_indent(input) else {
        return Vec::new();
    };
    crate::par::cuts_near(input.len(), parts, |ideal| first_cut(input, ideal, indent))
}

/// The indentation of the input's first key (the first `"`), if only
/// whitespace precedes it on its line.
fn key_indent(input: &[u8]) -> Option<&[u8]> {
    let first_key = memchr::memchr(b'"', input)?;
    let line_start = input[..first_key]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |n| n + 1);
    let indent = &input[line_start..first_key];
    indent.iter().all(is_space).then_some(indent)
}

fn is_space(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

/// The first cut after `from` (within 4096 lines): see [`cut_after`].
fn first_cut(input: &[u8], from: usize, indent: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', &input[from..])
        .take(4096)
        .find_map(|i| cut_after(input, from + i, indent))
}

/// The `,` that ends the line ending at `newline`, when the next line
/// holds a `"` indented by `indent` (the first key's indentation): as
/// between the entries of an indented top-level object. A line break
/// cannot be inside a string, so such a `,` is always between two entries
/// of some object, though not necessarily the top-level one.
fn cut_after(input: &[u8], newline: usize, indent: &[u8]) -> Option<usize> {
    let comma = input[..newline].iter().rposition(|b| !is_space(b))?;
    let next = &input[newline + 1..];
    let key_line = next.starts_with(indent) && next.get(indent.len()) == Some(&b'"');
    (input[comma] == b',' && key_line).then_some(comma)
}

/// Bytes of a large file read by [`parse_pieces`] per piece.
const PIECE: usize = 512 << 10;

/// How far from an ideal cut a cut is looked for.
const PROBE: usize = 16 << 10;

/// A large JSON file to read in pieces of about [`PIECE`] bytes, cut as
/// [`cuts`] cuts, from `read_at` (which fills a buffer from an offset):
/// each piece is read, parsed and dropped in turn, so only the pieces
/// being parsed are in memory, never the whole file. A piece confirms the
/// cut it ends at, as in [`parse_in_parts`], so the pieces read as the
/// whole file reads only once every piece has parsed.
pub struct Pieces<'r> {
    len: usize,
    read_at: &'r (dyn Fn(u64, &mut [u8]) -> std::io::Result<()> + Sync),
    /// Each piece's first byte and the `,` it ends at (`len` for the last).
    bounds: Vec<(usize, usize)>,
}

impl<'r> Pieces<'r> {
    /// Where a file of `len` bytes is cut; `None` when it has to be read
    /// whole: no cut found, or a read failed.
    pub fn plan(
        len: usize,
        read_at: &'r (dyn Fn(u64, &mut [u8]) -> std::io::Result<()> + Sync),
    ) -> Option<Pieces<'r>> {
        let mut pieces = Pieces {
            len,
            read_at,
            bounds: Vec::new(),
        };
        let head = pieces.read(0, len.min(PROBE))?;
        let indent = key_indent(&head)?.to_vec();
        let mut unread = false;
        let cuts = crate::par::cuts_near(len, len.div_ceil(PIECE), |ideal| {
            let window = pieces.read(ideal, len.min(ideal + PROBE));
            unread |= window.is_none();
            first_cut(&window?, 0, &indent).map(|at| ideal + at)
        });
        if unread || cuts.is_empty() {
            return None;
        }
        pieces.bounds = std::iter::once(0)
            .chain(cuts.iter().copied())
            .zip(cuts.iter().copied().chain(std::iter::once(len)))
            .collect();
        Some(pieces)
    }

    /// How many pieces there are (at least two).
    pub fn count(&self) -> usize {
        self.bounds.len()
    }

    /// Reads and parses piece `index`: the top-level entries it holds,
    /// held as a document (wiped when dropped), or `None` if it could not
    /// be read or did not parse as such a piece.
    pub fn parse(&self, index: usize) -> Option<Document> {
        let (start, end) = *self.bounds.get(index)?;
        // A piece holds the `,` it ends at, where its reading stops.
        let last = end == self.len;
        let piece = self.read(start, if last { self.len } else { end + 1 })?;
        let after = (start > 0).then_some(0);
        let stop = if last { usize::MAX } else { end - start };
        let part = Held::from(Decoder::new(&piece).top_level_part(after, stop).ok()?);
        (part.last == last).then_some(part.entries)
    }

    /// Reads every piece, the cores taking runs of them, and joins them.
    /// `None` when the file has to be read whole: a piece did not parse
    /// (reading it whole then reports the error where it is).
    pub fn parse_all(&self) -> Option<Document> {
        let indices: Vec<usize> = (0..self.count()).collect();
        let runs: Vec<&[usize]> = indices
            .chunks(indices.len().div_ceil(crate::par::threads()))
            .collect();
        let parsed = crate::par::map(runs, |run| {
            let mut map = Held::new();
            for &index in run {
                map.append(self.parse(index)?);
            }
            Some(map)
        });
        let mut map = Held::new();
        for run in parsed {
            map.append(run?.entries);
        }
        Some(Document::new(vec![map.into_entries()]))
    }

    fn read(&self, from: usize, to: usize) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        let mut buf = zeroize::Zeroizing::new(vec![0u8; to - from]);
        (self.read_at)(from as u64, &mut buf).ok().map(|()| buf)
    }
}

/// Prints the first branch as `sops decrypt` does: indented, with a final newline.
pub fn emit(doc: &Document, options: EmitOptions) -> Result<super::Printed, FormatError> {
    let indent = indent_unit(options);
    let map = doc.branches.first().map_or(&[][..], Vec::as_slice);
    let mut parts = if map.len() >= 2 && crate::tree::has_nodes(map, PARALLEL_NODES) {
        emit_in_parts(map, &indent)
    } else {
        let capacity = crate::tree::printed_size(map, indent.len(), 1);
        let mut writer = Indented::with_capacity(&indent, capacity);
        writer
            .map(map, 0)
            .map(|()| vec![zeroize::Zeroizing::new(writer.out)])
    }
    .map_err(|e| non_finite(FORMAT, e))?;
    if let Some(last) = parts.last_mut() {
        last.push(b'\n');
    }
    Ok(super::Printed::from_parts(parts))
}

/// From this many nodes on, a document is printed on every core.
const PARALLEL_NODES: usize = 16_384;

/// Prints a large top-level object in runs of its entries, each on a core
/// of its own. The first error in document order is reported.
fn emit_in_parts(
    map: &[Entry],
    indent: &[u8],
) -> Result<Vec<zeroize::Zeroizing<Vec<u8>>>, NonFinite> {
    let runs: Vec<&[Entry]> = map
        .chunks(map.len().div_ceil(crate::par::threads()))
        .collect();
    let mut pair_seen = false;
    let parts: Vec<(&[Entry], bool)> = runs
        .into_iter()
        .map(|run| {
            let first = !pair_seen;
            pair_seen |= run.iter().any(|e| matches!(e, Entry::Pair(..)));
            (run, first)
        })
        .collect();
    if !pair_seen {
        return Ok(vec![zeroize::Zeroizing::new(b"{}".to_vec())]);
    }
    let last = parts.len() - 1;
    let runs: Vec<&[Entry]> = parts.iter().map(|&(run, _)| run).collect();
    let capacities = super::part_capacities(&runs, indent.len(), 1);
    let printed = crate::par::map(
        parts.into_iter().zip(capacities).enumerate().collect(),
        |(i, ((run, first), capacity))| {
            let mut writer = Indented::with_capacity(indent, capacity);
            if i == 0 {
                writer.out.push(b'{');
            }
            writer.pairs(run, 0, first)?;
            if i == last {
                writer.close_object(0);
            }
            Ok(zeroize::Zeroizing::new(writer.out))
        },
    );
    printed.into_iter().collect()
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
