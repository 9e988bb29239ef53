//! `rsops rotate FILE` (and the legacy `-r`): a new data key, every value
//! encrypted again under it, keys added to the first group with `--add-*`
//! and removed from every group with `--rm-*`, as the reference does.

use std::process::ExitCode;

use rsops::KeyRegistry;

use super::input::Input;
use super::key_flags::{self, KeyLists};
use super::{write_printed_stdout, Failure};
use crate::cli::{Cli, RotateArgs};

/// Runs `rsops rotate`.
pub async fn run(cli: &Cli, args: &RotateArgs) -> Result<ExitCode, Failure> {
    let Some(file) = args.file.as_deref() else {
        return Err(Failure::MissingArguments("Error: no file specified"));
    };
    let added = key_flags::entries(&KeyLists {
        age: args.add_age.as_deref(),
        pgp: args.add_pgp.as_deref(),
        kms: args.add_kms.as_deref(),
        gcp_kms: args.add_gcp_kms.as_deref(),
        azure_kv: args.add_azure_kv.as_deref(),
        hc_vault_transit: args.add_hc_vault_transit.as_deref(),
        encryption_context: args.encryption_context.as_deref(),
        aws_profile: args.aws_profile.as_deref(),
    })?;
    let removed = key_flags::entries(&KeyLists {
        age: args.rm_age.as_deref(),
        pgp: args.rm_pgp.as_deref(),
        kms: args.rm_kms.as_deref(),
        gcp_kms: args.rm_gcp_kms.as_deref(),
        azure_kv: args.rm_azure_kv.as_deref(),
        hc_vault_transit: args.rm_hc_vault_transit.as_deref(),
        ..KeyLists::default()
    })?;
    let changes_keys = !added.is_empty() || !removed.is_empty();
    if changes_keys && !file.exists() {
        return Err(Failure::KeysOfMissingFile(file.to_path_buf()));
    }
    let input = Input::new(
        cli,
        Some(file),
        args.filename_override.as_deref(),
        args.input.input_type.as_deref(),
        args.input.output_type.as_deref(),
    )?;
    let (mut opened, _lock) = input.open_for_change(&args.input).await?;
    let groups = &mut opened.metadata.key_groups;
    if let Some(first) = groups.first_mut() {
        first.extend(added);
    }
    let removed: Vec<String> = removed.iter().map(rsops::metadata::key_identity).collect();
    for group in groups.iter_mut() {
        group.retain(|entry| !removed.contains(&rsops::metadata::key_identity(entry)));
    }
    opened
        .rotate_data_key(&KeyRegistry::default(), args.input.keys.key_timeout)
        .await
        .map_err(|source| Failure::Encrypt {
            input: input.display(),
            source: Box::new(source),
        })?;
    let sealed = input.seal(opened)?;
    match (&args.output, args.in_place) {
        (Some(path), _) => super::write_printed_atomically(path, &sealed, None)?,
        (None, true) => super::write_printed_atomically(file, &sealed, super::file_mode(file))?,
        (None, false) => write_printed_stdout(&sealed)?,
    }
    Ok(ExitCode::SUCCESS)
}
