//! The proxy workers: one thread each, with a single-threaded tokio runtime, draining the queue
//! the fast path's queue threads push into (sleeping on its doorbell when it is empty).
//!
//! For each item:
//! - a TCP new flow (a validated cookie ACK): the handoff ([`crate::repair`]), then a task that
//!   connects to the flow's origin (the first candidate that accepts), writes the PROXY header
//!   when configured, and relays ([`crate::relay`]);
//! - a TCP segment of a flow this worker handed off: it raced the handoff (it reached userspace
//!   before the socket existed), so it is put back into the kernel ([`crate::repair::Reinjector`]);
//!   a segment that repeats the validating ACK of a flow whose handoff failed retries the
//!   handoff; any other segment is stray and dropped;
//! - a UDP datagram: to its flow's origin socket, made on the flow's first datagram
//!   ([`crate::udp`]).
//!
//! Configuration changes are picked up from the published tables: a new app serves new flows at
//! once; a connection whose app was deleted, or whose origin is no longer the app's, drains
//! (it may run `drain_secs` more, then is closed); a connection whose client the access rules
//! now block is closed with status 403. New flows always go to the current origins.
//!
//! Every connection yields one `connect` event and one `disconnect`, `originError` or
//! `clientFiltered` event, with the Spectrum event log's status codes.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use fastpath::flow::{FlowHasher, FlowKey};
use fastpath::tables::{ProxyProtocol, SharedTables};
use fastpath::verdict::Service;
use fastpath::wire::checksum;
use fastpath::worker::events::status;
use fastpath::worker::{
    Event, EventKind, EventRing, Negotiated, Packet, WorkItem, WorkKind, WorkerCounters,
    WorkerQueue,
};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::header::{Transport, proxy_v1, proxy_v2};
use crate::relay::{Control, End, RelayCounters, RelayParams, relay, write_all};
use crate::repair::{Handoff, HandoffError, Reinjector, handoff, reset};
use crate::stats::{AppCounters, ProxyStats};
use crate::target::{Target, Targets};
use crate::udp::{UdpFlow, edge_socket, origin_socket};

/// How the workers carry flows (the `[proxy]` section of the configuration; changes apply to
/// new connections, and `drain_timeout` to drains that start after the change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long an origin may take to accept a connection (then 522).
    pub connect_timeout: Duration,
    /// How long a TCP connection may be idle both ways.
    pub idle_timeout: Duration,
    /// How long a UDP flow may be idle.
    pub udp_idle_timeout: Duration,
    /// How long connections of a removed or moved app may still run.
    pub drain_timeout: Duration,
    /// Connections (TCP) plus flows (UDP) one worker holds at most.
    pub max_connections: usize,
    /// Bytes buffered per connection, both directions together.
    pub buffer_bytes: usize,
    /// Relay TCP with `splice(2)`.
    pub splice: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(3600),
            udp_idle_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(300),
            max_connections: 65_536,
            buffer_bytes: 1 << 20,
            splice: true,
        }
    }
}

/// Candidates tried for one connection at most (CDN failover).
const MAX_TRIES: usize = 3;
/// Failed handoffs remembered for a retry, per worker.
const MAX_RETRIES_KEPT: usize = 4096;
/// How long a failed handoff waits for its retry.
const RETRY_KEPT: Duration = Duration::from_secs(30);

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// One open TCP connection, as the worker tracks it.
#[derive(Debug)]
struct Conn {
    service: Service,
    app_slot: u32,
    origin: Cell<SocketAddr>,
    /// The handshake it came from (client ISN, cookie): a repeat of it is a duplicate, another
    /// one a new connection on a reused tuple.
    isns: (u32, u32),
    control: Rc<Control>,
}

/// A worker's state, shared by its tasks (one thread).
struct Ctx {
    queue: WorkerQueue,
    service: Service,
    tables: Arc<SharedTables>,
    settings: Arc<ArcSwap<Settings>>,
    stats: Arc<ProxyStats>,
    counters: Arc<WorkerCounters>,
    events: EventRing,
    hasher: FlowHasher,
    reinjector: Reinjector,
    targets: RefCell<Rc<Targets>>,
    conns: RefCell<HashMap<FlowKey, Conn>>,
    udp: RefCell<HashMap<FlowKey, Rc<UdpFlow>>>,
    edge_udp: RefCell<HashMap<SocketAddr, Rc<std::net::UdpSocket>>>,
    retry: RefCell<HashMap<FlowKey, (Negotiated, Instant)>>,
    scratch: RefCell<Vec<u8>>,
    ingress: Arc<AtomicU64>,
    egress: Arc<AtomicU64>,
    backpressure: Arc<AtomicU64>,
}

