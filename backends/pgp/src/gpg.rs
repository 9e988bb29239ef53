//! Decrypting a data key through the `gpg` binary, the only way to keys held
//! by gpg-agent, smartcards and pinentry.
//!
//! gpg runs as the reference runs it (`gpg -d`, message on stdin, inheriting
//! the environment so `GNUPGHOME`, `GPG_TTY` and the agent socket work), plus
//! `--status-fd 2`: gpg's machine-readable status lines classify failures
//! without depending on the user's language.
//!
//! The core gives PGP no deadline (gpg may be waiting for the user at a
//! pinentry or a smartcard); an embedder that does give one gets gpg killed
//! when it passes, rather than an attempt that never ends.

use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;

use rsops_keysource::Deadline;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

mod encrypt;

/// libgpg-error codes (the low 16 bits of a status `ERROR` code).
mod code {
    pub const BAD_PASSPHRASE: u32 = 11;
    pub const NO_SECKEY: u32 = 17;
    pub const NO_PINENTRY: u32 = 85;
    pub const PINENTRY_ERROR: u32 = 86;
    pub const BAD_PIN: u32 = 87;
    pub const CANCELED: u32 = 99;
    pub const CARD_NOT_PRESENT: u32 = 112;
    pub const NOT_CONFIRMED: u32 = 114;
    /// Set on codes that wrap an `errno` (e.g. `ENOTTY` from pinentry).
    pub const SYSTEM_ERROR: u32 = 1 << 15;
}

/// Why gpg did not return the data key.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum GpgError {
    /// The gpg program could not be started.
    #[error("gpg (`{program}`) could not be started: {reason}")]
    Unavailable {
        /// The program that was run.
        program: String,
        /// The operating system's reason.
        reason: String,
    },
    /// gpg could not start or connect to gpg-agent.
    #[error("gpg could not reach gpg-agent ({detail})")]
    AgentUnreachable {
        /// What gpg said.
        detail: String,
    },
    /// Neither gpg-agent nor a smartcard holds the secret key.
    #[error("the secret key of {fp} is not in gpg's keyring (message encrypted to {recipients})")]
    NoSecretKey {
        /// The entry's fingerprint.
        fp: String,
        /// Key IDs the message is encrypted to.
        recipients: String,
    },
    /// The user dismissed the passphrase or PIN prompt.
    #[error("the passphrase prompt for {fp} was cancelled")]
    Cancelled {
        /// The entry's fingerprint.
        fp: String,
    },
    /// The passphrase or PIN given was wrong.
    #[error("wrong passphrase or PIN for the secret key of {fp}")]
    BadPassphrase {
        /// The entry's fingerprint.
        fp: String,
    },
    /// gpg-agent could not show a pinentry to ask for the passphrase.
    #[error("gpg-agent could not ask for the passphrase of {fp} ({detail})")]
    NoPinentry {
        /// The entry's fingerprint.
        fp: String,
        /// What gpg said.
        detail: String,
    },
    /// The smartcard holding the key is not inserted.
    #[error("the smartcard holding the secret key of {fp} is not present")]
    CardNotPresent {
        /// The entry's fingerprint.
        fp: String,
    },
    /// The message is not a PGP message or fails its integrity check.
    #[error("the PGP message of {fp} is damaged: {detail}")]
    Corrupt {
        /// The entry's fingerprint.
        fp: String,
        /// What gpg said.
        detail: String,
    },
    /// Any other failure, with gpg's own words.
    #[error("gpg could not decrypt the data key of {fp}: {detail}")]
    Failed {
        /// The entry's fingerprint.
        fp: String,
        /// What gpg said.
        detail: String,
    },
    /// The attempt's deadline passed before gpg was done; gpg was killed.
    #[error("gpg did not decrypt the data key of {fp} in time: {stage}")]
    TimedOut {
        /// The entry's fingerprint.
        fp: String,
        /// What was still going on.
        stage: &'static str,
    },
}

impl GpgError {
    /// What the user can do, for failures with a remedy of their own (the
    /// key-file side supplies it for a missing gpg or key).
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            GpgError::AgentUnreachable { .. } => {
                Some("start gpg-agent with `gpgconf --launch gpg-agent` and check GNUPGHOME")
            }
            GpgError::Cancelled { .. } => Some("run again and enter the passphrase"),
            GpgError::BadPassphrase { .. } => Some("run again with the right passphrase or PIN"),
            GpgError::NoPinentry { .. } => Some(
                "run `export GPG_TTY=$(tty)`, configure a graphical pinentry, or preset the \
                 passphrase in gpg-agent",
            ),
            GpgError::CardNotPresent { .. } => Some("insert the smartcard and run again"),
            GpgError::TimedOut { .. } => Some(
                "gpg may be waiting for a passphrase, a PIN or a smartcard touch; answer it \
                 sooner or allow the attempt more time",
            ),
            GpgError::Unavailable { .. }
            | GpgError::NoSecretKey { .. }
            | GpgError::Corrupt { .. }
            | GpgError::Failed { .. } => None,
        }
    }
}

