//! Exhaustive verification and semantic diff of a compiled configuration.
//!
//! The destination of a TCP or UDP packet depends only on (protocol, destination address,
//! destination port). Every prefix, binding and edge IP splits the address line, every app range
//! and CDN port splits the port line, so the whole space is a finite set of (protocol × address
//! interval × port interval) cells on which the destination is constant. Checks and diffs walk
//! those cells: exact and exhaustive, never sampled.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fastpath::tables::{L4Proto, TablesSpec, Unconfigured};
use fastpath::verdict::Service;
use ipnet::IpNet;
use serde::Serialize;

/// A packet that shows a finding or a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExamplePacket {
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub port: u16,
}

impl core::fmt::Display for ExamplePacket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.dst {
            IpAddr::V4(a) => write!(f, "{} {a}:{}", self.proto, self.port),
            IpAddr::V6(a) => write!(f, "{} [{a}]:{}", self.proto, self.port),
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingRule {
    /// Two apps claim the same traffic.
    Overlap,
    /// A binding that no address ever reaches.
    ShadowedBinding,
    /// Addresses of an advertised prefix without a binding.
    Blackhole,
}

/// A reason to refuse a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule.
    pub rule: FindingRule,
    /// What is wrong, with the example packet.
    pub message: String,
    /// A packet it concerns.
    pub example: ExamplePacket,
}

/// Traffic whose destination changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// First and last destination address.
    pub addresses: (IpAddr, IpAddr),
    /// First and last port.
    pub ports: (u16, u16),
    /// Where it went.
    pub old: String,
    /// Where it goes now.
    pub new: String,
    /// A packet that shows it.
    pub example: ExamplePacket,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Fam {
    V4,
    V6,
}

fn span(n: &IpNet) -> (Fam, u128, u128) {
    match n {
        IpNet::V4(n) => (
            Fam::V4,
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        ),
        IpNet::V6(n) => (Fam::V6, u128::from(n.network()), u128::from(n.broadcast())),
    }
}

fn addr_span(a: &IpAddr) -> (Fam, u128) {
    match a {
        IpAddr::V4(a) => (Fam::V4, u128::from(u32::from(*a))),
        IpAddr::V6(a) => (Fam::V6, u128::from(*a)),
    }
}

