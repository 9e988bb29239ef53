//! Keys named on the command line (`--age`, `--add-kms`, `groups add
//! --pgp`…) and in creation rules, as the metadata entries that name them
//! to their key sources.

use rsops::config::KeySpec;
use rsops_keysource::KeyEntry;

use super::Failure;

/// Comma-separated key lists, one per key kind, as the flags give them.
#[derive(Default)]
pub struct KeyLists<'a> {
    /// age recipients.
    pub age: Option<&'a str>,
    /// PGP fingerprints.
    pub pgp: Option<&'a str>,
    /// AWS KMS ARNs (`ARN` or `ARN+ROLE_ARN`).
    pub kms: Option<&'a str>,
    /// GCP KMS resource IDs.
    pub gcp_kms: Option<&'a str>,
    /// Azure Key Vault key URLs.
    pub azure_kv: Option<&'a str>,
    /// Vault transit key URIs.
    pub hc_vault_transit: Option<&'a str>,
    /// KMS encryption context for the `kms` keys.
    pub encryption_context: Option<&'a str>,
    /// AWS profile for the `kms` keys.
    pub aws_profile: Option<&'a str>,
}

/// The entries the lists name, in the reference's order of kinds.
pub fn entries(lists: &KeyLists<'_>) -> Result<Vec<KeyEntry>, Failure> {
    let mut entries: Vec<KeyEntry> = Vec::new();
    for recipient in split(lists.age) {
        entries.push(entry("age", &[("recipient", recipient)]));
    }
    for fp in split(lists.pgp) {
        entries.push(entry("pgp", &[("fp", fp.replace(' ', ""))]));
    }
    let context = encryption_context(lists.encryption_context)?;
    for arn in split(lists.kms) {
        let (arn, role) = match arn.split_once("+arn:") {
            Some((arn, role)) => (arn.to_string(), Some(format!("arn:{role}"))),
            None => (arn, None),
        };
        let mut fields = vec![("arn", arn)];
        fields.extend(role.map(|r| ("role", r)));
        fields.extend(lists.aws_profile.map(|p| ("aws_profile", p.to_string())));
        let mut kms = entry("kms", &fields);
        if !context.is_empty() {
            kms.maps.push(("context".into(), context.clone()));
        }
        entries.push(kms);
    }
    for id in split(lists.gcp_kms) {
        entries.push(entry("gcp_kms", &[("resource_id", id)]));
    }
    for url in split(lists.azure_kv) {
        entries.push(entry("azure_kv", &[("vault_url", url)]));
    }
    for uri in split(lists.hc_vault_transit) {
        entries.push(entry("hc_vault", &[("vault_address", uri)]));
    }
    Ok(entries)
}

/// Splits a comma-separated flag value, as sops does.
fn split(list: Option<&str>) -> Vec<String> {
    list.into_iter()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `--encryption-context k1:v1,k2:v2`, as sops parses it: each pair is one
/// `key:value`. Where sops only warns and drops the whole context for a
/// malformed pair, rsops refuses: a key wrapped without the context the
/// user asked for would be a silent downgrade.
fn encryption_context(text: Option<&str>) -> Result<Vec<(String, String)>, Failure> {
    let mut pairs = Vec::new();
    for pair in text
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
    {
        let Some((key, value)) = pair.split_once(':').filter(|(_, v)| !v.contains(':')) else {
            return Err(Failure::Usage {
                message: format!("--encryption-context: `{pair}` is not a key:value pair"),
                hint: Some("write the context as key:value pairs separated by commas"),
            });
        };
        pairs.push((key.to_string(), value.to_string()));
    }
    pairs.sort();
    Ok(pairs)
}

fn entry(kind: &str, fields: &[(&str, String)]) -> KeyEntry {
    KeyEntry {
        kind: kind.to_string(),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        maps: Vec::new(),
    }
}

/// A creation rule's key as the entry that names it to its key source.
pub fn spec_entry(spec: &KeySpec) -> KeyEntry {
    match spec {
        KeySpec::AgeRecipient(r) => entry("age", &[("recipient", r.clone())]),
        KeySpec::Pgp(fp) => entry("pgp", &[("fp", fp.clone())]),
        KeySpec::Kms {
            arn,
            role,
            context,
            profile,
        } => {
            let mut fields = vec![("arn", arn.clone())];
            fields.extend(role.clone().map(|r| ("role", r)));
            fields.extend(profile.clone().map(|p| ("aws_profile", p)));
            let mut kms = entry("kms", &fields);
            if !context.is_empty() {
                kms.maps.push((
                    "context".into(),
                    context
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ));
            }
            kms
        }
        KeySpec::GcpKms(id) => entry("gcp_kms", &[("resource_id", id.clone())]),
        KeySpec::AzureKv {
            vault_url,
            key,
            version,
        } => {
            let mut fields = vec![("vault_url", vault_url.clone()), ("name", key.clone())];
            fields.extend(version.clone().map(|v| ("version", v)));
            entry("azure_kv", &fields)
        }
        KeySpec::HcVault(uri) => entry("hc_vault", &[("vault_address", uri.clone())]),
        KeySpec::HcKms(id) => entry("hckms", &[("key_id", id.clone())]),
        _ => entry("unknown", &[]),
    }
}
