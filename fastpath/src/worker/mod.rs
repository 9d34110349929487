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
//! RST; `progress` for flows still open when a replay ends) and aggregates analytics: this is
//! the accounting [`Worker`] of replay and the benchmarks (bytes ingress are L4 payload bytes
//! from the client, egress 0: nothing is carried offline). Live, the proxy workers of the
//! `fastpath-proxy` crate take the queues instead ([`WorkerPools::channels`]): they carry every
//! flow to its origin, sleep on a [`Doorbell`] when idle, and get each packet's bytes in a
//! [`Packet`].

pub mod analytics;
mod config;
mod doorbell;
pub mod events;
mod item;
mod packet;
mod pool;

pub use analytics::{Analytics, Row};
pub use config::{WorkerConfig, WorkerConfigError};
pub use doorbell::Doorbell;
pub use events::{Event, EventKind, EventRing};
pub use item::{NO_APP, Negotiated, WorkItem, WorkKind};
pub use packet::{Packet, PacketPool};
pub use pool::{FlowState, Timeouts, Worker, WorkerCounters, WorkerPools, WorkerQueue};
