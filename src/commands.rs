//! The commands, and the one failure type they report.

mod config;
mod decrypt;
mod docs;
mod exec;
mod failure;
mod filestatus;
mod input;
mod keys;

use std::io::Write;
use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub use failure::Failure;

/// Runs the parsed command line.
pub fn run(cli: &Cli) -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Failure::Internal {
            what: "cannot start the async runtime",
            source,
        })?;
    match cli.command {
        Command::Decrypt(ref args) => runtime.block_on(decrypt::run(cli, args)),
        Command::ExecEnv(ref args) => exec::run_env(cli, args, &runtime),
        Command::ExecFile(ref args) => exec::run_file(cli, args, &runtime),
        Command::Keys(ref args) => runtime.block_on(keys::run(cli, args)),
        Command::Filestatus(ref args) => filestatus::run(cli, args),
        Command::Completion(ref args) => docs::completion(args.shell),
        Command::Man => docs::man(),
    }
}

/// Writes standard output; a closed pipe (`rsops decrypt f | head`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(source) if source.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::Write {
            what: "standard output".into(),
            source,
        }),
        _ => Ok(()),
    }
}
