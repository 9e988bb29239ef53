//! The decrypt pipeline: parse → extract metadata → get the data key →
//! decrypt every value → verify the MAC. Nothing here prints.

use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::Digest;
use zeroize::Zeroizing;

use rsops_keysource::DataKey;

use crate::cipher::{CipherError, Stash, ValueCipher};
use crate::formats::{Format, FormatError, Pieces};
use crate::keys::{Attempt, DataKeyError, KeyRegistry, UnwrapOptions};
use crate::metadata::{self, Metadata, MetadataError};
use crate::tree::{Document, Value};
use crate::walk::{self, WalkError};

/// Options of a decryption.
#[derive(Clone, Debug, Default)]
pub struct DecryptOptions {
    /// Skip the MAC check (`--ignore-mac`).
    pub ignore_mac: bool,
    /// Preferences and deadlines for getting the data key.
    pub unwrap: UnwrapOptions,
}

/// A decrypted file: the plaintext tree and the metadata it carried.
#[derive(Debug)]
pub struct Decrypted {
    /// The plaintext document, metadata removed. Wiped when dropped.
    pub document: Document,
    /// The file's metadata.
    pub metadata: Metadata,
    /// Every key entry and what happened when it was tried.
    pub attempts: Vec<Attempt>,
}

/// What `rsops keys` reports: a file's key entries and which of them the
/// current user can unwrap, found without decrypting any value.
#[derive(Debug)]
pub struct KeyCheck {
    /// The file's metadata.
    pub metadata: Metadata,
    /// Every entry and its outcome (all entries are tried).
    pub attempts: Vec<Attempt>,
    /// Whether enough groups were unwrapped to rebuild the data key.
    pub recoverable: bool,
}

/// Why a file could not be decrypted. Messages never contain plaintext, nor
/// anything computed from it: not even the MAC, which is an unsalted SHA-512
/// of the values and would let whoever reads the message test guesses of a
/// short secret offline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The input is not valid in its format.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The file has no or bad sops metadata.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// No key could unwrap the data key.
    #[error(transparent)]
    DataKey(#[from] DataKeyError),
    /// A value failed to decrypt.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// The stored MAC could not be decrypted.
    #[error("cannot decrypt the MAC: {0}")]
    MacUnreadable(CipherError),
    /// The MAC does not match the content: the file was modified.
    #[error("MAC mismatch: the decrypted values do not match the file's MAC, so the file was modified after it was encrypted (or values were copied in from another file)")]
    MacMismatch,
    /// The file has no MAC at all, so nothing vouches for its content.
    #[error("MAC mismatch: the file has no MAC, so nothing shows that its values are the ones that were encrypted")]
    MacMissing,
}

/// Decrypts a file's bytes. Runs the key sources on the current async runtime.
pub async fn decrypt(
    input: &[u8],
    format: Format,
    registry: &KeyRegistry,
    options: &DecryptOptions,
) -> Result<Decrypted, DecryptError> {
    decrypt_document(format.parse(input)?, format, registry, options).await
}

/// Decrypts a file's bytes and returns its data key too; with a `stash`,
/// every value's `ENC[...]` string is remembered for re-encryption.
pub(crate) async fn decrypt_keeping_key(
    input: &[u8],
    format: Format,
    registry: &KeyRegistry,
    options: &DecryptOptions,
    stash: Option<&mut Stash>,
) -> Result<(Decrypted, DataKey), DecryptError> {
    let document = format.parse(input)?;
    decrypt_parsed(document, format, registry, options, stash).await
}

/// The [`Stash`] of a file whose data key is known: what
/// [`decrypt_keeping_key`] stashes, without unwrapping the key again or
/// checking the MAC (both were, when the file was first opened).
pub(crate) fn restash(input: &[u8], format: Format, key: &DataKey) -> Result<Stash, DecryptError> {
    let mut document = format.parse(input)?;
    let metadata = metadata::extract(&mut document, format.metadata_layout())?;
    let mut stash = Stash::default();
    let cipher = ValueCipher::new(key);
    // A hash of the plaintext, wiped like it.
    drop(Zeroizing::new(walk::decrypt_document_stashing(
        &mut document,
        &metadata,
        &cipher,
        &mut stash,
    )?));
    Ok(stash)
}

/// Decrypts like [`decrypt`], taking the input to wipe and free it as soon
/// as it is parsed: a large file's bytes are not kept beside its tree.
pub async fn decrypt_owned(
    input: Zeroizing<Vec<u8>>,
    format: Format,
    registry: &KeyRegistry,
    options: &DecryptOptions,
) -> Result<Decrypted, DecryptError> {
    let document = format.parse(&input)?;
    drop(input);
    decrypt_document(document, format, registry, options).await
}

