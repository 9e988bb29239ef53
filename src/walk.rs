//! Decrypting or encrypting a whole tree in place and computing its MAC in
//! the same pass.
//!
//! This mirrors the reference's `walkBranch`/`walkSlice` and its
//! `Tree.Decrypt`/`Tree.Encrypt` exactly: both directions share one walk, so
//! which leaves are encrypted follows the file's single [`CryptRule`] the
//! same way, each value's additional data is the map keys on its path
//! (`a:b:`), comments feed the comment-regex rules, and the SHA-512 MAC covers
//! the plaintext leaves in document order.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

use crate::cipher::{CipherError, Stash, StashDigest, StashSlot, ValueCipher};
use crate::metadata::{CryptRule, Metadata};
use crate::tree::{Document, Entry, Value};

mod in_place;

pub(crate) use in_place::{open_in_place, open_piece_in_place, reseal_in_place, Opening};

/// Which way a walk transforms the tree's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// `ENC[...]` values become plaintext.
    Decrypt,
    /// Plaintext values become `ENC[...]`.
    Encrypt,
}

/// The first bytes hashed when `mac_only_encrypted` is set, so such a MAC
/// never equals the MAC of the same tree without the option.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// A value that could not be decrypted, with the path that names it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    /// An encrypted value failed to decrypt.
    #[error("could not decrypt the value at `{path}`: {source}")]
    Value {
        /// The keys leading to the value, joined with `:`.
        path: String,
        /// What went wrong.
        source: CipherError,
    },
    /// A value the rules say is encrypted is a number, boolean or similar.
    #[error("the value at `{path}` should be encrypted but is a plain {kind}")]
    NotAString {
        /// The keys leading to the value, joined with `:`.
        path: String,
        /// The kind of value found.
        kind: &'static str,
    },
    /// A value could not be encrypted.
    #[error("could not encrypt the value at `{path}`: {source}")]
    Encrypt {
        /// The keys leading to the value, joined with `:`.
        path: String,
        /// What went wrong.
        source: CipherError,
    },
    /// An encrypted comment matches `unencrypted_comment_regex`, so it would
    /// be taken for a plaintext marker on decryption (the reference refuses
    /// this too).
    #[error(
        "an encrypted comment at `{path}` matches unencrypted_comment_regex; \
         make sure the regex cannot match an encrypted comment"
    )]
    EncryptedCommentMatches {
        /// The keys leading to the comment, joined with `:`.
        path: String,
    },
    /// A change made while the values stayed encrypted lost track of
    /// which of them are unchanged: a bug, caught before anything is
    /// written.
    #[error(
        "the changed document's encrypted values no longer line up with the file's; \
         nothing was written (this is a bug in rsops: please report it)"
    )]
    LostTrack,
    /// An encrypted comment decrypted to something that is not text.
    #[error("the comment at `{path}` decrypted to a {kind}")]
    BadComment {
        /// The keys leading to the comment, joined with `:`.
        path: String,
        /// The kind of value found.
        kind: &'static str,
    },
}

/// Walks a run of a document's entries in document order, deciding which
/// leaves the cipher works on and which the MAC covers. The cipher's work
/// and the MAC are collected as [`Leaf`] jobs and done afterwards, split
/// over the machine's cores (see [`run_jobs`]); comments are collected as
/// [`CommentJob`]s, done in order before the leaves (see
/// [`run_comment_jobs`]). A large document's top-level entries are walked
/// in runs on every core (see [`walk_runs`]).
struct Walker<'a, 't> {
    direction: Direction,
    rule: &'a CryptRule,
    mac_only_encrypted: bool,
    /// The additional data of the current position: every key followed by `:`.
    aad: String,
    /// Comments seen since the last value, one level per map or list.
    comments: Vec<Vec<String>>,
    /// The leaves to transform or hash, in document order.
    leaves: Vec<Leaf<'t>>,
    /// The comments to transform, in document order.
    comment_jobs: Vec<CommentJob<'t>>,
    /// The additional data of every job, one after the other.
    aads: String,
}

/// A comment the rules say is encrypted: its text is decrypted, or
/// sealed, once the walk is over.
struct CommentJob<'t> {
    target: CommentTarget<'t>,
    /// Where its additional data is in [`Walker::aads`].
    aad_start: usize,
    aad_len: usize,
    /// How many leaves the walk had found before it.
    leaves_before: usize,
}

/// Where a comment the walk found is.
enum CommentTarget<'t> {
    /// A comment entry of a map: its text.
    Text(&'t mut String),
    /// A list item that is a comment: sealed, the reference's list walk
    /// stores what the cipher returns, an `ENC[...]` string.
    Item(&'t mut Value),
}

/// A leaf of the tree the walk found: a value for the cipher (`crypt`),
/// and, decrypting, a plaintext to hash once decrypted (`hash`).
struct Leaf<'t> {
    value: &'t mut Value,
    /// Where its additional data is in [`Walker::aads`].
    aad_start: usize,
    aad_len: usize,
    crypt: bool,
    hash: bool,
}

impl Leaf<'_> {
    fn aad<'s>(&self, aads: &'s str) -> &'s str {
        position_aad(&aads[self.aad_start..self.aad_start + self.aad_len])
    }

    fn path(&self, aads: &str) -> String {
        path_of(&aads[self.aad_start..self.aad_start + self.aad_len])
    }
}

/// The path named in errors: the keys, joined with `:`.
fn path_of(aad: &str) -> String {
    aad.trim_end_matches(':').to_string()
}

