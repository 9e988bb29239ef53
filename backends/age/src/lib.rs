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

#![deny(missing_docs)]

mod failure;
mod identity;
mod sources;
mod tty;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rsops_keysource::{BoxFuture, DataKey, KeyEntry, KeyError, KeySource};
use tokio::sync::{oneshot, Mutex};
use zeroize::Zeroizing;

use crate::failure::Problem;
use crate::identity::{Held, Trial};
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

    async fn unwrap_entry(&self, entry: &KeyEntry) -> Result<DataKey, KeyError> {
        let enc = entry.encrypted_key()?.to_string();
        let recipient = entry.field("recipient").unwrap_or_default().to_string();
        if recipient.starts_with(post_quantum::RECIPIENT_PREFIX) {
            return Err(post_quantum::unsupported());
        }
        let mut state = self.state.lock().await;
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
                let commands = Arc::new(sources::commands(&recipient).await);
                note_skipped(&commands);
                state.commands.insert(recipient.clone(), commands.clone());
                commands
            }
        };
        let key =
            off_thread(move |cancel| try_identities(&fixed, &commands, &recipient, &enc, cancel))
                .await?;
        drop(state);
        Ok(key)
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

    fn unwrap<'a>(&'a self, entry: &'a KeyEntry) -> BoxFuture<'a, Result<DataKey, KeyError>> {
        Box::pin(self.unwrap_entry(entry))
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
        KeyError::NoCredentials {
            message: "this entry is for a post-quantum age recipient (age1pq1…, ML-KEM-768 + \
                      X25519, written by sops ≥ 3.12), which rsops cannot decrypt yet"
                .into(),
            hint: Some(
                "decrypt with sops ≥ 3.12, or have the file also encrypted to an X25519 age \
                 recipient (age1…) or another key rsops can use"
                    .into(),
            ),
        }
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

/// Runs the blocking part of an attempt on a thread of its own and waits
/// for it without blocking the async runtime.
///
/// Not the runtime's blocking pool: a plugin may wait minutes for a touch,
/// and the runtime would wait for it on shutdown. When the attempt is
/// dropped (the data key came from elsewhere), the cancel flag makes any
/// prompt give up, and the thread is left to finish on its own.
async fn off_thread<F>(work: F) -> Result<DataKey, KeyError>
where
    F: FnOnce(Arc<AtomicBool>) -> Result<Zeroizing<Vec<u8>>, KeyError> + Send + 'static,
{
    /// Sets the cancel flag when the attempt's future is dropped.
    struct CancelOnDrop(Arc<AtomicBool>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let flag = cancel.0.clone();
    let (send, receive) = oneshot::channel();
    std::thread::Builder::new()
        .name("rsops-age".into())
        .spawn(move || {
            // The receiver is gone only if the attempt was dropped.
            let _ = send.send(work(flag));
        })
        .map_err(|e| KeyError::Unreachable {
            message: format!("cannot start a thread for age decryption: {e}"),
        })?;
    let result = receive.await.map_err(|_| KeyError::Unreachable {
        message: "the age decryption thread stopped unexpectedly".into(),
    })?;
    drop(cancel);
    let mut key = result?;
    Ok(DataKey::new(std::mem::take(&mut *key)))
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
    let locations: Vec<String> = fixed
        .locations
        .iter()
        .chain(&commands.locations)
        .cloned()
        .collect();
    let mut problems: Vec<Problem> = fixed
        .problems
        .iter()
        .chain(&commands.problems)
        .cloned()
        .collect();
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
