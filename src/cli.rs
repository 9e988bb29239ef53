//! Command-line surface, compatible with the reference `sops` for the
//! commands rsops implements.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// A fast, SOPS-compatible secrets decryptor and secret launcher.
#[derive(Debug, Parser)]
#[command(
    name = "rsops",
    version,
    long_version = long_version(),
    about,
    propagate_version = true
)]
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

    /// Compute the MAC over encrypted values only (`encrypt`; sops takes it
    /// before the subcommand too).
    #[arg(long, global = true)]
    pub mac_only_encrypted: bool,

    /// Leave values after a comment matching this regex unencrypted (`encrypt`).
    #[arg(long, global = true, value_name = "REGEX")]
    pub unencrypted_comment_regex: Option<String>,

    /// Encrypt only values after a comment matching this regex (`encrypt`).
    #[arg(long, global = true, value_name = "REGEX")]
    pub encrypted_comment_regex: Option<String>,

    /// Accepted for compatibility with sops, which checks for new versions; rsops never does.
    #[arg(long, global = true, hide = true)]
    pub disable_version_check: bool,

    /// Show on standard error which keys were tried and how long each took (never secrets).
    /// Also set by `RSOPS_LOG` (any value but `0`/`off`).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

impl Cli {
    /// `--verbose`, or `RSOPS_LOG` set to anything but `0`, `off` or empty.
    pub fn verbose(&self) -> bool {
        self.verbose
            || std::env::var("RSOPS_LOG").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "off"))
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decrypt a file and print it (also `rsops -d FILE`).
    Decrypt(DecryptArgs),
    /// Run a command with the file's top-level values as environment variables
    /// (`FILE COMMAND` through `/bin/sh -c`, or `FILE… -- PROGRAM ARG…` without a shell).
    ExecEnv(ExecEnvArgs),
    /// Run a command with the decrypted file at a private path, given by `{}` in the command
    /// (`FILE COMMAND` through `/bin/sh -c`, or `FILE -- PROGRAM ARG…` without a shell).
    ExecFile(ExecFileArgs),
    /// List a file's key groups and entries and whether each can be unwrapped here,
    /// without decrypting the file.
    Keys(KeysArgs),
    /// Encrypt a file (also `rsops -e FILE`); keys from flags, `SOPS_*` variables or `.sops.yaml`.
    Encrypt(Box<EncryptArgs>),
    /// Edit an encrypted file in `$SOPS_EDITOR` or `$EDITOR` (also `rsops FILE`); a new file
    /// is created from the flags' or `.sops.yaml`'s keys.
    Edit(Box<EditArgs>),
    /// Print whether a file is encrypted: `{"encrypted":true}` or `{"encrypted":false}`.
    Filestatus(FilestatusArgs),
    /// Set the value at a path, e.g. `rsops set f.yaml '["db"]["password"]' '"s3cret"'`
    /// (VALUE is JSON); untouched values keep their ciphertext.
    Set(SetArgs),
    /// Remove the value at a path, e.g. `rsops unset f.yaml '["db"]["password"]'`.
    Unset(UnsetArgs),
    /// Re-encrypt a file under a new data key (also `rsops -r FILE`), adding or
    /// removing keys with `--add-*`/`--rm-*`.
    Rotate(Box<RotateArgs>),
    /// Bring files' key groups in line with their `.sops.yaml` creation rule,
    /// keeping the data key; values are not re-encrypted.
    Updatekeys(UpdatekeysArgs),
    /// Add or delete a key group of a file.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Merge three versions of an encrypted file, as a git merge driver:
    /// `rsops merge-driver %O %A %B %P` (see the README).
    MergeDriver(MergeDriverArgs),
    /// Find literal secrets in MCP client configs (`scan`), move them into
    /// encrypted env files launched through `rsops exec-env` (`protect`),
    /// print a ready entry (`snippet`).
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Print a shell completion script, e.g. `source <(rsops completion bash)`.
    Completion(CompletionArgs),
    /// Print the manual page (roff), e.g. `rsops man > ~/.local/share/man/man1/rsops.1`.
    Man,
}