/// Below this many cipher jobs a walk stays on the calling thread.
const PARALLEL_JOBS: usize = 256;

/// Leaves per batch when the jobs are spread over the cores.
const BATCH: usize = 512;

/// What one batch of the jobs reports: the first job that failed, and,
/// when the batches run on several cores, what the MAC covers of its
/// `hash` leaves, in order.
#[derive(Default)]
struct Share {
    failed: Option<(usize, CipherError)>,
    /// Copied by the core that ran the batch, while its plaintexts are in
    /// that core's cache: the thread hashing the batches in order then
    /// reads one run of bytes instead of every leaf where it lies in the
    /// tree (each a cache miss from another core). Taken, hashed and wiped
    /// batch by batch.
    mac: Mutex<Zeroizing<Vec<u8>>>,
}

/// A run of leaves the cipher works on as one job.
struct Batch<'b, 't> {
    /// The index of its first leaf.
    offset: usize,
    leaves: &'b mut [Leaf<'t>],
    /// Encrypting with a stash: for each leaf, the `ENC[...]` string it had
    /// when decrypted, if it is unchanged (else empty).
    reuse: &'b mut [Option<String>],
    /// Decrypting with a stash: for each leaf, its place in the stash.
    slots: &'b mut [StashSlot],
    /// Decrypting: put each plaintext in a block of its own size (see
    /// [`ValueCipher::decrypt_in_place`]).
    fit: bool,
}

/// Runs the cipher on every `crypt` leaf and feeds every `hash` leaf to
/// `hasher` (unless it is `None`: the MAC has them already) in document
/// order: decrypting, once it is decrypted;
/// encrypting, before it is sealed (given `reuse`, the stashed strings of
/// unchanged leaves are put in instead of sealing). Large walks are cut
/// into batches that every core takes in turn, each copying what the MAC
/// covers of its leaves ([`Share::mac`]), while the calling thread hashes
/// those copies in order (between batches of its own), so the hash, which
/// cannot be split, overlaps the cipher's work. Each batch stops at its
/// first failure, and no batch is started after one.
fn run_jobs(
    cipher: &ValueCipher,
    direction: Direction,
    leaves: &mut [Leaf<'_>],
    mut reuse: Vec<Option<String>>,
    slots: &mut [StashSlot],
    aads: &str,
    mut hasher: Option<&mut Sha512>,
) -> Vec<Share> {
    let jobs = leaves.iter().filter(|l| l.crypt).count();
    let threads = crate::par::threads();
    if jobs < PARALLEL_JOBS || threads == 1 {
        let hash_first = direction == Direction::Encrypt;
        if let Some(hasher) = hasher.as_deref_mut().filter(|_| hash_first) {
            hash_leaves(hasher, leaves);
        }
        let mut whole = Batch {
            offset: 0,
            leaves,
            reuse: &mut reuse,
            slots,
            fit: false,
        };
        let share = run_share(cipher, direction, &mut whole, aads, false);
        if let Some(hasher) = hasher.filter(|_| !hash_first && share.failed.is_none()) {
            hash_leaves(hasher, whole.leaves);
        }
        return vec![share];
    }
    let mut reuse_runs = reuse.chunks_mut(BATCH);
    let mut slot_runs = slots.chunks_mut(BATCH);
    let batches: Vec<Mutex<Batch>> = leaves
        .chunks_mut(BATCH)
        .enumerate()
        .map(|(i, leaves)| {
            Mutex::new(Batch {
                offset: i * BATCH,
                leaves,
                reuse: reuse_runs.next().unwrap_or_default(),
                slots: slot_runs.next().unwrap_or_default(),
                fit: false,
            })
        })
        .collect();
    let done: Vec<OnceLock<Share>> = batches.iter().map(|_| OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let copy_mac = hasher.is_some();
    // Takes the next batch nobody has, if any, and runs it. A batch taken
    // is always run, so every batch before a failed one is done too.
    let take = || {
        if failed.load(Ordering::Relaxed) {
            return false;
        }
        let k = next.fetch_add(1, Ordering::Relaxed);
        if k >= batches.len() {
            return false;
        }
        let _stop_on_panic = StopOnPanic(&failed);
        let mut batch = lock(&batches[k]);
        let share = run_share(cipher, direction, &mut batch, aads, copy_mac);
        if share.failed.is_some() {
            failed.store(true, Ordering::Relaxed);
        }
        drop(batch);
        // Set once: `k` came from the counter only this thread read.
        let _ = done[k].set(share);
        true
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(|| while take() {});
        }
        let Some(hasher) = hasher else {
            while take() {}
            return;
        };
        let mut hashed = 0;
        while hashed < batches.len() {
            match done[hashed].get() {
                Some(share) if share.failed.is_none() => {
                    let copied = std::mem::take(&mut *lock(&share.mac));
                    hasher.update(copied.as_slice());
                    hashed += 1;
                }
                Some(_) => break,
                None if take() => {}
                None if failed.load(Ordering::Relaxed) => break,
                None => std::thread::yield_now(),
            }
        }
    });
    done.into_iter().map_while(OnceLock::into_inner).collect()
}

