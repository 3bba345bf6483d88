//! Fuzz target: see sigil::fuzzing::checkpoint.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::checkpoint(data));
