//! The checks behind probe's fuzz targets, one module per decoder under test; each target in
//! `fuzz_targets/` is a `fuzz_target!` over one of these functions, and `seeds.rs` writes valid
//! inputs for them.
//!
//! Every check must hold on any input: a panic here is a bug in probe (or in the check).

pub mod generated;
pub mod header;
/// Code generated from `tests/idl/interop.thrift` (see `build.rs`).
pub mod idl {
    probe::include_idl!();
}
pub mod message;
pub mod security;
pub mod transport;