/// `rsops encrypt`.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The plaintext file; standard input when absent or `-`.
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub new_file: NewFileArgs,

    /// Format of the plaintext (yaml, json, dotenv, ini, binary); default from the extension.
    #[arg(long, value_name = "FORMAT")]
    pub input_type: Option<String>,

    /// Format to write (yaml, json, dotenv, ini, binary); default the input's.
    #[arg(long, value_name = "FORMAT")]
    pub output_type: Option<String>,

    /// Write the encrypted file here (mode 0600, replaced atomically) instead of standard output.
    #[arg(long, value_name = "FILE", conflicts_with = "in_place")]
    pub output: Option<PathBuf>,

    /// Replace the file with its encryption (atomically, keeping its mode).
    #[arg(short, long)]
    pub in_place: bool,

    /// Use this name instead of the file's to pick formats and the creation rule.
    #[arg(long, value_name = "NAME")]
    pub filename_override: Option<PathBuf>,

    #[command(flatten)]
    pub keys: KeyArgs,
}

/// Keys and encryption rules for a file encrypted anew: `encrypt`, and
/// `edit` of a file that does not exist yet.
#[derive(Debug, Args)]
pub struct NewFileArgs {
    /// age recipients, comma-separated.
    #[arg(long, env = "SOPS_AGE_RECIPIENTS", value_name = "RECIPIENTS")]
    pub age: Option<String>,

    /// PGP fingerprints, comma-separated.
    #[arg(long, env = "SOPS_PGP_FP", value_name = "FINGERPRINTS")]
    pub pgp: Option<String>,

    /// AWS KMS key ARNs (`ARN` or `ARN+ROLE_ARN`), comma-separated.
    #[arg(long, env = "SOPS_KMS_ARN", value_name = "ARNS")]
    pub kms: Option<String>,

    /// KMS encryption context for `--kms` keys: `key:value` pairs, comma-separated.
    #[arg(long, value_name = "PAIRS")]
    pub encryption_context: Option<String>,

    /// AWS profile for `--kms` keys.
    #[arg(long, value_name = "PROFILE")]
    pub aws_profile: Option<String>,

    /// GCP KMS resource IDs, comma-separated.
    #[arg(long, env = "SOPS_GCP_KMS_IDS", value_name = "IDS")]
    pub gcp_kms: Option<String>,

    /// Azure Key Vault key URLs, comma-separated.
    #[arg(long, env = "SOPS_AZURE_KEYVAULT_URLS", value_name = "URLS")]
    pub azure_kv: Option<String>,

    /// Vault transit key URIs, comma-separated.
    #[arg(long, env = "SOPS_VAULT_URIS", value_name = "URIS")]
    pub hc_vault_transit: Option<String>,

    /// Leave values whose key ends with this suffix unencrypted.
    #[arg(long, value_name = "SUFFIX")]
    pub unencrypted_suffix: Option<String>,

    /// Encrypt only values whose key ends with this suffix.
    #[arg(long, value_name = "SUFFIX")]
    pub encrypted_suffix: Option<String>,

    /// Leave values whose key matches this regex unencrypted.
    #[arg(long, value_name = "REGEX")]
    pub unencrypted_regex: Option<String>,

    /// Encrypt only values whose key matches this regex.
    #[arg(long, value_name = "REGEX")]
    pub encrypted_regex: Option<String>,

    /// Key groups needed to decrypt (with several key groups).
    #[arg(long, value_name = "N")]
    pub shamir_secret_sharing_threshold: Option<usize>,
}

/// `rsops edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// The encrypted file; created (keys from the flags or `.sops.yaml`) when it does not exist.
    pub file: PathBuf,

    #[command(flatten)]
    pub input: InputArgs,

    /// Show the `sops` metadata in the file being edited (changes to it are kept).
    #[arg(short, long)]
    pub show_master_keys: bool,

    #[command(flatten)]
    pub new_file: NewFileArgs,
}

