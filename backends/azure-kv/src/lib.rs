//! Azure Key Vault key source: unwraps and wraps `azure_kv` entries with the
//! official Azure SDK (RSA-OAEP-256 decrypt and encrypt), authenticating
//! through the credential chain Azure users know from the other SDKs.
//!
//! A decrypt or encrypt, token requests and version lookup included, is bounded by the attempt's
//! [`Deadline`] alone (by [`DEFAULT_TIMEOUT`] without one): the HTTP client
//! has no timeouts of its own, so a slow vault gets all the time the user
//! allowed.

#![deny(missing_docs)]

mod chain;
mod client;
mod entry;
mod errors;

use std::time::Duration;

use base64::Engine as _;
use rsops_keysource::{BoxFuture, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};

use crate::client::Vaults;
use crate::entry::{AzureEntry, AzureKey};
use crate::errors::AzureError;

/// How long one decrypt may take in all when the caller gives no deadline
/// ([`Deadline::NONE`]): the default of rsops' `--key-timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Unwraps data keys stored in `azure_kv` entries (`vault_url`, `name`,
/// `version`, `enc`).
///
/// The credential chain is built once per run and one client is kept per
/// vault, so several entries authenticate once and share connections.
#[derive(Default)]
pub struct AzureKvKeySource {
    vaults: Vaults,
}

impl AzureKvKeySource {
    /// A key source that reads its configuration from the environment when
    /// the first `azure_kv` entry is unwrapped.
    pub fn new() -> Self {
        Self::default()
    }

    async fn decrypt(&self, entry: &KeyEntry, deadline: Deadline) -> Result<Unwrapped, AzureError> {
        let key = AzureEntry::parse(entry)?;
        let work = async {
            let vault = self.vaults.get(&key.vault_url).await?;
            vault.decrypt(&key).await
        };
        rsops_backend_common::deadline::within(deadline, DEFAULT_TIMEOUT, work)
            .await
            .map_err(|limit| AzureError::Timeout {
                vault: key.vault_url.clone(),
                limit,
            })?
    }

    async fn encrypt(
        &self,
        recipient: &KeyEntry,
        secret: &[u8],
        deadline: Deadline,
    ) -> Result<KeyEntry, KeyError> {
        let key = AzureKey::parse(recipient).map_err(|e| {
            let id = recipient.field("vault_url").unwrap_or("?").to_string();
            e.into_key_error(&id)
        })?;
        let work = async {
            let vault = self.vaults.get(&key.vault_url).await?;
            vault.encrypt(&key, secret).await
        };
        let (version, ciphertext) =
            rsops_backend_common::deadline::within(deadline, DEFAULT_TIMEOUT, work)
                .await
                .map_err(|limit| AzureError::Timeout {
                    vault: key.vault_url.clone(),
                    limit,
                })
                .and_then(|result| result)
                .map_err(|e| e.into_key_error(&key.describe()))?;
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ciphertext);
        Ok(wrapped_entry(
            &key,
            version,
            rsops_backend_common::created_at::now(),
            enc,
        ))
    }
}

/// The entry as the reference writes it: `vault_url`, `name`, `version`
/// (resolved), `created_at`, `enc`.
fn wrapped_entry(key: &AzureKey, version: String, created_at: String, enc: String) -> KeyEntry {
    KeyEntry {
        kind: "azure_kv".to_string(),
        fields: vec![
            ("vault_url".to_string(), key.vault_url.clone()),
            ("name".to_string(), key.name.clone()),
            ("version".to_string(), version),
            ("created_at".to_string(), created_at),
            ("enc".to_string(), enc),
        ],
        maps: Vec::new(),
    }
}

impl KeySource for AzureKvKeySource {
    fn kind(&self) -> &'static str {
        "azure_kv"
    }

    /// The key's URL, as the reference prints it.
    fn describe(&self, entry: &KeyEntry) -> String {
        format!(
            "{}/keys/{}/{}",
            entry
                .field("vault_url")
                .unwrap_or("?")
                .trim_end_matches('/'),
            entry.field("name").unwrap_or("?"),
            entry.field("version").unwrap_or_default()
        )
    }

    fn unwrap<'a>(
        &'a self,
        entry: &'a KeyEntry,
        deadline: Deadline,
    ) -> BoxFuture<'a, Result<Unwrapped, KeyError>> {
        Box::pin(async move {
            self.decrypt(entry, deadline)
                .await
                .map_err(|e| e.into_key_error(&self.describe(entry)))
        })
    }

    fn wrap<'a>(
        &'a self,
        recipient: &'a KeyEntry,
        secret: &'a [u8],
        deadline: Deadline,
    ) -> BoxFuture<'a, Result<KeyEntry, KeyError>> {
        Box::pin(self.encrypt(recipient, secret, deadline))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rsops_keysource::ErrorClass;

    use super::*;

    #[tokio::test]
    async fn malformed_recipients_fail_before_any_network_call() {
        let source = AzureKvKeySource::new();
        let recipient = KeyEntry {
            kind: "azure_kv".into(),
            fields: vec![(
                "vault_url".into(),
                "https://v.vault.azure.net/secrets/k".into(),
            )],
            maps: Vec::new(),
        };
        let error = source
            .wrap(
                &recipient,
                &[0; 32],
                Deadline::after(Duration::from_secs(1)),
            )
            .await
            .expect_err("malformed");
        assert_eq!(error.class(), ErrorClass::CorruptEntry, "{error:?}");
        assert!(error.hint().is_some_and(|h| h.contains("/keys/KEY")));
    }

    #[test]
    fn wrapped_entries_hold_the_reference_fields_in_order() {
        let key = AzureKey::from_url("https://v.vault.azure.net/keys/k").unwrap();
        let entry = wrapped_entry(&key, "abc".into(), "T".into(), "E".into());
        let fields: Vec<(&str, &str)> = entry
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("vault_url", "https://v.vault.azure.net"),
                ("name", "k"),
                ("version", "abc"),
                ("created_at", "T"),
                ("enc", "E"),
            ]
        );
    }
}
