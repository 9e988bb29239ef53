//! `.sops.yaml`, read as sops 3.13 reads it (`config/config.go` in getsops/sops).
//!
//! [`Config::find`] locates the file (`--config` / `SOPS_CONFIG`, else
//! `.sops.yaml` in the working directory or up to 100 parents), [`Config::load`]
//! parses it, and [`Config::rule_for`] picks the creation rule for a file and
//! resolves its keys, selection rule, Shamir threshold and `mac_only_encrypted`.
//!
//! Like the reference, unknown keys are ignored, type errors anywhere in the
//! file fail the load, and everything else (a rule's `path_regex`, its key
//! lists, its selection keys) is only checked for the rules actually reached
//! while choosing, and for the chosen one.

mod parse;
mod regex;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::metadata::CryptRule;
use crate::tree::Value;

pub use self::regex::go_regex;

/// The config file's name.
pub const CONFIG_FILE_NAME: &str = ".sops.yaml";
/// A name the reference notices only to warn that it is ignored.
pub const ALTERNATE_CONFIG_NAME: &str = ".sops.yml";
/// How many directories the search visits (the start and its parents).
pub const MAX_DEPTH: usize = 100;

/// What the search for a config file found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The config file, as the search spelled it (relative when the start is).
    pub path: Option<PathBuf>,
    /// The reference's warning about an ignored `.sops.yml`, if one was seen
    /// before (or instead of) a `.sops.yaml`.
    pub warning: Option<String>,
}

/// Searches `start` and its parents (up to [`MAX_DEPTH`] directories) for
/// `.sops.yaml`, as the reference's `LookupConfigFile` does: the paths are
/// built by appending `..`, so a relative start gives relative paths.
/// A `.sops.yml` is never used; the first one seen is named in a warning.
pub fn lookup(start: &Path) -> Lookup {
    let mut dir = start.to_path_buf();
    let mut alternate: Option<PathBuf> = None;
    for _ in 0..distinct_steps(start) {
        let candidate = join_clean(&dir, CONFIG_FILE_NAME);
        if std::fs::metadata(&candidate).is_ok() {
            let warning = alternate.map(|alt| {
                format!(
                    "ignoring {:?} when searching for config file; the config file must be called {:?}; using {:?} instead",
                    alt.display().to_string(),
                    CONFIG_FILE_NAME,
                    candidate.display().to_string()
                )
            });
            return Lookup {
                path: Some(candidate),
                warning,
            };
        }
        if alternate.is_none() {
            let alt = join_clean(&dir, ALTERNATE_CONFIG_NAME);
            if std::fs::metadata(&alt).is_ok() {
                alternate = Some(alt);
            }
        }
        dir = join_clean(&dir, "..");
    }
    Lookup {
        path: None,
        warning: alternate.map(|alt| {
            format!(
                "ignoring {:?} when searching for config file; the config file must be called {:?}",
                alt.display().to_string(),
                CONFIG_FILE_NAME
            )
        }),
    }
}

/// How many of the search's [`MAX_DEPTH`] paths can name different
/// directories: each step drops a named component of `start` or, once
/// none is left, climbs from the working directory, and from the root on
/// every further path names the root again. Checking those again (up to
/// 200 `stat` calls of paths growing to 300 characters) could only find
/// what the root's check found, so the search stops there.
fn distinct_steps(start: &Path) -> usize {
    let named = |path: &Path| {
        path.components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count()
    };
    let climbs = if start.is_absolute() {
        0
    } else {
        match std::env::current_dir() {
            Ok(cwd) => named(&cwd),
            Err(_) => return MAX_DEPTH,
        }
    };
    (named(&clean(start)) + climbs + 1).min(MAX_DEPTH)
}

/// Go's `path.Join`: joins and cleans lexically (`./x` → `x`, `a/..` → `.`,
/// leading `..` kept).
fn join_clean(dir: &Path, name: &str) -> PathBuf {
    clean(&dir.join(name))
}

/// Go's `path.Clean`, on components.
fn clean(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// Go's `filepath.Abs`: joined to the working directory if relative, then cleaned.
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        clean(path)
    } else {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        clean(&cwd.join(path))
    }
}

/// A `.sops.yaml` that failed to load or to give a rule. Its message names the
/// file, where in it (`creation_rules[2]`) and the key; never a secret.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The config file.
    pub path: PathBuf,
    /// Where in the file: `creation_rules[2]`, `stores.json`,
    /// `creation_rules[0].key_groups[1].kms[0]`; empty for the whole file.
    pub at: String,
    /// What is wrong.
    #[source]
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    /// The message without the file's name: `creation_rules[2]: …`.
    pub fn detail(&self) -> String {
        if self.at.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}: {}", self.at, self.kind)
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.detail())
    }
}