/// `rsops set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// FILE INDEX VALUE, or FILE INDEX with `--value-stdin`.
    #[arg(value_name = "FILE INDEX [VALUE]", num_args = 0..)]
    pub args: Vec<String>,

    /// VALUE names a file holding the JSON value (keeps the secret out of
    /// process listings).
    #[arg(long, conflicts_with = "value_stdin")]
    pub value_file: bool,

    /// Read the JSON value from standard input.
    #[arg(long)]
    pub value_stdin: bool,

    /// Write nothing when the path already holds this value.
    #[arg(long)]
    pub idempotent: bool,

    /// Accepted for the legacy `sops --set '…' -i FILE`; `set` always writes in place.
    #[arg(short, long, hide = true)]
    pub in_place: bool,

    /// Accepted for compatibility with sops; `set` keeps the file's key groups.
    #[arg(long, value_name = "N", hide = true)]
    pub shamir_secret_sharing_threshold: Option<usize>,

    #[command(flatten)]
    pub input: InputArgs,
}

/// `rsops unset`.
#[derive(Debug, Args)]
pub struct UnsetArgs {
    /// FILE INDEX.
    #[arg(value_name = "FILE INDEX", num_args = 0..)]
    pub args: Vec<String>,

    /// Succeed without writing when the path is not there.
    #[arg(long)]
    pub idempotent: bool,

    /// Accepted for compatibility with sops; `unset` keeps the file's key groups.
    #[arg(long, value_name = "N", hide = true)]
    pub shamir_secret_sharing_threshold: Option<usize>,

    #[command(flatten)]
    pub input: InputArgs,
}

/// `rsops rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The encrypted file.
    pub file: Option<PathBuf>,

    /// Replace the file (atomically, keeping its mode) instead of printing.
    #[arg(short, long)]
    pub in_place: bool,

    /// Write the result to this file instead of standard output.
    #[arg(long, value_name = "FILE", conflicts_with = "in_place")]
    pub output: Option<PathBuf>,

    /// Use this name instead of the file's to pick formats.
    #[arg(long, value_name = "NAME")]
    pub filename_override: Option<PathBuf>,

    /// Add these age recipients to the first key group (comma-separated).
    #[arg(long, value_name = "RECIPIENTS")]
    pub add_age: Option<String>,
    /// Remove these age recipients.
    #[arg(long, value_name = "RECIPIENTS")]
    pub rm_age: Option<String>,
    /// Add these PGP fingerprints to the first key group.
    #[arg(long, value_name = "FINGERPRINTS")]
    pub add_pgp: Option<String>,
    /// Remove these PGP fingerprints.
    #[arg(long, value_name = "FINGERPRINTS")]
    pub rm_pgp: Option<String>,
    /// Add these AWS KMS ARNs to the first key group.
    #[arg(long, value_name = "ARNS")]
    pub add_kms: Option<String>,
    /// Remove these AWS KMS ARNs.
    #[arg(long, value_name = "ARNS")]
    pub rm_kms: Option<String>,
    /// Add these GCP KMS resource IDs to the first key group.
    #[arg(long, value_name = "IDS")]
    pub add_gcp_kms: Option<String>,
    /// Remove these GCP KMS resource IDs.
    #[arg(long, value_name = "IDS")]
    pub rm_gcp_kms: Option<String>,
    /// Add these Azure Key Vault key URLs to the first key group.
    #[arg(long, value_name = "URLS")]
    pub add_azure_kv: Option<String>,
    /// Remove these Azure Key Vault key URLs.
    #[arg(long, value_name = "URLS")]
    pub rm_azure_kv: Option<String>,
    /// Add these Vault transit key URIs to the first key group.
    #[arg(long, value_name = "URIS")]
    pub add_hc_vault_transit: Option<String>,
    /// Remove these Vault transit key URIs.
    #[arg(long, value_name = "URIS")]
    pub rm_hc_vault_transit: Option<String>,

    /// KMS encryption context for added `--add-kms` keys: `key:value` pairs, comma-separated.
    #[arg(long, value_name = "PAIRS")]
    pub encryption_context: Option<String>,

    /// AWS profile for added `--add-kms` keys.
    #[arg(long, value_name = "PROFILE")]
    pub aws_profile: Option<String>,

    #[command(flatten)]
    pub input: InputArgs,
}

/// `rsops updatekeys`.
#[derive(Debug, Args)]
pub struct UpdatekeysArgs {
    /// The encrypted files.
    pub files: Vec<PathBuf>,

    /// Change the files without asking.
    #[arg(short, long)]
    pub yes: bool,

    /// Format of the files (yaml, json, dotenv, ini, binary); default from each extension.
    #[arg(long, value_name = "FORMAT")]
    pub input_type: Option<String>,

