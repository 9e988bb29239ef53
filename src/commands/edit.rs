//! `rsops edit FILE` (and the legacy `rsops FILE`): decrypt to a private
//! temporary file, run the user's editor on it, and encrypt the result again
//! with the file's own data key, so values left alone keep their ciphertext.
//!
//! As in the reference (`cmd/sops/edit.go`): the editor is `$SOPS_EDITOR`,
//! else `$EDITOR`, else the first of vim, nano and vi on `PATH`; an
//! unchanged file exits 200, a failed editor 201; text that cannot be read
//! back is shown with an offer to reopen the editor; a file that does not
//! exist is created from an example document, under keys from the flags or
//! `.sops.yaml`. Unlike the reference, rsops runs the editor in the
//! terminal's foreground in a process group of its own, removes the
//! temporary directory (and the editor's swap files) on every way out,
//! including SIGINT, SIGTERM and SIGHUP sent to rsops, and replaces the
//! file atomically, keeping its mode.

use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use rsops::encrypt::EncryptError;
use rsops::exec::{
    placeholder::PATH_VARIABLE, EnvBlock, Inherit, Invocation, Launcher, ScratchFile, Wait,
};
use rsops::formats::{EmitOptions, Format, Printed};
use rsops::metadata::{self, InsertOptions, Metadata};
use rsops::rewrite::Opened;
use rsops::tree::Document;
use rsops::{DecryptOptions, KeyRegistry};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tokio::runtime::Runtime;

use super::input::{unwrap_options, Input};
use super::{AtomicWrite, Failure};
use crate::cli::{Cli, EditArgs};

/// How long the editor has to exit after rsops forwarded it SIGTERM.
const KILL_AFTER: Duration = Duration::from_secs(10);

/// The signals that make rsops give up the edit (after the editor ends).
const INTERRUPTS: [i32; 3] = [SIGHUP, SIGINT, SIGTERM];

/// The editors tried, in order, when neither variable is set (the reference's).
const FALLBACK_EDITORS: [&str; 3] = ["vim", "nano", "vi"];

/// The reference's prompt after unusable text.
const PRESS_ENTER: &str = "Press enter to return to the editor, or Ctrl+C to exit.";

/// The documents a new file starts from: the reference's `EmitExample`
/// (its `ExampleComplexTree` for YAML and JSON, `ExampleSimpleTree` for
/// INI, `ExampleFlatTree` for dotenv).
fn example(format: Format) -> &'static str {
    match format {
        Format::Yaml => "hello: Welcome to SOPS! Edit this file as you please!\nexample_key: example_value\n# Example comment\nexample_array:\n    - example_value1\n    - example_value2\nexample_number: 1234.56789\nexample_booleans:\n    - true\n    - false\n",
        Format::Json => "{\n\t\"hello\": \"Welcome to SOPS! Edit this file as you please!\",\n\t\"example_key\": \"example_value\",\n\t\"example_array\": [\n\t\t\"example_value1\",\n\t\t\"example_value2\"\n\t],\n\t\"example_number\": 1234.56789,\n\t\"example_booleans\": [\n\t\ttrue,\n\t\tfalse\n\t]\n}\n",
        Format::Dotenv => "# This is an example file.\nhello=Welcome to SOPS! Edit this file as you please!\nexample_key=example_value\nexample_multiline=foo\\nbar\\nbaz\n",
        Format::Ini => "; This is an example file.\n[Welcome!]\nhello       = Welcome to SOPS! Edit this file as you please!\nexample_key = example_value\n",
        Format::Binary => "Welcome to SOPS! Edit this file as you please!",
    }
}