/// What is wrong with a `.sops.yaml`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file cannot be read.
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    /// The file is not YAML.
    #[error("not valid YAML: {0}")]
    Yaml(String),
    /// A key holds the wrong type of value.
    #[error("`{key}` must be {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// What it must hold.
        expected: &'static str,
    },
    /// A regular expression does not compile.
    #[error("`{key}` is not a valid regular expression: {message}")]
    BadRegex {
        /// The key.
        key: String,
        /// The compiler's complaint.
        message: String,
    },
    /// A rule sets more than one of the selection keys.
    #[error(
        "cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, \
         unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex for the same rule"
    )]
    SeveralSelectionRules,
    /// A flat `azure_keyvault` entry is not a key URL.
    #[error(
        "`{key}`: could not parse {url:?} as an Azure Key Vault key URL \
         (https://VAULT/keys/KEY[/VERSION])"
    )]
    BadAzureUrl {
        /// The key.
        key: String,
        /// The entry.
        url: String,
    },
    /// The file has creation rules but none matches the file.
    #[error("no matching creation rules found")]
    NoMatchingRule,
}

/// One key a rule encrypts the data key to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySpec {
    /// An age recipient (`age1…`, an SSH public key, a plugin recipient), trimmed,
    /// not yet parsed.
    AgeRecipient(String),
    /// A PGP fingerprint, spaces removed.
    Pgp(String),
    /// An AWS KMS key.
    Kms {
        /// The key's ARN.
        arn: String,
        /// The role to assume, if any.
        role: Option<String>,
        /// The encryption context (empty when none).
        context: BTreeMap<String, String>,
        /// The AWS profile, if any.
        profile: Option<String>,
    },
    /// A GCP KMS resource ID, spaces removed.
    GcpKms(String),
    /// An Azure Key Vault key.
    AzureKv {
        /// `https://NAME.vault.azure.net`.
        vault_url: String,
        /// The key's name.
        key: String,
        /// The key's version; `None` means the latest, which the reference
        /// asks the vault for when encrypting.
        version: Option<String>,
    },
    /// A HashiCorp Vault transit key URI (`https://vault:8200/v1/transit/keys/name`),
    /// not yet parsed.
    HcVault(String),
    /// A HuaweiCloud KMS key ID (`region:key-id`), which rsops has no backend for.
    HcKms(String),
}

impl KeySpec {
    /// What the reference's `deduplicateKeygroup` compares: the key's type and
    /// its `ToString()` (an ARN alone for KMS, so a second entry with the same
    /// ARN and another role is dropped).
    fn identity(&self) -> (u8, String) {
        match self {
            KeySpec::AgeRecipient(r) => (0, r.clone()),
            KeySpec::Pgp(f) => (1, f.clone()),
            KeySpec::Kms { arn, .. } => (2, arn.clone()),
            KeySpec::GcpKms(r) => (3, r.clone()),
            KeySpec::AzureKv {
                vault_url,
                key,
                version,
            } => (
                4,
                format!(
                    "{vault_url}/keys/{key}/{}",
                    version.as_deref().unwrap_or_default()
                ),
            ),
            KeySpec::HcVault(u) => (5, u.clone()),
            KeySpec::HcKms(k) => (6, k.clone()),
        }
    }
}

/// A key group: every key in it wraps the same data key (or Shamir share).
pub type KeyGroup = Vec<KeySpec>;

/// The creation rule chosen for a file, resolved.
#[derive(Debug, Clone)]
pub struct CreationRule {
    /// The rule's position in `creation_rules`.
    pub index: usize,
    /// The key groups: from `key_groups` when the rule has any (each
    /// deduplicated as the reference does), else one group of the flat keys.
    /// A group may be empty; the reference fails later, when making the data key.
    pub key_groups: Vec<KeyGroup>,
    /// `shamir_threshold`; 0 when unset (the reference then uses every group).
    pub shamir_threshold: usize,
    /// The selection key the rule sets, if any (flags and defaults apply otherwise).
    pub crypt_rule: Option<CryptRule>,
    /// `mac_only_encrypted`.
    pub mac_only_encrypted: bool,
}

