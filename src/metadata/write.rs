//! Writing the `sops` metadata into a document: the inverse of
//! [`extract`](super::extract), laid out as the reference 3.11's stores
//! write it (`stores/stores.go` `Metadata`/`MetadataFromInternal`, the
//! `yaml`/`json` tags' field order and `omitempty`, and `stores/flatten.go`
//! for dotenv and INI).

use rsops_keysource::KeyEntry;

use super::{flatten, CryptRule, Metadata};
use crate::formats::{Format, MetadataLayout};
use crate::tree::{Document, Entry, Map, Value};

/// The suffix the reference writes when no rule was chosen (text formats).
const DEFAULT_SUFFIX: &str = "_unencrypted";

/// How a store writes the metadata where the layout alone does not say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InsertOptions {
    /// Where the metadata goes.
    pub layout: MetadataLayout,
    /// Inside `key_groups`, the reference always writes `hc_vault` and `age`
    /// (no `omitempty`); an empty one is Go's nil slice, which go-yaml prints
    /// as `[]` and encoding/json as `null`. `true` writes [`Value::Null`]
    /// (JSON, binary), `false` an empty list (YAML). Flattened layouts drop
    /// both, as the reference does.
    pub null_placeholders: bool,
    /// Leave out `unencrypted_suffix: _unencrypted`: the reference's
    /// `encrypt` chooses no rule for a single-value (binary) file. Its
    /// rewriting commands read the default back, so they write it.
    pub omit_default_rule: bool,
}

impl InsertOptions {
    /// The YAML store's form for `Nested`; the only form for flattened layouts.
    pub fn new(layout: MetadataLayout) -> Self {
        InsertOptions {
            layout,
            null_placeholders: false,
            omit_default_rule: false,
        }
    }

    /// What the reference's `encrypt` writes for `format`.
    pub fn for_format(format: Format) -> Self {
        InsertOptions {
            layout: format.metadata_layout(),
            null_placeholders: matches!(format, Format::Json | Format::Binary),
            omit_default_rule: matches!(format, Format::Binary),
        }
    }
}

/// Appends the metadata to `doc` as the reference's store for `layout`
/// writes it (`Nested` as the YAML store does; see [`insert_with`] for JSON
/// and binary files, whose empty key-group lists are `null`).
pub fn insert(doc: &mut Document, metadata: &Metadata, layout: MetadataLayout) {
    insert_with(doc, metadata, InsertOptions::new(layout));
}

/// Appends the metadata to `doc` with explicit [`InsertOptions`].
///
/// Nested: a `sops` map at the end of every document (YAML writes it into
/// each). Flattened below the top (INI): a last `sops` section of
/// `__map_`/`__list_` keys in sorted order, newlines written as `\n`
/// (the reference writes this section in Go map order, which changes from
/// run to run; sorted is the fixed order rsops chooses). Flattened (dotenv):
/// `sops_`-prefixed keys in sorted order, as the reference writes them.
pub fn insert_with(doc: &mut Document, metadata: &Metadata, options: InsertOptions) {
    let tree = to_tree(metadata, options);
    if doc.branches.is_empty() {
        doc.branches.push(Map::new());
    }
    match options.layout {
        MetadataLayout::Nested => {
            for branch in &mut doc.branches {
                branch.push(Entry::Pair("sops".into(), Value::Map(tree.clone())));
            }
        }
        MetadataLayout::FlattenedBelowTop => {
            let section = flatten::flatten(&tree)
                .into_iter()
                .map(|(key, value)| {
                    let value = match value {
                        Value::Str(s) if s.contains('\n') => Value::Str(s.replace('\n', "\\n")),
                        other => other,
                    };
                    Entry::Pair(key, value)
                })
                .collect();
            doc.branches[0].push(Entry::Pair("sops".into(), Value::Map(section)));
        }
        MetadataLayout::FlattenedFull => {
            let branch = &mut doc.branches[0];
            for (key, value) in flatten::flatten(&tree) {
                branch.push(Entry::Pair(format!("sops_{key}"), value));
            }
        }
    }
}

fn pair(key: &str, value: Value) -> Entry {
    Entry::Pair(key.to_string(), value)
}

fn text(s: &str) -> Value {
    Value::Str(s.to_string())
}

/// The rule as the reference writes it: one key, left out when empty.
fn rule_entry(rule: &CryptRule, omit_default: bool) -> Option<Entry> {
    let (key, value) = match rule {
        CryptRule::UnencryptedSuffix(s) => ("unencrypted_suffix", s.as_str()),
        CryptRule::EncryptedSuffix(s) => ("encrypted_suffix", s.as_str()),
        CryptRule::UnencryptedRegex(r) => ("unencrypted_regex", r.as_str()),
        CryptRule::EncryptedRegex(r) => ("encrypted_regex", r.as_str()),
        CryptRule::UnencryptedCommentRegex(r) => ("unencrypted_comment_regex", r.as_str()),
        CryptRule::EncryptedCommentRegex(r) => ("encrypted_comment_regex", r.as_str()),
    };
    if value.is_empty() || (omit_default && key == "unencrypted_suffix" && value == DEFAULT_SUFFIX)
    {
        return None;
    }
    Some(pair(key, text(value)))
}

