//! Fuzz target: see sigil::fuzzing::merkle.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::merkle(data));
