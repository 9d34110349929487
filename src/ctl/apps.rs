//! `fastpathctl apps`: Spectrum apps (`/client/v4/zones/{zone}/spectrum/apps`).
//!
//! `create` builds the body from flags or takes a JSON body (`--file`, the public API's shape:
//! one app or an array); `update` gets the app, applies the flags and puts it back whole (or
//! puts `--file` with the flags on top). The JSON is edited as JSON, so fields this client does
//! not know survive an update.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{Map, Value, json};

use super::client::encode;
use super::error::CtlError;
use super::output::{Table, or_default, pairs, text};
use super::{ChangeOpts, Ctl, Req, ZONE, read_json};

const CREATE_HELP: &str = "\
Examples:
  fastpathctl apps create --protocol tcp/2222 --edge-ip 203.0.113.10 \\
      --origin tcp://192.0.2.1:22 --dns-name ssh2.example.com --ip-firewall true
  fastpathctl apps create --id game2 --protocol udp/27016 --edge-ip 203.0.113.11 \\
      --origin udp://192.0.2.2:27016 --proxy-protocol simple
  fastpathctl apps create --file apps.json       # one app, or an array of apps
  fastpathctl apps create --file - --dry-run < app.json";

const UPDATE_HELP: &str = "\
Examples:
  fastpathctl apps update ssh --origin tcp://192.0.2.5:22
  fastpathctl apps update ssh --edge-ip 203.0.113.10 --edge-ip 2001:db8:100:1::10
  fastpathctl apps update ssh --file ssh.json --expected-version 7

Without --file the app is fetched first, so only the given flags change. With --file the
file is the whole new app, and the flags apply on top of it.";

/// `fastpathctl apps ...`.
#[derive(Debug, Subcommand)]
pub enum AppsCmd {
    /// List the apps: id, protocol and ports, edge IPs, origins, PROXY header, firewall.
    List,
    /// Show one app.
    Get {
        /// The app's id.
        id: String,
    },
    /// Create an app from flags, or one or several from a JSON body (--file).
    #[command(after_help = CREATE_HELP)]
    Create(CreateArgs),
    /// Change an app: fetch it, apply the flags, put it back whole.
    #[command(after_help = UPDATE_HELP)]
    Update(UpdateArgs),
    /// Delete an app.
    Delete {
        /// The app's id.
        id: String,
        /// Dry run and compare-and-swap.
        #[command(flatten)]
        change: ChangeOpts,
    },
}

/// `apps create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The app's id (letters, digits, `.`, `_`, `-`; at most 64). Default: the DNS name, else
    /// `app-N`.
    #[arg(long)]
    pub id: Option<String>,
    /// The app's fields.
    #[command(flatten)]
    pub app: AppFlags,
    /// Dry run and compare-and-swap.
    #[command(flatten)]
    pub change: ChangeOpts,
}

/// `apps update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The app's id (an app cannot be renamed: delete it and create it again).
    pub id: String,
    /// The fields to change.
    #[command(flatten)]
    pub app: AppFlags,
    /// Dry run and compare-and-swap.
    #[command(flatten)]
    pub change: ChangeOpts,
}

