//! The terminal's foreground, when rsops runs in it.
//!
//! The command runs in a process group of its own, so signals reach it once
//! (see `supervise`). In a terminal that would make it a background job: a
//! read from the keyboard would stop it, and Ctrl-C would reach rsops
//! instead. So when rsops holds the terminal's foreground, it hands the
//! foreground to the command's group, as a shell does for a job, and takes
//! it back when the command stops (Ctrl-Z) or ends.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{getpgrp, tcgetpgrp, tcsetpgrp, Pid};

/// rsops' controlling terminal, opened while rsops is in its foreground.
pub(crate) struct Terminal {
    fd: OwnedFd,
}

impl Terminal {
    /// The controlling terminal if rsops' process group is its foreground
    /// group; `None` without a terminal (an MCP client's pipes) or in the
    /// background.
    pub(crate) fn foreground() -> Option<Terminal> {
        let fd = open(
            "/dev/tty",
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let terminal = Terminal { fd };
        terminal.owned_by(getpgrp()).then_some(terminal)
    }

    /// The descriptor, for the child to take the foreground itself.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether `group` is the terminal's foreground group.
    pub(crate) fn owned_by(&self, group: Pid) -> bool {
        tcgetpgrp(&self.fd).is_ok_and(|fg| fg == group)
    }

    /// Makes `group` the foreground group. rsops may be in the background
    /// when it does (it gave the terminal away): SIGTTOU is blocked so the
    /// kernel lets the call through instead of stopping rsops.
    pub(crate) fn hand_to(&self, group: Pid) {
        let ttou = SigSet::from(Signal::SIGTTOU);
        let mut previous = SigSet::empty();
        let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&ttou), Some(&mut previous));
        let _ = tcsetpgrp(&self.fd, group);
        if blocked.is_ok() {
            let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
        }
    }

    /// Gives the foreground back to rsops' own group.
    pub(crate) fn take_back(&self) {
        self.hand_to(getpgrp());
    }
}
