//! One test per validation rule: each asserts the key path, the value and what the message
//! tells the user to do. Accepted variants are compiled and built, to prove they run.

use crate::config::tests::{LAB, builds, lab, load, one, refuse, refuse_lab};
use crate::config::{Config, Rule};

/// The lab config plus `extra` TOML at the end.
fn lab_plus(extra: &str) -> String {
    format!("{LAB}\n{extra}")
}

/// An extra app on the lab config.
fn app(body: &str) -> String {
    lab_plus(&format!("[[spectrum_apps]]\n{body}"))
}

// ---- rule 2: prefixes ----

#[test]
fn prefix_longer_than_24_or_48_is_refused() {
    let e = refuse_lab(
        "cidr = \"203.0.113.0/24\"          #",
        "cidr = \"203.0.113.0/25\" #",
    );
    one(
        &e,
        Rule::PrefixTooLong,
        "prefixes[0].cidr",
        Some("\"203.0.113.0/25\""),
        &["/24 or shorter", "\"203.0.113.0/24\"", "[[bindings]]"],
    );
    let e = refuse_lab(
        "cidr = \"2001:db8:100::/48\"\n\n",
        "cidr = \"2001:db8:100::/56\"\n\n",
    );
    one(
        &e,
        Rule::PrefixTooLong,
        "prefixes[1].cidr",
        Some("\"2001:db8:100::/56\""),
        &["IPv6", "/48 or shorter", "\"2001:db8:100::/48\""],
    );
    // Shorter is fine.
    let c = load(
        &LAB.replacen("\"203.0.113.0/24\"          #", "\"203.0.112.0/23\" #", 1)
            .replacen(
                "cidr = \"203.0.113.0/24\"\nservice",
                "cidr = \"203.0.112.0/23\"\nservice",
                1,
            ),
    );
    builds(&c);
}

#[test]
fn host_bits_in_any_cidr_suggest_the_truncated_form() {
    let e = refuse(
        &LAB.replacen(
            "cidr = \"203.0.113.0/24\"          #",
            "cidr = \"203.0.113.7/24\" #",
            1,
        )
        .replace("cidr = \"203.0.113.128/25\"", "cidr = \"203.0.113.129/25\"")
        .replace("value = \"198.51.100.0/24\"", "value = \"198.51.100.1/24\"")
        .replace("cidr = \"192.0.2.0/24\"", "cidr = \"192.0.2.9/24\""),
    );
    one(
        &e,
        Rule::HostBits,
        "prefixes[0].cidr",
        Some("\"203.0.113.7/24\""),
        &["host bits", "did you mean \"203.0.113.0/24\"?"],
    );
    one(
        &e,
        Rule::HostBits,
        "bindings[1].cidr",
        Some("\"203.0.113.129/25\""),
        &["did you mean \"203.0.113.128/25\"?"],
    );
    one(
        &e,
        Rule::HostBits,
        "access_rules[0].value",
        Some("\"198.51.100.1/24\""),
        &["did you mean \"198.51.100.0/24\"?"],
    );
    one(
        &e,
        Rule::HostBits,
        "origin_policy.delegations[0].cidr",
        Some("\"192.0.2.9/24\""),
        &["did you mean \"192.0.2.0/24\"?"],
    );
    assert_eq!(
        e.len(),
        4,
        "reported once each, not again by the rules that follow:\n{e}"
    );
}

#[test]
fn overlapping_prefixes_are_refused() {
    let e = refuse(&lab_plus(
        "[[prefixes]]\ncidr = \"203.0.112.0/23\"\n[[prefixes]]\ncidr = \"2001:db8:100::/48\"\n",
    ));
    one(
        &e,
        Rule::PrefixOverlap,
        "prefixes[2].cidr",
        Some("\"203.0.112.0/23\""),
        &["overlaps prefixes[0] = \"203.0.113.0/24\"", "disjoint"],
    );
    one(
        &e,
        Rule::PrefixOverlap,
        "prefixes[3].cidr",
        Some("\"2001:db8:100::/48\""),
        &["duplicate of prefixes[1]"],
    );
    // Adjacent prefixes do not overlap.
    let src = lab_plus(
        "[[prefixes]]\ncidr = \"203.0.112.0/24\"\n[[bindings]]\ncidr = \"203.0.112.0/24\"\nservice = \"cdn\"\n",
    );
    builds(&load(&src));
}

// ---- rule 3: bindings ----

#[test]
fn binding_outside_every_prefix_is_refused() {
    let e = refuse(&lab_plus(
        "[[bindings]]\ncidr = \"198.18.0.0/24\"\nservice = \"cdn\"\n",
    ));
    one(
        &e,
        Rule::BindingOutsidePrefix,
        "bindings[4].cidr",
        Some("\"198.18.0.0/24\""),
        &[
            "outside every onboarded prefix",
            "onboarded: 203.0.113.0/24, 2001:db8:100::/48",
            "[[prefixes]]",
        ],
    );
    // Wider than the prefix is outside it too.
    let e = refuse(&lab_plus(
        "[[bindings]]\ncidr = \"203.0.112.0/23\"\nservice = \"cdn\"\n",
    ));
    one(
        &e,
        Rule::BindingOutsidePrefix,
        "bindings[4].cidr",
        Some("\"203.0.112.0/23\""),
        &[],
    );
}

#[test]
fn duplicate_binding_cidrs_are_refused() {
    let e = refuse(&lab_plus(
        "[[bindings]]\ncidr = \"203.0.113.128/25\"\nservice = \"spectrum\"\n",
    ));
    one(
        &e,
        Rule::DuplicateBinding,
        "bindings[4].cidr",
        Some("\"203.0.113.128/25\""),
        &["duplicate of bindings[1]", "narrower"],
    );
    assert_eq!(e.len(), 1, "{e}");
}

#[test]
fn advertised_prefix_needs_a_default_binding() {
    // Remove the default binding of 203.0.113.0/24 (the /25 CDN binding stays).
    let e = refuse(&LAB.replacen(
        "[[bindings]]                      # service bindings; longest prefix wins\ncidr = \"203.0.113.0/24\"\nservice = \"spectrum\"              # default binding spanning the whole prefix\n",
        "",
        1,
    ));
    let err = one(
        &e,
        Rule::NoDefaultBinding,
        "prefixes[0]",
        Some("\"203.0.113.0/24\""),
        &[
            "blackholed",
            "add [[bindings]] cidr = \"203.0.113.0/24\" service = \"cdn\" (or \"spectrum\")",
            "advertised = false",
        ],
    );
    assert_eq!(err.line, Some(7), "{err}");
}

