//! A throw-away GnuPG home for tests: keys generated with the real `gpg`,
//! data keys encrypted as the reference `sops` does it, and the agent
//! stopped when the home is dropped.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rsops_keysource::{Deadline, KeyEntry, KeyError, KeySource, Unwrapped};
use rsops_pgp::{PgpConfig, PgpKeySource};

/// The passphrase of protected test keys.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// Which kind of key pair to generate.
#[derive(Clone, Copy, Debug)]
pub enum Algo {
    /// RSA primary with an RSA encryption subkey.
    Rsa,
    /// ed25519 primary with a cv25519 encryption subkey.
    Ecc,
}

/// A generated key: the primary fingerprint (what sops stores as `fp`) and
/// the keygrip of its encryption subkey (what gpg-agent caches by).
#[derive(Clone, Debug)]
pub struct TestKey {
    pub fpr: String,
    pub subkey_grip: String,
}

/// A private `GNUPGHOME` (mode 0700) whose agent dies with it.
pub struct GnupgHome {
    dir: tempfile::TempDir,
}

impl GnupgHome {
    pub fn new() -> GnupgHome {
        // Short path: gpg-agent's socket path must fit in sun_path.
        let dir = tempfile::Builder::new()
            .prefix("gh")
            .tempdir_in("/tmp")
            .expect("temp GNUPGHOME");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod GNUPGHOME");
        GnupgHome { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs gpg in this home with `stdin`, returning whatever happened.
    pub fn try_gpg(&self, args: &[&str], stdin: &[u8]) -> Output {
        run(
            Command::new("gpg")
                .env("GNUPGHOME", self.path())
                .args(["--batch", "--yes"])
                .args(args),
            stdin,
        )
    }

    /// Runs gpg in this home and returns its stdout; panics on failure.
    pub fn gpg(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let out = self.try_gpg(args, stdin);
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Generates a key pair with an encryption subkey (`--quick-gen-key`
    /// alone makes none), protected by `passphrase` unless it is empty.
    pub fn generate(&self, algo: Algo, uid: &str, passphrase: &str) -> TestKey {
        let (primary, sub) = match algo {
            Algo::Rsa => ("rsa2048", "rsa2048"),
            Algo::Ecc => ("ed25519", "cv25519"),
        };
        let unlock = ["--pinentry-mode", "loopback", "--passphrase", passphrase];
        let mut args = unlock.to_vec();
        args.extend(["--quick-gen-key", uid, primary, "default", "never"]);
        self.gpg(&args, b"");
        let fpr = self.fingerprint(uid);
        let mut args = unlock.to_vec();
        args.extend(["--quick-add-key", &fpr, sub, "encr", "never"]);
        self.gpg(&args, b"");
        let subkey_grip = self.encryption_keygrip(&fpr);
        TestKey { fpr, subkey_grip }
    }

    fn fingerprint(&self, uid: &str) -> String {
        let listing = self.gpg(&["--with-colons", "--list-keys", uid], b"");
        colon_field(&listing, "fpr").expect("fingerprint in listing")
    }

    /// The keygrip of the last (encryption) subkey.
    fn encryption_keygrip(&self, fpr: &str) -> String {
        let listing = self.gpg(
            &["--with-colons", "--with-keygrip", "--list-secret-keys", fpr],
            b"",
        );
        let text = String::from_utf8_lossy(&listing);
        let grips: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("grp:"))
            .filter_map(|l| l.split(':').nth(9))
            .collect();
        grips.last().expect("subkey keygrip").to_string()
    }

    /// Encrypts `data` to `fpr` with the reference's exact gpg flags.
    pub fn encrypt(&self, fpr: &str, data: &[u8]) -> String {
        let short = &fpr[fpr.len() - 16..];
        let out = self.gpg(
            &[
                "--no-default-recipient",
                "--encrypt",
                "-a",
                "-r",
                fpr,
                "--trusted-key",
                short,
                "--no-encrypt-to",
            ],
            data,
        );
        String::from_utf8(out).expect("armored").trim().to_string()
    }

    /// Exports a secret key (armored or binary), unlocking it for export
    /// with the test passphrase when it has one.
    pub fn export_secret(&self, fpr: &str, armor: bool) -> Vec<u8> {
        let mut args = vec!["--pinentry-mode", "loopback", "--passphrase", PASSPHRASE];
        if armor {
            args.push("--armor");
        }
        args.extend(["--export-secret-keys", fpr]);
        self.gpg(&args, b"")
    }

    /// Writes a file into the home.
    pub fn write(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, content).expect("write into GNUPGHOME");
        path
    }

    /// Writes an executable script into the home.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.path().join(name);
        rsops_test_support::write_script(&path, body);
        path
    }

    /// Replaces gpg-agent.conf and restarts the agent so it takes effect.
    pub fn agent_conf(&self, conf: &str) {
        self.write("gpg-agent.conf", conf.as_bytes());
        self.kill_agent();
    }

    /// Makes gpg-agent answer every passphrase prompt through a fake
    /// pinentry: with `answer`, or by cancelling when it is `None`.
    pub fn fake_pinentry(&self, answer: Option<&str>) {
        let reply = match answer {
            Some(pass) => format!("echo \"D {pass}\"; echo OK"),
            None => "echo \"ERR 83886179 Operation cancelled <Pinentry>\"".to_string(),
        };
        let script = self.script(
            "pinentry.sh",
            &format!(
                "#!/bin/sh\necho 'OK Pleased to meet you'\nwhile read -r cmd rest; do\n  \
                 case \"$cmd\" in\n    GETPIN) {reply};;\n    BYE) echo OK; exit 0;;\n    \
                 *) echo OK;;\n  esac\ndone\n"
            ),
        );
        self.agent_conf(&format!("pinentry-program {}\n", script.display()));
    }

    /// Caches the test passphrase for `key` in gpg-agent, the way
    /// `gpg-preset-passphrase` does (CI runners unlock keys so).
    pub fn preset_passphrase(&self, key: &TestKey) {
        self.agent_conf("allow-preset-passphrase\n");
        let hex: String = PASSPHRASE.bytes().map(|b| format!("{b:02X}")).collect();
        let out = run(
            Command::new("gpg-connect-agent")
                .env("GNUPGHOME", self.path())
                .arg(format!("PRESET_PASSPHRASE {} -1 {hex}", key.subkey_grip))
                .arg("/bye"),
            b"",
        );
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !said.contains("ERR"),
            "preset failed: {said}"
        );
    }

