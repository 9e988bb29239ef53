//! Waiting for the command while forwarding the signals rsops is sent.
//!
//! An MCP client stops a server by signalling the process it started —
//! rsops. The reference forwards nothing, so the server lives on and a
//! `--no-fifo` file stays behind. rsops passes SIGHUP, SIGINT, SIGQUIT,
//! SIGTERM, SIGUSR1, SIGUSR2 and SIGWINCH on to the command, keeps waiting,
//! and exits with the command's own status.
//!
//! Signals the kernel sends — Ctrl-C, a terminal resize or hang-up — go to
//! the whole foreground process group, the command included, so forwarding
//! those would deliver them twice; they are not forwarded. Neither is a
//! signal the command sent rsops itself.

use std::thread;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::Cause;

use super::ExecError;

/// The signals rsops passes on to the command.
pub(crate) const FORWARDED: [i32; 7] =
    [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH];

/// Catches [`FORWARDED`] from the moment it is installed, so none of them can
/// kill rsops between creating a temporary file and the command's end.
pub(crate) struct Supervisor {
    signals: SignalsInfo<WithOrigin>,
}

impl Supervisor {
    /// Installs the handlers. Signals caught before the command starts are
    /// forwarded to it once it runs.
    pub(crate) fn install() -> Result<Supervisor, ExecError> {
        let signals = SignalsInfo::<WithOrigin>::new(FORWARDED).map_err(ExecError::Signals)?;
        Ok(Supervisor { signals })
    }

    /// Forwards signals to `child` until it exits, then returns the exit
    /// code rsops should use: the child's, or 128+N if signal N killed it.
    pub(crate) fn wait(mut self, child: Pid) -> Result<u8, ExecError> {
        let handle = self.signals.handle();
        // The watcher waits without reaping, so `child` stays a valid target
        // for `kill` until the loop below has stopped forwarding.
        let watcher = thread::Builder::new()
            .name("rsops-wait".into())
            .spawn(move || {
                let exited = wait_for_exit(child);
                handle.close();
                exited
            });
        let watcher = match watcher {
            Ok(watcher) => watcher,
            Err(_) => return reap(child),
        };
        for origin in self.signals.forever() {
            let sender = origin.process.map(|p| p.pid);
            if should_forward(origin.cause, sender, child.as_raw()) {
                if let Ok(signal) = Signal::try_from(origin.signal) {
                    let _ = kill(child, signal);
                }
            }
        }
        match watcher.join() {
            Ok(Err(e)) => Err(ExecError::Wait(e.into())),
            _ => reap(child),
        }
    }
}

/// Forward a signal unless the kernel sent it to the whole process group
/// (the child has it already) or the child sent it itself.
fn should_forward(cause: Cause, sender: Option<i32>, child: i32) -> bool {
    cause != Cause::Kernel && sender != Some(child)
}

/// Blocks until `child` has exited, leaving it to be reaped.
fn wait_for_exit(child: Pid) -> nix::Result<()> {
    loop {
        match waitid(Id::Pid(child), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Err(Errno::EINTR) => continue,
            other => return other.map(drop),
        }
    }
}

/// Reaps `child` and turns its status into rsops' exit code.
fn reap(child: Pid) -> Result<u8, ExecError> {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(u8::try_from(code).unwrap_or(1)),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128u8.saturating_add(signal as u8)),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(ExecError::Wait(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signal_hook::low_level::siginfo::Sent;

    #[test]
    fn signals_the_group_already_got_are_not_forwarded() {
        assert!(should_forward(Cause::Sent(Sent::User), Some(1), 42));
        assert!(should_forward(Cause::Sent(Sent::User), None, 42));
        assert!(!should_forward(Cause::Kernel, None, 42));
        assert!(!should_forward(Cause::Sent(Sent::User), Some(42), 42));
        assert!(should_forward(Cause::Unknown, None, 42));
    }
}
