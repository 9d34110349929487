//! Compiling a validated configuration into the data plane's spec and settings.

use std::collections::{BTreeMap, BTreeSet};

use fastpath::Service;
use fastpath::pipeline::PipelineConfig;
use fastpath::syncookie::CookieConfig;
use fastpath::tables::{
    AccessAction, AccessRuleSpec, AppSpec, BindingSpec, CdnSpec, MAX_SLOTS, OriginSpec, PrefixSpec,
    ProxyProtocol, TablesSpec, TrafficType, Unconfigured,
};
use fastpath::worker::WorkerConfig;
use ipnet::IpNet;

use super::validate::{effective_proxy, parse_origin, parse_protocol};
use super::{
    Config, ConfigError, ConfigErrors, ProxyProtocolSetting, RuleMode, RuleTarget, ServiceName,
    TrafficTypeName, UnconfiguredMode,
};

/// A configuration compiled for the data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// The node's name.
    pub node: String,
    /// The table spec.
    pub spec: TablesSpec,
    /// Pipeline settings.
    pub pipeline: PipelineConfig,
    /// SYN-cookie settings.
    pub cookies: CookieConfig,
    /// Worker settings.
    pub workers: WorkerConfig,
}

/// Stable numeric ids of apps and bindings across configuration versions: an app or binding
/// that still exists keeps its slot, a new one takes the lowest free slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots {
    /// App id → slot.
    pub apps: BTreeMap<String, u32>,
    /// Binding id → slot.
    pub bindings: BTreeMap<String, u32>,
}

impl Slots {
    /// The slots a compiled config uses.
    pub fn of(c: &Compiled) -> Slots {
        Slots {
            apps: c.spec.apps.iter().map(|a| (a.id.clone(), a.slot)).collect(),
            bindings: c
                .spec
                .bindings
                .iter()
                .map(|b| (b.id.clone(), b.slot))
                .collect(),
        }
    }
}

fn allocate(ids: &[String], prev: &BTreeMap<String, u32>) -> Option<Vec<u32>> {
    let keep: BTreeSet<u32> = ids.iter().filter_map(|id| prev.get(id).copied()).collect();
    let mut free = (0..MAX_SLOTS).filter(|s| !keep.contains(s));
    ids.iter()
        .map(|id| prev.get(id).copied().or_else(|| free.next()))
        .collect()
}

fn secret(s: &str) -> Result<[u8; 32], String> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(format!(
            "the secret must be 64 hex digits (32 bytes), got {} characters",
            s.len()
        ));
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let t = std::str::from_utf8(pair).map_err(|_| "the secret is not hex".to_string())?;
        out[i] = u8::from_str_radix(t, 16).map_err(|_| "the secret is not hex".to_string())?;
    }
    Ok(out)
}

/// The settings sections, validated by the data plane's own rules.
pub(super) fn settings(
    c: &Config,
) -> Result<(PipelineConfig, CookieConfig, WorkerConfig), Vec<ConfigError>> {
    let mut errs = Vec::new();
    let mut err = |path: String, value: String, message: String| {
        errs.push(ConfigError {
            path,
            value,
            message,
        })
    };
    let pipeline = PipelineConfig {
        batch_size: c.pipeline.batch_size,
        flow_capacity: c.flows.capacity,
        tcp_idle_secs: c.flows.tcp_idle_secs,
        udp_idle_secs: c.flows.udp_idle_secs,
        closing_secs: c.flows.closing_secs,
    };
    let section = |f: &str| {
        if f == "batch_size" {
            "pipeline"
        } else {
            "flows"
        }
    };
    let key = |f: &str| {
        if f == "flow_capacity" {
            "capacity".to_string()
        } else {
            f.to_string()
        }
    };
    if let Err(fastpath::pipeline::PipelineConfigError::OutOfRange {
        field,
        value,
        range,
    }) = pipeline.clone().validate()
    {
        err(
            format!("{}.{}", section(field), key(field)),
            value.to_string(),
            format!("out of range ({range})"),
        );
    }
    let seed = match c.syn_cookies.secret.as_deref().map(secret) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            // Never echo a secret.
            err("syn_cookies.secret".into(), "<redacted>".into(), e);
            None
        }
        None => None,
    };
    let cookies = CookieConfig {
        rotate_secs: c.syn_cookies.rotate_secs,
        seed,
        mss4: c.syn_cookies.mss,
        mss6: c.syn_cookies.mss6,
        wscale: c.syn_cookies.wscale,
        window: c.syn_cookies.window,
    };
    if let Err(fastpath::syncookie::CookieConfigError::OutOfRange {
        field,
        value,
        range,
    }) = cookies.clone().validate()
    {
        let hint = if field == "rotate_secs" {
            "; below 60 a cookie could expire before the client's ACK arrives"
        } else {
            ""
        };
        err(
            format!("syn_cookies.{field}"),
            value.to_string(),
            format!("out of range ({range}){hint}"),
        );
    }
    let workers = WorkerConfig {
        cdn: c.workers.cdn,
        spectrum: c.workers.spectrum,
        queue_depth: c.workers.queue_depth,
        flow_capacity: c.workers.flow_capacity,
    };
    if let Err(fastpath::worker::WorkerConfigError::OutOfRange {
        field,
        value,
        range,
    }) = workers.clone().validate()
    {
        err(
            format!("workers.{field}"),
            value.to_string(),
            format!("out of range ({range})"),
        );
    }
    if errs.is_empty() {
        Ok((pipeline, cookies, workers))
    } else {
        Err(errs)
    }
}

