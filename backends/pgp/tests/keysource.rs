//! The PGP key source against real keys made by GnuPG in throw-away homes:
//! through gpg-agent (plain, preset passphrase, pinentry) and every
//! classified failure. Key files are covered by whichever of the two modules
//! below matches the build: read with Sequoia (`--features key-files`), or
//! named in a clear error (the default).

mod support;

// Key files read with Sequoia, with gpg absent or as a fallback.
#[cfg(feature = "key-files")]
#[path = "keysource/key_files.rs"]
mod key_files;
// Key files in a build that cannot read them: gpg still works, errors say how to build.
#[cfg(not(feature = "key-files"))]
#[path = "keysource/key_files_not_built.rs"]
mod key_files_not_built;

use std::time::Duration;

use rsops_keysource::{Deadline, ErrorClass, KeyError, KeySource};
use rsops_pgp::PgpKeySource;
use support::{calls, counting_gpg, data_key, entry, unwrap, Algo, GnupgHome, PASSPHRASE};

const NO_GPG: &str = "/nonexistent/gpg";

/// Asserts that `source` unwraps `enc` (for `fpr`) to `expected`.
async fn assert_unwraps(source: &PgpKeySource, fpr: &str, enc: &str, expected: &[u8]) {
    match unwrap(source, &entry(fpr, enc)).await {
        Ok(key) => assert_eq!(key.expose(), expected),
        Err(e) => panic!("unwrap failed: {e} (hint: {:?})", e.hint()),
    }
}

/// The message and hint of a `NoCredentials` error.
fn no_credentials(e: &KeyError) -> (String, &str) {
    assert_eq!(e.class(), ErrorClass::NoCredentials, "{e:?}");
    (e.to_string(), e.hint().unwrap_or(""))
}

/// Unwraps and expects a failure.
async fn unwrap_err(source: &PgpKeySource, fpr: &str, enc: &str) -> KeyError {
    match unwrap(source, &entry(fpr, enc)).await {
        Ok(_) => panic!("unwrap unexpectedly succeeded"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn rsa_key_in_gpg_agent() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Rsa, "rsa <rsa@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(1));
    assert_unwraps(&home.source(), &key.fpr, &enc, &data_key(1)).await;
}

#[tokio::test]
async fn cv25519_subkey_under_ed25519_primary_in_gpg_agent() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Ecc, "ecc <ecc@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(2));
    assert_unwraps(&home.source(), &key.fpr, &enc, &data_key(2)).await;
}

#[tokio::test]
async fn passphrase_preset_in_gpg_agent() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Ecc, "pw <pw@example.com>", PASSPHRASE);
    let enc = home.encrypt(&key.fpr, &data_key(3));
    home.preset_passphrase(&key);
    assert_unwraps(&home.source(), &key.fpr, &enc, &data_key(3)).await;
}

#[tokio::test]
async fn passphrase_typed_into_pinentry() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Rsa, "pw <pw@example.com>", PASSPHRASE);
    let enc = home.encrypt(&key.fpr, &data_key(4));
    home.fake_pinentry(Some(PASSPHRASE));
    assert_unwraps(&home.source(), &key.fpr, &enc, &data_key(4)).await;
}

#[tokio::test]
async fn cancelled_pinentry_is_denied() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Ecc, "pw <pw@example.com>", PASSPHRASE);
    let enc = home.encrypt(&key.fpr, &data_key(5));
    home.fake_pinentry(None);
    let e = unwrap_err(&home.source(), &key.fpr, &enc).await;
    assert_eq!(e.class(), ErrorClass::Denied, "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("cancelled") && text.contains(&key.fpr),
        "{text}"
    );
    assert_eq!(e.hint(), Some("run again and enter the passphrase"));
}

#[tokio::test]
async fn wrong_passphrase_is_denied() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Ecc, "pw <pw@example.com>", PASSPHRASE);
    let enc = home.encrypt(&key.fpr, &data_key(6));
    home.fake_pinentry(Some("not the passphrase"));
    let e = unwrap_err(&home.source(), &key.fpr, &enc).await;
    assert_eq!(e.class(), ErrorClass::Denied, "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("wrong passphrase") && text.contains(&key.fpr),
        "{text}"
    );
    assert_eq!(e.hint(), Some("run again with the right passphrase or PIN"));
}

#[tokio::test]
async fn secret_key_not_in_keyring() {
    let owner = GnupgHome::new();
    let key = owner.generate(Algo::Rsa, "rsa <rsa@example.com>", "");
    let enc = owner.encrypt(&key.fpr, &data_key(7));
    let stranger = GnupgHome::new();
    let e = unwrap_err(&stranger.source(), &key.fpr, &enc).await;
    let (message, hint) = no_credentials(&e);
    assert!(
        message.contains(&key.fpr) && message.contains("not in gpg's keyring"),
        "{message}"
    );
    assert!(hint.contains("gpg --import"), "{hint}");
}

