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
}
