//! `rsops encrypt [FILE]` (and the legacy `-e`): the keys come from the
//! flags and `SOPS_*` variables when any is given, else from the
//! `.sops.yaml` creation rule for the file, as in sops; flags also override
//! the rule's selection key and `mac_only_encrypted`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use regex::Regex;
use rsops::config::{Config, CreationRule};
use rsops::encrypt::EncryptOptions;
use rsops::metadata::CryptRule;
use rsops::KeyRegistry;
use rsops_keysource::KeyEntry;

use super::input::Input;
use super::key_flags::{self, KeyLists};
use super::{write_printed_stdout, Failure};
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
        (Some(path), _) => super::write_printed_atomically(path, &encrypted, None)?,
        (None, true) => {
            let path = args.file.as_deref().unwrap_or(Path::new("-"));
            super::write_printed_atomically(path, &encrypted, super::file_mode(path))?;
        }
        (None, false) => write_printed_stdout(&encrypted)?,
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

/// The keys: one group from the flags when any key flag is given, else the
/// rule's groups.
fn key_groups(
    args: &NewFileArgs,
    rule: Option<&CreationRule>,
) -> Result<Vec<Vec<KeyEntry>>, Failure> {
    let flags = key_flags::entries(&KeyLists {
        age: args.age.as_deref(),
        pgp: args.pgp.as_deref(),
        kms: args.kms.as_deref(),
        gcp_kms: args.gcp_kms.as_deref(),
        azure_kv: args.azure_kv.as_deref(),
        hc_vault_transit: args.hc_vault_transit.as_deref(),
        encryption_context: args.encryption_context.as_deref(),
        aws_profile: args.aws_profile.as_deref(),
    })?;
    if !flags.is_empty() {
        return Ok(vec![flags]);
    }
    match rule {
        Some(rule) => Ok(rule
            .key_groups
            .iter()
            .map(|group| group.iter().map(key_flags::spec_entry).collect())
            .collect()),
        None => Err(Failure::Usage {
            message: "config file not found, or has no creation rules, and no keys provided through command line options".into(),
            hint: Some("give keys with --age (or SOPS_AGE_RECIPIENTS), --pgp, --kms, --gcp-kms, --azure-kv or --hc-vault-transit, or add a creation rule to .sops.yaml"),
        }),
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
