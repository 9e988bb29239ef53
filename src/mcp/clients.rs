//! The MCP clients rsops knows: where each keeps its server entries, what
//! it substitutes, and which environment it gives a server
//! (`shared/design/MCP-CLIENTS.md` has the sources).

use std::path::{Path, PathBuf};

use super::secrets::Substitution;

/// An MCP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// OpenCode: `mcp.NAME`, `command` is an array, `environment`.
    OpenCode,
    /// Claude Desktop: `mcpServers`, a short environment.
    ClaudeDesktop,
    /// Claude Code: `.mcp.json`, `~/.claude.json` (also `projects.*`).
    ClaudeCode,
    /// OpenAI Codex: TOML `mcp_servers`, an allowlisted environment.
    Codex,
    /// VS Code: `servers`.
    VsCode,
    /// Cursor: `mcpServers`.
    Cursor,
    /// Windsurf: `mcpServers`.
    Windsurf,
    /// Zed: `context_servers`.
    Zed,
    /// Cline: `mcpServers`.
    Cline,
}

/// Every client, in the order reports list them.
pub const ALL: [Client; 9] = [
    Client::OpenCode,
    Client::ClaudeDesktop,
    Client::ClaudeCode,
    Client::Codex,
    Client::VsCode,
    Client::Cursor,
    Client::Windsurf,
    Client::Zed,
    Client::Cline,
];

/// The variables Codex passes from its own environment on Unix, before
/// `env_vars` and `env`.
pub const CODEX_ALLOWLIST: &[&str] = &[
    "HOME",
    "LOGNAME",
    "PATH",
    "SHELL",
    "USER",
    "__CF_USER_TEXT_ENCODING",
    "LANG",
    "LC_ALL",
    "TERM",
    "TMPDIR",
    "TZ",
];

impl Client {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Client::OpenCode => "opencode",
            Client::ClaudeDesktop => "claude-desktop",
            Client::ClaudeCode => "claude-code",
            Client::Codex => "codex",
            Client::VsCode => "vscode",
            Client::Cursor => "cursor",
            Client::Windsurf => "windsurf",
            Client::Zed => "zed",
            Client::Cline => "cline",
        }
    }

    /// The client named `name` (as [`Client::name`] spells it).
    pub fn from_name(name: &str) -> Option<Client> {
        ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether its config is TOML (else JSON or JSONC).
    pub fn is_toml(self) -> bool {
        self == Client::Codex
    }

    /// The key holding the server entries.
    pub fn servers_key(self) -> &'static str {
        match self {
            Client::OpenCode => "mcp",
            Client::Codex => "mcp_servers",
            Client::VsCode => "servers",
            Client::Zed => "context_servers",
            _ => "mcpServers",
        }
    }

    /// The entry's environment key.
    pub fn env_key(self) -> &'static str {
        match self {
            Client::OpenCode => "environment",
            _ => "env",
        }
    }

    /// The entry's header key (URL servers).
    pub fn headers_key(self) -> &'static str {
        match self {
            Client::Codex => "http_headers",
            _ => "headers",
        }
    }

    /// Which references it substitutes in entries.
    pub fn substitution(self) -> Substitution {
        match self {
            Client::OpenCode => Substitution::Braces,
            Client::ClaudeCode | Client::VsCode | Client::Cursor | Client::Windsurf => {
                Substitution::Dollar
            }
            Client::ClaudeDesktop | Client::Codex | Client::Zed | Client::Cline => {
                Substitution::None
            }
        }
    }

    /// Whether the server gets only some of the client's environment, so
    /// the entry must carry what rsops needs.
    pub fn filters_environment(self) -> bool {
        matches!(self, Client::Codex | Client::ClaudeDesktop)
    }

    /// The client whose file this is, from its name and place; `None`
    /// when the name says nothing (then the content decides).
    pub fn from_path(path: &Path) -> Option<Client> {
        let name = path.file_name()?.to_str()?;
        let parent = path
            .parent()
            .and_then(Path::file_name)
            .and_then(|p| p.to_str())
            .unwrap_or_default();
        let under = |dir: &str| path.components().any(|c| c.as_os_str() == dir);
        Some(match name {
            "opencode.json" | "opencode.jsonc" => Client::OpenCode,
            "claude_desktop_config.json" => Client::ClaudeDesktop,
            ".mcp.json" | ".claude.json" => Client::ClaudeCode,
            "mcp_config.json" => Client::Windsurf,
            "cline_mcp_settings.json" => Client::Cline,
            "settings.json" if under("zed") || parent == ".zed" => Client::Zed,
            "mcp.json" if parent == ".cursor" => Client::Cursor,
            "mcp.json" if parent == ".vscode" || parent == "User" => Client::VsCode,
            _ if name.ends_with(".toml") => Client::Codex,
            _ => return None,
        })
    }

    /// The client a JSON document's top-level keys suggest.
    pub fn from_keys(keys: &[&str]) -> Option<Client> {
        if keys.contains(&"mcp") {
            Some(Client::OpenCode)
        } else if keys.contains(&"context_servers") {
            Some(Client::Zed)
        } else if keys.contains(&"servers") {
            Some(Client::VsCode)
        } else if keys.contains(&"projects") {
            Some(Client::ClaudeCode)
        } else if keys.contains(&"mcpServers") {
            Some(Client::ClaudeDesktop)
        } else {
            None
        }
    }
}

