//! The per-packet pipeline: one verdict and one reason for every frame.
//!
//! Checks, in this order (the user-facing contract; see `README.md`):
//! 1. Not Ethernet II + up to two VLAN tags carrying IPv4/IPv6: `pass`/`not_ip`. A frame too
//!    short for its headers: `drop`/`malformed`.
//! 2. Invalid IPv4 (version, IHL < 5, total length beyond the frame, bad header checksum) or
//!    IPv6 (payload length beyond the frame, more than 8 extension headers, a header past the
//!    payload): `drop`/`malformed`.
//! 3. Destination outside every onboarded prefix: `pass`/`not_ours`.
//! 4. IPv4 fragment or IPv6 fragment header: `drop`/`fragment`.
//! 5. TCP or UDP header cut short, TCP data offset < 5, UDP length < 8 or past the payload:
//!    `drop`/`malformed`.
//! 6. No binding covers the destination: `drop`/`no_binding`.
//! 7. Spectrum binding: no app for (protocol, destination, port): TCP/UDP `drop`/
//!    `unconfigured_port` (`tx`/`reset` when the binding says `reset`), other protocols
//!    `drop`/`unconfigured_protocol`. CDN binding: ports outside `tcp_ports`/`udp_ports` are
//!    `unconfigured_port` (port 80 under `https_only`: `tx`/`reset`), other protocols
//!    `unconfigured_protocol`.
//! 8. Source blocked by the access rules (CDN always, Spectrum apps with `ip_firewall`):
//!    `drop`/`firewall_block`.
//! 9. TCP: SYN without ACK (nor RST, nor FIN) → `tx`/`syn_cookie`. A segment of a known flow →
//!    `forward`/`flow` (RST ends the flow; FIN starts a short linger). ACK without SYN/RST of no
//!    known flow whose ack - 1 is a valid cookie → `forward`/`new_flow`. Else `drop`/
//!    `out_of_state`. UDP: first datagram of a 5-tuple → `forward`/`new_flow`, later ones →
//!    `forward`/`flow`.
//! 10. The worker's queue is full: `drop`/`queue_full` (and no flow is created, so a TCP
//!     client's next ACK validates its cookie again).
//!
//! A reset is never sent in answer to a RST.
//!
//! The driver (AF_XDP queue thread, replay, bench) loads one table snapshot per batch, calls
//! [`Pipeline::begin_batch`], [`Pipeline::process`] for each frame, and
//! [`Pipeline::end_batch`]. Nothing here allocates, locks or logs per frame.

mod config;
pub mod reply;
pub mod trace;

use std::sync::Arc;
use std::time::Instant;

use core::net::IpAddr;

pub use config::{PipelineConfig, PipelineConfigError};
pub use trace::{NoTrace, Step, Trace};

use crate::flow::{FlowHasher, FlowKey, FlowTable};
use crate::stats::QueueStats;
use crate::syncookie::{self, CookieConfig, CookieSecrets, CookieTuple, SynCookies, TsOptions};
use crate::tables::{AccessAction, L4Proto, NONE, Tables, Unconfigured};
use crate::verdict::{Reason, Service, Verdict};
use crate::wire::frame::{self, L2Error};
use crate::wire::tcp::flags;
use crate::wire::tcpopt::SynAckOptions;
use crate::worker::{NO_APP, Negotiated, WorkItem, WorkKind, WorkerPools};

/// What happened to one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Why (the verdict follows from it).
    pub reason: Reason,
    /// The service of the binding, once known.
    pub service: Option<Service>,
    /// Index of the binding in the snapshot, once known.
    pub binding: Option<u32>,
    /// Index of the Spectrum app in the snapshot, once known.
    pub app: Option<u32>,
    /// The worker (within the service's pool) the flow belongs to, once the flow key is known
    /// and the frame passed the access rules.
    pub worker: Option<u16>,
    /// Length of the reply now in the frame buffer, when the verdict is `tx`.
    pub tx_len: usize,
}

impl Outcome {
    /// The verdict.
    #[inline]
    pub fn verdict(&self) -> Verdict {
        self.reason.verdict()
    }

    const fn bare(reason: Reason) -> Outcome {
        Outcome {
            reason,
            service: None,
            binding: None,
            app: None,
            worker: None,
            tx_len: 0,
        }
    }
}

