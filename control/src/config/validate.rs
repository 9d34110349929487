//! The rules a configuration must satisfy. Every rule reports every violation with its key
//! path and value; nothing is applied unless all pass.

use core::net::IpAddr;
use std::collections::{BTreeMap, HashMap, HashSet};

use fastpath::tables::{L4Proto, PortRange};
use ipnet::IpNet;

use super::origin::{self, origin_check};
use super::{
    Config, ConfigError, ConfigErrors, ProxyProtocolSetting, RuleTarget, ServiceName, SpectrumApp,
    TrafficTypeName,
};

/// Collects errors.
#[derive(Default)]
pub(super) struct Report(pub Vec<ConfigError>);

impl Report {
    pub fn err(
        &mut self,
        path: impl Into<String>,
        value: impl ToString,
        message: impl Into<String>,
    ) {
        self.0.push(ConfigError {
            path: path.into(),
            value: value.to_string(),
            message: message.into(),
        });
    }
}

/// Parses `tcp/22`, `udp/1000-2000`.
pub fn parse_protocol(s: &str) -> Result<(L4Proto, PortRange), String> {
    let (proto, ports) = s.split_once('/').ok_or_else(|| {
        "expected PROTOCOL/PORT or PROTOCOL/LO-HI, e.g. tcp/22 or udp/27015".to_string()
    })?;
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => L4Proto::Tcp,
        "udp" => L4Proto::Udp,
        p => return Err(format!("protocol {p:?} is not tcp or udp")),
    };
    Ok((proto, parse_ports(ports)?))
}

/// Parses `22` or `1000-2000` (ports 1..=65535, lo <= hi).
pub fn parse_ports(s: &str) -> Result<PortRange, String> {
    let one = |p: &str| -> Result<u16, String> {
        let n: u64 = p
            .trim()
            .parse()
            .map_err(|_| format!("{p:?} is not a port number"))?;
        match n {
            1..=65535 => Ok(n as u16),
            _ => Err(format!("port {n} is out of range (1..=65535)")),
        }
    };
    match s.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (one(lo)?, one(hi)?);
            if lo > hi {
                return Err(format!("range {lo}-{hi} runs backwards"));
            }
            Ok(PortRange { lo, hi })
        }
        None => Ok(PortRange::single(one(s)?)),
    }
}

/// Parses an origin URL `tcp://IP:PORT`, `udp://[IPv6]:LO-HI`.
pub fn parse_origin(s: &str) -> Result<(L4Proto, IpAddr, PortRange), String> {
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| "expected tcp://IP:PORT or udp://IP:PORT".to_string())?;
    let proto = match scheme.to_ascii_lowercase().as_str() {
        "tcp" => L4Proto::Tcp,
        "udp" => L4Proto::Udp,
        p => return Err(format!("scheme {p:?} is not tcp or udp")),
    };
    let (host, ports) = if let Some(r) = rest.strip_prefix('[') {
        let (h, p) = r
            .split_once("]:")
            .ok_or_else(|| "an IPv6 origin is written [ADDRESS]:PORT".to_string())?;
        (h, p)
    } else {
        let (h, p) = rest
            .rsplit_once(':')
            .ok_or_else(|| "the origin needs a port: IP:PORT".to_string())?;
        if h.contains(':') {
            return Err("write an IPv6 origin in brackets: [2001:db8::1]:22".to_string());
        }
        (h, p)
    };
    let ip: IpAddr = host.parse().map_err(|_| {
        format!("{host:?} is not an IP address (origins by name are not supported here)")
    })?;
    Ok((proto, ip, parse_ports(ports)?))
}

fn longest_binding(c: &Config, ip: IpAddr) -> Option<(usize, &super::Binding)> {
    c.bindings
        .iter()
        .enumerate()
        .filter(|(_, b)| b.cidr.trunc().contains(&ip))
        .max_by_key(|(_, b)| b.cidr.prefix_len())
}

pub(super) fn validate(c: &Config) -> Result<(), ConfigErrors> {
    let mut r = Report::default();
    prefixes(c, &mut r);
    bindings(c, &mut r);
    apps(c, &mut r);
    cdn(c, &mut r);
    access_rules(c, &mut r);
    delegations(c, &mut r);
    settings(c, &mut r);
    if r.0.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(r.0))
    }
}

fn host_bits(r: &mut Report, path: String, n: &IpNet) {
    if *n != n.trunc() {
        r.err(
            path,
            n,
            format!("host bits are set; did you mean {}?", n.trunc()),
        );
    }
}

