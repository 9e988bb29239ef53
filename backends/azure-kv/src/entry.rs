//! The fields of an `azure_kv` entry, checked before any network call.

use base64::Engine as _;
use rsops_keysource::KeyEntry;

use crate::errors::AzureError;

/// A parsed `azure_kv` entry.
pub(crate) struct AzureEntry {
    /// `https://NAME.vault.azure.net`, without a trailing slash.
    pub(crate) vault_url: String,
    pub(crate) name: String,
    /// Empty means the key's current version, as the service reads it.
    pub(crate) version: String,
    pub(crate) ciphertext: Vec<u8>,
}

impl AzureEntry {
    /// Reads the entry; a missing or empty `vault_url`, `name` or `enc` is
    /// a corrupt entry, an absent `version` the key's current version.
    pub(crate) fn parse(entry: &KeyEntry) -> Result<Self, AzureError> {
        let vault_url = entry
            .required("vault_url")
            .map_err(AzureError::Entry)?
            .trim_end_matches('/')
            .to_string();
        let name = entry
            .required("name")
            .map_err(AzureError::Entry)?
            .to_string();
        let version = entry.field("version").unwrap_or_default().to_string();
        let enc = entry.encrypted_key().map_err(AzureError::Entry)?;
        // The reference writes base64url without padding; accept padding too
        // in case a tool re-wrote the file.
        let ciphertext = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(enc.trim().trim_end_matches('='))
            .map_err(|_| AzureError::BadCiphertext)?;
        Ok(AzureEntry {
            vault_url,
            name,
            version,
            ciphertext,
        })
    }
}

/// The key an `azure_kv` recipient names, checked before any network call.
pub(crate) struct AzureKey {
    /// `https://NAME.vault.azure.net`, without a trailing slash.
    pub(crate) vault_url: String,
    pub(crate) name: String,
    /// `None`: the key's latest version, resolved before encrypting.
    pub(crate) version: Option<String>,
}

impl AzureKey {
    /// Reads a recipient: either `vault_url`, `name` and `version` (a
    /// `.sops.yaml` rule), or the key's whole URL in `vault_url` alone
    /// (`--azure-kv`, `SOPS_AZURE_KEYVAULT_URLS`).
    pub(crate) fn parse(entry: &KeyEntry) -> Result<Self, AzureError> {
        let vault_url = entry.required("vault_url").map_err(AzureError::Entry)?;
        match entry.field("name").filter(|n| !n.trim().is_empty()) {
            Some(name) => Ok(AzureKey {
                vault_url: vault_url.trim().trim_end_matches('/').to_string(),
                name: name.trim().to_string(),
                version: entry
                    .field("version")
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string),
            }),
            None => Self::from_url(vault_url),
        }
    }

    /// `https://HOST/keys/NAME[/VERSION]`, as the reference's
    /// `NewMasterKeyFromURL` reads it (surrounding spaces ignored).
    pub(crate) fn from_url(url: &str) -> Result<Self, AzureError> {
        let bad = || AzureError::BadKeyUrl(url.to_string());
        let trimmed = url.trim();
        let rest = trimmed.strip_prefix("https://").ok_or_else(bad)?;
        let (host, path) = rest.split_once('/').ok_or_else(bad)?;
        let path = path.strip_prefix("keys/").ok_or_else(bad)?;
        let mut parts = path.split('/');
        let name = parts.next().filter(|n| !n.is_empty()).ok_or_else(bad)?;
        let version = match (parts.next(), parts.next()) {
            (None, _) => None,
            (Some(v), None) if !v.is_empty() => Some(v.to_string()),
            _ => return Err(bad()),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(AzureKey {
            vault_url: format!("https://{host}"),
            name: name.to_string(),
            version,
        })
    }

    /// The key's URL, as the reference prints it.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{}/keys/{}/{}",
            self.vault_url,
            self.name,
            self.version.as_deref().unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(enc: &str) -> KeyEntry {
        KeyEntry {
            kind: "azure_kv".into(),
            fields: vec![
                ("vault_url".into(), "https://v.vault.azure.net/".into()),
                ("name".into(), "k".into()),
                ("version".into(), "abc".into()),
                ("enc".into(), enc.into()),
            ],
            maps: vec![],
        }
    }

    #[test]
    fn reads_unpadded_and_padded_base64url() {
        let parsed = AzureEntry::parse(&entry("-_8")).unwrap();
        assert_eq!(parsed.ciphertext, [0xfb, 0xff]);
        assert_eq!(parsed.vault_url, "https://v.vault.azure.net");
        assert_eq!(
            AzureEntry::parse(&entry("-_8=")).unwrap().ciphertext,
            [0xfb, 0xff]
        );
        assert!(AzureEntry::parse(&entry("+/8")).is_err());
    }

    #[test]
    fn missing_fields_are_corrupt_entries_that_name_them() {
        let mut without_name = entry("-_8");
        without_name.fields.retain(|(k, _)| k != "name");
        let error = AzureEntry::parse(&without_name)
            .err()
            .map(|e| e.into_key_error("k"));
        assert_eq!(
            error.map(|e| (e.class(), e.to_string())),
            Some((
                rsops_keysource::ErrorClass::CorruptEntry,
                "the azure_kv entry has no `name` field".into()
            ))
        );
        let mut without_version = entry("-_8");
        without_version.fields.retain(|(k, _)| k != "version");
        let parsed = AzureEntry::parse(&without_version).map(|e| e.version);
        assert_eq!(parsed.ok().as_deref(), Some(""));
    }

    fn recipient(fields: &[(&str, &str)]) -> KeyEntry {
        KeyEntry {
            kind: "azure_kv".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            maps: vec![],
        }
    }

    #[test]
    fn key_urls_are_read_as_the_reference_reads_them() {
        let key = AzureKey::from_url(" https://v.vault.azure.net/keys/k/abc ").unwrap();
        assert_eq!(
            (
                key.vault_url.as_str(),
                key.name.as_str(),
                key.version.as_deref()
            ),
            ("https://v.vault.azure.net", "k", Some("abc"))
        );
        let latest = AzureKey::from_url("https://v.vault.azure.net/keys/k").unwrap();
        assert_eq!((latest.name.as_str(), latest.version), ("k", None));
        for bad in [
            "http://v.vault.azure.net/keys/k/1",
            "https://v.vault.azure.net/secrets/k/1",
            "https://v.vault.azure.net/keys/",
            "https://v.vault.azure.net/keys/k/1/2",
            "https://v.vault.azure.net/keys/k/",
            "https:///keys/k",
        ] {
            let error = AzureKey::from_url(bad).err().map(|e| e.into_key_error(bad));
            assert_eq!(
                error.as_ref().map(|e| e.class()),
                Some(rsops_keysource::ErrorClass::CorruptEntry),
                "{bad}"
            );
            assert!(error.is_some_and(|e| e.to_string().contains(bad)), "{bad}");
        }
    }

    #[test]
    fn rule_recipients_keep_their_fields() {
        let key = AzureKey::parse(&recipient(&[
            ("vault_url", "https://v.vault.azure.net/"),
            ("name", "k"),
            ("version", ""),
        ]))
        .unwrap();
        assert_eq!(key.vault_url, "https://v.vault.azure.net");
        assert_eq!((key.name.as_str(), key.version), ("k", None));
        let whole = AzureKey::parse(&recipient(&[(
            "vault_url",
            "https://v.vault.azure.net/keys/k/7",
        )]))
        .unwrap();
        assert_eq!(whole.describe(), "https://v.vault.azure.net/keys/k/7");
    }
}
