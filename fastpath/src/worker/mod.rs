//! CDN and Spectrum workers: they own flows, fed by lock-free bounded queues.
//!
//! The pipeline hashes a flow key to one worker of the flow's service
//! ([`crate::flow::FlowHasher::pick`]) and pushes a [`WorkItem`] into that worker's bounded
//! queue; a full queue is a `queue_full` drop, never a wait. Live, each worker runs on its own
//! thread ([`Worker::run`]); in replay the driver polls workers inline after every batch, which
//! keeps a replay deterministic.
//!
//! A worker keeps per-flow state, emits connection events with the status codes of the Spectrum
//! event log (`connect` 0; `disconnect` 200 on a client FIN or idle timeout, 499 on a client
//! RST; `progress` for flows still open when a replay ends) and aggregates analytics. Bytes
//! ingress are L4 payload bytes from the client; egress stays 0 until flows are carried to
//! origins (a later stage).

pub mod analytics;
mod config;
pub mod events;
mod item;
mod pool;

pub use analytics::{Analytics, Row};
pub use config::{WorkerConfig, WorkerConfigError};
pub use events::{Event, EventKind, EventRing};
pub use item::{NO_APP, Negotiated, WorkItem, WorkKind};
pub use pool::{FlowState, Timeouts, Worker, WorkerCounters, WorkerPools};
