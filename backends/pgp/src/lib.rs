//! PGP key source: unwraps `sops.pgp` entries (`fp`, `enc` = an armored PGP
//! message holding the data key) wherever the user's secret key lives.
//!
//! For each entry, in this order (the reference `sops` also tries its
//! built-in OpenPGP library before the `gpg` binary):
//!
//! 1. **Key files, with Sequoia** — only in builds with the `key-files`
//!    feature (`rsops --features pgp-key-files`), and only when there are
//!    any: the secret keys in the files named by [`KEY_FILE_ENV`]
//!    (`RSOPS_PGP_KEY_FILE`, armored or binary, several paths separated by
//!    `:`), and the legacy GnuPG 1.x keyring `$GNUPGHOME/secring.gpg`
//!    (default `~/.gnupg`). This needs no `gpg` at all. Passphrase-protected
//!    keys in files are left to `gpg`, and so are data keys wrapped by old
//!    sops releases' built-in Go OpenPGP code, whose messages break RFC 9580
//!    framing rules that Sequoia enforces.
//! 2. **The `gpg` binary** ([`GPG_EXEC_ENV`], `SOPS_GPG_EXEC`, default `gpg`;
//!    `GNUPGHOME` honoured), exactly once per entry and never per value.
//!    This is the way to keys held by gpg-agent (GnuPG ≥ 2.1), smartcards and
//!    YubiKeys, and passphrases asked by pinentry. Calls are serialised so
//!    two pinentry prompts never compete, and a gpg that is missing or cannot
//!    reach its agent is not started again for the next entry.
//!
//! Why key files are opt-in: the default build must need nothing but a Rust
//! toolchain and a C compiler. Sequoia's C backends need libclang, OpenSSL
//! or Nettle headers and pkg-config at build time; its pure-Rust backend
//! needs none, but Sequoia marks it experimental and its RSA decryption is
//! not constant-time (a timing side channel), whereas gpg's libgcrypt is
//! hardened. Sequoia cannot read keys held by gpg-agent anyway. A build
//! without the feature still names configured key files in its errors and
//! says how to get them read.
//!
//! The entry's `fp` names the primary key, while the message is encrypted to
//! one of its encryption subkeys; both ways find the key by the message's
//! recipient, as gpg does.
//!
//! Failures are classified into [`KeyError`]s that name the fingerprint,
//! with what to do as their hint: key not in the keyring, gpg missing,
//! gpg-agent not reachable, pinentry cancelled or unavailable, wrong
//! passphrase, smartcard absent, damaged message, key files this build
//! cannot read.
//!
//! PGP is a local source: the core gives it [`Deadline::NONE`], since gpg may
//! be waiting for the user. Given a deadline, it kills gpg when it passes.

#![deny(missing_docs)]

mod errors;
mod gpg;
#[cfg(not(feature = "key-files"))]
mod not_built;
#[cfg(feature = "key-files")]
mod sequoia;

use std::ffi::OsString;
use std::path::PathBuf;

use rsops_keysource::{BoxFuture, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};
use zeroize::Zeroizing;

use crate::gpg::Gpg;
use crate::key_files::KeyFiles;
#[cfg(not(feature = "key-files"))]
use crate::not_built as key_files;
#[cfg(feature = "key-files")]
use crate::sequoia as key_files;

/// The environment variable naming secret key files (armored or binary,
/// `:`-separated) that rsops reads itself, without `gpg`, when built with the
/// `key-files` feature; other builds name them in errors. rsops-only: the
/// reference `sops` ignores it.
pub const KEY_FILE_ENV: &str = "RSOPS_PGP_KEY_FILE";

/// The environment variable naming the gpg program, as in the reference.
pub const GPG_EXEC_ENV: &str = "SOPS_GPG_EXEC";

/// Where the PGP key source looks for `gpg` and for secret keys.
#[derive(Clone, Debug)]
pub struct PgpConfig {
    /// The gpg program to run.
    pub gpg_program: OsString,
    /// The GnuPG home handed to gpg as `GNUPGHOME`; `None` leaves gpg's own
    /// default. `secring.gpg` is looked for here, else in `~/.gnupg`.
    pub gnupg_home: Option<PathBuf>,
    /// Secret key files, read with Sequoia when the `key-files` feature is
    /// on; otherwise named in errors, so a user learns why they were not
    /// read.
    pub key_files: Vec<PathBuf>,
}

