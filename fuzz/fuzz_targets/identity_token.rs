//! Fuzz target: see sigil::fuzzing::identity_token.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::identity_token(data));
