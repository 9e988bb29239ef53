//! From the YAML tree to the config's parts, with the reference's typing:
//! yaml.v3 decoding into `config.go`'s structs (unknown keys ignored, any
//! scalar accepted for a string, YAML 1.1 `yes`/`no` for a bool, null for the
//! zero value), and `parseKeyField` for the keys that take a string or a list.

use std::collections::BTreeMap;

use crate::formats::Format;
use crate::metadata::CryptRule;
use crate::tree::{Entry, Map, Value};

use super::{go_regex, scalar_text, ConfigErrorKind, CreationRule, KeyGroup, KeySpec, Stores};

/// An error and where it is (relative to the caller's location).
pub(super) type Located = (String, ConfigErrorKind);

fn wrong(key: &str, expected: &'static str) -> Located {
    (
        String::new(),
        ConfigErrorKind::WrongType {
            key: key.to_owned(),
            expected,
        },
    )
}

/// Prefixes an error's location with `at`.
fn within(at: &str) -> impl Fn(Located) -> Located + '_ {
    move |(sub, kind)| {
        let joined = match (at.is_empty(), sub.is_empty()) {
            (true, _) => sub,
            (false, true) => at.to_owned(),
            (false, false) => format!("{at}.{sub}"),
        };
        (joined, kind)
    }
}

fn child<'a>(map: &'a Map, key: &str) -> Option<&'a Value> {
    map.iter().find_map(|e| match e {
        Entry::Pair(k, v) if k == key => Some(v),
        _ => None,
    })
}

/// A map-typed key: absent or null is `None`.
fn map_field<'a>(map: &'a Map, key: &str) -> Result<Option<&'a Map>, Located> {
    match child(map, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Map(m)) => Ok(Some(m)),
        Some(_) => Err(wrong(key, "a map")),
    }
}

/// A list-typed key: absent or null is `None`; comments are skipped.
fn list_field<'a>(map: &'a Map, key: &str) -> Result<Option<Vec<&'a Value>>, Located> {
    match child(map, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::List(items)) => Ok(Some(
            items
                .iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .collect(),
        )),
        Some(_) => Err(wrong(key, "a list")),
    }
}

/// A Go `string` field.
fn string_field(map: &Map, key: &str) -> Result<String, Located> {
    match child(map, key) {
        None => Ok(String::new()),
        Some(v) => scalar_text(v).ok_or_else(|| wrong(key, "a string")),
    }
}

/// A Go `int` field.
fn int_field(map: &Map, key: &str) -> Result<Option<i64>, Located> {
    match child(map, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Int(n)) => Ok(Some(*n)),
        Some(_) => Err(wrong(key, "an integer")),
    }
}

/// A Go `bool` field, with yaml.v3's YAML 1.1 words.
fn bool_field(map: &Map, key: &str) -> Result<bool, Located> {
    match child(map, key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Str(s)) => match s.as_str() {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(true),
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(false),
            _ => Err(wrong(key, "a boolean")),
        },
        Some(_) => Err(wrong(key, "a boolean")),
    }
}

/// A Go `[]string` field: a list of scalars (a lone string is refused).
fn strings_field(map: &Map, key: &str) -> Result<Vec<String>, Located> {
    let Some(items) = list_field(map, key).map_err(|_| wrong(key, "a list of strings"))? else {
        return Ok(Vec::new());
    };
    items
        .into_iter()
        .map(|v| scalar_text(v).ok_or_else(|| wrong(key, "a list of strings")))
        .collect()
}

/// The six selection keys, in the reference's order.
const SELECTION_KEYS: [&str; 6] = [
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
];

/// The flat key lists (`string` or `[]string`), in the order the reference
/// puts their keys into the group.
const FLAT_KEYS: [&str; 5] = ["age", "pgp", "kms", "gcp_kms", "azure_keyvault"];

