//! Files encrypted by the reference `sops` decrypt with rsops to exactly
//! the bytes `sops decrypt` prints: every format × every encryption rule ×
//! one key, several keys, and Shamir 2-of-3 key groups.

use std::path::Path;

use crate::util::{assert_same, assert_same_success, fixture, Sandbox};

/// The encryption rules, as `.sops.yaml` creation-rule lines.
const RULES: &[(&str, &str)] = &[
    ("default", ""),
    ("unencrypted_suffix", "unencrypted_suffix: _plain"),
    ("encrypted_suffix", "encrypted_suffix: _secret"),
    ("unencrypted_regex", "unencrypted_regex: ^(public|plain)"),
    (
        "encrypted_regex",
        "encrypted_regex: ^(password|token|secret)",
    ),
    (
        "unencrypted_comment_regex",
        "unencrypted_comment_regex: public",
    ),
    (
        "encrypted_comment_regex",
        "encrypted_comment_regex: sops:enc",
    ),
    ("mac_only_encrypted", "mac_only_encrypted: true"),
];

/// How the data key is held.
#[derive(Clone, Copy, Debug)]
enum Keys {
    /// One age recipient.
    One,
    /// Two recipients in one group; decrypt with the second.
    Several,
    /// Three groups, threshold 2; decrypt with groups 1 and 3.
    Shamir,
}

fn config(sandbox: &Sandbox, keys: Keys, rule: &str) -> String {
    let r = |i: usize| sandbox.keys[i].recipient.clone();
    let mut out = String::from("creation_rules:\n  - path_regex: .*\n");
    match keys {
        Keys::One => out.push_str(&format!("    age: {}\n", r(0))),
        Keys::Several => out.push_str(&format!("    age: {},{}\n", r(0), r(1))),
        Keys::Shamir => {
            out.push_str("    shamir_threshold: 2\n    key_groups:\n");
            for i in 0..3 {
                out.push_str(&format!("      - age:\n          - {}\n", r(i)));
            }
        }
    }
    if !rule.is_empty() {
        out.push_str(&format!("    {rule}\n"));
    }
    out
}

fn decrypt_keys(keys: Keys) -> &'static [usize] {
    match keys {
        Keys::One => &[0],
        Keys::Several => &[1],
        Keys::Shamir => &[0, 2],
    }
}

