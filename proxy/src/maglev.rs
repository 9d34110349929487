//! Maglev consistent hashing over the CDN's pool of origins (Eisenbud et al., "Maglev: A Fast
//! and Reliable Software Network Load Balancer", NSDI 2016, section 3.4).
//!
//! Contract:
//!
//! - A [`Maglev`] maps a flow hash to one backend of its pool through a table of
//!   [`Maglev::TABLE_SIZE`] (a prime) slots. Every backend owns `TABLE_SIZE / N` slots, give or
//!   take one, so flows spread evenly.
//! - The table is a function of the *set* of backend addresses: the same addresses listed in
//!   another order, on another node, on another run, give every address the same slots. Each
//!   backend's preference list comes from a hash of its address text that is fixed by this
//!   file (FNV-1a 64, see [`stable_hash`]), not by the toolchain or the process.
//! - Removing a backend moves the flows it had, and only a small fraction (well under 2% for
//!   the pool sizes of the tests) of the others; adding one moves about `1/(N+1)` of the flows.
//! - [`Maglev::candidates`] gives the failover order of a flow: the looked-up backend first,
//!   then every other backend once, the same order every time for the same hash.
//!
//! Building costs O(`TABLE_SIZE` log `TABLE_SIZE`) expected work (the paper's bound) and one
//! allocation of 256 KiB; a lookup is one modulo and one load.

use std::net::SocketAddr;

/// A Maglev lookup table over a list of backends.
///
/// ```
/// use fastpath_proxy::maglev::Maglev;
/// let pool: Vec<std::net::SocketAddr> =
///     vec!["192.0.2.10:80".parse().unwrap(), "192.0.2.11:80".parse().unwrap()];
/// let m = Maglev::new(&pool);
/// let first = m.lookup(0x1234_5678).unwrap();
/// let order: Vec<usize> = m.candidates(0x1234_5678).collect();
/// assert_eq!(order[0], first);
/// assert_eq!(order.len(), 2);
/// ```
#[derive(Clone)]
pub struct Maglev {
    /// `TABLE_SIZE` indices into `backends`, or empty for an empty pool.
    table: Box<[u32]>,
    /// The pool, in the order the caller gave it (indices refer to this order).
    backends: Vec<SocketAddr>,
}

/// Prints the pool and the table's size, not its 65537 entries.
impl std::fmt::Debug for Maglev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maglev")
            .field("backends", &self.backends)
            .field("table_len", &self.table.len())
            .finish()
    }
}

/// A slot nobody has filled yet (only while building).
const EMPTY: u32 = u32::MAX;

