//! age key source: unwraps `sops.age` entries with the user's X25519 or SSH
//! identities, found where the reference `sops` looks for them.
//!
//! Identities are loaded once per run, on first use, from (in order):
//! `SOPS_AGE_SSH_PRIVATE_KEY_FILE`, `~/.ssh/id_ed25519`, `~/.ssh/id_rsa`,
//! `SOPS_AGE_KEY` (several keys per line allowed), `SOPS_AGE_KEY_FILE`,
//! `SOPS_AGE_KEY_CMD` (run once, with `SOPS_AGE_RECIPIENT` set to the
//! recipient of the first entry tried), and `$XDG_CONFIG_HOME/sops/age/keys.txt`
//! (default `~/.config/sops/age/keys.txt`).

#![deny(missing_docs)]

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use age::armor::ArmoredReader;
use rsops_keysource::{BoxFuture, DataKey, KeyEntry, KeyError, KeySource};
use zeroize::Zeroizing;

type Identities = Vec<Box<dyn age::Identity + Send + Sync>>;

/// What loading identities found: the identities, where they came from, and
/// the problems met on the way (reported only if nothing unwraps).
struct Loaded {
    identities: Identities,
    sources: Vec<String>,
    problems: Vec<String>,
}

/// The age key source. Cheap to create; identities load lazily.
#[derive(Default)]
pub struct AgeKeySource {
    loaded: OnceLock<Loaded>,
}

impl AgeKeySource {
    /// A key source that will read identities from the environment on first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn identities(&self, recipient: &str) -> &Loaded {
        self.loaded.get_or_init(|| load_identities(recipient))
    }

    fn unwrap_blocking(&self, entry: &KeyEntry) -> Result<DataKey, KeyError> {
        let enc = entry.encrypted_key()?;
        let recipient = entry.field("recipient").unwrap_or_default();
        let loaded = self.identities(recipient);
        if loaded.identities.is_empty() {
            let mut message = "no age identity found".to_string();
            for problem in &loaded.problems {
                message.push_str("; ");
                message.push_str(problem);
            }
            return Err(KeyError::NoCredentials {
                message,
                hint: Some(
                    "put the age secret key in ~/.config/sops/age/keys.txt, or set \
                     SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or SOPS_AGE_KEY_CMD"
                        .into(),
                ),
            });
        }
        let decryptor =
            age::Decryptor::new_buffered(ArmoredReader::new(enc.as_bytes())).map_err(|e| {
                KeyError::CorruptEntry {
                    message: format!("the age-encrypted data key is malformed: {e}"),
                }
            })?;
        let mut reader = match decryptor.decrypt(
            loaded
                .identities
                .iter()
                .map(|i| i.as_ref() as &dyn age::Identity),
        ) {
            Ok(reader) => reader,
            Err(age::DecryptError::NoMatchingKeys) => {
                return Err(KeyError::NoCredentials {
                    message: format!(
                        "none of the {} age identities found ({}) matches",
                        loaded.identities.len(),
                        loaded.sources.join(", ")
                    ),
                    hint: Some(format!(
                        "add the secret key of {recipient} to one of those places"
                    )),
                })
            }
            Err(e) => {
                return Err(KeyError::CorruptEntry {
                    message: format!("could not decrypt the age-encrypted data key: {e}"),
                })
            }
        };
        let mut key = Zeroizing::new(Vec::with_capacity(32));
        reader
            .read_to_end(&mut key)
            .map_err(|e| KeyError::CorruptEntry {
                message: format!("the age-encrypted data key is damaged: {e}"),
            })?;
        Ok(DataKey::new(std::mem::take(&mut *key)))
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
        Box::pin(async move { self.unwrap_blocking(entry) })
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

fn load_identities(recipient: &str) -> Loaded {
    let mut loaded = Loaded {
        identities: Vec::new(),
        sources: Vec::new(),
        problems: Vec::new(),
    };
    if let Some(path) = std::env::var_os("SOPS_AGE_SSH_PRIVATE_KEY_FILE") {
        load_ssh_file(
            &mut loaded,
            Path::new(&path),
            "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
        );
    }
    if let Some(home) = home_dir() {
        for name in ["id_ed25519", "id_rsa"] {
            let path = home.join(".ssh").join(name);
            if path.exists() {
                let label = format!("~/.ssh/{name}");
                load_ssh_file(&mut loaded, &path, &label);
            }
        }
    }
    if let Ok(keys) = std::env::var("SOPS_AGE_KEY") {
        // The reference allows several keys on one line, separated by spaces.
        let keys = Zeroizing::new(keys.split_whitespace().collect::<Vec<_>>().join("\n"));
        add_identity_file(&mut loaded, keys.as_bytes(), "SOPS_AGE_KEY");
    }
    if let Some(path) = std::env::var_os("SOPS_AGE_KEY_FILE") {
        match std::fs::read(&path) {
            Ok(bytes) => {
                add_identity_file(&mut loaded, &Zeroizing::new(bytes), "SOPS_AGE_KEY_FILE")
            }
            Err(e) => loaded.problems.push(format!(
                "cannot read SOPS_AGE_KEY_FILE {}: {e}",
                Path::new(&path).display()
            )),
        }
    }
    if let Ok(cmd) = std::env::var("SOPS_AGE_KEY_CMD") {
        match run_key_command(&cmd, recipient) {
            Ok(out) => add_identity_file(&mut loaded, &out, "SOPS_AGE_KEY_CMD"),
            Err(problem) => loaded.problems.push(problem),
        }
    }
    if let Some(dir) = user_config_dir() {
        let path = dir.join("sops").join("age").join("keys.txt");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let label = path.display().to_string();
                add_identity_file(&mut loaded, &Zeroizing::new(bytes), &label)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => loaded
                .problems
                .push(format!("cannot read {}: {e}", path.display())),
        }
    }
    loaded
}