/// Flow state kept by the queue's TCP/UDP gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GateFlow {
    /// The client sent FIN: the flow lingers for `closing_secs`.
    pub closing: bool,
    /// TCP: the sequence number of the validating ACK (the client's ISN + 1).
    pub start_seq: u32,
    /// TCP: the acknowledgment number of the validating ACK (the cookie + 1).
    pub start_ack: u32,
}

const NS: u64 = 1_000_000_000;

/// One queue's pipeline: its flow table, cookie state, counters and worker senders.
pub struct Pipeline {
    queue: u16,
    cookies: SynCookies,
    window: u16,
    wscale: u8,
    mss4: u16,
    mss6: u16,
    tcp_idle_ns: u64,
    udp_idle_ns: u64,
    closing_ns: u64,
    handoff: bool,
    flows: FlowTable<GateFlow>,
    hasher: FlowHasher,
    workers: WorkerPools,
    stats: Arc<QueueStats>,
    batch_started: Option<Instant>,
    /// The node's published cookie state and the generation copied into `cookies`.
    secrets: Option<(Arc<CookieSecrets>, u64)>,
}

impl core::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pipeline")
            .field("queue", &self.queue)
            .field("flows", &self.flows.len())
            .finish_non_exhaustive()
    }
}

/// Label of the flow-hash key derived from the cookie seed.
pub const FLOW_HASH_LABEL: &[u8] = b"fastpath flow hash v1";

impl Pipeline {
    /// A pipeline for `queue`. `seed` keys the cookies and (derived) the flow hash, so every
    /// queue of a node and every node of a fleet must get the same one; `mtu` gives the MSS we
    /// announce when the config does not set it.
    pub fn new(
        queue: u16,
        cfg: &PipelineConfig,
        cookies: &CookieConfig,
        seed: [u8; 32],
        mtu: u16,
        workers: WorkerPools,
    ) -> Pipeline {
        let c = SynCookies::for_config(cookies, seed);
        let hasher = FlowHasher::new(c.derived_u64(FLOW_HASH_LABEL));
        let sa = cookies.syn_ack(mtu);
        Pipeline {
            queue,
            window: sa.window,
            wscale: sa.wscale,
            mss4: sa.mss4,
            mss6: sa.mss6,
            tcp_idle_ns: u64::from(cfg.tcp_idle_secs) * NS,
            udp_idle_ns: u64::from(cfg.udp_idle_secs) * NS,
            closing_ns: u64::from(cfg.closing_secs) * NS,
            handoff: cfg.handoff,
            flows: FlowTable::with_capacity(cfg.flow_capacity, hasher.clone()),
            hasher,
            cookies: c,
            workers,
            stats: Arc::new(QueueStats::new(queue)),
            batch_started: None,
            secrets: None,
        }
    }

    /// Follows `secrets` from now on: its current state replaces this queue's cookie state,
    /// and every rotation published there is taken at the start of the next batch. `secrets`
    /// must come from the same seed this pipeline was made with (the flow hash stays keyed by
    /// it).
    pub fn follow_secrets(&mut self, secrets: Arc<CookieSecrets>) {
        let g = secrets.generation();
        self.cookies = secrets.current();
        self.secrets = Some((secrets, g));
    }

    /// This queue's counters (shareable with readers on other threads).
    pub fn stats(&self) -> Arc<QueueStats> {
        Arc::clone(&self.stats)
    }

    /// This queue's counters, borrowed (the driver's own updates).
    #[inline]
    pub fn stats_ref(&self) -> &QueueStats {
        &self.stats
    }

    /// The flow hasher (the same for every queue with the same seed).
    pub fn hasher(&self) -> &FlowHasher {
        &self.hasher
    }

    /// The worker senders.
    pub fn workers(&self) -> &WorkerPools {
        &self.workers
    }

    /// Forgets every flow (a benchmark's fresh pass; never on a live queue).
    pub fn reset_flows(&mut self) {
        self.flows.clear();
    }

    /// Starts a batch at `now_ns`: refreshes the cookie secrets and starts the batch clock.
    #[inline]
    pub fn begin_batch(&mut self, now_ns: u64) {
        if let Some((s, seen)) = &mut self.secrets {
            let g = s.generation();
            if g != *seen {
                *seen = g;
                self.cookies = s.current();
            }
        }
        self.cookies.refresh(now_ns / NS);
        self.batch_started = Some(Instant::now());
    }