/// The nested `sops` map, in the field order of the reference's `Metadata`.
fn to_tree(md: &Metadata, options: InsertOptions) -> Map {
    let mut map = Map::new();
    if md.shamir_threshold != 0 {
        let threshold = i64::try_from(md.shamir_threshold).unwrap_or(i64::MAX);
        map.push(pair("shamir_threshold", Value::Int(threshold)));
    }
    let single = match md.key_groups.as_slice() {
        [group] => Some(group.as_slice()),
        [] => None,
        groups => {
            let items = groups
                .iter()
                .map(|group| Value::Map(group_map(group, options.null_placeholders)))
                .collect();
            map.push(pair("key_groups", Value::List(items)));
            None
        }
    };
    let kind_list = |map: &mut Map, kind: &str| {
        if let Some(group) = single {
            let items = entries_of(group, kind);
            if !items.is_empty() {
                map.push(pair(kind, Value::List(items)));
            }
        }
    };
    for kind in ["kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age"] {
        kind_list(&mut map, kind);
    }
    map.push(pair("lastmodified", text(&md.last_modified)));
    map.push(pair("mac", text(&md.mac)));
    kind_list(&mut map, "pgp");
    map.extend(rule_entry(&md.rule, options.omit_default_rule));
    if md.mac_only_encrypted {
        map.push(pair("mac_only_encrypted", Value::Bool(true)));
    }
    map.push(pair(
        "version",
        text(md.version.as_deref().unwrap_or_default()),
    ));
    map
}

/// One item of `key_groups`, in the field order of the reference's `keygroup`.
fn group_map(group: &[KeyEntry], null_placeholders: bool) -> Map {
    let mut map = Map::new();
    for kind in ["pgp", "kms", "gcp_kms", "hckms", "azure_kv"] {
        let items = entries_of(group, kind);
        if !items.is_empty() {
            map.push(pair(kind, Value::List(items)));
        }
    }
    for kind in ["hc_vault", "age"] {
        let items = entries_of(group, kind);
        let value = if items.is_empty() && null_placeholders {
            Value::Null
        } else {
            Value::List(items)
        };
        map.push(pair(kind, value));
    }
    map
}

