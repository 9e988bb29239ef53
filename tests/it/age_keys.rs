//! Every age key sops 3.13 reads (issue 12): plugin identities through a
//! real plugin binary on `PATH` (the workspace's test-only
//! `age-plugin-rsopstest`, to which the reference encrypts), its prompts on
//! the terminal and never on standard output, a missing or failing plugin;
//! passphrase-protected identity files asked on the terminal, or a clear
//! error without one; several identities in `SOPS_AGE_KEY`;
//! `SOPS_AGE_KEY_CMD` and `SOPS_AGE_SSH_PRIVATE_KEY_CMD` with
//! `SOPS_AGE_RECIPIENT`, a hanging key command that blocks nothing; RSA SSH
//! keys; a broken `~/.ssh/id_ed25519` beside a good key; post-quantum
//! entries refused with a message that says what works.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use age::secrecy::SecretString;

use crate::util::{assert_same, fixture, rsops_bin, run, Sandbox};

/// The plugin binary's name (recipients `age1rsopstest1…`).
const PLUGIN: &str = "age-plugin-rsopstest";

/// The directory holding `age-plugin-rsopstest`: next to `rsops` when the
/// workspace was built (`cargo test --workspace` builds it), else built once
/// into a target directory of its own (a nested cargo must not wait on the
/// build lock of the cargo running these tests).
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let next_to_rsops = rsops_bin()
            .parent()
            .expect("rsops has a directory")
            .to_path_buf();
        if next_to_rsops.join(PLUGIN).exists() {
            return next_to_rsops;
        }
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/age-plugin-test");
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "age-plugin-rsopstest",
                "--target-dir",
            ])
            .arg(&target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build for the test plugin");
        assert!(status.success(), "building {PLUGIN} failed");
        target.join("debug")
    })
}

/// `PATH` with the test plugin's directory first.
fn path_with_plugin() -> OsString {
    let mut path = OsString::from(plugin_dir());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    path
}

/// A fresh plugin identity: (the key file text the plugin prints, recipient).
fn plugin_key() -> (String, String) {
    let out = run(
        Command::new(plugin_dir().join(PLUGIN)).arg("--generate"),
        b"",
    );
    assert!(out.status.success(), "{PLUGIN} --generate");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# recipient: "))
        .expect("recipient line")
        .to_string();
    (text, recipient)
}

/// The identity line of a key file text.
fn identity_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .expect("identity line")
}

/// Asserts the reference succeeded (so agreeing with it proves something),
/// then that rsops printed the same bytes with the same exit code.
#[track_caller]
fn assert_same_ok(what: &str, reference: &Output, ours: &Output) {
    assert!(
        reference.status.success(),
        "{what}: the reference failed: {}",
        String::from_utf8_lossy(&reference.stderr)
    );
    assert_same(what, reference, ours);
}

/// Asserts rsops failed like "no key could decrypt" (128), printed nothing,
/// and said each of `needles`.
#[track_caller]
fn assert_key_failure(what: &str, ours: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert_eq!(ours.status.code(), Some(128), "{what}: {stderr}");
    assert!(ours.stdout.is_empty(), "{what}: plaintext on stdout");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{what}: no `{needle}` in: {stderr}"
        );
    }
}

/// A file encrypted by the reference to a fresh plugin recipient, with the
/// plugin's key file written in the sandbox.
struct PluginFile {
    sandbox: Sandbox,
    key_text: String,
    key_file: PathBuf,
    encrypted: PathBuf,
}

