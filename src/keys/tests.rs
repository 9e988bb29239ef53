//! Orchestration tests with in-test key sources: concurrency, deadlines,
//! Shamir thresholds and the failure report. Each real key source is tested
//! against its real service elsewhere.

use std::future::pending;
use std::time::Duration;

use rsops_keysource::{BoxFuture, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};

use super::*;
use crate::metadata::CryptRule;

/// Answers for entries whose `enc` names a behaviour: `key:<byte>` returns
/// 32 bytes of that value, `share:<x>` a Shamir share of [7; 32], `hang`
/// never answers, `deadline` is denied with the time it was given (or
/// "none"), anything else is denied.
struct Scripted {
    kind: &'static str,
    local: bool,
}

fn share_of_seven(x: u8) -> Vec<u8> {
    // f(x) = 7 + 3x over GF(2^8) for every byte, threshold 2.
    let mut share: Vec<u8> = (0..32).map(|_| 7 ^ gf_mult(3, x)).collect();
    share.push(x);
    share
}

fn gf_mult(a: u8, b: u8) -> u8 {
    let (mut a, mut b, mut p) = (a, b, 0u8);
    while b != 0 {
        if b & 1 == 1 {
            p ^= a;
        }
        let carry = a & 0x80;
        a <<= 1;
        if carry != 0 {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

impl KeySource for Scripted {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn describe(&self, entry: &KeyEntry) -> String {
        entry.field("id").unwrap_or("?").to_string()
    }

    fn is_local(&self) -> bool {
        self.local
    }

    fn unwrap<'a>(
        &'a self,
        entry: &'a KeyEntry,
        deadline: Deadline,
    ) -> BoxFuture<'a, Result<Unwrapped, KeyError>> {
        Box::pin(async move {
            let enc = entry.field("enc").unwrap_or_default();
            if let Some(byte) = enc.strip_prefix("key:") {
                return Ok(Unwrapped::new(vec![byte.parse().unwrap(); 32]));
            }
            if let Some(x) = enc.strip_prefix("share:") {
                return Ok(Unwrapped::new(share_of_seven(x.parse().unwrap())));
            }
            if enc == "hang" {
                pending::<()>().await;
            }
            if enc == "deadline" {
                let given = deadline.remaining().map_or("none".to_string(), |d| {
                    format!("{} s", d.as_secs_f64().round())
                });
                return Err(KeyError::denied(given));
            }
            Err(KeyError::denied("access denied"))
        })
    }
}

fn entry(kind: &str, id: &str, enc: &str) -> KeyEntry {
    KeyEntry {
        kind: kind.into(),
        fields: vec![("id".into(), id.into()), ("enc".into(), enc.into())],
        maps: Vec::new(),
    }
}

fn metadata(groups: Vec<Vec<KeyEntry>>, threshold: usize) -> Metadata {
    Metadata {
        last_modified: "2026-01-01T00:00:00Z".into(),
        mac: String::new(),
        version: None,
        rule: CryptRule::UnencryptedSuffix("_unencrypted".into()),
        mac_only_encrypted: false,
        shamir_threshold: threshold,
        key_groups: groups,
    }
}

fn registry() -> KeyRegistry {
    KeyRegistry::new(vec![
        Box::new(Scripted {
            kind: "age",
            local: true,
        }),
        Box::new(Scripted {
            kind: "kms",
            local: false,
        }),
    ])
}

#[tokio::test(start_paused = true)]
async fn a_hanging_remote_entry_does_not_delay_a_local_key() {
    let meta = metadata(
        vec![vec![
            entry("kms", "arn:dead", "hang"),
            entry("age", "age1me", "key:9"),
        ]],
        0,
    );
    let started = tokio::time::Instant::now();
    let (key, attempts) = data_key(&meta, &registry(), &UnwrapOptions::default())
        .await
        .unwrap();
    // The clock is paused and moves only when every task waits on a timer:
    // waiting for the hanging entry would show its 10 s deadline here.
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(key.expose(), &[9; 32]);
    assert!(attempts.iter().any(|a| a.id == "age1me" && a.succeeded()));
}

#[tokio::test(start_paused = true)]
async fn remote_attempts_time_out_and_every_entry_is_reported() {
    let meta = metadata(
        vec![vec![
            entry("kms", "arn:dead", "hang"),
            entry("age", "age1other", "nope"),
        ]],
        0,
    );
    let options = UnwrapOptions {
        attempt_timeout: Duration::from_millis(1500),
        ..UnwrapOptions::default()
    };
    let started = tokio::time::Instant::now();
    let error = data_key(&meta, &registry(), &options).await.unwrap_err();
    // Given up exactly at the deadline (paused clock), not later.
    assert_eq!(started.elapsed(), Duration::from_millis(1500));
    let text = error.to_string();
    assert!(
        text.contains("kms arn:dead: timed out after 1500 ms"),
        "{text}"
    );
    assert!(
        text.contains("age age1other: denied: access denied"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn shamir_threshold_is_met_without_waiting_for_a_dead_group() {
    let meta = metadata(
        vec![
            vec![entry("age", "g1", "share:1")],
            vec![entry("kms", "g2", "hang")],
            vec![entry("kms", "g3", "share:3")],
        ],
        2,
    );
    let started = tokio::time::Instant::now();
    let (key, _) = data_key(&meta, &registry(), &UnwrapOptions::default())
        .await
        .unwrap();
    // No virtual time passed: the dead group's 10 s deadline was not awaited.
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(key.expose(), &[7; 32]);
}

#[tokio::test(start_paused = true)]
async fn one_group_short_names_the_count() {
    let meta = metadata(
        vec![
            vec![entry("age", "g1", "share:1")],
            vec![entry("age", "g2", "nope")],
            vec![entry("kms", "g3", "nope")],
        ],
        2,
    );
    let error = data_key(&meta, &registry(), &UnwrapOptions::default())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("1 of 2 needed key groups"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn try_all_reports_every_entry_and_unknown_kinds() {
    let meta = metadata(
        vec![vec![
            entry("age", "a", "key:1"),
            entry("age", "b", "key:1"),
            entry("azure_kv", "vault", "x"),
        ]],
        0,
    );
    let options = UnwrapOptions {
        try_all: true,
        ..UnwrapOptions::default()
    };
    let (_, attempts) = data_key(&meta, &registry(), &options).await.unwrap();
    assert_eq!(attempts.iter().filter(|a| a.succeeded()).count(), 2);
    assert!(attempts
        .iter()
        .any(|a| a.kind == "azure_kv" && a.to_string().contains("unsupported")));
}

#[tokio::test(start_paused = true)]
async fn attempts_still_running_at_the_threshold_are_recorded_as_cancelled() {
    let meta = metadata(
        vec![vec![
            entry("kms", "slow-kms", "hang"),
            entry("age", "my-age", "key:7"),
        ]],
        0,
    );
    let options = UnwrapOptions::default();
    let (_, attempts) = data_key(&meta, &registry(), &options).await.unwrap();
    let outcome = |id: &str| {
        attempts
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.outcome.to_string())
    };
    assert_eq!(outcome("my-age").as_deref(), Some("unwrapped"));
    assert_eq!(
        outcome("slow-kms").as_deref(),
        Some("cancelled: enough key groups were unwrapped")
    );
}

#[tokio::test]
async fn remote_sources_get_the_attempt_deadline_and_local_ones_none() {
    let meta = metadata(
        vec![vec![
            entry("kms", "remote", "deadline"),
            entry("age", "local", "deadline"),
        ]],
        0,
    );
    let options = UnwrapOptions {
        attempt_timeout: Duration::from_secs(30),
        overall_timeout: Duration::from_secs(60),
        ..UnwrapOptions::default()
    };
    let Err(DataKeyError::Unwrap { attempts, .. }) = data_key(&meta, &registry(), &options).await
    else {
        panic!("both entries are denied");
    };
    let said = |id: &str| {
        attempts
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.outcome.to_string())
    };
    assert_eq!(said("remote").as_deref(), Some("denied: 30 s"));
    assert_eq!(said("local").as_deref(), Some("denied: none"));
}
