//! `rsops merge-driver`: three-way merges of encrypted files, run directly
//! on git's three temporary files and through a real `git merge`. The
//! versions are made the way users make them: encrypted by rsops, edited by
//! the reference's `sops set`; the results are read back by both.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{rsops_bin, run, Sandbox};

const PLAIN: &str = "a: base-a\nb: base-b\ndb:\n    user: app\n    password: base-pw\n";

/// A sandbox with one age key, its key file, and `PLAIN` encrypted by rsops.
struct Setup {
    sandbox: Sandbox,
    key_file: PathBuf,
    encrypted: Vec<u8>,
}

impl Setup {
    fn new() -> Setup {
        let sandbox = Sandbox::new(2);
        let key_file = sandbox.key_file(&[0, 1]);
        let plain = sandbox.write("plain.yaml", PLAIN.as_bytes());
        let out = run(
            sandbox
                .rsops()
                .args(["encrypt", "--age", &sandbox.keys[0].recipient])
                .arg(&plain),
            b"",
        );
        assert!(out.status.success(), "{}", stderr(&out));
        Setup {
            sandbox,
            key_file,
            encrypted: out.stdout,
        }
    }

    /// A copy of the encrypted base under `name`.
    fn version(&self, name: &str) -> PathBuf {
        self.sandbox.write(name, &self.encrypted)
    }

    fn sops(&self) -> Command {
        let mut cmd = self.sandbox.sops();
        cmd.env("SOPS_AGE_KEY_FILE", &self.key_file);
        cmd
    }

    fn rsops(&self) -> Command {
        let mut cmd = self.sandbox.rsops();
        cmd.env("SOPS_AGE_KEY_FILE", &self.key_file);
        cmd
    }

    /// `sops set FILE PATH VALUE` with the reference.
    fn set(&self, file: &Path, path: &str, value: &str) {
        let out = run(
            self.sops()
                .args(["set", "--input-type", "yaml", "--output-type", "yaml"])
                .arg(file)
                .args([path, value]),
            b"",
        );
        assert!(out.status.success(), "sops set: {}", stderr(&out));
    }

