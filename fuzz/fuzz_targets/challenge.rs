//! Fuzz target: see sigil::fuzzing::challenge.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::challenge(data));
