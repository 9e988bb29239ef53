//! Hot paths on a generated 60k-leaf document: parsing, decrypting the tree
//! (AES-GCM + MAC), emitting, and the whole decrypt, encrypt and `set`
//! (decrypt keeping the ciphertexts, change one value, encrypt again)
//! pipelines, and `edit`'s re-encryption of the edited text, for YAML and
//! JSON.
//!
//! The encrypted input is built in memory with a fixed data key, and a key
//! source that hands that key back (and "wraps" a new one by naming it)
//! stands in for age, so the numbers measure rsops' own work, not key
//! unwrapping or wrapping.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rsops::cipher::ValueCipher;
use std::time::Duration;

use rsops::encrypt::EncryptOptions;
use rsops::formats::{EmitOptions, Format};
use rsops::metadata::CryptRule;
use rsops::tree::{Document, Entry, Map, Value};
use rsops::{DecryptOptions, KeyRegistry};
use rsops_keysource::{BoxFuture, DataKey, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};

const DATA_KEY: [u8; 32] = [42; 32];
const SECTIONS: usize = 1000;
const KEYS_PER_SECTION: usize = 60;

/// Returns the fixed data key for any `age` entry.
struct FixedKey;

impl KeySource for FixedKey {
    fn kind(&self) -> &'static str {
        "age"
    }

    fn describe(&self, _: &KeyEntry) -> String {
        "fixed".into()
    }

    fn unwrap<'a>(
        &'a self,
        _: &'a KeyEntry,
        _: Deadline,
    ) -> BoxFuture<'a, Result<Unwrapped, KeyError>> {
        Box::pin(async { Ok(Unwrapped::new(DATA_KEY.to_vec())) })
    }

    fn wrap<'a>(
        &'a self,
        recipient: &'a KeyEntry,
        _: &'a [u8],
        _: Deadline,
    ) -> BoxFuture<'a, Result<KeyEntry, KeyError>> {
        Box::pin(async move {
            let mut entry = recipient.clone();
            entry.fields.push(("enc".into(), "fixed".into()));
            Ok(entry)
        })
    }
}

fn pair(key: &str, value: Value) -> Entry {
    Entry::Pair(key.to_string(), value)
}

/// An encrypted document with metadata, as the reference would write it.
fn encrypted_document() -> Document {
    let cipher = ValueCipher::new(&DataKey::from_slice(&DATA_KEY).expect("32-byte key"));
    let mut root = Map::new();
    for s in 0..SECTIONS {
        let name = format!("section_{s:05}");
        let mut section = Map::new();
        for k in 0..KEYS_PER_SECTION {
            let key = format!("key_{k:02}");
            let plain = Value::Str(format!("value {s}-{k} {}", "x".repeat(40)));
            let enc = cipher
                .encrypt(&plain, &format!("{name}:{key}:"))
                .expect("encrypt");
            section.push(pair(&key, Value::Str(enc)));
        }
        root.push(pair(&name, Value::Map(section)));
    }
    let age = Value::Map(vec![
        pair("recipient", Value::Str("age1fixed".into())),
        pair("enc", Value::Str("unused".into())),
    ]);
    let mac = cipher
        .encrypt(&Value::Str("0".repeat(128)), "2026-01-01T00:00:00Z")
        .expect("encrypt");
    root.push(pair(
        "sops",
        Value::Map(vec![
            pair("age", Value::List(vec![age])),
            pair("lastmodified", Value::Str("2026-01-01T00:00:00Z".into())),
            pair("mac", Value::Str(mac)),
            pair("unencrypted_suffix", Value::Str("_unencrypted".into())),
            pair("version", Value::Str("3.11.0".into())),
        ]),
    ));
    Document::new(vec![root])
}

