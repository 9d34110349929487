//! CDN and Spectrum workers: they own flows, fed by lock-free bounded queues.

mod config;
mod item;

pub use config::{WorkerConfig, WorkerConfigError};
pub use item::{NO_APP, Negotiated, WorkItem, WorkKind};
