//! The data plane of an L4 edge fast path.
//!
//! A frame goes through [`pipeline`]: the staged parser in [`wire`], one snapshot of the
//! [`tables`] (longest-prefix match over [`lpm`]), the TCP gate with [`syncookie`], the flow
//! table in [`flow`], and on to a CDN or Spectrum [`worker`]. [`replay`] runs captures through
//! the same code; [`stats`] counts every verdict by reason.
//!
//! This crate has no async runtime, HTTP or JSON dependency, and the per-packet path does not
//! allocate, lock or log.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
#[allow(unused_macros)]
mod macros;

pub mod flow;
pub mod lpm;
pub mod pipeline;
pub mod replay;
pub mod stats;
pub mod syncookie;
pub mod tables;
pub mod verdict;
pub mod wire;
pub mod worker;
pub mod xsk;

pub use verdict::{Reason, Service, Verdict};
