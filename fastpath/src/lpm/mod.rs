//! Longest-prefix-match tables for IPv4 and IPv6, built once and then read-only.
//!
//! Contract (what the rest of the data plane relies on):
//! * [`Lpm4::build`] / [`Lpm6::build`] take `(prefix, value)` pairs; host bits beyond the prefix
//!   length are ignored; the same prefix twice is [`LpmError::DuplicatePrefix`]; values must be
//!   at most [`MAX_VALUE`].
//! * `lookup` returns the value of the longest prefix containing the address, or `None`. It never
//!   allocates, locks or panics, and takes `&self`, so any number of threads may read one table.
//!
//! Both are [`poptrie`] tables (a multibit trie with popcount-indexed nodes and a direct-pointing
//! first level sized to the table). Why not a crate: on the same tables, lookups are several
//! times faster than `prefix-trie`, `ip_network_table` and `treebitmap` (see
//! `benches/lpm.rs` for the figures), and the tables are immutable snapshots anyway.
//!
//! ```
//! use fastpath::lpm::Lpm4;
//! let t = Lpm4::build([("203.0.113.0/24".parse().unwrap(), 1), ("203.0.113.128/25".parse().unwrap(), 2)]).unwrap();
//! assert_eq!(t.lookup("203.0.113.200".parse().unwrap()), Some(2));
//! assert_eq!(t.lookup("203.0.113.1".parse().unwrap()), Some(1));
//! assert_eq!(t.lookup("192.0.2.1".parse().unwrap()), None);
//! ```

mod poptrie;

use core::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use poptrie::Poptrie;

/// The largest value a table can store.
pub const MAX_VALUE: u32 = (1 << 28) - 1;

/// Why a table could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LpmError {
    /// The same prefix appears twice.
    #[error("prefix {0} appears more than once")]
    DuplicatePrefix(IpNet),
    /// A value above [`MAX_VALUE`].
    #[error("value {value} for {prefix} is above the maximum {MAX_VALUE}")]
    ValueTooLarge {
        /// The prefix.
        prefix: IpNet,
        /// The value.
        value: u32,
    },
}

/// An IPv4 longest-prefix-match table.
#[derive(Debug, Clone, Default)]
pub struct Lpm4(Poptrie<u64>);

impl Lpm4 {
    /// Builds a table from `(prefix, value)` pairs.
    ///
    /// # Errors
    /// [`LpmError::DuplicatePrefix`], [`LpmError::ValueTooLarge`].
    pub fn build<I: IntoIterator<Item = (Ipv4Net, u32)>>(entries: I) -> Result<Lpm4, LpmError> {
        let v = entries
            .into_iter()
            .map(|(n, val)| {
                (
                    u64::from(n.network().to_bits()) << 32,
                    u32::from(n.prefix_len()),
                    val,
                )
            })
            .collect();
        Poptrie::build(v, |k, l| {
            IpNet::V4(Ipv4Net::new_assert(
                Ipv4Addr::from_bits((k >> 32) as u32),
                l as u8,
            ))
        })
        .map(Lpm4)
    }

    /// The value of the longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<u32> {
        self.0.lookup(u64::from(addr.to_bits()) << 32)
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// Heap bytes used.
    pub fn memory_bytes(&self) -> usize {
        self.0.memory_bytes()
    }
}

/// An IPv6 longest-prefix-match table.
#[derive(Debug, Clone, Default)]
pub struct Lpm6(Poptrie<u128>);

impl Lpm6 {
    /// Builds a table from `(prefix, value)` pairs.
    ///
    /// # Errors
    /// [`LpmError::DuplicatePrefix`], [`LpmError::ValueTooLarge`].
    pub fn build<I: IntoIterator<Item = (Ipv6Net, u32)>>(entries: I) -> Result<Lpm6, LpmError> {
        let v = entries
            .into_iter()
            .map(|(n, val)| (n.network().to_bits(), u32::from(n.prefix_len()), val))
            .collect();
        Poptrie::build(v, |k, l| {
            IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from_bits(k), l as u8))
        })
        .map(Lpm6)
    }

    /// The value of the longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<u32> {
        self.0.lookup(addr.to_bits())
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// Heap bytes used.
    pub fn memory_bytes(&self) -> usize {
        self.0.memory_bytes()
    }
}

#[cfg(any(test, feature = "bench-internals"))]
pub mod testgen;

#[cfg(test)]
mod test;
