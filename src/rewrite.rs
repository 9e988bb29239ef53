//! Changing an encrypted file with its own data key: what `set`, `unset`,
//! `edit`, `rotate`, `updatekeys`, `groups` and the merge driver share.
//!
//! The reference has two shapes of change, and so does rsops:
//!
//! - [`Opened`]: every value decrypted, the data key kept, and every
//!   value's `ENC[...]` string stashed. [`Opened::seal`] encrypts again
//!   with the same key, so values the change did not touch keep their
//!   ciphertext byte for byte, and writes a new MAC and `lastmodified`
//!   (`set`, `unset`, `edit`, the merge driver; `rotate` first swaps in a
//!   new data key with [`Opened::rotate_data_key`]).
//! - [`Rekeyed`]: the values stay encrypted and only the key groups change
//!   (`updatekeys`, `groups add|delete`): the data key is unwrapped and
//!   wrapped again for the new groups; values, MAC and `lastmodified` are
//!   left as they are, as the reference leaves them.

mod pieces;

use std::time::Duration;

use rsops_keysource::{DataKey, KeyEntry};

use crate::cipher::Stash;
use crate::decrypt::{DecryptError, DecryptOptions};
use crate::encrypt::EncryptError;
use crate::formats::{EmitOptions, Format, FormatError, Printed};
use crate::keys::{Attempt, KeyRegistry, UnwrapOptions};
use crate::metadata::{self, InsertOptions, Metadata};
use crate::timefmt::Timestamp;
use crate::tree::Document;

pub use pieces::{change_in_pieces, PathEdit, PiecesError};

/// An encrypted file decrypted for change, with what it takes to encrypt it
/// again as the reference would: the data key and the old ciphertexts.
#[derive(Debug)]
pub struct Opened {
    /// The plaintext, metadata removed; change it freely. Wiped when dropped.
    pub document: Document,
    /// The file's metadata; `seal` renews `lastmodified` and the MAC.
    pub metadata: Metadata,
    /// Every key entry and what happened when it was tried.
    pub attempts: Vec<Attempt>,
    key: DataKey,
    stash: Stash,
}

impl Opened {
    /// Decrypts a file's bytes (checking the MAC unless told not to) and
    /// keeps its data key and ciphertexts for [`Opened::seal`].
    pub async fn open(
        input: &[u8],
        format: Format,
        registry: &KeyRegistry,
        options: &DecryptOptions,
    ) -> Result<Opened, DecryptError> {
        let mut stash = Stash::default();
        let (decrypted, key) =
            crate::decrypt::decrypt_keeping_key(input, format, registry, options, Some(&mut stash))
                .await?;
        Ok(Opened {
            document: decrypted.document,
            metadata: decrypted.metadata,
            attempts: decrypted.attempts,
            key,
            stash,
        })
    }

    /// A new file's: an empty document under a fresh data key wrapped for
    /// every key of `options`' groups, as the reference's `edit` of a file
    /// that does not exist wraps it before the editor starts. Fill
    /// `document`, then [`Opened::seal`] it.
    pub async fn create(
        options: &crate::encrypt::EncryptOptions,
        registry: &KeyRegistry,
    ) -> Result<Opened, EncryptError> {
        if options.key_groups.is_empty() {
            return Err(EncryptError::NoKeys);
        }
        if options.key_groups.iter().any(Vec::is_empty) {
            return Err(EncryptError::EmptyKeyGroup);
        }
        let key = crate::encrypt::generate_data_key()?;
        let groups = options.key_groups.len();
        let key_groups = crate::encrypt::wrap_for(&key, options, registry).await?;
        Ok(Opened {
            document: Document::default(),
            metadata: Metadata {
                last_modified: Timestamp::now().rfc3339(),
                mac: String::new(),
                version: Some(crate::metadata::WRITTEN_VERSION.to_string()),
                rule: options.rule.clone(),
                mac_only_encrypted: options.mac_only_encrypted,
                shamir_threshold: if groups > 1 {
                    options.shamir_threshold
                } else {
                    0
                },
                key_groups,
            },
            attempts: Vec::new(),
            key,
            stash: Stash::default(),
        })
    }

