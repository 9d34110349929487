//! Compiled, immutable lookup tables and their lock-free publication.
//!
//! A [`Tables`] is built from a [`TablesSpec`] off the hot path and never changes afterwards.
//! [`SharedTables`] publishes one with an atomic pointer swap (arc-swap): a queue thread loads
//! the current snapshot once per batch, so a batch sees the whole old configuration or the whole
//! new one, never a mix. Readers never lock and never wait; an old snapshot is freed when the
//! last batch holding it ends.
//!
//! Destination lookup is a single LPM probe. The destination table holds, by longest prefix:
//! every onboarded prefix (value: "ours, no binding"), every binding (value: that binding), and
//! every Spectrum edge IP as a host route (value: its covering binding plus its port map). So
//! one lookup answers steps 3, 6 and 7 of the pipeline:
//!
//! ```text
//! dst ──LPM──► Dest { prefix, binding?, tcp ports[a..b], udp ports[c..d] }
//!                         │                 │
//!                         ▼                 ▼ sorted, disjoint (lo, hi, app) ranges
//!                  bindings[binding]      apps[app]
//! ```

pub mod spec;

use std::sync::Arc;

use core::net::IpAddr;

use arc_swap::ArcSwap;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::lpm::{Lpm4, Lpm6, LpmError};
use crate::verdict::Service;
pub use spec::*;

/// Marks "no binding" in a [`Dest`].
pub const NONE: u32 = u32::MAX;

/// Why a [`TablesSpec`] could not be compiled. `control` validates configurations with errors
/// a person can act on; these are the data plane's own last line of defence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TablesError {
    /// An LPM table could not be built.
    #[error("{table}: {source}")]
    Lpm {
        /// Which table.
        table: &'static str,
        /// The error.
        #[source]
        source: LpmError,
    },
    /// A binding outside every prefix.
    #[error("binding {0} lies outside every onboarded prefix")]
    BindingOutsidePrefix(IpNet),
    /// An edge IP outside every prefix.
    #[error("edge IP {ip} of app {app} lies outside every onboarded prefix")]
    EdgeIpOutsidePrefix {
        /// The app.
        app: String,
        /// The address.
        ip: IpAddr,
    },
    /// Two apps claim the same protocol, address and port.
    #[error("apps {a} and {b} both claim {proto} port {port} on {ip}")]
    AppConflict {
        /// First app.
        a: String,
        /// Second app.
        b: String,
        /// Protocol.
        proto: &'static str,
        /// Address.
        ip: IpAddr,
        /// A port both claim.
        port: u16,
    },
    /// A port range with `lo > hi`.
    #[error("app {0}: port range is empty")]
    EmptyRange(String),
    /// A slot at or above [`MAX_SLOTS`], or used twice.
    #[error("{kind} {id}: slot {slot} is taken or not below {MAX_SLOTS}")]
    BadSlot {
        /// `app` or `binding`.
        kind: &'static str,
        /// Its id.
        id: String,
        /// The slot.
        slot: u32,
    },
}

fn check_slots<'a>(
    kind: &'static str,
    items: impl Iterator<Item = (&'a str, u32)>,
) -> Result<(), TablesError> {
    let mut seen = vec![false; MAX_SLOTS as usize];
    for (id, slot) in items {
        match seen.get_mut(slot as usize) {
            Some(s) if !*s => *s = true,
            _ => {
                return Err(TablesError::BadSlot {
                    kind,
                    id: id.to_string(),
                    slot,
                });
            }
        }
    }
    Ok(())
}

/// One destination entry (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    /// Index into [`Tables::prefixes`].
    pub prefix: u32,
    /// Index into [`Tables::bindings`], or [`NONE`].
    pub binding: u32,
    /// The matched table entry (prefix, binding or edge host route), for explain.
    pub cidr: IpNet,
    tcp: (u32, u32),
    udp: (u32, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PortEntry {
    lo: u16,
    hi: u16,
    app: u32,
}

/// How much of a destination's ports a property covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cover {
    /// Every port.
    All,
    /// Some ports.
    Some,
    /// No port.
    None,
}

