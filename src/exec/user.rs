//! `--user NAME`: run the command as another user, as the reference does —
//! rsops itself switches (supplementary groups, group, then user) after
//! decrypting, so the temporary directory and FIFO belong to that user too.

use std::ffi::CString;

use nix::unistd::{initgroups, setgid, setuid, User};

/// Why rsops could not become the user.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// No such user.
    #[error("unknown user `{0}`")]
    Unknown(String),
    /// The user database could not be read, or a call was refused.
    #[error("cannot switch to user `{name}`: {source}")]
    Switch {
        /// The user.
        name: String,
        /// What failed.
        source: std::io::Error,
    },
}

/// Becomes `name` for good and returns the variables the reference sets for
/// that user: `HOME`, `USER`, `LOGNAME`.
pub fn switch_user(name: &str) -> Result<Vec<(&'static str, String)>, UserError> {
    let fail = |e: nix::Error| UserError::Switch {
        name: name.to_string(),
        source: e.into(),
    };
    let user = User::from_name(name)
        .map_err(fail)?
        .ok_or_else(|| UserError::Unknown(name.to_string()))?;
    let c_name = CString::new(name).map_err(|_| UserError::Unknown(name.to_string()))?;
    initgroups(&c_name, user.gid).map_err(fail)?;
    setgid(user.gid).map_err(fail)?;
    setuid(user.uid).map_err(fail)?;
    // Changing user makes the kernel mark rsops undumpable, which also
    // closes its /proc/<pid>/fd to that user — where `exec-file`'s command
    // opens the secret file. Core dumps stay off through the resource limit.
    nix::sys::prctl::set_dumpable(true).map_err(fail)?;
    Ok(vec![
        ("HOME", user.dir.to_string_lossy().into_owned()),
        ("USER", user.name.clone()),
        ("LOGNAME", user.name),
    ])
}
