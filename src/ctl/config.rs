//! `fastpathctl config`, `diff`, `cdn` and `secrets`: the whole configuration
//! (`/v1/config`), the CDN settings (`/v1/cdn`) and the SYN-cookie secret
//! (`/v1/secrets/rotate`).
//!
//! A config file is loaded and validated here first, with the same loader as the daemon
//! (`control::config`), so a mistake is reported with its file and line and nothing is sent;
//! what goes over the socket is the validated config as JSON.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use control::config::Config;
use hyper::Method;
use serde_json::{Value, json};

use super::error::{ApiError, CtlError};
use super::output::{change_summary, finding_line, pairs, text, verification_report};
use super::{ChangeOpts, Ctl, Req, display_name, read_input, warn};

/// `fastpathctl config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print the running configuration: JSON (the `config` object, ready for `config apply`),
    /// or TOML with --toml. The cookie secret is never included.
    #[command(
        after_help = "Examples:\n  fastpathctl config get --toml > edge.toml\n  fastpathctl --json config get    # {version, config}"
    )]
    Get {
        /// Render it as a TOML config file.
        #[arg(long)]
        toml: bool,
    },
    /// Make FILE (TOML or JSON, by extension or content; `-` for stdin) the running
    /// configuration. It is validated here first (nothing is sent if it does not validate),
    /// then by the daemon, verified, persisted and swapped in; prints what changed.
    #[command(
        after_help = "Examples:\n  fastpathctl config apply edge.toml --dry-run\n  fastpathctl config apply edge.toml --expected-version 7\n\nA file without syn_cookies.secret keeps the running secret. Settings sized at start\n([pipeline], [flows], [workers]) are refused with code 1006: edit the file and restart."
    )]
    Apply {
        /// The configuration file.
        file: PathBuf,
        /// Dry run and compare-and-swap.
        #[command(flatten)]
        change: ChangeOpts,
    },
}

/// `fastpathctl diff`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  fastpathctl diff edge.toml\n\nOutput: one line per region of traffic whose destination changes, e.g.\n  tcp 203.0.113.10 port 22: app ssh -> unconfigured drop (example tcp 203.0.113.10:22)\nthen the verification report (`passed`, or each finding's rule and message)."
)]
pub struct DiffArgs {
    /// The configuration file (TOML or JSON; `-` for stdin).
    pub file: PathBuf,
}

/// `fastpathctl cdn ...`.
#[derive(Debug, Subcommand)]
pub enum CdnCmd {
    /// Print the CDN settings.
    Get,
    /// Change some CDN settings (the others stay).
    #[command(
        after_help = "Examples:\n  fastpathctl cdn set --https-only true\n  fastpathctl cdn set --tcp-ports 80,443,8080-8083 --udp-ports 443\n  fastpathctl cdn set --pool tcp://192.0.2.50:443 --pool tcp://192.0.2.51:443"
    )]
    Set {
        /// TCP ports served, comma-separated, `LO-HI` for a run (replaces the list; `""` for
        /// none).
        #[arg(long, value_name = "LIST", value_parser = parse_ports)]
        tcp_ports: Option<PortList>,
        /// UDP ports served (QUIC: 443), as --tcp-ports.
        #[arg(long, value_name = "LIST", value_parser = parse_ports)]
        udp_ports: Option<PortList>,
        /// Answer port 80 with a RST instead of serving it.
        #[arg(long, value_name = "BOOL")]
        https_only: Option<bool>,
        /// An L7 proxy of the pool, `tcp://IP:PORT`. Repeat for several; replaces the pool.
        #[arg(long, value_name = "URL")]
        pool: Vec<String>,
        /// Empty the pool.
        #[arg(long, conflicts_with = "pool")]
        no_pool: bool,
        /// Dry run and compare-and-swap.
        #[command(flatten)]
        change: ChangeOpts,
    },
}

/// `fastpathctl secrets ...`.
#[derive(Debug, Subcommand)]
pub enum SecretsCmd {
    /// Make a new SYN-cookie secret current; the previous one keeps validating for one
    /// rotation period. Random, or the one given (give every node of a fleet the same).
    #[command(
        after_help = "Examples:\n  fastpathctl secrets rotate\n  fastpathctl secrets rotate --secret \"$(openssl rand -hex 32)\"\n\nWhen the configuration holds a fixed syn_cookies.secret, the new one is persisted there.\nThe secret is never printed."
    )]
    Rotate {
        /// The new secret: 64 hex digits (32 bytes). Default: random, made by the daemon.
        #[arg(long, value_name = "HEX")]
        secret: Option<String>,
        /// Dry run and compare-and-swap (passed to the daemon as for every change).
        #[command(flatten)]
        change: ChangeOpts,
    },
}

