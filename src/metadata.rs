//! The `sops` metadata: where each format keeps it, and what it says.
//!
//! Every format parses the metadata as ordinary tree entries; this module
//! removes them from the document (unflattening dotenv/INI keys such as
//! `sops_age__list_0__map_enc`) and reads them as loosely as the reference
//! does (numbers or booleans written as strings are accepted); [`insert`]
//! writes them back as the reference's stores do.

mod flatten;
mod version;
mod write;

use regex::Regex;
use rsops_keysource::KeyEntry;

use crate::formats::MetadataLayout;
use crate::tree::{Document, Entry, Map, Value};

pub use write::{insert, insert_with, InsertOptions};

/// The sops version rsops writes into `sops.version`: that of the reference
/// binary whose output rsops is compared with byte for byte (a reader uses
/// the field only to work around bugs of sops before 3.7).
pub const WRITTEN_VERSION: &str = "3.11.0";

/// The key lists a key group may hold, in the order the reference reads them.
pub const KEY_KINDS: [&str; 7] = [
    "kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age", "pgp",
];

/// Which leaves are encrypted: exactly one rule per file.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CryptRule {
    /// Leaves with a key on their path ending in this suffix stay plaintext.
    UnencryptedSuffix(String),
    /// Only leaves with a key on their path ending in this suffix are encrypted.
    EncryptedSuffix(String),
    /// Leaves with a key on their path matching this stay plaintext.
    UnencryptedRegex(Regex),
    /// Only leaves with a key on their path matching this are encrypted.
    EncryptedRegex(Regex),
    /// Leaves after a comment matching this stay plaintext.
    UnencryptedCommentRegex(Regex),
    /// Only leaves after a comment matching this are encrypted.
    EncryptedCommentRegex(Regex),
}

/// A file's metadata.
#[derive(Debug)]
pub struct Metadata {
    /// `lastmodified` as written.
    pub last_modified: String,
    /// The encrypted MAC (`ENC[...]`), possibly empty.
    pub mac: String,
    /// The sops version that wrote the file. [`extract`] refuses a file
    /// without one (or with one that is not a semantic version), as the
    /// reference does.
    pub version: Option<String>,
    /// The encryption rule.
    pub rule: CryptRule,
    /// Whether only encrypted values are covered by the MAC.
    pub mac_only_encrypted: bool,
    /// How many key groups must be unwrapped (several groups only).
    pub shamir_threshold: usize,
    /// The key groups, each a list of entries holding the data key (or a share).
    pub key_groups: Vec<Vec<KeyEntry>>,
}

/// What is wrong with a file's metadata.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The file has no `sops` metadata: it is not encrypted.
    #[error("sops metadata not found")]
    NotFound,
    /// The metadata is present but malformed.
    #[error("invalid sops metadata: {0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> MetadataError {
    MetadataError::Invalid(message.into())
}

/// Removes the metadata from `doc` and parses it.
pub fn extract(doc: &mut Document, layout: MetadataLayout) -> Result<Metadata, MetadataError> {
    let tree = match layout {
        MetadataLayout::Nested => take_nested(doc)?,
        MetadataLayout::FlattenedBelowTop => {
            let mut flat = take_nested(doc)?;
            for entry in flat.iter_mut() {
                if let Entry::Pair(_, Value::Str(s)) = entry {
                    if s.contains("\\n") {
                        *s = s.replace("\\n", "\n");
                    }
                }
            }
            flatten::unflatten(flat).map_err(invalid)?
        }
        MetadataLayout::FlattenedFull => {
            flatten::unflatten(take_prefixed(doc)?).map_err(invalid)?
        }
    };
    from_tree(&tree)
}

/// Takes the top-level `sops` map out of every document (the first one's is used).
fn take_nested(doc: &mut Document) -> Result<Map, MetadataError> {
    let mut found = None;
    for (index, branch) in doc.branches.iter_mut().enumerate() {
        let mut i = 0;
        while i < branch.len() {
            if matches!(&branch[i], Entry::Pair(key, _) if key == "sops") {
                let Entry::Pair(_, value) = branch.remove(i) else {
                    unreachable!("matched a pair above")
                };
                if index == 0 {
                    if found.is_some() {
                        return Err(invalid("duplicate `sops` entry"));
                    }
                    match value {
                        Value::Map(map) => found = Some(map),
                        _ => return Err(invalid("the `sops` entry is not a map")),
                    }
                }
            } else {
                i += 1;
            }
        }
    }
    found.ok_or(MetadataError::NotFound)
}