/// Runs `rsops edit`.
pub fn run(cli: &Cli, args: &EditArgs, runtime: &Runtime) -> Result<ExitCode, Failure> {
    if args.file.as_os_str() == "-" {
        return Err(Failure::Usage {
            message: "edit needs a file, not standard input".into(),
            hint: None,
        });
    }
    let input = Input::new(
        cli,
        Some(&args.file),
        None,
        args.input.input_type.as_deref(),
        args.input.output_type.as_deref(),
    )?;
    let shown = input.display();
    let name = args
        .file
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let editor = editor_command()?;
    // Core dumps off before any plaintext exists.
    let launcher = Launcher::new(KILL_AFTER);
    let registry = KeyRegistry::default();
    let existing = std::fs::metadata(&args.file).is_ok();
    let mut read_at_start = None;
    let mut opened = if existing {
        let (bytes, state) = input.read_noting_state()?;
        let options = DecryptOptions {
            ignore_mac: args.input.ignore_mac,
            unwrap: unwrap_options(&args.input.keys),
        };
        let opened = runtime
            .block_on(Opened::open(
                &bytes,
                input.input_format,
                &registry,
                &options,
            ))
            .map_err(|source| Failure::Decrypt {
                input: shown.clone(),
                source,
            })?;
        if input.verbose {
            for attempt in &opened.attempts {
                eprintln!("rsops: {shown}: group {}: {attempt}", attempt.group + 1);
            }
        }
        read_at_start = Some((bytes, state));
        opened
    } else {
        let options = super::encrypt::encrypt_options(
            cli,
            &args.new_file,
            &args.file,
            args.input.keys.key_timeout,
        )?;
        let mut opened = runtime
            .block_on(Opened::create(&options, &registry))
            .map_err(|source| Failure::Encrypt {
                input: shown.clone(),
                source: Box::new(source),
            })?;
        opened.document = input
            .input_format
            .parse_plain(example(input.input_format).as_bytes())
            .map_err(|source| Failure::Print {
                source,
                as_binary: false,
            })?;
        opened
    };
    let original = to_edit(
        &opened,
        input.input_format,
        input.emit,
        args.show_master_keys,
    )
    .map_err(|source| Failure::Print {
        source,
        as_binary: input.input_format == Format::Binary,
    })?;

    let interrupts = Interrupts::install()?;
    let scratch = ScratchFile::create(&name, &original)?;
    if let Some((_, state)) = &read_at_start {
        input.uncache_in_background(state);
    }
    // The editor gives the document back as text: the tree it was printed
    // from is wiped and freed while the editor runs.
    rsops::par::drop_in_background(std::mem::take(&mut opened.document));
    let session = Session {
        launcher: &launcher,
        editor: &editor,
        scratch: &scratch,
        interrupts: &interrupts,
        format: input.input_format,
        show_master_keys: args.show_master_keys,
        file: &shown,
        source: read_at_start.as_ref().map(|(bytes, _)| bytes.as_slice()),
    };
    // Through a symbolic link to the file it names, as the reference writes.
    let target = match &read_at_start {
        Some(_) => std::fs::canonicalize(&args.file).unwrap_or_else(|_| args.file.clone()),
        None => args.file.clone(),
    };
    // A large file's text is written out as it is sealed; a new file is
    // 0600, an existing one keeps its mode (as changed while editing).
    let mut out = match read_at_start {
        Some(_) => AtomicWrite::keeping_mode(&target),
        None => AtomicWrite::new(&target, None),
    };
    // Before a large file's text is sealed as soon as it is read back.
    renew_version(&mut opened.metadata);
    let edited = session.edit_until_usable(
        &original,
        &mut opened,
        input.output_format,
        input.emit,
        &mut out,
    );
    let removed = scratch.remove();
    let edited = edited?;
    removed?;
    // The plaintext first shown: wiped and freed on another thread while
    // the file is sealed and written.
    rsops::par::drop_in_background(original);
    let encrypted = match edited {
        Edited::Sealed(sealed) => sealed,
        Edited::Tree(document, edited_metadata) => {
            opened.document = document;
            if let Some(edited_metadata) = edited_metadata {
                opened.metadata = edited_metadata;
                renew_version(&mut opened.metadata);
            }
            opened.seal(input.output_format, input.emit)
        }
    }
    .map_err(|source| match source {
        EncryptError::Write(source) => out.failure(source),
        source => Failure::Encrypt {
            input: shown.clone(),
            source: Box::new(source),
        },
    })?;
    if let Some(signal) = interrupts.received() {
        return Err(Failure::Interrupted {
            file: shown,
            signal,
        });
    }
    // Held until the new file is renamed in: a `set` that comes now waits.
    let _lock = match &read_at_start {
        Some((before, state)) => {
            let (unchanged, lock) = input.unchanged_under_lock(state, before)?;
            if !unchanged {
                return Err(Failure::ChangedWhileEditing(shown));
            }
            Some(lock)
        }
        None => None,
    };
    // The file as read: freed on another thread while the new one is written.
    rsops::par::drop_in_background(read_at_start);
    out.write_parts(&encrypted.parts())?;
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// Records the version rsops writes when the file's is older, as the
/// reference's edit does.
fn renew_version(metadata: &mut Metadata) {
    fn parse(version: &str) -> Option<[u64; 3]> {
        let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
        let version = [parts.next()??, parts.next()??, parts.next()??];
        parts.next().is_none().then_some(version)
    }
    let written = parse(metadata::WRITTEN_VERSION);
    let older = match metadata.version.as_deref() {
        None => true,
        Some(version) => parse(version).is_some_and(|v| Some(v) < written),
    };
    if older {
        metadata.version = Some(metadata::WRITTEN_VERSION.to_string());
    }
}

/// The text the editor is given: the plaintext, with the `sops` metadata
/// when `show_master_keys`.
fn to_edit(
    opened: &Opened,
    format: Format,
    emit: EmitOptions,
    show_master_keys: bool,
) -> Result<Printed, rsops::formats::FormatError> {
    if !show_master_keys {
        return format.print(&opened.document, emit);
    }
    let mut document = Document::new(opened.document.branches.clone());
    metadata::insert_with(
        &mut document,
        &opened.metadata,
        InsertOptions::for_format(format),
    );
    format.print_encrypted(&document, emit)
}

/// The shell code that runs the editor on the file, whose path is in
/// [`PATH_VARIABLE`] and never pasted into the code. The editor string is
/// shell code, as Git runs `$GIT_EDITOR`: `code --wait` and quoted paths work.
fn editor_command() -> Result<Vec<u8>, Failure> {
    let chosen = ["SOPS_EDITOR", "EDITOR"]
        .into_iter()
        .filter_map(std::env::var_os)
        .find(|v| !v.is_empty())
        .map(|v| v.as_bytes().to_vec())
        .or_else(|| {
            FALLBACK_EDITORS
                .into_iter()
                .find(|name| on_path(name))
                .map(|name| name.as_bytes().to_vec())
        });
    let Some(mut command) = chosen else {
        return Err(Failure::NoEditor(format!(
            "no editor available: rsops runs the editor named by the SOPS_EDITOR or EDITOR environment variables, or else the first of {} found on PATH, but none of them was found",
            FALLBACK_EDITORS.join(", ")
        )));
    };
    command.extend_from_slice(format!(" \"${PATH_VARIABLE}\"").as_bytes());
    Ok(command)
}

/// Whether an executable file `name` is in a `PATH` directory.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| rsops::exec::on_path(name, &path))
}

