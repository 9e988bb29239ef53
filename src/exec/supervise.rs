//! Waiting for the command while forwarding the signals rsops is sent, so
//! that every signal reaches the command exactly once and nothing of it
//! outlives rsops.
//!
//! The command runs in a process group of its own (see `spawn`), and rsops
//! forwards SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 and SIGWINCH
//! to that whole group: `/bin/sh` may be dash, which forks even a single
//! command, so signalling the shell alone would leave the real command
//! running with the secrets. A signal sent to rsops' own group reaches only
//! rsops, which forwards it once. Signals rsops' parent set to be ignored
//! stay ignored for both (`nohup`), and are not forwarded.
//!
//! After SIGTERM the command has `--kill-after` to exit before its group is
//! sent SIGKILL. When the shell has exited, whatever is left of its group is
//! sent SIGTERM (unless it was just asked to stop), then SIGKILL after the
//! same grace. rsops is a child subreaper meanwhile, so the command's orphans
//! are reaped here and cannot linger as zombies that look alive.
//!
//! In a terminal's foreground, the command's group gets the foreground
//! (see `terminal`): Ctrl-C reaches it directly, and Ctrl-Z stops it and
//! then rsops, so the shell sees its job stop; `fg` continues both.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, raise, signal, SigHandler, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::{getpgid, Pid};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};
use signal_hook::low_level::siginfo::Cause;

use super::inherited::Inherited;
use super::program::Program;
use super::spawn::{spawn, Placement};
use super::terminal::Terminal;
use super::EnvBlock;
use super::ExecError;

/// The signals rsops passes on to the command.
const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Signals after which the command is expected to end: once one was
/// forwarded, leftovers of the group are not sent another SIGTERM.
const STOPPING: [Signal; 4] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
];

/// How often the group is checked for survivors after the shell exited.
const SURVIVOR_POLL: Duration = Duration::from_millis(10);

/// How long rsops waits for a group it sent SIGKILL to disappear.
const AFTER_KILL: Duration = Duration::from_secs(2);

/// Something the wait loop reacts to.
enum Event {
    /// rsops was sent a signal.
    Signal {
        signal: Signal,
        cause: Cause,
        sender: Option<Pid>,
    },
    /// The shell was stopped (Ctrl-Z, SIGSTOP, a background read).
    Stopped,
    /// The shell exited; rsops' exit code.
    Exited(u8),
    /// Waiting for the shell failed.
    Lost(Errno),
}

/// Catches the forwarded signals from the moment it is installed, so none
/// of them can kill rsops between creating a temporary file and the
/// command's end. Signals caught before the command starts are forwarded
/// to it once it runs.
pub(crate) struct Supervisor {
    caught: Vec<Signal>,
    handle: Handle,
    events: Receiver<Event>,
    sender: Sender<Event>,
}

