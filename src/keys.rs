//! Getting the data key: run the key sources for the file's entries, take
//! the first success per key group, and rebuild the key from enough groups.
//!
//! Unlike the reference, which tries one entry after another, every entry
//! starts at once (in preference order) and the remaining attempts are
//! dropped as soon as enough groups are unwrapped, so a slow key service
//! never delays a user who holds a fast one.

use std::fmt;

use futures_util::stream::{FuturesUnordered, StreamExt};
use rsops_keysource::{DataKey, KeyEntry, KeyError, KeySource};

use crate::metadata::Metadata;
use crate::shamir;

/// The key sources compiled into this build.
pub struct KeyRegistry {
    sources: Vec<Box<dyn KeySource>>,
}

impl Default for KeyRegistry {
    /// Every key source enabled by cargo features.
    // One `push` per feature keeps each source behind its own `cfg`.
    #[allow(clippy::vec_init_then_push, unused_mut)]
    fn default() -> Self {
        let mut sources: Vec<Box<dyn KeySource>> = Vec::new();
        #[cfg(feature = "age")]
        sources.push(Box::new(rsops_age::AgeKeySource::new()));
        #[cfg(feature = "pgp")]
        sources.push(Box::new(rsops_pgp::PgpKeySource::new()));
        KeyRegistry { sources }
    }
}

impl KeyRegistry {
    /// A registry of the given sources (for embedding and tests).
    pub fn new(sources: Vec<Box<dyn KeySource>>) -> Self {
        KeyRegistry { sources }
    }

    fn source_for(&self, kind: &str) -> Option<&dyn KeySource> {
        self.sources
            .iter()
            .find(|s| s.kind() == kind)
            .map(|s| s.as_ref())
    }
}

/// The outcome of one entry that did not yield the key.
#[derive(Debug)]
pub struct FailedAttempt {
    /// Index of the key group (0-based).
    pub group: usize,
    /// The entry kind (`age`, `pgp`, …).
    pub kind: String,
    /// The entry's identifier (recipient, fingerprint, ARN…).
    pub id: String,
    /// What went wrong.
    pub error: KeyError,
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
        /// Every attempt that failed.
        attempts: Vec<FailedAttempt>,
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
                    write!(f, "{} {}: {}", attempt.kind, attempt.id, attempt.error)?;
                    if let Some(hint) = attempt.error.hint() {
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

/// Preference rank of a kind: earlier in `order` first, then the
/// reference's default (`age`, `pgp`, then the rest in file order).
fn rank(kind: &str, order: &[String]) -> usize {
    if let Some(i) = order.iter().position(|k| k == kind) {
        return i;
    }
    let default = ["age", "pgp"];
    order.len()
        + default
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(default.len())
}

/// Unwraps the data key of a file.
pub async fn data_key(
    meta: &Metadata,
    registry: &KeyRegistry,
    order: &[String],
) -> Result<DataKey, DataKeyError> {
    let groups = meta.key_groups.len();
    let needed = if groups > 1 {
        match meta.shamir_threshold {
            0 => groups,
            n => n.min(groups),
        }
    } else {
        1
    };

    let mut entries: Vec<(usize, &KeyEntry)> = meta
        .key_groups
        .iter()
        .enumerate()
        .flat_map(|(g, group)| group.iter().map(move |e| (g, e)))
        .collect();
    entries.sort_by_key(|(_, e)| rank(&e.kind, order));

    let mut attempts = Vec::new();
    let mut pending = FuturesUnordered::new();
    for (group, entry) in entries {
        match registry.source_for(&entry.kind) {
            Some(source) => pending.push(async move {
                (
                    group,
                    source.describe(entry),
                    entry,
                    source.unwrap(entry).await,
                )
            }),
            None => attempts.push(FailedAttempt {
                group,
                kind: entry.kind.clone(),
                id: describe_unknown(entry),
                error: KeyError::Unsupported {
                    kind: entry.kind.clone(),
                },
            }),
        }
    }

    let mut shares: Vec<Option<DataKey>> = (0..groups).map(|_| None).collect();
    let mut got = 0;
    while got < needed {
        let Some((group, id, entry, result)) = pending.next().await else {
            break;
        };
        match result {
            Ok(key) if shares[group].is_none() => {
                shares[group] = Some(key);
                got += 1;
            }
            Ok(_) => {}
            Err(error) => attempts.push(FailedAttempt {
                group,
                kind: entry.kind.clone(),
                id,
                error,
            }),
        }
    }
    drop(pending);

    if got < needed {
        attempts.sort_by_key(|a| a.group);
        return Err(DataKeyError::Unwrap {
            needed,
            got,
            groups,
            attempts,
        });
    }
    let key = if groups > 1 {
        let parts: Vec<&[u8]> = shares.iter().flatten().map(|k| k.expose()).collect();
        let mut combined = shamir::combine(&parts).map_err(DataKeyError::Shamir)?;
        DataKey::new(std::mem::take(&mut *combined))
    } else {
        shares
            .into_iter()
            .flatten()
            .next()
            .expect("one group unwrapped")
    };
    if key.expose().len() != 32 {
        return Err(DataKeyError::BadLength(key.expose().len()));
    }
    Ok(key)
}

fn describe_unknown(entry: &KeyEntry) -> String {
    [
        "recipient",
        "fp",
        "arn",
        "resource_id",
        "vault_url",
        "vault_address",
        "key_id",
    ]
    .iter()
    .find_map(|f| entry.field(f))
    .unwrap_or("?")
    .to_string()
}
