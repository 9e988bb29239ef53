//! Command-line surface, compatible with the reference `sops` for the
//! commands rsops implements.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A fast, SOPS-compatible secrets decryptor and secret launcher.
#[derive(Debug, Parser)]
#[command(name = "rsops", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Path to the sops config file (`.sops.yaml`); by default it is searched
    /// for from the current directory upwards.
    #[arg(long, global = true, env = "SOPS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Indentation of YAML and JSON output.
    #[arg(long, global = true, value_name = "N")]
    pub indent: Option<usize>,

    /// Accepted for compatibility with sops, which checks for new versions; rsops never does.
    #[arg(long, global = true, hide = true)]
    pub disable_version_check: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decrypt a file and print it (also `rsops -d FILE`).
    Decrypt(DecryptArgs),
}

/// Options that choose formats and keys, shared by every command that decrypts.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Format of the encrypted file (yaml, json, dotenv, ini, binary); default from the extension.
    #[arg(long, value_name = "FORMAT")]
    pub input_type: Option<String>,

    /// Format to print (yaml, json, dotenv, ini, binary); default the input's.
    #[arg(long, value_name = "FORMAT")]
    pub output_type: Option<String>,

    /// Decrypt even if the MAC does not match (the file was modified).
    #[arg(long)]
    pub ignore_mac: bool,

    /// Comma-separated key kinds to try first, e.g. `age,pgp`.
    #[arg(long, env = "SOPS_DECRYPTION_ORDER", value_name = "KINDS")]
    pub decryption_order: Option<String>,
}

/// `rsops decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The encrypted file; standard input when absent or `-`.
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub input: InputArgs,

    /// Write the plaintext to this file (mode 0600, replaced atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print only the value at this path, e.g. `["database"]["password"]`.
    #[arg(long, value_name = "PATH")]
    pub extract: Option<String>,

    /// Use this name instead of the file's to pick formats.
    #[arg(long, value_name = "NAME")]
    pub filename_override: Option<PathBuf>,
}

/// Rewrites the legacy `sops -d FILE` / `sops --decrypt FILE` spelling into
/// `decrypt FILE`, so scripts written for sops keep working.
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let is_subcommand = |a: &OsString| matches!(a.to_str(), Some("decrypt" | "exec-env" | "exec-file" | "help"));
    if args.get(1).is_some_and(is_subcommand) {
        return args;
    }
    if let Some(pos) = args
        .iter()
        .skip(1)
        .position(|a| a == "-d" || a == "--decrypt")
    {
        args.remove(pos + 1);
        args.insert(1, OsString::from("decrypt"));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn legacy_decrypt_flag_becomes_subcommand() {
        assert_eq!(
            normalize_args(strings(&["rsops", "--output-type", "json", "-d", "f.yaml"])),
            strings(&["rsops", "decrypt", "--output-type", "json", "f.yaml"])
        );
        assert_eq!(
            normalize_args(strings(&["rsops", "decrypt", "-d"])),
            strings(&["rsops", "decrypt", "-d"])
        );
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
