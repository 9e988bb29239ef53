//! age key source: unwraps `sops.age` entries with the identities sops 3.13
//! reads — X25519, SSH (ed25519 and RSA, passphrase-protected or not),
//! plugins (`AGE-PLUGIN-NAME-1…`, run as `age-plugin-NAME` from `PATH`) and
//! passphrase-protected identity files — found where sops looks for them
//! (see [`sources`] for the list and order). Post-quantum entries are the
//! exception, refused with a clear error (see [`post_quantum`]).
//!
//! Identities from files and variables are read once per run; the key
//! commands run once per recipient, with `SOPS_AGE_RECIPIENT` set, as sops
//! runs them per entry. Attempts are taken one at a time, so two entries
//! never prompt or drive a hardware token at once, and every blocking step
//! (a plugin, scrypt, a prompt) runs on its own thread: network key sources
//! and their deadlines go on meanwhile. Questions go to the terminal, never
//! to standard output (see [`tty`]).
//!
//! age is a local source: the core gives it [`Deadline::NONE`], since a
//! prompt or a plugin may be waiting for the user. Given a deadline, the
//! attempt ends when it passes, and the key commands and plugins it started
//! are killed (see [`worker`]).

#![deny(missing_docs)]

mod failure;
mod identity;
mod sources;
mod tty;
mod worker;
mod wrap;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rsops_keysource::{BoxFuture, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::failure::Problem;
use crate::identity::{Held, Kind, Trial};
use crate::sources::Sources;

/// The age key source. Cheap to create; identities load on first use.
#[derive(Default)]
pub struct AgeKeySource {
    /// Held across an attempt: one age attempt at a time.
    state: Mutex<State>,
}

/// What was loaded so far in this run.
#[derive(Default)]
struct State {
    /// Files and variables, read on the first attempt.
    fixed: Option<Arc<Sources>>,
    /// Key command results, per recipient.
    commands: HashMap<String, Arc<Sources>>,
}

impl AgeKeySource {
    /// A key source that will read identities from the environment on first use.
    pub fn new() -> Self {
        Self::default()
    }

    async fn unwrap_entry(
        &self,
        entry: &KeyEntry,
        deadline: Deadline,
    ) -> Result<Unwrapped, KeyError> {
        let enc = entry.encrypted_key()?.to_string();
        // sops tries every identity whatever the recipient says, so a
        // hand-edited entry without one still decrypts.
        let recipient = entry.field("recipient").unwrap_or_default().to_string();
        if recipient.starts_with(post_quantum::RECIPIENT_PREFIX) {
            return Err(post_quantum::unsupported());
        }
        let mut state = worker::by(deadline, self.state.lock())
            .await
            .ok_or_else(|| failure::busy(&recipient))?;
        let fixed = match &state.fixed {
            Some(fixed) => fixed.clone(),
            None => {
                let fixed = Arc::new(sources::fixed());
                note_skipped(&fixed);
                state.fixed = Some(fixed.clone());
                fixed
            }
        };
        let commands = match state.commands.get(&recipient) {
            Some(commands) => commands.clone(),
            None => {
                let commands = Arc::new(sources::commands(&recipient, deadline).await);
                note_skipped(&commands);
                // A command stopped at this entry's deadline runs again for
                // the next entry, which may have more time.
                if commands.complete() {
                    state.commands.insert(recipient.clone(), commands.clone());
                }
                commands
            }
        };
        if deadline.remaining().is_some_and(|left| left.is_zero()) {
            return Err(out_of_time(&fixed, &commands, &recipient, BEFORE));
        }
        let plain = fixed
            .held
            .iter()
            .chain(&commands.held)
            .all(|held| matches!(held.kind, Kind::Plain(_)));
        let tried = if plain {
            // No plugin, prompt or scrypt: microseconds of work, less than
            // starting a thread takes.
            let cancel = Arc::new(AtomicBool::new(false));
            Some(try_identities(&fixed, &commands, &recipient, &enc, cancel))
        } else {
            let (fixed, commands, recipient) = (fixed.clone(), commands.clone(), recipient.clone());
            worker::off_thread(deadline, move |cancel| {
                try_identities(&fixed, &commands, &recipient, &enc, cancel)
            })
            .await?
        };
        drop(state);
        match tried {
            Some(key) => {
                let mut key = key?;
                Ok(Unwrapped::new(std::mem::take(&mut *key)))
            }
            None => Err(out_of_time(&fixed, &commands, &recipient, DURING)),
        }
    }
}

impl KeySource for AgeKeySource {
    fn kind(&self) -> &'static str {
        "age"
    }

