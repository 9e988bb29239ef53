//! Key services that never answer: a loopback listener accepts connections
//! and stays silent. Entries pointing at it must not delay a usable age key,
//! must fail within the deadlines with a full per-entry report, and must not
//! hold up a Shamir threshold that other groups meet. No timing asserts: a
//! watchdog only guards against hangs.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{assert_same_success, fixture, Sandbox};

/// Kills a run that takes longer than this (a hang, not a slow machine).
const WATCHDOG: Duration = Duration::from_secs(90);

/// A listener that accepts every connection and never answers.
fn dead_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// `hc_vault` and `kms` entries at the dead listener, indented for a list under `sops:`.
fn dead_entries(port: u16, indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!(
        "{pad}hc_vault:\n\
         {pad}    - vault_address: http://127.0.0.1:{port}\n\
         {pad}      engine_path: sops\n\
         {pad}      key_name: dead\n\
         {pad}      created_at: \"2026-01-01T00:00:00Z\"\n\
         {pad}      enc: vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\
         {pad}kms:\n\
         {pad}    - arn: arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000\n\
         {pad}      created_at: \"2026-01-01T00:00:00Z\"\n\
         {pad}      enc: AQICAHhAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n\
         {pad}      aws_profile: \"\"\n"
    )
}

/// rsops with both dead services configured and preferred.
fn rsops(sandbox: &Sandbox, port: u16, key_file: &Path) -> Command {
    let dead = format!("http://127.0.0.1:{port}");
    let mut cmd = sandbox.rsops();
    cmd.env("SOPS_AGE_KEY_FILE", key_file)
        .env("SOPS_DECRYPTION_ORDER", "hc_vault,kms,age")
        .env("VAULT_ADDR", &dead)
        .env("VAULT_TOKEN", "token")
        .env("AWS_ENDPOINT_URL", &dead)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// Runs to completion under the watchdog.
fn run_guarded(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > WATCHDOG {
            child.kill().ok();
            panic!("rsops hung for {WATCHDOG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A one-group file: age plus the dead entries.
fn one_group(sandbox: &Sandbox, port: u16) -> PathBuf {
    let recipient = sandbox.keys[0].recipient.clone();
    let encrypted = sandbox.sops_encrypt(
        &fixture("basic.yaml"),
        &["--age", &recipient],
        "base.enc.yaml",
    );
    let text = std::fs::read_to_string(&encrypted).unwrap();
    let text = text.replacen("sops:\n", &format!("sops:\n{}", dead_entries(port, 4)), 1);
    sandbox.write("dead.enc.yaml", text.as_bytes())
}

#[test]
fn dead_services_do_not_delay_a_usable_age_key() {
    let sandbox = Sandbox::new(1);
    let port = dead_listener();
    let file = one_group(&sandbox, port);
    let key_file = sandbox.key_file(&[0]);
    // The reference with its default order (age first) as the expected output.
    let reference = run_guarded(
        sandbox
            .sops()
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&file),
    );
    let ours = run_guarded(
        rsops(&sandbox, port, &key_file)
            .args(["decrypt", "--verbose"])
            .arg(&file),
    );
    assert_same_success("dead entries preferred, age usable", &reference, &ours);
    // The dead entries were not waited for: the verbose report shows them
    // stopped (or absent) once age answered, not timed out.
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert!(
        stderr.contains(&format!("age {}: unwrapped", sandbox.keys[0].recipient)),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .filter(|l| l.contains("hc_vault http") || l.contains("kms arn:"))
            .all(|l| l.contains(": cancelled") || l.contains(": not needed"))
            && stderr.contains(": cancelled: enough key groups were unwrapped ("),
        "waited for a dead service: {stderr}"
    );
}

#[test]
fn without_a_usable_key_every_entry_is_reported_within_the_deadline() {
    let sandbox = Sandbox::new(2);
    let port = dead_listener();
    let file = one_group(&sandbox, port);
    let wrong = sandbox.key_file(&[1]);
    let ours = run_guarded(
        rsops(&sandbox, port, &wrong)
            .args(["decrypt", "--key-timeout", "1s", "--timeout", "2s"])
            .arg(&file),
    );
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert_eq!(ours.status.code(), Some(128), "{stderr}");
    assert!(ours.stdout.is_empty());
    // Both dead entries are cut by the 1 s per-attempt deadline (shorter
    // than every client timeout and than the 2 s overall one), and the report
    // names exactly that deadline for each.
    for needle in [
        "could not get the data key",
        &format!("hc_vault http://127.0.0.1:{port}/v1/sops/keys/dead: timed out after 1000 ms"),
        "kms arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000: timed out after 1000 ms",
        &format!("age {}: ", sandbox.keys[0].recipient),
        "hint: check the network path to the key service, or give it more time (RSOPS_KEY_TIMEOUT)",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

#[test]
fn shamir_threshold_met_while_one_group_is_dead() {
    let sandbox = Sandbox::new(3);
    let port = dead_listener();
    let mut config = String::from("creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n");
    for key in &sandbox.keys {
        config.push_str(&format!("      - age:\n          - {}\n", key.recipient));
    }
    sandbox.write(".sops.yaml", config.as_bytes());
    let encrypted = sandbox.sops_encrypt(&fixture("basic.env"), &[], "shamir.enc.env");
    let reference_key_file = sandbox.key_file(&[0, 1]);
    let reference = run_guarded(
        sandbox
            .sops()
            .env("SOPS_AGE_KEY_FILE", &reference_key_file)
            .arg("decrypt")
            .arg(&encrypted),
    );
    assert!(reference.status.success());
    // Group 2 loses its age entry and gets only dead ones instead.
    let text = std::fs::read_to_string(&encrypted).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("sops_key_groups__list_1__map_age"))
        .map(str::to_string)
        .collect();
    let dead = [
        format!("sops_key_groups__list_1__map_hc_vault__list_0__map_vault_address=http://127.0.0.1:{port}"),
        "sops_key_groups__list_1__map_hc_vault__list_0__map_engine_path=sops".into(),
        "sops_key_groups__list_1__map_hc_vault__list_0__map_key_name=dead".into(),
        "sops_key_groups__list_1__map_hc_vault__list_0__map_created_at=2026-01-01T00:00:00Z".into(),
        "sops_key_groups__list_1__map_hc_vault__list_0__map_enc=vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
    ];
    lines.extend(dead);
    let dead_file = sandbox.write("shamir-dead.enc.env", (lines.join("\n") + "\n").as_bytes());
    let key_file = sandbox.key_file(&[0, 2]);
    let ours = run_guarded(
        rsops(&sandbox, port, &key_file)
            .args(["decrypt", "--verbose"])
            .arg(&dead_file),
    );
    assert_same_success("Shamir 2 of 3 with a dead group", &reference, &ours);
    // The dead group was not waited for: stopped (or absent), not timed out.
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert!(
        stderr
            .lines()
            .filter(|l| l.contains("hc_vault"))
            .all(|l| l.contains(": cancelled") || l.contains(": not needed"))
            && stderr.contains(": cancelled: enough key groups were unwrapped ("),
        "waited for the dead group: {stderr}"
    );
}

#[test]
fn keys_command_reports_every_entry() {
    let sandbox = Sandbox::new(1);
    let port = dead_listener();
    let file = one_group(&sandbox, port);
    let key_file = sandbox.key_file(&[0]);
    let ours = run_guarded(
        rsops(&sandbox, port, &key_file)
            .args(["keys", "--key-timeout", "1s", "--timeout", "2s"])
            .arg(&file),
    );
    let stdout = String::from_utf8_lossy(&ours.stdout);
    assert_eq!(ours.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ok   age age1"), "{stdout}");
    assert!(
        stdout.contains("FAIL hc_vault http://127.0.0.1"),
        "{stdout}"
    );
    assert!(stdout.contains("FAIL kms arn:aws:kms"), "{stdout}");
    assert!(
        stdout.contains("the data key can be recovered here"),
        "{stdout}"
    );
}
