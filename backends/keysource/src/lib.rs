//! The one seam between rsops' core and the key services.
//!
//! A sops file stores its 32-byte data key once per *key entry* (an age
//! recipient, a PGP fingerprint, a KMS key…), each wrapped by a different key
//! service. Every service is a crate implementing [`KeySource`]; the core only
//! hands it a [`KeyEntry`] and gets back a [`DataKey`] or a classified
//! [`KeyError`], so it can decide what to try next and explain failures.

#![deny(missing_docs)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// The secret that encrypts every value of a file (or, with several key
/// groups, one Shamir share of it).
///
/// Wiped from memory when dropped; its bytes never appear in `Debug` output.
#[derive(Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct DataKey(Vec<u8>);

impl DataKey {
    /// Wraps unwrapped key bytes, taking ownership so no copy is left behind.
    pub fn new(bytes: Vec<u8>) -> Self {
        DataKey(bytes)
    }

    /// The key bytes. Callers must not copy them into long-lived buffers.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey({} bytes)", self.0.len())
    }
}

/// One key entry from a file's metadata, e.g. an item of `sops.age`.
///
/// Fields are kept as the strings the file holds, so the core needs no
/// knowledge of any service's schema; each key source reads what it needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyEntry {
    /// The metadata list the entry came from: `age`, `pgp`, `kms`, `gcp_kms`,
    /// `azure_kv`, `hc_vault`.
    pub kind: String,
    /// The entry's scalar fields (`recipient`, `enc`, `arn`, …) in file order.
    pub fields: Vec<(String, String)>,
    /// String maps inside the entry (the KMS encryption `context`).
    pub maps: Vec<(String, Vec<(String, String)>)>,
}

impl KeyEntry {
    /// The value of a scalar field, if present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A string map of the entry (e.g. KMS `context`), empty when absent.
    pub fn map(&self, name: &str) -> &[(String, String)] {
        self.maps
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    /// The field that wraps the data key (`enc`), or a corrupt-entry error.
    pub fn encrypted_key(&self) -> Result<&str, KeyError> {
        match self.field("enc") {
            Some(enc) if !enc.is_empty() => Ok(enc),
            _ => Err(KeyError::CorruptEntry {
                message: "the entry has no `enc` field".into(),
            }),
        }
    }
}

/// Why a key entry could not be unwrapped, classified so the orchestrator
/// can decide what to do and the user learns what to fix.
///
/// Messages name keys and locations, never secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// This machine holds no credential for the entry (no matching identity,
    /// no token, no secret key).
    #[error("{message}")]
    NoCredentials {
        /// What was looked for and where.
        message: String,
        /// What the user can do about it.
        hint: Option<String>,
    },
    /// The service refused (permission denied, wrong passphrase, bad token).
    #[error("{message}")]
    Denied {
        /// What the service said.
        message: String,
    },
    /// The service could not be reached or did not answer in time.
    #[error("{message}")]
    Unreachable {
        /// The address and the network error.
        message: String,
    },
    /// The entry itself is malformed or its ciphertext is damaged.
    #[error("{message}")]
    CorruptEntry {
        /// What is wrong with it.
        message: String,
    },
    /// This build of rsops has no key source for the entry's kind.
    #[error("rsops was built without support for `{kind}` keys")]
    Unsupported {
        /// The entry kind.
        kind: String,
    },
}

impl KeyError {
    /// A hint for the user, when one is known.
    pub fn hint(&self) -> Option<&str> {
        match self {
            KeyError::NoCredentials { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}

/// A boxed future, so key sources can live in one registry as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A key service that can unwrap the data key from entries of one kind.
///
/// Implementations are created once per run and may cache credentials (an
/// age key command runs once, a cloud client is built once).
pub trait KeySource: Send + Sync {
    /// The metadata list this source handles (`age`, `pgp`, `kms`, …).
    fn kind(&self) -> &'static str;

    /// A short human identifier of an entry (recipient, fingerprint, ARN…).
    fn describe(&self, entry: &KeyEntry) -> String;

    /// True for sources that answer from this machine (age, PGP): they are
    /// tried first and never cut short by a network deadline, since they
    /// may be waiting for the user (a pinentry prompt).
    fn is_local(&self) -> bool {
        false
    }

    /// Unwraps the data key stored in `entry`.
    fn unwrap<'a>(&'a self, entry: &'a KeyEntry) -> BoxFuture<'a, Result<DataKey, KeyError>>;
}