/// Tells the other threads to stop when a batch panics, so the calling
/// thread does not wait for it forever (the scope then resumes the panic).
struct StopOnPanic<'a>(&'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// Locks a batch; a panic while it was held is resumed by the scope.
fn lock<'m, T>(batch: &'m Mutex<T>) -> std::sync::MutexGuard<'m, T> {
    batch
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Feeds the `hash` leaves to the MAC, in order.
fn hash_leaves(hasher: &mut Sha512, leaves: &[Leaf<'_>]) {
    for leaf in leaves.iter().filter(|l| l.hash) {
        hash_leaf(hasher, leaf.value);
    }
}

/// For every leaf to encrypt whose plaintext, type and path `stash` saw
/// decrypted, its old `ENC[...]` string (an empty string stays empty), in
/// document order; the others are left for the cipher. Feeds every `hash`
/// leaf to the MAC meanwhile: on a large walk one core hashes the
/// plaintexts while the others digest them in batches, and the calling
/// thread takes the strings batch by batch, in order.
fn stashed_strings(
    cipher: &ValueCipher,
    leaves: &[Leaf<'_>],
    aads: &str,
    stash: &mut Stash,
    hasher: &mut Sha512,
) -> Vec<Option<String>> {
    let mut reuse = Vec::with_capacity(leaves.len());
    if leaves.len() < PARALLEL_JOBS || crate::par::threads() == 1 {
        hash_leaves(hasher, leaves);
        reuse.extend(
            leaves
                .iter()
                .map(|leaf| take_stashed(stash, leaf_digest(cipher, leaf, aads))),
        );
        return reuse;
    }
    let parts: Vec<&[Leaf]> = leaves.chunks(BATCH).collect();
    let hasher = Mutex::new(hasher);
    // Part 0 hashes every leaf; each other part digests a batch.
    crate::par::in_order(
        parts.len() + 1,
        |k| match k.checked_sub(1) {
            None => {
                hash_leaves(&mut lock(&hasher), leaves);
                Vec::new()
            }
            Some(batch) => parts[batch]
                .iter()
                .map(|leaf| leaf_digest(cipher, leaf, aads))
                .collect(),
        },
        |digests: Vec<_>| {
            reuse.extend(
                digests
                    .into_iter()
                    .map(|digest| take_stashed(stash, digest)),
            );
        },
    );
    reuse
}

/// The digest under which a [`Stash`] remembers a leaf to encrypt: `None`
/// for a leaf the cipher does not work on (or cannot), `Some(None)` for an
/// empty value, which stays empty.
fn leaf_digest(cipher: &ValueCipher, leaf: &Leaf<'_>, aads: &str) -> Option<Option<StashDigest>> {
    leaf.crypt
        .then(|| cipher.stash_digest(leaf.value, leaf.aad(aads)).ok())
        .flatten()
}

/// The `ENC[...]` string to put in for a leaf of [`leaf_digest`] `digest`,
/// if `stash` has one (an empty value's is empty).
fn take_stashed(stash: &mut Stash, digest: Option<Option<StashDigest>>) -> Option<String> {
    match digest? {
        None => Some(String::new()),
        Some(digest) => stash.take_digest(&digest),
    }
}

/// Runs the cipher on the `crypt` leaves of one batch, copying what the
/// MAC covers of its `hash` leaves (see [`Share::mac`]) if `copy_mac`.
fn run_share(
    cipher: &ValueCipher,
    direction: Direction,
    batch: &mut Batch<'_, '_>,
    aads: &str,
    copy_mac: bool,
) -> Share {
    let mut share = Share::default();
    let mut mac = Zeroizing::new(Vec::new());
    if copy_mac {
        mac.reserve_exact(
            batch
                .leaves
                .iter()
                .map(|l| mac_size_hint(l, direction))
                .sum(),
        );
    }
    let mut copy = |leaf: &Leaf<'_>| {
        if copy_mac && leaf.hash {
            push_wiping(&mut mac, &mac_bytes(leaf.value));
        }
    };
    for (i, leaf) in batch.leaves.iter_mut().enumerate() {
        if !leaf.crypt {
            copy(leaf);
            continue;
        }
        if direction == Direction::Encrypt {
            copy(leaf);
        }
        let aad = leaf.aad(aads);
        let outcome = match direction {
            Direction::Decrypt => {
                let Value::Str(text) = &*leaf.value else {
                    continue;
                };
                if let Some(slot) = batch.slots.get_mut(i) {
                    cipher.decrypt_digest(text, aad).map(|(plain, digest)| {
                        let old = std::mem::replace(leaf.value, plain);
                        if let (Some(digest), Value::Str(old)) = (digest, old) {
                            *slot = (digest, Some(old));
                        }
                    })
                } else {
                    cipher.decrypt_in_place(leaf.value, aad, batch.fit)
                }
            }
            Direction::Encrypt => match batch.reuse.get_mut(i).and_then(Option::take) {
                Some(sealed) => {
                    crate::tree::replace_value(leaf.value, Value::Str(sealed));
                    Ok(())
                }
                None => cipher
                    .encrypt(leaf.value, aad)
                    .map(|sealed| crate::tree::replace_value(leaf.value, Value::Str(sealed))),
            },
        };
        if let Err(e) = outcome {
            share.failed = Some((batch.offset + i, e));
            break;
        }
        if direction == Direction::Decrypt {
            copy(leaf);
        }
    }
    share.mac = Mutex::new(mac);
    share
}

/// About how many bytes the MAC covers of a leaf: its string (decrypting,
/// three quarters of its `ENC[...]`, the most its plaintext can be).
fn mac_size_hint(leaf: &Leaf<'_>, direction: Direction) -> usize {
    match (&*leaf.value, direction) {
        _ if !leaf.hash => 0,
        (Value::Str(s), Direction::Decrypt) if leaf.crypt => s.len() * 3 / 4,
        (Value::Str(s) | Value::Time(s), _) => s.len(),
        (Value::Bytes(b), _) => b.len(),
        _ => 24,
    }
}

/// Appends `bytes` to `buffer`, moving it to a larger block (the old one
/// wiped) when it is full rather than letting it grow where the allocator
/// would leave a copy.
fn push_wiping(buffer: &mut Zeroizing<Vec<u8>>, bytes: &[u8]) {
    if buffer.capacity() - buffer.len() < bytes.len() {
        let mut larger =
            Vec::with_capacity((buffer.len() + bytes.len()).max(2 * buffer.capacity()));
        larger.extend_from_slice(buffer);
        *buffer = Zeroizing::new(larger);
    }
    buffer.extend_from_slice(bytes);
}

/// Decrypts every encrypted value of `doc` and returns the MAC of the
/// plaintext tree as upper-case hex.
pub fn decrypt_document(
    doc: &mut Document,
    meta: &Metadata,
    cipher: &ValueCipher,
) -> Result<String, WalkError> {
    walk(doc, meta, cipher, Direction::Decrypt, None)
}

/// Decrypts like [`decrypt_document`], remembering every value's `ENC[...]`
/// string in `stash` for [`encrypt_values`] to reuse.
pub fn decrypt_document_stashing(
    doc: &mut Document,
    meta: &Metadata,
    cipher: &ValueCipher,
    stash: &mut Stash,
) -> Result<String, WalkError> {
    walk(doc, meta, cipher, Direction::Decrypt, Some(stash))
}

/// Encrypts every value of `doc` that `meta.rule` selects, each with a fresh
/// random IV (or, with a `stash`, the ciphertext it had when the same
/// plaintext was decrypted at the same path), and returns the MAC of the plaintext tree as upper-case hex
/// (not yet encrypted; see [`crate::encrypt::encrypt_document`]).
///
/// Empty strings and empty comments stay empty and nulls are skipped, as in
/// the reference. An encrypted comment inside a list becomes an `ENC[...]`
/// string item, as the reference's tree holds it. On error the tree may be
/// partly encrypted; its plaintext values are still wiped when it is dropped.
pub fn encrypt_values(
    doc: &mut Document,
    meta: &Metadata,
    cipher: &ValueCipher,
    stash: Option<&mut Stash>,
) -> Result<String, WalkError> {
    walk(doc, meta, cipher, Direction::Encrypt, stash)
}

fn walk(
    doc: &mut Document,
    meta: &Metadata,
    cipher: &ValueCipher,
    direction: Direction,
    mut stash: Option<&mut Stash>,
) -> Result<String, WalkError> {
    let mut hasher = mac_hasher(meta);
    let Walked {
        mut leaves,
        aads,
        comment_jobs,
        failed,
    } = walk_runs(doc, meta, direction);
    let failed = run_comments(
        cipher,
        direction,
        meta,
        comment_jobs,
        &aads,
        stash.as_deref_mut(),
        &mut leaves,
    )
    .or(failed);
    let (reuse, mac) = match (direction, stash.as_deref_mut()) {
        (Direction::Encrypt, Some(stash)) => {
            let reuse = stashed_strings(cipher, &leaves, &aads, stash, &mut hasher);
            (reuse, None)
        }
        _ => (Vec::new(), Some(&mut hasher)),
    };
    let slots = match (direction, stash) {
        (Direction::Decrypt, Some(stash)) => stash.slots(leaves.len()),
        _ => &mut [],
    };
    let mut shares = run_jobs(cipher, direction, &mut leaves, reuse, slots, &aads, mac);
    for share in &mut shares {
        if let Some((index, source)) = share.failed.take() {
            return Err(leaf_error(direction, &leaves[index], &aads, source));
        }
    }
    if let Some(failure) = failed {
        return Err(failure);
    }
    Ok(hex_upper(&hasher.finalize()))
}

/// Decrypts the values of some of a document's top-level entries on the
/// calling thread (a piece of a large file, see
/// [`crate::decrypt::decrypt_pieces`]) and returns what the MAC covers of
/// them, in order: a walk of the whole document hashes the pieces' bytes
/// one after the other. The cipher's plaintexts are put in blocks of
/// their own size, so the piece's `ENC[...]` strings are freed (for the
/// next piece to reuse) rather than kept as the plaintexts' blocks.
pub(crate) fn decrypt_entries(
    entries: &mut [Entry],
    meta: &Metadata,
    cipher: &ValueCipher,
) -> Result<Zeroizing<Vec<u8>>, WalkError> {
    walk_entries(entries, meta, cipher, Direction::Decrypt, None)
}

/// Encrypts the values of some of a document's top-level entries on the
/// calling thread (a piece of a large file, see
/// [`crate::encrypt::encrypt_plain`]) and returns what the MAC covers of
/// them, in order, as [`decrypt_entries`] does.
/// With a `stash` (shared by the pieces: each takes what it needs in one
/// go), a value it saw decrypted unchanged keeps its old `ENC[...]`.
pub(crate) fn encrypt_entries(
    entries: &mut [Entry],
    meta: &Metadata,
    cipher: &ValueCipher,
    stash: Option<&Mutex<&mut Stash>>,
) -> Result<Zeroizing<Vec<u8>>, WalkError> {
    walk_entries(entries, meta, cipher, Direction::Encrypt, stash)
}

fn walk_entries(
    entries: &mut [Entry],
    meta: &Metadata,
    cipher: &ValueCipher,
    direction: Direction,
    stash: Option<&Mutex<&mut Stash>>,
) -> Result<Zeroizing<Vec<u8>>, WalkError> {
    let Walked {
        mut leaves,
        aads,
        comment_jobs,
        failed,
    } = walk_in_runs(vec![vec![entries]], meta, direction);
    // Comments are few, and only some rules encrypt them: the stash is
    // locked for them only if there are any.
    let mut comments_stash = stash.filter(|_| !comment_jobs.is_empty()).map(lock);
    let failed = run_comments(
        cipher,
        direction,
        meta,
        comment_jobs,
        &aads,
        comments_stash.as_deref_mut().map(|stash| &mut **stash),
        &mut leaves,
    )
    .or(failed);
    drop(comments_stash);
    let mut reuse: Vec<Option<String>> = match stash {
        Some(stash) => {
            let digests: Vec<_> = leaves
                .iter()
                .map(|leaf| leaf_digest(cipher, leaf, &aads))
                .collect();
            let mut stash = lock(stash);
            digests
                .into_iter()
                .map(|digest| take_stashed(&mut stash, digest))
                .collect()
        }
        None => Vec::new(),
    };
    let mut whole = Batch {
        offset: 0,
        leaves: &mut leaves,
        reuse: &mut reuse,
        slots: &mut [],
        fit: direction == Direction::Decrypt,
    };
    let share = run_share(cipher, direction, &mut whole, &aads, true);
    if let Some((index, source)) = share.failed {
        return Err(leaf_error(direction, &leaves[index], &aads, source));
    }
    match failed {
        Some(failure) => Err(failure),
        None => Ok(share
            .mac
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)),
    }
}

