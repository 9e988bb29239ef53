//! `rsops exec-env` and `rsops exec-file`: decrypt, then hand the secrets to
//! one command and nothing else.
//!
//! Standard input, output and error belong to the command (an MCP server
//! speaks JSON-RPC over them): these commands never read standard input,
//! never write standard output, and write to standard error only their own
//! one-line errors and warnings.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;

use rsops::exec::{self, EnvBlock, FileKind, Inherit, Invocation, Launcher, Wait};
use tokio::runtime::Runtime;
use zeroize::Zeroizing;

use super::input::Input;
use super::Failure;
use crate::cli::{Cli, ExecEnvArgs, ExecFileArgs, InputArgs, LaunchArgs};

fn decrypt(
    runtime: &Runtime,
    input: &Input,
    args: &InputArgs,
) -> Result<rsops::Decrypted, Failure> {
    runtime.block_on(input.decrypt(args))
}

/// Which of the two forms a command line is: `FILE COMMAND` (sops' form,
/// one string for `/bin/sh -c`) or `FILE… -- PROGRAM ARG…` (the argv
/// form). Returns the files and the command.
fn split<'a>(
    operands: &'a [OsString],
    argv: &'a [OsString],
    command: &'static str,
) -> Result<(Vec<&'a Path>, Invocation<'a>), Failure> {
    let several_files = command == "exec-env";
    if !argv.is_empty() {
        if !several_files && operands.len() > 1 {
            return Err(Failure::Usage {
                message: format!(
                    "exec-file takes one encrypted file, got {}; the command goes after `--`",
                    operands.len()
                ),
                hint: Some("run exec-file once per file, or use exec-env, which takes several files: `rsops exec-env a.enc.env b.enc.yaml -- cmd args`"),
            });
        }
        let files = operands.iter().map(Path::new).collect();
        return Ok((files, Invocation::Argv(argv)));
    }
    match operands {
        [file, command] => Ok((vec![Path::new(file)], Invocation::Shell(command.as_bytes()))),
        [_] => Err(Failure::Usage {
            message: format!("{command} needs a command after the file"),
            hint: Some(if several_files {
                "give it as one string, run with /bin/sh -c (`rsops exec-env FILE 'cmd args'`), or as words after `--`, run without a shell (`rsops exec-env FILE -- cmd args`)"
            } else {
                "give it as one string, run with /bin/sh -c (`rsops exec-file FILE 'cmd {}'`), or as words after `--`, run without a shell (`rsops exec-file FILE -- cmd {}`)"
            }),
        }),
        _ => Err(Failure::Usage {
            message: format!(
                "{command} takes a file and one command string, got {} arguments",
                operands.len()
            ),
            hint: Some(if several_files {
                "quote the command as one string, or put it after `--` to run it without a shell; several files need `--`: `rsops exec-env a.enc.env b.enc.yaml -- cmd args`"
            } else {
                "quote the command as one string, or put it after `--` to run it without a shell: `rsops exec-file FILE -- cmd --config={}`"
            }),
        }),
    }
}

/// Checks the file argument and reads the format flags, before any I/O.
fn input(cli: &Cli, file: &Path, args: &InputArgs, command: &str) -> Result<Input, Failure> {
    if file.as_os_str() == "-" {
        return Err(Failure::Usage {
            message: format!("{command} reads the encrypted file from a path, not standard input"),
            hint: Some("standard input belongs to the command"),
        });
    }
    Input::of_file(cli, file, args)
}

fn inherit(launch: &LaunchArgs) -> Result<Inherit, Failure> {
    if launch.pristine {
        Ok(Inherit::pristine(&launch.keep)?)
    } else {
        Ok(Inherit::All)
    }
}

/// `--user`: becomes the user and returns its `HOME`, `USER`, `LOGNAME`.
fn switch_user(launch: &LaunchArgs) -> Result<Vec<(&'static str, String)>, Failure> {
    match &launch.user {
        Some(name) => Ok(exec::switch_user(name)?),
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
        return Err(Failure::Usage {
            message: "--output-type does not apply to exec-env, which sets variables".into(),
            hint: None,
        });
    }
    if args.launch.background {
        warn_background("exec-env");
        if args.same_process {
            return Err(Failure::Conflict(
                "--same-process cannot be used with --background",
            ));
        }
    }
    let (files, command) = split(&args.operands, &args.argv, "exec-env")?;
    let inputs = files
        .iter()
        .map(|file| input(cli, file, &args.input, "exec-env"))
        .collect::<Result<Vec<_>, _>>()?;
    let inherit = inherit(&args.launch)?;
    let launcher = Launcher::new(args.launch.kill_after);
    // Every file at once; the first failure in the order given is reported.
    let decrypted = runtime.block_on(futures_util::future::join_all(
        inputs.iter().map(|input| input.decrypt(&args.input)),
    ));
    let mut variables = Vec::new();
    for decrypted in decrypted {
        let decrypted = decrypted?;
        variables.extend(exec::variables(&decrypted.document)?);
    }
    let user_env = switch_user(&args.launch)?;
    // Later entries win: the secrets over `--user`'s, later files over earlier ones.
    let overrides = user_env.iter().map(|(k, v)| (*k, v.as_bytes())).chain(
        variables
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_slice())),
    );
    let env = EnvBlock::build(&inherit, overrides)?;
    drop(variables);
    if args.same_process {
        return Err(launcher.replace_process(command, &env).into());
    }
    let wait = if args.launch.background {
        Wait::Background
    } else {
        Wait::Foreground
    };
    Ok(exit(launcher.run(command, env, wait)?))
}

/// Runs `rsops exec-file`.
pub fn run_file(cli: &Cli, args: &ExecFileArgs, runtime: &Runtime) -> Result<ExitCode, Failure> {
    let filename = args.filename.as_deref().unwrap_or(exec::DEFAULT_FILENAME);
    exec::check_filename(filename)?;
    let (files, command) = split(&args.operands, &args.argv, "exec-file")?;
    let Some(&file) = files.first() else {
        return Err(Failure::Usage {
            message: "exec-file needs the encrypted file before `--`".into(),
            hint: None,
        });
    };
    let input = input(cli, file, &args.input, "exec-file")?;
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
        .map_err(|source| Failure::Print {
            source,
            as_binary: input.output_format == rsops::Format::Binary,
        })?;
    let plaintext = Zeroizing::new(plaintext);
    drop(decrypted);
    let user_env = switch_user(&args.launch)?;
    let env = EnvBlock::build(&inherit, user_env.iter().map(|(k, v)| (*k, v.as_str())))?;
    let kind = if args.no_fifo {
        FileKind::Regular
    } else {
        FileKind::Memory
    };
    Ok(exit(
        launcher.run_with_file(command, plaintext, kind, filename, env)?,
    ))
}
