//! Getting the data key: run the key sources for the file's entries, take
//! the first success per key group, and rebuild the key from enough groups.
//!
//! The reference tries one entry after another with no timeouts, so a KMS it
//! cannot reach delays (or blocks) a key the user holds. Here every entry
//! starts at once, local sources (age, PGP) first, a bounded number at a
//! time; each remote attempt has a deadline and all remote attempts share an
//! overall one; the remaining attempts are dropped as soon as enough groups
//! are unwrapped. Every attempt is recorded, for `--verbose` and for the
//! error that explains a failure.

mod report;

use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use rsops_keysource::{DataKey, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};

pub use report::{hint, Attempt, DataKeyError, Outcome};

use crate::metadata::Metadata;
use crate::shamir;

/// How many key entries are unwrapped at the same time.
const MAX_CONCURRENT: usize = 8;

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
        #[cfg(feature = "vault")]
        sources.push(Box::new(rsops_vault::VaultKeySource::new()));
        #[cfg(feature = "aws")]
        sources.push(Box::new(rsops_aws_kms::AwsKmsKeySource::new()));
        #[cfg(feature = "gcp")]
        sources.push(Box::new(rsops_gcp_kms::GcpKmsKeySource::new()));
        #[cfg(feature = "azure")]
        sources.push(Box::new(rsops_azure_kv::AzureKvKeySource::new()));
        KeyRegistry { sources }
    }
}

impl KeyRegistry {
    /// A registry of the given sources (for embedding and tests).
    pub fn new(sources: Vec<Box<dyn KeySource>>) -> Self {
        KeyRegistry { sources }
    }

    pub(crate) fn source_for(&self, kind: &str) -> Option<&dyn KeySource> {
        self.sources
            .iter()
            .find(|s| s.kind() == kind)
            .map(|s| s.as_ref())
    }
}

/// Deadlines and preferences for getting the data key.
#[derive(Clone, Debug)]
pub struct UnwrapOptions {
    /// Key kinds to try first (`--decryption-order`).
    pub order: Vec<String>,
    /// Deadline of one remote attempt (`--key-timeout`).
    pub attempt_timeout: Duration,
    /// Deadline of all remote attempts together (`--timeout`).
    pub overall_timeout: Duration,
    /// Try every entry even after enough groups are unwrapped (`rsops keys`).
    pub try_all: bool,
}

impl Default for UnwrapOptions {
    fn default() -> Self {
        UnwrapOptions {
            order: Vec::new(),
            attempt_timeout: Duration::from_secs(10),
            overall_timeout: Duration::from_secs(30),
            try_all: false,
        }
    }
}

/// Preference rank of an entry: local sources first, then kinds named in
/// `order`, then the reference's default (`age`, `pgp`, the rest in file order).
fn rank(kind: &str, local: bool, order: &[String]) -> (bool, usize) {
    let position = match order.iter().position(|k| k == kind) {
        Some(i) => i,
        None => {
            let default = ["age", "pgp"];
            order.len()
                + default
                    .iter()
                    .position(|k| *k == kind)
                    .unwrap_or(default.len())
        }
    };
    (!local, position)
}

/// One entry to try.
pub(crate) struct Job<'a> {
    group: usize,
    entry: &'a KeyEntry,
    source: &'a dyn KeySource,
}

impl Job<'_> {
    /// The record of this entry with `outcome`.
    fn record(&self, outcome: Outcome, elapsed: Duration) -> Attempt {
        Attempt {
            group: self.group,
            kind: self.entry.kind.clone(),
            id: self.source.describe(self.entry),
            outcome,
            elapsed,
        }
    }
}

/// Runs one attempt, bounded by its time limit when the source is remote.
/// The source gets the same limit as a [`Deadline`], to derive its own
/// timeouts from; the attempt is cut at the limit whatever the source does.
/// Returns the attempt's slot, its outcome and the secret it unwrapped.
async fn attempt(
    slot: usize,
    job: &Job<'_>,
    limit: Option<Duration>,
) -> (usize, Outcome, Option<Unwrapped>) {
    let result = match limit {
        Some(limit) => {
            let unwrap = job.source.unwrap(job.entry, Deadline::after(limit));
            match tokio::time::timeout(limit, unwrap).await {
                Ok(result) => result.map_err(Outcome::Failed),
                Err(_) => Err(Outcome::TimedOut(limit)),
            }
        }
        None => job
            .source
            .unwrap(job.entry, Deadline::NONE)
            .await
            .map_err(Outcome::Failed),
    };
    match result {
        Ok(key) => (slot, Outcome::Unwrapped, Some(key)),
        Err(outcome) => (slot, outcome, None),
    }
}

/// The number of key groups whose share is needed to rebuild the data key.
pub fn groups_needed(meta: &Metadata) -> usize {
    let groups = meta.key_groups.len();
    if groups > 1 {
        match meta.shamir_threshold {
            0 => groups,
            n => n.min(groups),
        }
    } else {
        1
    }
}

