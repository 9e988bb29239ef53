//! What happened to each key entry, and the error that lists them all when
//! the data key cannot be had: kind, identifier, outcome, time, and a hint.

use std::fmt;
use std::time::Duration;

use rsops_keysource::{KeyEntry, KeyError};

use crate::shamir;

/// How one key entry fared.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// It yielded the data key (or its group's share).
    Unwrapped,
    /// The key source failed.
    Failed(KeyError),
    /// The remote call did not answer within its deadline.
    TimedOut(Duration),
    /// Not tried: enough groups were already unwrapped.
    NotNeeded,
    /// Still running when enough groups were unwrapped, and stopped.
    Cancelled,
}

/// One key entry and what happened when it was tried.
#[derive(Debug)]
pub struct Attempt {
    /// Index of the key group (0-based).
    pub group: usize,
    /// The entry kind (`age`, `pgp`, `kms`, …).
    pub kind: String,
    /// The entry's identifier (recipient, fingerprint, ARN…).
    pub id: String,
    /// What happened.
    pub outcome: Outcome,
    /// How long the attempt took.
    pub elapsed: Duration,
}

impl Attempt {
    /// True when the entry yielded its key.
    pub fn succeeded(&self) -> bool {
        matches!(self.outcome, Outcome::Unwrapped)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Unwrapped => f.write_str("unwrapped"),
            Outcome::NotNeeded => f.write_str("not needed"),
            Outcome::Cancelled => f.write_str("cancelled: enough key groups were unwrapped"),
            Outcome::TimedOut(limit) => write!(f, "timed out after {} ms", limit.as_millis()),
            Outcome::Failed(error) => write!(f, "{}: {error}", error.class()),
        }
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.id, self.outcome)?;
        if !matches!(self.outcome, Outcome::NotNeeded) {
            write!(f, " ({} ms)", self.elapsed.as_millis())?;
        }
        Ok(())
    }
}

/// The hint for an attempt's outcome, when there is one.
pub fn hint(attempt: &Attempt) -> Option<String> {
    match &attempt.outcome {
        Outcome::Failed(error) => error.hint().map(str::to_string),
        Outcome::TimedOut(_) => Some(
            "check the network path to the key service, or give it more time (RSOPS_KEY_TIMEOUT)"
                .into(),
        ),
        _ => None,
    }
}

/// Why the data key could not be obtained.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataKeyError {
    /// Not enough key groups could be unwrapped.
    Unwrap {
        /// Groups needed.
        needed: usize,
        /// Groups unwrapped.
        got: usize,
        /// Number of groups in the file.
        groups: usize,
        /// Every entry and what happened to it.
        attempts: Vec<Attempt>,
    },
    /// The shares of the groups did not combine.
    Shamir(shamir::ShamirError),
    /// The unwrapped key is not 32 bytes.
    BadLength(usize),
}

impl std::error::Error for DataKeyError {}

impl fmt::Display for DataKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataKeyError::Unwrap {
                needed,
                got,
                groups,
                attempts,
            } => {
                if *groups > 1 {
                    write!(
                        f,
                        "could not get the data key: {got} of {needed} needed key groups unwrapped"
                    )?;
                } else {
                    write!(f, "could not get the data key")?;
                }
                for attempt in attempts {
                    write!(f, "\n  ")?;
                    if *groups > 1 {
                        write!(f, "group {}: ", attempt.group + 1)?;
                    }
                    write!(f, "{attempt}")?;
                    if let Some(hint) = hint(attempt) {
                        write!(f, "\n    hint: {hint}")?;
                    }
                }
                Ok(())
            }
            DataKeyError::Shamir(e) => write!(f, "could not rebuild the data key: {e}"),
            DataKeyError::BadLength(n) => write!(f, "the unwrapped data key is {n} bytes, not 32"),
        }
    }
}

/// An identifier for an entry no compiled-in source handles. Field names
/// are each backend's business, so this shows every field but the two the
/// sops format gives every entry (`enc`, the wrapped key, and `created_at`).
pub(super) fn describe_unknown(entry: &KeyEntry) -> String {
    let fields: Vec<String> = entry
        .fields
        .iter()
        .filter(|(name, _)| name != "enc" && name != "created_at")
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if fields.is_empty() {
        "?".to_string()
    } else {
        fields.join(", ")
    }
}
