//! `set` and `unset` on a document tree, as the reference's
//! `TreeBranch.Set` and `TreeBranch.Unset` do them, with a typed error where
//! the reference panics.

use crate::extract::Step;
use crate::tree::{Entry, Map, Value};

/// Why a path cannot be set or unset.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateError {
    /// `unset` names a key that is not there (the reference's words).
    #[error("Key not found: {0}")]
    KeyNotFound(String),
    /// `unset` names a list index past the end (the reference's words).
    #[error("Index {0} out of bounds")]
    IndexOutOfBounds(i64),
    /// The path goes through a value that has no such step: a key in a
    /// list, or anything inside a scalar.
    #[error("cannot follow {step} into a {kind}")]
    WrongStep {
        /// The step that does not fit.
        step: Step,
        /// What the path reached there.
        kind: &'static str,
    },
}

impl UpdateError {
    /// Whether `unset --idempotent` should treat this as "already gone".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            UpdateError::KeyNotFound(_) | UpdateError::IndexOutOfBounds(_)
        )
    }
}

/// Sets the value at `path` in a document's root map, creating the maps and
/// lists on the way, and says whether anything changed. A list index past
/// the end appends. The old value is wiped.
pub fn set(root: &mut Map, path: &[Step], value: Value) -> Result<bool, UpdateError> {
    let mut retired = Vec::new();
    let changed = set_retiring(root, path, value, &mut retired);
    retired.iter_mut().for_each(crate::tree::wipe_value);
    changed
}

/// Sets like [`set`], moving the value it replaces into `retired` instead
/// of wiping it: a document whose values are still encrypted keeps its old
/// ciphertexts alive until it is sealed again (see
/// [`crate::rewrite::InPlace`]).
pub fn set_retiring(
    root: &mut Map,
    path: &[Step],
    value: Value,
    retired: &mut Vec<Value>,
) -> Result<bool, UpdateError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(false);
    };
    set_in_map(root, first, rest, value, retired)
}

fn set_in_map(
    map: &mut Map,
    step: &Step,
    rest: &[Step],
    value: Value,
    retired: &mut Vec<Value>,
) -> Result<bool, UpdateError> {
    let Step::Key(key) = step else {
        // The reference appends nothing (a list cannot be a map entry) but
        // still reports a change; writing the same content back is harmless.
        return Ok(true);
    };
    for entry in map.iter_mut() {
        if let Entry::Pair(k, existing) = entry {
            if k == key {
                return set_value(existing, rest, value, retired);
            }
        }
    }
    map.push(Entry::Pair(key.clone(), build(rest, value)));
    Ok(true)
}

/// Sets `rest` inside `slot` (`slot` itself when `rest` is empty).
fn set_value(
    slot: &mut Value,
    rest: &[Step],
    value: Value,
    retired: &mut Vec<Value>,
) -> Result<bool, UpdateError> {
    let Some((step, deeper)) = rest.split_first() else {
        let changed = *slot != value;
        retired.push(std::mem::replace(slot, value));
        return Ok(changed);
    };
    match slot {
        Value::Map(map) => set_in_map(map, step, deeper, value, retired),
        Value::List(items) => {
            let Step::Index(index) = step else {
                return Err(UpdateError::WrongStep {
                    step: step.clone(),
                    kind: "list",
                });
            };
            match usize::try_from(*index).ok().filter(|&i| i < items.len()) {
                Some(i) => set_value(&mut items[i], deeper, value, retired),
                None => {
                    items.push(build(deeper, value));
                    Ok(true)
                }
            }
        }
        scalar => {
            let built = build(rest, value);
            let changed = *scalar != built;
            retired.push(std::mem::replace(scalar, built));
            Ok(changed)
        }
    }
}

/// The value that holds `leaf` at `path`: maps for keys, one-item lists
/// for indexes (the reference's `valueFromPathAndLeaf`).
fn build(path: &[Step], leaf: Value) -> Value {
    path.iter().rev().fold(leaf, |inner, step| match step {
        Step::Key(key) => Value::Map(vec![Entry::Pair(key.clone(), inner)]),
        Step::Index(_) => Value::List(vec![inner]),
    })
}

/// Removes the entry or list item at `path` from a document's root map.
/// The removed value is wiped.
pub fn unset(root: &mut Map, path: &[Step]) -> Result<(), UpdateError> {
    let mut retired = Vec::new();
    let outcome = unset_retiring(root, path, &mut retired);
    retired.iter_mut().for_each(crate::tree::wipe_value);
    outcome
}

/// Removes like [`unset`], moving the removed value into `retired` (see
/// [`set_retiring`]).
pub fn unset_retiring(
    root: &mut Map,
    path: &[Step],
    retired: &mut Vec<Value>,
) -> Result<(), UpdateError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(());
    };
    unset_in_map(root, first, rest, retired)
}

