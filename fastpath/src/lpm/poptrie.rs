//! Poptrie (Asai and Ohara, SIGCOMM 2015): a multibit trie with 6-bit strides whose nodes
//! index their children with popcounts, plus a direct-pointing first level.
//!
//! ```text
//! key (left-aligned) | dp bits | 6 | 6 | 6 | ...
//!                        │
//!   dp[2^dp] ──► u32: leaf value, or NODE | node index
//!                        │
//!   Node { vector: u64,   bit c set: child c is a node
//!          leafvec: u64,  bit c set: a run of equal leaf values starts at child c
//!          base1: u32,    children nodes are nodes[base1 .. base1 + popcnt(vector)]
//!          base0: u32 }   leaf runs are leaves[base0 .. base0 + popcnt(leafvec)]
//!
//!   lookup, at depth d: c = 6 bits of the key at d
//!     vector has c  -> nodes[base1 + popcnt(vector & (2^c - 1))], d += 6
//!     else          -> leaves[base0 + popcnt(leafvec & (2^(c+1) - 1)) - 1]
//! ```
//!
//! A node is 24 bytes and leaf runs are compressed, so a million IPv4 prefixes take tens of
//! MiB. The direct-pointing level answers most lookups of large tables in one or two memory
//! accesses and costs nothing for small ones (it is sized by the table: see `dp_bits`).
//! Building sorts the prefixes once and builds nodes depth first, painting the values of the
//! prefixes that end inside a node onto its 64 children (shorter first, longer on top).

use super::{LpmError, MAX_VALUE};

/// "No prefix matches" in a leaf.
const NONE: u32 = 0x7fff_ffff;
/// Marks a direct-pointing entry that refers to a node.
const NODE: u32 = 0x8000_0000;
const STRIDE: u32 = 6;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Node {
    vector: u64,
    leafvec: u64,
    base1: u32,
    base0: u32,
}

/// An address as a left-aligned integer key.
pub(super) trait Key: Copy + Ord + core::fmt::Debug {
    /// Bits of the address family.
    const ADDR_BITS: u32;
    /// `w` bits of the key starting at bit `d` (counted from the top); zeros past the end.
    fn chunk(self, d: u32, w: u32) -> usize;
    /// The key with every bit at or after `len` cleared.
    fn mask(self, len: u32) -> Self;
    /// Zero.
    const ZERO: Self;
    /// The first address after the prefix `self/len`, if there is one.
    fn after(self, len: u32) -> Option<Self>;
}

impl Key for u64 {
    const ADDR_BITS: u32 = 32;
    const ZERO: Self = 0;
    #[inline]
    fn after(self, len: u32) -> Option<Self> {
        // The address occupies the top 32 bits.
        if len == 0 {
            None
        } else {
            self.checked_add(1u64 << (64 - len))
        }
    }
    #[inline(always)]
    fn chunk(self, d: u32, w: u32) -> usize {
        ((self << d) >> (64 - w)) as usize
    }
    #[inline(always)]
    fn mask(self, len: u32) -> Self {
        if len == 0 {
            0
        } else {
            self & (u64::MAX << (64 - len))
        }
    }
}

impl Key for u128 {
    const ADDR_BITS: u32 = 128;
    const ZERO: Self = 0;
    #[inline]
    fn after(self, len: u32) -> Option<Self> {
        if len == 0 {
            None
        } else {
            self.checked_add(1u128 << (128 - len))
        }
    }
    #[inline(always)]
    fn chunk(self, d: u32, w: u32) -> usize {
        ((self << d) >> (128 - w)) as usize
    }
    #[inline(always)]
    fn mask(self, len: u32) -> Self {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - len))
        }
    }
}

/// Tables this small are stored as sorted address ranges instead of a trie.
const SMALL: usize = 64;

/// A built Poptrie over keys `K`; tables of fewer than [`SMALL`] prefixes are flattened into
/// disjoint address ranges searched by bisection (a few cache lines, a handful of compares,
/// while a trie would walk up to six levels to reach a /32).
#[derive(Debug, Clone)]
pub(super) struct Poptrie<K> {
    /// Small layout: range starts (ascending, the first is 0) and their values.
    starts: Box<[K]>,
    values: Box<[u32]>,
    dp_bits: u32,
    dp: Box<[u32]>,
    nodes: Box<[Node]>,
    leaves: Box<[u32]>,
    len: usize,
    _k: core::marker::PhantomData<K>,
}

impl<K: Key> Default for Poptrie<K> {
    fn default() -> Self {
        Poptrie {
            starts: Box::new([]),
            values: Box::new([]),
            dp_bits: 0,
            dp: Box::new([]),
            nodes: Box::new([]),
            leaves: Box::new([]),
            len: 0,
            _k: core::marker::PhantomData,
        }
    }
}

