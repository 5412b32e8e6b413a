//! The `probe` operator tool: the command line ([`cli`]) and the web console ([`console`]) over
//! probe's registry, settings, app and audit backends.

pub mod cli;
pub mod console;
