//! A straightforward implementation of the pipeline, the baseline of the pipeline benchmark:
//! etherparse's `SlicedPacket` for parsing, a general LPM crate (`ip_network_table`) for
//! prefixes, bindings and access rules, std `HashMap`s (SipHash) for apps and flows, SipHash
//! per packet for the worker choice, and SYN-ACKs built into a fresh `Vec` with etherparse's
//! builder. It gives the same verdicts as the fast path on the mixed capture (checked by
//! `tests/naive.rs`); it is the code one writes first, not a strawman.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice};
use fastpath::Reason;
use fastpath::Service;
use fastpath::syncookie::{self, CookieTuple, SynCookies, TsOptions};
use fastpath::tables::{AccessAction, L4Proto, TablesSpec, Unconfigured};
use ip_network::IpNetwork;
use ip_network_table::IpNetworkTable;

type Key = (u8, IpAddr, u16, IpAddr, u16);
/// (lo, hi, ip_firewall) port ranges of the apps at one (edge IP, protocol).
type AppPorts = HashMap<(IpAddr, u8), Vec<(u16, u16, bool)>>;

struct Flow {
    last_ns: u64,
    timeout_ns: u64,
}

/// The straightforward pipeline.
pub struct Naive {
    prefixes: IpNetworkTable<usize>,
    bindings: IpNetworkTable<(Service, Unconfigured)>,
    apps: AppPorts,
    access: IpNetworkTable<AccessAction>,
    cdn_tcp: HashSet<u16>,
    cdn_udp: HashSet<u16>,
    https_only: bool,
    flows: HashMap<Key, Flow>,
    cookies: SynCookies,
    queues: [Vec<VecDeque<Key>>; 2],
    depth: usize,
    secret: u64,
}

fn net(n: ipnet::IpNet) -> IpNetwork {
    IpNetwork::new_truncate(n.network(), n.prefix_len()).expect("valid prefix")
}

impl Naive {
    /// Builds it from the same spec as the fast path.
    pub fn new(
        spec: &TablesSpec,
        seed: [u8; 32],
        rotate_secs: u32,
        workers: [usize; 2],
        depth: usize,
    ) -> Naive {
        let mut prefixes = IpNetworkTable::new();
        for (i, p) in spec.prefixes.iter().enumerate() {
            prefixes.insert(net(p.cidr), i);
        }
        let mut bindings = IpNetworkTable::new();
        for b in &spec.bindings {
            bindings.insert(net(b.cidr), (b.service, b.unconfigured));
        }
        let mut apps: AppPorts = HashMap::new();
        for a in &spec.apps {
            for ip in &a.edge_ips {
                apps.entry((*ip, a.proto.number())).or_default().push((
                    a.ports.lo,
                    a.ports.hi,
                    a.ip_firewall,
                ));
            }
        }
        let mut access = IpNetworkTable::new();
        for r in &spec.access_rules {
            access.insert(net(r.cidr), r.action);
        }
        Naive {
            prefixes,
            bindings,
            apps,
            access,
            cdn_tcp: spec.cdn.tcp_ports.iter().copied().collect(),
            cdn_udp: spec.cdn.udp_ports.iter().copied().collect(),
            https_only: spec.cdn.https_only,
            flows: HashMap::new(),
            cookies: SynCookies::new(seed, rotate_secs),
            queues: [
                (0..workers[0]).map(|_| VecDeque::new()).collect(),
                (0..workers[1]).map(|_| VecDeque::new()).collect(),
            ],
            depth,
            secret: u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")),
        }
    }

    /// Empties the worker queues (what the workers do after a batch).
    pub fn drain_workers(&mut self) {
        for q in self.queues.iter_mut().flatten() {
            q.clear();
        }
    }

