//! Parsing any bytes as json, then printing what parsed, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsops::formats::{EmitOptions, Format};

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = Format::Json.parse(data) {
        let _ = Format::Json.emit(&doc, EmitOptions::default());
    }
});
