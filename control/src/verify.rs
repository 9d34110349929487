//! Exhaustive verification and semantic diff of an edge configuration, run by the control
//! socket before a change is applied.
//!
//! # The model
//!
//! The destination of a TCP or UDP packet (what the data plane does with it) depends only on
//! (protocol, destination address, destination port):
//!
//! * an address outside every onboarded prefix is `not_ours` (passed to the kernel);
//! * inside a prefix, the longest binding covering the address decides; without one the packet
//!   is dropped as `no_binding`;
//! * under a Spectrum binding, the app whose edge IPs contain the address, with the same protocol
//!   and the port inside its range, serves it (`app <id>`); any other port is
//!   `unconfigured drop` or `unconfigured reset`, as the binding says;
//! * under a CDN binding, TCP port 80 with `https_only` is answered with a RST (`reset`), a TCP
//!   port of `cdn.tcp_ports` or a UDP port of `cdn.udp_ports` is served (`cdn`), and any other
//!   port is unconfigured as above.
//!
//! Other protocols are never served, so only TCP and UDP are modelled. Access rules act on the
//! *source* address and never change a destination: they are ignored, so their number costs
//! nothing.
//!
//! Every prefix, binding and edge IP splits the address line of its family (IPv4 as `u32`,
//! IPv6 as `u128` ranges) into elementary intervals; every app range, CDN port and port 80 splits
//! the port line. On each (protocol × address interval × port interval) cell the destination is
//! constant, so [`verify`] and [`diff`] walk those cells: the answers are exact and exhaustive,
//! never sampled.
//!
//! Prefixes and bindings are CIDR blocks, so any two are nested or disjoint: one sorted sweep
//! with a stack finds the longest covering block of every interval, in `O(n log n)` for `n`
//! prefixes, bindings and edge IPs.
//!
//! # Inputs the data plane refuses
//!
//! Both functions accept any [`TablesSpec`] and never panic. Where the data plane would refuse
//! the spec, they decide as follows: among bindings with the same range, the first in spec order
//! decides (the others are reported as shadowed); among apps claiming the same traffic, the first
//! in spec order serves it (the pair is reported as an overlap); an app whose port range is empty
//! (`lo > hi`) claims nothing.

use core::cmp::Reverse;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use fastpath::tables::{L4Proto, TablesSpec, Unconfigured};
use fastpath::verdict::Service;
use ipnet::IpNet;
use serde::Serialize;

/// A concrete packet that shows a finding or a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ExamplePacket {
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub port: u16,
}

impl fmt::Display for ExamplePacket {
    /// `tcp 203.0.113.10:22`, `udp [2001:db8::1]:443`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dst {
            IpAddr::V4(a) => write!(f, "{} {a}:{}", self.proto, self.port),
            IpAddr::V6(a) => write!(f, "{} [{a}]:{}", self.proto, self.port),
        }
    }
}

/// The rule a [`Finding`] breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingRule {
    /// Two apps claim the same (protocol, address, port).
    Overlap,
    /// A binding that decides no address: more specific bindings, or an earlier binding with
    /// the same range, cover all of it.
    ShadowedBinding,
    /// An address of an advertised prefix that no binding covers: its traffic is attracted and
    /// then dropped as `no_binding`.
    Blackhole,
}

impl FindingRule {
    /// The snake_case name (as serialized).
    pub const fn as_str(self) -> &'static str {
        match self {
            FindingRule::Overlap => "overlap",
            FindingRule::ShadowedBinding => "shadowed_binding",
            FindingRule::Blackhole => "blackhole",
        }
    }
}

impl fmt::Display for FindingRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reason to refuse a configuration, found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule broken.
    pub rule: FindingRule,
    /// What is wrong and what to do about it, naming the ids involved and the example packet.
    pub message: String,
    /// A packet the finding concerns.
    pub example: ExamplePacket,
}

impl fmt::Display for Finding {
    /// `overlap: apps ssh and dup both claim …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.message)
    }
}

/// A region of traffic whose destination differs between two configurations, found by
/// [`diff`]. Every packet of the region went to `old` and goes to `new`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// First and last destination address (inclusive, same family).
    pub addresses: (IpAddr, IpAddr),
    /// First and last destination port (inclusive).
    pub ports: (u16, u16),
    /// The destination under the old configuration, e.g. `app ssh`, `cdn`, `reset`,
    /// `unconfigured drop`, `unconfigured reset`, `no_binding`, `not_ours`.
    pub old: String,
    /// The destination under the new configuration (same vocabulary).
    pub new: String,
    /// The region's first packet (first address, first port).
    pub example: ExamplePacket,
}

impl fmt::Display for Change {
    /// `tcp 203.0.113.10 port 22: app ssh -> unconfigured drop`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = self.addresses;
        write!(f, "{} ", self.proto)?;
        if a == b {
            write!(f, "{a}")?;
        } else {
            write!(f, "{a}-{b}")?;
        }
        let (p, q) = self.ports;
        if p == q {
            write!(f, " port {p}")?;
        } else {
            write!(f, " ports {p}-{q}")?;
        }
        write!(f, ": {} -> {}", self.old, self.new)
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses.

/// An address family; addresses are numbers (`u32` widened to `u128` for IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Fam {
    V4,
    V6,
}

const FAMS: [Fam; 2] = [Fam::V4, Fam::V6];

impl Fam {
    /// The last address.
    const fn max(self) -> u128 {
        match self {
            Fam::V4 => u32::MAX as u128,
            Fam::V6 => u128::MAX,
        }
    }

    /// The address with number `v` (saturated into the family's range).
    fn addr(self, v: u128) -> IpAddr {
        match self {
            Fam::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(u32::MAX))),
            Fam::V6 => IpAddr::V6(Ipv6Addr::from(v)),
        }
    }
}

/// The family, first and last address of a CIDR block (host bits ignored).
fn net_span(n: &IpNet) -> (Fam, u128, u128) {
    match n {
        IpNet::V4(n) => (
            Fam::V4,
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        ),
        IpNet::V6(n) => (Fam::V6, u128::from(n.network()), u128::from(n.broadcast())),
    }
}

/// The family and number of an address.
fn ip_key(a: IpAddr) -> (Fam, u128) {
    match a {
        IpAddr::V4(a) => (Fam::V4, u128::from(u32::from(a))),
        IpAddr::V6(a) => (Fam::V6, u128::from(a)),
    }
}

/// `a` or `a-b`.
fn addr_range(fam: Fam, lo: u128, hi: u128) -> String {
    if lo == hi {
        fam.addr(lo).to_string()
    } else {
        format!("{}-{}", fam.addr(lo), fam.addr(hi))
    }
}

/// The elementary address intervals of one family: interval `i` is `starts[i]..=hi(i)`; together
/// they partition the whole family, and no prefix, binding or edge IP boundary of the specs they
/// were made from falls inside one.
struct Cells {
    fam: Fam,
    starts: Vec<u128>,
}

