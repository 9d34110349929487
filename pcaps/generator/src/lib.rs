//! The deterministic generator of the test captures in `pcaps/`.
//!
//! Every frame is built with the verdict it must get, written down by hand from the pipeline's
//! contract (the expected-verdicts files are *not* produced by running the pipeline). Two
//! small models keep the hand-written expectations honest: cookie ACKs are minted with the lab
//! secret (as a client would echo a real SYN-ACK), and the per-batch worker-queue model checks
//! that every forward fits in its worker's queue and every `queue_full` does not.
//!
//! Captures:
//! * `reasons` (config `golden.toml`): every reason, IPv4 and IPv6, VLAN and QinQ, IPv6
//!   extension headers, port-range edges, access-rule overrides, complete cookie handshakes,
//!   FIN/RST teardown, idle timeouts, a queue overflow.
//! * `mixed` (config `edge-lab.toml`, the bundled default): a SYN flood, a UDP flood at an
//!   unconfigured port, an ACK flood, and legitimate TCP handshakes and UDP flows among them.
//! * `handshake-syns` (config `edge-lab.toml`): SYNs of every shape for the two-pass cookie test.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{PacketBuilder, TcpOptionElement};
use fastpath::syncookie::{self, CookieTuple, SynCookies, TsOptions};
use fastpath::wire::tcp::flags as tf;
use fastpath::{Reason, Service};
use serde::Serialize;

/// The lab secret of `golden.toml` and `edge-lab.toml` (never a production secret).
pub const LAB_SECRET: [u8; 32] = *b"lab-only-secret-never-in-prod!!!";
/// First timestamp of every capture: 2023-11-14T22:13:20Z.
pub const T0_NS: u64 = 1_700_000_000_000_000_000;

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const EDGE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// What a frame must get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// Reason.
    pub reason: Reason,
    /// Service.
    pub service: Option<Service>,
    /// App id.
    pub app: Option<&'static str>,
    /// Worker.
    pub worker: Option<u16>,
    /// What the frame is, for people.
    pub what: String,
}

/// One frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Capture time.
    pub ts_ns: u64,
    /// Bytes.
    pub data: Vec<u8>,
    /// Expected outcome.
    pub expect: Expect,
}

/// One capture.
#[derive(Debug, Clone)]
pub struct Capture {
    /// File stem.
    pub name: &'static str,
    /// The config file (in `pcaps/`) it replays with.
    pub config: &'static str,
    /// Frames.
    pub frames: Vec<Frame>,
}

/// VLAN tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vlan {
    /// None.
    None,
    /// One 802.1Q tag.
    One(u16),
    /// 802.1ad S-tag + 802.1Q C-tag.
    QinQ(u16, u16),
}

/// An L4 header to build.
#[derive(Debug, Clone)]
pub enum L4 {
    /// TCP.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number (with ACK).
        ack: u32,
        /// Flags.
        flags: u8,
        /// Options.
        opts: Vec<TcpOptionElement>,
        /// Payload bytes.
        payload: usize,
    },
    /// UDP.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Payload bytes.
        payload: usize,
    },
    /// ICMP / ICMPv6 echo request.
    Echo,
    /// Another protocol with an opaque payload.
    Other(u8, usize),
}

/// A packet to build.
#[derive(Debug, Clone)]
pub struct Pkt {
    /// VLAN tags.
    pub vlan: Vlan,
    /// Source.
    pub src: IpAddr,
    /// Destination.
    pub dst: IpAddr,
    /// L4.
    pub l4: L4,
}

fn l2(vlan: Vlan, ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(22);
    f.extend_from_slice(&EDGE_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    match vlan {
        Vlan::None => {}
        Vlan::One(id) => {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
        }
        Vlan::QinQ(s, c) => {
            f.extend_from_slice(&0x88a8u16.to_be_bytes());
            f.extend_from_slice(&s.to_be_bytes());
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&c.to_be_bytes());
        }
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 1) as u8).collect()
}

/// Builds a frame.
pub fn build(p: &Pkt) -> Vec<u8> {
    let et = if p.dst.is_ipv6() { 0x86dd } else { 0x0800 };
    let mut f = l2(p.vlan, et);
    let ip = match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    match &p.l4 {
        L4::Tcp {
            sport,
            dport,
            seq,
            ack,
            flags,
            opts,
            payload: n,
        } => {
            let mut b = ip.tcp(*sport, *dport, *seq, 64240);
            if flags & tf::SYN != 0 {
                b = b.syn();
            }
            if flags & tf::ACK != 0 {
                b = b.ack(*ack);
            }
            if flags & tf::FIN != 0 {
                b = b.fin();
            }
            if flags & tf::RST != 0 {
                b = b.rst();
            }
            if flags & tf::PSH != 0 {
                b = b.psh();
            }
            if flags & tf::ECE != 0 {
                b = b.ece();
            }
            if flags & tf::CWR != 0 {
                b = b.cwr();
            }
            let b = b.options(opts).expect("options fit");
            b.write(&mut f, &payload(*n)).expect("write");
        }
        L4::Udp {
            sport,
            dport,
            payload: n,
        } => ip
            .udp(*sport, *dport)
            .write(&mut f, &payload(*n))
            .expect("write"),
        L4::Echo => {
            if p.dst.is_ipv6() {
                ip.icmpv6_echo_request(7, 1)
                    .write(&mut f, &payload(16))
                    .expect("write")
            } else {
                ip.icmpv4_echo_request(7, 1)
                    .write(&mut f, &payload(16))
                    .expect("write")
            }
        }
        L4::Other(proto, n) => {
            let (IpAddr::V4(s), IpAddr::V4(d)) = (p.src, p.dst) else {
                panic!("raw protocols are IPv4 here")
            };
            let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, *proto, 0, 0];
            h[2..4].copy_from_slice(&((20 + n) as u16).to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let c = fastpath::wire::checksum::checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&h);
            f.extend_from_slice(&payload(*n));
        }
    }
    f
}

fn l3_off(f: &[u8]) -> usize {
    let mut off = 12;
    while matches!(u16::from_be_bytes([f[off], f[off + 1]]), 0x8100 | 0x88a8) {
        off += 4;
    }
    off + 2
}

/// Recomputes the IPv4 header checksum of a frame.
pub fn fix_ipv4_checksum(f: &mut [u8]) {
    let o = l3_off(f);
    let hl = usize::from(f[o] & 0x0f) * 4;
    f[o + 10] = 0;
    f[o + 11] = 0;
    let c = fastpath::wire::checksum::checksum(&f[o..o + hl]);
    f[o + 10..o + 12].copy_from_slice(&c.to_be_bytes());
}

/// Inserts IPv6 extension headers `(kind, length in bytes)` after the fixed header.
pub fn with_v6_ext(f: &[u8], exts: &[(u8, usize)]) -> Vec<u8> {
    let o = l3_off(f);
    let upper = f[o + 6];
    let mut g = f[..o + 40].to_vec();
    g[o + 6] = exts[0].0;
    for (i, &(kind, len)) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map_or(upper, |e| e.0);
        let mut h = vec![0u8; len];
        h[0] = next;
        h[1] = match kind {
            51 => (len / 4 - 2) as u8,
            44 => 0,
            _ => (len / 8 - 1) as u8,
        };
        if kind == 0 || kind == 60 {
            // PadN filling the options area.
            h[2] = 1;
            h[3] = (len - 4) as u8;
        }
        g.extend_from_slice(&h);
    }
    g.extend_from_slice(&f[o + 40..]);
    let plen = (g.len() - o - 40) as u16;
    g[o + 4..o + 6].copy_from_slice(&plen.to_be_bytes());
    g
}

/// A capture under construction.
#[derive(Debug)]
pub struct Gen {
    name: &'static str,
    config: &'static str,
    frames: Vec<Frame>,
    t: u64,
    cookies: SynCookies,
    batch: usize,
    depth: usize,
}