    /// Key groups needed to decrypt (with several key groups).
    #[arg(long, value_name = "N")]
    pub shamir_secret_sharing_threshold: Option<usize>,

    #[command(flatten)]
    pub keys: KeyArgs,
}

/// `rsops groups add|delete`.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Add a key group of the given keys.
    Add(Box<GroupsAddArgs>),
    /// Delete the key group at INDEX (counting from 0).
    Delete(GroupsDeleteArgs),
}

/// `rsops groups add`.
#[derive(Debug, Args)]
pub struct GroupsAddArgs {
    /// The encrypted file.
    #[arg(short, long, value_name = "FILE")]
    pub file: PathBuf,

    /// age recipients of the new group (repeatable, or comma-separated).
    #[arg(long, value_name = "RECIPIENT")]
    pub age: Vec<String>,
    /// PGP fingerprints of the new group.
    #[arg(long, value_name = "FINGERPRINT")]
    pub pgp: Vec<String>,
    /// AWS KMS ARNs of the new group.
    #[arg(long, value_name = "ARN")]
    pub kms: Vec<String>,
    /// GCP KMS resource IDs of the new group.
    #[arg(long, value_name = "ID")]
    pub gcp_kms: Vec<String>,
    /// Azure Key Vault key URLs of the new group.
    #[arg(long, value_name = "URL")]
    pub azure_kv: Vec<String>,
    /// Vault transit key URIs of the new group.
    #[arg(long, value_name = "URI")]
    pub hc_vault_transit: Vec<String>,
    /// KMS encryption context for `--kms` keys.
    #[arg(long, value_name = "PAIRS")]
    pub encryption_context: Option<String>,
    /// AWS profile for `--kms` keys.
    #[arg(long, value_name = "PROFILE")]
    pub aws_profile: Option<String>,

    /// Replace the file (atomically, keeping its mode) instead of printing.
    #[arg(short, long)]
    pub in_place: bool,

    /// Key groups needed to decrypt.
    #[arg(long, value_name = "N")]
    pub shamir_secret_sharing_threshold: Option<usize>,

    /// Format of the file; default from its extension.
    #[arg(long, value_name = "FORMAT")]
    pub input_type: Option<String>,

    /// Format to print; default the input's.
    #[arg(long, value_name = "FORMAT")]
    pub output_type: Option<String>,

    #[command(flatten)]
    pub keys: KeyArgs,
}

/// `rsops groups delete`.
#[derive(Debug, Args)]
pub struct GroupsDeleteArgs {
    /// The encrypted file.
    #[arg(short, long, value_name = "FILE")]
    pub file: PathBuf,

    /// The group to delete, counting from 0.
    pub index: usize,

    /// Replace the file (atomically, keeping its mode) instead of printing.
    #[arg(short, long)]
    pub in_place: bool,

    /// Key groups needed to decrypt.
    #[arg(long, value_name = "N")]
    pub shamir_secret_sharing_threshold: Option<usize>,

    /// Format of the file; default from its extension.
    #[arg(long, value_name = "FORMAT")]
    pub input_type: Option<String>,

    /// Format to print; default the input's.
    #[arg(long, value_name = "FORMAT")]
    pub output_type: Option<String>,

    #[command(flatten)]
    pub keys: KeyArgs,
}

/// `rsops filestatus`.
#[derive(Debug, Args)]
pub struct FilestatusArgs {
    /// The file.
    pub file: PathBuf,

    /// Format of the file (yaml, json, dotenv, ini, binary); default from the extension.
    #[arg(long, value_name = "FORMAT")]
    pub input_type: Option<String>,
}

/// `rsops merge-driver`.
#[derive(Debug, Args)]
pub struct MergeDriverArgs {
    /// The common ancestor's version (git's `%O`); empty or missing when
    /// both sides added the file, for a two-way merge.
    pub base: PathBuf,

    /// Our version (`%A`): the merged file replaces it on success.
    pub ours: PathBuf,

    /// Their version (`%B`).
    pub theirs: PathBuf,

    /// The file's path in the repository (`%P`): picks the format, and names
    /// the file in messages.
    pub path: Option<PathBuf>,

