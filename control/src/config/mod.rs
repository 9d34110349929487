//! The configuration model: one TOML file, the source of truth for a node.
//!
//! Contract:
//! - [`Config::from_toml_str`] / [`Config::load`] return either a fully valid [`Config`] or
//!   [`ConfigErrors`] listing every problem found, each with its key path
//!   (`spectrum_apps[1].origin_direct[0]`, 0-based), value, line and what to do. Nothing is
//!   half-applied: a caller that gets errors keeps its previous configuration.
//! - Loading happens in two phases. First the shape: TOML syntax, unknown keys, missing
//!   required keys and malformed values, reported once per table (each section and each array
//!   element is checked on its own, so one typo does not hide the next). Then, once every table
//!   parses, [`Config::validate`] checks meaning across the whole file and reports every error.
//! - [`Config::compile`] turns a valid config into the data plane's
//!   [`fastpath::tables::TablesSpec`] and settings, with slots that stay stable across versions
//!   ([`Slots`]).
//! - [`origin_check`] is the origin policy, the same function validation uses.
//! - [`Config::to_toml_string`] writes a config that loads back equal.
//!
//! The shapes follow the public Spectrum and BYOIP APIs, so JSON bodies written for them
//! deserialize into [`SpectrumApp`] and [`Binding`] (see `docs/CONFIG.md`).
//!
//! ```
//! use control::config::{Config, Slots};
//!
//! let config = Config::from_toml_str(
//!     r#"
//!     [[prefixes]]
//!     cidr = "203.0.113.0/24"
//!     [[bindings]]
//!     cidr = "203.0.113.0/24"
//!     service = "cdn"
//!     "#,
//! )
//! .unwrap();
//! let compiled = config.compile(1, &Slots::default()).unwrap();
//! fastpath::tables::Tables::build(&compiled.spec).unwrap();
//! ```

mod compile;
pub mod dynamic;
mod error;
mod load;
mod origin;
mod validate;
mod value;

#[cfg(test)]
mod tests;

use core::net::IpAddr;

use fastpath::tables::{AccessAction, ProxyProtocol, TrafficType, Unconfigured};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use compile::{Compiled, Slots};
pub use error::{ConfigError, ConfigErrors, LoadError, Rule};
pub use load::parse_json;
pub use origin::{OriginCheck, RESERVED, Reserved, origin_check};
pub use value::{
    AccessTarget, EdgeIpsType, OriginDnsType, OriginPort, OriginUrl, Protocol, Secret, ServiceName,
    Tls,
};

/// A node's whole configuration. Every section is optional; see `docs/CONFIG.md`. (`Default`
/// is derived: every section has its own hand-written `Default`.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This node.
    pub node: Node,
    /// The SYN-cookie gate.
    pub syn_cookies: SynCookies,
    /// The per-queue pipeline.
    pub pipeline: Pipeline,
    /// The per-queue flow tables.
    pub flows: Flows,
    /// The worker pools.
    pub workers: Workers,
    /// How the workers carry flows to origins.
    pub proxy: Proxy,
    /// Onboarded prefixes.
    pub prefixes: Vec<Prefix>,
    /// Service bindings; the longest prefix wins.
    pub bindings: Vec<Binding>,
    /// The CDN's ports and L7 pool.
    pub cdn: Cdn,
    /// Settings of all Spectrum apps (the pool of dynamic edge IPs).
    pub spectrum: SpectrumSettings,
    /// Spectrum apps.
    pub spectrum_apps: Vec<SpectrumApp>,
    /// Source IP access rules; the longest matching prefix decides.
    pub access_rules: Vec<AccessRule>,
    /// Which reserved or managed origins may be used anyway.
    pub origin_policy: OriginPolicy,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Node {
    /// The node's name, shown by the control API and in stats.
    pub name: String,
    /// Where the rest of the configuration comes from: absent, this file; or
    /// `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`, a fleet's configuration shared through etcd
    /// (this file then keeps the last revision applied). `[node]` itself is never shared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_source: Option<String>,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            name: "edge".into(),
            config_source: None,
        }
    }
}