impl PluginFile {
    fn new() -> PluginFile {
        let sandbox = Sandbox::new(0);
        let (key_text, recipient) = plugin_key();
        let key_file = sandbox.write("plugin-keys.txt", key_text.as_bytes());
        let out = run(
            sandbox
                .sops()
                .env("PATH", path_with_plugin())
                .args(["encrypt", "--age", &recipient])
                .arg(fixture("basic.yaml")),
            b"",
        );
        assert!(
            out.status.success(),
            "sops encrypt to the plugin: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let encrypted = sandbox.write("plugin.enc.yaml", &out.stdout);
        PluginFile {
            sandbox,
            key_text,
            key_file,
            encrypted,
        }
    }

    fn reference(&self) -> Output {
        run(
            self.sandbox
                .sops()
                .env("PATH", path_with_plugin())
                .env("SOPS_AGE_KEY_FILE", &self.key_file)
                .arg("decrypt")
                .arg(&self.encrypted),
            b"",
        )
    }

    /// rsops with the plugin on PATH and the identity in SOPS_AGE_KEY_FILE.
    fn rsops(&self) -> Command {
        let mut cmd = self.sandbox.rsops();
        cmd.env("PATH", path_with_plugin())
            .env("SOPS_AGE_KEY_FILE", &self.key_file);
        cmd
    }
}

#[test]
fn plugin_identity_from_every_source() {
    let f = PluginFile::new();
    let reference = f.reference();
    let decrypt = |cmd: &mut Command| run(cmd.arg("decrypt").arg(&f.encrypted), b"");

    let ours = decrypt(&mut f.rsops());
    assert_same_ok("plugin identity in SOPS_AGE_KEY_FILE", &reference, &ours);

    let line = identity_line(&f.key_text);
    let mut cmd = f.sandbox.rsops();
    cmd.env("PATH", path_with_plugin())
        .env("SOPS_AGE_KEY", line);
    assert_same_ok(
        "plugin identity in SOPS_AGE_KEY",
        &reference,
        &decrypt(&mut cmd),
    );

    let script = f.sandbox.write(
        "plugin-key-cmd.sh",
        format!("#!/bin/sh\ncat '{}'\n", f.key_file.display()).as_bytes(),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut cmd = f.sandbox.rsops();
    cmd.env("PATH", path_with_plugin())
        .env("SOPS_AGE_KEY_CMD", &script);
    assert_same_ok(
        "plugin identity from SOPS_AGE_KEY_CMD",
        &reference,
        &decrypt(&mut cmd),
    );

    let config = f.sandbox.path(".config/sops/age");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("keys.txt"), &f.key_text).unwrap();
    let mut cmd = f.sandbox.rsops();
    cmd.env("PATH", path_with_plugin());
    assert_same_ok(
        "plugin identity in keys.txt",
        &reference,
        &decrypt(&mut cmd),
    );
}

#[test]
fn plugin_missing_from_path() {
    let f = PluginFile::new();
    let without = |cmd: &mut Command| {
        run(
            cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .arg("decrypt")
                .arg(&f.encrypted),
            b"",
        )
    };
    let reference = without(f.sandbox.sops().env("SOPS_AGE_KEY_FILE", &f.key_file));
    let ours = without(&mut f.rsops());
    assert_eq!(reference.status.code(), Some(128), "reference exit code");
    assert_key_failure(
        "plugin missing",
        &ours,
        &[&format!("`{PLUGIN}` is not on PATH"), "hint: install"],
    );
}

#[test]
fn plugin_failures_are_named_and_classified() {
    let f = PluginFile::new();
    for (env, needles) in [
        (
            ("RSOPSTEST_FAIL", "error"),
            &["denied", PLUGIN, "the token is locked"][..],
        ),
        (
            ("RSOPSTEST_FAIL", "crash"),
            &["unreachable", PLUGIN, "stopped before answering"][..],
        ),
    ] {
        let reference = run(
            f.sandbox
                .sops()
                .env("PATH", path_with_plugin())
                .env("SOPS_AGE_KEY_FILE", &f.key_file)
                .env(env.0, env.1)
                .arg("decrypt")
                .arg(&f.encrypted),
            b"",
        );
        assert_eq!(reference.status.code(), Some(128), "reference, {env:?}");
        let ours = run(
            f.rsops().env(env.0, env.1).arg("decrypt").arg(&f.encrypted),
            b"",
        );
        assert_key_failure(&format!("{env:?}"), &ours, needles);
    }
}

#[test]
fn plugin_question_without_a_terminal_fails_cleanly() {
    let f = PluginFile::new();
    let mut cmd = f.rsops();
    cmd.env("RSOPSTEST_PIN", "2468")
        .env("RSOPSTEST_MESSAGE", "touch the token")
        .arg("decrypt")
        .arg(&f.encrypted);
    let ours = run(without_terminal(&mut cmd), b"");
    assert_key_failure(
        "PIN without a terminal",
        &ours,
        &[
            "no credentials",
            "no terminal",
            PLUGIN,
            "hint: run rsops from a terminal",
        ],
    );
    // The plugin's message had nowhere else to go but standard error.
    assert!(String::from_utf8_lossy(&ours.stderr).contains("touch the token"));
}

/// Drives a command in a pseudo-terminal: answers each prompt of `steps`
/// (a regex, then the reply), sends the command's standard output to `out`
/// (not the terminal), prints the terminal transcript on standard error and
/// the command's exit code on standard output.
const PTY_DRIVER: &str = r#"
import json, os, pty, re, select, sys, time
out, steps, argv = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    f = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(f, 1)
    os.execv(argv[0], argv)
transcript = b""
seen = b""
def pump(timeout):
    global seen, transcript
    if select.select([fd], [], [], timeout)[0]:
        try:
            data = os.read(fd, 4096)
        except OSError:
            return False
        if not data:
            return False
        seen += data
        transcript += data
    return True
for pattern, reply in steps:
    end = time.time() + 60
    while not re.search(pattern.encode(), seen):
        if time.time() > end or not pump(0.1):
            sys.stderr.write(transcript.decode(errors="replace"))
            sys.exit(f"never saw {pattern!r}")
    seen = b""
    time.sleep(0.1)
    os.write(fd, reply.encode())
end = time.time() + 60
while time.time() < end and pump(0.1):
    pass
_, status = os.waitpid(pid, 0)
sys.stderr.write(transcript.decode(errors="replace"))
print(os.waitstatus_to_exitcode(status))
"#;

/// Runs `rsops ARGS` in a pseudo-terminal through [`PTY_DRIVER`]; returns
/// (exit code, what rsops printed on standard output, terminal transcript).
fn in_terminal(
    sandbox: &Sandbox,
    env: &[(&str, &OsString)],
    steps: &[(&str, &str)],
    args: &[&Path],
) -> (i32, Vec<u8>, String) {
    let driver = sandbox.write("pty_driver.py", PTY_DRIVER.as_bytes());
    let out = sandbox.path("pty.stdout");
    let steps: Vec<String> = steps
        .iter()
        .map(|(p, r)| format!("[{},{}]", json_string(p), json_string(r)))
        .collect();
    let mut cmd = sandbox.command(Path::new("python3"));
    cmd.arg(&driver)
        .arg(&out)
        .arg(format!("[{}]", steps.join(",")))
        .arg(rsops_bin())
        .args(args)
        .env("TERM", "dumb");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = run(&mut cmd, b"");
    let transcript = String::from_utf8_lossy(&output.stderr).to_string();
    let code = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("pty driver failed: {transcript}"));
    (code, std::fs::read(&out).unwrap_or_default(), transcript)
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs `cmd` in a new session, so it has no controlling terminal even when
/// the tests run in one.
fn without_terminal(cmd: &mut Command) -> &mut Command {
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        })
    }
}