impl Supervisor {
    /// Installs the handlers, except for signals `inherited` says are ignored.
    pub(crate) fn install(inherited: &Inherited) -> Result<Supervisor, ExecError> {
        let mut caught: Vec<Signal> = FORWARDED
            .into_iter()
            .filter(|&s| !inherited.ignores(s))
            .collect();
        // SIGCONT is how `fg` tells rsops to continue the command too.
        caught.push(Signal::SIGCONT);
        // An inherited ignored SIGCHLD makes the kernel reap children by
        // itself, and the command's exit code would be lost.
        if inherited.ignores(Signal::SIGCHLD) {
            // SAFETY: installing SIG_DFL runs no Rust code.
            unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) }
                .map_err(|e| ExecError::Signals(e.into()))?;
        }
        let mut signals = SignalsInfo::<WithOrigin>::new(caught.iter().map(|&s| s as i32))
            .map_err(ExecError::Signals)?;
        let handle = signals.handle();
        let (sender, events) = mpsc::channel();
        let forward = sender.clone();
        thread::Builder::new()
            .name("rsops-signals".into())
            .spawn(move || {
                for origin in signals.forever() {
                    let Ok(signal) = Signal::try_from(origin.signal) else {
                        continue;
                    };
                    let event = Event::Signal {
                        signal,
                        cause: origin.cause,
                        sender: origin.process.map(|p| Pid::from_raw(p.pid)),
                    };
                    if forward.send(event).is_err() {
                        break;
                    }
                }
            })
            .map_err(ExecError::Signals)?;
        Ok(Supervisor {
            caught,
            handle,
            events,
            sender,
        })
    }

    /// Starts the command (the shell, or the argv form's program) in a
    /// group of its own, forwards signals to it until it exits, makes sure
    /// nothing of the group survives, and returns the exit code rsops should
    /// use: the command's, or 128+N if signal N killed it.
    pub(crate) fn run(
        self,
        program: &Program,
        env: EnvBlock,
        inherited: &Inherited,
        kill_after: Duration,
    ) -> Result<u8, ExecError> {
        let _ = nix::sys::prctl::set_child_subreaper(true);
        let terminal = Terminal::foreground();
        let placement = Placement::Supervised {
            terminal: terminal.as_ref().map(Terminal::fd),
            caught: &self.caught,
        };
        let shell = spawn(program, &env, inherited, placement)?;
        drop(env);
        if let Some(terminal) = &terminal {
            terminal.hand_to(shell);
        }
        watch_children(shell, self.sender.clone())?;
        let mut group = Group {
            id: shell,
            terminal,
            stop_requested: false,
            deadline: None,
            killed: false,
            kill_after,
        };
        let code = group.wait_for_shell(&self.events);
        group.clear_out(&self.events);
        if let Some(terminal) = &group.terminal {
            terminal.take_back();
        }
        self.handle.close();
        code
    }
}

