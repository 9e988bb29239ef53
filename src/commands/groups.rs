//! `rsops groups add|delete`: add a key group made of the given keys, or
//! delete one, keeping the data key (every key wraps it, or its Shamir
//! share, anew) and leaving the values as they are, as the reference does.

use std::path::Path;
use std::process::ExitCode;

use rsops_keysource::KeyEntry;

use super::input::Input;
use super::key_flags::{self, KeyLists};
use super::Failure;
use crate::cli::{Cli, GroupsAddArgs, GroupsCommand, GroupsDeleteArgs, KeyArgs};

/// Runs `rsops groups …`.
pub async fn run(cli: &Cli, command: &GroupsCommand) -> Result<ExitCode, Failure> {
    match command {
        GroupsCommand::Add(args) => add(cli, args).await,
        GroupsCommand::Delete(args) => delete(cli, args).await,
    }
}

async fn add(cli: &Cli, args: &GroupsAddArgs) -> Result<ExitCode, Failure> {
    let joined = |list: &[String]| (!list.is_empty()).then(|| list.join(","));
    let (age, pgp, kms) = (joined(&args.age), joined(&args.pgp), joined(&args.kms));
    let (gcp, azure, vault) = (
        joined(&args.gcp_kms),
        joined(&args.azure_kv),
        joined(&args.hc_vault_transit),
    );
    let group = key_flags::entries(&KeyLists {
        age: age.as_deref(),
        pgp: pgp.as_deref(),
        kms: kms.as_deref(),
        gcp_kms: gcp.as_deref(),
        azure_kv: azure.as_deref(),
        hc_vault_transit: vault.as_deref(),
        encryption_context: args.encryption_context.as_deref(),
        aws_profile: args.aws_profile.as_deref(),
    })?;
    let change = |groups: &mut Vec<Vec<KeyEntry>>, threshold: usize| {
        groups.push(group);
        Ok(args.shamir_secret_sharing_threshold.unwrap_or(threshold))
    };
    let target = Target {
        file: &args.file,
        in_place: args.in_place,
        input_type: args.input_type.as_deref(),
        output_type: args.output_type.as_deref(),
        keys: &args.keys,
    };
    regroup(cli, &target, change).await
}

async fn delete(cli: &Cli, args: &GroupsDeleteArgs) -> Result<ExitCode, Failure> {
    let change = |groups: &mut Vec<Vec<KeyEntry>>, threshold: usize| {
        if args.index >= groups.len() {
            return Err(Failure::Usage {
                message: format!(
                    "there is no key group {} (the file has {}, counted from 0)",
                    args.index,
                    groups.len()
                ),
                hint: None,
            });
        }
        groups.remove(args.index);
        let threshold = args.shamir_secret_sharing_threshold.unwrap_or(threshold);
        if groups.len() < threshold {
            return Err(Failure::Usage {
                message: format!(
                    "removing this key group will make the Shamir threshold impossible to satisfy: Shamir threshold is {threshold}, but we only have {} key groups",
                    groups.len()
                ),
                hint: Some("lower it with --shamir-secret-sharing-threshold"),
            });
        }
        Ok(threshold)
    };
    let target = Target {
        file: &args.file,
        in_place: args.in_place,
        input_type: args.input_type.as_deref(),
        output_type: args.output_type.as_deref(),
        keys: &args.keys,
    };
    regroup(cli, &target, change).await
}

/// The file a `groups` command changes and where the result goes.
struct Target<'a> {
    file: &'a Path,
    in_place: bool,
    input_type: Option<&'a str>,
    output_type: Option<&'a str>,
    keys: &'a KeyArgs,
}

/// Applies `change` to the key groups (it returns the Shamir threshold to
/// keep), wraps the data key for the new groups and writes the file back
/// (`-i`) or prints it.
async fn regroup(
    cli: &Cli,
    target: &Target<'_>,
    change: impl FnOnce(&mut Vec<Vec<KeyEntry>>, usize) -> Result<usize, Failure>,
) -> Result<ExitCode, Failure> {
    let input = Input::new(
        cli,
        Some(target.file),
        None,
        target.input_type,
        target.output_type,
    )?;
    let rekeyed = input
        .rekey(target.keys, |metadata| {
            let mut groups = metadata.key_groups.clone();
            let threshold = change(&mut groups, metadata.shamir_threshold)?;
            Ok(Some((groups, threshold)))
        })
        .await?;
    if let Some((output, _lock)) = rekeyed {
        if target.in_place {
            super::write_atomically(target.file, &output, super::file_mode(target.file))?;
        } else {
            super::write_stdout(&output)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
