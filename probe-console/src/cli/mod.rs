//! The `probe` command line (being written).
