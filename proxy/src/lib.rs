//! The edge's proxy workers: they carry every flow the fast path validated to its origin.
//!
//! The data plane (`fastpath`) fights the hostile part: floods, scans, unconfigured traffic
//! and the TCP handshake (SYN cookies). Once a client has proved its cookie, its flow is
//! handed here, and from then on it is an ordinary L4 proxy connection:
//!
//! - [`header`]: the PROXY v1/v2 headers and the Simple Proxy Protocol header of seed 003.
//! - [`maglev`]: Maglev consistent hashing over the CDN's pool.
//! - [`labserver`]: real origins (HTTP, TCP echo, UDP echo) for the lab and the tests.
//!
//! This crate may use an async runtime (tokio); the data plane never waits on it.

pub mod header;
pub mod labserver;
pub mod maglev;