/// One edit: the editor, its file, and what it takes to read the result.
struct Session<'a> {
    launcher: &'a Launcher,
    editor: &'a [u8],
    scratch: &'a ScratchFile,
    interrupts: &'a Interrupts,
    format: Format,
    show_master_keys: bool,
    file: &'a str,
    /// The file as read at the start, if it existed.
    source: Option<&'a [u8]>,
}

/// What the editor left, once usable.
enum Edited {
    /// The new document, and the metadata as edited with `-s`.
    Tree(Document, Option<Metadata>),
    /// A large file's text, sealed as it was read back (or why not).
    Sealed(Result<Printed, EncryptError>),
}

/// Why an edited text with metadata in it is refused.
const HOLDS_METADATA: &str = "the text holds a top-level `sops` entry (or `sops_` entries), which is where the metadata goes: rename it";

impl Session<'_> {
    /// Runs the editor until it leaves text rsops can encrypt, or the user
    /// gives up: the new document, and the metadata as edited with `-s`;
    /// or, for a large file (see [`Opened::seal_text`]), the text sealed.
    fn edit_until_usable(
        &self,
        original: &Printed,
        opened: &mut Opened,
        output: Format,
        emit: EmitOptions,
        out: &mut AtomicWrite<'_>,
    ) -> Result<Edited, Failure> {
        loop {
            let path = self.scratch.path();
            let env = EnvBlock::build(
                &Inherit::All,
                [(PATH_VARIABLE, path.as_os_str().as_bytes())],
            )?;
            let room = rsops::exec::room_for(original.len());
            let code = self
                .launcher
                .run(Invocation::Shell(self.editor), env, Wait::Foreground)?;
            self.check_interrupted()?;
            if code != 0 {
                return Err(Failure::Editor(format!("exit status {code}")));
            }
            let room = room.and_then(|made| made.join().ok()).unwrap_or_default();
            let edited = self.scratch.read(room)?;
            if original.is(&edited) {
                return Err(Failure::Unchanged);
            }
            // The plaintext copy is removed while the text is sealed (and
            // written again if the editor has to reopen).
            let sealed = std::thread::scope(|scope| {
                let clearing = scope.spawn(|| self.scratch.clear());
                let sealed = if self.show_master_keys {
                    None
                } else {
                    opened.seal_text(&edited, self.format, output, emit, out, self.source)
                };
                // A failure shows again when the directory is removed.
                if let Err(panic) = clearing.join() {
                    std::panic::resume_unwind(panic);
                }
                sealed
            });
            let usable = match sealed {
                Some(Err(EncryptError::AlreadyEncrypted)) => {
                    out.discard();
                    Err(HOLDS_METADATA.to_string())
                }
                Some(sealed) => return Ok(Edited::Sealed(sealed)),
                None => {
                    out.discard();
                    self.read_back(&edited)
                }
            };
            match usable {
                Ok((document, metadata)) => return Ok(Edited::Tree(document, metadata)),
                Err(message) => {
                    self.offer_to_retry(message)?;
                    self.scratch.refill(&edited)?;
                }
            }
        }
    }

    fn check_interrupted(&self) -> Result<(), Failure> {
        match self.interrupts.received() {
            Some(signal) => Err(Failure::Interrupted {
                file: self.file.to_string(),
                signal,
            }),
            None => Ok(()),
        }
    }

    /// The edited text as a document (and metadata, with `-s`), or what is
    /// wrong with it.
    fn read_back(&self, edited: &[u8]) -> Result<(Document, Option<Metadata>), String> {
        if self.show_master_keys {
            let mut document = self
                .format
                .parse(edited)
                .map_err(|e| format!("could not load tree, probably due to invalid syntax: {e}"))?;
            let metadata = metadata::extract(&mut document, self.format.metadata_layout())
                .map_err(|e| format!("the sops metadata is invalid: {e}"))?;
            if metadata.key_groups.iter().all(Vec::is_empty) {
                return Err(
                    "no master keys were provided, so the file cannot be encrypted".to_string(),
                );
            }
            Ok((document, Some(metadata)))
        } else {
            let document = self
                .format
                .parse_plain(edited)
                .map_err(|e| format!("could not load tree, probably due to invalid syntax: {e}"))?;
            if rsops::encrypt::holds_metadata(&document) {
                return Err(HOLDS_METADATA.to_string());
            }
            Ok((document, None))
        }
    }

    /// Shows what is wrong and waits for Enter to reopen the editor, as the
    /// reference does. Without a terminal to ask on, gives up.
    fn offer_to_retry(&self, message: String) -> Result<(), Failure> {
        let give_up = || Failure::InvalidEdit {
            file: self.file.to_string(),
            message: message.clone(),
        };
        if !std::io::stdin().is_terminal() {
            return Err(give_up());
        }
        eprintln!("rsops: {}: {message}. {PRESS_ENTER}", self.file);
        match self.interrupts.wait_for_line() {
            Waited::Line => Ok(()),
            Waited::Closed => Err(give_up()),
            Waited::Signal(signal) => Err(Failure::Interrupted {
                file: self.file.to_string(),
                signal,
            }),
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP, caught for as long as the decrypted copy
/// exists: while the editor runs they are also forwarded to it (by the
/// launcher), and rsops gives up once it has ended; at the prompt they end
/// the wait at once. Either way the copy is removed before rsops exits.
struct Interrupts {
    /// Set in the signal handler itself, so it is set before the launcher
    /// forwards the signal and the editor ends of it.
    received: Arc<AtomicUsize>,
    flags: Vec<signal_hook::SigId>,
    events: Receiver<Event>,
    sender: Sender<Event>,
    handle: signal_hook::iterator::Handle,
}

enum Event {
    Signal(i32),
    /// A line was read from standard input (`true`), or it is closed.
    Line(bool),
}

enum Waited {
    Line,
    Closed,
    Signal(i32),
}

impl Interrupts {
    fn install() -> Result<Interrupts, Failure> {
        let fail = |source| Failure::Internal {
            what: "cannot install signal handlers",
            source,
        };
        let received = Arc::new(AtomicUsize::new(0));
        let mut flags = Vec::with_capacity(INTERRUPTS.len());
        for signal in INTERRUPTS {
            let value = usize::try_from(signal).unwrap_or_default();
            let id = signal_hook::flag::register_usize(signal, Arc::clone(&received), value);
            flags.push(id.map_err(fail)?);
        }
        let mut signals = signal_hook::iterator::Signals::new(INTERRUPTS).map_err(fail)?;
        let handle = signals.handle();
        let (sender, events) = mpsc::channel();
        let forward = sender.clone();
        std::thread::Builder::new()
            .name("rsops-edit-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if forward.send(Event::Signal(signal)).is_err() {
                        break;
                    }
                }
            })
            .map_err(fail)?;
        Ok(Interrupts {
            received,
            flags,
            events,
            sender,
            handle,
        })
    }

    /// The (last) interrupting signal received, if any.
    fn received(&self) -> Option<i32> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            signal => i32::try_from(signal).ok(),
        }
    }

    /// Waits for a line on standard input, or a signal.
    fn wait_for_line(&self) -> Waited {
        let sender = self.sender.clone();
        let reader = std::thread::Builder::new()
            .name("rsops-edit-prompt".into())
            .spawn(move || {
                let mut line = String::new();
                let read = std::io::stdin().read_line(&mut line);
                let _ = sender.send(Event::Line(read.is_ok_and(|n| n > 0)));
            });
        if reader.is_err() {
            return Waited::Closed;
        }
        match self.events.recv() {
            Ok(Event::Signal(signal)) => Waited::Signal(signal),
            Ok(Event::Line(true)) => Waited::Line,
            Ok(Event::Line(false)) | Err(_) => Waited::Closed,
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        for id in self.flags.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        self.handle.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsops::metadata::CryptRule;

    #[test]
    fn older_versions_are_renewed_newer_ones_kept() {
        let with = |version: Option<&str>| {
            let mut metadata = Metadata {
                last_modified: String::new(),
                mac: String::new(),
                version: version.map(str::to_string),
                rule: CryptRule::UnencryptedSuffix("_unencrypted".into()),
                mac_only_encrypted: false,
                shamir_threshold: 0,
                key_groups: Vec::new(),
            };
            renew_version(&mut metadata);
            metadata.version.unwrap_or_default()
        };
        assert_eq!(with(Some("3.7.3")), metadata::WRITTEN_VERSION);
        assert_eq!(with(Some("2.0.0")), metadata::WRITTEN_VERSION);
        assert_eq!(with(None), metadata::WRITTEN_VERSION);
        assert_eq!(with(Some("3.13.1")), "3.13.1");
        assert_eq!(with(Some("3.11.0")), "3.11.0");
        assert_eq!(with(Some("3.12.0-rc.1")), "3.12.0-rc.1");
    }
}