impl Config {
    /// Validates and compiles, numbering apps and bindings in order.
    ///
    /// # Errors
    /// Every validation error.
    pub fn compile(&self, version: u64) -> Result<Compiled, ConfigErrors> {
        self.compile_with(version, &Slots::default())
    }

    /// Validates and compiles, keeping the slots of `prev` for apps and bindings that still
    /// exist.
    ///
    /// # Errors
    /// Every validation error; more than 4096 apps or bindings.
    pub fn compile_with(&self, version: u64, prev: &Slots) -> Result<Compiled, ConfigErrors> {
        self.validate()?;
        let (pipeline, cookies, workers) = settings(self).map_err(ConfigErrors)?;
        let binding_ids: Vec<String> = self.bindings.iter().map(|b| b.id()).collect();
        let app_ids: Vec<String> = self
            .spectrum_apps
            .iter()
            .map(|a| a.id.clone().unwrap_or_default())
            .collect();
        let too_many =
            |what: &str| ConfigErrors::one(what, "", format!("more than {MAX_SLOTS} entries"));
        let bslots = allocate(&binding_ids, &prev.bindings).ok_or_else(|| too_many("bindings"))?;
        let aslots = allocate(&app_ids, &prev.apps).ok_or_else(|| too_many("spectrum_apps"))?;

        let prefixes = self
            .prefixes
            .iter()
            .map(|p| PrefixSpec {
                cidr: p.cidr.trunc(),
                advertised: p.advertised,
            })
            .collect();
        let bindings = self
            .bindings
            .iter()
            .zip(binding_ids)
            .zip(bslots)
            .map(|((b, id), slot)| BindingSpec {
                id,
                slot,
                cidr: b.cidr.trunc(),
                service: match b.service {
                    ServiceName::Cdn => Service::Cdn,
                    // Magic Transit is refused by validation.
                    ServiceName::Spectrum | ServiceName::MagicTransit => Service::Spectrum,
                },
                unconfigured: match b.unconfigured {
                    UnconfiguredMode::Drop => Unconfigured::Drop,
                    UnconfiguredMode::Reset => Unconfigured::Reset,
                },
            })
            .collect();
        let apps = self
            .spectrum_apps
            .iter()
            .zip(app_ids)
            .zip(aslots)
            .map(|((a, id), slot)| {
                // Validation guarantees these parse.
                let (proto, ports) = parse_protocol(&a.protocol).expect("validated protocol");
                AppSpec {
                    id,
                    slot,
                    proto,
                    ports,
                    edge_ips: a
                        .edge_ips
                        .as_ref()
                        .map(|e| e.ips.iter().filter_map(|s| s.parse().ok()).collect())
                        .unwrap_or_default(),
                    ip_firewall: a.ip_firewall,
                    origins: a
                        .origin_direct
                        .iter()
                        .filter_map(|o| parse_origin(o).ok())
                        .map(|(_, addr, ports)| OriginSpec { addr, ports })
                        .collect(),
                    proxy_protocol: match effective_proxy(a) {
                        ProxyProtocolSetting::Off => ProxyProtocol::Off,
                        ProxyProtocolSetting::V1 => ProxyProtocol::V1,
                        ProxyProtocolSetting::V2 => ProxyProtocol::V2,
                        ProxyProtocolSetting::Simple => ProxyProtocol::Simple,
                    },
                    traffic_type: match a.traffic_type {
                        TrafficTypeName::Direct => TrafficType::Direct,
                        TrafficTypeName::Http => TrafficType::Http,
                        TrafficTypeName::Https => TrafficType::Https,
                    },
                }
            })
            .collect();
        let access_rules = self
            .access_rules
            .iter()
            .filter_map(|r| {
                let cidr: IpNet = match r.target {
                    RuleTarget::Ip => IpNet::from(r.value.parse::<core::net::IpAddr>().ok()?),
                    RuleTarget::IpRange => r.value.parse::<IpNet>().ok()?.trunc(),
                    RuleTarget::Country | RuleTarget::Asn => return None,
                };
                Some(AccessRuleSpec {
                    id: r.id.clone().unwrap_or_else(|| r.value.clone()),
                    cidr,
                    action: match r.mode {
                        RuleMode::Allow => AccessAction::Allow,
                        RuleMode::Block => AccessAction::Block,
                    },
                })
            })
            .collect();
        let cdn = CdnSpec {
            tcp_ports: self.cdn.tcp_ports.iter().map(|p| *p as u16).collect(),
            udp_ports: self.cdn.udp_ports.iter().map(|p| *p as u16).collect(),
            https_only: self.cdn.https_only,
            pool: self
                .cdn
                .pool
                .iter()
                .filter_map(|p| parse_origin(p).ok())
                .map(|(_, ip, ports)| core::net::SocketAddr::new(ip, ports.lo))
                .collect(),
        };
        Ok(Compiled {
            node: self.node.name.clone(),
            spec: TablesSpec {
                version,
                prefixes,
                bindings,
                apps,
                cdn,
                access_rules,
            },
            pipeline,
            cookies,
            workers,
        })
    }
}
