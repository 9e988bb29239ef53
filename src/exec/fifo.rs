//! Serving `exec-file`'s plaintext through a FIFO, so it never touches a disk.
//!
//! The reference writes the FIFO once from a goroutine: a program that opens
//! the path a second time blocks forever, and a program that never opens it
//! leaves sops hanging. Here a thread waits for each reader, hands it the
//! whole plaintext, and is stopped (without waiting for readers) as soon as
//! the command has exited.
//!
//! Every reader gets a pipe of its own: the moment one opens the path, a
//! fresh FIFO made in advance is renamed over it, so the next open cannot
//! join the first reader's pipe and read a second copy mixed into the first.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use zeroize::Zeroizing;

use super::ExecError;

/// How long [`FifoServer`]'s drop keeps unblocking the waiting thread before
/// leaving it behind. It only runs out if something removed the FIFO while
/// the thread waited in `open` on it, which nothing can then unblock.
const STOP_ATTEMPTS: u32 = 200;
const STOP_INTERVAL: Duration = Duration::from_millis(5);

/// A FIFO at a path, answering every open with the whole plaintext until dropped.
pub(crate) struct FifoServer {
    path: PathBuf,
    stop: Arc<Stop>,
    acceptor: Option<JoinHandle<()>>,
    finished: mpsc::Receiver<()>,
}

/// Tells the threads to stop: a flag for the acceptor, and a pipe that wakes
/// writers waiting in `poll` for a slow reader.
struct Stop {
    flag: AtomicBool,
    wake_read: OwnedFd,
    wake_write: OwnedFd,
}

impl Stop {
    fn new() -> nix::Result<Stop> {
        let (wake_read, wake_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        Ok(Stop {
            flag: AtomicBool::new(false),
            wake_read,
            wake_write,
        })
    }

    fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = nix::unistd::write(&self.wake_write, b"x");
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

impl FifoServer {
    /// Makes the FIFO (mode 0600) at `path` and starts serving `plaintext` on it.
    pub(crate) fn start(
        path: &Path,
        plaintext: Zeroizing<Vec<u8>>,
    ) -> Result<FifoServer, ExecError> {
        let fail = |e: std::io::Error| ExecError::SecretFile {
            path: path.to_path_buf(),
            source: e,
        };
        make_fifo(path).map_err(fail)?;
        let stop = Arc::new(Stop::new().map_err(|e| fail(e.into()))?);
        let (done, finished) = mpsc::channel::<()>();
        let acceptor = {
            let path = path.to_path_buf();
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("rsops-fifo".into())
                .spawn(move || {
                    accept(&path, &plaintext, &stop);
                    drop(done);
                })
                .map_err(fail)?
        };
        Ok(FifoServer {
            path: path.to_path_buf(),
            stop,
            acceptor: Some(acceptor),
            finished,
        })
    }
}

impl Drop for FifoServer {
    /// Stops serving: wakes the writers, and unblocks the acceptor's `open`
    /// by opening the FIFO as a reader ourselves (it then sees the flag and
    /// quits without writing).
    fn drop(&mut self) {
        self.stop.set();
        let mut kick = None;
        for _ in 0..STOP_ATTEMPTS {
            kick = open(
                &self.path,
                OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok();
            match self.finished.recv_timeout(STOP_INTERVAL) {
                Err(RecvTimeoutError::Timeout) => continue,
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                    if let Some(acceptor) = self.acceptor.take() {
                        let _ = acceptor.join();
                    }
                    break;
                }
            }
        }
        drop(kick);
    }
}

/// Makes a FIFO readable and writable by the owner only, whatever the umask.
fn make_fifo(path: &Path) -> std::io::Result<()> {
    nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
}

/// The name of the FIFO made in advance for the next reader, beside `path`.
fn staging_path(path: &Path) -> PathBuf {
    let name = if path.file_name().is_some_and(|n| n == ".rsops-next") {
        ".rsops-next-fifo"
    } else {
        ".rsops-next"
    };
    path.with_file_name(name)
}

/// Waits for readers one after another and starts a writer for each.
fn accept(path: &Path, plaintext: &[u8], stop: &Stop) {
    // A reader that goes away mid-write must make `write` fail with EPIPE,
    // not kill rsops with SIGPIPE (writers inherit this mask).
    let _ = pthread_sigmask(
        SigmaskHow::SIG_BLOCK,
        Some(&SigSet::from(Signal::SIGPIPE)),
        None,
    );
    let staging = staging_path(path);
    thread::scope(|scope| {
        while !stop.is_set() {
            match make_fifo(&staging) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(_) => break,
            }
            let fd = match open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            };
            if stop.is_set() {
                break;
            }
            if std::fs::rename(&staging, path).is_err() {
                // Later opens would join this reader's pipe: serve this
                // one and no more.
                write_all(fd, plaintext, stop);
                break;
            }
            let spawned = thread::Builder::new().spawn_scoped(scope, {
                let fd = fd.try_clone();
                move || {
                    if let Ok(fd) = fd {
                        write_all(fd, plaintext, stop);
                    }
                }
            });
            if spawned.is_err() {
                write_all(fd, plaintext, stop);
            }
        }
    });
    let _ = std::fs::remove_file(&staging);
}

/// Writes the whole plaintext to one reader, then closes its pipe so it
/// sees end-of-file. Gives up when the reader goes away or on stop.
fn write_all(fd: OwnedFd, plaintext: &[u8], stop: &Stop) {
    let nonblocking = fcntl(fd.as_fd(), FcntlArg::F_GETFL)
        .map(|flags| OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK)
        .and_then(|flags| fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags)));
    if nonblocking.is_err() {
        return;
    }
    let mut written = 0;
    while written < plaintext.len() && !stop.is_set() {
        match nix::unistd::write(&fd, &plaintext[written..]) {
            Ok(n) => written += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [
                    PollFd::new(fd.as_fd(), PollFlags::POLLOUT),
                    PollFd::new(stop.wake_read.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(_) => return,
                }
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn read_all(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut out))
            .map(|_| out)
            .unwrap_or_default()
    }

    #[test]
    fn every_open_reads_the_whole_plaintext() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        // Bigger than a pipe buffer, so writes really block on the reader.
        let plaintext: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let server = FifoServer::start(&path, Zeroizing::new(plaintext.clone())).expect("start");
        for _ in 0..3 {
            assert_eq!(read_all(&path), plaintext);
        }
        drop(server);
    }

    #[test]
    fn stops_without_any_reader() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        let server = FifoServer::start(&path, Zeroizing::new(b"secret".to_vec())).expect("start");
        drop(server);
    }

    #[test]
    fn stops_while_a_reader_holds_the_pipe_without_reading() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        let server = FifoServer::start(&path, Zeroizing::new(vec![7; 300_000])).expect("start");
        let reader = std::fs::File::open(&path).expect("open");
        drop(server);
        drop(reader);
    }

    #[test]
    fn the_fifo_is_private() {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        let server = FifoServer::start(&path, Zeroizing::new(b"x".to_vec())).expect("start");
        let meta = std::fs::metadata(&path).expect("stat");
        assert!(meta.file_type().is_fifo());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        drop(server);
    }
}
