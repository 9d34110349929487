//! Compilation of a valid [`Config`] into what the data plane runs: a [`TablesSpec`] and the
//! pipeline, SYN-cookie and worker settings.
//!
//! Per-app and per-binding counters are indexed by slot, so a slot must not change while its
//! app or binding exists. [`Slots`] carries the id → slot maps of the previous version: an id
//! that still exists keeps its slot, a new id takes the lowest free one, and a fresh load
//! numbers them in order. A slot freed in one version may be handed to a new id in the next;
//! whoever keeps per-slot history must reset it when the id at a slot changes.

use core::fmt;
use core::net::SocketAddr;
use std::collections::BTreeMap;

use fastpath::Service;
use fastpath::pipeline::PipelineConfig;
use fastpath::syncookie::CookieConfig;
use fastpath::tables::{
    AccessRuleSpec, AppSpec, BindingSpec, CdnSpec, MAX_SLOTS, OriginSpec, PortRange, PrefixSpec,
    TablesSpec,
};
use fastpath::worker::WorkerConfig;

use super::Config;
use super::error::{ConfigError, ConfigErrors, Rule};
use super::value::ServiceName;

/// Id → slot maps of one configuration version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots {
    /// App id → slot.
    pub apps: BTreeMap<String, u32>,
    /// Binding id → slot.
    pub bindings: BTreeMap<String, u32>,
}

impl Slots {
    /// The slots used by a compiled spec (the previous version, for the next compile).
    pub fn of(spec: &TablesSpec) -> Slots {
        Slots {
            apps: spec.apps.iter().map(|a| (a.id.clone(), a.slot)).collect(),
            bindings: spec
                .bindings
                .iter()
                .map(|b| (b.id.clone(), b.slot))
                .collect(),
        }
    }
}

/// Slots for `ids` (unique, at most [`MAX_SLOTS`] of them): the previous slot where there is
/// one, else the lowest free slot.
fn allocate(previous: &BTreeMap<String, u32>, ids: &[String]) -> Vec<u32> {
    let mut used = vec![false; MAX_SLOTS as usize];
    let mut out: Vec<Option<u32>> = ids
        .iter()
        .map(|id| {
            let s = *previous.get(id)?;
            let taken = used.get_mut(s as usize)?;
            if *taken {
                return None;
            }
            *taken = true;
            Some(s)
        })
        .collect();
    let mut free = used
        .iter()
        .enumerate()
        .filter(|(_, u)| !**u)
        .map(|(s, _)| s as u32);
    for slot in out.iter_mut().filter(|s| s.is_none()) {
        *slot = Some(free.next().expect("validation caps the count at MAX_SLOTS"));
    }
    out.into_iter().map(|s| s.unwrap_or(u32::MAX)).collect()
}

/// A compiled configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Compiled {
    /// `node.name`.
    pub node: String,
    /// The tables to build with [`fastpath::tables::Tables::build`].
    pub spec: TablesSpec,
    /// Pipeline and flow-table settings.
    pub pipeline: PipelineConfig,
    /// SYN-cookie settings (may hold the shared seed; `Debug` hides it).
    pub cookies: CookieConfig,
    /// Worker pool settings.
    pub workers: WorkerConfig,
    /// How the workers carry flows to origins (`[proxy]`, as validated).
    pub proxy: super::Proxy,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.cookies;
        f.debug_struct("Compiled")
            .field("node", &self.node)
            .field("spec", &self.spec)
            .field("pipeline", &self.pipeline)
            .field(
                "cookies",
                &format_args!(
                    "CookieConfig {{ rotate_secs: {}, seed: {}, previous_seed: {}, \
                     seed_from: {}, mss4: {:?}, mss6: {:?}, wscale: {}, window: {} }}",
                    c.rotate_secs,
                    if c.seed.is_some() {
                        "<redacted>"
                    } else {
                        "None"
                    },
                    if c.previous_seed.is_some() {
                        "<redacted>"
                    } else {
                        "None"
                    },
                    c.seed_from,
                    c.mss4,
                    c.mss6,
                    c.wscale,
                    c.window
                ),
            )
            .field("workers", &self.workers)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl Compiled {
    /// The id → slot maps, to pass to the next [`Config::compile`].
    pub fn slots(&self) -> Slots {
        Slots::of(&self.spec)
    }
}

