//! `rsops mcp scan | protect | snippet` on real client config shapes
//! (`tests/fixtures/mcp/`, laid out as a home and a project): scan finds
//! exactly the planted secrets, protect moves them into env files the
//! reference decrypts and leaves every other byte, nothing printed holds a
//! secret, and a real MCP client (the official Python SDK) launches the
//! rewritten entries.

use std::path::{Path, PathBuf};
use std::process::Output;

use rsops::mcp::{entries, jsonc, Client};

use crate::util::{fixture, run, Sandbox};

/// Every secret planted in the fixtures: (file under the fixture tree,
/// server, key as scan names it, value, moved by protect).
const PLANTED: &[(&str, &str, &str, &str, bool)] = &[
    (
        "project/opencode.jsonc",
        "github",
        "GITHUB_PERSONAL_ACCESS_TOKEN",
        "ghp_Fx7Kq2Lm9Np4Rs6Tv8Wy1Za3Bc5De7Fg9Hj0",
        true,
    ),
    (
        "project/opencode.jsonc",
        "remote",
        "Authorization",
        "sk-proj-Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz2Xc4Vb6",
        false,
    ),
    (
        "home/.config/Claude/claude_desktop_config.json",
        "slack",
        "SLACK_BOT_TOKEN",
        "xoxb-2048-4096-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op",
        true,
    ),
    (
        "home/.config/Claude/claude_desktop_config.json",
        "postgres",
        "args[2]",
        "S3cr3t-Pg-Passw0rd",
        false,
    ),
    (
        "home/.config/Claude/claude_desktop_config.json",
        "brave-search",
        "BRAVE_API_KEY",
        "BSAk9x2Lq7Wm4Np8Rt3Vy6Zb1Cd5Fg",
        true,
    ),
    (
        "home/.claude.json",
        "notes",
        "API_TOKEN",
        "tok_9f8e7d6c5b4a3928171605f4e3d2c1b0",
        true,
    ),
    (
        "home/.claude.json",
        "db (project /home/me/work/app)",
        "DATABASE_PASSWORD",
        "correct-horse-battery-staple",
        true,
    ),
    (
        "project/.mcp.json",
        "gitlab",
        "GITLAB_PERSONAL_ACCESS_TOKEN",
        "glpat-Xy9Zw8Vu7Ts6Rq5Po4Nm",
        true,
    ),
    (
        "project/.mcp.json",
        "maps",
        "args[1] (--api-key)",
        "AIzaSyD4f8Gh2Jk6Lm0Np3Qr7St1Uv5Wx9Yz2Ab",
        false,
    ),
    (
        "home/.codex/config.toml",
        "openai-docs",
        "OPENAI_API_KEY",
        "sk-Codex1nl1neK3yAbCdEfGhIjKlMnOpQrStUv",
        true,
    ),
    (
        "home/.codex/config.toml",
        "postgres",
        "DB_PASSWORD",
        "hunter2-but-longer",
        true,
    ),
    (
        "home/.codex/config.toml",
        "remote",
        "X-Api-Key",
        "hk_7Gh3Jk9Lm2Np5Qr8St1Vw4Xy",
        false,
    ),
    (
        "project/.vscode/mcp.json",
        "notion",
        "NOTION_TOKEN",
        "ntn_4815162342LostNumbersAbCdEf",
        true,
    ),
    (
        "project/.cursor/mcp.json",
        "stripe",
        "STRIPE_SECRET_KEY",
        "sk_test_51HxYzAbCdEfGhIjKlMnOpQr",
        true,
    ),
    (
        "home/.codeium/windsurf/mcp_config.json",
        "firecrawl",
        "FIRECRAWL_API_KEY",
        "fc-9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
        true,
    ),
    (
        "home/.config/zed/settings.json",
        "linear",
        "LINEAR_API_KEY",
        "lin_api_Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1",
        true,
    ),
    (
        "home/.cline/data/settings/cline_mcp_settings.json",
        "perplexity",
        "PERPLEXITY_API_KEY",
        "pplx-a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2",
        true,
    ),
];

