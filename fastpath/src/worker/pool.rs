//! Worker pools: per-worker lock-free bounded queues, and the workers that drain them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use super::analytics::Analytics;
use super::events::{Event, EventKind, EventRing, status};
use super::{Doorbell, Negotiated, PacketPool, WorkItem, WorkKind, WorkerConfig};
use crate::flow::{Entry, FlowHasher, FlowTable};
use crate::pipeline::PipelineConfig;
use crate::stats::Counter;
use crate::verdict::Service;
use crate::wire::tcp::flags;

/// Idle timeouts of worker flow state (the same as the pipeline's gate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Established TCP.
    pub tcp_idle_ns: u64,
    /// UDP.
    pub udp_idle_ns: u64,
    /// TCP after the client's FIN.
    pub closing_ns: u64,
}

impl From<&PipelineConfig> for Timeouts {
    fn from(c: &PipelineConfig) -> Timeouts {
        Timeouts {
            tcp_idle_ns: u64::from(c.tcp_idle_secs) * 1_000_000_000,
            udp_idle_ns: u64::from(c.udp_idle_secs) * 1_000_000_000,
            closing_ns: u64::from(c.closing_secs) * 1_000_000_000,
        }
    }
}

/// One worker's queue, doorbell and counters: what a queue thread pushes into and a worker
/// drains.
#[derive(Debug)]
struct Channel {
    queue: ArrayQueue<WorkItem>,
    bell: Doorbell,
}

/// The sender side of all worker queues: cheap to clone, shared by every queue thread.
#[derive(Debug, Clone)]
pub struct WorkerPools {
    channels: Arc<[Vec<Arc<Channel>>; 2]>,
    packets: Option<Arc<PacketPool>>,
}

/// The receiving side of one worker's queue (for workers other than [`Worker`]: the proxy
/// workers of `fastpath-proxy`).
#[derive(Debug)]
pub struct WorkerQueue {
    service: Service,
    index: u16,
    channel: Arc<Channel>,
    counters: Arc<WorkerCounters>,
}

impl WorkerQueue {
    /// The service.
    pub fn service(&self) -> Service {
        self.service
    }

    /// The index within the service's pool.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Takes the oldest item.
    #[inline]
    pub fn pop(&self) -> Option<WorkItem> {
        self.channel.queue.pop()
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.channel.queue.len()
    }

    /// True when no item waits.
    pub fn is_empty(&self) -> bool {
        self.channel.queue.is_empty()
    }

    /// The doorbell the queue threads ring when they push into an armed queue.
    pub fn doorbell(&self) -> &Doorbell {
        &self.channel.bell
    }

    /// The worker's counters (shared with the control socket's readers).
    pub fn counters(&self) -> Arc<WorkerCounters> {
        Arc::clone(&self.counters)
    }
}

impl WorkerPools {
    /// Creates the queues and the accounting workers that own their consumer sides (replay,
    /// benchmarks, tests).
    ///
    /// # Panics
    /// When the doorbells' socket pairs cannot be made (out of file descriptors at start).
    pub fn new(cfg: &WorkerConfig, timeouts: Timeouts) -> (WorkerPools, Vec<Worker>) {
        let (pools, queues) =
            WorkerPools::channels(cfg, None).expect("socket pairs for the worker doorbells");
        let workers = queues
            .into_iter()
            .map(|q| Worker::new(q, cfg.flow_capacity, timeouts))
            .collect();
        (pools, workers)
    }

    /// Creates the queues and hands out their receiving sides, for workers of another kind.
    /// With `packets`, the pipeline copies every forwarded packet into a buffer of that pool
    /// ([`WorkItem::packet`]).
    ///
    /// # Errors
    /// A doorbell's socket pair cannot be made (file descriptor limit).
    pub fn channels(
        cfg: &WorkerConfig,
        packets: Option<Arc<PacketPool>>,
    ) -> std::io::Result<(WorkerPools, Vec<WorkerQueue>)> {
        let mut queues = Vec::new();
        let mut make = |service: Service, n: usize| -> std::io::Result<Vec<Arc<Channel>>> {
            (0..n.max(1))
                .map(|i| {
                    let c = Arc::new(Channel {
                        queue: ArrayQueue::new(cfg.queue_depth.max(1)),
                        bell: Doorbell::new()?,
                    });
                    queues.push(WorkerQueue {
                        service,
                        index: i as u16,
                        channel: Arc::clone(&c),
                        counters: Arc::new(WorkerCounters::default()),
                    });
                    Ok(c)
                })
                .collect()
        };
        let cdn = make(Service::Cdn, cfg.cdn)?;
        let spectrum = make(Service::Spectrum, cfg.spectrum)?;
        Ok((
            WorkerPools {
                channels: Arc::new([cdn, spectrum]),
                packets,
            },
            queues,
        ))
    }

