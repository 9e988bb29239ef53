//! Where identities come from, read the way sops 3.13 reads them
//! (`age/keysource.go`, `loadIdentities`):
//!
//! - `SOPS_AGE_SSH_PRIVATE_KEY_FILE`, `~/.ssh/id_ed25519`, `~/.ssh/id_rsa`:
//!   one SSH private key each (ed25519 or RSA; passphrase-protected allowed);
//! - `SOPS_AGE_KEY`: identities separated by newlines or spaces;
//! - `SOPS_AGE_KEY_FILE` and `$XDG_CONFIG_HOME/sops/age/keys.txt`: one per line;
//! - `SOPS_AGE_KEY_CMD` (one per line of its output) and
//!   `SOPS_AGE_SSH_PRIVATE_KEY_CMD` (one SSH key), run with
//!   `SOPS_AGE_RECIPIENT` set to the recipient of the entry being unwrapped.
//!
//! Any of the key-list sources may instead hold a passphrase-protected
//! identity file (`age -p` output, armored or not). Lines may be X25519
//! (`AGE-SECRET-KEY-1…`) or plugin (`AGE-PLUGIN-NAME-1…`) identities; `#`
//! starts a comment line. Post-quantum identities (`AGE-SECRET-KEY-PQ-1…`)
//! are recognised and skipped with a note: see [`crate::post_quantum`].
//!
//! A source that cannot be read or a line that does not parse is a
//! [`Problem`], never a reason to drop the other identities.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Arc;

use rsops_keysource::Deadline;
use zeroize::Zeroizing;

use crate::failure::Problem;
use crate::identity::{EncryptedFile, EncryptedSsh, Held, Kind};
use crate::worker;

/// What a set of sources yielded.
#[derive(Default)]
pub(crate) struct Sources {
    /// The identities, in source order.
    pub(crate) held: Vec<Held>,
    /// The sources that yielded at least one identity.
    pub(crate) locations: Vec<String>,
    /// What could not be used, and why.
    pub(crate) problems: Vec<Problem>,
}

impl Sources {
    /// False when a key command was stopped at the deadline: what it would
    /// have given is unknown, so the result must not stand for the run.
    pub(crate) fn complete(&self) -> bool {
        !self
            .problems
            .iter()
            .any(|p| matches!(p, Problem::CommandTimedOut { .. }))
    }

    fn add(&mut self, location: &str, held: Vec<Held>) {
        if !held.is_empty() {
            self.held.extend(held);
            self.locations.push(location.to_string());
        }
    }

    /// A list of identities (or a passphrase-protected identity file).
    fn add_keys(&mut self, location: &str, bytes: &[u8], words: bool) {
        let location: Arc<str> = Arc::from(location);
        let held = if is_age_file(bytes) {
            match EncryptedFile::parse(&location, bytes) {
                Ok(file) => vec![Held {
                    location: location.clone(),
                    kind: Kind::Encrypted(file),
                }],
                Err(problem) => {
                    self.problems.push(problem);
                    Vec::new()
                }
            }
        } else {
            parse_text(&location, bytes, words, &mut self.problems)
        };
        self.add(&location, held);
    }

    /// One SSH private key. Keys from a command cannot be
    /// passphrase-protected, as in sops.
    fn add_ssh(&mut self, location: &str, bytes: &[u8], from_command: bool) {
        let location: Arc<str> = Arc::from(location);
        let problem = |reason: &str| Problem::Ssh {
            location: location.to_string(),
            reason: reason.to_string(),
        };
        let kind = match age::ssh::Identity::from_buffer(bytes, Some(location.to_string())) {
            Ok(identity @ age::ssh::Identity::Unencrypted(_)) => Kind::Plain(Box::new(identity)),
            Ok(age::ssh::Identity::Encrypted(_)) if from_command => {
                self.problems.push(problem(
                    "the SSH key is passphrase-protected, which sops does not accept from a command",
                ));
                return;
            }
            Ok(age::ssh::Identity::Encrypted(key)) => {
                Kind::EncryptedSsh(EncryptedSsh::new(&location, key))
            }
            Ok(age::ssh::Identity::Unsupported(_)) => {
                self.problems.push(problem(
                    "an SSH key of a type age does not support (only ssh-ed25519 and ssh-rsa)",
                ));
                return;
            }
            Err(e) => {
                self.problems
                    .push(problem(&format!("not a usable SSH private key ({e})")));
                return;
            }
        };
        self.add(
            &location,
            vec![Held {
                location: location.clone(),
                kind,
            }],
        );
    }