/// `[syn_cookies]`; defaults and ranges are those of [`fastpath::syncookie::CookieConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynCookies {
    /// Secret rotation period in seconds (60..=86400); cookies minted under the previous
    /// secret still validate.
    pub rotate_secs: u32,
    /// Shared seed, 64 hex digits (32 bytes): every node with the same seed validates the
    /// others' cookies. Absent: a random seed at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// A fleet seed instead of `secret`: 64 hex digits, or the absolute path of a file holding
    /// them (mode 0600). Every epoch's secret and the flow-hash key expand from it with HKDF,
    /// so every node given it rotates at the same moments and validates the others' cookies;
    /// a new one takes effect at the next epoch boundary (the controller records when in
    /// `previous_fleet_seed` and `fleet_seed_from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet_seed: Option<Secret>,
    /// With `fleet_seed`: the first secret epoch (unix seconds / `rotate_secs`) whose secret
    /// expands from `fleet_seed`; earlier epochs' expand from `previous_fleet_seed`. Written by
    /// the controller when the fleet seed changes (the epoch after the change), so every node
    /// derives the same secret for every epoch from the configuration alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet_seed_from: Option<u64>,
    /// With `fleet_seed_from`: the fleet seed used before that epoch (the one `fleet_seed`
    /// replaced), given as `fleet_seed` is (64 hex digits or a 0600 file's path). Its
    /// flow-hash key stays in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_fleet_seed: Option<Secret>,
    /// MSS announced over IPv4 (536..=9000). Absent: from the interface MTU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mss: Option<u16>,
    /// MSS announced over IPv6 (1220..=9000). Absent: from the interface MTU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mss6: Option<u16>,
    /// Window-scale shift announced when the client offers window scaling (0..=14).
    pub wscale: u8,
    /// Receive window in the SYN-ACK (unscaled).
    pub window: u16,
}

impl Default for SynCookies {
    fn default() -> Self {
        let d = fastpath::syncookie::CookieConfig::default();
        SynCookies {
            rotate_secs: d.rotate_secs,
            secret: None,
            fleet_seed: None,
            fleet_seed_from: None,
            previous_fleet_seed: None,
            mss: d.mss4,
            mss6: d.mss6,
            wscale: d.wscale,
            window: d.window,
        }
    }
}

/// `[pipeline]`; see [`fastpath::pipeline::PipelineConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pipeline {
    /// Frames per batch (1..=1024): one table snapshot per batch.
    pub batch_size: usize,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            batch_size: fastpath::pipeline::PipelineConfig::default().batch_size,
        }
    }
}

/// `[flows]`: each queue's flow table; see [`fastpath::pipeline::PipelineConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Flows {
    /// Flow table capacity per queue (64..=2^26, rounded up to a power of two).
    pub capacity: usize,
    /// Idle timeout of an established TCP flow, seconds (1..=86400).
    pub tcp_idle_secs: u32,
    /// Idle timeout of a UDP flow, seconds (1..=86400).
    pub udp_idle_secs: u32,
    /// How long a TCP flow lingers after the client's FIN, seconds (1..=86400).
    pub closing_secs: u32,
}

impl Default for Flows {
    fn default() -> Self {
        let d = fastpath::pipeline::PipelineConfig::default();
        Flows {
            capacity: d.flow_capacity,
            tcp_idle_secs: d.tcp_idle_secs,
            udp_idle_secs: d.udp_idle_secs,
            closing_secs: d.closing_secs,
        }
    }
}

/// `[workers]`; see [`fastpath::worker::WorkerConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Workers {
    /// Number of CDN workers (1..=256).
    pub cdn: usize,
    /// Number of Spectrum workers (1..=256).
    pub spectrum: usize,
    /// Capacity of each worker's queue (1..=2^20); a full queue drops, never blocks.
    pub queue_depth: usize,
    /// Capacity of each worker's flow state table (64..=2^26).
    pub flow_capacity: usize,
}

