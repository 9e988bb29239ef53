//! Server entries as every client's file holds them, read into one shape,
//! and the literal secrets found in them.

use std::path::{Path, PathBuf};

use super::clients::Client;
use super::jsonc::{self, Value};
use super::secrets::{self, Reason};
use super::toml;

/// One server entry, whatever the client.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// The server's name.
    pub name: String,
    /// The keys leading to the entry (`["projects", "/abs", "mcpServers", "x"]`).
    pub path: Vec<String>,
    /// The program (OpenCode: `command[0]`).
    pub command: Option<String>,
    /// Its arguments (OpenCode: the rest of `command`).
    pub args: Vec<String>,
    /// The environment entries with string values, in file order.
    pub env: Vec<(String, String)>,
    /// HTTP headers (URL servers).
    pub headers: Vec<(String, String)>,
    /// The URL (URL servers).
    pub url: Option<String>,
    /// Codex `env_vars`: names forwarded from the client's environment.
    pub env_vars: Vec<String>,
}

impl Entry {
    /// How reports name the entry: its name, with the Claude Code project
    /// it belongs to.
    pub fn label(&self) -> String {
        match self.path.as_slice() {
            [projects, project, ..] if projects == "projects" => {
                format!("{} (project {project})", self.name)
            }
            _ => self.name.clone(),
        }
    }

    /// Whether it already launches through `rsops exec-env`/`exec-file`
    /// (or sops').
    pub fn is_protected(&self) -> bool {
        let program = self.command.as_deref().map(|c| {
            Path::new(c)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(c)
        });
        matches!(program, Some("rsops" | "sops"))
            && matches!(
                self.args.first().map(String::as_str),
                Some("exec-env" | "exec-file")
            )
    }
}

/// Where in an entry a secret sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    /// `env` / `environment`.
    Env,
    /// `args` (OpenCode: `command`).
    Args,
    /// `headers` / `http_headers`.
    Headers,
    /// `url`.
    Url,
}

/// A literal secret in an entry. Holds no value, only its mask.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// The server (see [`Entry::label`]).
    pub server: String,
    /// Which part of the entry.
    pub field: Field,
    /// The variable or header name, or `args[N]` (with the flag it follows).
    pub key: String,
    /// What it looks like, without its value.
    pub hint: String,
    /// Why it was taken for a secret.
    pub reason: Reason,
    /// The value itself, for masking it wherever rsops prints text that
    /// held it (`--dry-run` diffs); never serialized or debug-printed.
    #[serde(skip)]
    pub value: SecretText,
}

/// A secret string: zeroized on drop, `…` when debug-printed.
#[derive(Clone, Default)]
pub struct SecretText(pub zeroize::Zeroizing<String>);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("…")
    }
}

impl Finding {
    /// Whether `protect` can move it into an encrypted env file.
    pub fn movable(&self) -> bool {
        self.field == Field::Env
    }
}

/// The secrets in `entry` for `client`.
pub fn findings(client: Client, entry: &Entry) -> Vec<Finding> {
    let mut found = Vec::new();
    let server = entry.label();
    let mut push = |field, key: String, value: &str, reason| {
        found.push(Finding {
            server: server.clone(),
            field,
            key,
            hint: secrets::mask(value),
            reason,
            value: SecretText(zeroize::Zeroizing::new(value.to_string())),
        });
    };
    for (name, value) in &entry.env {
        if let Some(reason) = secrets::classify(client, Some(name), value) {
            push(Field::Env, name.clone(), value, reason);
        }
    }
    if !entry.is_protected() {
        let mut previous: Option<&str> = None;
        for (i, arg) in entry.args.iter().enumerate() {
            let (name, value) = arg_parts(arg, previous);
            if let Some(reason) = secrets::classify(client, name, value) {
                let key = match name {
                    Some(n) => format!("args[{i}] ({n})"),
                    None => format!("args[{i}]"),
                };
                push(Field::Args, key, value, reason);
            }
            previous = Some(arg);
        }
    }
    for (name, value) in &entry.headers {
        if let Some(reason) = secrets::classify(client, Some(name), value) {
            push(Field::Headers, name.clone(), value, reason);
        }
    }
    if let Some(url) = &entry.url {
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let in_query = query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find_map(|(k, v)| secrets::classify(client, Some(k), v).map(|r| (k.to_string(), r)));
        if let Some(reason) = secrets::classify(client, None, url) {
            push(Field::Url, "url".into(), url, reason);
        } else if let Some((name, reason)) = in_query {
            push(Field::Url, format!("url ({name})"), url, reason);
        }
    }
    found
}

/// An argument's name (its flag, `NAME` of `NAME=value`, the header of
/// `Header: value`) and value.
fn arg_parts<'a>(arg: &'a str, previous: Option<&'a str>) -> (Option<&'a str>, &'a str) {
    if arg.starts_with('-') {
        return match arg.split_once('=') {
            Some((flag, value)) => (Some(flag), value),
            None => (None, ""),
        };
    }
    if let Some(flag) = previous.filter(|p| p.starts_with('-') && !p.contains('=')) {
        if secrets::is_secret_name(flag) {
            return (Some(flag), arg);
        }
    }
    if let Some((name, value)) = arg.split_once('=') {
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return (Some(name), value);
        }
    }
    if let Some((name, value)) = arg.split_once(": ") {
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return (Some(name), value);
        }
    }
    (None, arg)
}

/// A config file read: its client, text and entries.
#[derive(Debug)]
pub struct ConfigFile {
    /// The client that reads it.
    pub client: Client,
    /// The file.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// Its server entries.
    pub entries: Vec<Entry>,
}

