//! `--extract '["a"]["b"][0]'`: parsing the path and finding the value.

use crate::tree::{Entry, Map, Value};

/// One step of an extract path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A map key.
    Key(String),
    /// A list index.
    Index(i64),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Key(k) => write!(f, "['{k}']"),
            Step::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Why an extract path is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtractError {
    /// The path is not in `["key"][0]` syntax (reference exit code 91).
    #[error("error parsing --extract path: {0}")]
    Syntax(String),
    /// The path names nothing in the document (reference exit code 1).
    #[error("error truncating tree: component {0} not found")]
    NotFound(Step),
    /// The file holds no document at all.
    #[error("the file has no document to extract from")]
    NoDocument,
}

/// Parses an extract path as the reference's `parseTreePath` does.
pub fn parse_path(arg: &str) -> Result<Vec<Step>, ExtractError> {
    let mut steps = Vec::new();
    for component in arg.split('[') {
        if component.is_empty() {
            continue;
        }
        let Some(inner) = component.strip_suffix(']') else {
            return Err(ExtractError::Syntax(format!(
                "component {component} doesn't end with ]"
            )));
        };
        if inner.starts_with(['"', '\'']) {
            let end = inner.len().saturating_sub(1).max(1);
            steps.push(Step::Key(inner.get(1..end).unwrap_or_default().to_string()));
        } else {
            let index = inner.parse().map_err(|_| {
                ExtractError::Syntax(format!("strconv.Atoi: parsing {inner:?}: invalid syntax"))
            })?;
            steps.push(Step::Index(index));
        }
    }
    Ok(steps)
}

fn find_in_map<'a>(map: &'a Map, key: &str) -> Option<&'a Value> {
    map.iter().find_map(|entry| match entry {
        Entry::Pair(k, v) if k == key => Some(v),
        _ => None,
    })
}

/// What an extract path points at: the root map or a value inside it.
pub enum Target<'a> {
    /// The path was empty or ended at a map.
    Map(&'a Map),
    /// Any other value.
    Value(&'a Value),
}

/// Follows `steps` from a document's root map.
pub fn find<'a>(root: &'a Map, steps: &[Step]) -> Result<Target<'a>, ExtractError> {
    let mut current = Target::Map(root);
    for step in steps {
        let next = match (&current, step) {
            (Target::Map(map), Step::Key(key)) => find_in_map(map, key),
            (Target::Value(Value::Map(map)), Step::Key(key)) => find_in_map(map, key),
            (Target::Value(Value::List(items)), Step::Index(i)) => {
                usize::try_from(*i).ok().and_then(|i| items.get(i))
            }
            _ => None,
        };
        let next = next.ok_or_else(|| ExtractError::NotFound(step.clone()))?;
        current = match next {
            Value::Map(map) => Target::Map(map),
            other => Target::Value(other),
        };
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reference_syntax() {
        assert_eq!(
            parse_path(r#"["a"]['b'][2]"#).unwrap(),
            vec![Step::Key("a".into()), Step::Key("b".into()), Step::Index(2)]
        );
        assert!(matches!(parse_path("bad"), Err(ExtractError::Syntax(_))));
        assert!(matches!(parse_path("[x]"), Err(ExtractError::Syntax(_))));
        assert_eq!(parse_path("").unwrap(), vec![]);
    }
}