/// The fields of an app that flags set. Lists given by repeated flags replace the app's list.
#[derive(Debug, Clone, Default, Args)]
pub struct AppFlags {
    /// Protocol and edge ports: `tcp/22`, `tcp/1000-2000`, `udp/27015`.
    #[arg(long, value_name = "PROTO/PORTS")]
    pub protocol: Option<String>,
    /// An edge address (static; inside a Spectrum binding). Repeat for several; replaces the
    /// app's list.
    #[arg(long = "edge-ip", value_name = "IP", conflicts_with = "dynamic")]
    pub edge_ip: Vec<IpAddr>,
    /// Dynamic edge IPs, assigned by the edge from `[spectrum] dynamic_pool`: `all` (one IPv4
    /// and one IPv6 address), `ipv4` or `ipv6`. The app keeps them across restarts and edits.
    #[arg(long, value_name = "CONNECTIVITY", value_parser = ["all", "ipv4", "ipv6"])]
    pub dynamic: Option<String>,
    /// An origin, `tcp://IP:PORT` or `udp://IP:PORT` (IPv6 in brackets; `:LO-HI` for an app
    /// with a port range). Repeat for several; replaces the app's list (and any origin name).
    #[arg(long, value_name = "URL", conflicts_with = "origin_dns")]
    pub origin: Vec<String>,
    /// The origin by name (a CNAME to it, or a load balancer's name), with `--origin-port`:
    /// resolved by the edge with the system resolver now and again every `--origin-dns-ttl`
    /// seconds; every address is an origin. Replaces `origin_direct`.
    #[arg(long, value_name = "NAME", requires = "origin_port")]
    pub origin_dns: Option<String>,
    /// The origin port of `--origin-dns`: `22`, or `LO-HI` as large as the edge range.
    #[arg(long, value_name = "PORT[S]")]
    pub origin_port: Option<String>,
    /// Seconds between lookups of `--origin-dns` (1..=86400; default 600).
    #[arg(long, value_name = "SECS", requires = "origin_dns")]
    pub origin_dns_ttl: Option<u32>,
    /// The PROXY header sent to the origin.
    #[arg(long, value_name = "MODE", value_parser = ["off", "v1", "v2", "simple"])]
    pub proxy_protocol: Option<String>,
    /// Whether the IP access rules apply to this app.
    #[arg(long, value_name = "BOOL")]
    pub ip_firewall: Option<bool>,
    /// Only `direct` is served here (the stream relayed at layer 4); the daemon refuses `http`
    /// and `https`, saying why (serve HTTP(S) through a CDN binding).
    #[arg(long, value_name = "TYPE", value_parser = ["direct", "http", "https"])]
    pub traffic_type: Option<String>,
    /// Only `off` is served here (the origin terminates TLS); the daemon refuses the others,
    /// saying why: this edge does not terminate TLS.
    #[arg(long, value_name = "MODE", value_parser = ["off", "flexible", "full", "strict"])]
    pub tls: Option<String>,
    /// The app's public DNS name (shown by the API, the id of an app created without one; the
    /// edge publishes no record). A `CNAME` unless the app has another type.
    #[arg(long, value_name = "NAME")]
    pub dns_name: Option<String>,
    /// A JSON body as in the public Spectrum API (`-` for stdin); flags apply on top.
    #[arg(long, short, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// The collection's path.
pub fn apps_path() -> String {
    format!("/client/v4/zones/{ZONE}/spectrum/apps")
}

/// One app's path.
pub fn app_path(id: &str) -> String {
    format!("{}/{}", apps_path(), encode(id))
}

impl AppFlags {
    /// Whether any field flag (not `--file`) was given.
    pub fn any(&self) -> bool {
        self.protocol.is_some()
            || !self.edge_ip.is_empty()
            || self.dynamic.is_some()
            || !self.origin.is_empty()
            || self.origin_dns.is_some()
            || self.origin_port.is_some()
            || self.origin_dns_ttl.is_some()
            || self.proxy_protocol.is_some()
            || self.ip_firewall.is_some()
            || self.traffic_type.is_some()
            || self.tls.is_some()
            || self.dns_name.is_some()
    }