    /// Classifies one frame; returns the reason and the reply, if any.
    pub fn process(&mut self, now_ns: u64, frame: &[u8]) -> (Reason, Option<Vec<u8>>) {
        let Ok(p) = SlicedPacket::from_ethernet(frame) else {
            return (Reason::Malformed, None);
        };
        let (src, dst, fragment) = match &p.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header();
                if h.to_header().calc_header_checksum() != h.header_checksum() {
                    return (Reason::Malformed, None);
                }
                (
                    IpAddr::V4(h.source_addr()),
                    IpAddr::V4(h.destination_addr()),
                    ip.is_payload_fragmented(),
                )
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header();
                (
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr()),
                    ip.is_payload_fragmented(),
                )
            }
            _ => return (Reason::NotIp, None),
        };
        if self.prefixes.longest_match(dst).is_none() {
            return (Reason::NotOurs, None);
        }
        if fragment {
            return (Reason::Fragment, None);
        }
        let Some((_, &(service, unconfigured))) = self.bindings.longest_match(dst) else {
            return (Reason::NoBinding, None);
        };
        let (proto, sport, dport) = match &p.transport {
            Some(TransportSlice::Tcp(t)) => (L4Proto::Tcp, t.source_port(), t.destination_port()),
            Some(TransportSlice::Udp(u)) => (L4Proto::Udp, u.source_port(), u.destination_port()),
            _ => return (Reason::UnconfiguredProtocol, None),
        };
        let firewall = match service {
            Service::Spectrum => {
                let app = self
                    .apps
                    .get(&(dst, proto.number()))
                    .and_then(|v| v.iter().find(|(lo, hi, _)| *lo <= dport && dport <= *hi));
                match app {
                    Some((_, _, fw)) => *fw,
                    None => {
                        return (
                            if unconfigured == Unconfigured::Reset {
                                Reason::Reset
                            } else {
                                Reason::UnconfiguredPort
                            },
                            None,
                        );
                    }
                }
            }
            Service::Cdn => {
                let served = match proto {
                    L4Proto::Tcp => {
                        self.cdn_tcp.contains(&dport) && !(self.https_only && dport == 80)
                    }
                    L4Proto::Udp => self.cdn_udp.contains(&dport),
                };
                if !served {
                    return (Reason::UnconfiguredPort, None);
                }
                true
            }
        };
        if firewall
            && matches!(
                self.access.longest_match(src),
                Some((_, AccessAction::Block))
            )
        {
            return (Reason::FirewallBlock, None);
        }
        let key: Key = (proto.number(), src, sport, dst, dport);
        let mut h = DefaultHasher::new();
        self.secret.hash(&mut h);
        key.hash(&mut h);
        let worker = (h.finish() as usize) % self.queues[service as usize].len();
        if let Some(TransportSlice::Tcp(t)) = &p.transport {
            if t.syn() && !t.ack() && !t.rst() && !t.fin() {
                return (
                    Reason::SynCookie,
                    Some(self.syn_ack(now_ns, frame, &p, src, dst, sport, dport, t)),
                );
            }
            let known = self
                .flows
                .get(&key)
                .is_some_and(|f| now_ns.saturating_sub(f.last_ns) <= f.timeout_ns);
            if known {
                if t.rst() {
                    self.flows.remove(&key);
                } else if let Some(f) = self.flows.get_mut(&key) {
                    f.last_ns = now_ns;
                }
                return (self.push(service, worker, key), None);
            }
            if !t.ack() || t.syn() || t.rst() {
                return (Reason::OutOfState, None);
            }
            let tuple = CookieTuple {
                src,
                dst,
                sport,
                dport,
            };
            if self
                .cookies
                .check(
                    now_ns / 1_000_000_000,
                    &tuple,
                    t.sequence_number().wrapping_sub(1),
                    t.acknowledgment_number().wrapping_sub(1),
                    dst.is_ipv6(),
                )
                .is_err()
            {
                return (Reason::OutOfState, None);
            }
            let r = self.push(service, worker, key);
            if r == Reason::Flow {
                self.flows.insert(
                    key,
                    Flow {
                        last_ns: now_ns,
                        timeout_ns: 300_000_000_000,
                    },
                );
                return (Reason::NewFlow, None);
            }
            return (r, None);
        }
        let known = self
            .flows
            .get(&key)
            .is_some_and(|f| now_ns.saturating_sub(f.last_ns) <= f.timeout_ns);
        let r = self.push(service, worker, key);
        if r == Reason::Flow {
            self.flows.insert(
                key,
                Flow {
                    last_ns: now_ns,
                    timeout_ns: 30_000_000_000,
                },
            );
            if !known {
                return (Reason::NewFlow, None);
            }
        }
        (r, None)
    }

    fn push(&mut self, service: Service, worker: usize, key: Key) -> Reason {
        let q = &mut self.queues[service as usize][worker];
        if q.len() >= self.depth {
            return Reason::QueueFull;
        }
        q.push_back(key);
        Reason::Flow
    }

    #[allow(clippy::too_many_arguments)]
    fn syn_ack(
        &mut self,
        now_ns: u64,
        frame: &[u8],
        p: &SlicedPacket<'_>,
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        t: &etherparse::TcpSlice<'_>,
    ) -> Vec<u8> {
        let mut mss = None;
        let mut ws = None;
        let mut sack = false;
        let mut ts = None;
        for o in t.options_iterator().flatten() {
            match o {
                TcpOptionElement::MaximumSegmentSize(m) => mss = Some(m),
                TcpOptionElement::WindowScale(w) => ws = Some(w.min(14)),
                TcpOptionElement::SelectiveAcknowledgementPermitted => sack = true,
                TcpOptionElement::Timestamp(v, _) => ts = Some(v),
                _ => {}
            }
        }
        let idx = syncookie::mss_index(dst.is_ipv6(), mss);
        let cookie = self.cookies.mint(
            now_ns / 1_000_000_000,
            &CookieTuple {
                src,
                dst,
                sport,
                dport,
            },
            t.sequence_number(),
            idx,
        );
        let mut opts = vec![TcpOptionElement::MaximumSegmentSize(if dst.is_ipv6() {
            1440
        } else {
            1460
        })];
        if let Some(v) = ts {
            let wishes = TsOptions {
                wscale: ws,
                sack_perm: sack,
                ecn: false,
            };
            if sack {
                opts.push(TcpOptionElement::SelectiveAcknowledgementPermitted);
            }
            opts.push(TcpOptionElement::Timestamp(
                syncookie::encode_tsval((now_ns / 1_000_000) as u32, wishes),
                v,
            ));
            if ws.is_some() {
                opts.push(TcpOptionElement::Noop);
                opts.push(TcpOptionElement::WindowScale(7));
            }
        }
        let mut macs = [0u8; 12];
        macs.copy_from_slice(&frame[..12]);
        let _ = p;
        let b = PacketBuilder::ethernet2(
            macs[..6].try_into().expect("6"),
            macs[6..].try_into().expect("6"),
        );
        let b = match (dst, src) {
            (IpAddr::V4(d), IpAddr::V4(s)) => b.ipv4(d.octets(), s.octets(), 64),
            (IpAddr::V6(d), IpAddr::V6(s)) => b.ipv6(d.octets(), s.octets(), 64),
            _ => unreachable!("one family"),
        };
        let b = b
            .tcp(dport, sport, cookie, 65535)
            .syn()
            .ack(t.sequence_number().wrapping_add(1))
            .options(&opts)
            .expect("options fit");
        let mut out = Vec::with_capacity(b.size(0));
        b.write(&mut out, &[]).expect("write to a Vec");
        out
    }
}