/// `work`, unless `deadline` passes first (`None` then, and `work` is
/// dropped). Without a deadline, `work` runs to the end.
async fn by<F: Future>(deadline: Deadline, work: F) -> Option<F::Output> {
    match deadline.remaining() {
        None => Some(work.await),
        Some(left) if left.is_zero() => None,
        Some(left) => tokio::time::timeout(left, work).await.ok(),
    }
}

/// True once `deadline` has passed.
fn passed(deadline: Deadline) -> bool {
    deadline.remaining().is_some_and(|left| left.is_zero())
}

/// The gpg program, run one call at a time.
pub(crate) struct Gpg {
    program: OsString,
    home: Option<PathBuf>,
    /// Held for the whole of a gpg call, so pinentry prompts come one after
    /// another; remembers a failure that would repeat for every entry.
    broken: Mutex<Option<GpgError>>,
}

impl Gpg {
    /// A gpg runner; `home`, when set, is passed as `GNUPGHOME`.
    pub(crate) fn new(program: OsString, home: Option<PathBuf>) -> Self {
        Gpg {
            program,
            home,
            broken: Mutex::new(None),
        }
    }

    /// Decrypts `message` (the entry `fp`'s armored PGP message) by
    /// `deadline`.
    pub(crate) async fn decrypt(
        &self,
        fp: &str,
        message: &str,
        deadline: Deadline,
    ) -> Result<Zeroizing<Vec<u8>>, GpgError> {
        if passed(deadline) {
            return Err(GpgError::TimedOut {
                fp: fp.to_string(),
                stage: "the deadline had passed before gpg could start",
            });
        }
        // Another entry's gpg may hold the lock at a pinentry prompt.
        let mut broken =
            by(deadline, self.broken.lock())
                .await
                .ok_or_else(|| GpgError::TimedOut {
                    fp: fp.to_string(),
                    stage: "another entry's gpg call was still running",
                })?;
        if let Some(error) = broken.as_ref() {
            return Err(error.clone());
        }
        let result = self.run(fp, message, deadline).await;
        if let Err(error @ (GpgError::Unavailable { .. } | GpgError::AgentUnreachable { .. })) =
            &result
        {
            *broken = Some(error.clone());
        }
        result
    }

    /// One `gpg --status-fd 2 -d` call with the message on stdin, killed if
    /// `deadline` passes first.
    async fn run(
        &self,
        fp: &str,
        message: &str,
        deadline: Deadline,
    ) -> Result<Zeroizing<Vec<u8>>, GpgError> {
        let mut command = Command::new(&self.program);
        command
            .args(["--status-fd", "2", "-d"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(home) = &self.home {
            command.env("GNUPGHOME", home);
        }
        let mut child = command.spawn().map_err(|e| GpgError::Unavailable {
            program: self.program.to_string_lossy().into_owned(),
            reason: spawn_reason(&e),
        })?;
        let stdin = child.stdin.take();
        let write = async move {
            if let Some(mut stdin) = stdin {
                // A gpg that exits early closes the pipe; its status says why.
                let _ = stdin.write_all(message.as_bytes()).await;
            }
        };
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let finished = by(deadline, async {
            let (_, plain, diagnostics) = tokio::join!(write, read_all(stdout), read_all(stderr));
            (plain, diagnostics, child.wait().await)
        })
        .await;
        let Some((plain, diagnostics, status)) = finished else {
            // Killed and reaped here rather than left to `kill_on_drop`, so
            // no gpg outlives the attempt even briefly.
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(GpgError::TimedOut {
                fp: fp.to_string(),
                stage: "gpg was stopped at the deadline",
            });
        };
        let diagnostics = Diagnostics::parse(&String::from_utf8_lossy(&diagnostics));
        match status {
            Ok(status) if status.success() && !plain.is_empty() => Ok(plain),
            Ok(status) => Err(diagnostics.classify(fp, &status.to_string())),
            Err(e) => Err(diagnostics.classify(fp, &e.to_string())),
        }
    }
}

/// Reads a child's pipe to the end (an unreadable pipe reads as empty: the
/// exit status and diagnostics then explain the failure). Zeroized, as
/// stdout carries the data key.
async fn read_all<R: AsyncRead + Unpin>(pipe: Option<R>) -> Zeroizing<Vec<u8>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(64));
    if let Some(mut pipe) = pipe {
        if pipe.read_to_end(&mut buf).await.is_err() {
            buf.clear();
        }
    }
    buf
}

