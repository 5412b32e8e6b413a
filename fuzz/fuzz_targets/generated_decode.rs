//! The generated `User` struct decoded in both protocols, then round-tripped.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| probe_fuzz::generated::check(data));