fn prefixes(c: &Config, r: &mut Report) {
    for (i, p) in c.prefixes.iter().enumerate() {
        let path = format!("prefixes[{i}].cidr");
        match p.cidr {
            IpNet::V4(n) if n.prefix_len() > 24 => r.err(
                &path,
                p.cidr,
                "IPv4 prefixes must be /24 or shorter (the smallest prefix BYOIP onboards)",
            ),
            IpNet::V6(n) if n.prefix_len() > 48 => r.err(
                &path,
                p.cidr,
                "IPv6 prefixes must be /48 or shorter (the smallest prefix BYOIP onboards)",
            ),
            _ => {}
        }
        host_bits(r, path.clone(), &p.cidr);
        for (j, q) in c.prefixes.iter().enumerate().take(i) {
            let (a, b) = (p.cidr.trunc(), q.cidr.trunc());
            if a.contains(&b) || b.contains(&a) {
                r.err(
                    &path,
                    p.cidr,
                    format!(
                        "overlaps prefixes[{j}] = {}; onboarded prefixes must not overlap",
                        q.cidr
                    ),
                );
            }
        }
        if p.advertised && !c.bindings.iter().any(|b| b.cidr.trunc() == p.cidr.trunc()) {
            r.err(
                &path,
                p.cidr,
                format!(
                    "an advertised prefix needs a default binding spanning it whole (no blackholing): add [[bindings]] cidr = \"{}\" with service = \"cdn\" or \"spectrum\", or set advertised = false while onboarding",
                    p.cidr.trunc()
                ),
            );
        }
    }
}

fn bindings(c: &Config, r: &mut Report) {
    let mut seen: HashMap<IpNet, usize> = HashMap::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, b) in c.bindings.iter().enumerate() {
        let path = format!("bindings[{i}].cidr");
        host_bits(r, path.clone(), &b.cidr);
        if !c
            .prefixes
            .iter()
            .any(|p| p.cidr.trunc().contains(&b.cidr.trunc()))
        {
            r.err(
                &path,
                b.cidr,
                "lies outside every onboarded prefix; onboard its prefix in [[prefixes]] first",
            );
        }
        if let Some(j) = seen.insert(b.cidr.trunc(), i) {
            r.err(
                &path,
                b.cidr,
                format!("bindings[{j}] binds the same range; a range has one binding"),
            );
        }
        if b.service == ServiceName::MagicTransit {
            r.err(
                format!("bindings[{i}].service"),
                "magic_transit",
                "Magic Transit is not served by this edge: use cdn or spectrum",
            );
        }
        if let Some(id) = &b.id {
            if id.is_empty() {
                r.err(
                    format!("bindings[{i}].id"),
                    "\"\"",
                    "an id must not be empty",
                );
            } else if let Some(j) = ids.insert(id.clone(), i) {
                r.err(
                    format!("bindings[{i}].id"),
                    format!("{id:?}"),
                    format!("bindings[{j}] has the same id"),
                );
            }
        }
    }
}

/// An app's parsed edge claims: (proto, ip, ports).
type Claim = (L4Proto, IpAddr, PortRange, usize);

fn apps(c: &Config, r: &mut Report) {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut claims: Vec<Claim> = Vec::new();
    for (i, a) in c.spectrum_apps.iter().enumerate() {
        let p = |k: &str| format!("spectrum_apps[{i}].{k}");
        match a.id.as_deref() {
            None => r.err(p("id"), "", "every app needs an id"),
            Some("") => r.err(p("id"), "\"\"", "an id must not be empty"),
            Some(id) => {
                if let Some(j) = ids.insert(id, i) {
                    r.err(
                        p("id"),
                        format!("{id:?}"),
                        format!("spectrum_apps[{j}] has the same id"),
                    );
                }
            }
        }
        let parsed = match parse_protocol(&a.protocol) {
            Ok(v) => Some(v),
            Err(e) => {
                r.err(p("protocol"), format!("{:?}", a.protocol), e);
                None
            }
        };
        app_edge_ips(c, a, i, parsed, r, &mut claims);
        app_origins(c, a, i, parsed, r);
        app_options(a, i, parsed.map(|x| x.0), r);
    }
    // Two apps claiming the same (protocol, edge IP, port).
    claims.sort_by_key(|(proto, ip, ports, _)| (*proto, *ip, ports.lo));
    for w in claims.windows(2) {
        let ((p1, ip1, r1, i1), (p2, ip2, r2, i2)) = (w[0], w[1]);
        if p1 == p2 && ip1 == ip2 && r1.overlaps(&r2) && i1 != i2 {
            let name = |i: usize| {
                c.spectrum_apps[i]
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("#{i}"))
            };
            r.err(
                format!("spectrum_apps[{}].protocol", i1.max(i2)),
                format!("{:?}", c.spectrum_apps[i1.max(i2)].protocol),
                format!(
                    "apps {:?} and {:?} both claim {}/{} on {ip1}; an edge IP and port belong to one app",
                    name(i1.min(i2)),
                    name(i1.max(i2)),
                    p1.as_str(),
                    r1.lo.max(r2.lo)
                ),
            );
        }
    }
}