/// Why the program could not run, in words for a user.
fn spawn_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "not found".to_string(),
        std::io::ErrorKind::PermissionDenied => "not executable".to_string(),
        _ => error.to_string(),
    }
}

/// What gpg says when it cannot start or reach gpg-agent.
const AGENT_TROUBLE: &[&str] = &[
    "can't connect to the agent",
    "no gpg-agent running",
    "failed to start agent",
];

/// What gpg reported on stderr: status lines and human messages.
#[derive(Debug, Default)]
struct Diagnostics {
    /// Key IDs from `ENC_TO`.
    enc_to: Vec<String>,
    /// `NO_SECKEY` was reported.
    no_seckey: bool,
    /// Error codes from `ERROR` and `FAILURE` lines.
    error_codes: Vec<u32>,
    /// The private-key operation failed with an `errno` (pinentry could not
    /// open a terminal, for instance).
    pkdecrypt_system_error: bool,
    /// `NODATA`, `BADMDC` or `DECRYPTION_FAILED` without a key problem.
    damaged: bool,
    /// gpg said it could not reach the agent.
    agent_unreachable: bool,
    /// gpg's human messages, without the `gpg: ` prefix.
    messages: Vec<String>,
}

impl Diagnostics {
    fn parse(stderr: &str) -> Diagnostics {
        let mut d = Diagnostics::default();
        for line in stderr.lines() {
            match line.strip_prefix("[GNUPG:] ") {
                Some(status) => d.status(status),
                None => d.message(line),
            }
        }
        d
    }

