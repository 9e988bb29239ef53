//! Wrapping a data key for one recipient, as sops 3.11's `age` `Encrypt`
//! does: the recipient parsed like its `parseRecipient` (X25519 `age1…`,
//! plugin `age1NAME1…`, SSH `ssh-ed25519`/`ssh-rsa`), the secret encrypted
//! to it alone, ASCII-armored (`-----BEGIN AGE ENCRYPTED FILE-----`, 64
//! columns, a newline after the footer).
//!
//! Plugins may ask questions or wait for a touch, so they run on a worker
//! thread of their own, stopped when the attempt is withdrawn.

use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};

use age::armor::{ArmoredWriter, Format};
use age::ssh::ParseRecipientKeyError;
use rsops_keysource::{Deadline, ErrorClass, KeyEntry, KeyError};

use crate::failure::Problem;
use crate::tty::TerminalCallbacks;
use crate::worker;

/// A recipient sops can encrypt to.
enum Parsed {
    /// X25519 or SSH: encrypting runs no process.
    Plain(Box<dyn age::Recipient + Send>),
    /// `age1NAME1…`: encrypting runs `age-plugin-NAME`.
    Plugin(age::plugin::Recipient),
}

/// Parses `recipient` as the reference's `parseRecipient` does, by prefix.
fn parse(recipient: &str) -> Result<Parsed, KeyError> {
    if recipient.starts_with(crate::post_quantum::RECIPIENT_PREFIX) {
        return Err(KeyError::new(
            ErrorClass::Unsupported,
            format!(
                "cannot encrypt for the age recipient {recipient}: post-quantum recipients \
                 (age1pq1…, ML-KEM-768 + X25519) are not supported by rsops yet"
            ),
        )
        .with_hint(
            "encrypt with sops ≥ 3.12, or use an X25519 age recipient (age1…) or an SSH key",
        ));
    }
    if recipient.starts_with("age1") && recipient.matches('1').count() > 1 {
        return age::plugin::Recipient::from_str(recipient)
            .map(Parsed::Plugin)
            .map_err(|e| invalid(recipient, &format!("not an age plugin recipient: {e}")));
    }
    if recipient.starts_with("age1") {
        return age::x25519::Recipient::from_str(recipient)
            .map(|r| Parsed::Plain(Box::new(r)))
            .map_err(|e| {
                invalid(
                    recipient,
                    &format!("not a Bech32-encoded age public key: {e}"),
                )
            });
    }
    if recipient.starts_with("ssh-") {
        return match age::ssh::Recipient::from_str(recipient) {
            Ok(r) => Ok(Parsed::Plain(Box::new(r))),
            Err(ParseRecipientKeyError::Unsupported(kind)) => Err(KeyError::new(
                ErrorClass::Unsupported,
                format!(
                    "cannot encrypt for the age recipient {recipient}: age does not support \
                     `{kind}` SSH keys"
                ),
            )
            .with_hint("use an ssh-ed25519 or ssh-rsa public key, or an age recipient (age1…)")),
            Err(e) => Err(invalid(
                recipient,
                &format!("not an age-ssh public key ({})", ssh_reason(&e)),
            )),
        };
    }
    Err(invalid(recipient, "unknown recipient type"))
}

fn ssh_reason(error: &ParseRecipientKeyError) -> String {
    match error {
        ParseRecipientKeyError::Invalid(why) => (*why).to_string(),
        ParseRecipientKeyError::RsaModulusTooLarge => "RSA modulus too large".to_string(),
        ParseRecipientKeyError::RsaModulusTooSmall => {
            "RSA modulus smaller than 2048 bits".to_string()
        }
        ParseRecipientKeyError::Ignore => "not a usable SSH key".to_string(),
        other => format!("{other:?}"),
    }
}

/// A recipient that does not parse: the entry names no usable key.
fn invalid(recipient: &str, why: &str) -> KeyError {
    KeyError::corrupt_entry(format!("invalid age recipient `{recipient}`: {why}")).with_hint(
        "an age recipient is `age1…` (X25519 or a plugin), `ssh-ed25519 …` or `ssh-rsa …`",
    )
}

/// Wraps `secret` for the entry's recipient, returning the metadata entry
/// (`recipient`, `enc`).
pub(crate) async fn wrap(
    entry: &KeyEntry,
    secret: &[u8],
    deadline: Deadline,
) -> Result<KeyEntry, KeyError> {
    // The reference trims the recipient it is given, and stores it trimmed.
    let recipient = entry.required("recipient")?.trim().to_string();
    let armored = match parse(&recipient)? {
        Parsed::Plain(r) => encrypt(&*r, secret).map_err(|e| failed(&recipient, &e))?,
        Parsed::Plugin(plugin) => {
            let secret = zeroize::Zeroizing::new(secret.to_vec());
            let name = recipient.clone();
            let done = worker::off_thread(deadline, move |cancel| {
                encrypt_with_plugin(&name, plugin, &secret, cancel)
            })
            .await?;
            done.ok_or_else(|| {
                KeyError::unreachable(format!(
                    "the age plugin for {recipient} did not finish in time and was stopped"
                ))
                .with_hint(
                    "the plugin may be waiting for a PIN or a touch; answer it sooner or allow \
                     the attempt more time",
                )
            })??
        }
    };
    Ok(KeyEntry {
        kind: "age".to_string(),
        fields: vec![
            ("recipient".to_string(), recipient),
            ("enc".to_string(), armored),
        ],
        maps: Vec::new(),
    })
}

/// `secret` encrypted to `recipient` alone and armored, as the reference's
/// `armor.NewWriter` writes it.
fn encrypt(recipient: &dyn age::Recipient, secret: &[u8]) -> Result<String, String> {
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient)).map_err(|e| e.to_string())?;
    let armor =
        ArmoredWriter::wrap_output(Vec::new(), Format::AsciiArmor).map_err(|e| e.to_string())?;
    let mut writer = encryptor.wrap_output(armor).map_err(|e| e.to_string())?;
    writer.write_all(secret).map_err(|e| e.to_string())?;
    let armor = writer.finish().map_err(|e| e.to_string())?;
    let bytes = armor.finish().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

fn failed(recipient: &str, why: &str) -> KeyError {
    KeyError::denied(format!(
        "could not encrypt the data key for the age recipient {recipient}: {why}"
    ))
}

/// Runs `age-plugin-NAME` to wrap the secret (on a worker thread).
fn encrypt_with_plugin(
    recipient: &str,
    plugin: age::plugin::Recipient,
    secret: &[u8],
    cancel: Arc<AtomicBool>,
) -> Result<String, KeyError> {
    let binary = format!("age-plugin-{}", plugin.plugin());
    let problems: Arc<Mutex<Vec<Problem>>> = Arc::default();
    let callbacks = TerminalCallbacks {
        who: Arc::from(binary.as_str()),
        cancel,
        problems: problems.clone(),
    };
    let name = plugin.plugin().to_string();
    let runner =
        age::plugin::RecipientPluginV1::new(&name, &[plugin], &[], callbacks).map_err(|e| {
            KeyError::no_credentials(format!(
                "cannot encrypt for the age recipient {recipient}: {binary} is not available ({e})"
            ))
            .with_hint(format!("install {binary} and put it on PATH"))
        })?;
    encrypt(&runner, secret).map_err(|why| {
        let asked = problems
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        let why = if asked.is_empty() {
            why
        } else {
            format!("{why}; {}", asked.join("; "))
        };
        failed(recipient, &format!("{binary}: {why}"))
    })
}