/// One destination entry, as [`Tables::destinations`] lists it.
#[derive(Debug, Clone, Copy)]
pub struct DestinationEntry<'a> {
    /// The entry's range (a prefix, a binding, or an edge IP's host route).
    pub cidr: IpNet,
    /// The binding covering it (`None`: an onboarded prefix without binding).
    pub binding: Option<&'a BindingSpec>,
    tcp: &'a [PortEntry],
    udp: &'a [PortEntry],
}

impl DestinationEntry<'_> {
    /// True for a Spectrum edge IP: apps claim ports on it.
    pub fn is_edge(&self) -> bool {
        !self.tcp.is_empty() || !self.udp.is_empty()
    }

    /// Whether the access rules apply to TCP segments to this destination (step 8 of the
    /// pipeline): always for the CDN; for a Spectrum edge IP, per app (`ip_firewall`), so its
    /// ports may be all behind them, none, or some.
    pub fn tcp_firewall(&self, apps: &[AppSpec]) -> Cover {
        match self.binding.map(|b| b.service) {
            Some(Service::Cdn) => Cover::All,
            Some(Service::Spectrum) => {
                let mut fw = self
                    .tcp
                    .iter()
                    .map(|p| apps.get(p.app as usize).is_some_and(|a| a.ip_firewall));
                match fw.next() {
                    None => Cover::None,
                    Some(first) if fw.all(|f| f == first) => {
                        if first {
                            Cover::All
                        } else {
                            Cover::None
                        }
                    }
                    Some(_) => Cover::Some,
                }
            }
            None => Cover::None,
        }
    }

    /// The port ranges apps claim for `proto` on this edge IP (ascending, disjoint).
    pub fn ports(&self, proto: L4Proto) -> impl Iterator<Item = PortRange> + '_ {
        let e = match proto {
            L4Proto::Tcp => self.tcp,
            L4Proto::Udp => self.udp,
        };
        e.iter().map(|p| PortRange { lo: p.lo, hi: p.hi })
    }
}

/// A set of ports as a 65536-bit bitmap.
#[derive(Clone)]
pub struct PortSet {
    bits: Box<[u64; 1024]>,
}

impl core::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl PortSet {
    /// The set of `ports`.
    pub fn new(ports: &[u16]) -> PortSet {
        let mut bits = Box::new([0u64; 1024]);
        for &p in ports {
            bits[usize::from(p >> 6)] |= 1 << (p & 63);
        }
        PortSet { bits }
    }

    /// True when `p` is in the set.
    #[inline]
    pub fn contains(&self, p: u16) -> bool {
        self.bits[usize::from(p >> 6)] & (1 << (p & 63)) != 0
    }

    /// The ports in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..=u16::MAX).filter(|p| self.contains(*p))
    }
}

/// The compiled CDN port policy.
#[derive(Debug, Clone)]
pub struct Cdn {
    /// TCP ports served.
    pub tcp: PortSet,
    /// UDP ports served.
    pub udp: PortSet,
    /// Port 80 gets a RST.
    pub https_only: bool,
    /// The spec it came from.
    pub spec: CdnSpec,
}

/// Immutable lookup tables for one configuration version.
#[derive(Debug, Clone)]
pub struct Tables {
    version: u64,
    dest4: Lpm4,
    dest6: Lpm6,
    dests: Vec<Dest>,
    ports: Vec<PortEntry>,
    access4: Lpm4,
    access6: Lpm6,
    /// Onboarded prefixes, in spec order.
    pub prefixes: Vec<PrefixSpec>,
    /// Bindings, in spec order.
    pub bindings: Vec<BindingSpec>,
    /// Apps, in spec order (an app index is a position here).
    pub apps: Vec<AppSpec>,
    /// Access rules, in spec order.
    pub access_rules: Vec<AccessRuleSpec>,
    /// CDN policy.
    pub cdn: Cdn,
}