/// Runs the comment jobs a walk found; on a failure, drops the leaves
/// found after the comment that failed and returns it. A failure met while
/// walking comes after every job collected so far, so the caller reports
/// it only if none of those jobs fails.
fn run_comments(
    cipher: &ValueCipher,
    direction: Direction,
    meta: &Metadata,
    comment_jobs: Vec<CommentJob<'_>>,
    aads: &str,
    stash: Option<&mut Stash>,
    leaves: &mut Vec<Leaf<'_>>,
) -> Option<WalkError> {
    let (leaves_before, failure) =
        run_comment_jobs(cipher, direction, &meta.rule, comment_jobs, aads, stash)?;
    leaves.truncate(leaves_before);
    Some(failure)
}

/// The error for a leaf the cipher failed on.
fn leaf_error(direction: Direction, leaf: &Leaf<'_>, aads: &str, source: CipherError) -> WalkError {
    let path = leaf.path(aads);
    match direction {
        Direction::Decrypt => WalkError::Value { path, source },
        Direction::Encrypt => WalkError::Encrypt { path, source },
    }
}

/// What walking (part of) a document found, in document order, and the
/// failure that stopped it, if any.
struct Walked<'t> {
    leaves: Vec<Leaf<'t>>,
    aads: String,
    comment_jobs: Vec<CommentJob<'t>>,
    failed: Option<WalkError>,
}

