//! The origin policy: may this address (or range) be used as a Spectrum origin or a CDN pool
//! member?
//!
//! Decision rule, after the Addressing API's `validate_origin_ip_acl` (seed 002):
//!
//! 1. If the range contains a Spectrum edge IP (`has_binding`), refuse, even when delegated:
//!    an app proxying to an edge IP can loop, and never needs to.
//! 2. Else if it overlaps a reserved block (`is_reserved`: RFC 6890 special-purpose registries
//!    and multicast, [`RESERVED`]) or one of our own onboarded prefixes (`is_managed`), allow
//!    it only when one delegation covers it whole (`is_delegated`).
//! 3. Else allow it.
//!
//! `allowed = !has_binding && (!(is_reserved || is_managed) || is_delegated)`.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use super::Config;

/// The answer for one range, with the field names of `validate_origin_ip_acl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OriginCheck {
    /// May be used as an origin.
    pub allowed: bool,
    /// Overlaps one of our onboarded prefixes.
    pub is_managed: bool,
    /// A single `[[origin_policy.delegations]]` entry covers it whole.
    pub is_delegated: bool,
    /// Overlaps a special-purpose (RFC 6890) or multicast block.
    pub is_reserved: bool,
    /// Contains a Spectrum edge IP.
    pub has_binding: bool,
}

/// An entry of the special-purpose address registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    /// The block.
    pub cidr: IpNet,
    /// The RFC that reserves it.
    pub rfc: u16,
    /// The registry's name for it.
    pub name: &'static str,
}

impl fmt::Display for Reserved {
    /// `RFC 1918 private-use 10.0.0.0/8`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RFC {} {} {}", self.rfc, self.name, self.cidr)
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8, rfc: u16, name: &'static str) -> Reserved {
    Reserved {
        cidr: IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)),
        rfc,
        name,
    }
}

const fn v6(segs: [u16; 8], len: u8, rfc: u16, name: &'static str) -> Reserved {
    let [a, b, c, d, e, f, g, h] = segs;
    Reserved {
        cidr: IpNet::V6(Ipv6Net::new_assert(
            Ipv6Addr::new(a, b, c, d, e, f, g, h),
            len,
        )),
        rfc,
        name,
    }
}

/// Blocks never used as origins unless delegated: the IANA IPv4 and IPv6 special-purpose
/// address registries (RFC 6890 and its updates) plus the multicast blocks.
pub const RESERVED: &[Reserved] = &[
    v4(0, 0, 0, 0, 8, 791, "\"this network\""),
    v4(10, 0, 0, 0, 8, 1918, "private-use"),
    v4(100, 64, 0, 0, 10, 6598, "shared address space"),
    v4(127, 0, 0, 0, 8, 1122, "loopback"),
    v4(169, 254, 0, 0, 16, 3927, "link-local"),
    v4(172, 16, 0, 0, 12, 1918, "private-use"),
    v4(192, 0, 0, 0, 24, 6890, "IETF protocol assignments"),
    v4(192, 0, 2, 0, 24, 5737, "documentation (TEST-NET-1)"),
    v4(192, 88, 99, 0, 24, 7526, "deprecated 6to4 relay anycast"),
    v4(192, 168, 0, 0, 16, 1918, "private-use"),
    v4(198, 18, 0, 0, 15, 2544, "benchmarking"),
    v4(198, 51, 100, 0, 24, 5737, "documentation (TEST-NET-2)"),
    v4(203, 0, 113, 0, 24, 5737, "documentation (TEST-NET-3)"),
    v4(224, 0, 0, 0, 4, 5771, "multicast"),
    v4(240, 0, 0, 0, 4, 1112, "reserved"),
    v4(255, 255, 255, 255, 32, 8190, "limited broadcast"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, 4291, "unspecified address"),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, 4291, "loopback address"),
    v6(
        [0, 0, 0, 0, 0, 0xffff, 0, 0],
        96,
        4291,
        "IPv4-mapped address",
    ),
    v6(
        [0x64, 0xff9b, 0, 0, 0, 0, 0, 0],
        96,
        6052,
        "IPv4-IPv6 translation",
    ),
    v6(
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        8215,
        "local-use IPv4-IPv6 translation",
    ),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, 6666, "discard-only"),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        2928,
        "IETF protocol assignments",
    ),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, 3849, "documentation"),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, 3056, "6to4"),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, 4193, "unique-local"),
    v6(
        [0xfe80, 0, 0, 0, 0, 0, 0, 0],
        10,
        4291,
        "link-local unicast",
    ),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, 4291, "multicast"),
];

