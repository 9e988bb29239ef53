//! The parts of `.sops.yaml` that change how rsops prints: `stores.yaml.indent`
//! and `stores.json.indent`. The file is found and read by [`rsops::config`]
//! as the reference finds it: `--config` / `SOPS_CONFIG`, else `.sops.yaml` in
//! the current directory or a parent; like the reference, a config that does
//! not load fails the command even when its `stores` are fine.

use std::path::Path;

use rsops::config::{Config, ConfigError};
use rsops::formats::Format;

use super::Failure;

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Config {
            path: e.path.clone(),
            message: e.detail(),
        }
    }
}

/// The indentation the config sets for `format`'s output, if any.
pub fn store_indent(explicit: Option<&Path>, format: Format) -> Result<Option<usize>, Failure> {
    let store = match format {
        Format::Yaml => "yaml",
        Format::Json => "json",
        _ => return Ok(None),
    };
    let (Some(config), _warning) = Config::find(explicit)? else {
        return Ok(None);
    };
    let indent = match format {
        Format::Yaml => config.stores.yaml_indent,
        _ => config.stores.json_indent,
    };
    match indent {
        None | Some(0) => Ok(None),
        Some(n) if n > 0 => Ok(usize::try_from(n).ok()),
        Some(_) => Err(Failure::Config {
            path: config.path,
            message: format!("stores.{store}.indent must be a non-negative integer"),
        }),
    }
}
