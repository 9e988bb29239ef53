//! Turning what gpg said into one classified [`KeyError`] that names the
//! fingerprint, with what to do as its hint.
//!
//! The key-file side (Sequoia, or this build's lack of it) adds a note and
//! picks the hints for a missing gpg or key, since what a user can do
//! without gpg depends on whether this build reads key files at all.

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
    let own_hint = gpg.hint().map(str::to_string);
    let (error, hint) = match gpg {
        gpg @ GpgError::Unavailable { .. } => (
            KeyError::no_credentials(with_note(gpg.to_string(), note)),
            Some(without_gpg),
        ),
        gpg @ GpgError::NoSecretKey { .. } => (
            KeyError::no_credentials(with_note(gpg.to_string(), note)),
            Some(without_key),
        ),
        gpg @ (GpgError::AgentUnreachable { .. } | GpgError::TimedOut { .. }) => (
            KeyError::unreachable(with_note(gpg.to_string(), note)),
            own_hint,
        ),
        // The message itself is bad: what the key files said adds nothing.
        gpg @ GpgError::Corrupt { .. } => (KeyError::corrupt_entry(gpg.to_string()), own_hint),
        gpg @ (GpgError::Cancelled { .. }
        | GpgError::BadPassphrase { .. }
        | GpgError::NoPinentry { .. }
        | GpgError::CardNotPresent { .. }
        | GpgError::Failed { .. }) => {
            (KeyError::denied(with_note(gpg.to_string(), note)), own_hint)
        }
    };
    match hint {
        Some(hint) => error.with_hint(hint),
        None => error,
    }
}

fn with_note(message: String, note: Option<String>) -> String {
    match note {
        Some(note) => format!("{message}; {note}"),
        None => message,
    }
}
