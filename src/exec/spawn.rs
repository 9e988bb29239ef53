//! Starting `/bin/sh -c COMMAND` with an environment rsops built itself.
//!
//! `posix_spawn` (not `std::process::Command`) takes the environment block
//! as rsops made it, so the only copies of the secrets are the block's own
//! buffers, which are wiped when it is dropped. The child gets rsops'
//! standard input, output and error as they are.

use std::ffi::{CStr, CString};

use nix::errno::Errno;
use nix::spawn::{posix_spawn, PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::{pthread_sigmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

use super::env::EnvBlock;
use super::ExecError;

const SHELL: &CStr = c"/bin/sh";

fn argv(command: &CStr) -> [&CStr; 3] {
    [SHELL, c"-c", command]
}

fn spawn_error(e: Errno) -> ExecError {
    ExecError::Spawn(e.into())
}

/// Starts the shell. Like `std::process::Command`, it gives the child an
/// empty signal mask and the default SIGPIPE action, which Rust programs
/// ignore but shell pipelines rely on.
pub(crate) fn spawn_shell(command: &CString, env: &EnvBlock) -> Result<Pid, ExecError> {
    let mut attr = PosixSpawnAttr::init().map_err(spawn_error)?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
    )
    .map_err(spawn_error)?;
    attr.set_sigmask(&SigSet::empty()).map_err(spawn_error)?;
    attr.set_sigdefault(&SigSet::from(Signal::SIGPIPE))
        .map_err(spawn_error)?;
    let actions = PosixSpawnFileActions::init().map_err(spawn_error)?;
    posix_spawn(SHELL, &actions, &attr, &argv(command), env.entries()).map_err(spawn_error)
}

/// Replaces rsops with the shell (`--same-process`); returns only on failure.
pub(crate) fn exec_shell(command: &CString, env: &EnvBlock) -> ExecError {
    // SAFETY: restoring the default action installs no Rust handler; rsops
    // is about to be replaced, and nothing relies on SIGPIPE being ignored.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    match nix::unistd::execve(SHELL, &argv(command), env.entries()) {
        Err(e) => spawn_error(e),
        Ok(never) => match never {},
    }
}