    fn read(&mut self, location: &str, path: &Path) -> Option<Zeroizing<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(bytes) => Some(Zeroizing::new(bytes)),
            Err(e) => {
                self.problems.push(Problem::Unreadable {
                    location: location.to_string(),
                    error: e.to_string(),
                });
                None
            }
        }
    }
}

/// True for an age file (binary or armored): a passphrase-protected identity.
fn is_age_file(bytes: &[u8]) -> bool {
    bytes.starts_with(b"age-encryption") || bytes.starts_with(b"-----BEGIN AGE")
}

/// Parses identities, one per line (or per word with `words`), skipping
/// empty and `#` lines. Bad lines are problems naming the line, never its text.
pub(crate) fn parse_text(
    location: &Arc<str>,
    bytes: &[u8],
    words: bool,
    problems: &mut Vec<Problem>,
) -> Vec<Held> {
    let mut held = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let tokens: Vec<&[u8]> = if words {
            line.split(u8::is_ascii_whitespace)
                .filter(|w| !w.is_empty())
                .collect()
        } else {
            vec![line]
        };
        let mut reported = false;
        for token in tokens {
            match parse_identity(token) {
                Ok(kind) => held.push(Held {
                    location: location.clone(),
                    kind,
                }),
                // One problem per line is enough to find it.
                Err(unusable) if !reported => {
                    reported = true;
                    problems.push(unusable.problem(location, index + 1));
                }
                Err(_) => {}
            }
        }
    }
    held
}

/// Why a line holds no usable identity.
enum Unusable {
    /// No identity prefix sops knows.
    Unknown,
    /// A known prefix, but the rest does not parse.
    Malformed(&'static str),
    /// A post-quantum identity, which this build cannot use.
    PostQuantum,
}

impl Unusable {
    fn problem(self, location: &str, line: usize) -> Problem {
        let location = location.to_string();
        match self {
            Unusable::Unknown => Problem::NotAnIdentity { location, line },
            Unusable::Malformed(kind) => Problem::Malformed {
                location,
                line,
                kind,
            },
            Unusable::PostQuantum => Problem::PostQuantumIdentity { location, line },
        }
    }
}

/// One identity, by its prefix as sops tells them apart.
fn parse_identity(token: &[u8]) -> Result<Kind, Unusable> {
    let text = std::str::from_utf8(token).map_err(|_| Unusable::Unknown)?;
    if text.starts_with("AGE-PLUGIN-") {
        age::plugin::Identity::from_str(text)
            .map(Kind::Plugin)
            .map_err(|_| Unusable::Malformed("plugin identity"))
    } else if text.starts_with("AGE-SECRET-KEY-PQ-1") {
        Err(Unusable::PostQuantum)
    } else if text.starts_with("AGE-SECRET-KEY-1") {
        age::x25519::Identity::from_str(text)
            .map(|i| Kind::Plain(Box::new(i)))
            .map_err(|_| Unusable::Malformed("age secret key"))
    } else {
        Err(Unusable::Unknown)
    }
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `os.UserConfigDir()` on Unix: `$XDG_CONFIG_HOME`, else `~/.config`.
fn user_config_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => home_dir().map(|h| h.join(".config")),
    }
}

