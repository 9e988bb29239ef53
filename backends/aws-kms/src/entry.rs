//! Reading a `sops.kms` entry into what a Decrypt call needs, and a
//! recipient (an entry without `enc`) into what an Encrypt call needs.

use std::collections::HashMap;

use base64::Engine as _;
use rsops_keysource::{KeyEntry, KeyError};

/// The KMS key an entry names, and how to reach it: all a call needs but
/// the data key.
#[derive(Debug)]
pub(crate) struct KmsKey<'a> {
    /// The key or alias ARN, sent as the call's `KeyId`.
    pub arn: &'a str,
    /// The region the key lives in, taken from the ARN.
    pub region: String,
    /// The encryption context; Decrypt must send the one Encrypt was given.
    pub context: HashMap<String, String>,
    /// Role to assume with STS before calling KMS.
    pub role: Option<&'a str>,
    /// Named profile of the shared config and credentials files.
    pub profile: Option<&'a str>,
}

impl<'a> KmsKey<'a> {
    /// Parses the fields naming the key; every problem is a corrupt-entry
    /// error, found before any client is built or credential looked up.
    pub fn parse(entry: &'a KeyEntry) -> Result<Self, KeyError> {
        let arn = entry.required("arn")?;
        let region = region_of(arn).ok_or_else(|| {
            KeyError::corrupt_entry(format!(
                "`{arn}` is not an AWS KMS key or alias ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)"
            ))
        })?;
        let context = entry
            .map("context")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(KmsKey {
            arn,
            region,
            context,
            // The reference writes `role` and `aws_profile` as empty strings
            // when unused; empty means "not set".
            role: entry.field("role").filter(|r| !r.is_empty()),
            profile: entry.field("aws_profile").filter(|p| !p.is_empty()),
        })
    }

    /// The context as the SDK takes it: none rather than an empty map.
    pub fn sdk_context(&self) -> Option<HashMap<String, String>> {
        (!self.context.is_empty()).then(|| self.context.clone())
    }
}

/// A `kms` entry of a file, parsed: the key and its wrapped data key.
#[derive(Debug)]
pub(crate) struct KmsEntry<'a> {
    /// The key, region, context, role and profile.
    pub key: KmsKey<'a>,
    /// The wrapped data key (the CiphertextBlob).
    pub ciphertext: Vec<u8>,
}

impl<'a> KmsEntry<'a> {
    /// Parses an entry; every problem is a corrupt-entry error, found
    /// before any client is built or credential looked up.
    pub fn parse(entry: &'a KeyEntry) -> Result<Self, KeyError> {
        let key = KmsKey::parse(entry)?;
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(entry.encrypted_key()?)
            .map_err(|e| {
                KeyError::corrupt_entry(format!("the encrypted data key is not valid base64: {e}"))
            })?;
        Ok(KmsEntry { key, ciphertext })
    }
}

/// The region of a KMS key or alias ARN, or `None` if it is not one.
///
/// Matches what the reference's `^arn:aws[\w-]*:kms:(.+):[0-9]+:(key|alias)/.+$`
/// accepts and captures: the region is everything up to the *last*
/// `:<account>:key/` or `:<account>:alias/` (the group is greedy), and no
/// part may contain a newline (Go's `.` does not match one).
pub(crate) fn region_of(arn: &str) -> Option<String> {
    if arn.contains('\n') {
        return None;
    }
    let rest = arn.strip_prefix("arn:aws")?;
    let (partition_tail, rest) = rest.split_once(':')?;
    if !partition_tail
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    let rest = rest.strip_prefix("kms:")?;
    rest.match_indices(':')
        .rev()
        .map(|(i, _)| i)
        .find(|&i| i > 0 && is_account_and_resource(&rest[i + 1..]))
        .map(|i| rest[..i].to_string())
}

