//! Fuzz target: see sigil::fuzzing::service_answers.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::service_answers(data));
