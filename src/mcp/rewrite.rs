//! What a protected entry becomes, whatever the client: the client
//! launches `rsops exec-env /abs/NAME.enc.env -- COMMAND ARGS…` by absolute
//! paths, keeps the values that are no secrets, and gets what rsops itself
//! needs where the client filters the environment. Then the change as
//! splices of a JSONC file (the TOML side is in [`super::toml`]).

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::clients::Client;
use super::jsonc::{self, Splice, Value};

/// The variables rsops reads to find keys, forwarded by name where the
/// client filters the environment (Codex `env_vars`); no value is stored.
pub const KEY_VARIABLES: &[&str] = &[
    "SOPS_AGE_KEY_FILE",
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_CMD",
    "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
    "XDG_CONFIG_HOME",
    "GNUPGHOME",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
];

/// What the launch needs from the machine protect runs on.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The rsops binary, absolute.
    pub rsops: PathBuf,
    /// `PATH` now (for clients that give servers a short one).
    pub path: Option<String>,
    /// The age key file rsops should read, absolute (for clients that
    /// pass no variables of their own).
    pub age_key_file: Option<PathBuf>,
    /// Which of [`KEY_VARIABLES`] are set now.
    pub set_variables: Vec<String>,
}

impl Context {
    /// The context of this process: the running binary, `PATH`, the age
    /// key file (`SOPS_AGE_KEY_FILE`, else `$XDG_CONFIG_HOME/sops/age/keys.txt`
    /// when that variable moves it away from `~/.config`).
    pub fn from_process(rsops: PathBuf, var: &dyn Fn(&str) -> Option<String>) -> Context {
        let age_key_file = var("SOPS_AGE_KEY_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                var("XDG_CONFIG_HOME")
                    .map(|x| Path::new(&x).join("sops/age/keys.txt"))
                    .filter(|p| p.exists())
            })
            .map(|p| std::path::absolute(&p).unwrap_or(p));
        Context {
            rsops,
            path: var("PATH"),
            age_key_file,
            set_variables: KEY_VARIABLES
                .iter()
                .filter(|v| var(v).is_some())
                .map(|v| v.to_string())
                .collect(),
        }
    }
}

/// An entry as `protect` leaves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewEntry {
    /// The program: rsops, by absolute path.
    pub command: String,
    /// `exec-env FILE -- COMMAND ARGS…`.
    pub args: Vec<String>,
    /// Variables removed from the entry's environment (now in the file).
    pub moved: Vec<String>,
    /// Variables added to the entry's environment (paths, never secrets).
    pub env_add: Vec<(String, String)>,
    /// Names added to Codex's `env_vars`.
    pub env_vars_add: Vec<String>,
}

/// The entry that launches `program args` through rsops with `env_file`,
/// for `client`, given what the entry already sets (`env`, `env_vars`).
pub fn launch(
    client: Client,
    context: &Context,
    env_file: &Path,
    program: &str,
    args: &[String],
    env: &[(String, String)],
    env_vars: &[String],
) -> NewEntry {
    let mut new_args = vec![
        "exec-env".to_string(),
        env_file.display().to_string(),
        "--".to_string(),
        program.to_string(),
    ];
    new_args.extend(args.iter().cloned());
    let has = |key: &str| env.iter().any(|(k, _)| k == key);
    let mut env_add = Vec::new();
    let mut env_vars_add = Vec::new();
    match client {
        Client::ClaudeDesktop => {
            // A short PATH and no variables of the user's: give rsops the
            // key file and the PATH the server was found with.
            if let Some(file) = &context.age_key_file {
                if !has("SOPS_AGE_KEY_FILE") {
                    env_add.push(("SOPS_AGE_KEY_FILE".into(), file.display().to_string()));
                }
            }
            if let Some(path) = &context.path {
                if !has("PATH") {
                    env_add.push(("PATH".into(), path.clone()));
                }
            }
        }
        Client::Codex => {
            // Only an allowlist passes: forward rsops' own variables by name.
            for var in &context.set_variables {
                if !env_vars.contains(var) && !has(var) {
                    env_vars_add.push(var.clone());
                }
            }
        }
        _ => {}
    }
    NewEntry {
        command: context.rsops.display().to_string(),
        args: new_args,
        moved: Vec::new(),
        env_add,
        env_vars_add,
    }
}

