//! PGP key source: unwraps `sops.pgp` entries (`fp`, `enc` = an armored PGP
//! message holding the data key) wherever the user's secret key lives.
//!
//! Two ways are tried for each entry, in this order (the reference `sops`
//! also tries its built-in OpenPGP library before the `gpg` binary):
//!
//! 1. **Key files, with Sequoia**, when there are any: the secret keys in the
//!    files named by [`KEY_FILE_ENV`] (`RSOPS_PGP_KEY_FILE`, armored or binary,
//!    several paths separated by `:`), and the legacy GnuPG 1.x keyring
//!    `$GNUPGHOME/secring.gpg` (default `~/.gnupg`). This needs no `gpg` at
//!    all. Passphrase-protected keys in files are left to `gpg`, and so are
//!    data keys wrapped by old sops releases' built-in Go OpenPGP code, whose
//!    messages break RFC 9580 framing rules that Sequoia enforces.
//! 2. **The `gpg` binary** ([`GPG_EXEC_ENV`], `SOPS_GPG_EXEC`, default `gpg`;
//!    `GNUPGHOME` honoured), exactly once per entry and never per value.
//!    This is the way to keys held by gpg-agent (GnuPG ≥ 2.1), smartcards and
//!    YubiKeys, and passphrases asked by pinentry. Calls are serialised so
//!    two pinentry prompts never compete, and a gpg that is missing or cannot
//!    reach its agent is not started again for the next entry.
//!
//! The entry's `fp` names the primary key, while the message is encrypted to
//! one of its encryption subkeys; both ways find the key by the message's
//! recipient, as gpg does.
//!
//! Failures are classified into [`KeyError`]s that name the fingerprint and
//! say what to do: key not in the keyring, gpg missing, gpg-agent not
//! reachable, pinentry cancelled or unavailable, wrong passphrase, smartcard
//! absent, damaged message.

#![deny(missing_docs)]

mod errors;
mod files;
mod gpg;
mod keyring;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use rsops_keysource::{BoxFuture, DataKey, KeyEntry, KeyError, KeySource};
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

use crate::files::FileKeyError;
use crate::gpg::Gpg;
use crate::keyring::Keyring;

/// The environment variable naming secret key files (armored or binary,
/// `:`-separated) that rsops reads itself, without `gpg`. rsops-only: the
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
    /// Secret key files read with Sequoia.
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
    fn legacy_home(&self) -> Option<PathBuf> {
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
    config: PgpConfig,
    keyring: OnceCell<Arc<Keyring>>,
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
        let gpg = Gpg::new(config.gpg_program.clone(), config.gnupg_home.clone());
        PgpKeySource {
            config,
            keyring: OnceCell::new(),
            gpg,
        }
    }

    /// The secret keys from files, loaded once, off the async thread.
    async fn keyring(&self) -> Arc<Keyring> {
        self.keyring
            .get_or_init(|| async {
                let files = self.config.key_files.clone();
                let home = self.config.legacy_home();
                let loaded =
                    tokio::task::spawn_blocking(move || Keyring::load(&files, home.as_deref()))
                        .await;
                Arc::new(loaded.unwrap_or_else(|e| Keyring::failed(e.to_string())))
            })
            .await
            .clone()
    }

    async fn unwrap_entry(&self, entry: &KeyEntry) -> Result<DataKey, KeyError> {
        let fp = fingerprint(entry);
        let enc = entry.encrypted_key()?;
        let keyring = self.keyring().await;
        let file_error = if keyring.is_empty() {
            None
        } else {
            match decrypt_with_files(keyring.clone(), enc.to_owned()).await {
                Ok(key) => return Ok(data_key(key)),
                Err(e) => Some(e),
            }
        };
        match self.gpg.decrypt(&fp, enc).await {
            Ok(key) => Ok(data_key(key)),
            Err(gpg_error) => Err(errors::combine(&fp, gpg_error, file_error, &keyring)),
        }
    }
}

impl KeySource for PgpKeySource {
    fn kind(&self) -> &'static str {
        "pgp"
    }

    fn describe(&self, entry: &KeyEntry) -> String {
        fingerprint(entry)
    }

    fn is_local(&self) -> bool {
        true
    }

    fn unwrap<'a>(&'a self, entry: &'a KeyEntry) -> BoxFuture<'a, Result<DataKey, KeyError>> {
        Box::pin(self.unwrap_entry(entry))
    }
}

/// The entry's fingerprint as the reference normalises it (spaces removed),
/// upper-cased so it reads like gpg's output.
fn fingerprint(entry: &KeyEntry) -> String {
    match entry.field("fp") {
        Some(fp) => fp.replace(' ', "").to_ascii_uppercase(),
        None => "?".to_string(),
    }
}

/// Runs the Sequoia decryption on the blocking pool: RSA private-key
/// operations take milliseconds the async thread should spend on network
/// key sources.
async fn decrypt_with_files(
    keyring: Arc<Keyring>,
    enc: String,
) -> Result<Zeroizing<Vec<u8>>, FileKeyError> {
    tokio::task::spawn_blocking(move || files::decrypt(&keyring, enc.as_bytes()))
        .await
        .unwrap_or_else(|e| Err(FileKeyError::Worker(e.to_string())))
}

/// Moves unwrapped bytes into a [`DataKey`] without leaving a copy behind.
fn data_key(mut key: Zeroizing<Vec<u8>>) -> DataKey {
    DataKey::new(std::mem::take(&mut *key))
}
