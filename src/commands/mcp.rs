//! `rsops mcp scan | protect | snippet`: literal secrets in MCP client
//! configs, found, moved into encrypted env files, and ready entries.
//! Nothing here prints a secret: findings carry masks, and `--dry-run`
//! diffs have every found value replaced by its mask.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rsops::formats::{EmitOptions, Format};
use rsops::mcp::rewrite::{self, Context, NewEntry};
use rsops::mcp::{clients, entries, Client, ConfigFile, Finding};
use rsops::KeyRegistry;

use super::{write_stdout, Failure};
use crate::cli::{Cli, McpCommand, McpProtectArgs, McpScanArgs, McpSnippetArgs, ScanFormat};

/// Runs `rsops mcp …`.
pub fn run(
    cli: &Cli,
    command: &McpCommand,
    runtime: &tokio::runtime::Runtime,
) -> Result<ExitCode, Failure> {
    match command {
        McpCommand::Scan(args) => scan(args),
        McpCommand::Protect(args) => runtime.block_on(protect(cli, args)),
        McpCommand::Snippet(args) => snippet(args),
    }
}

fn mcp_failure(path: &Path, message: impl Into<String>) -> Failure {
    Failure::McpConfig {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn var_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn current_dir() -> Result<PathBuf, Failure> {
    std::env::current_dir().map_err(|source| Failure::Read {
        what: "the current directory".into(),
        source,
    })
}

/// Reads and parses one config file.
fn read_config(client: Option<Client>, path: &Path) -> Result<ConfigFile, Failure> {
    let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Failure::NotFound(path.to_path_buf()),
        _ => Failure::Read {
            what: path.display().to_string(),
            source,
        },
    })?;
    entries::read(client, path, text).map_err(|e| mcp_failure(path, e.to_string()))
}

/// The files `scan` reads: the known locations for HOME and cwd, or
/// those inside each directory given, or the files given.
fn scan_targets(args: &McpScanArgs) -> Result<Vec<(Option<Client>, PathBuf, bool)>, Failure> {
    let known = |home: &Path, cwd: &Path| {
        clients::known_locations(home, cwd, &var_path)
            .into_iter()
            .filter(|l| l.path.is_file())
            .map(|l| (Some(l.client), l.path, false))
            .collect::<Vec<_>>()
    };
    if args.paths.is_empty() {
        let cwd = current_dir()?;
        let home = var_path("HOME").unwrap_or_else(|| cwd.clone());
        return Ok(known(&home, &cwd));
    }
    let mut targets = Vec::new();
    for path in &args.paths {
        if path.is_dir() {
            let none = |_: &str| None;
            targets.extend(
                clients::known_locations(path, path, &none)
                    .into_iter()
                    .filter(|l| l.path.is_file())
                    .map(|l| (Some(l.client), l.path, false)),
            );
        } else {
            targets.push((args.client, path.clone(), true));
        }
    }
    Ok(targets)
}

