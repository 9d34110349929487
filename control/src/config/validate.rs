//! Every rule a configuration must satisfy, each reporting all of its violations.
//!
//! Checks compare truncated CIDRs, so one mistake (host bits) is reported once, where it is,
//! and not again by every rule that looks at the same range.

use core::net::IpAddr;
use std::collections::{BTreeMap, HashMap};

use fastpath::pipeline::{PipelineConfig, PipelineConfigError};
use fastpath::syncookie::{CookieConfig, CookieConfigError};
use fastpath::tables::{L4Proto, MAX_SLOTS, ProxyProtocol, TrafficType};
use fastpath::worker::{WorkerConfig, WorkerConfigError};
use ipnet::IpNet;

use super::error::{Errors, Rule, quote};
use super::origin::{Inspection, overlaps};
use super::value::{AccessTarget, EdgeIpsType, OriginDnsType, OriginUrl, ServiceName};
use super::{Config, SpectrumApp, dynamic};

pub(crate) fn validate(c: &Config) -> Result<(), super::ConfigErrors> {
    let mut e = Errors::default();
    node(c, &mut e);
    settings(c, &mut e);
    prefixes(c, &mut e);
    bindings(c, &mut e);
    cdn(c, &mut e);
    dynamic_pool(c, &mut e);
    apps(c, &mut e);
    port_conflicts(c, &mut e);
    access_rules(c, &mut e);
    delegations(c, &mut e);
    e.finish()
}

/// Ids end up in API paths and messages: keep them plain.
fn id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("is empty")
    } else if id.len() > 64 {
        Some("is longer than 64 characters")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        Some("may contain only letters, digits, `.`, `_` and `-`")
    } else {
        None
    }
}

fn port_problem(p: u32) -> Option<String> {
    match p {
        0 => Some("port 0 is not a port; ports are 1..=65535".into()),
        1..=65535 => None,
        _ => Some(format!("port {p} is out of range; ports are 1..=65535")),
    }
}

/// Port-range problems of `lo-hi`, with `what` naming the form for the backwards hint.
fn range_problems(lo: u32, hi: u32, fix: impl Fn(u32, u32) -> String) -> Vec<String> {
    let mut out: Vec<String> = [lo, hi].iter().filter_map(|&p| port_problem(p)).collect();
    out.dedup();
    if out.is_empty() && lo > hi {
        out.push(format!(
            "the range is backwards; did you mean {}?",
            fix(hi, lo)
        ));
    }
    out
}

/// Host bits: "did you mean ...".
fn host_bits(e: &mut Errors, key: String, net: IpNet) {
    if net != net.trunc() {
        e.push(
            Rule::HostBits,
            key,
            quote(net),
            format!(
                "host bits are set past /{}; did you mean \"{}\"?",
                net.prefix_len(),
                net.trunc()
            ),
        );
    }
}

fn node(c: &Config, e: &mut Errors) {
    let n = &c.node.name;
    if n.trim().is_empty() || n.chars().any(char::is_control) {
        e.push(
            Rule::InvalidValue,
            "node.name",
            quote(n),
            "the node name must be non-empty printable text, e.g. \"edge-lab\"",
        );
    }
    if let Some(src) = &c.node.config_source
        && let Err(why) = crate::etcd::Source::parse(src)
    {
        e.push(Rule::InvalidValue, "node.config_source", quote(src), why);
    }
}

