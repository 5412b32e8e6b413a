//! Caller tokens (THeader `probe-caller-token`) and caller policy documents, as providers read them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| probe_fuzz::security::check(data));
