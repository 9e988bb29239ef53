//! What the child execs, prepared in the parent: sops' single string through
//! `/bin/sh -c`, or a program and its arguments (the argv form, after `--`),
//! found in `PATH` as `execvp` finds it.
//!
//! The search runs before `fork`, in the `PATH` the child will get (after
//! `--pristine`/`--keep`, the `--user` variables and the secrets), so the
//! child only calls `execve` on a path and argument arrays made here. A
//! program that is found nowhere, or only where it cannot be executed, is an
//! error before anything is started or created, with the shell's exit codes
//! (127 and 126).

use std::ffi::{c_char, CStr, CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use super::env::EnvBlock;
use super::ExecError;

/// The shell of sops' form, and the one a script without `#!` runs in.
pub(crate) const SHELL: &CStr = c"/bin/sh";

/// The search path `execvp` (glibc) uses when the environment has no `PATH`.
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// What to run.
#[derive(Clone, Copy, Debug)]
pub enum Invocation<'a> {
    /// sops' form: one string, run with `/bin/sh -c`.
    Shell(&'a [u8]),
    /// The argv form: a program, looked up in `PATH` unless it contains a
    /// `/`, and its arguments, passed as they are.
    Argv(&'a [OsString]),
}

/// A program ready to be exec'd: its path and its arguments, NUL-terminated.
pub(crate) struct Program {
    /// The path `execve` gets.
    path: CString,
    /// The arguments, `argv[0]` as given.
    args: Vec<CString>,
    /// The name to report failures under; `None` for the shell.
    name: Option<String>,
}

/// The pointer arrays `execve` takes, built before `fork`.
pub(crate) struct Pointers<'a> {
    /// The program's path.
    pub(crate) path: &'a CStr,
    /// `argv`, null-terminated.
    pub(crate) argv: Vec<*const c_char>,
    /// `/bin/sh PATH ARGS…`, null-terminated, for a program the kernel
    /// cannot exec (`ENOEXEC`: a script without `#!`), as `execvp` does;
    /// empty for the shell form.
    pub(crate) script: Vec<*const c_char>,
}

impl Program {
    /// `/bin/sh -c command`.
    pub(crate) fn shell(command: &[u8]) -> Result<Program, ExecError> {
        Ok(Program {
            path: SHELL.to_owned(),
            args: vec![
                SHELL.to_owned(),
                c"-c".to_owned(),
                CString::new(command).map_err(|_| ExecError::NulInCommand)?,
            ],
            name: None,
        })
    }

    /// The argv form: `args[0]` found in `env`'s `PATH`, every `{}` in the
    /// arguments after it replaced with `file` when one is given.
    pub(crate) fn argv(
        args: &[OsString],
        env: &EnvBlock,
        file: Option<&[u8]>,
    ) -> Result<Program, ExecError> {
        let Some((program, rest)) = args.split_first() else {
            return Err(ExecError::NoProgram);
        };
        let program = program.as_bytes();
        let path = find(program, env.get("PATH"))?;
        let mut c_args = Vec::with_capacity(args.len());
        c_args.push(CString::new(program).map_err(|_| ExecError::NulInCommand)?);
        for arg in rest {
            let arg = match file {
                Some(file) => super::placeholder::replace_all(arg.as_bytes(), file),
                None => arg.as_bytes().to_vec(),
            };
            c_args.push(CString::new(arg).map_err(|_| ExecError::NulInCommand)?);
        }
        Ok(Program {
            path,
            args: c_args,
            name: Some(String::from_utf8_lossy(program).into_owned()),
        })
    }

    /// The pointer arrays for `execve`, pointing into `self`.
    pub(crate) fn pointers(&self) -> Pointers<'_> {
        let argv: Vec<*const c_char> = self
            .args
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let script = if self.name.is_some() {
            [SHELL.as_ptr(), self.path.as_ptr()]
                .into_iter()
                .chain(self.args[1..].iter().map(|a| a.as_ptr()))
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        } else {
            Vec::new()
        };
        Pointers {
            path: &self.path,
            argv,
            script,
        }
    }

    /// The error for an `execve` that failed with `errno`.
    pub(crate) fn exec_error(&self, errno: nix::errno::Errno) -> ExecError {
        match &self.name {
            None => ExecError::Spawn(errno.into()),
            Some(name) if errno == nix::errno::Errno::ENOENT => ExecError::NotFound {
                program: name.clone(),
                searched: false,
            },
            Some(name) => ExecError::CannotRun {
                program: name.clone(),
                source: errno.into(),
            },
        }
    }
}