#[test]
fn binding_service_must_be_cdn_or_spectrum() {
    let e = refuse_lab(
        "service = \"cdn\"\nunconfigured",
        "service = \"magic_transit\"\nunconfigured",
    );
    one(
        &e,
        Rule::UnsupportedService,
        "bindings[1].service",
        Some("\"magic_transit\""),
        &["not supported by this edge", "\"cdn\" or \"spectrum\""],
    );
    let e = refuse_lab(
        "service = \"cdn\"\nunconfigured",
        "service = \"waf\"\nunconfigured",
    );
    one(
        &e,
        Rule::InvalidValue,
        "bindings[1].service",
        Some("\"waf\""),
        &["\"cdn\" or \"spectrum\""],
    );
}

#[test]
fn binding_ids_are_plain_and_unique() {
    let src = LAB
        .replacen(
            "cidr = \"203.0.113.128/25\"",
            "id = \"upper\"\ncidr = \"203.0.113.128/25\"",
            1,
        )
        .replacen(
            "cidr = \"2001:db8:100::/48\"\nservice",
            "id = \"upper\"\ncidr = \"2001:db8:100::/48\"\nservice",
            1,
        )
        .replacen(
            "cidr = \"2001:db8:100:1::/64\"",
            "id = \"v6 spectrum\"\ncidr = \"2001:db8:100:1::/64\"",
            1,
        );
    let e = refuse(&src);
    one(
        &e,
        Rule::BadId,
        "bindings[2].id",
        Some("\"upper\""),
        &["already used by bindings[1]"],
    );
    one(
        &e,
        Rule::BadId,
        "bindings[3].id",
        Some("\"v6 spectrum\""),
        &["letters, digits"],
    );
}

#[test]
fn too_many_bindings_are_refused() {
    let mut src = String::from("[[prefixes]]\ncidr = \"2001:db8:100::/48\"\n");
    for i in 0..=fastpath::tables::MAX_SLOTS {
        let cidr = if i == 0 {
            "2001:db8:100::/48".to_string()
        } else {
            format!("2001:db8:100::{i:x}/128")
        };
        src.push_str(&format!(
            "[[bindings]]\ncidr = \"{cidr}\"\nservice = \"cdn\"\n"
        ));
    }
    let e = refuse(&src);
    one(
        &e,
        Rule::TooMany,
        "bindings",
        None,
        &["4097 bindings", "4096 binding slots"],
    );
}

// ---- rule 4: spectrum apps ----

#[test]
fn protocol_ports_must_be_1_to_65535() {
    let e = refuse(
        &LAB.replace("protocol = \"tcp/22\"", "protocol = \"tcp/0\"")
            .replace("protocol = \"udp/27015\"", "protocol = \"udp/70000\""),
    );
    one(
        &e,
        Rule::BadPort,
        "spectrum_apps[0].protocol",
        Some("\"tcp/0\""),
        &["port 0", "1..=65535"],
    );
    one(
        &e,
        Rule::BadPort,
        "spectrum_apps[1].protocol",
        Some("\"udp/70000\""),
        &["port 70000 is out of range"],
    );
}

#[test]
fn protocol_range_must_not_be_backwards() {
    let e = refuse_lab(
        "protocol = \"tcp/1000-2000\"",
        "protocol = \"tcp/2000-1000\"",
    );
    one(
        &e,
        Rule::BadPort,
        "spectrum_apps[2].protocol",
        Some("\"tcp/2000-1000\""),
        &["backwards", "did you mean \"tcp/1000-2000\"?"],
    );
}

#[test]
fn protocol_must_be_tcp_or_udp_with_ports() {
    let e = refuse_lab("protocol = \"tcp/22\"", "protocol = \"sctp/22\"");
    one(
        &e,
        Rule::InvalidValue,
        "spectrum_apps[0].protocol",
        Some("\"sctp/22\""),
        &[
            "unknown protocol `sctp`",
            "\"tcp/PORT\", \"tcp/LO-HI\", \"udp/PORT\" or \"udp/LO-HI\"",
        ],
    );
}

#[test]
fn dynamic_edge_ips_need_a_pool_and_static_ones_need_ips() {
    let e = refuse_lab(
        "edge_ips = { type = \"static\", ips = [\"203.0.113.11\"] }",
        "edge_ips = { type = \"dynamic\", connectivity = \"all\" }",
    );
    one(
        &e,
        Rule::EdgeIps,
        "spectrum_apps[1].edge_ips.type",
        Some("\"dynamic\""),
        &["dynamic_pool, which is empty", "type = \"static\""],
    );
    // No edge_ips at all: dynamic, as in the public API.
    let e = refuse_lab(
        "edge_ips = { type = \"static\", ips = [\"203.0.113.11\"] }\n",
        "",
    );
    one(
        &e,
        Rule::EdgeIps,
        "spectrum_apps[1].edge_ips.type",
        Some("\"dynamic\""),
        &["dynamic_pool, which is empty"],
    );
    let e = refuse_lab(
        "edge_ips = { type = \"static\", ips = [\"203.0.113.11\"] }",
        "edge_ips = { type = \"dynamic\", connectivity = \"both\" }",
    );
    one(
        &e,
        Rule::EdgeIps,
        "spectrum_apps[1].edge_ips.connectivity",
        Some("\"both\""),
        &["expected \"all\""],
    );
    let e = refuse_lab(
        "edge_ips = { type = \"static\", ips = [\"203.0.113.11\"] }",
        "edge_ips = { type = \"static\" }",
    );
    one(
        &e,
        Rule::EdgeIps,
        "spectrum_apps[1].edge_ips.ips",
        None,
        &["at least one edge IP"],
    );
}

