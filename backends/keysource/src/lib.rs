//! The one seam between rsops' core and the key services.
//!
//! A sops file stores its 32-byte data key once per *key entry* (an age
//! recipient, a PGP fingerprint, a KMS key…), each wrapped by a different key
//! service. Every service is a crate implementing [`KeySource`]; the core only
//! hands it a [`KeyEntry`] and a [`Deadline`], and gets back the [`Unwrapped`]
//! secret or a [`KeyError`] of one [`ErrorClass`], so it can decide what to try
//! next and explain failures. Jobs several services share (client caches,
//! error chains, TLS failures) live beside this crate, in
//! `rsops-backend-common`.

#![deny(missing_docs)]

mod error;
mod secret;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

pub use error::{ErrorClass, KeyError};
pub use secret::{DataKey, Unwrapped, DATA_KEY_LEN};

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

    /// The value of a field the entry cannot do without: absent or empty,
    /// it is a corrupt entry.
    pub fn required(&self, name: &str) -> Result<&str, KeyError> {
        match self.field(name) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(KeyError::corrupt_entry(format!(
                "the {} entry has no `{name}` field",
                self.kind
            ))),
        }
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
        self.required("enc")
    }
}

/// When an attempt must be finished by. Remote sources derive every SDK,
/// connect and read timeout from it, so `--key-timeout 30s` gives a slow
/// service 30 s, not an SDK default. Local sources get [`Deadline::NONE`]:
/// they may be waiting for the user (a pinentry, a YubiKey touch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline.
    pub const NONE: Deadline = Deadline(None);

    /// A deadline `limit` from now.
    pub fn after(limit: Duration) -> Deadline {
        Deadline(Instant::now().checked_add(limit))
    }

    /// The time left, or `None` without a deadline. Zero once it passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// The time left, or `default` without a deadline: for SDK timeouts,
    /// which need some value.
    pub fn remaining_or(&self, default: Duration) -> Duration {
        self.remaining().unwrap_or(default)
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

    /// Unwraps the secret stored in `entry` by `deadline`.
    fn unwrap<'a>(
        &'a self,
        entry: &'a KeyEntry,
        deadline: Deadline,
    ) -> BoxFuture<'a, Result<Unwrapped, KeyError>>;

    /// Wraps `secret` (the data key, or one key group's Shamir share) for
    /// the key that `recipient` names — an entry holding only the fields
    /// that identify the key (age: `recipient`; pgp: `fp`; …) — and returns
    /// the file's metadata entry for it, fields in the reference's order,
    /// `enc` and (where the reference writes it) `created_at` included.
    fn wrap<'a>(
        &'a self,
        recipient: &'a KeyEntry,
        secret: &'a [u8],
        deadline: Deadline,
    ) -> BoxFuture<'a, Result<KeyEntry, KeyError>> {
        let _ = (secret, deadline);
        Box::pin(async move {
            Err(KeyError::new(
                ErrorClass::Unsupported,
                format!("rsops cannot encrypt for `{}` keys yet", recipient.kind),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_fields_name_the_kind_and_field() {
        let entry = KeyEntry {
            kind: "kms".into(),
            fields: vec![("arn".into(), "a".into()), ("enc".into(), String::new())],
            maps: Vec::new(),
        };
        assert_eq!(entry.required("arn").ok(), Some("a"));
        let missing = entry
            .encrypted_key()
            .err()
            .map(|e| (e.class(), e.to_string()));
        assert_eq!(
            missing,
            Some((
                ErrorClass::CorruptEntry,
                "the kms entry has no `enc` field".into()
            ))
        );
    }

    #[test]
    fn deadlines_count_down() {
        assert_eq!(Deadline::NONE.remaining(), None);
        let deadline = Deadline::after(Duration::from_secs(30));
        let left = deadline.remaining().unwrap_or_default();
        assert!(left <= Duration::from_secs(30) && left > Duration::from_secs(29));
        assert_eq!(
            Deadline::NONE.remaining_or(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }
}
