//! The identities rsops holds, and trying them on one entry's age header.
//!
//! Identities are tried cheapest first: plain keys (X25519, post-quantum,
//! unprotected SSH) cost nothing and ask nothing, so a file one of them
//! opens never prompts for a passphrase or wakes a hardware token. Then
//! passphrase-protected identity files and SSH keys, then plugins. A failing
//! identity is recorded and the next one tried, so one broken key (a locked
//! token, a wrong passphrase) does not hide a good one.

use std::io::Read;
use std::iter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use age::armor::ArmoredReader;
use age::secrecy::SecretString;
use age::DecryptError;
use age_core::format::{FileKey, Stanza};
use zeroize::Zeroizing;

use crate::failure::Problem;
use crate::tty::{self, PromptError, TerminalCallbacks};

/// How many times a wrong passphrase may be typed before giving up.
const PASSPHRASE_TRIES: usize = 3;

/// One identity and the place it was found (a variable, a file, a command).
pub(crate) struct Held {
    pub(crate) location: Arc<str>,
    pub(crate) kind: Kind,
}

/// The kinds of identity, by what using them costs.
pub(crate) enum Kind {
    /// X25519, post-quantum or unprotected SSH: no process, no question.
    Plain(Box<dyn age::Identity + Send + Sync>),
    /// An `age -p` identity file: asks for its passphrase once, when first needed.
    Encrypted(EncryptedFile),
    /// A passphrase-protected SSH key: asks once, only for files with SSH stanzas.
    EncryptedSsh(EncryptedSsh),
    /// `AGE-PLUGIN-NAME-1…`: runs `age-plugin-NAME`, which may ask for a PIN or a touch.
    Plugin(age::plugin::Identity),
}

impl Kind {
    /// Trial order: plain, then passphrase-protected, then plugins.
    fn cost(&self) -> u8 {
        match self {
            Kind::Plain(_) => 0,
            Kind::Encrypted(_) | Kind::EncryptedSsh(_) => 1,
            Kind::Plugin(_) => 2,
        }
    }
}

/// One entry's attempt: where problems go, and whether it is still wanted.
pub(crate) struct Trial {
    cancel: Arc<AtomicBool>,
    problems: Arc<Mutex<Vec<Problem>>>,
}

impl Trial {
    pub(crate) fn new(cancel: Arc<AtomicBool>) -> Self {
        Trial {
            cancel,
            problems: Arc::default(),
        }
    }

