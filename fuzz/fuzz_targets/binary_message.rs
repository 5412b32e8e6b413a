//! A binary-protocol message header and arguments struct, skipped as an unframed server does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use probe_runtime::codec::BinaryReader;

fuzz_target!(|data: &[u8]| probe_fuzz::message::check::<BinaryReader>(data));
