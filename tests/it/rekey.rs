//! `rotate`, `updatekeys` and `groups add|delete` against the reference:
//! the same command run by both programs gives files of the same layout
//! that both decrypt; `rotate` renews every ciphertext, the others keep
//! every value (and the MAC) byte for byte.

use std::path::{Path, PathBuf};
use std::process::Output;

use regex::Regex;

use crate::util::{masked, run, Sandbox};

struct Setup {
    sandbox: Sandbox,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            sandbox: Sandbox::new(3),
        }
    }

    fn recipient(&self, i: usize) -> String {
        self.sandbox.keys[i].recipient.clone()
    }

    fn run(&self, rsops: bool, keys: &[usize], args: &[&str], stdin: &[u8]) -> Output {
        let key_file = self.sandbox.key_file(keys);
        let mut cmd = if rsops {
            self.sandbox.rsops()
        } else {
            self.sandbox.sops()
        };
        run(cmd.env("SOPS_AGE_KEY_FILE", key_file).args(args), stdin)
    }

    /// A YAML file the reference encrypted for key 0, and a copy of it.
    fn pair(&self, name: &str) -> (PathBuf, PathBuf) {
        let file = self
            .sandbox
            .write(&format!("{name}.yaml"), PLAIN.as_bytes());
        let out = self.run(
            false,
            &[0],
            &["encrypt", "-i", "--age", &self.recipient(0), &s(&file)],
            b"",
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let copy = self.sandbox.path(&format!("{name}-rsops.yaml"));
        std::fs::copy(&file, &copy).unwrap();
        (file, copy)
    }

    /// Decrypts with both programs using only `keys`; both must agree.
    fn plaintext(&self, keys: &[usize], file: &Path) -> Option<Vec<u8>> {
        let reference = self.run(false, keys, &["decrypt", &s(file)], b"");
        let ours = self.run(true, keys, &["decrypt", &s(file)], b"");
        assert_eq!(
            ours.status.success(),
            reference.status.success(),
            "{}\n{}",
            stderr(&reference),
            stderr(&ours)
        );
        assert_eq!(ours.stdout, reference.stdout);
        reference.status.success().then_some(reference.stdout)
    }
}

const PLAIN: &str = "a: 1\nb: two\nnested:\n    c:\n        - x\n        - z\n";

fn s(path: &Path) -> String {
    path.display().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn enc_values(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    Regex::new(r"ENC\[[^\]]*\]")
        .unwrap()
        .find_iter(&text)
        .map(|m| m.as_str().to_string())
        .collect()
}

/// `rotate -i --add-age --rm-age`: same layout as the reference, every
/// ciphertext new, the added key decrypts and the removed one does not.
#[test]
fn rotate_matches_the_reference() {
    let t = Setup::new();
    let (theirs, ours) = t.pair("rotate");
    let before = enc_values(&ours);
    let (add, rm) = (t.recipient(1), t.recipient(0));
    let args = |file: &Path| {
        vec![
            "rotate".to_string(),
            "-i".into(),
            "--add-age".into(),
            add.clone(),
            "--rm-age".into(),
            rm.clone(),
            s(file),
        ]
    };
    let reference = t.run(
        false,
        &[0],
        &args(&theirs).iter().map(String::as_str).collect::<Vec<_>>(),
        b"",
    );
    assert!(reference.status.success(), "{}", stderr(&reference));
    let out = t.run(
        true,
        &[0],
        &args(&ours).iter().map(String::as_str).collect::<Vec<_>>(),
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        masked(&std::fs::read(&ours).unwrap(), "yaml"),
        masked(&std::fs::read(&theirs).unwrap(), "yaml")
    );
    let after = enc_values(&ours);
    assert_eq!(before.len(), after.len());
    assert!(
        before.iter().zip(&after).all(|(b, a)| b != a),
        "every value re-encrypted"
    );
    assert_eq!(t.plaintext(&[1], &ours).as_deref(), Some(PLAIN.as_bytes()));
    assert_eq!(t.plaintext(&[0], &ours), None);

    // To standard output, the file untouched; the legacy `-r` spelling.
    let unchanged = std::fs::read(&ours).unwrap();
    let out = t.run(true, &[1], &["-r", &s(&ours)], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&ours).unwrap(), unchanged);
    let printed = t.sandbox.write("printed.yaml", &out.stdout);
    assert_eq!(
        t.plaintext(&[1], &printed).as_deref(),
        Some(PLAIN.as_bytes())
    );
}

