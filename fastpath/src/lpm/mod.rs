//! Longest-prefix-match tables for IPv4 and IPv6, built once and then read-only.
//!
//! Contract (what the rest of the data plane relies on):
//! * [`Lpm4::build`] / [`Lpm6::build`] take `(prefix, value)` pairs; host bits beyond the prefix
//!   length are ignored; the same prefix twice is [`LpmError::DuplicatePrefix`]; values must be
//!   at most [`MAX_VALUE`].
//! * `lookup` returns the value of the longest prefix containing the address, or `None`. It never
//!   allocates, locks or panics, and takes `&self`, so any number of threads may read one table.
//!
//! INTERIM IMPLEMENTATION: one hash map per prefix length, probed longest first. Correct, but
//! up to 33 (129) probes per lookup; being replaced by a multibit trie.

use std::collections::HashMap;

use core::net::{Ipv4Addr, Ipv6Addr};
use ipnet::{Ipv4Net, Ipv6Net};

/// The largest value a table can store.
pub const MAX_VALUE: u32 = (1 << 28) - 1;

/// Why a table could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LpmError {
    /// The same prefix appears twice.
    #[error("prefix {0} appears more than once")]
    DuplicatePrefix(ipnet::IpNet),
    /// A value above [`MAX_VALUE`].
    #[error("value {value} for {prefix} is above the maximum {MAX_VALUE}")]
    ValueTooLarge {
        /// The prefix.
        prefix: ipnet::IpNet,
        /// The value.
        value: u32,
    },
}

/// An IPv4 longest-prefix-match table.
#[derive(Debug, Clone, Default)]
pub struct Lpm4 {
    by_len: Vec<(u8, HashMap<u32, u32>)>,
    len: usize,
}

impl Lpm4 {
    /// Builds a table from `(prefix, value)` pairs.
    ///
    /// # Errors
    /// [`LpmError::DuplicatePrefix`], [`LpmError::ValueTooLarge`].
    pub fn build<I: IntoIterator<Item = (Ipv4Net, u32)>>(entries: I) -> Result<Lpm4, LpmError> {
        let mut maps: [HashMap<u32, u32>; 33] = std::array::from_fn(|_| HashMap::new());
        let mut len = 0;
        for (net, value) in entries {
            let net = net.trunc();
            if value > MAX_VALUE {
                return Err(LpmError::ValueTooLarge {
                    prefix: net.into(),
                    value,
                });
            }
            if maps[usize::from(net.prefix_len())]
                .insert(net.network().to_bits(), value)
                .is_some()
            {
                return Err(LpmError::DuplicatePrefix(net.into()));
            }
            len += 1;
        }
        let by_len = (0..=32u8)
            .rev()
            .filter_map(|l| {
                let m = std::mem::take(&mut maps[usize::from(l)]);
                (!m.is_empty()).then_some((l, m))
            })
            .collect();
        Ok(Lpm4 { by_len, len })
    }

    /// The value of the longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<u32> {
        let a = addr.to_bits();
        for (l, m) in &self.by_len {
            let masked = if *l == 0 {
                0
            } else {
                a & (u32::MAX << (32 - l))
            };
            if let Some(v) = m.get(&masked) {
                return Some(*v);
            }
        }
        None
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// An IPv6 longest-prefix-match table.
#[derive(Debug, Clone, Default)]
pub struct Lpm6 {
    by_len: Vec<(u8, HashMap<u128, u32>)>,
    len: usize,
}

impl Lpm6 {
    /// Builds a table from `(prefix, value)` pairs.
    ///
    /// # Errors
    /// [`LpmError::DuplicatePrefix`], [`LpmError::ValueTooLarge`].
    pub fn build<I: IntoIterator<Item = (Ipv6Net, u32)>>(entries: I) -> Result<Lpm6, LpmError> {
        let mut maps: Vec<HashMap<u128, u32>> = (0..=128).map(|_| HashMap::new()).collect();
        let mut len = 0;
        for (net, value) in entries {
            let net = net.trunc();
            if value > MAX_VALUE {
                return Err(LpmError::ValueTooLarge {
                    prefix: net.into(),
                    value,
                });
            }
            if maps[usize::from(net.prefix_len())]
                .insert(net.network().to_bits(), value)
                .is_some()
            {
                return Err(LpmError::DuplicatePrefix(net.into()));
            }
            len += 1;
        }
        let by_len = (0..=128u8)
            .rev()
            .filter_map(|l| {
                let m = std::mem::take(&mut maps[usize::from(l)]);
                (!m.is_empty()).then_some((l, m))
            })
            .collect();
        Ok(Lpm6 { by_len, len })
    }

    /// The value of the longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<u32> {
        let a = addr.to_bits();
        for (l, m) in &self.by_len {
            let masked = if *l == 0 {
                0
            } else {
                a & (u128::MAX << (128 - l))
            };
            if let Some(v) = m.get(&masked) {
                return Some(*v);
            }
        }
        None
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