/// The running proxy workers of one fast path.
#[derive(Debug)]
pub struct Proxy {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    settings: Arc<ArcSwap<Settings>>,
    stats: Arc<ProxyStats>,
}

/// What one worker starts with.
struct Start {
    queue: WorkerQueue,
    tables: Arc<SharedTables>,
    settings: Arc<ArcSwap<Settings>>,
    stats: Arc<ProxyStats>,
    events: EventRing,
    hasher: FlowHasher,
    reinjector: Reinjector,
    feed: Option<Feed>,
}

/// The benchmarks' baseline: a plain kernel listener whose accepted connections one worker
/// carries as flows of one app (see [`Proxy::start_with_listener`]).
#[derive(Debug)]
pub struct Feed {
    /// The listener (non-blocking).
    pub listener: std::net::TcpListener,
    /// The service of its connections.
    pub service: Service,
    /// The app slot of its connections.
    pub app_slot: u32,
}

impl Proxy {
    /// Starts one worker thread per queue. `settings` is shared with whoever changes them (the
    /// control plane's installer). `hasher` must be the pipeline's flow hasher (the same on
    /// every queue and node with the same seed): it picks origins and pool members. Returns the
    /// workers and their event rings (for the control socket).
    ///
    /// # Errors
    /// No raw sockets for the re-injection (`CAP_NET_RAW`), or a thread could not start.
    pub fn start(
        queues: Vec<WorkerQueue>,
        tables: Arc<SharedTables>,
        settings: Arc<ArcSwap<Settings>>,
        hasher: FlowHasher,
    ) -> io::Result<(Proxy, Vec<EventRing>)> {
        Proxy::start_with_listener(queues, tables, settings, hasher, None)
    }

    /// As [`Proxy::start`], and the first worker of `feed`'s service also carries the
    /// connections a plain kernel listener accepts: the baseline the handoff is measured
    /// against (`fastpath run --kernel-listener`), the same worker code from the accepted
    /// socket on.
    ///
    /// # Errors
    /// As [`Proxy::start`].
    pub fn start_with_listener(
        queues: Vec<WorkerQueue>,
        tables: Arc<SharedTables>,
        settings: Arc<ArcSwap<Settings>>,
        hasher: FlowHasher,
        mut feed: Option<Feed>,
    ) -> io::Result<(Proxy, Vec<EventRing>)> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ProxyStats::default());
        let mut threads = Vec::new();
        let mut rings = Vec::new();
        for queue in queues {
            let events = EventRing::new(65_536);
            rings.push(events.clone());
            let name = format!("fp-proxy-{}-{}", queue.service(), queue.index());
            let service = queue.service();
            let start = Start {
                queue,
                tables: Arc::clone(&tables),
                settings: Arc::clone(&settings),
                stats: Arc::clone(&stats),
                events,
                hasher: hasher.clone(),
                reinjector: Reinjector::new()?,
                feed: if feed.as_ref().is_some_and(|f| f.service == service) {
                    feed.take()
                } else {
                    None
                },
            };
            let stop = Arc::clone(&stop);
            threads.push(
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || run_thread(start, &stop))?,
            );
        }
        Ok((
            Proxy {
                stop,
                threads,
                settings,
                stats,
            },
            rings,
        ))
    }

    /// Replaces the settings (new connections take them at once).
    pub fn set_settings(&self, s: Settings) {
        self.settings.store(Arc::new(s));
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// The traffic and analytics the workers measured.
    pub fn stats(&self) -> Arc<ProxyStats> {
        Arc::clone(&self.stats)
    }

    /// Stops every worker: open connections are closed.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn run_thread(s: Start, stop: &AtomicBool) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("proxy worker: cannot start its runtime: {e}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    let feed = s.feed;
    let ctx = Rc::new(Ctx {
        service: s.queue.service(),
        counters: s.queue.counters(),
        targets: RefCell::new(Rc::new(Targets::new(s.tables.load_full()))),
        queue: s.queue,
        tables: s.tables,
        settings: s.settings,
        stats: s.stats,
        events: s.events,
        hasher: s.hasher,
        reinjector: s.reinjector,
        conns: RefCell::default(),
        udp: RefCell::default(),
        edge_udp: RefCell::default(),
        retry: RefCell::default(),
        scratch: RefCell::new(Vec::with_capacity(65_536)),
        ingress: Arc::default(),
        egress: Arc::default(),
        backpressure: Arc::default(),
    });
    if let Some(f) = feed {
        let me = Rc::clone(&ctx);
        local.spawn_local(async move {
            let _g = f.listener.set_nonblocking(true);
            match tokio::net::TcpListener::from_std(f.listener) {
                Ok(l) => me.feed(l, f.service, f.app_slot).await,
                Err(e) => tracing::error!("proxy worker: cannot take the listener: {e}"),
            }
        });
    }
    local.block_on(&rt, ctx.run(stop));
}

