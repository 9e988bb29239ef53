//! Azure Key Vault key source: unwraps `azure_kv` entries with the official
//! Azure SDK (RSA-OAEP-256 decrypt), authenticating through the credential
//! chain Azure users know from the other SDKs.

#![deny(missing_docs)]

mod chain;
mod client;
mod entry;
mod errors;

use rsops_keysource::{BoxFuture, DataKey, KeyEntry, KeyError, KeySource};

use crate::client::ClientCache;
use crate::entry::AzureEntry;
use crate::errors::AzureError;

/// Unwraps data keys stored in `azure_kv` entries (`vault_url`, `name`,
/// `version`, `enc`).
///
/// The credential chain is built once per run and one client is kept per
/// vault, so several entries authenticate once and share connections.
#[derive(Default)]
pub struct AzureKvKeySource {
    clients: ClientCache,
}

impl AzureKvKeySource {
    /// A key source that reads its configuration from the environment when
    /// the first `azure_kv` entry is unwrapped.
    pub fn new() -> Self {
        Self::default()
    }

    async fn decrypt(&self, entry: &KeyEntry) -> Result<DataKey, AzureError> {
        let key = AzureEntry::parse(entry)?;
        let client = self.clients.get(&key.vault_url).await?;
        client.decrypt(&key).await
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

    fn unwrap<'a>(&'a self, entry: &'a KeyEntry) -> BoxFuture<'a, Result<DataKey, KeyError>> {
        Box::pin(async move {
            self.decrypt(entry)
                .await
                .map_err(|e| e.into_key_error(&self.describe(entry)))
        })
    }
}