impl Cells {
    fn new(fam: Fam, specs: &[&TablesSpec]) -> Cells {
        let max = fam.max();
        let mut starts = vec![0u128];
        let mut add = |lo: u128, hi: u128| {
            starts.push(lo);
            if hi < max {
                starts.push(hi + 1);
            }
        };
        for s in specs {
            let nets = s.prefixes.iter().map(|p| p.cidr);
            for n in nets.chain(s.bindings.iter().map(|b| b.cidr)) {
                let (f, lo, hi) = net_span(&n);
                if f == fam {
                    add(lo, hi);
                }
            }
            for ip in s.apps.iter().flat_map(|a| a.edge_ips.iter()) {
                let (f, v) = ip_key(*ip);
                if f == fam {
                    add(v, v);
                }
            }
        }
        starts.sort_unstable();
        starts.dedup();
        Cells { fam, starts }
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    fn lo(&self, i: usize) -> u128 {
        self.starts.get(i).copied().unwrap_or(0)
    }

    fn hi(&self, i: usize) -> u128 {
        self.starts
            .get(i + 1)
            .map_or(self.fam.max(), |n| n.saturating_sub(1))
    }

    /// The interval holding address `v`.
    fn index_of(&self, v: u128) -> usize {
        self.starts.partition_point(|s| *s <= v).saturating_sub(1)
    }
}

/// For every interval of `cells`, the index of the smallest block of `spans` (`(first, last,
/// index)`, CIDR blocks of the cells' family) that covers it; among equal blocks the lowest index.
///
/// CIDR blocks are nested or disjoint, so a sweep in address order with a stack of the blocks
/// covering the current interval (each nested in the one below) has the answer on top.
fn innermost(cells: &Cells, mut spans: Vec<(u128, u128, usize)>) -> Vec<Option<usize>> {
    // Outer blocks first; among equal blocks the lowest index last, so it ends up on top.
    spans.sort_unstable_by_key(|&(lo, hi, i)| (lo, Reverse(hi), Reverse(i)));
    let mut out = Vec::with_capacity(cells.len());
    let mut stack: Vec<(u128, usize)> = Vec::new();
    let mut next = 0;
    for c in 0..cells.len() {
        let s = cells.lo(c);
        while stack.last().is_some_and(|&(hi, _)| hi < s) {
            stack.pop();
        }
        while let Some(&(lo, hi, i)) = spans.get(next) {
            if lo > s {
                break;
            }
            if hi >= s {
                stack.push((hi, i));
            }
            next += 1;
        }
        out.push(stack.last().map(|&(_, i)| i));
    }
    out
}

/// Per interval of `cells`: the innermost prefix, the innermost advertised prefix and the
/// innermost binding (prefixes ignored) of `spec`.
struct Resolved {
    prefix: Vec<Option<usize>>,
    advertised: Vec<Option<usize>>,
    binding: Vec<Option<usize>>,
}

impl Resolved {
    fn new(spec: &TablesSpec, cells: &Cells) -> Resolved {
        let of = |nets: &mut dyn Iterator<Item = (usize, IpNet)>| {
            let spans = nets
                .filter_map(|(i, n)| {
                    let (f, lo, hi) = net_span(&n);
                    (f == cells.fam).then_some((lo, hi, i))
                })
                .collect();
            innermost(cells, spans)
        };
        Resolved {
            prefix: of(&mut spec.prefixes.iter().map(|p| p.cidr).enumerate()),
            advertised: of(&mut spec
                .prefixes
                .iter()
                .enumerate()
                .filter(|(_, p)| p.advertised)
                .map(|(i, p)| (i, p.cidr))),
            binding: of(&mut spec.bindings.iter().map(|b| b.cidr).enumerate()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ports.

const PROTOS: [L4Proto; 2] = [L4Proto::Tcp, L4Proto::Udp];

const fn proto_index(p: L4Proto) -> usize {
    match p {
        L4Proto::Tcp => 0,
        L4Proto::Udp => 1,
    }
}

/// One app's claim of a port range on an edge IP (one protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Claim {
    lo: u16,
    hi: u16,
    /// Index into the spec's apps.
    app: usize,
}

/// Claims on one edge address, per protocol (`[tcp, udp]`).
type AddrClaims = [Vec<Claim>; 2];

/// Every app claim of `spec`, by edge address; each list sorted, without repeats.
fn claims(spec: &TablesSpec) -> BTreeMap<(Fam, u128), AddrClaims> {
    let mut by_addr: BTreeMap<(Fam, u128), AddrClaims> = BTreeMap::new();
    for (i, app) in spec.apps.iter().enumerate() {
        if app.ports.lo > app.ports.hi {
            continue;
        }
        let c = Claim {
            lo: app.ports.lo,
            hi: app.ports.hi,
            app: i,
        };
        for ip in &app.edge_ips {
            by_addr.entry(ip_key(*ip)).or_default()[proto_index(app.proto)].push(c);
        }
    }
    for lists in by_addr.values_mut() {
        for l in lists.iter_mut() {
            l.sort_unstable();
            l.dedup();
        }
    }
    by_addr
}

/// The disjoint port ranges of sorted `claims`, each with the app that serves it: where claims
/// overlap, the app first in spec order.
fn resolve(claims: &[Claim]) -> Vec<Claim> {
    if claims.windows(2).all(|w| w[0].hi < w[1].lo) {
        return claims.to_vec();
    }
    let mut cuts: Vec<u32> = claims
        .iter()
        .flat_map(|c| [u32::from(c.lo), u32::from(c.hi) + 1])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    // Sweep the elementary port intervals; the heap holds the claims started so far, lowest
    // app first; claims already over are dropped when they surface.
    let mut heap: BinaryHeap<Reverse<(usize, u16)>> = BinaryHeap::new();
    let mut next = 0;
    let mut out: Vec<Claim> = Vec::new();
    for w in cuts.windows(2) {
        let (s, e) = (w[0], w[1] - 1);
        while let Some(c) = claims.get(next) {
            if u32::from(c.lo) > s {
                break;
            }
            heap.push(Reverse((c.app, c.hi)));
            next += 1;
        }
        while heap
            .peek()
            .is_some_and(|Reverse((_, hi))| u32::from(*hi) < s)
        {
            heap.pop();
        }
        let Some(&Reverse((app, _))) = heap.peek() else {
            continue;
        };
        let (s, e) = (s as u16, e as u16);
        match out.last_mut() {
            Some(l) if l.app == app && u32::from(l.hi) + 1 == u32::from(s) => l.hi = e,
            _ => out.push(Claim { lo: s, hi: e, app }),
        }
    }
    out
}

/// A destination (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Dest<'a> {
    NotOurs,
    NoBinding,
    Unconfigured(Unconfigured),
    Cdn,
    Reset,
    App(&'a str),
}

impl fmt::Display for Dest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dest::NotOurs => f.write_str("not_ours"),
            Dest::NoBinding => f.write_str("no_binding"),
            Dest::Unconfigured(u) => write!(f, "unconfigured {}", u.as_str()),
            Dest::Cdn => f.write_str("cdn"),
            Dest::Reset => f.write_str("reset"),
            Dest::App(id) => write!(f, "app {id}"),
        }
    }
}

/// A port range with one destination.
type Seg<'a> = (u16, u16, Dest<'a>);

/// Sorted disjoint segments per protocol (`[tcp, udp]`), not covering every port.
type PortMap<'a> = [Vec<Seg<'a>>; 2];