/// `[0-9]+:(key|alias)/.+`
fn is_account_and_resource(s: &str) -> bool {
    let Some((account, resource)) = s.split_once(':') else {
        return false;
    };
    let name = resource
        .strip_prefix("key/")
        .or_else(|| resource.strip_prefix("alias/"));
    !account.is_empty()
        && account.bytes().all(|b| b.is_ascii_digit())
        && name.is_some_and(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use rsops_keysource::ErrorClass;

    use super::*;

    fn entry(fields: &[(&str, &str)], context: &[(&str, &str)]) -> KeyEntry {
        let own = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        KeyEntry {
            kind: "kms".into(),
            fields: own(fields),
            maps: if context.is_empty() {
                Vec::new()
            } else {
                vec![("context".into(), own(context))]
            },
        }
    }

    #[test]
    fn region_comes_from_the_arn() {
        let cases = [
            ("arn:aws:kms:us-east-1:123456789012:key/abc", "us-east-1"),
            ("arn:aws:kms:eu-west-1:1:alias/team/prod", "eu-west-1"),
            ("arn:aws-us-gov:kms:us-gov-west-1:1:key/k", "us-gov-west-1"),
            ("arn:aws-cn:kms:cn-north-1:1:key/k", "cn-north-1"),
            // The reference's group is greedy: the last account/resource wins.
            ("arn:aws:kms:a:1:key/b:2:key/c", "a:1:key/b"),
        ];
        for (arn, region) in cases {
            assert_eq!(region_of(arn).as_deref(), Some(region), "{arn}");
        }
    }

    #[test]
    fn non_kms_arns_are_rejected() {
        for arn in [
            "",
            "key/abc",
            "arn:aws:s3:::bucket",
            "arn:aws:kms:us-east-1:abc:key/x",
            "arn:aws:kms:us-east-1::key/x",
            "arn:aws:kms:us-east-1:1:key/",
            "arn:aws:kms:us-east-1:1:grant/x",
            "arn:aws:kms::1:key/x",
            "arn:aws.x:kms:us-east-1:1:key/x",
            "arn:aws:kms:us-east-1:1:key/x\n",
        ] {
            assert_eq!(region_of(arn), None, "{arn:?}");
        }
    }

    #[test]
    fn parses_every_field() {
        let e = entry(
            &[
                ("arn", "arn:aws:kms:eu-west-1:1:key/k"),
                ("role", "arn:aws:iam::1:role/r"),
                ("enc", "AAEC"),
                ("aws_profile", "dev"),
            ],
            &[("app", "x"), ("Env", "Prod Team")],
        );
        let parsed = KmsEntry::parse(&e).expect("parses");
        assert_eq!(parsed.ciphertext, vec![0, 1, 2]);
        let kms = parsed.key;
        assert_eq!(kms.arn, "arn:aws:kms:eu-west-1:1:key/k");
        assert_eq!(kms.region, "eu-west-1");
        assert_eq!(kms.role, Some("arn:aws:iam::1:role/r"));
        assert_eq!(kms.profile, Some("dev"));
        assert_eq!(kms.context.len(), 2);
        assert_eq!(kms.context["Env"], "Prod Team");
        assert_eq!(kms.sdk_context().map(|c| c.len()), Some(2));
    }

    #[test]
    fn empty_role_and_profile_mean_unset() {
        let e = entry(
            &[
                ("arn", "arn:aws:kms:us-east-1:1:key/k"),
                ("role", ""),
                ("enc", "AAEC"),
                ("aws_profile", ""),
            ],
            &[],
        );
        let kms = KmsEntry::parse(&e).expect("parses").key;
        assert_eq!((kms.role, kms.profile), (None, None));
        assert!(kms.context.is_empty());
        assert_eq!(kms.sdk_context(), None);
    }

    #[test]
    fn malformed_entries() {
        let arn = ("arn", "arn:aws:kms:us-east-1:1:key/k");
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[("enc", "AAEC")], "the kms entry has no `arn` field"),
            (
                &[("arn", ""), ("enc", "AAEC")],
                "the kms entry has no `arn` field",
            ),
            (&[("arn", "nope"), ("enc", "AAEC")], "not an AWS KMS key"),
            (&[arn], "the kms entry has no `enc` field"),
            (&[arn, ("enc", "!!")], "not valid base64"),
        ];
        for (fields, message) in cases {
            let err = KmsEntry::parse(&entry(fields, &[])).expect_err("malformed");
            assert_eq!(err.class(), ErrorClass::CorruptEntry, "{err}");
            assert!(err.to_string().contains(message), "{err} vs {message}");
        }
    }
}