    /// Ends a batch: records its processing time and publishes the flow-table counters.
    #[inline]
    pub fn end_batch(&mut self) {
        if let Some(t) = self.batch_started.take() {
            self.stats.batch_ns.record(t.elapsed().as_nanos() as u64);
        }
        self.stats.batches.add(1);
        let f = self.flows.stats();
        self.stats.flow_inserts.set(f.inserts);
        self.stats.flow_evictions.set(f.evictions);
        self.stats.flow_expirations.set(f.expirations);
        self.stats.flows.set(self.flows.len() as u64);
    }

    /// Classifies one frame received at `now_ns`. `buf` is the whole frame buffer (a reply may
    /// need more room than the frame), `len` the frame's length. On a `tx` verdict the reply is
    /// in `buf[..outcome.tx_len]`.
    #[inline]
    pub fn process(&mut self, t: &Tables, now_ns: u64, buf: &mut [u8], len: usize) -> Outcome {
        self.process_traced(t, now_ns, buf, len, &mut NoTrace)
    }

    /// [`Pipeline::process`] reporting every decision to `trace`.
    #[inline]
    pub fn process_traced<T: Trace>(
        &mut self,
        t: &Tables,
        now_ns: u64,
        buf: &mut [u8],
        len: usize,
        trace: &mut T,
    ) -> Outcome {
        let len = len.min(buf.len());
        let o = self.classify(t, now_ns, buf, len, trace);
        let binding_slot = o
            .binding
            .and_then(|b| t.bindings.get(b as usize))
            .map(|b| b.slot);
        let app_slot = o.app.and_then(|a| t.apps.get(a as usize)).map(|a| a.slot);
        self.stats
            .count(o.reason, o.service, binding_slot, app_slot, len);
        if o.reason.verdict() == Verdict::Tx {
            self.stats.tx_frames.add(1);
            self.stats.tx_bytes.add(o.tx_len as u64);
        }
        o
    }