/// A list of ports from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortList(pub Vec<u32>);

/// Parses `80,443,8080-8083` (empty: no ports).
///
/// # Errors
/// A message for clap naming the bad item.
pub fn parse_ports(s: &str) -> Result<PortList, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let port = |p: &str| -> Result<u32, String> {
            match p.trim().parse::<u32>() {
                Ok(n) if (1..=65535).contains(&n) => Ok(n),
                _ => Err(format!("{item:?}: ports are 1 to 65535")),
            }
        };
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (port(a)?, port(b)?);
                if a > b {
                    return Err(format!("{item:?}: a backwards range"));
                }
                out.extend(a..=b);
            }
            None => out.push(port(item)?),
        }
    }
    Ok(PortList(out))
}

/// Loads and validates a config file: JSON when its name ends in `.json` or (without a
/// `.toml` name) its text starts with `{`, else TOML.
///
/// # Errors
/// [`CtlError::LocalFile`] (unreadable), [`CtlError::Invalid`] with every problem, each with
/// the file and line.
pub fn load_file(path: &Path) -> Result<Config, CtlError> {
    let text = read_input(path)?;
    load_text(path, &text)
}

/// [`load_file`] on text already read.
///
/// # Errors
/// As [`load_file`].
pub fn load_text(path: &Path, text: &str) -> Result<Config, CtlError> {
    let name = display_name(path);
    let json = path.extension().is_some_and(|e| e == "json")
        || (path.extension().is_none_or(|e| e != "toml") && text.trim_start().starts_with('{'));
    let loaded = if json {
        Config::from_json_str(text)
    } else {
        Config::from_toml_str(text)
    };
    loaded.map_err(|e| CtlError::Invalid {
        errors: e
            .with_file(Path::new(&name))
            .to_string()
            .lines()
            .map(String::from)
            .collect(),
        file: name,
    })
}

/// The `PUT /v1/config` of a loaded config.
///
/// # Errors
/// [`CtlError::LocalFile`] if the config cannot be written as JSON (the model rules it out).
pub fn apply_request(cfg: &Config, change: &ChangeOpts) -> Result<Req, CtlError> {
    let body = serde_json::to_value(cfg)
        .map_err(|e| CtlError::LocalFile(format!("cannot write the config as JSON: {e}")))?;
    Ok(Req::with(Method::PUT, change.on("/v1/config"), body))
}

/// The running configuration (the `config` of `GET /v1/config`) as a TOML file, with its
/// version in a comment.
///
/// # Errors
/// [`CtlError::Unexpected`]: the daemon's config does not fit this client's model.
pub fn as_toml(result: &Value) -> Result<String, CtlError> {
    let cfg: Config = serde_json::from_value(result.get("config").cloned().unwrap_or_default())
        .map_err(|e| {
            CtlError::Unexpected(format!(
                "the daemon's config does not fit this fastpathctl's model ({e}): a daemon of \
                 another version? `fastpathctl config get` prints it as JSON"
            ))
        })?;
    let toml = cfg.to_toml_string().map_err(|e| {
        CtlError::Unexpected(format!(
            "the daemon's config cannot be written as TOML: {e}"
        ))
    })?;
    Ok(format!(
        "# The running configuration, version {} (fastpathctl config get --toml).\n{toml}",
        text(result.get("version"))
    ))
}

/// Removes `config.syn_cookies.secret` from a `GET /v1/config` result; whether it was there.
/// The contract says the daemon never sends it; this client never prints it either, so that
/// `config get --toml > edge.toml` cannot leak it into a file that gets copied around.
pub fn strip_secret(result: &mut Value) -> bool {
    result
        .get_mut("config")
        .and_then(|c| c.get_mut("syn_cookies"))
        .and_then(Value::as_object_mut)
        .is_some_and(|s| s.remove("secret").is_some())
}

