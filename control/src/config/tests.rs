//! Loading, round trip and API-shape tests, and helpers shared by the rule tests.

use super::*;

/// The lab configuration, as committed in `testdata/`.
pub(crate) const LAB: &str = include_str!("../../testdata/edge-lab.toml");

/// Loads `src`, panicking with every error if it is refused.
pub(crate) fn load(src: &str) -> Config {
    match Config::from_toml_str(src) {
        Ok(c) => c,
        Err(e) => panic!("refused:\n{e}"),
    }
}

/// The lab config.
pub(crate) fn lab() -> Config {
    load(LAB)
}

/// Loads `src`, which must be refused, and returns the errors.
pub(crate) fn refuse(src: &str) -> ConfigErrors {
    match Config::from_toml_str(src) {
        Ok(c) => panic!("accepted: {c:#?}"),
        Err(e) => e,
    }
}

/// The lab config with `edit` applied to its text, which must be refused.
pub(crate) fn refuse_lab(from: &str, to: &str) -> ConfigErrors {
    assert!(LAB.contains(from), "the lab config has no {from:?}");
    refuse(&LAB.replacen(from, to, 1))
}

/// Asserts that `errors` holds exactly one error at `key`, with `rule` and `value`, whose
/// message contains every part of `says`; returns it.
#[track_caller]
pub(crate) fn one<'a>(
    errors: &'a ConfigErrors,
    rule: Rule,
    key: &'a str,
    value: Option<&str>,
    says: &[&str],
) -> &'a ConfigError {
    let at: Vec<_> = errors.at(key).filter(|e| e.rule == rule).collect();
    assert_eq!(
        at.len(),
        1,
        "want one {rule} error at {key}, got:\n{errors}"
    );
    let e = at[0];
    assert_eq!(e.value.as_deref(), value, "value of {e}");
    for s in says {
        assert!(e.message.contains(s), "{e}\ndoes not say {s:?}");
    }
    e
}

/// Builds every accepted config's tables, to prove that what validates also builds.
#[track_caller]
pub(crate) fn builds(c: &Config) {
    let compiled = c.compile(1, &Slots::default()).expect("compiles");
    fastpath::tables::Tables::build(&compiled.spec).expect("builds");
}

#[test]
fn lab_config_loads_compiles_and_builds() {
    let c = lab();
    assert_eq!(c.node.name, "edge-lab");
    assert_eq!(c.prefixes.len(), 2);
    assert_eq!(c.bindings.len(), 4);
    assert_eq!(c.spectrum_apps.len(), 3);
    assert_eq!(c.access_rules.len(), 2);
    builds(&c);
    let from_file = Config::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/edge-lab.toml"
    ))
    .expect("loads from the file");
    assert_eq!(from_file, c);
}

#[test]
fn to_toml_string_round_trips() {
    let c = lab();
    let text = c.to_toml_string().unwrap();
    assert_eq!(load(&text), c, "{text}");
    // Every optional field set, to cover the writers of every value type.
    let mut full = c.clone();
    full.syn_cookies.secret = Some(Secret("0f".repeat(32)));
    full.syn_cookies.mss = Some(1400);
    full.prefixes.push(Prefix {
        cidr: "198.18.0.0/24".parse().unwrap(),
        advertised: false,
    });
    full.bindings[1].id = Some("cdn-upper".into());
    full.bindings[1].unconfigured = fastpath::tables::Unconfigured::Reset;
    let app = &mut full.spectrum_apps[0];
    app.tls = Some(Tls::Off);
    app.dns = Some(Dns {
        kind: "CNAME".into(),
        name: "ssh.example.com".into(),
    });
    app.argo_smart_routing = Some(false);
    app.spp = Some(false);
    full.spectrum_apps[1].spp = Some(true);
    full.spectrum_apps[1].proxy_protocol = fastpath::tables::ProxyProtocol::Off;
    full.access_rules[0].id = Some("block-net".into());
    let text = full.to_toml_string().unwrap();
    assert_eq!(load(&text), full, "{text}");
    builds(&full);
    // And the default config (no prefixes at all) is valid and round-trips.
    let d = Config::default();
    assert_eq!(load(&d.to_toml_string().unwrap()), d);
    builds(&d);
}