#[test]
fn edge_ip_must_be_in_a_spectrum_binding() {
    let e = refuse_lab(
        "ips = [\"203.0.113.11\"]",
        "ips = [\"203.0.113.200\", \"192.0.2.5\", \"2001:db8:100:2::1\", \"203.0.113.200\"]",
    );
    one(
        &e,
        Rule::EdgeIpNotSpectrum,
        "spectrum_apps[1].edge_ips.ips[0]",
        Some("\"203.0.113.200\""),
        &[
            "bound to cdn by bindings[1] = \"203.0.113.128/25\"",
            "add [[bindings]] cidr = \"203.0.113.200/32\" service = \"spectrum\"",
        ],
    );
    one(
        &e,
        Rule::EdgeIpNotSpectrum,
        "spectrum_apps[1].edge_ips.ips[1]",
        Some("\"192.0.2.5\""),
        &["outside every binding"],
    );
    one(
        &e,
        Rule::EdgeIpNotSpectrum,
        "spectrum_apps[1].edge_ips.ips[2]",
        Some("\"2001:db8:100:2::1\""),
        &["bound to cdn by bindings[2] = \"2001:db8:100::/48\""],
    );
    one(
        &e,
        Rule::EdgeIpNotSpectrum,
        "spectrum_apps[1].edge_ips.ips[3]",
        Some("\"203.0.113.200\""),
        &["listed twice"],
    );
    // A /32 Spectrum binding inside the CDN /25 makes it valid (longest prefix wins).
    let src = LAB.replacen("ips = [\"203.0.113.11\"]", "ips = [\"203.0.113.200\"]", 1)
        + "\n[[bindings]]\ncidr = \"203.0.113.200/32\"\nservice = \"spectrum\"\n";
    builds(&load(&src));
}

#[test]
fn two_apps_claiming_the_same_port_are_refused() {
    // Ranges overlap inclusively: 2000 is the last port of "range".
    let e = refuse(&app(
        "id = \"late\"\nprotocol = \"tcp/2000-2100\"\nedge_ips = { type = \"static\", ips = [\"203.0.113.12\"] }\norigin_direct = [\"tcp://192.0.2.4:2000-2100\"]\n",
    ));
    one(
        &e,
        Rule::PortConflict,
        "spectrum_apps[3].protocol",
        Some("\"tcp/2000-2100\""),
        &[
            "tcp port 2000 on 203.0.113.12",
            "app \"range\" (spectrum_apps[2], tcp/1000-2000)",
        ],
    );
    assert_eq!(e.len(), 1, "{e}");
    // Same port, other protocol or other address: fine.
    let ok = app(
        "id = \"udp22\"\nprotocol = \"udp/22\"\nedge_ips = { type = \"static\", ips = [\"203.0.113.10\"] }\norigin_direct = [\"udp://192.0.2.4:22\"]\n\
         [[spectrum_apps]]\nid = \"ssh2\"\nprotocol = \"tcp/22\"\nedge_ips = { type = \"static\", ips = [\"203.0.113.13\"] }\norigin_direct = [\"tcp://192.0.2.4:22\"]\n",
    );
    builds(&load(&ok));
}

#[test]
fn app_ids_are_required_and_unique() {
    let e = refuse_lab("id = \"game\"", "id = \"ssh\"");
    one(
        &e,
        Rule::BadId,
        "spectrum_apps[1].id",
        Some("\"ssh\""),
        &["already used by spectrum_apps[0]"],
    );
    let e = refuse_lab("id = \"game\"\n", "");
    one(
        &e,
        Rule::BadId,
        "spectrum_apps[1].id",
        None,
        &["every app needs an id"],
    );
    let e = refuse_lab("id = \"game\"", "id = \"my game\"");
    one(
        &e,
        Rule::BadId,
        "spectrum_apps[1].id",
        Some("\"my game\""),
        &["letters, digits"],
    );
}

#[test]
fn origin_direct_must_not_be_empty() {
    let e = refuse_lab(
        "origin_direct = [\"tcp://192.0.2.3:3000-4000\"]",
        "origin_direct = []",
    );
    one(
        &e,
        Rule::Origin,
        "spectrum_apps[2].origin_direct",
        None,
        &[
            "at least one origin",
            "origin_direct = [\"tcp://192.0.2.1:1000-2000\"]",
        ],
    );
}

#[test]
fn origin_scheme_must_match_protocol() {
    let e = refuse_lab(
        "origin_direct = [\"udp://192.0.2.2:27015\"]",
        "origin_direct = [\"tcp://192.0.2.2:27015\"]",
    );
    one(
        &e,
        Rule::Origin,
        "spectrum_apps[1].origin_direct[0]",
        Some("\"tcp://192.0.2.2:27015\""),
        &[
            "scheme tcp:// does not match the app's protocol udp/27015",
            "write \"udp://192.0.2.2:27015\"",
        ],
    );
}

#[test]
fn ipv6_origins_go_in_brackets() {
    let e = refuse_lab("\"tcp://192.0.2.1:22\"", "\"tcp://2001:db8:1::1:22\"");
    one(
        &e,
        Rule::InvalidValue,
        "spectrum_apps[0].origin_direct[0]",
        Some("\"tcp://2001:db8:1::1:22\""),
        &["brackets", "\"tcp://[2001:db8:1::1]:22\""],
    );
    // Bracketed and delegated: accepted.
    let src = LAB.replacen("\"tcp://192.0.2.1:22\"", "\"tcp://[2001:db8:1::1]:22\"", 1)
        + "\n[[origin_policy.delegations]]\ncidr = \"2001:db8:1::/48\"\n";
    builds(&load(&src));
}

#[test]
fn origin_ports_must_match_edge_ports() {
    let e = refuse_lab("\"tcp://192.0.2.1:22\"", "\"tcp://192.0.2.1:22-23\"");
    one(
        &e,
        Rule::Origin,
        "spectrum_apps[0].origin_direct[0]",
        Some("\"tcp://192.0.2.1:22-23\""),
        &[
            "a single edge port (tcp/22) maps to a single origin port",
            "\"tcp://192.0.2.1:22\"",
        ],
    );
    let e = refuse_lab("\"tcp://192.0.2.3:3000-4000\"", "\"tcp://192.0.2.3:3000\"");
    one(
        &e,
        Rule::Origin,
        "spectrum_apps[2].origin_direct[0]",
        Some("\"tcp://192.0.2.3:3000\""),
        &[
            "the edge range tcp/1000-2000 has 1001 ports, the origin a single one",
            "e.g. \"tcp://192.0.2.3:3000-4000\"",
        ],
    );
    let e = refuse_lab(
        "\"tcp://192.0.2.3:3000-4000\"",
        "\"tcp://192.0.2.3:3000-3999\"",
    );
    one(
        &e,
        Rule::Origin,
        "spectrum_apps[2].origin_direct[0]",
        Some("\"tcp://192.0.2.3:3000-3999\""),
        &["has 1001 ports, the origin 1000"],
    );
    let e = refuse_lab("\"tcp://192.0.2.1:22\"", "\"tcp://192.0.2.1:0\"");
    one(
        &e,
        Rule::BadPort,
        "spectrum_apps[0].origin_direct[0]",
        Some("\"tcp://192.0.2.1:0\""),
        &["port 0"],
    );
}

