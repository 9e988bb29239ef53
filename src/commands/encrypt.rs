//! `rsops encrypt [FILE]` (and the legacy `-e`): the keys come from the
//! flags and `SOPS_*` variables when any is given, else from the
//! `.sops.yaml` creation rule for the file, as in sops; flags also override
//! the rule's selection key and `mac_only_encrypted`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use regex::Regex;
use rsops::config::{Config, CreationRule, KeySpec};
use rsops::encrypt::EncryptOptions;
use rsops::metadata::CryptRule;
use rsops::KeyRegistry;
use rsops_keysource::KeyEntry;

use super::input::Input;
use super::{write_stdout, Failure};
use crate::cli::{Cli, EncryptArgs, NewFileArgs};

/// The suffix sops leaves unencrypted when nothing else is chosen.
const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";

/// Runs `rsops encrypt`.
pub async fn run(cli: &Cli, args: &EncryptArgs) -> Result<ExitCode, Failure> {
    if args.in_place && args.file.as_deref().is_none_or(|f| f.as_os_str() == "-") {
        return Err(Failure::Usage {
            message: "--in-place needs a file, not standard input".into(),
            hint: None,
        });
    }
    let input = Input::new(
        cli,
        args.file.as_deref(),
        args.filename_override.as_deref(),
        args.input_type.as_deref(),
        args.output_type.as_deref(),
    )?;
    let plain = input.read()?;
    let name = args
        .filename_override
        .as_deref()
        .or(args.file.as_deref())
        .unwrap_or(Path::new("-"));
    let options = encrypt_options(cli, &args.new_file, name, args.keys.key_timeout)?;
    let registry = KeyRegistry::default();
    let encrypted = rsops::encrypt::encrypt_plain(
        &plain,
        input.input_format,
        input.output_format,
        &options,
        &registry,
        input.emit,
    )
    .await
    .map_err(|source| Failure::Encrypt {
        input: input.display(),
        source: Box::new(source),
    })?;
    drop(plain);
    match (&args.output, args.in_place) {
        (Some(path), _) => super::write_atomically(path, &encrypted, None)?,
        (None, true) => {
            let path = args.file.as_deref().unwrap_or(Path::new("-"));
            let mode = std::fs::metadata(path)
                .map(|m| m.permissions().mode() & 0o7777)
                .ok();
            super::write_atomically(path, &encrypted, mode)?;
        }
        (None, false) => write_stdout(&encrypted)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The keys, rule and options for encrypting `name` anew: from the flags,
/// else from its `.sops.yaml` creation rule.
pub(super) fn encrypt_options(
    cli: &Cli,
    args: &NewFileArgs,
    name: &Path,
    key_timeout: std::time::Duration,
) -> Result<EncryptOptions, Failure> {
    let rule = creation_rule(cli, name)?;
    Ok(EncryptOptions {
        key_groups: key_groups(args, rule.as_ref())?,
        shamir_threshold: args
            .shamir_secret_sharing_threshold
            .or(rule.as_ref().map(|r| r.shamir_threshold))
            .unwrap_or(0),
        rule: crypt_rule(cli, args, rule.as_ref())?,
        mac_only_encrypted: cli.mac_only_encrypted
            || rule.as_ref().is_some_and(|r| r.mac_only_encrypted),
        key_timeout,
    })
}

/// The `.sops.yaml` rule for `file`, when there is a config with rules.
fn creation_rule(cli: &Cli, file: &Path) -> Result<Option<CreationRule>, Failure> {
    let (config, warning) = Config::find(cli.config.as_deref())?;
    if let Some(warning) = warning {
        eprintln!("rsops: warning: {warning}");
    }
    match config {
        Some(config) => Ok(config.rule_for(&absolute(file))?),
        None => Ok(None),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
}

/// Splits a comma-separated flag value, as sops does.
fn split(list: &Option<String>) -> Vec<String> {
    list.iter()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The keys: one group from the flags when any key flag is given, else the
/// rule's groups.
fn key_groups(
    args: &NewFileArgs,
    rule: Option<&CreationRule>,
) -> Result<Vec<Vec<KeyEntry>>, Failure> {
    let mut flags: Vec<KeyEntry> = Vec::new();
    for recipient in split(&args.age) {
        flags.push(entry("age", &[("recipient", recipient)]));
    }
    for fp in split(&args.pgp) {
        flags.push(entry("pgp", &[("fp", fp.replace(' ', ""))]));
    }
    let context = encryption_context(args.encryption_context.as_deref())?;
    for arn in split(&args.kms) {
        let (arn, role) = match arn.split_once("+arn:") {
            Some((arn, role)) => (arn.to_string(), Some(format!("arn:{role}"))),
            None => (arn, None),
        };
        let mut fields = vec![("arn", arn)];
        fields.extend(role.map(|r| ("role", r)));
        fields.extend(args.aws_profile.clone().map(|p| ("aws_profile", p)));
        let mut kms = entry("kms", &fields);
        if !context.is_empty() {
            kms.maps.push(("context".into(), context.clone()));
        }
        flags.push(kms);
    }
    for id in split(&args.gcp_kms) {
        flags.push(entry("gcp_kms", &[("resource_id", id)]));
    }
    for url in split(&args.azure_kv) {
        flags.push(entry("azure_kv", &[("vault_url", url)]));
    }
    for uri in split(&args.hc_vault_transit) {
        flags.push(entry("hc_vault", &[("vault_address", uri)]));
    }
    if !flags.is_empty() {
        return Ok(vec![flags]);
    }
    match rule {
        Some(rule) => Ok(rule
            .key_groups
            .iter()
            .map(|group| group.iter().map(spec_entry).collect())
            .collect()),
        None => Err(Failure::Usage {
            message: "config file not found, or has no creation rules, and no keys provided through command line options".into(),
            hint: Some("give keys with --age (or SOPS_AGE_RECIPIENTS), --pgp, --kms, --gcp-kms, --azure-kv or --hc-vault-transit, or add a creation rule to .sops.yaml"),
        }),
    }
}

/// `--encryption-context k1:v1,k2:v2`, as sops parses it: each pair is one
/// `key:value`. Where sops only warns and drops the whole context for a
/// malformed pair, rsops refuses: a key wrapped without the context the
/// user asked for would be a silent downgrade.
fn encryption_context(text: Option<&str>) -> Result<Vec<(String, String)>, Failure> {
    let mut pairs = Vec::new();
    for pair in text
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
    {
        let Some((key, value)) = pair.split_once(':').filter(|(_, v)| !v.contains(':')) else {
            return Err(Failure::Usage {
                message: format!("--encryption-context: `{pair}` is not a key:value pair"),
                hint: Some("write the context as key:value pairs separated by commas"),
            });
        };
        pairs.push((key.to_string(), value.to_string()));
    }
    pairs.sort();
    Ok(pairs)
}

fn entry(kind: &str, fields: &[(&str, String)]) -> KeyEntry {
    KeyEntry {
        kind: kind.to_string(),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        maps: Vec::new(),
    }
}

/// A creation rule's key as the entry that names it to its key source.
fn spec_entry(spec: &KeySpec) -> KeyEntry {
    match spec {
        KeySpec::AgeRecipient(r) => entry("age", &[("recipient", r.clone())]),
        KeySpec::Pgp(fp) => entry("pgp", &[("fp", fp.clone())]),
        KeySpec::Kms {
            arn,
            role,
            context,
            profile,
        } => {
            let mut fields = vec![("arn", arn.clone())];
            fields.extend(role.clone().map(|r| ("role", r)));
            fields.extend(profile.clone().map(|p| ("aws_profile", p)));
            let mut kms = entry("kms", &fields);
            if !context.is_empty() {
                kms.maps.push((
                    "context".into(),
                    context
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ));
            }
            kms
        }
        KeySpec::GcpKms(id) => entry("gcp_kms", &[("resource_id", id.clone())]),
        KeySpec::AzureKv {
            vault_url,
            key,
            version,
        } => {
            let mut fields = vec![("vault_url", vault_url.clone()), ("name", key.clone())];
            fields.extend(version.clone().map(|v| ("version", v)));
            entry("azure_kv", &fields)
        }
        KeySpec::HcVault(uri) => entry("hc_vault", &[("vault_address", uri.clone())]),
        KeySpec::HcKms(id) => entry("hckms", &[("key_id", id.clone())]),
        _ => entry("unknown", &[]),
    }
}

/// Which values are encrypted: the one selection flag given, else the
/// rule's, else sops' default `_unencrypted` suffix.
fn crypt_rule(
    cli: &Cli,
    args: &NewFileArgs,
    rule: Option<&CreationRule>,
) -> Result<CryptRule, Failure> {
    let regex = |flag: &str, pattern: &str| {
        Regex::new(pattern).map_err(|e| Failure::Usage {
            message: format!("--{flag} `{pattern}` is not a valid regular expression: {e}"),
            hint: None,
        })
    };
    let mut chosen = Vec::new();
    if let Some(s) = &args.unencrypted_suffix {
        chosen.push(CryptRule::UnencryptedSuffix(s.clone()));
    }
    if let Some(s) = &args.encrypted_suffix {
        chosen.push(CryptRule::EncryptedSuffix(s.clone()));
    }
    if let Some(r) = &args.unencrypted_regex {
        chosen.push(CryptRule::UnencryptedRegex(regex("unencrypted-regex", r)?));
    }
    if let Some(r) = &args.encrypted_regex {
        chosen.push(CryptRule::EncryptedRegex(regex("encrypted-regex", r)?));
    }
    if let Some(r) = &cli.unencrypted_comment_regex {
        chosen.push(CryptRule::UnencryptedCommentRegex(regex(
            "unencrypted-comment-regex",
            r,
        )?));
    }
    if let Some(r) = &cli.encrypted_comment_regex {
        chosen.push(CryptRule::EncryptedCommentRegex(regex(
            "encrypted-comment-regex",
            r,
        )?));
    }
    if chosen.len() > 1 {
        return Err(Failure::Conflict(
            "only one of --unencrypted-suffix, --encrypted-suffix, --unencrypted-regex, --encrypted-regex, --unencrypted-comment-regex and --encrypted-comment-regex can be given",
        ));
    }
    Ok(chosen
        .pop()
        .or_else(|| rule.and_then(|r| r.crypt_rule.clone()))
        .unwrap_or_else(|| CryptRule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.into())))
}
