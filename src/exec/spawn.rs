//! Starting the command (`/bin/sh -c COMMAND`, or a program found in `PATH`
//! beforehand, see `program`) with an environment rsops built itself.
//!
//! rsops forks and execs by hand (not `std::process::Command`, not
//! `posix_spawn`) because the child has work to do between the two that
//! neither offers: join a process group of its own, take the terminal's
//! foreground, ask to be sent SIGTERM if rsops dies, and put back what rsops
//! inherited (see `inherited`). The environment block goes to `execve` as
//! rsops made it, so the only copies of the secrets are the block's own
//! buffers, wiped when it is dropped. The child gets rsops' standard input,
//! output and error as they are.
//!
//! Between `fork` and `exec` the child makes only system calls: no
//! allocation, no lock, nothing a thread of the parent could be holding.

use std::ffi::c_char;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{pipe2, read, setpgid, Pid};

use super::env::EnvBlock;
use super::inherited::Inherited;
use super::program::{Program, SHELL};
use super::ExecError;

/// Where the child goes.
pub(crate) enum Placement<'a> {
    /// rsops' own process group, nothing else (the deprecated `--background`).
    Detached,
    /// A process group of its own, the terminal's foreground if rsops had
    /// it, and SIGTERM when rsops dies.
    Supervised {
        /// The terminal to take, when rsops is in its foreground.
        terminal: Option<BorrowedFd<'a>>,
        /// Signals rsops catches, reset to their default action in the child.
        caught: &'a [Signal],
    },
}

/// Starts the program and returns its pid, which is also its process
/// group's id when [`Placement::Supervised`].
pub(crate) fn spawn(
    program: &Program,
    env: &EnvBlock,
    inherited: &Inherited,
    placement: Placement<'_>,
) -> Result<Pid, ExecError> {
    let pointers = program.pointers();
    let envp = env.pointers();
    let (report_read, report_write) = pipe2(OFlag::O_CLOEXEC).map_err(spawn_error)?;
    let parent = nix::unistd::getpid();

    // Signals stay blocked across the fork, so no rsops handler can run in
    // the child before it has reset them.
    let mut previous = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut previous),
    )
    .map_err(spawn_error)?;
    // SAFETY: the child branch only makes async-signal-safe system calls on
    // memory prepared above, then execs or exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above; never returns.
        unsafe {
            exec_child(
                &pointers,
                &envp,
                inherited,
                &placement,
                parent,
                report_write.as_raw_fd(),
            )
        }
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
    if pid < 0 {
        return Err(spawn_error(Errno::last()));
    }
    let child = Pid::from_raw(pid);
    drop(report_write);
    if let Placement::Supervised { .. } = placement {
        // Also from this side, so the group exists whichever runs first.
        // EACCES: the child has exec'd, after joining it.
        let _ = setpgid(child, child);
    }
    let mut errno = [0u8; 4];
    let mut got = 0;
    while got < errno.len() {
        match read(&report_read, &mut errno[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    if got == errno.len() {
        // exec failed: the child has exited with 127; reap it.
        let _ = waitpid(child, None);
        return Err(program.exec_error(Errno::from_raw(i32::from_ne_bytes(errno))));
    }
    Ok(child)
}

/// The child's half of [`spawn`].
///
/// # Safety
/// Must only run in a freshly forked child: it never returns.
unsafe fn exec_child(
    program: &super::program::Pointers<'_>,
    envp: &[*const c_char],
    inherited: &Inherited,
    placement: &Placement<'_>,
    parent: Pid,
    report: i32,
) -> ! {
    if let Placement::Supervised { terminal, caught } = placement {
        libc::setpgid(0, 0);
        if let Some(terminal) = terminal {
            // SIGTTOU is blocked (all signals are), so this cannot stop us.
            libc::tcsetpgrp(terminal.as_raw_fd(), libc::getpid());
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != parent.as_raw() {
            // rsops died before the request above took effect.
            libc::_exit(128 + libc::SIGTERM);
        }
        inherited.restore(caught);
    } else {
        inherited.restore(&[]);
    }
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    libc::execve(program.path.as_ptr(), program.argv.as_ptr(), envp.as_ptr());
    let mut errno = *libc::__errno_location();
    if errno == libc::ENOEXEC && !program.script.is_empty() {
        // A script without `#!`: execvp runs it with the shell.
        libc::execve(SHELL.as_ptr(), program.script.as_ptr(), envp.as_ptr());
        errno = *libc::__errno_location();
    }
    let bytes = errno.to_ne_bytes();
    libc::write(report, bytes.as_ptr().cast(), bytes.len());
    libc::_exit(127)
}

fn spawn_error(e: Errno) -> ExecError {
    ExecError::Spawn(e.into())
}

/// Replaces rsops with the program (`--same-process`); returns only on failure.
pub(crate) fn exec_replace(program: &Program, env: &EnvBlock, inherited: &Inherited) -> ExecError {
    let pointers = program.pointers();
    let envp = env.pointers();
    inherited.restore(&[]);
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: every pointer array is null-terminated and points into
    // `program` and `env`, which outlive the calls.
    unsafe {
        libc::execve(
            pointers.path.as_ptr(),
            pointers.argv.as_ptr(),
            envp.as_ptr(),
        );
        let mut errno = Errno::last();
        if errno == Errno::ENOEXEC && !pointers.script.is_empty() {
            libc::execve(SHELL.as_ptr(), pointers.script.as_ptr(), envp.as_ptr());
            errno = Errno::last();
        }
        program.exec_error(errno)
    }
}