/// `stores.*.indent`, as written (`None` when absent or null).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stores {
    /// `stores.yaml.indent`.
    pub yaml_indent: Option<i64>,
    /// `stores.json.indent`.
    pub json_indent: Option<i64>,
    /// `stores.json_binary.indent`.
    pub json_binary_indent: Option<i64>,
}

/// A loaded `.sops.yaml`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file, as it was found or named.
    pub path: PathBuf,
    /// `None` when the file has no `creation_rules` (absent or null): the
    /// reference then behaves as if there were no config at all.
    rules: Option<Vec<parse::RawRule>>,
    /// The store settings.
    pub stores: Stores,
}

impl Config {
    /// Reads and parses the config at `path`.
    pub fn load(path: impl Into<PathBuf>) -> Result<Config, ConfigError> {
        let path = path.into();
        let bytes = std::fs::read(&path).map_err(|e| ConfigError {
            path: path.clone(),
            at: String::new(),
            kind: ConfigErrorKind::Read(e),
        })?;
        Config::parse(path, &bytes)
    }

    /// Parses `bytes` as the config at `path`.
    pub fn parse(path: impl Into<PathBuf>, bytes: &[u8]) -> Result<Config, ConfigError> {
        let path = path.into();
        match parse::config(bytes) {
            Ok((rules, stores)) => Ok(Config {
                path,
                rules,
                stores,
            }),
            Err((at, kind)) => Err(ConfigError { path, at, kind }),
        }
    }

    /// The config the reference would use: `explicit` (`--config` /
    /// `SOPS_CONFIG`) if given, which must load; else the result of [`lookup`]
    /// from the working directory, `None` when there is none. The lookup's
    /// warning, if any, is returned for the caller to print.
    pub fn find(explicit: Option<&Path>) -> Result<(Option<Config>, Option<String>), ConfigError> {
        if let Some(path) = explicit {
            return Ok((Some(Config::load(path)?), None));
        }
        let found = lookup(Path::new("."));
        match found.path {
            Some(path) => Ok((Some(Config::load(path)?), found.warning)),
            None => Ok((None, found.warning)),
        }
    }

    /// Whether the file has `creation_rules` at all.
    pub fn has_creation_rules(&self) -> bool {
        self.rules.is_some()
    }

    /// The rule for `file` (made absolute against the working directory if
    /// relative, as the reference does with its argument): the first whose
    /// `path_regex` matches the file's path relative to the config's directory
    /// (the absolute path if the file is outside it); a rule without
    /// `path_regex` matches anything. `Ok(None)` when the file has no
    /// `creation_rules`.
    pub fn rule_for(&self, file: &Path) -> Result<Option<CreationRule>, ConfigError> {
        let Some(rules) = &self.rules else {
            return Ok(None);
        };
        let relative = self.relative_path(file);
        let err = |at: String, kind| ConfigError {
            path: self.path.clone(),
            at,
            kind,
        };
        for rule in rules {
            let at = format!("creation_rules[{}]", rule.index);
            if let Some(pattern) = rule.path_regex.as_deref().filter(|p| !p.is_empty()) {
                let re = go_regex(pattern).map_err(|e| {
                    err(
                        at.clone(),
                        ConfigErrorKind::BadRegex {
                            key: "path_regex".into(),
                            message: e.to_string(),
                        },
                    )
                })?;
                if !re.is_match(&relative) {
                    continue;
                }
            }
            return rule.resolve().map(Some).map_err(|(sub, kind)| {
                err(
                    if sub.is_empty() {
                        at
                    } else {
                        format!("{at}.{sub}")
                    },
                    kind,
                )
            });
        }
        Err(err(String::new(), ConfigErrorKind::NoMatchingRule))
    }

    /// `strings.TrimPrefix(abs(file), abs(dir(config)) + "/")`.
    fn relative_path(&self, file: &Path) -> String {
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty());
        let dir = absolute(dir.unwrap_or(Path::new(".")));
        let file = absolute(file).to_string_lossy().into_owned();
        let prefix = format!("{}/", dir.to_string_lossy());
        match file.strip_prefix(&prefix) {
            Some(rest) => rest.to_owned(),
            None => file,
        }
    }
}

/// Text of a scalar as yaml.v3 puts it into a Go `string` field.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Str(s) | Value::Time(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::Float(f) => Some(crate::gofmt::format_float(
            *f,
            crate::gofmt::FloatFormat::General,
        )),
        Value::Bool(b) => Some(b.to_string()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Null => Some(String::new()),
        Value::Map(_) | Value::List(_) | Value::Comment(_) => None,
    }
}