/// FNV-1a 64 of `bytes`.
///
/// Why FNV-1a and not `std::hash::DefaultHasher::new()`: both have fixed keys, but std
/// documents that `DefaultHasher`'s algorithm "may change in future releases", so two nodes
/// built with different toolchains could disagree on the table and send the same flow to
/// different origins. FNV-1a is specified by its two constants here.
fn fnv1a64(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The 64-bit finalizer of MurmurHash3 (`fmix64`): FNV-1a's high bits depend on every input
/// byte but its low bits only on the low bits; this spreads all of them before the modulo.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// A stable hash of `text` in the domain `domain`: `fmix64(FNV-1a 64(domain ‖ 0 ‖ text))`.
///
/// The paper asks for two different hash functions for offset and skip; two domains of one
/// hash are that (the outputs for one text are unrelated after the finalizer). Stable across
/// machines, runs and Rust versions: changing it reshuffles flows across a fleet mid-upgrade,
/// which `table_is_pinned` in the tests catches.
pub fn stable_hash(domain: &str, text: &str) -> u64 {
    let bytes = domain.bytes().chain([0]).chain(text.bytes());
    fmix64(fnv1a64(bytes))
}

impl Maglev {
    /// Table size: a prime much larger than any pool (the paper's M; 65537 = 2^16 + 1).
    pub const TABLE_SIZE: usize = 65537;

    /// Builds the table for `backends` (duplicates are kept and share their slots).
    ///
    /// Each backend's preference list is the paper's permutation `offset + j * skip mod M`,
    /// with `offset = h1(addr) mod M` and `skip = h2(addr) mod (M - 1) + 1` from two
    /// [`stable_hash`]es of the address text (`192.0.2.1:80`, `[2001:db8::1]:80`). Ties are
    /// resolved as in the paper: round robin over the backends, each taking its next preferred
    /// free slot. The round robin goes over the backends sorted by address, not in the order
    /// given, so that the table depends only on the set. An empty pool gives an empty table.
    pub fn new(backends: &[SocketAddr]) -> Maglev {
        let backends = backends.to_vec();
        let n = backends.len();
        if n == 0 {
            return Maglev {
                table: Box::new([]),
                backends,
            };
        }
        let m = Self::TABLE_SIZE as u64;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| backends[i]);
        // Per backend, in `order`: (next slot it prefers, skip). Walking `slot += skip mod M`
        // visits every slot once because M is prime and 1 <= skip < M.
        let mut walk: Vec<(u64, u64)> = order
            .iter()
            .map(|&i| {
                let text = backends[i].to_string();
                let offset = stable_hash("maglev-offset", &text) % m;
                let skip = stable_hash("maglev-skip", &text) % (m - 1) + 1;
                (offset, skip)
            })
            .collect();
        let mut table = vec![EMPTY; Self::TABLE_SIZE].into_boxed_slice();
        let mut filled = 0;
        'fill: loop {
            for (k, &i) in order.iter().enumerate() {
                let (slot, skip) = &mut walk[k];
                // Terminates: the table has a free slot (filled < M) and the walk reaches it.
                while table[*slot as usize] != EMPTY {
                    *slot = (*slot + *skip) % m;
                }
                // `i < n <= u32::MAX` in any pool that fits in memory with its table.
                table[*slot as usize] = i as u32;
                *slot = (*slot + *skip) % m;
                filled += 1;
                if filled == Self::TABLE_SIZE {
                    break 'fill;
                }
            }
        }
        Maglev { table, backends }
    }

    /// The pool, in the order given to [`Maglev::new`]; lookups return indices into it.
    pub fn backends(&self) -> &[SocketAddr] {
        &self.backends
    }

    /// The backend index for a flow hash (slot `hash % TABLE_SIZE`), `None` for an empty pool.
    pub fn lookup(&self, hash: u64) -> Option<usize> {
        let slot = self.slot(hash)?;
        Some(self.table[slot] as usize)
    }

    /// The backend's address for a flow hash, `None` for an empty pool.
    pub fn lookup_addr(&self, hash: u64) -> Option<SocketAddr> {
        self.lookup(hash).map(|i| self.backends[i])
    }

    /// How many table slots each backend owns (index as in [`Maglev::backends`]).
    pub fn slots_per_backend(&self) -> Vec<usize> {
        let mut counts = vec![0; self.backends.len()];
        for &b in self.table.iter() {
            counts[b as usize] += 1;
        }
        counts
    }

    fn slot(&self, hash: u64) -> Option<usize> {
        if self.table.is_empty() {
            None
        } else {
            // < TABLE_SIZE, which fits in usize.
            Some((hash % Self::TABLE_SIZE as u64) as usize)
        }
    }

    /// Failover order for a flow: the lookup's backend first, then every other backend once,
    /// in an order that is stable for that hash (walking the table from the flow's slot
    /// onward, taking backends not yet seen; backends that own no slot at all, possible only
    /// in a pool larger than the table, come last in index order). Used when a backend
    /// refuses: "a backend that refuses is skipped for the next one". Empty for an empty pool.
    ///
    /// The first item costs nothing; the second allocates one flag per backend.
    pub fn candidates(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        Candidates {
            maglev: self,
            start: self.slot(hash).unwrap_or(0),
            walked: 0,
            seen: Vec::new(),
            left: self.backends.len(),
            tail: 0,
        }
    }
}

/// The iterator of [`Maglev::candidates`].
struct Candidates<'a> {
    maglev: &'a Maglev,
    /// The flow's slot.
    start: usize,
    /// Slots walked from `start`.
    walked: usize,
    /// Backends given out (allocated at the second item).
    seen: Vec<bool>,
    /// Backends not given out yet.
    left: usize,
    /// Next index to try once the whole table was walked.
    tail: usize,
}