/// The sources that do not depend on the entry: files and variables. Read
/// once per run.
pub(crate) fn fixed() -> Sources {
    let mut sources = Sources::default();
    if let Some(path) = std::env::var_os("SOPS_AGE_SSH_PRIVATE_KEY_FILE") {
        let location = format!(
            "SOPS_AGE_SSH_PRIVATE_KEY_FILE ({})",
            Path::new(&path).display()
        );
        if let Some(bytes) = sources.read(&location, Path::new(&path)) {
            sources.add_ssh(&location, &bytes, false);
        }
    }
    if let Some(home) = home_dir() {
        for name in ["id_ed25519", "id_rsa"] {
            let path = home.join(".ssh").join(name);
            if path.exists() {
                let location = format!("~/.ssh/{name}");
                if let Some(bytes) = sources.read(&location, &path) {
                    sources.add_ssh(&location, &bytes, false);
                }
            }
        }
    }
    if let Some(keys) = std::env::var_os("SOPS_AGE_KEY") {
        let keys = Zeroizing::new(keys.into_encoded_bytes());
        sources.add_keys("SOPS_AGE_KEY", &keys, true);
    }
    if let Some(path) = std::env::var_os("SOPS_AGE_KEY_FILE") {
        let location = format!("SOPS_AGE_KEY_FILE ({})", Path::new(&path).display());
        if let Some(bytes) = sources.read(&location, Path::new(&path)) {
            sources.add_keys(&location, &bytes, false);
        }
    }
    if let Some(dir) = user_config_dir() {
        let path = dir.join("sops").join("age").join("keys.txt");
        match std::fs::read(&path) {
            Ok(bytes) => {
                sources.add_keys(&path.display().to_string(), &Zeroizing::new(bytes), false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => sources.problems.push(Problem::Unreadable {
                location: path.display().to_string(),
                error: e.to_string(),
            }),
        }
    }
    sources
}

/// The key commands, run for one entry's recipient (sops runs them per
/// entry with `SOPS_AGE_RECIPIENT` set, so a command may return only the
/// key that entry needs), each stopped if `deadline` passes.
pub(crate) async fn commands(recipient: &str, deadline: Deadline) -> Sources {
    let mut sources = Sources::default();
    const SSH_CMD: &str = "SOPS_AGE_SSH_PRIVATE_KEY_CMD";
    const KEY_CMD: &str = "SOPS_AGE_KEY_CMD";
    if let Ok(cmd) = std::env::var(SSH_CMD) {
        match run_command(SSH_CMD, &cmd, recipient, deadline).await {
            Ok(out) => sources.add_ssh(SSH_CMD, &out, true),
            Err(problem) => sources.problems.push(problem),
        }
    }
    if let Ok(cmd) = std::env::var(KEY_CMD) {
        match run_command(KEY_CMD, &cmd, recipient, deadline).await {
            Ok(out) => sources.add_keys(KEY_CMD, &out, false),
            Err(problem) => sources.problems.push(problem),
        }
    }
    sources
}

/// Runs a key command (split like a shell would, not through a shell, as
/// sops does) and returns its standard output.
///
/// It runs as an async child process, so network key sources and their
/// deadlines go on meanwhile, and it is killed if the attempt is dropped
/// (the data key came from elsewhere) or `deadline` passes. Its standard
/// input is empty: in `exec-*` mode rsops' own standard input belongs to
/// the command. Its standard error is rsops' (a password manager may
/// explain itself there).
async fn run_command(
    variable: &'static str,
    cmd: &str,
    recipient: &str,
    deadline: Deadline,
) -> Result<Zeroizing<Vec<u8>>, Problem> {
    let words = shlex::split(cmd)
        .filter(|w| !w.is_empty())
        .ok_or(Problem::CommandSyntax { variable })?;
    let program = words[0].clone();
    let mut command = tokio::process::Command::new(&program);
    command
        .args(&words[1..])
        .env("SOPS_AGE_RECIPIENT", recipient)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    // `output` starts the command when called: inside the future, a
    // deadline already past starts nothing.
    let run = async { command.output().await };
    let output = worker::by(deadline, run)
        .await
        .ok_or_else(|| Problem::CommandTimedOut {
            variable,
            program: program.clone(),
        })?
        .map_err(|e| Problem::CommandStart {
            variable,
            program: program.clone(),
            error: e.to_string(),
        })?;
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        return Err(Problem::CommandFailed {
            variable,
            program,
            status: output.status.to_string(),
        });
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn key() -> String {
        age::x25519::Identity::generate()
            .to_string()
            .expose_secret()
            .to_string()
    }

    #[test]
    fn lines_words_comments_and_bad_lines() {
        let (a, b) = (key(), key());
        let location: Arc<str> = Arc::from("test");
        let mut problems = Vec::new();
        let text = format!(
            "# created: now\n{a} {b}\r\n\nAGE-SECRET-KEY-PQ-1XYZ\nnot a key\nAGE-SECRET-KEY-1QQQ\n"
        );
        // Words: both keys of line 2; lines 4 to 6 are problems, never fatal.
        let held = parse_text(&location, text.as_bytes(), true, &mut problems);
        assert_eq!(held.len(), 2);
        let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            [
                "test, line 4: post-quantum age identity (AGE-SECRET-KEY-PQ-1…) skipped: rsops cannot use it yet",
                "test, line 5: not an age identity",
                "test, line 6: malformed age secret key",
            ]
        );
        // Lines: line 2 holds two keys, which is no identity; nothing leaks.
        let mut problems = Vec::new();
        let held = parse_text(&location, text.as_bytes(), false, &mut problems);
        assert!(held.is_empty());
        assert!(problems
            .iter()
            .all(|p| !p.to_string().contains(&a[..20]) && !p.to_string().contains("QQQ")));
    }

    #[test]
    fn plugin_identities_are_recognised() {
        let location: Arc<str> = Arc::from("test");
        let mut problems = Vec::new();
        let line = age::plugin::Identity::default_for_plugin("yubikey")
            .expect("valid name")
            .to_string();
        let held = parse_text(&location, line.as_bytes(), false, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(
            matches!(&held[..], [Held { kind: Kind::Plugin(p), .. }] if p.plugin() == "yubikey")
        );
    }
}
