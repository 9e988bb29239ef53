//! Bad input: each case fails with a clear message, the reference's exit
//! code, and nothing at all on standard output.

use std::path::PathBuf;

use crate::util::{fixture, run, Sandbox};

struct Case {
    sandbox: Sandbox,
    encrypted: PathBuf,
    key_file: PathBuf,
}

fn encrypted_yaml() -> Case {
    let sandbox = Sandbox::new(2);
    let recipient = sandbox.keys[0].recipient.clone();
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.yaml"),
        &["--age", &recipient],
        "secret.enc.yaml",
    );
    let key_file = sandbox.key_file(&[0]);
    Case {
        sandbox,
        encrypted,
        key_file,
    }
}

/// Runs rsops and the reference on `file`; both must fail with `code`, rsops
/// with an empty stdout and a stderr containing `needle`.
#[track_caller]
fn expect_failure(
    case: &Case,
    file: &PathBuf,
    key_file: &PathBuf,
    extra: &[&str],
    code: i32,
    needle: &str,
) {
    let reference = run(
        case.sandbox
            .sops()
            .env("SOPS_AGE_KEY_FILE", key_file)
            .arg("decrypt")
            .args(extra)
            .arg(file),
        b"",
    );
    assert_eq!(
        reference.status.code(),
        Some(code),
        "reference exit code for {needle}"
    );
    let ours = run(
        case.sandbox
            .rsops()
            .env("SOPS_AGE_KEY_FILE", key_file)
            .arg("decrypt")
            .args(extra)
            .arg(file),
        b"",
    );
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert_eq!(
        ours.status.code(),
        Some(code),
        "rsops exit code; stderr: {stderr}"
    );
    assert!(ours.stdout.is_empty(), "rsops printed plaintext on failure");
    assert!(
        stderr.contains(needle),
        "rsops stderr lacks {needle:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "rsops panicked: {stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "rsops leaked a secret: {stderr}"
    );
}

fn rewrite(case: &Case, name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let text = std::fs::read_to_string(&case.encrypted).unwrap();
    case.sandbox.write(name, edit(&text).as_bytes())
}

#[test]
fn wrong_key() {
    let case = encrypted_yaml();
    let wrong = case.sandbox.key_file(&[1]);
    expect_failure(
        &case,
        &case.encrypted,
        &wrong,
        &[],
        128,
        &case.sandbox.keys[0].recipient,
    );
}

#[test]
fn no_key() {
    let case = encrypted_yaml();
    let none = case.sandbox.write("empty-keys.txt", b"");
    expect_failure(
        &case,
        &case.encrypted,
        &none,
        &[],
        128,
        "no age identity found",
    );
}

#[test]
fn tampered_value() {
    let case = encrypted_yaml();
    let tampered = rewrite(&case, "tampered.enc.yaml", |t| {
        let start =
            t.find("host: ENC[AES256_GCM,data:").unwrap() + "host: ENC[AES256_GCM,data:".len();
        let mut bytes = t.as_bytes().to_vec();
        bytes[start] = if bytes[start] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    });
    expect_failure(&case, &tampered, &case.key_file, &[], 25, "database:host");
}

#[test]
fn swapped_values() {
    let case = encrypted_yaml();
    let swapped = rewrite(&case, "swapped.enc.yaml", |t| {
        let value = |key: &str| {
            let line = t.lines().find(|l| l.trim_start().starts_with(key)).unwrap();
            line.split_once(": ").unwrap().1.to_string()
        };
        let (host, port) = (value("host:"), value("port:"));
        t.replace(&host, "@HOST@")
            .replace(&port, &host)
            .replace("@HOST@", &port)
    });
    expect_failure(
        &case,
        &swapped,
        &case.key_file,
        &[],
        25,
        "could not decrypt",
    );
}

#[test]
fn removed_value() {
    let case = encrypted_yaml();
    let removed = rewrite(&case, "removed.enc.yaml", |t| {
        t.lines()
            .filter(|l| !l.trim_start().starts_with("host:"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    expect_failure(&case, &removed, &case.key_file, &[], 51, "MAC mismatch");
}

#[test]
fn tampered_mac() {
    let case = encrypted_yaml();
    let tampered = rewrite(&case, "mac.enc.yaml", |t| {
        t.replace("mac: ENC[AES256_GCM,data:", "mac: ENC[AES256_GCM,data:AAAA")
    });
    expect_failure(&case, &tampered, &case.key_file, &[], 51, "MAC");
}

#[test]
fn ignore_mac_decrypts_modified_file() {
    let case = encrypted_yaml();
    let removed = rewrite(&case, "removed.enc.yaml", |t| {
        t.lines()
            .filter(|l| !l.trim_start().starts_with("host:"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let ours = run(
        case.sandbox
            .rsops()
            .env("SOPS_AGE_KEY_FILE", &case.key_file)
            .args(["decrypt", "--ignore-mac"])
            .arg(&removed),
        b"",
    );
    assert!(
        ours.status.success(),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    assert!(String::from_utf8_lossy(&ours.stdout).contains("hunter2"));
}

#[test]
fn malformed_enc_value() {
    let case = encrypted_yaml();
    let bad = rewrite(&case, "malformed.enc.yaml", |t| {
        let line = t
            .lines()
            .find(|l| l.trim_start().starts_with("host:"))
            .unwrap();
        t.replace(
            line,
            "    host: ENC[AES256_GCM,data:!!!,iv:x,tag:y,type:str]",
        )
    });
    expect_failure(&case, &bad, &case.key_file, &[], 25, "database:host");
}

#[test]
fn truncated_file() {
    let case = encrypted_yaml();
    let text = std::fs::read(&case.encrypted).unwrap();
    let truncated = case
        .sandbox
        .write("truncated.enc.yaml", &text[..text.len() / 3]);
    expect_failure(&case, &truncated, &case.key_file, &[], 1, "metadata");
}

#[test]
fn not_a_sops_file() {
    let case = encrypted_yaml();
    let plain = case.sandbox.write("plain.yaml", b"a: 1\n");
    expect_failure(
        &case,
        &plain,
        &case.key_file,
        &[],
        1,
        "sops metadata not found",
    );
}

#[test]
fn invalid_json() {
    let case = encrypted_yaml();
    let bad = case.sandbox.write("bad.json", b"{\"a\":");
    expect_failure(&case, &bad, &case.key_file, &[], 1, "json");
}

#[test]
fn missing_file() {
    let case = encrypted_yaml();
    let missing = case.sandbox.path("missing.yaml");
    expect_failure(&case, &missing, &case.key_file, &[], 100, "missing.yaml");
}

#[test]
fn shamir_one_group_short() {
    let sandbox = Sandbox::new(3);
    let mut config = String::from("creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n");
    for key in &sandbox.keys {
        config.push_str(&format!("      - age:\n          - {}\n", key.recipient));
    }
    sandbox.write(".sops.yaml", config.as_bytes());
    let encrypted = sandbox.sops_encrypt(&fixture("basic.env"), &[], "secret.enc.env");
    let key_file = sandbox.key_file(&[1]);
    let case = Case {
        sandbox,
        encrypted: encrypted.clone(),
        key_file: key_file.clone(),
    };
    expect_failure(
        &case,
        &encrypted,
        &key_file,
        &[],
        128,
        "1 of 2 needed key groups",
    );
}

#[test]
fn unknown_input_type_is_rejected() {
    let case = encrypted_yaml();
    let ours = run(
        case.sandbox
            .rsops()
            .env("SOPS_AGE_KEY_FILE", &case.key_file)
            .args(["decrypt", "--input-type", "toml"])
            .arg(&case.encrypted),
        b"",
    );
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert_eq!(ours.status.code(), Some(1));
    assert!(ours.stdout.is_empty());
    assert!(stderr.contains("unknown --input-type `toml`"), "{stderr}");
}