    /// Replaces the data key with a fresh one wrapped for every key of the
    /// metadata's key groups (`rotate`). Every value then gets new
    /// ciphertext when sealed. Nothing changes unless every key wrapped it.
    pub async fn rotate_data_key(
        &mut self,
        registry: &KeyRegistry,
        timeout: Duration,
    ) -> Result<(), EncryptError> {
        let key = crate::encrypt::generate_data_key()?;
        let groups = crate::encrypt::wrap_data_key(
            &key,
            &self.metadata.key_groups,
            self.metadata.shamir_threshold,
            registry,
            timeout,
        )
        .await?;
        self.metadata.shamir_threshold =
            crate::encrypt::shamir_threshold(groups.len(), self.metadata.shamir_threshold);
        self.metadata.key_groups = groups;
        self.key = key;
        self.stash = Stash::default();
        Ok(())
    }

    /// Seals the text of an edited file as [`Opened::seal`] seals its
    /// document, when it is a large YAML file printed as YAML: in pieces,
    /// never whole in memory, each written to `out` as it is printed (see
    /// [`crate::encrypt::seal_pieces`]); returns the rest of the file (its
    /// metadata) to write after them. `None` when it has to be parsed
    /// whole and sealed with [`Opened::seal`] (which then reports any
    /// error in it). A text with a top-level `sops` entry is refused as
    /// [`EncryptError::AlreadyEncrypted`]. Unless this succeeds, what was
    /// written to `out` is to be thrown away, and the old ciphertexts are
    /// stashed again from `source`, the file as opened (if it was).
    pub fn seal_text(
        &mut self,
        text: &[u8],
        input: Format,
        output: Format,
        emit: EmitOptions,
        out: &mut dyn std::io::Write,
        source: Option<&[u8]>,
    ) -> Option<Result<Printed, EncryptError>> {
        if input != Format::Yaml || output != Format::Yaml {
            return None;
        }
        let pieces = crate::formats::PlainPieces::cut(text)?;
        let cipher = crate::cipher::ValueCipher::new(&self.key);
        self.metadata.last_modified = Timestamp::now().rfc3339();
        let sealed = crate::encrypt::seal_pieces(
            &pieces,
            &self.metadata,
            &cipher,
            Some(&mut self.stash),
            emit,
            Some(out),
        );
        let sealed = match sealed {
            Some(sealed) if !sealed.holds_metadata => sealed,
            refused => {
                // Pieces sealed took their old ciphertexts: taken again
                // (rarely: the text is loaded whole, or edited again).
                if let Some(source) = source {
                    self.stash =
                        crate::decrypt::restash(source, input, &self.key).unwrap_or_default();
                }
                return refused.map(|_| Err(EncryptError::AlreadyEncrypted));
            }
        };
        // The old ciphertexts, freed while the caller writes.
        crate::par::drop_in_background(std::mem::take(&mut self.stash));
        Some(sealed.finish(&mut self.metadata, &cipher, emit))
    }

    /// Encrypts the document again under the file's data key and prints it
    /// in `output`'s layout: unchanged values keep their `ENC[...]`, changed
    /// ones get a fresh IV, and the MAC is computed anew under a new
    /// `lastmodified`, as the reference's `EncryptTree` does.
    pub fn seal(mut self, output: Format, emit: EmitOptions) -> Result<Printed, EncryptError> {
        crate::encrypt::comments_on_own_lines(&mut self.document);
        self.metadata.last_modified = Timestamp::now().rfc3339();
        self.metadata.mac = crate::encrypt::encrypt_document_stashed(
            &mut self.document,
            &self.metadata,
            &self.key,
            &mut self.stash,
        )?;
        metadata::insert_with(
            &mut self.document,
            &self.metadata,
            InsertOptions::for_format(output),
        );
        let printed = output
            .print_encrypted(&self.document, emit)
            .map_err(EncryptError::Emit);
        // Left are the file as printed and the old ciphertexts, freed
        // while the caller writes. The key is wiped here.
        let Opened {
            document,
            stash,
            key,
            ..
        } = self;
        drop(key);
        crate::encrypt::release_sealed(document, stash);
        printed
    }
}

