//! `rsops encrypt --azure-kv` through the Azure Key Vault emulator
//! (`tests/emulators/azure_kv.py`): the key's latest version is resolved
//! as the reference resolves it, the entry is written with the reference's
//! fields in its order, rsops reads it back with the Azure credentials
//! alone, and the reference decrypts the file (through its age entry) to
//! what it decrypts its own to.

use std::path::Path;
use std::process::Output;

use regex::Regex;

use crate::cloud_emulator::{Emulator, Fixture};
use crate::util::run;

/// Trust root, authority host and the proxy for `*.vault.azure.net` (the
/// only differences from production) and a client secret.
fn azure_env(emulator: &Emulator) -> Vec<(String, String)> {
    [
        ("SSL_CERT_FILE", "/ca"),
        ("AZURE_AUTHORITY_HOST", "/authority_host"),
        ("HTTPS_PROXY", "/https_proxy"),
        ("AZURE_TENANT_ID", "/tenant_id"),
        ("AZURE_CLIENT_ID", "/client_id"),
        ("AZURE_CLIENT_SECRET", "/client_secret"),
    ]
    .iter()
    .map(|(name, pointer)| (name.to_string(), emulator.get(pointer)))
    .collect()
}

fn rsops_encrypt(fixture: &Fixture, emulator: &Emulator, key_url: &str, plain: &Path) -> Output {
    let mut cmd = fixture.sandbox.rsops();
    cmd.args([
        "encrypt",
        "--azure-kv",
        key_url,
        "--age",
        &fixture.sandbox.keys[0].recipient,
    ])
    .arg(plain)
    .envs(azure_env(emulator));
    let output = run(&mut cmd, b"");
    assert!(
        output.status.success(),
        "rsops encrypt --azure-kv {key_url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The `azure_kv` entry of a YAML file: its fields in file order.
fn azure_entry(text: &str) -> Vec<(String, String)> {
    let block = Regex::new(r"(?m)^    azure_kv:\n((?:        [- ] .*\n)+)").unwrap();
    let entry = block
        .captures(text)
        .unwrap_or_else(|| panic!("no azure_kv entry in:\n{text}"));
    entry[1]
        .lines()
        .map(|line| {
            let (key, value) = line[10..].split_once(": ").expect("key: value");
            (key.to_string(), value.to_string())
        })
        .collect()
}

fn log_count(emulator: &Emulator, needle: &str) -> usize {
    std::fs::read_to_string(emulator.get("/requests_log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

#[test]
fn rsops_encrypts_for_an_azure_key_and_both_tools_read_it_back() {
    let emulator = Emulator::start("azure_kv.py");
    let fixture = Fixture::new();
    let sandbox = &fixture.sandbox;
    let plain = sandbox.dir.path().join("plain.yaml");
    let vault_url = emulator.get("/vault_url");
    let version = emulator.get("/versions/sops");
    let time = Regex::new(r#"^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"$"#).unwrap();
    let enc = Regex::new(r"^[A-Za-z0-9_-]{300,}$").unwrap();

    // Without a version (resolved by a GET on the key), then with one.
    for (what, key_url, gets) in [
        ("latest", format!("{vault_url}/keys/sops"), 1),
        ("versioned", format!("{vault_url}/keys/sops/{version}"), 0),
    ] {
        let gets_before = log_count(&emulator, "key=sops op=get bearer=yes");
        let ours = rsops_encrypt(&fixture, &emulator, &key_url, &plain);
        assert_eq!(
            log_count(&emulator, "key=sops op=get bearer=yes") - gets_before,
            gets,
            "{what}: version lookups"
        );
        let text = String::from_utf8(ours.stdout.clone()).expect("utf-8");
        let fields = azure_entry(&text);
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["vault_url", "name", "version", "created_at", "enc"],
            "{what}: fields"
        );
        assert_eq!(fields[0].1, vault_url, "{what}: vault_url");
        assert_eq!(fields[1].1, "sops", "{what}: name");
        assert_eq!(fields[2].1, version, "{what}: version");
        assert!(
            time.is_match(&fields[3].1),
            "{what}: created_at {}",
            fields[3].1
        );
        // RSA-2048 ciphertext, base64url without padding.
        assert!(enc.is_match(&fields[4].1), "{what}: enc {}", fields[4].1);

        let file = sandbox.write(&format!("ours-{what}.enc.yaml"), &ours.stdout);
        // rsops, with the Azure credentials and no age key.
        let output = fixture.rsops(&file, &azure_env(&emulator));
        fixture.assert_decrypts(&format!("{what}: rsops decrypt via Azure"), &output);
        // The reference, through the age entry, as it reads its own file.
        let reference = run(
            sandbox
                .sops()
                .env("SOPS_AGE_KEY", &sandbox.keys[0].secret)
                .arg("decrypt")
                .arg(&file),
            b"",
        );
        assert!(
            reference.status.success(),
            "{what}: the reference cannot decrypt rsops' file: {}",
            String::from_utf8_lossy(&reference.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&reference.stdout),
            String::from_utf8_lossy(&fixture.expected.stdout),
            "{what}: the reference's plaintext"
        );
    }
    assert!(log_count(&emulator, "key=sops op=encrypt bearer=yes") >= 2);
}

#[test]
fn unusable_key_urls_and_denied_keys_fail_without_output() {
    let emulator = Emulator::start("azure_kv.py");
    let fixture = Fixture::new();
    let sandbox = &fixture.sandbox;
    let plain = sandbox.dir.path().join("plain.yaml");
    let vault_url = emulator.get("/vault_url");
    for (key_url, needle) in [
        (
            format!("{vault_url}/secrets/sops"),
            "could not parse".to_string(),
        ),
        (
            format!("{vault_url}/keys/denied"),
            "keys get permission".to_string(),
        ),
        (
            format!("{vault_url}/keys/missing"),
            "missing/ was not found".to_string(),
        ),
    ] {
        let mut cmd = sandbox.rsops();
        cmd.args([
            "encrypt",
            "--azure-kv",
            &key_url,
            "--age",
            &sandbox.keys[0].recipient,
        ])
        .arg(&plain)
        .envs(azure_env(&emulator));
        let output = run(&mut cmd, b"");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{key_url}: succeeded");
        assert!(output.stdout.is_empty(), "{key_url}: printed output");
        assert!(
            stderr.contains(&needle),
            "{key_url}: stderr lacks {needle:?}: {stderr}"
        );
    }
}

#[test]
fn a_creation_rule_key_group_names_the_key_by_its_parts() {
    let emulator = Emulator::start("azure_kv.py");
    let fixture = Fixture::new();
    let sandbox = &fixture.sandbox;
    let vault_url = emulator.get("/vault_url");
    sandbox.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - key_groups:\n      - azure_keyvault:\n          - vaultUrl: {vault_url}/\n            key: sops\n        age:\n          - {}\n",
            sandbox.keys[0].recipient
        )
        .as_bytes(),
    );
    let output = run(
        sandbox
            .rsops()
            .current_dir(sandbox.dir.path())
            .args(["encrypt", "plain.yaml"])
            .envs(azure_env(&emulator)),
        b"",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout.clone()).expect("utf-8");
    let fields = azure_entry(&text);
    let head: Vec<(&str, &str)> = fields[..3]
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let version = emulator.get("/versions/sops");
    assert_eq!(
        head,
        [
            ("vault_url", vault_url.as_str()),
            ("name", "sops"),
            ("version", version.as_str()),
        ]
    );
    let file = sandbox.write("rule.enc.yaml", &output.stdout);
    let decrypted = fixture.rsops(&file, &azure_env(&emulator));
    fixture.assert_decrypts("rule: rsops decrypt via Azure", &decrypted);
}
