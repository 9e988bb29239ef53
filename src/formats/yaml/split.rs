//! Loading a YAML file in parts, on several cores when it is large, each
//! part read by the fast reader as far as it goes ([`fast`]).
//!
//! The text is cut into parts just before top-level keys, each part is
//! loaded as a document of its own, and the parts' root mappings are joined.
//! That gives the tree the whole text gives whenever every part loads: a
//! cut at a line that starts in column 0 ends every block node, plain
//! scalar and block scalar of the root mapping's previous entry, and a cut
//! inside anything column 0 does not end (a quoted scalar or flow
//! collection over several lines) leaves the part before it unterminated,
//! which fails to load. Only cuts that cannot change where a comment goes,
//! start a document or end one are made (see [`is_cut`]); a part that uses
//! aliases (an anchor may be in another part), a key that two parts share,
//! or any failure sends the whole text to the one-thread loader, whose
//! result and error messages are the reference's.

use super::fast;
use super::load::Loader;
use crate::tree::{Document, Entry, Map};

/// The documents of `text`, loaded in `parts` parts, or `None` when the
/// text has to be loaded whole. Lines must break at `\n` only (go-yaml
/// also breaks them at NEL and the Unicode separators, which this does
/// not look for).
pub(super) fn load(text: &str, parts: usize) -> Option<Vec<Map>> {
    load_parts(chunks(text, parts).unwrap_or_else(|| vec![text]))
}

/// `text` cut into about `parts` parts, each loadable on its own by
/// [`load_piece`]; `None` when it cannot be cut.
pub(super) fn chunks(text: &str, parts: usize) -> Option<Vec<&str>> {
    let cuts = cuts(text, parts);
    if cuts.is_empty() {
        return None;
    }
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &cut in &cuts {
        chunks.push(&text[start..cut]);
        start = cut;
    }
    chunks.push(&text[start..]);
    Some(chunks)
}

/// One part of [`chunks`], loaded: its root mapping's entries, or `None`
/// when it does not load as one mapping without aliases (the whole text
/// then has to be loaded whole). Whether two parts share a key is for the
/// caller to check.
pub(super) fn load_piece(chunk: &str) -> Option<Document> {
    match load_part(chunk)? {
        (doc, 0) if doc.branches.len() == 1 => Some(doc),
        _ => None,
    }
}

/// Loads each part on a core of its own and joins their root mappings.
/// Each part is held as a [`Document`] until joined, so that what was
/// loaded is wiped when the text has to be loaded whole after all.
fn load_parts(parts: Vec<&str>) -> Option<Vec<Map>> {
    let loaded = crate::par::map(parts, load_part);
    let mut loaded: Vec<(Document, usize)> = loaded.into_iter().collect::<Option<_>>()?;
    let mut keys = foldhash::HashSet::default();
    for (doc, aliases) in &loaded {
        let [map] = doc.branches.as_slice() else {
            return None;
        };
        let repeated = map.iter().any(|entry| match entry {
            Entry::Pair(key, _) => !keys.insert(key.as_str()),
            Entry::Comment(_) => false,
        });
        if *aliases > 0 || repeated {
            return None;
        }
    }
    let total = loaded.iter().map(|(doc, _)| doc.branches[0].len()).sum();
    let mut root = Document::new(vec![Vec::with_capacity(total)]);
    for (doc, _) in &mut loaded {
        crate::tree::move_entries(&mut root.branches[0], &mut doc.branches[0]);
    }
    Some(std::mem::take(&mut root.branches))
}

/// One part: the run of top-level entries at its start that the fast
/// reader takes, and the rest, if any, loaded by the full loader. The two
/// join where a part could be cut ([`is_cut`]); elsewhere the full loader
/// reads the whole part. Returns the part's document and how many nodes
/// its aliases copied.
fn load_part(chunk: &str) -> Option<(Document, usize)> {
    let (mut doc, end) = fast::prefix(chunk);
    if end == chunk.len() && end > 0 {
        return Some((doc, 0));
    }
    let from = if end > 0 && is_cut(chunk.as_bytes(), end) {
        end
    } else {
        drop(std::mem::take(&mut doc));
        0
    };
    let (docs, aliases) = Loader::new(&chunk[from..]).documents_and_aliases().ok()?;
    let mut rest = Document::new(docs);
    if from == 0 {
        return Some((rest, aliases));
    }
    let [map] = rest.branches.as_mut_slice() else {
        return None;
    };
    crate::tree::move_entries(&mut doc.branches[0], map);
    Some((doc, aliases))
}

/// Where to cut `text` into about `parts` equal parts: at line starts that
/// pass [`is_cut`], the first one at or after each ideal position.
fn cuts(text: &str, parts: usize) -> Vec<usize> {
    let bytes = text.as_bytes();
    if parts < 2 || !root_at_column_zero(bytes) {
        return Vec::new();
    }
    crate::par::cuts_near(bytes.len(), parts, |ideal| {
        memchr::memchr_iter(b'\n', &bytes[ideal..])
            .map(|i| ideal + i + 1)
            .take(MAX_LINES_SEARCHED)
            .find(|&at| is_cut(bytes, at))
    })
}