type Split<T> = (Vec<(Ipv4Net, T)>, Vec<(Ipv6Net, T)>);

fn split<T: Copy>(nets: impl Iterator<Item = (IpNet, T)>) -> Split<T> {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for (n, t) in nets {
        match n {
            IpNet::V4(n) => v4.push((n.trunc(), t)),
            IpNet::V6(n) => v6.push((n.trunc(), t)),
        }
    }
    (v4, v6)
}

fn host(ip: IpAddr) -> IpNet {
    match ip {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::from(a)),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::from(a)),
    }
}

struct Pair {
    v4: Lpm4,
    v6: Lpm6,
}

impl Pair {
    fn build(
        table: &'static str,
        nets: impl Iterator<Item = (IpNet, u32)>,
    ) -> Result<Pair, TablesError> {
        let (a, b) = split(nets);
        let v4 = Lpm4::build(a).map_err(|source| TablesError::Lpm { table, source })?;
        let v6 = Lpm6::build(b).map_err(|source| TablesError::Lpm { table, source })?;
        Ok(Pair { v4, v6 })
    }

    fn lookup(&self, ip: IpAddr) -> Option<u32> {
        match ip {
            IpAddr::V4(a) => self.v4.lookup(a),
            IpAddr::V6(a) => self.v6.lookup(a),
        }
    }
}

