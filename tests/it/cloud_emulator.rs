//! Runs the cloud KMS emulators (`tests/emulators/*.py`) and builds the
//! files the GCP and Azure tests decrypt: a document the reference sops
//! encrypted for an age key, with a second entry wrapping the same data key
//! through an emulator, laid out as the reference writes such entries.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::util::{run, Sandbox};

/// A running emulator; stopped (stdin closed, then killed) when dropped.
pub struct Emulator {
    child: Child,
    script: PathBuf,
    pub dir: tempfile::TempDir,
    pub info: serde_json::Value,
}

/// The venv's Python, told not to leave `__pycache__` in the source tree.
fn python() -> Command {
    let mut cmd = Command::new(python_bin());
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

fn python_bin() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} not found: run scripts/setup (it installs tests/requirements.txt)",
        python.display()
    );
    python
}

impl Emulator {
    /// Starts `tests/emulators/<script>` and waits until it has written its
    /// ports, certificate and credentials to `info.json`.
    pub fn start(script: &str) -> Emulator {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/emulators")
            .join(script);
        let dir = tempfile::tempdir().expect("emulator state dir");
        let mut child = python()
            .arg(&script)
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start emulator");
        let info_path = dir.path().join("info.json");
        let started = Instant::now();
        while !info_path.exists() {
            if let Some(status) = child.try_wait().expect("poll emulator") {
                let mut stderr = String::new();
                if let Some(mut err) = child.stderr.take() {
                    err.read_to_string(&mut stderr).ok();
                }
                panic!(
                    "{} exited with {status} (is `cryptography` installed? run scripts/setup):\n{stderr}",
                    script.display()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} did not start",
                script.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let info = serde_json::from_slice(&std::fs::read(&info_path).expect("read info.json"))
            .expect("parse info.json");
        Emulator {
            child,
            script,
            dir,
            info,
        }
    }

    /// A string from `info.json` by JSON pointer (`/tokens/valid`).
    pub fn get(&self, pointer: &str) -> String {
        self.info
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("info.json has no {pointer}"))
            .to_string()
    }

    /// Makes the decrypt of `key` answer after `seconds` from the next
    /// request on (the emulators read `delay-KEY` in their state dir).
    pub fn set_delay(&self, key: &str, seconds: u64) {
        std::fs::write(
            self.dir.path().join(format!("delay-{key}")),
            seconds.to_string(),
        )
        .expect("write the emulator's delay file");
    }

    /// Wraps `plaintext` with the emulator's own encrypt endpoint, returning
    /// the `enc` string as the reference would store it.
    pub fn encrypt(&self, key: &str, plaintext: &[u8]) -> String {
        let output = python()
            .arg(&self.script)
            .arg(self.dir.path())
            .arg("encrypt")
            .arg(key)
            .arg(base64::engine::general_purpose::STANDARD.encode(plaintext))
            .output()
            .expect("run emulator client");
        assert!(
            output.status.success(),
            "emulator encrypt failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .expect("utf-8")
            .trim()
            .to_string()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

const PLAINTEXT: &str = "\
# database settings
database:
    user: admin
    password: s3cr3t
    port: 5432
api_keys:
    - alpha
    - beta: true
empty: \"\"
unicode: héllo wörld
";

/// A reference-encrypted document and what the reference prints for it.
pub struct Fixture {
    pub sandbox: Sandbox,
    /// The reference's file, age entry only.
    pub encrypted: String,
    pub data_key: Vec<u8>,
    pub expected: Output,
}

impl Fixture {
    pub fn new() -> Fixture {
        let sandbox = Sandbox::new(1);
        let plain = sandbox.write("plain.yaml", PLAINTEXT.as_bytes());
        let recipient = sandbox.keys[0].recipient.clone();
        let path = sandbox.sops_encrypt(&plain, &["--age", &recipient], "age.enc.yaml");
        let encrypted = std::fs::read_to_string(&path).expect("read encrypted file");
        let data_key = age_data_key(&encrypted, &sandbox.keys[0].secret);
        let expected = run(
            sandbox
                .sops()
                .env("SOPS_AGE_KEY", &sandbox.keys[0].secret)
                .args(["decrypt"])
                .arg(&path),
            b"",
        );
        assert!(expected.status.success(), "reference decrypt failed");
        Fixture {
            sandbox,
            encrypted,
            data_key,
            expected,
        }
    }

    /// Writes the document with `entry` (a metadata list such as
    /// `gcp_kms:\n        - …`) inserted before `age`, where the reference
    /// puts it; checks the reference still reads the file.
    pub fn with_entry(&self, name: &str, entry: &str) -> PathBuf {
        let marker = "sops:\n    age:\n";
        assert!(
            self.encrypted.contains(marker),
            "unexpected reference layout"
        );
        let text = self
            .encrypted
            .replacen(marker, &format!("sops:\n{entry}    age:\n"), 1);
        let path = self.sandbox.write(name, text.as_bytes());
        let reference = run(
            self.sandbox
                .sops()
                .env("SOPS_AGE_KEY", &self.sandbox.keys[0].secret)
                .arg("decrypt")
                .arg(&path),
            b"",
        );
        assert_eq!(
            reference.stdout,
            self.expected.stdout,
            "the reference does not read the file with the added entry: {}",
            String::from_utf8_lossy(&reference.stderr)
        );
        path
    }

    /// Runs `rsops decrypt FILE` with no age key and the given environment,
    /// killed if it outlives a generous watchdog.
    pub fn rsops(&self, file: &Path, env: &[(String, String)]) -> Output {
        self.rsops_with(&[], file, env)
    }

    /// `rsops decrypt ARGS… FILE`, as [`Fixture::rsops`].
    pub fn rsops_with(&self, args: &[&str], file: &Path, env: &[(String, String)]) -> Output {
        let mut cmd = self.sandbox.rsops();
        cmd.arg("decrypt").args(args).arg(file);
        for (name, value) in env {
            cmd.env(name, value);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rsops");
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    pipe.read_to_end(&mut bytes).ok();
                }
                bytes
            })
        };
        let stdout = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stderr = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll rsops") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(120) {
                child.kill().ok();
                child.wait().ok();
                panic!("rsops did not finish within the 120 s watchdog");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: stdout.join().expect("stdout"),
            stderr: stderr.join().expect("stderr"),
        }
    }