#[test]
fn duplicate_origins_are_refused() {
    let e = refuse_lab(
        "[\"tcp://192.0.2.1:22\"]",
        "[\"tcp://192.0.2.1:22\", \"tcp://192.0.2.1:22\"]",
    );
    one(
        &e,
        Rule::Origin,
        "spectrum_apps[0].origin_direct[1]",
        Some("\"tcp://192.0.2.1:22\""),
        &["listed twice"],
    );
}

#[test]
fn proxy_protocol_must_fit_the_protocol() {
    let e = refuse(
        &LAB.replace("proxy_protocol = \"simple\"", "proxy_protocol = \"v1\"")
            .replace("proxy_protocol = \"v2\"", "proxy_protocol = \"simple\""),
    );
    one(
        &e,
        Rule::ProxyProtocol,
        "spectrum_apps[1].proxy_protocol",
        Some("\"v1\""),
        &["TCP only", "\"v2\" or \"simple\""],
    );
    one(
        &e,
        Rule::ProxyProtocol,
        "spectrum_apps[2].proxy_protocol",
        Some("\"simple\""),
        &["UDP only", "\"v1\" or \"v2\""],
    );
    // Booleans as in the public API: true = v1 (refused on UDP), false = off.
    let e = refuse_lab("proxy_protocol = \"simple\"", "proxy_protocol = true");
    one(
        &e,
        Rule::ProxyProtocol,
        "spectrum_apps[1].proxy_protocol",
        Some("\"v1\""),
        &["TCP only"],
    );
    let c = load(&LAB.replace("proxy_protocol = \"off\"", "proxy_protocol = true"));
    assert_eq!(
        c.spectrum_apps[0].proxy_protocol,
        fastpath::tables::ProxyProtocol::V1
    );
    builds(&c);
    let c = load(&LAB.replace("proxy_protocol = \"simple\"", "proxy_protocol = false"));
    assert_eq!(
        c.spectrum_apps[1].proxy_protocol,
        fastpath::tables::ProxyProtocol::Off
    );
}

#[test]
fn spp_is_an_alias_for_simple() {
    let c = load(&LAB.replace("proxy_protocol = \"simple\"", "spp = true"));
    let spec = c.compile(1, &Default::default()).unwrap().spec;
    assert_eq!(
        spec.apps[1].proxy_protocol,
        fastpath::tables::ProxyProtocol::Simple
    );
    let e = refuse_lab(
        "proxy_protocol = \"simple\"",
        "proxy_protocol = \"v2\"\nspp = true",
    );
    one(
        &e,
        Rule::ProxyProtocol,
        "spectrum_apps[1].spp",
        Some("true"),
        &[
            "spp = true means proxy_protocol = \"simple\"",
            "proxy_protocol = \"v2\"",
        ],
    );
    let e = refuse_lab("proxy_protocol = \"off\"", "spp = true");
    one(
        &e,
        Rule::ProxyProtocol,
        "spectrum_apps[0].spp",
        Some("true"),
        &["UDP only"],
    );
}

#[test]
fn traffic_type_http_is_tcp_only() {
    let e = refuse_lab(
        "proxy_protocol = \"simple\"",
        "proxy_protocol = \"simple\"\ntraffic_type = \"https\"",
    );
    one(
        &e,
        Rule::TrafficType,
        "spectrum_apps[1].traffic_type",
        Some("\"https\""),
        &["TCP apps only", "\"direct\""],
    );
    // A TCP app: refused too, naming what this edge does instead.
    let e = refuse_lab("traffic_type = \"direct\"", "traffic_type = \"http\"");
    one(
        &e,
        Rule::Unsupported,
        "spectrum_apps[0].traffic_type",
        Some("\"http\""),
        &["not supported here", "CDN binding", "\"direct\""],
    );
}

#[test]
fn keys_that_would_promise_what_the_edge_does_not_do_are_refused() {
    let c = load(&LAB.replace(
        "traffic_type = \"direct\"",
        "traffic_type = \"direct\"\ntls = \"off\"\nargo_smart_routing = false\ndns = { type = \"ADDRESS\", name = \"ssh.example.com\" }",
    ));
    let a = &c.spectrum_apps[0];
    assert_eq!(a.tls, Some(crate::config::Tls::Off));
    assert_eq!(a.argo_smart_routing, Some(false));
    assert_eq!(a.dns.as_ref().unwrap().name, "ssh.example.com");
    for t in ["flexible", "full", "strict"] {
        let e = refuse_lab("traffic_type = \"direct\"", &format!("tls = \"{t}\""));
        one(
            &e,
            Rule::Unsupported,
            "spectrum_apps[0].tls",
            Some(&format!("\"{t}\"")),
            &["does not terminate TLS", "tls = \"off\""],
        );
    }
    let e = refuse_lab("traffic_type = \"direct\"", "argo_smart_routing = true");
    one(
        &e,
        Rule::Unsupported,
        "spectrum_apps[0].argo_smart_routing",
        Some("true"),
        &["not supported here"],
    );
    assert!(
        !c.spectrum_apps[1].ip_firewall,
        "ip_firewall defaults to false"
    );
    builds(&c);
    let e = refuse_lab("traffic_type = \"direct\"", "tls = \"on\"");
    one(
        &e,
        Rule::InvalidValue,
        "spectrum_apps[0].tls",
        Some("\"on\""),
        &["off", "flexible", "full", "strict"],
    );
}

#[test]
fn origin_dns_goes_alone_and_with_a_fitting_origin_port() {
    let e = refuse_lab(
        "proxy_protocol = \"v2\"",
        "proxy_protocol = \"v2\"\norigin_dns = { name = \"origin.example.com\", ttl = 1200 }\norigin_port = 3000",
    );
    one(
        &e,
        Rule::Origin,
        "spectrum_apps[2].origin_dns",
        None,
        &["give one of origin_direct and origin_dns"],
    );
    let e = refuse_lab(
        "proxy_protocol = \"v2\"",
        "proxy_protocol = \"v2\"\norigin_port = 3000",
    );
    one(
        &e,
        Rule::Origin,
        "spectrum_apps[2].origin_port",
        Some("\"3000\""),
        &["origin_port goes with origin_dns"],
    );
}

