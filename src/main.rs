//! The `rsops` binary: parse the command line, run one command, turn its
//! failure into one message and the reference's exit code.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_from(cli::normalize_args(std::env::args_os()));
    match commands::run(&cli) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("{}", failure.report());
            ExitCode::from(failure.exit_code(&cli.command))
        }
    }
}
