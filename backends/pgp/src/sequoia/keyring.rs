//! Secret keys rsops reads itself: the files of `RSOPS_PGP_KEY_FILE` and the
//! legacy `secring.gpg`, parsed once per run with Sequoia.

use std::path::Path;

use sequoia_openpgp::cert::CertParser;
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::Cert;
use zeroize::Zeroizing;

use crate::KEY_FILE_ENV;

/// Certificates with secret key material, and what was searched.
#[derive(Default)]
pub(crate) struct Keyring {
    /// Certificates that hold at least one secret key.
    pub(crate) certs: Vec<Cert>,
    /// Where keys were looked for (for error messages).
    pub(crate) sources: Vec<String>,
    /// Files that could not be read or parsed.
    pub(crate) problems: Vec<String>,
}

impl Keyring {
    /// Reads every configured key file and `secring.gpg` under `gnupg_home`.
    ///
    /// A named key file that cannot be read is a problem to report; a
    /// missing `secring.gpg` is the normal case since GnuPG 2.1.
    pub(crate) fn load(key_files: &[std::path::PathBuf], gnupg_home: Option<&Path>) -> Keyring {
        let mut keyring = Keyring::default();
        for path in key_files {
            let label = format!("{KEY_FILE_ENV} file {}", path.display());
            match std::fs::read(path) {
                Ok(bytes) => keyring.add(&Zeroizing::new(bytes), label),
                Err(e) => keyring.problems.push(format!("cannot read {label}: {e}")),
            }
        }
        if let Some(home) = gnupg_home {
            let path = home.join("secring.gpg");
            match std::fs::read(&path) {
                Ok(bytes) => keyring.add(&Zeroizing::new(bytes), path.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => keyring
                    .problems
                    .push(format!("cannot read {}: {e}", path.display())),
            }
        }
        keyring
    }

    /// A keyring that could not be loaded at all.
    pub(crate) fn failed(reason: String) -> Keyring {
        Keyring {
            problems: vec![format!("loading PGP key files failed: {reason}")],
            ..Keyring::default()
        }
    }

    /// True when there is no secret key to try, so Sequoia can be skipped.
    pub(crate) fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Where keys were searched and what went wrong, for error messages.
    pub(crate) fn searched(&self) -> String {
        let mut parts = self.sources.clone();
        parts.extend(self.problems.iter().cloned());
        parts.join("; ")
    }

    /// Adds the secret keys of one armored or binary keyring.
    fn add(&mut self, bytes: &[u8], label: String) {
        let parser = match CertParser::from_bytes(bytes) {
            Ok(parser) => parser,
            Err(e) => {
                self.problems
                    .push(format!("{label} is not an OpenPGP keyring: {e}"));
                return;
            }
        };
        let before = self.certs.len();
        for cert in parser {
            match cert {
                Ok(cert) if cert.is_tsk() => self.certs.push(cert),
                Ok(_) => {}
                Err(e) => self
                    .problems
                    .push(format!("{label}: skipped a damaged key: {e}")),
            }
        }
        if self.certs.len() == before {
            self.problems.push(format!("{label} holds no secret key"));
        } else {
            self.sources.push(label);
        }
    }
}
