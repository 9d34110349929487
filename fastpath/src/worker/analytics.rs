//! Connection analytics (seed "Analytics"): count, bytes ingress/egress and the connection
//! duration distribution (average, median, 90th and 99th percentile, in milliseconds), by
//! service, app, event and client IP version.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::NO_APP;
use super::events::{Event, EventKind};
use crate::verdict::Service;

/// The dimensions of one analytics row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dimensions {
    /// Service.
    pub service: Service,
    /// Spectrum app slot (`None` for the CDN).
    pub app_slot: Option<u32>,
    /// Event.
    pub event: EventKind,
    /// 4 or 6.
    pub ip_version: u8,
}

#[derive(Debug, Clone)]
struct Accum {
    count: u64,
    bytes_ingress: u64,
    bytes_egress: u64,
    durations_ms: Histogram<u64>,
}

impl Accum {
    fn new() -> Accum {
        // 1 ms .. 30 days, 3 significant digits; fixed range, so recording never allocates.
        let h = Histogram::new_with_bounds(1, 30 * 24 * 3600 * 1000, 3)
            .expect("valid histogram bounds");
        Accum {
            count: 0,
            bytes_ingress: 0,
            bytes_egress: 0,
            durations_ms: h,
        }
    }
}

/// One row of the analytics report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Service.
    pub service: Service,
    /// App slot (`None` for the CDN).
    pub app_slot: Option<u32>,
    /// Event.
    pub event: EventKind,
    /// 4 or 6.
    pub ip_version: u8,
    /// Events.
    pub count: u64,
    /// Payload bytes from clients.
    pub bytes_ingress: u64,
    /// Payload bytes to clients.
    pub bytes_egress: u64,
    /// Average duration (ms); durations are recorded for `disconnect` and `progress` events.
    pub duration_avg_ms: f64,
    /// Median duration (ms).
    pub duration_median_ms: u64,
    /// 90th-percentile duration (ms).
    pub duration_p90_ms: u64,
    /// 99th-percentile duration (ms).
    pub duration_p99_ms: u64,
}

/// Analytics of one worker, or merged over several.
///
/// A row is created the first time its dimensions occur (one allocation per new app, event
/// and IP version: rare and off the per-packet path); recording into an existing row does not
/// allocate.
#[derive(Debug, Clone, Default)]
pub struct Analytics {
    rows: BTreeMap<Dimensions, Accum>,
}

impl Analytics {
    /// Records one event.
    pub fn record(&mut self, e: &Event) {
        let d = Dimensions {
            service: e.service,
            app_slot: (e.app_slot != NO_APP).then_some(e.app_slot),
            event: e.kind,
            ip_version: if e.key.is_v6() { 6 } else { 4 },
        };
        let a = self.rows.entry(d).or_insert_with(Accum::new);
        a.count += 1;
        if e.kind != EventKind::Connect {
            a.bytes_ingress += e.bytes_ingress;
            a.bytes_egress += e.bytes_egress;
        }
        if matches!(e.kind, EventKind::Disconnect | EventKind::Progress) {
            // Sub-millisecond connections count as 1 ms (the histogram's lowest value).
            let ms = (e.duration_ns / 1_000_000).max(1);
            a.durations_ms.saturating_record(ms);
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Analytics) {
        for (d, o) in &other.rows {
            let a = self.rows.entry(*d).or_insert_with(Accum::new);
            a.count += o.count;
            a.bytes_ingress += o.bytes_ingress;
            a.bytes_egress += o.bytes_egress;
            // Same bounds on both sides, so adding cannot fail.
            let _ = a.durations_ms.add(&o.durations_ms);
        }
    }

    /// The rows, ordered by service, app, event, IP version.
    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        self.rows.iter().map(|(d, a)| {
            let h = &a.durations_ms;
            let has = !h.is_empty();
            Row {
                service: d.service,
                app_slot: d.app_slot,
                event: d.event,
                ip_version: d.ip_version,
                count: a.count,
                bytes_ingress: a.bytes_ingress,
                bytes_egress: a.bytes_egress,
                duration_avg_ms: if has { h.mean() } else { 0.0 },
                duration_median_ms: if has { h.value_at_quantile(0.5) } else { 0 },
                duration_p90_ms: if has { h.value_at_quantile(0.9) } else { 0 },
                duration_p99_ms: if has { h.value_at_quantile(0.99) } else { 0 },
            }
        })
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}