fn unset_in_map(
    map: &mut Map,
    step: &Step,
    rest: &[Step],
    retired: &mut Vec<Value>,
) -> Result<(), UpdateError> {
    let key = match step {
        Step::Key(key) => key,
        Step::Index(i) => return Err(UpdateError::KeyNotFound(i.to_string())),
    };
    let position = map
        .iter()
        .position(|entry| matches!(entry, Entry::Pair(k, _) if k == key))
        .ok_or_else(|| UpdateError::KeyNotFound(key.clone()))?;
    if rest.is_empty() {
        if let Entry::Pair(mut k, v) = map.remove(position) {
            zeroize::Zeroize::zeroize(&mut k);
            retired.push(v);
        }
        return Ok(());
    }
    match &mut map[position] {
        Entry::Pair(_, value) => unset_value(value, rest, retired),
        Entry::Comment(_) => Err(UpdateError::KeyNotFound(key.clone())),
    }
}

fn unset_value(
    value: &mut Value,
    path: &[Step],
    retired: &mut Vec<Value>,
) -> Result<(), UpdateError> {
    let Some((step, rest)) = path.split_first() else {
        return Ok(());
    };
    match value {
        Value::Map(map) => unset_in_map(map, step, rest, retired),
        Value::List(items) => {
            let Step::Index(index) = step else {
                return Err(UpdateError::WrongStep {
                    step: step.clone(),
                    kind: "list",
                });
            };
            let i = usize::try_from(*index)
                .ok()
                .filter(|&i| i < items.len())
                .ok_or(UpdateError::IndexOutOfBounds(*index))?;
            if rest.is_empty() {
                retired.push(items.remove(i));
                Ok(())
            } else {
                unset_value(&mut items[i], rest, retired)
            }
        }
        other => Err(UpdateError::WrongStep {
            step: step.clone(),
            kind: kind_name(other),
        }),
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Map(_) => "map",
        Value::List(_) => "list",
        Value::Null => "null",
        Value::Comment(_) => "comment",
        _ => "scalar",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Step {
        Step::Key(k.into())
    }

    fn sample() -> Map {
        vec![
            Entry::Pair("a".into(), Value::Int(1)),
            Entry::Pair(
                "b".into(),
                Value::List(vec![Value::Str("x".into()), Value::Str("y".into())]),
            ),
        ]
    }

    #[test]
    fn set_replaces_appends_and_creates() {
        let mut map = sample();
        assert_eq!(set(&mut map, &[key("a")], Value::Int(1)), Ok(false));
        assert_eq!(set(&mut map, &[key("a")], Value::Int(2)), Ok(true));
        assert_eq!(
            set(
                &mut map,
                &[key("b"), Step::Index(9)],
                Value::Str("z".into())
            ),
            Ok(true)
        );
        assert_eq!(
            set(
                &mut map,
                &[key("c"), key("d"), Step::Index(0)],
                Value::Bool(true)
            ),
            Ok(true)
        );
        // Into a scalar: the scalar becomes the map the path needs.
        assert_eq!(
            set(&mut map, &[key("a"), key("x")], Value::Int(1)),
            Ok(true)
        );
        let expected: Map = vec![
            Entry::Pair(
                "a".into(),
                Value::Map(vec![Entry::Pair("x".into(), Value::Int(1))]),
            ),
            Entry::Pair(
                "b".into(),
                Value::List(vec![
                    Value::Str("x".into()),
                    Value::Str("y".into()),
                    Value::Str("z".into()),
                ]),
            ),
            Entry::Pair(
                "c".into(),
                Value::Map(vec![Entry::Pair(
                    "d".into(),
                    Value::List(vec![Value::Bool(true)]),
                )]),
            ),
        ];
        assert_eq!(map, expected);
        assert!(matches!(
            set(&mut map, &[key("b"), key("q")], Value::Null),
            Err(UpdateError::WrongStep { .. })
        ));
    }

    #[test]
    fn unset_removes_or_says_what_is_missing() {
        let mut map = sample();
        assert_eq!(
            unset(&mut map, &[key("zz")]),
            Err(UpdateError::KeyNotFound("zz".into()))
        );
        assert_eq!(
            unset(&mut map, &[key("b"), Step::Index(9)]),
            Err(UpdateError::IndexOutOfBounds(9))
        );
        assert!(unset(&mut map, &[key("a"), key("x")]).is_err());
        assert_eq!(unset(&mut map, &[key("b"), Step::Index(0)]), Ok(()));
        assert_eq!(unset(&mut map, &[key("a")]), Ok(()));
        assert_eq!(
            map,
            vec![Entry::Pair(
                "b".into(),
                Value::List(vec![Value::Str("y".into())])
            )]
        );
    }
}
