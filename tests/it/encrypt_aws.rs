//! `rsops encrypt` for AWS KMS keys, against the LocalStack that
//! `scripts/test` starts: the reference decrypts what rsops writes to the
//! same bytes as what it wrote itself with the same key, rsops reads it back,
//! and the files match once the random parts (ciphertexts, wrapped keys,
//! timestamps, the MAC) are masked. Keys come from `--kms ARN`,
//! `--kms ARN+ROLE` and a `.sops.yaml` rule with an encryption context.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{assert_same_success, fixture, masked, run, Sandbox};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the AWS KMS tests need LocalStack. Run them with scripts/test, \
             or `eval \"$(localstack/start)\"` after localstack/install (then localstack/stop)"
        )
    })
}

/// `cmd` pointed at LocalStack with test credentials; no instance metadata.
fn aws(mut cmd: Command) -> Command {
    cmd.env("AWS_ENDPOINT_URL", var("RSOPS_TEST_AWS_ENDPOINT"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    cmd
}

/// `decrypt` of `file` by the reference (`sops`) or rsops; must succeed.
fn decrypt(sandbox: &Sandbox, reference: bool, file: &Path) -> std::process::Output {
    let cmd = if reference {
        sandbox.sops()
    } else {
        sandbox.rsops()
    };
    let output = run(aws(cmd).arg("decrypt").arg(file), b"");
    assert!(
        output.status.success(),
        "{} cannot decrypt {}: {}",
        if reference { "the reference" } else { "rsops" },
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Encrypts `plain` with both tools and `args`, and checks the reference
/// reads rsops' file as its own, rsops reads it too, and the layouts
/// match. Returns rsops' file.
fn encrypt_both(sandbox: &Sandbox, plain: &Path, args: &[&str], name: &str) -> PathBuf {
    let theirs = run(
        aws(sandbox.sops()).arg("encrypt").args(args).arg(plain),
        b"",
    );
    assert!(
        theirs.status.success(),
        "reference encrypt {args:?}: {}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    let ours = run(
        aws(sandbox.rsops()).arg("encrypt").args(args).arg(plain),
        b"",
    );
    assert!(
        ours.status.success(),
        "rsops encrypt {args:?}: {}",
        String::from_utf8_lossy(&ours.stderr)
    );
    let what = format!("{name} {args:?}");
    assert_eq!(
        masked(&ours.stdout, "yaml"),
        masked(&theirs.stdout, "yaml"),
        "{what}: layout"
    );
    let ours_file = sandbox.write(&format!("ours-{name}"), &ours.stdout);
    let theirs_file = sandbox.write(&format!("theirs-{name}"), &theirs.stdout);
    let reference_of_theirs = decrypt(sandbox, true, &theirs_file);
    let reference_of_ours = decrypt(sandbox, true, &ours_file);
    assert_same_success(
        &format!("{what}: reference decrypt"),
        &reference_of_theirs,
        &reference_of_ours,
    );
    let rsops_of_ours = decrypt(sandbox, false, &ours_file);
    assert_same_success(
        &format!("{what}: rsops decrypt"),
        &reference_of_theirs,
        &rsops_of_ours,
    );
    ours_file
}

#[test]
fn kms_arn_interop_and_layout() {
    let sandbox = Sandbox::new(0);
    let arn = var("RSOPS_TEST_KMS_ARN");
    for name in ["basic.yaml", "basic.env"] {
        let file = encrypt_both(&sandbox, &fixture(name), &["--kms", &arn], name);
        let text = std::fs::read_to_string(file).expect("read rsops' file");
        assert!(text.contains(&arn), "{name}: the entry names the key");
    }
}

#[test]
fn kms_arn_with_a_role() {
    let sandbox = Sandbox::new(0);
    let role = var("RSOPS_TEST_KMS_ROLE_ARN");
    let key = format!("{}+{role}", var("RSOPS_TEST_KMS_ARN"));
    let file = encrypt_both(
        &sandbox,
        &fixture("basic.yaml"),
        &["--kms", &key],
        "role.yaml",
    );
    let text = std::fs::read_to_string(file).expect("read rsops' file");
    assert!(text.contains(&format!("role: {role}")), "{text}");
}

#[test]
fn creation_rule_with_an_encryption_context() {
    let sandbox = Sandbox::new(0);
    let arn = var("RSOPS_TEST_KMS_ARN");
    sandbox.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - key_groups:\n      - kms:\n          - arn: {arn}\n            \
             context:\n              zone: blue\n              App: rsops test\n"
        )
        .as_bytes(),
    );
    let plain = sandbox.write("plain.yaml", &std::fs::read(fixture("basic.yaml")).unwrap());
    let file = encrypt_both(&sandbox, &plain, &[], "context.yaml");
    let text = std::fs::read_to_string(&file).expect("read rsops' file");
    assert!(
        text.contains("context:\n") && text.contains("App: rsops test"),
        "{text}"
    );
    // The context is bound to the wrapped key: changed, KMS refuses it.
    let tampered = sandbox.write(
        "tampered.yaml",
        text.replace("zone: blue", "zone: red").as_bytes(),
    );
    let out = run(aws(sandbox.rsops()).arg("decrypt").arg(&tampered), b"");
    assert_eq!(out.status.code(), Some(128), "wrong context must fail");
    assert!(out.stdout.is_empty());
}

#[test]
fn encryption_context_and_profile_flags() {
    let sandbox = Sandbox::new(0);
    let arn = var("RSOPS_TEST_KMS_ARN");
    let file = encrypt_both(
        &sandbox,
        &fixture("basic.yaml"),
        &[
            "--kms",
            &arn,
            "--encryption-context",
            "team:payments,env:prod",
        ],
        "context.yaml",
    );
    let text = std::fs::read_to_string(file).expect("read rsops' file");
    assert!(
        text.contains("context:\n")
            && text.contains("env: prod")
            && text.contains("team: payments"),
        "{text}"
    );
    // A malformed pair is refused, not dropped as sops drops it.
    let output = run(
        aws(sandbox.rsops())
            .args(["encrypt", "--kms", &arn, "--encryption-context", "team"])
            .arg(fixture("basic.yaml")),
        b"",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
}