/// An encrypted file whose key groups change while its values stay as
/// they are (`updatekeys`, `groups add|delete`).
#[derive(Debug)]
pub struct Rekeyed {
    /// The still-encrypted document, metadata removed.
    document: Document,
    /// The file's metadata; change `key_groups` with [`Rekeyed::set_key_groups`].
    pub metadata: Metadata,
}

impl Rekeyed {
    /// Reads a file's document and metadata, decrypting and unwrapping
    /// nothing: enough to decide whether its key groups change at all.
    pub fn read(input: &[u8], format: Format) -> Result<Rekeyed, DecryptError> {
        let mut document = format.parse(input)?;
        let metadata = metadata::extract(&mut document, format.metadata_layout())?;
        Ok(Rekeyed { document, metadata })
    }

    /// Unwraps the file's data key from its current key groups.
    pub async fn data_key(
        &self,
        registry: &KeyRegistry,
        options: &UnwrapOptions,
    ) -> Result<(DataKey, Vec<Attempt>), DecryptError> {
        Ok(crate::keys::data_key(&self.metadata, registry, options).await?)
    }

    /// Wraps `key`, the file's data key, for `groups` (split across them
    /// with Shamir's scheme when there are several, `threshold` shares
    /// needed, 0 meaning all) and makes them the file's key groups and
    /// threshold. Every key wraps anew, as the reference's
    /// `UpdateMasterKeys` does; nothing changes unless every key wrapped.
    pub async fn set_key_groups(
        &mut self,
        key: &DataKey,
        groups: Vec<Vec<KeyEntry>>,
        threshold: usize,
        registry: &KeyRegistry,
        timeout: Duration,
    ) -> Result<(), EncryptError> {
        let wrapped =
            crate::encrypt::wrap_data_key(key, &groups, threshold, registry, timeout).await?;
        self.metadata.shamir_threshold = crate::encrypt::shamir_threshold(wrapped.len(), threshold);
        self.metadata.key_groups = wrapped;
        Ok(())
    }

    /// Prints the file with its new metadata in `output`'s layout.
    pub fn emit(mut self, output: Format, emit: EmitOptions) -> Result<Vec<u8>, FormatError> {
        metadata::insert_with(
            &mut self.document,
            &self.metadata,
            InsertOptions::for_format(output),
        );
        output.emit_encrypted(&self.document, emit)
    }
}

/// An encrypted file opened for a change at one path (`set`, `unset`):
/// the values stay encrypted, every one having been decrypted only to
/// check the MAC, so the change costs about what reading the file costs.
/// Sealed, it is what [`Opened`] gives for the same change: untouched
/// values keep their ciphertext, the changed path is encrypted anew, and
/// the MAC and `lastmodified` are renewed.
///
/// The values the change takes out of the tree are kept until it is
/// sealed: that is how the seal tells an unchanged value (the very string
/// that was read) from a new one (see [`crate::walk::reseal_in_place`]).
/// Only files whose rule selects values by key are opened this way; the
/// comment rules depend on comments' plaintext (see [`InPlace::supports`]).
#[derive(Debug)]
pub struct InPlace {
    document: Document,
    /// The file's metadata; `seal` renews `lastmodified` and the MAC.
    pub metadata: Metadata,
    /// Every key entry and what happened when it was tried.
    pub attempts: Vec<Attempt>,
    key: DataKey,
    opening: crate::walk::Opening,
    retired: Vec<crate::tree::Value>,
}