    /// Sets the given fields on `app`, keeping every other field as it is.
    pub fn apply(&self, app: &mut Map<String, Value>) {
        if let Some(p) = &self.protocol {
            app.insert("protocol".into(), json!(p));
        }
        if !self.edge_ip.is_empty() {
            let ips: Vec<String> = self.edge_ip.iter().map(ToString::to_string).collect();
            app.insert("edge_ips".into(), json!({ "type": "static", "ips": ips }));
        }
        if let Some(c) = &self.dynamic {
            app.insert(
                "edge_ips".into(),
                json!({ "type": "dynamic", "connectivity": c }),
            );
        }
        if !self.origin.is_empty() {
            app.insert("origin_direct".into(), json!(self.origin));
            app.remove("origin_dns");
            app.remove("origin_port");
        }
        if let Some(n) = &self.origin_dns {
            let mut d = json!({ "name": n });
            if let Some(t) = self.origin_dns_ttl {
                d["ttl"] = json!(t);
            }
            app.insert("origin_dns".into(), d);
            app.remove("origin_direct");
        } else if let (Some(t), Some(Value::Object(d))) =
            (self.origin_dns_ttl, app.get_mut("origin_dns"))
        {
            d.insert("ttl".into(), json!(t));
        }
        if let Some(p) = &self.origin_port {
            let v = p.parse::<u16>().map_or_else(|_| json!(p), |n| json!(n));
            app.insert("origin_port".into(), v);
        }
        if let Some(p) = &self.proxy_protocol {
            app.insert("proxy_protocol".into(), json!(p));
            // The public API's alias would override it.
            app.remove("spp");
        }
        if let Some(f) = self.ip_firewall {
            app.insert("ip_firewall".into(), json!(f));
        }
        if let Some(t) = &self.traffic_type {
            app.insert("traffic_type".into(), json!(t));
        }
        if let Some(t) = &self.tls {
            app.insert("tls".into(), json!(t));
        }
        if let Some(n) = &self.dns_name {
            let kind = app
                .get("dns")
                .and_then(|d| d.get("type"))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .unwrap_or("CNAME")
                .to_string();
            app.insert("dns".into(), json!({ "type": kind, "name": n }));
        }
    }
}

/// The POST for `apps create`: `file` is the `--file` body, if given.
///
/// # Errors
/// [`CtlError::Usage`]: no protocol and no file, or field flags with a file holding an array.
pub fn create_request(args: &CreateArgs, file: Option<Value>) -> Result<Req, CtlError> {
    let body = match file {
        Some(Value::Array(items)) => {
            if args.app.any() || args.id.is_some() {
                return Err(CtlError::Usage(
                    "the file holds an array of apps: give their fields in the file, not as \
                     flags"
                        .into(),
                ));
            }
            Value::Array(items)
        }
        Some(Value::Object(mut m)) => {
            if let Some(id) = &args.id {
                m.insert("id".into(), json!(id));
            }
            args.app.apply(&mut m);
            Value::Object(m)
        }
        Some(_) => {
            return Err(CtlError::Usage(
                "the file must hold a JSON object (an app) or an array of apps".into(),
            ));
        }
        None => {
            if args.app.protocol.is_none() {
                return Err(CtlError::Usage(
                    "give --protocol (and --edge-ip, --origin), or a JSON body with --file".into(),
                ));
            }
            let mut m = Map::new();
            if let Some(id) = &args.id {
                m.insert("id".into(), json!(id));
            }
            args.app.apply(&mut m);
            Value::Object(m)
        }
    };
    Ok(Req::with(Method::POST, args.change.on(&apps_path()), body))
}

/// The PUT body for `apps update`: `base` (the app as fetched, or the file) with the flags
/// applied. The daemon's `id` is the path's, so `id` is dropped from the body.
///
/// # Errors
/// [`CtlError::Usage`]: `base` is not an object.
pub fn update_body(base: Value, flags: &AppFlags) -> Result<Value, CtlError> {
    let Value::Object(mut m) = base else {
        return Err(CtlError::Usage(
            "an app is a JSON object; the file (or the daemon's answer) is not".into(),
        ));
    };
    m.remove("_change");
    flags.apply(&mut m);
    Ok(Value::Object(m))
}

fn edge_ips(a: &Value) -> String {
    let ips = text(a.get("edge_ips").and_then(|e| e.get("ips")));
    match a
        .get("edge_ips")
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
    {
        Some("dynamic") => format!("{ips} (dynamic)"),
        _ => ips,
    }
}

/// The state of an `origin_dns` app's lookups: `ok`, or `unresolvable (why)`.
fn dns_status(a: &Value) -> String {
    let Some(st) = a.get("origin_dns_status") else {
        return "-".into();
    };
    let mut out = format!(
        "{} (checked {})",
        text(st.get("state")),
        text(st.get("checked_on"))
    );
    if let Some(e) = st.get("error").and_then(Value::as_str) {
        out.push_str(&format!(": {e}; keeping the last addresses"));
    }
    out
}

/// `origin_direct`, or `origin_dns` as `NAME:PORT -> addresses`.
fn origins(a: &Value) -> String {
    match a.get("origin_dns") {
        Some(d) => format!(
            "{}:{} -> {}",
            text(d.get("name")),
            text(a.get("origin_port")),
            text(d.get("resolved"))
        ),
        None => text(a.get("origin_direct")),
    }
}

/// The apps as a table.
pub fn table(apps: &Value) -> String {
    let mut t = Table::new(&[
        "ID", "PROTOCOL", "EDGE IPS", "ORIGINS", "PROXY", "FIREWALL", "TRAFFIC", "TLS",
    ]);
    for a in apps.as_array().map(Vec::as_slice).unwrap_or_default() {
        t.row(vec![
            text(a.get("id")),
            text(a.get("protocol")),
            edge_ips(a),
            origins(a),
            proxy(a),
            or_default(a.get("ip_firewall"), "no"),
            or_default(a.get("traffic_type"), "direct"),
            text(a.get("tls")),
        ]);
    }
    t.render()
}

fn proxy(a: &Value) -> String {
    if a.get("spp").and_then(Value::as_bool) == Some(true) {
        return "simple".into();
    }
    match a.get("proxy_protocol") {
        Some(Value::Bool(true)) => "v1".into(),
        Some(Value::Bool(false)) => "off".into(),
        other => or_default(other, "off"),
    }
}

/// One app as `key: value` lines.
pub fn detail(a: &Value) -> String {
    let dns = a.get("dns").map(|d| {
        format!(
            "{} ({})",
            text(d.get("name")),
            d.get("type").and_then(Value::as_str).unwrap_or("-")
        )
    });
    pairs(&[
        ("id", text(a.get("id"))),
        ("protocol", text(a.get("protocol"))),
        ("edge ips", edge_ips(a)),
        ("origins", origins(a)),
        ("proxy protocol", proxy(a)),
        ("ip firewall", or_default(a.get("ip_firewall"), "no")),
        ("traffic type", or_default(a.get("traffic_type"), "direct")),
        ("tls", text(a.get("tls"))),
        ("dns", dns.unwrap_or_else(|| "-".into())),
        ("origin lookups", dns_status(a)),
        ("created", text(a.get("created_on"))),
        ("modified", text(a.get("modified_on"))),
    ])
}

fn created(r: &Value) -> String {
    let apps: Vec<&Value> = match r.get("items").and_then(Value::as_array) {
        Some(items) => items.iter().collect(),
        None => vec![r],
    };
    apps.iter()
        .map(|a| format!("app {} ({})\n", text(a.get("id")), text(a.get("protocol"))))
        .collect()
}

/// Runs `fastpathctl apps ...`.
///
/// # Errors
/// [`CtlError`].
pub fn run(ctl: &mut Ctl<'_>, cmd: &AppsCmd) -> Result<(), CtlError> {
    match cmd {
        AppsCmd::List => ctl.show(&Req::get(apps_path()), table),
        AppsCmd::Get { id } => ctl.show(&Req::get(app_path(id)), detail),
        AppsCmd::Create(a) => {
            let file = a.app.file.as_deref().map(read_json).transpose()?;
            let req = create_request(a, file)?;
            ctl.change(&req, created)
        }
        AppsCmd::Update(a) => {
            let base = match &a.app.file {
                Some(f) => read_json(f)?,
                None => {
                    if !a.app.any() {
                        return Err(CtlError::Usage(
                            "nothing to change: give a flag such as --origin, or --file".into(),
                        ));
                    }
                    ctl.call(&Req::get(app_path(&a.id)))?
                }
            };
            let body = update_body(base, &a.app)?;
            let req = Req::with(Method::PUT, a.change.on(&app_path(&a.id)), body);
            ctl.change(&req, created)
        }
        AppsCmd::Delete { id, change } => {
            let req = Req::delete(change.on(&app_path(id)));
            ctl.change(&req, |r| format!("deleted app {}\n", text(r.get("id"))))
        }
    }
}

#[cfg(test)]
mod test {
    use super::super::Command;
    use super::super::test::parse;
    use super::*;