    /// Workers of `service` (at least one).
    #[inline]
    pub fn count(&self, service: Service) -> usize {
        self.channels[service as usize].len()
    }

    /// The pool forwarded packets are copied into, when packets are carried.
    #[inline]
    pub fn packets(&self) -> Option<&Arc<PacketPool>> {
        self.packets.as_ref()
    }

    /// Hands `item` to worker `index` of `service`; a full queue gives it back (never blocks).
    // Giving the item back by value is the point (as `ArrayQueue::push` does): no allocation,
    // and its packet buffer returns to the pool when the caller drops it.
    #[allow(clippy::result_large_err)]
    #[inline]
    pub fn push(&self, service: Service, index: usize, item: WorkItem) -> Result<(), WorkItem> {
        match self.channels[service as usize].get(index) {
            Some(c) => {
                c.queue.push(item)?;
                c.bell.ring();
                Ok(())
            }
            None => Err(item),
        }
    }

    /// Items waiting in the queue of worker `index` of `service`.
    pub fn backlog(&self, service: Service, index: usize) -> usize {
        self.channels[service as usize]
            .get(index)
            .map_or(0, |c| c.queue.len())
    }
}

/// A worker's counters, readable from other threads.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Items processed.
    pub items: Counter,
    /// Flows opened.
    pub connects: Counter,
    /// Flows closed (any status).
    pub disconnects: Counter,
    /// Segments of flows the worker did not know (adopted as new connections).
    pub adopted: Counter,
    /// Flow-state entries evicted to make room.
    pub evictions: Counter,
    /// Flows open now.
    pub open: Counter,
    /// Live: validated TCP flows that became kernel sockets.
    pub handoffs: Counter,
    /// Live: handoffs that failed because the 4-tuple is in use (a socket still holds it).
    pub handoff_in_use: Counter,
    /// Live: handoffs that failed for lack of kernel memory or buffers.
    pub handoff_no_memory: Counter,
    /// Live: handoffs that failed at the file descriptor limit.
    pub handoff_fd_limit: Counter,
    /// Live: handoffs that failed otherwise (a bad segment checksum included).
    pub handoff_failed: Counter,
    /// Live: segments that arrived before their flow's socket existed, re-injected into the
    /// kernel once it did.
    pub reinjected: Counter,
    /// Live: segments of flows the worker does not hold (dropped).
    pub stray: Counter,
    /// Live: new flows refused because the worker holds `max_connections` (the client gets a
    /// RST).
    pub limit_connections: Counter,
    /// Live: times a relay direction waited with its buffer full (a slow receiver).
    pub backpressure: Counter,
    /// Live: payload bytes from clients relayed to origins.
    pub bytes_ingress: Counter,
    /// Live: payload bytes from origins relayed to clients.
    pub bytes_egress: Counter,
    /// Live: origin connections that failed (refused, unreachable, timed out).
    pub origin_errors: Counter,
    /// Live: UDP datagrams from an origin without a valid Simple Proxy Protocol header
    /// (dropped).
    pub spp_invalid: Counter,
    /// Live: datagrams or segments with a bad checksum (dropped).
    pub bad_checksum: Counter,
    /// Live: connections closed because their app was removed or moved and the drain timeout
    /// passed.
    pub drained: Counter,
}

/// Per-flow state of a worker.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlowState {
    /// Service.
    pub service: Option<Service>,
    /// App slot.
    pub app_slot: u32,
    /// Payload bytes from the client.
    pub bytes_ingress: u64,
    /// Payload bytes to the client (carried by the origin relay, a later stage; 0 until then).
    pub bytes_egress: u64,
    /// Packets from the client.
    pub packets: u64,
    /// TCP (false: UDP).
    pub tcp: bool,
    /// The connection ended (FIN or RST seen); the entry lingers to absorb the last segments.
    pub closed: bool,
    /// Negotiated TCP options.
    pub negotiated: Negotiated,
}