/// Decrypts a file already parsed (see [`crate::Format::parse_pieces`]).
pub async fn decrypt_document(
    document: Document,
    format: Format,
    registry: &KeyRegistry,
    options: &DecryptOptions,
) -> Result<Decrypted, DecryptError> {
    let (decrypted, _key) = decrypt_parsed(document, format, registry, options, None).await?;
    Ok(decrypted)
}

/// Decrypts a large file read in [`Pieces`], each piece decrypted as soon
/// as it is parsed, so the file's `ENC[...]` strings are never all in
/// memory at once (only the plaintext tree is). The metadata is taken from
/// the last piece, where sops writes it, and the data key got before the
/// other pieces are read. `None` when the file has to be read whole and
/// decrypted the usual way: the last piece has no metadata, or a piece did
/// not parse (every piece is parsed before any failure is reported, so
/// the errors are the ones the usual way reports, in the same order).
pub async fn decrypt_pieces(
    pieces: &Pieces<'_>,
    format: Format,
    registry: &KeyRegistry,
    options: &DecryptOptions,
) -> Option<Result<Decrypted, DecryptError>> {
    let last = pieces.count() - 1;
    let mut tail = pieces.parse(last)?;
    let metadata = metadata::extract(&mut tail, format.metadata_layout()).ok()?;
    let (key, attempts) = match crate::keys::data_key(&metadata, registry, &options.unwrap).await {
        Ok(found) => found,
        Err(e) => return all_parse(pieces).then(|| Err(e.into())),
    };
    let cipher = ValueCipher::new(&key);
    let mut hasher = walk::mac_hasher(&metadata);
    // Wiped when dropped, as a failure drops it.
    let mut joined = Document::new(vec![Vec::new()]);
    let mut unparsed = false;
    let mut failed = None;
    // A piece is decrypted unless one before it failed; it is parsed in
    // any case, to confirm the file reads as a whole.
    let first_failed = AtomicUsize::new(usize::MAX);
    let decrypt = |index: usize, mut piece: Document| {
        let outcome = (index < first_failed.load(Ordering::Relaxed)).then(|| {
            let outcome = walk::decrypt_entries(&mut piece.branches[0], &metadata, &cipher);
            if outcome.is_err() {
                first_failed.fetch_min(index, Ordering::Relaxed);
            }
            outcome
        });
        (piece, outcome)
    };
    crate::par::in_order(
        last,
        |index| pieces.parse(index).map(|piece| decrypt(index, piece)),
        |piece| match piece {
            None => unparsed = true,
            Some((mut piece, outcome)) => match outcome {
                Some(Ok(mac)) if failed.is_none() => {
                    hasher.update(mac.as_slice());
                    crate::tree::move_entries(&mut joined.branches[0], &mut piece.branches[0]);
                }
                Some(Err(e)) if failed.is_none() => failed = Some(e),
                // After a failure: dropped, and wiped.
                _ => {}
            },
        },
    );
    if unparsed {
        return None;
    }
    let result = match failed {
        Some(e) => Err(e.into()),
        None => walk::decrypt_entries(&mut tail.branches[0], &metadata, &cipher)
            .map_err(DecryptError::from)
            .and_then(|mac| {
                hasher.update(mac.as_slice());
                crate::tree::move_entries(&mut joined.branches[0], &mut tail.branches[0]);
                let computed = Zeroizing::new(walk::hex_upper(&hasher.finalize()));
                if options.ignore_mac {
                    Ok(())
                } else {
                    verify_mac(&metadata, &cipher, &computed)
                }
            }),
    };
    Some(result.map(|()| Decrypted {
        document: joined,
        metadata,
        attempts,
    }))
}

/// Whether every piece parses (each is dropped once parsed).
fn all_parse(pieces: &Pieces<'_>) -> bool {
    let mut all = true;
    crate::par::in_order(
        pieces.count(),
        |index| pieces.parse(index).is_some(),
        |parsed| {
            all &= parsed;
        },
    );
    all
}

/// The rest of the pipeline once the file is parsed.
async fn decrypt_parsed(
    mut document: Document,
    format: Format,
    registry: &KeyRegistry,
    options: &DecryptOptions,
    stash: Option<&mut Stash>,
) -> Result<(Decrypted, DataKey), DecryptError> {
    let metadata = metadata::extract(&mut document, format.metadata_layout())?;
    let (key, attempts) = crate::keys::data_key(&metadata, registry, &options.unwrap).await?;
    let cipher = ValueCipher::new(&key);
    // A hash of the plaintext: wiped like it, whether it is checked or not.
    let computed = Zeroizing::new(match stash {
        Some(stash) => walk::decrypt_document_stashing(&mut document, &metadata, &cipher, stash)?,
        None => walk::decrypt_document(&mut document, &metadata, &cipher)?,
    });
    if !options.ignore_mac {
        verify_mac(&metadata, &cipher, &computed)?;
    }
    let decrypted = Decrypted {
        document,
        metadata,
        attempts,
    };
    Ok((decrypted, key))
}

