//! GCP Cloud KMS key source: unwraps `gcp_kms` entries with the official
//! Google Cloud SDK (REST/JSON), authenticating the way the reference sops
//! does so the same environment works for both. Each call's timeouts come
//! from its deadline, so a slow KMS gets all of `--key-timeout`.

#![deny(missing_docs)]

mod client;
mod credentials;
mod errors;
mod resource;
mod static_token;

use base64::Engine as _;
use rsops_keysource::{BoxFuture, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};

use crate::client::Clients;
use crate::errors::GcpError;
use crate::resource::ResourceId;

/// Unwraps data keys stored in `gcp_kms` entries (`resource_id`, `enc`).
///
/// The KMS client and its credentials are built on first use and shared by
/// every entry of the run, so a file with several GCP keys authenticates once.
#[derive(Default)]
pub struct GcpKmsKeySource {
    clients: Clients,
}

impl GcpKmsKeySource {
    /// A key source that reads its configuration from the environment when
    /// the first `gcp_kms` entry is unwrapped.
    pub fn new() -> Self {
        Self::default()
    }

    async fn decrypt(&self, entry: &KeyEntry, deadline: Deadline) -> Result<Unwrapped, GcpError> {
        let resource = ResourceId::parse(entry.required("resource_id").map_err(GcpError::Entry)?)?;
        let enc = entry.encrypted_key().map_err(GcpError::Entry)?;
        // The reference stores the ciphertext in standard base64 (sops ≤ 3.8
        // clients passed strings, later ones raw bytes: both encode the same).
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(enc.trim())
            .map_err(|_| GcpError::BadCiphertext)?;
        let client = client::get(&self.clients).await?;
        let request = client
            .kms
            .decrypt()
            .set_name(resource.as_str())
            .set_ciphertext(ciphertext);
        let response = client::call_options(deadline)
            .apply(request)
            .send()
            .await
            .map_err(|error| GcpError::Rpc {
                error,
                creds: client.source,
                endpoint: client.endpoint.clone(),
            })?;
        Ok(Unwrapped::new(response.plaintext.to_vec()))
    }
}

impl KeySource for GcpKmsKeySource {
    fn kind(&self) -> &'static str {
        "gcp_kms"
    }

    fn describe(&self, entry: &KeyEntry) -> String {
        entry.field("resource_id").unwrap_or("?").to_string()
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rsops_keysource::ErrorClass;

    use super::*;

    fn entry(fields: &[(&str, &str)]) -> KeyEntry {
        KeyEntry {
            kind: "gcp_kms".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            maps: Vec::new(),
        }
    }

    /// Checked before any client (and so any credential) is looked at.
    #[tokio::test]
    async fn malformed_entries_are_corrupt() {
        let source = GcpKmsKeySource::new();
        let key = "projects/p/locations/global/keyRings/r/cryptoKeys/k";
        for (fields, says) in [
            (
                &[("enc", "AAEC")][..],
                "the gcp_kms entry has no `resource_id` field",
            ),
            (
                &[("resource_id", ""), ("enc", "AAEC")][..],
                "the gcp_kms entry has no `resource_id` field",
            ),
            (
                &[("resource_id", "projects/p"), ("enc", "AAEC")][..],
                "the resource_id is not a crypto key name",
            ),
            (
                &[("resource_id", key)][..],
                "the gcp_kms entry has no `enc` field",
            ),
            (
                &[("resource_id", key), ("enc", "!!")][..],
                "the `enc` field is not valid base64",
            ),
        ] {
            let err = source
                .unwrap(&entry(fields), Deadline::after(Duration::from_secs(1)))
                .await
                .expect_err("malformed");
            assert_eq!(err.class(), ErrorClass::CorruptEntry, "{err:?}");
            assert!(err.to_string().starts_with(says), "{err}");
        }
        assert!(source.clients.is_empty());
    }
}
