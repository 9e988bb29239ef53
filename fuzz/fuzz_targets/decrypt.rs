//! The whole decrypt pipeline on any bytes, in every format, with a key
//! source that always returns one fixed key: metadata extraction, the value
//! walk and `ENC[...]` parsing must fail cleanly, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsops::formats::Format;
use rsops::{DecryptOptions, KeyRegistry};
use rsops_keysource::{BoxFuture, Deadline, KeyEntry, KeyError, KeySource, Unwrapped};

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
        Box::pin(async { Ok(Unwrapped::new(vec![7; 32])) })
    }
}

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let registry = KeyRegistry::new(vec![Box::new(FixedKey)]);
    for format in [Format::Yaml, Format::Json, Format::Dotenv, Format::Ini] {
        let _ = runtime.block_on(rsops::decrypt(data, format, &registry, &DecryptOptions::default()));
    }
});