    /// Asserts rsops printed exactly what the reference printed.
    #[track_caller]
    pub fn assert_decrypts(&self, what: &str, output: &Output) {
        assert!(
            output.status.success(),
            "{what}: rsops failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&self.expected.stdout),
            "{what}: output differs"
        );
    }

    /// Asserts rsops failed like the reference fails to get a data key
    /// (exit 128, nothing on stdout) and its message says `needle`.
    #[track_caller]
    pub fn assert_fails(&self, what: &str, output: &Output, needle: &str) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(128),
            "{what}: exit code; stderr: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{what}: printed plaintext");
        assert!(
            stderr.to_lowercase().contains(&needle.to_lowercase()),
            "{what}: stderr lacks {needle:?}: {stderr}"
        );
    }
}

/// Asserts rsops gave up on the entry `id` (its kind and identifier, as the
/// report prints them) exactly at a deadline of `millis`: exit 128, nothing
/// on stdout, and the report's line for it says so. The wording is the
/// orchestrator's (`src/keys/report.rs`); a backend's own timeout, or no
/// deadline at all, reads differently.
#[track_caller]
pub fn assert_timed_out(what: &str, output: &Output, id: &str, millis: u64) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(128),
        "{what}: exit code; stderr: {stderr}"
    );
    assert!(output.stdout.is_empty(), "{what}: printed plaintext");
    let line = format!("{id}: timed out after {millis} ms");
    assert!(
        stderr.lines().any(|l| l.trim_start().starts_with(&line)),
        "{what}: no line starting {line:?} in: {stderr}"
    );
}

/// The data key, from the reference's age entry.
fn age_data_key(encrypted: &str, secret: &str) -> Vec<u8> {
    let begin = encrypted
        .find("-----BEGIN AGE ENCRYPTED FILE-----")
        .expect("age entry");
    let end_marker = "-----END AGE ENCRYPTED FILE-----";
    let end = encrypted[begin..].find(end_marker).expect("age entry end") + begin;
    let armored: String = encrypted[begin..end + end_marker.len()]
        .lines()
        .map(|l| format!("{}\n", l.trim()))
        .collect();
    let identity: age::x25519::Identity = secret.parse().expect("age identity");
    let decryptor = age::Decryptor::new(age::armor::ArmoredReader::new(armored.as_bytes()))
        .expect("age header");
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .expect("age decrypt");
    let mut key = Vec::new();
    reader.read_to_end(&mut key).expect("read data key");
    assert_eq!(key.len(), 32, "data key length");
    key
}

/// `created_at` as the reference writes it (RFC 3339, UTC, quoted by YAML).
pub const CREATED_AT: &str = "\"2026-01-02T03:04:05Z\"";
