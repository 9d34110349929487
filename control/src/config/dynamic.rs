//! Dynamic edge IPs: apps with `edge_ips = { type = "dynamic" }` get their addresses from
//! `[spectrum] dynamic_pool`.
//!
//! The assignment is a pure function of the configuration, so that every load of the same file
//! gives the same addresses, and it keeps what was assigned before: the addresses are written
//! into the app (`edge_ips.ips`), the file that the control socket persists holds them, and an
//! address stays with its app across restarts and edits for as long as it is in the pool and no
//! static app claims it. A new app gets, per family it wants, the lowest pool address that
//! carries no other app on an overlapping port of its protocol (apps on other ports share an
//! address, as on a provider's edge).

use core::net::IpAddr;

use fastpath::tables::L4Proto;
use ipnet::IpNet;

use super::{Config, EdgeIps, EdgeIpsType};

/// `edge_ips.connectivity` of a dynamic app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connectivity {
    /// One IPv4 and one IPv6 address (the default).
    All,
    /// One IPv4 address.
    Ipv4,
    /// One IPv6 address.
    Ipv6,
}

impl Connectivity {
    /// Parses the API value; absent means `all`.
    ///
    /// # Errors
    /// A message naming the accepted values.
    pub fn parse(s: Option<&str>) -> Result<Connectivity, String> {
        match s {
            None | Some("all") => Ok(Connectivity::All),
            Some("ipv4") => Ok(Connectivity::Ipv4),
            Some("ipv6") => Ok(Connectivity::Ipv6),
            Some(other) => Err(format!(
                "unknown connectivity `{other}`: expected \"all\" (an IPv4 and an IPv6 address), \
                 \"ipv4\" or \"ipv6\""
            )),
        }
    }

    /// The API value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Connectivity::All => "all",
            Connectivity::Ipv4 => "ipv4",
            Connectivity::Ipv6 => "ipv6",
        }
    }

    /// Whether the app wants an address of this family.
    pub const fn wants(self, v6: bool) -> bool {
        match self {
            Connectivity::All => true,
            Connectivity::Ipv4 => !v6,
            Connectivity::Ipv6 => v6,
        }
    }

    /// Whether `ip` is of a family the app wants.
    pub fn admits(self, ip: IpAddr) -> bool {
        self.wants(ip.is_ipv6())
    }
}

/// What an app holds on an address: its protocol and ports.
#[derive(Debug, Clone, Copy)]
struct Claim {
    ip: IpAddr,
    proto: L4Proto,
    lo: u32,
    hi: u32,
}

impl Claim {
    fn conflicts(&self, ip: IpAddr, proto: L4Proto, lo: u32, hi: u32) -> bool {
        self.ip == ip && self.proto == proto && lo <= self.hi && self.lo <= hi
    }
}

fn free(claims: &[Claim], ip: IpAddr, proto: L4Proto, lo: u32, hi: u32) -> bool {
    !claims.iter().any(|c| c.conflicts(ip, proto, lo, hi))
}

/// The addresses of a pool range an app may get, in order: not an IPv4 network or broadcast
/// address (ranges of /30 and wider) nor the IPv6 subnet-router anycast address (/126 and
/// wider).
fn candidates(net: IpNet) -> impl Iterator<Item = IpAddr> {
    let net = net.trunc();
    let (first, last, v6) = match net {
        IpNet::V4(n) => {
            let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
            if n.prefix_len() <= 30 {
                (u128::from(lo) + 1, u128::from(hi) - 1, false)
            } else {
                (u128::from(lo), u128::from(hi), false)
            }
        }
        IpNet::V6(n) => {
            let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
            if n.prefix_len() <= 126 {
                (lo + 1, hi, true)
            } else {
                (lo, hi, true)
            }
        }
    };
    (0u128..)
        .map_while(move |i| first.checked_add(i).filter(|&x| x <= last))
        .map(move |x| {
            if v6 {
                IpAddr::from(core::net::Ipv6Addr::from(x))
            } else {
                // x <= the IPv4 broadcast: fits.
                IpAddr::from(core::net::Ipv4Addr::from(x as u32))
            }
        })
}