#[test]
fn origin_dns_shape_is_checked() {
    let base = "[[prefixes]]\ncidr = \"203.0.113.0/24\"\n[[bindings]]\ncidr = \"203.0.113.0/24\"\nservice = \"spectrum\"\n[[spectrum_apps]]\nid = \"r\"\nprotocol = \"tcp/1000-1010\"\nedge_ips = { type = \"static\", ips = [\"203.0.113.5\"] }\n";
    let e = refuse(&format!(
        "{base}origin_dns = {{ name = \"bad name!\", type = \"SRV\", ttl = 0 }}\norigin_port = \"3000-4000\"\n"
    ));
    one(
        &e,
        Rule::Origin,
        "spectrum_apps[0].origin_dns.name",
        Some("\"bad name!\""),
        &["not a host name"],
    );
    one(
        &e,
        Rule::Unsupported,
        "spectrum_apps[0].origin_dns.type",
        Some("\"SRV\""),
        &["no SRV lookup"],
    );
    one(
        &e,
        Rule::OutOfRange,
        "spectrum_apps[0].origin_dns.ttl",
        Some("\"0\""),
        &["1..=86400"],
    );
    one(
        &e,
        Rule::Origin,
        "spectrum_apps[0].origin_port",
        Some("\"3000-4000\""),
        &["has 11 ports, origin_port 1001"],
    );
    let e = refuse(&format!(
        "{base}origin_dns = {{ name = \"origin.example.com\" }}\n"
    ));
    one(
        &e,
        Rule::Origin,
        "spectrum_apps[0].origin_port",
        None,
        &["required with origin_dns", "\"1000-1010\""],
    );
    // Resolved addresses pass the origin policy like any origin.
    let e = refuse(&format!(
        "{base}origin_dns = {{ name = \"origin.example.com\", resolved = [\"10.0.0.1\"] }}\norigin_port = \"3000-3010\"\n"
    ));
    one(
        &e,
        Rule::OriginRefused,
        "spectrum_apps[0].origin_dns.resolved[0]",
        Some("\"tcp://10.0.0.1:3000-3010\""),
        &["10.0.0.1"],
    );
    // Valid, and a port range keeps its offset; unresolved, it does not compile.
    let ok = load(&format!(
        "[[origin_policy.delegations]]\ncidr = \"198.51.100.0/24\"\n[[origin_policy.delegations]]\ncidr = \"2001:db8:1::/48\"\n{base}origin_dns = {{ name = \"origin.example.com\", resolved = [\"198.51.100.7\", \"2001:db8:1::7\"] }}\norigin_port = \"3000-3010\"\n"
    ));
    let compiled = ok.compile(1, &crate::config::Slots::default()).unwrap();
    let origins = &compiled.spec.apps[0].origins;
    assert_eq!(origins.len(), 2);
    assert_eq!(origins[0].addr.to_string(), "198.51.100.7");
    assert_eq!((origins[0].ports.lo, origins[0].ports.hi), (3000, 3010));
    let mut unresolved = ok.clone();
    unresolved.spectrum_apps[0]
        .origin_dns
        .as_mut()
        .unwrap()
        .resolved
        .clear();
    let err = unresolved
        .compile(1, &crate::config::Slots::default())
        .unwrap_err();
    one(
        &err,
        Rule::OriginUnresolvable,
        "spectrum_apps[0].origin_dns.name",
        Some("\"origin.example.com\""),
        &["could not resolve origin to an IP"],
    );
}

// ---- rule 5: origin policy ----

#[test]
fn origin_reserved_is_refused_unless_delegated() {
    let e = refuse_lab("udp://192.0.2.2:27015", "udp://10.0.0.1:27015");
    let err = one(
        &e,
        Rule::OriginRefused,
        "spectrum_apps[1].origin_direct[0]",
        Some("\"udp://10.0.0.1:27015\""),
        &[],
    );
    assert_eq!(
        err.message,
        "origin 10.0.0.1 is reserved (RFC 1918 private-use 10.0.0.0/8) and not delegated; add \
         [[origin_policy.delegations]] cidr = \"10.0.0.0/8\" to allow it"
    );
    // IPv6 unique-local, too.
    let e = refuse_lab("\"tcp://192.0.2.1:22\"", "\"tcp://[fd00::1]:22\"");
    one(
        &e,
        Rule::OriginRefused,
        "spectrum_apps[0].origin_direct[0]",
        Some("\"tcp://[fd00::1]:22\""),
        &["RFC 4193 unique-local fc00::/7"],
    );
    // Delegated: accepted.
    let c = load(
        &(LAB.replace("udp://192.0.2.2:27015", "udp://10.0.0.1:27015")
            + "\n[[origin_policy.delegations]]\ncidr = \"10.0.0.0/8\"\n"),
    );
    builds(&c);
    // Without the lab's delegation, its documentation-range origins are refused.
    let e = refuse_lab(
        "[[origin_policy.delegations]]",
        "[[origin_policy.not_delegations]]",
    );
    assert_eq!(e.errors[0].rule, Rule::UnknownKey);
}

#[test]
fn origin_in_our_prefix_is_refused_unless_delegated() {
    let e = refuse_lab("\"tcp://192.0.2.1:22\"", "\"tcp://[2001:db8:100:2::5]:22\"");
    one(
        &e,
        Rule::OriginRefused,
        "spectrum_apps[0].origin_direct[0]",
        Some("\"tcp://[2001:db8:100:2::5]:22\""),
        &[
            "RFC 3849 documentation 2001:db8::/32",
            "inside our own prefix 2001:db8:100::/48 (managed)",
            "add [[origin_policy.delegations]] cidr = \"2001:db8:100:2::5/128\"",
        ],
    );
    let c = load(
        &(LAB.replace("\"tcp://192.0.2.1:22\"", "\"tcp://[2001:db8:100:2::5]:22\"")
            + "\n[[origin_policy.delegations]]\ncidr = \"2001:db8:100:2::5/128\"\n"),
    );
    builds(&c);
}

