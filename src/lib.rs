//! rsops: a fast, SOPS-compatible secrets decryptor.
//!
//! The library opens files the reference `sops` encrypted and decrypts them
//! with whichever key the caller can reach:
//!
//! ```no_run
//! let decrypted = rsops::decrypt_file("secrets.enc.yaml").unwrap();
//! let yaml = rsops::Format::Yaml.emit(&decrypted.document, Default::default()).unwrap();
//! ```

#![deny(missing_docs)]

pub mod cipher;
pub mod config;
pub mod decrypt;
pub mod encrypt;
pub mod exec;
pub mod extract;
pub mod formats;
pub mod gofmt;
pub mod keys;
pub mod mcp;
pub mod merge;
pub mod metadata;
pub mod par;
pub mod rewrite;
pub mod shamir;
pub mod timefmt;
pub mod tree;
pub mod update;
pub mod walk;

use std::path::Path;

pub use decrypt::{
    check_keys, decrypt, decrypt_document, decrypt_owned, decrypt_pieces, is_encrypted,
    DecryptError, DecryptOptions, Decrypted, KeyCheck,
};
pub use formats::Format;
pub use keys::{KeyRegistry, UnwrapOptions};

/// Why [`decrypt_file`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file could not be decrypted.
    #[error("{path}: {source}")]
    Decrypt {
        /// The file.
        path: String,
        /// What went wrong.
        source: DecryptError,
    },
}

/// Decrypts a file with every key source compiled in, picking the format
/// from the file name as `sops` does. Blocks on a private runtime.
pub fn decrypt_file(path: impl AsRef<Path>) -> Result<Decrypted, FileError> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| FileError::Read {
        path: shown.clone(),
        source,
    })?;
    let bytes = zeroize::Zeroizing::new(bytes);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| FileError::Read {
            path: shown.clone(),
            source,
        })?;
    let registry = KeyRegistry::default();
    runtime
        .block_on(decrypt(
            &bytes,
            Format::from_path(path),
            &registry,
            &DecryptOptions::default(),
        ))
        .map_err(|source| FileError::Decrypt {
            path: shown,
            source,
        })
}