impl InPlace {
    /// Whether a file with this metadata can be changed in place. A
    /// comment rule decides from comments' plaintext, which the change
    /// leaves encrypted; such files go through [`Opened`].
    pub fn supports(metadata: &Metadata) -> bool {
        !matches!(
            metadata.rule,
            metadata::CryptRule::UnencryptedCommentRegex(_)
                | metadata::CryptRule::EncryptedCommentRegex(_)
        )
    }

    /// Reads a file's metadata and unwraps its data key, then, if the file
    /// [`supports`](InPlace::supports) a change in place, checks its MAC
    /// (unless told not to) by decrypting every value aside. `Ok(None)`
    /// means the file must be changed through [`Opened`] instead.
    pub async fn open(
        input: &[u8],
        format: Format,
        registry: &KeyRegistry,
        options: &DecryptOptions,
    ) -> Result<Option<InPlace>, DecryptError> {
        let mut document = format.parse(input)?;
        let metadata = metadata::extract(&mut document, format.metadata_layout())?;
        if !InPlace::supports(&metadata) {
            return Ok(None);
        }
        let (key, attempts) = crate::keys::data_key(&metadata, registry, &options.unwrap).await?;
        let cipher = crate::cipher::ValueCipher::new(&key);
        let (computed, opening) = crate::walk::open_in_place(&mut document, &metadata, &cipher)?;
        // A hash of the plaintext: wiped like it, whether it is checked or not.
        let computed = zeroize::Zeroizing::new(computed);
        if !options.ignore_mac {
            crate::decrypt::verify_mac(&metadata, &cipher, &computed)?;
        }
        Ok(Some(InPlace {
            document,
            metadata,
            attempts,
            key,
            opening,
            retired: Vec::new(),
        }))
    }

    /// Whether the file holds a document to change.
    pub fn is_empty(&self) -> bool {
        self.document.branches.is_empty()
    }

    /// Sets the value at `path` of the first document (see
    /// [`crate::update::set`]).
    pub fn set(
        &mut self,
        path: &[crate::extract::Step],
        value: crate::tree::Value,
    ) -> Result<(), crate::update::UpdateError> {
        match self.document.branches.first_mut() {
            Some(root) => {
                crate::update::set_retiring(root, path, value, &mut self.retired).map(|_changed| ())
            }
            None => Ok(()),
        }
    }

    /// Removes the value at `path` of the first document (see
    /// [`crate::update::unset`]).
    pub fn unset(
        &mut self,
        path: &[crate::extract::Step],
    ) -> Result<(), crate::update::UpdateError> {
        match self.document.branches.first_mut() {
            Some(root) => crate::update::unset_retiring(root, path, &mut self.retired),
            None => Ok(()),
        }
    }