/// The settings sections, checked by the data plane's own `validate` one field at a time (a
/// default config with just that field set) so that every bad field is reported, not only the
/// first.
fn settings(c: &Config, e: &mut Errors) {
    let s = &c.syn_cookies;
    let cd = CookieConfig::default();
    let cookie = |cfg: CookieConfig| {
        cfg.validate()
            .err()
            .map(|CookieConfigError::OutOfRange { value, range, .. }| (value, range))
    };
    let why_rotate = "; below 60 s a cookie could expire before the client's ACK arrives";
    for (key, r, why) in [
        (
            "syn_cookies.rotate_secs",
            cookie(CookieConfig {
                rotate_secs: s.rotate_secs,
                ..cd.clone()
            }),
            why_rotate,
        ),
        (
            "syn_cookies.mss",
            cookie(CookieConfig {
                mss4: s.mss,
                ..cd.clone()
            }),
            "",
        ),
        (
            "syn_cookies.mss6",
            cookie(CookieConfig {
                mss6: s.mss6,
                ..cd.clone()
            }),
            "",
        ),
        (
            "syn_cookies.wscale",
            cookie(CookieConfig {
                wscale: s.wscale,
                ..cd.clone()
            }),
            " (RFC 7323 caps the shift at 14)",
        ),
    ] {
        if let Some((value, range)) = r {
            e.push(
                Rule::OutOfRange,
                key,
                Some(value.to_string()),
                format!("out of range {range}{why}"),
            );
        }
    }
    if let Some(secret) = &s.secret
        && let Err(msg) = secret.bytes()
    {
        e.push(
            Rule::Secret,
            "syn_cookies.secret",
            None,
            format!("the secret {msg}"),
        );
    }
    if let Some(seed) = &s.fleet_seed {
        if s.secret.is_some() {
            e.push(
                Rule::Secret,
                "syn_cookies.fleet_seed",
                None,
                "set together with syn_cookies.secret; give one of them: fleet_seed for a fleet \
                 (secrets expand from it with HKDF), secret for one node",
            );
        } else if let Err(msg) = seed.seed_bytes() {
            e.push(
                Rule::Secret,
                "syn_cookies.fleet_seed",
                seed.is_path().then(|| format!("{:?}", seed.0.trim())),
                format!("the fleet seed {msg}"),
            );
        }
    }
    // A fleet seed generation: the seed `fleet_seed` replaced and the epoch it keys from.
    if let Some(previous) = &s.previous_fleet_seed {
        if s.fleet_seed.is_none() {
            e.push(
                Rule::Secret,
                "syn_cookies.previous_fleet_seed",
                None,
                "set without syn_cookies.fleet_seed: it is the fleet seed that fleet_seed \
                 replaced; give fleet_seed (or remove previous_fleet_seed)",
            );
        } else if s.fleet_seed_from.is_none() {
            e.push(
                Rule::MissingKey,
                "syn_cookies.previous_fleet_seed",
                None,
                "set without syn_cookies.fleet_seed_from: give the first epoch \
                 (unix seconds / rotate_secs) at which fleet_seed is used",
            );
        } else if let Err(msg) = previous.seed_bytes() {
            e.push(
                Rule::Secret,
                "syn_cookies.previous_fleet_seed",
                previous
                    .is_path()
                    .then(|| format!("{:?}", previous.0.trim())),
                format!("the previous fleet seed {msg}"),
            );
        }
    }
    if let Some(from) = s.fleet_seed_from {
        if s.previous_fleet_seed.is_none() {
            e.push(
                Rule::MissingKey,
                "syn_cookies.fleet_seed_from",
                Some(from.to_string()),
                "set without syn_cookies.previous_fleet_seed: give the fleet seed used before \
                 that epoch (or remove fleet_seed_from)",
            );
        } else if from.saturating_mul(u64::from(s.rotate_secs.max(1))) > 1 << 34 {
            // Unix seconds given for an epoch number would keep the old seed for centuries.
            e.push(
                Rule::OutOfRange,
                "syn_cookies.fleet_seed_from",
                Some(from.to_string()),
                "is an epoch number (unix seconds / rotate_secs); this one starts after the \
                 year 2500: were unix seconds given?",
            );
        }
    }

    let pd = PipelineConfig::default();
    let pipeline = |cfg: PipelineConfig| {
        cfg.validate()
            .err()
            .map(|PipelineConfigError::OutOfRange { value, range, .. }| (value, range))
    };
    let f = &c.flows;
    for (key, r) in [
        (
            "pipeline.batch_size",
            pipeline(PipelineConfig {
                batch_size: c.pipeline.batch_size,
                ..pd.clone()
            }),
        ),
        (
            "flows.capacity",
            pipeline(PipelineConfig {
                flow_capacity: f.capacity,
                ..pd.clone()
            }),
        ),
        (
            "flows.tcp_idle_secs",
            pipeline(PipelineConfig {
                tcp_idle_secs: f.tcp_idle_secs,
                ..pd.clone()
            }),
        ),
        (
            "flows.udp_idle_secs",
            pipeline(PipelineConfig {
                udp_idle_secs: f.udp_idle_secs,
                ..pd.clone()
            }),
        ),
        (
            "flows.closing_secs",
            pipeline(PipelineConfig {
                closing_secs: f.closing_secs,
                ..pd.clone()
            }),
        ),
    ] {
        if let Some((value, range)) = r {
            e.push(
                Rule::OutOfRange,
                key,
                Some(value.to_string()),
                format!("out of range {range}"),
            );
        }
    }

    let px = &c.proxy;
    for (key, value, lo, hi) in [
        (
            "proxy.connect_timeout_secs",
            u64::from(px.connect_timeout_secs),
            1,
            300,
        ),
        (
            "proxy.idle_timeout_secs",
            u64::from(px.idle_timeout_secs),
            1,
            86_400,
        ),
        ("proxy.drain_secs", u64::from(px.drain_secs), 0, 86_400),
        (
            "proxy.max_connections",
            px.max_connections as u64,
            1,
            1 << 24,
        ),
        ("proxy.buffer_bytes", px.buffer_bytes as u64, 8192, 1 << 26),
    ] {
        if !(lo..=hi).contains(&value) {
            e.push(
                Rule::OutOfRange,
                key,
                Some(value.to_string()),
                format!("out of range {lo}..={hi}"),
            );
        }
    }

    let wd = WorkerConfig::default();
    let workers = |cfg: WorkerConfig| {
        cfg.validate()
            .err()
            .map(|WorkerConfigError::OutOfRange { value, range, .. }| (value, range))
    };
    let w = &c.workers;
    for (key, r) in [
        (
            "workers.cdn",
            workers(WorkerConfig {
                cdn: w.cdn,
                ..wd.clone()
            }),
        ),
        (
            "workers.spectrum",
            workers(WorkerConfig {
                spectrum: w.spectrum,
                ..wd.clone()
            }),
        ),
        (
            "workers.queue_depth",
            workers(WorkerConfig {
                queue_depth: w.queue_depth,
                ..wd.clone()
            }),
        ),
        (
            "workers.flow_capacity",
            workers(WorkerConfig {
                flow_capacity: w.flow_capacity,
                ..wd.clone()
            }),
        ),
    ] {
        if let Some((value, range)) = r {
            e.push(
                Rule::OutOfRange,
                key,
                Some(value.to_string()),
                format!("out of range {range}"),
            );
        }
    }
}

