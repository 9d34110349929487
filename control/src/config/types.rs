//! The configuration's types. Every section and key is documented in `docs/CONFIG.md`.

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This node.
    pub node: Node,
    /// SYN cookies.
    pub syn_cookies: SynCookies,
    /// Onboarded prefixes (BYOIP).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<Prefix>,
    /// Service bindings: which service serves which part of a prefix (longest prefix wins).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<Binding>,
    /// The CDN's ports and pool.
    pub cdn: Cdn,
    /// Spectrum applications.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spectrum_apps: Vec<SpectrumApp>,
    /// IP access rules on the client address (longest prefix wins).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access_rules: Vec<AccessRule>,
    /// Which origins may be used although they are reserved or our own.
    pub origin_policy: OriginPolicy,
    /// Per-packet pipeline settings.
    pub pipeline: PipelineSection,
    /// Flow table settings.
    pub flows: FlowsSection,
    /// Worker settings.
    pub workers: WorkersSection,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Node {
    /// A name for this node, shown in reports.
    pub name: String,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            name: "edge".into(),
        }
    }
}

/// `[syn_cookies]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynCookies {
    /// Secret rotation period in seconds (60..=86400); cookies of the previous secret still
    /// validate.
    pub rotate_secs: u32,
    /// Shared seed in hex (64 digits = 32 bytes). Every node of a fleet with the same seed
    /// validates the others' cookies. Absent: a random seed at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// MSS announced over IPv4 (default: interface MTU - 40).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mss: Option<u16>,
    /// MSS announced over IPv6 (default: interface MTU - 60).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mss6: Option<u16>,
    /// Window-scale shift announced when the client offers window scaling.
    pub wscale: u8,
    /// Window in the SYN-ACK.
    pub window: u16,
}

impl Default for SynCookies {
    fn default() -> Self {
        let d = fastpath::syncookie::CookieConfig::default();
        SynCookies {
            rotate_secs: d.rotate_secs,
            secret: None,
            mss: None,
            mss6: None,
            wscale: d.wscale,
            window: d.window,
        }
    }
}

/// `[[prefixes]]`: an onboarded prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prefix {
    /// The prefix: IPv4 /24 or shorter, IPv6 /48 or shorter.
    pub cidr: IpNet,
    /// Advertised prefixes need a default binding spanning them; a prefix being onboarded
    /// (`false`) may have none, and its traffic is dropped as `no_binding`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub advertised: bool,
    /// A free-form description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A service a binding hands traffic to. Accepts the API's service names case-insensitively
/// (`cdn`, `CDN`, `spectrum`, `Spectrum`, `magic_transit`, `Magic Transit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceName {
    /// The CDN.
    Cdn,
    /// Spectrum.
    Spectrum,
    /// Magic Transit (not served by this edge; refused by validation).
    MagicTransit,
}

impl ServiceName {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Cdn => "cdn",
            ServiceName::Spectrum => "spectrum",
            ServiceName::MagicTransit => "magic_transit",
        }
    }
}

impl Serialize for ServiceName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ServiceName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let norm: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        match norm.as_str() {
            "cdn" => Ok(ServiceName::Cdn),
            "spectrum" => Ok(ServiceName::Spectrum),
            "magictransit" => Ok(ServiceName::MagicTransit),
            _ => Err(serde::de::Error::custom(format!(
                "unknown service {s:?}: expected \"cdn\" or \"spectrum\""
            ))),
        }
    }
}

/// What an unconfigured port gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UnconfiguredMode {
    /// Dropped.
    #[default]
    Drop,
    /// TCP RST or ICMP port unreachable.
    Reset,
}

/// `[[bindings]]`: a service binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// An id (default: the CIDR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The range.
    pub cidr: IpNet,
    /// The service (the API's `service_name` is accepted too).
    #[serde(alias = "service_name")]
    pub service: ServiceName,
    /// What unconfigured ports get.
    #[serde(default, skip_serializing_if = "is_default")]
    pub unconfigured: UnconfiguredMode,
}

