//! The edge's proxy workers: they carry every flow the fast path validated to its origin.
//!
//! The data plane (`fastpath`) fights the hostile part: floods, scans, unconfigured traffic
//! and the TCP handshake (SYN cookies). Once a client has proved its cookie, its flow is
//! handed here, and from then on it is an ordinary L4 proxy connection:
//!
//! - [`repair`]: the handoff. The validating ACK becomes a kernel TCP socket that starts
//!   *established* (`TCP_REPAIR`), with the sequence numbers and options the cookie fixed and
//!   the ACK's payload already in its receive queue; the XDP program then passes every later
//!   segment of that 4-tuple to the kernel.
//! - [`header`]: the PROXY v1/v2 headers and the Simple Proxy Protocol header of seed 003.
//! - [`maglev`]: Maglev consistent hashing over the CDN's pool.
//! - [`labserver`]: real origins (HTTP, TCP echo, UDP echo) for the lab and the tests.
//! - [`routes`]: the edge prefixes as local routes (AnyIP), added at start and removed at exit.
//!
//! This crate may use an async runtime (tokio); the data plane never waits on it.

pub mod header;
pub mod labserver;
pub mod maglev;
pub mod relay;
pub mod repair;
pub mod routes;
pub mod stats;
pub mod target;
pub mod udp;
pub mod worker;

pub use worker::{Feed, Proxy, Settings};
