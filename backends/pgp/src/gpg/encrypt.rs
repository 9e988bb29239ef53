//! Encrypting a data key for one fingerprint through the `gpg` binary, as
//! sops 3.11's `encryptWithGnuPG` runs it:
//! `gpg --no-default-recipient --yes --encrypt -a -r FP --trusted-key ID
//! --no-encrypt-to` (ID: the fingerprint's last 16 hex digits, with a
//! trailing `!` kept), the secret on stdin, the armored message taken from
//! stdout with surrounding whitespace trimmed. `--status-fd 2` is added so
//! failures are classified from gpg's status lines.
//!
//! (sops first tries its built-in Go OpenPGP code on `~/.gnupg/pubring.gpg`,
//! which GnuPG ≥ 2.1 no longer writes; its output is the same armored
//! message shape, so gpg alone serves.)

use std::process::Stdio;

use rsops_keysource::{Deadline, KeyError};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{by, passed, read_all, spawn_reason, Gpg, AGENT_TROUBLE};

/// `INV_RECP` reason codes (gpg's `doc/DETAILS`).
fn invalid_recipient_reason(code: &str) -> &'static str {
    match code {
        "1" => "not found",
        "2" => "ambiguous specification",
        "3" => "wrong key usage (no encryption subkey)",
        "4" => "key revoked",
        "5" => "key expired",
        "8" => "policy mismatch",
        "10" => "key not trusted",
        "13" => "no encryption key",
        _ => "unusable",
    }
}

/// The short key ID sops passes as `--trusted-key` (`shortenFingerprint`).
pub(crate) fn short_id(fp: &str) -> &str {
    let mut offset = fp.len().saturating_sub(16);
    if fp.ends_with('!') {
        offset = offset.saturating_sub(1);
    }
    fp.get(offset..).unwrap_or(fp)
}

impl Gpg {
    /// Encrypts `secret` to `fp` by `deadline`, returning the armored
    /// message as sops stores it (trimmed).
    pub(crate) async fn encrypt(
        &self,
        fp: &str,
        secret: &[u8],
        deadline: Deadline,
    ) -> Result<String, KeyError> {
        if passed(deadline) {
            return Err(timed_out(
                fp,
                "the deadline had passed before gpg could start",
            ));
        }
        let _serial = by(deadline, self.broken.lock())
            .await
            .ok_or_else(|| timed_out(fp, "another gpg call was still running"))?;
        let mut command = Command::new(&self.program);
        command
            .args([
                "--status-fd",
                "2",
                "--no-default-recipient",
                "--yes",
                "--encrypt",
                "-a",
                "-r",
                fp,
                "--trusted-key",
                short_id(fp),
                "--no-encrypt-to",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(home) = &self.home {
            command.env("GNUPGHOME", home);
        }
        let program = self.program.to_string_lossy().into_owned();
        let mut child = command.spawn().map_err(|e| {
            KeyError::no_credentials(format!(
                "gpg (`{program}`) could not be started to encrypt for {fp}: {}",
                spawn_reason(&e)
            ))
            .with_hint("install GnuPG, or name the gpg program in SOPS_GPG_EXEC")
        })?;
        let stdin = child.stdin.take();
        let write = async move {
            if let Some(mut stdin) = stdin {
                // A gpg that exits early closes the pipe; its status says why.
                let _ = stdin.write_all(secret).await;
            }
        };
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let finished = by(deadline, async {
            let (_, out, diagnostics) = tokio::join!(write, read_all(stdout), read_all(stderr));
            (out, diagnostics, child.wait().await)
        })
        .await;
        let Some((out, diagnostics, status)) = finished else {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(timed_out(fp, "gpg was stopped at the deadline"));
        };
        let diagnostics = String::from_utf8_lossy(&diagnostics).into_owned();
        let exit = match &status {
            Ok(status) => status.to_string(),
            Err(e) => e.to_string(),
        };
        let armored = String::from_utf8_lossy(&out).trim().to_string();
        match status {
            Ok(status)
                if status.success() && armored.starts_with("-----BEGIN PGP MESSAGE-----") =>
            {
                Ok(armored)
            }
            _ => Err(classify(fp, &diagnostics, &exit)),
        }
    }
}

fn timed_out(fp: &str, stage: &str) -> KeyError {
    KeyError::unreachable(format!(
        "gpg did not encrypt the data key for {fp} in time: {stage}"
    ))
    .with_hint("allow the attempt more time")
}

/// The most specific explanation of a failed encryption.
fn classify(fp: &str, stderr: &str, exit: &str) -> KeyError {
    let mut invalid = None;
    let mut messages = Vec::new();
    for line in stderr.lines() {
        if let Some(status) = line.strip_prefix("[GNUPG:] ") {
            let mut words = status.split_whitespace();
            if words.next() == Some("INV_RECP") {
                invalid = Some(words.next().unwrap_or("0").to_string());
            }
        } else if !line.trim().is_empty() {
            messages.push(line.strip_prefix("gpg: ").unwrap_or(line).to_string());
        }
    }
    let detail = if messages.is_empty() {
        format!("gpg exited with {exit} and no message")
    } else {
        messages.join("; ")
    };
    if messages
        .iter()
        .any(|m| AGENT_TROUBLE.iter().any(|t| m.contains(t)))
    {
        return KeyError::unreachable(format!(
            "gpg could not reach gpg-agent to encrypt for {fp} ({detail})"
        ))
        .with_hint("start gpg-agent with `gpgconf --launch gpg-agent` and check GNUPGHOME");
    }
    match invalid.as_deref() {
        Some("1") | Some("0") | Some("13") => KeyError::no_credentials(format!(
            "gpg has no usable public key {fp} to encrypt to ({detail})"
        ))
        .with_hint(format!(
            "import the public key into gpg's keyring (`gpg --import KEY.asc` or \
             `gpg --recv-keys {fp}`), and check GNUPGHOME"
        )),
        Some(code) => KeyError::denied(format!(
            "gpg refused to encrypt to {fp}: {} ({detail})",
            invalid_recipient_reason(code)
        ))
        .with_hint(
            "check the key with `gpg --list-keys` (expired, revoked, no encryption subkey?)",
        ),
        None => KeyError::denied(format!(
            "gpg could not encrypt the data key for {fp}: {detail}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsops_keysource::ErrorClass;

    #[test]
    fn short_ids_match_the_reference() {
        assert_eq!(
            short_id("FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"),
            "3D16CEE4A27381B4"
        );
        assert_eq!(
            short_id("FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4!"),
            "3D16CEE4A27381B4!"
        );
        assert_eq!(short_id("A27381B4"), "A27381B4");
    }

    #[test]
    fn missing_public_key() {
        let e = classify(
            "FPR",
            "gpg: FPR: skipped: No public key\n[GNUPG:] INV_RECP 1 FPR\n\
             [GNUPG:] FAILURE encrypt 9\ngpg: [stdin]: encryption failed: No public key\n",
            "exit status: 2",
        );
        assert_eq!(e.class(), ErrorClass::NoCredentials);
        assert!(e.to_string().contains("No public key"), "{e}");
        assert!(e.hint().is_some_and(|h| h.contains("--recv-keys FPR")));
    }

    #[test]
    fn expired_key() {
        let e = classify("FPR", "[GNUPG:] INV_RECP 5 FPR\n", "exit status: 2");
        assert_eq!(e.class(), ErrorClass::Denied);
        assert!(e.to_string().contains("key expired"), "{e}");
    }
}