/// Direct-pointing bits for a table of `n` prefixes: none below 256 prefixes (a few KiB in
/// all), 16 for medium ones (256 KiB), 20 or 24 for large ones (4 or 64 MiB), where it
/// removes two or three node levels from every lookup.
fn dp_bits(n: usize, addr_bits: u32) -> u32 {
    match (n, addr_bits) {
        (0..=255, _) => 0,
        (256..=65_535, _) => 16,
        (_, 32) if n >= 1 << 18 => 24,
        _ => 20,
    }
}

struct Builder<'a, K> {
    nodes: Vec<Node>,
    leaves: Vec<u32>,
    prefixes: &'a [(K, u32, u32)],
}

impl<K: Key> Builder<'_, K> {
    /// Builds the node in `slot` at depth `d` from `range` (prefixes longer than `d` under
    /// this node, sorted by key then length), with `inherited` as the value of every address
    /// no prefix of `range` covers.
    fn node(&mut self, slot: usize, range: core::ops::Range<usize>, d: u32, inherited: u32) {
        let mut vals = [inherited; 64];
        // Prefixes ending in this node paint their children, shorter first.
        let mut short: Vec<(u32, usize, u32)> = Vec::new();
        let mut long: Vec<usize> = Vec::new();
        for i in range {
            let (key, len, value) = self.prefixes[i];
            if len <= d + STRIDE {
                short.push((len, i, value));
            } else {
                long.push(i);
            }
            let _ = key;
        }
        short.sort_unstable();
        for (len, i, value) in short {
            let c0 = self.prefixes[i].0.chunk(d, STRIDE);
            let n = 1usize << (d + STRIDE - len);
            vals[c0..c0 + n].fill(value);
        }
        // Longer prefixes go to child nodes, grouped by child (contiguous: sorted by key).
        let mut groups: Vec<(usize, usize, usize)> = Vec::new(); // (child, start, end) in `long`
        let mut j = 0;
        while j < long.len() {
            let c = self.prefixes[long[j]].0.chunk(d, STRIDE);
            let start = j;
            while j < long.len() && self.prefixes[long[j]].0.chunk(d, STRIDE) == c {
                j += 1;
            }
            groups.push((c, long[start], long[j - 1] + 1));
        }
        let mut vector = 0u64;
        for &(c, _, _) in &groups {
            vector |= 1 << c;
        }
        let base1 = self.nodes.len();
        self.nodes.resize(base1 + groups.len(), Node::default());
        let base0 = self.leaves.len();
        let mut leafvec = 0u64;
        let mut prev = None;
        for (c, &v) in vals.iter().enumerate() {
            if vector & (1 << c) != 0 {
                continue;
            }
            if prev != Some(v) {
                leafvec |= 1 << c;
                self.leaves.push(v);
                prev = Some(v);
            }
        }
        self.nodes[slot] = Node {
            vector,
            leafvec,
            base1: base1 as u32,
            base0: base0 as u32,
        };
        for (k, (c, start, end)) in groups.into_iter().enumerate() {
            self.node(base1 + k, start..end, d + STRIDE, vals[c]);
        }
    }
}