/// Finds `program` as `execvp` does: a name with a `/` is used as it is;
/// otherwise each directory of `path` (default `/bin:/usr/bin`, an empty
/// entry meaning the current directory) is tried in turn, skipping
/// directories where the name is missing, and — remembered, for 126 —
/// where it is not an executable file.
pub(crate) fn find(program: &[u8], path: Option<&[u8]>) -> Result<CString, ExecError> {
    let name = || String::from_utf8_lossy(program).into_owned();
    if program.is_empty() {
        return Err(ExecError::NotFound {
            program: String::new(),
            searched: false,
        });
    }
    if program.contains(&b'/') {
        return match check(program) {
            Candidate::Executable => CString::new(program).map_err(|_| ExecError::NulInCommand),
            Candidate::Missing => Err(ExecError::NotFound {
                program: name(),
                searched: false,
            }),
            Candidate::NotExecutable(source) => Err(ExecError::CannotRun {
                program: name(),
                source,
            }),
        };
    }
    let mut denied = None;
    for dir in path.unwrap_or(DEFAULT_PATH).split(|&b| b == b':') {
        let mut candidate = Vec::with_capacity(dir.len() + program.len() + 1);
        if !dir.is_empty() {
            candidate.extend_from_slice(dir);
            if !dir.ends_with(b"/") {
                candidate.push(b'/');
            }
        }
        candidate.extend_from_slice(program);
        match check(&candidate) {
            Candidate::Executable => {
                return CString::new(candidate).map_err(|_| ExecError::NulInCommand)
            }
            Candidate::Missing => {}
            Candidate::NotExecutable(source) => {
                denied.get_or_insert(source);
            }
        }
    }
    Err(match denied {
        Some(source) => ExecError::CannotRun {
            program: name(),
            source,
        },
        None => ExecError::NotFound {
            program: name(),
            searched: true,
        },
    })
}

enum Candidate {
    Executable,
    Missing,
    NotExecutable(std::io::Error),
}

fn check(path: &[u8]) -> Candidate {
    let os_path = std::ffi::OsStr::from_bytes(path);
    let metadata = match std::fs::metadata(os_path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Candidate::NotExecutable(e)
        }
        Err(_) => return Candidate::Missing,
    };
    let denied = || std::io::Error::from_raw_os_error(libc::EACCES);
    if !metadata.is_file() || metadata.permissions().mode() & 0o111 == 0 {
        return Candidate::NotExecutable(denied());
    }
    let Ok(c_path) = CString::new(path) else {
        return Candidate::Missing;
    };
    // SAFETY: a NUL-terminated path; faccessat only reads it.
    let ok = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::X_OK,
            libc::AT_EACCESS,
        )
    } == 0;
    if ok {
        Candidate::Executable
    } else {
        Candidate::NotExecutable(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn dir_with(files: &[(&str, u32)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, mode) in files {
            let path = dir.path().join(name);
            fs::write(&path, b"#!/bin/sh\n").expect("write");
            fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).expect("chmod");
        }
        dir
    }

    fn path_of(dirs: &[&tempfile::TempDir]) -> Vec<u8> {
        let parts: Vec<&[u8]> = dirs
            .iter()
            .map(|d| d.path().as_os_str().as_bytes())
            .collect();
        parts.join(&b':')
    }

    #[test]
    fn the_first_executable_in_path_wins() {
        let first = dir_with(&[("tool", 0o644)]);
        let second = dir_with(&[("tool", 0o755)]);
        let third = dir_with(&[("tool", 0o755)]);
        let path = path_of(&[&first, &second, &third]);
        let found = find(b"tool", Some(&path)).map(|c| c.into_bytes());
        let expected = second.path().join("tool").as_os_str().as_bytes().to_vec();
        assert_eq!(found.ok(), Some(expected));
    }

    #[test]
    fn missing_is_127_and_only_unexecutable_is_126() {
        let plain = dir_with(&[("tool", 0o644)]);
        let path = path_of(&[&plain]);
        assert!(matches!(
            find(b"nope", Some(&path)),
            Err(ExecError::NotFound { searched: true, .. })
        ));
        assert!(matches!(
            find(b"tool", Some(&path)),
            Err(ExecError::CannotRun { .. })
        ));
        let dir = plain.path().join("tool");
        assert!(matches!(
            find(dir.as_os_str().as_bytes(), None),
            Err(ExecError::CannotRun { .. })
        ));
        assert!(matches!(
            find(plain.path().as_os_str().as_bytes(), None),
            Err(ExecError::CannotRun { .. })
        ));
        assert!(matches!(
            find(b"./no/such/tool", None),
            Err(ExecError::NotFound {
                searched: false,
                ..
            })
        ));
        assert!(matches!(find(b"", None), Err(ExecError::NotFound { .. })));
    }

    #[test]
    fn no_path_means_bin_and_usr_bin() {
        assert_eq!(
            find(b"sh", None).ok().as_deref(),
            Some(c"/bin/sh"),
            "/bin comes first"
        );
    }

    #[test]
    fn arguments_keep_their_bytes_and_only_they_get_the_file() {
        let args: Vec<OsString> = ["sh", "--config={}", "{}{}", "", "a b$(x);'\"\n"]
            .iter()
            .map(OsString::from)
            .chain(std::iter::once(OsString::from(
                std::ffi::OsStr::from_bytes(b"\xff\xfe"),
            )))
            .collect();
        let env = EnvBlock::build(&super::super::Inherit::Only(vec![]), [("PATH", "/bin")])
            .unwrap_or_default();
        let program = Program::argv(&args, &env, Some(b"/p/f")).expect("argv");
        let got: Vec<&[u8]> = program.args.iter().map(|a| a.as_bytes()).collect();
        assert_eq!(
            got,
            [
                &b"sh"[..],
                b"--config=/p/f",
                b"/p/f/p/f",
                b"",
                b"a b$(x);'\"\n",
                b"\xff\xfe"
            ]
        );
        assert_eq!(program.path.as_c_str(), c"/bin/sh");
        let pointers = program.pointers();
        assert_eq!(pointers.argv.len(), 7);
        assert_eq!(pointers.script.len(), 8);
        assert!(matches!(
            Program::argv(&[], &env, None),
            Err(ExecError::NoProgram)
        ));
    }
}
