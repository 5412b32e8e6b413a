//! Header frames (THeader) through the header decoder, and back through its encoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| probe_fuzz::header::check(data));
