//! The `rsops` binary: parse the command line, run one command, turn its
//! failure into one message and the reference's exit code.

mod cli;
mod commands;
mod wipe_on_free;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: wipe_on_free::WipeOnFree = wipe_on_free::WipeOnFree;

fn main() -> ExitCode {
    wipe_on_free::prepare_heap();
    // The allocator above zeroes every block it frees.
    rsops::tree::declare_freed_memory_wiped();
    let cli = cli::Cli::parse_from(cli::normalize_args(std::env::args_os()));
    match commands::run(&cli) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("{}", failure.report());
            ExitCode::from(failure.exit_code(&cli.command))
        }
    }
}