impl Tables {
    /// Compiles `spec`.
    ///
    /// # Errors
    /// [`TablesError`] when the spec is inconsistent in a way the data plane cannot represent
    /// (duplicate prefixes, bindings or edge IPs outside every prefix, overlapping app claims).
    pub fn build(spec: &TablesSpec) -> Result<Tables, TablesError> {
        check_slots("app", spec.apps.iter().map(|a| (a.id.as_str(), a.slot)))?;
        check_slots(
            "binding",
            spec.bindings.iter().map(|b| (b.id.as_str(), b.slot)),
        )?;
        let prefixes = Pair::build(
            "prefixes",
            spec.prefixes.iter().zip(0..).map(|(p, i)| (p.cidr, i)),
        )?;
        let bindings = Pair::build(
            "bindings",
            spec.bindings.iter().zip(0..).map(|(b, i)| (b.cidr, i)),
        )?;

        let mut dests: Vec<Dest> = Vec::new();
        let mut nets: Vec<(IpNet, u32)> = Vec::new();
        for (i, p) in spec.prefixes.iter().enumerate() {
            // A binding with exactly the prefix's range takes the slot below.
            if spec
                .bindings
                .iter()
                .any(|b| b.cidr.trunc() == p.cidr.trunc())
            {
                continue;
            }
            nets.push((p.cidr, dests.len() as u32));
            dests.push(Dest {
                prefix: i as u32,
                binding: NONE,
                cidr: p.cidr.trunc(),
                tcp: (0, 0),
                udp: (0, 0),
            });
        }
        for (i, b) in spec.bindings.iter().enumerate() {
            let prefix = prefixes
                .lookup(b.cidr.network())
                .filter(|&p| spec.prefixes[p as usize].cidr.contains(&b.cidr));
            let Some(prefix) = prefix else {
                return Err(TablesError::BindingOutsidePrefix(b.cidr));
            };
            nets.push((b.cidr, dests.len() as u32));
            dests.push(Dest {
                prefix,
                binding: i as u32,
                cidr: b.cidr.trunc(),
                tcp: (0, 0),
                udp: (0, 0),
            });
        }

        // Edge IPs: group the app port claims by address, sort, check for overlaps.
        let mut claims: Vec<(IpAddr, L4Proto, PortEntry)> = Vec::new();
        for (i, app) in spec.apps.iter().enumerate() {
            if app.ports.lo > app.ports.hi {
                return Err(TablesError::EmptyRange(app.id.clone()));
            }
            for ip in &app.edge_ips {
                claims.push((
                    *ip,
                    app.proto,
                    PortEntry {
                        lo: app.ports.lo,
                        hi: app.ports.hi,
                        app: i as u32,
                    },
                ));
            }
        }
        claims.sort_by_key(|(ip, proto, e)| (*ip, *proto, e.lo));
        let mut ports: Vec<PortEntry> = Vec::with_capacity(claims.len());
        let mut i = 0;
        while i < claims.len() {
            let ip = claims[i].0;
            let prefix = prefixes
                .lookup(ip)
                .ok_or_else(|| TablesError::EdgeIpOutsidePrefix {
                    app: spec.apps[claims[i].2.app as usize].id.clone(),
                    ip,
                })?;
            let binding = bindings.lookup(ip).unwrap_or(NONE);
            let mut d = Dest {
                prefix,
                binding,
                cidr: host(ip),
                tcp: (0, 0),
                udp: (0, 0),
            };
            for proto in [L4Proto::Tcp, L4Proto::Udp] {
                let start = ports.len() as u32;
                while i < claims.len() && claims[i].0 == ip && claims[i].1 == proto {
                    let e = claims[i].2;
                    if let Some(prev) = ports
                        .last()
                        .filter(|p| ports.len() as u32 > start && p.hi >= e.lo)
                    {
                        return Err(TablesError::AppConflict {
                            a: spec.apps[prev.app as usize].id.clone(),
                            b: spec.apps[e.app as usize].id.clone(),
                            proto: proto.as_str(),
                            ip,
                            port: e.lo,
                        });
                    }
                    ports.push(e);
                    i += 1;
                }
                let r = (start, ports.len() as u32);
                match proto {
                    L4Proto::Tcp => d.tcp = r,
                    L4Proto::Udp => d.udp = r,
                }
            }
            // An edge IP whose /32 (/128) is itself a binding: keep one entry.
            if let Some(pos) = nets.iter().position(|(n, _)| *n == host(ip)) {
                let idx = nets[pos].1 as usize;
                dests[idx].tcp = d.tcp;
                dests[idx].udp = d.udp;
            } else {
                nets.push((host(ip), dests.len() as u32));
                dests.push(d);
            }
        }
        let dest = Pair::build("destinations", nets.into_iter())?;
        let access = Pair::build(
            "access rules",
            spec.access_rules.iter().zip(0..).map(|(r, i)| (r.cidr, i)),
        )?;
        Ok(Tables {
            version: spec.version,
            dest4: dest.v4,
            dest6: dest.v6,
            dests,
            ports,
            access4: access.v4,
            access6: access.v6,
            prefixes: spec.prefixes.clone(),
            bindings: spec.bindings.clone(),
            apps: spec.apps.clone(),
            access_rules: spec.access_rules.clone(),
            cdn: Cdn {
                tcp: PortSet::new(&spec.cdn.tcp_ports),
                udp: PortSet::new(&spec.cdn.udp_ports),
                https_only: spec.cdn.https_only,
                spec: spec.cdn.clone(),
            },
        })
    }

    /// Tables that own nothing: every frame is `not_ours`.
    pub fn empty() -> Tables {
        Tables::build(&TablesSpec::default()).expect("the empty spec always builds")
    }

    /// The configuration version these tables were built from.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The destination entry for `dst` (`None`: not ours).
    #[inline]
    pub fn dest(&self, dst: IpAddr) -> Option<&Dest> {
        let i = match dst {
            IpAddr::V4(a) => self.dest4.lookup(a),
            IpAddr::V6(a) => self.dest6.lookup(a),
        }?;
        self.dests.get(i as usize)
    }

    /// The binding of a destination, if any.
    #[inline]
    pub fn binding(&self, d: &Dest) -> Option<&BindingSpec> {
        self.bindings.get(d.binding as usize)
    }

    /// The index of the app serving `proto`/`port` at destination `d`.
    #[inline]
    pub fn app_at(&self, d: &Dest, proto: L4Proto, port: u16) -> Option<u32> {
        let (a, b) = match proto {
            L4Proto::Tcp => d.tcp,
            L4Proto::Udp => d.udp,
        };
        let entries = &self.ports[a as usize..b as usize];
        let i = entries.partition_point(|e| e.hi < port);
        entries.get(i).filter(|e| e.lo <= port).map(|e| e.app)
    }

