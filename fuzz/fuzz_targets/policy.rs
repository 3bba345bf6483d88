//! Fuzz target: see sigil::fuzzing::policy.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::policy(data));
