//! Key files in the default build, which cannot read them: gpg is still
//! used, and when gpg cannot unwrap the entry the error names the unread
//! files and says how to build rsops so it reads them, or what to do with
//! gpg instead.

use super::support::{data_key, Algo, GnupgHome};
use super::{assert_unwraps, no_credentials, unwrap_err, NO_GPG};

const BUILD_HINT: &str = "cargo install --path . --features pgp-key-files";
const NOT_BUILT: &str =
    "this build of rsops reads PGP key files only when built with `--features pgp-key-files`";

/// How the error names the unread `source` for `fpr`.
fn not_looked_for(fpr: &str, source: &str) -> String {
    format!("the secret key of {fpr} was not looked for in {source}: {NOT_BUILT}")
}

#[tokio::test]
async fn key_file_without_gpg_says_how_to_build() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Rsa, "rsa <rsa@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(30));
    let file = home.write("key.asc", &home.export_secret(&key.fpr, true));
    let e = unwrap_err(
        &home.source_with(NO_GPG, vec![file.clone()]),
        &key.fpr,
        &enc,
    )
    .await;
    let (message, hint) = no_credentials(&e);
    let named = format!("RSOPS_PGP_KEY_FILE file {}", file.display());
    assert!(
        message.contains("could not be started")
            && message.contains(&not_looked_for(&key.fpr, &named)),
        "{message}"
    );
    assert!(
        hint.contains(BUILD_HINT)
            && hint.contains("install GnuPG")
            && hint.contains("gpg --import"),
        "{hint}"
    );
}

#[tokio::test]
async fn legacy_secring_without_gpg_says_how_to_build() {
    let owner = GnupgHome::new();
    let key = owner.generate(Algo::Ecc, "ecc <ecc@example.com>", "");
    let enc = owner.encrypt(&key.fpr, &data_key(31));
    let legacy = GnupgHome::new();
    let secring = legacy.write("secring.gpg", &owner.export_secret(&key.fpr, false));
    let e = unwrap_err(&legacy.source_with(NO_GPG, Vec::new()), &key.fpr, &enc).await;
    let (message, hint) = no_credentials(&e);
    assert!(
        message.contains(&not_looked_for(&key.fpr, &secring.display().to_string())),
        "{message}"
    );
    assert!(hint.contains(BUILD_HINT), "{hint}");
}

#[tokio::test]
async fn key_file_is_no_obstacle_when_gpg_holds_the_key() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Ecc, "ecc <ecc@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(32));
    let file = home.write("key.asc", &home.export_secret(&key.fpr, true));
    let source = home.source_with("gpg", vec![file]);
    assert_unwraps(&source, &key.fpr, &enc, &data_key(32)).await;
}

#[tokio::test]
async fn key_file_and_gpg_without_the_key_says_how_to_build() {
    let owner = GnupgHome::new();
    let key = owner.generate(Algo::Rsa, "rsa <rsa@example.com>", "");
    let enc = owner.encrypt(&key.fpr, &data_key(33));
    let stranger = GnupgHome::new();
    let file = stranger.write("key.asc", &owner.export_secret(&key.fpr, true));
    let e = unwrap_err(&stranger.source_with("gpg", vec![file]), &key.fpr, &enc).await;
    let (message, hint) = no_credentials(&e);
    assert!(
        message.contains(&key.fpr)
            && message.contains("not in gpg's keyring")
            && message.contains(NOT_BUILT),
        "{message}"
    );
    assert!(
        hint.contains(BUILD_HINT) && hint.contains("gpg --import"),
        "{hint}"
    );
}

#[tokio::test]
async fn gpg_missing_without_key_files_names_no_file() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Rsa, "rsa <rsa@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(34));
    let e = unwrap_err(&home.source_with(NO_GPG, Vec::new()), &key.fpr, &enc).await;
    let (message, hint) = no_credentials(&e);
    assert!(!message.contains(NOT_BUILT), "{message}");
    assert!(
        hint.contains("install GnuPG") && hint.contains("--features pgp-key-files"),
        "{hint}"
    );
}
