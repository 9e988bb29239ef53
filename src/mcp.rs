//! MCP client configs: finding literal secrets in server entries
//! (`rsops mcp scan`) and moving them into encrypted env files the server
//! gets through `rsops exec-env` (`rsops mcp protect`). One job per module:
//! `clients` (who reads which file, substitution, environment rules),
//! `secrets` (what is a secret, masks), `entries` (entries in one shape,
//! findings), `jsonc` (a span-keeping JSONC reader and splices), `toml`
//! (Codex's TOML through `toml_edit`), `rewrite` (what a protected entry
//! becomes).

pub mod clients;
pub mod entries;
pub mod jsonc;
pub mod rewrite;
pub mod secrets;
pub mod toml;

pub use clients::{Client, Location};
pub use entries::{ConfigError, ConfigFile, Entry, Field, Finding};

/// A unified-style line diff of `old` and `new` (`-`/`+`/` ` lines with
/// `context` unchanged lines around changes), for `--dry-run`.
pub fn line_diff(old: &str, new: &str, context: usize) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence table (config files are small).
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let near_change = |k: usize| {
        let lo = k.saturating_sub(context);
        let hi = (k + context + 1).min(ops.len());
        ops[lo..hi].iter().any(|(op, _)| *op != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if near_change(k) {
            if skipped {
                out.push_str("@@\n");
                skipped = false;
            }
            out.push(*op);
            out.push_str(line);
            out.push('\n');
        } else {
            skipped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn diff_shows_changes_with_context() {
        let old = "a\nb\nc\nd\ne\nf\n";
        let new = "a\nb\nC\nd\ne\nf\n";
        assert_eq!(super::line_diff(old, new, 1), "@@\n b\n-c\n+C\n d\n");
        assert_eq!(super::line_diff(old, old, 1), "");
    }
}
