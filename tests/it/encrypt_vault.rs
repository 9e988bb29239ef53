//! `rsops encrypt` for Vault / OpenBao transit keys, against the OpenBao dev
//! server that `openbao/start` runs (scripts/test starts it and exports
//! `RSOPS_TEST_VAULT_*`): for `--hc-vault-transit URI` and a `.sops.yaml`
//! `hc_vault_transit_uri`, the reference decrypts what rsops writes to the
//! same bytes as what it wrote itself, rsops decrypts it too, and the two
//! files are the same once the random parts (ciphertexts, `vault:v<N>:…`
//! wrapped keys, age armor, timestamps) are masked.

use std::path::Path;
use std::process::Command;

use crate::util::{fixture, masked, run, Sandbox};

const JSON: &str =
    "{\n\t\"a\": \"b\",\n\t\"n\": [1, 2.5, true, null],\n\t\"m\": {\"k\": \"v\"}\n}\n";

/// The OpenBao server of the test run: address and root token.
fn server() -> (String, String) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is unset: the Vault tests need the OpenBao dev server; run them with \
                 scripts/test, or `openbao/install && eval \"$(openbao/start)\"` first"
            )
        })
    };
    (var("RSOPS_TEST_VAULT_ADDR"), var("RSOPS_TEST_VAULT_TOKEN"))
}

/// A command that talks to the test server.
fn with_vault(mut cmd: Command) -> Command {
    let (addr, token) = server();
    cmd.env("VAULT_ADDR", addr).env("VAULT_TOKEN", token);
    cmd
}

/// `sops decrypt` of `file`, which must succeed.
fn reference_decrypt(sandbox: &Sandbox, file: &Path, input_type: &str) -> Vec<u8> {
    let output = run(
        with_vault(sandbox.sops())
            .args(["decrypt", "--input-type", input_type, "--output-type"])
            .arg(input_type)
            .arg(file),
        b"",
    );
    assert!(
        output.status.success(),
        "the reference cannot decrypt {}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Encrypts `plain` with both programs (`args` given to each), then checks
/// the layout, that the reference reads rsops' file as it reads its own,
/// and that rsops reads it too. Returns rsops' file.
fn compare(sandbox: &Sandbox, what: &str, plain: &Path, input_type: &str, args: &[&str]) -> String {
    let theirs = run(
        with_vault(sandbox.sops())
            .arg("encrypt")
            .args(args)
            .arg(plain),
        b"",
    );
    assert!(
        theirs.status.success(),
        "{what}: reference: {}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    let ours = run(
        with_vault(sandbox.rsops())
            .arg("encrypt")
            .args(args)
            .arg(plain),
        b"",
    );
    assert!(
        ours.status.success(),
        "{what}: rsops: {}",
        String::from_utf8_lossy(&ours.stderr)
    );
    assert_eq!(
        masked(&ours.stdout, input_type),
        masked(&theirs.stdout, input_type),
        "{what}: layout"
    );
    let ours_file = sandbox.write(&format!("ours-{what}"), &ours.stdout);
    let theirs_file = sandbox.write(&format!("theirs-{what}"), &theirs.stdout);
    let expected = reference_decrypt(sandbox, &theirs_file, input_type);
    assert_eq!(
        String::from_utf8_lossy(&reference_decrypt(sandbox, &ours_file, input_type)),
        String::from_utf8_lossy(&expected),
        "{what}: the reference's plaintext"
    );
    let back = run(
        with_vault(sandbox.rsops())
            .args(["decrypt", "--input-type", input_type, "--output-type"])
            .arg(input_type)
            .arg(&ours_file),
        b"",
    );
    assert!(
        back.status.success(),
        "{what}: rsops decrypt: {}",
        String::from_utf8_lossy(&back.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&back.stdout),
        String::from_utf8_lossy(&expected),
        "{what}: rsops' plaintext"
    );
    String::from_utf8_lossy(&ours.stdout).into_owned()
}

#[test]
fn the_reference_reads_what_rsops_encrypts_for_transit_keys() {
    let (addr, _) = server();
    let sandbox = Sandbox::new(0);
    let json = sandbox.write("inline.json", JSON.as_bytes());
    for (engine, key) in [("sops", "first"), ("team/transit", "other")] {
        let uri = format!("{addr}/v1/{engine}/keys/{key}");
        for (name, plain, input_type) in [
            ("basic.yaml", fixture("basic.yaml"), "yaml"),
            ("basic.env", fixture("basic.env"), "dotenv"),
            ("inline.json", json.clone(), "json"),
        ] {
            let what = format!("{key}-{name}");
            let ours = compare(
                &sandbox,
                &what,
                &plain,
                input_type,
                &["--hc-vault-transit", &uri],
            );
            if input_type == "yaml" {
                // The URI is split as the reference splits it.
                let entry = format!(
                    "vault_address: {addr}\n          engine_path: {engine}\n          key_name: {key}\n"
                );
                assert!(ours.contains(&entry), "{what}: {ours}");
                assert!(ours.contains("enc: vault:v"), "{what}: {ours}");
            }
        }
    }
}

#[test]
fn transit_keys_beside_age_and_from_sops_yaml() {
    let (addr, _) = server();
    let sandbox = Sandbox::new(1);
    let recipient = sandbox.keys[0].recipient.clone();
    let uri = format!("{addr}/v1/sops/keys/first");
    let plain = fixture("basic.yaml");
    compare(
        &sandbox,
        "with-age.yaml",
        &plain,
        "yaml",
        &["--hc-vault-transit", &uri, "--age", &recipient],
    );
    sandbox.write(
        ".sops.yaml",
        format!("creation_rules:\n  - hc_vault_transit_uri: {uri}\n").as_bytes(),
    );
    compare(&sandbox, "rule.yaml", &plain, "yaml", &[]);
}
