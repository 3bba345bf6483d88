//! Fuzz target: see sigil::fuzzing::payload.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::payload(data));