#[test]
fn origin_equal_to_edge_ip_is_refused_even_when_delegated() {
    let src = LAB.replace("udp://192.0.2.2:27015", "udp://203.0.113.10:27015")
        + "\n[[origin_policy.delegations]]\ncidr = \"203.0.113.0/24\"\n";
    let e = refuse(&src);
    one(
        &e,
        Rule::OriginRefused,
        "spectrum_apps[1].origin_direct[0]",
        Some("\"udp://203.0.113.10:27015\""),
        &[
            "edge IP 203.0.113.10 of app \"ssh\" (spectrum_apps[0])",
            "delegated or not",
            "loop",
        ],
    );
    // Its own edge IP as well.
    let e = refuse(&LAB.replace("udp://192.0.2.2:27015", "udp://203.0.113.11:27015"));
    one(
        &e,
        Rule::OriginRefused,
        "spectrum_apps[1].origin_direct[0]",
        Some("\"udp://203.0.113.11:27015\""),
        &["app \"game\" (spectrum_apps[1])"],
    );
}

#[test]
fn cdn_pool_members_pass_the_origin_policy() {
    let e = refuse_lab(
        "pool = [\"tcp://192.0.2.50:443\"]",
        "pool = [\"tcp://127.0.0.1:443\", \"tcp://203.0.113.12:443\"]",
    );
    one(
        &e,
        Rule::OriginRefused,
        "cdn.pool[0]",
        Some("\"tcp://127.0.0.1:443\""),
        &["RFC 1122 loopback 127.0.0.0/8"],
    );
    one(
        &e,
        Rule::OriginRefused,
        "cdn.pool[1]",
        Some("\"tcp://203.0.113.12:443\""),
        &["edge IP"],
    );
}

// ---- rule 6: access rules ----

#[test]
fn access_rule_values_fit_their_target() {
    let e = refuse(
        &LAB.replace("value = \"198.51.100.7\"", "value = \"198.51.100.7/32\"")
            .replace("value = \"198.51.100.0/24\"", "value = \"198.51.100.0\""),
    );
    one(
        &e,
        Rule::AccessRule,
        "access_rules[0].value",
        Some("\"198.51.100.0\""),
        &["\"ip_range\" takes a CIDR", "target = \"ip\""],
    );
    one(
        &e,
        Rule::AccessRule,
        "access_rules[1].value",
        Some("\"198.51.100.7/32\""),
        &["bare address: write value = \"198.51.100.7\""],
    );
    let e = refuse(&lab_plus(
        "[[access_rules]]\nmode = \"block\"\ntarget = \"ip\"\nvalue = \"198.51.100.0/25\"\n\
        [[access_rules]]\nmode = \"block\"\ntarget = \"ip\"\nvalue = \"nope\"\n",
    ));
    one(
        &e,
        Rule::AccessRule,
        "access_rules[2].value",
        Some("\"198.51.100.0/25\""),
        &["use target = \"ip_range\""],
    );
    one(
        &e,
        Rule::AccessRule,
        "access_rules[3].value",
        Some("\"nope\""),
        &["not an IP address"],
    );
    // IPv6 and any prefix length are accepted.
    let c = load(&lab_plus(
        "[[access_rules]]\nmode = \"block\"\ntarget = \"ip_range\"\nvalue = \"2001:db8:dead::/48\"\n\
        [[access_rules]]\nid = \"one-host\"\nmode = \"allow\"\ntarget = \"ip\"\nvalue = \"2001:db8:dead::1\"\n",
    ));
    builds(&c);
}

#[test]
fn country_and_asn_rules_are_not_supported_yet() {
    let e = refuse(&lab_plus(
        "[[access_rules]]\nmode = \"block\"\ntarget = \"country\"\nvalue = \"XX\"\n\
        [[access_rules]]\nmode = \"block\"\ntarget = \"asn\"\nvalue = \"AS64496\"\n",
    ));
    one(
        &e,
        Rule::AccessRule,
        "access_rules[2].target",
        Some("\"country\""),
        &["country/ASN rules need a prefix table; not supported yet"],
    );
    one(
        &e,
        Rule::AccessRule,
        "access_rules[3].target",
        Some("\"asn\""),
        &["not supported yet"],
    );
}

#[test]
fn duplicate_access_rule_cidrs_are_refused() {
    let e = refuse(&lab_plus(
        "[[access_rules]]\nmode = \"block\"\ntarget = \"ip_range\"\nvalue = \"198.51.100.7/32\"\n",
    ));
    one(
        &e,
        Rule::DuplicateAccessRule,
        "access_rules[2].value",
        Some("\"198.51.100.7/32\""),
        &["access_rules[1] already has a rule for 198.51.100.7/32"],
    );
}

#[test]
fn access_rule_mode_is_allow_or_block() {
    let e = refuse_lab("mode = \"allow\"", "mode = \"whitelist\"");
    one(
        &e,
        Rule::InvalidValue,
        "access_rules[1].mode",
        Some("\"whitelist\""),
        &["`allow`", "`block`"],
    );
}

// ---- rule 7: CDN ----

#[test]
fn cdn_ports_are_valid_and_unique() {
    let e = refuse_lab("udp_ports = [443]", "udp_ports = [443, 0, 443, 65536]");
    one(
        &e,
        Rule::BadPort,
        "cdn.udp_ports[1]",
        Some("0"),
        &["port 0"],
    );
    one(
        &e,
        Rule::DuplicatePort,
        "cdn.udp_ports[2]",
        Some("443"),
        &["listed twice (also cdn.udp_ports[0])"],
    );
    one(
        &e,
        Rule::BadPort,
        "cdn.udp_ports[3]",
        Some("65536"),
        &["out of range"],
    );
}

#[test]
fn cdn_pool_entries_are_tcp_ip_port() {
    let e = refuse_lab(
        "pool = [\"tcp://192.0.2.50:443\"]",
        "pool = [\"udp://192.0.2.50:443\", \"tcp://192.0.2.51:443-444\", \"tcp://192.0.2.50:443\", \"tcp://192.0.2.50:443\"]",
    );
    one(
        &e,
        Rule::Origin,
        "cdn.pool[0]",
        Some("\"udp://192.0.2.50:443\""),
        &["speaks TCP: write \"tcp://192.0.2.50:443\""],
    );
    one(
        &e,
        Rule::Origin,
        "cdn.pool[1]",
        Some("\"tcp://192.0.2.51:443-444\""),
        &["one address and one port"],
    );
    one(
        &e,
        Rule::Origin,
        "cdn.pool[3]",
        Some("\"tcp://192.0.2.50:443\""),
        &["listed twice (also cdn.pool[2])"],
    );
    let e = refuse_lab(
        "pool = [\"tcp://192.0.2.50:443\"]",
        "pool = [\"192.0.2.50:443\"]",
    );
    one(
        &e,
        Rule::InvalidValue,
        "cdn.pool[0]",
        Some("\"192.0.2.50:443\""),
        &["\"tcp://IP:PORT\""],
    );
}

