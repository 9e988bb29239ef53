//! AWS KMS key source: unwraps `sops.kms` entries with the KMS `Decrypt`
//! call, configured as the reference `sops` configures it.
//!
//! - Region: taken from the key's ARN.
//! - Credentials: the AWS SDK's default chain (environment, shared config
//!   and credentials files, SSO, web identity, ECS, EC2 instance metadata);
//!   an entry's `aws_profile` selects a named profile, whose credentials then
//!   win over the environment's, as in the reference.
//! - `role`: assumed with STS on top of those credentials, session name
//!   `sops@<hostname>`.
//! - `context`: passed to `Decrypt` exactly as stored.
//! - Endpoint: `AWS_ENDPOINT_URL_KMS` / `AWS_ENDPOINT_URL` (and
//!   `AWS_ENDPOINT_URL_STS` for roles) redirect the SDK, e.g. to LocalStack.
//!
//! Nothing AWS is touched until a `kms` entry is unwrapped; clients are then
//! built once per (region, profile, role) and reused. Every call's SDK
//! timeouts come from its deadline (see `clients::call_timeouts`), it is
//! retried at most once, and the future can be dropped at any point to
//! cancel it.

#![deny(missing_docs)]

mod clients;
mod entry;
mod error;
mod session;

use std::convert::Infallible;

use aws_sdk_kms::primitives::Blob;
use rsops_keysource::{BoxFuture, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};

use crate::clients::{ClientKey, Clients};
use crate::entry::KmsEntry;
use crate::error::{classify, Attempt, Error};

/// The AWS KMS key source. Cheap to create; clients are built on first use.
#[derive(Default)]
pub struct AwsKmsKeySource {
    clients: Clients,
}

impl AwsKmsKeySource {
    /// A key source that builds its AWS clients lazily.
    pub fn new() -> Self {
        Self::default()
    }

    async fn decrypt(&self, entry: &KeyEntry, deadline: Deadline) -> Result<Unwrapped, KeyError> {
        let kms = KmsEntry::parse(entry)?;
        let key = ClientKey {
            region: kms.region.clone(),
            profile: kms.profile.map(str::to_string),
            role: kms.role.map(str::to_string),
        };
        // Building cannot fail: a broken profile or role shows when the
        // call resolves credentials, and is classified with its error.
        let client = self
            .clients
            .get_or_try_build(&key, || async {
                Ok::<_, Infallible>(clients::build(&key).await)
            })
            .await
            .unwrap_or_else(|never| match never {});
        let attempt = Attempt {
            region: &kms.region,
            role: kms.role,
            profile: kms.profile,
        };
        let output = client
            .decrypt()
            .key_id(kms.arn)
            .ciphertext_blob(Blob::new(kms.ciphertext))
            .set_encryption_context((!kms.context.is_empty()).then_some(kms.context))
            .customize()
            .config_override(
                aws_sdk_kms::config::Builder::default()
                    .timeout_config(clients::call_timeouts(deadline)),
            )
            .send()
            .await
            .map_err(|e| classify(&e, &attempt))?;
        let plaintext = output.plaintext.ok_or(Error::NoPlaintext)?;
        Ok(Unwrapped::new(plaintext.into_inner()))
    }
}

impl KeySource for AwsKmsKeySource {
    fn kind(&self) -> &'static str {
        "kms"
    }

    /// The ARN, with the role as the reference writes it (`ARN+ROLE`).
    fn describe(&self, entry: &KeyEntry) -> String {
        let arn = entry.field("arn").unwrap_or("?");
        match entry.field("role").filter(|r| !r.is_empty()) {
            Some(role) => format!("{arn}+{role}"),
            None => arn.to_string(),
        }
    }

    fn unwrap<'a>(
        &'a self,
        entry: &'a KeyEntry,
        deadline: Deadline,
    ) -> BoxFuture<'a, Result<Unwrapped, KeyError>> {
        Box::pin(self.decrypt(entry, deadline))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rsops_keysource::ErrorClass;

    use super::*;

    fn entry(fields: &[(&str, &str)]) -> KeyEntry {
        KeyEntry {
            kind: "kms".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            maps: Vec::new(),
        }
    }

    #[test]
    fn describes_entries_as_the_reference_names_them() {
        let source = AwsKmsKeySource::new();
        assert_eq!(source.kind(), "kms");
        let arn = "arn:aws:kms:us-east-1:1:key/k";
        assert_eq!(source.describe(&entry(&[("arn", arn), ("role", "")])), arn);
        assert_eq!(
            source.describe(&entry(&[("arn", arn), ("role", "arn:aws:iam::1:role/r")])),
            format!("{arn}+arn:aws:iam::1:role/r")
        );
    }

    #[tokio::test]
    async fn malformed_entries_fail_before_any_client_is_built() {
        let source = AwsKmsKeySource::new();
        for (fields, says) in [
            (&[("arn", "not-an-arn"), ("enc", "AAEC")][..], "not-an-arn"),
            (
                &[("arn", "arn:aws:kms:us-east-1:1:key/k"), ("enc", "")][..],
                "the kms entry has no `enc` field",
            ),
        ] {
            let err = source
                .unwrap(&entry(fields), Deadline::after(Duration::from_secs(1)))
                .await
                .expect_err("malformed");
            assert_eq!(err.class(), ErrorClass::CorruptEntry, "{err:?}");
            assert!(err.to_string().contains(says), "{err}");
        }
        assert!(source.clients.is_empty());
    }
}