/// Takes the `sops_`-prefixed keys out of the first document (dotenv).
fn take_prefixed(doc: &mut Document) -> Result<Map, MetadataError> {
    let Some(branch) = doc.branches.first_mut() else {
        return Err(MetadataError::NotFound);
    };
    let mut taken = Map::new();
    let mut kept = Map::with_capacity(branch.len());
    for entry in branch.drain(..) {
        match entry {
            Entry::Pair(key, value) if key.starts_with("sops_") => {
                taken.push(Entry::Pair(key["sops_".len()..].to_string(), value))
            }
            other => kept.push(other),
        }
    }
    *branch = kept;
    if taken.is_empty() {
        return Err(MetadataError::NotFound);
    }
    Ok(taken)
}

fn get<'a>(map: &'a Map, name: &str) -> Option<&'a Value> {
    map.iter().find_map(|entry| match entry {
        Entry::Pair(key, value) if key == name => Some(value),
        _ => None,
    })
}

/// A scalar read as a string, the way a weakly typed decoder would.
fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::Str(s) | Value::Time(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(crate::gofmt::format_float(
            *f,
            crate::gofmt::FloatFormat::Decimal,
        )),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

fn string_field(map: &Map, name: &str) -> Result<Option<String>, MetadataError> {
    match get(map, name) {
        None => Ok(None),
        Some(value) => scalar_string(value)
            .map(Some)
            .ok_or_else(|| invalid(format!("`{name}` is not a string"))),
    }
}

fn non_empty(map: &Map, name: &str) -> Result<Option<String>, MetadataError> {
    Ok(string_field(map, name)?.filter(|s| !s.is_empty()))
}

fn bool_field(map: &Map, name: &str) -> Result<bool, MetadataError> {
    match get(map, name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Int(i)) => Ok(*i != 0),
        Some(Value::Str(s)) => match s.as_str() {
            "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            _ => Err(invalid(format!("`{name}` is not a boolean"))),
        },
        Some(_) => Err(invalid(format!("`{name}` is not a boolean"))),
    }
}