fn to_addr(f: Fam, v: u128) -> IpAddr {
    match f {
        Fam::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        Fam::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

const PROTOS: [(L4Proto, &str); 2] = [(L4Proto::Tcp, "tcp"), (L4Proto::Udp, "udp")];

/// Elementary address intervals of `f` made by the boundaries of every spec given.
fn address_cells(specs: &[&TablesSpec], f: Fam) -> Vec<(u128, u128)> {
    let max = if f == Fam::V4 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    let mut cuts = BTreeSet::new();
    cuts.insert(0u128);
    let mut add = |lo: u128, hi: u128| {
        cuts.insert(lo);
        if hi < max {
            cuts.insert(hi + 1);
        }
    };
    for s in specs {
        for n in s
            .prefixes
            .iter()
            .map(|p| p.cidr)
            .chain(s.bindings.iter().map(|b| b.cidr))
        {
            let (g, lo, hi) = span(&n);
            if g == f {
                add(lo, hi);
            }
        }
        for a in s.apps.iter().flat_map(|a| a.edge_ips.iter()) {
            let (g, v) = addr_span(a);
            if g == f {
                add(v, v);
            }
        }
    }
    let cuts: Vec<u128> = cuts.into_iter().collect();
    cuts.iter()
        .enumerate()
        .map(|(i, &lo)| (lo, cuts.get(i + 1).map_or(max, |n| n - 1)))
        .collect()
}

/// Where traffic to one address cell goes, before the port.
#[derive(Clone, Copy)]
enum Place<'a> {
    NotOurs,
    NoBinding,
    Bound(&'a fastpath::tables::BindingSpec),
}

fn place(s: &TablesSpec, f: Fam, a: u128) -> Place<'_> {
    let inside = |n: &IpNet| {
        let (g, lo, hi) = span(n);
        g == f && lo <= a && a <= hi
    };
    if !s.prefixes.iter().any(|p| inside(&p.cidr)) {
        return Place::NotOurs;
    }
    s.bindings
        .iter()
        .filter(|b| inside(&b.cidr))
        .max_by_key(|b| b.cidr.prefix_len())
        .map_or(Place::NoBinding, Place::Bound)
}

/// Port cells at address `a` for `proto` (boundaries of every spec given).
fn port_cells(specs: &[&TablesSpec], f: Fam, a: u128, proto: L4Proto) -> Vec<(u16, u16)> {
    let mut cuts = BTreeSet::new();
    cuts.insert(0u32);
    for s in specs {
        for app in s.apps.iter().filter(|x| x.proto == proto) {
            if app.edge_ips.iter().any(|e| addr_span(e) == (f, a)) {
                cuts.insert(u32::from(app.ports.lo));
                cuts.insert(u32::from(app.ports.hi) + 1);
            }
        }
        let ports = match proto {
            L4Proto::Tcp => &s.cdn.tcp_ports,
            L4Proto::Udp => &s.cdn.udp_ports,
        };
        for &p in ports.iter().chain(if proto == L4Proto::Tcp {
            &[80u16][..]
        } else {
            &[][..]
        }) {
            cuts.insert(u32::from(p));
            cuts.insert(u32::from(p) + 1);
        }
    }
    let cuts: Vec<u32> = cuts.into_iter().filter(|&c| c <= 65535).collect();
    cuts.iter()
        .enumerate()
        .map(|(i, &lo)| (lo as u16, cuts.get(i + 1).map_or(65535, |n| (n - 1) as u16)))
        .collect()
}

fn unconfigured(b: &fastpath::tables::BindingSpec) -> String {
    match b.unconfigured {
        Unconfigured::Drop => "unconfigured drop".into(),
        Unconfigured::Reset => "unconfigured reset".into(),
    }
}

/// The destination of (proto, address, port) under `s`.
fn destination(s: &TablesSpec, f: Fam, a: u128, proto: L4Proto, port: u16) -> String {
    match place(s, f, a) {
        Place::NotOurs => "not_ours".into(),
        Place::NoBinding => "no_binding".into(),
        Place::Bound(b) => match b.service {
            Service::Spectrum => s
                .apps
                .iter()
                .find(|app| {
                    app.proto == proto
                        && app.ports.lo <= port
                        && port <= app.ports.hi
                        && app.edge_ips.iter().any(|e| addr_span(e) == (f, a))
                })
                .map_or_else(|| unconfigured(b), |app| format!("app {}", app.id)),
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
                    unconfigured(b)
                }
            }
        },
    }
}

