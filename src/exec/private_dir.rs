//! The fresh 0700 directory under `$TMPDIR` that holds `exec-file`'s file,
//! so no other user can even see its name, and removing one directory
//! cleans up everything.
//!
//! Only the directory's creation goes by name. Everything after works on
//! file descriptors — the checks, the mode, every entry made inside it, and
//! its removal — so nobody can swap a path component between two steps.
//! A `$TMPDIR` that other users can write to without the sticky bit is
//! refused outright: there anyone could rename the directory and put their
//! own in its place under the name the command is given.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{geteuid, symlinkat, unlinkat, UnlinkatFlags};

use super::ExecError;

/// How many names are tried before giving up (each collision is a 1 in
/// 2^60 chance unless someone is guessing).
const ATTEMPTS: usize = 16;

/// The directory. Removed by [`PrivateDir::remove`], or when dropped (error paths).
pub(crate) struct PrivateDir {
    parent: OwnedFd,
    name: OsString,
    fd: OwnedFd,
    /// The directory's identity, to recognise it by name at removal.
    id: (u64, u64),
    path: PathBuf,
    removed: bool,
}

impl PrivateDir {
    /// Creates `$TMPDIR/.rsopsXXXXXXXXXX` with a random name, mode 0700
    /// whatever the umask, and checks it is a directory rsops owns.
    pub(crate) fn create() -> Result<PrivateDir, ExecError> {
        let parent_path = absolute(std::env::temp_dir());
        let fail = |e: Errno| ExecError::TempDir {
            dir: parent_path.clone(),
            source: e.into(),
        };
        let parent = nix::fcntl::open(
            &parent_path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(fail)?;
        check_parent(&fstat(&parent).map_err(fail)?, &parent_path)?;
        let mut attempts = 0;
        let name = loop {
            let name = random_name().map_err(|e| ExecError::TempDir {
                dir: parent_path.clone(),
                source: e,
            })?;
            match mkdirat(&parent, name.as_os_str(), Mode::S_IRWXU) {
                Ok(()) => break name,
                Err(Errno::EEXIST) if attempts < ATTEMPTS => attempts += 1,
                Err(e) => return Err(fail(e)),
            }
        };
        let path = parent_path.join(&name);
        let fd = openat(
            &parent,
            name.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        let fd = match fd {
            Ok(fd) => fd,
            Err(e) => {
                let _ = unlinkat(&parent, name.as_os_str(), UnlinkatFlags::RemoveDir);
                return Err(fail(e));
            }
        };
        let stat = fstat(&fd).map_err(fail)?;
        let dir = PrivateDir {
            parent,
            name,
            fd,
            id: (stat.st_dev, stat.st_ino),
            path,
            removed: false,
        };
        if stat.st_uid != geteuid().as_raw() || !is_type(&stat, SFlag::S_IFDIR) {
            return Err(ExecError::TempDir {
                dir: parent_path,
                source: io::Error::other("the new directory was replaced by someone else's"),
            });
        }
        fchmod(&dir.fd, Mode::S_IRWXU).map_err(fail)?;
        Ok(dir)
    }

    /// The directory's path, as the command is given it.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes `name` inside the directory a symbolic link to `target`.
    pub(crate) fn link(&self, name: &str, target: &Path) -> Result<(), ExecError> {
        symlinkat(target, &self.fd, name).map_err(|e| self.entry_error(name, e))
    }

    /// Writes `plaintext`, given in parts, to a new file `name` inside the
    /// directory that only the owner can read (`--no-fifo`, `edit`).
    pub(crate) fn write_file(&self, name: &str, plaintext: &[&[u8]]) -> Result<(), ExecError> {
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .map_err(|e| self.entry_error(name, e))?;
        fchmod(&fd, Mode::S_IRUSR | Mode::S_IWUSR).map_err(|e| self.entry_error(name, e))?;
        for part in plaintext {
            let mut written = 0;
            while written < part.len() {
                match nix::unistd::write(&fd, &part[written..]) {
                    Ok(n) => written += n,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(self.entry_error(name, e)),
                }
            }
        }
        Ok(())
    }

    /// Reads the file `name` inside the directory (an editor may have
    /// replaced it by another file of that name), never following a
    /// symbolic link, into `room` (emptied first; it grows if too small).
    /// The bytes are wiped when dropped.
    pub(crate) fn read_file(
        &self,
        name: &str,
        room: zeroize::Zeroizing<Vec<u8>>,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, ExecError> {
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.entry_error(name, e))?;
        let size = fstat(&fd).map_err(|e| self.entry_error(name, e))?.st_size;
        // Room of the right size, so no copy is left behind by growth.
        let capacity = usize::try_from(size).unwrap_or(0).saturating_add(1);
        let mut bytes = room;
        bytes.clear();
        bytes.reserve(capacity);
        let mut file = std::fs::File::from(fd);
        io::Read::read_to_end(&mut file, &mut bytes).map_err(|source| ExecError::SecretFile {
            path: self.path.join(name),
            source,
        })?;
        Ok(bytes)
    }

    /// Removes everything inside the directory, keeping it.
    pub(crate) fn clear(&self) -> Result<(), ExecError> {
        empty(&self.fd).map_err(|e| self.cleanup_error(e))
    }

    fn cleanup_error(&self, e: Errno) -> ExecError {
        ExecError::Cleanup {
            dir: self.path.clone(),
            source: e.into(),
        }
    }

    fn entry_error(&self, name: &str, e: Errno) -> ExecError {
        ExecError::SecretFile {
            path: self.path.join(name),
            source: e.into(),
        }
    }

    /// Removes everything inside the directory, then the directory, never
    /// following a symbolic link. A directory the command removed or moved
    /// away itself is no error.
    pub(crate) fn remove(mut self) -> Result<(), ExecError> {
        self.removed = true;
        self.clear()?;
        let fail = |e: Errno| self.cleanup_error(e);
        match fstatat(
            &self.parent,
            self.name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(stat) if (stat.st_dev, stat.st_ino) == self.id => {}
            // Gone, or another entry under the name now: not ours to remove.
            Ok(_) | Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(fail(e)),
        }
        match unlinkat(
            &self.parent,
            self.name.as_os_str(),
            UnlinkatFlags::RemoveDir,
        ) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(fail(e)),
        }
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if !self.removed {
            let _ = empty(&self.fd);
            let _ = unlinkat(
                &self.parent,
                self.name.as_os_str(),
                UnlinkatFlags::RemoveDir,
            );
        }
    }
}

/// Refuses a parent directory that users other than its owner can write to
/// unless it has the sticky bit (as `/tmp` has).
fn check_parent(stat: &FileStat, path: &Path) -> Result<(), ExecError> {
    let mode = stat.st_mode;
    let shared = mode & (libc::S_IWGRP | libc::S_IWOTH) != 0;
    if shared && mode & libc::S_ISVTX == 0 {
        return Err(ExecError::UnsafeTempDir(path.to_path_buf()));
    }
    Ok(())
}

fn is_type(stat: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == kind
}

/// Removes every entry of the directory open at `dir`, depth first,
/// without following symbolic links.
fn empty(dir: &OwnedFd) -> nix::Result<()> {
    let reader = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut entries = Dir::from_fd(reader)?;
    let names: Vec<(OsString, Option<Type>)> = entries
        .iter()
        .filter_map(Result::ok)
        .map(|e| {
            (
                OsStr::from_bytes(e.file_name().to_bytes()).to_owned(),
                e.file_type(),
            )
        })
        .filter(|(name, _)| name != "." && name != "..")
        .collect();
    for (name, kind) in names {
        let is_dir = match kind {
            Some(kind) => kind == Type::Directory,
            None => fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|s| is_type(&s, SFlag::S_IFDIR)),
        };
        if is_dir {
            let sub = openat(
                dir,
                name.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            empty(&sub)?;
            unlinkat(dir.as_fd(), name.as_os_str(), UnlinkatFlags::RemoveDir)?;
        } else {
            match unlinkat(dir.as_fd(), name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// `.rsops` and ten random letters and digits.
fn random_name() -> io::Result<OsString> {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    let mut name = b".rsops".to_vec();
    name.extend(
        bytes
            .iter()
            .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()]),
    );
    Ok(OsStr::from_bytes(&name).to_owned())
}

/// `$TMPDIR` may be relative; the command may change directory.
fn absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        return path;
    }
    std::env::current_dir().map_or(path.clone(), |cwd| cwd.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn names_are_random_and_plain() {
        let a = random_name().unwrap_or_default();
        let b = random_name().unwrap_or_default();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a.to_string_lossy().starts_with(".rsops"));
    }

    #[test]
    fn a_shared_parent_needs_the_sticky_bit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let stat_with = |mode: u32| {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode))
                .expect("chmod");
            nix::sys::stat::stat(dir.path()).expect("stat")
        };
        assert!(check_parent(&stat_with(0o700), dir.path()).is_ok());
        assert!(check_parent(&stat_with(0o1777), dir.path()).is_ok());
        assert!(check_parent(&stat_with(0o777), dir.path()).is_err());
        assert!(check_parent(&stat_with(0o770), dir.path()).is_err());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
    }

    #[test]
    fn removal_never_follows_links_and_tolerates_a_removed_directory() {
        let outside = tempfile::tempdir().expect("temp dir");
        let victim = outside.path().join("keep");
        std::fs::write(&victim, "x").expect("write");
        let dir = PrivateDir::create().expect("create");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).expect("symlink");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/f"), "x").expect("write");
        let path = dir.path().to_path_buf();
        dir.remove().expect("remove");
        assert!(!path.exists());
        assert!(victim.exists());

        let dir = PrivateDir::create().expect("create");
        std::fs::remove_dir(dir.path()).expect("rmdir");
        assert!(dir.remove().is_ok());
    }
}