/// `sparse` (sorted, disjoint) with the gaps filled with `gap`: segments covering every port
/// once, adjacent equal destinations merged.
fn fill<'a>(sparse: &[Seg<'a>], gap: Dest<'a>) -> Vec<Seg<'a>> {
    let mut out: Vec<Seg<'a>> = Vec::with_capacity(2 * sparse.len() + 1);
    let mut push = |lo: u16, hi: u16, d: Dest<'a>| match out.last_mut() {
        Some(l) if l.2 == d && u32::from(l.1) + 1 == u32::from(lo) => l.1 = hi,
        _ => out.push((lo, hi, d)),
    };
    let mut pos: u32 = 0;
    for &(lo, hi, d) in sparse {
        if u32::from(lo) < pos || lo > hi {
            continue; // not sorted and disjoint: never made so here
        }
        if u32::from(lo) > pos {
            push(pos as u16, lo - 1, gap);
        }
        push(lo, hi, d);
        pos = u32::from(hi) + 1;
    }
    if pos <= u32::from(u16::MAX) {
        push(pos as u16, u16::MAX, gap);
    }
    out
}

/// The CDN's served and refused ports of `spec` (gaps: unconfigured).
fn cdn_map(spec: &TablesSpec) -> PortMap<'static> {
    let mut map: PortMap<'static> = Default::default();
    for proto in PROTOS {
        let mut ports = match proto {
            L4Proto::Tcp => spec.cdn.tcp_ports.clone(),
            L4Proto::Udp => spec.cdn.udp_ports.clone(),
        };
        let https_only = proto == L4Proto::Tcp && spec.cdn.https_only;
        if https_only {
            ports.push(80);
        }
        ports.sort_unstable();
        ports.dedup();
        let out = &mut map[proto_index(proto)];
        for p in ports {
            let d = if https_only && p == 80 {
                Dest::Reset
            } else {
                Dest::Cdn
            };
            match out.last_mut() {
                Some(l) if l.2 == d && u32::from(l.1) + 1 == u32::from(p) => l.1 = p,
                _ => out.push((p, p, d)),
            }
        }
    }
    map
}

// ---------------------------------------------------------------------------------------------
// Verification.

/// Every reason to refuse `spec`, in this order: [`FindingRule::Overlap`] (one finding per pair
/// of apps, with the lowest address and port both claim), [`FindingRule::ShadowedBinding`] (one
/// per binding, in spec order), [`FindingRule::Blackhole`] (one per advertised prefix, with its
/// first unbound address). Empty when the spec may be applied.
///
/// Exact: the whole address and port space is covered by intervals (see the module docs).
/// Access rules are ignored; the cost grows as `n log n` in prefixes, bindings and app edge IPs,
/// plus the overlapping pairs found.
pub fn verify(spec: &TablesSpec) -> Vec<Finding> {
    let mut out = overlaps(spec);
    let mut holes = Vec::new();
    for fam in FAMS {
        let cells = Cells::new(fam, &[spec]);
        let r = Resolved::new(spec, &cells);
        out.extend(shadowed(spec, &cells, &r));
        holes.extend(blackholes(spec, &cells, &r));
    }
    out.extend(holes);
    out
}

/// What two apps claim in common, accumulated over the edge addresses.
struct OverlapAcc {
    example: ExamplePacket,
    ports: (u16, u16),
    addresses: usize,
}

fn overlaps(spec: &TablesSpec) -> Vec<Finding> {
    let mut pairs: BTreeMap<(usize, usize), OverlapAcc> = BTreeMap::new();
    for (&(fam, addr), lists) in &claims(spec) {
        let dst = fam.addr(addr);
        for proto in PROTOS {
            let mut seen_here: Vec<(usize, usize)> = Vec::new();
            // Sorted by first port: every claim still running when another starts overlaps it,
            // first at the later one's first port.
            let mut active: Vec<Claim> = Vec::new();
            for &c in &lists[proto_index(proto)] {
                active.retain(|a| a.hi >= c.lo);
                for a in &active {
                    if a.app == c.app {
                        continue;
                    }
                    let key = (a.app.min(c.app), a.app.max(c.app));
                    let ports = (c.lo, a.hi.min(c.hi));
                    match pairs.get_mut(&key) {
                        Some(acc) => {
                            if !seen_here.contains(&key) {
                                acc.addresses += 1;
                            }
                        }
                        None => {
                            let example = ExamplePacket {
                                proto: proto.as_str(),
                                dst,
                                port: c.lo,
                            };
                            pairs.insert(
                                key,
                                OverlapAcc {
                                    example,
                                    ports,
                                    addresses: 1,
                                },
                            );
                        }
                    }
                    if !seen_here.contains(&key) {
                        seen_here.push(key);
                    }
                }
                active.push(c);
            }
        }
    }
    pairs
        .into_iter()
        .map(|((a, b), acc)| {
            let id = |i: usize| spec.apps.get(i).map_or("?", |x| x.id.as_str());
            let (lo, hi) = acc.ports;
            let ports = if lo == hi {
                format!("port {lo}")
            } else {
                format!("ports {lo}-{hi}")
            };
            let more = match acc.addresses {
                1 => String::new(),
                n => format!("; they collide on {n} edge IPs in all"),
            };
            Finding {
                rule: FindingRule::Overlap,
                message: format!(
                    "apps {} and {} both claim {} (both take {} {ports} on {}{more}); give one \
                     of them other ports or other edge IPs",
                    id(a),
                    id(b),
                    acc.example,
                    acc.example.proto,
                    acc.example.dst,
                ),
                example: acc.example,
            }
        })
        .collect()
}

/// Bindings of `cells`' family that decide no interval.
fn shadowed(spec: &TablesSpec, cells: &Cells, r: &Resolved) -> Vec<Finding> {
    let mut reached = vec![false; spec.bindings.len()];
    for b in r.binding.iter().flatten() {
        if let Some(x) = reached.get_mut(*b) {
            *x = true;
        }
    }
    let mut out = Vec::new();
    for (i, b) in spec.bindings.iter().enumerate() {
        let (fam, lo, hi) = net_span(&b.cidr);
        if fam != cells.fam || reached.get(i).copied().unwrap_or(true) {
            continue;
        }
        let example = ExamplePacket {
            proto: "tcp",
            dst: fam.addr(lo),
            port: 443,
        };
        let id = |j: usize| spec.bindings.get(j).map_or("?", |x| x.id.as_str());
        let decider = r
            .binding
            .get(cells.index_of(lo))
            .copied()
            .flatten()
            .map_or("?", id);
        let duplicate = spec.bindings.iter().take(i).position(|x| {
            let (f, l, h) = net_span(&x.cidr);
            (f, l, h) == (fam, lo, hi)
        });
        let message = match duplicate {
            Some(j) => format!(
                "binding {} ({}) never matches: binding {} has the same range and decides for \
                 all of it (e.g. {example} goes to {}); remove one of them",
                b.id,
                b.cidr,
                id(j),
                id(j),
            ),
            None => {
                // The bindings deciding its intervals, in address order.
                let mut by: Vec<usize> = Vec::new();
                let mut seen = std::collections::HashSet::new();
                let deciders = (cells.index_of(lo)..=cells.index_of(hi))
                    .filter_map(|c| r.binding.get(c).copied().flatten());
                for d in deciders {
                    if seen.insert(d) {
                        by.push(d);
                    }
                }
                let mut names: Vec<String> = by
                    .iter()
                    .take(4)
                    .map(|&j| {
                        let cidr = spec.bindings.get(j).map(|x| x.cidr.to_string());
                        format!("{} ({})", id(j), cidr.unwrap_or_default())
                    })
                    .collect();
                if by.len() > 4 {
                    names.push(format!("{} more", by.len() - 4));
                }
                format!(
                    "binding {} ({}) never matches: more specific bindings {} cover all of it \
                     (e.g. {example} goes to {decider}); remove it or narrow them",
                    b.id,
                    b.cidr,
                    names.join(", "),
                )
            }
        };
        out.push(Finding {
            rule: FindingRule::ShadowedBinding,
            message,
            example,
        });
    }
    out
}

