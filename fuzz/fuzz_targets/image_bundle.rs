//! Fuzz target: see sigil::fuzzing::image_bundle.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::image_bundle(data));