impl Default for Workers {
    fn default() -> Self {
        let d = fastpath::worker::WorkerConfig::default();
        Workers {
            cdn: d.cdn,
            spectrum: d.spectrum,
            queue_depth: d.queue_depth,
            flow_capacity: d.flow_capacity,
        }
    }
}

/// `[proxy]`: how the workers carry flows to their origins. Unlike `[workers]`, these change at
/// run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Proxy {
    /// Seconds to wait for an origin to accept a connection (1..=300); then the client gets a
    /// RST and the event status 522.
    pub connect_timeout_secs: u32,
    /// Seconds a TCP connection may be idle in both directions before the edge closes it
    /// (1..=86400).
    pub idle_timeout_secs: u32,
    /// Seconds the open connections of an app that was deleted or moved to another origin may
    /// still run (0..=86400; 0 closes them at once). New flows never go to the old origin.
    pub drain_secs: u32,
    /// Connections one worker holds at most (1..=16777216); a new flow past it gets a RST.
    pub max_connections: usize,
    /// Bytes a worker buffers for one connection, both directions together (8192..=67108864);
    /// a slow side makes the relay wait, never buffer more.
    pub buffer_bytes: usize,
    /// Relay TCP with `splice(2)` through a pipe (no copy through userspace) instead of a copy
    /// loop.
    pub splice: bool,
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy {
            connect_timeout_secs: 10,
            idle_timeout_secs: 3600,
            drain_secs: 300,
            max_connections: 65_536,
            buffer_bytes: 1 << 20,
            splice: true,
        }
    }
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

/// `[[prefixes]]`: an onboarded prefix. Array elements have required keys and no `Default`:
/// a missing `cidr` is an error, not a silent default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prefix {
    /// The prefix: IPv4 /24 or shorter, IPv6 /48 or shorter, no host bits.
    pub cidr: IpNet,
    /// Whether it is announced (default true). An advertised prefix needs a binding that
    /// spans it whole; one that is not may have no bindings (its traffic is dropped as
    /// `no_binding`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub advertised: bool,
}

/// `[[bindings]]`: a service binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// Stable id (letters, digits, `.`, `_`, `-`; at most 64). Absent: the CIDR is the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The range it binds, inside an onboarded prefix.
    pub cidr: IpNet,
    /// `cdn` or `spectrum`. Also read from the public API's `service_name` ("CDN",
    /// "Spectrum") or `service_id` (this edge's service ids are the names).
    #[serde(alias = "service_name", alias = "service_id")]
    pub service: ServiceName,
    /// What a packet to an unconfigured port gets: `drop` (default) or `reset`.
    #[serde(default, with = "value::unconfigured", skip_serializing_if = "is_drop")]
    pub unconfigured: Unconfigured,
}

fn is_drop(u: &Unconfigured) -> bool {
    *u == Unconfigured::Drop
}

impl Binding {
    /// The id the data plane and the API know it by: `id`, else the CIDR.
    pub fn effective_id(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => self.cidr.to_string(),
        }
    }
}

/// `[cdn]`: the CDN's port policy and L7 pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cdn {
    /// TCP ports served (1..=65535, each once).
    pub tcp_ports: Vec<u32>,
    /// UDP ports served, e.g. 443 for QUIC (1..=65535, each once).
    pub udp_ports: Vec<u32>,
    /// Answer port 80 with a RST instead of serving it.
    pub https_only: bool,
    /// The L7 proxies, as `tcp://IP:PORT`; subject to the origin policy. A flow's member is
    /// chosen by Maglev consistent hashing.
    pub pool: Vec<OriginUrl>,
    /// The PROXY header written to a pool member first: `v2` (default), `v1` or `off`.
    #[serde(with = "value::proxy_protocol")]
    pub proxy_protocol: ProxyProtocol,
}

impl Default for Cdn {
    fn default() -> Self {
        let d = fastpath::tables::CdnSpec::default();
        Cdn {
            tcp_ports: d.tcp_ports.iter().map(|&p| u32::from(p)).collect(),
            udp_ports: d.udp_ports.iter().map(|&p| u32::from(p)).collect(),
            https_only: d.https_only,
            pool: Vec::new(),
            proxy_protocol: d.proxy_protocol,
        }
    }
}

