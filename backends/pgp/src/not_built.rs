//! Key files in a build without the `key-files` feature: never read, but
//! named in the error when gpg fails, with how to get them read.
//!
//! The default build has no OpenPGP implementation of its own, so that it
//! needs no system library (Sequoia's C backends need libclang and OpenSSL
//! or Nettle headers; its pure-Rust one is experimental and not
//! constant-time). Someone who sets `RSOPS_PGP_KEY_FILE`, or whose only key
//! is a legacy `secring.gpg` on a machine without gpg, would otherwise get a
//! bare "gpg not found" or "not in gpg's keyring" and wonder why the file
//! they named was ignored.

use std::path::PathBuf;

use rsops_keysource::KeyError;
use zeroize::Zeroizing;

use crate::errors::{self, FilesAdvice};
use crate::gpg::GpgError;
use crate::{PgpConfig, KEY_FILE_ENV};

/// The feature a user enables on the `rsops` package to read key files.
const FEATURE: &str = "pgp-key-files";

/// Key files this build was pointed at but cannot read.
#[derive(Debug, thiserror::Error)]
#[error(
    "the secret key of {fp} was not looked for in {sources}: this build of rsops reads PGP key \
     files only when built with `--features {FEATURE}`"
)]
pub(crate) struct KeyFilesNotBuilt {
    /// The entry's fingerprint.
    fp: String,
    /// The files, labelled as a build with the feature labels them.
    sources: String,
}

/// Where the user keeps key files, remembered only to name them in errors.
pub(crate) struct KeyFiles {
    files: Vec<PathBuf>,
    legacy_home: Option<PathBuf>,
}

impl KeyFiles {
    /// Remembers the configured files; nothing is read.
    pub(crate) fn new(config: &PgpConfig) -> KeyFiles {
        KeyFiles {
            files: config.key_files.clone(),
            legacy_home: config.legacy_home(),
        }
    }

    /// Never opens a message: this build leaves every entry to gpg and
    /// hands back what to say if gpg fails too.
    pub(crate) async fn unwrap(&self, _enc: &str) -> Result<Zeroizing<Vec<u8>>, Outcome<'_>> {
        Err(Outcome { files: self })
    }
}

/// What the key files add to a gpg failure in this build.
pub(crate) struct Outcome<'a> {
    files: &'a KeyFiles,
}

impl Outcome<'_> {
    /// The error for an entry gpg could not unwrap.
    pub(crate) fn explain(self, fp: &str, gpg: GpgError) -> KeyError {
        let gpg_missing = matches!(gpg, GpgError::Unavailable { .. });
        let unread = self.unread(fp, gpg_missing);
        let rebuild = format!(
            "build rsops with key-file support: `cargo install --path . --features {FEATURE}`"
        );
        let advice = match unread {
            Some(unread) => FilesAdvice {
                note: Some(unread.to_string()),
                without_gpg: format!(
                    "install GnuPG (or set SOPS_GPG_EXEC to its path) and import the key \
                     (`gpg --import FILE`), or {rebuild}"
                ),
                without_key: format!(
                    "import the key file into gpg (`gpg --import FILE`), or {rebuild}"
                ),
            },
            None => FilesAdvice {
                note: None,
                without_gpg: format!(
                    "install GnuPG (or set SOPS_GPG_EXEC to its path) and import the secret key \
                     of {fp}; rsops built with `--features {FEATURE}` can read an exported key \
                     named by {KEY_FILE_ENV} instead"
                ),
                without_key: format!(
                    "import the secret key of {fp} (`gpg --import key.asc`), insert the \
                     smartcard that holds it, or check GNUPGHOME"
                ),
            },
        };
        errors::classify(gpg, advice)
    }

    /// The key files a build with the feature would have tried. A legacy
    /// `secring.gpg` counts only when gpg is missing: GnuPG ≥ 2.1 imports
    /// it into gpg-agent by itself on first use.
    fn unread(&self, fp: &str, gpg_missing: bool) -> Option<KeyFilesNotBuilt> {
        let mut sources: Vec<String> = self
            .files
            .files
            .iter()
            .map(|path| format!("{KEY_FILE_ENV} file {}", path.display()))
            .collect();
        if gpg_missing {
            if let Some(home) = &self.files.legacy_home {
                let secring = home.join("secring.gpg");
                if secring.is_file() {
                    sources.push(secring.display().to_string());
                }
            }
        }
        if sources.is_empty() {
            None
        } else {
            Some(KeyFilesNotBuilt {
                fp: fp.to_string(),
                sources: sources.join(", "),
            })
        }
    }
}