fn prefixes(c: &Config, e: &mut Errors) {
    for (i, p) in c.prefixes.iter().enumerate() {
        let key = format!("prefixes[{i}].cidr");
        let (max, fam) = match p.cidr {
            IpNet::V4(_) => (24, "IPv4"),
            IpNet::V6(_) => (48, "IPv6"),
        };
        if p.cidr.prefix_len() > max {
            let cover = IpNet::new(p.cidr.network(), max)
                .map(|n| n.trunc())
                .unwrap_or(p.cidr);
            e.push(
                Rule::PrefixTooLong,
                key.clone(),
                quote(p.cidr),
                format!(
                    "{fam} prefixes must be /{max} or shorter (longer ones are not accepted \
                     on the Internet); onboard the covering \"{cover}\" and bind the part you \
                     need with [[bindings]]"
                ),
            );
        } else {
            host_bits(e, key.clone(), p.cidr);
        }
        for (j, q) in c.prefixes.iter().enumerate().take(i) {
            if p.cidr.trunc() == q.cidr.trunc() {
                e.push(
                    Rule::PrefixOverlap,
                    key.clone(),
                    quote(p.cidr),
                    format!("duplicate of prefixes[{j}]; remove one"),
                );
            } else if overlaps(p.cidr, q.cidr) {
                e.push(
                    Rule::PrefixOverlap,
                    key.clone(),
                    quote(p.cidr),
                    format!(
                        "overlaps prefixes[{j}] = \"{}\"; onboarded prefixes must be disjoint: \
                         keep the covering one and split it with [[bindings]]",
                        q.cidr
                    ),
                );
            }
        }
    }
}

fn bindings(c: &Config, e: &mut Errors) {
    if c.bindings.len() > MAX_SLOTS as usize {
        e.push(
            Rule::TooMany,
            "bindings",
            None,
            format!(
                "{} bindings; the data plane has {MAX_SLOTS} binding slots",
                c.bindings.len()
            ),
        );
    }
    let onboarded = || {
        let list: Vec<String> = c.prefixes.iter().map(|p| p.cidr.to_string()).collect();
        if list.is_empty() {
            "none are onboarded yet".to_string()
        } else {
            format!("onboarded: {}", list.join(", "))
        }
    };
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, b) in c.bindings.iter().enumerate() {
        let key = format!("bindings[{i}].cidr");
        host_bits(e, key.clone(), b.cidr);
        let net = b.cidr.trunc();
        if !c.prefixes.iter().any(|p| p.cidr.trunc().contains(&net)) {
            e.push(
                Rule::BindingOutsidePrefix,
                key.clone(),
                quote(b.cidr),
                format!(
                    "lies outside every onboarded prefix ({}); add a [[prefixes]] entry that \
                     covers it or correct the CIDR",
                    onboarded()
                ),
            );
        }
        if let Some(j) = c.bindings[..i].iter().position(|o| o.cidr.trunc() == net) {
            e.push(
                Rule::DuplicateBinding,
                key.clone(),
                quote(b.cidr),
                format!(
                    "duplicate of bindings[{j}]; a range has one binding (bind a narrower \
                     range to override part of it)"
                ),
            );
        }
        if b.service == ServiceName::MagicTransit {
            e.push(
                Rule::UnsupportedService,
                format!("bindings[{i}].service"),
                quote(b.service),
                "Magic Transit is not supported by this edge; use \"cdn\" or \"spectrum\"",
            );
        }
        if let Some(id) = &b.id
            && let Some(p) = id_problem(id)
        {
            e.push(
                Rule::BadId,
                format!("bindings[{i}].id"),
                quote(id),
                format!("the id {p}"),
            );
        }
        let id = b.effective_id();
        if let Some(j) = ids.get(&id) {
            // Derived ids are CIDRs: a repeat is a duplicate binding, reported above.
            if b.id.is_none() {
                continue;
            }
            e.push(
                Rule::BadId,
                format!("bindings[{i}].id"),
                quote(&id),
                format!("id already used by bindings[{j}]; binding ids are unique"),
            );
        } else {
            ids.insert(id, i);
        }
    }
    for (i, p) in c.prefixes.iter().enumerate() {
        let net = p.cidr.trunc();
        if p.advertised && !c.bindings.iter().any(|b| b.cidr.trunc() == net) {
            e.push(
                Rule::NoDefaultBinding,
                format!("prefixes[{i}]"),
                quote(p.cidr),
                format!(
                    "advertised prefix without a default binding spanning it whole, so \
                     traffic to its unbound addresses would be blackholed; add [[bindings]] \
                     cidr = \"{net}\" service = \"cdn\" (or \"spectrum\"), or set advertised \
                     = false while it is not in use"
                ),
            );
        }
    }
}

/// The binding deciding for `ip` (longest prefix), as an index.
fn binding_of(c: &Config, ip: IpAddr) -> Option<usize> {
    c.bindings
        .iter()
        .enumerate()
        .filter(|(_, b)| b.cidr.trunc().contains(&ip))
        .max_by_key(|(_, b)| b.cidr.prefix_len())
        .map(|(i, _)| i)
}

