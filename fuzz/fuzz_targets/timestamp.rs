//! Any string: the parser answers without panicking, and what it accepts
//! reads back to the same instant.
#![no_main]

use imagebuilder_exporter::timestamp::{format_rfc3339_millis, parse_rfc3339};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    if let Ok(t) = parse_rfc3339(s) {
        let ms = t.div_euclid(1_000_000) * 1_000_000;
        assert_eq!(parse_rfc3339(&format_rfc3339_millis(t)), Ok(ms));
    }
});
