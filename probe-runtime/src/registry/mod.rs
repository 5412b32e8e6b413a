//! Service registry: the layout shared with the Python design, and (in later issues) the ZooKeeper,
//! Redis and MySQL backends with their embedded twins.

pub mod layout;
