//! Turning what gpg said into one classified [`KeyError`] that names the
//! fingerprint and says what to do.
//!
//! The key-file side (Sequoia, or this build's lack of it) adds a note and
//! picks the hints, since what a user can do without gpg depends on whether
//! this build reads key files at all.

use rsops_keysource::KeyError;

use crate::gpg::GpgError;

/// What the key-file side adds to a gpg failure.
pub(crate) struct FilesAdvice {
    /// What the key files said or why they were not read, appended to the
    /// message.
    pub(crate) note: Option<String>,
    /// The hint when gpg could not be started.
    pub(crate) without_gpg: String,
    /// The hint when gpg holds no secret key for the entry.
    pub(crate) without_key: String,
}

/// The error for an entry gpg could not unwrap (after the key files, if
/// any, could not either).
pub(crate) fn classify(gpg: GpgError, advice: FilesAdvice) -> KeyError {
    let FilesAdvice {
        note,
        without_gpg,
        without_key,
    } = advice;
    match gpg {
        gpg @ GpgError::Unavailable { .. } => KeyError::NoCredentials {
            message: with_note(gpg.to_string(), note),
            hint: Some(without_gpg),
        },
        gpg @ GpgError::NoSecretKey { .. } => KeyError::NoCredentials {
            message: with_note(gpg.to_string(), note),
            hint: Some(without_key),
        },
        gpg @ GpgError::AgentUnreachable { .. } => KeyError::Unreachable {
            message: with_note(gpg.to_string(), note),
        },
        gpg @ GpgError::Corrupt { .. } => KeyError::CorruptEntry {
            message: gpg.to_string(),
        },
        gpg @ (GpgError::Cancelled { .. }
        | GpgError::BadPassphrase { .. }
        | GpgError::NoPinentry { .. }
        | GpgError::CardNotPresent { .. }
        | GpgError::Failed { .. }) => KeyError::Denied {
            message: with_note(gpg.to_string(), note),
        },
    }
}

fn with_note(message: String, note: Option<String>) -> String {
    match note {
        Some(note) => format!("{message}; {note}"),
        None => message,
    }
}
