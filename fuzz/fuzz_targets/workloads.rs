//! Fuzz target: see sigil::fuzzing::workloads.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil::fuzzing::workloads(data));
