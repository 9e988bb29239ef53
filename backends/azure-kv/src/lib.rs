//! Azure Key Vault key source: unwraps `azure_kv` entries with the official
//! Azure SDK (RSA-OAEP-256 decrypt), authenticating through the credential
//! chain Azure users know from the other SDKs.
//!
//! A decrypt, token requests included, is bounded by the attempt's
//! [`Deadline`] alone (by [`DEFAULT_TIMEOUT`] without one): the HTTP client
//! has no timeouts of its own, so a slow vault gets all the time the user
//! allowed.

#![deny(missing_docs)]

mod chain;
mod client;
mod entry;
mod errors;

use std::time::Duration;

use rsops_keysource::{BoxFuture, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};

use crate::client::Vaults;
use crate::entry::AzureEntry;
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
}
