//! The examples' shared code: the demo service, its handler, and the fleet the demo runs (three
//! providers, a client calling them, a live tally of calls per node).

pub mod allowlist;
pub mod fleet;
pub mod handler;

/// Code generated from `examples/idl/demo.thrift` by `build.rs`.
pub mod idl {
    probe::include_idl!();
}