    /// The access rule deciding for source `src` (longest prefix), as an index.
    #[inline]
    pub fn access_rule(&self, src: IpAddr) -> Option<u32> {
        match src {
            IpAddr::V4(a) => self.access4.lookup(a),
            IpAddr::V6(a) => self.access6.lookup(a),
        }
    }

    /// True when the CDN serves `proto`/`port`.
    #[inline]
    pub fn cdn_serves(&self, proto: L4Proto, port: u16) -> bool {
        match proto {
            L4Proto::Tcp => self.cdn.tcp.contains(port),
            L4Proto::Udp => self.cdn.udp.contains(port),
        }
    }

    /// The app with this slot.
    pub fn app_by_slot(&self, slot: u32) -> Option<&AppSpec> {
        self.apps.iter().find(|a| a.slot == slot)
    }

    /// The binding with this slot.
    pub fn binding_by_slot(&self, slot: u32) -> Option<&BindingSpec> {
        self.bindings.iter().find(|b| b.slot == slot)
    }

    /// Every destination entry (prefix, binding, edge host route), for a data plane outside
    /// this process: the XDP program's maps are written from these, so the kernel and the
    /// pipeline decide from the same compiled tables.
    pub fn destinations(&self) -> impl Iterator<Item = DestinationEntry<'_>> + '_ {
        self.dests.iter().map(move |d| DestinationEntry {
            cidr: d.cidr,
            binding: self.bindings.get(d.binding as usize),
            tcp: &self.ports[d.tcp.0 as usize..d.tcp.1 as usize],
            udp: &self.ports[d.udp.0 as usize..d.udp.1 as usize],
        })
    }

    /// The service of a binding index.
    pub fn service(&self, binding: u32) -> Option<Service> {
        self.bindings.get(binding as usize).map(|b| b.service)
    }
}

/// The published tables: one atomic pointer, swapped whole.
#[derive(Debug)]
pub struct SharedTables {
    current: ArcSwap<Tables>,
}

/// A loaded snapshot; holding it keeps those tables alive.
pub type Snapshot = arc_swap::Guard<Arc<Tables>>;

impl SharedTables {
    /// Publishes `tables` as the first snapshot.
    pub fn new(tables: Tables) -> Arc<SharedTables> {
        Arc::new(SharedTables {
            current: ArcSwap::from_pointee(tables),
        })
    }

    /// Prepares the calling thread to read: arc-swap keeps one small bookkeeping node per
    /// reader thread and allocates it on the thread's first load. A queue thread calls this
    /// when it starts, so that no batch ever allocates.
    pub fn register_reader(&self) {
        drop(self.current.load());
    }

    /// Loads the current snapshot (once per batch).
    #[inline]
    pub fn load(&self) -> Snapshot {
        self.current.load()
    }

    /// Loads the current snapshot as an owned `Arc`.
    pub fn load_full(&self) -> Arc<Tables> {
        self.current.load_full()
    }

    /// Replaces the snapshot; batches already running finish on the old one.
    pub fn store(&self, tables: Tables) {
        self.current.store(Arc::new(tables));
    }
}

/// Tables for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) mod tests_support {
    /// The lab tables of the table tests.
    pub fn lab_tables() -> super::Tables {
        super::Tables::build(&super::test::lab_spec()).expect("the lab spec builds")
    }
}

