//! Value types of the configuration and their text forms.
//!
//! Parsing here is about shape only (`tcp/22` has a protocol and digits); what a value means
//! (port 0, a backwards range, a scheme that does not match the app) is checked by
//! [`super::Config::validate`], which reports every problem at once. Ports are therefore kept
//! as `u32` until validated.

use core::fmt;
use core::net::{IpAddr, Ipv6Addr};
use core::str::FromStr;

use fastpath::tables::{AccessAction, L4Proto, ProxyProtocol, TrafficType, Unconfigured};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const PROTOCOL_SHAPE: &str = "expected \"tcp/PORT\", \"tcp/LO-HI\", \"udp/PORT\" or \"udp/LO-HI\"";

/// Parses `PORT` or `LO-HI` (digits only; range checked later).
fn parse_ports(s: &str) -> Option<(u32, u32)> {
    let num = |s: &str| -> Option<u32> {
        if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match s.split_once('-') {
        Some((lo, hi)) => Some((num(lo)?, num(hi)?)),
        None => num(s).map(|p| (p, p)),
    }
}

fn fmt_ports(f: &mut fmt::Formatter<'_>, lo: u32, hi: u32) -> fmt::Result {
    if lo == hi {
        write!(f, "{lo}")
    } else {
        write!(f, "{lo}-{hi}")
    }
}

fn parse_proto(s: &str) -> Option<L4Proto> {
    match s {
        "tcp" => Some(L4Proto::Tcp),
        "udp" => Some(L4Proto::Udp),
        _ => None,
    }
}

/// A Spectrum app's `protocol`: `tcp/22`, `tcp/1000-2000`, `udp/27015`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Protocol {
    /// TCP or UDP.
    pub proto: L4Proto,
    /// First edge port.
    pub lo: u32,
    /// Last edge port (inclusive; equal to `lo` for one port).
    pub hi: u32,
}

impl Protocol {
    /// Number of ports (0 for a backwards range).
    pub fn len(&self) -> u32 {
        (self.hi + 1).saturating_sub(self.lo)
    }

    /// True for a backwards range.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Protocol, String> {
        let (p, ports) = s.split_once('/').ok_or(PROTOCOL_SHAPE)?;
        let proto = parse_proto(p).ok_or_else(|| {
            format!("unknown protocol `{p}`: Spectrum apps are TCP or UDP; {PROTOCOL_SHAPE}")
        })?;
        let (lo, hi) = parse_ports(ports).ok_or(PROTOCOL_SHAPE)?;
        Ok(Protocol { proto, lo, hi })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/", self.proto.as_str())?;
        fmt_ports(f, self.lo, self.hi)
    }
}

/// An origin or CDN pool member: `tcp://192.0.2.1:22`, `udp://[2001:db8::1]:53`,
/// `tcp://192.0.2.3:3000-4000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OriginUrl {
    /// The scheme.
    pub scheme: L4Proto,
    /// The address.
    pub addr: IpAddr,
    /// First port.
    pub lo: u32,
    /// Last port (inclusive).
    pub hi: u32,
}

const ORIGIN_SHAPE: &str = "expected \"tcp://IP:PORT\", \"udp://IP:PORT\" or \"tcp://IP:LO-HI\" \
                            (IPv6 in brackets: \"tcp://[2001:db8::1]:22\")";

impl OriginUrl {
    /// Number of ports (0 for a backwards range).
    pub fn len(&self) -> u32 {
        (self.hi + 1).saturating_sub(self.lo)
    }

    /// True for a backwards range.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromStr for OriginUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<OriginUrl, String> {
        let (scheme, rest) = s.split_once("://").ok_or(ORIGIN_SHAPE)?;
        let scheme = parse_proto(scheme)
            .ok_or_else(|| format!("unknown scheme `{scheme}://`; {ORIGIN_SHAPE}"))?;
        let sch = scheme.as_str();
        let (addr, ports) = if let Some(v6) = rest.strip_prefix('[') {
            let (a, p) = v6
                .split_once("]:")
                .ok_or_else(|| format!("missing port: write \"{sch}://[ADDR]:PORT\""))?;
            let a = Ipv6Addr::from_str(a)
                .map_err(|_| format!("`{a}` is not an IPv6 address; {ORIGIN_SHAPE}"))?;
            (IpAddr::V6(a), p)
        } else if Ipv6Addr::from_str(rest).is_ok() {
            // Ambiguous: "2001:db8::1:22" is an address by itself. Guess the last group is
            // the port, and say so.
            let guess = rest
                .rsplit_once(':')
                .filter(|(a, p)| Ipv6Addr::from_str(a).is_ok() && parse_ports(p).is_some())
                .map(|(a, p)| format!(" (\"{sch}://[{a}]:{p}\" if {p} is the port)"))
                .unwrap_or_default();
            return Err(format!(
                "IPv6 origins go in brackets: \"{sch}://[ADDR]:PORT\"{guess}"
            ));
        } else {
            let (a, p) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("missing port: write \"{sch}://{rest}:PORT\""))?;
            if let Ok(v6) = Ipv6Addr::from_str(a) {
                return Err(format!(
                    "IPv6 origins go in brackets: \"{sch}://[{v6}]:{p}\""
                ));
            }
            let a = IpAddr::from_str(a).map_err(|_| {
                format!(
                    "`{a}` is not an IP address; origins are given by address here (DNS \
                     origins are not supported)"
                )
            })?;
            (a, p)
        };
        let (lo, hi) = parse_ports(ports)
            .ok_or_else(|| format!("`{ports}` is not a port or a port range; {ORIGIN_SHAPE}"))?;
        Ok(OriginUrl {
            scheme,
            addr,
            lo,
            hi,
        })
    }
}

