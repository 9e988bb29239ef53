//! Decrypting a data key with secret keys from files, through Sequoia.
//!
//! Finds the key by the message's recipients (the entry's `fp` names the
//! primary key, the message is encrypted to a subkey), and records why no key
//! worked so the error can say it.

use std::io::Read;

use sequoia_openpgp::crypto::SessionKey;
use sequoia_openpgp::packet::key::{SecretParts, UnspecifiedRole};
use sequoia_openpgp::packet::{Key, PKESK, SKESK};
use sequoia_openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageStructure, VerificationHelper,
};
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::policy::StandardPolicy;
use sequoia_openpgp::types::SymmetricAlgorithm;
use sequoia_openpgp::{Cert, Fingerprint, KeyHandle};
use zeroize::Zeroizing;

use super::keyring::Keyring;

/// Why the key files could not open a message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileKeyError {
    /// No secret key in the files matches a recipient of the message.
    #[error("no secret key in the key files matches the message (encrypted to {recipients})")]
    NoMatchingKey {
        /// The message's recipients, as key IDs.
        recipients: String,
    },
    /// A matching key is passphrase-protected; only gpg can ask for it.
    #[error("the matching secret key {key} in the key files is passphrase-protected")]
    Locked {
        /// The fingerprint of the locked (sub)key.
        key: Fingerprint,
    },
    /// The message is not a well-formed PGP message or fails its integrity check.
    #[error("the PGP message is damaged: {0}")]
    Corrupt(String),
    /// The blocking worker thread failed.
    #[error("the PGP key file worker failed: {0}")]
    Worker(String),
}

/// Decrypts an armored (or binary) PGP message with the keyring's keys.
pub(crate) fn decrypt(
    keyring: &Keyring,
    message: &[u8],
) -> Result<Zeroizing<Vec<u8>>, FileKeyError> {
    let policy = StandardPolicy::new();
    let mut helper = Helper {
        keyring,
        outcome: None,
        decrypted: false,
    };
    let result = read_message(&policy, &mut helper, message);
    match (result, helper.outcome) {
        (Ok(_), _) if !helper.decrypted => Err(FileKeyError::Corrupt(
            "the message is not encrypted".to_string(),
        )),
        (Ok(plain), _) => Ok(plain),
        (Err(_), Some(outcome)) => Err(outcome),
        (Err(e), None) => Err(FileKeyError::Corrupt(format!("{e:#}"))),
    }
}

/// Streams the message through Sequoia's decryptor into a zeroized buffer.
fn read_message(
    policy: &StandardPolicy,
    helper: &mut Helper<'_>,
    message: &[u8],
) -> sequoia_openpgp::Result<Zeroizing<Vec<u8>>> {
    let mut decryptor =
        DecryptorBuilder::from_bytes(message)?.with_policy(policy, None, HelperRef(helper))?;
    let mut plain = Zeroizing::new(Vec::with_capacity(64));
    decryptor.read_to_end(&mut plain)?;
    Ok(plain)
}

/// Finds keys for the message's recipients and records why none worked.
struct Helper<'k> {
    keyring: &'k Keyring,
    outcome: Option<FileKeyError>,
    decrypted: bool,
}

/// The helper, lent to Sequoia so the outcome survives a failed decryption.
struct HelperRef<'h, 'k>(&'h mut Helper<'k>);

/// Secret keys (primary or subkey) that match `recipient`; every secret key
/// for a wildcard (hidden) recipient.
fn candidates<'k>(
    keyring: &'k Keyring,
    recipient: Option<&KeyHandle>,
) -> Vec<(&'k Cert, Key<SecretParts, UnspecifiedRole>)> {
    let mut found = Vec::new();
    for cert in &keyring.certs {
        for key in cert.keys().secret() {
            if recipient.is_none_or(|r| r.aliases(key.key().key_handle())) {
                found.push((cert, key.key().clone()));
            }
        }
    }
    found
}

impl Helper<'_> {
    /// Tries every PKESK with every matching unlocked key.
    fn try_pkesks(
        &mut self,
        pkesks: &[PKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> Option<Cert> {
        for pkesk in pkesks {
            let recipient = pkesk.recipient();
            for (cert, key) in candidates(self.keyring, recipient.as_ref()) {
                if key.secret().is_encrypted() {
                    self.outcome = Some(FileKeyError::Locked {
                        key: key.fingerprint(),
                    });
                    continue;
                }
                let Ok(mut keypair) = key.into_keypair() else {
                    continue;
                };
                if let Some((algo, session_key)) = pkesk.decrypt(&mut keypair, sym_algo) {
                    if decrypt(algo, &session_key) {
                        return Some(cert.clone());
                    }
                }
            }
        }
        None
    }
}

/// The message's recipients as gpg prints them (key IDs; `*` for hidden).
fn recipients(pkesks: &[PKESK]) -> String {
    let ids: Vec<String> = pkesks
        .iter()
        .map(|p| match p.recipient() {
            Some(handle) => sequoia_openpgp::KeyID::from(handle).to_hex(),
            None => "*".to_string(),
        })
        .collect();
    if ids.is_empty() {
        "no public key".to_string()
    } else {
        ids.join(", ")
    }
}

impl DecryptionHelper for HelperRef<'_, '_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> sequoia_openpgp::Result<Option<Cert>> {
        let helper = &mut *self.0;
        if let Some(cert) = helper.try_pkesks(pkesks, sym_algo, decrypt) {
            helper.decrypted = true;
            helper.outcome = None;
            return Ok(Some(cert));
        }
        let error = helper
            .outcome
            .get_or_insert_with(|| FileKeyError::NoMatchingKey {
                recipients: recipients(pkesks),
            });
        Err(sequoia_openpgp::Error::InvalidOperation(error.to_string()).into())
    }
}

impl VerificationHelper for HelperRef<'_, '_> {
    /// Data keys are not signed: there are no certificates to look up.
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> sequoia_openpgp::Result<Vec<Cert>> {
        Ok(Vec::new())
    }

    /// Any structure is accepted; integrity comes from the encryption
    /// container (MDC / AEAD), which Sequoia always checks.
    fn check(&mut self, _structure: MessageStructure) -> sequoia_openpgp::Result<()> {
        Ok(())
    }
}