    #[inline(always)]
    fn classify<T: Trace>(
        &mut self,
        t: &Tables,
        now_ns: u64,
        buf: &mut [u8],
        len: usize,
        trace: &mut T,
    ) -> Outcome {
        let f = &buf[..len];
        // 1. Link layer.
        let l2 = match frame::parse_l2(f) {
            Ok(l2) => l2,
            Err(L2Error::NotIp) => return Outcome::bare(Reason::NotIp),
            Err(L2Error::Truncated) => return Outcome::bare(Reason::Malformed),
        };
        trace.step(Step::Link {
            vlans: l2.vlans,
            ethertype: l2.ethertype,
        });
        // 2. IP header.
        // Borrowed where it was parsed: moving the header out of the `Result` copied its
        // (1-byte aligned) addresses in pieces that the reads right after could not forward
        // from, a stall perf showed as the costliest instruction of the pipeline.
        let parsed = frame::parse_l3(f, &l2);
        let Ok(l3) = &parsed else {
            return Outcome::bare(Reason::Malformed);
        };
        trace.step(Step::Ip {
            src: l3.src,
            dst: l3.dst,
            proto: l3.proto,
            fragment: l3.fragment,
            ext_headers: l3.ext_headers,
        });
        // 3. Ours?
        let Some(dest) = t.dest(l3.dst) else {
            return Outcome::bare(Reason::NotOurs);
        };
        if let Some(p) = t.prefixes.get(dest.prefix as usize) {
            trace.step(Step::Dest {
                matched: dest.cidr,
                prefix: p,
            });
        }
        // 4. Fragments.
        if l3.fragment {
            return Outcome::bare(Reason::Fragment);
        }
        // 5. Transport header.
        let l4 = L4Proto::from_number(l3.proto);
        let (sport, dport, tcp) = match l4 {
            Some(L4Proto::Tcp) => match frame::parse_tcp(f, l3) {
                Ok(h) => (h.sport, h.dport, Some(h)),
                Err(_) => return Outcome::bare(Reason::Malformed),
            },
            Some(L4Proto::Udp) => match frame::parse_udp(f, l3) {
                Ok(h) => (h.sport, h.dport, None),
                Err(_) => return Outcome::bare(Reason::Malformed),
            },
            None => (0, 0, None),
        };
        // 6. Binding.
        let Some(binding) = t.binding(dest) else {
            return Outcome::bare(Reason::NoBinding);
        };
        trace.step(Step::Binding(binding));
        let mut out = Outcome {
            reason: Reason::Malformed,
            service: Some(binding.service),
            binding: Some(dest.binding),
            app: None,
            worker: None,
            tx_len: 0,
        };
        debug_assert_ne!(dest.binding, NONE);
        // 7. Service policy.
        let Some(proto) = l4 else {
            out.reason = Reason::UnconfiguredProtocol;
            return out;
        };
        let firewall = match binding.service {
            Service::Spectrum => match t.app_at(dest, proto, dport) {
                Some(a) => {
                    out.app = Some(a);
                    let app = &t.apps[a as usize];
                    trace.step(Step::App(app));
                    app.ip_firewall
                }
                None => {
                    trace.step(Step::NoApp { proto, port: dport });
                    return self.unconfigured(
                        buf,
                        &l2,
                        l3,
                        tcp.as_ref(),
                        binding.unconfigured,
                        out,
                    );
                }
            },
            Service::Cdn => {
                let https_only = t.cdn.https_only && proto == L4Proto::Tcp && dport == 80;
                let served = t.cdn_serves(proto, dport) && !https_only;
                trace.step(Step::CdnPort {
                    proto,
                    port: dport,
                    served,
                    https_only,
                });
                if https_only {
                    return self.unconfigured(buf, &l2, l3, tcp.as_ref(), Unconfigured::Reset, out);
                }
                if !served {
                    return self.unconfigured(
                        buf,
                        &l2,
                        l3,
                        tcp.as_ref(),
                        binding.unconfigured,
                        out,
                    );
                }
                true
            }
        };
        // 8. Access rules.
        if firewall {
            let rule = t
                .access_rule(l3.src)
                .and_then(|i| t.access_rules.get(i as usize));
            trace.step(Step::Access(rule));
            if rule.is_some_and(|r| r.action == AccessAction::Block) {
                out.reason = Reason::FirewallBlock;
                return out;
            }
        } else {
            trace.step(Step::AccessSkipped);
        }
        // 9. Flow state.
        let key = FlowKey::new(proto.number(), l3.src, sport, l3.dst, dport);
        let service = binding.service;
        // One hash of the key serves the worker choice and the flow table.
        let hash = self.hasher.hash(&key);
        let worker = FlowHasher::pick_hashed(hash, self.workers.count(service)) as u16;
        out.worker = Some(worker);
        trace.step(Step::Worker {
            service,
            index: worker,
        });
        // A SYN is answered before anything a worker would need is put together.
        if let Some(h) = &tcp
            && h.flags & (flags::SYN | flags::ACK | flags::RST | flags::FIN) == flags::SYN
        {
            trace.step(Step::Tcp {
                flags: h.flags,
                seq: h.seq,
                ack: h.ack,
            });
            return self.syn(buf, now_ns, &l2, l3, h, out, trace);
        }
        let app_slot = out.app.map_or(NO_APP, |a| t.apps[a as usize].slot);
        let mut item = WorkItem {
            key,
            kind: WorkKind::Segment,
            service,
            app_slot,
            tcp_flags: 0,
            wire_len: len as u32,
            payload_len: 0,
            ts_ns: now_ns,
            queue: self.queue,
            negotiated: Negotiated::default(),
            handshake: false,
            packet: None,
        };
        match tcp {
            Some(h) => {
                trace.step(Step::Tcp {
                    flags: h.flags,
                    seq: h.seq,
                    ack: h.ack,
                });
                item.tcp_flags = h.flags;
                item.payload_len = h.payload_len as u32;
                let fl = h.flags;
                let closing_ns = self.closing_ns;
                let hit = self.flows.get_hashed(&key, hash, now_ns).map(|e| {
                    let g = *e.value();
                    if fl & (flags::FIN | flags::RST) == flags::FIN && !g.closing {
                        e.value_mut().closing = true;
                        e.set_timeout(closing_ns);
                    }
                    g
                });
                let payload_off = l3.l4_off + h.hdr_len;
                let cookie = h.ack.wrapping_sub(1);
                let isn = h.seq.wrapping_sub(1);
                let tuple = CookieTuple {
                    src: l3.src,
                    dst: l3.dst,
                    sport,
                    dport,
                };
                let pure_ack = fl & (flags::ACK | flags::SYN | flags::RST) == flags::ACK;
                let mut checked = None;
                if let Some(g) = hit {
                    let handshake = h.seq == g.start_seq && h.ack == g.start_ack;
                    // With the handoff, a valid cookie ACK on a tuple the gate still holds is a
                    // client that reused its port for a new connection: start over.
                    let renewed = self.handoff && !handshake && pure_ack && {
                        let c = self
                            .cookies
                            .check(now_ns / NS, &tuple, isn, cookie, l3.is_v6());
                        let ok = c.is_ok();
                        checked = Some(c);
                        ok
                    };
                    if !renewed {
                        trace.step(Step::FlowHit { closing: g.closing });
                        if fl & flags::RST != 0 {
                            self.flows.remove(&key);
                        }
                        item.handshake = handshake;
                        out.reason = self.dispatch(
                            item,
                            hash,
                            worker,
                            None,
                            now_ns,
                            (f_of(buf, len), l3, payload_off),
                        );
                        return out;
                    }
                    self.flows.remove(&key);
                }
                trace.step(Step::FlowMiss);
                if !pure_ack {
                    out.reason = Reason::OutOfState;
                    return out;
                }
                let checked = checked.unwrap_or_else(|| {
                    self.cookies
                        .check(now_ns / NS, &tuple, isn, cookie, l3.is_v6())
                });
                trace.step(Step::CookieChecked {
                    cookie,
                    valid: checked.is_ok(),
                });
                let Ok(decoded) = checked else {
                    self.stats.cookies_invalid.add(1);
                    out.reason = Reason::OutOfState;
                    return out;
                };
                self.stats.cookies_valid.add(1);
                let f = f_of(buf, len);
                let opts = frame::tcp_options(f, l3, &h);
                let ts = opts
                    .timestamp
                    .map(|(val, ecr)| (val, ecr, syncookie::decode_tsecr(ecr)));
                let wishes = ts.map_or(TsOptions::default(), |(_, _, w)| w);
                let window = f
                    .get(l3.l4_off + 14..l3.l4_off + 16)
                    .map_or(0, |w| u16::from_be_bytes([w[0], w[1]]));
                item.kind = WorkKind::NewFlow;
                item.negotiated = Negotiated {
                    mss: decoded.mss,
                    client_wscale: wishes.wscale,
                    edge_wscale: wishes.wscale.map(|_| self.wscale),
                    sack_perm: wishes.sack_perm,
                    ecn: wishes.ecn,
                    ts_recent: ts.map(|(val, _, _)| val),
                    client_isn: isn,
                    edge_isn: cookie,
                    client_window: window,
                    edge_window: self.window,
                    ts_ecr: ts.map_or(0, |(_, ecr, _)| ecr),
                };
                trace.step(Step::Handoff(item.negotiated));
                let closing = fl & flags::FIN != 0;
                let timeout = if closing || self.handoff {
                    self.closing_ns
                } else {
                    self.tcp_idle_ns
                };
                let gate = GateFlow {
                    closing,
                    start_seq: h.seq,
                    start_ack: h.ack,
                };
                out.reason = self.dispatch(
                    item,
                    hash,
                    worker,
                    Some((gate, timeout)),
                    now_ns,
                    (f, l3, payload_off),
                );
                out
            }
            None => {
                item.payload_len = (l3.l4_len().saturating_sub(8)) as u32;
                let carried = (f_of(buf, len), l3, l3.l4_off + 8);
                if self.flows.get_hashed(&key, hash, now_ns).is_some() {
                    trace.step(Step::FlowHit { closing: false });
                    out.reason = self.dispatch(item, hash, worker, None, now_ns, carried);
                    return out;
                }
                trace.step(Step::FlowMiss);
                item.kind = WorkKind::NewFlow;
                let gate = (GateFlow::default(), self.udp_idle_ns);
                out.reason = self.dispatch(item, hash, worker, Some(gate), now_ns, carried);
                out
            }
        }
    }