/// `text` with the JSON entry at `path` changed to `new`; the bytes
/// outside the entry's `command`, `args` and environment values stay.
pub fn apply_json(
    client: Client,
    text: &str,
    path: &[String],
    new: &NewEntry,
) -> Result<String, String> {
    let root = jsonc::parse(text).map_err(|e| e.to_string())?;
    let entry = super::entries::json_at(&root, path).ok_or("the entry is gone")?;
    let command = entry.member("command").ok_or("the entry has no command")?;
    let multiline = text[entry.span.clone()].contains('\n');
    let indent = jsonc::line_indent(text, command.key_start);
    let unit = jsonc::indent_unit(text);
    let separator = if multiline {
        format!(",\n{indent}")
    } else {
        ", ".to_string()
    };
    let mut splices = Vec::new();
    let mut after_command = String::new();
    if client == Client::OpenCode {
        let mut all = vec![new.command.clone()];
        all.extend(new.args.iter().cloned());
        splices.push(Splice {
            range: command.value.span.clone(),
            text: jsonc::inline_array(&all),
        });
    } else {
        splices.push(Splice {
            range: command.value.span.clone(),
            text: jsonc::quote(&new.command),
        });
        match entry.member("args") {
            Some(args) => splices.push(Splice {
                range: args.value.span.clone(),
                text: jsonc::inline_array(&new.args),
            }),
            None => after_command.push_str(&format!(
                "{separator}\"args\": {}",
                jsonc::inline_array(&new.args)
            )),
        }
    }
    let env_key = client.env_key();
    match entry.member(env_key) {
        Some(env) => {
            let env_indent = jsonc::line_indent(text, env.key_start);
            let env_multiline = text[env.value.span.clone()].contains('\n') || multiline;
            splices.push(Splice {
                range: env.value.span.clone(),
                text: env_object(text, &env.value, new, env_indent, unit, env_multiline),
            });
        }
        None if !new.env_add.is_empty() => {
            let empty = Value {
                kind: jsonc::Kind::Object(Vec::new()),
                span: 0..0,
            };
            after_command.push_str(&format!(
                "{separator}{}: {}",
                jsonc::quote(env_key),
                env_object(text, &empty, new, indent, unit, multiline)
            ));
        }
        None => {}
    }
    if !after_command.is_empty() {
        let end = command.value.span.end;
        splices.push(Splice {
            range: end..end,
            text: after_command,
        });
    }
    Ok(jsonc::apply(text, splices))
}

/// The environment object without the moved variables (the others keep
/// their value's text) and with the added ones.
fn env_object(
    text: &str,
    env: &Value,
    new: &NewEntry,
    indent: &str,
    unit: &str,
    multiline: bool,
) -> String {
    let mut members: Vec<String> = env
        .members()
        .iter()
        .filter(|m| !new.moved.contains(&m.key))
        .map(|m| format!("{}: {}", jsonc::quote(&m.key), &text[m.value.span.clone()]))
        .collect();
    for (key, value) in &new.env_add {
        if env.member(key).is_none() {
            members.push(format!("{}: {}", jsonc::quote(key), jsonc::quote(value)));
        }
    }
    if members.is_empty() {
        "{}".into()
    } else if multiline {
        let lines: Vec<String> = members
            .iter()
            .map(|m| format!("{indent}{unit}{m}"))
            .collect();
        format!("{{\n{}\n{indent}}}", lines.join(",\n"))
    } else {
        format!("{{{}}}", members.join(", "))
    }
}

