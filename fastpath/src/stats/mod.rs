//! Counters: per queue, per reason, per service, per binding and app slot, plus batch times.
//!
//! One [`QueueStats`] belongs to one queue thread, which is its only writer. Counters are
//! `AtomicU64`s updated with a relaxed load and store (no read-modify-write, so no locked
//! instruction on the hot path; pingora's estimator does the same), and any other thread may
//! read them at any time (the control socket, the periodic printer, replay's summary).

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::tables::MAX_SLOTS;
use crate::verdict::{Reason, Service, Verdict};

/// A single-writer counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (only the owning thread may call this).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Sets the value (only the owning thread may call this).
    #[inline(always)]
    pub fn set(&self, n: u64) {
        self.0.store(n, Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Counters per reason.
#[derive(Debug, Default)]
pub struct ByReason([Counter; Reason::COUNT]);

impl ByReason {
    /// Counts one frame.
    #[inline(always)]
    pub fn add(&self, r: Reason) {
        self.0[r as usize].add(1);
    }

    /// The count for `r`.
    pub fn get(&self, r: Reason) -> u64 {
        self.0[r as usize].get()
    }

    /// Total over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().map(Counter::get).sum()
    }

    /// Total over the reasons that imply `v`.
    pub fn verdict(&self, v: Verdict) -> u64 {
        Reason::ALL
            .iter()
            .filter(|r| r.verdict() == v)
            .map(|r| self.get(*r))
            .sum()
    }

    /// A plain copy.
    pub fn snapshot(&self) -> [u64; Reason::COUNT] {
        core::array::from_fn(|i| self.0[i].get())
    }
}

/// A log-linear histogram of nanosecond durations with atomic buckets: 4 sub-buckets per power
/// of two (relative error below 19%), enough for p50/p99 of batch times. Single writer.
#[derive(Debug)]
pub struct NsHistogram {
    buckets: Box<[Counter]>,
    count: Counter,
    sum: Counter,
    max: Counter,
}

const SUB: u32 = 4;
const SUB_BITS: u32 = 2;

impl Default for NsHistogram {
    fn default() -> Self {
        NsHistogram {
            buckets: (0..64 * SUB).map(|_| Counter::default()).collect(),
            count: Counter::default(),
            sum: Counter::default(),
            max: Counter::default(),
        }
    }
}

impl NsHistogram {
    fn index(v: u64) -> usize {
        if v < u64::from(SUB) {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let sub = (v >> (msb - SUB_BITS)) & u64::from(SUB - 1);
        ((msb - SUB_BITS + 1) * SUB) as usize + sub as usize
    }

    fn lower_bound(i: usize) -> u64 {
        let i = i as u32;
        if i < SUB {
            return u64::from(i);
        }
        let msb = i / SUB + SUB_BITS - 1;
        let sub = u64::from(i % SUB);
        (1u64 << msb) | (sub << (msb - SUB_BITS))
    }

    /// Records one duration.
    #[inline]
    pub fn record(&self, ns: u64) {
        self.buckets[Self::index(ns)].add(1);
        self.count.add(1);
        self.sum.add(ns);
        if ns > self.max.get() {
            self.max.set(ns);
        }
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.count.get()
    }

    /// Mean, or 0.
    pub fn mean(&self) -> u64 {
        self.sum.get().checked_div(self.count.get()).unwrap_or(0)
    }

    /// Largest recorded value.
    pub fn max(&self) -> u64 {
        self.max.get()
    }

    /// The value at quantile `q` (0..=1): the lower bound of the bucket holding it.
    pub fn quantile(&self, q: f64) -> u64 {
        let n = self.count.get();
        if n == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.get();
            if seen >= rank {
                return Self::lower_bound(i);
            }
        }
        self.max.get()
    }
}

/// Everything one queue counts.
#[derive(Debug)]
pub struct QueueStats {
    /// The queue.
    pub queue: u16,
    /// Frames by reason.
    pub reasons: ByReason,
    /// Frames by service (index: `Service as usize`) and reason.
    pub services: [ByReason; 2],
    /// Frames by app slot and reason.
    pub apps: Box<[ByReason]>,
    /// Frames by binding slot and reason.
    pub bindings: Box<[ByReason]>,
    /// Bytes received (frame lengths).
    pub rx_bytes: Counter,
    /// Frames we transmitted (SYN-ACK, RST, ICMP).
    pub tx_frames: Counter,
    /// Bytes we transmitted.
    pub tx_bytes: Counter,
    /// Cookie ACKs that validated.
    pub cookies_valid: Counter,
    /// Cookie ACKs that did not (these are `out_of_state`).
    pub cookies_invalid: Counter,
    /// Batches processed.
    pub batches: Counter,
    /// Flow table: inserts.
    pub flow_inserts: Counter,
    /// Flow table: entries evicted to make room.
    pub flow_evictions: Counter,
    /// Flow table: entries that timed out.
    pub flow_expirations: Counter,
    /// Flow table: live entries.
    pub flows: Counter,
    /// Processing time per batch.
    pub batch_ns: NsHistogram,
    /// The configuration version of the table snapshot this queue last ran (its latest batch,
    /// or its latest idle wakeup): a change is live on the queue once this reaches its version.
    pub tables_version: Counter,
}

impl QueueStats {
    /// Zeroed counters for `queue`.
    pub fn new(queue: u16) -> QueueStats {
        QueueStats {
            queue,
            reasons: ByReason::default(),
            services: Default::default(),
            apps: (0..MAX_SLOTS).map(|_| ByReason::default()).collect(),
            bindings: (0..MAX_SLOTS).map(|_| ByReason::default()).collect(),
            rx_bytes: Counter::default(),
            tx_frames: Counter::default(),
            tx_bytes: Counter::default(),
            cookies_valid: Counter::default(),
            cookies_invalid: Counter::default(),
            batches: Counter::default(),
            flow_inserts: Counter::default(),
            flow_evictions: Counter::default(),
            flow_expirations: Counter::default(),
            flows: Counter::default(),
            batch_ns: NsHistogram::default(),
            tables_version: Counter::default(),
        }
    }

    /// Counts one frame.
    #[inline(always)]
    pub fn count(
        &self,
        reason: Reason,
        service: Option<Service>,
        binding_slot: Option<u32>,
        app_slot: Option<u32>,
        len: usize,
    ) {
        self.reasons.add(reason);
        self.rx_bytes.add(len as u64);
        if let Some(s) = service {
            self.services[s as usize].add(reason);
        }
        if let Some(b) = binding_slot.and_then(|b| self.bindings.get(b as usize)) {
            b.add(reason);
        }
        if let Some(a) = app_slot.and_then(|a| self.apps.get(a as usize)) {
            a.add(reason);
        }
    }

    /// Frames counted so far.
    pub fn frames(&self) -> u64 {
        self.reasons.total()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn histogram_quantiles_within_bucket_error() {
        let h = NsHistogram::default();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        assert_eq!(h.count(), 10_000);
        for (q, exact) in [(0.5, 5000.0), (0.99, 9900.0), (0.01, 100.0)] {
            let got = h.quantile(q) as f64;
            assert!(
                got <= exact && got >= exact * 0.75,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.max(), 10_000);
        assert_eq!(h.mean(), 5000);
        let last = NsHistogram::index(u64::MAX);
        for i in 0..=last {
            assert_eq!(
                NsHistogram::index(NsHistogram::lower_bound(i)),
                i,
                "bucket {i}"
            );
        }
        h.record(u64::MAX);
        assert_eq!(h.quantile(1.0), NsHistogram::lower_bound(last));
    }

    #[test]
    fn counts_by_dimension() {
        let s = QueueStats::new(0);
        s.count(
            Reason::SynCookie,
            Some(Service::Spectrum),
            Some(3),
            Some(7),
            60,
        );
        s.count(Reason::NotOurs, None, None, None, 100);
        s.count(
            Reason::FirewallBlock,
            Some(Service::Cdn),
            Some(1),
            Some(MAX_SLOTS + 5),
            60,
        );
        assert_eq!(s.frames(), 3);
        assert_eq!(s.reasons.verdict(Verdict::Pass), 1);
        assert_eq!(
            s.services[Service::Spectrum as usize].get(Reason::SynCookie),
            1
        );
        assert_eq!(s.apps[7].get(Reason::SynCookie), 1);
        assert_eq!(s.bindings[1].get(Reason::FirewallBlock), 1);
        assert_eq!(s.rx_bytes.get(), 220);
    }
}
