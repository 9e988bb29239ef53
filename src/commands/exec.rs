//! `rsops exec-env` and `rsops exec-file`: decrypt, then hand the secrets to
//! one command and nothing else.
//!
//! Standard input, output and error belong to the command (an MCP server
//! speaks JSON-RPC over them): these commands never read standard input,
//! never write standard output, and write to standard error only their own
//! one-line errors and warnings.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;

use rsops::exec::{self, EnvBlock, FileKind, Inherit, Launcher, Wait};
use tokio::runtime::Runtime;
use zeroize::Zeroizing;

use super::input::Input;
use super::Failure;
use crate::cli::{Cli, ExecEnvArgs, ExecFileArgs, InputArgs, LaunchArgs};

/// The reference's exit code for flags that cannot go together.
const CONFLICTING_PARAMETERS: i32 = 8;

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::new(1, e.to_string())
}

/// The reference's exit code when the plaintext cannot be printed in the
/// output format (nested values as dotenv, say).
const COULD_NOT_PRINT: i32 = 4;

/// The reference's exit code when the encrypted file cannot be read.
const COULD_NOT_READ_INPUT: i32 = 2;

/// Decrypts, with the reference's exec-* exit code for a missing file (2:
/// "could not read", where `decrypt` says 100: "file not found").
fn decrypt(
    runtime: &Runtime,
    input: &Input,
    args: &InputArgs,
) -> Result<rsops::Decrypted, Failure> {
    runtime
        .block_on(input.decrypt(args))
        .map_err(|failure| match failure.exit_code() {
            100 => Failure::new(COULD_NOT_READ_INPUT, failure.to_string()),
            _ => failure,
        })
}

/// Checks the file argument and reads the format flags, before any I/O.
fn input(cli: &Cli, file: &Path, args: &InputArgs, command: &str) -> Result<Input, Failure> {
    if file.as_os_str() == "-" {
        return Err(Failure::new(
            1,
            format!("{command} reads the encrypted file from a path, not standard input\n\nhint: standard input belongs to the command"),
        ));
    }
    Input::new(
        cli,
        Some(file),
        None,
        args.input_type.as_deref(),
        args.output_type.as_deref(),
    )
}

fn inherit(launch: &LaunchArgs) -> Result<Inherit, Failure> {
    if launch.pristine {
        Inherit::pristine(&launch.keep).map_err(fail)
    } else {
        Ok(Inherit::All)
    }
}

/// `--user`: becomes the user and returns its `HOME`, `USER`, `LOGNAME`.
fn switch_user(launch: &LaunchArgs) -> Result<Vec<(&'static str, String)>, Failure> {
    match &launch.user {
        Some(name) => exec::switch_user(name).map_err(fail),
        None => Ok(Vec::new()),
    }
}

fn warn_background(command: &str) {
    eprintln!("rsops: warning: {command}'s --background option is deprecated and will be removed in a future version");
}

fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// Runs `rsops exec-env`.
pub fn run_env(cli: &Cli, args: &ExecEnvArgs, runtime: &Runtime) -> Result<ExitCode, Failure> {
    if args.input.output_type.is_some() {
        return Err(fail(
            "--output-type does not apply to exec-env, which sets variables",
        ));
    }
    if args.launch.background {
        warn_background("exec-env");
        if args.same_process {
            return Err(Failure::new(
                CONFLICTING_PARAMETERS,
                "--same-process cannot be used with --background",
            ));
        }
    }
    let input = input(cli, &args.file, &args.input, "exec-env")?;
    let inherit = inherit(&args.launch)?;
    let launcher = Launcher::new(args.launch.kill_after);
    let decrypted = decrypt(runtime, &input, &args.input)?;
    let variables = exec::variables(&decrypted.document).map_err(fail)?;
    drop(decrypted);
    let user_env = switch_user(&args.launch)?;
    let overrides = user_env.iter().map(|(k, v)| (*k, v.as_bytes())).chain(
        variables
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_slice())),
    );
    let env = EnvBlock::build(&inherit, overrides).map_err(fail)?;
    drop(variables);
    let command = args.command.as_bytes();
    if args.same_process {
        return Err(fail(launcher.replace_process(command, &env)));
    }
    let wait = if args.launch.background {
        Wait::Background
    } else {
        Wait::Foreground
    };
    launcher.run(command, env, wait).map(exit).map_err(fail)
}

/// Runs `rsops exec-file`.
pub fn run_file(cli: &Cli, args: &ExecFileArgs, runtime: &Runtime) -> Result<ExitCode, Failure> {
    let filename = args.filename.as_deref().unwrap_or(exec::DEFAULT_FILENAME);
    exec::check_filename(filename).map_err(fail)?;
    let input = input(cli, &args.file, &args.input, "exec-file")?;
    let inherit = inherit(&args.launch)?;
    if args.launch.background {
        // The reference removes the file as soon as it returns, so a
        // backgrounded command could not rely on it: rsops waits instead.
        warn_background("exec-file");
    }
    let launcher = Launcher::new(args.launch.kill_after);
    let decrypted = decrypt(runtime, &input, &args.input)?;
    let plaintext = input
        .output_format
        .emit(&decrypted.document, input.emit)
        .map_err(|e| Failure::new(COULD_NOT_PRINT, format!("cannot print the plaintext: {e}")))?;
    let plaintext = Zeroizing::new(plaintext);
    drop(decrypted);
    let user_env = switch_user(&args.launch)?;
    let env =
        EnvBlock::build(&inherit, user_env.iter().map(|(k, v)| (*k, v.as_str()))).map_err(fail)?;
    let kind = if args.no_fifo {
        FileKind::Regular
    } else {
        FileKind::Memory
    };
    launcher
        .run_with_file(args.command.as_bytes(), plaintext, kind, filename, env)
        .map(exit)
        .map_err(fail)
}