/// The SYN a handshake started with.
#[derive(Debug, Clone)]
pub struct Syn {
    /// The packet.
    pub pkt: Pkt,
    /// When.
    pub ts_ns: u64,
    /// ISN.
    pub isn: u32,
    /// The cookie our SYN-ACK carried.
    pub cookie: u32,
    /// Our TSval in the SYN-ACK, when the client sent timestamps.
    pub our_tsval: Option<u32>,
    /// The client's TSval.
    pub client_tsval: Option<u32>,
}

fn v4(a: &str) -> IpAddr {
    IpAddr::V4(a.parse::<Ipv4Addr>().expect("address"))
}

fn v6(a: &str) -> IpAddr {
    IpAddr::V6(a.parse::<Ipv6Addr>().expect("address"))
}

/// Expectation helpers.
pub fn e(
    reason: Reason,
    service: Option<Service>,
    app: Option<&'static str>,
    what: impl Into<String>,
) -> Expect {
    let worker = matches!(
        reason,
        Reason::SynCookie | Reason::Flow | Reason::NewFlow | Reason::OutOfState | Reason::QueueFull
    )
    .then_some(0);
    Expect {
        reason,
        service,
        app,
        worker,
        what: what.into(),
    }
}

const SPECTRUM: Option<Service> = Some(Service::Spectrum);
const CDN: Option<Service> = Some(Service::Cdn);

impl Gen {
    fn new(name: &'static str, config: &'static str, batch: usize, depth: usize) -> Gen {
        Gen {
            name,
            config,
            frames: Vec::new(),
            t: T0_NS,
            cookies: SynCookies::new(LAB_SECRET, 60),
            batch,
            depth,
        }
    }

    /// Advances the clock.
    pub fn wait(&mut self, ns: u64) {
        self.t += ns;
    }

    /// Adds a raw frame.
    pub fn raw(&mut self, data: Vec<u8>, expect: Expect) {
        self.frames.push(Frame {
            ts_ns: self.t,
            data,
            expect,
        });
        self.t += 10_000;
    }

    /// Adds a built packet.
    pub fn pkt(&mut self, p: &Pkt, expect: Expect) {
        self.raw(build(p), expect);
    }

    /// Pads with not-ours frames up to the next batch boundary.
    pub fn align(&mut self) {
        while !self.frames.len().is_multiple_of(self.batch) {
            let p = Pkt {
                vlan: Vlan::None,
                src: v4("192.0.2.200"),
                dst: v4("192.0.2.201"),
                l4: L4::Udp {
                    sport: 9,
                    dport: 9,
                    payload: 4,
                },
            };
            self.pkt(
                &p,
                e(
                    Reason::NotOurs,
                    None,
                    None,
                    "padding to a batch boundary (not ours)",
                ),
            );
        }
    }

    /// A SYN; returns what its SYN-ACK carried, for the ACK.
    #[allow(clippy::too_many_arguments)]
    pub fn syn(
        &mut self,
        vlan: Vlan,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        isn: u32,
        opts: Vec<TcpOptionElement>,
        extra_flags: u8,
        expect: Expect,
    ) -> Syn {
        let pkt = Pkt {
            vlan,
            src,
            dst,
            l4: L4::Tcp {
                sport,
                dport,
                seq: isn,
                ack: 0,
                flags: tf::SYN | extra_flags,
                opts: opts.clone(),
                payload: 0,
            },
        };
        let ts_ns = self.t;
        let mss = opts.iter().find_map(|o| {
            if let TcpOptionElement::MaximumSegmentSize(m) = o {
                Some(*m)
            } else {
                None
            }
        });
        let ws = opts.iter().find_map(|o| {
            if let TcpOptionElement::WindowScale(w) = o {
                Some((*w).min(14))
            } else {
                None
            }
        });
        let sack = opts
            .iter()
            .any(|o| matches!(o, TcpOptionElement::SelectiveAcknowledgementPermitted));
        let tsval = opts.iter().find_map(|o| {
            if let TcpOptionElement::Timestamp(v, _) = o {
                Some(*v)
            } else {
                None
            }
        });
        let idx = syncookie::mss_index(dst.is_ipv6(), mss);
        let tuple = CookieTuple {
            src,
            dst,
            sport,
            dport,
        };
        let cookie = self.cookies.mint(ts_ns / 1_000_000_000, &tuple, isn, idx);
        let ecn = extra_flags & (tf::ECE | tf::CWR) == tf::ECE | tf::CWR;
        let our_tsval = tsval.map(|_| {
            syncookie::encode_tsval(
                (ts_ns / 1_000_000) as u32,
                TsOptions {
                    wscale: ws,
                    sack_perm: sack,
                    ecn,
                },
            )
        });
        self.pkt(&pkt, expect);
        Syn {
            pkt,
            ts_ns,
            isn,
            cookie,
            our_tsval,
            client_tsval: tsval,
        }
    }

    /// A segment of the handshake started by `s`: `ack_delta` is added to the right ack
    /// (cookie + 1), `seq_delta` to the client's next sequence number.
    pub fn seg(
        &mut self,
        s: &Syn,
        flags: u8,
        seq_delta: u32,
        ack_delta: u32,
        payload: usize,
        expect: Expect,
    ) {
        let L4::Tcp { sport, dport, .. } = s.pkt.l4 else {
            panic!("a TCP handshake")
        };
        let opts = match (s.client_tsval, s.our_tsval) {
            (Some(v), Some(ours)) => vec![
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(v + 1, ours),
            ],
            _ => vec![],
        };
        let p = Pkt {
            vlan: s.pkt.vlan,
            src: s.pkt.src,
            dst: s.pkt.dst,
            l4: L4::Tcp {
                sport,
                dport,
                seq: s.isn.wrapping_add(1).wrapping_add(seq_delta),
                ack: s.cookie.wrapping_add(1).wrapping_add(ack_delta),
                flags,
                opts,
                payload,
            },
        };
        self.pkt(&p, expect);
    }

    /// Applies the worker-queue model and returns the capture.
    ///
    /// Each batch starts with empty queues (workers drain them after every batch); every
    /// forward adds one item to its service's queue; a forward that finds `depth` items is
    /// `queue_full`. Hand-written expectations must agree with the model.
    pub fn finish(self) -> Capture {
        for (b, chunk) in self.frames.chunks(self.batch).enumerate() {
            let mut used = [0usize; 2];
            for (i, f) in chunk.iter().enumerate() {
                let r = f.expect.reason;
                if !matches!(r, Reason::Flow | Reason::NewFlow | Reason::QueueFull) {
                    continue;
                }
                let s = f.expect.service.expect("a forward has a service") as usize;
                let full = used[s] >= self.depth;
                assert_eq!(
                    full,
                    r == Reason::QueueFull,
                    "{}: frame {} ({}) in batch {b}: the queue model says {}",
                    self.name,
                    b * self.batch + i + 1,
                    f.expect.what,
                    if full { "queue_full" } else { "forward" }
                );
                if !full {
                    used[s] += 1;
                }
            }
        }
        Capture {
            name: self.name,
            config: self.config,
            frames: self.frames,
        }
    }
}

fn opts_full(tsval: u32) -> Vec<TcpOptionElement> {
    use TcpOptionElement::*;
    vec![
        MaximumSegmentSize(1460),
        SelectiveAcknowledgementPermitted,
        Timestamp(tsval, 0),
        Noop,
        WindowScale(7),
    ]
}

fn opts_mss(m: u16) -> Vec<TcpOptionElement> {
    vec![TcpOptionElement::MaximumSegmentSize(m)]
}