/// From this many nodes on, a document of one branch has its top-level
/// entries walked in runs, one on each core.
const PARALLEL_WALK_NODES: usize = 16_384;

/// Walks `doc`: a large one-branch document in runs of top-level entries
/// on every core, anything else on the calling thread. A run starts only
/// where two key/value pairs meet, so no comment seen before it could
/// matter to it (the walk forgets comments at every pair), and runs are
/// joined in order, up to the first that failed: exactly what one walk of
/// the whole finds.
fn walk_runs<'t>(doc: &'t mut Document, meta: &Metadata, direction: Direction) -> Walked<'t> {
    let threads = crate::par::threads();
    let split = threads > 1
        && matches!(doc.branches.as_slice(),
            [branch] if crate::tree::has_nodes(branch, PARALLEL_WALK_NODES));
    let runs: Vec<Vec<&'t mut [Entry]>> = if split {
        split_at_pairs(&mut doc.branches[0], threads)
            .into_iter()
            .map(|run| vec![run])
            .collect()
    } else {
        vec![doc.branches.iter_mut().map(Vec::as_mut_slice).collect()]
    };
    walk_in_runs(runs, meta, direction)
}

/// Walks each run (some maps' entries, each walked as a map) on a core of
/// its own and joins what they found, in order, up to the first failure.
fn walk_in_runs<'t>(
    runs: Vec<Vec<&'t mut [Entry]>>,
    meta: &Metadata,
    direction: Direction,
) -> Walked<'t> {
    let mut walked = crate::par::map(runs, |run| {
        let mut walker = Walker {
            direction,
            rule: &meta.rule,
            mac_only_encrypted: meta.mac_only_encrypted,
            aad: String::new(),
            comments: Vec::new(),
            leaves: Vec::new(),
            comment_jobs: Vec::new(),
            aads: String::new(),
        };
        let (leaves, aad_bytes) = run
            .iter()
            .map(|entries| leaf_sizes_in_map(entries, 0))
            .fold((0, 0), |(n, b), (m, c)| (n + m, b + c));
        walker.leaves.reserve_exact(leaves);
        walker.aads.reserve_exact(aad_bytes);
        let failed = run
            .into_iter()
            .try_for_each(|entries| walker.map(entries, false))
            .err();
        Walked {
            leaves: walker.leaves,
            aads: walker.aads,
            comment_jobs: walker.comment_jobs,
            failed,
        }
    });
    if walked.len() == 1 {
        return walked.remove(0);
    }
    let mut joined = Walked {
        leaves: Vec::with_capacity(walked.iter().map(|w| w.leaves.len()).sum()),
        aads: String::with_capacity(walked.iter().map(|w| w.aads.len()).sum()),
        comment_jobs: Vec::new(),
        failed: None,
    };
    for run in walked {
        let (offset, before) = (joined.aads.len(), joined.leaves.len());
        joined.aads.push_str(&run.aads);
        joined
            .leaves
            .extend(run.leaves.into_iter().map(|leaf| Leaf {
                aad_start: leaf.aad_start + offset,
                ..leaf
            }));
        joined
            .comment_jobs
            .extend(run.comment_jobs.into_iter().map(|job| CommentJob {
                aad_start: job.aad_start + offset,
                leaves_before: job.leaves_before + before,
                ..job
            }));
        if run.failed.is_some() {
            joined.failed = run.failed;
            break;
        }
    }
    joined
}