/// `[spectrum]`: settings of all Spectrum apps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpectrumSettings {
    /// Where apps with `edge_ips = { type = "dynamic" }` get their addresses: CIDRs inside
    /// Spectrum bindings, not overlapping one another. Empty: dynamic edge IPs are refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dynamic_pool: Vec<IpNet>,
}

/// `edge_ips` of a Spectrum app: `{ type = "static", ips = [...] }` or
/// `{ type = "dynamic", connectivity = "all" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeIps {
    /// `static` (addresses given) or `dynamic` (assigned from `[spectrum] dynamic_pool`).
    #[serde(rename = "type")]
    pub kind: EdgeIpsType,
    /// The edge addresses, each inside a Spectrum binding. With `dynamic`, written by the edge
    /// (and kept across restarts and edits while they stay in the pool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpAddr>,
    /// With `dynamic`: `all` (default; one IPv4 and one IPv6 address), `ipv4` or `ipv6`.
    /// Refused with `static`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<String>,
}

/// `origin_dns` of a Spectrum app: a name the edge resolves with the system resolver when the
/// app is applied and again every `ttl` seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginDns {
    /// The name (a CNAME to the origin, or the origin's own name).
    pub name: String,
    /// `""` (default: IPv4 and IPv6), `A` or `AAAA`; `SRV` is refused.
    #[serde(rename = "type", default, skip_serializing_if = "is_any")]
    pub kind: OriginDnsType,
    /// Seconds between resolutions (1..=86400; default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// The addresses of the last successful resolution, written by the edge: they are the
    /// origins, one per address, and are kept when the name later stops resolving.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<IpAddr>,
}

fn is_any(t: &OriginDnsType) -> bool {
    *t == OriginDnsType::Any
}

impl OriginDns {
    /// Default seconds between resolutions.
    pub const DEFAULT_TTL: u32 = 600;

    /// Seconds between resolutions.
    pub fn ttl(&self) -> u32 {
        self.ttl.unwrap_or(Self::DEFAULT_TTL)
    }
}

/// `dns` of a Spectrum app: the app's public name. The edge is not a DNS server: the name is
/// metadata (shown by the API, used as the id of an app created without one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// Record type (`ADDRESS`, `CNAME`).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The name.
    #[serde(default)]
    pub name: String,
}

/// `[[spectrum_apps]]`: a Spectrum app, in the public API's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpectrumApp {
    /// Unique id (letters, digits, `.`, `_`, `-`; at most 64). Required in the file; a JSON
    /// body may leave it out and get one from the API.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `tcp/PORT`, `tcp/LO-HI`, `udp/PORT` or `udp/LO-HI`.
    pub protocol: Protocol,
    /// The edge addresses: `static` ones, or `dynamic` ones from `[spectrum] dynamic_pool`.
    /// Absent: dynamic, connectivity `all` (as in the public API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_ips: Option<EdgeIps>,
    /// Origins, `tcp://IP:PORT` (IPv6 in brackets), with a port range as large as the edge
    /// range when the app has one. Exactly one of `origin_direct` and `origin_dns`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origin_direct: Vec<OriginUrl>,
    /// An origin by name, resolved by the edge; needs `origin_port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_dns: Option<OriginDns>,
    /// The origin port (or range, as large as the edge range) of `origin_dns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_port: Option<OriginPort>,
    /// `off` (default), `v1` (TCP), `v2`, `simple` (UDP); `false` = off, `true` = v1.
    #[serde(
        default,
        with = "value::proxy_protocol",
        skip_serializing_if = "is_off"
    )]
    pub proxy_protocol: ProxyProtocol,
    /// Public API alias: `true` means `proxy_protocol = "simple"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spp: Option<bool>,
    /// Whether the IP access rules apply to this app (default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub ip_firewall: bool,
    /// `direct` (default), `http`, `https` (the last two TCP only).
    #[serde(
        default,
        with = "value::traffic_type",
        skip_serializing_if = "is_direct"
    )]
    pub traffic_type: TrafficType,
    /// `off` (default, the encrypted stream is relayed as it is); `flexible`, `full` and
    /// `strict` are refused: the edge does not terminate TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// The app's public name (metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// `false` only: `true` is refused (no Argo network behind this edge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argo_smart_routing: Option<bool>,
    /// When the app was created (RFC 3339), written by the edge; a value sent is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_on: Option<String>,
    /// When the app last changed (RFC 3339), written by the edge; a value sent is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_on: Option<String>,
}

