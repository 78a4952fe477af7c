//! Feeds arbitrary UTF-8 to the spec parser, which must return `Ok` or `Err` and never panic,
//! hang or run out of memory.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(source) = std::str::from_utf8(data) {
        let _ = aloft_types::parse_dag_with_warnings(source, "fuzz.yaml");
    }
});
