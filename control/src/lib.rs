//! The control plane of the edge fast path: the configuration model ([`config`]): loading,
//! validation with errors a person can act on, the origin policy, and compilation into the
//! data plane's tables.
//!
//! Only this crate reads configuration files; `fastpath` takes the compiled values.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod analytics;
pub mod api;
pub mod config;
pub mod daemon;
pub mod etcd;
pub mod explain;
pub mod fleet;
pub mod resolve;
pub mod stats;
pub mod verify;