/// Why a config file cannot be read as one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The text is not JSON(C) or TOML.
    #[error("{0}")]
    Syntax(String),
    /// Neither the name nor the content says which client reads it.
    #[error("cannot tell which client reads it: give --client")]
    UnknownClient,
}

/// Reads a config file's text: the client is `client`, else told by the
/// path, else by the content.
pub fn read(client: Option<Client>, path: &Path, text: String) -> Result<ConfigFile, ConfigError> {
    let client = client.or_else(|| Client::from_path(path));
    if client.is_some_and(Client::is_toml) {
        let entries = toml::entries(&text).map_err(ConfigError::Syntax)?;
        return Ok(ConfigFile {
            client: Client::Codex,
            path: path.to_path_buf(),
            text,
            entries,
        });
    }
    let root = jsonc::parse(&text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    let client = match client {
        Some(c) => c,
        None => {
            let keys: Vec<&str> = root.members().iter().map(|m| m.key.as_str()).collect();
            Client::from_keys(&keys).ok_or(ConfigError::UnknownClient)?
        }
    };
    let entries = json_entries(client, &root);
    Ok(ConfigFile {
        client,
        path: path.to_path_buf(),
        text,
        entries,
    })
}

/// The entries of a JSON config: under the client's servers key, and for
/// Claude Code also under each `projects.*`.
fn json_entries(client: Client, root: &Value) -> Vec<Entry> {
    let key = client.servers_key();
    let mut entries = Vec::new();
    let mut add = |servers: Option<&Value>, prefix: Vec<String>| {
        for member in servers.map(Value::members).unwrap_or_default() {
            let mut path = prefix.clone();
            path.push(member.key.clone());
            entries.push(json_entry(client, &member.key, path, &member.value));
        }
    };
    add(root.get(key), vec![key.to_string()]);
    if client == Client::ClaudeCode {
        for project in root.get("projects").map(Value::members).unwrap_or_default() {
            add(
                project.value.get(key),
                vec!["projects".into(), project.key.clone(), key.into()],
            );
        }
    }
    entries
}

/// The object at `path` below `root`.
pub fn json_at<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(root, |v, k| v.get(k))
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::items)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn pairs(value: Option<&Value>) -> Vec<(String, String)> {
    value
        .map(Value::members)
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.value.as_str().map(|v| (m.key.clone(), v.to_string())))
        .collect()
}

fn json_entry(client: Client, name: &str, path: Vec<String>, value: &Value) -> Entry {
    let (command, args) = match value.get("command") {
        Some(c) if c.items().is_some() => {
            let mut all = strings(Some(c));
            let rest = if all.is_empty() {
                Vec::new()
            } else {
                all.split_off(1)
            };
            (all.pop(), rest)
        }
        Some(c) => (c.as_str().map(str::to_string), strings(value.get("args"))),
        None => (None, strings(value.get("args"))),
    };
    Entry {
        name: name.to_string(),
        path,
        command,
        args,
        env: pairs(value.get(client.env_key())),
        headers: pairs(value.get(client.headers_key())),
        url: value
            .get("url")
            .or_else(|| value.get("serverUrl"))
            .and_then(Value::as_str)
            .map(str::to_string),
        env_vars: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ghp() -> String {
        format!("ghp_{}", "Ab1x".repeat(9))
    }

    #[test]
    fn args_secrets_after_flags_and_in_pairs() {
        let entry = Entry {
            name: "x".into(),
            command: Some("npx".into()),
            args: vec![
                "-y".into(),
                "srv".into(),
                "--token".into(),
                "hunter2hunter2".into(),
                format!("--key={}", ghp()),
                "-e".into(),
                "API_KEY=abc123def".into(),
                "--port".into(),
                "8080".into(),
            ],
            ..Entry::default()
        };
        let found = findings(Client::ClaudeDesktop, &entry);
        let keys: Vec<&str> = found.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            ["args[3] (--token)", "args[4] (--key)", "args[6] (API_KEY)"]
        );
        assert!(found.iter().all(|f| !f.movable()));
    }

    #[test]
    fn protected_entries_and_references() {
        let text = format!(
            r#"{{"mcp": {{
                "a": {{"type": "local", "command": ["rsops", "exec-env", "/s/a.enc.env", "--", "x"]}},
                "b": {{"command": ["x"], "environment": {{"T": "{{env:T}}", "GITHUB_TOKEN": "{}"}}}},
                "c": {{"type": "remote", "url": "https://h/mcp", "headers": {{"Authorization": "Bearer {}"}}}}
            }}}}"#,
            ghp(),
            ghp()
        );
        let file = read(None, Path::new("/p/x.json"), text).unwrap();
        assert_eq!(file.client, Client::OpenCode);
        assert!(file.entries[0].is_protected());
        let all: Vec<Finding> = file
            .entries
            .iter()
            .flat_map(|e| findings(file.client, e))
            .collect();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].server.as_str(), all[0].field), ("b", Field::Env));
        assert_eq!(all[1].field, Field::Headers);
        assert_eq!(all[1].hint, "Bearer ghp_…(47 chars)");
    }

    #[test]
    fn claude_code_projects() {
        let text = r#"{"mcpServers": {"u": {"command": "x", "env": {"API_KEY": "abcdefgh1234"}}},
            "projects": {"/abs/p": {"mcpServers": {"l": {"command": "y", "env": {"TOKEN": "zzzz9999"}}}}}}"#;
        let file = read(None, Path::new("/h/.claude.json"), text.into()).unwrap();
        let labels: Vec<String> = file.entries.iter().map(Entry::label).collect();
        assert_eq!(labels, ["u", "l (project /abs/p)"]);
        assert_eq!(
            file.entries[1].path,
            ["projects", "/abs/p", "mcpServers", "l"]
        );
    }
}
