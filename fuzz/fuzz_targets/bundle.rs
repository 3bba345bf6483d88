//! Fuzz target: see sigil::fuzzing::bundle.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::bundle(data));