/// Whether the first document's root starts in column 0, which a cut
/// before a column-0 key relies on (under a root indented further, such a
/// key is an error, not an entry). Looks past comments, blank lines, `---`
/// and directives; anything else first (a document marker with content,
/// an indented line) means no cuts.
fn root_at_column_zero(bytes: &[u8]) -> bool {
    let first = bytes
        .split(|&b| b == b'\n')
        .find(|line| {
            let content = line.trim_ascii();
            !(content.is_empty()
                || content.starts_with(b"#")
                || line.starts_with(b"%")
                || line.trim_ascii_end() == b"---")
        })
        .unwrap_or_default();
    first
        .first()
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

/// How many lines past an ideal position are tried before giving up on it.
const MAX_LINES_SEARCHED: usize = 4096;

/// Whether the line starting at `at` can start a part: it begins in column
/// 0 with a letter, digit or `_` (a plain key of the root mapping, not a
/// comment, directive, document marker, sequence item or quoted key), and
/// neither it nor the line before holds a `#` (no comment is waiting to be
/// placed across the cut) and the line before is not empty or a document
/// marker (which would end the document or carry a comment's blank line).
fn is_cut(bytes: &[u8], at: usize) -> bool {
    let starts_key = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if at == 0 || at >= bytes.len() || bytes[at - 1] != b'\n' || !starts_key(bytes[at]) {
        return false;
    }
    let line_end = bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |n| at + n);
    let before = &bytes[..at - 1];
    let prev_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |n| n + 1);
    let prev = &bytes[prev_start..at - 1];
    let blank = prev.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\r'));
    !blank
        && !prev.starts_with(b"---")
        && !prev.starts_with(b"...")
        && !prev.starts_with(b"%")
        && !prev.contains(&b'#')
        && !bytes[at..line_end].contains(&b'#')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every possible cut gives the whole text's tree, or is refused.
    fn assert_cuts_agree(text: &str) {
        let whole = Loader::new(text).documents().ok();
        let bytes = text.as_bytes();
        let cuts = (0..text.len()).filter(|&at| root_at_column_zero(bytes) && is_cut(bytes, at));
        for at in cuts {
            if let Some(joined) = load_parts(vec![&text[..at], &text[at..]]) {
                assert_eq!(
                    whole.as_deref(),
                    Some(&joined[..]),
                    "cut at {at} in {text:?}"
                );
            }
        }
    }

    #[test]
    fn cuts_keep_the_tree() {
        for text in [
            "a: 1\nb: 2\nc:\n  d: 3\n  e: [1,\n    2]\nf: x\n",
            "a: \"multi\nline: quoted\"\nb: 'also\nc: single'\nd: 1\n",
            "a: [1,\nb]\nc: {x: 1,\ny: 2}\nd: 1\n",
            "a: |\n  block\n  text\n\nb: >+\n  kept\n\n\nc: 1\n",
            "a: plain\n  continued\nb: 2\n",
            "a: 1\n...\nb: 2\n",
            "a: 1\n---\nb: 2\n",
            "%YAML 1.2\n---\na: 1\nb: 2\n",
            "a: 1\n# head of b\nb: 2 # line\n# foot\nc:\n  d: 1\n  # foot of c\ne: 3\n",
            "a: &x 1\nb: *x\nc: 2\n",
            "a: 1\na: 2\n",
            "? a\nb: 1\nc:\n- 1\n- 2\nd:\n  - x\n",
            "a: 1\r\nb: 2\r\nc: 3\r\n",
            "a:\nb:\n  c:\nd: 1\n",
            "a: 1\nb c\nd: 2\n",
            "a: \"x\"\nb: 'y'\nc: !!binary aGVsbG8=\nd: 2001-12-14\ne: 0x10\n",
            "a: |\nb: 1\nc: >-\nd: 2\ne: |+\nf: 3\ng: ?\nh: [\n]\ni: {\n}\n",
            "a:\n  b: &anchor\n    c: 1\nd: x\ne:\n  <<: *anchor\n",
            "a: 'it''s'\nb: \"esc \\\" q\"\nc: plain: colon\nd: -1\n",
            "      a:\nb: 1\n",
            "# c\n---\n  a: 1\nb: 2\n",
        ] {
            assert_cuts_agree(text);
        }
    }

    /// The reference-made YAML fixtures: comments in every position,
    /// several documents, block scalars, the sops metadata.
    #[test]
    fn cuts_keep_fixture_trees() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut seen = 0;
        for dir in [root.clone(), root.join("getsops")] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    assert_cuts_agree(&std::fs::read_to_string(&path).unwrap());
                    seen += 1;
                }
            }
        }
        assert!(seen >= 7, "{seen} fixtures");
    }

    #[test]
    fn refuses_unsafe_cuts() {
        let text = b"a: 1\n\nb: 2\n# c\nc: 3\nd: 4 # x\n---\ne: 5\nf: 6\n-\n";
        let cuts: Vec<usize> = (0..text.len()).filter(|&at| is_cut(text, at)).collect();
        // Only `f`: `b` follows a blank line, `c` a comment, `d` has one,
        // `e` follows a document marker.
        assert_eq!(cuts, [38]);
    }

    #[test]
    fn loads_in_parts_like_whole() {
        let mut text = String::new();
        for s in 0..200 {
            text.push_str(&format!("section_{s}:\n"));
            for k in 0..5 {
                text.push_str(&format!("    key_{k}: value {s} {k}\n"));
            }
        }
        let whole = Loader::new(&text).documents().unwrap();
        for parts in 2..6 {
            assert!(!cuts(&text, parts).is_empty());
            assert_eq!(load(&text, parts).as_deref(), Some(&whole[..]));
        }
        let shared = format!("{text}section_3:\n  again: 1\n");
        assert!(load(&shared, 2).is_none());
    }
}