// ---- rule 8: settings ----

#[test]
fn settings_out_of_range_are_all_reported() {
    let e = refuse(
        &(LAB.replace(
            "rotate_secs = 60",
            "rotate_secs = 30\nmss = 100\nmss6 = 100\nwscale = 15",
        ) + "\n[pipeline]\nbatch_size = 0\n[flows]\ncapacity = 1\ntcp_idle_secs = 0\nudp_idle_secs = 0\nclosing_secs = 100000\n\
           [workers]\ncdn = 0\nspectrum = 257\nqueue_depth = 0\nflow_capacity = 10\n"),
    );
    for (key, value, says) in [
        ("syn_cookies.rotate_secs", "30", "60..=86400"),
        ("syn_cookies.mss", "100", "536..=9000"),
        ("syn_cookies.mss6", "100", "1220..=9000"),
        ("syn_cookies.wscale", "15", "0..=14"),
        ("pipeline.batch_size", "0", "1..=1024"),
        ("flows.capacity", "1", "64..=67108864"),
        ("flows.tcp_idle_secs", "0", "1..=86400"),
        ("flows.udp_idle_secs", "0", "1..=86400"),
        ("flows.closing_secs", "100000", "1..=86400"),
        ("workers.cdn", "0", "1..=256"),
        ("workers.spectrum", "257", "1..=256"),
        ("workers.queue_depth", "0", "1..=1048576"),
        ("workers.flow_capacity", "10", "64..=67108864"),
    ] {
        let err = one(&e, Rule::OutOfRange, key, Some(value), &[says]);
        assert!(err.line.is_some(), "{err}");
    }
    assert_eq!(e.len(), 13, "{e}");
}

#[test]
fn settings_of_the_wrong_type_are_refused() {
    let e = refuse_lab("rotate_secs = 60", "rotate_secs = -5");
    one(
        &e,
        Rule::InvalidValue,
        "syn_cookies.rotate_secs",
        Some("-5"),
        &["u32"],
    );
}

#[test]
fn secret_must_be_64_hex_digits_and_is_never_echoed() {
    let bad = "not-a-secret-".repeat(5);
    let e = refuse_lab(
        "rotate_secs = 60",
        &format!("rotate_secs = 60\nsecret = \"{bad}\""),
    );
    let err = one(
        &e,
        Rule::Secret,
        "syn_cookies.secret",
        None,
        &["not hexadecimal", "64 hex digits"],
    );
    assert!(!e.to_string().contains("not-a-secret"), "{err}");
    let e = refuse_lab(
        "rotate_secs = 60",
        &format!("rotate_secs = 60\nsecret = \"{}\"", "ab".repeat(16)),
    );
    one(
        &e,
        Rule::Secret,
        "syn_cookies.secret",
        None,
        &["has 32 hex digits; it needs 64"],
    );
    let e = refuse_lab("rotate_secs = 60", "rotate_secs = 60\nsecret = 1234");
    let err = one(&e, Rule::InvalidValue, "syn_cookies.secret", None, &[]);
    assert!(!err.to_string().contains("1234"), "{err}");
}