/// A creation rule as loaded: typed as yaml.v3 would, with the checks the
/// reference makes only for the chosen rule left for [`RawRule::resolve`].
#[derive(Debug, Clone)]
pub(super) struct RawRule {
    pub index: usize,
    pub path_regex: Option<String>,
    /// `kms`, `age`, … and `hc_vault_transit_uri` as written (interface{} in Go).
    flat: Vec<(&'static str, Value)>,
    aws_profile: String,
    hckms: Vec<String>,
    key_groups: Vec<KeyGroup>,
    shamir_threshold: i64,
    selection: Vec<(&'static str, String)>,
    mac_only_encrypted: bool,
}

/// Parses the whole file.
pub(super) fn config(bytes: &[u8]) -> Result<(Option<Vec<RawRule>>, Stores), Located> {
    let doc = Format::Yaml
        .parse(bytes)
        .map_err(|e| (String::new(), ConfigErrorKind::Yaml(e.to_string())))?;
    let Some(root) = doc.branches.first() else {
        return Ok((None, Stores::default()));
    };
    let stores = stores(root)?;
    let rules = match list_field(root, "creation_rules")? {
        None => None,
        Some(items) => Some(
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| {
                    let at = format!("creation_rules[{index}]");
                    match item {
                        Value::Map(m) => raw_rule(index, m).map_err(within(&at)),
                        Value::Null => raw_rule(index, &Map::new()),
                        _ => Err((
                            at,
                            ConfigErrorKind::WrongType {
                                key: "creation_rules".into(),
                                expected: "a list of maps",
                            },
                        )),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok((rules, stores))
}

fn stores(root: &Map) -> Result<Stores, Located> {
    let Some(stores) = map_field(root, "stores")? else {
        return Ok(Stores::default());
    };
    let indent = |name: &str| -> Result<Option<i64>, Located> {
        match map_field(stores, name).map_err(within("stores"))? {
            None => Ok(None),
            Some(m) => int_field(m, "indent").map_err(within(&format!("stores.{name}"))),
        }
    };
    Ok(Stores {
        yaml_indent: indent("yaml")?,
        json_indent: indent("json")?,
        json_binary_indent: indent("json_binary")?,
    })
}

fn raw_rule(index: usize, map: &Map) -> Result<RawRule, Located> {
    let path_regex = child(map, "path_regex")
        .map(|v| scalar_text(v).ok_or_else(|| wrong("path_regex", "a string")))
        .transpose()?;
    let mut flat = Vec::new();
    for key in FLAT_KEYS.iter().chain(["hc_vault_transit_uri"].iter()) {
        if let Some(v) = child(map, key) {
            flat.push((*key, v.clone()));
        }
    }
    let mut key_groups = Vec::new();
    if let Some(items) = list_field(map, "key_groups")? {
        for (i, item) in items.into_iter().enumerate() {
            let at = format!("key_groups[{i}]");
            let group = key_group(item).map_err(within(&at))?;
            key_groups.push(group);
        }
    }
    let mut selection = Vec::new();
    for key in SELECTION_KEYS {
        let value = string_field(map, key)?;
        if !value.is_empty() {
            selection.push((key, value));
        }
    }
    Ok(RawRule {
        index,
        path_regex,
        flat,
        aws_profile: string_field(map, "aws_profile")?,
        hckms: strings_field(map, "hckms")?,
        key_groups,
        shamir_threshold: int_field(map, "shamir_threshold")?.unwrap_or(0),
        selection,
        mac_only_encrypted: bool_field(map, "mac_only_encrypted")?,
    })
}

/// A `key_groups` entry: its `merge`d groups first, then age, pgp, kms,
/// gcp_kms, hckms, azure_keyvault, hc_vault; deduplicated (`extractMasterKeys`).
fn key_group(value: &Value) -> Result<KeyGroup, Located> {
    let empty = Map::new();
    let map = match value {
        Value::Map(m) => m,
        Value::Null => &empty,
        _ => return Err(wrong("key_groups", "a list of maps")),
    };
    let mut keys = Vec::new();
    if let Some(items) = list_field(map, "merge")? {
        for (i, item) in items.into_iter().enumerate() {
            let at = format!("merge[{i}]");
            keys.extend(key_group(item).map_err(within(&at))?);
        }
    }
    for r in strings_field(map, "age")? {
        // age.MasterKeysFromRecipients: split on commas, each trimmed.
        if !r.is_empty() {
            keys.extend(
                r.split(',')
                    .map(|s| KeySpec::AgeRecipient(s.trim().to_owned())),
            );
        }
    }
    for f in strings_field(map, "pgp")? {
        keys.push(KeySpec::Pgp(f.replace(' ', "")));
    }
    for (i, entry) in entry_maps(map, "kms")?.into_iter().enumerate() {
        let at = format!("kms[{i}]");
        keys.push(kms_entry(entry).map_err(within(&at))?);
    }
    for (i, entry) in entry_maps(map, "gcp_kms")?.into_iter().enumerate() {
        let at = format!("gcp_kms[{i}]");
        let id = string_field(entry, "resource_id").map_err(within(&at))?;
        keys.push(KeySpec::GcpKms(id.replace(' ', "")));
    }
    for (i, entry) in entry_maps(map, "hckms")?.into_iter().enumerate() {
        let at = format!("hckms[{i}]");
        keys.push(KeySpec::HcKms(
            string_field(entry, "key_id").map_err(within(&at))?,
        ));
    }
    for (i, entry) in entry_maps(map, "azure_keyvault")?.into_iter().enumerate() {
        let at = format!("azure_keyvault[{i}]");
        let field = |k| string_field(entry, k).map_err(within(&at));
        let version = field("version")?;
        keys.push(KeySpec::AzureKv {
            vault_url: field("vaultUrl")?,
            key: field("key")?,
            version: (!version.is_empty()).then_some(version),
        });
    }
    for uri in strings_field(map, "hc_vault")? {
        keys.push(KeySpec::HcVault(uri));
    }
    Ok(dedup(keys))
}

/// The maps of a list-of-structs key (null items are zero structs).
fn entry_maps<'a>(map: &'a Map, key: &str) -> Result<Vec<&'a Map>, Located> {
    static EMPTY: Map = Vec::new();
    let items = list_field(map, key).map_err(|_| wrong(key, "a list of maps"))?;
    items
        .unwrap_or_default()
        .into_iter()
        .map(|v| match v {
            Value::Map(m) => Ok(m),
            Value::Null => Ok(&EMPTY),
            _ => Err(wrong(key, "a list of maps")),
        })
        .collect()
}

fn kms_entry(map: &Map) -> Result<KeySpec, Located> {
    let mut context = BTreeMap::new();
    if let Some(ctx) = map_field(map, "context")? {
        for entry in ctx {
            if let Entry::Pair(k, v) = entry {
                // A null value is a nil *string the reference dereferences
                // (and panics on) when writing the metadata: refuse it.
                let text = match v {
                    Value::Null => None,
                    other => scalar_text(other),
                }
                .ok_or_else(|| {
                    (
                        String::new(),
                        ConfigErrorKind::WrongType {
                            key: format!("context.{k}"),
                            expected: "a string",
                        },
                    )
                })?;
                context.insert(k.clone(), text);
            }
        }
    }
    let opt = |s: String| (!s.is_empty()).then_some(s);
    Ok(KeySpec::Kms {
        arn: string_field(map, "arn")?,
        role: opt(string_field(map, "role")?),
        context,
        profile: opt(string_field(map, "aws_profile")?),
    })
}

fn dedup(keys: Vec<KeySpec>) -> KeyGroup {
    let mut seen = std::collections::HashSet::new();
    keys.into_iter()
        .filter(|k| seen.insert(k.identity()))
        .collect()
}

/// `parseKeyField`: a comma-separated string (pieces trimmed, empty ones
/// dropped) or a list of strings (kept whole here; the backends' own
/// comma splitting happens in [`flat_keys`]).
fn key_field(key: &str, value: &Value) -> Result<Vec<String>, Located> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Str(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        Value::List(items) => items
            .iter()
            .filter(|v| !matches!(v, Value::Comment(_)))
            .map(|v| match v {
                Value::Str(s) => Ok(s.clone()),
                _ => Err(wrong(key, "a string or a list of strings")),
            })
            .collect(),
        _ => Err(wrong(key, "a string or a list of strings")),
    }
}

/// The reference joins a key field's entries with commas and lets the
/// backend split them again, so a list item may itself hold several keys.
fn pieces(entries: &[String]) -> Vec<String> {
    let joined = entries.join(",");
    if joined.is_empty() {
        return Vec::new();
    }
    joined
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// `azkv.NewMasterKeyFromURL`: `^(https://[^/]+)/keys/([^/]+)(/[^/]*)?$`, trimmed.
fn azure_url(key: &str, url: &str) -> Result<KeySpec, Located> {
    let url = url.trim();
    let bad = || {
        (
            String::new(),
            ConfigErrorKind::BadAzureUrl {
                key: key.to_owned(),
                url: url.to_owned(),
            },
        )
    };
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let (host, path) = rest.split_once('/').ok_or_else(bad)?;
    let path = path.strip_prefix("keys/").ok_or_else(bad)?;
    let (name, version) = match path.split_once('/') {
        Some((name, version)) => (name, version),
        None => (path, ""),
    };
    if host.is_empty() || name.is_empty() || version.contains('/') {
        return Err(bad());
    }
    Ok(KeySpec::AzureKv {
        vault_url: format!("https://{host}"),
        key: name.to_owned(),
        version: (!version.is_empty()).then(|| version.to_owned()),
    })
}

impl RawRule {
    fn flat_entries(&self, key: &'static str) -> Result<Vec<String>, Located> {
        match self.flat.iter().find(|(k, _)| *k == key) {
            None => Ok(Vec::new()),
            Some((_, v)) => key_field(key, v).map(|e| pieces(&e)),
        }
    }

    /// The flat keys as one group, in `getKeyGroupsFromCreationRule`'s order
    /// (age, pgp, kms, gcp_kms, hckms, azure_keyvault, hc_vault_transit_uri);
    /// not deduplicated, as in the reference.
    fn flat_group(&self) -> Result<KeyGroup, Located> {
        let mut group = Vec::new();
        for r in self.flat_entries("age")? {
            group.push(KeySpec::AgeRecipient(r.trim().to_owned()));
        }
        for f in self.flat_entries("pgp")? {
            group.push(KeySpec::Pgp(f.replace(' ', "")));
        }
        let profile = (!self.aws_profile.is_empty()).then(|| self.aws_profile.clone());
        for arn in self.flat_entries("kms")? {
            // kms.NewMasterKeyFromArn: spaces removed, `+arn:` starts the role.
            let arn = arn.replace(' ', "");
            let (arn, role) = match arn.find("+arn:") {
                Some(i) if i > 0 => (arn[..i].to_owned(), Some(arn[i + 1..].to_owned())),
                _ => (arn, None),
            };
            group.push(KeySpec::Kms {
                arn,
                role,
                context: BTreeMap::new(),
                profile: profile.clone(),
            });
        }
        for id in self.flat_entries("gcp_kms")? {
            group.push(KeySpec::GcpKms(id.replace(' ', "")));
        }
        for id in pieces(&self.hckms) {
            group.push(KeySpec::HcKms(id.trim().to_owned()));
        }
        for url in self.flat_entries("azure_keyvault")? {
            group.push(azure_url("azure_keyvault", &url)?);
        }
        for uri in self.flat_entries("hc_vault_transit_uri")? {
            group.push(KeySpec::HcVault(uri));
        }
        Ok(group)
    }

    /// `configFromRule`: the checks and resolution the reference makes for
    /// the chosen rule only.
    pub(super) fn resolve(&self) -> Result<CreationRule, Located> {
        if self.selection.len() > 1 {
            return Err((String::new(), ConfigErrorKind::SeveralSelectionRules));
        }
        let crypt_rule = match self.selection.first() {
            None => None,
            Some((key, value)) => Some(selection_rule(key, value)?),
        };
        let key_groups = if self.key_groups.is_empty() {
            vec![self.flat_group()?]
        } else {
            self.key_groups.clone()
        };
        let shamir_threshold = usize::try_from(self.shamir_threshold)
            .map_err(|_| wrong("shamir_threshold", "a non-negative integer"))?;
        Ok(CreationRule {
            index: self.index,
            key_groups,
            shamir_threshold,
            crypt_rule,
            mac_only_encrypted: self.mac_only_encrypted,
        })
    }
}

fn selection_rule(key: &'static str, value: &str) -> Result<CryptRule, Located> {
    let regex = || {
        go_regex(value).map_err(|e| {
            (
                String::new(),
                ConfigErrorKind::BadRegex {
                    key: key.to_owned(),
                    message: e.to_string(),
                },
            )
        })
    };
    Ok(match key {
        "unencrypted_suffix" => CryptRule::UnencryptedSuffix(value.to_owned()),
        "encrypted_suffix" => CryptRule::EncryptedSuffix(value.to_owned()),
        "unencrypted_regex" => CryptRule::UnencryptedRegex(regex()?),
        "encrypted_regex" => CryptRule::EncryptedRegex(regex()?),
        "unencrypted_comment_regex" => CryptRule::UnencryptedCommentRegex(regex()?),
        _ => CryptRule::EncryptedCommentRegex(regex()?),
    })
}
