//! What the environment says about Vault: token, namespace, trust roots and
//! allow-list, read the way the reference's Vault client
//! reads them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::{ALLOWLIST_ENV, TOKEN_FILE};

/// How long one decrypt may take in all when the caller gives no deadline
/// ([`Deadline::NONE`](rsops_keysource::Deadline::NONE)): the default of
/// rsops' `--key-timeout`. With a deadline, the deadline alone bounds the
/// request (connect included), so a slow server gets all the time the user
/// allowed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A Vault token. Wiped from memory when dropped, never printed, and not
/// `Clone`: every copy is a deliberate, wiped `Token::new`.
pub struct Token(Zeroizing<String>);

impl Token {
    /// Wraps a token, taking ownership so no copy is left behind.
    pub fn new(token: String) -> Self {
        Token(Zeroizing::new(token))
    }

    /// The token text.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

/// The Vault settings, as the environment or an embedding program gives
/// them. Nothing is checked or read from disk until an `hc_vault` entry is
/// actually unwrapped, so users without Vault entries never see a Vault
/// configuration error.
#[derive(Debug)]
pub struct VaultConfig {
    /// `VAULT_ADDR`: only used for the default allow-list. The entry's own
    /// `vault_address` is where requests go, as in the reference.
    pub vault_addr: Option<String>,
    /// `VAULT_TOKEN`; when unset, the token is read from [`Self::token_file`].
    pub token: Option<Token>,
    /// The token file, `~/.vault-token`, written by `vault login`.
    pub token_file: Option<PathBuf>,
    /// `VAULT_NAMESPACE` (Vault Enterprise / OpenBao namespaces).
    pub namespace: Option<String>,
    /// `VAULT_CACERT`: a PEM file of the CAs to trust instead of the system's.
    pub ca_cert: Option<PathBuf>,
    /// `VAULT_CAPATH`: a directory of PEM files, used when `ca_cert` is unset.
    pub ca_path: Option<PathBuf>,
    /// `VAULT_SKIP_VERIFY` as written (`1`, `true`, `0`, `false`, …).
    pub skip_verify: Option<String>,
    /// `SOPS_HC_VAULT_ALLOWLIST` as written.
    pub allowlist: Option<String>,
    /// The bound of a decrypt without a deadline; see [`REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
}

impl Default for VaultConfig {
    /// No token, no allowed address, the default timeout: a starting point
    /// for embedding programs that configure everything themselves.
    fn default() -> Self {
        VaultConfig {
            vault_addr: None,
            token: None,
            token_file: None,
            namespace: None,
            ca_cert: None,
            ca_path: None,
            skip_verify: None,
            allowlist: None,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

impl VaultConfig {
    /// The configuration the environment describes. Empty variables count
    /// as unset, as in the reference.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        VaultConfig {
            vault_addr: var("VAULT_ADDR"),
            token: var("VAULT_TOKEN").map(Token::new),
            token_file: path("HOME").map(|home| home.join(TOKEN_FILE)),
            namespace: var("VAULT_NAMESPACE"),
            ca_cert: path("VAULT_CACERT"),
            ca_path: path("VAULT_CAPATH"),
            skip_verify: var("VAULT_SKIP_VERIFY"),
            allowlist: var(ALLOWLIST_ENV),
            ..VaultConfig::default()
        }
    }

    /// The token: `VAULT_TOKEN`, else the token file (trimmed). A missing
    /// file means no token; an unreadable one is an error, as in the
    /// reference.
    pub(crate) fn resolve_token(&self) -> Result<Token, VaultError> {
        if let Some(token) = &self.token {
            return checked_token(Token::new(token.expose().to_string()), "VAULT_TOKEN");
        }
        let Some(file) = &self.token_file else {
            return Err(VaultError::NoToken(
                "HOME is unset, so there is no ~/.vault-token".into(),
            ));
        };
        match std::fs::read_to_string(file) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    return Err(VaultError::NoToken(format!("{} is empty", file.display())));
                }
                checked_token(Token::new(trimmed.to_string()), &file.display().to_string())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(VaultError::NoToken(
                format!("VAULT_TOKEN is unset and {} does not exist", file.display()),
            )),
            Err(e) => Err(VaultError::BadToken(format!(
                "cannot read the Vault token from {}: {e}",
                file.display()
            ))),
        }
    }

    /// `VAULT_NAMESPACE`, checked to be sendable as a header.
    pub(crate) fn checked_namespace(&self) -> Result<Option<String>, VaultError> {
        match &self.namespace {
            Some(ns) if !header_safe(ns) => Err(VaultError::Config(
                "VAULT_NAMESPACE holds control or non-ASCII characters".into(),
            )),
            other => Ok(other.clone()),
        }
    }

    /// `VAULT_SKIP_VERIFY`, parsed as Go's `strconv.ParseBool` parses it.
    pub(crate) fn skip_verify(&self) -> Result<bool, VaultError> {
        match self.skip_verify.as_deref() {
            None => Ok(false),
            Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
            Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
            Some(other) => Err(VaultError::Config(format!(
                "VAULT_SKIP_VERIFY is {other:?}; use true or false"
            ))),
        }
    }