/// Unwraps the data key of a file; also returns every attempt made.
pub async fn data_key(
    meta: &Metadata,
    registry: &KeyRegistry,
    options: &UnwrapOptions,
) -> Result<(DataKey, Vec<Attempt>), DataKeyError> {
    let groups = meta.key_groups.len();
    let needed = groups_needed(meta);
    let (jobs, mut attempts) = plan(meta, registry, options);
    let (shares, tried) = run(jobs, groups, needed, options).await;
    attempts.extend(tried);
    attempts.sort_by_key(|a| a.group);
    let got = shares.iter().flatten().count();
    if got < needed {
        return Err(DataKeyError::Unwrap {
            needed,
            got,
            groups,
            attempts,
        });
    }
    Ok((combine(shares)?, attempts))
}

/// The entries to try, best first, and the records of those no compiled-in
/// source handles.
fn plan<'a>(
    meta: &'a Metadata,
    registry: &'a KeyRegistry,
    options: &UnwrapOptions,
) -> (Vec<Job<'a>>, Vec<Attempt>) {
    let mut jobs = Vec::new();
    let mut unsupported = Vec::new();
    for (group, entries) in meta.key_groups.iter().enumerate() {
        for entry in entries {
            match registry.source_for(&entry.kind) {
                Some(source) => jobs.push(Job {
                    group,
                    entry,
                    source,
                }),
                None => unsupported.push(Attempt {
                    group,
                    kind: entry.kind.clone(),
                    id: report::describe_unknown(entry),
                    outcome: Outcome::Failed(KeyError::unsupported_kind(&entry.kind)),
                    elapsed: Duration::ZERO,
                }),
            }
        }
    }
    jobs.sort_by_key(|job| rank(&job.entry.kind, job.source.is_local(), &options.order));
    (jobs, unsupported)
}

/// Runs the jobs, at most [`MAX_CONCURRENT`] at a time, until `needed`
/// groups have a share (or every job ran, with `try_all`). Returns each
/// group's share and a record of every job: attempts still running when
/// enough groups were unwrapped are recorded as cancelled, with the time
/// they had run; jobs never started, as not needed.
async fn run(
    jobs: Vec<Job<'_>>,
    groups: usize,
    needed: usize,
    options: &UnwrapOptions,
) -> (Vec<Option<Unwrapped>>, Vec<Attempt>) {
    let started = Instant::now();
    let mut shares: Vec<Option<Unwrapped>> = (0..groups).map(|_| None).collect();
    let mut got = 0;
    let mut records: Vec<Option<Attempt>> = jobs.iter().map(|_| None).collect();
    let mut started_at: Vec<Option<Instant>> = jobs.iter().map(|_| None).collect();
    let mut queue = jobs.iter().enumerate();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < MAX_CONCURRENT {
            let Some((slot, job)) = queue.next() else {
                break;
            };
            // Entries of groups already unwrapped are not needed, unless asked to try all.
            if !options.try_all && shares[job.group].is_some() {
                records[slot] = Some(job.record(Outcome::NotNeeded, Duration::ZERO));
                continue;
            }
            let deadline = (!job.source.is_local()).then(|| {
                let remaining = options.overall_timeout.saturating_sub(started.elapsed());
                options.attempt_timeout.min(remaining)
            });
            started_at[slot] = Some(Instant::now());
            running.push(attempt(slot, job, deadline));
        }
        if got >= needed && !options.try_all {
            break;
        }
        let Some((slot, outcome, key)) = running.next().await else {
            break;
        };
        let job = &jobs[slot];
        if let Some(key) = key {
            if shares[job.group].is_none() {
                shares[job.group] = Some(key);
                got += 1;
            }
        }
        let elapsed = started_at[slot].map_or(Duration::ZERO, |t| t.elapsed());
        records[slot] = Some(job.record(outcome, elapsed));
    }
    drop(running);
    let attempts = jobs
        .iter()
        .zip(records)
        .zip(started_at)
        .map(|((job, record), start)| match (record, start) {
            (Some(record), _) => record,
            (None, Some(start)) => job.record(Outcome::Cancelled, start.elapsed()),
            (None, None) => job.record(Outcome::NotNeeded, Duration::ZERO),
        })
        .collect();
    (shares, attempts)
}

/// The data key from the groups' secrets: the one secret itself with a
/// single group, else the Shamir combination of the shares present. The
/// only place a data key is made, so the only length check.
fn combine(shares: Vec<Option<Unwrapped>>) -> Result<DataKey, DataKeyError> {
    if shares.len() > 1 {
        let parts: Vec<&[u8]> = shares.iter().flatten().map(Unwrapped::expose).collect();
        let combined = shamir::combine(&parts).map_err(DataKeyError::Shamir)?;
        DataKey::from_slice(&combined).map_err(DataKeyError::BadLength)
    } else {
        let secret = shares
            .into_iter()
            .flatten()
            .next()
            .ok_or(DataKeyError::BadLength(0))?;
        DataKey::try_from(secret).map_err(DataKeyError::BadLength)
    }
}

#[cfg(test)]
mod tests;
