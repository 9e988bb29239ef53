//! The parts of `.sops.yaml` that change how rsops prints: `stores.yaml.indent`
//! and `stores.json.indent`. Found as the reference finds it: `--config` /
//! `SOPS_CONFIG`, else `.sops.yaml` in the current directory or a parent.

use std::path::{Path, PathBuf};

use rsops::formats::Format;
use rsops::tree::{Entry, Map, Value};

use super::Failure;

/// How many parent directories the reference searches.
const MAX_DEPTH: usize = 100;

/// Finds `.sops.yaml` from the current directory upwards.
fn find_config() -> Option<PathBuf> {
    let mut dir = PathBuf::from(".");
    for _ in 0..MAX_DEPTH {
        let candidate = dir.join(".sops.yaml");
        if candidate.is_file() {
            return Some(candidate);
        }
        dir = dir.join("..");
    }
    None
}

fn child<'a>(map: &'a Map, key: &str) -> Option<&'a Value> {
    map.iter().find_map(|e| match e {
        Entry::Pair(k, v) if k == key => Some(v),
        _ => None,
    })
}

/// The indentation the config sets for `format`'s output, if any.
pub fn store_indent(explicit: Option<&Path>, format: Format) -> Result<Option<usize>, Failure> {
    let store = match format {
        Format::Yaml => "yaml",
        Format::Json => "json",
        _ => return Ok(None),
    };
    let Some(path) = explicit.map(Path::to_path_buf).or_else(find_config) else {
        return Ok(None);
    };
    let bytes = std::fs::read(&path).map_err(|e| Failure::Config {
        path: path.clone(),
        message: format!("cannot read it: {e}"),
    })?;
    let doc = Format::Yaml.parse(&bytes).map_err(|e| Failure::Config {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let indent = doc
        .branches
        .first()
        .and_then(|root| child(root, "stores"))
        .and_then(|v| match v {
            Value::Map(stores) => child(stores, store),
            _ => None,
        })
        .and_then(|v| match v {
            Value::Map(settings) => child(settings, "indent"),
            _ => None,
        });
    match indent {
        None => Ok(None),
        Some(Value::Int(n)) if *n > 0 => Ok(usize::try_from(*n).ok()),
        Some(Value::Int(0)) => Ok(None),
        Some(_) => Err(Failure::Config {
            path,
            message: format!("stores.{store}.indent must be a non-negative integer"),
        }),
    }
}
