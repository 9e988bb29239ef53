//! `rsops encrypt` for GCP Cloud KMS keys, through the emulator
//! (`tests/emulators/gcp_kms.py`): rsops reads back what it wrote with the
//! GCP key alone, and the `gcp_kms` entry holds `resource_id`, `created_at`
//! and `enc` in that order. The reference (3.11) cannot be pointed at the
//! emulator, so the same file also gets an age recipient: the reference
//! decrypts rsops' file with the age key to the same bytes as its own
//! `sops encrypt --age` output, and the two layouts match once the random
//! parts and the `gcp_kms` entry are masked.

use std::path::Path;
use std::process::{Command, Output};

use regex::Regex;

use crate::cloud_emulator::Emulator;
use crate::util::{assert_same_success, fixture, masked, run, Sandbox};

/// The emulator and a key name in its project.
struct Gcp {
    emulator: Emulator,
}

impl Gcp {
    fn new() -> Gcp {
        Gcp {
            emulator: Emulator::start("gcp_kms.py"),
        }
    }

    fn resource(&self, key: &str) -> String {
        format!("{}/cryptoKeys/{key}", self.emulator.get("/project"))
    }

    /// `cmd` pointed at the emulator, with a valid access token.
    fn env(&self, mut cmd: Command) -> Command {
        cmd.env("SSL_CERT_FILE", self.emulator.get("/ca"))
            .env("SOPS_GCP_KMS_ENDPOINT", self.emulator.get("/endpoint"))
            .env(
                "GOOGLE_OAUTH_ACCESS_TOKEN",
                self.emulator.get("/tokens/valid"),
            );
        cmd
    }
}

fn succeeded(what: &str, output: Output) -> Output {
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The `gcp_kms` entry of a YAML file as rsops writes it: the reference's
/// fields in the reference's order, nothing else.
fn gcp_entry(resource: &str) -> Regex {
    Regex::new(&format!(
        "(?m)^    gcp_kms:\n        - resource_id: {}\n          \
         created_at: \"?\\d{{4}}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\"?\n          \
         enc: [A-Za-z0-9+/]+=*\n",
        regex::escape(resource)
    ))
    .unwrap()
}

fn reference_decrypt(sandbox: &Sandbox, key_file: &Path, file: &Path) -> Output {
    succeeded(
        &format!("the reference decrypts {}", file.display()),
        run(
            sandbox
                .sops()
                .env("SOPS_AGE_KEY_FILE", key_file)
                .arg("decrypt")
                .arg(file),
            b"",
        ),
    )
}

#[test]
fn gcp_kms_with_an_age_recipient_interop_and_layout() {
    let gcp = Gcp::new();
    let sandbox = Sandbox::new(1);
    let key_file = sandbox.key_file(&[0]);
    let recipient = sandbox.keys[0].recipient.clone();
    let resource = gcp.resource("sops");
    let plain = fixture("basic.yaml");

    let ours = succeeded(
        "rsops encrypt --age --gcp-kms",
        run(
            gcp.env(sandbox.rsops())
                .args(["encrypt", "--age", &recipient, "--gcp-kms", &resource])
                .arg(&plain),
            b"",
        ),
    );
    let theirs = succeeded(
        "reference encrypt --age",
        run(
            sandbox
                .sops()
                .args(["encrypt", "--age", &recipient])
                .arg(&plain),
            b"",
        ),
    );
    let ours_text = String::from_utf8(ours.stdout).expect("utf-8");
    let theirs_text = String::from_utf8(theirs.stdout).expect("utf-8");

    // The gcp_kms entry: exactly the reference's fields, in its order.
    let entry = gcp_entry(&resource);
    assert_eq!(
        entry.find_iter(&ours_text).count(),
        1,
        "one gcp_kms entry with resource_id, created_at, enc:\n{ours_text}"
    );
    // Without it, the file is laid out as the reference's age-only file.
    let without_gcp = entry.replace(&ours_text, "");
    assert_eq!(
        masked(without_gcp.as_bytes(), "yaml"),
        masked(theirs_text.as_bytes(), "yaml"),
        "layout"
    );

    let ours_file = sandbox.write("ours.yaml", ours_text.as_bytes());
    let theirs_file = sandbox.write("theirs.yaml", theirs_text.as_bytes());
    let reference_of_theirs = reference_decrypt(&sandbox, &key_file, &theirs_file);
    let reference_of_ours = reference_decrypt(&sandbox, &key_file, &ours_file);
    assert_same_success(
        "reference decrypt (age)",
        &reference_of_theirs,
        &reference_of_ours,
    );

    // rsops reads it back with the GCP key alone (no age key anywhere).
    let rsops_of_ours = succeeded(
        "rsops decrypt through GCP KMS",
        run(gcp.env(sandbox.rsops()).arg("decrypt").arg(&ours_file), b""),
    );
    assert_same_success(
        "rsops decrypt (gcp_kms)",
        &reference_of_theirs,
        &rsops_of_ours,
    );
}

#[test]
fn gcp_kms_alone_from_the_flag_and_the_environment_reads_back() {
    let gcp = Gcp::new();
    let sandbox = Sandbox::new(1);
    let key_file = sandbox.key_file(&[0]);
    let recipient = sandbox.keys[0].recipient.clone();
    let resource = gcp.resource("sops");
    for (name, by_env) in [("basic.yaml", false), ("basic.env", true)] {
        let plain = fixture(name);
        let mut cmd = gcp.env(sandbox.rsops());
        if by_env {
            cmd.env("SOPS_GCP_KMS_IDS", &resource).arg("encrypt");
        } else {
            cmd.args(["encrypt", "--gcp-kms", &resource]);
        }
        let ours = succeeded(&format!("rsops encrypt {name}"), run(cmd.arg(&plain), b""));
        let text = String::from_utf8(ours.stdout).expect("utf-8");
        assert!(text.contains(&resource), "{name}: the entry names the key");
        let file = sandbox.write(&format!("ours-{name}"), text.as_bytes());
        let back = succeeded(
            &format!("rsops decrypt {name}"),
            run(gcp.env(sandbox.rsops()).arg("decrypt").arg(&file), b""),
        );
        // What the reference prints for the same plaintext (age-encrypted).
        let theirs =
            sandbox.sops_encrypt(&plain, &["--age", &recipient], &format!("theirs-{name}"));
        let expected = reference_decrypt(&sandbox, &key_file, &theirs);
        assert_same_success(&format!("{name}: round trip"), &expected, &back);
    }
}

#[test]
fn a_refused_encrypt_fails_with_no_output_and_says_why() {
    let gcp = Gcp::new();
    let sandbox = Sandbox::new(0);
    let output = run(
        gcp.env(sandbox.rsops())
            .args(["encrypt", "--gcp-kms", &gcp.resource("denied")])
            .arg(fixture("basic.yaml")),
        b"",
    );
    assert!(!output.status.success(), "a denied key must fail");
    assert!(output.stdout.is_empty(), "no output on failure");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("permission denied on") && stderr.contains("cryptoKeys/denied"),
        "{stderr}"
    );
}