#[test]
fn every_section_is_known_to_the_per_table_pass() {
    let text = Config::default().to_toml_string().unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    for k in t.keys() {
        assert!(
            load::SECTIONS.contains(&k.as_str()),
            "{k} missing from SECTIONS"
        );
    }
    assert_eq!(t.len(), load::SECTIONS.len());
}

#[test]
fn advertised_false_prefix_may_have_no_bindings() {
    let src = format!("{LAB}\n[[prefixes]]\ncidr = \"198.18.0.0/24\"\nadvertised = false\n");
    let c = load(&src);
    let compiled = c.compile(1, &Slots::default()).unwrap();
    let t = fastpath::tables::Tables::build(&compiled.spec).unwrap();
    let d = t.dest("198.18.0.9".parse().unwrap()).expect("ours");
    assert!(
        t.binding(d).is_none(),
        "dropped as no_binding by the data plane"
    );
    // The same prefix advertised is refused.
    let e = refuse(&src.replace("advertised = false\n", ""));
    one(
        &e,
        Rule::NoDefaultBinding,
        "prefixes[2]",
        Some("\"198.18.0.0/24\""),
        &["blackholed", "advertised = false"],
    );
}

// ---- shape errors: unknown keys, lines, one error per table ----

#[test]
fn unknown_keys_are_refused_with_key_and_line() {
    let e = refuse_lab(
        "proxy_protocol = \"simple\"",
        "proxy_protocol = \"simple\"\nproxy_protcol = \"v2\"",
    );
    let err = one(
        &e,
        Rule::UnknownKey,
        "spectrum_apps[1].proxy_protcol",
        None,
        &["unknown key", "proxy_protocol"],
    );
    let line = LAB
        .lines()
        .position(|l| l.starts_with("proxy_protocol = \"simple\""))
        .unwrap() as u32
        + 2;
    assert_eq!(err.line, Some(line), "{err}");
    assert_eq!(e.len(), 1, "{e}");
}

#[test]
fn unknown_keys_everywhere_are_all_reported() {
    let src = LAB
        .replace("name = \"edge-lab\"", "name = \"edge-lab\"\nnmae = 1")
        .replace(
            "service = \"cdn\"\nunconfigured",
            "service = \"cdn\"\nservce = 1\nunconfigured",
        )
        .replace("https_only = false", "https_only = false\nhttp_only = true")
        .replace(
            "cidr = \"192.0.2.0/24\"",
            "cidr = \"192.0.2.0/24\"\nowner = \"me\"",
        )
        .replace(
            "ips = [\"203.0.113.11\"]",
            "ips = [\"203.0.113.11\"], pool = \"x\"",
        )
        + "\n[sync_cookies]\nrotate_secs = 60\n";
    let e = refuse(&src);
    for key in [
        "node.nmae",
        "bindings[1].servce",
        "cdn.http_only",
        "origin_policy.delegations[0].owner",
        "spectrum_apps[1].edge_ips.pool",
        "sync_cookies",
    ] {
        one(&e, Rule::UnknownKey, key, None, &["unknown"]);
    }
    assert!(e.iter().all(|x| x.line.is_some()), "{e}");
    assert_eq!(e.len(), 6, "{e}");
}

#[test]
fn shape_errors_are_collected_one_per_table() {
    let src = LAB
        .replace("protocol = \"tcp/22\"", "protocol = \"tcp22\"")
        .replace("cidr = \"203.0.113.128/25\"", "cidr = \"203.0.113.300/25\"")
        .replace("mode = \"block\"", "mode = \"deny\"")
        .replace("proxy_protocol = \"v2\"", "proxy_protocol = \"v3\"");
    let e = refuse(&src);
    one(
        &e,
        Rule::InvalidValue,
        "spectrum_apps[0].protocol",
        Some("\"tcp22\""),
        &["\"tcp/PORT\""],
    );
    one(
        &e,
        Rule::InvalidValue,
        "bindings[1].cidr",
        Some("\"203.0.113.300/25\""),
        &[],
    );
    one(
        &e,
        Rule::InvalidValue,
        "access_rules[0].mode",
        Some("\"deny\""),
        &["allow", "block"],
    );
    one(
        &e,
        Rule::InvalidValue,
        "spectrum_apps[2].proxy_protocol",
        Some("\"v3\""),
        &["off", "v1", "v2", "simple"],
    );
    assert_eq!(e.len(), 4, "{e}");
}

