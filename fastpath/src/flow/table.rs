//! A bounded flow table: fixed capacity, idle timeouts, least-recently-seen eviction.
//!
//! All memory is allocated by [`FlowTable::with_capacity`]; afterwards nothing allocates, locks
//! or panics. The table is set-associative: a key hashes to one bucket of [`WAYS`] entries. The
//! 16-bit tags of all buckets sit in one array (four buckets per cache line), so a lookup reads
//! one line of tags and then, on a tag match, one entry:
//!
//! ```text
//! tags:    [t0 t1 t2 t3 t4 t5 t6 t7][t0 ... t7] ...     one [u16; 8] per bucket, 0 = empty
//! entries: [e0 e1 e2 e3 e4 e5 e6 e7][e0 ... e7] ...     key, value, last seen, timeout
//! ```
//!
//! An entry idle longer than its own timeout is gone: a lookup removes it (an expiration), an
//! insert reuses its slot. An insert into a full bucket evicts the bucket's least recently seen
//! entry and hands it back. The caller passes the time (capture time in replay, a monotonic
//! clock live); the table never reads a clock. The hash is keyed ([`FlowHasher`]), so without
//! the seed nobody can aim many flows at one bucket.

use super::{FlowHasher, FlowKey};

/// Entries per bucket.
pub const WAYS: usize = 8;

/// One flow's slot.
#[derive(Debug, Clone, Copy, Default)]
pub struct Entry<V> {
    key: FlowKey,
    value: V,
    created_ns: u64,
    last_seen_ns: u64,
    timeout_ns: u64,
}

impl<V> Entry<V> {
    /// The flow key.
    pub fn key(&self) -> &FlowKey {
        &self.key
    }

    /// The value.
    pub fn value(&self) -> &V {
        &self.value
    }

    /// The value, mutable.
    pub fn value_mut(&mut self) -> &mut V {
        &mut self.value
    }

    /// When the entry was inserted.
    pub fn created_ns(&self) -> u64 {
        self.created_ns
    }

    /// When the flow was last seen.
    pub fn last_seen_ns(&self) -> u64 {
        self.last_seen_ns
    }

    /// The idle timeout.
    pub fn timeout_ns(&self) -> u64 {
        self.timeout_ns
    }

    /// Changes the idle timeout (e.g. a TCP flow that saw a FIN lingers shortly).
    pub fn set_timeout(&mut self, ns: u64) {
        self.timeout_ns = ns;
    }

    #[inline]
    fn expired(&self, now_ns: u64) -> bool {
        now_ns.saturating_sub(self.last_seen_ns) > self.timeout_ns
    }
}

/// What an insert did.
#[derive(Debug, Clone, Copy)]
pub enum Insert<V> {
    /// A new entry in a free (or expired) slot.
    Inserted,
    /// The key was there; its value and timeout were replaced.
    Replaced,
    /// The bucket was full: this least recently seen entry made room.
    Evicted(Entry<V>),
}

/// Counters of a flow table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTableStats {
    /// New entries.
    pub inserts: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
    /// Entries that timed out.
    pub expirations: u64,
    /// Entries removed by the caller.
    pub removals: u64,
}

/// A bounded flow table (see the module docs).
#[derive(Clone)]
pub struct FlowTable<V: Copy + Default> {
    tags: Box<[[u16; WAYS]]>,
    entries: Box<[Entry<V>]>,
    mask: usize,
    hasher: FlowHasher,
    len: usize,
    stats: FlowTableStats,
    cursor: usize,
}

