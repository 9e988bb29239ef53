//! Encrypting a document's values: the library core of `rsops encrypt`.
//!
//! This is the reference's `Tree.Encrypt` followed by the MAC step of
//! `cmd/sops/common.EncryptTree`: every value the file's [`CryptRule`]
//! selects is encrypted in place with a fresh random IV and its path as
//! additional data, the SHA-512 MAC of the plaintext is computed in the same
//! walk (the one [`crate::walk`] shares with decryption), and the MAC is
//! encrypted with `lastmodified` (RFC 3339) as its additional data.
//!
//! [`encrypt_plain`] is the whole of `sops encrypt` below the command line:
//! a fresh data key, wrapped by every key concurrently (split across key
//! groups with Shamir's scheme), the values and MAC, and the metadata.
//!
//! [`CryptRule`]: crate::metadata::CryptRule

use std::time::Duration;

use rsops_keysource::{DataKey, Deadline, KeyEntry, DATA_KEY_LEN};
use sha2::Digest;
use zeroize::Zeroizing;

use crate::cipher::{CipherError, Stash, ValueCipher};
use crate::formats::{EmitOptions, Format, PlainPieces, Printed};
use crate::keys::KeyRegistry;
use crate::metadata::{CryptRule, InsertOptions, Metadata};
use crate::timefmt::Timestamp;
use crate::tree::{Document, Entry, Value};
use crate::walk::{self, WalkError};

/// Why a document could not be encrypted. Never carries plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// A value could not be encrypted.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// `lastmodified` is not an RFC 3339 timestamp, so the MAC has no
    /// additional data to be bound to.
    #[error("lastmodified `{0}` is not an RFC 3339 timestamp")]
    BadLastModified(String),
    /// The MAC could not be encrypted.
    #[error("could not encrypt the MAC: {0}")]
    Mac(CipherError),
    /// The operating system's random source failed.
    #[error("could not generate a data key: no randomness from the operating system")]
    Random,
    /// The plaintext already holds sops metadata.
    #[error("the file already holds a top-level `sops` entry (or, in a flat format, `sops_` entries): it is likely encrypted already")]
    AlreadyEncrypted,
    /// There is no key to encrypt to.
    #[error("no keys to encrypt to: give them with --age, --pgp, --kms, --gcp-kms, --azure-kv or --hc-vault-transit, or in a .sops.yaml creation rule")]
    NoKeys,
    /// A key group has no key.
    #[error("Could not generate data key: [empty key group provided]")]
    EmptyKeyGroup,
    /// The key groups and threshold cannot split the data key.
    #[error("cannot split the data key: {0}")]
    Shamir(#[from] crate::shamir::ShamirError),
    /// A key could not wrap the data key.
    #[error("could not encrypt the data key for {kind} key {id}: {source}")]
    Wrap {
        /// The key kind.
        kind: String,
        /// The key.
        id: String,
        /// Why.
        source: rsops_keysource::KeyError,
    },
    /// The plaintext cannot be read in its format.
    #[error(transparent)]
    Parse(crate::formats::FormatError),
    /// The result cannot be printed in the output format.
    #[error(transparent)]
    Emit(crate::formats::FormatError),
    /// The result could not be written out as it was sealed (see
    /// [`crate::rewrite::Opened::seal_text`]).
    #[error(transparent)]
    Write(std::io::Error),
}

/// What to encrypt to, and how, besides the plaintext itself.
#[derive(Debug, Clone)]
pub struct EncryptOptions {
    /// Key groups of entries naming each key (`recipient`, `fp`, `arn`…):
    /// every key of a group wraps the same data key, or the group's share.
    pub key_groups: Vec<Vec<KeyEntry>>,
    /// Shares needed with several groups (0: all of them).
    pub shamir_threshold: usize,
    /// Which values are encrypted.
    pub rule: CryptRule,
    /// Whether the MAC covers only encrypted values.
    pub mac_only_encrypted: bool,
    /// Deadline of one remote key service call.
    pub key_timeout: Duration,
}

/// Encrypts a plaintext file as `sops encrypt` does: a fresh data key (split
/// across key groups with Shamir's scheme when there are several), wrapped by
/// every key concurrently, every selected value encrypted, the MAC, and the
/// metadata written in `output`'s layout. Nothing is returned unless every
/// key wrapped its secret.
pub async fn encrypt_plain(
    plain: &[u8],
    input: Format,
    output: Format,
    options: &EncryptOptions,
    registry: &KeyRegistry,
    emit: EmitOptions,
) -> Result<Printed, EncryptError> {
    if input == Format::Yaml && output == Format::Yaml {
        if let Some(pieces) = PlainPieces::cut(plain) {
            if let Some(printed) = encrypt_pieces(&pieces, options, registry, emit).await {
                return printed;
            }
        }
    }
    let mut document = input.parse_plain(plain).map_err(EncryptError::Parse)?;
    comments_on_own_lines(&mut document);
    if holds_metadata(&document) {
        return Err(EncryptError::AlreadyEncrypted);
    }
    if options.key_groups.is_empty() {
        return Err(EncryptError::NoKeys);
    }
    if options.key_groups.iter().any(Vec::is_empty) {
        return Err(EncryptError::EmptyKeyGroup);
    }
    let key = generate_data_key()?;
    let key_groups = wrap_for(&key, options, registry).await?;
    let mut metadata = new_metadata(options, key_groups);
    metadata.mac = encrypt_document(&mut document, &metadata, &key)?;
    drop(key);
    crate::metadata::insert_with(&mut document, &metadata, InsertOptions::for_format(output));
    let printed = output
        .print_encrypted(&document, emit)
        .map_err(EncryptError::Emit);
    release_sealed(document, ());
    printed
}

