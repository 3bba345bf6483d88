//! Fuzz target: see sigil::fuzzing::signing_config.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::signing_config(data));