impl Binding {
    /// The binding's id: its `id`, else its CIDR.
    pub fn id(&self) -> String {
        self.id.clone().unwrap_or_else(|| self.cidr.to_string())
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `[cdn]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cdn {
    /// TCP ports the CDN serves.
    pub tcp_ports: Vec<i64>,
    /// UDP ports the CDN serves (HTTP/3).
    pub udp_ports: Vec<i64>,
    /// Port 80 is answered with a RST.
    pub https_only: bool,
    /// The L7 proxies: `tcp://IP:PORT`.
    pub pool: Vec<String>,
}

impl Default for Cdn {
    fn default() -> Self {
        let d = fastpath::tables::CdnSpec::default();
        Cdn {
            tcp_ports: d.tcp_ports.iter().map(|p| i64::from(*p)).collect(),
            udp_ports: vec![],
            https_only: false,
            pool: vec![],
        }
    }
}

/// The `dns` object of a Spectrum app (stored for API compatibility; not used by the edge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// `CNAME` or `ADDRESS`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The hostname.
    pub name: String,
}

/// `edge_ips` of a Spectrum app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeIps {
    /// `static` (supported) or `dynamic` (refused: an edge with BYOIP needs static IPs).
    #[serde(rename = "type")]
    pub kind: String,
    /// The addresses.
    #[serde(default)]
    pub ips: Vec<String>,
    /// `all`, `ipv4` or `ipv6` (dynamic edge IPs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<String>,
}

/// `origin_dns` of a Spectrum app (refused: this edge dials `origin_direct` only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginDns {
    /// Hostname.
    pub name: String,
    /// TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// Record type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A port or a range, as the API writes `origin_port` (`22` or `"3000-4000"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortOrRange {
    /// A number.
    Port(i64),
    /// A string.
    Text(String),
}

/// `proxy_protocol`: `off|v1|v2|simple`, or a boolean (`false` = off, `true` = v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyProtocolSetting {
    /// Off.
    #[default]
    Off,
    /// PROXY v1.
    V1,
    /// PROXY v2.
    V2,
    /// Simple Proxy Protocol.
    Simple,
}

impl ProxyProtocolSetting {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyProtocolSetting::Off => "off",
            ProxyProtocolSetting::V1 => "v1",
            ProxyProtocolSetting::V2 => "v2",
            ProxyProtocolSetting::Simple => "simple",
        }
    }
}

impl Serialize for ProxyProtocolSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProxyProtocolSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            B(bool),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::B(false) => Ok(ProxyProtocolSetting::Off),
            Raw::B(true) => Ok(ProxyProtocolSetting::V1),
            Raw::S(s) => match s.to_ascii_lowercase().as_str() {
                "off" | "" => Ok(ProxyProtocolSetting::Off),
                "v1" => Ok(ProxyProtocolSetting::V1),
                "v2" => Ok(ProxyProtocolSetting::V2),
                "simple" => Ok(ProxyProtocolSetting::Simple),
                _ => Err(serde::de::Error::custom(format!(
                    "unknown proxy_protocol {s:?}: expected off, v1, v2 or simple"
                ))),
            },
        }
    }
}

/// `traffic_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TrafficTypeName {
    /// Plain relay.
    #[default]
    Direct,
    /// HTTP.
    Http,
    /// HTTPS.
    Https,
}

/// `tls` (accepted for API compatibility; the edge never terminates TLS: passthrough only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Passthrough.
    Off,
    /// Accepted, served as passthrough.
    Flexible,
    /// Accepted, served as passthrough.
    Full,
    /// Accepted, served as passthrough.
    Strict,
}