    fn record(&self, problem: Problem) {
        self.problems
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(problem);
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// The problems met so far.
    pub(crate) fn problems(&self) -> Vec<Problem> {
        self.problems
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Unwraps the age-encrypted data key `enc` with the first identity of
    /// `held` that can. `Ok(None)`: none could (see [`Trial::problems`]).
    pub(crate) fn unwrap(
        &self,
        held: &[&Held],
        enc: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, Problem> {
        let corrupt = |e: &dyn std::fmt::Display| Problem::Corrupt {
            location: "the entry".into(),
            error: format!("the age-encrypted data key is malformed: {e}"),
        };
        let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(enc.as_bytes()))
            .map_err(|e| corrupt(&e))?;
        let candidates = self.candidates(held);
        let mut reader = match decryptor.decrypt(candidates.iter().map(|c| c as &dyn age::Identity))
        {
            Ok(reader) => reader,
            Err(DecryptError::NoMatchingKeys) => return Ok(None),
            Err(e) => return Err(corrupt(&e)),
        };
        let mut key = Zeroizing::new(Vec::with_capacity(32));
        reader.read_to_end(&mut key).map_err(|e| Problem::Corrupt {
            location: "the entry".into(),
            error: format!("the age-encrypted data key is damaged: {e}"),
        })?;
        Ok(Some(key))
    }

    /// `held` in trial order, plugin identities gathered into one plugin run
    /// per plugin (a plugin binary missing from PATH is recorded here).
    fn candidates<'a>(&'a self, held: &[&'a Held]) -> Vec<Candidate<'a>> {
        let mut sorted: Vec<&Held> = held.to_vec();
        sorted.sort_by_key(|h| h.kind.cost());
        let mut list = Vec::new();
        let mut plugins: Vec<(String, Vec<age::plugin::Identity>, Vec<Arc<str>>)> = Vec::new();
        for h in sorted {
            match &h.kind {
                Kind::Plugin(identity) => {
                    match plugins.iter_mut().find(|(n, _, _)| n == identity.plugin()) {
                        Some((_, ids, locations)) => {
                            ids.push(identity.clone());
                            if !locations.contains(&h.location) {
                                locations.push(h.location.clone());
                            }
                        }
                        None => plugins.push((
                            identity.plugin().to_string(),
                            vec![identity.clone()],
                            vec![h.location.clone()],
                        )),
                    }
                }
                _ => list.push(Candidate::One {
                    held: h,
                    trial: self,
                }),
            }
        }
        for (name, identities, locations) in plugins {
            let binary = format!("age-plugin-{name}");
            let callbacks = TerminalCallbacks {
                who: Arc::from(binary.as_str()),
                cancel: self.cancel.clone(),
                problems: self.problems.clone(),
            };
            match age::plugin::IdentityPluginV1::new(&name, &identities, callbacks) {
                Ok(plugin) => list.push(Candidate::Plugin {
                    binary,
                    plugin,
                    trial: self,
                }),
                Err(_) => self.record(Problem::MissingPlugin {
                    binary,
                    locations: locations
                        .iter()
                        .map(|l| l.as_ref())
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            }
        }
        list
    }
}

/// An identity as age's decryptor sees it: failures are recorded and
/// reported as "not mine", so the decryptor goes on to the next one.
enum Candidate<'a> {
    One {
        held: &'a Held,
        trial: &'a Trial,
    },
    Plugin {
        binary: String,
        plugin: age::plugin::IdentityPluginV1<TerminalCallbacks>,
        trial: &'a Trial,
    },
}

impl age::Identity for Candidate<'_> {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, DecryptError>> {
        let (trial, result) = match self {
            Candidate::One { held, trial } => (trial, unwrap_held(held, stanzas, trial)),
            Candidate::Plugin {
                binary,
                plugin,
                trial,
            } => {
                if trial.cancelled() {
                    return None;
                }
                let result = match plugin.unwrap_stanzas(stanzas) {
                    Some(Err(e)) => Err(plugin_problem(binary, e)),
                    Some(Ok(key)) => Ok(Some(key)),
                    None => Ok(None),
                };
                (trial, result)
            }
        };
        match result {
            Ok(found) => found.map(Ok),
            Err(problem) => {
                trial.record(problem);
                None
            }
        }
    }
}

fn unwrap_held(held: &Held, stanzas: &[Stanza], trial: &Trial) -> Result<Option<FileKey>, Problem> {
    match &held.kind {
        Kind::Plain(identity) => match identity.unwrap_stanzas(stanzas) {
            Some(Ok(key)) => Ok(Some(key)),
            Some(Err(e)) => Err(Problem::Corrupt {
                location: held.location.to_string(),
                error: e.to_string(),
            }),
            None => Ok(None),
        },
        Kind::Encrypted(file) => file.unwrap(stanzas, trial),
        Kind::EncryptedSsh(key) => key.unwrap(stanzas, trial),
        // Plugins are run as a group by `Trial::candidates`.
        Kind::Plugin(_) => Ok(None),
    }
}

/// A plugin's failure, named after the plugin binary.
fn plugin_problem(binary: &str, error: DecryptError) -> Problem {
    match error {
        DecryptError::Plugin(errors) => Problem::PluginFailed {
            // age's own wording ("'age-plugin-x' couldn't use an identity: …"),
            // without the bidi isolation marks its message catalogue adds.
            message: errors
                .iter()
                .map(|e| {
                    let text = e.to_string().replace(['\u{2068}', '\u{2069}'], "");
                    if text.contains(binary) {
                        text
                    } else {
                        format!("'{binary}': {text}")
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
        },
        DecryptError::Io(e) => Problem::PluginDied {
            binary: binary.to_string(),
            error: match e.kind() {
                std::io::ErrorKind::ConnectionAborted => "it exited".to_string(),
                _ => e.kind().to_string(),
            },
        },
        other => Problem::Corrupt {
            location: binary.to_string(),
            error: other.to_string(),
        },
    }
}

/// Asks for a passphrase, turning "cannot ask" into a problem about `what`.
fn passphrase(what: &str, prompt: &str, trial: &Trial) -> Result<SecretString, Problem> {
    match tty::ask(prompt, true, &trial.cancel) {
        Ok(answer) => Ok(SecretString::from(answer.to_string())),
        Err(error) => Err(Problem::Prompt {
            who: what.to_string(),
            no_terminal: matches!(error, PromptError::NoTerminal(_)),
            error: error.to_string(),
        }),
    }
}

/// The result of opening a protected identity, kept for the rest of the run
/// so the user is asked once, however many entries need it.
type Opened<T> = Mutex<Option<Result<T, Problem>>>;

/// Runs `open` unless already done, and hands its result to `use_it`. An
/// open interrupted because the attempt was dropped is not kept: the next
/// entry may ask again.
fn with_opened<T>(
    opened: &Opened<T>,
    trial: &Trial,
    open: impl FnOnce() -> Result<T, Problem>,
    use_it: impl FnOnce(&T) -> Result<Option<FileKey>, Problem>,
) -> Result<Option<FileKey>, Problem> {
    let mut state = opened.lock().unwrap_or_else(PoisonError::into_inner);
    if state.is_none() {
        let result = open();
        if trial.cancelled() {
            return result.map(|_| None);
        }
        *state = Some(result);
    }
    match state.as_ref() {
        Some(Ok(value)) => use_it(value),
        Some(Err(problem)) => Err(problem.clone()),
        None => Ok(None),
    }
}

/// A passphrase-protected identity file (`age -p`, armored or binary), as
/// sops ≥ 3.10 reads it from any key source.
pub(crate) struct EncryptedFile {
    location: Arc<str>,
    ciphertext: Vec<u8>,
    opened: Opened<Vec<Held>>,
}

impl EncryptedFile {
    /// The file, if `bytes` is an age file encrypted to a passphrase.
    pub(crate) fn parse(location: &Arc<str>, bytes: &[u8]) -> Result<Self, Problem> {
        let damaged = |error: String| Problem::DamagedEncrypted {
            location: location.to_string(),
            error,
        };
        let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(bytes))
            .map_err(|e| damaged(e.to_string()))?;
        if !decryptor.is_scrypt() {
            return Err(damaged(
                "it is encrypted to a key, not to a passphrase".to_string(),
            ));
        }
        Ok(EncryptedFile {
            location: location.clone(),
            ciphertext: bytes.to_vec(),
            opened: Mutex::new(None),
        })
    }

    fn unwrap(&self, stanzas: &[Stanza], trial: &Trial) -> Result<Option<FileKey>, Problem> {
        with_opened(
            &self.opened,
            trial,
            || self.open(trial),
            |inner| {
                let refs: Vec<&Held> = inner.iter().collect();
                let found = trial
                    .candidates(&refs)
                    .iter()
                    .find_map(|c| age::Identity::unwrap_stanzas(c, stanzas));
                found.transpose().map_err(|e| Problem::Corrupt {
                    location: self.location.to_string(),
                    error: e.to_string(),
                })
            },
        )
    }

    /// Asks for the passphrase (again after a wrong one) and parses the
    /// identities inside.
    fn open(&self, trial: &Trial) -> Result<Vec<Held>, Problem> {
        let what = format!("the passphrase-protected identity {}", self.location);
        let prompt = format!("Enter passphrase for identity '{}': ", self.location);
        for attempt in 1..=PASSPHRASE_TRIES {
            let identity = age::scrypt::Identity::new(passphrase(&what, &prompt, trial)?);
            let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(&self.ciphertext[..]))
                .map_err(|e| Problem::DamagedEncrypted {
                    location: self.location.to_string(),
                    error: e.to_string(),
                })?;
            match decryptor.decrypt(iter::once(&identity as &dyn age::Identity)) {
                Ok(mut reader) => {
                    let mut text = Zeroizing::new(Vec::new());
                    reader
                        .read_to_end(&mut text)
                        .map_err(|e| Problem::DamagedEncrypted {
                            location: self.location.to_string(),
                            error: e.to_string(),
                        })?;
                    let mut problems = Vec::new();
                    let held =
                        crate::sources::parse_text(&self.location, &text, false, &mut problems);
                    problems.into_iter().for_each(|p| trial.record(p));
                    return Ok(held);
                }
                Err(DecryptError::DecryptionFailed) if attempt < PASSPHRASE_TRIES => {
                    tty::message("rsops: wrong passphrase, try again");
                }
                Err(DecryptError::DecryptionFailed) => break,
                Err(e) => {
                    return Err(Problem::DamagedEncrypted {
                        location: self.location.to_string(),
                        error: e.to_string(),
                    })
                }
            }
        }
        Err(Problem::WrongPassphrase {
            location: self.location.to_string(),
        })
    }
}

/// A passphrase-protected OpenSSH key, as sops reads `~/.ssh/id_ed25519`,
/// `~/.ssh/id_rsa` and `SOPS_AGE_SSH_PRIVATE_KEY_FILE`.
pub(crate) struct EncryptedSsh {
    location: Arc<str>,
    key: age::ssh::EncryptedKey,
    opened: Opened<age::ssh::Identity>,
}

impl EncryptedSsh {
    pub(crate) fn new(location: &Arc<str>, key: age::ssh::EncryptedKey) -> Self {
        EncryptedSsh {
            location: location.clone(),
            key,
            opened: Mutex::new(None),
        }
    }

    fn unwrap(&self, stanzas: &[Stanza], trial: &Trial) -> Result<Option<FileKey>, Problem> {
        // Only an SSH stanza can be this key's: do not ask for nothing.
        if !stanzas
            .iter()
            .any(|s| s.tag == "ssh-ed25519" || s.tag == "ssh-rsa")
        {
            return Ok(None);
        }
        with_opened(
            &self.opened,
            trial,
            || self.open(trial),
            |identity| {
                age::Identity::unwrap_stanzas(identity, stanzas)
                    .transpose()
                    .map_err(|e| Problem::Corrupt {
                        location: self.location.to_string(),
                        error: e.to_string(),
                    })
            },
        )
    }

    fn open(&self, trial: &Trial) -> Result<age::ssh::Identity, Problem> {
        let what = format!("the passphrase-protected SSH key {}", self.location);
        let prompt = format!("Enter passphrase for \"{}\": ", self.location);
        for attempt in 1..=PASSPHRASE_TRIES {
            match self.key.decrypt(passphrase(&what, &prompt, trial)?) {
                Ok(key) => return Ok(age::ssh::Identity::from(key)),
                Err(DecryptError::KeyDecryptionFailed) if attempt < PASSPHRASE_TRIES => {
                    tty::message("rsops: wrong passphrase, try again");
                }
                Err(DecryptError::KeyDecryptionFailed) => break,
                Err(e) => {
                    return Err(Problem::Ssh {
                        location: self.location.to_string(),
                        reason: e.to_string(),
                    })
                }
            }
        }
        Err(Problem::WrongPassphrase {
            location: self.location.to_string(),
        })
    }
}