    fn kill_agent(&self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.path())
            .args(["--kill", "all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// A key source that uses this home through `gpg_program`.
    pub fn source_with(&self, gpg_program: &str, key_files: Vec<PathBuf>) -> PgpKeySource {
        PgpKeySource::with_config(PgpConfig {
            gpg_program: gpg_program.into(),
            gnupg_home: Some(self.path().to_path_buf()),
            key_files,
        })
    }

    /// A key source that uses this home through the real gpg.
    pub fn source(&self) -> PgpKeySource {
        self.source_with("gpg", Vec::new())
    }
}

impl Drop for GnupgHome {
    fn drop(&mut self) {
        self.kill_agent();
    }
}

/// Runs a command to completion with `stdin`.
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

/// Column 10 (the fingerprint or keygrip) of the first colon-listing record
/// of type `kind`.
fn colon_field(listing: &[u8], kind: &str) -> Option<String> {
    String::from_utf8_lossy(listing)
        .lines()
        .find(|l| l.split(':').next() == Some(kind))
        .and_then(|l| l.split(':').nth(9))
        .map(str::to_string)
}

/// A `pgp` key entry as it appears in a sops file.
pub fn entry(fpr: &str, enc: &str) -> KeyEntry {
    KeyEntry {
        kind: "pgp".into(),
        fields: vec![
            ("created_at".into(), "2026-01-01T00:00:00Z".into()),
            ("enc".into(), enc.into()),
            ("fp".into(), fpr.into()),
        ],
        maps: Vec::new(),
    }
}

/// A recognisable 32-byte data key.
pub fn data_key(seed: u8) -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// Unwraps `entry` with `source`, without a deadline, as the core calls a
/// local source.
pub async fn unwrap(source: &PgpKeySource, entry: &KeyEntry) -> Result<Unwrapped, KeyError> {
    source.unwrap(entry, Deadline::NONE).await
}

/// A script that logs each call to `log` and then runs the real gpg, to
/// count how often rsops starts gpg.
pub fn counting_gpg(home: &GnupgHome, log: &Path) -> PathBuf {
    let gpg = which_gpg();
    home.script(
        "counting-gpg.sh",
        &format!(
            "#!/bin/sh\necho call >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            gpg.display()
        ),
    )
}

fn which_gpg() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("gpg"))
                .find(|p| p.is_file())
        })
        .expect("gpg on PATH")
}

/// How many times the counting gpg ran.
pub fn calls(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}