    /// Format of the files (yaml, json, dotenv, ini, binary); default from PATH's extension.
    #[arg(long, value_name = "FORMAT")]
    pub input_type: Option<String>,

    #[command(flatten)]
    pub keys: KeyArgs,
}

/// `rsops mcp`.
#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// List the MCP servers whose config holds literal secrets (in `env`,
    /// `args`, `headers`, URLs), masked; exit 1 when any is found, 0 when
    /// none. Without PATH: every client's user and project config (HOME, cwd).
    Scan(McpScanArgs),
    /// Move the secrets of a config's servers into one encrypted
    /// `NAME.enc.env` each and rewrite the entries to launch
    /// `rsops exec-env FILE -- COMMAND ARGS…`; the rest of the file keeps its bytes.
    Protect(Box<McpProtectArgs>),
    /// Print a ready server entry that launches COMMAND through
    /// `rsops exec-env FILE`, in the client's format.
    Snippet(McpSnippetArgs),
}

/// Output of `rsops mcp scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanFormat {
    /// Lines for people.
    Text,
    /// One JSON document for tools.
    Json,
}

/// The MCP client names `--client` takes.
fn parse_client(name: &str) -> Result<rsops::mcp::Client, String> {
    rsops::mcp::Client::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = rsops::mcp::clients::ALL.iter().map(|c| c.name()).collect();
        format!("unknown client `{name}`: use one of {}", names.join(", "))
    })
}

/// `rsops mcp scan`.
#[derive(Debug, Args)]
pub struct McpScanArgs {
    /// Config files, or directories taken as both home and project
    /// (every known location inside them is read).
    pub paths: Vec<PathBuf>,

    /// The client that reads the given files (default: from each file's name, then its keys):
    /// opencode, claude-desktop, claude-code, codex, vscode, cursor, windsurf, zed, cline.
    #[arg(long, value_name = "CLIENT", value_parser = parse_client)]
    pub client: Option<rsops::mcp::Client>,

    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ScanFormat,
}

/// `rsops mcp protect`.
#[derive(Debug, Args)]
pub struct McpProtectArgs {
    /// The client config file.
    pub path: PathBuf,

    /// Only this server (repeatable); default every server with secrets in its environment.
    #[arg(long = "server", value_name = "NAME")]
    pub servers: Vec<String>,

    /// The client that reads the file (default: from its name, then its keys).
    #[arg(long, value_name = "CLIENT", value_parser = parse_client)]
    pub client: Option<rsops::mcp::Client>,

    /// Write the encrypted env files here instead of beside the config.
    #[arg(long, value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,

    /// Print what would change (a diff, secrets masked) and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub new_file: NewFileArgs,

    #[command(flatten)]
    pub keys: KeyArgs,
}

/// `rsops mcp snippet`.
#[derive(Debug, Args)]
pub struct McpSnippetArgs {
    /// The client whose format to print.
    #[arg(long, value_name = "CLIENT", value_parser = parse_client)]
    pub client: rsops::mcp::Client,

    /// The server's name in the entry (default: FILE's name before `.enc`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// The encrypted env file.
    pub file: PathBuf,

    /// The server's command and arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `rsops completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The key sources this binary was built with (cargo features), by the
/// names `.sops.yaml` and the file metadata use.
pub fn key_sources() -> Vec<&'static str> {
    [
        (cfg!(feature = "age"), "age"),
        (cfg!(feature = "pgp"), "pgp"),
        (cfg!(feature = "aws"), "kms"),
        (cfg!(feature = "gcp"), "gcp_kms"),
        (cfg!(feature = "azure"), "azure_kv"),
        (cfg!(feature = "vault"), "hc_vault"),
    ]
    .into_iter()
    .filter_map(|(enabled, name)| enabled.then_some(name))
    .collect()
}

/// `rsops --version`: also the key sources built in and the sops file
/// format rsops reads and writes.
fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{}\nsops file format: reads sops 3.x files, writes version {}\nkey sources: {}",
            env!("CARGO_PKG_VERSION"),
            rsops::metadata::WRITTEN_VERSION,
            key_sources().join(", ")
        )
    })
}

