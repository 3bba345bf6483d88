//! Fuzz target: see sigil::fuzzing::admission_review.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::admission_review(data));