/// Wraps `key` for every key of `options`' groups (see [`wrap_data_key`]).
pub(crate) async fn wrap_for(
    key: &DataKey,
    options: &EncryptOptions,
    registry: &KeyRegistry,
) -> Result<Vec<Vec<KeyEntry>>, EncryptError> {
    wrap_data_key(
        key,
        &options.key_groups,
        options.shamir_threshold,
        registry,
        options.key_timeout,
    )
    .await
}

/// The metadata of a file encrypted anew with `options`, without its MAC.
fn new_metadata(options: &EncryptOptions, key_groups: Vec<Vec<KeyEntry>>) -> Metadata {
    let groups = options.key_groups.len();
    Metadata {
        last_modified: Timestamp::now().rfc3339(),
        mac: String::new(),
        version: Some(crate::metadata::WRITTEN_VERSION.to_string()),
        rule: options.rule.clone(),
        mac_only_encrypted: options.mac_only_encrypted,
        shamir_threshold: if groups > 1 {
            shamir_threshold(groups, options.shamir_threshold)
        } else {
            0
        },
        key_groups,
    }
}

/// Encrypts a large YAML file in [`PlainPieces`] (see [`seal_pieces`]);
/// the data key is wrapped once every piece is sealed, and the metadata
/// printed after the last. `None` when the file has to be encrypted whole
/// (see [`seal_pieces`]), or has no keys (errors are then the ones, and in
/// the order, the whole encryption reports).
async fn encrypt_pieces(
    pieces: &PlainPieces<'_>,
    options: &EncryptOptions,
    registry: &KeyRegistry,
    emit: EmitOptions,
) -> Option<Result<Printed, EncryptError>> {
    if options.key_groups.is_empty() || options.key_groups.iter().any(Vec::is_empty) {
        return None;
    }
    let key = match generate_data_key() {
        Ok(key) => key,
        Err(e) => return Some(Err(e)),
    };
    // The key groups are filled in once the data key is wrapped.
    let mut metadata = new_metadata(options, Vec::new());
    let cipher = ValueCipher::new(&key);
    let sealed = seal_pieces(pieces, &metadata, &cipher, None, emit, None)?;
    if sealed.holds_metadata {
        return Some(Err(EncryptError::AlreadyEncrypted));
    }
    Some(
        async {
            metadata.key_groups = wrap_for(&key, options, registry).await?;
            sealed.finish(&mut metadata, &cipher, emit)
        }
        .await,
    )
}

/// A YAML file's [`PlainPieces`], sealed: see [`seal_pieces`].
pub(crate) struct SealedPieces {
    /// Every piece's printing, in order, unless written out.
    parts: Vec<Zeroizing<Vec<u8>>>,
    /// The first failure to write a piece out.
    unwritten: Option<std::io::Error>,
    /// The MAC of the plaintext, upper-case hex.
    mac: String,
    /// Whether a piece has a top-level `sops` entry.
    pub(crate) holds_metadata: bool,
    /// The first value that failed to seal, in file order.
    failed: Option<WalkError>,
    /// The first piece that failed to print: reported only if no value
    /// failed, as the whole encryption seals everything first.
    unprinted: Option<crate::formats::FormatError>,
}