/// How keys are tried: shared by every command that unwraps the data key.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Comma-separated key kinds to try first, e.g. `age,pgp` (every usable
    /// entry is still tried at once; this sets which start first).
    #[arg(long, env = "SOPS_DECRYPTION_ORDER", value_name = "KINDS")]
    pub decryption_order: Option<String>,

    /// Deadline of one call to a remote key service (KMS, Vault…), e.g. `10s`, `500ms`.
    #[arg(long, env = "RSOPS_KEY_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub key_timeout: Duration,

    /// Deadline of all remote key service calls together.
    #[arg(long, env = "RSOPS_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
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

    #[command(flatten)]
    pub keys: KeyArgs,
}

/// `rsops keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// The encrypted file.
    pub file: PathBuf,

    /// Format of the encrypted file (yaml, json, dotenv, ini, binary); default from the extension.
    #[arg(long, value_name = "FORMAT")]
    pub input_type: Option<String>,

    #[command(flatten)]
    pub keys: KeyArgs,
}

/// Parses `500ms`, `10s`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 500ms, 10s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit `{unit}` in `{text}`: use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is out of range"))
}

/// `rsops decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The encrypted file; standard input when absent or `-`.
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub input: InputArgs,

    /// Write the plaintext to this file (mode 0600, replaced atomically) instead of standard output.
    #[arg(long, value_name = "FILE", conflicts_with = "in_place")]
    pub output: Option<PathBuf>,

    /// Replace the encrypted file with its plaintext (atomically, keeping its mode).
    #[arg(short, long)]
    pub in_place: bool,

    /// Print only the value at this path, e.g. `["database"]["password"]`.
    #[arg(long, value_name = "PATH")]
    pub extract: Option<String>,

    /// Use this name instead of the file's to pick formats.
    #[arg(long, value_name = "NAME")]
    pub filename_override: Option<PathBuf>,
}

/// How the command of `exec-env` and `exec-file` is started.
#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// Start the command with only the secrets (and `--keep` variables) in its environment.
    #[arg(long)]
    pub pristine: bool,

    /// With `--pristine`: variables the command still inherits, e.g. `PATH,HOME`.
    #[arg(
        long,
        value_name = "VARS",
        value_delimiter = ',',
        requires = "pristine"
    )]
    pub keep: Vec<String>,

    /// Run the command as this user (rsops must run as root).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Deprecated (as in sops): do not wait for the command.
    #[arg(long)]
    pub background: bool,

    /// After SIGTERM, how long the command has to exit before its process
    /// group is killed; also the grace its leftovers get after it exits.
    #[arg(long, env = "RSOPS_KILL_AFTER", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub kill_after: Duration,
}

/// `rsops exec-env`.
#[derive(Debug, Args)]
#[command(
    override_usage = "rsops exec-env [OPTIONS] FILE COMMAND\n       \
                      rsops exec-env [OPTIONS] FILE... -- PROGRAM [ARG]...",
    after_help = "Examples:\n  \
        rsops exec-env secrets.enc.env 'psql \"$DATABASE_URL\"'\n      \
        sops' form: one string, run with /bin/sh -c\n  \
        rsops exec-env base.enc.env prod.enc.yaml -- node server.js --port 8080\n      \
        the argv form: no shell, no quoting; later files win on the same variable"
)]
pub struct ExecEnvArgs {
    /// The encrypted file, then the command, run with `/bin/sh -c` (sops' form); with `--`,
    /// one or more encrypted files, later ones winning on the same variable.
    #[arg(value_name = "FILE", required = true)]
    pub operands: Vec<OsString>,

    /// After `--`: the program, found in the command's `PATH` (after `--pristine`, `--keep`
    /// and the secrets), and its arguments, passed as they are, without a shell.
    #[arg(last = true, value_name = "PROGRAM")]
    pub argv: Vec<OsString>,

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub launch: LaunchArgs,

    /// Replace rsops with the command instead of starting a child.
    #[arg(long)]
    pub same_process: bool,
}

/// `rsops exec-file`.
#[derive(Debug, Args)]
#[command(
    override_usage = "rsops exec-file [OPTIONS] FILE COMMAND\n       \
                      rsops exec-file [OPTIONS] FILE -- PROGRAM [ARG]...",
    after_help = "Examples:\n  \
        rsops exec-file config.enc.json 'app --config {}'\n      \
        sops' form: one string, run with /bin/sh -c\n  \
        rsops exec-file config.enc.json -- app --config={} --check\n      \
        the argv form: no shell; every {} in an argument becomes the file's path"
)]
pub struct ExecFileArgs {
    /// The encrypted file, then the command, run with `/bin/sh -c`, where every `{}` becomes
    /// the decrypted file's path (sops' form); with `--`, the encrypted file alone.
    #[arg(value_name = "FILE", required = true)]
    pub operands: Vec<OsString>,