/// Intervals of advertised prefixes without a binding, one finding per prefix.
fn blackholes(spec: &TablesSpec, cells: &Cells, r: &Resolved) -> Vec<Finding> {
    let mut by_prefix: BTreeMap<usize, Vec<(u128, u128)>> = BTreeMap::new();
    for c in 0..cells.len() {
        let (Some(Some(p)), Some(None)) = (r.advertised.get(c), r.binding.get(c)) else {
            continue;
        };
        let runs = by_prefix.entry(*p).or_default();
        let (lo, hi) = (cells.lo(c), cells.hi(c));
        match runs.last_mut() {
            Some(l) if l.1.checked_add(1) == Some(lo) => l.1 = hi,
            _ => runs.push((lo, hi)),
        }
    }
    let fam = cells.fam;
    by_prefix
        .into_iter()
        .filter_map(|(p, runs)| {
            let prefix = spec.prefixes.get(p)?;
            let &(first, _) = runs.first()?;
            let example = ExamplePacket {
                proto: "tcp",
                dst: fam.addr(first),
                port: 443,
            };
            let mut shown: Vec<String> = runs
                .iter()
                .take(3)
                .map(|&(lo, hi)| addr_range(fam, lo, hi))
                .collect();
            if runs.len() > 3 {
                shown.push(format!("{} more ranges", runs.len() - 3));
            }
            Some(Finding {
                rule: FindingRule::Blackhole,
                message: format!(
                    "advertised prefix {} has no binding for {} (e.g. {example} is dropped as \
                     no_binding); add a binding spanning the prefix",
                    prefix.cidr,
                    shown.join(", "),
                ),
                example,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Diff.

/// Every port map of app claims met, stored once: equal maps get equal ids, in both specs.
#[derive(Default)]
struct Interner<'a> {
    maps: Vec<PortMap<'a>>,
    ids: HashMap<PortMap<'a>, usize>,
}

impl<'a> Interner<'a> {
    fn intern(&mut self, map: PortMap<'a>) -> usize {
        if let Some(&id) = self.ids.get(&map) {
            return id;
        }
        let id = self.maps.len();
        self.maps.push(map.clone());
        self.ids.insert(map, id);
        id
    }
}

/// What an address interval does with its traffic; with the spec's CDN policy and the interned
/// app maps, this decides the destination of every (protocol, port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behavior {
    NotOurs,
    NoBinding,
    Cdn(Unconfigured),
    /// The interned app map of an edge IP, if any.
    Spectrum(Unconfigured, Option<usize>),
}

/// One spec, prepared for the diff.
struct Side<'a> {
    spec: &'a TablesSpec,
    /// Interned app map of every edge address.
    edges: HashMap<(Fam, u128), usize>,
    cdn: PortMap<'static>,
}

impl<'a> Side<'a> {
    fn new(spec: &'a TablesSpec, interner: &mut Interner<'a>) -> Side<'a> {
        let mut edges = HashMap::new();
        for (addr, lists) in claims(spec) {
            let mut map: PortMap<'a> = Default::default();
            for (out, list) in map.iter_mut().zip(lists.iter()) {
                *out = resolve(list)
                    .into_iter()
                    .map(|c| {
                        let id = spec.apps.get(c.app).map_or("", |a| a.id.as_str());
                        (c.lo, c.hi, Dest::App(id))
                    })
                    .collect();
            }
            edges.insert(addr, interner.intern(map));
        }
        Side {
            spec,
            edges,
            cdn: cdn_map(spec),
        }
    }

    /// The behavior of every interval of `cells`.
    fn behaviors(&self, cells: &Cells) -> Vec<Behavior> {
        let r = Resolved::new(self.spec, cells);
        (0..cells.len())
            .map(|c| {
                let (Some(Some(_)), Some(&b)) = (r.prefix.get(c), r.binding.get(c)) else {
                    return Behavior::NotOurs;
                };
                let Some(b) = b.and_then(|b| self.spec.bindings.get(b)) else {
                    return Behavior::NoBinding;
                };
                match b.service {
                    Service::Cdn => Behavior::Cdn(b.unconfigured),
                    Service::Spectrum => {
                        let (lo, hi) = (cells.lo(c), cells.hi(c));
                        let edge = (lo == hi)
                            .then(|| self.edges.get(&(cells.fam, lo)).copied())
                            .flatten();
                        Behavior::Spectrum(b.unconfigured, edge)
                    }
                }
            })
            .collect()
    }

    /// Every port of `proto` under `b`, as segments.
    fn segments(&self, b: Behavior, proto: usize, interner: &Interner<'a>) -> Vec<Seg<'a>> {
        let full = |d| vec![(0, u16::MAX, d)];
        match b {
            Behavior::NotOurs => full(Dest::NotOurs),
            Behavior::NoBinding => full(Dest::NoBinding),
            Behavior::Cdn(u) => fill(
                self.cdn.get(proto).map_or(&[][..], Vec::as_slice),
                Dest::Unconfigured(u),
            ),
            Behavior::Spectrum(u, None) => full(Dest::Unconfigured(u)),
            Behavior::Spectrum(u, Some(id)) => fill(
                interner
                    .maps
                    .get(id)
                    .and_then(|m| m.get(proto))
                    .map_or(&[][..], Vec::as_slice),
                Dest::Unconfigured(u),
            ),
        }
    }
}

/// Every region of (protocol, address range, port range) whose destination under `new` differs
/// from that under `old`, with both destinations and an example packet.
///
/// Regions are listed IPv4 before IPv6, then by address, protocol (TCP first) and port. Within an
/// address range, adjacent ports with the same old → new are one region; adjacent addresses
/// whose every port behaves alike in both specs are one address range. Regions never overlap and
/// cover exactly the packets whose destination changes. Empty for equal destinations
/// everywhere (e.g. a spec against itself, or a change of access rules or origins only).
pub fn diff(old: &TablesSpec, new: &TablesSpec) -> Vec<Change> {
    let mut interner = Interner::default();
    let o = Side::new(old, &mut interner);
    let n = Side::new(new, &mut interner);
    let cdn_equal = o.cdn == n.cdn;
    let mut out = Vec::new();
    for fam in FAMS {
        let cells = Cells::new(fam, &[old, new]);
        let (bo, bn) = (o.behaviors(&cells), n.behaviors(&cells));
        let pairs: Vec<(Behavior, Behavior)> = bo.into_iter().zip(bn).collect();
        let mut c = 0;
        while c < pairs.len() {
            let pair = pairs[c];
            let mut end = c;
            while pairs.get(end + 1) == Some(&pair) {
                end += 1;
            }
            let same = pair.0 == pair.1 && (cdn_equal || !matches!(pair.0, Behavior::Cdn(_)));
            if !same {
                let addresses = (fam.addr(cells.lo(c)), fam.addr(cells.hi(end)));
                for proto in PROTOS {
                    let p = proto_index(proto);
                    let a = o.segments(pair.0, p, &interner);
                    let b = n.segments(pair.1, p, &interner);
                    for (lo, hi, was, is) in merge(&a, &b) {
                        out.push(Change {
                            proto: proto.as_str(),
                            addresses,
                            ports: (lo, hi),
                            old: was.to_string(),
                            new: is.to_string(),
                            example: ExamplePacket {
                                proto: proto.as_str(),
                                dst: addresses.0,
                                port: lo,
                            },
                        });
                    }
                }
            }
            c = end + 1;
        }
    }
    out
}

/// The port ranges where two full segment lists differ, adjacent equal changes merged.
fn merge<'a>(a: &[Seg<'a>], b: &[Seg<'a>]) -> Vec<(u16, u16, Dest<'a>, Dest<'a>)> {
    let mut out: Vec<(u16, u16, Dest<'a>, Dest<'a>)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut pos: u32 = 0;
    while pos <= u32::from(u16::MAX) {
        let (Some(&(_, ahi, ad)), Some(&(_, bhi, bd))) = (a.get(i), b.get(j)) else {
            break; // not full: never made so here
        };
        let end = ahi.min(bhi);
        if u32::from(end) < pos {
            break; // not sorted: never made so here
        }
        if ad != bd {
            match out.last_mut() {
                Some(l) if l.2 == ad && l.3 == bd && u32::from(l.1) + 1 == pos => l.1 = end,
                _ => out.push((pos as u16, end, ad, bd)),
            }
        }
        if ahi == end {
            i += 1;
        }
        if bhi == end {
            j += 1;
        }
        pos = u32::from(end) + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use fastpath::tables::{
        AccessAction, AccessRuleSpec, AppSpec, BindingSpec, PortRange, PrefixSpec, ProxyProtocol,
        TrafficType,
    };
    use proptest::prelude::*;

    fn compile(toml: &str) -> TablesSpec {
        Config::from_toml_str(toml)
            .expect("parses")
            .compile(1, &Default::default())
            .expect("compiles")
            .spec
    }

    fn lab() -> TablesSpec {
        compile(include_str!("../../pcaps/edge-lab.toml"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("cidr")
    }

    fn app(id: &str, proto: L4Proto, lo: u16, hi: u16, edge_ips: Vec<IpAddr>) -> AppSpec {
        AppSpec {
            id: id.into(),
            slot: 0,
            proto,
            ports: PortRange { lo, hi },
            edge_ips,
            ip_firewall: false,
            origins: vec![],
            proxy_protocol: ProxyProtocol::Off,
            traffic_type: TrafficType::Direct,
        }
    }

    fn binding(id: &str, cidr: &str, service: Service, unconfigured: Unconfigured) -> BindingSpec {
        BindingSpec {
            id: id.into(),
            slot: 0,
            cidr: net(cidr),
            service,
            unconfigured,
        }
    }

    /// The destination of one packet, straight from the definition (linear scans).
    fn reference(s: &TablesSpec, proto: L4Proto, dst: IpAddr, port: u16) -> String {
        if !s.prefixes.iter().any(|p| p.cidr.contains(&dst)) {
            return "not_ours".into();
        }
        let mut best: Option<&BindingSpec> = None;
        for b in s.bindings.iter().filter(|b| b.cidr.contains(&dst)) {
            if best.is_none_or(|x| b.cidr.prefix_len() > x.cidr.prefix_len()) {
                best = Some(b);
            }
        }
        let Some(b) = best else {
            return "no_binding".into();
        };
        let unconfigured = format!("unconfigured {}", b.unconfigured.as_str());
        match b.service {
            Service::Spectrum => s
                .apps
                .iter()
                .find(|a| a.proto == proto && a.ports.contains(port) && a.edge_ips.contains(&dst))
                .map_or(unconfigured, |a| format!("app {}", a.id)),
            Service::Cdn => {
                let served = match proto {
                    L4Proto::Tcp => s.cdn.tcp_ports.contains(&port),
                    L4Proto::Udp => s.cdn.udp_ports.contains(&port),
                };
                if proto == L4Proto::Tcp && port == 80 && s.cdn.https_only {
                    "reset".into()
                } else if served {
                    "cdn".into()
                } else {
                    unconfigured
                }
            }
        }
    }

    fn covers(c: &Change, proto: L4Proto, dst: IpAddr, port: u16) -> bool {
        c.proto == proto.as_str()
            && ip_key(c.addresses.0).0 == ip_key(dst).0
            && c.addresses.0 <= dst
            && dst <= c.addresses.1
            && c.ports.0 <= port
            && port <= c.ports.1
    }

    /// Every point whose destination differs lies in exactly one change with the same old and
    /// new; no change covers a point whose destination is the same.
    fn check_diff_at(
        old: &TablesSpec,
        new: &TablesSpec,
        d: &[Change],
        points: impl Iterator<Item = (IpAddr, u16)>,
    ) -> Result<(), TestCaseError> {
        for (dst, port) in points {
            for proto in PROTOS {
                let (o, n) = (
                    reference(old, proto, dst, port),
                    reference(new, proto, dst, port),
                );
                let hits: Vec<&Change> = d.iter().filter(|c| covers(c, proto, dst, port)).collect();
                if o == n {
                    prop_assert!(
                        hits.is_empty(),
                        "{} {dst} {port}: {o} both, but {hits:?}",
                        proto.as_str()
                    );
                } else {
                    prop_assert_eq!(
                        hits.len(),
                        1,
                        "{} {} {}: {} -> {}: {:?}",
                        proto.as_str(),
                        dst,
                        port,
                        &o,
                        &n,
                        &hits
                    );
                    prop_assert_eq!(&hits[0].old, &o);
                    prop_assert_eq!(&hits[0].new, &n);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn the_lab_config_verifies() {
        assert_eq!(verify(&lab()), Vec::<Finding>::new());
    }

    #[test]
    fn an_unadvertised_prefix_may_stay_unbound() {
        // Onboarded but not advertised: its traffic is `no_binding`, by design.
        let mut s = lab();
        s.prefixes.push(PrefixSpec {
            cidr: net("198.18.0.0/24"),
            advertised: false,
        });
        assert_eq!(verify(&s), Vec::<Finding>::new());
    }

    #[test]
    fn overlapping_apps_are_found_with_a_packet_both_claim() {
        let mut s = lab();
        // "range" is tcp/1000-2000 on 203.0.113.12; this one claims 1500-2500 there and on a
        // second address, and 22 on ssh's IPv6 edge IP.
        s.apps.push(app(
            "web",
            L4Proto::Tcp,
            1500,
            2500,
            vec![ip("203.0.113.12"), ip("203.0.113.13")],
        ));
        // Same port as ssh, but UDP: no overlap.
        s.apps
            .push(app("dns", L4Proto::Udp, 22, 22, vec![ip("203.0.113.10")]));
        // Same protocol and port as ssh, on ssh's IPv6 edge IP only.
        s.apps.push(app(
            "ssh2",
            L4Proto::Tcp,
            20,
            30,
            vec![ip("2001:db8:100:1::10")],
        ));
        let f = verify(&s);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert!(f.iter().all(|x| x.rule == FindingRule::Overlap));
        let web = f.iter().find(|x| x.message.contains("web")).expect("web");
        assert!(web.message.starts_with("apps range and web both claim"));
        assert_eq!(web.example.to_string(), "tcp 203.0.113.12:1500");
        assert!(web.message.contains("ports 1500-2000"), "{}", web.message);
        let ssh = f.iter().find(|x| x.message.contains("ssh2")).expect("ssh2");
        assert!(ssh.message.starts_with("apps ssh and ssh2 both claim"));
        assert_eq!(ssh.example.to_string(), "tcp [2001:db8:100:1::10]:22");
        // Both apps really claim the example packet.
        for x in &f {
            let dst = x.example.dst;
            let claimants = s
                .apps
                .iter()
                .filter(|a| {
                    a.proto.as_str() == x.example.proto
                        && a.ports.contains(x.example.port)
                        && a.edge_ips.contains(&dst)
                })
                .count();
            assert_eq!(claimants, 2, "{x}");
        }
        let json = serde_json::to_value(&f[0]).expect("serializes");
        assert_eq!(json["rule"], "overlap");
        assert_eq!(json["example"]["proto"], "tcp");
    }

    #[test]
    fn an_app_overlapping_on_many_addresses_is_one_finding() {
        let mut s = lab();
        let mut dup = s.apps.iter().find(|a| a.id == "ssh").expect("ssh").clone();
        dup.id = "dup".into();
        s.apps.push(dup);
        let f = verify(&s);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].example.to_string(), "tcp 203.0.113.10:22");
        assert!(
            f[0].message.contains("2 edge IPs in all"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn shadowed_and_duplicate_bindings_are_found() {
        let mut s = lab();
        // 203.0.113.0/24 is the default binding; two /25 cover it whole (the upper half
        // already exists as the CDN binding).
        s.bindings.push(binding(
            "low",
            "203.0.113.0/25",
            Service::Spectrum,
            Unconfigured::Drop,
        ));
        // An exact duplicate of the IPv6 /64.
        s.bindings.push(binding(
            "again",
            "2001:db8:100:1::/64",
            Service::Cdn,
            Unconfigured::Reset,
        ));
        let f = verify(&s);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert!(f.iter().all(|x| x.rule == FindingRule::ShadowedBinding));
        let default = s
            .bindings
            .iter()
            .find(|b| b.cidr == net("203.0.113.0/24"))
            .expect("default");
        assert!(
            f[0].message.starts_with(&format!(
                "binding {} (203.0.113.0/24) never matches",
                default.id
            )),
            "{}",
            f[0].message
        );
        assert!(
            f[0].message.contains("low (203.0.113.0/25)"),
            "{}",
            f[0].message
        );
        assert!(
            f[0].message.contains("(203.0.113.128/25)"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].example.dst, ip("203.0.113.0"));
        assert!(
            f[1].message
                .starts_with("binding again (2001:db8:100:1::/64) never matches: binding"),
            "{}",
            f[1].message
        );
        assert!(f[1].message.contains("same range"), "{}", f[1].message);
        assert_eq!(f[1].example.to_string(), "tcp [2001:db8:100:1::]:443");
        assert_eq!(
            serde_json::to_value(&f[1]).expect("serializes")["rule"],
            "shadowed_binding"
        );
    }

    #[test]
    fn an_advertised_prefix_without_its_default_binding_is_a_blackhole() {
        let mut s = lab();
        // Remove the default IPv4 binding: 203.0.113.0-127 is left without a binding.
        s.bindings.retain(|b| b.cidr != net("203.0.113.0/24"));
        // A second advertised prefix with one /26 bound in the middle.
        s.prefixes.push(PrefixSpec {
            cidr: net("198.51.100.0/24"),
            advertised: true,
        });
        s.bindings.push(binding(
            "mid",
            "198.51.100.64/26",
            Service::Cdn,
            Unconfigured::Drop,
        ));
        // Not advertised and unbound: no finding.
        s.prefixes.push(PrefixSpec {
            cidr: net("198.18.0.0/24"),
            advertised: false,
        });
        let f = verify(&s);
        // Without its binding ssh's and the other apps' edge IPs are unbound too: still
        // one finding per prefix.
        assert_eq!(f.len(), 2, "{f:#?}");
        assert!(f.iter().all(|x| x.rule == FindingRule::Blackhole));
        assert_eq!(f[0].example.to_string(), "tcp 203.0.113.0:443");
        assert!(
            f[0].message
                .contains("203.0.113.0/24 has no binding for 203.0.113.0-203.0.113.127"),
            "{}",
            f[0].message
        );
        assert_eq!(f[1].example.dst, ip("198.51.100.0"));
        assert!(
            f[1].message.contains(
                "no binding for 198.51.100.0-198.51.100.63, 198.51.100.128-198.51.100.255"
            ),
            "{}",
            f[1].message
        );
        assert_eq!(
            serde_json::to_value(&f[1]).expect("serializes")["rule"],
            "blackhole"
        );
    }

    #[test]
    fn the_same_config_has_no_diff() {
        assert_eq!(diff(&lab(), &lab()), Vec::<Change>::new());
        // Access rules, origins and slots do not change destinations.
        let mut s = lab();
        s.access_rules.clear();
        s.apps[0].origins.clear();
        s.apps[0].slot = 77;
        s.version = 9;
        assert_eq!(diff(&lab(), &s), Vec::<Change>::new());
    }

    #[test]
    fn moving_ssh_from_22_to_2222_changes_exactly_those_ports() {
        let old = lab();
        let toml = include_str!("../../pcaps/edge-lab.toml").replace("tcp/22\"", "tcp/2222\"");
        let new = compile(&toml);
        let d = diff(&old, &new);
        let got: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "tcp 203.0.113.10 port 22: app ssh -> unconfigured drop",
                "tcp 203.0.113.10 port 2222: unconfigured drop -> app ssh",
                "tcp 2001:db8:100:1::10 port 22: app ssh -> unconfigured drop",
                "tcp 2001:db8:100:1::10 port 2222: unconfigured drop -> app ssh",
            ],
            "{d:#?}"
        );
        assert_eq!(d[0].example.to_string(), "tcp 203.0.113.10:22");
        assert_eq!(d[3].example.to_string(), "tcp [2001:db8:100:1::10]:2222");
        assert_eq!(d[0].addresses, (ip("203.0.113.10"), ip("203.0.113.10")));
        let json = serde_json::to_value(&d[1]).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "proto": "tcp",
                "addresses": ["203.0.113.10", "203.0.113.10"],
                "ports": [2222, 2222],
                "old": "unconfigured drop",
                "new": "app ssh",
                "example": {"proto": "tcp", "dst": "203.0.113.10", "port": 2222},
            })
        );
    }

    #[test]
    fn address_and_port_ranges_are_coalesced() {
        let old = lab();
        let mut new = old.clone();
        // The CDN /25 becomes reset-on-unconfigured: two port runs around each served port,
        // for the whole /25 in one address range.
        for b in &mut new.bindings {
            if b.cidr == net("203.0.113.128/25") {
                b.unconfigured = Unconfigured::Reset;
            }
        }
        let d = diff(&old, &new);
        assert!(!d.is_empty());
        for c in &d {
            assert_eq!(
                c.addresses,
                (ip("203.0.113.128"), ip("203.0.113.255")),
                "{c}"
            );
            assert_eq!(
                (c.old.as_str(), c.new.as_str()),
                ("unconfigured drop", "unconfigured reset")
            );
        }
        // tcp: 13 served ports, 2052-2053, 2082-2083, 2086-2087, 2095-2096 adjacent: 9 runs
        // served, so 10 gaps; udp: 443 served, 2 gaps.
        assert_eq!(d.iter().filter(|c| c.proto == "tcp").count(), 10, "{d:#?}");
        assert_eq!(d.iter().filter(|c| c.proto == "udp").count(), 2, "{d:#?}");
        let first = &d[0];
        assert_eq!(first.ports, (0, 79));
        let last = d.iter().rfind(|c| c.proto == "tcp").expect("tcp");
        assert_eq!(last.ports, (8881, 65535));
    }

    #[test]
    fn https_only_resets_port_80_even_when_not_served() {
        let old = lab();
        let mut new = old.clone();
        new.cdn.https_only = true;
        new.cdn.tcp_ports.retain(|&p| p != 80);
        let d = diff(&old, &new);
        let got: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "tcp 203.0.113.128-203.0.113.255 port 80: cdn -> reset",
                "tcp 2001:db8:100::-2001:db8:100:0:ffff:ffff:ffff:ffff port 80: cdn -> reset",
                "tcp 2001:db8:100:2::-2001:db8:100:ffff:ffff:ffff:ffff:ffff port 80: cdn -> reset",
            ]
        );
    }

    #[test]
    fn removing_a_prefix_makes_it_not_ours() {
        let old = lab();
        let mut new = old.clone();
        new.prefixes.retain(|p| p.cidr.addr().is_ipv6());
        new.bindings.retain(|b| b.cidr.addr().is_ipv6());
        let d = diff(&old, &new);
        assert!(d.iter().all(|c| c.new == "not_ours"));
        assert!(d.iter().any(|c| c.old == "app ssh" && c.ports == (22, 22)));
        // Every port of every address of the /24, for both protocols, is covered.
        let ports: u64 = d
            .iter()
            .map(|c| {
                let (IpAddr::V4(a), IpAddr::V4(b)) = c.addresses else {
                    panic!("IPv4 only: {c}");
                };
                (u64::from(u32::from(b)) - u64::from(u32::from(a)) + 1)
                    * (u64::from(c.ports.1) - u64::from(c.ports.0) + 1)
            })
            .sum();
        assert_eq!(ports, 2 * 256 * 65536);
    }

    /// ~1,000 bindings, ~1,000 apps on 2,000 edge IPs, 100,000 access rules.
    fn big(shift: u16) -> TablesSpec {
        let mut s = TablesSpec {
            version: 1,
            prefixes: vec![
                PrefixSpec {
                    cidr: net("10.0.0.0/8"),
                    advertised: true,
                },
                PrefixSpec {
                    cidr: net("2001:db8::/32"),
                    advertised: true,
                },
            ],
            ..Default::default()
        };
        s.bindings.push(binding(
            "d4",
            "10.0.0.0/8",
            Service::Cdn,
            Unconfigured::Drop,
        ));
        s.bindings.push(binding(
            "d6",
            "2001:db8::/32",
            Service::Cdn,
            Unconfigured::Drop,
        ));
        for i in 0..1000u32 {
            let (a, b) = (i / 256, i % 256);
            s.bindings.push(binding(
                &format!("b{i}"),
                &format!("10.{a}.{b}.0/24"),
                if i % 3 == 0 {
                    Service::Cdn
                } else {
                    Service::Spectrum
                },
                Unconfigured::Reset,
            ));
            let port = 1000 + (i % 50) as u16 * 10 + shift;
            s.apps.push(app(
                &format!("a{i}"),
                if i % 2 == 0 {
                    L4Proto::Tcp
                } else {
                    L4Proto::Udp
                },
                port,
                port + 5,
                vec![
                    ip(&format!("10.{a}.{b}.7")),
                    ip(&format!("2001:db8:{i:x}::7")),
                ],
            ));
        }
        for i in 0..100_000u32 {
            s.access_rules.push(AccessRuleSpec {
                id: format!("r{i}"),
                cidr: IpNet::from(IpAddr::V4(Ipv4Addr::from(0xC000_0000 + i))),
                action: AccessAction::Block,
            });
        }
        s
    }

    #[test]
    fn a_thousand_bindings_and_apps_and_100k_rules_take_well_under_a_second() {
        let (old, new) = (big(0), big(3));
        let t = std::time::Instant::now();
        let f = verify(&old);
        let d = diff(&old, &new);
        let same = diff(&old, &old);
        let took = t.elapsed();
        // Nothing overlaps, the /8 and /32 defaults decide between the /24s, all is bound.
        assert_eq!(f, Vec::<Finding>::new());
        assert!(same.is_empty());
        // Apps under Spectrum bindings (two /24s in three; their IPv6 edge IPs are under the
        // CDN /32, where apps serve nothing) moved by 3 ports: 3 ports lost and 3 gained each.
        let moved = (0..1000).filter(|i| i % 3 != 0).count();
        assert_eq!(d.len(), moved * 2, "{:#?}", &d[..4.min(d.len())]);
        assert!(d.iter().all(|c| c.ports.1 - c.ports.0 == 2), "{d:#?}");
        if !cfg!(debug_assertions) {
            assert!(
                took < std::time::Duration::from_millis(300),
                "verify + 2 diffs took {took:?}"
            );
        }
    }

    // --- Property tests against the point-by-point reference. -----------------------------

    /// A CIDR block of length `len` in 10.0.0.0/26 or 2001:db8::/122, at host `off`.
    fn small_net(v6: bool, extra: u8, off: u8) -> IpNet {
        let off = u32::from(off % 64) & !((1u32 << (6 - extra.min(6))) - 1);
        if v6 {
            let a = Ipv6Addr::from((0x2001_0db8_u128 << 96) + u128::from(off));
            IpNet::V6(ipnet::Ipv6Net::new(a, 122 + extra.min(6)).expect("length"))
        } else {
            let a = Ipv4Addr::from(0x0A00_0000 + off);
            IpNet::V4(ipnet::Ipv4Net::new(a, 26 + extra.min(6)).expect("length"))
        }
    }

    fn small_ip(v6: bool, off: u8) -> IpAddr {
        small_net(v6, 6, off).addr()
    }

    fn port() -> impl Strategy<Value = u16> {
        prop_oneof![6 => 0u16..=40, 1 => Just(80u16), 1 => Just(u16::MAX), 1 => Just(65534u16)]
    }

    fn small_spec() -> impl Strategy<Value = TablesSpec> {
        let prefix = (any::<bool>(), 0u8..=3, any::<u8>(), any::<bool>()).prop_map(
            |(v6, extra, off, advertised)| PrefixSpec {
                cidr: small_net(v6, extra, off),
                advertised,
            },
        );
        let bind = (
            any::<bool>(),
            0u8..=6,
            any::<u8>(),
            any::<bool>(),
            any::<bool>(),
        );
        let app_s = (
            0u8..4,
            any::<bool>(),
            port(),
            port(),
            prop::collection::vec((any::<bool>(), 0u8..16), 1..3),
        );
        (
            prop::collection::vec(prefix, 0..4),
            prop::collection::vec(bind, 0..7),
            prop::collection::vec(app_s, 0..6),
            prop::collection::vec(port(), 0..4),
            prop::collection::vec(port(), 0..3),
            any::<bool>(),
        )
            .prop_map(|(prefixes, binds, apps, tcp, udp, https_only)| TablesSpec {
                version: 1,
                prefixes,
                bindings: binds
                    .into_iter()
                    .enumerate()
                    .map(|(i, (v6, extra, off, cdn, reset))| BindingSpec {
                        id: format!("b{i}"),
                        slot: i as u32,
                        cidr: small_net(v6, extra, off),
                        service: if cdn { Service::Cdn } else { Service::Spectrum },
                        unconfigured: if reset {
                            Unconfigured::Reset
                        } else {
                            Unconfigured::Drop
                        },
                    })
                    .collect(),
                apps: apps
                    .into_iter()
                    .map(|(id, udp, a, b, ips)| {
                        app(
                            &format!("a{id}"),
                            if udp { L4Proto::Udp } else { L4Proto::Tcp },
                            a.min(b),
                            a.max(b),
                            // Edge IPs among the first 16 hosts, so that they collide often.
                            ips.into_iter().map(|(v6, o)| small_ip(v6, o)).collect(),
                        )
                    })
                    .collect(),
                cdn: fastpath::tables::CdnSpec {
                    tcp_ports: tcp,
                    udp_ports: udp,
                    https_only,
                    pool: vec![],
                    proxy_protocol: fastpath::tables::ProxyProtocol::V2,
                },
                access_rules: vec![],
            })
    }

    /// Every host of both small universes, the addresses around them and the extremes.
    fn universe() -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = Vec::new();
        for off in 0..64u8 {
            v.push(small_ip(false, off));
            v.push(small_ip(true, off));
        }
        for s in [
            "9.255.255.255",
            "10.0.0.64",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db8::40",
            "::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            v.push(ip(s));
        }
        v
    }

    fn ports() -> Vec<u16> {
        let mut p: Vec<u16> = (0..=42).collect();
        p.extend([79, 80, 81, 443, 1000, 65533, 65534, 65535]);
        p
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(192))]

        #[test]
        fn diff_agrees_with_point_evaluation(
            old in small_spec(),
            new in small_spec(),
            extra in prop::collection::vec((any::<u32>(), any::<u128>(), any::<u16>()), 8),
        ) {
            let d = diff(&old, &new);
            // Changes are disjoint and never empty.
            for c in &d {
                prop_assert!(c.addresses.0 <= c.addresses.1 && c.ports.0 <= c.ports.1, "{}", c);
                prop_assert_ne!(&c.old, &c.new);
            }
            let (u, p) = (universe(), ports());
            let points = u.iter().flat_map(|a| p.iter().map(move |q| (*a, *q)));
            check_diff_at(&old, &new, &d, points)?;
            let sampled = extra.iter().flat_map(|&(a, b, q)| {
                [(IpAddr::V4(Ipv4Addr::from(a)), q), (IpAddr::V6(Ipv6Addr::from(b)), q)]
            });
            check_diff_at(&old, &new, &d, sampled)?;
            // The first packet of every change really changes as stated.
            for c in &d {
                let proto = if c.proto == "tcp" { L4Proto::Tcp } else { L4Proto::Udp };
                prop_assert_eq!(reference(&old, proto, c.example.dst, c.example.port), c.old.clone());
                prop_assert_eq!(reference(&new, proto, c.example.dst, c.example.port), c.new.clone());
            }
            prop_assert!(diff(&old, &old).is_empty());
        }

        #[test]
        fn verify_agrees_with_point_evaluation(s in small_spec()) {
            let f = verify(&s);
            let of = |r| f.iter().filter(move |x| x.rule == r);
            // Overlaps: pairs of apps (by index) with a common protocol, edge IP and port.
            let mut pairs = std::collections::BTreeSet::new();
            for (i, a) in s.apps.iter().enumerate() {
                for (j, b) in s.apps.iter().enumerate().skip(i + 1) {
                    if a.proto == b.proto
                        && a.ports.overlaps(&b.ports)
                        && a.edge_ips.iter().any(|x| b.edge_ips.contains(x))
                    {
                        pairs.insert((i, j));
                    }
                }
            }
            prop_assert_eq!(of(FindingRule::Overlap).count(), pairs.len(), "{:#?}", f);
            for x in of(FindingRule::Overlap) {
                let e = x.example;
                let n = s.apps.iter().filter(|a| {
                    a.proto.as_str() == e.proto && a.ports.contains(e.port) && a.edge_ips.contains(&e.dst)
                }).count();
                prop_assert!(n >= 2, "{}", x);
            }
            // Shadowed: bindings deciding no address (all are inside the small universes).
            let u = universe();
            let decider = |a: &IpAddr| {
                let mut best: Option<usize> = None;
                for (i, b) in s.bindings.iter().enumerate().filter(|(_, b)| b.cidr.contains(a)) {
                    if best.is_none_or(|x| b.cidr.prefix_len() > s.bindings[x].cidr.prefix_len()) {
                        best = Some(i);
                    }
                }
                best
            };
            let decided: Vec<Option<usize>> = u.iter().map(decider).collect();
            // In verify's order: IPv4 first, then spec order.
            let mut shadowed: Vec<&BindingSpec> = s.bindings.iter().enumerate()
                .filter(|(i, _)| !decided.contains(&Some(*i)))
                .map(|(_, b)| b)
                .collect();
            shadowed.sort_by_key(|b| b.cidr.addr().is_ipv6());
            prop_assert_eq!(of(FindingRule::ShadowedBinding).count(), shadowed.len(), "{:#?}", f);
            for (x, b) in of(FindingRule::ShadowedBinding).zip(&shadowed) {
                let head = format!("binding {} ({}) never matches", b.id, b.cidr);
                prop_assert!(x.message.starts_with(&head), "{} / {}", x, head);
            }
            // Blackholes: advertised prefixes with an unbound address.
            let holes: std::collections::BTreeSet<usize> = u.iter().zip(&decided)
                .filter(|(_, d)| d.is_none())
                .filter_map(|(a, _)| {
                    // The innermost advertised prefix holding it (first among equals).
                    let mut best: Option<usize> = None;
                    for (i, p) in s.prefixes.iter().enumerate() {
                        if p.advertised && p.cidr.contains(a)
                            && best.is_none_or(|x| p.cidr.prefix_len() > s.prefixes[x].cidr.prefix_len())
                        {
                            best = Some(i);
                        }
                    }
                    best
                })
                .collect();
            prop_assert_eq!(of(FindingRule::Blackhole).count(), holes.len(), "{:#?}", f);
            for x in of(FindingRule::Blackhole) {
                let e = x.example.dst;
                prop_assert!(s.prefixes.iter().any(|p| p.advertised && p.cidr.contains(&e)), "{}", x);
                prop_assert!(!s.bindings.iter().any(|b| b.cidr.contains(&e)), "{}", x);
            }
        }
    }
}