impl fmt::Display for OriginUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{}://{a}:", self.scheme.as_str())?,
            IpAddr::V6(a) => write!(f, "{}://[{a}]:", self.scheme.as_str())?,
        }
        fmt_ports(f, self.lo, self.hi)
    }
}

/// Serde through `FromStr`/`Display`, with the parse error as the message.
macro_rules! serde_via_str {
    ($t:ty, $expecting:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

serde_via_str!(Protocol, "a string like \"tcp/22\" or \"udp/1000-2000\"");
serde_via_str!(OriginUrl, "a string like \"tcp://192.0.2.1:22\"");

/// A binding's `service`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceName {
    /// The CDN.
    Cdn,
    /// Spectrum.
    Spectrum,
    /// Magic Transit: a name of the public API that this edge refuses.
    MagicTransit,
}

impl ServiceName {
    /// The config name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ServiceName::Cdn => "cdn",
            ServiceName::Spectrum => "spectrum",
            ServiceName::MagicTransit => "magic_transit",
        }
    }

    /// The services this edge runs, for List Services.
    pub const SERVED: [ServiceName; 2] = [ServiceName::Cdn, ServiceName::Spectrum];

    /// The service's id in the BYOIP API (`GET …/addressing/services`): stable, the same on
    /// every node and in every version (the first 128 bits of SHA-256 of
    /// `"fastpath service <name>"`, as hex).
    pub const fn id(self) -> &'static str {
        match self {
            ServiceName::Cdn => "e34c03498fee47308111c9f443c3d3c1",
            ServiceName::Spectrum => "c7e2ab6e4e360b5074ebeb0ac9a045ef",
            ServiceName::MagicTransit => "",
        }
    }

    /// The name the public API shows (`"CDN"`, `"Spectrum"`).
    pub const fn display_name(self) -> &'static str {
        match self {
            ServiceName::Cdn => "CDN",
            ServiceName::Spectrum => "Spectrum",
            ServiceName::MagicTransit => "Magic Transit",
        }
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceName {
    type Err = String;

    /// Case-insensitive; `magic transit`, `magic-transit` and `magic_transit` are one name. A
    /// service id of [`ServiceName::id`] names its service too.
    fn from_str(s: &str) -> Result<ServiceName, String> {
        if let Some(sv) = ServiceName::SERVED
            .into_iter()
            .find(|sv| sv.id().eq_ignore_ascii_case(s.trim()))
        {
            return Ok(sv);
        }
        let norm: String = s
            .trim()
            .chars()
            .map(|c| match c {
                ' ' | '-' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        match &norm[..] {
            "cdn" => Ok(ServiceName::Cdn),
            "spectrum" => Ok(ServiceName::Spectrum),
            "magic_transit" => Ok(ServiceName::MagicTransit),
            _ => Err(format!(
                "unknown service `{s}`: expected \"cdn\" or \"spectrum\", or a service id of GET /client/v4/accounts/-/addressing/services ({} CDN, {} Spectrum)",
                ServiceName::Cdn.id(),
                ServiceName::Spectrum.id()
            )),
        }
    }
}

serde_via_str!(ServiceName, "\"cdn\" or \"spectrum\"");

/// `edge_ips.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeIpsType {
    /// Addresses given in `ips`.
    Static,
    /// Picked from a pool by the provider: refused here (this edge has no pool).
    Dynamic,
}

/// A Spectrum app's `tls`. The edge never terminates TLS: `off` (passthrough, the default) is
/// the only mode accepted; the others are refused by validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Passthrough.
    #[default]
    Off,
    /// TLS terminated at the edge, plain to the origin: refused here.
    Flexible,
    /// TLS both ways: refused here.
    Full,
    /// TLS both ways with a verified origin certificate: refused here.
    Strict,
}

