//! Flows: the client-side 5-tuple key and the bounded flow table.

mod key;
mod table;

pub use key::{FlowHasher, FlowKey};
pub use table::{Entry, FlowTable, FlowTableStats, Insert, WAYS};