fn int_field(map: &Map, name: &str) -> Result<usize, MetadataError> {
    let bad = || invalid(format!("`{name}` is not a non-negative integer"));
    match get(map, name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Int(i)) => usize::try_from(*i).map_err(|_| bad()),
        Some(Value::Str(s)) if s.is_empty() => Ok(0),
        Some(Value::Str(s)) => s.parse().map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

fn regex_field(map: &Map, name: &str) -> Result<Option<Regex>, MetadataError> {
    non_empty(map, name)?
        .map(|pattern| {
            Regex::new(&pattern).map_err(|e| invalid(format!("`{name}` is not a valid regex: {e}")))
        })
        .transpose()
}

fn crypt_rule(map: &Map) -> Result<CryptRule, MetadataError> {
    let mut rules = Vec::new();
    if let Some(s) = non_empty(map, "unencrypted_suffix")? {
        rules.push(CryptRule::UnencryptedSuffix(s));
    }
    if let Some(s) = non_empty(map, "encrypted_suffix")? {
        rules.push(CryptRule::EncryptedSuffix(s));
    }
    if let Some(r) = regex_field(map, "unencrypted_regex")? {
        rules.push(CryptRule::UnencryptedRegex(r));
    }
    if let Some(r) = regex_field(map, "encrypted_regex")? {
        rules.push(CryptRule::EncryptedRegex(r));
    }
    if let Some(r) = regex_field(map, "unencrypted_comment_regex")? {
        rules.push(CryptRule::UnencryptedCommentRegex(r));
    }
    if let Some(r) = regex_field(map, "encrypted_comment_regex")? {
        rules.push(CryptRule::EncryptedCommentRegex(r));
    }
    match rules.len() {
        0 => Ok(CryptRule::UnencryptedSuffix("_unencrypted".into())),
        1 => Ok(rules.remove(0)),
        _ => Err(invalid(
            "more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, \
             unencrypted_regex, encrypted_comment_regex, unencrypted_comment_regex",
        )),
    }
}

/// Reads one key entry (an item of `age`, `pgp`, `kms`, …).
fn key_entry(kind: &str, value: &Value) -> Result<KeyEntry, MetadataError> {
    let Value::Map(map) = value else {
        return Err(invalid(format!("an item of `{kind}` is not a map")));
    };
    let mut entry = KeyEntry {
        kind: kind.to_string(),
        ..KeyEntry::default()
    };
    for item in map {
        let Entry::Pair(key, value) = item else {
            continue;
        };
        match value {
            Value::Map(inner) => {
                let mut pairs = Vec::new();
                for inner_item in inner {
                    if let Entry::Pair(k, v) = inner_item {
                        let v = scalar_string(v).ok_or_else(|| {
                            invalid(format!("`{kind}.{key}.{k}` is not a string"))
                        })?;
                        pairs.push((k.clone(), v));
                    }
                }
                entry.maps.push((key.clone(), pairs));
            }
            Value::List(_) => return Err(invalid(format!("`{kind}.{key}` is a list"))),
            scalar => {
                let text = scalar_string(scalar).unwrap_or_default();
                entry.fields.push((key.clone(), text));
            }
        }
    }
    Ok(entry)
}

/// Reads the key lists of one group (or of the top level, for one group).
fn key_group(map: &Map) -> Result<Vec<KeyEntry>, MetadataError> {
    let mut group = Vec::new();
    for kind in KEY_KINDS {
        match get(map, kind) {
            None | Some(Value::Null) => {}
            Some(Value::List(items)) => {
                for item in items {
                    if !matches!(item, Value::Comment(_)) {
                        group.push(key_entry(kind, item)?);
                    }
                }
            }
            Some(_) => return Err(invalid(format!("`{kind}` is not a list"))),
        }
    }
    Ok(group)
}

fn key_groups(map: &Map) -> Result<Vec<Vec<KeyEntry>>, MetadataError> {
    let top = key_group(map)?;
    if !top.is_empty() {
        return Ok(vec![top]);
    }
    match get(map, "key_groups") {
        Some(Value::List(groups)) if !groups.is_empty() => groups
            .iter()
            .filter(|g| !matches!(g, Value::Comment(_)))
            .map(|g| match g {
                Value::Map(group) => key_group(group),
                _ => Err(invalid("an item of `key_groups` is not a map")),
            })
            .collect(),
        _ => Err(invalid("no keys found in file")),
    }
}

/// Builds the metadata from the (unflattened) `sops` map.
fn from_tree(map: &Map) -> Result<Metadata, MetadataError> {
    let last_modified = string_field(map, "lastmodified")?.unwrap_or_default();
    if !crate::timefmt::is_rfc3339(&last_modified) {
        return Err(invalid("`lastmodified` is not an RFC 3339 timestamp"));
    }
    let metadata = Metadata {
        last_modified,
        mac: string_field(map, "mac")?.unwrap_or_default(),
        version: non_empty(map, "version")?,
        rule: crypt_rule(map)?,
        mac_only_encrypted: bool_field(map, "mac_only_encrypted")?,
        shamir_threshold: int_field(map, "shamir_threshold")?,
        key_groups: key_groups(map)?,
    };
    // Checked last, as the reference checks it only once the metadata loaded.
    let shown = metadata.version.as_deref().unwrap_or_default();
    if let Some(why) = version::problem(shown) {
        return Err(invalid(match &metadata.version {
            None => format!("`version` is missing, and sops refuses such files ({why})"),
            Some(v) => format!(
                "`version` {v:?} is not a semantic version, and sops refuses such files ({why})"
            ),
        }));
    }
    Ok(metadata)
}

/// The key an entry names, as the reference prints it (`ToString`): the
/// same for an entry read from a file and one made from a flag or a rule,
/// so `rotate --rm-*`, `updatekeys` and `groups` can compare them.
pub fn key_identity(entry: &KeyEntry) -> String {
    let field = |name| entry.field(name).unwrap_or_default();
    match entry.kind.as_str() {
        "age" => field("recipient").to_string(),
        "pgp" => field("fp").replace(' ', "").to_ascii_uppercase(),
        "kms" => field("arn").to_string(),
        "gcp_kms" => field("resource_id").to_string(),
        // A file entry is split; a flag's is the whole URL.
        "azure_kv" => match entry.field("name") {
            Some(name) => format!(
                "{}/keys/{name}/{}",
                field("vault_url").trim_end_matches('/'),
                field("version")
            ),
            None => field("vault_url").to_string(),
        },
        "hc_vault" => match entry.field("key_name") {
            Some(key) => format!(
                "{}/v1/{}/keys/{key}",
                field("vault_address").trim_end_matches('/'),
                field("engine_path").trim_matches('/')
            ),
            None => field("vault_address").to_string(),
        },
        _ => entry
            .fields
            .iter()
            .filter(|(k, _)| k != "enc" && k != "created_at")
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(","),
    }
}