fn app_edge_ips(
    c: &Config,
    a: &SpectrumApp,
    i: usize,
    parsed: Option<(L4Proto, PortRange)>,
    r: &mut Report,
    claims: &mut Vec<Claim>,
) {
    let Some(e) = &a.edge_ips else {
        r.err(format!("spectrum_apps[{i}].edge_ips"), "", "an app on this edge needs static edge IPs: edge_ips = { type = \"static\", ips = [\"203.0.113.10\"] }");
        return;
    };
    if e.kind != "static" {
        r.err(
            format!("spectrum_apps[{i}].edge_ips.type"),
            format!("{:?}", e.kind),
            "only static edge IPs are supported on a BYOIP edge: give type = \"static\" and ips",
        );
        return;
    }
    if e.ips.is_empty() {
        r.err(
            format!("spectrum_apps[{i}].edge_ips.ips"),
            "[]",
            "at least one edge IP is needed",
        );
    }
    let mut seen = HashSet::new();
    for (k, s) in e.ips.iter().enumerate() {
        let path = format!("spectrum_apps[{i}].edge_ips.ips[{k}]");
        let Ok(ip) = s.parse::<IpAddr>() else {
            r.err(path, format!("{s:?}"), "not an IP address");
            continue;
        };
        if !seen.insert(ip) {
            r.err(&path, format!("{s:?}"), "listed twice");
            continue;
        }
        match longest_binding(c, ip) {
            None => r.err(&path, format!("{s:?}"), "lies in no binding; edge IPs must be inside a spectrum binding"),
            Some((j, b)) if b.service != ServiceName::Spectrum => r.err(
                &path,
                format!("{s:?}"),
                format!("its binding is bindings[{j}] {} with service {}; edge IPs must be inside a spectrum binding", b.cidr, b.service.as_str()),
            ),
            Some(_) => {}
        }
        if let Some((proto, ports)) = parsed {
            claims.push((proto, ip, ports, i));
        }
    }
}

fn app_origins(
    c: &Config,
    a: &SpectrumApp,
    i: usize,
    parsed: Option<(L4Proto, PortRange)>,
    r: &mut Report,
) {
    if a.origin_dns.is_some() {
        r.err(
            format!("spectrum_apps[{i}].origin_dns"),
            "",
            "not supported here: use origin_direct = [\"tcp://IP:PORT\"]",
        );
    }
    if a.origin_port.is_some() {
        r.err(
            format!("spectrum_apps[{i}].origin_port"),
            "",
            "not supported here: give the port in origin_direct",
        );
    }
    if a.origin_direct.is_empty() && a.origin_dns.is_none() {
        r.err(
            format!("spectrum_apps[{i}].origin_direct"),
            "[]",
            "at least one origin is needed: origin_direct = [\"tcp://192.0.2.1:22\"]",
        );
    }
    for (k, s) in a.origin_direct.iter().enumerate() {
        let path = format!("spectrum_apps[{i}].origin_direct[{k}]");
        let v = format!("{s:?}");
        let (proto, ip, ports) = match parse_origin(s) {
            Ok(x) => x,
            Err(e) => {
                r.err(path, v, e);
                continue;
            }
        };
        if let Some((app_proto, edge)) = parsed {
            if proto != app_proto {
                r.err(
                    &path,
                    &v,
                    format!(
                        "the scheme must match the app's protocol: {}://",
                        app_proto.as_str()
                    ),
                );
            }
            if ports.len() != edge.len() {
                r.err(
                    &path,
                    &v,
                    format!(
                        "the edge has {} port(s) ({edge}) but the origin {} ({ports}); a range maps onto a range of the same size, offset for offset",
                        edge.len(),
                        ports.len()
                    ),
                );
            }
        }
        let check = origin_check(c, IpNet::from(ip));
        if !check.allowed {
            r.err(
                &path,
                &v,
                check
                    .reason
                    .unwrap_or_else(|| "not allowed as an origin".into()),
            );
        }
    }
}