impl<K: Key> Poptrie<K> {
    /// Builds from `(key, len, value)`; host bits are cleared here.
    pub(super) fn build(
        mut prefixes: Vec<(K, u32, u32)>,
        net: impl Fn(K, u32) -> ipnet::IpNet,
    ) -> Result<Self, LpmError> {
        for p in &mut prefixes {
            p.0 = p.0.mask(p.1);
            if p.2 > MAX_VALUE {
                return Err(LpmError::ValueTooLarge {
                    prefix: net(p.0, p.1),
                    value: p.2,
                });
            }
        }
        prefixes.sort_unstable_by_key(|p| (p.0, p.1));
        if let Some(w) = prefixes
            .windows(2)
            .find(|w| w[0].0 == w[1].0 && w[0].1 == w[1].1)
        {
            return Err(LpmError::DuplicatePrefix(net(w[0].0, w[0].1)));
        }
        let len = prefixes.len();
        if len < SMALL {
            return Ok(Self::small(&prefixes));
        }
        let dp_bits = dp_bits(len, K::ADDR_BITS);
        let mut b = Builder {
            nodes: Vec::new(),
            leaves: Vec::new(),
            prefixes: &prefixes,
        };
        let dp = if dp_bits == 0 {
            b.nodes.push(Node::default());
            b.node(0, 0..len, 0, NONE);
            vec![NODE].into_boxed_slice()
        } else {
            let mut dp = vec![NONE; 1 << dp_bits];
            // Prefixes no longer than the direct-pointing level paint it, shorter first.
            let mut short: Vec<usize> = (0..len).filter(|&i| prefixes[i].1 <= dp_bits).collect();
            short.sort_by_key(|&i| prefixes[i].1);
            for i in short {
                let (key, plen, value) = prefixes[i];
                let c0 = key.chunk(0, dp_bits);
                dp[c0..c0 + (1usize << (dp_bits - plen))].fill(value);
            }
            // Longer ones get a node per direct-pointing entry.
            let mut i = 0;
            while i < len {
                if prefixes[i].1 <= dp_bits {
                    i += 1;
                    continue;
                }
                let c = prefixes[i].0.chunk(0, dp_bits);
                let start = i;
                let mut end = i;
                while end < len && prefixes[end].0.chunk(0, dp_bits) == c {
                    end += 1;
                }
                // Within [start, end) skip the short ones (painted already).
                let mut members: Vec<(K, u32, u32)> = prefixes[start..end]
                    .iter()
                    .copied()
                    .filter(|p| p.1 > dp_bits)
                    .collect();
                members.sort_unstable_by_key(|p| (p.0, p.1));
                let slot = b.nodes.len();
                b.nodes.push(Node::default());
                let mut sub = Builder {
                    nodes: core::mem::take(&mut b.nodes),
                    leaves: core::mem::take(&mut b.leaves),
                    prefixes: &members,
                };
                sub.node(slot, 0..members.len(), dp_bits, dp[c]);
                b.nodes = sub.nodes;
                b.leaves = sub.leaves;
                dp[c] = NODE | slot as u32;
                i = end;
            }
            dp.into_boxed_slice()
        };
        Ok(Poptrie {
            starts: Box::new([]),
            values: Box::new([]),
            dp_bits,
            dp,
            nodes: b.nodes.into_boxed_slice(),
            leaves: b.leaves.into_boxed_slice(),
            len,
            _k: core::marker::PhantomData,
        })
    }

    /// The small layout: every prefix's first address and the address after its last are the
    /// boundaries where the answer may change; the value at each boundary is the longest
    /// match there (a scan: fine for fewer than [`SMALL`] prefixes); equal neighbours merge.
    fn small(prefixes: &[(K, u32, u32)]) -> Self {
        let mut bounds: Vec<K> = vec![K::ZERO];
        for &(key, len, _) in prefixes {
            bounds.push(key);
            if let Some(after) = key.after(len) {
                bounds.push(after);
            }
        }
        bounds.sort_unstable();
        bounds.dedup();
        let mut starts = Vec::with_capacity(bounds.len());
        let mut values: Vec<u32> = Vec::with_capacity(bounds.len());
        for b in bounds {
            let v = prefixes
                .iter()
                .filter(|p| b.mask(p.1) == p.0)
                .max_by_key(|p| p.1)
                .map_or(NONE, |p| p.2);
            if values.last() != Some(&v) {
                starts.push(b);
                values.push(v);
            }
        }
        Poptrie {
            starts: starts.into_boxed_slice(),
            values: values.into_boxed_slice(),
            dp_bits: 0,
            dp: Box::new([]),
            nodes: Box::new([]),
            leaves: Box::new([]),
            len: prefixes.len(),
            _k: core::marker::PhantomData,
        }
    }

    /// The value of the longest prefix containing `key`.
    #[inline]
    pub(super) fn lookup(&self, key: K) -> Option<u32> {
        if !self.starts.is_empty() {
            // `starts[0]` is zero, so the index is at least 1.
            let i = self.starts.partition_point(|s| *s <= key);
            let v = self.values[i - 1];
            return (v != NONE).then_some(v);
        }
        if self.dp.is_empty() {
            return None;
        }
        let (mut idx, mut d) = if self.dp_bits == 0 {
            (0usize, 0u32)
        } else {
            let e = self.dp[key.chunk(0, self.dp_bits)];
            if e & NODE == 0 {
                return (e != NONE).then_some(e);
            }
            ((e & !NODE) as usize, self.dp_bits)
        };
        if self.nodes.is_empty() {
            return None;
        }
        loop {
            let n = self.nodes[idx];
            let c = key.chunk(d, STRIDE);
            let bit = 1u64 << c;
            if n.vector & bit != 0 {
                idx = n.base1 as usize + (n.vector & (bit - 1)).count_ones() as usize;
                d += STRIDE;
            } else {
                let run = (n.leafvec & (bit | (bit - 1))).count_ones() as usize;
                let v = self.leaves[n.base0 as usize + run - 1];
                return (v != NONE).then_some(v);
            }
        }
    }

    /// Number of prefixes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes used.
    pub(super) fn memory_bytes(&self) -> usize {
        self.starts.len() * core::mem::size_of::<K>()
            + self.values.len() * 4
            + self.dp.len() * 4
            + self.nodes.len() * core::mem::size_of::<Node>()
            + self.leaves.len() * 4
    }
}