/// Seals a large YAML file in [`PlainPieces`]: every core takes pieces in
/// turn, loading, sealing (with `stash`, unchanged values keep their
/// ciphertext, taken from it for good even if the file then has to be
/// sealed whole) and printing each, then freeing it, while the calling
/// thread hashes the MAC in order. So the file's tree is never whole in
/// memory, and each piece is in one core's cache from loading to printing.
/// With `out`, each piece is written there as soon as it and every one
/// before it are printed, rather than kept ([`SealedPieces::finish`] then
/// gives only the metadata to write after them).
/// `None` when the file has to be loaded whole: a piece did not load, two
/// share a key, or a piece's root holds a comment (what was written to
/// `out` is then to be thrown away).
pub(crate) fn seal_pieces(
    pieces: &PlainPieces<'_>,
    metadata: &Metadata,
    cipher: &ValueCipher,
    stash: Option<&mut Stash>,
    emit: EmitOptions,
    mut out: Option<&mut dyn std::io::Write>,
) -> Option<SealedPieces> {
    let stash = stash.map(std::sync::Mutex::new);
    let mut hasher = walk::mac_hasher(metadata);
    let mut keys = foldhash::HashSet::default();
    let mut whole = true;
    let mut sealed = SealedPieces {
        parts: Vec::with_capacity(pieces.count() + 1),
        unwritten: None,
        mac: String::new(),
        holds_metadata: false,
        failed: None,
        unprinted: None,
    };
    let seal = |index: usize| {
        let mut piece = pieces.load(index)?;
        comments_on_own_lines(&mut piece);
        let keys: Vec<String> = PlainPieces::keys(&piece).map(str::to_string).collect();
        let outcome =
            walk::encrypt_entries(&mut piece.branches[0], metadata, cipher, stash.as_ref())
                .map(|mac| (mac, PlainPieces::print(&piece, emit)));
        let holds_sops = holds_metadata(&piece);
        // A piece that failed to seal may hold plaintext, and is wiped.
        if outcome.is_ok() {
            drop(piece.into_sealed_branches());
        }
        Some((keys, holds_sops, outcome))
    };
    crate::par::in_order(pieces.count(), seal, |piece| {
        let Some((piece_keys, holds_sops, outcome)) = piece else {
            whole = false;
            return;
        };
        whole &= piece_keys.into_iter().all(|key| keys.insert(key));
        sealed.holds_metadata |= holds_sops;
        match outcome {
            _ if sealed.failed.is_some() => {}
            Ok((mac, printed)) => {
                hasher.update(mac.as_slice());
                match (printed, &mut out) {
                    (Ok(printed), Some(out)) => {
                        if sealed.unwritten.is_none() {
                            sealed.unwritten = out.write_all(&printed).err();
                        }
                    }
                    (Ok(printed), None) => sealed.parts.push(printed),
                    (Err(e), _) => {
                        sealed.unprinted.get_or_insert(e);
                    }
                }
            }
            Err(e) => sealed.failed = Some(e),
        }
    });
    sealed.mac = walk::hex_upper(&hasher.finalize());
    whole.then_some(sealed)
}

impl SealedPieces {
    /// The file: its pieces (unless written out), then `metadata` with the
    /// MAC sealed into it; or the first failure.
    pub(crate) fn finish(
        mut self,
        metadata: &mut Metadata,
        cipher: &ValueCipher,
        emit: EmitOptions,
    ) -> Result<Printed, EncryptError> {
        if let Some(e) = self.failed {
            return Err(e.into());
        }
        if let Some(e) = self.unprinted {
            return Err(EncryptError::Emit(e));
        }
        if let Some(e) = self.unwritten {
            return Err(EncryptError::Write(e));
        }
        let mut tail = Document::new(vec![Vec::new()]);
        self.parts.push(print_last_piece(
            &mut tail, metadata, cipher, self.mac, emit,
        )?);
        Ok(Printed::from_parts(self.parts))
    }
}

/// Prints the last piece of a large YAML file: `tail`'s entries, then
/// `metadata` with `mac` (upper-case hex) sealed into it.
pub(crate) fn print_last_piece(
    tail: &mut Document,
    metadata: &mut Metadata,
    cipher: &ValueCipher,
    mac: String,
    emit: EmitOptions,
) -> Result<Zeroizing<Vec<u8>>, EncryptError> {
    metadata.mac = encrypt_mac(cipher, &mac_aad(metadata)?, mac)?;
    crate::metadata::insert_with(tail, metadata, InsertOptions::for_format(Format::Yaml));
    PlainPieces::print(tail, emit).map_err(EncryptError::Emit)
}

/// Frees a sealed document (ciphertext, keys, values the rules leave in
/// the clear: nothing that must be wiped before the process ends, see
/// [`Document::into_sealed_branches`]), and `with` it, on another thread
/// when it is large, so that the caller writes the file meanwhile; the
/// process may end first.
pub(crate) fn release_sealed<T: Send + 'static>(document: Document, with: T) {
    let branches = document.into_sealed_branches();
    let large = branches
        .iter()
        .any(|b| crate::tree::has_nodes(b, BACKGROUND_DROP_NODES));
    if large {
        crate::par::drop_in_background((branches, with));
    }
}

/// From this many nodes on, a sealed document is freed on another thread.
const BACKGROUND_DROP_NODES: usize = 16_384;

/// Puts every comment on a line of its own, before the entry it followed:
/// the reference's tree has no line comments, so `key: value # note`
/// encrypts to the comment above the key.
pub fn comments_on_own_lines(document: &mut Document) {
    for branch in &mut document.branches {
        own_line_comments(branch);
    }
}

fn own_line_comments(map: &mut [Entry]) {
    for entry in map {
        match entry {
            Entry::Comment(c) => c.inline = false,
            Entry::Pair(_, value) => own_line_comments_in(value),
        }
    }
}

fn own_line_comments_in(value: &mut Value) {
    match value {
        Value::Map(map) => own_line_comments(map),
        Value::List(items) => items.iter_mut().for_each(own_line_comments_in),
        Value::Comment(c) => c.inline = false,
        _ => {}
    }
}

/// Whether a plaintext already carries sops metadata: a top-level `sops`
/// entry, or (flat formats) top-level entries starting with `sops_`.
pub fn holds_metadata(document: &Document) -> bool {
    document.branches.iter().flatten().any(
        |entry| matches!(entry, Entry::Pair(key, _) if key == "sops" || key.starts_with("sops_")),
    )
}