/// Checks an origin (or pool member) against the origin policy.
fn origin_policy(c: &Config, e: &mut Errors, key: &str, url: &OriginUrl) {
    let insp = Inspection::of(c, IpNet::from(url.addr));
    if let Some(msg) = insp.refusal(c, url.addr) {
        e.push(Rule::OriginRefused, key, quote(url), msg);
    }
}

fn cdn(c: &Config, e: &mut Errors) {
    for (name, ports) in [
        ("tcp_ports", &c.cdn.tcp_ports),
        ("udp_ports", &c.cdn.udp_ports),
    ] {
        for (i, &p) in ports.iter().enumerate() {
            let key = format!("cdn.{name}[{i}]");
            if let Some(msg) = port_problem(p) {
                e.push(Rule::BadPort, key.clone(), Some(p.to_string()), msg);
            }
            if let Some(j) = ports[..i].iter().position(|&q| q == p) {
                e.push(
                    Rule::DuplicatePort,
                    key,
                    Some(p.to_string()),
                    format!("listed twice (also cdn.{name}[{j}]); remove one"),
                );
            }
        }
    }
    if c.cdn.proxy_protocol == ProxyProtocol::Simple {
        e.push(
            Rule::InvalidValue,
            "cdn.proxy_protocol",
            Some("\"simple\"".into()),
            "the CDN pool speaks TCP: use \"v2\" (the default), \"v1\" or \"off\"",
        );
    }
    for (i, m) in c.cdn.pool.iter().enumerate() {
        let key = format!("cdn.pool[{i}]");
        if m.scheme != L4Proto::Tcp {
            e.push(
                Rule::Origin,
                key.clone(),
                quote(m),
                format!(
                    "the CDN pool speaks TCP: write \"tcp://{}\"",
                    m.to_string().split_once("://").map_or("", |x| x.1)
                ),
            );
        }
        for msg in range_problems(m.lo, m.hi, |a, b| format!("{a}-{b}")) {
            e.push(Rule::BadPort, key.clone(), quote(m), msg);
        }
        if m.lo != m.hi {
            e.push(
                Rule::Origin,
                key.clone(),
                quote(m),
                "a pool member is one address and one port: \"tcp://IP:PORT\"",
            );
        }
        if let Some(j) = c.cdn.pool[..i].iter().position(|o| o == m) {
            e.push(
                Rule::Origin,
                key.clone(),
                quote(m),
                format!("listed twice (also cdn.pool[{j}]); remove one"),
            );
        }
        origin_policy(c, e, &key, m);
    }
}

fn apps(c: &Config, e: &mut Errors) {
    if c.spectrum_apps.len() > MAX_SLOTS as usize {
        e.push(
            Rule::TooMany,
            "spectrum_apps",
            None,
            format!(
                "{} apps; the data plane has {MAX_SLOTS} app slots",
                c.spectrum_apps.len()
            ),
        );
    }
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, a) in c.spectrum_apps.iter().enumerate() {
        let k = |field: &str| format!("spectrum_apps[{i}].{field}");
        // id
        if a.id.is_empty() {
            e.push(
                Rule::BadId,
                k("id"),
                None,
                "every app needs an id (unique; letters, digits, `.`, `_`, `-`), e.g. id = \"ssh\"",
            );
        } else if let Some(p) = id_problem(&a.id) {
            e.push(Rule::BadId, k("id"), quote(&a.id), format!("the id {p}"));
        } else if let Some(j) = ids.get(a.id.as_str()) {
            e.push(
                Rule::BadId,
                k("id"),
                quote(&a.id),
                format!("id already used by spectrum_apps[{j}]; app ids are unique"),
            );
        } else {
            ids.insert(&a.id, i);
        }
        // protocol
        let p = a.protocol;
        for msg in range_problems(p.lo, p.hi, |lo, hi| {
            format!("\"{}/{lo}-{hi}\"", p.proto.as_str())
        }) {
            e.push(Rule::BadPort, k("protocol"), quote(p), msg);
        }
        edge_ips(c, e, i, a);
        origins(c, e, i, a);
        // proxy protocol
        let pp = a.effective_proxy_protocol();
        let pp_key = if a.spp == Some(true) {
            k("spp")
        } else {
            k("proxy_protocol")
        };
        let pp_val = if a.spp == Some(true) {
            Some("true".into())
        } else {
            quote(pp.as_str())
        };
        if a.spp == Some(true)
            && !matches!(a.proxy_protocol, ProxyProtocol::Off | ProxyProtocol::Simple)
        {
            e.push(
                Rule::ProxyProtocol,
                k("spp"),
                Some("true".into()),
                format!(
                    "spp = true means proxy_protocol = \"simple\", but proxy_protocol = \"{}\"; \
                     keep one of them",
                    a.proxy_protocol.as_str()
                ),
            );
        } else {
            match (p.proto, pp) {
                (L4Proto::Udp, ProxyProtocol::V1) => e.push(
                    Rule::ProxyProtocol,
                    pp_key,
                    pp_val,
                    "PROXY v1 is for TCP only (a text header on a stream); for UDP use \"v2\" or \
                     \"simple\"",
                ),
                (L4Proto::Tcp, ProxyProtocol::Simple) => e.push(
                    Rule::ProxyProtocol,
                    pp_key,
                    pp_val,
                    "Simple Proxy Protocol is for UDP only; for TCP use \"v1\" or \"v2\"",
                ),
                _ => {}
            }
        }
        if p.proto == L4Proto::Udp && a.traffic_type != TrafficType::Direct {
            e.push(
                Rule::TrafficType,
                k("traffic_type"),
                quote(a.traffic_type.as_str()),
                "http and https traffic types are for TCP apps only; use \"direct\" for UDP",
            );
        } else if a.traffic_type != TrafficType::Direct {
            e.push(
                Rule::Unsupported,
                k("traffic_type"),
                quote(a.traffic_type.as_str()),
                "not supported here: a Spectrum app's traffic is relayed at layer 4 as it is \
                 (\"direct\"); this edge has no HTTP pipeline for an app. Serve HTTP(S) through \
                 a CDN binding (service = \"cdn\"), whose flows reach the CDN pool, or use \
                 traffic_type = \"direct\"",
            );
        }
        // Keys of the public API that would promise what this edge does not do.
        if let Some(t) = a.tls
            && t != crate::config::Tls::Off
        {
            e.push(
                Rule::Unsupported,
                k("tls"),
                quote(t.as_str()),
                "not supported here: this edge does not terminate TLS (it relays the encrypted \
                 stream to the origin, which terminates it); use tls = \"off\" or leave it out",
            );
        }
        if a.argo_smart_routing == Some(true) {
            e.push(
                Rule::Unsupported,
                k("argo_smart_routing"),
                Some("true".into()),
                "not supported here: there is no Argo network behind a single edge; remove it \
                 or set it to false",
            );
        }
    }
}

