//! Unflattening of dotenv/INI metadata keys: `age__list_0__map_recipient`
//! becomes `age: [ {recipient: …} ]`, exactly as the reference's
//! `stores/flatten.go` rebuilds it (map keys sorted, lists complete), and
//! the flattening the reference writes (`Flatten` after a JSON round trip).

use std::collections::BTreeMap;

use crate::tree::{Entry, Map, Value};

const MAP_SEPARATOR: &str = "__map_";
const LIST_SEPARATOR: &str = "__list_";

enum Token<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits a flattened key at every separator, as the reference's tokenizer does.
fn tokenize(path: &str) -> Result<Vec<Token<'_>>, String> {
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut in_list = false;
    let mut i = 0;
    while i <= path.len() {
        let rest = &path[i..];
        let separator = if rest.starts_with(MAP_SEPARATOR) {
            Some((MAP_SEPARATOR.len(), false))
        } else if rest.starts_with(LIST_SEPARATOR) {
            Some((LIST_SEPARATOR.len(), true))
        } else if rest.is_empty() {
            Some((0, false))
        } else {
            None
        };
        let Some((skip, next_in_list)) = separator else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let text = &path[start..i];
        if in_list {
            let index = text
                .parse()
                .map_err(|_| format!("bad list index in metadata key `{path}`"))?;
            tokens.push(Token::Index(index));
        } else {
            tokens.push(Token::Key(text));
        }
        if skip == 0 {
            break;
        }
        i += skip;
        start = i;
        in_list = next_in_list;
    }
    Ok(tokens)
}

#[derive(Default)]
struct Node {
    value: Option<Value>,
    keys: BTreeMap<String, Node>,
    indices: BTreeMap<usize, Node>,
}

fn convert(node: Node) -> Result<Value, String> {
    let kinds = usize::from(node.value.is_some())
        + usize::from(!node.keys.is_empty())
        + usize::from(!node.indices.is_empty());
    if kinds > 1 {
        return Err("type mismatch in flattened metadata".into());
    }
    if let Some(value) = node.value {
        return Ok(value);
    }
    if !node.indices.is_empty() {
        let count = node.indices.len();
        if node.indices.keys().copied().ne(0..count) {
            return Err("incomplete list in flattened metadata".into());
        }
        return node
            .indices
            .into_values()
            .map(convert)
            .collect::<Result<_, _>>()
            .map(Value::List);
    }
    let mut map = Map::with_capacity(node.keys.len());
    for (key, child) in node.keys {
        map.push(Entry::Pair(key, convert(child)?));
    }
    Ok(Value::Map(map))
}

/// Rebuilds the nested metadata map from flattened entries.
pub fn unflatten(flat: Map) -> Result<Map, String> {
    let mut root = Node::default();
    for entry in flat {
        let Entry::Pair(key, value) = entry else {
            continue;
        };
        let mut node = &mut root;
        for token in tokenize(&key)? {
            node = match token {
                Token::Key(k) => node.keys.entry(k.to_string()).or_default(),
                Token::Index(i) => node.indices.entry(i).or_default(),
            };
        }
        if node.value.is_some() {
            return Err(format!("duplicate metadata key `{key}`"));
        }
        node.value = Some(value);
    }
    match convert(root)? {
        Value::Map(map) => Ok(map),
        _ => Err("flattened metadata has no root map".into()),
    }
}

/// Flattens the nested metadata map as the reference writes it: every leaf
/// under its joined path, sorted (Go's `sort.Strings`, byte order); nulls
/// and empty lists or maps leave no key; booleans and integers become the
/// strings `EncodeNonStrings` makes of them.
pub fn flatten(map: &Map) -> Vec<(String, Value)> {
    let mut out = BTreeMap::new();
    for entry in map {
        if let Entry::Pair(key, value) = entry {
            flatten_into(&mut out, key.clone(), value);
        }
    }
    out.into_iter().collect()
}

fn flatten_into(out: &mut BTreeMap<String, Value>, path: String, value: &Value) {
    match value {
        Value::Map(map) => {
            for entry in map {
                if let Entry::Pair(key, value) = entry {
                    flatten_into(out, format!("{path}{MAP_SEPARATOR}{key}"), value);
                }
            }
        }
        Value::List(items) => {
            let items = items.iter().filter(|v| !matches!(v, Value::Comment(_)));
            for (index, item) in items.enumerate() {
                flatten_into(out, format!("{path}{LIST_SEPARATOR}{index}"), item);
            }
        }
        Value::Null | Value::Comment(_) => {}
        Value::Bool(b) => {
            out.insert(path, Value::Str(b.to_string()));
        }
        Value::Int(i) => {
            out.insert(path, Value::Str(i.to_string()));
        }
        other => {
            out.insert(path, other.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: &str, v: &str) -> Entry {
        Entry::Pair(k.into(), Value::Str(v.into()))
    }

    #[test]
    fn rebuilds_lists_of_maps() {
        let flat = vec![
            pair("version", "3.11.0"),
            pair("age__list_0__map_recipient", "age1x"),
            pair("age__list_0__map_enc", "E"),
            pair("age__list_1__map_recipient", "age1y"),
        ];
        let map = unflatten(flat).unwrap();
        let Entry::Pair(key, Value::List(items)) = &map[0] else {
            panic!()
        };
        assert_eq!(key, "age");
        assert_eq!(items.len(), 2);
        let Value::Map(first) = &items[0] else {
            panic!()
        };
        assert_eq!(first[0], pair("enc", "E"));
    }

    #[test]
    fn rejects_holes_and_conflicts() {
        assert!(unflatten(vec![pair("age__list_1__map_enc", "x")]).is_err());
        assert!(unflatten(vec![pair("a", "x"), pair("a__map_b", "y")]).is_err());
        assert!(unflatten(vec![pair("a__list_x", "x")]).is_err());
    }

    #[test]
    fn flattens_sorted_and_round_trips() {
        let nested = vec![
            Entry::Pair("shamir_threshold".into(), Value::Int(2)),
            Entry::Pair(
                "key_groups".into(),
                Value::List(vec![Value::Map(vec![
                    Entry::Pair("hc_vault".into(), Value::Null),
                    Entry::Pair("pgp".into(), Value::List(vec![])),
                    Entry::Pair(
                        "age".into(),
                        Value::List(vec![Value::Map(vec![
                            pair("recipient", "age1x"),
                            pair("enc", "E"),
                        ])]),
                    ),
                ])]),
            ),
            Entry::Pair("mac_only_encrypted".into(), Value::Bool(true)),
            pair("version", "3.11.0"),
        ];
        let flat = flatten(&nested);
        let keys: Vec<&str> = flat.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "key_groups__list_0__map_age__list_0__map_enc",
                "key_groups__list_0__map_age__list_0__map_recipient",
                "mac_only_encrypted",
                "shamir_threshold",
                "version",
            ]
        );
        assert_eq!(flat[3].1, Value::Str("2".into()));
        assert_eq!(flat[2].1, Value::Str("true".into()));
        let back = unflatten(flat.into_iter().map(|(k, v)| Entry::Pair(k, v)).collect()).unwrap();
        let Entry::Pair(key, Value::List(groups)) = &back[0] else {
            panic!()
        };
        assert_eq!(key, "key_groups");
        assert_eq!(groups.len(), 1);
    }
}