/// Reaps the command's group from a thread of its own: the shell (its
/// state changes become events) and, rsops being a subreaper, the orphans
/// left in its group. Only that group: a thread still reaping for an
/// earlier command (`edit` runs the editor again after unusable text) must
/// never take the next command's exit, which would leave rsops waiting
/// for an event that never comes. The parent sets the group before this
/// starts, so the first wait always finds the shell.
fn watch_children(shell: Pid, events: Sender<Event>) -> Result<(), ExecError> {
    thread::Builder::new()
        .name("rsops-wait".into())
        .spawn(move || loop {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WSTOPPED;
            let event = match waitid(Id::PGid(shell), flags) {
                Ok(WaitStatus::Exited(pid, code)) if pid == shell => {
                    Event::Exited(u8::try_from(code).unwrap_or(1))
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid == shell => {
                    Event::Exited(128u8.saturating_add(signal as u8))
                }
                Ok(WaitStatus::Stopped(pid, _)) if pid == shell => Event::Stopped,
                Ok(_) | Err(Errno::EINTR) => continue,
                // Nothing left of the group: the shell's exit was reported.
                Err(Errno::ECHILD) => return,
                Err(e) => Event::Lost(e),
            };
            if events.send(event).is_err() {
                return;
            }
        })
        .map(drop)
        .map_err(ExecError::Signals)
}

/// The command's process group, as the wait loop tracks it.
struct Group {
    /// The group's id: the shell's pid.
    id: Pid,
    terminal: Option<Terminal>,
    /// A signal that asks a program to stop was forwarded.
    stop_requested: bool,
    /// When the group is sent SIGKILL.
    deadline: Option<Instant>,
    /// The group was sent SIGKILL.
    killed: bool,
    kill_after: Duration,
}

impl Group {
    /// Forwards signals and follows the shell until it exits.
    fn wait_for_shell(&mut self, events: &Receiver<Event>) -> Result<u8, ExecError> {
        loop {
            let event = match self.deadline {
                None => events.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(deadline) => {
                    events.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                }
            };
            match event {
                Ok(Event::Signal {
                    signal,
                    cause,
                    sender,
                }) => self.on_signal(signal, cause, sender),
                Ok(Event::Stopped) => self.on_stop(),
                Ok(Event::Exited(code)) => return Ok(code),
                Ok(Event::Lost(e)) => return Err(ExecError::Wait(e.into())),
                Err(RecvTimeoutError::Timeout) if !self.killed => self.kill(),
                // The shell survived SIGKILL (stuck in the kernel): wait on.
                Err(RecvTimeoutError::Timeout) => self.deadline = None,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(ExecError::Wait(std::io::Error::other(
                        "the thread waiting for the command stopped",
                    )))
                }
            }
        }
    }

    fn on_signal(&mut self, signal: Signal, cause: Cause, sender: Option<Pid>) {
        if signal == Signal::SIGCONT {
            self.resume();
            return;
        }
        // The kernel sends terminal signals to the foreground group, which
        // is the command's while rsops manages the terminal: it has this one.
        let from_terminal = cause == Cause::Kernel && self.terminal.is_some();
        if from_terminal || sender.is_some_and(|p| self.contains(p)) {
            return;
        }
        let _ = killpg(self.id, signal);
        if STOPPING.contains(&signal) {
            self.stop_requested = true;
        }
        if signal == Signal::SIGTERM && self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.kill_after);
        }
    }

    /// Whether `pid` belongs to the command's group (the command signalling
    /// rsops must not get its own signal back).
    fn contains(&self, pid: Pid) -> bool {
        pid == self.id || getpgid(Some(pid)).is_ok_and(|g| g == self.id)
    }

    /// The shell stopped. If it held the terminal, the user pressed Ctrl-Z
    /// (or it read the keyboard in the background): take the terminal back
    /// and stop rsops too, so the user's shell sees its job stop.
    fn on_stop(&mut self) {
        let Some(terminal) = &self.terminal else {
            return;
        };
        terminal.take_back();
        // SIGTSTP, not SIGSTOP: in an orphaned process group, where nobody
        // could continue rsops, the kernel discards it.
        let _ = raise(Signal::SIGTSTP);
        self.resume();
    }

    /// rsops was continued: give the terminal back to the command if rsops
    /// is in the foreground again, and continue the command.
    fn resume(&self) {
        if let Some(terminal) = &self.terminal {
            if terminal.owned_by(nix::unistd::getpgrp()) {
                terminal.hand_to(self.id);
            }
        }
        let _ = killpg(self.id, Signal::SIGCONT);
    }

    /// After the shell exited: ends whatever is left of its group, SIGTERM
    /// first (unless the group was just asked to stop), SIGKILL at the
    /// deadline, and waits until nothing is left.
    fn clear_out(&mut self, events: &Receiver<Event>) {
        if !self.alive() {
            return;
        }
        if !self.stop_requested {
            let _ = killpg(self.id, Signal::SIGTERM);
            let _ = killpg(self.id, Signal::SIGCONT);
        }
        if self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.kill_after);
        }
        while self.alive() {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                if self.killed {
                    // Only a process stuck in the kernel, or one that is not
                    // rsops' to signal, can be left.
                    return;
                }
                self.kill();
            }
            if let Ok(Event::Signal {
                signal,
                cause,
                sender,
            }) = events.recv_timeout(SURVIVOR_POLL)
            {
                if signal != Signal::SIGCONT {
                    self.on_signal(signal, cause, sender);
                }
            }
        }
    }

    /// Sends the group SIGKILL, and gives it [`AFTER_KILL`] to disappear.
    fn kill(&mut self) {
        let _ = killpg(self.id, Signal::SIGKILL);
        self.killed = true;
        self.deadline = Some(Instant::now() + AFTER_KILL);
    }

    /// Whether any process of the group is left.
    fn alive(&self) -> bool {
        !matches!(
            kill(Pid::from_raw(-self.id.as_raw()), None),
            Err(Errno::ESRCH)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopping_signals_are_forwarded_ones() {
        assert!(STOPPING.iter().all(|s| FORWARDED.contains(s)));
    }
}