impl Tls {
    /// The API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tls::Off => "off",
            Tls::Flexible => "flexible",
            Tls::Full => "full",
            Tls::Strict => "strict",
        }
    }
}

/// An access rule's `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessTarget {
    /// One address (`value = "198.51.100.7"`).
    Ip,
    /// A CIDR (`value = "198.51.100.0/24"`).
    IpRange,
    /// A country code: refused (needs a prefix table).
    Country,
    /// An AS number: refused (needs a prefix table).
    Asn,
}

impl AccessTarget {
    /// The config name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccessTarget::Ip => "ip",
            AccessTarget::IpRange => "ip_range",
            AccessTarget::Country => "country",
            AccessTarget::Asn => "asn",
        }
    }
}

/// `origin_dns.type`: which addresses of the name are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum OriginDnsType {
    /// Both families (the API's `""`, the default).
    #[default]
    #[serde(rename = "")]
    Any,
    /// IPv4 addresses only.
    A,
    /// IPv6 addresses only.
    #[serde(rename = "AAAA")]
    Aaaa,
    /// SRV records: refused (the system resolver has no SRV lookup).
    #[serde(rename = "SRV")]
    Srv,
}

impl OriginDnsType {
    /// The API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            OriginDnsType::Any => "",
            OriginDnsType::A => "A",
            OriginDnsType::Aaaa => "AAAA",
            OriginDnsType::Srv => "SRV",
        }
    }

    /// Whether an address of the name is used.
    pub fn admits(self, ip: IpAddr) -> bool {
        match self {
            OriginDnsType::Any | OriginDnsType::Srv => true,
            OriginDnsType::A => ip.is_ipv4(),
            OriginDnsType::Aaaa => ip.is_ipv6(),
        }
    }
}

/// `origin_port` of an app whose origin is `origin_dns`: a port (`22`) or a range
/// (`"3000-4000"`, as large as the edge range; port for port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OriginPort {
    /// First port.
    pub lo: u32,
    /// Last port (inclusive; equal to `lo` for one port).
    pub hi: u32,
}

impl OriginPort {
    /// Number of ports (0 for a backwards range).
    pub fn len(&self) -> u32 {
        (self.hi + 1).saturating_sub(self.lo)
    }

    /// True for a backwards range.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromStr for OriginPort {
    type Err = String;

    fn from_str(s: &str) -> Result<OriginPort, String> {
        parse_ports(s.trim())
            .map(|(lo, hi)| OriginPort { lo, hi })
            .ok_or_else(|| format!("`{s}` is not a port or a range: write 22 or \"3000-4000\""))
    }
}

impl fmt::Display for OriginPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_ports(f, self.lo, self.hi)
    }
}

