//! `rsops updatekeys FILE…`: make each file's key groups those of its
//! `.sops.yaml` creation rule, keeping the data key (every key wraps it
//! anew) and leaving values, MAC and `lastmodified` as they are — the
//! reference's behaviour. The change is shown first and, unless `-y`,
//! confirmed on standard input.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use rsops::config::{Config, CreationRule};
use rsops_keysource::KeyEntry;

use super::input::Input;
use super::key_flags;
use super::Failure;
use crate::cli::{Cli, UpdatekeysArgs};

/// Runs `rsops updatekeys`.
pub async fn run(cli: &Cli, args: &UpdatekeysArgs) -> Result<ExitCode, Failure> {
    let (config, warning) = Config::find(cli.config.as_deref())?;
    if let Some(warning) = warning {
        eprintln!("rsops: warning: {warning}");
    }
    let Some(config) = config else {
        return Err(Failure::NoCreationRule(
            "config file not found: updatekeys takes the keys from .sops.yaml (or --config)".into(),
        ));
    };
    if args.files.is_empty() {
        return Err(Failure::MissingArguments("Error: no file specified"));
    }
    if let [only] = args.files.as_slice() {
        return update(cli, args, &config, only).await;
    }
    let mut failed = 0;
    for file in &args.files {
        if let Err(failure) = update(cli, args, &config, file).await {
            eprintln!("{}", failure.report());
            failed += 1;
        }
    }
    match failed {
        0 => Ok(ExitCode::SUCCESS),
        n => Err(Failure::SomeFilesFailed(n)),
    }
}

async fn update(
    cli: &Cli,
    args: &UpdatekeysArgs,
    config: &Config,
    file: &Path,
) -> Result<ExitCode, Failure> {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    if absolute.is_dir() {
        return Err(Failure::Usage {
            message: format!("{}: can't operate on a directory", file.display()),
            hint: None,
        });
    }
    let input = Input::new(cli, Some(file), None, args.input_type.as_deref(), None)?;
    let Some(rule) = config.rule_for(&absolute)? else {
        return Err(Failure::NoCreationRule(format!(
            "The config file {} does not contain any creation rule for {}",
            config.path.display(),
            file.display()
        )));
    };
    let rekeyed = input
        .rekey(&args.keys, |current| {
            let wanted = rule_groups(&rule);
            let threshold = args
                .shamir_secret_sharing_threshold
                .unwrap_or(current.shamir_threshold)
                .min(wanted.len());
            let diffs = diff_groups(&current.key_groups, &wanted);
            let keys_change = diffs
                .iter()
                .any(|d| !d.added.is_empty() || !d.removed.is_empty());
            if !keys_change && threshold == current.shamir_threshold {
                eprintln!("rsops: {}: already up to date", file.display());
                return Ok(None);
            }
            let mut shown =
                String::from("The following changes will be made to the file's groups:\n");
            shown.push_str(&shamir_diff(current.shamir_threshold, threshold));
            for (i, diff) in diffs.iter().enumerate() {
                shown.push_str(&diff.render(i));
            }
            super::write_stdout(shown.as_bytes())?;
            if !args.yes && !confirmed()? {
                eprintln!("rsops: {}: left unchanged", file.display());
                return Ok(None);
            }
            Ok(Some((wanted, threshold)))
        })
        .await?;
    if let Some((output, _lock)) = rekeyed {
        super::write_atomically(file, &output, super::file_mode(file))?;
        eprintln!("rsops: {}: synced with new keys", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The rule's key groups as entries.
fn rule_groups(rule: &CreationRule) -> Vec<Vec<KeyEntry>> {
    rule.key_groups
        .iter()
        .map(|group| group.iter().map(key_flags::spec_entry).collect())
        .collect()
}

/// Asks "Is this okay? (y/n):" until it reads `y` or `n` (standard input,
/// as the reference reads it, so `yes | rsops updatekeys f` works).
fn confirmed() -> Result<bool, Failure> {
    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        print!("Is this okay? (y/n):");
        std::io::stdout().flush().ok();
        line.clear();
        let read = stdin
            .lock()
            .read_line(&mut line)
            .map_err(|source| Failure::Read {
                what: "standard input".into(),
                source,
            })?;
        if read == 0 {
            return Err(Failure::Usage {
                message: "no answer on standard input".into(),
                hint: Some("pass -y to update without asking"),
            });
        }
        match line.trim() {
            "y" => return Ok(true),
            "n" => return Ok(false),
            _ => {}
        }
    }
}

/// One group's change, as the reference's `DiffKeyGroups` sees it.
struct GroupDiff {
    common: Vec<String>,
    added: Vec<String>,
    removed: Vec<String>,
}

impl GroupDiff {
    /// The reference's `PrettyPrintDiffs` layout (without colours).
    fn render(&self, index: usize) -> String {
        let mut text = format!("Group {}\n", index + 1);
        for key in &self.common {
            text.push_str(&format!("    {key}\n"));
        }
        for key in &self.added {
            text.push_str(&format!("+++ {key}\n"));
        }
        for key in &self.removed {
            text.push_str(&format!("--- {key}\n"));
        }
        text
    }
}

fn diff_groups(ours: &[Vec<KeyEntry>], theirs: &[Vec<KeyEntry>]) -> Vec<GroupDiff> {
    let ids = |group: Option<&Vec<KeyEntry>>| -> Vec<String> {
        group
            .map(|g| g.iter().map(rsops::metadata::key_identity).collect())
            .unwrap_or_default()
    };
    (0..ours.len().max(theirs.len()))
        .map(|i| {
            let old = ids(ours.get(i));
            let new = ids(theirs.get(i));
            let (common, added) = new.iter().cloned().partition(|k| old.contains(k));
            let removed = old.into_iter().filter(|k| !new.contains(k)).collect();
            GroupDiff {
                common,
                added,
                removed,
            }
        })
        .collect()
}

/// The reference's `PrettyPrintShamirDiff`.
fn shamir_diff(old: usize, new: usize) -> String {
    if old > 0 && old == new {
        return format!("shamir_threshold: {new}\n");
    }
    let mut text = String::new();
    if new > 0 {
        text.push_str(&format!("+++ shamir_threshold: {new}\n"));
    }
    if old > 0 {
        text.push_str(&format!("--- shamir_threshold: {old}\n"));
    }
    text
}