fn is_off(p: &ProxyProtocol) -> bool {
    *p == ProxyProtocol::Off
}

fn is_direct(t: &TrafficType) -> bool {
    *t == TrafficType::Direct
}

impl SpectrumApp {
    /// The PROXY header actually sent: `spp = true` means Simple Proxy Protocol.
    pub fn effective_proxy_protocol(&self) -> ProxyProtocol {
        if self.spp == Some(true) {
            ProxyProtocol::Simple
        } else {
            self.proxy_protocol
        }
    }
}

/// `[[access_rules]]`: an IP access rule on the source address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// Stable id (letters, digits, `.`, `_`, `-`; at most 64). Absent: the CIDR is the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `allow` or `block`.
    #[serde(with = "value::access_action")]
    pub mode: AccessAction,
    /// `ip` or `ip_range` (`country`, `asn` are refused).
    pub target: AccessTarget,
    /// An address for `ip`, a CIDR for `ip_range`.
    pub value: String,
}

impl AccessRule {
    /// The source range it matches, when `value` fits `target`.
    pub fn cidr(&self) -> Option<IpNet> {
        match self.target {
            AccessTarget::Ip => self.value.trim().parse::<IpAddr>().ok().map(IpNet::from),
            AccessTarget::IpRange => self.value.trim().parse::<IpNet>().ok(),
            AccessTarget::Country | AccessTarget::Asn => None,
        }
    }

    /// The id: `id`, else the CIDR.
    pub fn effective_id(&self) -> String {
        match (&self.id, self.cidr()) {
            (Some(id), _) => id.clone(),
            (None, Some(c)) => c.to_string(),
            (None, None) => self.value.clone(),
        }
    }
}

/// `[origin_policy]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginPolicy {
    /// Ranges that may be used as origins although reserved or managed.
    pub delegations: Vec<Delegation>,
}

/// `[[origin_policy.delegations]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delegation {
    /// The delegated range (no host bits).
    pub cidr: IpNet,
}

impl Config {
    /// Parses and validates a TOML document.
    ///
    /// # Errors
    /// [`ConfigErrors`] with every problem found (see the module docs for the two phases).
    pub fn from_toml_str(src: &str) -> Result<Config, ConfigErrors> {
        load::from_toml_str(src)
    }

    /// Reads, parses and validates a TOML file.
    ///
    /// # Errors
    /// [`LoadError::Read`] when the file cannot be read, [`LoadError::Invalid`] with every
    /// problem (each attributed to the file and a line) when it is refused.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Config, LoadError> {
        let path = path.as_ref();
        let src = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml_str(&src).map_err(|e| LoadError::Invalid(e.with_file(path)))
    }

    /// Parses and validates a JSON document of the same shape.
    ///
    /// # Errors
    /// [`ConfigErrors`]: the first shape error (JSON parsing stops there), or every
    /// validation error.
    pub fn from_json_str(src: &str) -> Result<Config, ConfigErrors> {
        let mut c: Config = parse_json(src)?;
        c.assign_edge_ips();
        c.validate()?;
        Ok(c)
    }

    /// The config as TOML; [`Config::from_toml_str`] reads it back equal.
    ///
    /// # Errors
    /// Only if a value cannot be written as TOML, which the model's types rule out.
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Checks every rule and reports every violation (see `docs/CONFIG.md`).
    ///
    /// # Errors
    /// [`ConfigErrors`], one per violation, with no line numbers (those are added by the
    /// loaders, which know the text).
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        validate::validate(self)
    }
}