/// Whether a file is encrypted, as `sops filestatus` decides it: it has sops
/// metadata with a MAC. A file without metadata is not encrypted; a file
/// that cannot be parsed, or whose metadata is malformed, is an error.
pub fn is_encrypted(input: &[u8], format: Format) -> Result<bool, DecryptError> {
    let mut document = format.parse(input)?;
    match metadata::extract(&mut document, format.metadata_layout()) {
        Ok(metadata) => Ok(!metadata.mac.is_empty()),
        Err(MetadataError::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Tries every key entry of a file, without decrypting its values.
pub async fn check_keys(
    input: &[u8],
    format: Format,
    registry: &KeyRegistry,
    options: &UnwrapOptions,
) -> Result<KeyCheck, DecryptError> {
    let mut document = format.parse(input)?;
    let metadata = metadata::extract(&mut document, format.metadata_layout())?;
    drop(document);
    let options = UnwrapOptions {
        try_all: true,
        ..options.clone()
    };
    let (recoverable, attempts) = match crate::keys::data_key(&metadata, registry, &options).await {
        Ok((_key, attempts)) => (true, attempts),
        Err(DataKeyError::Unwrap { attempts, .. }) => (false, attempts),
        Err(other) => return Err(other.into()),
    };
    Ok(KeyCheck {
        metadata,
        attempts,
        recoverable,
    })
}

/// Checks the stored MAC, whose additional data is `lastmodified` re-printed
/// in Go's RFC 3339 form. Both MACs are hashes of the plaintext: the stored
/// one is wiped here, and neither goes into the error.
pub(crate) fn verify_mac(
    metadata: &Metadata,
    cipher: &ValueCipher,
    computed: &str,
) -> Result<(), DecryptError> {
    let aad = crate::timefmt::parse_rfc3339(&metadata.last_modified)
        .map(|t| t.rfc3339())
        .unwrap_or_default();
    let mut stored = cipher
        .decrypt(&metadata.mac, &aad)
        .map_err(DecryptError::MacUnreadable)?;
    let verdict = match &stored {
        Value::Str(s) if s.is_empty() => Err(DecryptError::MacMissing),
        Value::Str(s) if s.as_bytes() == computed.as_bytes() => Ok(()),
        Value::Str(_) => Err(DecryptError::MacMismatch),
        _ => Err(DecryptError::MacUnreadable(CipherError::BadPlaintext(
            "str",
        ))),
    };
    crate::tree::wipe_value(&mut stored);
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::CryptRule;

    const LAST_MODIFIED: &str = "2026-11-26T06:36:35Z";

    fn metadata_with_mac(cipher: &ValueCipher, mac: &str) -> Metadata {
        Metadata {
            last_modified: LAST_MODIFIED.into(),
            mac: cipher
                .encrypt(&Value::Str(mac.into()), LAST_MODIFIED)
                .unwrap_or_default(),
            version: Some("3.11.0".into()),
            rule: CryptRule::UnencryptedSuffix("_unencrypted".into()),
            mac_only_encrypted: false,
            shamir_threshold: 0,
            key_groups: Vec::new(),
        }
    }

    /// The MACs are unsalted hashes of the plaintext: no message shows them.
    #[test]
    fn mismatch_names_no_hash() {
        let cipher = ValueCipher::new(&rsops_keysource::DataKey::from_slice(&[7; 32]).unwrap());
        let stored = "A".repeat(128);
        let computed = "B".repeat(128);
        let meta = metadata_with_mac(&cipher, &stored);
        assert!(verify_mac(&meta, &cipher, &stored).is_ok());
        let err = verify_mac(&meta, &cipher, &computed).unwrap_err();
        assert!(matches!(err, DecryptError::MacMismatch));
        let message = err.to_string();
        assert!(message.starts_with("MAC mismatch: "), "{message}");
        assert!(!message.contains("AAAA") && !message.contains("BBBB"));

        let missing = metadata_with_mac(&cipher, "");
        let err = verify_mac(&missing, &cipher, &stored).unwrap_err();
        assert!(matches!(err, DecryptError::MacMissing));
        assert!(err.to_string().contains("has no MAC"));
    }
}
