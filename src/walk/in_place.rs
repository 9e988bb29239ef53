//! The two walks of a change made while the values stay encrypted (`set`,
//! `unset`; see [`crate::rewrite::InPlace`]).
//!
//! [`open_in_place`] decrypts every value only to hash it: the plaintext
//! goes to a few arenas, not into the tree, which keeps its `ENC[...]`
//! strings. Once the change is made, [`reseal_in_place`] walks the changed
//! tree: a leaf whose `ENC[...]` string is the very string the first walk
//! opened (the same allocation, so certainly unchanged) keeps it and is
//! hashed from the arena; any other leaf is new, and is hashed and sealed.
//! Only the changed path is encrypted again, and no plaintext tree is
//! built, freed or wiped.

use std::collections::HashMap;
use std::ops::Range;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

use super::{
    hex_upper, mac_bytes, mac_hasher, path_of, position_aad, seal_comment_text, walk_runs,
    CommentTarget, Direction, Leaf, StopOnPanic, WalkError, Walked, BATCH, PARALLEL_JOBS,
};
use crate::cipher::{CipherError, Stash, ValueCipher};
use crate::metadata::Metadata;
use crate::tree::{Document, Value};

/// The `type:` tags an opened value may carry, so that it records its own
/// in a byte.
const KINDS: [&str; 7] = ["str", "bytes", "int", "float", "bool", "time", "comment"];

/// What [`open_in_place`] learned of a file's encrypted values: each one's
/// plaintext, to hash again once the document has changed. Wiped when
/// dropped.
pub(crate) struct Opening {
    leaves: Vec<OpenedLeaf>,
    arenas: Vec<Zeroizing<Vec<u8>>>,
    aads: String,
    /// Whether the document, left unchanged, is already as
    /// [`reseal_in_place`] would leave it: it has no comment to reseal.
    /// (Every value the rules select is then an opened or empty string,
    /// which resealing keeps; any other value fails the opening.)
    settled: bool,
}

impl std::fmt::Debug for Opening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opening")
            .field("values", &self.leaves.len())
            .finish()
    }
}

/// A non-empty encrypted value the first walk opened, in document order.
struct OpenedLeaf {
    /// Where its `ENC[...]` string's bytes are: which string of the changed
    /// tree it is, as long as the tree and every value the change took out
    /// of it are alive.
    at: usize,
    /// Its arena, and there its plaintext (`start..end`) and what the MAC
    /// covers of it (`mac_start..mac_end`: the same bytes for a string; for
    /// a number, boolean or time, their canonical form, written after).
    arena: usize,
    start: usize,
    end: usize,
    mac_start: usize,
    mac_end: usize,
    /// Its `type:` tag, an index into [`KINDS`].
    kind: u8,
    /// Where its additional data is in [`Opening::aads`].
    aad_start: usize,
    aad_len: usize,
}

impl Opening {
    /// Whether resealing the document unchanged would change nothing in it
    /// (it has no comment to reseal): a piece of a large file that the
    /// change does not touch is then printed as it was opened.
    pub(crate) fn is_settled(&self) -> bool {
        self.settled
    }

    fn plaintext(&self, leaf: &OpenedLeaf) -> &[u8] {
        &self.arenas[leaf.arena][leaf.start..leaf.end]
    }

    fn mac_bytes(&self, leaf: &OpenedLeaf) -> &[u8] {
        &self.arenas[leaf.arena][leaf.mac_start..leaf.mac_end]
    }
}

/// The length of an `ENC[...]` string's parts other than its data: the
/// frame, a 32-byte IV and a 16-byte tag in base64, and the shortest type.
const ENC_FIXED_LEN: usize = "ENC[AES256_GCM,data:,iv:,tag:,type:str]".len() + 44 + 24;

/// What one batch of the first walk opened, or where it failed.
struct Opened {
    arena: Zeroizing<Vec<u8>>,
    leaves: Vec<OpenedLeaf>,
    /// Where in the arena, in order, is what the MAC covers of the batch's
    /// leaves (a leaf the rules leave in the clear copied there too):
    /// the thread hashing the batches reads these runs of bytes, not the
    /// tree, whose values another core may have just read.
    mac_runs: Vec<Range<usize>>,
    failed: Option<(usize, CipherError)>,
}

