//! Running a command with a file's secrets: the library half of
//! `rsops exec-env` and `rsops exec-file`.
//!
//! This is what users put in an MCP server's configuration, so the child
//! must behave exactly as if the client had started it: it runs through
//! `/bin/sh -c` (sops' form) or is exec'd directly with the arguments it was
//! given (the argv form, see [`Invocation`]), keeps rsops' standard input, output and error untouched, and
//! rsops exits with its exit code. On top of what the reference does, rsops
//! forwards the signals it is sent to the command's whole process group
//! exactly once, leaves nothing of that group behind, serves `exec-file`'s
//! plaintext from memory to every reader, removes its temporary files on
//! every way out, and turns core dumps off while it holds plaintext.
//!
//! One job per module: [`env`] turns a document into variables and builds the
//! child's environment, [`placeholder`] puts the file's path into the command,
//! `private_dir` and `memory_file` hold the plaintext for `exec-file`,
//! `inherited` keeps what the command must get back, `program` prepares
//! what is exec'd (the shell, or a program found in `PATH`), `spawn` starts
//! it, `terminal` hands it the terminal, `supervise` forwards signals and
//! waits, [`user`] switches user.

pub mod env;
mod inherited;
mod memory_file;
pub mod placeholder;
mod private_dir;
mod program;
mod spawn;
mod supervise;
mod terminal;
pub mod user;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

pub use env::{variables, EnvBlock, EnvError, Inherit, Variable};
pub use inherited::Inherited;
pub use program::Invocation;
use program::Program;
pub use user::{switch_user, UserError};

/// The file name `exec-file` uses when `--filename` is not given (the reference's).
pub const DEFAULT_FILENAME: &str = "tmp-file";