fn dynamic_pool(c: &Config, e: &mut Errors) {
    let pool = &c.spectrum.dynamic_pool;
    for (i, net) in pool.iter().enumerate() {
        let key = format!("spectrum.dynamic_pool[{i}]");
        host_bits(e, key.clone(), *net);
        let net = net.trunc();
        if let Some(j) = pool[..i].iter().position(|o| overlaps(o.trunc(), net)) {
            e.push(
                Rule::DynamicPool,
                key,
                quote(net),
                format!(
                    "overlaps spectrum.dynamic_pool[{j}] = \"{}\"; list each range once",
                    pool[j]
                ),
            );
            continue;
        }
        // The whole range must be Spectrum's: its deciding binding spans it and no binding
        // inside it gives part of it to another service.
        let covering = c
            .bindings
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                b.cidr.prefix_len() <= net.prefix_len() && b.cidr.trunc().contains(&net.network())
            })
            .max_by_key(|(_, b)| b.cidr.prefix_len())
            .map(|(i, _)| i);
        let inner = c.bindings.iter().enumerate().find(|(_, b)| {
            b.service != ServiceName::Spectrum
                && b.cidr.prefix_len() > net.prefix_len()
                && net.contains(&b.cidr.trunc().network())
        });
        match (covering, inner) {
            (Some(b), _) if c.bindings[b].service != ServiceName::Spectrum => e.push(
                Rule::DynamicPool,
                key,
                quote(net),
                format!(
                    "is bound to {} by bindings[{b}] = \"{}\"; a dynamic pool must lie in a \
                     Spectrum binding: add [[bindings]] cidr = \"{net}\" service = \"spectrum\"",
                    c.bindings[b].service, c.bindings[b].cidr
                ),
            ),
            (None, _) => e.push(
                Rule::DynamicPool,
                key,
                quote(net),
                format!(
                    "is not covered by one Spectrum binding; add [[bindings]] cidr = \"{net}\" \
                     service = \"spectrum\" (inside an onboarded prefix)"
                ),
            ),
            (Some(_), Some((b, inner))) => e.push(
                Rule::DynamicPool,
                key,
                quote(net),
                format!(
                    "bindings[{b}] = \"{}\" gives part of it to {}; a dynamic pool must be \
                     Spectrum's whole: shrink the pool or the binding",
                    inner.cidr, inner.service
                ),
            ),
            (Some(_), None) => {}
        }
    }
}