    /// After `--`: the program, found in the command's `PATH`, and its arguments, passed as
    /// they are, without a shell, except that every `{}` in an argument becomes the file's path.
    #[arg(last = true, value_name = "PROGRAM")]
    pub argv: Vec<OsString>,

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub launch: LaunchArgs,

    /// Write a regular file (mode 0600) to `$TMPDIR` instead of serving it from memory.
    #[arg(long)]
    pub no_fifo: bool,

    /// Name of the file inside the private directory (default `tmp-file`).
    #[arg(long, value_name = "NAME")]
    pub filename: Option<String>,
}

/// Rewrites the legacy `sops -d FILE` / `sops --decrypt FILE` spelling into
/// `decrypt FILE` (and `-e` into `encrypt`), and the legacy `sops FILE` —
/// a first argument that is no option and no command name — into
/// `edit FILE`, so scripts and habits formed with sops keep working.
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    // Only a `-d` before any subcommand name is the legacy flag; later ones
    // belong to the subcommand (or to the command it runs).
    if let Some((index, value)) = take_legacy_set(&mut args) {
        args.insert(1, OsString::from("set"));
        args.push(index);
        args.push(value);
        return args;
    }
    for i in 1..args.len() {
        if is_subcommand(&args[i]) {
            break;
        }
        let legacy = match args[i].to_str() {
            Some("-d" | "--decrypt") => "decrypt",
            Some("-e" | "--encrypt") => "encrypt",
            Some("-r" | "--rotate") => "rotate",
            _ => continue,
        };
        args.remove(i);
        args.insert(1, OsString::from(legacy));
        return args;
    }
    if let Some(first) = first_positional(&args) {
        if !is_subcommand(&args[first]) {
            args.insert(1, OsString::from("edit"));
        }
    }
    args
}

/// Removes the legacy `--set 'INDEX VALUE'` (before any subcommand) and
/// splits it as the reference does, at the first `] `. Without one, the
/// whole text becomes the index and the value is empty, which `set`
/// refuses with the reference's exit code.
fn take_legacy_set(args: &mut Vec<OsString>) -> Option<(OsString, OsString)> {
    let mut found = None;
    for i in 1..args.len() {
        if is_subcommand(&args[i]) {
            return None;
        }
        match args[i].to_str() {
            Some("--set") if i + 1 < args.len() => {
                let text = args.remove(i + 1);
                args.remove(i);
                found = Some(text);
                break;
            }
            Some(arg) if arg.starts_with("--set=") => {
                let text = OsString::from(&arg["--set=".len()..]);
                args.remove(i);
                found = Some(text);
                break;
            }
            _ => {}
        }
    }
    let text = found?.to_string_lossy().into_owned();
    Some(match text.split_once("] ") {
        Some((index, value)) => (
            OsString::from(format!("{index}]").trim_end()),
            OsString::from(value),
        ),
        None => (OsString::from(text), OsString::new()),
    })
}

fn is_subcommand(arg: &OsString) -> bool {
    matches!(
        arg.to_str(),
        Some(
            "decrypt"
                | "encrypt"
                | "edit"
                | "exec-env"
                | "exec-file"
                | "keys"
                | "filestatus"
                | "set"
                | "unset"
                | "rotate"
                | "updatekeys"
                | "groups"
                | "merge-driver"
                | "mcp"
                | "completion"
                | "man"
                | "help"
        )
    )
}

/// The options a legacy `sops FILE` command line can hold before the file
/// that take a value as the next argument.
const OPTIONS_WITH_VALUES: &[&str] = &[
    "--config",
    "--indent",
    "--unencrypted-comment-regex",
    "--encrypted-comment-regex",
    "--input-type",
    "--output-type",
    "--decryption-order",
    "--key-timeout",
    "--timeout",
    "--age",
    "--pgp",
    "--kms",
    "--encryption-context",
    "--aws-profile",
    "--gcp-kms",
    "--azure-kv",
    "--hc-vault-transit",
    "--unencrypted-suffix",
    "--encrypted-suffix",
    "--unencrypted-regex",
    "--encrypted-regex",
    "--shamir-secret-sharing-threshold",
];

