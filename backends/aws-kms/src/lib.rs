//! AWS KMS key source: unwraps `sops.kms` entries with the KMS `Decrypt`
//! call and wraps new data keys with `Encrypt`, configured as the
//! reference `sops` configures it.
//!
//! - Region: taken from the key's ARN.
//! - Credentials: the AWS SDK's default chain (environment, shared config
//!   and credentials files, SSO, web identity, ECS, EC2 instance metadata);
//!   an entry's `aws_profile` selects a named profile, whose credentials then
//!   win over the environment's, as in the reference.
//! - `role`: assumed with STS on top of those credentials, session name
//!   `sops@<hostname>`.
//! - `context`: passed to `Decrypt` exactly as stored, and to `Encrypt`
//!   exactly as the recipient gives it (then stored in the entry).
//! - Endpoint: `AWS_ENDPOINT_URL_KMS` / `AWS_ENDPOINT_URL` (and
//!   `AWS_ENDPOINT_URL_STS` for roles) redirect the SDK, e.g. to LocalStack.
//!
//! Nothing AWS is touched until a `kms` entry is (un)wrapped; clients are then
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
use base64::Engine as _;
use rsops_keysource::{BoxFuture, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};

use crate::clients::{ClientKey, Clients};
use crate::entry::{KmsEntry, KmsKey};
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

    /// The client for `kms`'s region, profile and role, built on first use.
    /// Building cannot fail: a broken profile or role shows when the call
    /// resolves credentials, and is classified with its error.
    async fn client(&self, kms: &KmsKey<'_>) -> aws_sdk_kms::Client {
        let key = ClientKey {
            region: kms.region.clone(),
            profile: kms.profile.map(str::to_string),
            role: kms.role.map(str::to_string),
        };
        self.clients
            .get_or_try_build(&key, || async {
                Ok::<_, Infallible>(clients::build(&key).await)
            })
            .await
            .unwrap_or_else(|never| match never {})
    }

    /// Per-call configuration: the SDK timeouts derived from `deadline`.
    fn call_config(deadline: Deadline) -> aws_sdk_kms::config::Builder {
        aws_sdk_kms::config::Builder::default().timeout_config(clients::call_timeouts(deadline))
    }

    async fn decrypt(&self, entry: &KeyEntry, deadline: Deadline) -> Result<Unwrapped, KeyError> {
        let kms = KmsEntry::parse(entry)?;
        let client = self.client(&kms.key).await;
        let output = client
            .decrypt()
            .key_id(kms.key.arn)
            .ciphertext_blob(Blob::new(kms.ciphertext))
            .set_encryption_context(kms.key.sdk_context())
            .customize()
            .config_override(Self::call_config(deadline))
            .send()
            .await
            .map_err(|e| classify(&e, &attempt(&kms.key)))?;
        let plaintext = output.plaintext.ok_or(Error::NoPlaintext)?;
        Ok(Unwrapped::new(plaintext.into_inner()))
    }

    /// The reference's `Encrypt` then `ToMap`: the secret encrypted under
    /// the recipient's key with its context, and the entry the file keeps.
    async fn encrypt(
        &self,
        recipient: &KeyEntry,
        secret: &[u8],
        deadline: Deadline,
    ) -> Result<KeyEntry, KeyError> {
        // The reference removes every space from an ARN it is given.
        let stripped;
        let recipient = match recipient.field("arn") {
            Some(arn) if arn.contains(' ') => {
                let mut entry = recipient.clone();
                for (name, value) in &mut entry.fields {
                    if name == "arn" {
                        value.retain(|c| c != ' ');
                    }
                }
                stripped = entry;
                &stripped
            }
            _ => recipient,
        };
        let kms = KmsKey::parse(recipient)?;
        let client = self.client(&kms).await;
        let output = client
            .encrypt()
            .key_id(kms.arn)
            .plaintext(Blob::new(secret))
            .set_encryption_context(kms.sdk_context())
            .customize()
            .config_override(Self::call_config(deadline))
            .send()
            .await
            .map_err(|e| classify(&e, &attempt(&kms)))?;
        let blob = output
            .ciphertext_blob
            .filter(|b| !b.as_ref().is_empty())
            .ok_or(Error::NoCiphertext)?;
        let enc = base64::engine::general_purpose::STANDARD.encode(blob.as_ref());
        Ok(wrapped_entry(
            &kms,
            rsops_backend_common::created_at::now(),
            enc,
        ))
    }
}

/// What the error classifier needs to know about a call to `kms`.
fn attempt<'a>(kms: &'a KmsKey<'a>) -> Attempt<'a> {
    Attempt {
        region: &kms.region,
        role: kms.role,
        profile: kms.profile,
    }
}

/// The file's entry for a wrapped key, fields in the reference's order:
/// `arn`, `role` (only when set), `created_at`, `enc`, `aws_profile`
/// (always, empty when unset); the `context`, when there is one, as a map.
fn wrapped_entry(kms: &KmsKey<'_>, created_at: String, enc: String) -> KeyEntry {
    let mut fields = vec![("arn".to_string(), kms.arn.to_string())];
    if let Some(role) = kms.role {
        fields.push(("role".to_string(), role.to_string()));
    }
    fields.push(("created_at".to_string(), created_at));
    fields.push(("enc".to_string(), enc));
    fields.push((
        "aws_profile".to_string(),
        kms.profile.unwrap_or_default().to_string(),
    ));
    let mut context: Vec<(String, String)> = kms
        .context
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    context.sort();
    KeyEntry {
        kind: "kms".to_string(),
        fields,
        maps: if context.is_empty() {
            Vec::new()
        } else {
            vec![("context".to_string(), context)]
        },
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

    #[tokio::test]
    async fn malformed_recipients_fail_before_any_client_is_built() {
        let source = AwsKmsKeySource::new();
        for (fields, says) in [
            (&[("arn", "not-an-arn")][..], "not-an-arn"),
            (&[("role", "arn:aws:iam::1:role/r")][..], "no `arn` field"),
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
            assert!(err.to_string().contains(says), "{err}");
        }
        assert!(source.clients.is_empty());
    }

    #[test]
    fn wrapped_entries_hold_the_reference_fields() {
        let mut recipient = entry(&[
            ("arn", "arn:aws:kms:us-east-1:1:key/k"),
            ("role", "arn:aws:iam::1:role/r"),
        ]);
        recipient.maps.push((
            "context".into(),
            vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        ));
        let kms = KmsKey::parse(&recipient).expect("parses");
        let wrapped = wrapped_entry(&kms, "T".into(), "E".into());
        let names: Vec<&str> = wrapped.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["arn", "role", "created_at", "enc", "aws_profile"]);
        assert_eq!(wrapped.field("aws_profile"), Some(""));
        assert_eq!(
            wrapped.map("context"),
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );

        let plain = entry(&[
            ("arn", "arn:aws:kms:us-east-1:1:key/k"),
            ("aws_profile", "dev"),
        ]);
        let kms = KmsKey::parse(&plain).expect("parses");
        let wrapped = wrapped_entry(&kms, "T".into(), "E".into());
        let names: Vec<&str> = wrapped.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["arn", "created_at", "enc", "aws_profile"]);
        assert_eq!(wrapped.field("aws_profile"), Some("dev"));
        assert!(wrapped.maps.is_empty());
    }
}
