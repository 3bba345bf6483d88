//! Fuzz target: see sigil::fuzzing::manifest.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::manifest(data));