/// The index of the first argument that is neither an option nor an
/// option's value.
fn first_positional(args: &[OsString]) -> Option<usize> {
    let mut i = 1;
    while i < args.len() {
        let Some(arg) = args[i].to_str() else {
            return Some(i);
        };
        if arg == "--" {
            return (i + 1 < args.len()).then_some(i + 1);
        }
        if arg == "-" || !arg.starts_with('-') {
            return Some(i);
        }
        if OPTIONS_WITH_VALUES.contains(&arg) {
            i += 1;
        }
        i += 1;
    }
    None
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
        assert_eq!(
            normalize_args(strings(&["rsops", "-v", "exec-env", "f", "x", "-d"])),
            strings(&["rsops", "-v", "exec-env", "f", "x", "-d"])
        );
    }

    #[test]
    fn legacy_set_becomes_subcommand() {
        assert_eq!(
            normalize_args(strings(&[
                "rsops",
                "--set",
                r#"["a"][0] {"b": 1}"#,
                "f.yaml"
            ])),
            strings(&["rsops", "set", "f.yaml", r#"["a"][0]"#, r#"{"b": 1}"#])
        );
        assert_eq!(
            normalize_args(strings(&["rsops", "--set=nothing", "f.yaml"])),
            strings(&["rsops", "set", "f.yaml", "nothing", ""])
        );
    }

    #[test]
    fn a_bare_file_means_edit() {
        assert_eq!(
            normalize_args(strings(&["rsops", "f.yaml"])),
            strings(&["rsops", "edit", "f.yaml"])
        );
        assert_eq!(
            normalize_args(strings(&["rsops", "--config", "c.yaml", "-s", "f.yaml"])),
            strings(&["rsops", "edit", "--config", "c.yaml", "-s", "f.yaml"])
        );
        for unchanged in [
            &["rsops", "--help"][..],
            &["rsops", "--version"],
            &["rsops"],
            &["rsops", "-v", "keys", "f"],
            &["rsops", "--config", "keys", "decrypt", "f"],
            &["rsops", "edit", "f"],
            &["rsops", "help", "edit"],
            &["rsops", "mcp", "scan"],
            &["rsops", "-v", "mcp", "protect", "f.json"],
        ] {
            assert_eq!(normalize_args(strings(unchanged)), strings(unchanged));
        }
        assert!(Cli::try_parse_from(normalize_args(strings(&["rsops", "f.yaml"]))).is_ok());
    }

    #[test]
    fn exec_takes_sops_form_and_argv_form() {
        let parse = |v: &[&str]| Cli::try_parse_from(normalize_args(strings(v))).ok();
        let Some(Command::ExecEnv(sops)) =
            parse(&["rsops", "exec-env", "--pristine", "f.env", "echo hi"]).map(|c| c.command)
        else {
            panic!("sops form");
        };
        assert_eq!(sops.operands, strings(&["f.env", "echo hi"]));
        assert!(sops.argv.is_empty() && sops.launch.pristine);
        let Some(Command::ExecEnv(argv)) = parse(&[
            "rsops",
            "exec-env",
            "a.env",
            "b.yaml",
            "--",
            "cmd",
            "--pristine",
            "-d",
            "",
        ])
        .map(|c| c.command) else {
            panic!("argv form");
        };
        assert_eq!(argv.operands, strings(&["a.env", "b.yaml"]));
        assert_eq!(argv.argv, strings(&["cmd", "--pristine", "-d", ""]));
        assert!(!argv.launch.pristine);
        let Some(Command::ExecFile(file)) =
            parse(&["rsops", "exec-file", "f.json", "--", "app", "--config={}"]).map(|c| c.command)
        else {
            panic!("exec-file argv form");
        };
        assert_eq!(file.operands, strings(&["f.json"]));
        assert_eq!(file.argv, strings(&["app", "--config={}"]));
        assert!(parse(&["rsops", "exec-env", "--", "cmd"]).is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
