//! `exec-file`'s plaintext as a sealed in-memory file, so it never touches
//! a disk and every reader gets all of it.
//!
//! The reference serves the plaintext through a FIFO, written once: a
//! program that opens the path twice blocks, and programs that open it at
//! the same moment share one pipe and each read a part. No FIFO can hand
//! concurrent readers a pipe each — there is no moment between a reader's
//! open and the next where the name could be swapped for certain.
//!
//! So rsops writes the plaintext into a memfd (RAM-backed, never on a
//! filesystem), seals it against any change, and makes the name the command
//! is given a symbolic link to `/proc/<rsops>/fd/<memfd>`. Opening that
//! link opens the memfd afresh: each open, at any moment, from any number
//! of programs, starts at offset 0 and reads the whole content; it can be
//! `stat`ed, seeked and mapped like a regular file. Like the FIFO it is
//! reachable only by rsops' user, and only while rsops runs: the link
//! dangles once rsops closed the memfd.
//!
//! rsops keeps no copy of the plaintext in its own memory while the command
//! runs: the buffer is wiped as soon as the memfd holds it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::stat::{fchmod, Mode};
use zeroize::Zeroizing;

/// The memfd; closed (and its memory freed) when dropped.
pub(crate) struct MemoryFile {
    fd: OwnedFd,
}

impl MemoryFile {
    /// Creates the memfd (mode 0600), writes `plaintext` into it, wipes
    /// `plaintext`, seals the memfd, and checks it can be opened by path.
    pub(crate) fn create(plaintext: Zeroizing<Vec<u8>>) -> std::io::Result<MemoryFile> {
        let fd = memfd_create(
            c"rsops-secret",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )?;
        fchmod(&fd, Mode::S_IRUSR | Mode::S_IWUSR)?;
        let mut written = 0;
        while written < plaintext.len() {
            match nix::unistd::write(&fd, &plaintext[written..]) {
                Ok(n) => written += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        drop(plaintext);
        let seals = SealFlag::F_SEAL_WRITE
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_SEAL;
        fcntl(&fd, FcntlArg::F_ADD_SEALS(seals))?;
        let file = MemoryFile { fd };
        // A reader opens it through /proc: fail now, with a clear error,
        // where /proc is missing or hides rsops.
        nix::fcntl::open(
            &file.proc_path(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            std::io::Error::new(
                std::io::Error::from(e).kind(),
                format!(
                    "cannot open {}: {e} (is /proc mounted?)",
                    file.proc_path().display()
                ),
            )
        })?;
        Ok(file)
    }

    /// The path that opens the memfd afresh: `/proc/<rsops>/fd/<memfd>`.
    pub(crate) fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn read_all(path: &std::path::Path) -> Vec<u8> {
        let mut out = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut out))
            .map(|_| out)
            .unwrap_or_default()
    }

    #[test]
    fn every_open_reads_the_whole_plaintext_even_at_once() {
        let plaintext: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let file = MemoryFile::create(Zeroizing::new(plaintext.clone())).expect("memfd");
        let path = file.proc_path();
        let readers: Vec<_> = (0..6)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || read_all(&path))
            })
            .collect();
        for reader in readers {
            assert_eq!(reader.join().unwrap_or_default(), plaintext);
        }
        assert_eq!(read_all(&path), plaintext);
    }

    #[test]
    fn the_content_cannot_be_changed() {
        let file = MemoryFile::create(Zeroizing::new(b"secret".to_vec())).expect("memfd");
        let path = file.proc_path();
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"evil"));
        assert!(written.is_err());
        assert_eq!(read_all(&path), b"secret");
        let meta = std::fs::metadata(&path).expect("stat");
        assert_eq!(meta.len(), 6);
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600
        );
    }
}
