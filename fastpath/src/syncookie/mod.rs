//! SYN cookies: stateless answers to SYNs, validated when the client's ACK comes back.

mod config;

pub use config::{CookieConfig, CookieConfigError};