fn ports(lo: u32, hi: u32) -> PortRange {
    // Validated: 1 <= lo <= hi <= 65535.
    PortRange {
        lo: lo as u16,
        hi: hi as u16,
    }
}

impl Config {
    /// Validates and compiles this configuration as version `version`, keeping the slots of
    /// apps and bindings that exist in `previous` (`&Slots::default()` for a first load).
    ///
    /// # Errors
    /// [`ConfigErrors`] from [`Config::validate`]; a config that validates always compiles,
    /// and its spec always builds.
    pub fn compile(&self, version: u64, previous: &Slots) -> Result<Compiled, ConfigErrors> {
        self.validate()?;
        let unresolved: Vec<ConfigError> = self
            .spectrum_apps
            .iter()
            .enumerate()
            .filter(|(_, a)| a.origin_dns.as_ref().is_some_and(|d| d.resolved.is_empty()))
            .map(|(i, a)| {
                ConfigError::new(
                    Rule::OriginUnresolvable,
                    format!("spectrum_apps[{i}].origin_dns.name"),
                    a.origin_dns.as_ref().map(|d| format!("{:?}", d.name)),
                    "could not resolve origin to an IP: the name has no address yet (the \
                     daemon resolves it when the app is applied; check the name and the \
                     system resolver)",
                )
            })
            .collect();
        if !unresolved.is_empty() {
            return Err(ConfigErrors::new(unresolved));
        }

        let binding_ids: Vec<String> = self.bindings.iter().map(|b| b.effective_id()).collect();
        let binding_slots = allocate(&previous.bindings, &binding_ids);
        let app_ids: Vec<String> = self.spectrum_apps.iter().map(|a| a.id.clone()).collect();
        let app_slots = allocate(&previous.apps, &app_ids);

        let spec = TablesSpec {
            version,
            prefixes: self
                .prefixes
                .iter()
                .map(|p| PrefixSpec {
                    cidr: p.cidr,
                    advertised: p.advertised,
                })
                .collect(),
            bindings: self
                .bindings
                .iter()
                .zip(binding_ids)
                .zip(&binding_slots)
                .map(|((b, id), &slot)| BindingSpec {
                    id,
                    slot,
                    cidr: b.cidr,
                    service: match b.service {
                        ServiceName::Cdn => Service::Cdn,
                        ServiceName::Spectrum => Service::Spectrum,
                        ServiceName::MagicTransit => unreachable!("refused by validation"),
                    },
                    unconfigured: b.unconfigured,
                })
                .collect(),
            apps: self
                .spectrum_apps
                .iter()
                .zip(&app_slots)
                .map(|(a, &slot)| AppSpec {
                    id: a.id.clone(),
                    slot,
                    proto: a.protocol.proto,
                    ports: ports(a.protocol.lo, a.protocol.hi),
                    edge_ips: a
                        .edge_ips
                        .as_ref()
                        .map(|e| e.ips.clone())
                        .unwrap_or_default(),
                    ip_firewall: a.ip_firewall,
                    origins: match (&a.origin_dns, a.origin_port) {
                        (Some(dns), Some(port)) => dns
                            .resolved
                            .iter()
                            .map(|&addr| OriginSpec {
                                addr,
                                ports: ports(port.lo, port.hi),
                            })
                            .collect(),
                        _ => a
                            .origin_direct
                            .iter()
                            .map(|o| OriginSpec {
                                addr: o.addr,
                                ports: ports(o.lo, o.hi),
                            })
                            .collect(),
                    },
                    proxy_protocol: a.effective_proxy_protocol(),
                    traffic_type: a.traffic_type,
                })
                .collect(),
            cdn: CdnSpec {
                tcp_ports: self.cdn.tcp_ports.iter().map(|&p| p as u16).collect(),
                udp_ports: self.cdn.udp_ports.iter().map(|&p| p as u16).collect(),
                https_only: self.cdn.https_only,
                pool: self
                    .cdn
                    .pool
                    .iter()
                    .map(|m| SocketAddr::new(m.addr, m.lo as u16))
                    .collect(),
                proxy_protocol: self.cdn.proxy_protocol,
            },
            access_rules: self
                .access_rules
                .iter()
                .map(|r| AccessRuleSpec {
                    id: r.effective_id(),
                    cidr: r.cidr().expect("validated").trunc(),
                    action: r.mode,
                })
                .collect(),
        };

        let f = &self.flows;
        let pipeline = PipelineConfig {
            batch_size: self.pipeline.batch_size,
            flow_capacity: f.capacity,
            tcp_idle_secs: f.tcp_idle_secs,
            udp_idle_secs: f.udp_idle_secs,
            closing_secs: f.closing_secs,
            handoff: false,
        };
        let s = &self.syn_cookies;
        let cookies = CookieConfig {
            rotate_secs: s.rotate_secs,
            seed: match &s.fleet_seed {
                // The file may have changed since validation: report it, never panic.
                Some(f) => Some(f.seed_bytes().map_err(|m| ConfigErrors {
                    file: None,
                    errors: vec![ConfigError::new(
                        Rule::Secret,
                        "syn_cookies.fleet_seed",
                        None,
                        format!("the fleet seed {m}"),
                    )],
                })?),
                None => s.secret.as_ref().map(|x| x.bytes().expect("validated")),
            },
            fleet: s.fleet_seed.is_some(),
            // Only with a fleet seed (validation refuses it otherwise).
            previous_seed: match (&s.fleet_seed, &s.previous_fleet_seed) {
                (Some(_), Some(p)) => Some(p.seed_bytes().map_err(|m| ConfigErrors {
                    file: None,
                    errors: vec![ConfigError::new(
                        Rule::Secret,
                        "syn_cookies.previous_fleet_seed",
                        None,
                        format!("the previous fleet seed {m}"),
                    )],
                })?),
                _ => None,
            },
            seed_from: s.fleet_seed_from.unwrap_or(0),
            mss4: s.mss,
            mss6: s.mss6,
            wscale: s.wscale,
            window: s.window,
        };
        let w = &self.workers;
        let workers = WorkerConfig {
            cdn: w.cdn,
            spectrum: w.spectrum,
            queue_depth: w.queue_depth,
            flow_capacity: w.flow_capacity,
        };
        Ok(Compiled {
            node: self.node.name.clone(),
            spec,
            pipeline,
            cookies,
            workers,
            proxy: self.proxy.clone(),
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::config::tests::{lab, load};

    #[test]
    fn allocate_keeps_old_slots_and_fills_the_lowest_hole() {
        let prev: BTreeMap<String, u32> =
            [("a".into(), 0), ("b".into(), 1), ("c".into(), 2)].into();
        let ids: Vec<String> = ["c", "d", "a", "e"].map(String::from).to_vec();
        assert_eq!(allocate(&prev, &ids), vec![2, 1, 0, 3]);
        assert_eq!(allocate(&BTreeMap::new(), &ids), vec![0, 1, 2, 3]);
        // A previous slot out of range is not reused.
        let bad: BTreeMap<String, u32> = [("a".into(), MAX_SLOTS)].into();
        assert_eq!(allocate(&bad, &["a".to_string()]), vec![0]);
    }

    #[test]
    fn slot_stability_across_an_edit() {
        let v1 = lab().compile(1, &Slots::default()).unwrap();
        let slot = |c: &Compiled, id: &str| c.spec.apps.iter().find(|a| a.id == id).unwrap().slot;
        assert_eq!(
            (slot(&v1, "ssh"), slot(&v1, "game"), slot(&v1, "range")),
            (0, 1, 2),
            "a fresh load numbers apps in order"
        );
        // Delete "game", add "dns" at the front of the list.
        let mut edited = lab();
        let game = edited.spectrum_apps.remove(1);
        let mut dns = game.clone();
        dns.id = "dns".into();
        dns.protocol = "udp/53".parse().unwrap();
        dns.origin_direct = vec!["udp://192.0.2.9:53".parse().unwrap()];
        edited.spectrum_apps.insert(0, dns);
        // And add a binding in front of the others.
        edited.bindings.insert(
            0,
            crate::config::Binding {
                id: Some("edge-ssh".into()),
                cidr: "203.0.113.10/32".parse().unwrap(),
                service: ServiceName::Spectrum,
                unconfigured: Default::default(),
            },
        );
        let v2 = edited.compile(2, &v1.slots()).unwrap();
        assert_eq!(slot(&v2, "ssh"), 0);
        assert_eq!(slot(&v2, "range"), 2);
        assert_eq!(slot(&v2, "dns"), 1, "the new app takes the freed slot");
        for b in &v1.spec.bindings {
            let now = v2.spec.bindings.iter().find(|x| x.id == b.id).unwrap();
            assert_eq!(now.slot, b.slot, "binding {} keeps its slot", b.id);
        }
        let new = v2
            .spec
            .bindings
            .iter()
            .find(|b| b.id == "edge-ssh")
            .unwrap();
        assert_eq!(new.slot, 4);
        assert_eq!(v2.spec.version, 2);
        fastpath::tables::Tables::build(&v2.spec).unwrap();
    }

    #[test]
    fn lab_compiles_into_the_expected_spec() {
        let c = lab().compile(7, &Slots::default()).unwrap();
        assert_eq!(c.node, "edge-lab");
        assert_eq!(c.spec.version, 7);
        assert_eq!(c.spec.prefixes.len(), 2);
        assert!(c.spec.prefixes.iter().all(|p| p.advertised));
        let ids: Vec<_> = c
            .spec
            .bindings
            .iter()
            .map(|b| (b.id.as_str(), b.slot))
            .collect();
        assert_eq!(
            ids,
            [
                ("203.0.113.0/24", 0),
                ("203.0.113.128/25", 1),
                ("2001:db8:100::/48", 2),
                ("2001:db8:100:1::/64", 3)
            ]
        );
        let range = &c.spec.apps[2];
        assert_eq!(range.ports, PortRange { lo: 1000, hi: 2000 });
        assert_eq!(range.origins[0].ports, PortRange { lo: 3000, hi: 4000 });
        assert_eq!(
            c.spec.apps[1].proxy_protocol,
            fastpath::tables::ProxyProtocol::Simple
        );
        assert_eq!(c.spec.cdn.udp_ports, [443]);
        assert_eq!(c.spec.cdn.pool, ["192.0.2.50:443".parse().unwrap()]);
        let rules: Vec<_> = c.spec.access_rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(rules, ["198.51.100.0/24", "198.51.100.7/32"]);
        assert_eq!(c.cookies.rotate_secs, 60);
        assert_eq!(c.pipeline, PipelineConfig::default());
        assert_eq!(c.workers, WorkerConfig::default());

        let t = fastpath::tables::Tables::build(&c.spec).unwrap();
        let d = t.dest("203.0.113.12".parse().unwrap()).unwrap();
        let app = t.app_at(d, fastpath::tables::L4Proto::Tcp, 1500).unwrap();
        assert_eq!(t.apps[app as usize].id, "range");
        assert_eq!(t.version(), 7);
    }

    #[test]
    fn settings_and_secret_compile() {
        let c = load(&format!(
            "{}\n[pipeline]\nbatch_size = 32\n[flows]\ncapacity = 1024\ntcp_idle_secs = 60\n\
             [workers]\ncdn = 2\nspectrum = 3\n",
            crate::config::tests::LAB.replace(
                "rotate_secs = 60",
                &format!(
                    "rotate_secs = 120\nsecret = \"{}\"\nmss = 1400",
                    "ab".repeat(32)
                )
            )
        ))
        .compile(1, &Slots::default())
        .unwrap();
        assert_eq!(c.cookies.seed, Some([0xab; 32]));
        assert_eq!(c.cookies.rotate_secs, 120);
        assert_eq!(c.cookies.mss4, Some(1400));
        assert_eq!(c.pipeline.batch_size, 32);
        assert_eq!(c.pipeline.flow_capacity, 1024);
        assert_eq!(c.pipeline.tcp_idle_secs, 60);
        assert_eq!((c.workers.cdn, c.workers.spectrum), (2, 3));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("171") && dbg.contains("<redacted>"), "{dbg}");
    }
}
