//! Where a flow goes: the origins of its Spectrum app (port-range offset applied), or the CDN
//! pool member Maglev picks, derived once per configuration version from the published tables.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use fastpath::flow::FlowKey;
use fastpath::tables::{AccessAction, L4Proto, ProxyProtocol, Tables};
use fastpath::verdict::Service;
use fastpath::worker::NO_APP;

use crate::maglev::Maglev;

/// One configuration version's destinations.
#[derive(Debug)]
pub struct Targets {
    /// The tables they were derived from.
    pub tables: Arc<Tables>,
    /// Spectrum apps by slot: index into `tables.apps`.
    apps: HashMap<u32, usize>,
    /// The CDN pool's Maglev table.
    maglev: Maglev,
}

/// Where one new flow goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The origins (or pool members) to try, in order; the first that accepts serves the flow.
    pub candidates: Vec<SocketAddr>,
    /// The header to write first.
    pub proxy_protocol: ProxyProtocol,
    /// The app's id (Spectrum), for logs.
    pub app: Option<String>,
}

impl Targets {
    /// Derives the destinations of `tables`.
    pub fn new(tables: Arc<Tables>) -> Targets {
        let apps = tables
            .apps
            .iter()
            .enumerate()
            .map(|(i, a)| (a.slot, i))
            .collect();
        let maglev = Maglev::new(&tables.cdn.spec.pool);
        Targets {
            tables,
            apps,
            maglev,
        }
    }

    /// The configuration version.
    pub fn version(&self) -> u64 {
        self.tables.version()
    }

    /// Where a new flow of `service` (`app_slot` for Spectrum) goes; `None` when its app is
    /// gone, the CDN pool is empty, or the protocol does not match.
    pub fn target(
        &self,
        service: Service,
        app_slot: u32,
        key: &FlowKey,
        hash: u64,
    ) -> Option<Target> {
        match service {
            Service::Cdn => {
                if self.maglev.backends().is_empty() {
                    return None;
                }
                Some(Target {
                    candidates: self
                        .maglev
                        .candidates(hash)
                        .map(|i| self.maglev.backends()[i])
                        .collect(),
                    proxy_protocol: self.tables.cdn.spec.proxy_protocol,
                    app: None,
                })
            }
            Service::Spectrum => {
                let app = &self.tables.apps[*self.apps.get(&app_slot)?];
                if app.proto.number() != key.proto || !app.ports.contains(key.dport) {
                    return None;
                }
                let k = key.dport - app.ports.lo;
                let n = app.origins.len();
                if n == 0 {
                    return None;
                }
                let first = (hash % n as u64) as usize;
                let candidates = (0..n)
                    .map(|i| {
                        let o = &app.origins[(first + i) % n];
                        SocketAddr::new(o.addr, o.ports.lo.saturating_add(k))
                    })
                    .collect();
                Some(Target {
                    candidates,
                    proxy_protocol: app.proxy_protocol,
                    app: Some(app.id.clone()),
                })
            }
        }
    }

    /// Whether an open connection to `origin` may keep running under this version: its app
    /// (or the CDN pool) still has that origin for its port.
    pub fn still_serves(
        &self,
        service: Service,
        app_slot: u32,
        key: &FlowKey,
        origin: SocketAddr,
    ) -> bool {
        match service {
            Service::Cdn => self.maglev.backends().contains(&origin),
            Service::Spectrum => self
                .target(service, app_slot, key, 0)
                .is_some_and(|t| t.candidates.contains(&origin)),
        }
    }

    /// Whether the access rules now block the client of an open connection (CDN always,
    /// Spectrum apps with `ip_firewall`).
    pub fn blocks(&self, service: Service, app_slot: u32, key: &FlowKey) -> bool {
        let firewall = match service {
            Service::Cdn => true,
            Service::Spectrum => self
                .apps
                .get(&app_slot)
                .is_some_and(|&i| self.tables.apps[i].ip_firewall),
        };
        firewall
            && self
                .tables
                .access_rule(key.src_addr())
                .and_then(|i| self.tables.access_rules.get(i as usize))
                .is_some_and(|r| r.action == AccessAction::Block)
    }

    /// The protocol of an app slot (`None` for the CDN or an unknown slot).
    pub fn app_proto(&self, app_slot: u32) -> Option<L4Proto> {
        if app_slot == NO_APP {
            return None;
        }
        self.apps.get(&app_slot).map(|&i| self.tables.apps[i].proto)
    }

    /// The id of an app slot.
    pub fn app_id(&self, app_slot: u32) -> Option<&str> {
        self.apps
            .get(&app_slot)
            .map(|&i| self.tables.apps[i].id.as_str())
    }
}
