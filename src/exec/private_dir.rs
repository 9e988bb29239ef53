//! The fresh 0700 directory under `$TMPDIR` that holds `exec-file`'s FIFO or
//! file, so no other user can even see the name, and removing one directory
//! cleans up everything.

use std::fs::{OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::ExecError;

/// The directory; removed when dropped (error paths), or by [`PrivateDir::remove`].
pub(crate) struct PrivateDir(tempfile::TempDir);

impl PrivateDir {
    /// Creates `$TMPDIR/.rsopsXXXXXX`, mode 0700 whatever the umask.
    pub(crate) fn create() -> Result<PrivateDir, ExecError> {
        let parent = std::env::temp_dir();
        let fail = |source| ExecError::TempDir {
            dir: parent.clone(),
            source,
        };
        let dir = tempfile::Builder::new()
            .prefix(".rsops")
            .permissions(Permissions::from_mode(0o700))
            .tempdir_in(&parent)
            .map_err(fail)?;
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o700)).map_err(fail)?;
        Ok(PrivateDir(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        self.0.path()
    }

    /// Removes the directory and everything in it, reporting failure.
    pub(crate) fn remove(self) -> Result<(), ExecError> {
        let dir = self.0.path().to_path_buf();
        self.0
            .close()
            .map_err(|source| ExecError::Cleanup { dir, source })
    }
}

/// Writes `plaintext` to a new file at `path` that only the owner can read (`--no-fifo`).
pub(crate) fn write_private_file(path: &Path, plaintext: &[u8]) -> Result<(), ExecError> {
    let fail = |source| ExecError::SecretFile {
        path: PathBuf::from(path),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.set_permissions(Permissions::from_mode(0o600))
        .map_err(fail)?;
    file.write_all(plaintext).map_err(fail)
}