fn scan(args: &McpScanArgs) -> Result<ExitCode, Failure> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for (client, path, explicit) in scan_targets(args)? {
        match read_config(client, &path) {
            Ok(file) => files.push(file),
            Err(failure) if explicit && matches!(failure, Failure::NotFound(_)) => {
                return Err(failure)
            }
            Err(failure) => errors.push((path, failure.to_string())),
        }
    }
    let found: Vec<(usize, Vec<Finding>)> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let list = f
                .entries
                .iter()
                .flat_map(|e| entries::findings(f.client, e))
                .collect();
            (i, list)
        })
        .collect();
    let total: usize = found.iter().map(|(_, l)| l.len()).sum();
    let mut out = String::new();
    match args.format {
        ScanFormat::Json => {
            let report = serde_json::json!({
                "files": files.iter().map(|f| serde_json::json!({
                    "client": f.client.name(),
                    "path": f.path.display().to_string(),
                    "servers": f.entries.len(),
                    "protected": f.entries.iter().filter(|e| e.is_protected()).count(),
                })).collect::<Vec<_>>(),
                "findings": found.iter().flat_map(|(i, list)| list.iter().map(|finding| {
                    let mut v = serde_json::to_value(finding).unwrap_or_default();
                    v["client"] = files[*i].client.name().into();
                    v["path"] = files[*i].path.display().to_string().into();
                    v["movable"] = finding.movable().into();
                    v
                })).collect::<Vec<_>>(),
                "errors": errors.iter().map(|(p, m)| serde_json::json!({
                    "path": p.display().to_string(), "message": m,
                })).collect::<Vec<_>>(),
            });
            out = serde_json::to_string_pretty(&report).unwrap_or_default();
            out.push('\n');
        }
        ScanFormat::Text => {
            for (i, list) in &found {
                let file = &files[*i];
                if list.is_empty() {
                    continue;
                }
                out.push_str(&format!(
                    "{}  {}\n",
                    file.client.name(),
                    file.path.display()
                ));
                for f in list {
                    let field = match f.field {
                        rsops::mcp::Field::Env => file.client.env_key(),
                        rsops::mcp::Field::Args => "args",
                        rsops::mcp::Field::Headers => file.client.headers_key(),
                        rsops::mcp::Field::Url => "url",
                    };
                    let key = if f.field == rsops::mcp::Field::Env
                        || f.field == rsops::mcp::Field::Headers
                    {
                        format!("{field}.{}", f.key)
                    } else {
                        f.key.clone()
                    };
                    out.push_str(&format!(
                        "  {}: {key} = {} ({})\n",
                        f.server,
                        f.hint,
                        f.reason.describe()
                    ));
                }
            }
            let servers: usize = found
                .iter()
                .map(|(_, l)| {
                    let mut names: Vec<&str> = l.iter().map(|f| f.server.as_str()).collect();
                    names.dedup();
                    names.len()
                })
                .sum();
            if total == 0 {
                out.push_str(&format!(
                    "no plaintext secrets in {} config file{}\n",
                    files.len(),
                    if files.len() == 1 { "" } else { "s" }
                ));
            } else {
                out.push_str(&format!(
                    "{total} plaintext secret{} in {servers} server{}; move them with `rsops mcp protect FILE`\n",
                    if total == 1 { "" } else { "s" },
                    if servers == 1 { "" } else { "s" },
                ));
            }
            for (path, message) in &errors {
                eprintln!("rsops: warning: {}: not read: {message}", path.display());
            }
        }
    }
    write_stdout(out.as_bytes())?;
    Ok(if total > 0 {
        ExitCode::from(1)
    } else if !errors.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// One server `protect` changes.
struct Plan {
    label: String,
    env_file: PathBuf,
    moved: Vec<(String, String)>,
    new: NewEntry,
    path: Vec<String>,
    name: String,
}

/// The running binary, absolute.
fn rsops_path() -> Result<PathBuf, Failure> {
    std::env::current_exe().map_err(|source| Failure::Internal {
        what: "cannot find the rsops binary's path",
        source,
    })
}

/// A free `NAME.enc.env` in `dir`: not on disk, not chosen already.
fn env_file_for(dir: &Path, server: &str, taken: &[PathBuf]) -> PathBuf {
    let base = rewrite::env_file_name(server);
    let stem = base.trim_end_matches(".enc.env");
    (1..)
        .map(|n| {
            dir.join(if n == 1 {
                base.clone()
            } else {
                format!("{stem}-{n}.enc.env")
            })
        })
        .find(|p| !p.exists() && !taken.contains(p))
        .unwrap_or_else(|| dir.join(base))
}

async fn protect(cli: &Cli, args: &McpProtectArgs) -> Result<ExitCode, Failure> {
    let path = std::path::absolute(&args.path).unwrap_or_else(|_| args.path.clone());
    let file = read_config(args.client, &path)?;
    for wanted in &args.servers {
        if !file.entries.iter().any(|e| &e.name == wanted) {
            return Err(mcp_failure(&path, format!("no server named {wanted:?}")));
        }
    }
    let dir = match &args.secrets_dir {
        Some(d) => std::path::absolute(d).unwrap_or_else(|_| d.clone()),
        None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let context = Context::from_process(rsops_path()?, &var);
    let mut plans: Vec<Plan> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut all_findings: Vec<Finding> = Vec::new();
    for entry in &file.entries {
        let chosen = args.servers.is_empty() || args.servers.contains(&entry.name);
        if !chosen {
            continue;
        }
        let findings = entries::findings(file.client, entry);
        all_findings.extend(findings.iter().cloned());
        let label = entry.label();
        for f in findings.iter().filter(|f| !f.movable()) {
            let place = match f.field {
                rsops::mcp::Field::Args | rsops::mcp::Field::Url => f.key.clone(),
                _ => format!("{}.{}", field_name(file.client, f.field), f.key),
            };
            notes.push(format!(
                "{label}: {place} = {} left in place: {}",
                f.hint,
                left_advice(file.client, f.field)
            ));
        }
        if entry.is_protected() {
            if !args.servers.is_empty() {
                notes.push(format!("{label}: already protected"));
            }
            continue;
        }
        let moved: Vec<(String, String)> = findings
            .iter()
            .filter(|f| f.movable())
            .filter_map(|f| entry.env.iter().find(|(k, _)| *k == f.key).cloned())
            .collect();
        if moved.is_empty() {
            continue;
        }
        let Some(program) = entry.command.as_deref() else {
            notes.push(format!("{label}: no command to wrap; left as it is"));
            continue;
        };
        let taken: Vec<PathBuf> = plans.iter().map(|p| p.env_file.clone()).collect();
        let env_file = env_file_for(&dir, &entry.name, &taken);
        let mut new = rewrite::launch(
            file.client,
            &context,
            &env_file,
            program,
            &entry.args,
            &entry.env,
            &entry.env_vars,
        );
        new.moved = moved.iter().map(|(k, _)| k.clone()).collect();
        plans.push(Plan {
            label,
            env_file,
            moved,
            new,
            path: entry.path.clone(),
            name: entry.name.clone(),
        });
    }
    let mut out = String::new();
    for note in &notes {
        eprintln!("rsops: warning: {note}");
    }
    if plans.is_empty() {
        out.push_str(&format!("{}: nothing to protect\n", file.path.display()));
        write_stdout(out.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = file.text.clone();
    for plan in &plans {
        text = if file.client.is_toml() {
            rsops::mcp::toml::apply(&text, &plan.name, &plan.new)
        } else {
            rewrite::apply_json(file.client, &text, &plan.path, &plan.new)
        }
        .map_err(|m| mcp_failure(&path, format!("server {:?}: {m}", plan.name)))?;
    }
    // Every env file is encrypted before anything is written: a key that
    // cannot wrap leaves the config and the directory as they were.
    let registry = KeyRegistry::default();
    let mut sealed: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for plan in &plans {
        let options = super::encrypt::encrypt_options(
            cli,
            &args.new_file,
            &plan.env_file,
            args.keys.key_timeout,
        )?;
        if args.dry_run {
            continue;
        }
        let plain = rewrite::dotenv(&plan.moved).map_err(|m| mcp_failure(&path, m))?;
        let encrypted = rsops::encrypt::encrypt_plain(
            &plain,
            Format::Dotenv,
            Format::Dotenv,
            &options,
            &registry,
            EmitOptions::default(),
        )
        .await
        .map_err(|source| Failure::Encrypt {
            input: plan.env_file.display().to_string(),
            source: Box::new(source),
        })?;
        sealed.push((plan.env_file.clone(), encrypted.into_bytes()));
    }
    if args.dry_run {
        let diff = rsops::mcp::line_diff(&file.text, &text, 2);
        out.push_str(&format!(
            "--- {0}\n+++ {0} (protected)\n{1}",
            file.path.display(),
            masked(&diff, &all_findings)
        ));
        for plan in &plans {
            out.push_str(&format!(
                "would write {} (0600): {}\n",
                plan.env_file.display(),
                names(&plan.moved)
            ));
        }
        out.push_str("dry run: nothing written\n");
        write_stdout(out.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(dir) = &args.secrets_dir {
        std::fs::create_dir_all(dir).map_err(|source| Failure::Write {
            what: dir.display().to_string(),
            source,
        })?;
    }
    for (env_file, bytes) in &sealed {
        super::write_atomically(env_file, bytes, Some(0o600))?;
    }
    super::write_atomically(&path, text.as_bytes(), super::file_mode(&path))?;
    for plan in &plans {
        out.push_str(&format!(
            "{}: moved {} to {}\n",
            plan.label,
            names(&plan.moved),
            plan.env_file.display()
        ));
    }
    out.push_str(&format!(
        "{}: {} now launch{} through {} exec-env\n",
        file.path.display(),
        if plans.len() == 1 {
            "1 server".to_string()
        } else {
            format!("{} servers", plans.len())
        },
        if plans.len() == 1 { "es" } else { "" },
        context.rsops.display()
    ));
    write_stdout(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn names(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn field_name(client: Client, field: rsops::mcp::Field) -> &'static str {
    match field {
        rsops::mcp::Field::Env => client.env_key(),
        rsops::mcp::Field::Args => "args",
        rsops::mcp::Field::Headers => client.headers_key(),
        rsops::mcp::Field::Url => "url",
    }
}

/// What to do with a secret `protect` cannot move.
fn left_advice(client: Client, field: rsops::mcp::Field) -> &'static str {
    use rsops::mcp::Field;
    match (field, client) {
        (Field::Args, _) => {
            "exec-env passes variables, not arguments: give the server the secret through a variable it reads, then protect again"
        }
        (Field::Headers | Field::Url, Client::OpenCode) => {
            "a URL server is not launched: use {env:NAME} or {file:path} (OpenCode substitutes them)"
        }
        (Field::Headers | Field::Url, Client::ClaudeCode | Client::Cursor | Client::Windsurf) => {
            "a URL server is not launched: use ${NAME} (Cursor, Windsurf: ${env:NAME}), which the client expands"
        }
        (Field::Headers | Field::Url, Client::VsCode) => {
            "a URL server is not launched: use ${input:id}, which VS Code asks for once and stores"
        }
        (Field::Headers | Field::Url, Client::Codex) => {
            "a URL server is not launched: use bearer_token_env_var or env_http_headers"
        }
        _ => "a URL server is not launched by rsops: this client substitutes no references",
    }
}

/// `text` with every found value (raw and JSON-escaped) replaced by its mask.
fn masked(text: &str, findings: &[Finding]) -> String {
    let mut out = text.to_string();
    let mut list: Vec<&Finding> = findings.iter().collect();
    // Longest first, so a value inside another is not unmasked partly.
    list.sort_by_key(|f| std::cmp::Reverse(f.value.0.len()));
    for f in list {
        let value: &str = &f.value.0;
        if value.is_empty() {
            continue;
        }
        let escaped = serde_json::to_string(value).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        out = out.replace(value, &f.hint);
        if escaped != value {
            out = out.replace(escaped, &f.hint);
        }
    }
    out
}

fn snippet(args: &McpSnippetArgs) -> Result<ExitCode, Failure> {
    let file = std::path::absolute(&args.file).unwrap_or_else(|_| args.file.clone());
    if !file.exists() {
        eprintln!(
            "rsops: warning: {} does not exist yet: create it with `rsops edit {}`",
            file.display(),
            file.display()
        );
    }
    let name = args.name.clone().unwrap_or_else(|| {
        let base = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        base.split(".enc").next().unwrap_or(&base).to_string()
    });
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let context = Context::from_process(rsops_path()?, &var);
    let (program, rest) = args
        .command
        .split_first()
        .ok_or(Failure::MissingArguments("a command is needed after `--`"))?;
    let new = rewrite::launch(args.client, &context, &file, program, rest, &[], &[]);
    let text = render_snippet(args.client, &name, &new);
    write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// A ready entry in `client`'s format.
fn render_snippet(client: Client, name: &str, new: &NewEntry) -> String {
    if client.is_toml() {
        let mut doc = toml_edit::DocumentMut::new();
        let mut servers = toml_edit::Table::new();
        servers.set_implicit(true);
        let mut table = toml_edit::Table::new();
        table.insert("command", toml_edit::value(new.command.as_str()));
        table.insert(
            "args",
            toml_edit::value(
                new.args
                    .iter()
                    .map(String::as_str)
                    .collect::<toml_edit::Array>(),
            ),
        );
        if !new.env_vars_add.is_empty() {
            table.insert(
                "env_vars",
                toml_edit::value(
                    new.env_vars_add
                        .iter()
                        .map(String::as_str)
                        .collect::<toml_edit::Array>(),
                ),
            );
        }
        servers.insert(name, toml_edit::Item::Table(table));
        doc.insert(client.servers_key(), toml_edit::Item::Table(servers));
        return doc.to_string();
    }
    let mut entry = serde_json::Map::new();
    match client {
        Client::OpenCode => {
            entry.insert("type".into(), "local".into());
            let mut all = vec![new.command.clone()];
            all.extend(new.args.iter().cloned());
            entry.insert("command".into(), all.into());
        }
        _ => {
            match client {
                Client::ClaudeCode | Client::VsCode | Client::Cursor => {
                    entry.insert("type".into(), "stdio".into());
                }
                Client::Zed => {
                    entry.insert("source".into(), "custom".into());
                }
                _ => {}
            }
            entry.insert("command".into(), new.command.clone().into());
            entry.insert("args".into(), new.args.clone().into());
        }
    }
    if !new.env_add.is_empty() {
        let env: serde_json::Map<String, serde_json::Value> = new
            .env_add
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        entry.insert(client.env_key().into(), env.into());
    }
    let mut servers = serde_json::Map::new();
    servers.insert(name.to_string(), entry.into());
    let mut root = serde_json::Map::new();
    root.insert(client.servers_key().into(), servers.into());
    let mut text =
        serde_json::to_string_pretty(&serde_json::Value::Object(root)).unwrap_or_default();
    text.push('\n');
    text
}
