//! Wrapping a data key for an age recipient, as `rsops encrypt` does:
//! armored as sops writes it, opened by the age crate on its own and by
//! this key source's unwrap; unusable recipients refused with clear errors.
//!
//! The source reads its identities from the environment, which is the
//! process's: the tests take turns ([`ENV`]).

use std::io::Read;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};

use age::secrecy::ExposeSecret;
use rsops_age::AgeKeySource;
use rsops_keysource::{Deadline, ErrorClass, KeyEntry, KeyError, KeySource};

static ENV: Mutex<()> = Mutex::new(());

/// An empty home and only `vars` among the age variables, until dropped.
struct Sandbox {
    dir: tempfile::TempDir,
    _env: MutexGuard<'static, ()>,
}

impl Sandbox {
    fn new(vars: &[(&str, &str)]) -> Sandbox {
        let env = ENV.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().expect("temp dir");
        for name in [
            "SOPS_AGE_KEY",
            "SOPS_AGE_KEY_FILE",
            "SOPS_AGE_KEY_CMD",
            "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
            "SOPS_AGE_SSH_PRIVATE_KEY_CMD",
        ] {
            std::env::remove_var(name);
        }
        std::env::set_var("HOME", dir.path());
        std::env::set_var("XDG_CONFIG_HOME", dir.path().join("config"));
        for (name, value) in vars {
            std::env::set_var(name, value);
        }
        Sandbox { dir, _env: env }
    }
}

fn run<T>(test: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(test)
}

fn data_key() -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(11).wrapping_add(5))
        .collect()
}

fn recipient(r: &str) -> KeyEntry {
    KeyEntry {
        kind: "age".into(),
        fields: vec![("recipient".into(), r.into())],
        maps: Vec::new(),
    }
}

fn wrap(r: &str, secret: &[u8]) -> Result<KeyEntry, KeyError> {
    let source = AgeKeySource::new();
    run(source.wrap(&recipient(r), secret, Deadline::NONE))
}

/// The armor sops 3.11 writes: header, 64-column base64, footer, newline.
fn assert_sops_armor(enc: &str) {
    let lines: Vec<&str> = enc.split('\n').collect();
    assert_eq!(lines.first(), Some(&"-----BEGIN AGE ENCRYPTED FILE-----"));
    assert_eq!(lines.last(), Some(&""), "a newline ends the armor");
    assert_eq!(
        lines.get(lines.len() - 2),
        Some(&"-----END AGE ENCRYPTED FILE-----")
    );
    let body = &lines[1..lines.len() - 2];
    assert!(!body.is_empty());
    for line in &body[..body.len() - 1] {
        assert_eq!(line.len(), 64, "{enc}");
    }
    assert!(body[body.len() - 1].len() <= 64);
}

/// Decrypts armored `enc` with the age crate alone.
fn age_decrypt(identity: &dyn age::Identity, enc: &str) -> Vec<u8> {
    let decryptor =
        age::Decryptor::new(age::armor::ArmoredReader::new(enc.as_bytes())).expect("an age file");
    let mut reader = decryptor
        .decrypt(std::iter::once(identity))
        .expect("decrypts");
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain).expect("read");
    plain
}

#[test]
fn x25519_round_trip() {
    let identity = age::x25519::Identity::generate();
    let public = identity.to_public().to_string();
    let secret = identity.to_string().expose_secret().to_string();
    let _sandbox = Sandbox::new(&[("SOPS_AGE_KEY", &secret)]);
    // Surrounding spaces are trimmed, as the reference trims them.
    let entry = wrap(&format!(" {public} "), &data_key()).expect("wraps");
    assert_eq!(entry.kind, "age");
    let names: Vec<&str> = entry.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["recipient", "enc"]);
    assert_eq!(entry.field("recipient"), Some(public.as_str()));
    let enc = entry.field("enc").expect("enc");
    assert_sops_armor(enc);
    assert_eq!(age_decrypt(&identity, enc), data_key());
    let source = AgeKeySource::new();
    let unwrapped = run(source.unwrap(&entry, Deadline::NONE)).expect("unwraps");
    assert_eq!(unwrapped.expose(), data_key().as_slice());
}

