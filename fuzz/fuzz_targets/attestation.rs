//! Fuzz target: see sigil::fuzzing::attestation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::attestation(data));
