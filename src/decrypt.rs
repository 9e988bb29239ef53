//! The decrypt pipeline: parse → extract metadata → get the data key →
//! decrypt every value → verify the MAC. Nothing here prints.

use crate::cipher::{CipherError, ValueCipher};
use crate::formats::{Format, FormatError};
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

/// Why a file could not be decrypted. Messages never contain plaintext.
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
    #[error("MAC mismatch: the file was modified after it was encrypted (stored {stored}, computed {computed})")]
    MacMismatch {
        /// The MAC stored in the file (or `no MAC`).
        stored: String,
        /// The MAC of the decrypted content.
        computed: String,
    },
}

impl DecryptError {
    /// The exit code the reference `sops` uses for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            DecryptError::Format(_) | DecryptError::Metadata(_) => 1,
            DecryptError::DataKey(_) => 128,
            DecryptError::Walk(_) => 25,
            DecryptError::MacUnreadable(_) | DecryptError::MacMismatch { .. } => 51,
        }
    }
}

/// Decrypts a file's bytes. Runs the key sources on the current async runtime.
pub async fn decrypt(
    input: &[u8],
    format: Format,
    registry: &KeyRegistry,
    options: &DecryptOptions,
) -> Result<Decrypted, DecryptError> {
    let mut document = format.parse(input)?;
    let metadata = metadata::extract(&mut document, format.metadata_layout())?;
    let (key, attempts) = crate::keys::data_key(&metadata, registry, &options.unwrap).await?;
    let cipher =
        ValueCipher::new(key.expose()).map_err(|_| DataKeyError::BadLength(key.expose().len()))?;
    drop(key);
    let computed = walk::decrypt_document(&mut document, &metadata, &cipher)?;
    if !options.ignore_mac {
        verify_mac(&metadata, &cipher, computed)?;
    }
    Ok(Decrypted {
        document,
        metadata,
        attempts,
    })
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
/// in Go's RFC 3339 form.
fn verify_mac(
    metadata: &Metadata,
    cipher: &ValueCipher,
    computed: String,
) -> Result<(), DecryptError> {
    let aad = crate::timefmt::parse_rfc3339(&metadata.last_modified)
        .map(|t| t.rfc3339())
        .unwrap_or_default();
    let stored = match cipher
        .decrypt(&metadata.mac, &aad)
        .map_err(DecryptError::MacUnreadable)?
    {
        Value::Str(s) => s,
        _ => {
            return Err(DecryptError::MacUnreadable(CipherError::BadPlaintext(
                "str",
            )))
        }
    };
    if stored != computed {
        let stored = if stored.is_empty() {
            "no MAC".into()
        } else {
            stored
        };
        return Err(DecryptError::MacMismatch { stored, computed });
    }
    Ok(())
}
