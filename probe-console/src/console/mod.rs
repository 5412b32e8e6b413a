//! The operators' web console (being written).