/// Decrypts every value of `doc` that `meta.rule` says is encrypted, only
/// to hash it, and returns the MAC of the plaintext (upper-case hex) and
/// the plaintexts for [`reseal_in_place`]. The tree is left as it was:
/// encrypted. Comments are not opened: the MAC does not cover them.
pub(crate) fn open_in_place(
    doc: &mut Document,
    meta: &Metadata,
    cipher: &ValueCipher,
) -> Result<(String, Opening), WalkError> {
    let mut hasher = mac_hasher(meta);
    let opening = open_into(doc, meta, cipher, &mut hasher, crate::par::threads() - 1)?;
    Ok((hex_upper(&hasher.finalize()), opening))
}

/// Opens a piece of a large file (some of its top-level entries, as a
/// one-branch document) as [`open_in_place`] opens a whole one, on the
/// calling thread, and returns what the MAC covers of it, in order, with
/// the plaintexts: the pieces' bytes, hashed one after the other, are what
/// a walk of the whole hashes.
pub(crate) fn open_piece_in_place(
    piece: &mut Document,
    meta: &Metadata,
    cipher: &ValueCipher,
) -> Result<(Zeroizing<Vec<u8>>, Opening), WalkError> {
    let mut bytes = MacBytes::default();
    let opening = open_into(piece, meta, cipher, &mut bytes, 0)?;
    Ok((bytes.0, opening))
}

/// Bytes the MAC covers, gathered to be hashed on another thread.
#[derive(Default)]
struct MacBytes(Zeroizing<Vec<u8>>);

impl sha2::digest::Update for MacBytes {
    fn update(&mut self, data: &[u8]) {
        super::push_wiping(&mut self.0, data);
    }
}

/// Opens `doc` (see [`open_in_place`]) with `helpers` more threads when it
/// is large, feeding what the MAC covers to `mac` in order.
fn open_into(
    doc: &mut Document,
    meta: &Metadata,
    cipher: &ValueCipher,
    mac: &mut impl sha2::digest::Update,
    helpers: usize,
) -> Result<Opening, WalkError> {
    let Walked {
        leaves,
        aads,
        comment_jobs,
        failed,
    } = walk_runs(doc, meta, Direction::Decrypt);
    let settled = comment_jobs.is_empty();
    let batches: Vec<&[Leaf]> = leaves.chunks(BATCH).collect();
    let done: Vec<OnceLock<Opened>> = batches.iter().map(|_| OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    // Takes the next batch nobody has, if any, and opens it. A batch taken
    // is always opened, so every batch before a failed one is opened too.
    let take = || {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let k = next.fetch_add(1, Ordering::Relaxed);
        let Some(batch) = batches.get(k) else {
            return false;
        };
        let _stop_on_panic = StopOnPanic(&stop);
        let opened = open_batch(cipher, k, batch, &aads);
        if opened.failed.is_some() {
            stop.store(true, Ordering::Relaxed);
        }
        // Set once: `k` came from the counter only this thread read.
        let _ = done[k].set(opened);
        true
    };
    let workers = if leaves.len() < PARALLEL_JOBS {
        0
    } else {
        helpers
    };
    // The calling thread hashes the batches in order as they are opened,
    // opening batches itself while the next one is not ready.
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| while take() {});
        }
        let mut hashed = 0;
        while hashed < batches.len() {
            match done[hashed].get() {
                Some(opened) if opened.failed.is_none() => {
                    hash_batch(mac, opened);
                    hashed += 1;
                }
                Some(_) => break,
                None if take() => {}
                None if stop.load(Ordering::Relaxed) => break,
                None => std::thread::yield_now(),
            }
        }
    });
    let mut opened: Vec<Opened> = done.into_iter().map_while(OnceLock::into_inner).collect();
    if let Some(k) = opened.iter().position(|batch| batch.failed.is_some()) {
        if let Some((i, source)) = opened.swap_remove(k).failed {
            let path = leaves[k * BATCH + i].path(&aads);
            return Err(WalkError::Value { path, source });
        }
    }
    if let Some(failure) = failed {
        return Err(failure);
    }
    drop(leaves);
    let mut opening = Opening {
        leaves: Vec::with_capacity(opened.iter().map(|b| b.leaves.len()).sum()),
        arenas: Vec::with_capacity(opened.len()),
        aads: String::new(),
        settled,
    };
    for mut batch in opened {
        opening.leaves.append(&mut batch.leaves);
        opening.arenas.push(batch.arena);
    }
    opening.aads = aads;
    Ok(opening)
}

/// Feeds a batch's leaves to the MAC in order (see [`Opened::mac_runs`]).
fn hash_batch(mac: &mut impl sha2::digest::Update, opened: &Opened) {
    for run in &opened.mac_runs {
        mac.update(&opened.arena[run.clone()]);
    }
}