    fn status(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("ENC_TO"), Some(id), _) => self.enc_to.push(id.to_string()),
            (Some("NO_SECKEY"), _, _) => self.no_seckey = true,
            (Some("ERROR" | "FAILURE"), Some(what), Some(code)) => {
                if let Ok(code) = code.parse::<u32>() {
                    let code = code & 0xffff;
                    self.error_codes.push(code);
                    if what == "pkdecrypt_failed" && code & code::SYSTEM_ERROR != 0 {
                        self.pkdecrypt_system_error = true;
                    }
                }
            }
            (Some("NODATA" | "BADMDC" | "UNEXPECTED"), _, _) => self.damaged = true,
            _ => {}
        }
    }

    fn message(&mut self, line: &str) {
        // Indented lines continue "encrypted with …" with the key's user ID,
        // which only repeats what the error already names.
        if line.is_empty() || line.starts_with(char::is_whitespace) {
            return;
        }
        let line = line.strip_prefix("gpg: ").unwrap_or(line);
        if line.starts_with("encrypted with ") {
            return;
        }
        // English only; a localized gpg still yields NO_SECKEY and its words.
        if AGENT_TROUBLE.iter().any(|t| line.contains(t)) {
            self.agent_unreachable = true;
        }
        self.messages.push(line.to_string());
    }

    /// gpg's lines that contain one of `needles`, or all of them if none does.
    fn detail_about(&self, needles: &[&str], exit: &str) -> String {
        let picked: Vec<&str> = self
            .messages
            .iter()
            .map(String::as_str)
            .filter(|m| needles.iter().any(|n| m.contains(n)))
            .collect();
        if picked.is_empty() {
            self.detail(exit)
        } else {
            picked.join("; ")
        }
    }

    /// gpg's own words, or the exit status when it said nothing.
    fn detail(&self, exit: &str) -> String {
        if self.messages.is_empty() {
            format!("gpg exited with {exit} and no message")
        } else {
            self.messages.join("; ")
        }
    }

    fn has_code(&self, wanted: &[u32]) -> bool {
        self.error_codes.iter().any(|c| wanted.contains(c))
    }

    /// The most specific explanation of a failed decryption.
    fn classify(&self, fp: &str, exit: &str) -> GpgError {
        let fp = fp.to_string();
        if self.has_code(&[code::CANCELED, code::NOT_CONFIRMED]) {
            GpgError::Cancelled { fp }
        } else if self.has_code(&[code::BAD_PASSPHRASE, code::BAD_PIN]) {
            GpgError::BadPassphrase { fp }
        } else if self.has_code(&[code::CARD_NOT_PRESENT]) {
            GpgError::CardNotPresent { fp }
        } else if self.has_code(&[code::NO_PINENTRY, code::PINENTRY_ERROR])
            || self.pkdecrypt_system_error
        {
            let detail = self.detail_about(&["public key decryption failed"], exit);
            GpgError::NoPinentry { fp, detail }
        } else if self.agent_unreachable {
            let detail = self.detail_about(AGENT_TROUBLE, exit);
            GpgError::AgentUnreachable { detail }
        } else if self.no_seckey || self.has_code(&[code::NO_SECKEY]) {
            GpgError::NoSecretKey {
                fp,
                recipients: self.recipients(),
            }
        } else if self.damaged || self.enc_to.is_empty() {
            let detail = self.detail(exit);
            GpgError::Corrupt { fp, detail }
        } else {
            let detail = self.detail(exit);
            GpgError::Failed { fp, detail }
        }
    }

    fn recipients(&self) -> String {
        if self.enc_to.is_empty() {
            "an unknown key".to_string()
        } else {
            format!("key ID {}", self.enc_to.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(stderr: &str) -> GpgError {
        Diagnostics::parse(stderr).classify("FPR", "exit status: 2")
    }

    #[test]
    fn missing_secret_key() {
        let e = classify(
            "[GNUPG:] ENC_TO 33878AA3ECC611FD 1 0\n[GNUPG:] NO_SECKEY 33878AA3ECC611FD\n\
             [GNUPG:] DECRYPTION_FAILED\ngpg: decryption failed: No secret key\n",
        );
        assert!(
            matches!(&e, GpgError::NoSecretKey { recipients, .. } if recipients == "key ID 33878AA3ECC611FD")
        );
    }

    #[test]
    fn cancelled_pinentry() {
        let e = classify(
            "[GNUPG:] ENC_TO 0B16603D15109ADC 18 0\ngpg: public key decryption failed: Operation cancelled\n\
             [GNUPG:] ERROR pkdecrypt_failed 83886179\n[GNUPG:] DECRYPTION_FAILED\n",
        );
        assert!(matches!(e, GpgError::Cancelled { .. }));
    }

    #[test]
    fn wrong_passphrase() {
        let e = classify(
            "[GNUPG:] ENC_TO 0B16603D15109ADC 18 0\n[GNUPG:] ERROR pkdecrypt_failed 67108875\n",
        );
        assert!(matches!(e, GpgError::BadPassphrase { .. }));
    }

    #[test]
    fn pinentry_without_terminal() {
        let e = classify(
            "[GNUPG:] ENC_TO 0B16603D15109ADC 18 0\n\
             gpg: public key decryption failed: Inappropriate ioctl for device\n\
             [GNUPG:] ERROR pkdecrypt_failed 83918950\n",
        );
        assert!(matches!(&e, GpgError::NoPinentry { detail, .. }
                if detail == "public key decryption failed: Inappropriate ioctl for device"));
    }

    #[test]
    fn agent_not_running() {
        let e = classify(
            "[GNUPG:] ENC_TO 33878AA3ECC611FD 1 0\ngpg: no gpg-agent running in this session\n\
             gpg: encrypted with 2048-bit RSA key, ID 33878AA3ECC611FD, created 2026-11-26\n      \
             \"rsa test <rsa@example.com>\"\n[GNUPG:] NO_SECKEY 33878AA3ECC611FD\n\
             gpg: decryption failed: No secret key\n",
        );
        assert!(
            matches!(&e, GpgError::AgentUnreachable { detail } if detail == "no gpg-agent running in this session")
        );
    }

    #[test]
    fn not_a_message() {
        let e = classify("gpg: no valid OpenPGP data found.\n[GNUPG:] NODATA 1\n");
        assert!(
            matches!(&e, GpgError::Corrupt { detail, .. } if detail.contains("no valid OpenPGP data"))
        );
    }

    #[test]
    fn card_not_present() {
        let e = classify(
            "[GNUPG:] ENC_TO 0B16603D15109ADC 18 0\n[GNUPG:] ERROR pkdecrypt_failed 100663408\n",
        );
        assert!(matches!(e, GpgError::CardNotPresent { .. }));
    }

    #[test]
    fn unreadable_input_is_not_a_pinentry_problem() {
        let e = classify("gpg: read error: Is a directory\n[GNUPG:] FAILURE decrypt 33587281\n");
        assert!(matches!(e, GpgError::Corrupt { .. }));
    }

    #[tokio::test]
    async fn a_passed_deadline_starts_no_gpg() {
        // Started, this gpg would be "not found".
        let gpg = Gpg::new("/nonexistent/gpg".into(), None);
        let past = Deadline::after(std::time::Duration::ZERO);
        let e = gpg.decrypt("FPR", "message", past).await;
        assert!(
            matches!(&e, Err(GpgError::TimedOut { stage, .. }) if stage.contains("before gpg could start")),
            "{e:?}"
        );
    }

    #[test]
    fn silent_failure_names_exit_status() {
        let e = classify("[GNUPG:] ENC_TO 0B16603D15109ADC 18 0\n");
        assert!(matches!(&e, GpgError::Failed { detail, .. } if detail.contains("exit status: 2")));
    }
}
