//! probe's server benchmark: the probe Thrift server against a raw length-prefixed echo server,
//! the physical limit of one TCP round trip per call on this machine.
//!
//! Three binaries, run together by `scripts/bench.sh`:
//!
//! ```text
//! raw-echo-server   --addr 127.0.0.1:0            # echoes every frame back, nothing else
//! probe-echo-server --addr 127.0.0.1:0            # probe's Server with the generated `Echo`
//! loadgen --addr 127.0.0.1:PORT -c 16 -d 1 --payload 128 --server-pid PID --expect thrift
//! ```
//!
//! Each server prints `listening on ADDR` once it accepts. The load generator sends the same
//! framed strict-binary `echo` calls to both, so the bytes per call on the wire are the same; it
//! prints requests per second, latency percentiles, and the server's CPU time per call.
//!
//! `probe-client` measures probe's client against the same servers (`scripts/bench.sh client`),
//! and `overload` (`scripts/bench.sh overload`) runs one probe server in front of a backend of
//! fixed capacity at three times that capacity, with and without request limits.

pub mod callers;
pub mod histogram;
pub mod proc_stat;
pub mod server_cli;
pub mod wire;