/// Copies the fixture tree into the sandbox (`home/`, `project/`).
fn lay_out(sandbox: &Sandbox) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    copy(&fixture("mcp"), sandbox.dir.path());
}

/// Asserts no planted secret appears in a command's output.
#[track_caller]
fn assert_no_secret(what: &str, output: &Output) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for (_, _, _, secret, _) in PLANTED {
        assert!(!text.contains(secret), "{what} printed a secret:\n{text}");
    }
}

fn text(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn scan_finds_exactly_the_planted_secrets_and_prints_none() {
    let sandbox = Sandbox::new(0);
    lay_out(&sandbox);
    let home = sandbox.path("home");
    let project = sandbox.path("project");
    let mut cmd = sandbox.rsops();
    cmd.env("HOME", &home)
        .current_dir(&project)
        .args(["mcp", "scan"]);
    let output = run(&mut cmd, b"");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert_no_secret("scan", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(lines.len(), PLANTED.len(), "{stdout}");
    for (file, server, key, _, _) in PLANTED {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("  {server}: ")) && l.contains(key)),
            "{file}: {server} {key} not reported:\n{stdout}"
        );
    }
    assert!(stdout.contains("ghp_…(40 chars)"), "{stdout}");

    // JSON: the same findings, each with its file and client.
    let mut cmd = sandbox.rsops();
    cmd.env("HOME", &home)
        .current_dir(&project)
        .args(["mcp", "scan", "--format", "json"]);
    let output = run(&mut cmd, b"");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert_no_secret("scan --format json", &output);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), PLANTED.len());
    assert_eq!(report["files"].as_array().unwrap().len(), 10);
    for (file, server, key, _, movable) in PLANTED {
        let found = findings.iter().find(|f| {
            f["server"] == *server
                && key.starts_with(f["key"].as_str().unwrap())
                && f["path"].as_str().unwrap().ends_with(file)
        });
        let found = found.unwrap_or_else(|| panic!("{file}: {server} {key} missing"));
        assert_eq!(found["movable"], *movable, "{server} {key}");
    }

    // The same through explicit paths; a file without secrets exits 0.
    let output = run(
        sandbox
            .rsops()
            .args(["mcp", "scan"])
            .arg(&home)
            .arg(&project),
        b"",
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| l.starts_with("  "))
            .count(),
        PLANTED.len()
    );
    let clean = sandbox.write(
        "clean.json",
        br#"{"mcpServers": {"fs": {"command": "npx", "args": ["-y", "srv", "/tmp"], "env": {"LOG_LEVEL": "debug", "API_KEY_FILE": "/run/key"}}}}"#,
    );
    let output = run(sandbox.rsops().args(["mcp", "scan"]).arg(&clean), b"");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("no plaintext secrets"));
    let output = run(sandbox.rsops().args(["mcp", "scan", "missing.json"]), b"");
    assert_ne!(output.status.code(), Some(0));
}

/// The text with the given entries blanked out: what must not change.
fn outside_entries(client: Client, text: &str, paths: &[Vec<String>]) -> String {
    if client.is_toml() {
        let names: Vec<&str> = paths.iter().map(|p| p[1].as_str()).collect();
        let mut out = String::new();
        let mut inside = false;
        for line in text.split_inclusive('\n') {
            if let Some(header) = line.trim().strip_prefix("[mcp_servers.") {
                let name = header.trim_end_matches(']');
                let name = name.split('.').next().unwrap_or(name);
                inside = names.contains(&name);
            } else if line.trim_start().starts_with('[') {
                inside = false;
            }
            out.push_str(if inside { "<entry>\n" } else { line });
        }
        // Comments just before the next table belong to the text between.
        return out;
    }
    let root = jsonc::parse(text).unwrap();
    let mut spans: Vec<std::ops::Range<usize>> = paths
        .iter()
        .map(|p| entries::json_at(&root, p).unwrap().span.clone())
        .collect();
    spans.sort_by_key(|s| std::cmp::Reverse(s.start));
    let mut out = text.to_string();
    for span in spans {
        out.replace_range(span, "<entry>");
    }
    out
}