#[cfg(test)]
pub(crate) mod test {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    pub fn lab_spec() -> TablesSpec {
        TablesSpec {
            version: 1,
            prefixes: vec![
                PrefixSpec {
                    cidr: net("203.0.113.0/24"),
                    advertised: true,
                },
                PrefixSpec {
                    cidr: net("2001:db8:100::/48"),
                    advertised: true,
                },
                PrefixSpec {
                    cidr: net("198.18.0.0/24"),
                    advertised: false,
                },
            ],
            bindings: vec![
                BindingSpec {
                    id: "b0".into(),
                    slot: 0,
                    cidr: net("203.0.113.0/24"),
                    service: Service::Spectrum,
                    unconfigured: Unconfigured::Drop,
                },
                BindingSpec {
                    id: "b1".into(),
                    slot: 1,
                    cidr: net("203.0.113.128/25"),
                    service: Service::Cdn,
                    unconfigured: Unconfigured::Drop,
                },
                BindingSpec {
                    id: "b2".into(),
                    slot: 2,
                    cidr: net("2001:db8:100::/48"),
                    service: Service::Cdn,
                    unconfigured: Unconfigured::Drop,
                },
                BindingSpec {
                    id: "b3".into(),
                    slot: 3,
                    cidr: net("2001:db8:100:1::/64"),
                    service: Service::Spectrum,
                    unconfigured: Unconfigured::Reset,
                },
            ],
            apps: vec![
                AppSpec {
                    id: "ssh".into(),
                    slot: 0,
                    proto: L4Proto::Tcp,
                    ports: PortRange::single(22),
                    edge_ips: vec![ip("203.0.113.10"), ip("2001:db8:100:1::10")],
                    ip_firewall: true,
                    origins: vec![OriginSpec {
                        addr: ip("192.0.2.1"),
                        ports: PortRange::single(22),
                    }],
                    proxy_protocol: ProxyProtocol::Off,
                    traffic_type: TrafficType::Direct,
                },
                AppSpec {
                    id: "range".into(),
                    slot: 1,
                    proto: L4Proto::Tcp,
                    ports: PortRange { lo: 1000, hi: 2000 },
                    edge_ips: vec![ip("203.0.113.10")],
                    ip_firewall: false,
                    origins: vec![OriginSpec {
                        addr: ip("192.0.2.3"),
                        ports: PortRange { lo: 3000, hi: 4000 },
                    }],
                    proxy_protocol: ProxyProtocol::V2,
                    traffic_type: TrafficType::Direct,
                },
                AppSpec {
                    id: "game".into(),
                    slot: 2,
                    proto: L4Proto::Udp,
                    ports: PortRange::single(27015),
                    edge_ips: vec![ip("203.0.113.10")],
                    ip_firewall: false,
                    origins: vec![],
                    proxy_protocol: ProxyProtocol::Simple,
                    traffic_type: TrafficType::Direct,
                },
            ],
            cdn: CdnSpec {
                udp_ports: vec![443],
                ..CdnSpec::default()
            },
            access_rules: vec![
                AccessRuleSpec {
                    id: "r0".into(),
                    cidr: net("198.51.100.0/24"),
                    action: AccessAction::Block,
                },
                AccessRuleSpec {
                    id: "r1".into(),
                    cidr: net("198.51.100.7/32"),
                    action: AccessAction::Allow,
                },
            ],
        }
    }

    #[test]
    fn destinations() {
        let t = Tables::build(&lab_spec()).unwrap();
        assert!(t.dest(ip("192.0.2.1")).is_none(), "not ours");
        let d = t.dest(ip("203.0.113.5")).unwrap();
        assert_eq!(t.binding(d).unwrap().id, "b0");
        let d = t.dest(ip("203.0.113.200")).unwrap();
        assert_eq!(t.binding(d).unwrap().service, Service::Cdn);
        let d = t.dest(ip("198.18.0.9")).unwrap();
        assert!(t.binding(d).is_none(), "onboarded, not advertised, unbound");
        let d = t.dest(ip("2001:db8:100:1::10")).unwrap();
        assert_eq!(t.binding(d).unwrap().id, "b3");
        assert_eq!(t.app_at(d, L4Proto::Tcp, 22), Some(0));
        assert_eq!(t.app_at(d, L4Proto::Tcp, 23), None);
    }

