//! Codex's `config.toml`: reading `[mcp_servers.*]` entries and changing
//! one in place with `toml_edit`, which keeps every comment, blank line,
//! table order and spelling it does not touch.

use toml_edit::{Array, DocumentMut, Item, TableLike, Value};

use super::entries::Entry;
use super::rewrite::NewEntry;

/// The servers key.
const SERVERS: &str = "mcp_servers";

/// The entries under `[mcp_servers]`.
pub fn entries(text: &str) -> Result<Vec<Entry>, String> {
    let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        // The error's text quotes the line, which may hold a secret: keep
        // only its first line (the position and what was expected).
        e.to_string().lines().next().unwrap_or_default().to_string()
    })?;
    let Some(servers) = doc.get(SERVERS).and_then(Item::as_table_like) else {
        return Ok(Vec::new());
    };
    Ok(servers
        .iter()
        .filter_map(|(name, item)| Some(entry(name, item.as_table_like()?)))
        .collect())
}

fn entry(name: &str, table: &dyn TableLike) -> Entry {
    let strings = |key: &str| -> Vec<String> {
        table
            .get(key)
            .and_then(Item::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s.value().clone()),
                        Value::InlineTable(t) => {
                            t.get("name").and_then(Value::as_str).map(str::to_string)
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let pairs = |key: &str| -> Vec<(String, String)> {
        table
            .get(key)
            .and_then(Item::as_table_like)
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| Some((k.to_string(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    Entry {
        name: name.to_string(),
        path: vec![SERVERS.into(), name.to_string()],
        command: table
            .get("command")
            .and_then(Item::as_str)
            .map(str::to_string),
        args: strings("args"),
        env: pairs("env"),
        headers: pairs("http_headers"),
        url: table.get("url").and_then(Item::as_str).map(str::to_string),
        env_vars: strings("env_vars"),
    }
}

/// `text` with the server `name` changed to `new`: `command` and `args`
/// replaced, the moved variables removed from `env` (inline or a
/// sub-table, whichever it is), variables added to `env` and names to
/// `env_vars`. Everything else keeps its bytes.
pub fn apply(text: &str, name: &str, new: &NewEntry) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|_| "not valid TOML".to_string())?;
    let table = doc
        .get_mut(SERVERS)
        .and_then(Item::as_table_like_mut)
        .and_then(|s| s.get_mut(name))
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| format!("no server {name}"))?;
    replace(table, "command", Value::from(new.command.as_str()));
    replace(
        table,
        "args",
        Value::Array(new.args.iter().map(String::as_str).collect::<Array>()),
    );
    if !new.moved.is_empty() || !new.env_add.is_empty() {
        if table.get("env").is_none() {
            table.insert("env", Item::Value(Value::InlineTable(Default::default())));
        }
        if let Some(env) = table.get_mut("env").and_then(Item::as_table_like_mut) {
            for key in &new.moved {
                env.remove(key);
            }
            for (key, value) in &new.env_add {
                if env.get(key).is_none() {
                    env.insert(key, toml_edit::value(value.as_str()));
                }
            }
        }
    }
    if !new.env_vars_add.is_empty() {
        if table.get("env_vars").is_none() {
            table.insert("env_vars", toml_edit::value(Array::new()));
        }
        if let Some(list) = table.get_mut("env_vars").and_then(Item::as_array_mut) {
            let present: Vec<String> = list
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.value().clone()),
                    Value::InlineTable(t) => {
                        t.get("name").and_then(Value::as_str).map(str::to_string)
                    }
                    _ => None,
                })
                .collect();
            for var in &new.env_vars_add {
                if !present.contains(var) {
                    list.push(var.as_str());
                }
            }
        }
    }
    Ok(doc.to_string())
}

/// Sets `key` to `value`, keeping the old value's surrounding spaces and
/// trailing comment when there was one.
fn replace(table: &mut dyn TableLike, key: &str, mut value: Value) {
    match table.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) => {
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        None => {
            table.insert(key, Item::Value(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# Codex config
model = "o3"

[mcp_servers.gh]   # GitHub
command = "npx"  # the launcher
args = ["-y", "@modelcontextprotocol/server-github"]
env = { GITHUB_TOKEN = "ghp_x", LOG = "info" }

# between
[mcp_servers.db]
command = "db-mcp"

[mcp_servers.db.env]
# the password
DB_PASSWORD = "hunter2"
DB_HOST = "localhost"

[other]
x = 1
"#;

    fn new(moved: &[&str]) -> NewEntry {
        NewEntry {
            command: "/bin/rsops".into(),
            args: vec!["exec-env".into(), "/s/gh.enc.env".into(), "--".into()],
            moved: moved.iter().map(|s| s.to_string()).collect(),
            env_add: Vec::new(),
            env_vars_add: vec!["SOPS_AGE_KEY_FILE".into()],
        }
    }

    #[test]
    fn reads_inline_and_table_env() {
        let entries = entries(TEXT).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].env[0].0, "GITHUB_TOKEN");
        assert_eq!(entries[1].env[0], ("DB_PASSWORD".into(), "hunter2".into()));
    }

    #[test]
    fn rewrites_only_the_entry() {
        let out = apply(TEXT, "gh", &new(&["GITHUB_TOKEN"])).unwrap();
        assert!(out.starts_with("# Codex config\nmodel = \"o3\"\n\n[mcp_servers.gh]   # GitHub\n"));
        assert!(out.contains("command = \"/bin/rsops\"  # the launcher\n"));
        assert!(!out.contains("ghp_x"));
        assert!(out.contains("LOG = \"info\""));
        assert!(out.contains("env_vars = [\"SOPS_AGE_KEY_FILE\"]"));
        let tail = &TEXT[TEXT.find("# between").unwrap()..];
        assert!(out.ends_with(tail), "{out}");

        let out = apply(TEXT, "db", &new(&["DB_PASSWORD"])).unwrap();
        assert!(!out.contains("hunter2"));
        assert!(out.contains("[mcp_servers.db.env]\n"));
        assert!(out.contains("DB_HOST = \"localhost\"\n\n[other]\nx = 1\n"));
        let head = &TEXT[..TEXT.find("[mcp_servers.db]").unwrap()];
        assert!(out.starts_with(head));
    }

    #[test]
    fn syntax_errors_hold_no_text() {
        let e = entries("[mcp_servers.x]\nenv = { T = \"ghp_secret\" \n").unwrap_err();
        assert!(!e.contains("ghp_secret"), "{e}");
    }
}