    fn describe(&self, entry: &KeyEntry) -> String {
        entry.field("recipient").unwrap_or("?").to_string()
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

    /// Encrypts to the entry's `recipient` (X25519, SSH or plugin), armored
    /// as sops writes it; returns `recipient` and `enc`.
    fn wrap<'a>(
        &'a self,
        recipient: &'a KeyEntry,
        secret: &'a [u8],
        deadline: Deadline,
    ) -> BoxFuture<'a, Result<KeyEntry, KeyError>> {
        Box::pin(async move {
            // Plugins may prompt: one age attempt at a time, as for unwrapping.
            let _state = worker::by(deadline, self.state.lock())
                .await
                .ok_or_else(|| failure::busy(recipient.field("recipient").unwrap_or("?")))?;
            wrap::wrap(recipient, secret, deadline).await
        })
    }
}

pub mod post_quantum {
    //! Post-quantum age recipients (`age1pq1…`, identities
    //! `AGE-SECRET-KEY-PQ-1…`): ML-KEM-768 + X25519 (X-Wing) through HPKE, the
    //! `mlkem768x25519` stanza of c2sp.org/age, written by sops ≥ 3.12.
    //!
    //! Not decrypted yet, by choice rather than by hand: the age 0.12 crate
    //! lacks the type, and the released crates that implement X-Wing (`hpke`
    //! ≥ 0.14 with `mlkem`, `x-wing` 0.1) need `kem` 0.3.0, while age 0.12
    //! needs `ml-kem` 0.2, pinned to `kem` 0.3.0-pre.0 — cargo cannot hold
    //! both in one build. Until an age release carries the type, such an
    //! entry fails at once with an error that names it and says what works.

    use rsops_keysource::KeyError;

    /// How a post-quantum recipient begins.
    pub const RECIPIENT_PREFIX: &str = "age1pq1";

    /// The error of a post-quantum entry.
    pub fn unsupported() -> KeyError {
        KeyError::no_credentials(
            "this entry is for a post-quantum age recipient (age1pq1…, ML-KEM-768 + X25519, \
             written by sops ≥ 3.12), which rsops cannot decrypt yet",
        )
        .with_hint(
            "decrypt with sops ≥ 3.12, or have the file also encrypted to an X25519 age \
             recipient (age1…) or another key rsops can use",
        )
    }
}

/// With `--verbose`'s environment twin `RSOPS_LOG`, says which identity
/// sources were skipped and why (a broken `~/.ssh/id_ed25519` is skipped
/// silently otherwise, as sops does, when another identity works).
fn note_skipped(sources: &Sources) {
    let verbose = std::env::var("RSOPS_LOG").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "off"));
    if verbose {
        for problem in &sources.problems {
            eprintln!("rsops: age: skipped: {problem}");
        }
    }
}

/// Tries every identity on the entry's encrypted data key `enc`.
fn try_identities(
    fixed: &Sources,
    commands: &Sources,
    recipient: &str,
    enc: &str,
    cancel: Arc<AtomicBool>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let held: Vec<&Held> = fixed.held.iter().chain(&commands.held).collect();
    let (locations, mut problems) = gathered(fixed, commands);
    if held.is_empty() {
        return Err(failure::no_key(recipient, 0, &locations, &problems));
    }
    let trial = Trial::new(cancel);
    match trial.unwrap(&held, enc) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => {
            problems.extend(trial.problems());
            Err(failure::no_key(
                recipient,
                held.len(),
                &locations,
                &problems,
            ))
        }
        Err(problem) => {
            problems.extend(trial.problems());
            problems.push(problem);
            Err(failure::no_key(
                recipient,
                held.len(),
                &locations,
                &problems,
            ))
        }
    }
}

/// The deadline passed before the identities were tried (a key command, or
/// waiting for another entry, took the time).
const BEFORE: &str = "before the identities could be tried";
/// The deadline passed while the identities were tried.
const DURING: &str =
    "while the identities were tried (a plugin or a passphrase prompt was stopped)";

/// The error of an entry whose deadline passed at `stage`: what loading
/// found, and when time ran out. With no identity at all, time was not
/// what was missing.
fn out_of_time(
    fixed: &Sources,
    commands: &Sources,
    recipient: &str,
    stage: &'static str,
) -> KeyError {
    let count = fixed.held.len() + commands.held.len();
    let (locations, mut problems) = gathered(fixed, commands);
    if count > 0 {
        problems.push(Problem::OutOfTime { stage });
    }
    failure::no_key(recipient, count, &locations, &problems)
}

/// The locations and loading problems of both kinds of source, in order.
fn gathered(fixed: &Sources, commands: &Sources) -> (Vec<String>, Vec<Problem>) {
    let locations = fixed
        .locations
        .iter()
        .chain(&commands.locations)
        .cloned()
        .collect();
    let problems = fixed
        .problems
        .iter()
        .chain(&commands.problems)
        .cloned()
        .collect();
    (locations, problems)
}
