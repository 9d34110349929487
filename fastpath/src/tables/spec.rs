//! The data plane's view of a configuration: plain values, validated by `control`, compiled
//! into [`super::Tables`] by [`super::Tables::build`].

use core::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::verdict::Service;

/// Upper bound (exclusive) of app and binding slots; per-queue counter arrays have this many rows.
pub const MAX_SLOTS: u32 = 4096;

/// Everything the tables are built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TablesSpec {
    /// Configuration version (grows by one with every accepted change).
    pub version: u64,
    /// Onboarded prefixes.
    pub prefixes: Vec<PrefixSpec>,
    /// Service bindings (longest prefix wins).
    pub bindings: Vec<BindingSpec>,
    /// Spectrum apps.
    pub apps: Vec<AppSpec>,
    /// CDN port policy and pool.
    pub cdn: CdnSpec,
    /// Source IP access rules (longest prefix wins).
    pub access_rules: Vec<AccessRuleSpec>,
}

/// An onboarded prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixSpec {
    /// The prefix.
    pub cidr: IpNet,
    /// Advertised prefixes must be covered by bindings; a prefix that is onboarded but not
    /// advertised may have none (its traffic is dropped as `no_binding`).
    pub advertised: bool,
}

/// What a packet to a bound address but an unconfigured port gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Unconfigured {
    /// Dropped silently (`drop`/`unconfigured_port`).
    #[default]
    Drop,
    /// Answered with TCP RST or ICMP port unreachable (`tx`/`reset`).
    Reset,
}

impl Unconfigured {
    /// The config name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Unconfigured::Drop => "drop",
            Unconfigured::Reset => "reset",
        }
    }
}

/// A service binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingSpec {
    /// Stable identifier (shown by explain and the control API).
    pub id: String,
    /// Stable numeric id allocated by `control`, unique among bindings and below
    /// [`MAX_SLOTS`]: per-binding counters are indexed by it, so it must not change while the
    /// binding exists.
    pub slot: u32,
    /// The range it binds.
    pub cidr: IpNet,
    /// The service it hands traffic to.
    pub service: Service,
    /// What unconfigured ports get.
    pub unconfigured: Unconfigured,
}

/// Transport protocol of an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum L4Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl L4Proto {
    /// The IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            L4Proto::Tcp => 6,
            L4Proto::Udp => 17,
        }
    }

    /// The protocol with this IP protocol number.
    pub const fn from_number(n: u8) -> Option<L4Proto> {
        match n {
            6 => Some(L4Proto::Tcp),
            17 => Some(L4Proto::Udp),
            _ => None,
        }
    }

    /// `tcp` or `udp`.
    pub const fn as_str(self) -> &'static str {
        match self {
            L4Proto::Tcp => "tcp",
            L4Proto::Udp => "udp",
        }
    }
}

/// An inclusive port range (`lo == hi` for one port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port (inclusive).
    pub hi: u16,
}

impl PortRange {
    /// One port.
    pub const fn single(p: u16) -> PortRange {
        PortRange { lo: p, hi: p }
    }

    /// Number of ports.
    pub const fn len(&self) -> u32 {
        self.hi as u32 - self.lo as u32 + 1
    }

    /// Never empty (`lo <= hi` is an invariant the builder checks).
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// True when `p` is in the range.
    pub const fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }

    /// True when the two ranges share a port.
    pub const fn overlaps(&self, o: &PortRange) -> bool {
        self.lo <= o.hi && o.lo <= self.hi
    }
}

impl core::fmt::Display for PortRange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// The PROXY header a Spectrum app sends to its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProxyProtocol {
    /// None.
    #[default]
    Off,
    /// PROXY protocol v1 (text, TCP only).
    V1,
    /// PROXY protocol v2 (binary, TCP and UDP).
    V2,
    /// Simple Proxy Protocol (38-byte header, UDP only).
    Simple,
}

impl ProxyProtocol {
    /// The config name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProxyProtocol::Off => "off",
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
            ProxyProtocol::Simple => "simple",
        }
    }
}

/// How a Spectrum app's traffic is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TrafficType {
    /// Plain TCP/UDP relay.
    #[default]
    Direct,
    /// HTTP through the L7 pipeline.
    Http,
    /// HTTPS through the L7 pipeline.
    Https,
}

impl TrafficType {
    /// The config name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TrafficType::Direct => "direct",
            TrafficType::Http => "http",
            TrafficType::Https => "https",
        }
    }
}

/// An origin: an address and the port range that the edge range maps onto, offset for offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OriginSpec {
    /// Origin address.
    pub addr: IpAddr,
    /// Origin ports (same size as the app's edge range).
    pub ports: PortRange,
}

/// A Spectrum app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// The app's id.
    pub id: String,
    /// Stable numeric id allocated by `control`, unique among apps and below [`MAX_SLOTS`]:
    /// per-app counters and analytics are indexed by it, so it must not change while the app
    /// exists.
    pub slot: u32,
    /// TCP or UDP.
    pub proto: L4Proto,
    /// Edge ports.
    pub ports: PortRange,
    /// Edge addresses (each inside a Spectrum binding).
    pub edge_ips: Vec<IpAddr>,
    /// Whether the IP access rules apply.
    pub ip_firewall: bool,
    /// Origins.
    pub origins: Vec<OriginSpec>,
    /// PROXY header towards the origin.
    pub proxy_protocol: ProxyProtocol,
    /// Traffic type.
    pub traffic_type: TrafficType,
}

/// The CDN's port policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdnSpec {
    /// TCP ports served.
    pub tcp_ports: Vec<u16>,
    /// UDP ports served (QUIC).
    pub udp_ports: Vec<u16>,
    /// Port 80 is answered with a RST instead of served.
    pub https_only: bool,
    /// The L7 proxies the CDN worker hands flows to.
    pub pool: Vec<SocketAddr>,
    /// The PROXY header the CDN worker writes to a pool member first (`V2` unless off).
    pub proxy_protocol: ProxyProtocol,
}

impl Default for CdnSpec {
    fn default() -> Self {
        CdnSpec {
            tcp_ports: vec![
                80, 443, 8080, 8443, 2052, 2053, 2082, 2083, 2086, 2087, 2095, 2096, 8880,
            ],
            udp_ports: vec![],
            https_only: false,
            pool: vec![],
            proxy_protocol: ProxyProtocol::V2,
        }
    }
}

/// An IP access rule's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessAction {
    /// Let the source through.
    Allow,
    /// Drop it (`firewall_block`).
    Block,
}

impl AccessAction {
    /// The config name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccessAction::Allow => "allow",
            AccessAction::Block => "block",
        }
    }
}

/// An IP access rule on the source address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRuleSpec {
    /// Stable identifier (shown by explain and the control API).
    pub id: String,
    /// Source range.
    pub cidr: IpNet,
    /// Action.
    pub action: AccessAction,
}
