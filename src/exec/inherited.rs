//! What rsops inherited that the command must get back: the signals its
//! parent set to be ignored, and the core-dump size limit.
//!
//! rsops changes both for itself while it holds plaintext — it catches the
//! signals it forwards, and turns core dumps off so no crash or `kill -ABRT`
//! writes secrets to disk — and restores them in the command. A `nohup`ed
//! rsops therefore starts a command that still ignores SIGHUP, as sops does,
//! and the command may dump core as its user allows.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The state to restore in the command, captured before rsops changed it.
pub struct Inherited {
    ignored: SigSet,
    core_limit: Option<(libc::rlim_t, libc::rlim_t)>,
}

impl Inherited {
    /// Records which signals are ignored and the core-dump limit, then sets
    /// rsops' own soft core limit to zero. Call it before decrypting, and
    /// before any signal handler is installed.
    pub fn capture() -> Inherited {
        let mut ignored = SigSet::empty();
        for signal in Signal::iterator() {
            if is_ignored(signal) {
                ignored.add(signal);
            }
        }
        let core_limit = getrlimit(Resource::RLIMIT_CORE).ok();
        if let Some((_, hard)) = core_limit {
            // Only the soft limit: lowering the hard one could not be undone
            // for the command by an unprivileged rsops.
            let _ = setrlimit(Resource::RLIMIT_CORE, 0, hard);
        }
        Inherited {
            ignored,
            core_limit,
        }
    }

    /// Whether rsops' parent set `signal` to be ignored.
    pub(crate) fn ignores(&self, signal: Signal) -> bool {
        self.ignored.contains(signal)
    }

    /// Puts the inherited state back, in a freshly forked child or just
    /// before `--same-process` replaces rsops: the core limit, and the
    /// default action for the signals rsops catches (`caught`), SIGPIPE
    /// (which Rust programs ignore but shell pipelines rely on) and SIGCHLD
    /// (ignoring it would break the shell's own waiting). Signals the parent
    /// ignored stay ignored: rsops never touched them.
    ///
    /// Only async-signal-safe calls: this runs between `fork` and `exec`.
    pub(crate) fn restore(&self, caught: &[Signal]) {
        if let Some((soft, hard)) = self.core_limit {
            // SAFETY: setrlimit is a plain system call on a valid struct.
            unsafe {
                let limit = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &limit);
            }
        }
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        for &signal in caught.iter().chain(&[Signal::SIGPIPE, Signal::SIGCHLD]) {
            // SAFETY: installing SIG_DFL runs no Rust code.
            let _ = unsafe { sigaction(signal, &default) };
        }
    }
}

/// Whether `signal` is currently ignored (SIG_IGN).
fn is_ignored(signal: Signal) -> bool {
    if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
        return false;
    }
    // SAFETY: a null new action only reads the current one.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    let read = unsafe { libc::sigaction(signal as libc::c_int, std::ptr::null(), &mut current) };
    read == 0 && current.sa_sigaction == libc::SIG_IGN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_signals_are_recorded() {
        // The test harness ignores SIGPIPE (Rust's runtime does); SIGTERM
        // has its default action.
        let inherited = Inherited::capture();
        assert!(inherited.ignores(Signal::SIGPIPE));
        assert!(!inherited.ignores(Signal::SIGTERM));
        assert!(!inherited.ignores(Signal::SIGKILL));
    }
}
