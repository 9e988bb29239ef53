//! Turning what the key files and gpg said into one classified [`KeyError`]
//! that names the fingerprint and says what to do.

use rsops_keysource::KeyError;

use crate::files::FileKeyError;
use crate::gpg::GpgError;
use crate::keyring::Keyring;
use crate::KEY_FILE_ENV;

/// The error for an entry neither the key files nor gpg could unwrap.
pub(crate) fn combine(
    fp: &str,
    gpg: GpgError,
    files: Option<FileKeyError>,
    keyring: &Keyring,
) -> KeyError {
    let note = files_note(files.as_ref(), keyring);
    match (gpg, files) {
        // Without gpg, the key files had the last word on the message. Old
        // sops releases wrote messages that break RFC 9580 framing rules
        // (small partial body chunks, unnormalised MPIs): gpg reads them,
        // Sequoia does not.
        (GpgError::Unavailable { .. }, Some(FileKeyError::Corrupt(detail))) => {
            KeyError::CorruptEntry {
                message: format!(
                    "the PGP message of {fp} cannot be read without gpg: {detail}; messages \
                     written by old sops releases need gpg: install GnuPG (or set \
                     SOPS_GPG_EXEC), or re-encrypt the file with `sops rotate --in-place`"
                ),
            }
        }
        (gpg @ GpgError::Unavailable { .. }, Some(FileKeyError::Locked { key })) => {
            KeyError::NoCredentials {
                message: format!(
                    "the secret key of {fp} (subkey {key}) in {} is passphrase-protected, \
                     and {gpg}",
                    keyring.searched()
                ),
                hint: Some(format!(
                    "install GnuPG and import the key (`gpg --import FILE`) so gpg-agent can \
                     ask for the passphrase, or point {KEY_FILE_ENV} at a copy without one"
                )),
            }
        }
        (gpg @ GpgError::Unavailable { .. }, _) => KeyError::NoCredentials {
            message: with_note(gpg.to_string(), note),
            hint: Some(format!(
                "install GnuPG (or set SOPS_GPG_EXEC to its path), or export the secret key \
                 (`gpg --export-secret-keys --armor {fp} > key.asc`) and set {KEY_FILE_ENV}=key.asc"
            )),
        },
        (gpg @ GpgError::NoSecretKey { .. }, _) => KeyError::NoCredentials {
            message: with_note(gpg.to_string(), note),
            hint: Some(format!(
                "import the secret key of {fp} (`gpg --import key.asc`), insert the smartcard \
                 that holds it, check GNUPGHOME, or set {KEY_FILE_ENV} to a file holding it"
            )),
        },
        (gpg @ GpgError::AgentUnreachable { .. }, _) => KeyError::Unreachable {
            message: with_note(gpg.to_string(), note),
        },
        (gpg @ GpgError::Corrupt { .. }, _) => KeyError::CorruptEntry {
            message: gpg.to_string(),
        },
        (
            gpg @ (GpgError::Cancelled { .. }
            | GpgError::BadPassphrase { .. }
            | GpgError::NoPinentry { .. }
            | GpgError::CardNotPresent { .. }
            | GpgError::Failed { .. }),
            _,
        ) => KeyError::Denied {
            message: with_note(gpg.to_string(), note),
        },
    }
}

/// What the key files contributed, if anything worth telling.
fn files_note(files: Option<&FileKeyError>, keyring: &Keyring) -> Option<String> {
    match files {
        Some(error) => Some(format!("{error} (searched {})", keyring.searched())),
        None if keyring.problems.is_empty() => None,
        None => Some(format!("PGP key files: {}", keyring.problems.join("; "))),
    }
}

fn with_note(message: String, note: Option<String>) -> String {
    match note {
        Some(note) => format!("{message}; {note}"),
        None => message,
    }
}