/// Notes that the MAC covers `range` of the arena next, extending the last
/// run when it ends where `range` starts.
fn push_mac_run(runs: &mut Vec<Range<usize>>, range: Range<usize>) {
    match runs.last_mut() {
        Some(last) if last.end == range.start => last.end = range.end,
        _ => runs.push(range),
    }
}

/// The address of a leaf's string if the cipher works on it and it is not
/// empty: the leaves the first walk opens and the second recognises.
fn opened_at(leaf: &Leaf<'_>) -> Option<usize> {
    match &*leaf.value {
        Value::Str(s) if leaf.crypt && !s.is_empty() => Some(s.as_ptr() as usize),
        _ => None,
    }
}

/// Opens the encrypted leaves of one batch into an arena of its own,
/// stopping at the first that fails.
fn open_batch(cipher: &ValueCipher, arena_index: usize, batch: &[Leaf<'_>], aads: &str) -> Opened {
    // Room for every plaintext (three quarters of its base64, which is what
    // an `ENC[...]` string holds beyond its fixed parts) and a little for
    // the MAC form of a number, allocated once: a growing arena would leave
    // its old blocks, plaintext in them, to the allocator.
    let room: usize = batch
        .iter()
        .map(|leaf| match &*leaf.value {
            Value::Str(text) if opened_at(leaf).is_some() => {
                text.len().saturating_sub(ENC_FIXED_LEN) * 3 / 4 + 12
            }
            _ if leaf.hash => mac_bytes(leaf.value).len(),
            _ => 0,
        })
        .sum();
    let mut opened = Opened {
        arena: Zeroizing::new(Vec::with_capacity(room)),
        leaves: Vec::new(),
        mac_runs: Vec::new(),
        failed: None,
    };
    for (i, leaf) in batch.iter().enumerate() {
        let Some(at) = opened_at(leaf) else {
            if leaf.hash {
                let start = opened.arena.len();
                opened.arena.extend_from_slice(&mac_bytes(leaf.value));
                push_mac_run(&mut opened.mac_runs, start..opened.arena.len());
            }
            continue;
        };
        let Value::Str(text) = &*leaf.value else {
            continue;
        };
        match open_leaf(cipher, text, leaf.aad(aads), &mut opened.arena) {
            Ok((kind, plain, mac)) => {
                push_mac_run(&mut opened.mac_runs, mac.clone());
                opened.leaves.push(OpenedLeaf {
                    at,
                    arena: arena_index,
                    start: plain.start,
                    end: plain.end,
                    mac_start: mac.start,
                    mac_end: mac.end,
                    kind,
                    aad_start: leaf.aad_start,
                    aad_len: leaf.aad_len,
                });
            }
            Err(e) => {
                opened.failed = Some((i, e));
                break;
            }
        }
    }
    opened
}

/// Decrypts one value onto the end of `arena`, and after it, unless it is
/// a string, what the MAC covers of it. Returns its kind and where its
/// plaintext and its MAC bytes are.
fn open_leaf(
    cipher: &ValueCipher,
    text: &str,
    aad: &str,
    arena: &mut Vec<u8>,
) -> Result<(u8, Range<usize>, Range<usize>), CipherError> {
    let start = arena.len();
    let kind = cipher.open_appending(text, aad, arena)?;
    let end = arena.len();
    let index = KINDS
        .iter()
        .position(|k| *k == kind)
        .ok_or_else(|| CipherError::UnknownType(kind.to_string()))?;
    if matches!(kind, "str" | "bytes") {
        return Ok((index as u8, start..end, start..end));
    }
    let plain = Zeroizing::new(arena[start..end].to_vec());
    let mut value = crate::cipher::typed_value(kind, plain)?;
    arena.extend_from_slice(&mac_bytes(&value));
    crate::tree::wipe_value(&mut value);
    Ok((index as u8, start..end, end..arena.len()))
}

/// Seals `doc` after a change made while its values stayed encrypted:
/// every value [`open_in_place`] opened that is still in the tree keeps its
/// `ENC[...]` string; every other value the rules select is encrypted (a
/// value that replaced one with the same path, type and plaintext gets
/// that one's string back, as the reference gives it its IV). Comments
/// are resealed as the reference would after decrypting them: one that
/// does not decrypt is encrypted. Returns what the MAC of the changed
/// plaintext covers, to hash (see [`MacInput::digest`]) while the file is
/// printed.
///
/// `retired` holds every value the change took out of the tree: kept
/// alive until now, no new string can share an address with one that
/// was opened.
pub(crate) fn reseal_in_place<'o>(
    doc: &mut Document,
    meta: &Metadata,
    cipher: &ValueCipher,
    opening: &'o Opening,
    retired: &[Value],
) -> Result<MacInput<'o>, WalkError> {
    let Walked {
        leaves,
        aads,
        comment_jobs,
        failed,
    } = walk_runs(doc, meta, Direction::Encrypt);
    if let Some(failure) = failed {
        return Err(failure);
    }
    for job in comment_jobs {
        let aad = &aads[job.aad_start..job.aad_start + job.aad_len];
        match job.target {
            CommentTarget::Text(text) => {
                if let Some(sealed) = reseal_comment(cipher, meta, text, aad)? {
                    text.zeroize();
                    *text = sealed;
                }
            }
            CommentTarget::Item(item) => {
                if let Value::Comment(comment) = item {
                    let sealed = match reseal_comment(cipher, meta, &comment.text, aad)? {
                        Some(sealed) => sealed,
                        None => comment.text.clone(),
                    };
                    crate::tree::wipe_value(item);
                    *item = Value::Str(sealed);
                }
            }
        }
    }
    let mut gone = HashMap::new();
    for value in retired {
        strings_in(value, &mut gone);
    }
    let mut stash = Stash::default();
    for leaf in opening.leaves.iter().filter(|l| gone.contains_key(&l.at)) {
        let aad = &opening.aads[leaf.aad_start..leaf.aad_start + leaf.aad_len];
        let kind = KINDS[usize::from(leaf.kind)];
        let digest = cipher.stash_digest_of(position_aad(aad), kind, opening.plaintext(leaf));
        stash.record(digest, gone[&leaf.at]);
    }
    let mut kept = opening
        .leaves
        .iter()
        .filter(|l| !gone.contains_key(&l.at))
        .peekable();
    let mut mac = MacInput {
        hasher: mac_hasher(meta),
        pieces: Vec::with_capacity(leaves.len()),
    };
    for leaf in leaves {
        let at = match &*leaf.value {
            Value::Str(s) if !s.is_empty() => Some(s.as_ptr() as usize),
            _ => None,
        };
        if let (Some(at), Some(old)) = (at, kept.peek()) {
            if at == old.at {
                if !leaf.crypt {
                    return Err(WalkError::LostTrack);
                }
                mac.pieces.push(MacPiece::Opened(opening.mac_bytes(old)));
                kept.next();
                continue;
            }
        }
        if leaf.hash {
            let bytes = Zeroizing::new(mac_bytes(leaf.value).into_owned());
            mac.pieces.push(MacPiece::Copied(bytes));
        }
        if leaf.crypt {
            let aad = leaf.aad(&aads);
            let sealed = cipher
                .encrypt_stashed(leaf.value, aad, Some(&mut stash))
                .map_err(|source| WalkError::Encrypt {
                    path: leaf.path(&aads),
                    source,
                })?;
            crate::tree::wipe_value(leaf.value);
            *leaf.value = Value::Str(sealed);
        }
    }
    if kept.next().is_some() {
        return Err(WalkError::LostTrack);
    }
    Ok(mac)
}

