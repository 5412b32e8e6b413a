//! A connection's bytes through wire detection and the message reader, whole and in pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| probe_fuzz::transport::check(data));
