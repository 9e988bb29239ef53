//! Wrapping a data key for a PGP fingerprint through gpg, as `rsops
//! encrypt` does: the entry's fields in the reference's order, the armored
//! message as sops stores it, opened again by unwrap and by gpg itself;
//! unusable fingerprints refused with clear errors.

#[allow(dead_code)]
mod support;

use rsops_keysource::{Deadline, ErrorClass, KeyEntry, KeyError, KeySource};
use support::{data_key, unwrap, Algo, GnupgHome};

fn recipient(fp: &str) -> KeyEntry {
    KeyEntry {
        kind: "pgp".into(),
        fields: vec![("fp".into(), fp.into())],
        maps: Vec::new(),
    }
}

async fn wrap(home: &GnupgHome, fp: &str, secret: &[u8]) -> Result<KeyEntry, KeyError> {
    home.source()
        .wrap(&recipient(fp), secret, Deadline::NONE)
        .await
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

async fn round_trip(algo: Algo) {
    let home = GnupgHome::new();
    let key = home.generate(algo, "wrap <wrap@example.com>", "");
    let entry = wrap(&home, &key.fpr, &data_key(9)).await.expect("wraps");
    assert_eq!(entry.kind, "pgp");
    let names: Vec<&str> = entry.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["created_at", "enc", "fp"]);
    assert_eq!(entry.field("fp"), Some(key.fpr.as_str()));
    assert!(
        is_rfc3339_utc(entry.field("created_at").unwrap_or("")),
        "{entry:?}"
    );
    let enc = entry.field("enc").expect("enc");
    // As sops stores gpg's output: trimmed, so no newline after the footer.
    assert!(enc.starts_with("-----BEGIN PGP MESSAGE-----\n\n"), "{enc}");
    assert!(enc.ends_with("\n-----END PGP MESSAGE-----"), "{enc}");
    let unwrapped = unwrap(&home.source(), &entry).await.expect("unwraps");
    assert_eq!(unwrapped.expose(), data_key(9).as_slice());
    // gpg on its own opens it too.
    assert_eq!(home.gpg(&["--batch", "-d"], enc.as_bytes()), data_key(9));
}

#[tokio::test]
async fn rsa_round_trip() {
    round_trip(Algo::Rsa).await;
}

#[tokio::test]
async fn cv25519_round_trip() {
    round_trip(Algo::Ecc).await;
}

#[tokio::test]
async fn spaced_fingerprints_are_joined() {
    let home = GnupgHome::new();
    let key = home.generate(Algo::Ecc, "spaced <spaced@example.com>", "");
    let spaced: String = key
        .fpr
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let share: Vec<u8> = (0..33).collect();
    let entry = wrap(&home, &spaced, &share).await.expect("wraps");
    assert_eq!(entry.field("fp"), Some(key.fpr.as_str()));
    let unwrapped = unwrap(&home.source(), &entry).await.expect("unwraps");
    assert_eq!(unwrapped.expose(), share.as_slice());
}

#[tokio::test]
async fn unknown_public_key() {
    let home = GnupgHome::new();
    let fp = "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4";
    let e = wrap(&home, fp, &data_key(1)).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::NoCredentials, "{e}");
    assert!(e.to_string().contains(fp), "{e}");
    assert!(e.hint().is_some_and(|h| h.contains("--import")), "{e:?}");
}

#[tokio::test]
async fn missing_gpg() {
    let home = GnupgHome::new();
    let source = home.source_with("/nonexistent/gpg", Vec::new());
    let e = source
        .wrap(&recipient("ABCD"), &data_key(1), Deadline::NONE)
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::NoCredentials, "{e}");
    assert!(e.to_string().contains("not found"), "{e}");
    assert!(e.hint().is_some_and(|h| h.contains("SOPS_GPG_EXEC")));
}

#[tokio::test]
async fn entry_without_fp() {
    let home = GnupgHome::new();
    let e = wrap(&home, "", &data_key(1)).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::CorruptEntry);
    assert_eq!(e.to_string(), "the pgp entry has no `fp` field");
}

#[tokio::test]
async fn a_hanging_gpg_is_stopped_at_the_deadline() {
    let home = GnupgHome::new();
    let hang = home.script("hang-gpg", "#!/bin/sh\nexec sleep 600\n");
    let source = home.source_with(hang.to_str().expect("utf-8 path"), Vec::new());
    let deadline = Deadline::after(std::time::Duration::from_millis(300));
    let (entry, secret) = (recipient("ABCD"), data_key(1));
    let attempt = source.wrap(&entry, &secret, deadline);
    let e = tokio::time::timeout(std::time::Duration::from_secs(120), attempt)
        .await
        .expect("the attempt ignored its deadline")
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Unreachable, "{e}");
    assert!(e.to_string().contains("in time"), "{e}");
}