/// Cuts `entries` into about `parts` runs, each starting where a
/// key/value pair follows another.
fn split_at_pairs(entries: &mut [Entry], parts: usize) -> Vec<&mut [Entry]> {
    let is_pair = |entry: &Entry| matches!(entry, Entry::Pair(..));
    let cuts = crate::par::cuts_near(entries.len(), parts, |ideal| {
        (ideal.max(1)..entries.len()).find(|&at| is_pair(&entries[at - 1]) && is_pair(&entries[at]))
    });
    let mut runs = Vec::with_capacity(cuts.len() + 1);
    let mut rest = entries;
    let mut at = 0;
    for cut in cuts {
        let (run, tail) = rest.split_at_mut(cut - at);
        runs.push(run);
        rest = tail;
        at = cut;
    }
    runs.push(rest);
    runs
}

/// Decrypts or seals the comments a walk found, in document order, as the
/// reference does on meeting them (a comment that does not decrypt is kept
/// as written). Stops at the first that fails, saying how many leaves the
/// walk had found before it, and why.
fn run_comment_jobs(
    cipher: &ValueCipher,
    direction: Direction,
    rule: &CryptRule,
    jobs: Vec<CommentJob<'_>>,
    aads: &str,
    mut stash: Option<&mut Stash>,
) -> Option<(usize, WalkError)> {
    for job in jobs {
        let aad = &aads[job.aad_start..job.aad_start + job.aad_len];
        let outcome = match (direction, job.target) {
            (Direction::Decrypt, CommentTarget::Text(text)) => {
                decrypt_comment_text(cipher, text, aad, stash.as_deref_mut())
            }
            (Direction::Decrypt, CommentTarget::Item(item)) => match item {
                Value::Comment(comment) => {
                    decrypt_comment_text(cipher, &mut comment.text, aad, stash.as_deref_mut())
                }
                _ => Ok(()),
            },
            (Direction::Encrypt, CommentTarget::Text(text)) => {
                seal_comment_text(cipher, rule, text, aad, stash.as_deref_mut()).map(|sealed| {
                    text.zeroize();
                    *text = sealed;
                })
            }
            (Direction::Encrypt, CommentTarget::Item(item)) => match item {
                Value::Comment(comment) => {
                    seal_comment_text(cipher, rule, &comment.text, aad, stash.as_deref_mut()).map(
                        |sealed| {
                            crate::tree::wipe_value(item);
                            *item = Value::Str(sealed);
                        },
                    )
                }
                _ => Ok(()),
            },
        };
        if let Err(failure) = outcome {
            return Some((job.leaves_before, failure));
        }
    }
    None
}

/// Decrypts a comment's text if it is encrypted. A comment that does not
/// decrypt is kept as written, as the reference does for files whose
/// comments predate comment encryption.
fn decrypt_comment_text(
    cipher: &ValueCipher,
    text: &mut String,
    aad: &str,
    stash: Option<&mut Stash>,
) -> Result<(), WalkError> {
    let opened = match stash {
        Some(stash) => cipher.decrypt_stashing(text, position_aad(aad), stash),
        None => cipher.decrypt(text, position_aad(aad)),
    };
    match opened {
        Ok(Value::Comment(c)) => *text = c.text,
        Ok(Value::Str(s)) => *text = s,
        Ok(other) => {
            return Err(WalkError::BadComment {
                path: path_of(aad),
                kind: kind_name(&other),
            })
        }
        Err(_) => {}
    }
    Ok(())
}

/// Encrypts a comment's text as the reference does (`type:comment`; an
/// empty comment stays empty), refusing a result the
/// `unencrypted_comment_regex` would match.
fn seal_comment_text(
    cipher: &ValueCipher,
    rule: &CryptRule,
    text: &str,
    aad: &str,
    stash: Option<&mut Stash>,
) -> Result<String, WalkError> {
    let sealed = cipher
        .encrypt_comment(text, position_aad(aad), stash)
        .map_err(|source| WalkError::Encrypt {
            path: path_of(aad),
            source,
        })?;
    if let CryptRule::UnencryptedCommentRegex(r) = rule {
        if r.is_match(&sealed) {
            return Err(WalkError::EncryptedCommentMatches { path: path_of(aad) });
        }
    }
    Ok(sealed)
}

/// How many leaves a map holds and how long their additional data is in
/// all: as many as the walk may collect, counted first so that its lists
/// are allocated once (growing them copies megabytes on a large file).
fn leaf_sizes_in_map(map: &[Entry], aad_len: usize) -> (usize, usize) {
    map.iter()
        .map(|entry| match entry {
            Entry::Pair(key, value) => leaf_sizes(value, aad_len + key.len() + 1),
            Entry::Comment(_) => (0, 0),
        })
        .fold((0, 0), |(n, b), (m, c)| (n + m, b + c))
}