    /// Step 10: hands `item` to its worker (with its IP packet when packets are carried: the
    /// frame, its L3 offsets and where the L4 payload starts); for a new flow (`new`: the gate
    /// entry and its timeout), creates the gate entry only once the worker has it.
    #[inline(always)]
    fn dispatch(
        &mut self,
        mut item: WorkItem,
        hash: u64,
        worker: u16,
        new: Option<(GateFlow, u64)>,
        now_ns: u64,
        (f, l3, payload_off): (&[u8], &frame::L3, usize),
    ) -> Reason {
        if let Some(pool) = self.workers.packets() {
            let packet = f
                .get(l3.l3_off..l3.end)
                .and_then(|ip| pool.take(ip, l3.l4_off - l3.l3_off, payload_off - l3.l3_off));
            match packet {
                Some(p) => item.packet = Some(p),
                // No buffer: back-pressure, like a full queue (no flow state is created).
                None => return Reason::QueueFull,
            }
        }
        let key = item.key;
        if self
            .workers
            .push(item.service, usize::from(worker), item)
            .is_err()
        {
            return Reason::QueueFull;
        }
        match new {
            Some((gate, timeout_ns)) => {
                let _ = self
                    .flows
                    .insert_hashed(key, hash, gate, now_ns, timeout_ns);
                Reason::NewFlow
            }
            None => Reason::Flow,
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn syn<T: Trace>(
        &mut self,
        buf: &mut [u8],
        now_ns: u64,
        l2: &frame::L2,
        l3: &frame::L3,
        h: &frame::Tcp,
        mut out: Outcome,
        trace: &mut T,
    ) -> Outcome {
        let v6 = l3.is_v6();
        let opts = frame::tcp_options(buf, l3, h);
        let idx = syncookie::mss_index(v6, opts.mss);
        let tuple = CookieTuple {
            src: l3.src,
            dst: l3.dst,
            sport: h.sport,
            dport: h.dport,
        };
        let cookie = self.cookies.mint(now_ns / NS, &tuple, h.seq, idx);
        let table = if v6 {
            &syncookie::MSS_TABLE_V6
        } else {
            &syncookie::MSS_TABLE_V4
        };
        trace.step(Step::CookieMinted {
            cookie,
            mss: table[usize::from(idx)],
        });
        // Without timestamps there is nowhere to keep the client's window scale, SACK and ECN
        // wishes, so they are not offered (as Linux does under SYN cookies).
        let ts = opts.timestamp.map(|(tsval, _)| {
            let ecn = h.flags & (flags::ECE | flags::CWR) == flags::ECE | flags::CWR;
            let wishes = TsOptions {
                wscale: opts.wscale,
                sack_perm: opts.sack_perm,
                ecn,
            };
            (
                syncookie::encode_tsval((now_ns / 1_000_000) as u32, wishes),
                tsval,
                wishes,
            )
        });
        let wishes = ts.map(|t| t.2).unwrap_or_default();
        let sa = reply::SynAck {
            seq: cookie,
            ack: h.seq.wrapping_add(1),
            window: self.window,
            ece: wishes.ecn,
            options: SynAckOptions {
                mss: if v6 { self.mss6 } else { self.mss4 },
                wscale: wishes.wscale.map(|_| self.wscale),
                sack_perm: wishes.sack_perm,
                timestamp: ts.map(|(ours, theirs, _)| (ours, theirs)),
            },
        };
        match reply::syn_ack(buf, l2, l3, h, &sa) {
            Some(n) => {
                out.reason = Reason::SynCookie;
                out.tx_len = n;
            }
            // A frame buffer too small for the reply (never with real UMEM chunks).
            None => out.reason = Reason::Malformed,
        }
        out
    }

    /// Step 7's refusal: drop, or answer with RST / ICMP port unreachable.
    #[inline(always)]
    fn unconfigured(
        &mut self,
        buf: &mut [u8],
        l2: &frame::L2,
        l3: &frame::L3,
        tcp: Option<&frame::Tcp>,
        mode: Unconfigured,
        mut out: Outcome,
    ) -> Outcome {
        out.reason = Reason::UnconfiguredPort;
        if mode == Unconfigured::Drop {
            return out;
        }
        let n = match tcp {
            Some(h) if h.flags & flags::RST == 0 => reply::rst(buf, l2, l3, h),
            Some(_) => None,
            None => reply::port_unreachable(buf, l2, l3),
        };
        if let Some(n) = n {
            out.reason = Reason::Reset;
            out.tx_len = n;
        }
        out
    }
}

#[inline(always)]
fn f_of(buf: &[u8], len: usize) -> &[u8] {
    &buf[..len]
}

#[cfg(test)]
mod tests;

/// The address family label used in reports.
pub fn ip_version(a: IpAddr) -> u8 {
    if a.is_ipv6() { 6 } else { 4 }
}