/// The findings of a refusal by the verification (code 1005, `result.findings`), as a
/// verification report; `None` for any other refusal.
pub fn refused_findings(e: &CtlError) -> Option<String> {
    let CtlError::Refused {
        errors, envelope, ..
    } = e
    else {
        return None;
    };
    if !errors.iter().any(|x| x.code == Some(1005)) {
        return None;
    }
    let findings = envelope
        .get("result")
        .and_then(|r| r.get("findings"))
        .cloned()
        .unwrap_or_else(|| {
            // No findings in the result: the messages are the findings.
            Value::Array(
                errors
                    .iter()
                    .map(|x| json!({ "rule": "finding", "message": x.message }))
                    .collect(),
            )
        });
    Some(verification_report(
        &json!({ "passed": false, "findings": findings }),
    ))
}

/// Prints the outcome of a whole-config apply or dry run; a dry run the daemon would refuse
/// (`would_apply: false`) is an error (exit 1), with the findings as its messages.
fn outcome(ctl: &mut Ctl<'_>, req: &Req, dry_run: bool) -> Result<(), CtlError> {
    let r = match ctl.call(req) {
        Ok(r) => r,
        Err(e) => {
            if !ctl.json
                && let Some(report) = refused_findings(&e)
            {
                ctl.print(&report)?;
                ctl.print("would apply: no\n")?;
            }
            return Err(e);
        }
    };
    if ctl.json {
        ctl.print_json(&r)?;
    } else {
        let mut s = change_summary(&r);
        if dry_run && r.get("verification").is_none() {
            // A daemon that does not report it refuses a dry run that does not verify
            // (code 1005); an answer means it passed.
            s.push_str("verification: passed\n");
        }
        ctl.print(&s)?;
    }
    if r.get("would_apply").and_then(Value::as_bool) == Some(false) {
        let findings = r
            .get("verification")
            .and_then(|v| v.get("findings"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut errors: Vec<ApiError> = findings
            .iter()
            .map(|f| ApiError {
                code: Some(1005),
                message: finding_line(f),
            })
            .collect();
        if errors.is_empty() {
            errors.push(ApiError {
                code: None,
                message: "the daemon would not apply it".into(),
            });
        }
        return Err(CtlError::Refused {
            status: 200,
            errors,
            envelope: Value::Null,
        });
    }
    Ok(())
}

/// Runs `fastpathctl config ...`.
///
/// # Errors
/// [`CtlError`].
pub fn config(ctl: &mut Ctl<'_>, cmd: &ConfigCmd) -> Result<(), CtlError> {
    match cmd {
        ConfigCmd::Get { toml } => {
            let mut r = ctl.call(&Req::get("/v1/config"))?;
            if strip_secret(&mut r) {
                warn(
                    "note: the daemon sent syn_cookies.secret, which GET /v1/config should omit \
                     (docs/CONTROL.md); it is not printed",
                );
            }
            if ctl.json {
                ctl.print_json(&r)
            } else if *toml {
                let s = as_toml(&r)?;
                ctl.print(&s)
            } else {
                let c = r.get("config").cloned().unwrap_or_default();
                ctl.print_json(&c)
            }
        }
        ConfigCmd::Apply { file, change } => {
            let cfg = load_file(file)?;
            let req = apply_request(&cfg, change)?;
            outcome(ctl, &req, change.dry_run)
        }
    }
}

/// Runs `fastpathctl diff`.
///
/// # Errors
/// [`CtlError`]; a file the daemon would refuse is [`CtlError::Refused`] (exit 1).
pub fn diff(ctl: &mut Ctl<'_>, a: &DiffArgs) -> Result<(), CtlError> {
    let cfg = load_file(&a.file)?;
    let req = apply_request(
        &cfg,
        &ChangeOpts {
            dry_run: true,
            expected_version: None,
        },
    )?;
    outcome(ctl, &req, true)
}

/// The PATCH of `cdn set`.
///
/// # Errors
/// [`CtlError::Usage`]: nothing to set.
pub fn cdn_request(cmd: &CdnCmd) -> Result<Req, CtlError> {
    let CdnCmd::Set {
        tcp_ports,
        udp_ports,
        https_only,
        pool,
        no_pool,
        change,
    } = cmd
    else {
        return Ok(Req::get("/v1/cdn"));
    };
    let mut b = serde_json::Map::new();
    if let Some(p) = tcp_ports {
        b.insert("tcp_ports".into(), json!(p.0));
    }
    if let Some(p) = udp_ports {
        b.insert("udp_ports".into(), json!(p.0));
    }
    if let Some(h) = https_only {
        b.insert("https_only".into(), json!(h));
    }
    if !pool.is_empty() || *no_pool {
        b.insert("pool".into(), json!(pool));
    }
    if b.is_empty() {
        return Err(CtlError::Usage(
            "nothing to set: give --tcp-ports, --udp-ports, --https-only, --pool or --no-pool"
                .into(),
        ));
    }
    Ok(Req::with(
        Method::PATCH,
        change.on("/v1/cdn"),
        Value::Object(b),
    ))
}

/// The CDN settings as `key: value` lines.
pub fn cdn_detail(v: &Value) -> String {
    pairs(&[
        ("tcp ports", text(v.get("tcp_ports"))),
        ("udp ports", text(v.get("udp_ports"))),
        ("https only", text(v.get("https_only"))),
        ("pool", text(v.get("pool"))),
    ])
}

/// Runs `fastpathctl cdn ...`.
///
/// # Errors
/// [`CtlError`].
pub fn cdn(ctl: &mut Ctl<'_>, cmd: &CdnCmd) -> Result<(), CtlError> {
    let req = cdn_request(cmd)?;
    match cmd {
        CdnCmd::Get => ctl.show(&req, cdn_detail),
        CdnCmd::Set { .. } => ctl.change(&req, cdn_detail),
    }
}

/// The POST of `secrets rotate`.
///
/// # Errors
/// [`CtlError::Usage`]: a secret that is not 64 hex digits (the message never shows it).
pub fn rotate_request(cmd: &SecretsCmd) -> Result<Req, CtlError> {
    let SecretsCmd::Rotate { secret, change } = cmd;
    let path = change.on("/v1/secrets/rotate");
    match secret {
        None => Ok(Req {
            method: Method::POST,
            path,
            body: None,
        }),
        Some(s) => {
            let s = s.trim().trim_start_matches("0x");
            control::config::Secret(s.to_string())
                .bytes()
                .map_err(|e| CtlError::Usage(format!("--secret {e}")))?;
            Ok(Req::with(Method::POST, path, json!({ "secret": s })))
        }
    }
}

/// Runs `fastpathctl secrets ...`.
///
/// # Errors
/// [`CtlError`].
pub fn secrets(ctl: &mut Ctl<'_>, cmd: &SecretsCmd) -> Result<(), CtlError> {
    let req = rotate_request(cmd)?;
    let SecretsCmd::Rotate { change, .. } = cmd;
    let r = ctl.call(&req)?;
    if change.dry_run && r.get("rotated").and_then(Value::as_bool) == Some(true) {
        warn(
            "the daemon rotated the secret although --dry-run was given (it does not support dry runs of a rotation)",
        );
    }
    if ctl.json {
        return ctl.print_json(&r);
    }
    let mut s = pairs(&[
        ("rotated", text(r.get("rotated"))),
        ("persisted", text(r.get("persisted"))),
        ("version", text(r.get("version"))),
    ]);
    if let Some(c) = r.get("_change") {
        s.push_str(&change_summary(c));
    }
    ctl.print(&s)
}

#[cfg(test)]
mod test {
    use super::super::Command;
    use super::super::test::{parse, parse_err};
    use super::*;

    const LAB: &str = include_str!("../../pcaps/edge-lab.toml");

    #[test]
    fn port_lists() {
        assert_eq!(
            parse_ports("80, 443,8080-8082").unwrap().0,
            [80, 443, 8080, 8081, 8082]
        );
        assert_eq!(parse_ports("").unwrap().0, Vec::<u32>::new());
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("70000").is_err());
        assert!(parse_ports("9-1").is_err());
        assert!(parse_ports("http").is_err());
    }

    #[test]
    fn cdn_set_sends_only_what_is_given() {
        let Command::Cdn { cmd } = parse(&[
            "cdn",
            "set",
            "--https-only",
            "true",
            "--udp-ports",
            "",
            "--expected-version",
            "2",
        ])
        .command
        else {
            panic!()
        };
        let r = cdn_request(&cmd).unwrap();
        assert_eq!(r.method, Method::PATCH);
        assert_eq!(r.path, "/v1/cdn?expected_version=2");
        assert_eq!(
            r.body.unwrap(),
            json!({"https_only": true, "udp_ports": []})
        );
        let Command::Cdn { cmd } = parse(&["cdn", "set", "--no-pool"]).command else {
            panic!()
        };
        assert_eq!(
            cdn_request(&cmd).unwrap().body.unwrap(),
            json!({"pool": []})
        );
        let Command::Cdn { cmd } = parse(&["cdn", "set"]).command else {
            panic!()
        };
        assert_eq!(cdn_request(&cmd).unwrap_err().exit_code(), 2);
        parse_err(&["cdn", "set", "--pool", "tcp://192.0.2.1:443", "--no-pool"]);
    }

    #[test]
    fn config_files_by_extension_or_content() {
        let cfg = load_text(Path::new("edge.toml"), LAB).unwrap();
        assert_eq!(cfg.node.name, "edge-lab");
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(load_text(Path::new("edge.json"), &json).unwrap(), cfg);
        assert_eq!(load_text(Path::new("-"), &json).unwrap(), cfg);
        assert_eq!(load_text(Path::new("-"), LAB).unwrap(), cfg);
        let r = apply_request(
            &cfg,
            &ChangeOpts {
                dry_run: true,
                expected_version: Some(3),
            },
        )
        .unwrap();
        assert_eq!(r.path, "/v1/config?dry_run=true&expected_version=3");
        assert_eq!(r.body.unwrap()["node"]["name"], "edge-lab");
    }

    #[test]
    fn a_bad_file_names_its_lines_and_is_not_sent() {
        let bad = LAB.replace(
            "cidr = \"203.0.113.0/24\"          #",
            "cidr = \"203.0.113.0/25\" #",
        );
        let e = load_text(Path::new("edge.toml"), &bad).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        let lines = e.lines();
        assert_eq!(lines[0], "edge.toml does not validate; nothing was sent:");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("  edge.toml:12: prefixes[0].cidr")),
            "{lines:?}"
        );
        let e = load_text(Path::new("-"), "{\"nodes\": 1}").unwrap_err();
        assert!(e.to_string().contains("<stdin>"), "{e}");
    }

    #[test]
    fn running_config_as_toml_loads_back() {
        let cfg = Config::from_toml_str(LAB).unwrap();
        let r = json!({"version": 7, "config": cfg});
        let t = as_toml(&r).unwrap();
        assert!(
            t.starts_with("# The running configuration, version 7"),
            "{t}"
        );
        assert_eq!(Config::from_toml_str(&t).unwrap(), cfg);
        assert_eq!(
            as_toml(&json!({"config": {"colour": 1}}))
                .unwrap_err()
                .exit_code(),
            3
        );
    }

    fn rotate(args: &[&str]) -> Result<Req, CtlError> {
        let mut v = vec!["secrets", "rotate"];
        v.extend_from_slice(args);
        match parse(&v).command {
            Command::Secrets { cmd } => rotate_request(&cmd),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn config_get_never_prints_the_secret() {
        let cfg = Config::from_toml_str(LAB).unwrap();
        let mut r = json!({"version": 1, "config": cfg});
        assert!(strip_secret(&mut r));
        assert!(!r.to_string().contains("6c61622d"), "{r}");
        assert!(!strip_secret(&mut r));
        assert!(!strip_secret(&mut json!({"config": null})));
        let t = as_toml(&r).unwrap();
        assert!(!t.contains("secret"), "{t}");
    }

    #[test]
    fn secrets_are_checked_and_never_echoed() {
        let r = rotate(&[]).unwrap();
        assert_eq!(
            (r.method, r.path, r.body),
            (Method::POST, "/v1/secrets/rotate".into(), None)
        );
        let hex = "ab".repeat(32);
        assert_eq!(
            rotate(&["--secret", &hex]).unwrap().body.unwrap(),
            json!({"secret": hex})
        );
        let e = rotate(&["--secret", "zzzz"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(!e.to_string().contains("zzzz"), "{e}");
    }

    #[test]
    fn verification_refusals_become_a_report() {
        let e = CtlError::from_answer(
            400,
            json!({"success": false, "errors": [{"code": 1005, "message": "m"}],
                   "result": {"findings": [{"rule": "overlap", "message": "m",
                   "example": {"proto": "tcp", "dst": "203.0.113.10", "port": 22}}]}}),
        );
        assert_eq!(
            refused_findings(&e).unwrap(),
            "verification: 1 finding\n  overlap: m (example tcp 203.0.113.10:22)\n"
        );
        let e = CtlError::from_answer(400, json!({"errors": [{"code": 1004, "message": "m"}]}));
        assert!(refused_findings(&e).is_none());
    }
}
