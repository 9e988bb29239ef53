//! Parsing any bytes as ini, then printing what parsed, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsops::formats::{EmitOptions, Format};

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = Format::Ini.parse(data) {
        let _ = Format::Ini.emit(&doc, EmitOptions::default());
    }
});