    #[test]
    fn port_ranges_are_inclusive() {
        let t = Tables::build(&lab_spec()).unwrap();
        let d = t.dest(ip("203.0.113.10")).unwrap();
        assert_eq!(t.app_at(d, L4Proto::Tcp, 999), None);
        assert_eq!(t.app_at(d, L4Proto::Tcp, 1000), Some(1));
        assert_eq!(t.app_at(d, L4Proto::Tcp, 2000), Some(1));
        assert_eq!(t.app_at(d, L4Proto::Tcp, 2001), None);
        assert_eq!(t.app_at(d, L4Proto::Tcp, 22), Some(0));
        assert_eq!(t.app_at(d, L4Proto::Udp, 22), None);
        assert_eq!(t.app_at(d, L4Proto::Udp, 27015), Some(2));
        let other = t.dest(ip("203.0.113.11")).unwrap();
        assert_eq!(t.app_at(other, L4Proto::Tcp, 22), None);
    }

    #[test]
    fn access_rules_longest_prefix_wins() {
        let t = Tables::build(&lab_spec()).unwrap();
        assert_eq!(t.access_rule(ip("198.51.100.8")), Some(0));
        assert_eq!(t.access_rule(ip("198.51.100.7")), Some(1));
        assert_eq!(t.access_rule(ip("192.0.2.7")), None);
    }

    #[test]
    fn conflicts_and_strays_are_refused() {
        let mut s = lab_spec();
        s.apps[1].ports = PortRange { lo: 10, hi: 22 };
        assert!(matches!(
            Tables::build(&s),
            Err(TablesError::AppConflict { port: 22, .. })
        ));
        let mut s = lab_spec();
        s.apps[0].edge_ips.push(ip("192.0.2.99"));
        assert!(matches!(
            Tables::build(&s),
            Err(TablesError::EdgeIpOutsidePrefix { .. })
        ));
        let mut s = lab_spec();
        s.bindings[1].cidr = net("192.0.2.0/25");
        assert!(matches!(
            Tables::build(&s),
            Err(TablesError::BindingOutsidePrefix(_))
        ));
    }

    #[test]
    fn slots_must_be_unique_and_bounded() {
        let mut s = lab_spec();
        s.apps[1].slot = 0;
        assert!(matches!(
            Tables::build(&s),
            Err(TablesError::BadSlot { kind: "app", .. })
        ));
        let mut s = lab_spec();
        s.bindings[0].slot = MAX_SLOTS;
        assert!(matches!(
            Tables::build(&s),
            Err(TablesError::BadSlot {
                kind: "binding",
                ..
            })
        ));
    }

    #[test]
    fn destinations_list_every_entry() {
        let t = Tables::build(&lab_spec()).unwrap();
        let all: Vec<_> = t.destinations().collect();
        // 3 prefixes (two covered by a same-range binding), 4 bindings, 2 edge IPs.
        assert_eq!(all.len(), 1 + 4 + 2);
        let edge = all
            .iter()
            .find(|d| d.cidr == net("203.0.113.10/32"))
            .unwrap();
        assert!(edge.is_edge());
        assert_eq!(edge.binding.unwrap().id, "b0");
        assert_eq!(
            edge.ports(L4Proto::Tcp).collect::<Vec<_>>(),
            vec![PortRange::single(22), PortRange { lo: 1000, hi: 2000 }]
        );
        assert_eq!(
            edge.ports(L4Proto::Udp).collect::<Vec<_>>(),
            vec![PortRange::single(27015)]
        );
        let unbound = all.iter().find(|d| d.cidr == net("198.18.0.0/24")).unwrap();
        assert!(unbound.binding.is_none() && !unbound.is_edge());
    }

    #[test]
    fn swap_is_whole() {
        let shared = SharedTables::new(Tables::build(&lab_spec()).unwrap());
        let before = shared.load();
        let mut s = lab_spec();
        s.version = 2;
        shared.store(Tables::build(&s).unwrap());
        assert_eq!(
            before.version(),
            1,
            "a loaded snapshot does not change under the reader"
        );
        assert_eq!(shared.load().version(), 2);
    }
}
