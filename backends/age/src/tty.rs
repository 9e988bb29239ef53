//! Talking to the user for plugins and passphrases: always on the
//! controlling terminal (`/dev/tty`), never on standard output.
//!
//! rsops' standard output carries the decrypted document, or in `exec-*`
//! mode belongs to the command (often an MCP client's JSON-RPC stream), and
//! its standard input may be that stream too. So prompts are written to and
//! answers read from `/dev/tty`; messages fall back to standard error when
//! there is no terminal, and questions then fail, which callers turn into a
//! "no terminal" error rather than a hang.
//!
//! Every read polls a cancellation flag: when the orchestrator drops an age
//! attempt (another key already unwrapped the data key), a pending prompt
//! gives up instead of stealing the user's next keystrokes from the command.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use age::secrecy::SecretString;
use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, Termios};
use zeroize::Zeroizing;

use crate::failure::Problem;

/// The longest answer read (a passphrase, a PIN); more is an error.
const MAX_ANSWER: usize = 4096;

/// Why a question could not be answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PromptError {
    /// No controlling terminal (a service, CI, a pipe): nobody to ask.
    #[error("there is no terminal to ask on ({0})")]
    NoTerminal(io::Error),
    /// The attempt was dropped while waiting for the answer.
    #[error("the question was withdrawn: the data key was found another way")]
    Cancelled,
    /// The terminal failed, closed, or the answer was unusable.
    #[error("reading the answer from the terminal failed: {0}")]
    Io(io::Error),
}

/// Shows a message on the terminal, or on standard error without one.
pub(crate) fn message(text: &str) {
    let line = format!("{text}\n");
    let shown = open_tty()
        .and_then(|mut tty| tty.write_all(line.as_bytes()))
        .is_ok();
    if !shown {
        // Standard error is the only other place a user may look; if it is
        // closed too, the message is lost, which only costs information.
        let _ = io::stderr().write_all(line.as_bytes());
    }
}

/// Asks a question on the terminal and returns the line typed (without the
/// newline). With `secret`, echo is off while the user types.
pub(crate) fn ask(
    prompt: &str,
    secret: bool,
    cancel: &AtomicBool,
) -> Result<Zeroizing<String>, PromptError> {
    let mut tty = open_tty().map_err(PromptError::NoTerminal)?;
    tty.write_all(prompt.as_bytes()).map_err(PromptError::Io)?;
    tty.flush().map_err(PromptError::Io)?;
    let answer = {
        let _echo = if secret {
            Some(EchoOff::new(&tty).map_err(PromptError::Io)?)
        } else {
            None
        };
        read_line(&tty, cancel)
    };
    if secret {
        // The user's Enter was not echoed; end the prompt line ourselves.
        let _ = tty.write_all(b"\n");
    }
    answer
}

fn open_tty() -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open("/dev/tty")
}

/// Reads up to a newline, checking `cancel` between short polls.
fn read_line(tty: &File, cancel: &AtomicBool) -> Result<Zeroizing<String>, PromptError> {
    let mut line = Zeroizing::new(Vec::with_capacity(64));
    let mut chunk = Zeroizing::new([0u8; 256]);
    let mut reader: &File = tty;
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(PromptError::Cancelled);
        }
        let mut fds = [PollFd::new(tty.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, 200u16) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(PromptError::Io(e.into())),
        }
        let n = match reader.read(&mut chunk[..]) {
            Ok(0) => {
                return Err(PromptError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the terminal closed",
                )))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PromptError::Io(e)),
        };
        line.extend_from_slice(&chunk[..n]);
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let text = std::str::from_utf8(&line).map_err(|_| {
                PromptError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the answer is not UTF-8",
                ))
            })?;
            return Ok(Zeroizing::new(text.to_string()));
        }
        if line.len() > MAX_ANSWER {
            return Err(PromptError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "the answer is too long",
            )));
        }
    }
}

/// Turns terminal echo off until dropped (also on early return).
struct EchoOff<'a> {
    tty: &'a File,
    saved: Termios,
}

impl<'a> EchoOff<'a> {
    fn new(tty: &'a File) -> io::Result<Self> {
        let saved = tcgetattr(tty.as_fd())?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(tty.as_fd(), SetArg::TCSANOW, &quiet)?;
        Ok(EchoOff { tty, saved })
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        // Nothing better can be done if restoring fails: the terminal is gone.
        let _ = tcsetattr(self.tty.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// age's plugin callbacks, answered on the terminal.
///
/// Every message is prefixed with the plugin's binary name, so the user
/// knows who asks for a PIN or a touch. A question that cannot be asked is
/// recorded, so the final error can say that a terminal was needed.
#[derive(Clone)]
pub(crate) struct TerminalCallbacks {
    /// Who is asking (`age-plugin-yubikey`).
    pub(crate) who: Arc<str>,
    /// Set when the attempt is dropped.
    pub(crate) cancel: Arc<AtomicBool>,
    /// Where questions that could not be asked are recorded.
    pub(crate) problems: Arc<Mutex<Vec<Problem>>>,
}

impl TerminalCallbacks {
    fn ask(&self, question: &str, secret: bool) -> Option<Zeroizing<String>> {
        match ask(&format!("{}: {question} ", self.who), secret, &self.cancel) {
            Ok(answer) => Some(answer),
            Err(error) => {
                self.problems
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Problem::Prompt {
                        who: self.who.to_string(),
                        error: error.to_string(),
                        no_terminal: matches!(error, PromptError::NoTerminal(_)),
                    });
                None
            }
        }
    }
}

impl age::Callbacks for TerminalCallbacks {
    fn display_message(&self, text: &str) {
        message(&format!("{}: {text}", self.who));
    }

    fn confirm(&self, text: &str, yes: &str, no: Option<&str>) -> Option<bool> {
        let no = no.unwrap_or("no");
        let answer = self.ask(&format!("{text} [{yes}/{no}]"), false)?;
        let answer = answer.trim();
        Some(answer.eq_ignore_ascii_case(yes) || answer.eq_ignore_ascii_case("y"))
    }

    fn request_public_string(&self, description: &str) -> Option<String> {
        self.ask(description, false).map(|a| a.to_string())
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        self.ask(description, true)
            .map(|a| SecretString::from(a.to_string()))
    }
}