#[test]
fn plugin_prompts_on_the_terminal_never_on_stdout() {
    let f = PluginFile::new();
    let reference = f.reference();
    assert!(reference.status.success());
    let path = path_with_plugin();
    let key_file = OsString::from(&f.key_file);
    let pin = OsString::from("2468");
    let message = OsString::from("touch the token");
    let (code, stdout, transcript) = in_terminal(
        &f.sandbox,
        &[
            ("PATH", &path),
            ("SOPS_AGE_KEY_FILE", &key_file),
            ("RSOPSTEST_PIN", &pin),
            ("RSOPSTEST_MESSAGE", &message),
        ],
        &[("Enter the PIN of the rsopstest token", "2468\n")],
        &[Path::new("decrypt"), &f.encrypted],
    );
    assert_eq!(code, 0, "{transcript}");
    assert_eq!(stdout, reference.stdout, "{transcript}");
    assert!(
        transcript.contains(&format!("{PLUGIN}: touch the token")),
        "{transcript}"
    );
    // Echo was off while the PIN was typed.
    assert!(!transcript.contains("2468"), "{transcript}");
    let stdout = String::from_utf8_lossy(&stdout);
    assert!(
        !stdout.contains("PIN") && !stdout.contains("touch"),
        "{stdout}"
    );
}

