//! PGP keys end to end: files encrypted by the reference `sops` with
//! `--pgp FPR` (RSA, ed25519/cv25519, several keys, key groups mixing age
//! and PGP) and the reference repository's own vectors decrypt with rsops to
//! exactly what `sops decrypt` prints — through gpg, and, in a build with
//! `--features pgp-key-files`, with gpg absent from `PATH` through key files.
//! The default build, which reads no key files, says so and how to build
//! one that does. A missing secret key exits 128.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::{assert_same, fixture, run, Sandbox};

/// A sandbox with its own `GNUPGHOME` (mode 0700) whose gpg-agent is
/// stopped when the test ends.
struct PgpSandbox {
    sandbox: Sandbox,
    gnupg: PathBuf,
}

impl PgpSandbox {
    fn new(age_keys: usize) -> PgpSandbox {
        let sandbox = Sandbox::new(age_keys);
        let gnupg = sandbox.path("gnupg");
        std::fs::create_dir(&gnupg).expect("GNUPGHOME");
        std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        PgpSandbox { sandbox, gnupg }
    }

    /// gpg in this sandbox's home; panics on failure.
    fn gpg(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let out = run(
            Command::new("gpg")
                .env("GNUPGHOME", &self.gnupg)
                .args([
                    "--batch",
                    "--yes",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase",
                    "",
                ])
                .args(args),
            stdin,
        );
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Generates a key pair with an encryption subkey; returns the primary
    /// fingerprint (what sops stores as `fp`).
    fn generate(&self, uid: &str, primary: &str, subkey: &str) -> String {
        self.gpg(&["--quick-gen-key", uid, primary, "default", "never"], b"");
        let listing = self.gpg(&["--with-colons", "--list-keys", uid], b"");
        let fpr = String::from_utf8_lossy(&listing)
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("fingerprint")
            .to_string();
        self.gpg(&["--quick-add-key", &fpr, subkey, "encr", "never"], b"");
        fpr
    }

    fn rsa(&self, uid: &str) -> String {
        self.generate(uid, "rsa2048", "rsa2048")
    }

    fn ecc(&self, uid: &str) -> String {
        self.generate(uid, "ed25519", "cv25519")
    }

    fn delete_secret_key(&self, fpr: &str) {
        self.gpg(&["--delete-secret-keys", fpr], b"");
    }

    fn export_secret_key(&self, fpr: &str, armor: bool) -> Vec<u8> {
        let mut args = vec!["--export-secret-keys", fpr];
        if armor {
            args.insert(0, "--armor");
        }
        self.gpg(&args, b"")
    }

    fn with_home(&self, mut cmd: Command) -> Command {
        cmd.env("GNUPGHOME", &self.gnupg);
        cmd
    }

    fn sops(&self) -> Command {
        self.with_home(self.sandbox.sops())
    }

    fn rsops(&self) -> Command {
        self.with_home(self.sandbox.rsops())
    }

    /// Encrypts a fixture with the reference, GNUPGHOME set.
    fn encrypt(&self, plain: &Path, args: &[&str], out_name: &str) -> PathBuf {
        let output = run(self.sops().arg("encrypt").args(args).arg(plain), b"");
        assert!(
            output.status.success(),
            "sops encrypt {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.sandbox.write(out_name, &output.stdout)
    }

    /// `sops decrypt` and `rsops decrypt` of `file` (plus `args`) must agree.
    fn assert_decrypts_like_sops(&self, file: &Path, args: &[&str]) {
        let reference = run(self.sops().arg("decrypt").args(args).arg(file), b"");
        assert!(
            reference.status.success(),
            "reference could not decrypt {}: {}",
            file.display(),
            String::from_utf8_lossy(&reference.stderr)
        );
        let ours = run(self.rsops().arg("decrypt").args(args).arg(file), b"");
        assert_same(&file.display().to_string(), &reference, &ours);
    }

    /// The reference's plaintext of `file`, decrypted through gpg.
    fn reference_plaintext(&self, file: &Path) -> Output {
        let reference = run(self.sops().arg("decrypt").arg(file), b"");
        assert!(reference.status.success(), "reference decrypt");
        reference
    }
}

impl Drop for PgpSandbox {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.gnupg)
            .args(["--kill", "all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A directory holding no `gpg`, to put on `PATH` in its place.
fn path_without_gpg(sandbox: &Sandbox) -> PathBuf {
    let dir = sandbox.path("empty-bin");
    std::fs::create_dir_all(&dir).expect("empty PATH dir");
    dir
}

#[test]
fn rsa_key_every_format() {
    let s = PgpSandbox::new(0);
    let fpr = s.rsa("rsa <rsa@example.com>");
    for name in [
        "basic.yaml",
        "basic.json",
        "basic.env",
        "basic.ini",
        "multidoc.yaml",
    ] {
        let ext = name.rsplit('.').next().unwrap_or("bin");
        let file = s.encrypt(
            &fixture(name),
            &["--pgp", &fpr],
            &format!("{name}.enc.{ext}"),
        );
        s.assert_decrypts_like_sops(&file, &[]);
    }
}

#[test]
fn cv25519_subkey_under_ed25519_primary() {
    let s = PgpSandbox::new(0);
    let fpr = s.ecc("ecc <ecc@example.com>");
    let file = s.encrypt(&fixture("basic.yaml"), &["--pgp", &fpr], "secret.enc.yaml");
    s.assert_decrypts_like_sops(&file, &[]);
    let binary = s.encrypt(&fixture("basic.bin"), &["--pgp", &fpr], "secret.enc.bin");
    s.assert_decrypts_like_sops(&binary, &[]);
}

#[test]
fn several_keys_only_the_second_held() {
    let s = PgpSandbox::new(0);
    let first = s.rsa("first <first@example.com>");
    let second = s.ecc("second <second@example.com>");
    let keys = format!("{first},{second}");
    let file = s.encrypt(&fixture("basic.json"), &["--pgp", &keys], "secret.enc.json");
    s.delete_secret_key(&first);
    s.assert_decrypts_like_sops(&file, &[]);
}

#[test]
fn key_groups_mixing_age_and_pgp() {
    let s = PgpSandbox::new(2);
    let rsa = s.rsa("rsa <rsa@example.com>");
    let ecc = s.ecc("ecc <ecc@example.com>");
    let age = |i: usize| s.sandbox.keys[i].recipient.clone();
    // Shamir 2-of-3: the first age group is unavailable below, so both
    // PGP groups are needed.
    let shamir = format!(
        "creation_rules:\n  - path_regex: shamir\n    shamir_threshold: 2\n    key_groups:\n\
         \x20     - age:\n          - {}\n\
         \x20     - pgp:\n          - {rsa}\n\
         \x20     - pgp:\n          - {ecc}\n        age:\n          - {}\n\
         \x20 - path_regex: all\n    key_groups:\n\
         \x20     - age:\n          - {}\n\
         \x20     - pgp:\n          - {ecc}\n",
        age(0),
        age(1),
        age(1),
    );
    s.sandbox.write(".sops.yaml", shamir.as_bytes());
    let copy = |from: &str, to: &str| {
        s.sandbox
            .write(to, &std::fs::read(fixture(from)).expect("fixture"))
    };
    let shamir_file = s.encrypt(&copy("basic.yaml", "shamir.yaml"), &[], "shamir.enc.yaml");
    let all_file = s.encrypt(&copy("basic.env", "all.env"), &[], "all.enc.env");
    let age_key = s.sandbox.key_file(&[1]);
    for file in [&shamir_file, &all_file] {
        let reference = run(
            s.sops()
                .env("SOPS_AGE_KEY_FILE", &age_key)
                .arg("decrypt")
                .arg(file),
            b"",
        );
        let ours = run(
            s.rsops()
                .env("SOPS_AGE_KEY_FILE", &age_key)
                .arg("decrypt")
                .arg(file),
            b"",
        );
        assert!(
            reference.status.success(),
            "reference decrypt of {}",
            file.display()
        );
        assert_same(&file.display().to_string(), &reference, &ours);
    }
}

/// The reference repository's vectors: file, extra decrypt arguments, and
/// whether its data key was wrapped by sops' old built-in Go OpenPGP code,
/// whose messages break RFC 9580 framing rules (partial body chunks under
/// 512 bytes, unnormalised MPIs) so that only gpg reads them.
const VECTORS: &[(&str, &[&str], bool)] = &[
    ("example.yaml", &[], true),
    ("example.json", &[], true),
    ("example.ini", &[], true),
    ("example.txt", &[], true),
    ("functional-tests_res_comments.enc.yaml", &[], false),
    ("functional-tests_res_format-2.enc.ini", &[], false),
    ("functional-tests_res_format.enc.env", &[], false),
    ("functional-tests_res_format.enc.ini", &[], false),
    ("functional-tests_res_format.enc.json", &[], false),
    ("functional-tests_res_format.enc.yaml", &[], false),
    ("functional-tests_res_multiple_keys.yaml", &[], false),
    ("functional-tests_res_no_mac.yaml", &["--ignore-mac"], true),
];

#[test]
fn reference_repository_vectors() {
    let s = PgpSandbox::new(0);
    let key_file = fixture("getsops/pgp_sops_functional_tests_key.asc");
    s.gpg(&["--import"], &std::fs::read(&key_file).expect("key"));
    for &(name, args, _) in VECTORS {
        s.assert_decrypts_like_sops(&fixture(&format!("getsops/{name}")), args);
    }
}

#[cfg(feature = "pgp-key-files")]
#[test]
fn reference_repository_vectors_without_gpg() {
    let s = PgpSandbox::new(0);
    let key_file = fixture("getsops/pgp_sops_functional_tests_key.asc");
    s.gpg(&["--import"], &std::fs::read(&key_file).expect("key"));
    let no_gpg = path_without_gpg(&s.sandbox);
    for &(name, args, old_go_message) in VECTORS {
        let file = fixture(&format!("getsops/{name}"));
        // gpg gone from rsops' PATH: Sequoia reads the key file.
        let mut without_gpg = s.rsops();
        without_gpg
            .env("PATH", &no_gpg)
            .env("RSOPS_PGP_KEY_FILE", &key_file)
            .arg("decrypt")
            .args(args)
            .arg(&file);
        if old_go_message {
            expect_128(
                &mut without_gpg,
                &["cannot be read without gpg", "sops rotate"],
            );
        } else {
            let reference = run(s.sops().arg("decrypt").args(args).arg(&file), b"");
            assert_same(
                &format!("{name} without gpg"),
                &reference,
                &run(&mut without_gpg, b""),
            );
        }
    }
}

/// Both kinds of key, armored and binary, named together in one
/// `:`-separated `RSOPS_PGP_KEY_FILE`, each file found for its entry.
#[cfg(feature = "pgp-key-files")]
#[test]
fn gpg_absent_from_path_uses_key_files() {
    let s = PgpSandbox::new(0);
    let rsa = s.rsa("rsa <rsa@example.com>");
    let ecc = s.ecc("ecc <ecc@example.com>");
    let no_gpg = path_without_gpg(&s.sandbox);
    let rsa_file = s.sandbox.write("rsa.asc", &s.export_secret_key(&rsa, true));
    let ecc_file = s
        .sandbox
        .write("ecc.gpg", &s.export_secret_key(&ecc, false));
    let key_files = std::env::join_paths([&rsa_file, &ecc_file]).expect("no ':' in paths");
    for (fpr, name) in [(&rsa, "rsa"), (&ecc, "ecc")] {
        let file = s.encrypt(
            &fixture("basic.yaml"),
            &["--pgp", fpr],
            &format!("{name}.enc.yaml"),
        );
        let reference = s.reference_plaintext(&file);
        let ours = run(
            s.rsops()
                .env("PATH", &no_gpg)
                .env("RSOPS_PGP_KEY_FILE", &key_files)
                .arg("decrypt")
                .arg(&file),
            b"",
        );
        assert_same(name, &reference, &ours);
    }
}

#[cfg(feature = "pgp-key-files")]
#[test]
fn gpg_absent_from_path_uses_legacy_secring() {
    let s = PgpSandbox::new(0);
    let fpr = s.rsa("rsa <rsa@example.com>");
    let file = s.encrypt(&fixture("basic.ini"), &["--pgp", &fpr], "secret.enc.ini");
    let reference = s.reference_plaintext(&file);
    let legacy = s.sandbox.path("legacy-gnupg");
    std::fs::create_dir(&legacy).expect("legacy home");
    std::fs::write(legacy.join("secring.gpg"), s.export_secret_key(&fpr, false)).expect("secring");
    let ours = run(
        s.rsops()
            .env("PATH", path_without_gpg(&s.sandbox))
            .env("GNUPGHOME", &legacy)
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    assert_same("secring.gpg", &reference, &ours);
}

/// Runs rsops on `file` and expects exit 128, no output, and every
/// `needle` in its error.
#[track_caller]
fn expect_128(cmd: &mut Command, needles: &[&str]) {
    let ours = run(cmd, b"");
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert_eq!(ours.status.code(), Some(128), "exit code; stderr: {stderr}");
    assert!(ours.stdout.is_empty(), "no plaintext on failure");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
}

#[test]
fn secret_key_missing_exits_128_like_sops() {
    let s = PgpSandbox::new(0);
    let fpr = s.ecc("ecc <ecc@example.com>");
    let file = s.encrypt(&fixture("basic.yaml"), &["--pgp", &fpr], "secret.enc.yaml");
    s.delete_secret_key(&fpr);
    let reference = run(s.sops().arg("decrypt").arg(&file), b"");
    assert_eq!(reference.status.code(), Some(128), "reference exit code");
    expect_128(
        s.rsops().arg("decrypt").arg(&file),
        &[&fpr, "not in gpg's keyring", "gpg --import"],
    );
}

#[test]
fn gpg_absent_and_no_key_file_exits_128() {
    let s = PgpSandbox::new(0);
    let fpr = s.rsa("rsa <rsa@example.com>");
    let file = s.encrypt(&fixture("basic.yaml"), &["--pgp", &fpr], "secret.enc.yaml");
    expect_128(
        s.rsops()
            .env("PATH", path_without_gpg(&s.sandbox))
            .arg("decrypt")
            .arg(&file),
        &[&fpr, "could not be started", "RSOPS_PGP_KEY_FILE"],
    );
}

/// What the default build says about key files it cannot read.
#[cfg(not(feature = "pgp-key-files"))]
const NOT_BUILT: &[&str] = &[
    "this build of rsops reads PGP key files only when built with `--features pgp-key-files`",
    "cargo install --path . --features pgp-key-files",
];

#[cfg(not(feature = "pgp-key-files"))]
#[test]
fn gpg_absent_key_file_needs_the_feature() {
    let s = PgpSandbox::new(0);
    let fpr = s.rsa("rsa <rsa@example.com>");
    let file = s.encrypt(&fixture("basic.yaml"), &["--pgp", &fpr], "secret.enc.yaml");
    let key_file = s.sandbox.write("key.asc", &s.export_secret_key(&fpr, true));
    let named = format!("RSOPS_PGP_KEY_FILE file {}", key_file.display());
    let mut needles = vec![
        fpr.as_str(),
        named.as_str(),
        "install GnuPG",
        "gpg --import",
    ];
    needles.extend(NOT_BUILT);
    expect_128(
        s.rsops()
            .env("PATH", path_without_gpg(&s.sandbox))
            .env("RSOPS_PGP_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&file),
        &needles,
    );
}

#[cfg(not(feature = "pgp-key-files"))]
#[test]
fn gpg_absent_legacy_secring_needs_the_feature() {
    let s = PgpSandbox::new(0);
    let fpr = s.ecc("ecc <ecc@example.com>");
    let file = s.encrypt(&fixture("basic.ini"), &["--pgp", &fpr], "secret.enc.ini");
    let legacy = s.sandbox.path("legacy-gnupg");
    std::fs::create_dir(&legacy).expect("legacy home");
    std::fs::write(legacy.join("secring.gpg"), s.export_secret_key(&fpr, false)).expect("secring");
    let mut needles = vec![fpr.as_str(), "secring.gpg"];
    needles.extend(NOT_BUILT);
    expect_128(
        s.rsops()
            .env("PATH", path_without_gpg(&s.sandbox))
            .env("GNUPGHOME", &legacy)
            .arg("decrypt")
            .arg(&file),
        &needles,
    );
}

/// A key file this build cannot read is no obstacle when gpg holds the key.
#[cfg(not(feature = "pgp-key-files"))]
#[test]
fn key_file_set_and_gpg_holds_the_key() {
    let s = PgpSandbox::new(0);
    let fpr = s.rsa("rsa <rsa@example.com>");
    let file = s.encrypt(&fixture("basic.json"), &["--pgp", &fpr], "secret.enc.json");
    let key_file = s.sandbox.write("key.asc", &s.export_secret_key(&fpr, true));
    let reference = s.reference_plaintext(&file);
    let ours = run(
        s.rsops()
            .env("RSOPS_PGP_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&file),
        b"",
    );
    assert_same("key file ignored, gpg used", &reference, &ours);
}