/// Buckets swept per `expire` call.
const SWEEP_BUCKETS: usize = 256;

/// One CDN or Spectrum accounting worker (replay, benchmarks).
#[derive(Debug)]
pub struct Worker {
    service: Service,
    index: u16,
    queue: WorkerQueue,
    flows: FlowTable<FlowState>,
    timeouts: Timeouts,
    events: EventRing,
    analytics: Analytics,
    counters: Arc<WorkerCounters>,
}

impl Worker {
    fn new(queue: WorkerQueue, capacity: usize, timeouts: Timeouts) -> Worker {
        let (service, index) = (queue.service, queue.index);
        // The flow-state table only needs a stable spread, not the gate's secret key: workers
        // only ever see flows the gate accepted.
        let hasher = FlowHasher::new(0x5eed_0000 ^ (u64::from(index) << 8) ^ service as u64);
        Worker {
            service,
            index,
            counters: queue.counters(),
            queue,
            flows: FlowTable::with_capacity(capacity, hasher),
            timeouts,
            events: EventRing::new(65_536),
            analytics: Analytics::default(),
        }
    }

    /// The service.
    pub fn service(&self) -> Service {
        self.service
    }

    /// The index within the service's pool.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Counters (shareable).
    pub fn counters(&self) -> Arc<WorkerCounters> {
        Arc::clone(&self.counters)
    }

    /// A handle on the event ring (shareable; a reader pops events).
    pub fn events(&self) -> EventRing {
        self.events.clone()
    }

    /// The analytics so far.
    pub fn analytics(&self) -> &Analytics {
        &self.analytics
    }

    fn emit(&mut self, kind: EventKind, status: u16, now_ns: u64, e: &Entry<FlowState>) {
        let s = e.value();
        let ev = Event {
            ts_ns: now_ns,
            kind,
            status,
            key: *e.key(),
            service: s.service.unwrap_or(self.service),
            app_slot: s.app_slot,
            bytes_ingress: s.bytes_ingress,
            bytes_egress: s.bytes_egress,
            packets: s.packets,
            duration_ns: now_ns.saturating_sub(e.created_ns()),
            origin: None,
        };
        self.analytics.record(&ev);
        self.events.push(ev);
        match kind {
            EventKind::Connect => {
                self.counters.connects.add(1);
                self.counters.open.add(1);
            }
            EventKind::Disconnect => {
                self.counters.disconnects.add(1);
                self.counters
                    .open
                    .set(self.counters.open.get().saturating_sub(1));
            }
            _ => {}
        }
    }

    /// Drops every queued item and all flow state (a benchmark's fresh pass).
    pub fn reset(&mut self) {
        while self.queue.pop().is_some() {}
        self.flows.clear();
    }

