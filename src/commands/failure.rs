//! Every way a command can fail, and — in [`Failure::exit_code`] and
//! [`Failure::hint`], and nowhere else — which exit code and which hint each
//! gets. The codes are the reference's, so scripts written for sops keep
//! working; the library knows none of them.

use std::path::PathBuf;

use rsops::exec::{EnvError, ExecError, UserError};
use rsops::extract::ExtractError;
use rsops::formats::FormatError;
use rsops::DecryptError;

use crate::cli::Command;

/// A command's failure.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The encrypted file does not exist.
    #[error("{0}: no such file")]
    NotFound(PathBuf),
    /// The encrypted file or standard input could not be read.
    #[error("cannot read {what}: {source}")]
    Read {
        /// The file, or "standard input".
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file could not be decrypted.
    #[error("{input}: {source}")]
    Decrypt {
        /// The file, or "standard input".
        input: String,
        /// Why.
        source: DecryptError,
    },
    /// The file could not be encrypted.
    #[error("{input}: {source}")]
    Encrypt {
        /// The file, or "standard input".
        input: String,
        /// Why (boxed: the error is large and failures are rare).
        source: Box<rsops::encrypt::EncryptError>,
    },
    /// The plaintext cannot be printed in the output format.
    #[error("cannot print the plaintext: {source}")]
    Print {
        /// Why.
        source: FormatError,
        /// The output format is binary (the usual cause: a structured file
        /// read without its format).
        as_binary: bool,
    },
    /// The output could not be written.
    #[error("cannot write {what}: {source}")]
    Write {
        /// The file, or "standard output".
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `--extract` is not a path.
    #[error(transparent)]
    ExtractSyntax(ExtractError),
    /// `--extract` names nothing in the file.
    #[error(transparent)]
    ExtractNotFound(ExtractError),
    /// A flag's value is unusable.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// What to give instead.
        hint: Option<&'static str>,
    },
    /// A positional argument is missing (the reference's words).
    #[error("{0}")]
    MissingArguments(&'static str),
    /// `--add-*`/`--rm-*` on a file that does not exist.
    #[error("cannot add or remove keys on non-existent file {0:?}: use `rsops edit` (or `encrypt`) to create it")]
    KeysOfMissingFile(PathBuf),
    /// `updatekeys` found no `.sops.yaml`, or no rule for the file.
    #[error("{0}")]
    NoCreationRule(String),
    /// Some of several files could not be changed (each was reported).
    #[error("failed updating {0} file(s)")]
    SomeFilesFailed(usize),
    /// A `set`/`unset` index or value cannot be parsed (the reference's words).
    #[error("{0}")]
    InvalidSet(&'static str),
    /// `set` or `unset` cannot follow the path.
    #[error("{input}: {source}")]
    Update {
        /// The file.
        input: String,
        /// Why.
        source: rsops::update::UpdateError,
    },
    /// Two flags cannot go together.
    #[error("{0}")]
    Conflict(&'static str),
    /// The sops config file is unreadable or wrong.
    #[error("config file {path}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A merge found keys both sides changed: the file is left as ours.
    #[error("{file}: {count} merge conflict{s}; left as ours", s = if *count == 1 { "" } else { "s" })]
    MergeConflict {
        /// The file (git's `%P`, or ours).
        file: String,
        /// How many conflicts (each already reported by key path).
        count: usize,
    },
    /// The command could not be run.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The file's values cannot become environment variables, or `--keep` is wrong.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// `--user` failed.
    #[error(transparent)]
    User(#[from] UserError),
    /// `edit`: the editor was closed without a change; nothing is written.
    #[error("File has not changed, exiting.")]
    Unchanged,
    /// `edit`: another program replaced the file while it was being
    /// edited; writing would silently undo that change.
    #[error("{0}: the file was changed by another program while you edited it; your changes were not saved")]
    ChangedWhileEditing(String),
    /// `edit`: the editor failed; nothing is written.
    #[error("Could not run editor: {0}")]
    Editor(String),
    /// `edit`: neither variable names an editor and none is on `PATH`.
    #[error("Could not run editor: {0}")]
    NoEditor(String),
    /// `edit`: the edited file cannot be read back, and standard input is
    /// no terminal to ask whether to reopen the editor.
    #[error("{file}: the edited text cannot be used, so {file} is left as it was: {message}")]
    InvalidEdit {
        /// The file being edited.
        file: String,
        /// What is wrong with the edited text.
        message: String,
    },
    /// `edit`: rsops was sent a signal while the editor ran; the temporary
    /// copy is removed and nothing is written.
    #[error("interrupted by {}: {file} is left as it was, its decrypted copy removed", signal_name(.signal))]
    Interrupted {
        /// The file being edited.
        file: String,
        /// The signal's number.
        signal: i32,
    },
    /// `rsops mcp`: a client config cannot be read or changed as asked.
    #[error("{path}: {message}")]
    McpConfig {
        /// The config file.
        path: String,
        /// What is wrong; names keys and servers, never values.
        message: String,
    },
    /// Something rsops itself needs failed (the async runtime, rendering docs).
    #[error("{what}: {source}")]
    Internal {
        /// What rsops was doing.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// `SIGTERM` for 15.
fn signal_name(signal: &i32) -> String {
    nix::sys::signal::Signal::try_from(*signal)
        .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_string())
}

impl Failure {
    /// The reference's exit code for this failure under `command`.
    pub fn exit_code(&self, command: &Command) -> u8 {
        // `sops filestatus` fails with 1 whatever went wrong.
        if matches!(command, Command::Filestatus(_)) {
            return 1;
        }
        let exec = matches!(command, Command::ExecEnv(_) | Command::ExecFile(_));
        match self {
            // sops: 100 "file not found" from decrypt, 2 "could not read"
            // from exec-env and exec-file.
            Failure::NotFound(_) if exec || changes_file(command) => 2,
            Failure::NotFound(_) => 100,
            Failure::MissingArguments(_) => 100,
            Failure::InvalidSet(_) => 7,
            Failure::KeysOfMissingFile(_) => 49,
            Failure::NoCreationRule(_) | Failure::SomeFilesFailed(_) => 1,
            Failure::Read { .. } => 2,
            Failure::Decrypt { source, .. } => match source {
                DecryptError::Format(_) | DecryptError::Metadata(_) => 1,
                DecryptError::DataKey(_) => 128,
                DecryptError::Walk(_) => 25,
                DecryptError::MacUnreadable(_)
                | DecryptError::MacMismatch
                | DecryptError::MacMissing => 51,
                _ => 1,
            },
            Failure::Encrypt { source, .. } => match source.as_ref() {
                // sops: "File already encrypted".
                rsops::encrypt::EncryptError::AlreadyEncrypted => 203,
                // sops: "Error unmarshalling file", "Could not marshal tree"
                // (e.g. nested values for dotenv).
                rsops::encrypt::EncryptError::Parse(_) => 2,
                rsops::encrypt::EncryptError::Emit(_) => 4,
                _ => 1,
            },
            Failure::Print { .. } => 4,
            // sops: FileHasNotBeenModified, NoEditorFound, CouldNotReadInputFile.
            Failure::Unchanged => 200,
            Failure::ChangedWhileEditing(_) => 1,
            Failure::Editor(_) | Failure::NoEditor(_) => 201,
            Failure::InvalidEdit { .. } => 2,
            // As a shell reports a command a signal ended.
            Failure::Interrupted { signal, .. } => {
                128u8.saturating_add(u8::try_from(*signal).unwrap_or(0))
            }
            Failure::Write { .. } => 3,
            Failure::ExtractSyntax(_) => 91,
            Failure::Conflict(_) => 8,
            // As a shell reports a command it cannot find or run.
            Failure::Exec(ExecError::NotFound { .. }) => 127,
            Failure::Exec(ExecError::CannotRun { .. }) => 126,
            // git takes any non-zero status for "conflicted".
            Failure::MergeConflict { .. } => 1,
            Failure::ExtractNotFound(_)
            | Failure::Update { .. }
            | Failure::Usage { .. }
            | Failure::Config { .. }
            | Failure::McpConfig { .. }
            | Failure::Exec(_)
            | Failure::Env(_)
            | Failure::User(_)
            | Failure::Internal { .. } => 1,
        }
    }

    /// What the user can do about it, when rsops knows.
    pub fn hint(&self) -> Option<std::borrow::Cow<'_, str>> {
        if let Failure::Encrypt { source, .. } = self {
            if let rsops::encrypt::EncryptError::Wrap { source, .. } = source.as_ref() {
                return source.hint().map(std::borrow::Cow::Borrowed);
            }
        }
        self.fixed_hint().map(std::borrow::Cow::Borrowed)
    }

    /// The hints rsops itself knows for a failure class.
    fn fixed_hint(&self) -> Option<&'static str> {
        match self {
            Failure::Decrypt { source, .. } => match source {
                DecryptError::MacMismatch => Some(
                    "check that this is the file you meant; if you trust its content as it is, --ignore-mac decrypts it anyway",
                ),
                DecryptError::MacMissing => {
                    Some("if you trust its content as it is, --ignore-mac decrypts it anyway")
                }
                _ => None,
            },
            Failure::Print {
                as_binary: true, ..
            } => Some(
                "this is likely not an encrypted binary file; choose the format with --output-type",
            ),
            Failure::Usage { hint, .. } => *hint,
            Failure::MergeConflict { .. } => Some(
                "git marks the file conflicted: make the other side's changes with `rsops edit`, then `git add` the file",
            ),
            Failure::ChangedWhileEditing(_) => Some(
                "open it again with rsops edit to make your change on top of the other one",
            ),
            Failure::NoEditor(_) => Some(
                "set SOPS_EDITOR or EDITOR to your editor, e.g. `export EDITOR=\"code --wait\"`",
            ),
            Failure::InvalidEdit { .. } => Some(
                "run rsops edit from a terminal to be offered to fix the text in the editor again",
            ),
            Failure::Exec(ExecError::BadFilename(_)) => {
                Some("give --filename a name such as `config.env`, without `/` or `..`")
            }
            Failure::Exec(ExecError::NotFound { program, .. })
                if program.contains(char::is_whitespace) =>
            {
                Some("after `--`, each word is one argument and the first is the program; to run a shell command line, give it as one string without `--`")
            }
            Failure::Exec(ExecError::NotFound { searched: true, .. }) => Some(
                "the program is looked up in the command's PATH (after --pristine, --keep and the secrets; /bin:/usr/bin when unset)",
            ),
            Failure::Exec(ExecError::UnsafeTempDir(_)) => {
                Some("set TMPDIR to a directory only you can write to, such as $XDG_RUNTIME_DIR")
            }
            Failure::Env(EnvError::BadKeep(_)) => {
                Some("give --keep variable names, e.g. `--keep PATH,HOME`")
            }
            Failure::User(UserError::Switch { .. }) => {
                Some("only root can run a command as another user (--user)")
            }
            _ => None,
        }
    }

    /// The few messages printed exactly as the reference prints them,
    /// without rsops' prefix, because scripts and test suites written for
    /// sops compare them whole (sops' own functional tests do).
    fn reference_words(&self) -> Option<String> {
        match self {
            Failure::Encrypt { source, .. }
                if matches!(source.as_ref(), rsops::encrypt::EncryptError::EmptyKeyGroup) =>
            {
                Some(source.to_string())
            }
            _ => None,
        }
    }

    /// The whole message for standard error: `rsops: ` and the failure,
    /// then its hint, in the one layout every failure uses.
    pub fn report(&self) -> String {
        if let Some(words) = self.reference_words() {
            return words;
        }
        match self.hint() {
            Some(hint) => format!("rsops: {self}\n\nhint: {hint}"),
            None => format!("rsops: {self}"),
        }
    }
}

/// Commands that rewrite an existing encrypted file: the reference reads
/// it with "Error reading file" (exit 2) and fails to print with 4.
fn changes_file(command: &Command) -> bool {
    matches!(
        command,
        Command::Set(_)
            | Command::Unset(_)
            | Command::Rotate(_)
            | Command::Updatekeys(_)
            | Command::Groups(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn command(args: &[&str]) -> Command {
        Cli::parse_from(args).command
    }

    fn io() -> std::io::Error {
        std::io::Error::other("boom")
    }

    /// One row per failure type: the reference's exit code for it.
    #[test]
    fn exit_codes_are_the_references() {
        let decrypt = command(&["rsops", "decrypt", "f"]);
        let exec = command(&["rsops", "exec-env", "f", "true"]);
        let set = command(&["rsops", "set", "f", "[\"a\"]", "1"]);
        let edit = command(&["rsops", "edit", "f"]);
        let format = || FormatError::Syntax {
            format: "JSON",
            message: "x".into(),
        };
        let mut table: Vec<(Failure, &Command, u8)> = vec![
            (Failure::NotFound("f".into()), &decrypt, 100),
            (Failure::NotFound("f".into()), &exec, 2),
            (
                Failure::Read {
                    what: "f".into(),
                    source: io(),
                },
                &decrypt,
                2,
            ),
            (
                Failure::Decrypt {
                    input: "f".into(),
                    source: DecryptError::Format(format()),
                },
                &decrypt,
                1,
            ),
            (
                Failure::Decrypt {
                    input: "f".into(),
                    source: DecryptError::MacMismatch,
                },
                &exec,
                51,
            ),
            (
                Failure::Decrypt {
                    input: "f".into(),
                    source: DecryptError::MacMissing,
                },
                &decrypt,
                51,
            ),
            (
                Failure::Print {
                    source: format(),
                    as_binary: false,
                },
                &decrypt,
                4,
            ),
            (
                Failure::Write {
                    what: "f".into(),
                    source: io(),
                },
                &decrypt,
                3,
            ),
            (
                Failure::ExtractSyntax(ExtractError::Syntax("x".into())),
                &decrypt,
                91,
            ),
            (
                Failure::ExtractNotFound(ExtractError::Syntax("x".into())),
                &decrypt,
                1,
            ),
            (
                Failure::Usage {
                    message: "x".into(),
                    hint: None,
                },
                &decrypt,
                1,
            ),
            (Failure::Conflict("x"), &exec, 8),
            (Failure::NotFound("f".into()), &set, 2),
            (Failure::MissingArguments("x"), &set, 100),
            (Failure::InvalidSet("x"), &set, 7),
            (
                Failure::MergeConflict {
                    file: "f".into(),
                    count: 2,
                },
                &decrypt,
                1,
            ),
            (
                Failure::Config {
                    path: "c".into(),
                    message: "x".into(),
                },
                &decrypt,
                1,
            ),
            (Failure::Exec(ExecError::NulInCommand), &exec, 1),
            (
                Failure::Exec(ExecError::NotFound {
                    program: "p".into(),
                    searched: true,
                }),
                &exec,
                127,
            ),
            (
                Failure::Exec(ExecError::CannotRun {
                    program: "p".into(),
                    source: io(),
                }),
                &exec,
                126,
            ),
            (Failure::Env(EnvError::EmptyKey), &exec, 1),
            (Failure::User(UserError::Unknown("u".into())), &exec, 1),
            (
                Failure::Internal {
                    what: "x",
                    source: io(),
                },
                &decrypt,
                1,
            ),
        ];
        table.extend([
            (Failure::Unchanged, &edit, 200),
            (Failure::Editor("x".into()), &edit, 201),
            (Failure::NoEditor("x".into()), &edit, 201),
            (
                Failure::InvalidEdit {
                    file: "f".into(),
                    message: "x".into(),
                },
                &edit,
                2,
            ),
            (
                Failure::Interrupted {
                    file: "f".into(),
                    signal: 15,
                },
                &edit,
                143,
            ),
        ]);
        let filestatus = command(&["rsops", "filestatus", "f"]);
        for (failure, command, code) in table {
            assert_eq!(failure.exit_code(command), code, "{failure:?}");
            assert_eq!(failure.exit_code(&filestatus), 1, "{failure:?}");
        }
    }

    #[test]
    fn hints_share_one_layout() {
        let failure = Failure::Decrypt {
            input: "f.yaml".into(),
            source: DecryptError::MacMismatch,
        };
        let report = failure.report();
        assert!(
            report.starts_with("rsops: f.yaml: MAC mismatch"),
            "{report}"
        );
        assert!(report.contains("\n\nhint: check that"), "{report}");
        assert_eq!(report.matches("hint:").count(), 1);
    }
}
