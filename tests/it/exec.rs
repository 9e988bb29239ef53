//! `exec-env` and `exec-file` with real processes: a JSON-RPC stdio server
//! as the command, signals sent to rsops, FIFOs and files checked on disk,
//! and the reference `sops exec-*` as the oracle where the two overlap.
//!
//! Every run has a watchdog that kills it (and fails the test) if it hangs;
//! nothing here asserts on how long anything takes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use crate::util::{assert_same, Sandbox};

/// Long enough for the slowest machine; reached only if something hangs.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// A secret no environment or file of the machine holds by chance.
const SECRET: &str = "s3cr3t-7f2c9e1a-value with spaces";

/// A stdio MCP-like server: answers each JSON-RPC line with the value of
/// `params.name`, from its environment, or from the dotenv file given as its
/// argument (read again for every request, so the file is opened repeatedly).
const SERVER: &str = r##"
import json, os, sys
path = sys.argv[1] if len(sys.argv) > 1 else None
for line in sys.stdin:
    request = json.loads(line)
    name = request["params"]["name"]
    if path:
        with open(path) as f:
            values = dict(l.rstrip("\n").split("=", 1) for l in f if "=" in l and not l.startswith("#"))
        value = values.get(name)
    else:
        value = os.environ.get(name)
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {"value": value}}) + "\n")
    sys.stdout.flush()
"##;

/// A child that records the signals it gets: USR1 is noted, TERM, INT and
/// HUP are noted and end it with exit code 42. It says when it is ready.
const TRAP: &str = r#"
import os, signal, sys, time
marker, ready = sys.argv[1], sys.argv[2]
def note(sig, frame):
    with open(marker, "a") as f:
        f.write(signal.Signals(sig).name + "\n")
    if sig != signal.SIGUSR1:
        sys.exit(42)
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
    signal.signal(sig, note)
if len(sys.argv) > 3:
    open(sys.argv[3]).read()
# Written aside and renamed, so the test never reads a half-written file.
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
while True:
    time.sleep(0.05)
"#;

/// A sandbox with an encrypted dotenv file, its key, scripts, and a private `$TMPDIR`.
struct Setup {
    sandbox: Sandbox,
    key_file: PathBuf,
    tmpdir: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        Setup::with_tmpdir("tmp")
    }

    fn with_tmpdir(name: &str) -> Setup {
        let sandbox = Sandbox::new(1);
        let key_file = sandbox.key_file(&[0]);
        let tmpdir = sandbox.path(name);
        fs::create_dir(&tmpdir).expect("create TMPDIR");
        sandbox.write("server.py", SERVER.as_bytes());
        sandbox.write("trap.py", TRAP.as_bytes());
        Setup {
            sandbox,
            key_file,
            tmpdir,
        }
    }

    /// Encrypts `plain` (named `name`) with the reference.
    fn encrypt(&self, name: &str, plain: &str) -> PathBuf {
        let plain_path = self.sandbox.write(name, plain.as_bytes());
        let recipient = self.sandbox.keys[0].recipient.clone();
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
        let encrypted = self.sandbox.sops_encrypt(
            &plain_path,
            &["--age", &recipient],
            &format!("{stem}.enc.{ext}"),
        );
        fs::remove_file(plain_path).expect("remove plaintext");
        encrypted
    }

    fn dotenv(&self) -> PathBuf {
        self.encrypt("secrets.env", &format!("TOKEN={SECRET}\nPORT=5432\n"))
    }

    fn with_env(&self, mut cmd: Command) -> Command {
        cmd.env("SOPS_AGE_KEY_FILE", &self.key_file)
            .env("TMPDIR", &self.tmpdir);
        cmd
    }

    fn rsops(&self) -> Command {
        self.with_env(self.sandbox.rsops())
    }

    fn sops(&self) -> Command {
        self.with_env(self.sandbox.sops())
    }

    /// What rsops left in `$TMPDIR`: must be nothing.
    fn leftovers(&self) -> Vec<PathBuf> {
        fs::read_dir(&self.tmpdir)
            .expect("read TMPDIR")
            .map(|e| e.expect("dir entry").path())
            .collect()
    }

    #[track_caller]
    fn assert_clean(&self) {
        assert_eq!(
            self.leftovers(),
            Vec::<PathBuf>::new(),
            "temporary files left behind"
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.sandbox.path(name)
    }
}

/// Kills the process group of `pid` if `done` is not signalled within [`HANG_LIMIT`].
fn watchdog(pid: u32) -> mpsc::Sender<()> {
    let (done, finished) = mpsc::channel::<()>();
    thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(HANG_LIMIT) {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    });
    done
}