/// `age -p`'s output for `secret` (armored or binary) with `passphrase`.
fn passphrase_protected(secret: &str, passphrase: &str, armored: bool) -> Vec<u8> {
    use std::io::Write;
    let encryptor =
        age::Encryptor::with_user_passphrase(SecretString::from(passphrase.to_string()));
    let mut out = Vec::new();
    let format = if armored {
        age::armor::Format::AsciiArmor
    } else {
        age::armor::Format::Binary
    };
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, format).expect("armor");
    let mut writer = encryptor.wrap_output(armor).expect("encrypt");
    writeln!(writer, "# a passphrase-protected key\n{secret}").expect("write");
    writer.finish().and_then(|a| a.finish()).expect("finish");
    out
}

#[test]
fn passphrase_protected_identity_asked_on_the_terminal() {
    let sandbox = Sandbox::new(1);
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.yaml"),
        &["--age", &sandbox.keys[0].recipient],
        "secret.enc.yaml",
    );
    let plain_keys = sandbox.key_file(&[0]);
    let (reference, _) = sandbox.both(&plain_keys, &["decrypt"], &encrypted);
    assert!(reference.status.success());
    let protected = sandbox.write(
        "protected-keys.txt",
        &passphrase_protected(&sandbox.keys[0].secret, "correct horse", true),
    );
    let key_file = OsString::from(&protected);
    // A wrong passphrase first: asked again, then the right one works.
    let (code, stdout, transcript) = in_terminal(
        &sandbox,
        &[("SOPS_AGE_KEY_FILE", &key_file)],
        &[
            ("Enter passphrase for identity", "wrong horse\n"),
            ("Enter passphrase for identity", "correct horse\n"),
        ],
        &[Path::new("decrypt"), &encrypted],
    );
    assert_eq!(code, 0, "{transcript}");
    assert_eq!(stdout, reference.stdout, "{transcript}");
    assert!(
        transcript.contains("wrong passphrase, try again"),
        "{transcript}"
    );
    assert!(!transcript.contains("horse"), "echoed: {transcript}");

    // No terminal: a clear error naming the file, exit 128.
    let binary = sandbox.write(
        "protected-keys.age",
        &passphrase_protected(&sandbox.keys[0].secret, "correct horse", false),
    );
    let mut cmd = sandbox.rsops();
    cmd.env("SOPS_AGE_KEY_FILE", &binary)
        .arg("decrypt")
        .arg(&encrypted);
    let ours = run(without_terminal(&mut cmd), b"");
    let mut cmd = sandbox.sops();
    cmd.env("SOPS_AGE_KEY_FILE", &binary)
        .arg("decrypt")
        .arg(&encrypted);
    let reference = run(without_terminal(&mut cmd), b"");
    assert_eq!(
        reference.status.code(),
        Some(128),
        "reference without a terminal: {}",
        String::from_utf8_lossy(&reference.stderr)
    );
    assert_key_failure(
        "passphrase without a terminal",
        &ours,
        &[
            "no terminal",
            "protected-keys.age",
            "hint: run rsops from a terminal",
        ],
    );
}

