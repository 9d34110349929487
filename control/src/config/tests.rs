//! One test per validation rule, each checking the key path and the message.

use super::*;

const LAB: &str = include_str!("../../testdata/edge-lab.toml");

fn lab() -> Config {
    Config::from_toml_str(LAB).unwrap_or_else(|e| panic!("the lab config must load:\n{e}"))
}

/// Loads `LAB` with `edit` applied and returns its errors.
fn errors(edit: impl FnOnce(&mut Config)) -> ConfigErrors {
    let mut c = lab();
    edit(&mut c);
    c.validate().expect_err("the edit must be refused")
}

fn has(errs: &ConfigErrors, path: &str, text: &str) {
    assert!(
        errs.0
            .iter()
            .any(|e| e.path == path && e.to_string().contains(text)),
        "expected an error at {path} containing {text:?}, got:\n{errs}"
    );
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

#[test]
fn the_contract_config_loads_compiles_and_builds() {
    let c = lab();
    assert_eq!(c.node.name, "edge-lab");
    assert_eq!(c.spectrum_apps.len(), 3);
    let compiled = c.compile(1).unwrap();
    assert_eq!(
        compiled
            .spec
            .apps
            .iter()
            .map(|a| a.slot)
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(compiled.spec.access_rules.len(), 2);
    assert_eq!(compiled.cookies.rotate_secs, 60);
    let t = fastpath::tables::Tables::build(&compiled.spec).unwrap();
    assert_eq!(t.version(), 1);
    let d = t.dest("203.0.113.12".parse().unwrap()).unwrap();
    assert_eq!(
        t.app_at(d, fastpath::tables::L4Proto::Tcp, 1500)
            .map(|a| t.apps[a as usize].id.as_str()),
        Some("range")
    );
}

#[test]
fn round_trips_through_toml() {
    let c = lab();
    let s = c.to_toml_string().unwrap();
    assert_eq!(Config::from_toml_str(&s).unwrap(), c);
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let e = Config::from_toml_str(&format!("{LAB}\n[cdn2]\nx = 1\n")).unwrap_err();
    assert!(e.to_string().contains("unknown field `cdn2`"), "{e}");
    assert!(e.0[0].path.starts_with("line "), "{e}");
    let e = Config::from_toml_str(
        &LAB.replace("ip_firewall = true", "ip_firewall = true\nfirewall = true"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown field `firewall`"), "{e}");
}

#[test]
fn prefix_too_long() {
    let e = errors(|c| c.prefixes[0].cidr = net("203.0.113.0/25"));
    has(&e, "prefixes[0].cidr", "/24 or shorter");
    let e = errors(|c| c.prefixes[1].cidr = net("2001:db8:100::/56"));
    has(&e, "prefixes[1].cidr", "/48 or shorter");
}

#[test]
fn host_bits_are_refused_with_the_truncated_form() {
    let e = errors(|c| c.prefixes[0].cidr = net("203.0.113.1/24"));
    has(&e, "prefixes[0].cidr", "did you mean 203.0.113.0/24");
}

#[test]
fn overlapping_prefixes() {
    let e = errors(|c| {
        c.prefixes.push(Prefix {
            cidr: net("203.0.0.0/16"),
            advertised: false,
            description: None,
        });
    });
    has(&e, "prefixes[2].cidr", "overlaps prefixes[0]");
}

#[test]
fn binding_outside_every_prefix() {
    let e = errors(|c| c.bindings[1].cidr = net("198.51.100.0/25"));
    has(&e, "bindings[1].cidr", "outside every onboarded prefix");
}

#[test]
fn advertised_prefix_without_default_binding() {
    let e = errors(|c| {
        c.bindings.remove(0);
        c.spectrum_apps.clear();
    });
    has(&e, "prefixes[0].cidr", "default binding spanning it whole");
}

#[test]
fn an_unadvertised_prefix_may_have_no_binding() {
    let mut c = lab();
    c.prefixes.push(Prefix {
        cidr: net("198.18.0.0/24"),
        advertised: false,
        description: Some("onboarding".into()),
    });
    c.validate().unwrap();
    let t = fastpath::tables::Tables::build(&c.compile(1).unwrap().spec).unwrap();
    let d = t.dest("198.18.0.1".parse().unwrap()).unwrap();
    assert!(t.binding(d).is_none());
}

#[test]
fn duplicate_bindings_and_ids() {
    let e = errors(|c| {
        let b = c.bindings[1].clone();
        c.bindings.push(b);
    });
    has(&e, "bindings[4].cidr", "bindings[1] binds the same range");
    let e = errors(|c| {
        c.bindings[0].id = Some("x".into());
        c.bindings[1].id = Some("x".into());
    });
    has(&e, "bindings[1].id", "same id");
}

#[test]
fn magic_transit_is_not_served() {
    let e =
        Config::from_toml_str(&LAB.replacen("service = \"cdn\"", "service = \"Magic Transit\"", 1))
            .unwrap_err();
    has(&e, "bindings[1].service", "not served by this edge");
    let e = Config::from_toml_str(&LAB.replacen("service = \"cdn\"", "service = \"ftp\"", 1))
        .unwrap_err();
    assert!(e.to_string().contains("unknown service"), "{e}");
}

#[test]
fn service_names_of_the_api_are_accepted() {
    let c =
        Config::from_toml_str(&LAB.replacen("service = \"cdn\"", "service = \"CDN\"", 1)).unwrap();
    assert_eq!(c.bindings[1].service, ServiceName::Cdn);
}

#[test]
fn two_apps_claiming_the_same_port() {
    let e = errors(|c| {
        let mut a = c.spectrum_apps[0].clone();
        a.id = Some("ssh2".into());
        a.protocol = "tcp/20-30".into();
        a.origin_direct = vec!["tcp://192.0.2.1:20-30".into()];
        c.spectrum_apps.push(a);
    });
    has(
        &e,
        "spectrum_apps[3].protocol",
        "apps \"ssh\" and \"ssh2\" both claim tcp/22 on 203.0.113.10",
    );
}

#[test]
fn range_edges_are_inclusive_for_conflicts() {
    let e = errors(|c| {
        let mut a = c.spectrum_apps[2].clone();
        a.id = Some("edge".into());
        a.protocol = "tcp/2000".into();
        a.origin_direct = vec!["tcp://192.0.2.3:80".into()];
        c.spectrum_apps.push(a);
    });
    has(&e, "spectrum_apps[3].protocol", "both claim tcp/2000");
    // Same port, other protocol: fine.
    let mut c = lab();
    let mut a = c.spectrum_apps[0].clone();
    a.id = Some("ssh-udp".into());
    a.protocol = "udp/22".into();
    a.origin_direct = vec!["udp://192.0.2.1:22".into()];
    c.spectrum_apps.push(a);
    c.validate().unwrap();
}

#[test]
fn edge_ip_outside_a_spectrum_binding() {
    let e =
        errors(|c| c.spectrum_apps[0].edge_ips.as_mut().unwrap().ips[0] = "203.0.113.200".into());
    has(
        &e,
        "spectrum_apps[0].edge_ips.ips[0]",
        "service cdn; edge IPs must be inside a spectrum binding",
    );
    let e =
        errors(|c| c.spectrum_apps[0].edge_ips.as_mut().unwrap().ips[0] = "198.51.100.1".into());
    has(&e, "spectrum_apps[0].edge_ips.ips[0]", "lies in no binding");
    let e = errors(|c| c.spectrum_apps[0].edge_ips.as_mut().unwrap().kind = "dynamic".into());
    has(&e, "spectrum_apps[0].edge_ips.type", "only static edge IPs");
}

#[test]
fn port_ranges_of_different_sizes() {
    let e = errors(|c| c.spectrum_apps[2].origin_direct[0] = "tcp://192.0.2.3:3000-3999".into());
    has(
        &e,
        "spectrum_apps[2].origin_direct[0]",
        "the edge has 1001 port(s) (1000-2000) but the origin 1000 (3000-3999)",
    );
    let e = errors(|c| c.spectrum_apps[2].origin_direct[0] = "tcp://192.0.2.3:3000".into());
    has(&e, "spectrum_apps[2].origin_direct[0]", "offset for offset");
}

#[test]
fn ports_out_of_range() {
    for (proto, text) in [
        ("tcp/0", "port 0 is out of range"),
        ("tcp/65536", "port 65536 is out of range"),
        ("tcp/20-10", "runs backwards"),
        ("sctp/5", "not tcp or udp"),
        ("tcp22", "expected PROTOCOL/PORT"),
    ] {
        let e = errors(|c| c.spectrum_apps[0].protocol = proto.into());
        has(&e, "spectrum_apps[0].protocol", text);
    }
    let e = errors(|c| c.cdn.tcp_ports.push(70000));
    has(&e, "cdn.tcp_ports[13]", "out of range");
    let e = errors(|c| c.cdn.udp_ports.push(443));
    has(&e, "cdn.udp_ports[1]", "listed twice");
}

#[test]
fn reserved_origins_need_a_delegation() {
    let e = errors(|c| c.spectrum_apps[1].origin_direct[0] = "udp://10.0.0.1:27015".into());
    has(
        &e,
        "spectrum_apps[1].origin_direct[0]",
        "RFC 1918 private-use 10.0.0.0/8",
    );
    has(
        &e,
        "spectrum_apps[1].origin_direct[0]",
        "[[origin_policy.delegations]] cidr = \"10.0.0.0/8\"",
    );
    // The lab's 192.0.2.0/24 origins are TEST-NET-1 and pass only thanks to the delegation.
    let e = errors(|c| c.origin_policy.delegations.clear());
    has(
        &e,
        "spectrum_apps[0].origin_direct[0]",
        "RFC 5737 documentation (TEST-NET-1)",
    );
}

#[test]
fn origins_inside_our_prefixes_need_a_delegation() {
    let e = errors(|c| c.spectrum_apps[0].origin_direct[0] = "tcp://[2001:db8:100:2::5]:22".into());
    has(
        &e,
        "spectrum_apps[0].origin_direct[0]",
        "inside our own prefix 2001:db8:100::/48",
    );
}

#[test]
fn an_edge_ip_is_never_an_origin_even_delegated() {
    let e = errors(|c| {
        c.spectrum_apps[0].origin_direct[0] = "tcp://203.0.113.12:22".into();
        c.origin_policy.delegations.push(Delegation {
            cidr: net("203.0.113.0/24"),
            notes: None,
        });
    });
    has(
        &e,
        "spectrum_apps[0].origin_direct[0]",
        "is a Spectrum edge IP",
    );
}

#[test]
fn origin_check_answers_like_the_addressing_api() {
    let c = lab();
    let a = origin_check(&c, net("192.0.2.1/32"));
    assert_eq!(
        (
            a.allowed,
            a.is_managed,
            a.is_delegated,
            a.is_reserved,
            a.has_binding
        ),
        (true, false, true, true, false)
    );
    let a = origin_check(&c, net("203.0.113.10/32"));
    assert_eq!(
        (a.allowed, a.is_managed, a.has_binding),
        (false, true, true)
    );
    let a = origin_check(&c, net("8.8.8.8/32"));
    assert!(a.allowed && !a.is_reserved && !a.is_managed);
    let json = serde_json::to_value(origin_check(&c, net("10.1.0.0/16"))).unwrap();
    assert_eq!(json["allowed"], false);
    assert_eq!(json["is_reserved"], true);
}

#[test]
fn origin_scheme_and_syntax() {
    let e = errors(|c| c.spectrum_apps[0].origin_direct[0] = "udp://192.0.2.1:22".into());
    has(
        &e,
        "spectrum_apps[0].origin_direct[0]",
        "must match the app's protocol: tcp://",
    );
    let e = errors(|c| c.spectrum_apps[0].origin_direct[0] = "tcp://2001:db8::1:22".into());
    has(&e, "spectrum_apps[0].origin_direct[0]", "in brackets");
    let e = errors(|c| c.spectrum_apps[0].origin_direct[0] = "tcp://origin.example.com:22".into());
    has(
        &e,
        "spectrum_apps[0].origin_direct[0]",
        "origins by name are not supported",
    );
    let e = errors(|c| c.spectrum_apps[0].origin_direct.clear());
    has(&e, "spectrum_apps[0].origin_direct", "at least one origin");
}

#[test]
fn proxy_protocol_per_transport() {
    let e = errors(|c| c.spectrum_apps[1].proxy_protocol = ProxyProtocolSetting::V1);
    has(&e, "spectrum_apps[1].proxy_protocol", "for TCP only");
    let e = errors(|c| c.spectrum_apps[0].proxy_protocol = ProxyProtocolSetting::Simple);
    has(&e, "spectrum_apps[0].proxy_protocol", "for UDP only");
    let e = errors(|c| c.spectrum_apps[1].traffic_type = TrafficTypeName::Http);
    has(&e, "spectrum_apps[1].traffic_type", "direct only");
}

#[test]
fn origin_dns_is_refused() {
    let e = errors(|c| {
        c.spectrum_apps[0].origin_dns = Some(OriginDns {
            name: "o.example.com".into(),
            ttl: Some(1200),
            kind: None,
        });
        c.spectrum_apps[0].origin_port = Some(PortOrRange::Port(22));
    });
    has(&e, "spectrum_apps[0].origin_dns", "use origin_direct");
    has(&e, "spectrum_apps[0].origin_port", "not supported here");
}

#[test]
fn apps_need_unique_ids() {
    let e = errors(|c| c.spectrum_apps[1].id = Some("ssh".into()));
    has(
        &e,
        "spectrum_apps[1].id",
        "spectrum_apps[0] has the same id",
    );
    let e = errors(|c| c.spectrum_apps[1].id = None);
    has(&e, "spectrum_apps[1].id", "needs an id");
}

#[test]
fn access_rule_values() {
    let e = errors(|c| c.access_rules[1].value = "198.51.100.7/32".into());
    has(&e, "access_rules[1].value", "use target = \"ip_range\"");
    let e = errors(|c| c.access_rules[0].value = "198.51.100.1/24".into());
    has(&e, "access_rules[0].value", "did you mean 198.51.100.0/24");
    let e = errors(|c| c.access_rules[0].target = RuleTarget::Country);
    has(&e, "access_rules[0].target", "need a prefix table");
    let e = errors(|c| {
        let r = c.access_rules[0].clone();
        c.access_rules.push(r);
    });
    has(
        &e,
        "access_rules[2].value",
        "access_rules[0] already covers exactly 198.51.100.0/24",
    );
}

#[test]
fn cdn_pool_members() {
    let e = errors(|c| c.cdn.pool.push("tcp://203.0.113.10:443".into()));
    has(&e, "cdn.pool[1]", "Spectrum edge IP");
    let e = errors(|c| c.cdn.pool.push("udp://192.0.2.9:443".into()));
    has(&e, "cdn.pool[1]", "tcp://IP:PORT");
    // L7 proxies on private addresses are fine.
    let mut c = lab();
    c.cdn.pool.push("tcp://10.1.2.3:443".into());
    c.validate().unwrap();
}

#[test]
fn settings_ranges_and_secret() {
    let e = errors(|c| c.syn_cookies.rotate_secs = 10);
    has(
        &e,
        "syn_cookies.rotate_secs",
        "below 60 a cookie could expire",
    );
    let e = errors(|c| c.syn_cookies.secret = Some("nothex-secret-value".into()));
    has(&e, "syn_cookies.secret", "64 hex digits");
    assert!(
        !e.to_string().contains("nothex"),
        "a secret is never echoed: {e}"
    );
    let e = errors(|c| c.flows.capacity = 1);
    has(&e, "flows.capacity", "out of range");
    let e = errors(|c| c.pipeline.batch_size = 0);
    has(&e, "pipeline.batch_size", "out of range");
    let e = errors(|c| c.workers.spectrum = 0);
    has(&e, "workers.spectrum", "out of range");
    let mut c = lab();
    c.syn_cookies.secret = Some("ab".repeat(32));
    assert_eq!(c.compile(1).unwrap().cookies.seed, Some([0xab; 32]));
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let e = errors(|c| {
        c.prefixes[0].cidr = net("203.0.113.0/25");
        c.spectrum_apps[0].protocol = "tcp/0".into();
        c.cdn.tcp_ports.push(0);
    });
    assert!(e.0.len() >= 3, "{e}");
}

#[test]
fn slots_stay_stable_across_edits() {
    let c = lab();
    let v1 = c.compile(1).unwrap();
    let mut c2 = c.clone();
    c2.spectrum_apps.remove(1); // "game" (slot 1) goes
    let mut n = c2.spectrum_apps[0].clone();
    n.id = Some("new".into());
    n.protocol = "tcp/2222".into();
    n.origin_direct = vec!["tcp://192.0.2.1:2222".into()];
    c2.spectrum_apps.push(n);
    let v2 = c2.compile_with(2, &Slots::of(&v1)).unwrap();
    let slots: Vec<(String, u32)> = v2
        .spec
        .apps
        .iter()
        .map(|a| (a.id.clone(), a.slot))
        .collect();
    assert_eq!(
        slots,
        vec![("ssh".into(), 0), ("range".into(), 2), ("new".into(), 1)]
    );
    assert_eq!(v2.spec.version, 2);
}

#[test]
fn seed_json_app_bodies_parse() {
    // Seed 001 (BYOIP with Spectrum): `proxy_protocol: false`, `spp`, `tls`, `dns`, `id`.
    let body = r#"{
        "id": "4590376cf2994d72cee36828ec4eff19",
        "protocol": "tcp/22",
        "dns": {"type": "ADDRESS", "name": "ssh.example.com"},
        "origin_direct": ["tcp://192.0.2.1:22"],
        "ip_firewall": true,
        "proxy_protocol": false,
        "spp": false,
        "tls": "off",
        "traffic_type": "direct",
        "edge_ips": {"type": "static", "ips": ["198.51.100.10", "2001:DB8::1"]}
    }"#;
    let a: SpectrumApp = serde_json::from_str(body).unwrap();
    assert_eq!(a.proxy_protocol, ProxyProtocolSetting::Off);
    assert_eq!(a.dns.as_ref().unwrap().name, "ssh.example.com");
    // Seed 003: dynamic edge IPs and Argo are accepted by the parser (validation refuses
    // dynamic IPs on this edge).
    let body = r#"{"protocol": "tcp/22", "dns": {"type": "CNAME", "name": "ssh.example.com"},
        "origin_direct": ["tcp://192.0.2.1:22"], "proxy_protocol": "off", "ip_firewall": true,
        "tls": "full", "edge_ips": {"type": "dynamic", "connectivity": "all"},
        "traffic_type": "direct", "argo_smart_routing": true,
        "created_on": "2014-01-02T02:20:00Z", "modified_on": "2014-01-02T02:20:00Z"}"#;
    let a: SpectrumApp = serde_json::from_str(body).unwrap();
    assert_eq!(a.argo_smart_routing, Some(true));
    // A binding body of seed 000 with the API's `service_name`.
    let b: Binding =
        serde_json::from_str(r#"{"cidr": "203.0.113.100/32", "service_name": "Spectrum"}"#)
            .unwrap();
    assert_eq!(b.service, ServiceName::Spectrum);
}