/// `previous_fleet_seed` and `fleet_seed_from` (a fleet seed generation) go together, with a
/// fleet seed, and are checked as `fleet_seed` is; the previous seed is never echoed.
#[test]
fn a_fleet_seed_generation_needs_both_keys_and_a_fleet_seed() {
    use std::os::unix::fs::PermissionsExt as _;
    let with =
        |keys: &str| LAB.replacen("rotate_secs = 60", &format!("rotate_secs = 60\n{keys}"), 1);
    let (new, old) = ("22".repeat(32), "11".repeat(32));
    let c = load(&with(&format!(
        "fleet_seed = \"{new}\"\nprevious_fleet_seed = \"{old}\"\nfleet_seed_from = 28333335"
    )));
    builds(&c);
    let compiled = c.compile(1, &Default::default()).unwrap();
    assert_eq!(compiled.cookies.previous_seed, Some([0x11; 32]));
    assert_eq!(compiled.cookies.seed_from, 28_333_335);
    let shown = format!("{compiled:?}");
    assert!(
        shown.contains("previous_seed: <redacted>, seed_from: 28333335"),
        "{shown}"
    );
    assert!(!shown.contains("17, 17"), "{shown}");

    let e = refuse(&with(&format!(
        "previous_fleet_seed = \"{old}\"\nfleet_seed_from = 1"
    )));
    one(
        &e,
        Rule::Secret,
        "syn_cookies.previous_fleet_seed",
        None,
        &["set without syn_cookies.fleet_seed"],
    );
    let e = refuse(&with(&format!(
        "fleet_seed = \"{new}\"\nprevious_fleet_seed = \"{old}\""
    )));
    one(
        &e,
        Rule::MissingKey,
        "syn_cookies.previous_fleet_seed",
        None,
        &[
            "set without syn_cookies.fleet_seed_from",
            "unix seconds / rotate_secs",
        ],
    );
    let e = refuse(&with(&format!(
        "fleet_seed = \"{new}\"\nfleet_seed_from = 28333335"
    )));
    one(
        &e,
        Rule::MissingKey,
        "syn_cookies.fleet_seed_from",
        Some("28333335"),
        &["set without syn_cookies.previous_fleet_seed"],
    );
    // Unix seconds where the epoch number goes.
    let e = refuse(&with(&format!(
        "fleet_seed = \"{new}\"\nprevious_fleet_seed = \"{old}\"\nfleet_seed_from = 1700000040"
    )));
    one(
        &e,
        Rule::OutOfRange,
        "syn_cookies.fleet_seed_from",
        Some("1700000040"),
        &["epoch number", "were unix seconds given?"],
    );
    let bad = "not-a-seed-".repeat(6);
    let e = refuse(&with(&format!(
        "fleet_seed = \"{new}\"\nprevious_fleet_seed = \"{bad}\"\nfleet_seed_from = 1"
    )));
    one(
        &e,
        Rule::Secret,
        "syn_cookies.previous_fleet_seed",
        None,
        &["the previous fleet seed is not hexadecimal"],
    );
    assert!(!e.to_string().contains("not-a-seed"), "{e}");
    // A file, as for fleet_seed: only its owner may read it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("previous.seed");
    std::fs::write(&file, &old).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let text = with(&format!(
        "fleet_seed = \"{new}\"\nprevious_fleet_seed = \"{}\"\nfleet_seed_from = 1",
        file.display()
    ));
    let e = refuse(&text);
    one(
        &e,
        Rule::Secret,
        "syn_cookies.previous_fleet_seed",
        Some(&format!("{:?}", file.display().to_string())),
        &["mode 0640", "chmod 600"],
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = load(&text);
    let compiled = c.compile(1, &Default::default()).unwrap();
    assert_eq!(compiled.cookies.previous_seed, Some([0x11; 32]));
}

#[test]
fn node_name_must_be_printable() {
    let e = refuse_lab("name = \"edge-lab\"", "name = \"\"");
    one(
        &e,
        Rule::InvalidValue,
        "node.name",
        Some("\"\""),
        &["non-empty"],
    );
}

// ---- all errors at once, never half-applied ----

#[test]
fn every_error_is_reported_at_once() {
    let src = LAB
        .replace("cidr = \"203.0.113.128/25\"", "cidr = \"203.0.113.129/25\"")
        .replace("protocol = \"tcp/22\"", "protocol = \"tcp/0\"")
        .replace("udp://192.0.2.2:27015", "udp://10.0.0.1:27015")
        .replace("\"tcp://192.0.2.3:3000-4000\"", "\"tcp://192.0.2.3:3000\"")
        .replace("udp_ports = [443]", "udp_ports = [443, 443]")
        .replace("target = \"ip\"\n", "target = \"country\"\n")
        .replace("rotate_secs = 60", "rotate_secs = 1");
    let e = refuse(&src);
    let rules: Vec<Rule> = e.iter().map(|x| x.rule).collect();
    for r in [
        Rule::HostBits,
        Rule::BadPort,
        Rule::OriginRefused,
        Rule::Origin,
        Rule::DuplicatePort,
        Rule::AccessRule,
        Rule::OutOfRange,
    ] {
        assert!(rules.contains(&r), "{r} missing from:\n{e}");
    }
    assert_eq!(e.len(), 7, "{e}");
    assert!(e.iter().all(|x| x.line.is_some()), "{e}");
}

#[test]
fn validate_on_a_built_config_reports_without_lines() {
    let mut c: Config = lab();
    c.spectrum_apps[0].protocol.lo = 0;
    c.spectrum_apps[0].protocol.hi = 0;
    let e = c.validate().unwrap_err();
    let err = one(
        &e,
        Rule::BadPort,
        "spectrum_apps[0].protocol",
        Some("\"tcp/0\""),
        &[],
    );
    assert_eq!(err.line, None);
    assert!(
        c.compile(1, &Default::default()).is_err(),
        "compile validates first"
    );
}

// ---- validation agrees with the data plane ----

mod model {
    use proptest::prelude::*;

    use crate::config::tests::lab;
    use crate::config::{EdgeIps, EdgeIpsType, OriginUrl, Protocol, Rule, Slots, SpectrumApp};
    use fastpath::tables::{L4Proto, Tables, TablesError};

    fn arb_app(i: usize) -> impl Strategy<Value = SpectrumApp> {
        (
            any::<bool>(),
            1u32..40,
            0u32..5,
            proptest::sample::subsequence(vec![10u8, 11, 12, 13], 1..=2),
        )
            .prop_map(move |(tcp, lo, extra, hosts)| {
                let proto = if tcp { L4Proto::Tcp } else { L4Proto::Udp };
                let mut app = lab().spectrum_apps[0].clone();
                app.id = format!("app{i}");
                app.protocol = Protocol {
                    proto,
                    lo,
                    hi: lo + extra,
                };
                app.edge_ips = Some(EdgeIps {
                    kind: EdgeIpsType::Static,
                    ips: hosts
                        .iter()
                        .map(|h| format!("203.0.113.{h}").parse().unwrap())
                        .collect(),
                    connectivity: None,
                });
                app.origin_direct = vec![OriginUrl {
                    scheme: proto,
                    addr: "192.0.2.1".parse().unwrap(),
                    lo: 5000,
                    hi: 5000 + extra,
                }];
                app.proxy_protocol = fastpath::tables::ProxyProtocol::V2;
                app
            })
    }

    proptest! {
        /// The port-conflict rule is exactly the data plane's: a config validates iff its
        /// tables build, and what validates always builds.
        #[test]
        fn port_conflicts_agree_with_tables_build(
            apps in (1usize..6).prop_flat_map(|n| (0..n).map(arb_app).collect::<Vec<_>>())
        ) {
            let mut c = lab();
            c.spectrum_apps = apps;
            match c.compile(1, &Slots::default()) {
                Ok(compiled) => prop_assert!(Tables::build(&compiled.spec).is_ok()),
                Err(e) => {
                    prop_assert!(e.iter().all(|x| x.rule == Rule::PortConflict), "{}", e);
                    // Compile the same apps without validation: the data plane refuses too.
                    let mut spec = lab().compile(1, &Slots::default()).unwrap().spec;
                    spec.apps = c.spectrum_apps.iter().enumerate().map(|(i, a)| {
                        fastpath::tables::AppSpec {
                            id: a.id.clone(),
                            slot: i as u32,
                            proto: a.protocol.proto,
                            ports: fastpath::tables::PortRange {
                                lo: a.protocol.lo as u16,
                                hi: a.protocol.hi as u16,
                            },
                            edge_ips: a.edge_ips.as_ref().unwrap().ips.clone(),
                            ip_firewall: false,
                            origins: vec![],
                            proxy_protocol: fastpath::tables::ProxyProtocol::Off,
                            traffic_type: fastpath::tables::TrafficType::Direct,
                        }
                    }).collect();
                    let refused = matches!(
                        Tables::build(&spec),
                        Err(TablesError::AppConflict { .. })
                    );
                    prop_assert!(refused);
                }
            }
        }
    }
}