/// `updatekeys`: the reference's report on standard output, the key
/// groups of the rule, and values, MAC and `lastmodified` untouched.
#[test]
fn updatekeys_matches_the_reference() {
    let t = Setup::new();
    let (theirs, ours) = t.pair("keys");
    let config = format!(
        "creation_rules:\n  - path_regex: keys.*\\.yaml$\n    key_groups:\n      - age:\n          - {}\n          - {}\n",
        t.recipient(0),
        t.recipient(2)
    );
    t.sandbox.write(".sops.yaml", config.as_bytes());
    let before = std::fs::read_to_string(&ours).unwrap();

    // Answering "n" changes nothing.
    let out = t.run(true, &[0], &["updatekeys", &s(&ours)], b"n\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&ours).unwrap(), before);

    let reference = t.run(false, &[0], &["updatekeys", "-y", &s(&theirs)], b"");
    assert!(reference.status.success(), "{}", stderr(&reference));
    let out = t.run(true, &[0], &["updatekeys", "-y", &s(&ours)], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&reference.stdout)
    );
    assert_eq!(
        masked(&std::fs::read(&ours).unwrap(), "yaml"),
        masked(&std::fs::read(&theirs).unwrap(), "yaml")
    );
    let after = std::fs::read_to_string(&ours).unwrap();
    let kept = |text: &str| {
        text.lines()
            .filter(|l| l.contains("ENC[") || l.contains("lastmodified"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kept(&after),
        kept(&before),
        "values, MAC and lastmodified kept"
    );
    assert_eq!(t.plaintext(&[2], &ours).as_deref(), Some(PLAIN.as_bytes()));

    // Up to date now: nothing to do, nothing written.
    let out = t.run(true, &[0], &["updatekeys", "-y", &s(&ours)], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&ours).unwrap(), after);
}

/// `groups add` then `groups delete`: the reference's layout, Shamir
/// across the groups, values untouched.
#[test]
fn groups_add_and_delete_match_the_reference() {
    let t = Setup::new();
    let (theirs, ours) = t.pair("groups");
    let before = enc_values(&ours);
    let add = t.recipient(1);
    for (rsops, file) in [(false, &theirs), (true, &ours)] {
        let out = t.run(
            rsops,
            &[0],
            &["groups", "add", "-i", "-f", &s(file), "--age", &add],
            b"",
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(
        masked(&std::fs::read(&ours).unwrap(), "yaml"),
        masked(&std::fs::read(&theirs).unwrap(), "yaml")
    );
    assert_eq!(enc_values(&ours)[..before.len()], before[..]);
    assert_eq!(
        t.plaintext(&[0, 1], &ours).as_deref(),
        Some(PLAIN.as_bytes())
    );
    assert_eq!(t.plaintext(&[0], &ours), None, "both groups needed");

    // Both refuse to leave fewer groups than the threshold (2 here).
    for rsops in [false, true] {
        let out = t.run(
            rsops,
            &[0, 1],
            &["groups", "delete", "-f", &s(&ours), "0"],
            b"",
        );
        assert!(!out.status.success());
        assert!(stderr(&out).contains("Shamir threshold is 2, but we only have 1 key groups"));
    }
    for (rsops, file) in [(false, &theirs), (true, &ours)] {
        let out = t.run(
            rsops,
            &[0, 1],
            &[
                "groups",
                "delete",
                "-i",
                "-f",
                &s(file),
                "--shamir-secret-sharing-threshold",
                "1",
                "0",
            ],
            b"",
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(
        masked(&std::fs::read(&ours).unwrap(), "yaml"),
        masked(&std::fs::read(&theirs).unwrap(), "yaml")
    );
    assert_eq!(t.plaintext(&[1], &ours).as_deref(), Some(PLAIN.as_bytes()));

    let out = t.run(true, &[1], &["groups", "delete", "-f", &s(&ours), "7"], b"");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no key group 7"), "{}", stderr(&out));
}

/// Adding or removing keys of a file that does not exist: the reference's code.
#[test]
fn rotate_refusals_match_the_reference() {
    let t = Setup::new();
    let missing = t.sandbox.path("missing.yaml");
    let add = t.recipient(1);
    for args in [
        vec![
            "rotate",
            "--add-age",
            add.as_str(),
            missing.to_str().unwrap(),
        ],
        vec!["rotate"],
    ] {
        let reference = t.run(false, &[0], &args, b"");
        let ours = t.run(true, &[0], &args, b"");
        assert_eq!(
            ours.status.code(),
            reference.status.code(),
            "{args:?}\n{}",
            stderr(&ours)
        );
    }
}