impl Iterator for Candidates<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        let table = &self.maglev.table;
        if self.walked == 0 {
            // The lookup itself, without allocating: most flows connect at the first try.
            self.walked = 1;
            self.left -= 1;
            return Some(table[self.start] as usize);
        }
        if self.seen.is_empty() {
            self.seen = vec![false; self.maglev.backends.len()];
            self.seen[table[self.start] as usize] = true;
        }
        while self.walked < table.len() {
            let b = table[(self.start + self.walked) % table.len()] as usize;
            self.walked += 1;
            if !self.seen[b] {
                self.seen[b] = true;
                self.left -= 1;
                return Some(b);
            }
        }
        while self.tail < self.seen.len() {
            let b = self.tail;
            self.tail += 1;
            if !self.seen[b] {
                self.seen[b] = true;
                self.left -= 1;
                return Some(b);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    /// splitmix64: deterministic flow hashes without a `rand` dependency.
    fn hashes(seed: u64, n: usize) -> Vec<u64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            })
            .collect()
    }

    /// `n` backends: IPv4 documentation addresses, every third one IPv6.
    fn pool(n: usize) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| {
                let ip = if i % 3 == 2 {
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16))
                } else {
                    IpAddr::V4(Ipv4Addr::new(198, 51, 100, i as u8))
                };
                SocketAddr::new(ip, 8080)
            })
            .collect()
    }

    /// The backend address of each flow.
    fn assign(m: &Maglev, flows: &[u64]) -> Vec<SocketAddr> {
        flows.iter().map(|&h| m.lookup_addr(h).unwrap()).collect()
    }

    #[test]
    fn fnv1a64_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a64(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(*b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(*b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn empty_pool() {
        let m = Maglev::new(&[]);
        assert!(m.backends().is_empty());
        assert_eq!(m.lookup(42), None);
        assert_eq!(m.lookup_addr(42), None);
        assert_eq!(m.candidates(42).count(), 0);
        assert!(m.slots_per_backend().is_empty());
    }

    #[test]
    fn single_backend() {
        let m = Maglev::new(&pool(1));
        assert_eq!(m.slots_per_backend(), vec![Maglev::TABLE_SIZE]);
        for h in hashes(1, 1000) {
            assert_eq!(m.lookup(h), Some(0));
            assert_eq!(m.candidates(h).collect::<Vec<_>>(), vec![0]);
        }
    }

    #[test]
    fn every_backend_gets_its_share() {
        for n in [2, 3, 7, 10, 100] {
            let m = Maglev::new(&pool(n));
            let counts = m.slots_per_backend();
            let share = Maglev::TABLE_SIZE as f64 / n as f64;
            for (i, &c) in counts.iter().enumerate() {
                // The round robin gives each backend one slot per round: floor or ceil.
                assert!(
                    (c as f64 - share).abs() <= 1.0,
                    "n={n}: backend {i} has {c} slots, share {share}"
                );
            }
            // And the flows follow the slots.
            let flows = hashes(n as u64, 100_000);
            let mut per = vec![0usize; n];
            for &h in &flows {
                per[m.lookup(h).unwrap()] += 1;
            }
            let want = flows.len() as f64 / n as f64;
            for &f in &per {
                let tolerance = if n == 100 { 0.15 } else { 0.05 };
                assert!((f as f64 - want).abs() / want < tolerance, "n={n}: {per:?}");
            }
        }
    }

    /// Flows that were not on `removed` and moved anyway, as a fraction of those flows.
    fn removal_churn(n: usize, removed: usize) -> f64 {
        let full = pool(n);
        let mut less = full.clone();
        less.remove(removed);
        let flows = hashes(7 + n as u64, 100_000);
        let before = assign(&Maglev::new(&full), &flows);
        let after = assign(&Maglev::new(&less), &flows);
        let (mut others, mut moved) = (0, 0);
        for (b, a) in before.iter().zip(&after) {
            if *b == full[removed] {
                assert_ne!(a, b, "the removed backend still gets flows");
            } else {
                others += 1;
                moved += usize::from(a != b);
            }
        }
        moved as f64 / others as f64
    }

    #[test]
    fn removing_a_backend_moves_little_else() {
        for (n, removed) in [(3, 0), (3, 1), (3, 2), (10, 0), (10, 4), (10, 9)] {
            let churn = removal_churn(n, removed);
            assert!(
                churn < 0.02,
                "n={n} removing {removed}: {churn:.4} of the others moved"
            );
        }
    }

    #[test]
    fn adding_a_backend_moves_about_one_share() {
        for n in [3, 10] {
            let old = pool(n);
            let new = pool(n + 1);
            let flows = hashes(11 + n as u64, 100_000);
            let before = assign(&Maglev::new(&old), &flows);
            let after = assign(&Maglev::new(&new), &flows);
            let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
            let to_new = after.iter().filter(|&&a| a == new[n]).count();
            let f = flows.len() as f64;
            let share = 1.0 / (n + 1) as f64;
            assert!(
                (to_new as f64 / f - share).abs() < 0.01,
                "n={n}: {to_new} flows on the new backend"
            );
            assert!(
                (moved as f64 / f - share).abs() < 0.02,
                "n={n}: {moved} flows moved, expected about {share:.3}"
            );
        }
    }

    #[test]
    fn order_of_the_pool_does_not_matter() {
        for n in [3, 10, 100] {
            let a = pool(n);
            let mut b = a.clone();
            b.reverse();
            b.rotate_left(n / 3);
            let (ma, mb) = (Maglev::new(&a), Maglev::new(&b));
            let flows = hashes(3, 100_000);
            assert_eq!(assign(&ma, &flows), assign(&mb, &flows), "n={n}");
            let ca: Vec<SocketAddr> = ma.candidates(99).map(|i| a[i]).collect();
            let cb: Vec<SocketAddr> = mb.candidates(99).map(|i| b[i]).collect();
            assert_eq!(ca, cb);
        }
    }

    /// The table is the same on every machine and every run: a change of the hash or of the
    /// fill order would send flows elsewhere during a rolling upgrade.
    #[test]
    fn table_is_pinned() {
        let m = Maglev::new(&pool(3));
        let got: Vec<usize> = [0u64, 1, 2, 1000, 65536, 65537, u64::MAX]
            .iter()
            .map(|&h| m.lookup(h).unwrap())
            .collect();
        assert_eq!(got, [1, 0, 0, 1, 1, 1, 1]);
        assert_eq!(m.slots_per_backend(), vec![21846, 21846, 21845]);
        let digest = |m: &Maglev| fnv1a64(m.table.iter().flat_map(|s| s.to_le_bytes()));
        assert_eq!(digest(&m), PINNED_3, "table of pool(3): {:#x}", digest(&m));
        let m = Maglev::new(&pool(10));
        assert_eq!(
            digest(&m),
            PINNED_10,
            "table of pool(10): {:#x}",
            digest(&m)
        );
    }

    const PINNED_3: u64 = 0xbea7_5914_0fe5_a727;
    const PINNED_10: u64 = 0x861d_58a5_a3ac_e06a;

    #[test]
    fn candidates_cover_the_pool_once() {
        for n in [1, 2, 3, 10, 100] {
            let m = Maglev::new(&pool(n));
            for h in hashes(n as u64, 200) {
                let c: Vec<usize> = m.candidates(h).collect();
                assert_eq!(c.len(), n);
                assert_eq!(c[0], m.lookup(h).unwrap());
                assert_eq!(c.iter().copied().collect::<HashSet<_>>().len(), n);
                assert_eq!(m.candidates(h).collect::<Vec<_>>(), c, "stable per hash");
            }
        }
    }

    #[test]
    fn candidates_size_hint_is_exact() {
        let m = Maglev::new(&pool(5));
        let mut it = m.candidates(12345);
        for left in (0..=5).rev() {
            assert_eq!(it.size_hint(), (left, Some(left)));
            it.next();
        }
        assert_eq!(it.next(), None);
    }

    #[test]
    fn builds_for_100_backends() {
        let m = Maglev::new(&pool(100));
        assert_eq!(m.backends().len(), 100);
        assert!(m.slots_per_backend().iter().all(|&c| c >= 655));
    }

    #[test]
    fn duplicates_share() {
        let a: SocketAddr = "192.0.2.1:80".parse().unwrap();
        let m = Maglev::new(&[a, a]);
        assert_eq!(
            m.slots_per_backend().iter().sum::<usize>(),
            Maglev::TABLE_SIZE
        );
        assert_eq!(m.candidates(1).count(), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Model: the failover order is a permutation of the pool starting with the lookup.
        #[test]
        fn candidates_are_a_permutation(ips in prop::collection::vec(any::<u32>(), 1..20),
                                        h in any::<u64>()) {
            let backends: Vec<SocketAddr> = ips
                .iter()
                .map(|&ip| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), 443))
                .collect();
            let m = Maglev::new(&backends);
            let c: Vec<usize> = m.candidates(h).collect();
            prop_assert_eq!(c[0], m.lookup(h).unwrap());
            let mut sorted = c.clone();
            sorted.sort_unstable();
            prop_assert_eq!(sorted, (0..backends.len()).collect::<Vec<_>>());
        }
    }
}