#[tokio::test]
async fn agent_that_cannot_start_is_unreachable_and_gpg_not_rerun() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Rsa, "rsa <rsa@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(8));
    home.write("gpg.conf", b"agent-program /bin/false\n");
    home.agent_conf("");
    let log = home.path().join("calls.log");
    let gpg = counting_gpg(&home, &log);
    let source = home.source_with(gpg.to_str().expect("utf-8 path"), Vec::new());
    for _ in 0..2 {
        let e = unwrap_err(&source, &key.fpr, &enc).await;
        assert_eq!(e.class(), ErrorClass::Unreachable, "{e:?}");
        assert!(e.to_string().contains("gpg-agent"), "{e}");
        assert!(
            e.hint()
                .is_some_and(|h| h.contains("gpgconf --launch gpg-agent")),
            "{e:?}"
        );
    }
    assert_eq!(
        calls(&log),
        1,
        "gpg must not run again once the agent is known unreachable"
    );
}

#[tokio::test]
async fn gpg_missing_and_no_key_file() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Rsa, "rsa <rsa@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(9));
    let e = unwrap_err(&home.source_with(NO_GPG, Vec::new()), &key.fpr, &enc).await;
    let (message, hint) = no_credentials(&e);
    assert!(
        message.contains(NO_GPG) && message.contains("not found"),
        "{message}"
    );
    assert!(
        hint.contains("RSOPS_PGP_KEY_FILE") && hint.contains(&key.fpr),
        "{hint}"
    );
}

#[tokio::test]
async fn gpg_runs_once_per_entry() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Ecc, "ecc <ecc@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(15));
    let log = home.path().join("calls.log");
    let gpg = counting_gpg(&home, &log);
    let source = home.source_with(gpg.to_str().expect("utf-8 path"), Vec::new());
    assert_unwraps(&source, &key.fpr, &enc, &data_key(15)).await;
    assert_eq!(calls(&log), 1);
}

/// An armored block that is not an OpenPGP message.
const NOT_A_MESSAGE: &str =
    "-----BEGIN PGP MESSAGE-----\n\nbm90IGEgbWVzc2FnZQ==\n-----END PGP MESSAGE-----";

#[tokio::test]
async fn corrupt_message_through_gpg() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Rsa, "rsa <rsa@example.com>", "");
    let e = unwrap_err(&home.source(), &key.fpr, NOT_A_MESSAGE).await;
    assert_eq!(e.class(), ErrorClass::CorruptEntry, "{e:?}");
    assert!(e.to_string().contains(&key.fpr), "{e}");
}

#[tokio::test]
async fn entry_without_enc_is_corrupt() {
    let home = GnupgHome::new();
    let e = unwrap_err(&home.source_with(NO_GPG, Vec::new()), "ABCD", "").await;
    assert_eq!(e.class(), ErrorClass::CorruptEntry, "{e:?}");
}

#[tokio::test]
async fn entry_without_fp_is_still_tried_as_with_sops() {
    // gpg finds the key from the message; without gpg the failure is about
    // gpg, not about the missing fingerprint.
    let home = GnupgHome::new();
    let e = unwrap_err(&home.source_with(NO_GPG, Vec::new()), "", NOT_A_MESSAGE).await;
    assert_ne!(e.class(), ErrorClass::CorruptEntry, "{e:?}");
}

#[tokio::test]
async fn gpg_is_killed_at_the_deadline() {
    // A gpg that never answers (a pinentry nobody sees, a card never
    // touched): with a deadline, the attempt ends and gpg does not outlive it.
    let home = GnupgHome::new();
    let key = home.generate(Algo::Ecc, "ecc <ecc@example.com>", "");
    let enc = home.encrypt(&key.fpr, &data_key(21));
    let pid_file = home.path().join("gpg.pid");
    let gpg = home.script(
        "hanging-gpg.sh",
        &format!(
            "#!/bin/sh\necho $$ > '{}'\nexec sleep 600\n",
            pid_file.display()
        ),
    );
    let source = home.source_with(gpg.to_str().expect("utf-8 path"), Vec::new());
    let entry = entry(&key.fpr, &enc);
    // A liveness guard, not a timing assertion: without the deadline the
    // attempt would wait for gpg for ten minutes.
    let attempt = source.unwrap(&entry, Deadline::after(Duration::from_secs(2)));
    let e = match tokio::time::timeout(Duration::from_secs(120), attempt).await {
        Ok(Err(e)) => e,
        Ok(Ok(_)) => panic!("a gpg that never answers unwrapped the key"),
        Err(_) => panic!("the attempt ignored its deadline"),
    };
    assert_eq!(e.class(), ErrorClass::Unreachable, "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "gpg did not decrypt the data key of {} in time: gpg was stopped at the deadline",
            key.fpr
        )
    );
    assert!(e.hint().is_some_and(|h| h.contains("passphrase")), "{e:?}");
    let pid = std::fs::read_to_string(&pid_file).expect("the fake gpg ran");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    assert!(
        matches!(state, None | Some("Z") | Some("X")),
        "gpg still runs: {stat}"
    );
}

#[test]
fn describes_entries_by_normalised_fingerprint() {
    let source = PgpKeySource::new();
    assert_eq!(source.kind(), "pgp");
    let e = entry("fbc7 b9e2 a4f9 289a c0c1  d484 3d16 cee4 a273 81b4", "x");
    assert_eq!(
        source.describe(&e),
        "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"
    );
}