    /// The file decrypted by the reference and by rsops, which must agree.
    fn decrypt(&self, file: &Path) -> String {
        let args = ["decrypt", "--input-type", "yaml", "--output-type", "yaml"];
        let reference = run(self.sops().args(args).arg(file), b"");
        assert!(reference.status.success(), "sops: {}", stderr(&reference));
        let ours = run(self.rsops().args(args).arg(file), b"");
        assert!(ours.status.success(), "rsops: {}", stderr(&ours));
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&reference.stdout)
        );
        String::from_utf8(ours.stdout).unwrap()
    }

    fn merge_driver(&self, base: &Path, ours: &Path, theirs: &Path) -> Output {
        run(
            self.rsops()
                .arg("merge-driver")
                .args([base, ours, theirs])
                .arg("secrets.enc.yaml"),
            b"",
        )
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The line of `key` (the first one, trimmed) in an encrypted YAML file.
fn line_of(file: &[u8], key: &str) -> String {
    let text = String::from_utf8_lossy(file);
    text.lines()
        .find(|l| l.trim_start().starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no `{key}` line in\n{text}"))
        .to_string()
}

#[test]
fn a_clean_merge_takes_both_sides_and_keeps_untouched_ciphertext() {
    let setup = Setup::new();
    // git's temporary files have no extension: PATH gives the format.
    let base = setup.version("merge_file_O");
    let ours = setup.version("merge_file_A");
    let theirs = setup.version("merge_file_B");
    setup.set(&ours, r#"["a"]"#, r#""ours-a""#);
    setup.set(&theirs, r#"["db"]["password"]"#, r#""theirs-pw""#);
    setup.set(&theirs, r#"["c"]"#, r#""theirs-c""#);
    let before = std::fs::read(&ours).unwrap();

    let out = setup.merge_driver(&base, &ours, &theirs);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        setup.decrypt(&ours),
        "a: ours-a\nb: base-b\ndb:\n    user: app\n    password: theirs-pw\nc: theirs-c\n"
    );
    let after = std::fs::read(&ours).unwrap();
    for key in ["a", "b", "user"] {
        assert_eq!(line_of(&after, key), line_of(&before, key), "{key}");
    }
    assert_ne!(line_of(&after, "password"), line_of(&before, "password"));
    assert_ne!(line_of(&after, "mac"), line_of(&before, "mac"));
}

#[test]
fn a_merge_with_nothing_of_theirs_leaves_ours_byte_identical() {
    let setup = Setup::new();
    let base = setup.version("merge_file_O");
    let ours = setup.version("merge_file_A");
    let theirs = setup.version("merge_file_B");
    setup.set(&ours, r#"["a"]"#, r#""ours-a""#);
    // Theirs made the same change.
    setup.set(&theirs, r#"["a"]"#, r#""ours-a""#);
    let before = std::fs::read(&ours).unwrap();
    let out = setup.merge_driver(&base, &ours, &theirs);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&ours).unwrap(), before);
}

#[test]
fn a_conflict_names_the_key_path_leaves_ours_and_exits_1() {
    let setup = Setup::new();
    let base = setup.version("merge_file_O");
    let ours = setup.version("merge_file_A");
    let theirs = setup.version("merge_file_B");
    setup.set(&ours, r#"["db"]["password"]"#, r#""s3cr3t-ours""#);
    setup.set(&theirs, r#"["db"]["password"]"#, r#""s3cr3t-theirs""#);
    setup.set(&theirs, r#"["b"]"#, r#""theirs-b""#);
    let before = std::fs::read(&ours).unwrap();

    let out = setup.merge_driver(&base, &ours, &theirs);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read(&ours).unwrap(), before);
    let err = stderr(&out);
    assert!(err.contains("conflict at db:password"), "{err}");
    assert!(err.contains("secrets.enc.yaml"), "{err}");
    for secret in ["s3cr3t", "base-pw", "theirs-b", "base-b"] {
        assert!(!err.contains(secret), "{secret} in {err}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn without_a_base_the_merge_is_two_way() {
    let setup = Setup::new();
    let base = setup.sandbox.write("merge_file_O", b"");
    let ours = setup.version("merge_file_A");
    let theirs = setup.version("merge_file_B");
    setup.set(&theirs, r#"["c"]"#, r#""theirs-c""#);
    let out = setup.merge_driver(&base, &ours, &theirs);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(setup.decrypt(&ours).ends_with("c: theirs-c\n"));

    // A key both added, differently.
    setup.set(&ours, r#"["d"]"#, r#""1""#);
    setup.set(&theirs, r#"["d"]"#, r#""2""#);
    let missing = setup.sandbox.path("no-such-base");
    let out = setup.merge_driver(&missing, &ours, &theirs);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("conflict at d: added on both sides"));
}

#[test]
fn an_undecryptable_version_is_named_and_ours_is_left() {
    let setup = Setup::new();
    let base = setup.version("merge_file_O");
    let ours = setup.version("merge_file_A");
    let theirs = setup.sandbox.write("merge_file_B", b"a: not encrypted\n");
    let before = std::fs::read(&ours).unwrap();
    let out = setup.merge_driver(&base, &ours, &theirs);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("THEIRS"), "{err}");
    assert!(!err.contains("OURS") && !err.contains("BASE"), "{err}");
    assert_eq!(std::fs::read(&ours).unwrap(), before);
}

#[test]
fn a_key_group_change_by_theirs_alone_is_a_conflict() {
    let setup = Setup::new();
    let base = setup.version("merge_file_O");
    // `sops rotate` takes the format from the extension only.
    let ours = setup.version("ours.yaml");
    let theirs = setup.version("theirs.yaml");
    setup.set(&ours, r#"["a"]"#, r#""ours-a""#);
    let out = run(
        setup
            .sops()
            .args([
                "rotate",
                "-i",
                "--add-age",
                &setup.sandbox.keys[1].recipient,
            ])
            .arg(&theirs),
        b"",
    );
    assert!(out.status.success(), "sops rotate: {}", stderr(&out));
    let before = std::fs::read(&ours).unwrap();
    let out = setup.merge_driver(&base, &ours, &theirs);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("key groups"), "{err}");
    assert!(err.contains("updatekeys"), "{err}");
    assert_eq!(std::fs::read(&ours).unwrap(), before);

    // Ours has the same recipients: nothing would be dropped.
    let out = run(
        setup
            .sops()
            .args([
                "rotate",
                "-i",
                "--add-age",
                &setup.sandbox.keys[1].recipient,
            ])
            .arg(&ours),
        b"",
    );
    assert!(out.status.success(), "sops rotate: {}", stderr(&out));
    let out = setup.merge_driver(&base, &ours, &theirs);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A git repository in the sandbox, using rsops as the merge driver.
struct Repo<'a> {
    setup: &'a Setup,
    dir: PathBuf,
}

impl Repo<'_> {
    fn new(setup: &Setup) -> Repo<'_> {
        let dir = setup.sandbox.path("repo");
        std::fs::create_dir(&dir).unwrap();
        let repo = Repo { setup, dir };
        repo.git(&["-c", "init.defaultBranch=main", "init", "-q"]);
        repo.git(&["config", "user.name", "Test"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        let driver = format!("'{}' merge-driver %O %A %B %P", rsops_bin().display());
        repo.git(&["config", "merge.sops.driver", &driver]);
        std::fs::write(repo.dir.join(".gitattributes"), "*.enc.yaml merge=sops\n").unwrap();
        std::fs::write(repo.file(), &setup.encrypted).unwrap();
        repo.git(&["add", "."]);
        repo.git(&["commit", "-q", "-m", "base"]);
        repo
    }

    fn file(&self) -> PathBuf {
        self.dir.join("secrets.enc.yaml")
    }

    fn command(&self, args: &[&str]) -> Output {
        run(
            self.setup
                .sandbox
                .command(Path::new("git"))
                .current_dir(&self.dir)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("SOPS_AGE_KEY_FILE", &self.setup.key_file)
                .args(args),
            b"",
        )
    }

    fn git(&self, args: &[&str]) -> String {
        let out = self.command(args);
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sets `path` to `value` with `sops set` and commits it.
    fn commit_set(&self, path: &str, value: &str) {
        self.setup.set(&self.file(), path, value);
        self.git(&["commit", "-q", "-am", path]);
    }
}

#[test]
fn git_merge_uses_the_driver_for_both_sides_changes() {
    let setup = Setup::new();
    let repo = Repo::new(&setup);
    repo.git(&["checkout", "-q", "-b", "other"]);
    repo.commit_set(r#"["b"]"#, r#""other-b""#);
    repo.git(&["checkout", "-q", "main"]);
    repo.commit_set(r#"["a"]"#, r#""main-a""#);

    let out = repo.command(&["merge", "--no-edit", "other"]);
    assert!(out.status.success(), "git merge: {}", stderr(&out));
    assert_eq!(
        setup.decrypt(&repo.file()),
        "a: main-a\nb: other-b\ndb:\n    user: app\n    password: base-pw\n"
    );
    assert!(repo.git(&["status", "--porcelain"]).is_empty());
}

#[test]
fn git_merge_marks_a_conflict_and_keeps_ours() {
    let setup = Setup::new();
    let repo = Repo::new(&setup);
    repo.git(&["checkout", "-q", "-b", "other"]);
    repo.commit_set(r#"["a"]"#, r#""s3cr3t-other""#);
    repo.git(&["checkout", "-q", "main"]);
    repo.commit_set(r#"["a"]"#, r#""s3cr3t-main""#);
    let ours = std::fs::read(repo.file()).unwrap();

    let out = repo.command(&["merge", "--no-edit", "other"]);
    assert!(!out.status.success());
    let err = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("conflict at a"), "{err}");
    assert!(!err.contains("s3cr3t"), "{err}");
    assert!(repo
        .git(&["status", "--porcelain"])
        .contains("UU secrets.enc.yaml"));
    assert_eq!(std::fs::read(repo.file()).unwrap(), ours);
    assert!(setup.decrypt(&repo.file()).starts_with("a: s3cr3t-main\n"));
}