    /// Encrypts what changed under the file's data key and prints the file
    /// in `output`'s layout, as [`Opened::seal`] does.
    pub fn seal(mut self, output: Format, emit: EmitOptions) -> Result<Printed, EncryptError> {
        crate::encrypt::comments_on_own_lines(&mut self.document);
        self.metadata.last_modified = Timestamp::now().rfc3339();
        let aad = crate::encrypt::mac_aad(&self.metadata)?;
        let cipher = crate::cipher::ValueCipher::new(&self.key);
        let large = self
            .document
            .branches
            .iter()
            .any(|b| crate::tree::has_nodes(b, HASH_WHILE_PRINTING_NODES));
        let mac = crate::walk::reseal_in_place(
            &mut self.document,
            &self.metadata,
            &cipher,
            &self.opening,
            &self.retired,
        )?;
        let layout = InsertOptions::for_format(output);
        let printed = if large && matches!(output, Format::Yaml | Format::Json | Format::Binary) {
            // Printed with a stand-in for the MAC while the MAC is hashed,
            // then patched: a dummy MAC sealed under a fresh IV has the
            // real one's length and shape, and is nowhere else in the file.
            let stand_in = crate::encrypt::encrypt_mac(&cipher, &aad, "0".repeat(128))?;
            self.metadata.mac = stand_in.clone();
            metadata::insert_with(&mut self.document, &self.metadata, layout);
            let document = &self.document;
            let (mac, printed) = std::thread::scope(|scope| {
                let hashed = scope.spawn(move || mac.digest());
                let printed = output.print_encrypted(document, emit);
                let mac = hashed
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (mac, printed)
            });
            self.metadata.mac = crate::encrypt::encrypt_mac(&cipher, &aad, mac)?;
            let mut printed = printed.map_err(EncryptError::Emit)?;
            if !printed.replace_last(stand_in.as_bytes(), self.metadata.mac.as_bytes()) {
                // Not printed as expected: print again, with the MAC.
                let _stand_in = metadata::extract(&mut self.document, output.metadata_layout());
                metadata::insert_with(&mut self.document, &self.metadata, layout);
                printed = output
                    .print_encrypted(&self.document, emit)
                    .map_err(EncryptError::Emit)?;
            }
            printed
        } else {
            self.metadata.mac = crate::encrypt::encrypt_mac(&cipher, &aad, mac.digest())?;
            metadata::insert_with(&mut self.document, &self.metadata, layout);
            output
                .print_encrypted(&self.document, emit)
                .map_err(EncryptError::Emit)?
        };
        let InPlace {
            document,
            opening,
            retired,
            key,
            ..
        } = self;
        drop(key);
        crate::encrypt::release_sealed(document, (opening, retired));
        Ok(printed)
    }
}

/// From this many nodes on, a document changed in place has its MAC hashed
/// while it is printed (on every core, see [`crate::formats::Printed`]).
const HASH_WHILE_PRINTING_NODES: usize = 16_384;

/// A file opened for a change at one path: in place when its rule allows
/// (see [`InPlace::supports`]), else decrypted.
#[derive(Debug)]
pub enum PathChange {
    /// Values left encrypted.
    InPlace(InPlace),
    /// Every value decrypted (a file with a comment rule).
    Opened(Opened),
}

impl PathChange {
    /// Opens a file for a change at one path, in place if it can be.
    pub async fn open(
        input: &[u8],
        format: Format,
        registry: &KeyRegistry,
        options: &DecryptOptions,
    ) -> Result<PathChange, DecryptError> {
        match InPlace::open(input, format, registry, options).await? {
            Some(in_place) => Ok(PathChange::InPlace(in_place)),
            None => Ok(PathChange::Opened(
                Opened::open(input, format, registry, options).await?,
            )),
        }
    }

    /// Whether the file holds a document to change.
    pub fn is_empty(&self) -> bool {
        match self {
            PathChange::InPlace(in_place) => in_place.is_empty(),
            PathChange::Opened(opened) => opened.document.branches.is_empty(),
        }
    }

    /// Sets the value at `path` of the first document.
    pub fn set(
        &mut self,
        path: &[crate::extract::Step],
        value: crate::tree::Value,
    ) -> Result<(), crate::update::UpdateError> {
        match self {
            PathChange::InPlace(in_place) => in_place.set(path, value),
            PathChange::Opened(opened) => match opened.document.branches.first_mut() {
                Some(root) => crate::update::set(root, path, value).map(|_changed| ()),
                None => Ok(()),
            },
        }
    }

    /// Removes the value at `path` of the first document.
    pub fn unset(
        &mut self,
        path: &[crate::extract::Step],
    ) -> Result<(), crate::update::UpdateError> {
        match self {
            PathChange::InPlace(in_place) => in_place.unset(path),
            PathChange::Opened(opened) => match opened.document.branches.first_mut() {
                Some(root) => crate::update::unset(root, path),
                None => Ok(()),
            },
        }
    }

    /// Seals the changed file (see [`InPlace::seal`], [`Opened::seal`]).
    pub fn seal(self, output: Format, emit: EmitOptions) -> Result<Printed, EncryptError> {
        match self {
            PathChange::InPlace(in_place) => in_place.seal(output, emit),
            PathChange::Opened(opened) => opened.seal(output, emit),
        }
    }
}