/// True when the two ranges share an address.
pub(crate) fn overlaps(a: IpNet, b: IpNet) -> bool {
    let (a, b) = (a.trunc(), b.trunc());
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Everything the policy knows about a range, for [`origin_check`] and for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inspection {
    /// The most specific reserved block it overlaps.
    pub(crate) reserved: Option<&'static Reserved>,
    /// An onboarded prefix it overlaps.
    pub(crate) managed: Option<IpNet>,
    /// A delegation covering it whole.
    pub(crate) delegated: Option<IpNet>,
    /// An edge IP inside it: (app index, address).
    pub(crate) edge: Option<(usize, IpAddr)>,
}

impl Inspection {
    pub(crate) fn of(config: &Config, net: IpNet) -> Inspection {
        let net = net.trunc();
        let reserved = RESERVED
            .iter()
            .filter(|r| overlaps(r.cidr, net))
            .max_by_key(|r| r.cidr.prefix_len());
        let managed = config
            .prefixes
            .iter()
            .map(|p| p.cidr.trunc())
            .find(|p| overlaps(*p, net));
        let delegated = config
            .origin_policy
            .delegations
            .iter()
            .map(|d| d.cidr.trunc())
            .find(|d| d.contains(&net));
        let edge = config.spectrum_apps.iter().enumerate().find_map(|(i, a)| {
            let ips = a.edge_ips.as_ref()?;
            ips.ips
                .iter()
                .find(|ip| net.contains(*ip))
                .map(|ip| (i, *ip))
        });
        Inspection {
            reserved,
            managed,
            delegated,
            edge,
        }
    }

    pub(crate) fn check(&self) -> OriginCheck {
        let is_reserved = self.reserved.is_some();
        let is_managed = self.managed.is_some();
        let is_delegated = self.delegated.is_some();
        let has_binding = self.edge.is_some();
        OriginCheck {
            allowed: !has_binding && (!(is_reserved || is_managed) || is_delegated),
            is_managed,
            is_delegated,
            is_reserved,
            has_binding,
        }
    }

    /// Why origin `addr` is refused, with what to do; `None` when allowed.
    pub(crate) fn refusal(&self, config: &Config, addr: IpAddr) -> Option<String> {
        if let Some((app, ip)) = self.edge {
            let id = &config.spectrum_apps[app].id;
            return Some(format!(
                "origin {addr} is the edge IP {ip} of app {id:?} (spectrum_apps[{app}]); an \
                 origin may never be an edge IP, delegated or not, because the app could proxy \
                 to itself in a loop"
            ));
        }
        if self.check().allowed {
            return None;
        }
        let host = IpNet::from(addr);
        Some(match (self.reserved, self.managed) {
            (Some(r), None) => format!(
                "origin {addr} is reserved ({r}) and not delegated; add \
                 [[origin_policy.delegations]] cidr = \"{}\" to allow it",
                r.cidr
            ),
            (None, Some(p)) => format!(
                "origin {addr} is inside our own prefix {p} (managed) and not delegated; add \
                 [[origin_policy.delegations]] cidr = \"{host}\" to allow it"
            ),
            (Some(r), Some(p)) => format!(
                "origin {addr} is reserved ({r}) and inside our own prefix {p} (managed), and \
                 not delegated; add [[origin_policy.delegations]] cidr = \"{host}\" to allow it"
            ),
            (None, None) => unreachable!("refused only when reserved, managed or an edge IP"),
        })
    }
}

/// The origin policy's answer for `net` under `config` (see the module docs for the rule).
///
/// ```
/// use control::config::{Config, origin_check};
///
/// let c = Config::default();
/// let a = origin_check(&c, "10.1.2.3/32".parse().unwrap());
/// assert!(a.is_reserved && !a.allowed);
/// assert!(origin_check(&c, "8.8.8.8/32".parse().unwrap()).allowed);
/// ```
pub fn origin_check(config: &Config, net: IpNet) -> OriginCheck {
    Inspection::of(config, net).check()
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::config::tests::lab;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn reserved_table_is_well_formed() {
        for r in RESERVED {
            assert_eq!(r.cidr, r.cidr.trunc(), "{r}");
        }
        assert_eq!(RESERVED[1].to_string(), "RFC 1918 private-use 10.0.0.0/8");
    }

    #[test]
    fn origin_check_decision_rule() {
        let c = lab();
        // Public: allowed.
        let a = origin_check(&c, net("8.8.8.8/32"));
        assert_eq!(
            a,
            OriginCheck {
                allowed: true,
                is_managed: false,
                is_delegated: false,
                is_reserved: false,
                has_binding: false
            }
        );
        // Reserved, not delegated.
        let a = origin_check(&c, net("10.0.0.1/32"));
        assert!(a.is_reserved && !a.is_delegated && !a.allowed);
        // Reserved and delegated (the lab delegates 192.0.2.0/24).
        let a = origin_check(&c, net("192.0.2.1/32"));
        assert!(a.is_reserved && a.is_delegated && a.allowed);
        // A range only partly delegated is not delegated.
        assert!(!origin_check(&c, net("192.0.2.0/23")).is_delegated);
        // Managed (our prefix), not delegated.
        let a = origin_check(&c, net("2001:db8:100:2::1/128"));
        assert!(a.is_managed && !a.allowed);
        // An edge IP: refused even when delegated.
        let mut d = c.clone();
        d.origin_policy.delegations.push(crate::config::Delegation {
            cidr: net("203.0.113.0/24"),
        });
        let a = origin_check(&d, net("203.0.113.10/32"));
        assert!(a.is_delegated && a.is_managed && a.has_binding && !a.allowed);
        // A delegated managed address that is not an edge IP is allowed.
        assert!(origin_check(&d, net("203.0.113.99/32")).allowed);
        // A range containing an edge IP has a binding.
        assert!(origin_check(&c, net("203.0.113.0/28")).has_binding);
        // Multicast and IPv6 special blocks.
        assert!(origin_check(&c, net("239.1.1.1/32")).is_reserved);
        assert!(origin_check(&c, net("fe80::1/128")).is_reserved);
        assert!(origin_check(&c, net("::ffff:10.0.0.1/128")).is_reserved);
        assert!(!origin_check(&c, net("2606:4700::1/128")).is_reserved);
    }

    #[test]
    fn origin_check_serializes_with_the_seed_field_names() {
        let a = origin_check(&lab(), net("192.0.2.1/32"));
        let j = serde_json::to_value(a).unwrap();
        assert_eq!(
            j,
            serde_json::json!({
                "allowed": true, "is_managed": false, "is_delegated": true,
                "is_reserved": true, "has_binding": false
            })
        );
    }
}