fn edge_ips(c: &Config, e: &mut Errors, i: usize, a: &SpectrumApp) {
    let k = |field: &str| format!("spectrum_apps[{i}].{field}");
    let Some(eips) = &a.edge_ips else {
        // Config::assign_edge_ips turns an absent edge_ips into a dynamic one.
        e.push(
            Rule::EdgeIps,
            k("edge_ips"),
            None,
            "required: give edge_ips = { type = \"static\", ips = [\"...\"] } with addresses \
             in a Spectrum binding, or { type = \"dynamic\" } with a [spectrum] dynamic_pool",
        );
        return;
    };
    if eips.kind == EdgeIpsType::Dynamic {
        let want = match dynamic::Connectivity::parse(eips.connectivity.as_deref()) {
            Ok(w) => w,
            Err(msg) => {
                e.push(
                    Rule::EdgeIps,
                    k("edge_ips.connectivity"),
                    eips.connectivity.as_deref().and_then(quote),
                    msg,
                );
                return;
            }
        };
        let pool = &c.spectrum.dynamic_pool;
        if pool.is_empty() {
            e.push(
                Rule::EdgeIps,
                k("edge_ips.type"),
                quote("dynamic"),
                "dynamic edge IPs are assigned from [spectrum] dynamic_pool, which is empty: add \
                 dynamic_pool = [\"CIDR\"] inside a Spectrum binding, or give static IPs, \
                 edge_ips = { type = \"static\", ips = [\"...\"] }",
            );
            return;
        }
        for (j, ip) in eips.ips.iter().enumerate() {
            if !pool.iter().any(|n| n.trunc().contains(ip)) || !want.admits(*ip) {
                e.push(
                    Rule::DynamicPool,
                    k(&format!("edge_ips.ips[{j}]")),
                    quote(ip),
                    "a dynamic edge IP is assigned by the edge from [spectrum] dynamic_pool; \
                     remove it (or make the app static)",
                );
            }
        }
        for v6 in [false, true] {
            let n = eips.ips.iter().filter(|ip| ip.is_ipv6() == v6).count();
            let family = if v6 { "IPv6" } else { "IPv4" };
            if want.wants(v6) && n == 0 {
                let msg = if pool.iter().any(|net| net.addr().is_ipv6() == v6) {
                    format!(
                        "no {family} address of [spectrum] dynamic_pool is free for {} (every one \
                         carries another app on these ports); add a range to dynamic_pool",
                        a.protocol
                    )
                } else {
                    format!(
                        "connectivity \"{}\" needs an {family} address, and [spectrum] \
                         dynamic_pool has no {family} range; add one, or set connectivity = \
                         \"{}\"",
                        want.as_str(),
                        if v6 { "ipv4" } else { "ipv6" }
                    )
                };
                e.push(Rule::DynamicPool, k("edge_ips"), None, msg);
            } else if n > 1 {
                e.push(
                    Rule::DynamicPool,
                    k("edge_ips.ips"),
                    None,
                    format!("a dynamic app has one {family} address, not {n}"),
                );
            }
        }
        return;
    }
    if let Some(conn) = &eips.connectivity {
        e.push(
            Rule::EdgeIps,
            k("edge_ips.connectivity"),
            quote(conn),
            "connectivity applies to dynamic edge IPs only; remove it",
        );
    }
    if eips.ips.is_empty() {
        e.push(
            Rule::EdgeIps,
            k("edge_ips.ips"),
            None,
            "at least one edge IP is required, inside a Spectrum binding",
        );
    }
    for (j, ip) in eips.ips.iter().enumerate() {
        let key = k(&format!("edge_ips.ips[{j}]"));
        if let Some(d) = eips.ips[..j].iter().position(|o| o == ip) {
            e.push(
                Rule::EdgeIpNotSpectrum,
                key.clone(),
                quote(ip),
                format!("listed twice (also edge_ips.ips[{d}]); remove one"),
            );
            continue;
        }
        match binding_of(c, *ip) {
            None => e.push(
                Rule::EdgeIpNotSpectrum,
                key,
                quote(ip),
                format!(
                    "lies outside every binding; an edge IP must be in a Spectrum binding: add \
                     [[bindings]] cidr = \"{}\" service = \"spectrum\" (inside an onboarded \
                     prefix)",
                    IpNet::from(*ip)
                ),
            ),
            Some(b) if c.bindings[b].service != ServiceName::Spectrum => e.push(
                Rule::EdgeIpNotSpectrum,
                key,
                quote(ip),
                format!(
                    "is bound to {} by bindings[{b}] = \"{}\"; an edge IP must be in a Spectrum \
                     binding: add [[bindings]] cidr = \"{}\" service = \"spectrum\"",
                    c.bindings[b].service,
                    c.bindings[b].cidr,
                    IpNet::from(*ip)
                ),
            ),
            Some(_) => {}
        }
    }
}

