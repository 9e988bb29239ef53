//! Key files read without gpg, with Sequoia (the `key-files` feature): the
//! files of `RSOPS_PGP_KEY_FILE` and a legacy `secring.gpg`, tried before
//! gpg for each entry.
//!
//! Opt-in because the only Sequoia backend that needs no system library,
//! `crypto-rust`, is one Sequoia marks experimental and whose RSA decryption
//! is not constant-time; gpg (libgcrypt) is the hardened default.

mod decrypt;
mod keyring;

use std::path::PathBuf;
use std::sync::Arc;

use rsops_keysource::KeyError;
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

use self::decrypt::FileKeyError;
use self::keyring::Keyring;
use crate::errors::{self, FilesAdvice};
use crate::gpg::GpgError;
use crate::{PgpConfig, KEY_FILE_ENV};

/// The key files of this run, parsed on first use.
pub(crate) struct KeyFiles {
    files: Vec<PathBuf>,
    legacy_home: Option<PathBuf>,
    keyring: OnceCell<Arc<Keyring>>,
}

impl KeyFiles {
    /// Remembers where to look; nothing is read until an entry needs it.
    pub(crate) fn new(config: &PgpConfig) -> KeyFiles {
        KeyFiles {
            files: config.key_files.clone(),
            legacy_home: config.legacy_home(),
            keyring: OnceCell::new(),
        }
    }

    /// The data key, when a key file opens `enc`; otherwise what the key
    /// files said, for the error if gpg fails too.
    pub(crate) async fn unwrap(&self, enc: &str) -> Result<Zeroizing<Vec<u8>>, Outcome> {
        let keyring = self.keyring().await;
        if keyring.is_empty() {
            return Err(Outcome {
                error: None,
                keyring,
            });
        }
        decrypt_on_worker(keyring.clone(), enc.to_owned())
            .await
            .map_err(|error| Outcome {
                error: Some(error),
                keyring,
            })
    }

    /// The secret keys from files, loaded once, off the async thread.
    async fn keyring(&self) -> Arc<Keyring> {
        self.keyring
            .get_or_init(|| async {
                let files = self.files.clone();
                let home = self.legacy_home.clone();
                let loaded =
                    tokio::task::spawn_blocking(move || Keyring::load(&files, home.as_deref()))
                        .await;
                Arc::new(loaded.unwrap_or_else(|e| Keyring::failed(e.to_string())))
            })
            .await
            .clone()
    }
}

/// Runs the Sequoia decryption on the blocking pool: RSA private-key
/// operations take milliseconds the async thread should spend on network
/// key sources.
async fn decrypt_on_worker(
    keyring: Arc<Keyring>,
    enc: String,
) -> Result<Zeroizing<Vec<u8>>, FileKeyError> {
    tokio::task::spawn_blocking(move || decrypt::decrypt(&keyring, enc.as_bytes()))
        .await
        .unwrap_or_else(|e| Err(FileKeyError::Worker(e.to_string())))
}

/// What the key files said about an entry they could not open.
pub(crate) struct Outcome {
    error: Option<FileKeyError>,
    keyring: Arc<Keyring>,
}

impl Outcome {
    /// The error for an entry neither the key files nor gpg could unwrap.
    pub(crate) fn explain(self, fp: &str, gpg: GpgError) -> KeyError {
        let Outcome { error, keyring } = self;
        match (gpg, error) {
            // Without gpg, the key files had the last word on the message.
            // Old sops releases wrote messages that break RFC 9580 framing
            // rules (small partial body chunks, unnormalised MPIs): gpg reads
            // them, Sequoia does not.
            (GpgError::Unavailable { .. }, Some(FileKeyError::Corrupt(detail))) => {
                KeyError::corrupt_entry(format!(
                    "the PGP message of {fp} cannot be read without gpg: {detail}"
                ))
                .with_hint(
                    "messages written by old sops releases need gpg: install GnuPG (or set \
                     SOPS_GPG_EXEC), or re-encrypt the file with `sops rotate --in-place`",
                )
            }
            (gpg @ GpgError::Unavailable { .. }, Some(FileKeyError::Locked { key })) => {
                KeyError::no_credentials(format!(
                    "the secret key of {fp} (subkey {key}) in {} is passphrase-protected, and {gpg}",
                    keyring.searched()
                ))
                .with_hint(format!(
                    "install GnuPG and import the key (`gpg --import FILE`) so gpg-agent can ask \
                     for the passphrase, or point {KEY_FILE_ENV} at a copy without one"
                ))
            }
            (gpg, error) => errors::classify(
                gpg,
                FilesAdvice {
                    note: note(error.as_ref(), &keyring),
                    without_gpg: format!(
                        "install GnuPG (or set SOPS_GPG_EXEC to its path), or export the secret \
                         key (`gpg --export-secret-keys --armor {fp} > key.asc`) and set \
                         {KEY_FILE_ENV}=key.asc"
                    ),
                    without_key: format!(
                        "import the secret key of {fp} (`gpg --import key.asc`), insert the \
                         smartcard that holds it, check GNUPGHOME, or set {KEY_FILE_ENV} to a \
                         file holding it"
                    ),
                },
            ),
        }
    }
}

/// What the key files contributed, if anything worth telling.
fn note(error: Option<&FileKeyError>, keyring: &Keyring) -> Option<String> {
    match error {
        Some(error) => Some(format!("{error} (searched {})", keyring.searched())),
        None if keyring.problems.is_empty() => None,
        None => Some(format!("PGP key files: {}", keyring.problems.join("; "))),
    }
}