/// Wraps `key` for every entry of `groups` at once and returns the entries
/// to store: with one group every key wraps the data key itself, with
/// several each group's keys wrap that group's Shamir share (`threshold`
/// shares needed, 0 meaning all). Nothing is returned unless every key
/// wrapped its secret.
pub async fn wrap_data_key(
    key: &DataKey,
    groups: &[Vec<KeyEntry>],
    threshold: usize,
    registry: &KeyRegistry,
    timeout: Duration,
) -> Result<Vec<Vec<KeyEntry>>, EncryptError> {
    if groups.is_empty() {
        return Err(EncryptError::NoKeys);
    }
    if groups.iter().any(Vec::is_empty) {
        return Err(EncryptError::EmptyKeyGroup);
    }
    let secrets: Vec<Zeroizing<Vec<u8>>> = if groups.len() > 1 {
        let threshold = shamir_threshold(groups.len(), threshold);
        crate::shamir::split(key.expose(), groups.len(), threshold)?
    } else {
        vec![Zeroizing::new(key.expose().to_vec())]
    };
    wrap_all(groups, &secrets, registry, timeout).await
}

/// The Shamir threshold stored for `groups` key groups when `requested`
/// were asked for: none asked (0) means all of them, as the reference's
/// `UpdateMasterKeys` decides and writes it.
pub fn shamir_threshold(groups: usize, requested: usize) -> usize {
    match requested {
        0 if groups > 1 => groups,
        n => n,
    }
}

/// Every key of every group wraps its group's secret, all at once.
async fn wrap_all(
    groups: &[Vec<KeyEntry>],
    secrets: &[Zeroizing<Vec<u8>>],
    registry: &KeyRegistry,
    timeout: Duration,
) -> Result<Vec<Vec<KeyEntry>>, EncryptError> {
    let mut jobs = Vec::new();
    for (group, entries) in groups.iter().enumerate() {
        for entry in entries {
            jobs.push(wrap_one(entry, &secrets[group], registry, timeout));
        }
    }
    let mut wrapped = futures_util::future::join_all(jobs).await.into_iter();
    let mut result = Vec::with_capacity(groups.len());
    for entries in groups {
        let mut group = Vec::with_capacity(entries.len());
        for _ in entries {
            match wrapped.next() {
                Some(entry) => group.push(entry?),
                None => return Err(EncryptError::NoKeys),
            }
        }
        result.push(group);
    }
    Ok(result)
}

async fn wrap_one(
    recipient: &KeyEntry,
    secret: &[u8],
    registry: &KeyRegistry,
    timeout: Duration,
) -> Result<KeyEntry, EncryptError> {
    let fail = |source| EncryptError::Wrap {
        kind: recipient.kind.clone(),
        id: recipient
            .fields
            .first()
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        source,
    };
    let source = registry
        .source_for(&recipient.kind)
        .ok_or_else(|| fail(rsops_keysource::KeyError::unsupported_kind(&recipient.kind)))?;
    let deadline = (!source.is_local()).then_some(timeout);
    let wrap = source.wrap(
        recipient,
        secret,
        deadline.map_or(Deadline::NONE, Deadline::after),
    );
    let result = match deadline {
        Some(limit) => tokio::time::timeout(limit, wrap).await.unwrap_or_else(|_| {
            Err(rsops_keysource::KeyError::unreachable(format!(
                "no answer within {} ms",
                limit.as_millis()
            )))
        }),
        None => wrap.await,
    };
    result.map_err(fail)
}

/// A fresh data key: 32 bytes from the operating system's random source, as
/// the reference's `keyservice` generates one.
pub fn generate_data_key() -> Result<DataKey, EncryptError> {
    let mut bytes = Zeroizing::new([0u8; DATA_KEY_LEN]);
    getrandom::fill(bytes.as_mut_slice()).map_err(|_| EncryptError::Random)?;
    DataKey::from_slice(bytes.as_slice()).map_err(|_| EncryptError::Random)
}

/// Encrypts `document` in place under `key` and returns the encrypted MAC
/// (`ENC[AES256_GCM,...,type:str]`) to store as `sops.mac`.
///
/// From `metadata` only the selection rule, `mac_only_encrypted` and
/// `last_modified` (the AAD of the MAC, re-printed as Go's RFC 3339) are read.
/// Empty strings, empty comments and nulls stay as they are; an encrypted
/// list comment becomes an `ENC[...,type:comment]` string item, as in the
/// reference's tree. On error the document may be partly encrypted and must
/// not be written.
pub fn encrypt_document(
    document: &mut Document,
    metadata: &Metadata,
    key: &DataKey,
) -> Result<String, EncryptError> {
    seal_document(document, metadata, key, None)
}

/// Encrypts like [`encrypt_document`], giving every value that `stash` saw
/// decrypted unchanged (same path, type and plaintext) its old `ENC[...]`
/// string, so only changed values get new ciphertext.
pub fn encrypt_document_stashed(
    document: &mut Document,
    metadata: &Metadata,
    key: &DataKey,
    stash: &mut Stash,
) -> Result<String, EncryptError> {
    seal_document(document, metadata, key, Some(stash))
}

fn seal_document(
    document: &mut Document,
    metadata: &Metadata,
    key: &DataKey,
    stash: Option<&mut Stash>,
) -> Result<String, EncryptError> {
    let cipher = ValueCipher::new(key);
    let aad = mac_aad(metadata)?;
    let mac = walk::encrypt_values(document, metadata, &cipher, stash)?;
    encrypt_mac(&cipher, &aad, mac)
}