fn origins(c: &Config, e: &mut Errors, i: usize, a: &SpectrumApp) {
    let k = |field: &str| format!("spectrum_apps[{i}].{field}");
    let p = a.protocol;
    let scheme = p.proto.as_str();
    let port_hint = if p.lo == p.hi {
        p.lo.to_string()
    } else {
        format!("{}-{}", p.lo, p.hi)
    };
    if let Some(dns) = &a.origin_dns {
        if !a.origin_direct.is_empty() {
            e.push(
                Rule::Origin,
                k("origin_dns"),
                None,
                "give one of origin_direct and origin_dns, not both",
            );
        }
        origin_dns(c, e, i, a, dns);
        return;
    }
    if a.origin_port.is_some() {
        e.push(
            Rule::Origin,
            k("origin_port"),
            a.origin_port.and_then(quote),
            format!(
                "origin_port goes with origin_dns; with origin_direct the port is part of each \
                 origin, e.g. \"{scheme}://192.0.2.1:{port_hint}\""
            ),
        );
    }
    if a.origin_direct.is_empty() {
        e.push(
            Rule::Origin,
            k("origin_direct"),
            None,
            format!(
                "at least one origin is required, e.g. origin_direct = \
                 [\"{scheme}://192.0.2.1:{port_hint}\"], or origin_dns = {{ name = \
                 \"origin.example.com\" }} with origin_port = {port_hint}"
            ),
        );
    }
    let edge_ok = range_problems(p.lo, p.hi, |a, b| format!("{a}-{b}")).is_empty();
    for (j, o) in a.origin_direct.iter().enumerate() {
        let key = k(&format!("origin_direct[{j}]"));
        if o.scheme != p.proto {
            let rest = o.to_string();
            let rest = rest.split_once("://").map_or("", |x| x.1);
            e.push(
                Rule::Origin,
                key.clone(),
                quote(o),
                format!(
                    "scheme {}:// does not match the app's protocol {p}; write \
                     \"{scheme}://{rest}\"",
                    o.scheme.as_str()
                ),
            );
        }
        let problems = range_problems(o.lo, o.hi, |a, b| format!("{a}-{b}"));
        let origin_ok = problems.is_empty();
        for msg in problems {
            e.push(Rule::BadPort, key.clone(), quote(o), msg);
        }
        if edge_ok && origin_ok && o.len() != p.len() {
            let with_ports = |lo: u32, hi: u32| {
                OriginUrl {
                    scheme: p.proto,
                    lo,
                    hi,
                    ..*o
                }
                .to_string()
            };
            let msg = if p.len() == 1 {
                format!(
                    "a single edge port ({p}) maps to a single origin port, not a range; write \
                     e.g. \"{}\"",
                    with_ports(o.lo, o.lo)
                )
            } else {
                let hint = match o.lo.checked_add(p.len() - 1).filter(|&h| h <= 65535) {
                    Some(h) => format!(", e.g. \"{}\"", with_ports(o.lo, h)),
                    None => String::new(),
                };
                format!(
                    "the edge range {p} has {} ports, the origin {}; an edge range maps onto an \
                     origin range of the same size, port for port{hint}",
                    p.len(),
                    if o.len() == 1 {
                        "a single one".to_string()
                    } else {
                        format!("{}", o.len())
                    }
                )
            };
            e.push(Rule::Origin, key.clone(), quote(o), msg);
        }
        if let Some(d) = a.origin_direct[..j].iter().position(|x| x == o) {
            e.push(
                Rule::Origin,
                key.clone(),
                quote(o),
                format!("listed twice (also origin_direct[{d}]); remove one"),
            );
        }
        origin_policy(c, e, &key, o);
    }
}

/// A host name as the system resolver takes it: labels of letters, digits, `-` and `_`, or an
/// address literal.
fn hostname_problem(name: &str) -> Option<&'static str> {
    if name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() {
        return Some("is empty");
    }
    if n.len() > 253 {
        return Some("is longer than 253 characters");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !n.split('.').all(label_ok) {
        return Some("is not a host name (labels of letters, digits and `-`, at most 63 each)");
    }
    None
}

fn origin_dns(c: &Config, e: &mut Errors, i: usize, a: &SpectrumApp, dns: &super::OriginDns) {
    let k = |field: &str| format!("spectrum_apps[{i}].{field}");
    let p = a.protocol;
    if let Some(msg) = hostname_problem(&dns.name) {
        e.push(
            Rule::Origin,
            k("origin_dns.name"),
            quote(&dns.name),
            format!("the name {msg}"),
        );
    }
    if dns.kind == OriginDnsType::Srv {
        e.push(
            Rule::Unsupported,
            k("origin_dns.type"),
            quote("SRV"),
            "not supported here: the edge resolves origins with the system resolver, which has \
             no SRV lookup; use type \"\" (A and AAAA), \"A\" or \"AAAA\" with origin_port",
        );
    }
    if let Some(ttl) = dns.ttl
        && !(1..=86_400).contains(&ttl)
    {
        e.push(
            Rule::OutOfRange,
            k("origin_dns.ttl"),
            quote(ttl),
            "seconds between resolutions: 1..=86400 (default 600)",
        );
    }
    let Some(port) = a.origin_port else {
        e.push(
            Rule::Origin,
            k("origin_port"),
            None,
            format!(
                "required with origin_dns: the origin port, e.g. origin_port = {}",
                if p.lo == p.hi {
                    p.lo.to_string()
                } else {
                    format!("\"{}-{}\"", p.lo, p.hi)
                }
            ),
        );
        return;
    };
    let problems = range_problems(port.lo, port.hi, |a, b| format!("\"{a}-{b}\""));
    let port_ok = problems.is_empty();
    for msg in problems {
        e.push(Rule::BadPort, k("origin_port"), quote(port), msg);
    }
    let edge_ok = range_problems(p.lo, p.hi, |a, b| format!("{a}-{b}")).is_empty();
    if port_ok && edge_ok && port.len() != p.len() {
        e.push(
            Rule::Origin,
            k("origin_port"),
            quote(port),
            if p.len() == 1 {
                format!("a single edge port ({p}) maps to a single origin port, not a range")
            } else {
                format!(
                    "the edge range {p} has {} ports, origin_port {}; an edge range maps onto an \
                     origin range of the same size, port for port",
                    p.len(),
                    port.len()
                )
            },
        );
    }
    for (j, ip) in dns.resolved.iter().enumerate() {
        let url = OriginUrl {
            scheme: p.proto,
            addr: *ip,
            lo: port.lo,
            hi: port.hi,
        };
        origin_policy(c, e, &k(&format!("origin_dns.resolved[{j}]")), &url);
    }
}

/// An app's claim on an edge IP: (app index, first port, last port).
type Claim = (usize, u32, u32);