fn leaf_sizes(value: &Value, aad_len: usize) -> (usize, usize) {
    match value {
        Value::Map(map) => leaf_sizes_in_map(map, aad_len),
        Value::List(items) => items
            .iter()
            .map(|item| leaf_sizes(item, aad_len))
            .fold((0, 0), |(n, b), (m, c)| (n + m, b + c)),
        Value::Null | Value::Comment(_) => (0, 0),
        _ => (1, aad_len),
    }
}

/// The additional data for a position: the reference joins the path's keys
/// with `:` and appends one, so the root is `:`.
fn position_aad(path: &str) -> &str {
    if path.is_empty() {
        ":"
    } else {
        path
    }
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Map(_) => "map",
        Value::List(_) => "list",
        Value::Str(_) => "string",
        Value::Int(_) => "integer",
        Value::Float(_) => "float",
        Value::Bool(_) => "boolean",
        Value::Time(_) => "timestamp",
        Value::Bytes(_) => "byte string",
        Value::Null => "null",
        Value::Comment(_) => "comment",
    }
}

/// Does a path-based rule match this key?
fn key_matches(rule: &CryptRule, key: &str) -> bool {
    match rule {
        CryptRule::UnencryptedSuffix(s) | CryptRule::EncryptedSuffix(s) => {
            key.ends_with(s.as_str())
        }
        CryptRule::UnencryptedRegex(r) | CryptRule::EncryptedRegex(r) => r.is_match(key),
        CryptRule::UnencryptedCommentRegex(_) | CryptRule::EncryptedCommentRegex(_) => false,
    }
}

impl<'t> Walker<'_, 't> {
    fn path(&self) -> String {
        path_of(&self.aad)
    }

    /// The reference's `shouldBeEncrypted`; `path_matched` is whether any key
    /// on the path matched a path-based rule.
    fn should_encrypt(&self, path_matched: bool, is_comment: bool) -> bool {
        match self.rule {
            CryptRule::UnencryptedSuffix(_) | CryptRule::UnencryptedRegex(_) => !path_matched,
            CryptRule::EncryptedSuffix(_) | CryptRule::EncryptedRegex(_) => path_matched,
            CryptRule::UnencryptedCommentRegex(r) => {
                !self.comments.iter().flatten().any(|c| r.is_match(c))
            }
            CryptRule::EncryptedCommentRegex(r) => {
                let last_level = self.comments.len().saturating_sub(1);
                self.comments.iter().enumerate().any(|(i, level)| {
                    level.iter().enumerate().any(|(j, c)| {
                        // The marker comment itself is never encrypted.
                        let is_marker = is_comment && i == last_level && j + 1 == level.len();
                        !is_marker && r.is_match(c)
                    })
                })
            }
        }
    }

    fn map(&mut self, map: &'t mut [Entry], path_matched: bool) -> Result<(), WalkError> {
        self.comments.push(Vec::new());
        for entry in map.iter_mut() {
            match entry {
                Entry::Comment(comment) => {
                    self.note_comment(&comment.text);
                    if self.should_encrypt(path_matched, true) {
                        self.push_comment(CommentTarget::Text(&mut comment.text));
                    }
                }
                Entry::Pair(key, value) => {
                    let before = self.aad.len();
                    self.aad.push_str(key);
                    self.aad.push(':');
                    let matched = path_matched || key_matches(self.rule, key);
                    self.value(value, matched)?;
                    self.aad.truncate(before);
                    self.clear_comments();
                }
            }
        }
        self.comments.pop();
        Ok(())
    }

    fn list(&mut self, items: &'t mut [Value], path_matched: bool) -> Result<(), WalkError> {
        self.comments.push(Vec::new());
        for item in items.iter_mut() {
            let is_comment = matches!(item, Value::Comment(_));
            if let Value::Comment(comment) = item {
                let text = comment.text.clone();
                self.note_comment(&text);
            }
            self.value(item, path_matched)?;
            if !is_comment {
                self.clear_comments();
            }
        }
        self.comments.pop();
        Ok(())
    }

    fn note_comment(&mut self, text: &str) {
        if let Some(level) = self.comments.last_mut() {
            level.push(text.to_string());
        }
    }

    fn clear_comments(&mut self) {
        if let Some(level) = self.comments.last_mut() {
            level.clear();
        }
    }

    /// Leaves a comment at the current position for [`run_comment_jobs`].
    fn push_comment(&mut self, target: CommentTarget<'t>) {
        let aad_start = self.aads.len();
        self.aads.push_str(&self.aad);
        self.comment_jobs.push(CommentJob {
            target,
            aad_start,
            aad_len: self.aad.len(),
            leaves_before: self.leaves.len(),
        });
    }

    fn value(&mut self, value: &'t mut Value, path_matched: bool) -> Result<(), WalkError> {
        match value {
            Value::Map(map) => return self.map(map, path_matched),
            Value::List(items) => return self.list(items, path_matched),
            Value::Null => return Ok(()),
            Value::Comment(_) => {
                if self.should_encrypt(path_matched, true) {
                    self.push_comment(CommentTarget::Item(value));
                }
                return Ok(());
            }
            _ => {}
        }
        let encrypted = self.should_encrypt(path_matched, false);
        let hash = !self.mac_only_encrypted || encrypted;
        if self.direction == Direction::Decrypt && encrypted && !matches!(value, Value::Str(_)) {
            return Err(WalkError::NotAString {
                path: self.path(),
                kind: kind_name(value),
            });
        }
        // The MAC covers the plaintext: hashed once decrypted, or before it
        // is sealed (see `run_jobs`).
        if encrypted || hash {
            self.push_leaf(value, encrypted, hash);
        }
        Ok(())
    }

    fn push_leaf(&mut self, value: &'t mut Value, crypt: bool, hash: bool) {
        let (aad_start, aad_len) = if crypt {
            let start = self.aads.len();
            self.aads.push_str(&self.aad);
            (start, self.aad.len())
        } else {
            (0, 0)
        };
        self.leaves.push(Leaf {
            value,
            aad_start,
            aad_len,
            crypt,
            hash,
        });
    }
}

