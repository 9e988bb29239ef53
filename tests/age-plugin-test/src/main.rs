//! `age-plugin-rsopstest`: a real age plugin, for rsops' integration tests only.
//!
//! rsops must find `age-plugin-NAME` on `PATH` and talk the age plugin
//! protocol with it, exactly as it would with a YubiKey, TPM or Secure
//! Enclave plugin; the reference `sops` must be able to encrypt to its
//! recipients. Hardware is not available in tests, so this plugin keeps an
//! X25519 key in its identity (`AGE-PLUGIN-RSOPSTEST-1…`) and the matching
//! public key in its recipient (`age1rsopstest1…`), wrapping the file key
//! with age's own X25519 recipient under its own stanza tag.
//!
//! Environment variables (inherited from the client) make it behave like a
//! hardware token:
//! - `RSOPSTEST_MESSAGE`: shown to the user before unwrapping ("touch your key");
//! - `RSOPSTEST_PIN`: a PIN the user must type (asked through the client);
//! - `RSOPSTEST_FAIL=error`: reports an identity error ("the token is locked");
//! - `RSOPSTEST_FAIL=crash`: exits in the middle of the protocol.
//!
//! `age-plugin-rsopstest --generate` prints a new identity and its recipient.

use std::collections::{HashMap, HashSet};
use std::io;
use std::str::FromStr;

use age::{secrecy::ExposeSecret, Identity as _, Recipient as _};
use age_core::format::{FileKey, Stanza};
use age_plugin::{identity, recipient, Callbacks, PluginHandler};
use bech32::{Bech32, Hrp};

const PLUGIN_NAME: &str = "rsopstest";
const STANZA_TAG: &str = "rsopstest";
const X25519_TAG: &str = "X25519";

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let state_machine = match args.as_slice() {
        [flag] if flag.starts_with("--age-plugin=") => flag["--age-plugin=".len()..].to_string(),
        [flag, machine] if flag == "--age-plugin" => machine.clone(),
        [flag] if flag == "--generate" => return generate(),
        _ => {
            eprintln!("usage: age-plugin-rsopstest --generate | --age-plugin=STATE_MACHINE");
            std::process::exit(2);
        }
    };
    age_plugin::run_state_machine(&state_machine, Handler)
}

/// Prints `# created`, `# recipient: age1rsopstest1…` and the identity line.
fn generate() -> io::Result<()> {
    let identity = age::x25519::Identity::generate();
    let secret = bech32_data(identity.to_string().expose_secret())?;
    let public = bech32_data(&identity.to_public().to_string())?;
    age_plugin::print_new_identity(PLUGIN_NAME, &secret, &public);
    Ok(())
}

