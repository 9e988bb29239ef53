//! Parsing any bytes as dotenv, then printing what parsed, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsops::formats::{EmitOptions, Format};

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = Format::Dotenv.parse(data) {
        let _ = Format::Dotenv.emit(&doc, EmitOptions::default());
    }
});