    /// Processes up to `max` queued items; returns how many.
    pub fn poll(&mut self, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Some(item) = self.queue.pop() else { break };
            self.handle(&item);
            n += 1;
        }
        self.counters.items.add(n as u64);
        n
    }

    fn handle(&mut self, it: &WorkItem) {
        let tcp = it.key.proto == 6;
        let idle = if tcp {
            self.timeouts.tcp_idle_ns
        } else {
            self.timeouts.udp_idle_ns
        };
        let now = it.ts_ns;
        // A flow idle past its timeout ends here (before the sweep found it): report it.
        let stale = self
            .flows
            .peek(&it.key)
            .copied()
            .filter(|e| now.saturating_sub(e.last_seen_ns()) > e.timeout_ns());
        if let Some(old) = stale {
            self.flows.remove(&it.key);
            if !old.value().closed {
                let at = old.last_seen_ns().saturating_add(old.timeout_ns());
                self.emit(EventKind::Disconnect, status::NORMAL_CLOSE, at, &old);
            }
        }
        let known = self.flows.get(&it.key, now).is_some();
        if !known {
            if it.kind == WorkKind::Segment {
                self.counters.adopted.add(1);
            }
            let state = FlowState {
                service: Some(it.service),
                app_slot: it.app_slot,
                tcp,
                negotiated: it.negotiated,
                ..FlowState::default()
            };
            if let crate::flow::Insert::Evicted(old) = self.flows.insert(it.key, state, now, idle) {
                self.counters.evictions.add(1);
                if !old.value().closed {
                    // The evicted flow's state ends here: report it rather than lose it.
                    self.emit(EventKind::Disconnect, status::INTERNAL, now, &old);
                }
            }
            if let Some(e) = self.flows.peek(&it.key).copied() {
                self.emit(EventKind::Connect, status::OPENED, now, &e);
            }
        }
        let closing = self.timeouts.closing_ns;
        let Some(e) = self.flows.get(&it.key, now) else {
            return;
        };
        let s = e.value_mut();
        s.packets += 1;
        s.bytes_ingress += u64::from(it.payload_len);
        if s.closed {
            return;
        }
        let end = if it.tcp_flags & flags::RST != 0 {
            Some(status::CLIENT_RESET)
        } else if it.tcp_flags & flags::FIN != 0 {
            Some(status::NORMAL_CLOSE)
        } else {
            None
        };
        if let Some(code) = end {
            s.closed = true;
            e.set_timeout(closing);
            let snapshot = *e;
            self.emit(EventKind::Disconnect, code, now, &snapshot);
            if code == status::CLIENT_RESET {
                self.flows.remove(&it.key);
            }
        }
    }

    /// Ends flows idle past their timeout (an incremental sweep): `disconnect` with status 200.
    pub fn expire(&mut self, now_ns: u64) {
        let mut ended: [Option<Entry<FlowState>>; 64] = [None; 64];
        let mut n = 0;
        let mut rounds = 0;
        loop {
            self.flows.expire(now_ns, SWEEP_BUCKETS / 8, |e| {
                if !e.value().closed && n < ended.len() {
                    ended[n] = Some(*e);
                    n += 1;
                }
            });
            for slot in ended.iter_mut().take(n) {
                if let Some(e) = slot.take() {
                    let at = e.last_seen_ns().saturating_add(e.timeout_ns()).min(now_ns);
                    self.emit(EventKind::Disconnect, status::NORMAL_CLOSE, at, &e);
                }
            }
            n = 0;
            rounds += 1;
            if rounds >= 8 {
                break;
            }
        }
    }

    /// Ends the worker's run (end of a replay): every flow still open is reported as a
    /// `progress` event with its totals so far (it did not close: the capture ended), then the
    /// flow state is cleared.
    pub fn finish(&mut self, now_ns: u64) {
        let mut open = Vec::new();
        self.flows.drain(|e| {
            if !e.value().closed {
                open.push(*e);
            }
        });
        open.sort_by_key(|e| (e.created_ns(), e.key().sport));
        for e in &open {
            self.emit(EventKind::Progress, status::OPENED, now_ns, e);
        }
        self.counters.open.set(0);
    }

    /// Runs the worker on the current thread until `stop` is set: polls in batches, sweeps idle
    /// flows every 100 ms on a monotonic clock, and backs off when idle (a short spin, then
    /// sleeps of 50 µs to 1 ms) so that a small machine stays usable.
    pub fn run(mut self, stop: Arc<AtomicBool>, clock: impl Fn() -> u64) -> Worker {
        let mut idle_rounds = 0u32;
        let mut last_sweep = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let n = self.poll(256);
            if last_sweep.elapsed() >= Duration::from_millis(100) {
                self.expire(clock());
                last_sweep = Instant::now();
            }
            if n == 0 {
                idle_rounds = idle_rounds.saturating_add(1);
                if idle_rounds < 64 {
                    std::hint::spin_loop();
                } else {
                    let us = (50u64 << (idle_rounds.min(68) - 64)).min(1000);
                    std::thread::sleep(Duration::from_micros(us));
                }
            } else {
                idle_rounds = 0;
            }
        }
        self.poll(usize::MAX);
        self
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::flow::FlowKey;
    use crate::worker::NO_APP;

    const S: u64 = 1_000_000_000;

    fn key(sport: u16, proto: u8) -> FlowKey {
        FlowKey::new(
            proto,
            "192.0.2.1".parse().unwrap(),
            sport,
            "203.0.113.10".parse().unwrap(),
            22,
        )
    }

    fn item(k: FlowKey, kind: WorkKind, flags: u8, payload: u32, ts: u64) -> WorkItem {
        WorkItem {
            key: k,
            kind,
            service: Service::Spectrum,
            app_slot: 3,
            tcp_flags: flags,
            wire_len: 60 + payload,
            payload_len: payload,
            ts_ns: ts,
            queue: 0,
            negotiated: Negotiated::default(),
            handshake: false,
            packet: None,
        }
    }

    fn pools(depth: usize) -> (WorkerPools, Vec<Worker>) {
        let cfg = WorkerConfig {
            cdn: 1,
            spectrum: 2,
            queue_depth: depth,
            flow_capacity: 64,
        };
        WorkerPools::new(
            &cfg,
            Timeouts {
                tcp_idle_ns: 300 * S,
                udp_idle_ns: 30 * S,
                closing_ns: 10 * S,
            },
        )
    }

    fn drain(w: &Worker) -> Vec<Event> {
        let r = w.events();
        core::iter::from_fn(|| r.pop()).collect()
    }

    #[test]
    fn tcp_connect_data_fin() {
        let (p, mut ws) = pools(16);
        assert_eq!((p.count(Service::Cdn), p.count(Service::Spectrum)), (1, 2));
        let k = key(1000, 6);
        p.push(
            Service::Spectrum,
            0,
            item(k, WorkKind::NewFlow, flags::ACK, 0, S),
        )
        .unwrap();
        p.push(
            Service::Spectrum,
            0,
            item(k, WorkKind::Segment, flags::ACK | flags::PSH, 500, 2 * S),
        )
        .unwrap();
        p.push(
            Service::Spectrum,
            0,
            item(k, WorkKind::Segment, flags::ACK | flags::FIN, 0, 3 * S),
        )
        .unwrap();
        p.push(
            Service::Spectrum,
            0,
            item(k, WorkKind::Segment, flags::ACK, 0, 3 * S + 1),
        )
        .unwrap();
        let w = ws
            .iter_mut()
            .find(|w| w.service() == Service::Spectrum && w.index() == 0)
            .unwrap();
        assert_eq!(w.poll(usize::MAX), 4);
        let ev = drain(w);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(
            (ev[0].kind, ev[0].status),
            (EventKind::Connect, status::OPENED)
        );
        assert_eq!(
            (ev[1].kind, ev[1].status),
            (EventKind::Disconnect, status::NORMAL_CLOSE)
        );
        assert_eq!(ev[1].bytes_ingress, 500);
        assert_eq!(ev[1].duration_ns, 2 * S);
        assert_eq!(ev[1].app_slot, 3);
        let c = w.counters();
        assert_eq!(
            (
                c.connects.get(),
                c.disconnects.get(),
                c.open.get(),
                c.adopted.get()
            ),
            (1, 1, 0, 0)
        );
    }

    #[test]
    fn client_rst_is_499() {
        let (p, mut ws) = pools(16);
        let k = key(1001, 6);
        p.push(
            Service::Spectrum,
            1,
            item(k, WorkKind::NewFlow, flags::ACK, 0, S),
        )
        .unwrap();
        p.push(
            Service::Spectrum,
            1,
            item(k, WorkKind::Segment, flags::RST, 0, 2 * S),
        )
        .unwrap();
        let w = ws
            .iter_mut()
            .find(|w| w.service() == Service::Spectrum && w.index() == 1)
            .unwrap();
        w.poll(usize::MAX);
        let ev = drain(w);
        assert_eq!(
            ev.last().map(|e| (e.kind, e.status)),
            Some((EventKind::Disconnect, status::CLIENT_RESET))
        );
    }

    #[test]
    fn idle_udp_flows_disconnect_by_sweep_or_on_return() {
        let (p, mut ws) = pools(16);
        let w = &mut ws[0];
        let k = FlowKey::new(
            17,
            "192.0.2.1".parse().unwrap(),
            5,
            "203.0.113.200".parse().unwrap(),
            443,
        );
        let mut it = item(k, WorkKind::NewFlow, 0, 100, S);
        it.service = Service::Cdn;
        it.app_slot = NO_APP;
        p.push(Service::Cdn, 0, it.clone()).unwrap();
        w.poll(usize::MAX);
        w.expire(20 * S);
        assert_eq!(drain(w).len(), 1, "connect only: not idle yet");
        w.expire(40 * S);
        let ev = drain(w);
        assert_eq!(
            ev.iter().map(|e| e.kind).collect::<Vec<_>>(),
            vec![EventKind::Disconnect]
        );
        assert_eq!(ev[0].ts_ns, 31 * S, "ends when it went idle");
        // A flow that comes back after its timeout before a sweep: closed, then opened again.
        p.push(Service::Cdn, 0, it.clone()).unwrap();
        it.kind = WorkKind::Segment;
        it.ts_ns = 100 * S;
        p.push(Service::Cdn, 0, it).unwrap();
        w.poll(usize::MAX);
        let kinds: Vec<_> = drain(w).iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![
                EventKind::Connect,
                EventKind::Disconnect,
                EventKind::Connect
            ]
        );
    }

    #[test]
    fn full_queue_gives_the_item_back() {
        let (p, _ws) = pools(2);
        let it = item(key(1, 6), WorkKind::NewFlow, flags::ACK, 0, S);
        assert!(p.push(Service::Spectrum, 0, it.clone()).is_ok());
        assert!(p.push(Service::Spectrum, 0, it.clone()).is_ok());
        assert_eq!(p.push(Service::Spectrum, 0, it.clone()), Err(it.clone()));
        assert_eq!(p.backlog(Service::Spectrum, 0), 2);
        assert!(p.push(Service::Spectrum, 9, it).is_err(), "no such worker");
    }

    #[test]
    fn finish_reports_open_flows_as_progress_and_analytics_percentiles() {
        let (p, mut ws) = pools(256);
        for i in 0..100u16 {
            let k = key(2000 + i, 6);
            p.push(
                Service::Spectrum,
                0,
                item(k, WorkKind::NewFlow, flags::ACK, 0, S),
            )
            .unwrap();
            let end = S + u64::from(i + 1) * 1_000_000; // 1..=100 ms
            p.push(
                Service::Spectrum,
                0,
                item(k, WorkKind::Segment, flags::ACK | flags::FIN, 10, end),
            )
            .unwrap();
        }
        p.push(
            Service::Spectrum,
            0,
            item(key(9999, 6), WorkKind::Segment, flags::ACK, 7, S),
        )
        .unwrap();
        let w = ws
            .iter_mut()
            .find(|w| w.service() == Service::Spectrum && w.index() == 0)
            .unwrap();
        w.poll(usize::MAX);
        assert_eq!(
            w.counters().adopted.get(),
            1,
            "a segment of an unknown flow is adopted"
        );
        w.finish(5 * S);
        let rows: Vec<_> = w.analytics().rows().collect();
        let d = rows
            .iter()
            .find(|r| r.event == EventKind::Disconnect)
            .unwrap();
        assert_eq!((d.count, d.bytes_ingress), (100, 1000));
        assert_eq!(d.duration_median_ms, 50);
        assert_eq!(d.duration_p90_ms, 90);
        assert_eq!(d.duration_p99_ms, 99);
        assert!((d.duration_avg_ms - 50.5).abs() < 0.1);
        let pr = rows
            .iter()
            .find(|r| r.event == EventKind::Progress)
            .unwrap();
        assert_eq!((pr.count, pr.bytes_ingress), (1, 7));
        let mut merged = Analytics::default();
        merged.merge(w.analytics());
        merged.merge(w.analytics());
        assert_eq!(
            merged
                .rows()
                .find(|r| r.event == EventKind::Disconnect)
                .unwrap()
                .count,
            200
        );
    }

    #[test]
    fn event_ring_drops_the_oldest_when_full() {
        let r = EventRing::new(2);
        let mut e = Event {
            ts_ns: 1,
            kind: EventKind::Connect,
            status: 0,
            key: key(1, 6),
            service: Service::Cdn,
            app_slot: NO_APP,
            bytes_ingress: 0,
            bytes_egress: 0,
            packets: 0,
            duration_ns: 0,
            origin: None,
        };
        for ts in 1..=3 {
            e.ts_ns = ts;
            r.push(e);
        }
        assert_eq!(r.dropped(), 1);
        assert_eq!(r.pop().map(|e| e.ts_ns), Some(2));
        assert_eq!(r.pop().map(|e| e.ts_ns), Some(3));
        assert!(r.is_empty());
    }

    #[test]
    fn run_stops_on_request() {
        let (p, mut ws) = pools(64);
        let w = ws.remove(1);
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = Arc::clone(&stop);
        let h = std::thread::spawn(move || w.run(s2, || 0));
        p.push(
            Service::Spectrum,
            0,
            item(key(7, 6), WorkKind::NewFlow, flags::ACK, 0, S),
        )
        .unwrap();
        let started = Instant::now();
        while p.backlog(Service::Spectrum, 0) > 0 && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::Relaxed);
        let w = h.join().unwrap();
        assert_eq!(w.counters().connects.get(), 1);
    }
}