#[test]
fn several_identities_in_sops_age_key() {
    let sandbox = Sandbox::new(3);
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.yaml"),
        &["--age", &sandbox.keys[2].recipient],
        "secret.enc.yaml",
    );
    let k = |i: usize| sandbox.keys[i].secret.as_str();
    let decrypt = |mut cmd: Command, value: &str| {
        run(
            cmd.env("SOPS_AGE_KEY", value)
                .arg("decrypt")
                .arg(&encrypted),
            b"",
        )
    };
    // One per line: the reference 3.11 reads them too.
    let lines = format!("{}\n{}\n{}\n", k(0), k(1), k(2));
    let reference = decrypt(sandbox.sops(), &lines);
    assert_same_ok(
        "SOPS_AGE_KEY, one per line",
        &reference,
        &decrypt(sandbox.rsops(), &lines),
    );
    // Several on a line, separated by spaces: sops ≥ 3.12 only (3.11 fails
    // to parse the line), so the 3.11 output above is the expectation.
    for (what, value) in [
        ("spaces", format!("{} {}  {}", k(0), k(1), k(2))),
        (
            "spaces and lines",
            format!("# keys\n{} {}\n\n{}", k(0), k(1), k(2)),
        ),
    ] {
        assert_same_ok(
            &format!("SOPS_AGE_KEY with {what}"),
            &reference,
            &decrypt(sandbox.rsops(), &value),
        );
    }
}

#[test]
fn key_command_runs_per_recipient_with_sops_age_recipient() {
    // Two recipients; the command knows only the second one's key, and only
    // hands it out when asked for that recipient (as sops ≥ 3.12 asks).
    let sandbox = Sandbox::new(2);
    let recipients = format!(
        "{},{}",
        sandbox.keys[0].recipient, sandbox.keys[1].recipient
    );
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.yaml"),
        &["--age", &recipients],
        "secret.enc.yaml",
    );
    let log = sandbox.path("asked.log");
    let script = sandbox.write(
        "key-cmd.sh",
        format!(
            "#!/bin/sh\necho \"$SOPS_AGE_RECIPIENT\" >> '{}'\n\
             if [ \"$SOPS_AGE_RECIPIENT\" = '{}' ]; then echo '{}'; fi\n",
            log.display(),
            sandbox.keys[1].recipient,
            sandbox.keys[1].secret
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (reference, _) = sandbox.both(&sandbox.key_file(&[1]), &["decrypt"], &encrypted);
    let ours = run(
        sandbox
            .rsops()
            .env("SOPS_AGE_KEY_CMD", &script)
            .arg("decrypt")
            .arg(&encrypted),
        b"",
    );
    assert_same_ok("SOPS_AGE_KEY_CMD per recipient", &reference, &ours);
    let asked = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        asked.lines().any(|l| l == sandbox.keys[1].recipient),
        "{asked}"
    );
    assert!(
        asked
            .lines()
            .all(|l| l == sandbox.keys[0].recipient || l == sandbox.keys[1].recipient),
        "{asked}"
    );
}

