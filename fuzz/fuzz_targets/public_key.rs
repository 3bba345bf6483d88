//! Fuzz target: see sigil::fuzzing::public_key.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::public_key(data));