fn app_options(a: &SpectrumApp, i: usize, proto: Option<L4Proto>, r: &mut Report) {
    let pp = match (a.spp, a.proxy_protocol) {
        (Some(true), ProxyProtocolSetting::Off | ProxyProtocolSetting::Simple) => {
            ProxyProtocolSetting::Simple
        }
        (Some(true), other) => {
            r.err(
                format!("spectrum_apps[{i}].spp"),
                "true",
                format!(
                    "conflicts with proxy_protocol = {:?}; use one of them",
                    other.as_str()
                ),
            );
            other
        }
        (_, other) => other,
    };
    match (proto, pp) {
        (Some(L4Proto::Udp), ProxyProtocolSetting::V1) => r.err(
            format!("spectrum_apps[{i}].proxy_protocol"),
            "\"v1\"",
            "PROXY v1 is for TCP only; UDP apps use v2 or simple",
        ),
        (Some(L4Proto::Tcp), ProxyProtocolSetting::Simple) => r.err(
            format!("spectrum_apps[{i}].proxy_protocol"),
            "\"simple\"",
            "Simple Proxy Protocol is for UDP only; TCP apps use v1 or v2",
        ),
        _ => {}
    }
    if proto == Some(L4Proto::Udp) && a.traffic_type != TrafficTypeName::Direct {
        r.err(
            format!("spectrum_apps[{i}].traffic_type"),
            format!("{:?}", a.traffic_type).to_lowercase(),
            "UDP apps are direct only",
        );
    }
}

/// The effective proxy protocol of an app (with `spp`).
pub fn effective_proxy(a: &SpectrumApp) -> ProxyProtocolSetting {
    if a.spp == Some(true) && a.proxy_protocol == ProxyProtocolSetting::Off {
        ProxyProtocolSetting::Simple
    } else {
        a.proxy_protocol
    }
}

fn ports(r: &mut Report, key: &str, list: &[i64]) {
    let mut seen = HashSet::new();
    for (k, p) in list.iter().enumerate() {
        if !(1..=65535).contains(p) {
            r.err(
                format!("cdn.{key}[{k}]"),
                p,
                "port out of range (1..=65535)",
            );
        } else if !seen.insert(*p) {
            r.err(format!("cdn.{key}[{k}]"), p, "listed twice");
        }
    }
}

fn cdn(c: &Config, r: &mut Report) {
    ports(r, "tcp_ports", &c.cdn.tcp_ports);
    ports(r, "udp_ports", &c.cdn.udp_ports);
    for (k, s) in c.cdn.pool.iter().enumerate() {
        let path = format!("cdn.pool[{k}]");
        match parse_origin(s) {
            Ok((L4Proto::Tcp, ip, ports)) if ports.len() == 1 => {
                // L7 proxies usually live on private addresses, so reserved ranges are fine
                // here; our own prefixes and edge IPs would loop.
                let net = IpNet::from(ip);
                let chk = origin_check(c, net);
                if chk.has_binding || (chk.is_managed && !chk.is_delegated) {
                    r.err(path, format!("{s:?}"), chk.reason.unwrap_or_default());
                }
            }
            Ok(_) => r.err(
                path,
                format!("{s:?}"),
                "a pool member is tcp://IP:PORT (one port)",
            ),
            Err(e) => r.err(path, format!("{s:?}"), e),
        }
    }
}

fn access_rules(c: &Config, r: &mut Report) {
    let mut seen: BTreeMap<IpNet, usize> = BTreeMap::new();
    for (i, a) in c.access_rules.iter().enumerate() {
        let path = format!("access_rules[{i}].value");
        let v = format!("{:?}", a.value);
        let net = match a.target {
            RuleTarget::Ip => match a.value.parse::<IpAddr>() {
                Ok(ip) => Some(IpNet::from(ip)),
                Err(_) => {
                    let hint = if a.value.contains('/') {
                        "; for a CIDR use target = \"ip_range\""
                    } else {
                        ""
                    };
                    r.err(&path, &v, format!("not an IP address{hint}"));
                    None
                }
            },
            RuleTarget::IpRange => match a.value.parse::<IpNet>() {
                Ok(n) => {
                    host_bits(r, path.clone(), &n);
                    Some(n.trunc())
                }
                Err(_) => {
                    r.err(&path, &v, "not a CIDR such as 198.51.100.0/24");
                    None
                }
            },
            RuleTarget::Country | RuleTarget::Asn => {
                r.err(format!("access_rules[{i}].target"), format!("{:?}", a.target).to_lowercase(), "country and ASN rules need a prefix table, which this edge does not have yet: use ip or ip_range");
                None
            }
        };
        if let Some((n, j)) = net.and_then(|n| seen.insert(n, i).map(|j| (n, j))) {
            r.err(
                &path,
                &v,
                format!("access_rules[{j}] already covers exactly {n}; one rule per range"),
            );
        }
    }
}

fn delegations(c: &Config, r: &mut Report) {
    for (i, d) in c.origin_policy.delegations.iter().enumerate() {
        host_bits(r, format!("origin_policy.delegations[{i}].cidr"), &d.cidr);
    }
}

fn settings(c: &Config, r: &mut Report) {
    let compiled = super::compile::settings(c);
    match compiled {
        Ok(_) => {}
        Err(errs) => r.0.extend(errs),
    }
    let _ = origin::RESERVED.len();
}