/// Two apps claiming the same protocol, edge IP and port: reported on the later app, once per
/// pair.
fn port_conflicts(c: &Config, e: &mut Errors) {
    // (ip, proto) -> [(app, lo, hi)], only apps whose ports are valid.
    let mut groups: BTreeMap<(IpAddr, L4Proto), Vec<Claim>> = BTreeMap::new();
    for (i, a) in c.spectrum_apps.iter().enumerate() {
        let p = a.protocol;
        if !range_problems(p.lo, p.hi, |a, b| format!("{a}-{b}")).is_empty() {
            continue;
        }
        let Some(eips) = &a.edge_ips else { continue };
        let mut seen: Vec<IpAddr> = Vec::new();
        for ip in &eips.ips {
            if seen.contains(ip) {
                continue;
            }
            seen.push(*ip);
            groups
                .entry((*ip, p.proto))
                .or_default()
                .push((i, p.lo, p.hi));
        }
    }
    let mut reported: Vec<(usize, usize)> = Vec::new();
    for ((ip, proto), claims) in &groups {
        for (x, &(j, jlo, jhi)) in claims.iter().enumerate() {
            for &(i, ilo, ihi) in &claims[x + 1..] {
                // i > j: claims are pushed in app order.
                if ilo <= jhi && jlo <= ihi && !reported.contains(&(i, j)) {
                    reported.push((i, j));
                    let other = &c.spectrum_apps[j];
                    e.push(
                        Rule::PortConflict,
                        format!("spectrum_apps[{i}].protocol"),
                        quote(c.spectrum_apps[i].protocol),
                        format!(
                            "{} port {} on {ip} is also claimed by app {:?} (spectrum_apps[{j}], \
                             {}); two apps cannot share a protocol, edge IP and port",
                            proto.as_str(),
                            ilo.max(jlo),
                            other.id,
                            other.protocol
                        ),
                    );
                }
            }
        }
    }
}

fn access_rules(c: &Config, e: &mut Errors) {
    let mut seen: HashMap<IpNet, usize> = HashMap::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, r) in c.access_rules.iter().enumerate() {
        let k = |field: &str| format!("access_rules[{i}].{field}");
        let v = r.value.trim();
        let cidr = match r.target {
            AccessTarget::Country | AccessTarget::Asn => {
                e.push(
                    Rule::AccessRule,
                    k("target"),
                    quote(r.target.as_str()),
                    "country/ASN rules need a prefix table; not supported yet: use target = \
                     \"ip\" or \"ip_range\"",
                );
                None
            }
            AccessTarget::Ip => match (v.parse::<IpAddr>(), v.parse::<IpNet>()) {
                (Ok(ip), _) => Some(IpNet::from(ip)),
                (Err(_), Ok(net)) if net.prefix_len() == net.max_prefix_len() => {
                    e.push(
                        Rule::AccessRule,
                        k("value"),
                        quote(v),
                        format!(
                            "target \"ip\" takes a bare address: write value = \"{}\"",
                            net.addr()
                        ),
                    );
                    None
                }
                (Err(_), Ok(_)) => {
                    e.push(
                        Rule::AccessRule,
                        k("value"),
                        quote(v),
                        "target \"ip\" takes a bare address; for a CIDR use target = \"ip_range\"",
                    );
                    None
                }
                (Err(_), Err(_)) => {
                    e.push(
                        Rule::AccessRule,
                        k("value"),
                        quote(v),
                        "not an IP address, e.g. \"198.51.100.7\"",
                    );
                    None
                }
            },
            AccessTarget::IpRange => match (v.parse::<IpNet>(), v.parse::<IpAddr>()) {
                (Ok(net), _) => {
                    host_bits(e, k("value"), net);
                    Some(net.trunc())
                }
                (Err(_), Ok(_)) => {
                    e.push(
                        Rule::AccessRule,
                        k("value"),
                        quote(v),
                        "target \"ip_range\" takes a CIDR such as \"198.51.100.0/24\"; for one \
                         address use target = \"ip\"",
                    );
                    None
                }
                (Err(_), Err(_)) => {
                    e.push(
                        Rule::AccessRule,
                        k("value"),
                        quote(v),
                        "not a CIDR, e.g. \"198.51.100.0/24\"",
                    );
                    None
                }
            },
        };
        if let Some(net) = cidr {
            if let Some(j) = seen.get(&net) {
                e.push(
                    Rule::DuplicateAccessRule,
                    k("value"),
                    quote(v),
                    format!(
                        "access_rules[{j}] already has a rule for {net}; one rule per range \
                         (remove one)"
                    ),
                );
            } else {
                seen.insert(net, i);
            }
        }
        if let Some(id) = &r.id
            && let Some(p) = id_problem(id)
        {
            e.push(Rule::BadId, k("id"), quote(id), format!("the id {p}"));
        }
        if r.id.is_some() || cidr.is_some() {
            let id = r.effective_id();
            if let Some(j) = ids.get(&id) {
                if r.id.is_some() {
                    e.push(
                        Rule::BadId,
                        k("id"),
                        quote(&id),
                        format!("id already used by access_rules[{j}]; rule ids are unique"),
                    );
                }
            } else {
                ids.insert(id, i);
            }
        }
    }
}

fn delegations(c: &Config, e: &mut Errors) {
    for (i, d) in c.origin_policy.delegations.iter().enumerate() {
        host_bits(e, format!("origin_policy.delegations[{i}].cidr"), d.cidr);
    }
}

#[cfg(test)]
mod tests;
