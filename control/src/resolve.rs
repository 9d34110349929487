//! What a configuration needs from the world before it compiles: origin names resolved,
//! dynamic edge IPs assigned, and the apps' timestamps.
//!
//! [`prepare`] runs on every change the controller applies (and on the file at start), after
//! the change and before validation: it is idempotent, so a configuration that went through it
//! once comes out the same. Resolution uses the system resolver ([`SystemResolver`], glibc's
//! `getaddrinfo`, so `/etc/hosts`, `nsswitch.conf` and the configured servers apply) behind
//! the [`Resolver`] trait, which tests replace.
//!
//! The controller re-resolves every name on its TTL in the background
//! ([`crate::daemon::Controller::refresh_origin_dns`]); this module only decides, for one
//! change, which names need a lookup now: those of new apps, of apps whose name or type
//! changed, and of apps with no address yet.

use core::net::IpAddr;
use std::net::ToSocketAddrs;

use crate::config::{Config, ConfigError, ConfigErrors, OriginDns, Rule, SpectrumApp};

/// Looks names up.
pub trait Resolver: Send + Sync {
    /// Every address of `name` (either family), in any order.
    ///
    /// # Errors
    /// The resolver's own error (no such name, no server answered, ...).
    fn lookup(&self, name: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The system resolver (`getaddrinfo`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup(&self, name: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok((name, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
    }
}

/// The addresses of `dns` the app uses: of its type, sorted, each once.
///
/// # Errors
/// A message saying why there is none.
pub fn resolve(r: &dyn Resolver, dns: &OriginDns) -> Result<Vec<IpAddr>, String> {
    let mut ips: Vec<IpAddr> = r
        .lookup(&dns.name)
        .map_err(|e| format!("{}: {e}", dns.name))?
        .into_iter()
        .filter(|ip| dns.kind.admits(*ip))
        .collect();
    ips.sort();
    ips.dedup();
    if ips.is_empty() {
        let what = match dns.kind {
            crate::config::OriginDnsType::A => "no IPv4 (A) address",
            crate::config::OriginDnsType::Aaaa => "no IPv6 (AAAA) address",
            _ => "no address",
        };
        return Err(format!("{} has {what}", dns.name));
    }
    Ok(ips)
}

/// The app without what the edge writes into it, to tell an edit from a refresh.
fn essence(a: &SpectrumApp) -> SpectrumApp {
    let mut a = a.clone();
    a.created_on = None;
    a.modified_on = None;
    if let Some(d) = a.origin_dns.as_mut() {
        d.resolved.clear();
    }
    a
}

/// Readies `next`, the configuration that is to replace `previous`: assigns dynamic edge IPs,
/// resolves the origin names that need it, and stamps `created_on`/`modified_on` (RFC 3339,
/// `now_ms` since the epoch) on new and edited apps.
///
/// # Errors
/// [`Rule::OriginUnresolvable`] (API code 531) for each name that needs a lookup and has no
/// address; nothing else is looked at then.
pub fn prepare(
    previous: &Config,
    next: &mut Config,
    r: &dyn Resolver,
    now_ms: u64,
) -> Result<(), ConfigErrors> {
    next.assign_edge_ips();
    let now = crate::analytics::format_time(now_ms / 1000 * 1000);
    let mut errors = Vec::new();
    for (i, a) in next.spectrum_apps.iter_mut().enumerate() {
        let before = previous.spectrum_apps.iter().find(|p| p.id == a.id);
        if let Some(dns) = a.origin_dns.as_mut() {
            let old = before.and_then(|p| p.origin_dns.as_ref());
            let same_name = old.is_some_and(|o| o.name == dns.name && o.kind == dns.kind);
            // A body copied from GET carries the old name's addresses: only a lookup of the
            // new name counts then.
            let stale = !same_name && old.is_some_and(|o| o.resolved == dns.resolved);
            if same_name && dns.resolved.is_empty() {
                dns.resolved.clone_from(&old.expect("same_name").resolved);
            }
            if dns.resolved.is_empty() || stale {
                match resolve(r, dns) {
                    Ok(ips) => dns.resolved = ips,
                    Err(msg) => errors.push(ConfigError::new(
                        Rule::OriginUnresolvable,
                        format!("spectrum_apps[{i}].origin_dns.name"),
                        Some(format!("{:?}", dns.name)),
                        format!(
                            "could not resolve origin to an IP ({msg}); check the name, or give \
                             origin_direct"
                        ),
                    )),
                }
            }
        }
        match before {
            Some(p) => {
                a.created_on = p.created_on.clone().or_else(|| Some(now.clone()));
                a.modified_on = if essence(p) == essence(a) {
                    p.modified_on.clone().or_else(|| Some(now.clone()))
                } else {
                    Some(now.clone())
                };
            }
            None => {
                a.created_on = Some(now.clone());
                a.modified_on = Some(now.clone());
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors::new(errors))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A resolver answering from a table that tests change.
    #[derive(Default)]
    pub(crate) struct Table(pub Mutex<HashMap<String, Vec<IpAddr>>>);

    impl Table {
        pub(crate) fn set(&self, name: &str, ips: &[&str]) {
            self.0.lock().unwrap().insert(
                name.into(),
                ips.iter().map(|s| s.parse().unwrap()).collect(),
            );
        }
    }

    impl Resolver for Table {
        fn lookup(&self, name: &str) -> std::io::Result<Vec<IpAddr>> {
            self.0
                .lock()
                .unwrap()
                .get(name)
                .cloned()
                .ok_or_else(|| std::io::Error::other("Name or service not known"))
        }
    }

    const BASE: &str = r#"
        [[prefixes]]
        cidr = "203.0.113.0/24"
        [[bindings]]
        cidr = "203.0.113.0/24"
        service = "spectrum"
        [[origin_policy.delegations]]
        cidr = "198.51.100.0/24"
        [[spectrum_apps]]
        id = "ssh"
        protocol = "tcp/22"
        edge_ips = { type = "static", ips = ["203.0.113.5"] }
        origin_dns = { name = "origin.example.com", type = "A" }
        origin_port = 2222
    "#;

    fn unresolved() -> Config {
        let mut c: Config = toml::from_str(BASE).unwrap();
        c.assign_edge_ips();
        c
    }

    #[test]
    fn a_new_name_is_resolved_filtered_by_type_sorted_and_stamped() {
        let r = Table::default();
        r.set(
            "origin.example.com",
            &[
                "198.51.100.9",
                "2001:db8::9",
                "198.51.100.7",
                "198.51.100.9",
            ],
        );
        let mut c = unresolved();
        prepare(&Config::default(), &mut c, &r, 1_000).unwrap();
        let a = &c.spectrum_apps[0];
        let ips: Vec<String> = a
            .origin_dns
            .as_ref()
            .unwrap()
            .resolved
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ips, ["198.51.100.7", "198.51.100.9"]);
        assert_eq!(a.created_on.as_deref(), Some("1970-01-01T00:00:01Z"));
        let compiled = c.compile(1, &Default::default()).unwrap();
        assert_eq!(compiled.spec.apps[0].origins.len(), 2);
        assert_eq!(compiled.spec.apps[0].origins[0].ports.lo, 2222);

        // Applied again unchanged: no lookup (the resolver forgets the name) and the same
        // timestamps.
        r.0.lock().unwrap().clear();
        let mut again = c.clone();
        prepare(&c, &mut again, &r, 9_000).unwrap();
        assert_eq!(again, c);
        // A body without `resolved` (as a user writes it) keeps the addresses of its name.
        let mut edited = c.clone();
        edited.spectrum_apps[0]
            .origin_dns
            .as_mut()
            .unwrap()
            .resolved
            .clear();
        edited.spectrum_apps[0].origin_port = Some("2223".parse().unwrap());
        prepare(&c, &mut edited, &r, 9_000).unwrap();
        let e = &edited.spectrum_apps[0];
        assert_eq!(e.origin_dns.as_ref().unwrap().resolved.len(), 2);
        assert_eq!(e.created_on.as_deref(), Some("1970-01-01T00:00:01Z"));
        assert_eq!(e.modified_on.as_deref(), Some("1970-01-01T00:00:09Z"));
    }

    #[test]
    fn a_name_that_does_not_resolve_is_refused_and_a_renamed_one_is_looked_up() {
        let r = Table::default();
        let mut c = unresolved();
        let err = prepare(&Config::default(), &mut c, &r, 0).unwrap_err();
        let e = err.iter().next().unwrap();
        assert_eq!(e.rule, Rule::OriginUnresolvable);
        assert!(
            e.to_string().contains("could not resolve origin to an IP"),
            "{e}"
        );
        // Only IPv6 addresses for type A: refused too.
        r.set("origin.example.com", &["2001:db8::9"]);
        let err = prepare(&Config::default(), &mut c, &r, 0).unwrap_err();
        assert!(err.to_string().contains("no IPv4 (A) address"), "{err}");

        r.set("origin.example.com", &["198.51.100.7"]);
        r.set("other.example.com", &["198.51.100.8"]);
        prepare(&Config::default(), &mut c, &r, 0).unwrap();
        // Renamed, with the old name's addresses still in the body: the new name is used.
        let mut renamed = c.clone();
        renamed.spectrum_apps[0].origin_dns.as_mut().unwrap().name = "other.example.com".into();
        prepare(&c, &mut renamed, &r, 0).unwrap();
        assert_eq!(
            renamed.spectrum_apps[0]
                .origin_dns
                .as_ref()
                .unwrap()
                .resolved[0]
                .to_string(),
            "198.51.100.8"
        );
    }
}