#[test]
fn missing_required_keys_are_named() {
    let e = refuse_lab(
        "cidr = \"2001:db8:100::/48\"\nservice = \"cdn\"",
        "cidr = \"2001:db8:100::/48\"",
    );
    one(
        &e,
        Rule::MissingKey,
        "bindings[2].service",
        None,
        &["required"],
    );
}

#[test]
fn syntax_errors_have_lines() {
    let e = refuse("[node]\nname = \"x\"\n\n[[prefixes]\ncidr = 1\n");
    assert_eq!(e.errors[0].rule, Rule::Syntax);
    assert_eq!(e.errors[0].line, Some(4), "{e}");
}

#[test]
fn errors_display_one_line_each_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("control-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        LAB.replace("udp://192.0.2.2:27015", "udp://10.0.0.1:27015")
            .replace("tcp/1000-2000", "tcp/2000-1000"),
    )
    .unwrap();
    let e = match Config::load(&path) {
        Err(LoadError::Invalid(e)) => e,
        other => panic!("{other:?}"),
    };
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let want = format!(
        "{}:45: spectrum_apps[1].origin_direct[0] = \"udp://10.0.0.1:27015\": origin 10.0.0.1 is \
         reserved (RFC 1918 private-use 10.0.0.0/8) and not delegated; add \
         [[origin_policy.delegations]] cidr = \"10.0.0.0/8\" to allow it",
        path.display()
    );
    assert!(lines.contains(&want.as_str()), "{text}\nwant: {want}");
    assert!(
        text.contains(":50: spectrum_apps[2].protocol = \"tcp/2000-1000\""),
        "{text}"
    );
    assert!(matches!(
        Config::load(dir.join("absent.toml")),
        Err(LoadError::Read { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- JSON bodies of the public API ----

/// Seed 001 (and 003): a BYOIP Spectrum app as the public API returns it.
const SEED_001_APP: &str = r#"{
  "id": "4590376cf2994d72cee36828ec4eff19",
  "protocol": "tcp/22",
  "dns": { "type": "ADDRESS", "name": "ssh.example.com" },
  "origin_direct": ["tcp://192.0.2.1:22"],
  "ip_firewall": true,
  "proxy_protocol": false,
  "spp": false,
  "tls": "off",
  "traffic_type": "direct",
  "edge_ips": { "type": "static", "ips": ["198.51.100.10", "2001:DB8::1"] }
}"#;

/// Seed 000: the create body, without an id.
const SEED_000_APP: &str = r#"{
  "protocol": "tcp/22",
  "dns": { "type": "CNAME", "name": "ssh.example.com" },
  "origin_direct": ["tcp://192.0.2.1:22"],
  "proxy_protocol": "off",
  "ip_firewall": true,
  "tls": "full",
  "edge_ips": { "type": "static", "ips": ["203.0.113.18"] },
  "traffic_type": "direct"
}"#;

/// Seed 001: the HTTP traffic-type example.
const SEED_001_HTTP_APP: &str = r#"{
  "protocol": "tcp/80",
  "dns": { "type": "ADDRESS", "name": "www.example.com" },
  "origin_direct": ["tcp://192.0.2.1:80"],
  "tls": "off",
  "traffic_type": "http",
  "edge_ips": { "type": "static", "ips": ["198.51.100.10", "2001:DB8::1"] }
}"#;

/// Seed 003: a dynamic-IP app with argo_smart_routing.
const SEED_003_DYNAMIC_APP: &str = r#"{
  "protocol": "tcp/22",
  "dns": { "type": "CNAME", "name": "ssh.example.com" },
  "origin_direct": ["tcp://192.0.2.1:22"],
  "proxy_protocol": "off",
  "ip_firewall": true,
  "tls": "full",
  "edge_ips": { "type": "dynamic", "connectivity": "all" },
  "traffic_type": "direct",
  "argo_smart_routing": true
}"#;

