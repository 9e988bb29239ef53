//! `metadata::insert` writes the `sops` metadata exactly as the reference
//! does: a file the reference encrypted, parsed, its metadata extracted and
//! inserted back, prints to the reference's bytes (every format × one key,
//! two recipients, Shamir key groups and each selection flag).

use rsops::formats::EmitOptions;
use rsops::metadata::{self, InsertOptions};
use rsops::Format;

use crate::util::{fixture, run, Sandbox};

/// The formats, their fixture and the name of their encrypted copy.
const FORMATS: &[(Format, &str)] = &[
    (Format::Yaml, "basic.yaml"),
    (Format::Yaml, "multidoc.yaml"),
    (Format::Json, "basic.json"),
    (Format::Dotenv, "basic.env"),
    (Format::Ini, "basic.ini"),
    (Format::Binary, "basic.bin"),
];

/// How the reference is asked to encrypt.
#[derive(Clone, Copy, Debug)]
enum Setup {
    One,
    TwoRecipients,
    Shamir,
    EncryptedRegex,
    UnencryptedSuffix,
    MacOnlyEncrypted,
}

/// Encrypts `name`'s fixture with the reference; returns the file's bytes.
fn reference_encrypt(sandbox: &Sandbox, setup: Setup, name: &str) -> Vec<u8> {
    let plain = sandbox.write(name, &std::fs::read(fixture(name)).expect("fixture"));
    let r = |i: usize| sandbox.keys[i].recipient.clone();
    let mut global: Vec<String> = Vec::new();
    let mut args: Vec<String> = Vec::new();
    match setup {
        Setup::Shamir => {
            let mut config =
                String::from("creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n");
            for i in 0..3 {
                config.push_str(&format!("      - age:\n          - {}\n", r(i)));
            }
            sandbox.write(".sops.yaml", config.as_bytes());
        }
        Setup::TwoRecipients => args.extend(["--age".into(), format!("{},{}", r(0), r(1))]),
        _ => args.extend(["--age".into(), r(0)]),
    }
    match setup {
        Setup::EncryptedRegex => {
            args.extend(["--encrypted-regex".into(), "^(password|token)".into()]);
        }
        Setup::UnencryptedSuffix => args.extend(["--unencrypted-suffix".into(), "_key".into()]),
        Setup::MacOnlyEncrypted => global.push("--mac-only-encrypted".into()),
        _ => {}
    }
    let output = run(
        sandbox
            .sops()
            .args(&global)
            .arg("encrypt")
            .args(&args)
            .arg(&plain),
        b"",
    );
    if matches!(setup, Setup::Shamir) {
        std::fs::remove_file(sandbox.path(".sops.yaml")).expect("remove config");
    }
    assert!(
        output.status.success(),
        "sops encrypt {setup:?} {name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The reference writes INI's `[sops]` section in Go map order (random per
/// run) and rsops in sorted order: compare that section's lines sorted.
fn comparable(format: Format, bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes).into_owned();
    if format != Format::Ini {
        return text;
    }
    let Some(start) = text.find("[sops]\n") else {
        return text;
    };
    let body_start = start + "[sops]\n".len();
    let (head, body) = text.split_at(body_start);
    let mut lines: Vec<&str> = body.lines().collect();
    lines.sort_unstable();
    let mut out = head.to_string();
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn round_trip(format: Format, encrypted: &[u8]) -> Vec<u8> {
    let mut doc = format
        .parse(encrypted)
        .expect("rsops parses the reference's file");
    let meta = metadata::extract(&mut doc, format.metadata_layout()).expect("metadata");
    metadata::insert_with(&mut doc, &meta, InsertOptions::for_format(format));
    // An encrypted binary file is a JSON document (`data` and `sops`).
    let printer = if format == Format::Binary {
        Format::Json
    } else {
        format
    };
    printer
        .emit(&doc, EmitOptions::default())
        .expect("rsops emits the document")
}

fn check(setup: Setup) {
    let sandbox = Sandbox::new(3);
    let mut failures = Vec::new();
    for &(format, name) in FORMATS {
        let reference = reference_encrypt(&sandbox, setup, name);
        let ours = round_trip(format, &reference);
        if format == Format::Ini {
            // rsops' own order is the sorted one, so it is deterministic.
            assert_eq!(
                comparable(format, &ours),
                String::from_utf8_lossy(&ours),
                "{setup:?} {name}: rsops' [sops] section is not sorted"
            );
        }
        if comparable(format, &ours) != comparable(format, &reference) {
            failures.push(format!(
                "{setup:?} {name}: differs\n--- reference\n{}\n--- rsops\n{}",
                String::from_utf8_lossy(&reference),
                String::from_utf8_lossy(&ours)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn one_key() {
    check(Setup::One);
}

#[test]
fn two_recipients() {
    check(Setup::TwoRecipients);
}

#[test]
fn shamir_key_groups() {
    check(Setup::Shamir);
}

#[test]
fn encrypted_regex() {
    check(Setup::EncryptedRegex);
}

#[test]
fn unencrypted_suffix() {
    check(Setup::UnencryptedSuffix);
}

#[test]
fn mac_only_encrypted() {
    check(Setup::MacOnlyEncrypted);
}

/// The plain `insert` (the YAML store's form) is what the YAML round trip needs.
#[test]
fn plain_insert_matches_yaml() {
    let sandbox = Sandbox::new(3);
    let reference = reference_encrypt(&sandbox, Setup::Shamir, "basic.yaml");
    let mut doc = Format::Yaml.parse(&reference).expect("parse");
    let meta = metadata::extract(&mut doc, Format::Yaml.metadata_layout()).expect("metadata");
    metadata::insert(&mut doc, &meta, Format::Yaml.metadata_layout());
    let ours = Format::Yaml
        .emit(&doc, EmitOptions::default())
        .expect("emit");
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&reference)
    );
}
