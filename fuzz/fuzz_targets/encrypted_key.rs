//! Fuzz target: see sigil::fuzzing::encrypted_key.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::encrypted_key(data));
