//! Time and threads: the blocking part of an attempt (a plugin, scrypt, a
//! prompt) runs on a thread of its own, and an attempt that is no longer
//! wanted — its deadline passed, or the data key came from elsewhere —
//! stops what that thread started.
//!
//! Not the runtime's blocking pool: a plugin may wait minutes for a touch,
//! and the runtime would wait for it on shutdown.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rsops_keysource::{Deadline, KeyError};
use tokio::sync::oneshot;

/// `work`, unless `deadline` passes first: `None` then, and `work` is
/// dropped (a key command with it, killed on drop). A deadline already
/// past starts nothing. Without a deadline, `work` runs to the end.
pub(crate) async fn by<F: Future>(deadline: Deadline, work: F) -> Option<F::Output> {
    match deadline.remaining() {
        None => Some(work.await),
        Some(left) if left.is_zero() => None,
        Some(left) => tokio::time::timeout(left, work).await.ok(),
    }
}

/// Runs `work` on a thread of its own and waits for it, by `deadline`,
/// without blocking the async runtime. `Ok(None)`: the deadline passed.
///
/// `work` gets a cancel flag, set when the attempt is withdrawn (the
/// deadline passed, or this future was dropped): any prompt then gives up,
/// and the plugins the thread started are killed, as key commands and gpg
/// are. The thread itself is left to finish on its own.
pub(crate) async fn off_thread<F, T>(deadline: Deadline, work: F) -> Result<Option<T>, KeyError>
where
    F: FnOnce(Arc<AtomicBool>) -> T + Send + 'static,
    T: Send + 'static,
{
    if deadline.remaining().is_some_and(|left| left.is_zero()) {
        return Ok(None);
    }
    let mut withdraw = Withdraw {
        cancel: Arc::new(AtomicBool::new(false)),
        thread: Arc::new(Mutex::new(None)),
        armed: true,
    };
    let cancel = withdraw.cancel.clone();
    let slot = withdraw.thread.clone();
    let (send, receive) = oneshot::channel();
    std::thread::Builder::new()
        .name("rsops-age".into())
        .spawn(move || {
            let _registered = Registered::new(slot);
            // The receiver is gone only if the attempt was withdrawn.
            let _ = send.send(work(cancel));
        })
        .map_err(|e| {
            withdraw.armed = false;
            KeyError::unreachable(format!("cannot start a thread for age decryption: {e}"))
        })?;
    match by(deadline, receive).await {
        None => Ok(None),
        Some(result) => {
            // Done, or dead: either way nothing of this attempt is left to stop.
            withdraw.armed = false;
            result.map(Some).map_err(|_| {
                KeyError::unreachable("the age decryption thread stopped unexpectedly")
            })
        }
    }
}

/// Where a worker thread's children are listed (`/proc/PID/task/TID`),
/// while the thread is alive; `None` once it finished.
type ThreadSlot = Arc<Mutex<Option<PathBuf>>>;

/// Registers the worker thread in its slot for as long as it runs, panics
/// included, so a withdrawal never lists another thread's children (thread
/// IDs are reused).
struct Registered(ThreadSlot);

impl Registered {
    fn new(slot: ThreadSlot) -> Registered {
        // Linux names the calling thread here; elsewhere there is nothing to
        // read, and plugins are left to exit on their own.
        let me = std::fs::read_link("/proc/thread-self").ok();
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = me;
        Registered(slot)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Withdraws the attempt when dropped while still armed.
struct Withdraw {
    cancel: Arc<AtomicBool>,
    thread: ThreadSlot,
    armed: bool,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.cancel.store(true, Ordering::SeqCst);
        // Held while killing: the thread cannot finish and give its ID away
        // meanwhile.
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(thread) = thread.as_deref() {
            kill_children(thread);
        }
    }
}

/// Kills the processes `thread` (`PID/task/TID` under `/proc`) started: on
/// the worker thread, only age plugins. age 0.12 keeps no handle on a
/// plugin process, but Linux lists each thread's children; a plugin that
/// exited stays listed as a zombie (age never waits for it), so a listed
/// process ID cannot belong to anyone else yet.
fn kill_children(thread: &Path) {
    let list = Path::new("/proc").join(thread).join("children");
    let Ok(children) = std::fs::read_to_string(list) else {
        return;
    };
    for pid in children
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        // 0 and negative IDs name process groups, never a child.
        if pid > 0 {
            // An error means it is gone already: nothing left to stop.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_passed_deadline_starts_nothing() {
        let started = Arc::new(AtomicBool::new(false));
        let flag = started.clone();
        let past = Deadline::after(Duration::ZERO);
        let outcome = by(past, async move { flag.store(true, Ordering::SeqCst) }).await;
        assert!(outcome.is_none());
        assert!(!started.load(Ordering::SeqCst));
        assert_eq!(by(Deadline::NONE, async { 7 }).await, Some(7));
    }

    #[tokio::test]
    async fn a_withdrawn_worker_is_told_and_its_children_killed() {
        let (pid_send, pid_receive) = std::sync::mpsc::channel();
        let (cancel_send, cancel_receive) = std::sync::mpsc::channel();
        let deadline = Deadline::after(Duration::from_secs(1));
        let outcome = off_thread(deadline, move |cancel| {
            let child = std::process::Command::new("sleep").arg("600").spawn();
            let _ = pid_send.send(child.as_ref().map(|c| c.id()).ok());
            // Block like a plugin waiting for a touch, until withdrawn.
            while !cancel.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = cancel_send.send(());
            child.ok()
        })
        .await;
        assert!(matches!(outcome, Ok(None)));
        let pid = pid_receive.recv().ok().flatten().expect("sleep started");
        cancel_receive
            .recv_timeout(Duration::from_secs(60))
            .expect("the worker saw the cancel flag");
        assert!(dies(pid), "the worker's child still runs");
    }

    /// Waits (a liveness guard, not a timing assertion) for process `pid` to
    /// be dead: a zombie nobody reaped, or gone.
    fn dies(pid: u32) -> bool {
        for _ in 0..600 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            if matches!(state, None | Some("Z") | Some("X")) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}
