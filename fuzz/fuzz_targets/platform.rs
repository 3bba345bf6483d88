//! Fuzz target: see sigil::fuzzing::platform.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::platform(data));