impl Ctx {
    async fn run(self: &Rc<Self>, stop: &AtomicBool) {
        let bell = match self
            .queue
            .doorbell()
            .receiver()
            .try_clone()
            .and_then(tokio::net::UnixDatagram::from_std)
        {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("proxy worker: cannot watch its doorbell: {e}");
                return;
            }
        };
        while !stop.load(Ordering::Relaxed) {
            let mut n = 0u64;
            while let Some(item) = self.queue.pop() {
                self.handle(item);
                n += 1;
                if n.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
            self.counters.items.add(n);
            self.publish_counters();
            self.refresh();
            let bellr = self.queue.doorbell();
            bellr.arm();
            if !self.queue.is_empty() {
                bellr.disarm();
                continue;
            }
            tokio::select! {
                _ = bell.readable() => {
                    let mut b = [0u8; 16];
                    while bell.try_recv(&mut b).is_ok() {}
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => bellr.disarm(),
            }
        }
        // Open connections close with the runtime (their sockets are dropped).
        self.publish_counters();
    }

    fn publish_counters(&self) {
        let c = &self.counters;
        c.bytes_ingress.set(self.ingress.load(Ordering::Relaxed));
        c.bytes_egress.set(self.egress.load(Ordering::Relaxed));
        c.backpressure
            .set(self.backpressure.load(Ordering::Relaxed));
        c.open
            .set((self.conns.borrow().len() + self.udp.borrow().len()) as u64);
    }

    /// The destinations of the current configuration; on a new version, reconsiders every open
    /// connection (drain, access rules).
    fn targets(&self) -> Rc<Targets> {
        let version = self.tables.load().version();
        if self.targets.borrow().version() != version {
            let t = Rc::new(Targets::new(self.tables.load_full()));
            *self.targets.borrow_mut() = Rc::clone(&t);
            self.reconsider(&t);
        }
        Rc::clone(&self.targets.borrow())
    }

    fn refresh(&self) {
        let _ = self.targets();
        let now = Instant::now();
        self.retry
            .borrow_mut()
            .retain(|_, (_, at)| now.duration_since(*at) < RETRY_KEPT);
    }

    fn reconsider(&self, t: &Targets) {
        let drain = self.settings.load().drain_timeout;
        let deadline = Instant::now() + drain;
        let judge = |service, slot, key: &FlowKey, origin, control: &Control| {
            if t.blocks(service, slot, key) {
                control.filtered.set(true);
                control.wake.notify_one();
            } else if !t.still_serves(service, slot, key, origin) {
                if control.deadline.get().is_none() {
                    control.deadline.set(Some(deadline));
                    control.wake.notify_one();
                }
            } else if control.deadline.take().is_some() {
                // Moved back before the deadline: it may run on.
                control.wake.notify_one();
            }
        };
        for (k, c) in self.conns.borrow().iter() {
            judge(c.service, c.app_slot, k, c.origin.get(), &c.control);
        }
        for (k, f) in self.udp.borrow().iter() {
            judge(self.service, f.app_slot, k, f.origin, &f.control);
        }
    }

    fn handle(self: &Rc<Self>, item: WorkItem) {
        match item.key.proto {
            6 => self.tcp(item),
            17 => self.datagram(item),
            _ => self.counters.stray.add(1),
        }
    }

    fn open_count(&self) -> usize {
        self.conns.borrow().len() + self.udp.borrow().len()
    }

    fn tcp(self: &Rc<Self>, item: WorkItem) {
        let key = item.key;
        let existing = self.conns.borrow().get(&key).map(|c| c.isns);
        if let Some(isns) = existing {
            let renewed = item.kind == WorkKind::NewFlow
                && isns != (item.negotiated.client_isn, item.negotiated.edge_isn);
            if !renewed {
                // It raced the handoff: the socket exists now.
                self.reinject(&item);
                return;
            }
            // A new connection on a tuple whose old one is ending: the old one goes.
            if let Some(old) = self.conns.borrow_mut().remove(&key) {
                old.control.deadline.set(Some(Instant::now()));
                old.control.wake.notify_one();
            }
        }
        let negotiated = match item.kind {
            WorkKind::NewFlow => item.negotiated,
            WorkKind::Segment if item.handshake => {
                let Some((mut n, _)) = self.retry.borrow_mut().remove(&key) else {
                    self.counters.stray.add(1);
                    return;
                };
                if let Some(w) = item.packet.as_ref().and_then(|p| p.l4().get(14..16)) {
                    n.client_window = u16::from_be_bytes([w[0], w[1]]);
                }
                n
            }
            WorkKind::Segment => {
                self.counters.stray.add(1);
                return;
            }
        };
        self.open_tcp(&item, negotiated);
    }

    fn reinject(&self, item: &WorkItem) {
        let Some(p) = &item.packet else {
            self.counters.stray.add(1);
            return;
        };
        match self.reinjector.send(p.ip(), item.key.dst_addr()) {
            Ok(()) => self.counters.reinjected.add(1),
            Err(_) => self.counters.stray.add(1),
        }
    }

    fn open_tcp(self: &Rc<Self>, item: &WorkItem, negotiated: Negotiated) {
        let key = item.key;
        let targets = self.targets();
        let hash = self.hasher.hash(&key);
        let Some(target) = targets.target(item.service, item.app_slot, &key, hash) else {
            // The app was deleted after the gate classified the flow: nothing to carry it to.
            self.counters.stray.add(1);
            return;
        };
        if let Some(p) = &item.packet
            && !l4_checksum_ok(p, &key)
        {
            self.counters.bad_checksum.add(1);
            return;
        }
        let client = SocketAddr::new(key.src_addr(), key.sport);
        let edge = SocketAddr::new(key.dst_addr(), key.dport);
        let payload = item.packet.as_ref().map_or(&[][..], Packet::payload);
        let h = Handoff {
            client,
            edge,
            negotiated: &negotiated,
            payload,
            now_ms: (wall_ns() / 1_000_000) as u32,
        };
        let stream = match handoff(&h) {
            Ok(s) => s,
            Err(e) => {
                let c = &self.counters;
                match e {
                    HandoffError::InUse(..) => c.handoff_in_use.add(1),
                    HandoffError::NoMemory(_) => c.handoff_no_memory.add(1),
                    HandoffError::FdLimit(_) => c.handoff_fd_limit.add(1),
                    HandoffError::Other { .. } => c.handoff_failed.add(1),
                }
                tracing::debug!("handoff of {client} -> {edge} failed: {e}");
                let mut r = self.retry.borrow_mut();
                if r.len() >= MAX_RETRIES_KEPT {
                    r.clear();
                }
                r.insert(key, (negotiated, Instant::now()));
                return;
            }
        };
        self.counters.handoffs.add(1);
        self.adopt(
            stream,
            key,
            item.service,
            item.app_slot,
            target,
            (negotiated.client_isn, negotiated.edge_isn),
        );
    }

    /// Takes an established client socket (a handoff, or an accepted connection of the
    /// kernel-listener baseline) and carries it to `target`.
    fn adopt(
        self: &Rc<Self>,
        stream: std::net::TcpStream,
        key: FlowKey,
        service: Service,
        app_slot: u32,
        target: Target,
        isns: (u32, u32),
    ) {
        if self.open_count() >= self.settings.load().max_connections {
            reset(&stream);
            self.counters.limit_connections.add(1);
            return;
        }
        let control = Rc::new(Control::default());
        self.conns.borrow_mut().insert(
            key,
            Conn {
                service,
                app_slot,
                origin: Cell::new(target.candidates[0]),
                isns,
                control: Rc::clone(&control),
            },
        );
        let app = self.stats.app(service, app_slot);
        let started = wall_ns();
        self.emit(
            EventKind::Connect,
            status::OPENED,
            &key,
            app_slot,
            started,
            (0, 0),
            Some(target.candidates[0]),
            &app,
        );
        let me = Rc::clone(self);
        tokio::task::spawn_local(async move {
            me.serve_tcp(key, app_slot, stream, target, control, app, started)
                .await;
        });
    }

    /// The kernel-listener baseline: connections the kernel accepted on `l` are carried like
    /// handed-off ones, as flows of `service` and `app_slot`.
    async fn feed(self: Rc<Self>, l: tokio::net::TcpListener, service: Service, app_slot: u32) {
        loop {
            let Ok((s, peer)) = l.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let (Ok(local), Ok(s)) = (s.local_addr(), s.into_std()) else {
                continue;
            };
            let key = FlowKey::new(6, peer.ip(), peer.port(), local.ip(), local.port());
            let hash = self.hasher.hash(&key);
            let Some(target) = self.targets().target(service, app_slot, &key, hash) else {
                self.counters.stray.add(1);
                continue;
            };
            self.adopt(s, key, service, app_slot, target, (0, 0));
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn serve_tcp(
        self: Rc<Self>,
        key: FlowKey,
        app_slot: u32,
        stream: std::net::TcpStream,
        target: Target,
        control: Rc<Control>,
        app: Arc<AppCounters>,
        started: u64,
    ) {
        let client_addr = SocketAddr::new(key.src_addr(), key.sport);
        let edge_addr = SocketAddr::new(key.dst_addr(), key.dport);
        let done = |me: &Ctx| {
            // Only this connection's entry (a renewed tuple may have replaced it).
            let mut conns = me.conns.borrow_mut();
            if conns
                .get(&key)
                .is_some_and(|c| Rc::ptr_eq(&c.control, &control))
            {
                conns.remove(&key);
            }
        };
        let Ok(client) = TcpStream::from_std(stream) else {
            done(&self);
            return;
        };
        let settings = self.settings.load_full();
        let mut failure = (status::ORIGIN_UNKNOWN, target.candidates[0]);
        let mut origin = None;
        for cand in target.candidates.iter().take(MAX_TRIES) {
            match tokio::time::timeout(settings.connect_timeout, TcpStream::connect(cand)).await {
                Ok(Ok(s)) => {
                    origin = Some((s, *cand));
                    break;
                }
                Ok(Err(e)) => {
                    let code = match e.raw_os_error() {
                        Some(libc::ECONNREFUSED) => status::ORIGIN_REFUSED,
                        Some(libc::ENETUNREACH | libc::EHOSTUNREACH) => status::ORIGIN_UNREACHABLE,
                        Some(libc::ETIMEDOUT) => status::ORIGIN_CONNECT_TIMEOUT,
                        _ => status::ORIGIN_UNKNOWN,
                    };
                    failure = (code, *cand);
                    if code == status::ORIGIN_CONNECT_TIMEOUT || code == status::ORIGIN_UNKNOWN {
                        break;
                    }
                }
                Err(_) => {
                    failure = (status::ORIGIN_CONNECT_TIMEOUT, *cand);
                    break;
                }
            }
        }
        let Some((origin, origin_addr)) = origin else {
            reset(&client);
            drop(client);
            self.counters.origin_errors.add(1);
            self.emit(
                EventKind::OriginError,
                failure.0,
                &key,
                app_slot,
                started,
                (0, 0),
                Some(failure.1),
                &app,
            );
            done(&self);
            return;
        };
        if let Some(c) = self.conns.borrow().get(&key) {
            c.origin.set(origin_addr);
        }
        let _ = client.set_nodelay(true);
        let _ = origin.set_nodelay(true);
        let header = match target.proxy_protocol {
            ProxyProtocol::V1 => Some(proxy_v1(client_addr, edge_addr)),
            ProxyProtocol::V2 => Some(proxy_v2(client_addr, edge_addr, Transport::Stream)),
            ProxyProtocol::Off | ProxyProtocol::Simple => None,
        };
        let (end, up, down) = match header {
            Some(h) if write_all(&origin, h.as_bytes()).await.is_err() => (
                End::Failed(
                    crate::relay::Side::Origin,
                    io::Error::from_raw_os_error(libc::EPIPE),
                ),
                0,
                0,
            ),
            _ => {
                let params = RelayParams {
                    buffer: settings.buffer_bytes,
                    splice: settings.splice,
                    idle: settings.idle_timeout,
                };
                let counters = RelayCounters {
                    app: Arc::clone(&app),
                    ingress: Arc::clone(&self.ingress),
                    egress: Arc::clone(&self.egress),
                    backpressure: Arc::clone(&self.backpressure),
                };
                relay(&client, &origin, &params, &counters, &control).await
            }
        };
        if let End::Failed(crate::relay::Side::Origin, _) = &end
            && up == 0
            && down == 0
        {
            reset(&client);
        }
        if matches!(end, End::Drained) {
            self.counters.drained.add(1);
        }
        let kind = if matches!(end, End::Filtered) {
            EventKind::ClientFiltered
        } else {
            EventKind::Disconnect
        };
        self.emit(
            kind,
            end.status(),
            &key,
            app_slot,
            started,
            (up, down),
            Some(origin_addr),
            &app,
        );
        done(&self);
    }

    fn datagram(self: &Rc<Self>, item: WorkItem) {
        let Some(p) = item.packet.as_ref() else {
            self.counters.stray.add(1);
            return;
        };
        if !l4_checksum_ok(p, &item.key) {
            self.counters.bad_checksum.add(1);
            return;
        }
        let key = item.key;
        let existing = self.udp.borrow().get(&key).cloned();
        let flow = match existing {
            Some(f) => f,
            None => match self.open_udp(&item) {
                Some(f) => f,
                None => return,
            },
        };
        let payload = p.payload();
        flow.datagrams.set(flow.datagrams.get() + 1);
        flow.last.set(Instant::now());
        let mut out = self.scratch.borrow_mut();
        let d = flow.to_origin(payload, &mut out);
        if flow.send.send(d).is_ok() {
            let n = payload.len() as u64;
            flow.bytes_in.set(flow.bytes_in.get() + n);
            flow.app.bytes_ingress.fetch_add(n, Ordering::Relaxed);
            self.ingress.fetch_add(n, Ordering::Relaxed);
        } else {
            self.backpressure.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn edge_socket(&self, edge: SocketAddr) -> Option<Rc<std::net::UdpSocket>> {
        if let Some(s) = self.edge_udp.borrow().get(&edge) {
            return Some(Rc::clone(s));
        }
        let s = Rc::new(edge_socket(edge).ok()?);
        self.edge_udp.borrow_mut().insert(edge, Rc::clone(&s));
        Some(s)
    }

    fn open_udp(self: &Rc<Self>, item: &WorkItem) -> Option<Rc<UdpFlow>> {
        let key = item.key;
        let targets = self.targets();
        let hash = self.hasher.hash(&key);
        let Some(target) = targets.target(item.service, item.app_slot, &key, hash) else {
            self.counters.stray.add(1);
            return None;
        };
        if self.open_count() >= self.settings.load().max_connections {
            self.counters.limit_connections.add(1);
            return None;
        }
        let client = SocketAddr::new(key.src_addr(), key.sport);
        let edge = SocketAddr::new(key.dst_addr(), key.dport);
        let origin = target.candidates[0];
        let (Ok((sock, send)), Some(edge_sock)) = (origin_socket(origin), self.edge_socket(edge))
        else {
            self.counters.handoff_failed.add(1);
            return None;
        };
        let app = self.stats.app(item.service, item.app_slot);
        let started = wall_ns();
        let flow = Rc::new(UdpFlow {
            sock,
            send,
            client,
            edge,
            origin,
            mode: target.proxy_protocol,
            sent_first: Cell::new(false),
            last: Cell::new(Instant::now()),
            bytes_in: Cell::new(0),
            bytes_out: Cell::new(0),
            datagrams: Cell::new(0),
            started_ns: started,
            app_slot: item.app_slot,
            app: Arc::clone(&app),
            control: Rc::new(Control::default()),
        });
        self.udp.borrow_mut().insert(key, Rc::clone(&flow));
        self.emit(
            EventKind::Connect,
            status::OPENED,
            &key,
            item.app_slot,
            started,
            (0, 0),
            Some(origin),
            &app,
        );
        let me = Rc::clone(self);
        let f = Rc::clone(&flow);
        let slot = item.app_slot;
        tokio::task::spawn_local(async move { me.serve_udp(key, slot, f, edge_sock).await });
        Some(flow)
    }

    async fn serve_udp(
        self: Rc<Self>,
        key: FlowKey,
        app_slot: u32,
        flow: Rc<UdpFlow>,
        edge: Rc<std::net::UdpSocket>,
    ) {
        let mut buf = vec![0u8; 65_536];
        let code = loop {
            if flow.control.filtered.get() {
                break status::FIREWALL_DENY;
            }
            let idle = self.settings.load().udp_idle_timeout;
            let idle_at = flow.last.get() + idle;
            let deadline = flow.control.deadline.get();
            let now = Instant::now();
            if idle_at <= now || deadline.is_some_and(|d| d <= now) {
                break status::NORMAL_CLOSE;
            }
            let wake = deadline.map_or(idle_at, |d| d.min(idle_at));
            tokio::select! {
                r = flow.sock.recv(&mut buf) => {
                    // An error is an ICMP error from the origin (port unreachable): the flow
                    // stays, the datagram is lost, as it would be without us.
                    if let Ok(n) = r {
                        match flow.to_client(&buf[..n]) {
                            Some(payload) => {
                                if edge.send_to(payload, flow.client).is_ok() {
                                    let n = payload.len() as u64;
                                    flow.bytes_out.set(flow.bytes_out.get() + n);
                                    flow.app.bytes_egress.fetch_add(n, Ordering::Relaxed);
                                    self.egress.fetch_add(n, Ordering::Relaxed);
                                }
                                flow.last.set(Instant::now());
                            }
                            None => self.counters.spp_invalid.add(1),
                        }
                    }
                }
                () = flow.control.wake.notified() => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        };
        if flow.control.deadline.get().is_some() && code == status::NORMAL_CLOSE {
            self.counters.drained.add(1);
        }
        let mut udp = self.udp.borrow_mut();
        if udp.get(&key).is_some_and(|f| Rc::ptr_eq(f, &flow)) {
            udp.remove(&key);
        }
        drop(udp);
        let kind = if code == status::FIREWALL_DENY {
            EventKind::ClientFiltered
        } else {
            EventKind::Disconnect
        };
        let e = Event {
            ts_ns: wall_ns(),
            kind,
            status: code,
            key,
            service: self.service,
            app_slot,
            bytes_ingress: flow.bytes_in.get(),
            bytes_egress: flow.bytes_out.get(),
            packets: flow.datagrams.get(),
            duration_ns: wall_ns().saturating_sub(flow.started_ns),
            origin: Some(flow.origin),
        };
        self.push_event(e, &flow.app);
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        kind: EventKind,
        code: u16,
        key: &FlowKey,
        app_slot: u32,
        started_ns: u64,
        (bytes_in, bytes_out): (u64, u64),
        origin: Option<SocketAddr>,
        app: &AppCounters,
    ) {
        let now = wall_ns();
        let e = Event {
            ts_ns: now,
            kind,
            status: code,
            key: *key,
            service: self.service,
            app_slot,
            bytes_ingress: bytes_in,
            bytes_egress: bytes_out,
            packets: 0,
            duration_ns: now.saturating_sub(started_ns),
            origin,
        };
        self.push_event(e, app);
    }

    fn push_event(&self, e: Event, app: &AppCounters) {
        self.stats.record(&e, app);
        match e.kind {
            EventKind::Connect => self.counters.connects.add(1),
            EventKind::Progress => {}
            _ => self.counters.disconnects.add(1),
        }
        self.events.push(e);
        self.publish_counters();
    }
}

/// Whether the TCP or UDP checksum of `p` holds (a UDP checksum of 0 over IPv4 means none).
pub fn l4_checksum_ok(p: &Packet, key: &FlowKey) -> bool {
    let l4 = p.l4();
    let acc = match (key.src_addr(), key.dst_addr()) {
        (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
            if key.proto == 17 && l4.get(6..8) == Some(&[0, 0]) {
                return true;
            }
            checksum::pseudo_v4(s, d, key.proto, l4.len() as u16)
        }
        (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => {
            checksum::pseudo_v6(&s, &d, key.proto, l4.len() as u32)
        }
        _ => return false,
    };
    checksum::fold(checksum::sum(acc, l4)) == 0
}
