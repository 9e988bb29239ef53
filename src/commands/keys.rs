//! `rsops keys FILE`: which of a file's keys can the current user (or this
//! CI runner) unwrap? Every entry is tried, with the usual deadlines, and
//! nothing in the file is decrypted.

use std::process::ExitCode;

use rsops::keys::Outcome;

use super::input::Input;
use super::Failure;
use crate::cli::{Cli, KeysArgs};

/// The reference's exit code when the data key cannot be had.
const COULD_NOT_RETRIEVE_KEY: u8 = 128;

/// Runs `rsops keys`: prints one line per entry on standard output and exits
/// 0 when the data key is recoverable, 128 when it is not.
pub async fn run(cli: &Cli, args: &KeysArgs) -> Result<ExitCode, Failure> {
    let input = Input::new(
        cli,
        Some(&args.file),
        None,
        args.input_type.as_deref(),
        None,
    )?;
    let check = input.check_keys(&args.keys).await?;
    let groups = check.metadata.key_groups.len();
    let needed = rsops::keys::groups_needed(&check.metadata);
    let mut out = String::new();
    let usable_groups = (0..groups)
        .filter(|g| {
            check
                .attempts
                .iter()
                .any(|a| a.group == *g && a.succeeded())
        })
        .count();
    out.push_str(&format!(
        "{}: {groups} key group{}, {needed} needed\n",
        input.display(),
        if groups == 1 { "" } else { "s" }
    ));
    for group in 0..groups {
        out.push_str(&format!("group {}:\n", group + 1));
        for attempt in check.attempts.iter().filter(|a| a.group == group) {
            let mark = match attempt.outcome {
                Outcome::Unwrapped => "ok  ",
                _ => "FAIL",
            };
            out.push_str(&format!("  {mark} {attempt}\n"));
            if let Some(hint) = rsops::keys::hint(attempt) {
                out.push_str(&format!("       hint: {hint}\n"));
            }
        }
    }
    let verdict = if check.recoverable {
        format!("the data key can be recovered here ({usable_groups} of {groups} groups usable, {needed} needed)")
    } else {
        format!("the data key cannot be recovered here ({usable_groups} of {groups} groups usable, {needed} needed)")
    };
    out.push_str(&verdict);
    out.push('\n');
    super::write_stdout(out.as_bytes())?;
    Ok(if check.recoverable {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(COULD_NOT_RETRIEVE_KEY)
    })
}