    /// The CA certificates to trust instead of the system's, if any:
    /// `VAULT_CACERT` wins over `VAULT_CAPATH`, as in the reference, and
    /// every file must hold at least one PEM certificate.
    pub(crate) fn ca_certificates(&self) -> Result<Option<Vec<reqwest::Certificate>>, VaultError> {
        if let Some(file) = &self.ca_cert {
            return pem_file(file, "VAULT_CACERT").map(Some);
        }
        let Some(dir) = &self.ca_path else {
            return Ok(None);
        };
        let mut files = Vec::new();
        collect_files(dir, &mut files).map_err(|e| {
            VaultError::Config(format!("cannot read VAULT_CAPATH {}: {e}", dir.display()))
        })?;
        files.sort();
        let mut certs = Vec::new();
        for file in &files {
            certs.extend(pem_file(file, "VAULT_CAPATH")?);
        }
        if certs.is_empty() {
            return Err(VaultError::Config(format!(
                "VAULT_CAPATH {} holds no certificate",
                dir.display()
            )));
        }
        Ok(Some(certs))
    }
}

/// Refuses tokens that cannot be sent as an HTTP header (a stray newline or
/// a pasted non-ASCII character) without ever printing them.
fn checked_token(token: Token, origin: &str) -> Result<Token, VaultError> {
    if header_safe(token.expose()) {
        Ok(token)
    } else {
        Err(VaultError::BadToken(format!(
            "the Vault token in {origin} holds control or non-ASCII characters"
        )))
    }
}

fn header_safe(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn pem_file(file: &Path, variable: &str) -> Result<Vec<reqwest::Certificate>, VaultError> {
    let problem =
        |why: String| VaultError::Config(format!("{variable}: {}: {why}", file.display()));
    let bytes = std::fs::read(file).map_err(|e| problem(e.to_string()))?;
    let certs =
        reqwest::Certificate::from_pem_bundle(&bytes).map_err(|e| problem(e.to_string()))?;
    if certs.is_empty() {
        return Err(problem("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// Every file below `dir`, as Go's `filepath.Walk` in the reference visits
/// them (symlinks to files are followed, symlinks to directories are not).
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let kind = item.file_type()?;
        if kind.is_dir() {
            collect_files(&item.path(), out)?;
        } else if kind.is_file() || (kind.is_symlink() && item.path().is_file()) {
            out.push(item.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(contents: &str) -> (tempfile::TempDir, VaultConfig) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(TOKEN_FILE);
        std::fs::write(&file, contents).unwrap();
        let config = VaultConfig {
            token_file: Some(file),
            ..VaultConfig::default()
        };
        (dir, config)
    }

    #[test]
    fn environment_token_wins_over_the_file() {
        let (_dir, mut config) = with_file("from-file\n");
        assert_eq!(config.resolve_token().unwrap().expose(), "from-file");
        config.token = Some(Token::new("from-env".into()));
        assert_eq!(config.resolve_token().unwrap().expose(), "from-env");
    }

    #[test]
    fn missing_empty_and_unusable_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let config = VaultConfig {
            token_file: Some(dir.path().join(TOKEN_FILE)),
            ..VaultConfig::default()
        };
        assert!(matches!(
            config.resolve_token(),
            Err(VaultError::NoToken(_))
        ));
        let (_d, config) = with_file("  \n");
        assert!(matches!(
            config.resolve_token(),
            Err(VaultError::NoToken(_))
        ));
        let (_d, config) = with_file("s.abc\u{7}def");
        let err = config.resolve_token().unwrap_err();
        assert!(!err.to_string().contains("abc"), "{err}");
        assert!(matches!(
            VaultConfig::default().resolve_token(),
            Err(VaultError::NoToken(_))
        ));
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let config = VaultConfig {
            token: Some(Token::new("hvs.secret".into())),
            ..VaultConfig::default()
        };
        assert!(!format!("{config:?}").contains("hvs.secret"));
    }

    #[test]
    fn skip_verify_parses_like_go() {
        let parse = |v: &str| {
            VaultConfig {
                skip_verify: Some(v.into()),
                ..VaultConfig::default()
            }
            .skip_verify()
        };
        assert!(parse("1").unwrap() && parse("true").unwrap() && parse("TRUE").unwrap());
        assert!(!parse("0").unwrap() && !parse("False").unwrap());
        assert!(parse("yes").is_err());
        assert!(!VaultConfig::default().skip_verify().unwrap());
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "not a certificate").unwrap();
        let config = VaultConfig {
            ca_cert: Some(file),
            ..VaultConfig::default()
        };
        let err = config.ca_certificates().unwrap_err().to_string();
        assert!(
            err.contains("VAULT_CACERT") && err.contains("ca.pem"),
            "{err}"
        );
        let config = VaultConfig {
            ca_path: Some(dir.path().join("missing")),
            ..VaultConfig::default()
        };
        assert!(config.ca_certificates().is_err());
        assert!(VaultConfig::default().ca_certificates().unwrap().is_none());
    }

    #[test]
    fn namespaces_must_be_sendable() {
        let config = VaultConfig {
            namespace: Some("team\nx".into()),
            ..VaultConfig::default()
        };
        assert!(config.checked_namespace().is_err());
    }
}