#[test]
fn shamir_shares_are_wrapped_whole() {
    let identity = age::x25519::Identity::generate();
    let share: Vec<u8> = (0..33u8).collect();
    let _sandbox = Sandbox::new(&[]);
    let entry = wrap(&identity.to_public().to_string(), &share).expect("wraps");
    assert_eq!(
        age_decrypt(&identity, entry.field("enc").unwrap_or("")),
        share
    );
}

#[test]
fn ssh_ed25519_round_trip() {
    let sandbox = Sandbox::new(&[]);
    let key = sandbox.dir.path().join("id_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(&key)
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("ssh-keygen unavailable: SSH round trip not tested");
        return;
    }
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let public = public.trim();
    std::env::set_var("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &key);
    let entry = wrap(public, &data_key()).expect("wraps");
    assert_eq!(entry.field("recipient"), Some(public));
    assert_sops_armor(entry.field("enc").unwrap_or(""));
    let source = AgeKeySource::new();
    let unwrapped = run(source.unwrap(&entry, Deadline::NONE)).expect("unwraps");
    assert_eq!(unwrapped.expose(), data_key().as_slice());
}

#[test]
fn post_quantum_recipients_are_unsupported() {
    let _sandbox = Sandbox::new(&[]);
    let e = wrap("age1pq1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", &data_key()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Unsupported);
    assert!(e.to_string().contains("post-quantum"), "{e}");
    assert!(e.hint().is_some());
}

#[test]
fn invalid_recipients_are_named() {
    let _sandbox = Sandbox::new(&[]);
    for bad in [
        "age1notbech32",
        "ssh-ed25519 AAAAnotbase64",
        "pgp:ABCDEF",
        "AGE-SECRET-KEY-1QQQ",
    ] {
        let e = wrap(bad, &data_key()).unwrap_err();
        assert_eq!(e.class(), ErrorClass::CorruptEntry, "{bad}: {e}");
        assert!(e.to_string().contains(bad), "{e}");
    }
    let e = wrap("", &data_key()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::CorruptEntry);
    assert_eq!(e.to_string(), "the age entry has no `recipient` field");
}

#[test]
fn unsupported_ssh_key_types() {
    let _sandbox = Sandbox::new(&[]);
    // An ECDSA key: parseable, but not an age recipient type.
    let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJ2Kx\
                 3ugbLqfcIrWpEEYTSjW7hx7qa0fbLh8d5fX7nhTlO2gPMlvJSqJYHBLv+4d0/2vOlyuPLmsGRsy\
                 rOVFfGY=";
    let e = wrap(ecdsa, &data_key()).unwrap_err();
    // sops only sends `ssh-` keys to the SSH parser; others are unknown.
    assert_eq!(e.class(), ErrorClass::CorruptEntry, "{e}");
    let e = wrap("ssh-dss AAAAB3NzaC1kc3MAAACBAP", &data_key()).unwrap_err();
    assert!(
        matches!(
            e.class(),
            ErrorClass::Unsupported | ErrorClass::CorruptEntry
        ),
        "{e}"
    );
    assert!(e.to_string().contains("ssh-dss"), "{e}");
}

#[test]
fn missing_plugins_are_named() {
    let sandbox = Sandbox::new(&[]);
    let path = std::env::var_os("PATH");
    std::env::set_var("PATH", sandbox.dir.path());
    // A well-formed recipient (age-plugin-yubikey's README) of a plugin
    // that is not installed.
    let plugin = "age1yubikey1q2w7u3vpya839jxxuq8g0sedh3d740d4xvn639sqhr95ejj8vu3hyfumptt";
    let e = wrap(plugin, &data_key());
    if let Some(path) = path {
        std::env::set_var("PATH", path);
    }
    let e = e.unwrap_err();
    assert_eq!(e.class(), ErrorClass::NoCredentials, "{e}");
    assert!(e.to_string().contains("age-plugin-"), "{e}");
}
