//! Key files read with Sequoia (the `key-files` feature): RSA and
//! cv25519 keys, armored and binary, several files, a legacy `secring.gpg`,
//! tried before gpg; locked keys, foreign keys, unreadable files and damaged
//! messages classified.

use rsops_keysource::ErrorClass;

use super::support::{calls, counting_gpg, data_key, Algo, GnupgHome, PASSPHRASE};
use super::{assert_unwraps, no_credentials, unwrap_err, NOT_A_MESSAGE, NO_GPG};

#[tokio::test]
async fn rsa_key_file_without_gpg() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Rsa, "rsa <rsa@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(10));
    let file = home.write("key.asc", &home.export_secret(&key.fpr, true));
    let source = home.source_with(NO_GPG, vec![file]);
    assert_unwraps(&source, &key.fpr, &enc, &data_key(10)).await;
}

#[tokio::test]
async fn binary_cv25519_key_file_without_gpg() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Ecc, "ecc <ecc@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(11));
    let file = home.write("key.gpg", &home.export_secret(&key.fpr, false));
    let source = home.source_with(NO_GPG, vec![file]);
    assert_unwraps(&source, &key.fpr, &enc, &data_key(11)).await;
}

#[tokio::test]
async fn several_key_files_are_all_searched() {
    let home = GnupgHome::new();
    let other = home.generate(Algo::Ecc, "other <other@example.com>", "");
    let key = home.generate(Algo::Rsa, "rsa <rsa@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(12));
    let first = home.write("other.asc", &home.export_secret(&other.fpr, true));
    let second = home.write("key.asc", &home.export_secret(&key.fpr, true));
    let source = home.source_with(NO_GPG, vec![first, second]);
    assert_unwraps(&source, &key.fpr, &enc, &data_key(12)).await;
}

#[tokio::test]
async fn legacy_secring_without_gpg() {
    let owner = GnupgHome::new();
    let key = owner.generate(Algo::Rsa, "rsa <rsa@example.com>", "");
    let enc = owner.encrypt(&key.fpr, &data_key(13));
    let legacy = GnupgHome::new();
    legacy.write("secring.gpg", &owner.export_secret(&key.fpr, false));
    let source = legacy.source_with(NO_GPG, Vec::new());
    assert_unwraps(&source, &key.fpr, &enc, &data_key(13)).await;
}

#[tokio::test]
async fn key_file_is_used_before_gpg() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Ecc, "ecc <ecc@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(14));
    let file = home.write("key.asc", &home.export_secret(&key.fpr, true));
    let log = home.path().join("calls.log");
    let gpg = counting_gpg(&home, &log);
    let source = home.source_with(gpg.to_str().expect("utf-8 path"), vec![file]);
    assert_unwraps(&source, &key.fpr, &enc, &data_key(14)).await;
    assert_eq!(
        calls(&log),
        0,
        "gpg must not run when a key file opens the message"
    );
}

#[tokio::test]
async fn locked_key_file_without_gpg_says_so() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Ecc, "pw <pw@example.com>", PASSPHRASE);
    let enc = home.encrypt(&key.fpr, &data_key(16));
    let file = home.write("key.asc", &home.export_secret(&key.fpr, true));
    let e = unwrap_err(&home.source_with(NO_GPG, vec![file]), &key.fpr, &enc).await;
    let (message, hint) = no_credentials(&e);
    assert!(
        message.contains("passphrase-protected") && message.contains(&key.fpr),
        "{message}"
    );
    assert!(hint.contains("gpg --import"), "{hint}");
}

#[tokio::test]
async fn locked_key_file_falls_back_to_gpg_agent() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Rsa, "pw <pw@example.com>", PASSPHRASE);
    let enc = home.encrypt(&key.fpr, &data_key(17));
    let file = home.write("key.asc", &home.export_secret(&key.fpr, true));
    home.preset_passphrase(&key);
    let source = home.source_with("gpg", vec![file]);
    assert_unwraps(&source, &key.fpr, &enc, &data_key(17)).await;
}

#[tokio::test]
async fn key_file_without_the_key_and_no_gpg() {
    let home = GnupgHome::new();
    let other = home.generate(Algo::Rsa, "other <other@example.com>", "");
    let key = home.generate(Algo::Ecc, "ecc <ecc@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(18));
    let file = home.write("other.asc", &home.export_secret(&other.fpr, true));
    let e = unwrap_err(&home.source_with(NO_GPG, vec![file]), &key.fpr, &enc).await;
    assert_eq!(e.class(), ErrorClass::NoCredentials, "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("no secret key in the key files") && text.contains("other.asc"),
        "{text}"
    );
}

#[tokio::test]
async fn unreadable_key_file_is_reported() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Rsa, "rsa <rsa@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(19));
    let missing = home.path().join("no-such-key.asc");
    let e = unwrap_err(&home.source_with(NO_GPG, vec![missing]), &key.fpr, &enc).await;
    let text = e.to_string();
    assert!(
        text.contains("cannot read RSOPS_PGP_KEY_FILE") && text.contains("no-such-key.asc"),
        "{text}"
    );
}

#[tokio::test]
async fn corrupt_message_without_gpg() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Rsa, "rsa <rsa@example.com>", "");
    let file = home.write("key.asc", &home.export_secret(&key.fpr, true));
    let e = unwrap_err(
        &home.source_with(NO_GPG, vec![file]),
        &key.fpr,
        NOT_A_MESSAGE,
    )
    .await;
    assert_eq!(e.class(), ErrorClass::CorruptEntry, "{e:?}");
    assert!(e.to_string().contains("cannot be read without gpg"), "{e}");
    assert!(e.hint().is_some_and(|h| h.contains("sops rotate")), "{e:?}");
}

#[tokio::test]
async fn tampered_ciphertext_is_corrupt_without_gpg() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Ecc, "ecc <ecc@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(20));
    let file = home.write("key.asc", &home.export_secret(&key.fpr, true));
    let e = unwrap_err(
        &home.source_with(NO_GPG, vec![file]),
        &key.fpr,
        &tamper(&enc),
    )
    .await;
    assert_eq!(e.class(), ErrorClass::CorruptEntry, "{e:?}");
}

/// Flips one base64 character of the last full body line, inside the
/// encrypted data packet (not the key packet), and drops the armor checksum.
fn tamper(armored: &str) -> String {
    let mut lines: Vec<String> = armored
        .lines()
        .filter(|l| !l.starts_with('='))
        .map(str::to_string)
        .collect();
    let last_body = lines.len() - 3;
    let line = &mut lines[last_body];
    let flipped = if line.ends_with('A') { 'B' } else { 'A' };
    line.pop();
    line.push(flipped);
    lines.join("\n")
}
