//! `rsops completion SHELL` and `rsops man`: generated from the same clap
//! definitions that parse the command line, so they cannot drift from it.

use std::process::ExitCode;

use clap::CommandFactory;

use super::{write_stdout, Failure};
use crate::cli::Cli;

/// Prints the completion script for `shell`.
pub fn completion(shell: clap_complete::Shell) -> Result<ExitCode, Failure> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "rsops", &mut script);
    write_stdout(&script)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the manual page, in roff.
pub fn man() -> Result<ExitCode, Failure> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|source| Failure::Internal {
            what: "cannot render the manual page",
            source,
        })?;
    write_stdout(&page)?;
    Ok(ExitCode::SUCCESS)
}