/// Asserts that rsops' YAML store parses `bytes`, a file the reference
/// wrote, and prints it back byte for byte: go-yaml's own output is a fixed
/// point of parse-then-print.
#[track_caller]
fn assert_yaml_prints_back(what: &str, bytes: &[u8]) {
    let doc = rsops::Format::Yaml
        .parse(bytes)
        .unwrap_or_else(|e| panic!("{what}: rsops cannot parse the reference's YAML: {e}"));
    let printed = rsops::Format::Yaml
        .emit(&doc, rsops::formats::EmitOptions::default())
        .unwrap_or_else(|e| panic!("{what}: rsops cannot print it back: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&printed),
        String::from_utf8_lossy(bytes),
        "{what}: the reference's YAML does not print back byte for byte"
    );
}

/// Encrypts `fixture_name` with the reference under every rule and key
/// layout, then compares `sops decrypt` and `rsops decrypt`. For YAML, both
/// files the reference wrote (the encrypted one and what `sops decrypt`
/// printed) must also print back unchanged through rsops' YAML store.
fn check_fixture(fixture_name: &str) {
    for keys in [Keys::One, Keys::Several, Keys::Shamir] {
        for (rule_name, rule) in RULES {
            let sandbox = Sandbox::new(3);
            sandbox.write(".sops.yaml", config(&sandbox, keys, rule).as_bytes());
            let ext = Path::new(fixture_name)
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("bin");
            let encrypted =
                sandbox.sops_encrypt(&fixture(fixture_name), &[], &format!("secret.enc.{ext}"));
            let key_file = sandbox.key_file(decrypt_keys(keys));
            let what = format!("{fixture_name} / {keys:?} / {rule_name}");
            let (reference, ours) = sandbox.both(&key_file, &["decrypt"], &encrypted);
            assert!(
                reference.status.success(),
                "{what}: reference failed: {}",
                String::from_utf8_lossy(&reference.stderr)
            );
            assert_same(&what, &reference, &ours);
            if ext == "yaml" {
                let encrypted_bytes = std::fs::read(&encrypted).expect("read encrypted file");
                assert_yaml_prints_back(&format!("{what} (encrypted)"), &encrypted_bytes);
                assert_yaml_prints_back(&format!("{what} (decrypted)"), &reference.stdout);
            }
        }
    }
}

#[test]
fn yaml() {
    check_fixture("basic.yaml");
}

#[test]
fn yaml_multi_document() {
    check_fixture("multidoc.yaml");
}

#[test]
fn json() {
    check_fixture("basic.json");
}

#[test]
fn dotenv() {
    check_fixture("basic.env");
}

#[test]
fn ini() {
    check_fixture("basic.ini");
}

#[test]
fn binary() {
    check_fixture("basic.bin");
    check_fixture("short.txt");
}

/// Every fixture printed in every other format, as `--output-type` asks.
#[test]
fn output_type_conversions() {
    let sandbox = Sandbox::new(1);
    sandbox.write(".sops.yaml", config(&sandbox, Keys::One, "").as_bytes());
    let key_file = sandbox.key_file(&[0]);
    for name in [
        "basic.yaml",
        "multidoc.yaml",
        "basic.json",
        "basic.env",
        "basic.ini",
        "basic.bin",
    ] {
        let ext = Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("bin");
        let encrypted = sandbox.sops_encrypt(&fixture(name), &[], &format!("{name}.enc.{ext}"));
        for output_type in ["yaml", "json", "dotenv", "ini", "binary"] {
            let args = ["decrypt", "--output-type", output_type];
            let (reference, ours) = sandbox.both(&key_file, &args, &encrypted);
            let what = format!("{name} as {output_type}");
            if reference.status.success() {
                assert_same(&what, &reference, &ours);
            } else {
                assert!(
                    !ours.status.success(),
                    "{what}: reference failed but rsops succeeded"
                );
                assert!(
                    ours.stdout.is_empty(),
                    "{what}: rsops printed output on failure"
                );
            }
        }
    }
}

/// The vectors from the reference repository (old metadata layouts: `kms:
/// null`, no `version`, INI in several layouts) that need only an age key
/// are covered by the PGP suite; here: files whose `lastmodified` is an
/// unquoted YAML timestamp still verify.
#[test]
fn unquoted_lastmodified() {
    let sandbox = Sandbox::new(1);
    sandbox.write(".sops.yaml", config(&sandbox, Keys::One, "").as_bytes());
    let key_file = sandbox.key_file(&[0]);
    let encrypted = sandbox.sops_encrypt(&fixture("basic.yaml"), &[], "old.enc.yaml");
    let text = std::fs::read_to_string(&encrypted).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("lastmodified:"))
        .unwrap();
    let unquoted = line.replace('"', "");
    let old = sandbox.write("old2.enc.yaml", text.replace(line, &unquoted).as_bytes());
    let (reference, ours) = sandbox.both(&key_file, &["decrypt"], &old);
    assert_same_success("unquoted lastmodified", &reference, &ours);
}

/// A `str` value that is not UTF-8 (a Go string holds any bytes) prints as
/// its bytes in every plain format, as the reference prints it.
#[test]
fn values_that_are_not_utf8_print_as_their_bytes() {
    let sandbox = Sandbox::new(1);
    let recipient = sandbox.keys[0].recipient.clone();
    let key_file = sandbox.key_file(&[0]);
    for (name, plain) in [
        ("latin1.ini", &b"[s]\nk = caf\xe9\nm = plain\n"[..]),
        ("latin1.env", &b"K=caf\xe9\nM=plain\n"[..]),
    ] {
        let plain = sandbox.write(name, plain);
        let encrypted =
            sandbox.sops_encrypt(&plain, &["--age", &recipient], &format!("enc-{name}"));
        for output_type in ["ini", "dotenv", "json", "yaml"] {
            let args = ["decrypt", "--output-type", output_type];
            let (reference, ours) = sandbox.both(&key_file, &args, &encrypted);
            assert_same(&format!("{name} as {output_type}"), &reference, &ours);
        }
    }
}