/// Every reason to refuse `spec`: apps claiming the same traffic, bindings no address reaches,
/// addresses of advertised prefixes without a binding. Empty when it may be applied.
pub fn verify(spec: &TablesSpec) -> Vec<Finding> {
    let mut out = Vec::new();
    // Overlaps: per (edge IP, protocol), app ranges sorted by start.
    let mut claims: Vec<(IpAddr, L4Proto, u16, u16, &str)> = spec
        .apps
        .iter()
        .flat_map(|a| {
            a.edge_ips
                .iter()
                .map(move |ip| (*ip, a.proto, a.ports.lo, a.ports.hi, a.id.as_str()))
        })
        .collect();
    claims.sort_by_key(|c| (c.0, c.1, c.2));
    for w in claims.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.0 == b.0 && a.1 == b.1 && b.2 <= a.3 {
            let example = ExamplePacket {
                proto: if a.1 == L4Proto::Tcp { "tcp" } else { "udp" },
                dst: a.0,
                port: b.2,
            };
            out.push(Finding {
                rule: FindingRule::Overlap,
                message: format!(
                    "apps {} and {} both claim {example}: give one of them another port or edge IP",
                    a.4, b.4
                ),
                example,
            });
        }
    }
    for f in [Fam::V4, Fam::V6] {
        let cells = address_cells(&[spec], f);
        // Which bindings decide at least one cell; which advertised prefixes have unbound cells.
        let mut reached = vec![false; spec.bindings.len()];
        for &(lo, _) in &cells {
            match place(spec, f, lo) {
                Place::Bound(b) => {
                    for (i, x) in spec.bindings.iter().enumerate() {
                        if core::ptr::eq(x, b) {
                            reached[i] = true;
                        }
                    }
                }
                Place::NoBinding => {
                    if let Some(p) = spec.prefixes.iter().find(|p| {
                        let (g, plo, phi) = span(&p.cidr);
                        g == f && plo <= lo && lo <= phi && p.advertised
                    }) {
                        let example = ExamplePacket {
                            proto: "tcp",
                            dst: to_addr(f, lo),
                            port: 443,
                        };
                        out.push(Finding {
                            rule: FindingRule::Blackhole,
                            message: format!(
                                "advertised prefix {} has no binding for {} (e.g. {example}): add a binding spanning the prefix",
                                p.cidr,
                                to_addr(f, lo)
                            ),
                            example,
                        });
                    }
                }
                Place::NotOurs => {}
            }
        }
        for (i, b) in spec.bindings.iter().enumerate() {
            if span(&b.cidr).0 == f && !reached[i] {
                let example = ExamplePacket {
                    proto: "tcp",
                    dst: b.cidr.addr(),
                    port: 443,
                };
                out.push(Finding {
                    rule: FindingRule::ShadowedBinding,
                    message: format!(
                        "binding {} ({}) never matches: more specific or identical bindings cover all of it (e.g. {example}); remove it",
                        b.id, b.cidr
                    ),
                    example,
                });
            }
        }
    }
    out
}