/// A config file to look at, and the client that reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The client.
    pub client: Client,
    /// The file.
    pub path: PathBuf,
}

/// The places the clients read for the user `home` and the project at
/// `cwd` (OpenCode's project file is searched up to the git root), plus
/// `OPENCODE_CONFIG`, `CODEX_HOME` and `XDG_CONFIG_HOME` from `var`.
pub fn known_locations(
    home: &Path,
    cwd: &Path,
    var: &dyn Fn(&str) -> Option<PathBuf>,
) -> Vec<Location> {
    let config = var("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config"));
    let mac = home.join("Library/Application Support");
    let codex_home = var("CODEX_HOME").unwrap_or_else(|| home.join(".codex"));
    let cline = "globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json";
    let mut found: Vec<(Client, PathBuf)> = vec![
        (Client::OpenCode, config.join("opencode/opencode.json")),
        (Client::OpenCode, config.join("opencode/opencode.jsonc")),
    ];
    if let Some(path) = var("OPENCODE_CONFIG") {
        found.push((Client::OpenCode, path));
    }
    for dir in project_dirs(cwd) {
        found.push((Client::OpenCode, dir.join("opencode.json")));
        found.push((Client::OpenCode, dir.join("opencode.jsonc")));
    }
    found.extend([
        (
            Client::ClaudeDesktop,
            mac.join("Claude/claude_desktop_config.json"),
        ),
        (
            Client::ClaudeDesktop,
            config.join("Claude/claude_desktop_config.json"),
        ),
        (Client::ClaudeCode, home.join(".claude.json")),
        (Client::ClaudeCode, cwd.join(".mcp.json")),
        (Client::Codex, codex_home.join("config.toml")),
        (Client::Codex, cwd.join(".codex/config.toml")),
        (Client::VsCode, cwd.join(".vscode/mcp.json")),
        (Client::VsCode, config.join("Code/User/mcp.json")),
        (Client::VsCode, mac.join("Code/User/mcp.json")),
        (Client::Cursor, cwd.join(".cursor/mcp.json")),
        (Client::Cursor, home.join(".cursor/mcp.json")),
        (
            Client::Windsurf,
            home.join(".codeium/windsurf/mcp_config.json"),
        ),
        (Client::Zed, config.join("zed/settings.json")),
        (Client::Zed, cwd.join(".zed/settings.json")),
        (Client::Cline, config.join("Code/User").join(cline)),
        (Client::Cline, mac.join("Code/User").join(cline)),
        (
            Client::Cline,
            home.join(".cline/data/settings/cline_mcp_settings.json"),
        ),
    ]);
    let mut locations: Vec<Location> = Vec::new();
    for (client, path) in found {
        if !locations.iter().any(|l| l.path == path) {
            locations.push(Location { client, path });
        }
    }
    locations
}

/// `cwd` and its parents up to the one holding `.git` (only `cwd` when
/// there is none).
fn project_dirs(cwd: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for dir in cwd.ancestors() {
        dirs.push(dir.to_path_buf());
        if dir.join(".git").exists() {
            return dirs;
        }
    }
    vec![cwd.to_path_buf()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for client in ALL {
            assert_eq!(Client::from_name(client.name()), Some(client));
        }
    }

    #[test]
    fn clients_from_paths() {
        let cases = [
            ("/p/opencode.jsonc", Some(Client::OpenCode)),
            ("/h/.claude.json", Some(Client::ClaudeCode)),
            ("/p/.cursor/mcp.json", Some(Client::Cursor)),
            ("/p/.vscode/mcp.json", Some(Client::VsCode)),
            ("/h/.config/zed/settings.json", Some(Client::Zed)),
            ("/h/.codex/config.toml", Some(Client::Codex)),
            ("/p/other.json", None),
        ];
        for (path, client) in cases {
            assert_eq!(Client::from_path(Path::new(path)), client, "{path}");
        }
    }

    #[test]
    fn locations_cover_user_and_project() {
        let none = |_: &str| None;
        let list = known_locations(Path::new("/h"), Path::new("/p"), &none);
        let has = |p: &str| list.iter().any(|l| l.path == Path::new(p));
        assert!(has("/h/.claude.json"));
        assert!(has("/p/.mcp.json"));
        assert!(has("/h/.codex/config.toml"));
        assert!(has("/p/.codex/config.toml"));
        assert!(has("/h/.config/opencode/opencode.json"));
        assert!(has("/p/opencode.jsonc"));
        assert!(has(
            "/h/Library/Application Support/Claude/claude_desktop_config.json"
        ));
    }
}