/// What the MAC of a resealed document covers, in order: bytes of the
/// opened plaintexts, and copies of what the tree held in the clear or
/// was given (wiped when dropped). Nothing here borrows the tree, so it
/// is hashed while the tree is printed.
pub(crate) struct MacInput<'o> {
    hasher: Sha512,
    pieces: Vec<MacPiece<'o>>,
}

enum MacPiece<'o> {
    Opened(&'o [u8]),
    Copied(Zeroizing<Vec<u8>>),
}

impl MacInput<'_> {
    /// The MAC, as upper-case hex.
    pub(crate) fn digest(mut self) -> String {
        let mut hasher = std::mem::take(&mut self.hasher);
        self.feed(&mut hasher);
        hex_upper(&hasher.finalize())
    }

    /// What the MAC covers, gathered (a piece of a large file, see
    /// [`open_piece_in_place`]).
    pub(crate) fn into_bytes(self) -> Zeroizing<Vec<u8>> {
        let mut bytes = MacBytes::default();
        self.feed(&mut bytes);
        bytes.0
    }

    fn feed(&self, mac: &mut impl sha2::digest::Update) {
        for piece in &self.pieces {
            mac.update(match piece {
                MacPiece::Opened(bytes) => bytes,
                MacPiece::Copied(bytes) => bytes.as_slice(),
            });
        }
    }
}