#[test]
fn hanging_key_command_blocks_no_other_key_source() {
    // An age entry whose key command never returns, beside a PGP entry gpg
    // can unwrap: the data key comes from gpg, the command is killed.
    let sandbox = Sandbox::new(1);
    let gnupg = sandbox.path("gnupg");
    std::fs::create_dir(&gnupg).unwrap();
    std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        let out = run(
            Command::new("gpg")
                .env("GNUPGHOME", &gnupg)
                .args([
                    "--batch",
                    "--yes",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase",
                    "",
                ])
                .args(args),
            b"",
        );
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    gpg(&[
        "--quick-gen-key",
        "rsops age test <age@example.org>",
        "ed25519",
        "default",
        "never",
    ]);
    let listing = gpg(&["--with-colons", "--list-keys", "age@example.org"]);
    let fpr = listing
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .map(|l| l.trim_matches(':').to_string())
        .expect("fingerprint");
    gpg(&["--quick-add-key", &fpr, "cv25519", "encr", "never"]);
    let encrypted = {
        let out = run(
            sandbox
                .sops()
                .env("GNUPGHOME", &gnupg)
                .args([
                    "encrypt",
                    "--age",
                    &sandbox.keys[0].recipient,
                    "--pgp",
                    &fpr,
                ])
                .arg(fixture("basic.yaml")),
            b"",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        sandbox.write("secret.enc.yaml", &out.stdout)
    };
    let (reference, _) = sandbox.both(&sandbox.key_file(&[0]), &["decrypt"], &encrypted);
    let pid_file = sandbox.path("key-cmd.pid");
    let script = sandbox.write(
        "hanging-key-cmd.sh",
        format!(
            "#!/bin/sh\necho $$ > '{}'\nexec sleep 600\n",
            pid_file.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut child = sandbox
        .rsops()
        .env("GNUPGHOME", &gnupg)
        .env("SOPS_AGE_KEY_CMD", &script)
        .args(["decrypt"])
        .arg(&encrypted)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rsops");
    // A liveness guard, not a timing assertion: before the fix rsops waited
    // for the command forever.
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("rsops is still waiting for the hanging key command");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let ours = child.wait_with_output().expect("output");
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &gnupg)
        .args(["--kill", "all"])
        .status();
    assert_same_ok("age key command hangs, PGP unwraps", &reference, &ours);
    // The command was started, and did not outlive the attempt.
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        assert!(
            matches!(state, None | Some("Z") | Some("X")),
            "the key command still runs: {stat}"
        );
    }
}

#[test]
fn ssh_private_key_command() {
    let sandbox = Sandbox::new(0);
    let key = sandbox.path("elsewhere_ed25519");
    ssh_keygen(&key, "ed25519");
    let recipient = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let recipient = recipient.trim();
    let encrypted =
        sandbox.sops_encrypt(&fixture("basic.yaml"), &["--age", recipient], "s.enc.yaml");
    // The reference 3.11 predates SOPS_AGE_SSH_PRIVATE_KEY_CMD: its output
    // with the key given by file is what the command must give.
    let reference = run(
        sandbox
            .sops()
            .env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &key)
            .arg("decrypt")
            .arg(&encrypted),
        b"",
    );
    let log = sandbox.path("ssh-asked.log");
    let script = sandbox.write(
        "ssh-key-cmd.sh",
        format!(
            "#!/bin/sh\necho \"$SOPS_AGE_RECIPIENT\" > '{}'\ncat '{}'\n",
            log.display(),
            key.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ours = run(
        sandbox
            .rsops()
            .env("SOPS_AGE_SSH_PRIVATE_KEY_CMD", &script)
            .arg("decrypt")
            .arg(&encrypted),
        b"",
    );
    assert_same_ok("SOPS_AGE_SSH_PRIVATE_KEY_CMD", &reference, &ours);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap_or_default().trim(),
        recipient
    );
}

fn ssh_keygen(path: &Path, kind: &str) {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", "", "-C", "test", "-f"])
        .arg(path);
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    let status = cmd.status().expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen -t {kind}");
}

#[test]
fn ssh_rsa_identity() {
    let sandbox = Sandbox::new(0);
    let ssh = sandbox.path(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    ssh_keygen(&ssh.join("id_rsa"), "rsa");
    let recipient = std::fs::read_to_string(ssh.join("id_rsa.pub")).unwrap();
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.env"),
        &["--age", recipient.trim()],
        "secret.enc.env",
    );
    let reference = run(sandbox.sops().arg("decrypt").arg(&encrypted), b"");
    let ours = run(sandbox.rsops().arg("decrypt").arg(&encrypted), b"");
    assert_same_ok("~/.ssh/id_rsa", &reference, &ours);
}

#[test]
fn broken_ssh_key_does_not_hide_a_good_identity() {
    // sops issue #1987: an unparsable ~/.ssh/id_ed25519 beside a key file.
    let sandbox = Sandbox::new(1);
    let ssh = sandbox.path(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(
        ssh.join("id_ed25519"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.yaml"),
        &["--age", &sandbox.keys[0].recipient],
        "secret.enc.yaml",
    );
    let key_file = sandbox.key_file(&[0]);
    let (reference, ours) = sandbox.both(&key_file, &["decrypt"], &encrypted);
    assert_same_ok("broken ~/.ssh/id_ed25519", &reference, &ours);
    // Verbose: the skipped key is noted on standard error.
    let ours = run(
        sandbox
            .rsops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .env("RSOPS_LOG", "1")
            .arg("decrypt")
            .arg(&encrypted),
        b"",
    );
    assert_same_ok("broken ~/.ssh/id_ed25519, RSOPS_LOG", &reference, &ours);
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert!(stderr.contains("skipped: ~/.ssh/id_ed25519"), "{stderr}");
}

/// The post-quantum identity of c2sp.org/age's test vectors (CCTV `hybrid`).
const PQ_IDENTITY: &str =
    "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7PU2LHT8EH9W6YLNC3SW78XKG";

#[test]
fn post_quantum_entries_are_refused_clearly() {
    let sandbox = Sandbox::new(1);
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.yaml"),
        &["--age", &sandbox.keys[0].recipient],
        "secret.enc.yaml",
    );
    // A post-quantum line in a key file does not spoil the file's other keys.
    let mixed = sandbox.write(
        "mixed-keys.txt",
        format!("{PQ_IDENTITY}\n{}\n", sandbox.keys[0].secret).as_bytes(),
    );
    let (reference, _) = sandbox.both(&sandbox.key_file(&[0]), &["decrypt"], &encrypted);
    let ours = run(
        sandbox
            .rsops()
            .env("SOPS_AGE_KEY_FILE", &mixed)
            .arg("decrypt")
            .arg(&encrypted),
        b"",
    );
    assert_same_ok(
        "post-quantum identity beside an X25519 one",
        &reference,
        &ours,
    );

    // An entry for an age1pq1… recipient: refused, saying what works.
    let text = std::fs::read_to_string(&encrypted).unwrap();
    let pq = text.replace(
        &sandbox.keys[0].recipient,
        "age1pq1x34nzsvr0rxjsgdn8zgyhfe8j7ce",
    );
    let pq_file = sandbox.write("pq.enc.yaml", pq.as_bytes());
    let ours = run(
        sandbox
            .rsops()
            .env("SOPS_AGE_KEY", PQ_IDENTITY)
            .arg("decrypt")
            .arg(&pq_file),
        b"",
    );
    assert_key_failure(
        "post-quantum entry",
        &ours,
        &[
            "post-quantum age recipient",
            "age1pq1",
            "hint: decrypt with sops ≥ 3.12",
        ],
    );
}

#[test]
fn passphrase_protected_ssh_key_asked_on_the_terminal() {
    let sandbox = Sandbox::new(0);
    let ssh = sandbox.path(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let key = ssh.join("id_ed25519");
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "open sesame",
            "-C",
            "test",
            "-f",
        ])
        .arg(&key)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    let recipient = std::fs::read_to_string(ssh.join("id_ed25519.pub")).unwrap();
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.yaml"),
        &["--age", recipient.trim()],
        "secret.enc.yaml",
    );
    // The same key without its passphrase gives the expected output.
    let plain = sandbox.path("plain_ed25519");
    std::fs::copy(&key, &plain).unwrap();
    let status = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "open sesame", "-N", "", "-f"])
        .arg(&plain)
        .status()
        .expect("ssh-keygen -p runs");
    assert!(status.success());
    let reference = run(
        sandbox
            .sops()
            .env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &plain)
            .env("HOME", sandbox.path("elsewhere"))
            .arg("decrypt")
            .arg(&encrypted),
        b"",
    );
    assert!(reference.status.success());
    let (code, stdout, transcript) = in_terminal(
        &sandbox,
        &[],
        &[(
            "Enter passphrase for \"~/.ssh/id_ed25519\"",
            "open sesame\n",
        )],
        &[Path::new("decrypt"), &encrypted],
    );
    assert_eq!(code, 0, "{transcript}");
    assert_eq!(stdout, reference.stdout, "{transcript}");
    assert!(!transcript.contains("sesame"), "echoed: {transcript}");
    // A file encrypted to an X25519 key only never asks for the SSH passphrase.
    let other = Sandbox::new(1);
    let x25519 = sandbox.sops_encrypt(
        &fixture("basic.yaml"),
        &["--age", &other.keys[0].recipient],
        "x25519.enc.yaml",
    );
    let mut cmd = sandbox.rsops();
    cmd.arg("decrypt").arg(&x25519);
    let ours = run(without_terminal(&mut cmd), b"");
    assert_key_failure(
        "X25519 file, protected SSH key",
        &ours,
        &["none of the 1 age identities found (~/.ssh/id_ed25519) matches"],
    );
    assert!(!String::from_utf8_lossy(&ours.stderr).contains("terminal"));
}