/// `[[spectrum_apps]]`: a Spectrum application (the public API's app object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpectrumApp {
    /// The app's id (required in the config file; the API assigns one when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `tcp/PORT`, `tcp/LO-HI`, `udp/PORT`, `udp/LO-HI`.
    pub protocol: String,
    /// DNS record (stored, unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// Edge addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_ips: Option<EdgeIps>,
    /// Origins: `tcp://IP:PORT`, `tcp://IP:LO-HI`, `udp://[IPv6]:PORT`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origin_direct: Vec<String>,
    /// Refused: origins by DNS name are not supported here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_dns: Option<OriginDns>,
    /// Refused with `origin_dns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_port: Option<PortOrRange>,
    /// PROXY header towards the origin.
    #[serde(default, skip_serializing_if = "is_default")]
    pub proxy_protocol: ProxyProtocolSetting,
    /// Simple Proxy Protocol (the API's older boolean; `true` means `proxy_protocol = "simple"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spp: Option<bool>,
    /// Apply the IP access rules.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ip_firewall: bool,
    /// Traffic type.
    #[serde(default, skip_serializing_if = "is_default")]
    pub traffic_type: TrafficTypeName,
    /// TLS mode (passthrough only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsMode>,
    /// Argo Smart Routing (accepted and ignored: no such network here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argo_smart_routing: Option<bool>,
    /// API timestamp (stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_on: Option<String>,
    /// API timestamp (stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_on: Option<String>,
}

/// An access rule's mode. The API's `whitelist` is accepted for `allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleMode {
    /// Allow.
    #[serde(alias = "whitelist")]
    Allow,
    /// Block.
    Block,
}

/// An access rule's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleTarget {
    /// A single address.
    Ip,
    /// A CIDR.
    IpRange,
    /// A country (refused: needs a prefix table).
    Country,
    /// An ASN (refused: needs a prefix table).
    Asn,
}

/// `[[access_rules]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// An id (default: the value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Allow or block.
    pub mode: RuleMode,
    /// What `value` is.
    pub target: RuleTarget,
    /// An address, a CIDR, a country code or an ASN.
    pub value: String,
    /// Free-form notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// `[origin_policy]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct OriginPolicy {
    /// Ranges we may use as origins although they are reserved or managed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delegations: Vec<Delegation>,
}

/// `[[origin_policy.delegations]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delegation {
    /// The delegated range.
    pub cidr: IpNet,
    /// Free-form notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// `[pipeline]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSection {
    /// Frames per batch (one table snapshot per batch).
    pub batch_size: usize,
}

impl Default for PipelineSection {
    fn default() -> Self {
        PipelineSection {
            batch_size: fastpath::pipeline::PipelineConfig::default().batch_size,
        }
    }
}

/// `[flows]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowsSection {
    /// Flow-table capacity per queue.
    pub capacity: usize,
    /// Idle timeout of established TCP flows (s).
    pub tcp_idle_secs: u32,
    /// Idle timeout of UDP flows (s).
    pub udp_idle_secs: u32,
    /// Linger after a client FIN (s).
    pub closing_secs: u32,
}

impl Default for FlowsSection {
    fn default() -> Self {
        let d = fastpath::pipeline::PipelineConfig::default();
        FlowsSection {
            capacity: d.flow_capacity,
            tcp_idle_secs: d.tcp_idle_secs,
            udp_idle_secs: d.udp_idle_secs,
            closing_secs: d.closing_secs,
        }
    }
}

/// `[workers]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersSection {
    /// CDN workers.
    pub cdn: usize,
    /// Spectrum workers.
    pub spectrum: usize,
    /// Queue depth per worker.
    pub queue_depth: usize,
    /// Flow-state capacity per worker.
    pub flow_capacity: usize,
}

impl Default for WorkersSection {
    fn default() -> Self {
        let d = fastpath::worker::WorkerConfig::default();
        WorkersSection {
            cdn: d.cdn,
            spectrum: d.spectrum,
            queue_depth: d.queue_depth,
            flow_capacity: d.flow_capacity,
        }
    }
}