/// A field of a key entry: always written, or left out when empty.
#[derive(Clone, Copy)]
enum Field {
    Always(&'static str),
    OmitEmpty(&'static str),
    /// The KMS encryption context, a string map (sorted keys, as Go prints maps).
    Context,
}

/// The fields of each kind's struct in the reference, in order.
fn fields_of(kind: &str) -> Option<&'static [Field]> {
    use Field::{Always as A, Context, OmitEmpty as O};
    Some(match kind {
        "age" => &[A("recipient"), A("enc")],
        "pgp" => &[A("created_at"), A("enc"), A("fp")],
        "kms" => &[
            A("arn"),
            O("role"),
            Context,
            A("created_at"),
            A("enc"),
            A("aws_profile"),
        ],
        "gcp_kms" => &[A("resource_id"), A("created_at"), A("enc")],
        "hckms" => &[A("key_id"), A("created_at"), A("enc")],
        "azure_kv" => &[
            A("vault_url"),
            A("name"),
            A("version"),
            A("created_at"),
            A("enc"),
        ],
        "hc_vault" => &[
            A("vault_address"),
            A("engine_path"),
            A("key_name"),
            A("created_at"),
            A("enc"),
        ],
        _ => return None,
    })
}

fn entries_of(group: &[KeyEntry], kind: &str) -> Vec<Value> {
    group
        .iter()
        .filter(|entry| entry.kind == kind)
        .map(|entry| Value::Map(entry_map(entry)))
        .collect()
}

/// One key entry as the reference writes it: its struct's fields in order,
/// absent ones as Go's empty string, fields the struct lacks dropped.
fn entry_map(entry: &KeyEntry) -> Map {
    let Some(fields) = fields_of(&entry.kind) else {
        return entry.fields.iter().map(|(k, v)| pair(k, text(v))).collect();
    };
    let mut map = Map::new();
    for field in fields {
        match *field {
            Field::Always(name) => {
                map.push(pair(name, text(entry.field(name).unwrap_or_default())));
            }
            Field::OmitEmpty(name) => {
                if let Some(value) = entry.field(name).filter(|v| !v.is_empty()) {
                    map.push(pair(name, text(value)));
                }
            }
            Field::Context => {
                let context = entry
                    .maps
                    .iter()
                    .find(|(name, _)| name == "context")
                    .map(|(_, pairs)| pairs);
                if let Some(pairs) = context.filter(|p| !p.is_empty()) {
                    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
                    sorted.sort_by(|a, b| a.0.cmp(&b.0));
                    let inner = sorted.into_iter().map(|(k, v)| pair(k, text(v))).collect();
                    map.push(pair("context", Value::Map(inner)));
                }
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(recipient: &str, enc: &str) -> KeyEntry {
        KeyEntry {
            kind: "age".into(),
            fields: vec![
                ("enc".into(), enc.into()),
                ("recipient".into(), recipient.into()),
            ],
            maps: vec![],
        }
    }

    fn metadata(groups: Vec<Vec<KeyEntry>>, threshold: usize) -> Metadata {
        Metadata {
            last_modified: "2026-01-02T03:04:05Z".into(),
            mac: "ENC[x]".into(),
            version: Some("3.11.0".into()),
            rule: CryptRule::UnencryptedSuffix(DEFAULT_SUFFIX.into()),
            mac_only_encrypted: true,
            shamir_threshold: threshold,
            key_groups: groups,
        }
    }

    fn keys(map: &Map) -> Vec<&str> {
        map.iter()
            .filter_map(|e| match e {
                Entry::Pair(k, _) => Some(k.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn nested_order_one_group() {
        let md = metadata(vec![vec![age("age1a", "E\n")]], 0);
        let tree = to_tree(&md, InsertOptions::new(MetadataLayout::Nested));
        assert_eq!(
            keys(&tree),
            [
                "age",
                "lastmodified",
                "mac",
                "unencrypted_suffix",
                "mac_only_encrypted",
                "version"
            ]
        );
        let Entry::Pair(_, Value::List(items)) = &tree[0] else {
            panic!()
        };
        let Value::Map(entry) = &items[0] else {
            panic!()
        };
        assert_eq!(keys(entry), ["recipient", "enc"]);
    }

    #[test]
    fn flattens_groups_dropping_placeholders_and_escaping_for_ini() {
        let md = metadata(
            vec![vec![age("age1a", "E\nF\n")], vec![age("age1b", "G")]],
            2,
        );
        let mut doc = Document::new(vec![Map::new()]);
        insert(&mut doc, &md, MetadataLayout::FlattenedBelowTop);
        let Entry::Pair(name, Value::Map(section)) = &doc.branches[0][0] else {
            panic!()
        };
        assert_eq!(name, "sops");
        assert_eq!(
            keys(section),
            [
                "key_groups__list_0__map_age__list_0__map_enc",
                "key_groups__list_0__map_age__list_0__map_recipient",
                "key_groups__list_1__map_age__list_0__map_enc",
                "key_groups__list_1__map_age__list_0__map_recipient",
                "lastmodified",
                "mac",
                "mac_only_encrypted",
                "shamir_threshold",
                "unencrypted_suffix",
                "version",
            ]
        );
        assert_eq!(
            section[0],
            Entry::Pair(
                "key_groups__list_0__map_age__list_0__map_enc".into(),
                Value::Str("E\\nF\\n".into())
            )
        );
        assert!(section.contains(&Entry::Pair(
            "shamir_threshold".into(),
            Value::Str("2".into())
        )));
        assert!(section.contains(&Entry::Pair(
            "mac_only_encrypted".into(),
            Value::Str("true".into())
        )));
        // And the reader takes it back.
        let back = super::super::extract(&mut doc, MetadataLayout::FlattenedBelowTop).unwrap();
        assert_eq!(back.shamir_threshold, 2);
        assert_eq!(back.key_groups[0][0].field("enc"), Some("E\nF\n"));
    }

    #[test]
    fn dotenv_keys_are_prefixed_and_keep_newlines() {
        let md = metadata(vec![vec![age("age1a", "E\n")]], 0);
        let mut doc = Document::new(vec![Map::new()]);
        insert(&mut doc, &md, MetadataLayout::FlattenedFull);
        assert_eq!(
            doc.branches[0][0],
            Entry::Pair("sops_age__list_0__map_enc".into(), Value::Str("E\n".into()))
        );
        assert_eq!(keys(&doc.branches[0])[1], "sops_age__list_0__map_recipient");
    }

    #[test]
    fn kms_fields_follow_the_struct() {
        let entry = KeyEntry {
            kind: "kms".into(),
            fields: vec![
                ("enc".into(), "E".into()),
                ("arn".into(), "arn:x".into()),
                ("role".into(), String::new()),
                ("created_at".into(), "T".into()),
            ],
            maps: vec![(
                "context".into(),
                vec![("b".into(), "2".into()), ("a".into(), "1".into())],
            )],
        };
        let map = entry_map(&entry);
        assert_eq!(
            keys(&map),
            ["arn", "context", "created_at", "enc", "aws_profile"]
        );
        let Entry::Pair(_, Value::Map(context)) = &map[1] else {
            panic!()
        };
        assert_eq!(keys(context), ["a", "b"]);
    }

    #[test]
    fn json_placeholders_are_null_and_binary_omits_default_rule() {
        let md = metadata(vec![vec![age("a", "E")], vec![age("b", "F")]], 2);
        let tree = to_tree(&md, InsertOptions::for_format(Format::Binary));
        assert!(!keys(&tree).contains(&"unencrypted_suffix"));
        let Entry::Pair(_, Value::List(groups)) = &tree[1] else {
            panic!()
        };
        let Value::Map(group) = &groups[0] else {
            panic!()
        };
        assert_eq!(group[0], Entry::Pair("hc_vault".into(), Value::Null));
    }
}