/// Every (protocol, address range, port range) whose destination differs between `old` and
/// `new`, with both destinations and an example packet. Adjacent port ranges with the same
/// change are merged.
pub fn diff(old: &TablesSpec, new: &TablesSpec) -> Vec<Change> {
    let mut out = Vec::new();
    for f in [Fam::V4, Fam::V6] {
        for (lo, hi) in address_cells(&[old, new], f) {
            for (proto, pname) in PROTOS {
                let mut run: Option<Change> = None;
                for (plo, phi) in port_cells(&[old, new], f, lo, proto) {
                    let (o, n) = (
                        destination(old, f, lo, proto, plo),
                        destination(new, f, lo, proto, plo),
                    );
                    if o == n {
                        out.extend(run.take());
                        continue;
                    }
                    match &mut run {
                        Some(r)
                            if r.old == o
                                && r.new == n
                                && u32::from(r.ports.1) + 1 == u32::from(plo) =>
                        {
                            r.ports.1 = phi;
                        }
                        _ => {
                            out.extend(run.take());
                            let dst = to_addr(f, lo);
                            run = Some(Change {
                                proto: pname,
                                addresses: (dst, to_addr(f, hi)),
                                ports: (plo, phi),
                                old: o,
                                new: n,
                                example: ExamplePacket {
                                    proto: pname,
                                    dst,
                                    port: plo,
                                },
                            });
                        }
                    }
                }
                out.extend(run);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn spec(toml: &str) -> TablesSpec {
        Config::from_toml_str(toml)
            .unwrap()
            .compile(1, &Default::default())
            .unwrap()
            .spec
    }

    fn lab() -> TablesSpec {
        spec(include_str!("../../pcaps/edge-lab.toml"))
    }

    #[test]
    fn the_lab_config_verifies() {
        assert_eq!(verify(&lab()), Vec::new());
    }

    #[test]
    fn the_same_config_has_no_diff() {
        assert_eq!(diff(&lab(), &lab()), Vec::new());
    }

    #[test]
    fn moving_an_app_changes_exactly_its_old_and_new_ports() {
        let old = lab();
        let mut new = old.clone();
        let ssh = new.apps.iter_mut().find(|a| a.id == "ssh").unwrap();
        ssh.ports = fastpath::tables::PortRange { lo: 2222, hi: 2222 };
        let d = diff(&old, &new);
        let got: Vec<(String, (u16, u16), String, String)> = d
            .iter()
            .map(|c| {
                (
                    c.example.dst.to_string(),
                    c.ports,
                    c.old.clone(),
                    c.new.clone(),
                )
            })
            .collect();
        let mut want = Vec::new();
        for ip in ["203.0.113.10", "2001:db8:100:1::10"] {
            want.push((
                ip.to_string(),
                (22, 22),
                "app ssh".to_string(),
                "unconfigured drop".to_string(),
            ));
            want.push((
                ip.to_string(),
                (2222, 2222),
                "unconfigured drop".to_string(),
                "app ssh".to_string(),
            ));
        }
        assert_eq!(got, want, "{d:#?}");
        assert!(
            d.iter()
                .all(|c| c.proto == "tcp" && c.addresses.0 == c.addresses.1)
        );
    }

    #[test]
    fn overlaps_shadows_and_blackholes_are_found_with_examples() {
        let mut s = lab();
        // An app on ssh's port and address.
        let mut dup = s.apps.iter().find(|a| a.id == "ssh").unwrap().clone();
        dup.id = "dup".into();
        dup.slot = 99;
        s.apps.push(dup);
        // A binding with the same range as an existing one: never reached.
        let mut b = s.bindings[0].clone();
        b.id = "again".into();
        b.slot = 98;
        s.bindings.push(b);
        // An advertised prefix without bindings.
        s.prefixes.push(fastpath::tables::PrefixSpec {
            cidr: "198.51.100.0/24".parse().unwrap(),
            advertised: true,
        });
        let f = verify(&s);
        let rules: Vec<FindingRule> = f.iter().map(|x| x.rule).collect();
        assert!(rules.contains(&FindingRule::Overlap), "{f:#?}");
        assert!(rules.contains(&FindingRule::ShadowedBinding), "{f:#?}");
        assert!(rules.contains(&FindingRule::Blackhole), "{f:#?}");
        let o = f.iter().find(|x| x.rule == FindingRule::Overlap).unwrap();
        assert_eq!(o.example.to_string(), "tcp 203.0.113.10:22");
        let h = f.iter().find(|x| x.rule == FindingRule::Blackhole).unwrap();
        assert_eq!(h.example.dst.to_string(), "198.51.100.0");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Every sampled point whose destination differs lies in exactly one change with the
        /// right old and new; no change covers a point whose destination is the same.
        #[test]
        fn diff_agrees_with_point_evaluation(port_a in 1u16..3000, port_b in 1u16..3000, host in 0u8..=255, p in 0u16..3001) {
            let old = lab();
            let mut new = old.clone();
            let app = new.apps.iter_mut().find(|a| a.id == "range").unwrap();
            let (lo, hi) = (port_a.min(port_b), port_a.max(port_b));
            app.ports = fastpath::tables::PortRange { lo, hi };
            new.cdn.https_only = host % 2 == 0;
            let d = diff(&old, &new);
            let a = u128::from(u32::from(Ipv4Addr::new(203, 0, 113, host)));
            for (proto, name) in PROTOS {
                let (o, n) = (destination(&old, Fam::V4, a, proto, p), destination(&new, Fam::V4, a, proto, p));
                let ip = to_addr(Fam::V4, a);
                let hits: Vec<&Change> = d.iter().filter(|c| c.proto == name && c.addresses.0 <= ip && ip <= c.addresses.1 && c.ports.0 <= p && p <= c.ports.1).collect();
                if o == n {
                    proptest::prop_assert!(hits.is_empty(), "{:?}", hits);
                } else {
                    proptest::prop_assert_eq!(hits.len(), 1);
                    proptest::prop_assert_eq!(&hits[0].old, &o);
                    proptest::prop_assert_eq!(&hits[0].new, &n);
                }
            }
        }
    }
}
