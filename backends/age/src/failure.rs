//! What went wrong while finding or using age identities, and the one
//! classified [`KeyError`] an entry's attempt reports when nothing unwrapped.
//!
//! Problems never stop the other identities from being tried (a broken
//! `~/.ssh/id_ed25519` must not hide a good key file, sops issue #1987);
//! they are reported only when no identity unwraps the entry. Messages name
//! files, variables, programs and plugins, never key material or the
//! arguments of a key command.

use rsops_keysource::KeyError;

/// One problem met while loading or trying identities.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum Problem {
    /// A key source could not be read.
    #[error("cannot read {location}: {error}")]
    Unreadable { location: String, error: String },
    /// A line of a key source is no identity rsops knows.
    #[error("{location}, line {line}: not an age identity")]
    NotAnIdentity { location: String, line: usize },
    /// A line looks like an identity of a known kind but does not parse.
    #[error("{location}, line {line}: malformed {kind}")]
    Malformed {
        location: String,
        line: usize,
        kind: &'static str,
    },
    /// An SSH private key that cannot be used.
    #[error("{location}: {reason}")]
    Ssh { location: String, reason: String },
    /// A key command could not be split into words.
    #[error("{variable} cannot be parsed as a command")]
    CommandSyntax { variable: &'static str },
    /// A key command could not be started.
    #[error("{variable} `{program}` could not start: {error}")]
    CommandStart {
        variable: &'static str,
        program: String,
        error: String,
    },
    /// A key command ran and failed.
    #[error("{variable} `{program}` failed ({status})")]
    CommandFailed {
        variable: &'static str,
        program: String,
        status: String,
    },
    /// A key command was still running at the attempt's deadline, and was
    /// killed (or not started, the deadline being past).
    #[error("{variable} `{program}` did not finish in time and was stopped")]
    CommandTimedOut {
        variable: &'static str,
        program: String,
    },
    /// The attempt's deadline passed before an identity unwrapped the key.
    #[error("the deadline passed {stage}")]
    OutOfTime { stage: &'static str },
    /// A plugin identity's binary is not installed.
    #[error("the age plugin `{binary}` is not on PATH; it is needed for the plugin identity in {locations}")]
    MissingPlugin { binary: String, locations: String },
    /// A plugin answered with errors.
    #[error("age plugin failed: {message}")]
    PluginFailed { message: String },
    /// A plugin exited or broke the protocol.
    #[error("age plugin `{binary}` stopped before answering ({error})")]
    PluginDied { binary: String, error: String },
    /// A question for the user (passphrase, PIN, confirmation) could not be asked.
    #[error("{who} needs an answer from the user, but {error}")]
    Prompt {
        who: String,
        error: String,
        no_terminal: bool,
    },
    /// The passphrase typed did not decrypt the identity.
    #[error("wrong passphrase for {location}")]
    WrongPassphrase { location: String },
    /// A passphrase-protected identity file that does not decrypt to identities.
    #[error("{location}: the passphrase-protected identity is damaged: {error}")]
    DamagedEncrypted { location: String, error: String },
    /// An identity refused the entry's ciphertext as malformed.
    #[error("{location}: {error}")]
    Corrupt { location: String, error: String },
    /// A post-quantum identity, which this build cannot use.
    #[error("{location}, line {line}: post-quantum age identity (AGE-SECRET-KEY-PQ-1…) skipped: rsops cannot use it yet")]
    PostQuantumIdentity { location: String, line: usize },
}

/// How a problem weighs on the entry's outcome; the highest present wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Weight {
    /// A source that could not be loaded: only context.
    Context,
    /// Nothing here can unwrap the entry without the user's help.
    NoCredentials,
    /// A plugin (a device) did not answer, or not in time.
    Unreachable,
    /// A plugin refused, or the passphrase was wrong.
    Denied,
    /// The entry's ciphertext is malformed.
    Corrupt,
    /// A question could not be asked: whatever else failed (a plugin
    /// refusing without its PIN) follows from that, so the user needs to
    /// hear this first.
    NoTerminal,
}

impl Problem {
    fn weight(&self) -> Weight {
        match self {
            Problem::Unreadable { .. }
            | Problem::NotAnIdentity { .. }
            | Problem::Malformed { .. }
            | Problem::Ssh { .. }
            | Problem::CommandSyntax { .. }
            | Problem::CommandStart { .. }
            | Problem::CommandFailed { .. }
            | Problem::PostQuantumIdentity { .. } => Weight::Context,
            Problem::Prompt {
                no_terminal: true, ..
            } => Weight::NoTerminal,
            Problem::MissingPlugin { .. } | Problem::Prompt { .. } => Weight::NoCredentials,
            Problem::PluginDied { .. }
            | Problem::CommandTimedOut { .. }
            | Problem::OutOfTime { .. } => Weight::Unreachable,
            Problem::PluginFailed { .. }
            | Problem::WrongPassphrase { .. }
            | Problem::DamagedEncrypted { .. } => Weight::Denied,
            Problem::Corrupt { .. } => Weight::Corrupt,
        }
    }

