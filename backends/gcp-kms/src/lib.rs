//! GCP Cloud KMS key source: unwraps `gcp_kms` entries with the KMS
//! `Decrypt` call and wraps new data keys with `Encrypt`, through the
//! official Google Cloud SDK (REST/JSON), authenticating the way the
//! reference sops does so the same environment works for both. Both calls
//! share one client; each call's timeouts come from its deadline, so a slow
//! KMS gets all of `--key-timeout`.

#![deny(missing_docs)]

mod client;
mod credentials;
mod errors;
mod resource;
mod static_token;

use base64::Engine as _;
use rsops_keysource::{BoxFuture, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};

use crate::client::Clients;
use crate::errors::{GcpError, Op};
use crate::resource::ResourceId;

/// Unwraps data keys stored in `gcp_kms` entries (`resource_id`, `enc`),
/// and wraps new ones for a `resource_id`.
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
                op: Op::Decrypt,
            })?;
        Ok(Unwrapped::new(response.plaintext.to_vec()))
    }

    /// The reference's `Encrypt` then `ToMap`: the secret encrypted under
    /// the recipient's key, and the entry the file keeps.
    async fn encrypt(
        &self,
        resource_id: &str,
        secret: &[u8],
        deadline: Deadline,
    ) -> Result<KeyEntry, GcpError> {
        let resource = ResourceId::parse(resource_id)?;
        let client = client::get(&self.clients).await?;
        let request = client
            .kms
            .encrypt()
            .set_name(resource.as_str())
            .set_plaintext(secret.to_vec());
        let response = client::call_options(deadline)
            .apply(request)
            .send()
            .await
            .map_err(|error| GcpError::Rpc {
                error,
                creds: client.source,
                endpoint: client.endpoint.clone(),
                op: Op::Encrypt,
            })?;
        if response.ciphertext.is_empty() {
            return Err(GcpError::NoCiphertext);
        }
        let enc = base64::engine::general_purpose::STANDARD.encode(&response.ciphertext);
        Ok(wrapped_entry(
            resource.as_str(),
            rsops_backend_common::created_at::now(),
            enc,
        ))
    }
}

/// The recipient's key name as the reference keeps it: every space removed.
fn recipient_resource_id(recipient: &KeyEntry) -> Result<String, GcpError> {
    let mut id = recipient
        .required("resource_id")
        .map_err(GcpError::Entry)?
        .to_string();
    id.retain(|c| c != ' ');
    Ok(id)
}

/// The file's entry for a wrapped key, fields in the reference's order:
/// `resource_id`, `created_at`, `enc`.
fn wrapped_entry(resource_id: &str, created_at: String, enc: String) -> KeyEntry {
    KeyEntry {
        kind: "gcp_kms".to_string(),
        fields: vec![
            ("resource_id".to_string(), resource_id.to_string()),
            ("created_at".to_string(), created_at),
            ("enc".to_string(), enc),
        ],
        maps: Vec::new(),
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

    fn wrap<'a>(
        &'a self,
        recipient: &'a KeyEntry,
        secret: &'a [u8],
        deadline: Deadline,
    ) -> BoxFuture<'a, Result<KeyEntry, KeyError>> {
        Box::pin(async move {
            let result = match recipient_resource_id(recipient) {
                Ok(id) => self.encrypt(&id, secret, deadline).await,
                Err(e) => Err(e),
            };
            result.map_err(|e| e.into_key_error(&self.describe(recipient)))
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

    #[tokio::test]
    async fn malformed_recipients_fail_before_any_client_is_built() {
        let source = GcpKmsKeySource::new();
        for (fields, says) in [
            (&[][..], "the gcp_kms entry has no `resource_id` field"),
            (
                &[("resource_id", "projects/p/locations/global")][..],
                "the resource_id is not a crypto key name",
            ),
        ] {
            let err = source
                .wrap(
                    &entry(fields),
                    &[0; 32],
                    Deadline::after(Duration::from_secs(1)),
                )
                .await
                .expect_err("malformed");
            assert_eq!(err.class(), ErrorClass::CorruptEntry, "{err:?}");
            assert!(err.to_string().starts_with(says), "{err}");
        }
        assert!(source.clients.is_empty());
    }

    #[test]
    fn wrapped_entries_hold_the_reference_fields_in_order() {
        let key = "projects/p/locations/global/keyRings/r/cryptoKeys/k";
        let spaced = entry(&[(
            "resource_id",
            " projects/p/locations/global/keyRings/r/cryptoKeys/k ",
        )]);
        assert_eq!(recipient_resource_id(&spaced).ok().as_deref(), Some(key));
        let wrapped = wrapped_entry(key, "T".into(), "E".into());
        assert_eq!(wrapped.kind, "gcp_kms");
        assert_eq!(
            wrapped.fields,
            entry(&[("resource_id", key), ("created_at", "T"), ("enc", "E")]).fields
        );
        assert!(wrapped.maps.is_empty());
    }
}