/// The `reasons` capture (config `golden.toml`).
pub fn reasons() -> Capture {
    use Reason::*;
    let mut g = Gen::new("reasons", "golden.toml", 16, 4);
    let c1 = v4("192.0.2.100");
    let c6 = v6("2001:db8::100");
    let blocked = v4("198.51.100.20");
    let allowed = v4("198.51.100.7");
    let ssh = v4("203.0.113.10");
    let ssh6 = v6("2001:db8:100:1::10");
    let game = v4("203.0.113.11");
    let range = v4("203.0.113.12");
    let smtp = v4("203.0.113.70");
    let reset_ip = v4("203.0.113.71");
    let cdn = v4("203.0.113.200");
    let cdn6 = v6("2001:db8:100::200");
    let bare = v4("203.0.113.20");
    let unbound = v4("198.18.0.5");
    let tcp = |sport, dport, flags, seq, ack| L4::Tcp {
        sport,
        dport,
        seq,
        ack,
        flags,
        opts: vec![],
        payload: 0,
    };
    let p = |src, dst, l4| Pkt {
        vlan: Vlan::None,
        src,
        dst,
        l4,
    };

    // 1. Link layer.
    let mut arp = l2(Vlan::None, 0x0806);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&[192, 0, 2, 100, 0, 0, 0, 0, 0, 0, 203, 0, 113, 10]);
    g.raw(arp, e(NotIp, None, None, "ARP request for an edge IP"));
    let mut lldp = l2(Vlan::None, 0x88cc);
    lldp.extend_from_slice(&[2, 7, 4, 0, 0, 0, 0, 0, 1, 0, 0]);
    g.raw(lldp, e(NotIp, None, None, "LLDP"));
    let mut dot3 = l2(Vlan::None, 0x0026);
    dot3.extend_from_slice(&[0x42, 0x42, 0x03, 0, 0, 0]);
    g.raw(
        dot3,
        e(NotIp, None, None, "802.3 frame with an LLC header (STP)"),
    );
    let syn = build(&p(c1, ssh, tcp(40000, 22, tf::SYN, 1, 0)));
    let mut triple = l2(Vlan::QinQ(10, 20), 0x8100);
    triple.extend_from_slice(&30u16.to_be_bytes());
    triple.extend_from_slice(&0x0800u16.to_be_bytes());
    triple.extend_from_slice(&syn[14..]);
    g.raw(
        triple,
        e(NotIp, None, None, "three VLAN tags (we parse at most two)"),
    );
    g.raw(
        vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0],
        e(Malformed, None, None, "10-byte runt"),
    );
    g.raw(
        l2(Vlan::None, 0x8100),
        e(Malformed, None, None, "VLAN ethertype with the tag cut off"),
    );

    // 2. IP header.
    let mut bad = syn.clone();
    bad[14 + 10] ^= 0xff;
    g.raw(bad, e(Malformed, None, None, "IPv4 header checksum wrong"));
    let mut ihl = syn.clone();
    ihl[14] = 0x44;
    fix_ipv4_checksum(&mut ihl);
    g.raw(ihl, e(Malformed, None, None, "IPv4 IHL 4"));
    g.raw(
        syn[..syn.len() - 4].to_vec(),
        e(Malformed, None, None, "IPv4 total length beyond the frame"),
    );
    let mut ver = syn.clone();
    ver[14] = 0x55;
    fix_ipv4_checksum(&mut ver);
    g.raw(
        ver,
        e(Malformed, None, None, "IPv4 ethertype with IP version 5"),
    );
    let syn6 = build(&p(c6, ssh6, tcp(40000, 22, tf::SYN, 1, 0)));
    g.raw(
        syn6[..syn6.len() - 2].to_vec(),
        e(
            Malformed,
            None,
            None,
            "IPv6 payload length beyond the frame",
        ),
    );
    let nine: Vec<(u8, usize)> = (0..9).map(|_| (60u8, 8usize)).collect();
    g.raw(
        with_v6_ext(&syn6, &nine),
        e(Malformed, None, None, "IPv6 with 9 extension headers"),
    );
    g.raw(
        syn6[..14 + 30].to_vec(),
        e(Malformed, None, None, "IPv6 header cut at 30 bytes"),
    );

    // 3. Not ours (before any L4 check).
    g.pkt(
        &p(c1, v4("192.0.2.77"), tcp(40000, 22, tf::SYN, 1, 0)),
        e(
            NotOurs,
            None,
            None,
            "SYN to an address outside our prefixes",
        ),
    );
    g.pkt(
        &p(c6, v6("2001:db8:999::1"), tcp(40000, 22, tf::SYN, 1, 0)),
        e(NotOurs, None, None, "IPv6 SYN outside our prefixes"),
    );
    let mut doff = build(&p(c1, v4("192.0.2.77"), tcp(40000, 22, tf::SYN, 1, 0)));
    doff[14 + 20 + 12] = 0x40;
    g.raw(
        doff,
        e(
            NotOurs,
            None,
            None,
            "not ours, with TCP data offset 4: not_ours comes first",
        ),
    );

    // 4. Fragments.
    let mut mf = build(&p(
        c1,
        ssh,
        L4::Udp {
            sport: 5000,
            dport: 22,
            payload: 40,
        },
    ));
    mf[14 + 6] = 0x20;
    fix_ipv4_checksum(&mut mf);
    g.raw(mf, e(Fragment, None, None, "IPv4 first fragment (MF)"));
    let mut off = build(&p(
        c1,
        ssh,
        L4::Udp {
            sport: 5000,
            dport: 22,
            payload: 40,
        },
    ));
    off[14 + 7] = 0x05;
    fix_ipv4_checksum(&mut off);
    g.raw(
        off,
        e(Fragment, None, None, "IPv4 later fragment (offset 40)"),
    );
    g.raw(
        with_v6_ext(&syn6, &[(44, 8)]),
        e(Fragment, None, None, "IPv6 fragment header"),
    );

    // 5. L4 header.
    let mut d4 = syn.clone();
    d4[14 + 20 + 12] = 0x40;
    g.raw(d4, e(Malformed, None, None, "TCP data offset 4"));
    let mut short = build(&p(c1, ssh, tcp(40000, 22, tf::SYN, 1, 0)));
    short.truncate(14 + 20 + 10);
    short[14 + 2..14 + 4].copy_from_slice(&30u16.to_be_bytes());
    fix_ipv4_checksum(&mut short);
    g.raw(
        short,
        e(Malformed, None, None, "TCP header cut at 10 bytes"),
    );
    let mut ulen = build(&p(
        c1,
        game,
        L4::Udp {
            sport: 5000,
            dport: 27015,
            payload: 8,
        },
    ));
    ulen[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&4u16.to_be_bytes());
    g.raw(ulen, e(Malformed, None, None, "UDP length 4"));
    let mut ushort = build(&p(
        c1,
        game,
        L4::Udp {
            sport: 5000,
            dport: 27015,
            payload: 0,
        },
    ));
    ushort.truncate(14 + 20 + 6);
    ushort[14 + 2..14 + 4].copy_from_slice(&26u16.to_be_bytes());
    fix_ipv4_checksum(&mut ushort);
    g.raw(
        ushort,
        e(Malformed, None, None, "UDP header cut at 6 bytes"),
    );

    // 6. No binding (onboarded, not advertised).
    g.pkt(
        &p(c1, unbound, tcp(40000, 80, tf::SYN, 1, 0)),
        e(
            NoBinding,
            None,
            None,
            "SYN to an onboarded prefix without bindings",
        ),
    );
    g.pkt(
        &p(c1, unbound, L4::Echo),
        e(
            NoBinding,
            None,
            None,
            "ping to an onboarded prefix without bindings",
        ),
    );

    // 7. Service policy.
    g.pkt(
        &p(c1, ssh, tcp(40000, 23, tf::SYN, 1, 0)),
        e(
            UnconfiguredPort,
            SPECTRUM,
            None,
            "SYN to the ssh edge IP, port 23",
        ),
    );
    g.pkt(
        &p(
            c1,
            ssh,
            L4::Udp {
                sport: 5000,
                dport: 53,
                payload: 20,
            },
        ),
        e(
            UnconfiguredPort,
            SPECTRUM,
            None,
            "UDP to the ssh edge IP, port 53",
        ),
    );
    g.pkt(
        &p(c1, ssh, L4::Echo),
        e(
            UnconfiguredProtocol,
            SPECTRUM,
            None,
            "ping to a Spectrum edge IP",
        ),
    );
    g.pkt(
        &p(c1, ssh, L4::Other(47, 24)),
        e(
            UnconfiguredProtocol,
            SPECTRUM,
            None,
            "GRE to a Spectrum edge IP",
        ),
    );
    g.pkt(
        &p(c1, bare, tcp(40000, 22, tf::SYN, 1, 0)),
        e(
            UnconfiguredPort,
            SPECTRUM,
            None,
            "SYN to a Spectrum address no app uses",
        ),
    );
    g.pkt(
        &p(c1, cdn, tcp(40000, 8080, tf::SYN, 1, 0)),
        e(
            UnconfiguredPort,
            CDN,
            None,
            "SYN to a CDN address, port 8080 (not a CDN port here)",
        ),
    );
    g.pkt(
        &p(
            c1,
            cdn,
            L4::Udp {
                sport: 5000,
                dport: 53,
                payload: 20,
            },
        ),
        e(UnconfiguredPort, CDN, None, "UDP to a CDN address, port 53"),
    );
    g.pkt(
        &p(c1, cdn, L4::Echo),
        e(UnconfiguredProtocol, CDN, None, "ping to a CDN address"),
    );
    g.pkt(
        &p(c1, cdn, tcp(40000, 80, tf::SYN, 1, 0)),
        e(Reset, CDN, None, "SYN to CDN port 80 under https_only: RST"),
    );
    g.pkt(
        &p(c1, reset_ip, tcp(40000, 26, tf::SYN, 1, 0)),
        e(
            Reset,
            SPECTRUM,
            None,
            "SYN to an unconfigured port of a reset binding: RST",
        ),
    );
    g.pkt(
        &p(
            c1,
            reset_ip,
            L4::Udp {
                sport: 5000,
                dport: 9999,
                payload: 20,
            },
        ),
        e(
            Reset,
            SPECTRUM,
            None,
            "UDP to an unconfigured port of a reset binding: ICMP port unreachable",
        ),
    );
    g.pkt(
        &p(c1, reset_ip, tcp(40000, 26, tf::RST, 1, 0)),
        e(
            UnconfiguredPort,
            SPECTRUM,
            None,
            "a RST is never answered with a RST",
        ),
    );
    g.pkt(
        &p(c1, reset_ip, tcp(40000, 26, tf::ACK, 1, 77)),
        e(
            Reset,
            SPECTRUM,
            None,
            "ACK to an unconfigured port of a reset binding: RST",
        ),
    );
    g.pkt(
        &Pkt {
            vlan: Vlan::None,
            src: c6,
            dst: v6("2001:db8:100:1::99"),
            l4: L4::Udp {
                sport: 5000,
                dport: 9,
                payload: 8,
            },
        },
        e(
            UnconfiguredPort,
            SPECTRUM,
            None,
            "IPv6 UDP to a Spectrum address no app uses",
        ),
    );

    // Port-range edges.
    for (port, r, what) in [
        (999, UnconfiguredPort, "below"),
        (1000, SynCookie, "first port of"),
        (2000, SynCookie, "last port of"),
        (2001, UnconfiguredPort, "above"),
    ] {
        let app = (r == SynCookie).then_some("range");
        g.syn(
            Vlan::None,
            c1,
            41000,
            range,
            port,
            5,
            vec![],
            0,
            e(
                r,
                SPECTRUM,
                app,
                format!("SYN to port {port}, {what} the range app's 1000-2000"),
            ),
        );
    }

    // 8. Access rules.
    g.pkt(
        &p(blocked, ssh, tcp(40001, 22, tf::SYN, 1, 0)),
        e(
            FirewallBlock,
            SPECTRUM,
            Some("ssh"),
            "SYN from a blocked range to an ip_firewall app",
        ),
    );
    g.pkt(
        &p(blocked, cdn, tcp(40001, 443, tf::SYN, 1, 0)),
        e(
            FirewallBlock,
            CDN,
            None,
            "SYN from a blocked range to the CDN (rules always apply)",
        ),
    );
    g.syn(
        Vlan::None,
        blocked,
        40001,
        range,
        1500,
        9,
        vec![],
        0,
        e(
            SynCookie,
            SPECTRUM,
            Some("range"),
            "SYN from a blocked range to an app without ip_firewall",
        ),
    );
    g.syn(
        Vlan::None,
        allowed,
        40002,
        ssh,
        22,
        9,
        vec![],
        0,
        e(
            SynCookie,
            SPECTRUM,
            Some("ssh"),
            "SYN from the allowed /32 inside the blocked /24 (longest prefix wins)",
        ),
    );
    g.pkt(
        &p(blocked, smtp, tcp(40001, 25, tf::SYN, 1, 0)),
        e(
            FirewallBlock,
            SPECTRUM,
            Some("smtp"),
            "SYN from a blocked range to an app in a reset binding",
        ),
    );
    g.pkt(
        &p(blocked, ssh, tcp(40003, 22, tf::ACK, 1, 2)),
        e(
            FirewallBlock,
            SPECTRUM,
            Some("ssh"),
            "an ACK from a blocked range never reaches the cookie check",
        ),
    );

    // 9. SYN cookies of every shape.
    g.syn(
        Vlan::None,
        c1,
        42000,
        ssh,
        22,
        1000,
        opts_full(5000),
        0,
        e(
            SynCookie,
            SPECTRUM,
            Some("ssh"),
            "IPv4 SYN with MSS, SACK, timestamps, window scale",
        ),
    );
    g.syn(
        Vlan::None,
        c6,
        42000,
        ssh6,
        22,
        1000,
        opts_full(5000),
        0,
        e(SynCookie, SPECTRUM, Some("ssh"), "IPv6 SYN with options"),
    );
    g.syn(
        Vlan::One(100),
        c1,
        42001,
        ssh,
        22,
        1000,
        opts_mss(1400),
        0,
        e(SynCookie, SPECTRUM, Some("ssh"), "802.1Q-tagged IPv4 SYN"),
    );
    g.syn(
        Vlan::QinQ(200, 300),
        c1,
        42002,
        cdn,
        443,
        1000,
        opts_mss(1460),
        0,
        e(SynCookie, CDN, None, "QinQ-tagged IPv4 SYN to the CDN"),
    );
    let s6 = build(&Pkt {
        vlan: Vlan::None,
        src: c6,
        dst: ssh6,
        l4: L4::Tcp {
            sport: 42003,
            dport: 22,
            seq: 1000,
            ack: 0,
            flags: tf::SYN,
            opts: opts_mss(1440),
            payload: 0,
        },
    });
    g.raw(
        with_v6_ext(&s6, &[(0, 8), (60, 16)]),
        e(
            SynCookie,
            SPECTRUM,
            Some("ssh"),
            "IPv6 SYN behind hop-by-hop and destination-options headers",
        ),
    );
    g.syn(
        Vlan::None,
        c1,
        42004,
        ssh,
        22,
        1000,
        opts_full(7000),
        tf::ECE | tf::CWR,
        e(
            SynCookie,
            SPECTRUM,
            Some("ssh"),
            "ECN-setup SYN with timestamps",
        ),
    );
    g.pkt(
        &p(c1, ssh, tcp(42005, 22, tf::SYN | tf::FIN, 1, 0)),
        e(OutOfState, SPECTRUM, Some("ssh"), "SYN+FIN is not a SYN"),
    );
    g.pkt(
        &p(c1, ssh, tcp(42006, 22, tf::ACK, 1, 0xdead_beef)),
        e(
            OutOfState,
            SPECTRUM,
            Some("ssh"),
            "ACK without a flow and with a forged cookie",
        ),
    );
    g.pkt(
        &p(c6, cdn6, tcp(42007, 443, tf::ACK, 1, 0x1234_5678)),
        e(
            OutOfState,
            CDN,
            None,
            "IPv6 ACK to the CDN with a forged cookie",
        ),
    );

    // Complete handshakes.
    g.align();
    let a = g.syn(
        Vlan::None,
        c1,
        43000,
        ssh,
        22,
        0x1111_0000,
        opts_full(10_000),
        0,
        e(SynCookie, SPECTRUM, Some("ssh"), "handshake A: SYN"),
    );
    g.wait(1_000_000);
    g.seg(
        &a,
        tf::ACK,
        0,
        0,
        0,
        e(
            NewFlow,
            SPECTRUM,
            Some("ssh"),
            "handshake A: ACK with the cookie: new flow",
        ),
    );
    g.seg(
        &a,
        tf::ACK | tf::PSH,
        0,
        0,
        100,
        e(Flow, SPECTRUM, Some("ssh"), "handshake A: data"),
    );
    g.seg(
        &a,
        tf::ACK | tf::FIN,
        100,
        0,
        0,
        e(Flow, SPECTRUM, Some("ssh"), "handshake A: FIN"),
    );
    g.align();
    g.seg(
        &a,
        tf::ACK,
        101,
        1,
        0,
        e(
            Flow,
            SPECTRUM,
            Some("ssh"),
            "handshake A: last ACK while the flow lingers",
        ),
    );
    let b = g.syn(
        Vlan::None,
        c6,
        43001,
        ssh6,
        22,
        0x2222_0000,
        opts_full(20_000),
        0,
        e(SynCookie, SPECTRUM, Some("ssh"), "handshake B (IPv6): SYN"),
    );
    g.wait(2_000_000);
    g.seg(
        &b,
        tf::ACK,
        0,
        0,
        0,
        e(
            NewFlow,
            SPECTRUM,
            Some("ssh"),
            "handshake B: ACK with the cookie (timestamps echo the options)",
        ),
    );
    g.seg(
        &b,
        tf::RST | tf::ACK,
        0,
        0,
        0,
        e(
            Flow,
            SPECTRUM,
            Some("ssh"),
            "handshake B: client RST ends the flow",
        ),
    );
    g.align();
    g.seg(
        &b,
        tf::ACK,
        0,
        5,
        10,
        e(
            OutOfState,
            SPECTRUM,
            Some("ssh"),
            "handshake B: data after the RST",
        ),
    );
    let c = g.syn(
        Vlan::QinQ(5, 6),
        c1,
        43002,
        cdn,
        443,
        0x3333_0000,
        opts_mss(1460),
        0,
        e(SynCookie, CDN, None, "handshake C (QinQ, CDN): SYN"),
    );
    g.seg(
        &c,
        tf::ACK | tf::PSH,
        0,
        0,
        300,
        e(NewFlow, CDN, None, "handshake C: ACK carrying data"),
    );
    let d = g.syn(
        Vlan::None,
        c1,
        43003,
        range,
        1999,
        0x4444_0000,
        vec![],
        0,
        e(
            SynCookie,
            SPECTRUM,
            Some("range"),
            "handshake D: SYN without options",
        ),
    );
    g.seg(
        &d,
        tf::ACK,
        0,
        1,
        0,
        e(
            OutOfState,
            SPECTRUM,
            Some("range"),
            "handshake D: ACK with the cookie off by one",
        ),
    );
    let mut other = d.clone();
    if let L4::Tcp { sport, .. } = &mut other.pkt.l4 {
        *sport = 43004;
    }
    g.seg(
        &other,
        tf::ACK,
        0,
        0,
        0,
        e(
            OutOfState,
            SPECTRUM,
            Some("range"),
            "handshake D's cookie from another source port",
        ),
    );
    g.seg(
        &d,
        tf::ACK,
        0,
        0,
        0,
        e(
            NewFlow,
            SPECTRUM,
            Some("range"),
            "handshake D: the right ACK",
        ),
    );

    // UDP flows.
    g.align();
    let gp = |sport| Pkt {
        vlan: Vlan::None,
        src: c1,
        dst: game,
        l4: L4::Udp {
            sport,
            dport: 27015,
            payload: 64,
        },
    };
    g.pkt(
        &gp(50000),
        e(
            NewFlow,
            SPECTRUM,
            Some("game"),
            "UDP game flow: first datagram",
        ),
    );
    g.pkt(
        &gp(50000),
        e(
            Flow,
            SPECTRUM,
            Some("game"),
            "UDP game flow: second datagram",
        ),
    );
    g.pkt(
        &Pkt {
            vlan: Vlan::None,
            src: c6,
            dst: cdn6,
            l4: L4::Udp {
                sport: 50001,
                dport: 443,
                payload: 1200,
            },
        },
        e(NewFlow, CDN, None, "QUIC Initial to the CDN over IPv6"),
    );
    g.align();
    g.wait(31_000_000_000);
    g.pkt(
        &gp(50000),
        e(
            NewFlow,
            SPECTRUM,
            Some("game"),
            "UDP game flow after 31 s idle (timeout 30 s): new again",
        ),
    );
    g.wait(11_000_000_000);
    g.seg(
        &a,
        tf::ACK,
        101,
        1,
        0,
        e(
            OutOfState,
            SPECTRUM,
            Some("ssh"),
            "handshake A: an ACK after the 10 s linger",
        ),
    );

    // 10. Queue full: one batch with 16 datagrams of one flow; the queue holds 4.
    g.align();
    g.pkt(
        &gp(51000),
        e(NewFlow, SPECTRUM, Some("game"), "burst: first datagram"),
    );
    for i in 2..=16 {
        let r = if i <= 4 { Flow } else { QueueFull };
        g.pkt(
            &gp(51000),
            e(
                r,
                SPECTRUM,
                Some("game"),
                format!("burst: datagram {i} (queue holds 4 per batch)"),
            ),
        );
    }

    // Cookies expire: an ACK 301 s after its SYN.
    g.align();
    let late = g.syn(
        Vlan::None,
        c1,
        44000,
        ssh,
        22,
        0x5555_0000,
        opts_mss(1460),
        0,
        e(SynCookie, SPECTRUM, Some("ssh"), "late handshake: SYN"),
    );
    g.wait(301_000_000_000);
    g.seg(
        &late,
        tf::ACK,
        0,
        0,
        0,
        e(
            OutOfState,
            SPECTRUM,
            Some("ssh"),
            "late handshake: ACK 301 s later (cookie too old)",
        ),
    );
    g.finish()
}