fn hash_leaf(hasher: &mut Sha512, value: &Value) {
    hasher.update(mac_bytes(value));
}

/// What the MAC covers of a leaf's plaintext.
fn mac_bytes(value: &Value) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    match value {
        Value::Str(s) | Value::Time(s) => Cow::Borrowed(s.as_bytes()),
        Value::Bytes(b) => Cow::Borrowed(b),
        Value::Int(i) => Cow::Owned(i.to_string().into_bytes()),
        Value::Float(f) => Cow::Owned(
            crate::gofmt::format_float(*f, crate::gofmt::FloatFormat::Decimal).into_bytes(),
        ),
        Value::Bool(true) => Cow::Borrowed(b"True"),
        Value::Bool(false) => Cow::Borrowed(b"False"),
        // A list comment is stored as an `ENC[...,type:comment]` string and
        // only becomes a comment once decrypted; the reference (3.11)
        // leaves it out of the MAC, as it did when encrypting.
        Value::Comment(_) | Value::Map(_) | Value::List(_) | Value::Null => Cow::Borrowed(b""),
    }
}

/// A MAC not yet fed any leaf.
pub(crate) fn mac_hasher(meta: &Metadata) -> Sha512 {
    let mut hasher = Sha512::new();
    if meta.mac_only_encrypted {
        hasher.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    hasher
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Comment;

    /// What a walk found, in a form to compare: each leaf's path and flags,
    /// each comment's additional data and place, the failure.
    type Summary = (Vec<(String, bool, bool)>, Vec<(String, usize)>, String);

    fn summary(walked: &Walked<'_>) -> Summary {
        let leaves = walked
            .leaves
            .iter()
            .map(|l| (l.path(&walked.aads), l.crypt, l.hash))
            .collect();
        let comments = walked
            .comment_jobs
            .iter()
            .map(|j| {
                let aad = &walked.aads[j.aad_start..j.aad_start + j.aad_len];
                (aad.to_string(), j.leaves_before)
            })
            .collect();
        let failed = walked.failed.as_ref().map(ToString::to_string);
        (leaves, comments, failed.unwrap_or_default())
    }

    fn comment(text: &str) -> Entry {
        Entry::Comment(Comment::new(text))
    }

    fn pair(key: &str, value: Value) -> Entry {
        Entry::Pair(key.to_string(), value)
    }

    /// A root with comments between pairs, nested maps and lists with
    /// comments, and (when `bad`) a value that cannot be decrypted.
    fn root(bad: bool) -> Vec<Entry> {
        let mut entries = Vec::new();
        for i in 0..12 {
            if i % 3 == 0 {
                entries.push(comment(if i % 2 == 0 { "enc" } else { "plain" }));
            }
            let value = match i % 4 {
                0 => Value::Str(format!("v{i}")),
                1 => Value::Map(vec![comment("enc"), pair("x", Value::Str("y".into()))]),
                2 => Value::List(vec![
                    Value::Comment(Comment::new("enc")),
                    Value::Str("item".into()),
                ]),
                _ if bad && i == 7 => Value::Int(3),
                _ => Value::Str("z".into()),
            };
            entries.push(pair(&format!("k{i}"), value));
        }
        entries
    }

    #[test]
    fn walking_in_runs_finds_what_one_walk_finds() {
        let rules = [
            CryptRule::UnencryptedSuffix("_unencrypted".into()),
            CryptRule::EncryptedCommentRegex(regex::Regex::new("^enc").unwrap()),
            CryptRule::UnencryptedCommentRegex(regex::Regex::new("^plain").unwrap()),
        ];
        for rule in rules {
            for (bad, direction) in [(false, Direction::Encrypt), (true, Direction::Decrypt)] {
                let meta = Metadata {
                    last_modified: String::new(),
                    mac: String::new(),
                    version: None,
                    rule: rule.clone(),
                    mac_only_encrypted: true,
                    shamir_threshold: 0,
                    key_groups: Vec::new(),
                };
                let mut whole = root(bad);
                let expected = summary(&walk_in_runs(vec![vec![&mut whole]], &meta, direction));
                let entries = root(bad);
                for cut in 1..entries.len() {
                    if !matches!(
                        (&entries[cut - 1], &entries[cut]),
                        (Entry::Pair(..), Entry::Pair(..))
                    ) {
                        continue;
                    }
                    let mut split = root(bad);
                    let (first, second) = split.split_at_mut(cut);
                    let walked = walk_in_runs(vec![vec![first], vec![second]], &meta, direction);
                    assert_eq!(summary(&walked), expected, "cut at {cut}, {rule:?}");
                }
            }
        }
    }

    #[test]
    fn runs_start_where_a_pair_follows_a_pair() {
        let mut entries = root(false);
        let len = entries.len();
        let runs = split_at_pairs(&mut entries, 3);
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), len);
        assert!(runs.len() > 1);
        for run in &runs[1..] {
            assert!(matches!(run[0], Entry::Pair(..)));
        }
    }
}