fn bench_format(c: &mut Criterion, format: Format) {
    let input = format
        .emit(&encrypted_document(), EmitOptions::default())
        .expect("emit encrypted document");
    let registry = KeyRegistry::new(vec![Box::new(FixedKey)]);
    let options = DecryptOptions {
        ignore_mac: true,
        ..DecryptOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let decrypted = runtime
        .block_on(rsops::decrypt(&input, format, &registry, &options))
        .expect("decrypt");

    let mut group = c.benchmark_group(format.name());
    group.sample_size(10);
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("parse", |b| b.iter(|| format.parse(&input).expect("parse")));
    group.bench_function("decrypt file", |b| {
        b.iter(|| {
            runtime
                .block_on(rsops::decrypt(&input, format, &registry, &options))
                .expect("decrypt")
        })
    });
    group.bench_function("emit plaintext", |b| {
        b.iter(|| {
            format
                .emit(&decrypted.document, EmitOptions::default())
                .expect("emit")
        })
    });
    let plain = format
        .emit(&decrypted.document, EmitOptions::default())
        .expect("emit plaintext");
    let encrypt_options = EncryptOptions {
        key_groups: vec![vec![KeyEntry {
            kind: "age".into(),
            fields: vec![("recipient".into(), "age1fixed".into())],
            maps: Vec::new(),
        }]],
        shamir_threshold: 0,
        rule: CryptRule::UnencryptedSuffix("_unencrypted".into()),
        mac_only_encrypted: false,
        key_timeout: Duration::from_secs(10),
    };
    group.throughput(Throughput::Bytes(plain.len() as u64));
    group.bench_function("encrypt file", |b| {
        b.iter(|| {
            runtime
                .block_on(rsops::encrypt::encrypt_plain(
                    &plain,
                    format,
                    format,
                    &encrypt_options,
                    &registry,
                    EmitOptions::default(),
                ))
                .expect("encrypt")
        })
    });
    let path = rsops::extract::parse_path(r#"["section_00500"]["key_30"]"#).expect("path");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("set one value", |b| {
        b.iter(|| {
            let mut opened = runtime
                .block_on(rsops::rewrite::Opened::open(
                    &input, format, &registry, &options,
                ))
                .expect("open");
            let root = opened.document.branches.first_mut().expect("a document");
            rsops::update::set(root, &path, Value::Str("changed".into())).expect("set");
            opened.seal(format, EmitOptions::default()).expect("seal")
        })
    });
    // What `rsops set` does: a large YAML file changed in pieces, any other
    // with its values left encrypted in place.
    group.bench_function("set one value in place", |b| {
        b.iter(|| {
            let value = Value::Str("changed".into());
            let edit = rsops::rewrite::PathEdit::Set(&path, &value);
            let mut out = Vec::with_capacity(input.len());
            let emit = EmitOptions::default();
            let in_pieces = runtime.block_on(rsops::rewrite::change_in_pieces(
                &input, format, &registry, &options, edit, emit, &mut out,
            ));
            match in_pieces {
                Some(changed) => changed.expect("set in pieces"),
                None => {
                    let mut change = runtime
                        .block_on(rsops::rewrite::PathChange::open(
                            &input, format, &registry, &options,
                        ))
                        .expect("open");
                    change.set(&path, value).expect("set");
                    change.seal(format, emit).expect("seal");
                }
            }
        })
    });
    // What `edit` does once the editor is done: the edited text (its first
    // value one letter longer) sealed under the file's key, every other
    // value keeping its ciphertext; in pieces for a large YAML file.
    let mut edited = plain.to_vec();
    if let Some(at) = edited.windows(6).position(|w| w == b"value ") {
        edited.insert(at + 5, b'e');
    }
    group.bench_function("edit re-encryption", |b| {
        b.iter_batched(
            || {
                let mut opened = runtime
                    .block_on(rsops::rewrite::Opened::open(
                        &input, format, &registry, &options,
                    ))
                    .expect("open");
                drop(std::mem::take(&mut opened.document));
                opened
            },
            |mut opened| {
                let mut out = Vec::with_capacity(input.len());
                let emit = EmitOptions::default();
                match opened.seal_text(&edited, format, format, emit, &mut out, Some(&input)) {
                    Some(sealed) => sealed.expect("seal the text"),
                    None => {
                        opened.document = format.parse_plain(&edited).expect("parse");
                        opened.seal(format, emit).expect("seal")
                    }
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_format(c, Format::Yaml);
    bench_format(c, Format::Json);
}

criterion_group!(decrypt, benches);
criterion_main!(decrypt);