    /// What the user can do, for problems that have a remedy of their own.
    fn hint(&self) -> Option<String> {
        match self {
            Problem::MissingPlugin { binary, .. } => Some(format!(
                "install `{binary}` and make sure it is on PATH for rsops"
            )),
            Problem::Prompt {
                no_terminal: true, ..
            } => Some(
                "run rsops from a terminal so it can ask, or give the identity another way \
                 (an unprotected key in SOPS_AGE_KEY_FILE, or SOPS_AGE_KEY_CMD)"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// The error of an entry no identity could unwrap.
///
/// `count` identities from `locations` were tried; `problems` lists what
/// went wrong on the way, loading problems included.
pub(crate) fn no_key(
    recipient: &str,
    count: usize,
    locations: &[String],
    problems: &[Problem],
) -> KeyError {
    let worst = problems
        .iter()
        .map(Problem::weight)
        .max()
        .unwrap_or(Weight::Context);
    let mut message = if count == 0 {
        "no age identity found".to_string()
    } else if worst == Weight::Context {
        format!(
            "none of the {count} age identities found ({}) matches",
            locations.join(", ")
        )
    } else {
        format!(
            "no age identity unwrapped the key ({count} tried, from {})",
            locations.join(", ")
        )
    };
    // The weightiest problems first: they say what to fix.
    let mut ordered: Vec<&Problem> = problems.iter().collect();
    ordered.sort_by_key(|p| std::cmp::Reverse(p.weight()));
    for problem in &ordered {
        message.push_str("; ");
        message.push_str(&problem.to_string());
    }
    // The weightiest problem with a remedy of its own says what to do.
    let hint = ordered.iter().find_map(|p| p.hint());
    let error = match worst {
        Weight::Context | Weight::NoCredentials | Weight::NoTerminal => {
            let hint = hint.unwrap_or_else(|| {
                if count == 0 {
                    "put the age secret key in ~/.config/sops/age/keys.txt, or set \
                     SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or SOPS_AGE_KEY_CMD"
                        .into()
                } else {
                    format!("add the secret key of {recipient} to one of those places")
                }
            });
            return KeyError::no_credentials(message).with_hint(hint);
        }
        Weight::Unreachable => KeyError::unreachable(message),
        Weight::Denied => KeyError::denied(message),
        Weight::Corrupt => KeyError::corrupt_entry(message),
    };
    match hint {
        Some(hint) => error.with_hint(hint),
        None => error,
    }
}

/// The error of an entry whose deadline passed while another age entry's
/// attempt held the identities (at a prompt, or a plugin).
pub(crate) fn busy(recipient: &str) -> KeyError {
    KeyError::unreachable(format!(
        "the age attempt for {recipient} did not start in time: another age entry's attempt \
         (a prompt, a plugin) was still running"
    ))
}

#[cfg(test)]
mod tests {
    use rsops_keysource::ErrorClass;

    use super::*;

    fn no_terminal() -> Problem {
        Problem::Prompt {
            who: "age-plugin-x".into(),
            error: "there is no terminal to ask on".into(),
            no_terminal: true,
        }
    }

    #[test]
    fn the_cause_decides_the_class() {
        let loading = Problem::NotAnIdentity {
            location: "keys.txt".into(),
            line: 3,
        };
        let refused = Problem::PluginFailed {
            message: "'age-plugin-x' couldn't use an identity: wrong PIN".into(),
        };
        let locations = ["keys.txt".to_string()];
        // Only loading problems: nothing here holds the key.
        let e = no_key("age1r", 2, &locations, std::slice::from_ref(&loading));
        assert_eq!(e.class(), ErrorClass::NoCredentials, "{e:?}");
        assert!(e.to_string().starts_with(
            "none of the 2 age identities found (keys.txt) matches; keys.txt, line 3"
        ));
        // A plugin refusing is denied…
        let e = no_key("age1r", 2, &locations, &[loading.clone(), refused.clone()]);
        assert_eq!(e.class(), ErrorClass::Denied, "{e:?}");
        // …unless it refused because nobody could be asked: then say that first.
        let e = no_key("age1r", 2, &locations, &[refused, no_terminal()]);
        assert_eq!(e.class(), ErrorClass::NoCredentials, "{e:?}");
        assert!(e
            .to_string()
            .contains("; age-plugin-x needs an answer from the user"));
        assert!(e.hint().is_some_and(|h| h.contains("terminal")));
        // No identity at all.
        let e = no_key("age1r", 0, &[], &[]);
        assert_eq!(e.to_string(), "no age identity found");
        assert!(e.hint().is_some_and(|h| h.contains("SOPS_AGE_KEY_FILE")));
        // A key command stopped at the deadline did not answer in time.
        let stopped = Problem::CommandTimedOut {
            variable: "SOPS_AGE_KEY_CMD",
            program: "pass".into(),
        };
        let e = no_key("age1r", 0, &[], std::slice::from_ref(&stopped));
        assert_eq!(e.class(), ErrorClass::Unreachable, "{e:?}");
        assert_eq!(
            e.to_string(),
            "no age identity found; SOPS_AGE_KEY_CMD `pass` did not finish in time and was stopped"
        );
    }

    #[test]
    fn hints_come_with_any_class() {
        // A plugin refused while another is missing: denied, and the
        // missing one's remedy is still worth giving.
        let missing = Problem::MissingPlugin {
            binary: "age-plugin-y".into(),
            locations: "keys.txt".into(),
        };
        let refused = Problem::PluginFailed {
            message: "'age-plugin-x' couldn't use an identity: wrong PIN".into(),
        };
        let e = no_key("age1r", 2, &["keys.txt".into()], &[missing, refused]);
        assert_eq!(e.class(), ErrorClass::Denied, "{e:?}");
        assert!(e
            .hint()
            .is_some_and(|h| h.contains("install `age-plugin-y`")));
        // Without a remedy, no hint.
        let died = Problem::PluginDied {
            binary: "age-plugin-x".into(),
            error: "it exited".into(),
        };
        let e = no_key("age1r", 1, &["keys.txt".into()], &[died]);
        assert_eq!(e.class(), ErrorClass::Unreachable, "{e:?}");
        assert_eq!(e.hint(), None);
    }
}
