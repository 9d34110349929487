//! Flows: the client-side 5-tuple key and the bounded flow table.

mod key;

pub use key::{FlowHasher, FlowKey};