/// Why the command could not be run. The command's own failure is not an
/// error: it is the exit code [`run`] and [`run_with_file`] return.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The command contains a NUL byte, which no `exec` can pass on.
    #[error("the command contains a NUL byte")]
    NulInCommand,
    /// The secret file's name is not a plain file name.
    #[error("`{0}` is not a plain file name")]
    BadFilename(String),
    /// The private temporary directory could not be created.
    #[error("cannot create a private directory in {dir}: {source}")]
    TempDir {
        /// The parent directory (`$TMPDIR`).
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `$TMPDIR` can be written by other users and lacks the sticky bit.
    #[error("refusing to put the decrypted file in {0}: other users can write to it and it lacks the sticky bit, so they could swap the file for their own or read it")]
    UnsafeTempDir(PathBuf),
    /// The file holding the plaintext could not be created.
    #[error("cannot create {path}: {source}")]
    SecretFile {
        /// The FIFO or file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The private temporary directory could not be removed.
    #[error("cannot remove {dir}: {source}")]
    Cleanup {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// rsops could not install the handlers it forwards signals with.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// `/bin/sh` could not be started.
    #[error("cannot start /bin/sh: {0}")]
    Spawn(std::io::Error),
    /// The argv form's program is in no directory of `PATH`, or the path
    /// it was given names nothing (a shell's 127).
    #[error("{program:?}: {}", if *searched { "no such program in PATH" } else { "no such file" })]
    NotFound {
        /// The program as given.
        program: String,
        /// Whether `PATH` was searched (the name has no `/`).
        searched: bool,
    },
    /// The argv form's program exists but cannot be executed (a shell's 126).
    #[error("cannot run {program:?}: {source}")]
    CannotRun {
        /// The program as given.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The argv form was given no program.
    #[error("no program to run after `--`")]
    NoProgram,
    /// Waiting for the command failed.
    #[error("cannot wait for the command: {0}")]
    Wait(std::io::Error),
}

/// Whether rsops waits for the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Wait, forward signals, and return the command's exit code.
    Foreground,
    /// Start the command and return 0 at once (the reference's deprecated `--background`).
    Background,
}

/// How `exec-file` offers the plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// In memory (the default, where the reference uses a FIFO): the
    /// plaintext never touches a disk, and every open of the path while the
    /// command runs — any number, at the same moment or not — reads the
    /// whole of it.
    Memory,
    /// A regular file (mode 0600), written to `$TMPDIR` (`--no-fifo`).
    Regular,
}

/// Starts commands the way the user's environment asked for, and stops
/// them completely.
pub struct Launcher {
    inherited: Inherited,
    kill_after: Duration,
}

impl Launcher {
    /// Records what the command must inherit and turns core dumps off for
    /// rsops. Call it before decrypting. `kill_after` is how long the
    /// command gets to exit after SIGTERM before its group is killed.
    pub fn new(kill_after: Duration) -> Launcher {
        Launcher {
            inherited: Inherited::capture(),
            kill_after,
        }
    }

    /// Runs `command` in the environment `env`: sops' string with
    /// `/bin/sh -c`, or the argv form's program, found in `env`'s `PATH`.
    ///
    /// With [`Wait::Foreground`] the signals rsops is sent are forwarded to
    /// the command's process group and the result is the command's exit
    /// code, or 128+N if a signal N killed it. `env` is wiped as soon as the
    /// command has started, so rsops holds no secret while it waits.
    pub fn run(&self, command: Invocation<'_>, env: EnvBlock, wait: Wait) -> Result<u8, ExecError> {
        scrub_stack();
        let command = match command {
            Invocation::Shell(command) => Program::shell(command)?,
            Invocation::Argv(args) => Program::argv(args, &env, None)?,
        };
        match wait {
            Wait::Background => {
                spawn::spawn(&command, &env, &self.inherited, spawn::Placement::Detached)?;
                Ok(0)
            }
            Wait::Foreground => {
                // Handlers first: a signal that arrives from here on is
                // forwarded instead of killing rsops.
                let supervisor = supervise::Supervisor::install(&self.inherited)?;
                supervisor.run(&command, env, &self.inherited, self.kill_after)
            }
        }
    }

    /// Runs `command` with every `{}` replaced by the path of a file holding
    /// `plaintext`, in a fresh 0700 directory under `$TMPDIR` (see
    /// [`placeholder`] for paths the shell would misread). In the argv form
    /// the `{}` of every argument after the program is replaced as it is;
    /// the program is found before anything is created.
    ///
    /// The directory is removed however this ends: the command exits or is
    /// killed, rsops is sent a signal (forwarded, then the same path), or
    /// the command cannot be started.
    pub fn run_with_file(
        &self,
        command: Invocation<'_>,
        plaintext: Zeroizing<Vec<u8>>,
        kind: FileKind,
        filename: &str,
        mut env: EnvBlock,
    ) -> Result<u8, ExecError> {
        check_filename(filename)?;
        scrub_stack();
        if let Invocation::Argv(args) = command {
            // Found now, so a missing program creates nothing.
            Program::argv(args, &env, None)?;
        }
        let supervisor = supervise::Supervisor::install(&self.inherited)?;
        let dir = private_dir::PrivateDir::create()?;
        let path = dir.path().join(filename);
        let memory = match kind {
            FileKind::Memory => {
                let file = memory_file::MemoryFile::create(plaintext).map_err(|source| {
                    ExecError::SecretFile {
                        path: path.clone(),
                        source,
                    }
                })?;
                dir.link(filename, &file.proc_path())?;
                Some(file)
            }
            FileKind::Regular => {
                dir.write_file(filename, &[&plaintext])?;
                drop(plaintext);
                None
            }
        };
        let path_bytes = path.as_os_str().as_bytes();
        let command = match command {
            Invocation::Shell(command) => {
                if placeholder::needs_variable(path_bytes) {
                    env.set(placeholder::PATH_VARIABLE.as_bytes(), path_bytes)
                        .map_err(|_| ExecError::NulInCommand)?;
                }
                Program::shell(&placeholder::substitute(command, path_bytes))
            }
            Invocation::Argv(args) => Program::argv(args, &env, Some(path_bytes)),
        };
        let code = command
            .and_then(|command| supervisor.run(&command, env, &self.inherited, self.kill_after));
        drop(memory);
        let removed = dir.remove();
        let code = code?;
        removed?;
        Ok(code)
    }

    /// Replaces rsops with the command (`--same-process`). Returns only if
    /// that fails.
    pub fn replace_process(&self, command: Invocation<'_>, env: &EnvBlock) -> ExecError {
        let program = match command {
            Invocation::Shell(command) => Program::shell(command),
            Invocation::Argv(args) => Program::argv(args, env, None),
        };
        match program {
            Ok(program) => spawn::exec_replace(&program, env, &self.inherited),
            Err(e) => e,
        }
    }
}

/// A plaintext file for an editor: `name` in a fresh 0700 directory under
/// `$TMPDIR`, mode 0600 (`rsops edit`). The directory, and whatever an
/// editor left in it (swap and backup files), is removed by
/// [`ScratchFile::remove`] or when this is dropped.
pub struct ScratchFile {
    dir: private_dir::PrivateDir,
    name: String,
}

impl ScratchFile {
    /// Creates the directory and writes `contents` to `name` inside it.
    pub fn create(
        name: &str,
        contents: &crate::formats::Printed,
    ) -> Result<ScratchFile, ExecError> {
        check_filename(name)?;
        let dir = private_dir::PrivateDir::create()?;
        dir.write_file(name, &contents.parts())?;
        Ok(ScratchFile {
            dir,
            name: name.to_string(),
        })
    }

    /// The file's path, as the editor is given it.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join(&self.name)
    }

    /// The file's bytes now (wiped when dropped), read into `room` (see
    /// [`room_for`]), which grows if too small.
    pub fn read(&self, room: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, ExecError> {
        self.dir.read_file(&self.name, room)
    }

    /// Removes the file (and whatever an editor left beside it), keeping
    /// the directory: `edit` does while it seals the text read back, since
    /// freeing a large file's blocks takes milliseconds.
    pub fn clear(&self) -> Result<(), ExecError> {
        self.dir.clear()
    }

    /// Writes the file again after [`ScratchFile::clear`], holding
    /// `contents`: the text to edit again.
    pub fn refill(&self, contents: &[u8]) -> Result<(), ExecError> {
        self.dir.write_file(&self.name, &[contents])
    }

    /// Removes the file and its directory.
    pub fn remove(self) -> Result<(), ExecError> {
        self.dir.remove()
    }
}

/// Room for reading back a file of about `len` bytes an editor changed:
/// memory the kernel has already mapped in, made on another thread while
/// the editor runs. Taking in fresh pages (the kernel zeroes each) costs
/// about as much as reading the file; made ahead, it is not waited for.
/// `None` for a small file.
pub fn room_for(len: usize) -> Option<std::thread::JoinHandle<Zeroizing<Vec<u8>>>> {
    (len >= ROOM_AHEAD).then(|| {
        std::thread::spawn(move || {
            // An edit seldom adds more than an eighth.
            let room = len + len / 8 + 4096;
            let mut bytes = Zeroizing::new(Vec::with_capacity(room));
            bytes.resize(room, 0);
            bytes.clear();
            bytes
        })
    })
}

/// From this size on, [`room_for`] makes room ahead.
const ROOM_AHEAD: usize = 256 * 1024;

/// Whether `name` is a program the argv form would find in `path` (a
/// `PATH` value): an executable file in one of its directories.
pub fn on_path(name: &str, path: &std::ffi::OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    program::find(name.as_bytes(), Some(path.as_bytes())).is_ok()
}

/// Checks that `name` is a plain file name: not empty, no `/`, not `.` or `..`.
pub fn check_filename(name: &str) -> Result<(), ExecError> {
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0']);
    if plain && Path::new(name).file_name().is_some() {
        Ok(())
    } else {
        Err(ExecError::BadFilename(name.to_string()))
    }
}

/// How much of the stack below the caller [`scrub_stack`] overwrites.
const STACK_SCRUB: usize = 256 * 1024;

/// Overwrites the stack below the caller's frame. Decryption's deeper
/// frames (a hasher's block buffer, a parser's scratch space) leave
/// plaintext there, which a debugger or a core dump would find while the
/// command runs for hours.
#[inline(never)]
fn scrub_stack() {
    let mut area = [0u8; STACK_SCRUB];
    zeroize::Zeroize::zeroize(&mut area[..]);
    std::hint::black_box(&area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_must_be_plain() {
        for good in ["tmp-file", "config.env", ".env", "a b", "..x"] {
            assert!(check_filename(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "/etc/passwd", "../x", "x/", "a\0b"] {
            assert!(check_filename(bad).is_err(), "{bad:?}");
        }
    }
}