impl Serialize for OriginPort {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.lo == self.hi {
            s.serialize_u32(self.lo)
        } else {
            s.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for OriginPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OriginPort;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port like 22 or a range like \"3000-4000\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OriginPort, E> {
                let p =
                    u32::try_from(v).map_err(|_| E::custom(format!("port {v} is too large")))?;
                Ok(OriginPort { lo: p, hi: p })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OriginPort, E> {
                let p =
                    u32::try_from(v).map_err(|_| E::custom(format!("port {v} is out of range")))?;
                Ok(OriginPort { lo: p, hi: p })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OriginPort, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// The SYN-cookie seed as written: 64 hex digits (32 bytes). Checked by validation, which
/// never echoes it; `Debug` does not show it either.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// The 32 bytes, or why not (without the secret in the message).
    ///
    /// # Errors
    /// A message naming the problem: not hex, or not 64 hex digits.
    pub fn bytes(&self) -> Result<[u8; 32], String> {
        let s = self.0.trim();
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(
                "is not hexadecimal: give 64 hex digits (32 bytes), e.g. from \
                        `openssl rand -hex 32`"
                    .into(),
            );
        }
        if s.len() != 64 {
            return Err(format!(
                "has {} hex digits; it needs 64 (32 bytes), e.g. from `openssl rand -hex 32`",
                s.len()
            ));
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(out)
    }

    /// Whether it names a file (an absolute path) rather than holding the digits.
    pub fn is_path(&self) -> bool {
        self.0.trim_start().starts_with('/')
    }

    /// The 32 bytes of a seed given inline or as the absolute path of a file holding the 64
    /// hex digits, which only its owner may read (mode 0600 or 0400).
    ///
    /// # Errors
    /// A message naming the problem (never the seed): unreadable file, a mode that lets
    /// group or others read it, or contents that are not 64 hex digits.
    pub fn seed_bytes(&self) -> Result<[u8; 32], String> {
        if !self.is_path() {
            return self.bytes();
        }
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.0.trim();
        let meta = std::fs::metadata(path).map_err(|e| format!("file {path}: {e}"))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "file {path} has mode {mode:04o}: group or others could read the seed; \
                 chmod 600 {path}"
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("file {path}: {e}"))?;
        Secret(text.trim().to_string())
            .bytes()
            .map_err(|m| format!("file {path} {m}"))
    }
}

/// `proxy_protocol` accepts the names and, as the public API does, booleans
/// (`false` = off, `true` = v1).
pub(crate) mod proxy_protocol {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(p: &ProxyProtocol, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(p.as_str())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ProxyProtocol, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ProxyProtocol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"off\", \"v1\", \"v2\", \"simple\", true or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ProxyProtocol, E> {
                Ok(if v {
                    ProxyProtocol::V1
                } else {
                    ProxyProtocol::Off
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ProxyProtocol, E> {
                match v {
                    "off" => Ok(ProxyProtocol::Off),
                    "v1" => Ok(ProxyProtocol::V1),
                    "v2" => Ok(ProxyProtocol::V2),
                    "simple" => Ok(ProxyProtocol::Simple),
                    _ => Err(E::unknown_variant(v, &["off", "v1", "v2", "simple"])),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Serde for the data plane's name enums (`fastpath` has no serde).
macro_rules! remote_enum {
    ($module:ident, $t:ty, [$($name:literal => $v:expr),+ $(,)?]) => {
        pub(crate) mod $module {
            use super::*;

            pub(crate) fn serialize<S: Serializer>(v: &$t, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(v.as_str())
            }

            pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("one of", $(" \"", $name, "\""),+))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$t, E> {
                        match v {
                            $($name => Ok($v),)+
                            _ => Err(E::unknown_variant(v, &[$($name),+])),
                        }
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

remote_enum!(unconfigured, Unconfigured, [
    "drop" => Unconfigured::Drop,
    "reset" => Unconfigured::Reset,
]);
remote_enum!(traffic_type, TrafficType, [
    "direct" => TrafficType::Direct,
    "http" => TrafficType::Http,
    "https" => TrafficType::Https,
]);
remote_enum!(access_action, AccessAction, [
    "allow" => AccessAction::Allow,
    "block" => AccessAction::Block,
]);

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn protocol_text_forms() {
        let p: Protocol = "tcp/1000-2000".parse().unwrap();
        assert_eq!(
            (p.proto, p.lo, p.hi, p.len()),
            (L4Proto::Tcp, 1000, 2000, 1001)
        );
        assert_eq!(p.to_string(), "tcp/1000-2000");
        assert_eq!("udp/53".parse::<Protocol>().unwrap().to_string(), "udp/53");
        // Out-of-range numbers parse (validation names the problem); shapes do not.
        assert_eq!("tcp/70000".parse::<Protocol>().unwrap().lo, 70000);
        for bad in [
            "tcp22",
            "tcp/",
            "tcp/a",
            "tcp/1-",
            "sctp/22",
            "tcp/1-2-3",
            "tcp/+1",
        ] {
            assert!(bad.parse::<Protocol>().is_err(), "{bad}");
        }
    }

    #[test]
    fn origin_text_forms() {
        for s in [
            "tcp://192.0.2.1:22",
            "udp://[2001:db8::1]:53",
            "tcp://192.0.2.3:3000-4000",
        ] {
            assert_eq!(s.parse::<OriginUrl>().unwrap().to_string(), s);
        }
        let e = "tcp://2001:db8::1:22".parse::<OriginUrl>().unwrap_err();
        assert!(e.contains("\"tcp://[2001:db8::1]:22\""), "{e}");
        let e = "tcp://2001:db8::1".parse::<OriginUrl>().unwrap_err();
        assert!(e.contains("brackets"), "{e}");
        let e = "tcp://origin.example.com:22"
            .parse::<OriginUrl>()
            .unwrap_err();
        assert!(e.contains("not an IP address"), "{e}");
        let e = "tcp://192.0.2.1".parse::<OriginUrl>().unwrap_err();
        assert!(e.contains("missing port"), "{e}");
        let e = "http://192.0.2.1:80".parse::<OriginUrl>().unwrap_err();
        assert!(e.contains("unknown scheme `http://`"), "{e}");
    }

    #[test]
    fn service_names_are_forgiving() {
        assert_eq!("CDN".parse(), Ok(ServiceName::Cdn));
        assert_eq!("Spectrum".parse(), Ok(ServiceName::Spectrum));
        assert_eq!("Magic Transit".parse(), Ok(ServiceName::MagicTransit));
        assert!("waf".parse::<ServiceName>().is_err());
    }

    #[test]
    fn secret_never_echoed() {
        let s = Secret("zz".repeat(32));
        let e = s.bytes().unwrap_err();
        assert!(!e.contains("zz"), "{e}");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        let ok = Secret("0123456789abcdef".repeat(4));
        assert_eq!(ok.bytes().unwrap()[..2], [0x01, 0x23]);
    }
}
