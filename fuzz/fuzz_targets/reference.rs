//! Fuzz target: see sigil::fuzzing::reference.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::reference(data));
