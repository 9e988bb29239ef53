//! The commands, and the one failure type they report.

mod config;
mod decrypt;
mod docs;
mod exec;
mod input;
mod keys;

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// A command's failure: what to tell the user and which exit code to use.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// A failure with the given exit code.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code: u8::try_from(code).unwrap_or(1),
            message: message.into(),
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(1, format!("cannot start the async runtime: {e}")))?;
    match cli.command {
        Command::Decrypt(ref args) => runtime.block_on(decrypt::run(&cli, args)),
        Command::ExecEnv(ref args) => exec::run_env(&cli, args, &runtime),
        Command::ExecFile(ref args) => exec::run_file(&cli, args, &runtime),
        Command::Keys(ref args) => runtime.block_on(keys::run(&cli, args)),
        Command::Completion(ref args) => docs::completion(args.shell),
        Command::Man => docs::man(),
    }
}

/// Writes standard output; a closed pipe (`rsops decrypt f | head`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::new(
            3,
            format!("cannot write to standard output: {e}"),
        )),
        _ => Ok(()),
    }
}