impl<V: Copy + Default> core::fmt::Debug for FlowTable<V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlowTable")
            .field("capacity", &self.capacity())
            .field("len", &self.len)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<V: Copy + Default> FlowTable<V> {
    /// A table of at least `capacity` entries (rounded up to a power of two, at least one
    /// bucket), keyed by `hasher`.
    pub fn with_capacity(capacity: usize, hasher: FlowHasher) -> FlowTable<V> {
        let buckets = capacity.div_ceil(WAYS).next_power_of_two().max(1);
        FlowTable {
            tags: vec![[0u16; WAYS]; buckets].into_boxed_slice(),
            entries: vec![Entry::default(); buckets * WAYS].into_boxed_slice(),
            mask: buckets - 1,
            hasher,
            len: 0,
            stats: FlowTableStats::default(),
            cursor: 0,
        }
    }

    /// Entries the table holds at most.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Live entries (expired ones still count until a lookup, insert or sweep finds them).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Counters.
    pub fn stats(&self) -> FlowTableStats {
        self.stats
    }

    #[inline(always)]
    fn locate(&self, key: &FlowKey) -> (usize, u16) {
        self.locate_hashed(self.hasher.hash(key))
    }

    #[inline(always)]
    fn locate_hashed(&self, h: u64) -> (usize, u16) {
        ((h as usize) & self.mask, ((h >> 48) as u16) | 1)
    }

    /// The hasher (a caller that needs the key's hash for something else can compute it once
    /// and use the `_hashed` methods).
    pub fn hasher(&self) -> &FlowHasher {
        &self.hasher
    }

    /// The way of `key` in bucket `b`. The bucket's eight tags are compared at once, as the
    /// lanes of one 128-bit word (the zero-lane test of "Bit Twiddling Hacks"): a miss, the
    /// common case under a flood, costs a handful of instructions and no branch per way. The
    /// test can flag a lane above a true match as well, so each candidate is checked.
    #[inline(always)]
    fn find(&self, b: usize, tag: u16, key: &FlowKey) -> Option<usize> {
        const LO: u128 = 0x0001_0001_0001_0001_0001_0001_0001_0001;
        const HI: u128 = LO << 15;
        let tags = &self.tags[b];
        let word = tags
            .iter()
            .enumerate()
            .fold(0u128, |acc, (w, &t)| acc | (u128::from(t) << (16 * w)));
        let x = word ^ (LO * u128::from(tag));
        let mut hits = x.wrapping_sub(LO) & !x & HI;
        while hits != 0 {
            let w = (hits.trailing_zeros() / 16) as usize;
            if tags[w] == tag && self.entries[b * WAYS + w].key == *key {
                return Some(w);
            }
            hits &= hits - 1;
        }
        None
    }

    #[inline(always)]
    fn clear_slot(&mut self, b: usize, w: usize) {
        self.tags[b][w] = 0;
        self.len -= 1;
    }

    /// The live entry of `key` seen at `now_ns` (its last-seen time is refreshed). An entry idle
    /// past its timeout is removed and counted as expired.
    #[inline]
    pub fn get(&mut self, key: &FlowKey, now_ns: u64) -> Option<&mut Entry<V>> {
        let h = self.hasher.hash(key);
        self.get_hashed(key, h, now_ns)
    }

    /// [`FlowTable::get`] with `hash` = `self.hasher().hash(key)`.
    #[inline]
    pub fn get_hashed(&mut self, key: &FlowKey, hash: u64, now_ns: u64) -> Option<&mut Entry<V>> {
        let (b, tag) = self.locate_hashed(hash);
        let w = self.find(b, tag, key)?;
        if self.entries[b * WAYS + w].expired(now_ns) {
            self.clear_slot(b, w);
            self.stats.expirations += 1;
            return None;
        }
        let e = &mut self.entries[b * WAYS + w];
        e.last_seen_ns = e.last_seen_ns.max(now_ns);
        Some(e)
    }

    /// The entry of `key` without touching it or checking its timeout.
    pub fn peek(&self, key: &FlowKey) -> Option<&Entry<V>> {
        let (b, tag) = self.locate(key);
        self.find(b, tag, key).map(|w| &self.entries[b * WAYS + w])
    }

    /// Inserts or replaces `key` with idle timeout `timeout_ns`.
    #[inline]
    pub fn insert(&mut self, key: FlowKey, value: V, now_ns: u64, timeout_ns: u64) -> Insert<V> {
        let h = self.hasher.hash(&key);
        self.insert_hashed(key, h, value, now_ns, timeout_ns)
    }

    /// [`FlowTable::insert`] with `hash` = `self.hasher().hash(&key)`.
    #[inline]
    pub fn insert_hashed(
        &mut self,
        key: FlowKey,
        hash: u64,
        value: V,
        now_ns: u64,
        timeout_ns: u64,
    ) -> Insert<V> {
        let (b, tag) = self.locate_hashed(hash);
        let fresh = Entry {
            key,
            value,
            created_ns: now_ns,
            last_seen_ns: now_ns,
            timeout_ns,
        };
        if let Some(w) = self.find(b, tag, &key) {
            let e = &mut self.entries[b * WAYS + w];
            e.value = value;
            e.last_seen_ns = now_ns;
            e.timeout_ns = timeout_ns;
            return Insert::Replaced;
        }
        self.stats.inserts += 1;
        // A free slot, else an expired one, else the least recently seen.
        let mut victim = 0;
        let mut oldest = u64::MAX;
        for w in 0..WAYS {
            if self.tags[b][w] == 0 {
                self.tags[b][w] = tag;
                self.entries[b * WAYS + w] = fresh;
                self.len += 1;
                return Insert::Inserted;
            }
            let e = &self.entries[b * WAYS + w];
            if e.expired(now_ns) {
                self.stats.expirations += 1;
                self.tags[b][w] = tag;
                self.entries[b * WAYS + w] = fresh;
                return Insert::Inserted;
            }
            if e.last_seen_ns < oldest {
                oldest = e.last_seen_ns;
                victim = w;
            }
        }
        self.stats.evictions += 1;
        let old = core::mem::replace(&mut self.entries[b * WAYS + victim], fresh);
        self.tags[b][victim] = tag;
        Insert::Evicted(old)
    }

    /// Removes `key`, returning its value.
    #[inline]
    pub fn remove(&mut self, key: &FlowKey) -> Option<V> {
        let (b, tag) = self.locate(key);
        let w = self.find(b, tag, key)?;
        self.clear_slot(b, w);
        self.stats.removals += 1;
        Some(self.entries[b * WAYS + w].value)
    }

    /// Sweeps at most `max_buckets` buckets from where the last sweep stopped, removing every
    /// expired entry and handing it to `f` (key, value, created, last seen).
    pub fn expire(&mut self, now_ns: u64, max_buckets: usize, mut f: impl FnMut(&Entry<V>)) {
        let n = max_buckets.min(self.tags.len());
        for _ in 0..n {
            let b = self.cursor;
            self.cursor = (self.cursor + 1) & self.mask;
            for w in 0..WAYS {
                if self.tags[b][w] != 0 && self.entries[b * WAYS + w].expired(now_ns) {
                    self.clear_slot(b, w);
                    self.stats.expirations += 1;
                    f(&self.entries[b * WAYS + w]);
                }
            }
        }
    }

    /// Removes every entry, handing each to `f` (end of a replay).
    pub fn drain(&mut self, mut f: impl FnMut(&Entry<V>)) {
        for b in 0..self.tags.len() {
            for w in 0..WAYS {
                if self.tags[b][w] != 0 {
                    self.clear_slot(b, w);
                    f(&self.entries[b * WAYS + w]);
                }
            }
        }
    }

    /// Forgets every entry (keeps the memory and the counters).
    pub fn clear(&mut self) {
        self.tags.fill([0; WAYS]);
        self.len = 0;
        self.cursor = 0;
    }

    /// Number of buckets (a full sweep is this many buckets).
    pub fn buckets(&self) -> usize {
        self.tags.len()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn key(i: u32) -> FlowKey {
        FlowKey::new(
            6,
            core::net::IpAddr::V4(i.into()),
            (i % 60000) as u16,
            "203.0.113.10".parse().unwrap(),
            22,
        )
    }

    #[test]
    fn hit_miss_replace_remove() {
        let mut t: FlowTable<u32> = FlowTable::with_capacity(64, FlowHasher::new(1));
        assert!(matches!(t.insert(key(1), 10, 100, 1000), Insert::Inserted));
        assert_eq!(t.get(&key(1), 200).map(|e| *e.value()), Some(10));
        assert!(t.get(&key(2), 200).is_none());
        assert!(matches!(t.insert(key(1), 11, 300, 1000), Insert::Replaced));
        assert_eq!(
            t.peek(&key(1)).map(|e| (*e.value(), e.created_ns())),
            Some((11, 100))
        );
        assert_eq!(t.remove(&key(1)), Some(11));
        assert!(t.is_empty());
        assert_eq!(
            t.stats(),
            FlowTableStats {
                inserts: 1,
                evictions: 0,
                expirations: 0,
                removals: 1
            }
        );
    }

    #[test]
    fn expiry_on_lookup_and_reuse() {
        let mut t: FlowTable<u32> = FlowTable::with_capacity(64, FlowHasher::new(1));
        t.insert(key(1), 1, 0, 100);
        assert!(
            t.get(&key(1), 100).is_some(),
            "exactly at the timeout is still alive"
        );
        assert!(t.get(&key(1), 201).is_none());
        assert_eq!(t.stats().expirations, 1);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn full_bucket_evicts_least_recently_seen() {
        // One bucket only.
        let mut t: FlowTable<u32> = FlowTable::with_capacity(WAYS, FlowHasher::new(3));
        assert_eq!(t.capacity(), WAYS);
        for i in 0..WAYS as u32 {
            assert!(matches!(
                t.insert(key(i), i, u64::from(i), 1_000_000),
                Insert::Inserted
            ));
        }
        // Touch key 0 so key 1 becomes the oldest.
        t.get(&key(0), 100);
        let Insert::Evicted(old) = t.insert(key(99), 99, 200, 1_000_000) else {
            panic!("no eviction")
        };
        assert_eq!((*old.key(), *old.value()), (key(1), 1));
        assert_eq!(t.len(), WAYS);
        assert!(t.peek(&key(1)).is_none());
        assert_eq!(t.stats().evictions, 1);
    }

    #[test]
    fn sweep_visits_each_expired_entry_once() {
        // Roomy enough that no bucket overflows (an overflow would evict, not expire).
        let mut t: FlowTable<u32> = FlowTable::with_capacity(8192, FlowHasher::new(5));
        for i in 0..500 {
            t.insert(key(i), i, 0, if i % 2 == 0 { 10 } else { 1_000 });
        }
        let mut seen = Vec::new();
        for _ in 0..(t.buckets() / 7 + 2) {
            t.expire(100, 7, |e| seen.push(*e.value()));
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..500).filter(|i| i % 2 == 0).collect::<Vec<_>>());
        assert_eq!(t.len(), 250);
        let mut rest = Vec::new();
        t.drain(|e| rest.push(*e.value()));
        assert_eq!(rest.len(), 250);
        assert!(t.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32, u64),
        Get(u32),
        Remove(u32),
        Tick(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..64, 1u64..50).prop_map(|(k, t)| Op::Insert(k, t)),
            (0u32..64).prop_map(Op::Get),
            (0u32..64).prop_map(Op::Remove),
            (0u64..20).prop_map(Op::Tick),
        ]
    }

    proptest! {
        // With room to spare (64 keys, 4096 slots) no bucket overflows, and the table must
        // behave exactly like a map with idle timeouts.
        #[test]
        fn matches_a_map_with_timeouts(ops in proptest::collection::vec(op(), 1..300), seed in any::<u64>()) {
            let mut t: FlowTable<u32> = FlowTable::with_capacity(4096, FlowHasher::new(seed));
            let mut m: HashMap<u32, (u64, u64)> = HashMap::new(); // key -> (last seen, timeout)
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Insert(k, to) => {
                        t.insert(key(k), k, now, to);
                        m.insert(k, (now, to));
                    }
                    Op::Get(k) => {
                        let live = m.get(&k).is_some_and(|&(seen, to)| now - seen <= to);
                        let got = t.get(&key(k), now).map(|e| *e.value());
                        prop_assert_eq!(got, live.then_some(k));
                        if live { m.insert(k, (now, m[&k].1)); } else { m.remove(&k); }
                    }
                    Op::Remove(k) => {
                        let had = t.remove(&key(k)).is_some();
                        match m.remove(&k) {
                            // An expired entry may still sit in its slot or may already have
                            // been reused by an insert: either answer is right.
                            Some((seen, to)) if now - seen > to => {}
                            Some(_) => prop_assert!(had, "live key {} not removed", k),
                            None => prop_assert!(!had, "removed key {} found", k),
                        }
                    }
                    Op::Tick(d) => now += d,
                }
                prop_assert!(t.len() <= t.capacity());
            }
        }

        // Under pressure: never above capacity, and whatever is found was inserted.
        #[test]
        fn bounded_under_pressure(keys in proptest::collection::vec(0u32..10_000, 1..2000)) {
            let mut t: FlowTable<u32> = FlowTable::with_capacity(64, FlowHasher::new(9));
            for (i, k) in keys.iter().enumerate() {
                t.insert(key(*k), *k, i as u64, 1_000_000);
                prop_assert!(t.len() <= 64);
            }
            for k in &keys {
                if let Some(e) = t.peek(&key(*k)) {
                    prop_assert_eq!(*e.value(), *k);
                }
            }
        }
    }
}