#[test]
fn seed_json_app_bodies_parse() {
    let a: SpectrumApp = parse_json(SEED_001_APP).unwrap();
    assert_eq!(a.id, "4590376cf2994d72cee36828ec4eff19");
    assert_eq!(a.proxy_protocol, fastpath::tables::ProxyProtocol::Off);
    assert_eq!(a.spp, Some(false));
    assert_eq!(a.tls, Some(Tls::Off));
    assert_eq!(a.dns.as_ref().unwrap().kind, "ADDRESS");
    let ips = &a.edge_ips.as_ref().unwrap().ips;
    assert_eq!(ips[1], "2001:db8::1".parse::<core::net::IpAddr>().unwrap());
    assert!(a.ip_firewall);

    let a: SpectrumApp = parse_json(SEED_000_APP).unwrap();
    assert_eq!(a.id, "", "the API assigns the id");
    assert_eq!(a.tls, Some(Tls::Full));

    let a: SpectrumApp = parse_json(SEED_001_HTTP_APP).unwrap();
    assert_eq!(a.traffic_type, fastpath::tables::TrafficType::Http);

    let a: SpectrumApp = parse_json(SEED_003_DYNAMIC_APP).unwrap();
    assert_eq!(a.edge_ips.as_ref().unwrap().kind, EdgeIpsType::Dynamic);
    assert_eq!(a.argo_smart_routing, Some(true));

    // `true` is PROXY v1, as in the public API.
    let a: SpectrumApp =
        parse_json(&SEED_001_APP.replace("\"proxy_protocol\": false", "\"proxy_protocol\": true"))
            .unwrap();
    assert_eq!(a.proxy_protocol, fastpath::tables::ProxyProtocol::V1);
}

#[test]
fn seed_json_app_is_valid_once_its_edge_ips_are_ours() {
    // Seed 000's app, on the lab's prefix, added to the lab config over JSON.
    let mut c = lab();
    let mut a: SpectrumApp = parse_json(SEED_000_APP).unwrap();
    a.id = "ssh-api".into();
    a.edge_ips.as_mut().unwrap().ips = vec!["203.0.113.18".parse().unwrap()];
    c.spectrum_apps.push(a);
    // The seed asks for TLS termination, which this edge refuses rather than ignores.
    let e = c.clone().validate().unwrap_err();
    one(
        &e,
        Rule::Unsupported,
        "spectrum_apps[3].tls",
        Some("\"full\""),
        &["does not terminate TLS"],
    );
    c.spectrum_apps[3].tls = Some(Tls::Off);
    c.validate().unwrap();
    builds(&c);
    // The whole config in JSON loads too.
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(Config::from_json_str(&json).unwrap(), c);
}

#[test]
fn json_errors_name_the_key() {
    let e = parse_json::<SpectrumApp>(&SEED_001_APP.replace("\"spp\"", "\"sppp\"")).unwrap_err();
    let err = one(&e, Rule::UnknownKey, "sppp", None, &["unknown key"]);
    assert_eq!(err.line, Some(8));
    let e = parse_json::<SpectrumApp>(&SEED_001_APP.replace("tcp/22", "tcp-22")).unwrap_err();
    one(&e, Rule::InvalidValue, "protocol", None, &["\"tcp/PORT\""]);
    let e = parse_json::<SpectrumApp>("{\"protocol\": ").unwrap_err();
    assert_eq!(e.errors[0].rule, Rule::Syntax);
}

#[test]
fn binding_bodies_of_the_public_api_parse() {
    // Seed 000's create body; this edge's service ids are the service names.
    let b: Binding =
        parse_json(r#"{"cidr": "203.0.113.100/32", "service_id": "spectrum"}"#).unwrap();
    assert_eq!(b.service, ServiceName::Spectrum);
    assert_eq!(b.effective_id(), "203.0.113.100/32");
    let b: Binding = parse_json(r#"{"cidr": "203.0.113.0/24", "service_name": "CDN"}"#).unwrap();
    assert_eq!(b.service, ServiceName::Cdn);
    let b: Binding =
        parse_json(r#"{"cidr": "203.0.113.0/24", "service": "cdn", "unconfigured": "reset"}"#)
            .unwrap();
    assert_eq!(b.unconfigured, fastpath::tables::Unconfigured::Reset);
    let e =
        parse_json::<Binding>(r#"{"cidr": "203.0.113.100/32", "service_id": "969a"}"#).unwrap_err();
    one(
        &e,
        Rule::InvalidValue,
        "service_id",
        None,
        &["\"cdn\" or \"spectrum\""],
    );
}