/// The additional data of the MAC: `lastmodified` in Go's RFC 3339 form.
pub(crate) fn mac_aad(metadata: &Metadata) -> Result<String, EncryptError> {
    crate::timefmt::parse_rfc3339(&metadata.last_modified)
        .map(|t| t.rfc3339())
        .ok_or_else(|| EncryptError::BadLastModified(metadata.last_modified.clone()))
}

/// The MAC (upper-case hex) encrypted as the metadata stores it, under
/// `aad` (see [`mac_aad`]).
pub(crate) fn encrypt_mac(
    cipher: &ValueCipher,
    aad: &str,
    mac: String,
) -> Result<String, EncryptError> {
    // The plaintext MAC is a hash of the secrets: wipe it once sealed.
    let mut mac = Value::Str(mac);
    let sealed = cipher.encrypt(&mac, aad).map_err(EncryptError::Mac);
    crate::tree::wipe_value(&mut mac);
    sealed
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;
    use crate::metadata::CryptRule;
    use crate::tree::{Comment, Entry, Map};

    const LAST_MODIFIED: &str = "2024-05-06T07:08:09Z";

    fn metadata(rule: CryptRule, mac_only_encrypted: bool) -> Metadata {
        Metadata {
            last_modified: LAST_MODIFIED.into(),
            mac: String::new(),
            version: Some(crate::metadata::WRITTEN_VERSION.into()),
            rule,
            mac_only_encrypted,
            shamir_threshold: 0,
            key_groups: Vec::new(),
        }
    }

    fn pair(key: &str, value: Value) -> Entry {
        Entry::Pair(key.into(), value)
    }

    fn comment(text: &str) -> Entry {
        Entry::Comment(Comment::new(text))
    }

    /// A document with every kind of leaf, nesting, lists with comments,
    /// and keys that each selection rule below picks out.
    fn sample() -> Document {
        let first: Map = vec![
            comment(" top comment"),
            pair("name", Value::Str("alice".into())),
            pair("empty", Value::Str(String::new())),
            pair("nothing", Value::Null),
            pair("port", Value::Int(-5432)),
            pair("ratio", Value::Float(1e21)),
            pair("small", Value::Float(0.000001)),
            pair("on", Value::Bool(true)),
            pair("off", Value::Bool(false)),
            pair("at", Value::Time("2024-01-02T03:04:05.123Z".into())),
            pair("raw", Value::Bytes(vec![0xff, 0x00, b'x'])),
            pair("public_unencrypted", Value::Str("visible".into())),
            pair(
                "db",
                Value::Map(vec![
                    comment(" sops:enc"),
                    pair("password_enc", Value::Str("s3cr3t".into())),
                    comment(" after"),
                    pair("host", Value::Str("db.local".into())),
                    pair(
                        "tags",
                        Value::List(vec![
                            Value::Str("a".into()),
                            Value::Comment(Comment::new(" in list")),
                            Value::Int(7),
                            Value::Null,
                            Value::Str(String::new()),
                            Value::Map(vec![pair("deep", Value::Bool(false))]),
                        ]),
                    ),
                ]),
            ),
        ];
        let second: Map = vec![pair("other", Value::Str("doc two".into()))];
        Document::new(vec![first, second])
    }

    fn rules() -> Vec<CryptRule> {
        vec![
            CryptRule::UnencryptedSuffix("_unencrypted".into()),
            CryptRule::EncryptedSuffix("_enc".into()),
            CryptRule::UnencryptedRegex(Regex::new("^(host|port)$").unwrap()),
            CryptRule::EncryptedRegex(Regex::new("^(db|name)$").unwrap()),
            CryptRule::UnencryptedCommentRegex(Regex::new("sops:enc").unwrap()),
            CryptRule::EncryptedCommentRegex(Regex::new("sops:enc").unwrap()),
        ]
    }

    fn key() -> DataKey {
        generate_data_key().unwrap()
    }

    /// Every non-null leaf and comment in document order: strings and
    /// comments as their text, other scalars as `<scalar>`.
    fn strings(doc: &Document) -> Vec<String> {
        fn value(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Map(m) => map(m, out),
                Value::List(items) => items.iter().for_each(|i| value(i, out)),
                Value::Str(s) => out.push(s.clone()),
                Value::Comment(c) => out.push(c.text.clone()),
                Value::Null => {}
                _ => out.push("<scalar>".into()),
            }
        }
        fn map(m: &Map, out: &mut Vec<String>) {
            for e in m {
                match e {
                    Entry::Pair(_, v) => value(v, out),
                    Entry::Comment(c) => out.push(c.text.clone()),
                }
            }
        }
        let mut out = Vec::new();
        doc.branches.iter().for_each(|b| map(b, &mut out));
        out
    }

    fn decrypt_and_check_mac(doc: &mut Document, meta: &Metadata, key: &DataKey, sealed_mac: &str) {
        let cipher = ValueCipher::new(key);
        let computed = walk::decrypt_document(doc, meta, &cipher).unwrap();
        let stored = cipher.decrypt(sealed_mac, LAST_MODIFIED).unwrap();
        assert_eq!(stored, Value::Str(computed));
    }

    #[test]
    fn round_trips_through_decrypt_with_every_rule() {
        for mac_only_encrypted in [false, true] {
            for rule in rules() {
                let meta = metadata(rule.clone(), mac_only_encrypted);
                let key = key();
                let mut doc = sample();
                let mac = encrypt_document(&mut doc, &meta, &key).unwrap();
                assert!(mac.starts_with("ENC[AES256_GCM,data:") && mac.ends_with(",type:str]"));
                assert_ne!(doc, sample(), "{rule:?} encrypted nothing");
                decrypt_and_check_mac(&mut doc, &meta, &key, &mac);
                assert_eq!(
                    doc,
                    sample(),
                    "{rule:?}, mac_only_encrypted {mac_only_encrypted}"
                );
            }
        }
    }

    /// A tree large enough for the cipher work to be shared between threads
    /// (with values of several types, and unencrypted ones the MAC covers)
    /// gives the same MAC as one value at a time would, round-trips, keeps
    /// stashed ciphertexts in order, and reports the first failing value in
    /// document order.
    #[test]
    fn shared_work_keeps_document_order() {
        let key = key();
        let cipher = ValueCipher::new(&key);
        let meta = metadata(CryptRule::UnencryptedSuffix("_unencrypted".into()), false);
        // What the MAC covers of the `k`th value of a section.
        let covered = |k: usize| match k {
            _ if k % 7 == 0 => format!("u{k}"),
            _ if k % 5 == 0 => k.to_string(),
            _ => format!("v{}", k % 3),
        };
        let big = || {
            let sections = (0..40)
                .map(|s| {
                    let values = (0..50)
                        .map(|k| match k {
                            _ if k % 7 == 0 => {
                                pair(&format!("k{k}_unencrypted"), Value::Str(covered(k)))
                            }
                            _ if k % 5 == 0 => pair(&format!("k{k}"), Value::Int(k as i64)),
                            _ => pair(&format!("k{k}"), Value::Str(covered(k))),
                        })
                        .collect();
                    pair(&format!("s{s}"), Value::Map(values))
                })
                .collect();
            Document::new(vec![sections])
        };
        let mut doc = big();
        let mac = walk::encrypt_values(&mut doc, &meta, &cipher, None).unwrap();
        use sha2::{Digest, Sha512};
        let mut hasher = Sha512::new();
        for i in 0..40 * 50 {
            hasher.update(covered(i % 50).as_bytes());
        }
        let expected: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(mac, expected);
        let sealed = doc.branches.clone();

        let mut stash = Stash::default();
        let mut opened = Document::new(sealed.clone());
        assert_eq!(
            walk::decrypt_document_stashing(&mut opened, &meta, &cipher, &mut stash).unwrap(),
            mac
        );
        assert_eq!(opened, big());
        walk::encrypt_values(&mut opened, &meta, &cipher, Some(&mut stash)).unwrap();
        assert_eq!(
            opened.branches, sealed,
            "untouched values keep their ciphertext"
        );

        let tamper = |doc: &mut Document, section: usize, key: usize| {
            let Entry::Pair(_, Value::Map(values)) = &mut doc.branches[0][section] else {
                unreachable!()
            };
            values[key] = pair(
                &format!("k{key}"),
                Value::Str("ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]".into()),
            );
        };
        let mut bad = Document::new(sealed.clone());
        tamper(&mut bad, 35, 7);
        tamper(&mut bad, 3, 9);
        let err = walk::decrypt_document(&mut bad, &meta, &cipher).unwrap_err();
        assert!(err.to_string().contains("`s3:k9`"), "{err}");
    }

    /// The MAC hashes the same bytes in both directions, and only the
    /// encrypted leaves (after the fixed prefix) with `mac_only_encrypted`.
    #[test]
    fn mac_is_the_plaintext_hash_decrypt_computes() {
        let key = key();
        let cipher = ValueCipher::new(&key);
        let meta = metadata(CryptRule::UnencryptedSuffix("_unencrypted".into()), false);
        let mut doc = sample();
        let plain_mac = walk::encrypt_values(&mut doc, &meta, &cipher, None).unwrap();
        assert_eq!(plain_mac.len(), 128);
        assert!(plain_mac
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
        assert_eq!(
            walk::decrypt_document(&mut doc, &meta, &cipher).unwrap(),
            plain_mac
        );

        let only = metadata(CryptRule::UnencryptedSuffix("_unencrypted".into()), true);
        let mut doc = sample();
        let only_mac = walk::encrypt_values(&mut doc, &only, &cipher, None).unwrap();
        assert_ne!(only_mac, plain_mac);
    }

    /// The default rule: every non-empty leaf and comment is encrypted with
    /// the reference's type tags; `_unencrypted` keys, empty strings and
    /// nulls are untouched; a list comment becomes an `ENC[...]` string.
    #[test]
    fn default_rule_types_and_untouched_values() {
        let meta = metadata(CryptRule::UnencryptedSuffix("_unencrypted".into()), false);
        let mut doc = sample();
        encrypt_document(&mut doc, &meta, &key()).unwrap();
        let top = &doc.branches[0];
        let get = |k: &str| {
            top.iter()
                .find_map(|e| match e {
                    Entry::Pair(key, v) if key == k => Some(v),
                    _ => None,
                })
                .unwrap()
        };
        let kind = |v: &Value| match v {
            Value::Str(s) => s
                .rsplit_once("type:")
                .unwrap()
                .1
                .trim_end_matches(']')
                .to_string(),
            _ => panic!("not encrypted"),
        };
        assert!(matches!(&top[0], Entry::Comment(c) if c.text.ends_with(",type:comment]")));
        assert_eq!(kind(get("name")), "str");
        assert_eq!(kind(get("port")), "int");
        assert_eq!(kind(get("ratio")), "float");
        assert_eq!(kind(get("on")), "bool");
        assert_eq!(kind(get("at")), "time");
        assert_eq!(kind(get("raw")), "str");
        assert_eq!(get("empty"), &Value::Str(String::new()));
        assert_eq!(get("nothing"), &Value::Null);
        assert_eq!(get("public_unencrypted"), &Value::Str("visible".into()));
        let Value::Map(db) = get("db") else { panic!() };
        let Entry::Pair(_, Value::List(tags)) = &db[4] else {
            panic!()
        };
        assert!(matches!(&tags[1], Value::Str(s) if s.ends_with(",type:comment]")));
        assert_eq!(tags[3], Value::Null);
        assert_eq!(tags[4], Value::Str(String::new()));
    }

    /// The plaintext inside each ciphertext is exactly the reference's text
    /// form, and each value is bound to its path.
    #[test]
    fn plaintext_forms_and_path_aad() {
        let key = key();
        let cipher = ValueCipher::new(&key);
        let meta = metadata(CryptRule::UnencryptedSuffix("_unencrypted".into()), false);
        let mut doc = sample();
        encrypt_document(&mut doc, &meta, &key).unwrap();
        let top = &doc.branches[0];
        let raw_plaintext = |k: &str, aad: &str| {
            let Some(Entry::Pair(_, Value::Str(enc))) = top
                .iter()
                .find(|e| matches!(e, Entry::Pair(key, _) if key == k))
            else {
                panic!("{k}")
            };
            // Decrypting as `str` shows the exact bytes that were encrypted.
            let as_str = enc.rsplit_once(",type:").unwrap().0.to_string() + ",type:str]";
            cipher.decrypt(&as_str, aad).unwrap()
        };
        assert_eq!(raw_plaintext("port", "port:"), Value::Str("-5432".into()));
        assert_eq!(
            raw_plaintext("ratio", "ratio:"),
            Value::Str("1000000000000000000000".into())
        );
        assert_eq!(
            raw_plaintext("small", "small:"),
            Value::Str("0.000001".into())
        );
        assert_eq!(raw_plaintext("on", "on:"), Value::Str("True".into()));
        assert_eq!(raw_plaintext("off", "off:"), Value::Str("False".into()));
        assert_eq!(
            raw_plaintext("at", "at:"),
            Value::Str("2024-01-02T03:04:05.123Z".into())
        );
        // Top-level comment: AAD `:`; nested values: `db:password_enc:`;
        // list items use the list's key only.
        let Entry::Comment(c) = &top[0] else { panic!() };
        assert_eq!(
            cipher.decrypt(&c.text, ":").unwrap(),
            Value::Comment(Comment::new(" top comment"))
        );
        let Some(Entry::Pair(_, Value::Map(db))) = top.last() else {
            panic!()
        };
        let Entry::Pair(_, Value::Str(pw)) = &db[1] else {
            panic!()
        };
        assert_eq!(
            cipher.decrypt(pw, "db:password_enc:").unwrap(),
            Value::Str("s3cr3t".into())
        );
        assert!(cipher.decrypt(pw, "password_enc:").is_err());
        let Entry::Pair(_, Value::List(tags)) = &db[4] else {
            panic!()
        };
        let Value::Str(first) = &tags[0] else {
            panic!()
        };
        assert_eq!(
            cipher.decrypt(first, "db:tags:").unwrap(),
            Value::Str("a".into())
        );
        let Value::Map(deep) = &tags[5] else { panic!() };
        let Entry::Pair(_, Value::Str(d)) = &deep[0] else {
            panic!()
        };
        assert_eq!(
            cipher.decrypt(d, "db:tags:deep:").unwrap(),
            Value::Bool(false)
        );
    }

    #[test]
    fn every_value_gets_its_own_iv() {
        let meta = metadata(CryptRule::UnencryptedSuffix("_unencrypted".into()), false);
        let key = key();
        let same = |n| -> Map {
            (0..n)
                .map(|i| pair(&format!("k{i}"), Value::Str("same".into())))
                .collect()
        };
        let mut doc = Document::new(vec![same(20)]);
        let mac = encrypt_document(&mut doc, &meta, &key).unwrap();
        let mut ivs: Vec<String> = strings(&doc)
            .iter()
            .chain(std::iter::once(&mac))
            .map(|s| {
                s.split(",iv:")
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert!(ivs.iter().all(|iv| iv.len() == 44), "32-byte IVs");
        ivs.sort();
        ivs.dedup();
        assert_eq!(ivs.len(), 21);
        // Encrypting the same document twice gives different ciphertexts.
        let mut again = Document::new(vec![same(1)]);
        let mut once_more = Document::new(vec![same(1)]);
        encrypt_document(&mut again, &meta, &key).unwrap();
        encrypt_document(&mut once_more, &meta, &key).unwrap();
        assert_ne!(strings(&again), strings(&once_more));
    }

    /// The selection rules pick the leaves the reference's `shouldBeEncrypted` picks.
    #[test]
    fn selection_rules_choose_the_reference_leaves() {
        // The leaves of `sample()` as `strings()` lists them.
        const NAMES: [&str; 21] = [
            "top comment",
            "name",
            "empty",
            "port",
            "ratio",
            "small",
            "on",
            "off",
            "at",
            "raw",
            "public_unencrypted",
            "sops:enc",
            "password_enc",
            "after",
            "host",
            "a",
            "list comment",
            "7",
            "list empty",
            "deep",
            "other",
        ];
        let check = |rule: CryptRule, expected: &[&str]| {
            let mut doc = sample();
            encrypt_document(&mut doc, &metadata(rule.clone(), false), &key()).unwrap();
            let before = strings(&sample());
            let after = strings(&doc);
            assert_eq!(before.len(), NAMES.len());
            assert_eq!(after.len(), NAMES.len());
            let got: Vec<&str> = NAMES
                .iter()
                .zip(before.iter().zip(&after))
                .filter(|(_, (b, a))| b != a)
                .map(|(name, _)| *name)
                .collect();
            assert_eq!(got, expected, "{rule:?}");
        };
        check(CryptRule::EncryptedSuffix("_enc".into()), &["password_enc"]);
        check(
            CryptRule::EncryptedRegex(Regex::new("^(db|name)$").unwrap()),
            &[
                "name",
                "sops:enc",
                "password_enc",
                "after",
                "host",
                "a",
                "list comment",
                "7",
                "deep",
            ],
        );
        check(
            CryptRule::UnencryptedRegex(Regex::new("^(host|db)$").unwrap()),
            &[
                "top comment",
                "name",
                "port",
                "ratio",
                "small",
                "on",
                "off",
                "at",
                "raw",
                "public_unencrypted",
                "other",
            ],
        );
        // The marker comment itself stays plaintext, and it selects only the
        // next value of its map (the comment stack is cleared after a value).
        check(
            CryptRule::EncryptedCommentRegex(Regex::new("sops:enc").unwrap()),
            &["password_enc"],
        );
        // Everything except the marker and the value it precedes.
        check(
            CryptRule::UnencryptedCommentRegex(Regex::new("sops:enc").unwrap()),
            &[
                "top comment",
                "name",
                "port",
                "ratio",
                "small",
                "on",
                "off",
                "at",
                "raw",
                "public_unencrypted",
                "after",
                "host",
                "a",
                "list comment",
                "7",
                "deep",
                "other",
            ],
        );
        // The default: everything but `_unencrypted` keys and empty strings.
        let all_but: Vec<&str> = NAMES
            .iter()
            .copied()
            .filter(|n| !matches!(*n, "empty" | "public_unencrypted" | "list empty"))
            .collect();
        check(
            CryptRule::UnencryptedSuffix("_unencrypted".into()),
            &all_but,
        );
    }

    #[test]
    fn refuses_an_encrypted_comment_the_unencrypted_regex_matches() {
        let meta = metadata(
            CryptRule::UnencryptedCommentRegex(Regex::new("ENC").unwrap()),
            false,
        );
        let mut doc = Document::new(vec![vec![
            comment(" hello"),
            pair("a", Value::Str("b".into())),
        ]]);
        let err = encrypt_document(&mut doc, &meta, &key()).unwrap_err();
        assert!(matches!(
            err,
            EncryptError::Walk(WalkError::EncryptedCommentMatches { .. })
        ));
        assert!(!err.to_string().contains("hello"));
    }

    #[test]
    fn refuses_a_bad_lastmodified() {
        let mut meta = metadata(CryptRule::UnencryptedSuffix("_unencrypted".into()), false);
        meta.last_modified = "yesterday".into();
        let mut doc = sample();
        assert!(matches!(
            encrypt_document(&mut doc, &meta, &key()),
            Err(EncryptError::BadLastModified(_))
        ));
        assert_eq!(doc, sample(), "nothing encrypted before the check");
    }

    /// The MAC's AAD is `lastmodified` re-printed as Go's RFC 3339.
    #[test]
    fn mac_aad_is_reformatted_lastmodified() {
        let mut meta = metadata(CryptRule::UnencryptedSuffix("_unencrypted".into()), false);
        meta.last_modified = "2024-05-06T09:08:09+02:00".into();
        let key = key();
        let mut doc = sample();
        let mac = encrypt_document(&mut doc, &meta, &key).unwrap();
        let cipher = ValueCipher::new(&key);
        let aad = crate::timefmt::parse_rfc3339(&meta.last_modified)
            .unwrap()
            .rfc3339();
        assert!(matches!(cipher.decrypt(&mac, &aad), Ok(Value::Str(s)) if s.len() == 128));
    }

    #[test]
    fn data_keys_are_random() {
        assert_ne!(key().expose(), key().expose());
    }
}