/// Tiny deterministic PRNG (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The `mixed` capture (config `edge-lab.toml`): floods with legitimate traffic among them.
pub fn mixed() -> Capture {
    use Reason::*;
    let mut g = Gen::new("mixed", "edge-lab.toml", 64, 4096);
    let mut rng = Rng::new(0x5eed);
    let ssh = v4("203.0.113.10");
    let ssh6 = v6("2001:db8:100:1::10");
    let game = v4("203.0.113.11");
    let cdn = v4("203.0.113.200");
    let cdn6 = v6("2001:db8:100::200");
    // Flood sources: random addresses in 100.64.0.0/10 (not blocked).
    let flood_src =
        |rng: &mut Rng| IpAddr::V4(Ipv4Addr::from(0x6440_0000 | (rng.below(1 << 22) as u32)));
    #[derive(Clone, Copy)]
    enum Step {
        SynFlood,
        UdpFlood,
        AckFlood,
        Handshake(usize),
        Game(usize),
        Other,
    }
    let mut plan: Vec<Step> = Vec::new();
    plan.extend(std::iter::repeat_n(Step::SynFlood, 4000));
    plan.extend(std::iter::repeat_n(Step::UdpFlood, 2500));
    plan.extend(std::iter::repeat_n(Step::AckFlood, 1500));
    plan.extend((0..300).map(Step::Handshake));
    plan.extend((0..150).map(Step::Game));
    plan.extend(std::iter::repeat_n(Step::Other, 200));
    // Shuffle (Fisher-Yates).
    for i in (1..plan.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        plan.swap(i, j);
    }
    // Handshakes and game flows emit their later packets as the flood goes on.
    let mut pending: Vec<(usize, Syn, u8)> = Vec::new(); // (due frame index, syn, next step)
    let mut games: Vec<(usize, u16, u8)> = Vec::new();
    for (n, step) in plan.into_iter().enumerate() {
        match step {
            Step::SynFlood => {
                let src = flood_src(&mut rng);
                let sport = 1024 + rng.below(60000) as u16;
                g.syn(
                    Vlan::None,
                    src,
                    sport,
                    ssh,
                    22,
                    rng.next_u64() as u32,
                    opts_mss(1460),
                    0,
                    e(SynCookie, SPECTRUM, Some("ssh"), "SYN flood"),
                );
            }
            Step::UdpFlood => {
                let src = flood_src(&mut rng);
                let p = Pkt {
                    vlan: Vlan::None,
                    src,
                    dst: game,
                    l4: L4::Udp {
                        sport: rng.below(65535) as u16 + 1,
                        dport: 9999,
                        payload: 32,
                    },
                };
                g.pkt(
                    &p,
                    e(
                        UnconfiguredPort,
                        SPECTRUM,
                        None,
                        "UDP flood at an unconfigured port",
                    ),
                );
            }
            Step::AckFlood => {
                let src = flood_src(&mut rng);
                let p = Pkt {
                    vlan: Vlan::None,
                    src,
                    dst: ssh,
                    l4: L4::Tcp {
                        sport: 1024 + rng.below(60000) as u16,
                        dport: 22,
                        seq: rng.next_u64() as u32,
                        ack: rng.next_u64() as u32,
                        flags: tf::ACK,
                        opts: vec![],
                        payload: 0,
                    },
                };
                g.pkt(&p, e(OutOfState, SPECTRUM, Some("ssh"), "ACK flood"));
            }
            Step::Handshake(i) => {
                let (src, dst, dport, svc, app) = match i % 3 {
                    0 => (
                        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + (i % 200) as u8)),
                        ssh,
                        22,
                        SPECTRUM,
                        Some("ssh"),
                    ),
                    1 => (
                        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + (i % 200) as u8)),
                        cdn,
                        443,
                        CDN,
                        None,
                    ),
                    _ => (
                        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 + i as u16)),
                        if i % 2 == 0 { ssh6 } else { cdn6 },
                        if i % 2 == 0 { 22 } else { 443 },
                        if i % 2 == 0 { SPECTRUM } else { CDN },
                        if i % 2 == 0 { Some("ssh") } else { None },
                    ),
                };
                let s = g.syn(
                    Vlan::None,
                    src,
                    20000 + i as u16,
                    dst,
                    dport,
                    rng.next_u64() as u32,
                    opts_full(rng.next_u64() as u32 >> 1),
                    0,
                    e(SynCookie, svc, app, "legitimate SYN"),
                );
                pending.push((n + 20, s, 0));
            }
            Step::Game(i) => {
                games.push((n, 30000 + i as u16, 0));
                let p = Pkt {
                    vlan: Vlan::None,
                    src: v4("192.0.2.150"),
                    dst: game,
                    l4: L4::Udp {
                        sport: 30000 + i as u16,
                        dport: 27015,
                        payload: 100,
                    },
                };
                g.pkt(
                    &p,
                    e(
                        NewFlow,
                        SPECTRUM,
                        Some("game"),
                        "game client: first datagram",
                    ),
                );
                games.last_mut().expect("just pushed").2 = 1;
            }
            Step::Other => {
                let r = rng.below(3);
                let p = match r {
                    0 => Pkt {
                        vlan: Vlan::None,
                        src: v4("192.0.2.9"),
                        dst: v4("192.0.2.1"),
                        l4: L4::Udp {
                            sport: 53,
                            dport: 53,
                            payload: 40,
                        },
                    },
                    1 => Pkt {
                        vlan: Vlan::None,
                        src: v4("198.51.100.66"),
                        dst: ssh,
                        l4: L4::Tcp {
                            sport: 5555,
                            dport: 22,
                            seq: 1,
                            ack: 0,
                            flags: tf::SYN,
                            opts: vec![],
                            payload: 0,
                        },
                    },
                    _ => Pkt {
                        vlan: Vlan::None,
                        src: v4("192.0.2.9"),
                        dst: cdn,
                        l4: L4::Echo,
                    },
                };
                let ex = match r {
                    0 => e(NotOurs, None, None, "traffic to the host's own network"),
                    1 => e(
                        FirewallBlock,
                        SPECTRUM,
                        Some("ssh"),
                        "SSH attempt from a blocked range",
                    ),
                    _ => e(UnconfiguredProtocol, CDN, None, "ping to a CDN address"),
                };
                g.pkt(&p, ex);
            }
        }
        // Due follow-ups of handshakes: ACK, 3 data segments, FIN.
        let mut k = 0;
        while k < pending.len() {
            if pending[k].0 <= n {
                let (_, s, stepn) = pending[k].clone();
                let (svc, app) = if matches!(s.pkt.l4, L4::Tcp { dport: 22, .. }) {
                    (SPECTRUM, Some("ssh"))
                } else {
                    (CDN, None)
                };
                match stepn {
                    0 => g.seg(
                        &s,
                        tf::ACK,
                        0,
                        0,
                        0,
                        e(NewFlow, svc, app, "legitimate ACK with the cookie"),
                    ),
                    1..=3 => g.seg(
                        &s,
                        tf::ACK | tf::PSH,
                        200 * (u32::from(stepn) - 1),
                        0,
                        200,
                        e(Flow, svc, app, "established flow: data"),
                    ),
                    _ => g.seg(
                        &s,
                        tf::ACK | tf::FIN,
                        600,
                        0,
                        0,
                        e(Flow, svc, app, "established flow: FIN"),
                    ),
                }
                if stepn >= 4 {
                    pending.swap_remove(k);
                    continue;
                }
                pending[k].0 = n + 10;
                pending[k].2 += 1;
            }
            k += 1;
        }
        let mut k = 0;
        while k < games.len() {
            if games[k].0 + 15 <= n {
                let (_, sport, c) = games[k];
                let p = Pkt {
                    vlan: Vlan::None,
                    src: v4("192.0.2.150"),
                    dst: game,
                    l4: L4::Udp {
                        sport,
                        dport: 27015,
                        payload: 100,
                    },
                };
                g.pkt(
                    &p,
                    e(Flow, SPECTRUM, Some("game"), "game client: later datagram"),
                );
                if c >= 4 {
                    games.swap_remove(k);
                    continue;
                }
                games[k] = (n, sport, c + 1);
            }
            k += 1;
        }
    }
    g.finish()
}

