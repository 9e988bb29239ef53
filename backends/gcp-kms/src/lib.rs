//! GCP Cloud KMS key source: unwraps `gcp_kms` entries with the official
//! Google Cloud SDK (REST/JSON), authenticating the way the reference sops
//! does so the same environment works for both.

#![deny(missing_docs)]

mod client;
mod credentials;
mod errors;
mod resource;
mod static_token;

use base64::Engine as _;
use rsops_keysource::{BoxFuture, DataKey, KeyEntry, KeyError, KeySource};

use crate::client::ClientCache;
use crate::errors::GcpError;
use crate::resource::ResourceId;

/// Unwraps data keys stored in `gcp_kms` entries (`resource_id`, `enc`).
///
/// The KMS client and its credentials are built on first use and shared by
/// every entry of the run, so a file with several GCP keys authenticates once.
#[derive(Default)]
pub struct GcpKmsKeySource {
    clients: ClientCache,
}

impl GcpKmsKeySource {
    /// A key source that reads its configuration from the environment when
    /// the first `gcp_kms` entry is unwrapped.
    pub fn new() -> Self {
        Self::default()
    }

    async fn decrypt(&self, entry: &KeyEntry) -> Result<DataKey, GcpError> {
        let resource = ResourceId::parse(entry.field("resource_id").unwrap_or_default())?;
        let enc = entry.encrypted_key().map_err(GcpError::Entry)?;
        // The reference stores the ciphertext in standard base64 (sops ≤ 3.8
        // clients passed strings, later ones raw bytes: both encode the same).
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(enc.trim())
            .map_err(|_| GcpError::BadCiphertext)?;
        let client = self.clients.get().await?;
        let response = client
            .kms
            .decrypt()
            .set_name(resource.as_str())
            .set_ciphertext(ciphertext)
            .send()
            .await
            .map_err(|error| GcpError::Rpc {
                error,
                creds: client.source,
                endpoint: client.endpoint.clone(),
            })?;
        Ok(DataKey::new(response.plaintext.to_vec()))
    }
}

impl KeySource for GcpKmsKeySource {
    fn kind(&self) -> &'static str {
        "gcp_kms"
    }

    fn describe(&self, entry: &KeyEntry) -> String {
        entry.field("resource_id").unwrap_or("?").to_string()
    }

    fn unwrap<'a>(&'a self, entry: &'a KeyEntry) -> BoxFuture<'a, Result<DataKey, KeyError>> {
        Box::pin(async move {
            self.decrypt(entry)
                .await
                .map_err(|e| e.into_key_error(&self.describe(entry)))
        })
    }
}