/// Starts `cmd` in its own process group (so the watchdog can end it all)
/// with piped standard streams.
fn start(cmd: &mut Command) -> Child {
    cmd.process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// Runs `cmd` with `stdin`, like `util::run`, but never for longer than [`HANG_LIMIT`].
fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = start(cmd);
    let done = watchdog(child.id());
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).ok();
    drop(input);
    let output = child.wait_with_output().expect("wait");
    let _ = done.send(());
    output
}

fn finish(child: Child) -> Output {
    let done = watchdog(child.id());
    let output = child.wait_with_output().expect("wait");
    let _ = done.send(());
    output
}

/// Waits until `path` exists (the child said it is ready).
#[track_caller]
fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < HANG_LIMIT,
            "{} never appeared",
            path.display()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_ok(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
}

fn requests(names: &[&str]) -> Vec<u8> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"get\",\"params\":{{\"name\":\"{name}\"}}}}\n", i + 1))
        .collect::<String>()
        .into_bytes()
}

fn response(id: usize, value: &str) -> String {
    format!("{{\"jsonrpc\": \"2.0\", \"id\": {id}, \"result\": {{\"value\": \"{value}\"}}}}\n")
}

/// The trap script's files for run `name`: where it notes signals, and
/// where it says it is ready.
struct Trap {
    marker: PathBuf,
    ready: PathBuf,
}

impl Trap {
    fn new(setup: &Setup, name: &str) -> Trap {
        Trap {
            marker: setup.path(&format!("{name}.signals")),
            ready: setup.path(&format!("{name}.ready")),
        }
    }

    /// `rsops SUBCOMMAND EXTRA… FILE 'exec python3 trap.py …'` (reading the
    /// file first under exec-file), not started.
    fn command(&self, setup: &Setup, subcommand: &str, extra: &[&str], file: &Path) -> Command {
        let read = if subcommand == "exec-file" { " {}" } else { "" };
        let script = format!(
            "exec python3 {} {} {}{read}",
            setup.path("trap.py").display(),
            self.marker.display(),
            self.ready.display()
        );
        let mut cmd = setup.rsops();
        cmd.arg(subcommand).args(extra).arg(file).arg(script);
        // The signals these tests send start at their defaults, however the
        // test run itself was started (`nohup` ignores SIGHUP, and rsops
        // rightly keeps an inherited ignored signal ignored).
        // SAFETY: only async-signal-safe `signal` calls between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                for signal in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM] {
                    libc::signal(signal, libc::SIG_DFL);
                }
                Ok(())
            });
        }
        cmd
    }
}

/// Starts `rsops SUBCOMMAND FILE 'python3 trap.py …'` and waits until the
/// command is ready. Returns the child, the marker file and the ready file.
fn start_trap(
    setup: &Setup,
    subcommand: &str,
    extra: &[&str],
    file: &Path,
    name: &str,
) -> (Child, PathBuf, PathBuf) {
    let trap = Trap::new(setup, name);
    let child = start(&mut trap.command(setup, subcommand, extra, file));
    wait_for(&trap.ready);
    (child, trap.marker, trap.ready)
}

#[track_caller]
fn wait_for_line(path: &Path, line: &str) {
    let start = Instant::now();
    while !fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .any(|l| l == line)
    {
        assert!(
            start.elapsed() < HANG_LIMIT,
            "{line} never noted in {}",
            path.display()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// How many times `needle` occurs in the heap and other data mappings of
/// process `pid`. The main thread's stack is left out: what decryption's
/// own frames leave there (the MAC hasher's block buffer, in debug builds)
/// is the decrypt core's to wipe, not the launcher's.
fn copies_in_memory(pid: u32, needle: &[u8]) -> usize {
    use std::io::{Read, Seek, SeekFrom};
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
    let mut mem = fs::File::open(format!("/proc/{pid}/mem")).expect("open mem");
    let mut copies = 0;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        if !perms.starts_with('r')
            || fields.any(|f| matches!(f, "[vvar]" | "[vvar_vclock]" | "[stack]"))
        {
            continue;
        }
        let mut data = vec![0; (end - start) as usize];
        if mem.seek(SeekFrom::Start(start)).is_ok() && mem.read_exact(&mut data).is_ok() {
            copies += data.windows(needle.len()).filter(|w| *w == needle).count();
        }
    }
    copies
}

// exec-env: variables, their formatting, --pristine/--keep, --same-process, --background.
mod env;
// exec-file: in-memory and file modes, {} substitution, repeated reads, argument checks.
mod file;
// Both: exit codes, signals, cleanup, what rsops' process reveals, --user.
mod process;
// The launcher's promises under hostile conditions (issue 11).
mod hostile;
// The argv form (`FILE… -- PROGRAM ARG…`): no shell, PATH lookup, several files.
mod argv;
