//! Unflattening of dotenv/INI metadata keys: `age__list_0__map_recipient`
//! becomes `age: [ {recipient: …} ]`, exactly as the reference's
//! `stores/flatten.go` rebuilds it (map keys sorted, lists complete).

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
}