impl PgpConfig {
    /// The configuration the environment describes: [`GPG_EXEC_ENV`]
    /// (default `gpg`), `GNUPGHOME`, [`KEY_FILE_ENV`].
    pub fn from_env() -> Self {
        let gpg_program = std::env::var_os(GPG_EXEC_ENV)
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| OsString::from("gpg"));
        let gnupg_home = std::env::var_os("GNUPGHOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        let key_files = std::env::var_os(KEY_FILE_ENV)
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        PgpConfig {
            gpg_program,
            gnupg_home,
            key_files,
        }
    }

    /// The directory that may hold a legacy `secring.gpg`.
    pub(crate) fn legacy_home(&self) -> Option<PathBuf> {
        self.gnupg_home.clone().or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".gnupg"))
        })
    }
}

/// The PGP key source. Cheap to create: key files are read on first use,
/// `gpg` is started only for entries the key files cannot open.
pub struct PgpKeySource {
    key_files: KeyFiles,
    gpg: Gpg,
}

impl Default for PgpKeySource {
    fn default() -> Self {
        Self::new()
    }
}

impl PgpKeySource {
    /// A key source configured from the environment ([`PgpConfig::from_env`]).
    pub fn new() -> Self {
        Self::with_config(PgpConfig::from_env())
    }

    /// A key source with an explicit configuration (for embedding and tests,
    /// where changing the process environment is not an option).
    pub fn with_config(config: PgpConfig) -> Self {
        PgpKeySource {
            key_files: KeyFiles::new(&config),
            gpg: Gpg::new(config.gpg_program, config.gnupg_home),
        }
    }

    async fn unwrap_entry(
        &self,
        entry: &KeyEntry,
        deadline: Deadline,
    ) -> Result<Unwrapped, KeyError> {
        // gpg finds the key from the message itself, as sops lets it: an
        // entry without `fp` still decrypts (the fingerprint only names it).
        let fp = normalise(entry.field("fp").unwrap_or_default());
        let enc = entry.encrypted_key()?;
        // Key files are read and tried in-process, in milliseconds: only gpg
        // can outlast a deadline.
        let files = match self.key_files.unwrap(enc).await {
            Ok(key) => return Ok(unwrapped(key)),
            Err(outcome) => outcome,
        };
        match self.gpg.decrypt(&fp, enc, deadline).await {
            Ok(key) => Ok(unwrapped(key)),
            Err(gpg_error) => Err(files.explain(&fp, gpg_error)),
        }
    }
}

impl KeySource for PgpKeySource {
    fn kind(&self) -> &'static str {
        "pgp"
    }

    fn describe(&self, entry: &KeyEntry) -> String {
        entry.field("fp").map_or_else(|| "?".to_string(), normalise)
    }

    fn is_local(&self) -> bool {
        true
    }

    fn unwrap<'a>(
        &'a self,
        entry: &'a KeyEntry,
        deadline: Deadline,
    ) -> BoxFuture<'a, Result<Unwrapped, KeyError>> {
        Box::pin(self.unwrap_entry(entry, deadline))
    }

    /// Encrypts to the entry's `fp` with gpg, as sops does; returns
    /// `created_at`, `enc`, `fp`.
    fn wrap<'a>(
        &'a self,
        recipient: &'a KeyEntry,
        secret: &'a [u8],
        deadline: Deadline,
    ) -> BoxFuture<'a, Result<KeyEntry, KeyError>> {
        Box::pin(async move {
            // The reference removes spaces from fingerprints, nothing else.
            let fp = recipient.required("fp")?.replace(' ', "");
            let created_at = rsops_backend_common::created_at::now();
            let enc = self.gpg.encrypt(&fp, secret, deadline).await?;
            Ok(KeyEntry {
                kind: "pgp".to_string(),
                fields: vec![
                    ("created_at".to_string(), created_at),
                    ("enc".to_string(), enc),
                    ("fp".to_string(), fp),
                ],
                maps: Vec::new(),
            })
        })
    }
}

/// A fingerprint as the reference normalises it (spaces removed),
/// upper-cased so it reads like gpg's output.
fn normalise(fp: &str) -> String {
    fp.replace(' ', "").to_ascii_uppercase()
}

/// Moves unwrapped bytes into an [`Unwrapped`] without leaving a copy behind.
fn unwrapped(mut key: Zeroizing<Vec<u8>>) -> Unwrapped {
    Unwrapped::new(std::mem::take(&mut *key))
}