/// A comment of the changed tree as sealing a decrypted tree would leave
/// it: one that decrypts keeps its `ENC[...]` string (`None`); one that
/// does not was plaintext, and is encrypted now.
fn reseal_comment(
    cipher: &ValueCipher,
    meta: &Metadata,
    text: &str,
    aad: &str,
) -> Result<Option<String>, WalkError> {
    match cipher.decrypt(text, position_aad(aad)) {
        Ok(mut opened @ (Value::Comment(_) | Value::Str(_))) => {
            crate::tree::wipe_value(&mut opened);
            Ok(None)
        }
        Ok(mut other) => {
            let kind = super::kind_name(&other);
            crate::tree::wipe_value(&mut other);
            Err(WalkError::BadComment {
                path: path_of(aad),
                kind,
            })
        }
        Err(_) => seal_comment_text(cipher, &meta.rule, text, aad, None).map(Some),
    }
}

/// Every non-empty string of `value`, by address.
fn strings_in<'v>(value: &'v Value, out: &mut HashMap<usize, &'v str>) {
    match value {
        Value::Str(s) if !s.is_empty() => {
            out.insert(s.as_ptr() as usize, s.as_str());
        }
        Value::Map(map) => {
            for entry in map {
                if let crate::tree::Entry::Pair(_, value) = entry {
                    strings_in(value, out);
                }
            }
        }
        Value::List(items) => items.iter().for_each(|item| strings_in(item, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use regex::Regex;
    use rsops_keysource::DataKey;

    use super::*;
    use crate::extract::Step;
    use crate::formats::{EmitOptions, Format};
    use crate::metadata::CryptRule;
    use crate::tree::Map;
    use crate::walk::{decrypt_document, decrypt_document_stashing, encrypt_values};

    /// Every kind of leaf, nesting, comments in maps and lists, and keys
    /// the rules below pick out.
    const SAMPLE: &str = "\
# top comment
name: alice
empty: ''
nothing: null
port: -5432
ratio: 1.5
on: true
at: 2024-01-02T03:04:05Z
public_unencrypted: visible
count_unencrypted: 3
db:
    # a note
    password: s3cr3t
    host: db.local
    tags:
        - a
        # in list
        - 7
        - null
        - ''
        - deep: false
---
other: doc two
";

    fn key(k: &str) -> Step {
        Step::Key(k.into())
    }

    enum Change {
        Set(Vec<Step>, Value),
        Unset(Vec<Step>),
    }

    fn apply(change: &Change, root: &mut Map, retired: &mut Vec<Value>) {
        match change {
            Change::Set(path, value) => {
                crate::update::set_retiring(root, path, value.clone(), retired).unwrap();
            }
            Change::Unset(path) => crate::update::unset_retiring(root, path, retired).unwrap(),
        }
    }

    fn changes() -> Vec<Change> {
        vec![
            Change::Set(vec![key("name")], Value::Str("bob".into())),
            Change::Set(vec![key("name")], Value::Str("alice".into())),
            Change::Set(vec![key("port")], Value::Int(-5432)),
            Change::Set(vec![key("db"), key("password")], Value::Int(5)),
            Change::Set(
                vec![key("db")],
                Value::Map(vec![crate::tree::Entry::Pair(
                    "password".into(),
                    Value::Str("s3cr3t".into()),
                )]),
            ),
            Change::Set(
                vec![key("db"), key("tags"), Step::Index(9)],
                Value::Bool(true),
            ),
            Change::Set(vec![key("on"), key("deeper")], Value::Str("x".into())),
            Change::Set(vec![key("new"), Step::Index(0)], Value::Float(2.5)),
            Change::Unset(vec![key("db"), key("tags"), Step::Index(0)]),
            Change::Unset(vec![key("db")]),
            Change::Unset(vec![key("name")]),
        ]
    }

    fn metadata(rule: CryptRule, mac_only_encrypted: bool) -> Metadata {
        Metadata {
            last_modified: "2024-05-06T07:08:09Z".into(),
            mac: String::new(),
            version: None,
            rule,
            mac_only_encrypted,
            shamir_threshold: 0,
            key_groups: Vec::new(),
        }
    }

    fn print(doc: &Document) -> String {
        let bytes = Format::Yaml.emit(doc, EmitOptions::default()).unwrap();
        String::from_utf8(bytes).unwrap()
    }

    fn plaintext(printed: &str, meta: &Metadata, cipher: &ValueCipher) -> String {
        let mut doc = Format::Yaml.parse(printed.as_bytes()).unwrap();
        decrypt_document(&mut doc, meta, cipher).unwrap();
        print(&doc)
    }

    /// A change made in place seals to what the same change of the
    /// decrypted tree seals to: the same MACs, the same plaintext, and the
    /// same ciphertext wherever the decrypted path keeps it.
    #[test]
    fn in_place_matches_a_change_of_the_decrypted_tree() {
        let data_key = DataKey::from_slice(&[9; 32]).unwrap();
        let cipher = ValueCipher::new(&data_key);
        let rules = [
            (CryptRule::UnencryptedSuffix("_unencrypted".into()), false),
            (CryptRule::UnencryptedSuffix("_unencrypted".into()), true),
            (
                CryptRule::EncryptedRegex(Regex::new("^(db|name|port)$").unwrap()),
                true,
            ),
            (
                CryptRule::UnencryptedRegex(Regex::new("^(host|on)$").unwrap()),
                false,
            ),
        ];
        for (rule, mac_only) in rules {
            let meta = metadata(rule, mac_only);
            let mut doc = Format::Yaml.parse_plain(SAMPLE.as_bytes()).unwrap();
            crate::encrypt::comments_on_own_lines(&mut doc);
            encrypt_values(&mut doc, &meta, &cipher, None).unwrap();
            let encrypted = print(&doc);
            for change in changes() {
                let mut opened = Format::Yaml.parse(encrypted.as_bytes()).unwrap();
                let mut stash = Stash::default();
                let old_mac =
                    decrypt_document_stashing(&mut opened, &meta, &cipher, &mut stash).unwrap();
                apply(&change, &mut opened.branches[0], &mut Vec::new());
                let new_mac =
                    encrypt_values(&mut opened, &meta, &cipher, Some(&mut stash)).unwrap();
                let expected = print(&opened);

                let mut kept = Format::Yaml.parse(encrypted.as_bytes()).unwrap();
                let (mac, opening) = open_in_place(&mut kept, &meta, &cipher).unwrap();
                assert_eq!(mac, old_mac);
                let mut retired = Vec::new();
                apply(&change, &mut kept.branches[0], &mut retired);
                let mac = reseal_in_place(&mut kept, &meta, &cipher, &opening, &retired)
                    .unwrap()
                    .digest();
                assert_eq!(mac, new_mac);
                let got = print(&kept);

                assert_eq!(
                    plaintext(&got, &meta, &cipher),
                    plaintext(&expected, &meta, &cipher)
                );
                assert_eq!(got.lines().count(), expected.lines().count());
                for (g, e) in got.lines().zip(expected.lines()) {
                    // Only values sealed anew (fresh IVs) may differ.
                    assert!(
                        g == e || (!encrypted.contains(g) && !encrypted.contains(e)),
                        "{g}\n{e}"
                    );
                }
            }
        }
    }

    /// A comment left in the clear in an encrypted file is encrypted, as
    /// sealing the decrypted tree would; a changed file whose values no
    /// longer decrypt is refused before any change.
    #[test]
    fn plaintext_comments_are_sealed_and_bad_values_refused() {
        let data_key = DataKey::from_slice(&[9; 32]).unwrap();
        let cipher = ValueCipher::new(&data_key);
        let meta = metadata(CryptRule::UnencryptedSuffix("_unencrypted".into()), false);
        let mut doc = Format::Yaml.parse_plain(b"a: 1\nb: two\n").unwrap();
        encrypt_values(&mut doc, &meta, &cipher, None).unwrap();
        let encrypted = format!("# added by hand\n{}", print(&doc));
        let mut kept = Format::Yaml.parse(encrypted.as_bytes()).unwrap();
        let (_, opening) = open_in_place(&mut kept, &meta, &cipher).unwrap();
        reseal_in_place(&mut kept, &meta, &cipher, &opening, &[])
            .unwrap()
            .digest();
        let got = print(&kept);
        assert!(got.starts_with("#ENC[AES256_GCM,"), "{got}");
        assert!(plaintext(&got, &meta, &cipher).starts_with("# added by hand\n"));

        let other = ValueCipher::new(&DataKey::from_slice(&[8; 32]).unwrap());
        let mut kept = Format::Yaml.parse(encrypted.as_bytes()).unwrap();
        let err = open_in_place(&mut kept, &meta, &other).unwrap_err();
        assert!(
            matches!(err, WalkError::Value { ref path, .. } if path == "a"),
            "{err}"
        );
    }
}