impl Config {
    /// Assigns the addresses of every dynamic app (an app without `edge_ips` is dynamic with
    /// connectivity `all`) from `[spectrum] dynamic_pool`, keeping those it already holds
    /// while they are in the pool and free. Deterministic; an app that cannot get an address
    /// is left without one, and [`Config::validate`] says why.
    pub fn assign_edge_ips(&mut self) {
        for a in &mut self.spectrum_apps {
            if a.edge_ips.is_none() {
                a.edge_ips = Some(EdgeIps {
                    kind: EdgeIpsType::Dynamic,
                    ips: Vec::new(),
                    connectivity: Some(Connectivity::All.as_str().into()),
                });
            }
        }
        let pool = self.spectrum.dynamic_pool.clone();
        let valid_ports = |lo: u32, hi: u32| lo >= 1 && lo <= hi && hi <= 65_535;
        // What static apps hold comes first: a dynamic app gives way.
        let mut claims: Vec<Claim> = Vec::new();
        for a in &self.spectrum_apps {
            let p = a.protocol;
            if let Some(e) = &a.edge_ips
                && e.kind == EdgeIpsType::Static
                && valid_ports(p.lo, p.hi)
            {
                claims.extend(e.ips.iter().map(|&ip| Claim {
                    ip,
                    proto: p.proto,
                    lo: p.lo,
                    hi: p.hi,
                }));
            }
        }
        // Pass 1: keep what each dynamic app holds, in app order.
        for a in &mut self.spectrum_apps {
            let p = a.protocol;
            let Some(e) = a.edge_ips.as_mut() else {
                continue;
            };
            if e.kind != EdgeIpsType::Dynamic {
                continue;
            }
            let Ok(want) = Connectivity::parse(e.connectivity.as_deref()) else {
                continue;
            };
            if !valid_ports(p.lo, p.hi) {
                continue;
            }
            let mut kept: Vec<IpAddr> = Vec::new();
            for &ip in &e.ips {
                let ok = want.admits(ip)
                    && !kept.iter().any(|k| k.is_ipv6() == ip.is_ipv6())
                    && pool.iter().any(|n| n.trunc().contains(&ip))
                    && free(&claims, ip, p.proto, p.lo, p.hi);
                if ok {
                    kept.push(ip);
                    claims.push(Claim {
                        ip,
                        proto: p.proto,
                        lo: p.lo,
                        hi: p.hi,
                    });
                }
            }
            e.ips = kept;
        }
        // Pass 2: give each dynamic app what it still lacks, lowest free address first.
        for a in &mut self.spectrum_apps {
            let p = a.protocol;
            let Some(e) = a.edge_ips.as_mut() else {
                continue;
            };
            if e.kind != EdgeIpsType::Dynamic || !valid_ports(p.lo, p.hi) {
                continue;
            }
            let Ok(want) = Connectivity::parse(e.connectivity.as_deref()) else {
                continue;
            };
            for v6 in [false, true] {
                if !want.wants(v6) || e.ips.iter().any(|ip| ip.is_ipv6() == v6) {
                    continue;
                }
                // Each taken address needs a claim, so at most claims.len() + 1 candidates
                // of a range are looked at before a free one (or the range's end).
                let limit = claims.len() + 1;
                let found = pool
                    .iter()
                    .filter(|n| n.addr().is_ipv6() == v6)
                    .find_map(|n| {
                        candidates(*n)
                            .take(limit)
                            .find(|&ip| free(&claims, ip, p.proto, p.lo, p.hi))
                    });
                if let Some(ip) = found {
                    e.ips.push(ip);
                    claims.push(Claim {
                        ip,
                        proto: p.proto,
                        lo: p.lo,
                        hi: p.hi,
                    });
                }
            }
            e.ips.sort_by_key(IpAddr::is_ipv6);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const BASE: &str = r#"
        [spectrum]
        dynamic_pool = ["203.0.113.16/30", "2001:db8:0:1::/126"]
        [[prefixes]]
        cidr = "203.0.113.0/24"
        [[prefixes]]
        cidr = "2001:db8::/48"
        [[bindings]]
        cidr = "203.0.113.0/24"
        service = "spectrum"
        [[bindings]]
        cidr = "2001:db8::/48"
        service = "spectrum"
        [[origin_policy.delegations]]
        cidr = "192.0.2.0/24"
    "#;

    fn app(id: &str, protocol: &str, edge: &str) -> String {
        format!(
            "[[spectrum_apps]]\nid = \"{id}\"\nprotocol = \"{protocol}\"\n{edge}\norigin_direct = \
             [\"{}://192.0.2.1:{}\"]\n",
            &protocol[..3],
            &protocol[4..]
        )
    }

    fn ips(c: &Config, id: &str) -> Vec<String> {
        let a = c.spectrum_apps.iter().find(|a| a.id == id).unwrap();
        let e = a.edge_ips.as_ref().unwrap();
        e.ips.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn an_app_without_edge_ips_gets_one_address_of_each_family() {
        let c = Config::from_toml_str(&format!("{BASE}{}", app("ssh", "tcp/22", ""))).unwrap();
        assert_eq!(ips(&c, "ssh"), ["203.0.113.17", "2001:db8:0:1::1"]);
        let e = c.spectrum_apps[0].edge_ips.as_ref().unwrap();
        assert_eq!(e.kind, EdgeIpsType::Dynamic);
        assert_eq!(e.connectivity.as_deref(), Some("all"));
    }

    #[test]
    fn apps_share_an_address_unless_their_ports_overlap() {
        let src = format!(
            "{BASE}{}{}{}{}",
            app(
                "a",
                "tcp/22",
                "edge_ips = { type = \"dynamic\", connectivity = \"ipv4\" }"
            ),
            app(
                "b",
                "tcp/80",
                "edge_ips = { type = \"dynamic\", connectivity = \"ipv4\" }"
            ),
            app(
                "c",
                "tcp/20-30",
                "edge_ips = { type = \"dynamic\", connectivity = \"ipv4\" }"
            ),
            app(
                "d",
                "udp/22",
                "edge_ips = { type = \"dynamic\", connectivity = \"ipv6\" }"
            ),
        );
        let c = Config::from_toml_str(&src).unwrap();
        assert_eq!(ips(&c, "a"), ["203.0.113.17"]);
        assert_eq!(ips(&c, "b"), ["203.0.113.17"]);
        assert_eq!(ips(&c, "c"), ["203.0.113.18"]);
        assert_eq!(ips(&c, "d"), ["2001:db8:0:1::1"]);
    }

    #[test]
    fn a_static_app_takes_precedence_and_kept_addresses_survive_a_reload_and_edits() {
        let src = format!(
            "{}{}{}",
            BASE.replace("203.0.113.16/30", "203.0.113.16/29"),
            app(
                "s",
                "tcp/22",
                "edge_ips = { type = \"static\", ips = [\"203.0.113.17\"] }"
            ),
            app(
                "d",
                "tcp/22",
                "edge_ips = { type = \"dynamic\", connectivity = \"ipv4\" }"
            ),
        );
        let c = Config::from_toml_str(&src).unwrap();
        assert_eq!(ips(&c, "d"), ["203.0.113.18"]);
        // Written back and read again: the same address.
        let again = Config::from_toml_str(&c.to_toml_string().unwrap()).unwrap();
        assert_eq!(again, c);
        // A new app placed before it does not take its address away.
        let mut edited = again.clone();
        let mut first = edited.spectrum_apps[1].clone();
        first.id = "new".into();
        first.edge_ips.as_mut().unwrap().ips.clear();
        edited.spectrum_apps.insert(0, first);
        edited.assign_edge_ips();
        edited.validate().unwrap();
        assert_eq!(ips(&edited, "d"), ["203.0.113.18"]);
        assert_eq!(ips(&edited, "new"), ["203.0.113.19"]);
    }

    #[test]
    fn an_exhausted_pool_or_a_missing_family_is_an_error_naming_the_fix() {
        let mut src = BASE.to_string();
        for i in 0..3 {
            src += &app(
                &format!("a{i}"),
                "tcp/22",
                "edge_ips = { type = \"dynamic\", connectivity = \"ipv4\" }",
            );
        }
        let err = Config::from_toml_str(&src).unwrap_err().to_string();
        assert!(err.contains("spectrum_apps[2].edge_ips"), "{err}");
        assert!(
            err.contains("no IPv4 address of [spectrum] dynamic_pool is free"),
            "{err}"
        );

        let v4_only = BASE.replace(", \"2001:db8:0:1::/126\"", "");
        let err = Config::from_toml_str(&format!("{v4_only}{}", app("a", "tcp/22", "")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no IPv6 range"), "{err}");
        assert!(err.contains("connectivity = \"ipv4\""), "{err}");
    }

    #[test]
    fn a_pool_outside_spectrum_or_overlapping_is_refused() {
        let src = r#"
            [spectrum]
            dynamic_pool = ["203.0.113.16/30", "203.0.113.18/31", "203.0.113.64/28"]
            [[prefixes]]
            cidr = "203.0.113.0/24"
            [[bindings]]
            cidr = "203.0.113.0/24"
            service = "spectrum"
            [[bindings]]
            cidr = "203.0.113.64/29"
            service = "cdn"
        "#;
        let err = Config::from_toml_str(src).unwrap_err().to_string();
        assert!(err.contains("spectrum.dynamic_pool[1]"), "{err}");
        assert!(err.contains("overlaps spectrum.dynamic_pool[0]"), "{err}");
        assert!(err.contains("spectrum.dynamic_pool[2]"), "{err}");
        assert!(err.contains("gives part of it to cdn"), "{err}");
    }

    #[test]
    fn no_pool_means_dynamic_is_refused_with_the_way_out() {
        let src = BASE.replace(
            "dynamic_pool = [\"203.0.113.16/30\", \"2001:db8:0:1::/126\"]",
            "",
        );
        let err = Config::from_toml_str(&format!("{src}{}", app("a", "tcp/22", "")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dynamic_pool, which is empty"), "{err}");
    }

    #[test]
    fn candidates_skip_network_broadcast_and_anycast() {
        let v4: Vec<IpAddr> = candidates("203.0.113.16/30".parse().unwrap()).collect();
        assert_eq!(v4.len(), 2);
        assert_eq!(v4[0].to_string(), "203.0.113.17");
        let one: Vec<IpAddr> = candidates("203.0.113.9/32".parse().unwrap()).collect();
        assert_eq!(one.len(), 1);
        let v6: Vec<IpAddr> = candidates("2001:db8::/127".parse().unwrap()).collect();
        assert_eq!(v6.len(), 2);
        let v6: Vec<IpAddr> = candidates("2001:db8::/126".parse().unwrap()).collect();
        assert_eq!(v6[0].to_string(), "2001:db8::1");
        assert!(!v6.iter().any(|ip| ip.to_string() == "2001:db8::"));
    }
}