/// Runs `rsops mcp protect` on `config` with the sandbox's first key.
fn protect(sandbox: &Sandbox, key_file: &Path, config: &Path, extra: &[&str]) -> Output {
    run(
        sandbox
            .rsops()
            .env("SOPS_AGE_KEY_FILE", key_file)
            .args(["mcp", "protect", "--age", &sandbox.keys[0].recipient])
            .args(extra)
            .arg(config),
        b"",
    )
}

fn decrypt_env(sandbox: &Sandbox, key_file: &Path, file: &Path) -> String {
    let output = run(
        sandbox
            .sops()
            .env("SOPS_AGE_KEY_FILE", key_file)
            .args([
                "decrypt",
                "--input-type",
                "dotenv",
                "--output-type",
                "dotenv",
            ])
            .arg(file),
        b"",
    );
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn protect_moves_secrets_keeps_other_bytes_and_is_idempotent() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new(1);
    lay_out(&sandbox);
    let key_file = sandbox.key_file(&[0]);
    let mut files: Vec<&str> = PLANTED.iter().map(|p| p.0).collect();
    files.dedup();
    for file in files {
        let config = sandbox.path(file);
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
        let before = std::fs::read_to_string(&config).unwrap();
        let parsed = entries::read(None, &config, before.clone()).unwrap();
        let moved: Vec<_> = PLANTED.iter().filter(|p| p.0 == file && p.4).collect();

        let output = protect(&sandbox, &key_file, &config, &[]);
        assert!(output.status.success(), "{file}: {}", text(&output));
        assert_no_secret(file, &output);
        let after = std::fs::read_to_string(&config).unwrap();
        for p in &moved {
            assert!(!after.contains(p.3), "{file}: {} still in the config", p.2);
        }
        let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{file}: mode not kept");

        // Outside the rewritten entries, not a byte changed.
        let rewritten: Vec<Vec<String>> = parsed
            .entries
            .iter()
            .filter(|e| moved.iter().any(|p| p.1.starts_with(&e.name)))
            .map(|e| e.path.clone())
            .collect();
        assert_eq!(
            outside_entries(parsed.client, &after, &rewritten),
            outside_entries(parsed.client, &before, &rewritten),
            "{file}"
        );

        // Each rewritten entry launches rsops exec-env FILE -- the old command,
        // and its env file holds exactly the moved values.
        let reread = entries::read(None, &config, after.clone()).unwrap();
        for path in &rewritten {
            let old = parsed.entries.iter().find(|e| &e.path == path).unwrap();
            let new = reread.entries.iter().find(|e| &e.path == path).unwrap();
            assert!(new.is_protected(), "{file}: {path:?}");
            assert_eq!(
                Path::new(new.command.as_deref().unwrap()),
                crate::util::rsops_bin()
            );
            assert_eq!(new.args[0], "exec-env");
            assert_eq!(new.args[2], "--");
            assert_eq!(new.args[3], old.command.clone().unwrap());
            assert_eq!(new.args[4..], old.args[..]);
            let env_file = PathBuf::from(&new.args[1]);
            assert!(env_file.is_absolute());
            assert_eq!(env_file.parent().unwrap(), config.parent().unwrap());
            let mode = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let expected: String = moved
                .iter()
                .filter(|p| p.1.starts_with(&old.name))
                .map(|p| format!("{}={}\n", p.2, p.3))
                .collect();
            assert_eq!(decrypt_env(&sandbox, &key_file, &env_file), expected);
            // The values that were no secrets stay in the entry.
            for (k, v) in &old.env {
                if !moved.iter().any(|p| p.2 == k) {
                    assert!(new.env.contains(&(k.clone(), v.clone())), "{file}: {k}");
                }
            }
        }

        // Again: nothing changes.
        let output = protect(&sandbox, &key_file, &config, &[]);
        assert!(output.status.success(), "{file}: {}", text(&output));
        assert!(String::from_utf8_lossy(&output.stdout).contains("nothing to protect"));
        assert_eq!(std::fs::read_to_string(&config).unwrap(), after, "{file}");
    }
    // What protect cannot move is still reported, and only that.
    let output = run(
        sandbox
            .rsops()
            .args(["mcp", "scan"])
            .arg(sandbox.path("home"))
            .arg(sandbox.path("project")),
        b"",
    );
    assert_eq!(output.status.code(), Some(1));
    assert_no_secret("scan after protect", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let left = PLANTED.iter().filter(|p| !p.4).count();
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("  ")).count(),
        left,
        "{stdout}"
    );
    // No plaintext copy anywhere in the tree.
    for entry in walk(sandbox.dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        let content = String::from_utf8_lossy(&bytes);
        for p in PLANTED.iter().filter(|p| p.4) {
            assert!(!content.contains(p.3), "{} holds {}", entry.display(), p.2);
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            files.extend(walk(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

#[test]
fn dry_run_and_failed_encryption_write_nothing() {
    let sandbox = Sandbox::new(1);
    lay_out(&sandbox);
    let key_file = sandbox.key_file(&[0]);
    let project = sandbox.path("project");
    let listing = || {
        let mut l = walk(sandbox.dir.path());
        l.sort();
        l
    };
    let config = sandbox.path("project/opencode.jsonc");
    let before = std::fs::read(&config).unwrap();
    let files_before = listing();

    let output = protect(&sandbox, &key_file, &config, &["--dry-run"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_no_secret("--dry-run", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("-        \"GITHUB_PERSONAL_ACCESS_TOKEN\": \"ghp_…(40 chars)\""),
        "{stdout}"
    );
    assert!(stdout.contains("exec-env"), "{stdout}");
    assert!(stdout.contains("github.enc.env"), "{stdout}");
    assert_eq!(std::fs::read(&config).unwrap(), before);
    assert_eq!(listing(), files_before);

    // No keys at all (no flag, no .sops.yaml): refused, nothing written.
    let output = run(
        sandbox
            .rsops()
            .current_dir(&project)
            .args(["mcp", "protect"])
            .arg(&config),
        b"",
    );
    assert!(!output.status.success());
    assert_no_secret("protect without keys", &output);
    assert_eq!(std::fs::read(&config).unwrap(), before);
    assert_eq!(listing(), files_before);

    // A key that cannot wrap: refused, nothing written.
    let output = run(
        sandbox
            .rsops()
            .args(["mcp", "protect", "--age", "age1notavalidrecipient"])
            .arg(&config),
        b"",
    );
    assert!(!output.status.success(), "{}", text(&output));
    assert_eq!(std::fs::read(&config).unwrap(), before);
    assert_eq!(listing(), files_before);
}

#[test]
fn keys_from_sops_yaml_and_a_secrets_dir() {
    let sandbox = Sandbox::new(1);
    lay_out(&sandbox);
    let key_file = sandbox.key_file(&[0]);
    sandbox.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - path_regex: secrets/.*\\.enc\\.env$\n    age: {}\n",
            sandbox.keys[0].recipient
        )
        .as_bytes(),
    );
    let config = sandbox.path("project/.cursor/mcp.json");
    let output = run(
        sandbox
            .rsops()
            .args(["mcp", "protect", "--secrets-dir", "secrets"])
            .arg(&config),
        b"",
    );
    assert!(output.status.success(), "{}", text(&output));
    let env_file = sandbox.path("secrets/stripe.enc.env");
    assert_eq!(
        decrypt_env(&sandbox, &key_file, &env_file),
        "STRIPE_SECRET_KEY=sk_test_51HxYzAbCdEfGhIjKlMnOpQr\n"
    );
    let after = std::fs::read_to_string(&config).unwrap();
    assert!(after.contains(&*env_file.to_string_lossy()), "{after}");
    // The reference leaves the non-secret reference alone.
    assert!(after.contains("\"STRIPE_ACCOUNT\": \"${env:STRIPE_ACCOUNT}\""));
}

#[test]
fn snippets_in_each_format() {
    let sandbox = Sandbox::new(0);
    let file = sandbox.write("gh.enc.env", b"");
    let snippet = |client: &str| {
        let output = run(
            sandbox
                .rsops()
                .env("SOPS_AGE_KEY_FILE", "/keys/age.txt")
                .args(["mcp", "snippet", "--client", client])
                .arg(&file)
                .args(["--", "npx", "-y", "srv"]),
            b"",
        );
        assert!(output.status.success(), "{}", text(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    let rsops = crate::util::rsops_bin().display().to_string();
    let file_text = file.display().to_string();
    let args = serde_json::json!(["exec-env", file_text, "--", "npx", "-y", "srv"]);

    let desktop: serde_json::Value = serde_json::from_str(&snippet("claude-desktop")).unwrap();
    let entry = &desktop["mcpServers"]["gh"];
    assert_eq!(entry["command"], rsops);
    assert_eq!(entry["args"], args);
    assert_eq!(entry["env"]["SOPS_AGE_KEY_FILE"], "/keys/age.txt");
    assert!(entry["env"]["PATH"].is_string());

    let opencode: serde_json::Value = serde_json::from_str(&snippet("opencode")).unwrap();
    let command = opencode["mcp"]["gh"]["command"].as_array().unwrap();
    assert_eq!(command[0], rsops.as_str());
    assert_eq!(command[1..], args.as_array().unwrap()[..]);

    let codex = snippet("codex");
    let parsed = rsops::mcp::toml::entries(&codex).unwrap();
    assert_eq!(parsed[0].name, "gh");
    assert_eq!(parsed[0].command.as_deref(), Some(rsops.as_str()));
    assert_eq!(
        parsed[0].args,
        args.as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(parsed[0].env_vars, ["SOPS_AGE_KEY_FILE"]);
    assert!(codex.starts_with("[mcp_servers.gh]\n"), "{codex}");

    let vscode: serde_json::Value = serde_json::from_str(&snippet("vscode")).unwrap();
    assert_eq!(vscode["servers"]["gh"]["type"], "stdio");
}

/// The project venv's Python, which has the MCP SDK.
fn venv_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// Launches the entry `name` of `config` as `client` does (through the
/// official MCP Python SDK) with the client process's environment `env`,
/// and returns what the server's `getenv` tool reports for `names`.
fn launch_as_client(
    sandbox: &Sandbox,
    client: Client,
    config: &Path,
    name: &str,
    env: &[(&str, &str)],
    names: &[&str],
) -> Vec<String> {
    let file = entries::read(
        Some(client),
        config,
        std::fs::read_to_string(config).unwrap(),
    )
    .unwrap();
    let entry = file.entries.iter().find(|e| e.name == name).unwrap();
    let mode = match client {
        Client::Codex => "codex",
        Client::ClaudeDesktop => "default",
        _ => "inherit",
    };
    let env_map: serde_json::Map<String, serde_json::Value> = entry
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    let spec = serde_json::json!({
        "command": entry.command,
        "args": entry.args,
        "env": env_map,
        "env_vars": entry.env_vars,
        "mode": mode,
    });
    let spec_file = sandbox.write("spec.json", spec.to_string().as_bytes());
    let mut cmd = sandbox.command(&venv_python());
    cmd.env_remove("PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let client_script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py");
    let output = run(cmd.arg(client_script).arg(&spec_file).args(names), b"");
    assert!(
        output.status.success(),
        "{client:?} launch: {}",
        text(&output)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The official MCP client launches each main client's rewritten entry
/// under that client's environment rules, and the server gets the secret.
/// Needs the argv form of exec-env (`rsops exec-env FILE -- CMD ARG…`).
#[test]
fn the_official_client_launches_protected_entries() {
    let sandbox = Sandbox::new(1);
    let key_file = sandbox.key_file(&[0]);
    let secret = "ghp_R0undTr1pS3cr3tAbCdEfGhIjKlMnOpQrSt";
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/echo_server.py");
    let server = server.display().to_string();
    let venv_bin = venv_python().parent().unwrap().display().to_string();
    let full_path = format!("{venv_bin}:/usr/local/bin:/usr/bin:/bin");
    let configs = [
        (
            Client::ClaudeDesktop,
            "claude_desktop_config.json",
            format!(
                "{{\n  \"mcpServers\": {{\n    \"echo\": {{\n      \"command\": \"python\",\n      \"args\": [\"{server}\"],\n      \"env\": {{\"ECHO_TOKEN\": \"{secret}\", \"ECHO_MODE\": \"plain\"}}\n    }}\n  }}\n}}\n"
            ),
        ),
        (
            Client::Codex,
            "config.toml",
            format!(
                "# codex\n[mcp_servers.echo]\ncommand = \"python\"\nargs = [\"{server}\"]\nenv = {{ ECHO_TOKEN = \"{secret}\", ECHO_MODE = \"plain\" }}\n"
            ),
        ),
        (
            Client::OpenCode,
            "opencode.json",
            format!(
                "{{\n  // opencode\n  \"mcp\": {{\n    \"echo\": {{\n      \"type\": \"local\",\n      \"command\": [\"python\", \"{server}\"],\n      \"environment\": {{\"ECHO_TOKEN\": \"{secret}\", \"ECHO_MODE\": \"plain\"}},\n    }},\n  }},\n}}\n"
            ),
        ),
    ];
    for (client, name, body) in configs {
        let dir = sandbox.path(client.name());
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join(name);
        std::fs::write(&config, body).unwrap();
        let output = run(
            sandbox
                .rsops()
                .env("PATH", &full_path)
                .env("SOPS_AGE_KEY_FILE", &key_file)
                .args(["mcp", "protect", "--age", &sandbox.keys[0].recipient])
                .arg(&config),
            b"",
        );
        assert!(output.status.success(), "{client:?}: {}", text(&output));
        let after = std::fs::read_to_string(&config).unwrap();
        assert!(!after.contains(secret), "{client:?}: {after}");
        assert_eq!(
            decrypt_env(&sandbox, &key_file, &dir.join("echo.enc.env")),
            format!("ECHO_TOKEN={secret}\n")
        );
        let key = key_file.display().to_string();
        // The client process: Claude Desktop's is started from the desktop
        // (short PATH, no key variable); Codex and OpenCode from a shell.
        let env: Vec<(&str, &str)> = match client {
            Client::ClaudeDesktop => vec![("PATH", "/usr/bin:/bin")],
            _ => vec![
                ("PATH", full_path.as_str()),
                ("SOPS_AGE_KEY_FILE", key.as_str()),
                ("UNRELATED", "x"),
            ],
        };
        let got = launch_as_client(
            &sandbox,
            client,
            &config,
            "echo",
            &env,
            &["ECHO_TOKEN", "ECHO_MODE", "UNRELATED"],
        );
        let unrelated = if client == Client::OpenCode {
            "x"
        } else {
            "<unset>"
        };
        assert_eq!(got, [secret, "plain", unrelated], "{client:?}");
    }
}

/// The test harness itself: the Python client and server talk, and the
/// Codex mode passes only the allowlist.
#[test]
fn the_test_client_reaches_the_echo_server() {
    let sandbox = Sandbox::new(0);
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/echo_server.py");
    let config = sandbox.write(
        "config.toml",
        format!(
            "[mcp_servers.echo]\ncommand = \"{}\"\nargs = [\"{}\"]\nenv = {{ X = \"1\" }}\n",
            venv_python().display(),
            server.display()
        )
        .as_bytes(),
    );
    let got = launch_as_client(
        &sandbox,
        Client::Codex,
        &config,
        "echo",
        &[("UNRELATED", "x"), ("PATH", "/usr/bin:/bin")],
        &["X", "UNRELATED"],
    );
    assert_eq!(got, ["1", "<unset>"]);
}