    fn apps(args: &[&str]) -> AppsCmd {
        let mut v = vec!["apps"];
        v.extend_from_slice(args);
        match parse(&v).command {
            Command::Apps { cmd } => cmd,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_from_flags() {
        let AppsCmd::Create(a) = apps(&[
            "create",
            "--protocol",
            "tcp/2222",
            "--edge-ip",
            "203.0.113.10",
            "--edge-ip",
            "2001:db8:100:1::10",
            "--origin",
            "tcp://192.0.2.1:22",
            "--proxy-protocol",
            "v2",
            "--ip-firewall",
            "false",
            "--traffic-type",
            "direct",
            "--tls",
            "full",
            "--dns-name",
            "ssh2.example.com",
            "--dry-run",
        ]) else {
            panic!()
        };
        let r = create_request(&a, None).unwrap();
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.path, "/client/v4/zones/local/spectrum/apps?dry_run=true");
        assert_eq!(
            r.body.unwrap(),
            json!({
                "protocol": "tcp/2222",
                "edge_ips": {"type": "static", "ips": ["203.0.113.10", "2001:db8:100:1::10"]},
                "origin_direct": ["tcp://192.0.2.1:22"],
                "proxy_protocol": "v2",
                "ip_firewall": false,
                "traffic_type": "direct",
                "tls": "full",
                "dns": {"type": "CNAME", "name": "ssh2.example.com"},
            })
        );
    }

    #[test]
    fn dynamic_edge_ips_and_origin_names() {
        let AppsCmd::Create(a) = apps(&[
            "create",
            "--protocol",
            "tcp/1000-1010",
            "--dynamic",
            "ipv4",
            "--origin-dns",
            "origin.example.com",
            "--origin-port",
            "3000-3010",
            "--origin-dns-ttl",
            "60",
        ]) else {
            panic!()
        };
        let body = create_request(&a, None).unwrap().body.unwrap();
        assert_eq!(
            body,
            json!({
                "protocol": "tcp/1000-1010",
                "edge_ips": {"type": "dynamic", "connectivity": "ipv4"},
                "origin_dns": {"name": "origin.example.com", "ttl": 60},
                "origin_port": "3000-3010",
            })
        );
        // A single port goes as a number; --origin replaces the name, and the other way round.
        let AppsCmd::Update(u) = apps(&["update", "x", "--origin", "tcp://192.0.2.1:22"]) else {
            panic!()
        };
        let b = update_body(body.clone(), &u.app).unwrap();
        assert!(b.get("origin_dns").is_none() && b.get("origin_port").is_none());
        let AppsCmd::Update(u) = apps(&[
            "update",
            "x",
            "--origin-dns",
            "o.example.com",
            "--origin-port",
            "22",
        ]) else {
            panic!()
        };
        let b = update_body(json!({"origin_direct": ["tcp://192.0.2.1:22"]}), &u.app).unwrap();
        assert_eq!(
            b,
            json!({"origin_dns": {"name": "o.example.com"}, "origin_port": 22})
        );
        // Flags that contradict each other are usage errors.
        for bad in [
            &["create", "--edge-ip", "203.0.113.1", "--dynamic", "all"][..],
            &[
                "create",
                "--origin",
                "tcp://192.0.2.1:1",
                "--origin-dns",
                "o",
                "--origin-port",
                "1",
            ],
            &["create", "--origin-dns", "o"],
        ] {
            let mut v = vec!["apps"];
            v.extend_from_slice(bad);
            let e = super::super::test::parse_err(&v);
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
        // What the edge filled in is shown.
        let shown = json!([{"id": "r", "protocol": "tcp/22",
            "edge_ips": {"type": "dynamic", "ips": ["198.51.100.128"]},
            "origin_dns": {"name": "o.example.com", "resolved": ["192.0.2.8"]},
            "origin_port": 22,
            "origin_dns_status": {"state": "unresolvable", "checked_on": "2026-12-03T10:00:00Z",
                "error": "o.example.com: no address"}}]);
        let t = table(&shown);
        assert!(t.contains("198.51.100.128 (dynamic)"), "{t}");
        assert!(t.contains("o.example.com:22 -> 192.0.2.8"), "{t}");
        let d = detail(&shown[0]);
        assert!(d.contains("unresolvable (checked 2026-12-03T10:00:00Z): o.example.com: no address; keeping the last addresses"), "{d}");
    }

    #[test]
    fn create_needs_a_protocol_or_a_file() {
        let AppsCmd::Create(a) = apps(&["create", "--id", "x"]) else {
            panic!()
        };
        assert_eq!(create_request(&a, None).unwrap_err().exit_code(), 2);
        // A file, with the id from the flag on top.
        let r = create_request(&a, Some(json!({"protocol": "udp/53"}))).unwrap();
        assert_eq!(r.body.unwrap(), json!({"protocol": "udp/53", "id": "x"}));
        // An array goes as it is, and takes no flags.
        let AppsCmd::Create(b) = apps(&["create", "--file", "x.json"]) else {
            panic!()
        };
        let r = create_request(&b, Some(json!([{"protocol": "udp/53"}]))).unwrap();
        assert!(r.body.unwrap().is_array());
        assert!(create_request(&a, Some(json!([{}]))).is_err());
        assert!(create_request(&b, Some(json!("x"))).is_err());
    }

    #[test]
    fn update_keeps_what_the_flags_do_not_touch() {
        let AppsCmd::Update(u) = apps(&[
            "update",
            "ssh",
            "--origin",
            "tcp://192.0.2.5:22",
            "--dns-name",
            "new.example.com",
            "--expected-version",
            "3",
        ]) else {
            panic!()
        };
        assert_eq!(u.id, "ssh");
        assert_eq!(u.change.expected_version, Some(3));
        let fetched = json!({"id": "ssh", "protocol": "tcp/22", "ip_firewall": true,
            "edge_ips": {"type": "static", "ips": ["203.0.113.10"]},
            "origin_direct": ["tcp://192.0.2.1:22"], "dns": {"type": "ADDRESS", "name": "old"},
            "some_future_field": 1});
        let body = update_body(fetched, &u.app).unwrap();
        assert_eq!(body["origin_direct"], json!(["tcp://192.0.2.5:22"]));
        assert_eq!(body["ip_firewall"], true);
        assert_eq!(body["edge_ips"]["ips"][0], "203.0.113.10");
        assert_eq!(
            body["dns"],
            json!({"type": "ADDRESS", "name": "new.example.com"})
        );
        assert_eq!(body["some_future_field"], 1);
        assert!(update_body(json!([]), &u.app).is_err());
    }

    #[test]
    fn paths_and_tables() {
        assert_eq!(app_path("ssh"), "/client/v4/zones/local/spectrum/apps/ssh");
        let t = table(&json!([
            {"id": "ssh", "protocol": "tcp/22", "edge_ips": {"type": "static",
             "ips": ["203.0.113.10"]}, "origin_direct": ["tcp://192.0.2.1:22"],
             "ip_firewall": true},
            {"id": "game", "protocol": "udp/27015", "proxy_protocol": "simple"},
            {}
        ]));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "ID    PROTOCOL   EDGE IPS      ORIGINS             PROXY   FIREWALL  TRAFFIC  TLS"
        );
        assert_eq!(
            lines[1],
            "ssh   tcp/22     203.0.113.10  tcp://192.0.2.1:22  off     yes       direct   -"
        );
        assert_eq!(
            lines[2],
            "game  udp/27015  -             -                   simple  no        direct   -"
        );
        assert_eq!(
            lines[3],
            "-     -          -             -                   off     no        direct   -"
        );
        // Not an array at all: just the header.
        assert_eq!(table(&json!(null)).lines().count(), 1);
        assert!(detail(&json!({})).contains("dns:"));
    }
}