/// Frames of the [`flows`] mix.
pub const FLOWS_FRAMES: usize = 100_000;

/// A generated mix with many distinct flows (config `edge-lab.toml`), made in memory from
/// `seed` by the benchmarks (`cargo bench --bench bench`, `fastpath bench --compare`); it is
/// not written to `pcaps/` (`cargo run -p pcapgen -- flows SEED FILE` writes it on demand).
///
/// Of its [`FLOWS_FRAMES`] frames, interleaved at random:
/// * 45% SYNs: 38,000 from a flood (random sources and ports, to the `ssh` and `range` apps
///   and the CDN, IPv4 and IPv6) and the 7,000 SYNs of legitimate connections;
/// * 20% established traffic: those connections' cookie ACKs (`new_flow`) and 1 or 2 data
///   segments each (`flow`), and 1,250 UDP flows to the `game` app, 2 datagrams each;
/// * 20% unconfigured: UDP and TCP to ports no app or CDN rule serves;
/// * 10% out of state: ACKs and FIN-ACKs of no flow with random numbers;
/// * 5% not ours: destinations outside our prefixes.
///
/// Every source address and port is drawn at random, so nearly every frame of the floods is
/// a flow of its own (well over 20,000 distinct 5-tuples; [`distinct_flows`] counts them) and
/// the 8,250 legitimate flows are spread over the whole flow table. Each frame carries the
/// verdict it must get, like the committed captures.
pub fn flows(seed: u64) -> Capture {
    use Reason::*;
    use std::collections::HashSet;
    let mut g = Gen::new("flows", "edge-lab.toml", 64, 4096);
    let mut rng = Rng::new(seed);
    let ssh = v4("203.0.113.10");
    let ssh6 = v6("2001:db8:100:1::10");
    let game = v4("203.0.113.11");
    let range = v4("203.0.113.12");
    let cdn = v4("203.0.113.200");
    let cdn6 = v6("2001:db8:100::200");
    // Legitimate clients in 100.64.0.0/11 and 2001:db8:1::/48, everything else in
    // 100.96.0.0/11 and 2001:db8:2::/48: a flood frame never lands on a legitimate flow.
    let legit4 =
        |rng: &mut Rng| IpAddr::V4(Ipv4Addr::from(0x6440_0000 | (rng.below(1 << 21) as u32)));
    let flood4 =
        |rng: &mut Rng| IpAddr::V4(Ipv4Addr::from(0x6460_0000 | (rng.below(1 << 21) as u32)));
    let legit6 = |rng: &mut Rng| {
        IpAddr::V6(Ipv6Addr::from(
            (0x2001_0db8_0001_u128 << 80) | u128::from(rng.next_u64()),
        ))
    };
    let flood6 = |rng: &mut Rng| {
        IpAddr::V6(Ipv6Addr::from(
            (0x2001_0db8_0002_u128 << 80) | u128::from(rng.next_u64()),
        ))
    };
    let port = |rng: &mut Rng| 1024 + rng.below(64_000) as u16;
    #[derive(Clone, Copy)]
    enum Step {
        SynFlood,
        Connection,
        UdpFlow,
        Unconfigured,
        OutOfState,
        NotOurs,
    }
    let mut plan: Vec<Step> = Vec::new();
    plan.extend(std::iter::repeat_n(Step::SynFlood, 38_000));
    plan.extend(std::iter::repeat_n(Step::Connection, 7_000));
    plan.extend(std::iter::repeat_n(Step::UdpFlow, 1_250));
    plan.extend(std::iter::repeat_n(Step::Unconfigured, 20_000));
    plan.extend(std::iter::repeat_n(Step::OutOfState, 10_000));
    plan.extend(std::iter::repeat_n(Step::NotOurs, 5_000));
    for i in (1..plan.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        plan.swap(i, j);
    }
    let mut taken: HashSet<(IpAddr, u16)> = HashSet::new();
    let mut connections = 0u32;
    // Follow-ups: (due at this many frames emitted, what).
    enum Next {
        Tcp(Syn, Option<Service>, Option<&'static str>, u8, u8),
        Udp(IpAddr, u16),
    }
    let mut pending: Vec<(usize, Next)> = Vec::new();
    // Writes a follow-up frame; returns the one after it, if any.
    let emit = |g: &mut Gen, next: Next| -> Option<Next> {
        match next {
            Next::Tcp(s, svc, app, 0, data) => {
                g.seg(
                    &s,
                    tf::ACK,
                    0,
                    0,
                    0,
                    e(NewFlow, svc, app, "legitimate ACK with the cookie"),
                );
                Some(Next::Tcp(s, svc, app, 1, data))
            }
            Next::Tcp(s, svc, app, n, data) => {
                g.seg(
                    &s,
                    tf::ACK | tf::PSH,
                    200 * (u32::from(n) - 1),
                    0,
                    200,
                    e(Flow, svc, app, "established flow: data"),
                );
                (n < data).then_some(Next::Tcp(s, svc, app, n + 1, data))
            }
            Next::Udp(src, sport) => {
                let p = Pkt {
                    vlan: Vlan::None,
                    src,
                    dst: game,
                    l4: L4::Udp {
                        sport,
                        dport: 27015,
                        payload: 100,
                    },
                };
                g.pkt(
                    &p,
                    e(Flow, SPECTRUM, Some("game"), "game client: later datagram"),
                );
                None
            }
        }
    };
    for step in plan {
        match step {
            Step::SynFlood => {
                let (src, dst, dport, svc, app) = match rng.below(8) {
                    0..=3 => (flood4(&mut rng), ssh, 22, SPECTRUM, Some("ssh")),
                    4 => (
                        flood4(&mut rng),
                        range,
                        1000 + rng.below(1001) as u16,
                        SPECTRUM,
                        Some("range"),
                    ),
                    5 => (flood4(&mut rng), cdn, 443, CDN, None),
                    6 => (flood6(&mut rng), ssh6, 22, SPECTRUM, Some("ssh")),
                    _ => (flood6(&mut rng), cdn6, 443, CDN, None),
                };
                let opts = if rng.below(2) == 0 {
                    opts_mss(1460)
                } else {
                    vec![]
                };
                let sport = port(&mut rng);
                g.syn(
                    Vlan::None,
                    src,
                    sport,
                    dst,
                    dport,
                    rng.next_u64() as u32,
                    opts,
                    0,
                    e(SynCookie, svc, app, "SYN flood"),
                );
            }
            Step::Connection => {
                let v6 = rng.below(5) == 0;
                let (dst, dport, svc, app) = match (v6, rng.below(3)) {
                    (false, 0) => (ssh, 22, SPECTRUM, Some("ssh")),
                    (false, 1) => (
                        range,
                        1000 + rng.below(1001) as u16,
                        SPECTRUM,
                        Some("range"),
                    ),
                    (false, _) => (cdn, 443, CDN, None),
                    (true, 0) => (ssh6, 22, SPECTRUM, Some("ssh")),
                    (true, _) => (cdn6, 443, CDN, None),
                };
                let (src, sport) = loop {
                    let src = if v6 {
                        legit6(&mut rng)
                    } else {
                        legit4(&mut rng)
                    };
                    let sport = port(&mut rng);
                    if taken.insert((src, sport)) {
                        break (src, sport);
                    }
                };
                let s = g.syn(
                    Vlan::None,
                    src,
                    sport,
                    dst,
                    dport,
                    rng.next_u64() as u32,
                    opts_full(rng.next_u64() as u32 >> 1),
                    0,
                    e(SynCookie, svc, app, "legitimate SYN"),
                );
                // Half the connections send one data segment, half two.
                connections += 1;
                let data = if connections.is_multiple_of(2) { 2 } else { 1 };
                let due = g.frames.len() + 64 + rng.below(2000) as usize;
                pending.push((due, Next::Tcp(s, svc, app, 0, data)));
            }
            Step::UdpFlow => {
                let (src, sport) = loop {
                    let src = legit4(&mut rng);
                    let sport = port(&mut rng);
                    if taken.insert((src, sport)) {
                        break (src, sport);
                    }
                };
                let p = Pkt {
                    vlan: Vlan::None,
                    src,
                    dst: game,
                    l4: L4::Udp {
                        sport,
                        dport: 27015,
                        payload: 100,
                    },
                };
                g.pkt(
                    &p,
                    e(
                        NewFlow,
                        SPECTRUM,
                        Some("game"),
                        "game client: first datagram",
                    ),
                );
                let due = g.frames.len() + 64 + rng.below(2000) as usize;
                pending.push((due, Next::Udp(src, sport)));
            }
            Step::Unconfigured => {
                let src = flood4(&mut rng);
                let sport = port(&mut rng);
                let (dst, l4, svc) = match rng.below(4) {
                    0 | 1 => (
                        game,
                        L4::Udp {
                            sport,
                            dport: 9999,
                            payload: 32,
                        },
                        SPECTRUM,
                    ),
                    2 => (
                        ssh,
                        L4::Tcp {
                            sport,
                            dport: 23,
                            seq: rng.next_u64() as u32,
                            ack: 0,
                            flags: tf::SYN,
                            opts: vec![],
                            payload: 0,
                        },
                        SPECTRUM,
                    ),
                    _ => (
                        cdn,
                        L4::Udp {
                            sport,
                            dport: 53,
                            payload: 32,
                        },
                        CDN,
                    ),
                };
                g.pkt(
                    &Pkt {
                        vlan: Vlan::None,
                        src,
                        dst,
                        l4,
                    },
                    e(UnconfiguredPort, svc, None, "to an unconfigured port"),
                );
            }
            Step::OutOfState => {
                let v6 = rng.below(5) == 0;
                let src = if v6 {
                    flood6(&mut rng)
                } else {
                    flood4(&mut rng)
                };
                let (dst, dport, svc, app) = match (v6, rng.below(2)) {
                    (false, 0) => (ssh, 22, SPECTRUM, Some("ssh")),
                    (false, _) => (cdn, 443, CDN, None),
                    (true, 0) => (ssh6, 22, SPECTRUM, Some("ssh")),
                    (true, _) => (cdn6, 443, CDN, None),
                };
                let flags = if rng.below(4) == 0 {
                    tf::ACK | tf::FIN
                } else {
                    tf::ACK
                };
                let p = Pkt {
                    vlan: Vlan::None,
                    src,
                    dst,
                    l4: L4::Tcp {
                        sport: port(&mut rng),
                        dport,
                        seq: rng.next_u64() as u32,
                        ack: rng.next_u64() as u32,
                        flags,
                        opts: vec![],
                        payload: 0,
                    },
                };
                g.pkt(&p, e(OutOfState, svc, app, "ACK of no flow"));
            }
            Step::NotOurs => {
                let p = Pkt {
                    vlan: Vlan::None,
                    src: flood4(&mut rng),
                    dst: IpAddr::V4(Ipv4Addr::from(0xc633_0000 | (rng.below(1 << 16) as u32))),
                    l4: L4::Udp {
                        sport: port(&mut rng),
                        dport: 53,
                        payload: 40,
                    },
                };
                g.pkt(&p, e(NotOurs, None, None, "to an address that is not ours"));
            }
        }
        // Due follow-ups, in the order they were scheduled.
        let mut k = 0;
        while k < pending.len() {
            if pending[k].0 > g.frames.len() {
                k += 1;
                continue;
            }
            let (_, next) = pending.remove(k);
            if let Some(then) = emit(&mut g, next) {
                let due = g.frames.len() + 1 + rng.below(500) as usize;
                pending.push((due, then));
            }
        }
    }
    // Whatever is still due goes at the end, in order.
    pending.sort_by_key(|p| p.0);
    while !pending.is_empty() {
        let (_, next) = pending.remove(0);
        if let Some(then) = emit(&mut g, next) {
            pending.push((0, then));
        }
    }
    assert_eq!(g.frames.len(), FLOWS_FRAMES, "the mix adds up");
    g.finish()
}

/// Distinct flows (protocol and 5-tuple) among the TCP and UDP frames of `c`.
pub fn distinct_flows(c: &Capture) -> usize {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let mut seen = std::collections::HashSet::new();
    for f in &c.frames {
        let Ok(p) = SlicedPacket::from_ethernet(&f.data) else {
            continue;
        };
        let (s, d): (IpAddr, IpAddr) = match &p.net {
            Some(NetSlice::Ipv4(ip)) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            Some(NetSlice::Ipv6(ip)) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            _ => continue,
        };
        let t = match &p.transport {
            Some(TransportSlice::Tcp(t)) => (6u8, t.source_port(), t.destination_port()),
            Some(TransportSlice::Udp(u)) => (17u8, u.source_port(), u.destination_port()),
            _ => continue,
        };
        seen.insert((t.0, s, t.1, d, t.2));
    }
    seen.len()
}

/// (vlan, source, destination, port, app, options, extra flags) of a SYN shape.
type Shape = (
    Vlan,
    &'static str,
    &'static str,
    u16,
    Option<&'static str>,
    Vec<TcpOptionElement>,
    u8,
);

/// The `handshake-syns` capture (config `edge-lab.toml`): SYNs of every shape, for the
/// two-pass cookie test (SYNs → SYN-ACKs from `--tx-out` → ACKs built from them).
pub fn handshake_syns() -> Capture {
    use Reason::*;
    let mut g = Gen::new("handshake-syns", "edge-lab.toml", 64, 4096);
    let shapes: [Shape; 10] = [
        (
            Vlan::None,
            "192.0.2.21",
            "203.0.113.10",
            22,
            Some("ssh"),
            opts_full(1000),
            0,
        ),
        (
            Vlan::None,
            "192.0.2.22",
            "203.0.113.10",
            22,
            Some("ssh"),
            vec![],
            0,
        ),
        (
            Vlan::None,
            "192.0.2.23",
            "203.0.113.10",
            22,
            Some("ssh"),
            opts_mss(536),
            0,
        ),
        (
            Vlan::One(7),
            "192.0.2.24",
            "203.0.113.12",
            1000,
            Some("range"),
            opts_full(2000),
            0,
        ),
        (
            Vlan::QinQ(8, 9),
            "192.0.2.25",
            "203.0.113.12",
            2000,
            Some("range"),
            opts_mss(1400),
            0,
        ),
        (
            Vlan::None,
            "192.0.2.26",
            "203.0.113.200",
            443,
            None,
            opts_full(3000),
            tf::ECE | tf::CWR,
        ),
        (
            Vlan::None,
            "2001:db8::21",
            "2001:db8:100:1::10",
            22,
            Some("ssh"),
            opts_full(4000),
            0,
        ),
        (
            Vlan::One(7),
            "2001:db8::22",
            "2001:db8:100::200",
            8443,
            None,
            opts_mss(1440),
            0,
        ),
        (
            Vlan::None,
            "2001:db8::23",
            "2001:db8:100:1::10",
            22,
            Some("ssh"),
            vec![],
            0,
        ),
        (
            Vlan::QinQ(1, 2),
            "2001:db8::24",
            "2001:db8:100::200",
            443,
            None,
            opts_full(5000),
            0,
        ),
    ];
    for (i, (vlan, src, dst, dport, app, opts, fl)) in shapes.into_iter().enumerate() {
        let s: IpAddr = src.parse().expect("address");
        let d: IpAddr = dst.parse().expect("address");
        let svc = if app.is_some() { SPECTRUM } else { CDN };
        g.syn(
            vlan,
            s,
            33000 + i as u16,
            d,
            dport,
            0x1000_0000 + i as u32 * 7919,
            opts,
            fl,
            e(SynCookie, svc, app, format!("SYN shape {}", i + 1)),
        );
    }
    // The same ten shapes once more behind IPv6 extension headers where they are IPv6.
    g.finish()
}

/// Every capture.
pub fn all() -> Vec<Capture> {
    vec![reasons(), mixed(), handshake_syns()]
}

/// The capture as a pcap (our writer: nanosecond pcap, Ethernet).
pub fn pcap_bytes(c: &Capture) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = fastpath::replay::PcapWriter::new(&mut out).expect("in-memory write");
        for f in &c.frames {
            w.write(f.ts_ns, &f.data).expect("in-memory write");
        }
        w.finish().expect("in-memory write");
    }
    out
}

#[derive(Serialize)]
struct Line<'a> {
    frame: usize,
    verdict: &'static str,
    reason: &'static str,
    service: Option<&'static str>,
    app: Option<&'a str>,
    worker: Option<u16>,
    what: &'a str,
}

/// The expected verdicts, one JSON object per frame, in the `--verdicts` format plus `what`.
pub fn expected_jsonl(c: &Capture) -> String {
    let mut s = String::new();
    for (i, f) in c.frames.iter().enumerate() {
        let x = &f.expect;
        let line = Line {
            frame: i + 1,
            verdict: x.reason.verdict().as_str(),
            reason: x.reason.as_str(),
            service: x.service.map(Service::as_str),
            app: x.app,
            worker: x.worker,
            what: &x.what,
        };
        s.push_str(&serde_json::to_string(&line).expect("serializable"));
        s.push('\n');
    }
    s
}
