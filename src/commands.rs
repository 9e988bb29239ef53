//! The commands, and the one failure type they report.

mod config;
mod decrypt;
mod docs;
mod edit;
mod encrypt;
mod exec;
mod failure;
mod filestatus;
mod groups;
mod input;
mod key_flags;
mod keys;
mod mcp;
mod merge_driver;
mod rotate;
mod set;
mod updatekeys;

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
        Command::Encrypt(ref args) => runtime.block_on(encrypt::run(cli, args)),
        Command::Edit(ref args) => edit::run(cli, args, &runtime),
        Command::Filestatus(ref args) => filestatus::run(cli, args),
        Command::Set(ref args) => runtime.block_on(set::run_set(cli, args)),
        Command::Unset(ref args) => runtime.block_on(set::run_unset(cli, args)),
        Command::Rotate(ref args) => runtime.block_on(rotate::run(cli, args)),
        Command::Updatekeys(ref args) => runtime.block_on(updatekeys::run(cli, args)),
        Command::Groups(ref command) => runtime.block_on(groups::run(cli, command)),
        Command::MergeDriver(ref args) => runtime.block_on(merge_driver::run(cli, args)),
        Command::Mcp(ref command) => mcp::run(cli, command, &runtime),
        Command::Completion(ref args) => docs::completion(args.shell),
        Command::Man => docs::man(),
    }
}

/// Writes standard output; a closed pipe (`rsops decrypt f | head`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    write_parts_stdout(&[bytes])
}

/// Writes a printed file to standard output, part by part (see
/// [`write_stdout`]).
pub fn write_printed_stdout(printed: &rsops::formats::Printed) -> Result<(), Failure> {
    write_parts_stdout(&printed.parts())
}

fn write_parts_stdout(parts: &[&[u8]]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    let written = parts
        .iter()
        .try_for_each(|part| stdout.write_all(part))
        .and_then(|()| stdout.flush());
    match written {
        Err(source) if source.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::Write {
            what: "standard output".into(),
            source,
        }),
        _ => Ok(()),
    }
}

/// The permission bits of an existing file, to keep them when it is replaced.
pub fn file_mode(path: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .ok()
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory (mode 0600, or `mode`), synced, then renamed over the target,
/// so readers and crashes see the old file or the new one, never a part.
pub fn write_atomically(
    path: &std::path::Path,
    bytes: &[u8],
    mode: Option<u32>,
) -> Result<(), Failure> {
    write_parts_atomically(path, &[bytes], mode)
}

/// Writes a printed file atomically, part by part (see [`write_atomically`]).
pub fn write_printed_atomically(
    path: &std::path::Path,
    printed: &rsops::formats::Printed,
    mode: Option<u32>,
) -> Result<(), Failure> {
    write_parts_atomically(path, &printed.parts(), mode)
}

fn write_parts_atomically(
    path: &std::path::Path,
    parts: &[&[u8]],
    mode: Option<u32>,
) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |source: std::io::Error| Failure::Write {
        what: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".rsops-")
        .tempfile_in(dir)
        .map_err(fail)?;
    if let Some(mode) = mode {
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(fail)?;
    }
    parts
        .iter()
        .try_for_each(|part| temp.write_all(part))
        .map_err(fail)?;
    temp.as_file().sync_all().map_err(fail)?;
    temp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