fn add_identity_file(loaded: &mut Loaded, bytes: &[u8], label: &str) {
    let parsed = age::IdentityFile::from_buffer(bytes)
        .map_err(|e| e.to_string())
        .and_then(|file| file.into_identities().map_err(|e| e.to_string()));
    match parsed {
        Ok(identities) if identities.is_empty() => {}
        Ok(identities) => {
            loaded.identities.extend(identities);
            loaded.sources.push(label.to_string());
        }
        Err(e) => loaded.problems.push(format!("{label}: {e}")),
    }
}

fn load_ssh_file(loaded: &mut Loaded, path: &Path, label: &str) {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            loaded.problems.push(format!("cannot read {label}: {e}"));
            return;
        }
    };
    let filename = Some(path.display().to_string());
    match age::ssh::Identity::from_buffer(BufReader::new(file), filename) {
        Ok(age::ssh::Identity::Unencrypted(key)) => {
            loaded
                .identities
                .push(Box::new(age::ssh::Identity::Unencrypted(key)));
            loaded.sources.push(label.to_string());
        }
        Ok(age::ssh::Identity::Encrypted(_)) => loaded.problems.push(format!(
            "{label} is passphrase-protected, which is not supported (as in sops)"
        )),
        Ok(_) => loaded
            .problems
            .push(format!("{label} is not a key type age supports")),
        Err(e) => loaded.problems.push(format!("{label}: {e}")),
    }
}

/// Runs `SOPS_AGE_KEY_CMD` (split like a shell would, not through a shell,
/// as the reference does) and returns its standard output.
fn run_key_command(cmd: &str, recipient: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let words = shlex::split(cmd).filter(|w| !w.is_empty());
    let Some(words) = words else {
        return Err("SOPS_AGE_KEY_CMD cannot be parsed as a command".into());
    };
    let output = Command::new(&words[0])
        .args(&words[1..])
        .env("SOPS_AGE_RECIPIENT", recipient)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("SOPS_AGE_KEY_CMD `{}` could not start: {e}", words[0]))?;
    if !output.status.success() {
        return Err(format!(
            "SOPS_AGE_KEY_CMD `{}` failed ({})",
            words[0], output.status
        ));
    }
    Ok(Zeroizing::new(output.stdout))
}