/// The dotenv plaintext of the moved variables (`KEY=value` lines, a
/// newline in a value written `\n` as sops does).
pub fn dotenv(pairs: &[(String, String)]) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut out = Zeroizing::new(Vec::new());
    for (key, value) in pairs {
        if key.is_empty() || key.contains(['=', '\n']) || key.starts_with('#') {
            return Err(format!(
                "variable name {key:?} cannot be written to a dotenv file"
            ));
        }
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value.replace('\n', "\\n").as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// A file name for a server's env file: its name with anything but
/// letters, digits, `.`, `_` and `-` replaced by `_`.
pub fn env_file_name(server: &str) -> String {
    let stem: String = server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = stem.trim_start_matches('.');
    format!("{}.enc.env", if stem.is_empty() { "server" } else { stem })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        Context {
            rsops: "/opt/rsops".into(),
            path: Some("/usr/bin:/bin".into()),
            age_key_file: Some("/k/keys.txt".into()),
            set_variables: vec!["SOPS_AGE_KEY_FILE".into()],
        }
    }

    #[test]
    fn launch_per_client() {
        let env_file = Path::new("/c/gh.enc.env");
        let args = ["-y".to_string(), "srv".to_string()];
        let n = launch(Client::Cursor, &context(), env_file, "npx", &args, &[], &[]);
        assert_eq!(n.command, "/opt/rsops");
        assert_eq!(
            n.args,
            ["exec-env", "/c/gh.enc.env", "--", "npx", "-y", "srv"]
        );
        assert!(n.env_add.is_empty() && n.env_vars_add.is_empty());
        let n = launch(
            Client::ClaudeDesktop,
            &context(),
            env_file,
            "npx",
            &args,
            &[],
            &[],
        );
        assert_eq!(
            n.env_add,
            [
                ("SOPS_AGE_KEY_FILE".into(), "/k/keys.txt".into()),
                ("PATH".into(), "/usr/bin:/bin".into())
            ]
        );
        let n = launch(Client::Codex, &context(), env_file, "npx", &args, &[], &[]);
        assert_eq!(n.env_vars_add, ["SOPS_AGE_KEY_FILE"]);
        let n = launch(
            Client::Codex,
            &context(),
            env_file,
            "npx",
            &args,
            &[],
            &["SOPS_AGE_KEY_FILE".into()],
        );
        assert!(n.env_vars_add.is_empty());
    }

    const TEXT: &str = r#"{
  // servers
  "mcpServers": {
    "gh": {
      "command": "npx", // launcher
      "args": ["-y", "srv"],
      "env": {
        "GITHUB_TOKEN": "ghp_x", // moved
        "LOG": "info",
        "N": 3,
      },
    },
    "other": {"command": "x"},
  },
}
"#;

    #[test]
    fn json_splice_changes_only_the_entry_values() {
        let mut new = launch(
            Client::ClaudeDesktop,
            &context(),
            Path::new("/c/gh.enc.env"),
            "npx",
            &["-y".into(), "srv".into()],
            &[],
            &[],
        );
        new.moved = vec!["GITHUB_TOKEN".into()];
        let path = ["mcpServers".to_string(), "gh".to_string()];
        let out = apply_json(Client::ClaudeDesktop, TEXT, &path, &new).unwrap();
        let expected = r#"{
  // servers
  "mcpServers": {
    "gh": {
      "command": "/opt/rsops", // launcher
      "args": ["exec-env", "/c/gh.enc.env", "--", "npx", "-y", "srv"],
      "env": {
        "LOG": "info",
        "N": 3,
        "SOPS_AGE_KEY_FILE": "/k/keys.txt",
        "PATH": "/usr/bin:/bin"
      },
    },
    "other": {"command": "x"},
  },
}
"#;
        assert_eq!(out, expected);
    }

    #[test]
    fn json_splice_inserts_args_and_rewrites_opencode_commands() {
        let text = "{\"mcp\": {\"a\": {\"type\": \"local\", \"command\": [\"x\", \"--v\"], \"environment\": {\"T\": \"s\"}}}}";
        let new = NewEntry {
            command: "/r".into(),
            args: vec![
                "exec-env".into(),
                "/f".into(),
                "--".into(),
                "x".into(),
                "--v".into(),
            ],
            moved: vec!["T".into()],
            ..NewEntry::default()
        };
        let path = ["mcp".to_string(), "a".to_string()];
        let out = apply_json(Client::OpenCode, text, &path, &new).unwrap();
        assert_eq!(
            out,
            "{\"mcp\": {\"a\": {\"type\": \"local\", \"command\": [\"/r\", \"exec-env\", \"/f\", \"--\", \"x\", \"--v\"], \"environment\": {}}}}"
        );
        let text = "{\"mcpServers\": {\"a\": {\"command\": \"x\", \"env\": {\"T\": \"s\"}}}}";
        let path = ["mcpServers".to_string(), "a".to_string()];
        let out = apply_json(Client::Cursor, text, &path, &new).unwrap();
        assert_eq!(
            out,
            "{\"mcpServers\": {\"a\": {\"command\": \"/r\", \"args\": [\"exec-env\", \"/f\", \"--\", \"x\", \"--v\"], \"env\": {}}}}"
        );
    }

    #[test]
    fn dotenv_and_names() {
        let text = dotenv(&[("A".into(), "x\ny".into()), ("B".into(), "z".into())]).unwrap();
        assert_eq!(&text[..], b"A=x\\ny\nB=z\n");
        assert!(dotenv(&[("A=B".into(), "x".into())]).is_err());
        assert_eq!(env_file_name("github"), "github.enc.env");
        assert_eq!(env_file_name("../x y"), "_x_y.enc.env");
    }
}
