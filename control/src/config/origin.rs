//! The origin policy: which addresses a Spectrum app (or the CDN pool) may dial.
//!
//! Following the seeds' origin-validation design (post 002), an origin is refused when it is
//! special-purpose (RFC 6890 registries, `is_reserved`) or inside one of our own prefixes
//! (`is_managed`), unless a delegation covers it (`is_delegated`). An origin that is a Spectrum
//! edge IP (`has_binding`) is always refused, delegated or not: an app whose origin is another
//! app's edge IP proxies into itself (cycle prevention).
//!
//! `allowed = !has_binding && (is_delegated || !(is_reserved || is_managed))`

use core::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::Config;

/// The answer of [`origin_check`], with the field names of the addressing API in the seeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginCheck {
    /// May be used as an origin.
    pub allowed: bool,
    /// Overlaps one of our onboarded prefixes.
    pub is_managed: bool,
    /// Wholly inside a delegation.
    pub is_delegated: bool,
    /// Overlaps a special-purpose range.
    pub is_reserved: bool,
    /// Contains a Spectrum edge IP.
    pub has_binding: bool,
    /// Why it is refused, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Special-purpose ranges (RFC 6890 and its successors in the IANA registries), with the name
/// of their registry entry.
pub const RESERVED: &[(&str, &str)] = &[
    ("0.0.0.0/8", "RFC 1122 \"this network\""),
    ("10.0.0.0/8", "RFC 1918 private-use"),
    ("100.64.0.0/10", "RFC 6598 shared address space"),
    ("127.0.0.0/8", "RFC 1122 loopback"),
    ("169.254.0.0/16", "RFC 3927 link-local"),
    ("172.16.0.0/12", "RFC 1918 private-use"),
    ("192.0.0.0/24", "RFC 6890 IETF protocol assignments"),
    ("192.0.2.0/24", "RFC 5737 documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "RFC 7526 deprecated 6to4 relay anycast"),
    ("192.168.0.0/16", "RFC 1918 private-use"),
    ("198.18.0.0/15", "RFC 2544 benchmarking"),
    ("198.51.100.0/24", "RFC 5737 documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "RFC 5737 documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "RFC 5771 multicast"),
    ("240.0.0.0/4", "RFC 1112 reserved"),
    ("255.255.255.255/32", "RFC 919 limited broadcast"),
    ("::/128", "RFC 4291 unspecified address"),
    ("::1/128", "RFC 4291 loopback"),
    ("::ffff:0:0/96", "RFC 4291 IPv4-mapped"),
    ("64:ff9b::/96", "RFC 6052 IPv4-IPv6 translation"),
    ("64:ff9b:1::/48", "RFC 8215 local-use IPv4-IPv6 translation"),
    ("100::/64", "RFC 6666 discard-only"),
    ("2001::/23", "RFC 2928 IETF protocol assignments"),
    ("2001:db8::/32", "RFC 3849 documentation"),
    ("2002::/16", "RFC 3056 6to4"),
    ("fc00::/7", "RFC 4193 unique-local"),
    ("fe80::/10", "RFC 4291 link-local unicast"),
    ("ff00::/8", "RFC 4291 multicast"),
];

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

/// The reserved range `net` overlaps, if any.
pub fn reserved(net: &IpNet) -> Option<(IpNet, &'static str)> {
    RESERVED.iter().find_map(|(c, name)| {
        let r: IpNet = c.parse().expect("the reserved table holds valid CIDRs");
        overlaps(&r, net).then_some((r, *name))
    })
}

fn host(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

/// The edge IPs of every Spectrum app (unparseable ones skipped: validation reports them).
pub fn edge_ips(c: &Config) -> impl Iterator<Item = IpAddr> + '_ {
    c.spectrum_apps
        .iter()
        .filter_map(|a| a.edge_ips.as_ref())
        .flat_map(|e| e.ips.iter())
        .filter_map(|s| s.parse().ok())
}

/// Checks `net` (a single address or a range) against the policy of `c`.
pub fn origin_check(c: &Config, net: IpNet) -> OriginCheck {
    let net = net.trunc();
    let res = reserved(&net);
    let managed = c.prefixes.iter().find(|p| overlaps(&p.cidr.trunc(), &net));
    let is_delegated = c
        .origin_policy
        .delegations
        .iter()
        .any(|d| d.cidr.trunc().contains(&net));
    let edge = edge_ips(c).find(|ip| net.contains(&host(*ip)));
    let (is_reserved, is_managed, has_binding) = (res.is_some(), managed.is_some(), edge.is_some());
    let allowed = !has_binding && (is_delegated || !(is_reserved || is_managed));
    let reason = if allowed {
        None
    } else if let Some(ip) = edge {
        Some(format!(
            "{ip} is a Spectrum edge IP; an origin there would proxy into the edge itself (never allowed, delegated or not)"
        ))
    } else if let Some(p) = managed {
        Some(format!(
            "{net} is inside our own prefix {} and not delegated; add [[origin_policy.delegations]] cidr = \"{net}\" if it really is an origin",
            p.cidr
        ))
    } else {
        res.map(|(r, name)| format!("{net} is reserved ({name} {r}) and not delegated; add [[origin_policy.delegations]] cidr = \"{r}\" to allow it"))
    };
    OriginCheck {
        allowed,
        is_managed,
        is_delegated,
        is_reserved,
        has_binding,
        reason,
    }
}
