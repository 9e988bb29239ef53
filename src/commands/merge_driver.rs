//! `rsops merge-driver BASE OURS THEIRS [PATH]`: git's merge driver for
//! encrypted files (`merge.sops.driver = rsops merge-driver %O %A %B %P`).
//!
//! The three versions are decrypted, merged key by key ([`rsops::merge`]),
//! and a clean merge is encrypted again into OURS with ours' data key and
//! key groups, so values nobody changed keep their ciphertext. A conflict
//! leaves OURS as it was and exits 1, which git takes for "conflicted".
//! Messages name key paths, never values.

use std::path::Path;
use std::process::ExitCode;

use rsops::merge::{self, Recipients};
use rsops::rewrite::Opened;
use rsops::{DecryptOptions, KeyRegistry};
use zeroize::Zeroizing;

use super::input::{unwrap_options, Input};
use super::Failure;
use crate::cli::{Cli, MergeDriverArgs};

/// Runs the merge driver.
pub async fn run(cli: &Cli, args: &MergeDriverArgs) -> Result<ExitCode, Failure> {
    let input_type = args.input_type.as_deref();
    // git's temporary files have meaningless names: the format comes from
    // the real path (`%P`) when there is one.
    let input = Input::new(
        cli,
        Some(&args.ours),
        args.path.as_deref(),
        input_type,
        input_type,
    )?;
    let format = input.input_format;
    let file = args
        .path
        .as_deref()
        .unwrap_or(&args.ours)
        .display()
        .to_string();
    let version = |label: &str, path: &Path| format!("{file} ({label}, {})", path.display());

    let ours_bytes = read(&args.ours, &version("OURS", &args.ours))?
        .ok_or_else(|| missing(&version("OURS", &args.ours)))?;
    let theirs_bytes = read(&args.theirs, &version("THEIRS", &args.theirs))?
        .ok_or_else(|| missing(&version("THEIRS", &args.theirs)))?;
    // Both sides added the file: no base, a two-way merge.
    let base_bytes = read(&args.base, &version("BASE", &args.base))?
        .filter(|bytes| !bytes.iter().all(u8::is_ascii_whitespace));

    let registry = KeyRegistry::default();
    let options = DecryptOptions {
        ignore_mac: false,
        unwrap: unwrap_options(&args.keys),
    };
    let (ours, theirs, base) = tokio::join!(
        Opened::open(&ours_bytes, format, &registry, &options),
        rsops::decrypt(&theirs_bytes, format, &registry, &options),
        async {
            match &base_bytes {
                Some(bytes) => Some(rsops::decrypt(bytes, format, &registry, &options).await),
                None => None,
            }
        }
    );
    let failed = |label: &str, path: &Path| {
        let input = version(label, path);
        move |source| Failure::Decrypt { input, source }
    };
    let mut ours = ours.map_err(failed("OURS", &args.ours))?;
    let theirs = theirs.map_err(failed("THEIRS", &args.theirs))?;
    let base = base.transpose().map_err(failed("BASE", &args.base))?;

    let mut conflicts: Vec<String> = Vec::new();
    let recipients =
        |m: &rsops::metadata::Metadata| Recipients::of(&m.key_groups, m.shamir_threshold);
    if let Some(conflict) = merge::key_groups_conflict(
        base.as_ref().map(|b| recipients(&b.metadata)).as_ref(),
        &recipients(&ours.metadata),
        &recipients(&theirs.metadata),
    ) {
        conflicts.push(format!(
            "{conflict}; merge the key change by hand, then run `rsops updatekeys`"
        ));
    }
    let merged = match merge::merge(
        base.as_ref().map(|b| &b.document),
        &ours.document,
        &theirs.document,
    ) {
        Ok(merged) => Some(merged),
        Err(found) => {
            conflicts.extend(found.iter().map(ToString::to_string));
            None
        }
    };
    let merged = match merged {
        Some(merged) if conflicts.is_empty() => merged,
        _ => {
            for conflict in &conflicts {
                eprintln!("rsops: {file}: {conflict}");
            }
            return Err(Failure::MergeConflict {
                file,
                count: conflicts.len(),
            });
        }
    };
    if merged == ours.document {
        // Nothing of theirs to bring in: OURS stays byte for byte.
        return Ok(ExitCode::SUCCESS);
    }
    ours.document = merged;
    let sealed = ours
        .seal(input.output_format, input.emit)
        .map_err(|source| Failure::Encrypt {
            input: version("merged", &args.ours),
            source: Box::new(source),
        })?;
    super::write_printed_atomically(&args.ours, &sealed, super::file_mode(&args.ours))?;
    Ok(ExitCode::SUCCESS)
}

/// A version's bytes (wiped when dropped), or `None` when the file is missing.
fn read(path: &Path, what: &str) -> Result<Option<Zeroizing<Vec<u8>>>, Failure> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Failure::Read {
            what: what.to_string(),
            source,
        }),
    }
}

fn missing(what: &str) -> Failure {
    Failure::Read {
        what: what.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
    }
}