fn bech32_data(s: &str) -> io::Result<Vec<u8>> {
    bech32::decode(s)
        .map(|(_, data)| data)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

fn encode(hrp: &str, data: &[u8]) -> Option<String> {
    bech32::encode::<Bech32>(Hrp::parse(hrp).ok()?, data).ok()
}

/// The native X25519 recipient hidden in a plugin recipient's bytes.
fn x25519_recipient(bytes: &[u8]) -> Option<age::x25519::Recipient> {
    age::x25519::Recipient::from_str(&encode("age", bytes)?).ok()
}

/// The native X25519 identity hidden in a plugin identity's bytes.
fn x25519_identity(bytes: &[u8]) -> Option<age::x25519::Identity> {
    age::x25519::Identity::from_str(&encode("age-secret-key-", bytes)?.to_uppercase()).ok()
}

struct Handler;

impl PluginHandler for Handler {
    type RecipientV1 = Wrapper;
    type IdentityV1 = Unwrapper;

    fn recipient_v1(self) -> io::Result<Wrapper> {
        Ok(Wrapper::default())
    }

    fn identity_v1(self) -> io::Result<Unwrapper> {
        Ok(Unwrapper::default())
    }
}

#[derive(Default)]
struct Wrapper {
    recipients: Vec<age::x25519::Recipient>,
}

impl recipient::RecipientPluginV1 for Wrapper {
    fn add_recipient(
        &mut self,
        index: usize,
        plugin_name: &str,
        bytes: &[u8],
    ) -> Result<(), recipient::Error> {
        match x25519_recipient(bytes).filter(|_| plugin_name == PLUGIN_NAME) {
            Some(r) => {
                self.recipients.push(r);
                Ok(())
            }
            None => Err(recipient::Error::Recipient {
                index,
                message: "not an rsopstest recipient".into(),
            }),
        }
    }

    fn add_identity(
        &mut self,
        index: usize,
        plugin_name: &str,
        bytes: &[u8],
    ) -> Result<(), recipient::Error> {
        match x25519_identity(bytes).filter(|_| plugin_name == PLUGIN_NAME) {
            Some(i) => {
                self.recipients.push(i.to_public());
                Ok(())
            }
            None => Err(recipient::Error::Identity {
                index,
                message: "not an rsopstest identity".into(),
            }),
        }
    }

    fn labels(&mut self) -> HashSet<String> {
        HashSet::new()
    }

    fn wrap_file_keys(
        &mut self,
        file_keys: Vec<FileKey>,
        _callbacks: impl Callbacks<recipient::Error>,
    ) -> io::Result<Result<Vec<Vec<Stanza>>, Vec<recipient::Error>>> {
        let mut files = Vec::with_capacity(file_keys.len());
        for file_key in &file_keys {
            let mut stanzas = Vec::new();
            for r in &self.recipients {
                let (wrapped, _) = r
                    .wrap_file_key(file_key)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                stanzas.extend(wrapped.into_iter().map(|s| Stanza {
                    tag: STANZA_TAG.into(),
                    ..s
                }));
            }
            files.push(stanzas);
        }
        Ok(Ok(files))
    }
}

#[derive(Default)]
struct Unwrapper {
    identities: Vec<age::x25519::Identity>,
}

impl identity::IdentityPluginV1 for Unwrapper {
    fn add_identity(
        &mut self,
        index: usize,
        plugin_name: &str,
        bytes: &[u8],
    ) -> Result<(), identity::Error> {
        match x25519_identity(bytes).filter(|_| plugin_name == PLUGIN_NAME) {
            Some(i) => {
                self.identities.push(i);
                Ok(())
            }
            None => Err(identity::Error::Identity {
                index,
                message: "not an rsopstest identity".into(),
            }),
        }
    }

    fn unwrap_file_keys(
        &mut self,
        files: Vec<Vec<Stanza>>,
        mut callbacks: impl Callbacks<identity::Error>,
    ) -> io::Result<HashMap<usize, Result<FileKey, Vec<identity::Error>>>> {
        let mut keys = HashMap::new();
        for (file, stanzas) in files.into_iter().enumerate() {
            let ours: Vec<Stanza> = stanzas
                .into_iter()
                .filter(|s| s.tag == STANZA_TAG)
                .map(|s| Stanza {
                    tag: X25519_TAG.into(),
                    ..s
                })
                .collect();
            if ours.is_empty() {
                continue;
            }
            if let Ok(message) = std::env::var("RSOPSTEST_MESSAGE") {
                // A client that cannot show messages still gets the key.
                let _ = callbacks.message(&message)?;
            }
            match std::env::var("RSOPSTEST_FAIL").as_deref() {
                Ok("error") => {
                    keys.insert(file, Err(vec![token_error("the token is locked")]));
                    continue;
                }
                Ok("crash") => std::process::exit(3),
                _ => {}
            }
            if let Ok(pin) = std::env::var("RSOPSTEST_PIN") {
                match callbacks.request_secret("Enter the PIN of the rsopstest token")? {
                    Ok(typed) if typed.expose_secret() == pin => {}
                    Ok(_) => {
                        keys.insert(file, Err(vec![token_error("wrong PIN")]));
                        continue;
                    }
                    Err(_) => {
                        keys.insert(file, Err(vec![token_error("a PIN is needed")]));
                        continue;
                    }
                }
            }
            let found = self
                .identities
                .iter()
                .find_map(|i| i.unwrap_stanzas(&ours))
                .and_then(Result::ok);
            if let Some(key) = found {
                keys.insert(file, Ok(key));
            }
        }
        Ok(keys)
    }
}

fn token_error(message: &str) -> identity::Error {
    identity::Error::Identity {
        index: 0,
        message: message.into(),
    }
}
