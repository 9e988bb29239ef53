//! Parsing any bytes as yaml, then printing what parsed, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsops::formats::{EmitOptions, Format};

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = Format::Yaml.parse(data) {
        let _ = Format::Yaml.emit(&doc, EmitOptions::default());
    }
});
