//! `fastpathctl status`, `explain` and `metrics`: what the daemon runs, why a frame gets its
//! verdict (`POST /v1/explain`, against the running tables and cookie secret), and the
//! Prometheus text (`GET /metrics`).

use std::fmt::Write as _;

use clap::Args;
use hyper::Method;
use serde_json::{Value, json};

use super::error::CtlError;
use super::output::{duration, pairs, text};
use super::{Ctl, Req};

/// `fastpathctl explain`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  fastpathctl explain 02000000000102000000001008004500002c0001400040...\n\nThe frame runs through the same pipeline code as live traffic, against the running tables\nand cookie secret, with an empty flow table: an ACK that answers a SYN-ACK the edge sent\nwithin the last minute validates."
)]
pub struct ExplainArgs {
    /// The frame in hex from the Ethernet header on (Wireshark's "Copy as Hex Stream"; spaces
    /// and colons are fine).
    #[arg(value_name = "HEX")]
    pub hex: String,
    /// When the frame arrived, in Unix seconds (cookies are time-bound). Default: now.
    #[arg(long, value_name = "UNIX_SECS")]
    pub time: Option<f64>,
}

/// The status fields in the order they are shown, with their labels.
const STATUS: &[(&str, &str)] = &[
    ("node", "node"),
    ("version", "version"),
    ("config_source", "config source"),
    ("etcd_revision", "etcd revision"),
    ("stale", "stale"),
    ("refused", "refused"),
    ("config_file", "config file"),
    ("read_only", "read only"),
    ("uptime_secs", "uptime"),
    ("data_plane", "data plane"),
    ("queues", "queues"),
    ("prefixes", "prefixes"),
    ("bindings", "bindings"),
    ("spectrum_apps", "spectrum apps"),
    ("access_rules", "access rules"),
    ("changes_applied", "changes applied"),
    ("swap_us_p50", "swap p50"),
    ("swap_us_p99", "swap p99"),
];

fn micros(v: Option<&Value>) -> String {
    match v.and_then(Value::as_f64) {
        Some(us) => format!("{us:.0} us"),
        None => text(v),
    }
}

/// `GET /v1/status` as `key: value` lines: the documented fields (those the daemon sent),
/// then any others it sent.
pub fn status_text(v: &Value) -> String {
    let mut items: Vec<(String, String)> = Vec::new();
    for (k, label) in STATUS {
        let Some(x) = v.get(*k) else { continue };
        let shown = match *k {
            "uptime_secs" => duration(x.as_f64()),
            "swap_us_p50" | "swap_us_p99" => micros(Some(x)),
            "queues" => match x {
                Value::Array(a) if a.iter().any(Value::is_object) => a.len().to_string(),
                other => text(Some(other)),
            },
            _ => text(Some(x)),
        };
        items.push(((*label).to_string(), shown));
    }
    if let Some(m) = v.as_object() {
        for (k, x) in m {
            if !STATUS.iter().any(|(s, _)| s == k) {
                items.push((k.replace('_', " "), text(Some(x))));
            }
        }
    }
    let refs: Vec<(&str, String)> = items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    pairs(&refs)
}

/// Runs `fastpathctl status`.
///
/// # Errors
/// [`CtlError`].
pub fn status(ctl: &mut Ctl<'_>) -> Result<(), CtlError> {
    ctl.show(&Req::get("/v1/status"), status_text)
}

/// The POST of `explain`.
///
/// # Errors
/// [`CtlError::Usage`]: a negative time.
pub fn explain_request(a: &ExplainArgs) -> Result<Req, CtlError> {
    let mut body = json!({ "hex": a.hex.trim() });
    match a.time {
        Some(t) if !(t >= 0.0 && t.is_finite()) => {
            return Err(CtlError::Usage(
                "--time is Unix seconds, not negative".into(),
            ));
        }
        Some(t) => body["time"] = json!(t),
        None => {}
    }
    Ok(Req::with(Method::POST, "/v1/explain", body))
}

/// An explanation as `fastpath explain` prints it: the verdict, the context, the numbered
/// path, the reply.
pub fn explain_text(e: &Value) -> String {
    let s = |k: &str| e.get(k).and_then(Value::as_str);
    let verdict = s("verdict").unwrap_or("?");
    let reason = s("reason").unwrap_or("?");
    let mut out = String::new();
    let _ = writeln!(out, "verdict: {verdict} ({reason})");
    let mut ctx = Vec::new();
    if let Some(x) = s("service") {
        ctx.push(format!("service {x}"));
    }
    if let Some(x) = s("binding") {
        ctx.push(format!("binding {x}"));
    }
    if let Some(x) = s("app") {
        ctx.push(format!("app {x}"));
    }
    if let Some(w) = e.get("worker").and_then(Value::as_u64) {
        ctx.push(format!("worker {w}"));
    }
    if !ctx.is_empty() {
        let _ = writeln!(out, "         {}", ctx.join(", "));
    }
    let path: Vec<String> = e
        .get("path")
        .and_then(Value::as_array)
        .map(|p| p.iter().map(|x| text(Some(x))).collect())
        .unwrap_or_default();
    let _ = writeln!(out, "path ({} bytes):", text(e.get("length")));
    for (i, step) in path.iter().enumerate() {
        let _ = writeln!(out, "  {}. {step}", i + 1);
    }
    if let Some(m) = s("malformed") {
        let _ = writeln!(out, "  {}. malformed: {m}", path.len() + 1);
    }
    let _ = writeln!(out, "  => {verdict}/{reason}");
    if let Some(r) = s("reply_hex") {
        let _ = writeln!(out, "reply: {r}");
    }
    out
}

/// Runs `fastpathctl explain`.
///
/// # Errors
/// [`CtlError`].
pub fn explain(ctl: &mut Ctl<'_>, a: &ExplainArgs) -> Result<(), CtlError> {
    let req = explain_request(a)?;
    ctl.show(&req, explain_text)
}

/// Runs `fastpathctl metrics`: the Prometheus text as it is (no envelope), also with
/// `--json` (there is no JSON form).
///
/// # Errors
/// [`CtlError`]: a refusal comes as an envelope.
pub fn metrics(ctl: &mut Ctl<'_>) -> Result<(), CtlError> {
    let reply = ctl.client.send(Method::GET, "/metrics", None)?;
    if reply.status != 200 {
        // Refusals are envelopes; `envelope` turns them into the error.
        ctl.client.envelope(&reply)?;
        return Err(CtlError::Unexpected(format!(
            "GET /metrics answered HTTP {}",
            reply.status
        )));
    }
    let text = String::from_utf8_lossy(&reply.body).to_string();
    ctl.print(&text)?;
    if !text.is_empty() && !text.ends_with('\n') {
        ctl.print("\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn status_shows_what_is_there_in_order() {
        let v = json!({"node": "edge-lab", "version": 3, "config_file": "/etc/edge.toml",
            "prefixes": 2, "swap_us_p50": 350.4, "swap_us_p99": 900.0, "read_only": false,
            "uptime_secs": 75.0, "queues": [{"queue": 0}, {"queue": 1}], "something_new": "x"});
        let got: Vec<(String, String)> = status_text(&v)
            .lines()
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.to_string(), v.trim().to_string())
            })
            .collect();
        let want = [
            ("node", "edge-lab"),
            ("version", "3"),
            ("config file", "/etc/edge.toml"),
            ("read only", "no"),
            ("uptime", "1 min 15 s"),
            ("queues", "2"),
            ("prefixes", "2"),
            ("swap p50", "350 us"),
            ("swap p99", "900 us"),
            ("something new", "x"),
        ];
        assert_eq!(
            got,
            want.map(|(k, v)| (k.to_string(), v.to_string())).to_vec()
        );
        assert_eq!(status_text(&json!(null)), "");
    }

    #[test]
    fn explain_request_and_text() {
        let r = explain_request(&ExplainArgs {
            hex: " 0a0b ".into(),
            time: Some(1.5),
        })
        .unwrap();
        assert_eq!(r.path, "/v1/explain");
        assert_eq!(r.body.unwrap(), json!({"hex": "0a0b", "time": 1.5}));
        assert!(
            explain_request(&ExplainArgs {
                hex: "0a".into(),
                time: Some(-1.0)
            })
            .is_err()
        );
        let e = json!({"length": 58, "verdict": "drop", "reason": "firewall_block",
            "service": "spectrum", "binding": "203.0.113.0/24", "app": "ssh", "worker": null,
            "path": ["ethernet: IPv4", "access rule: block 198.51.100.0/24"],
            "malformed": null, "reply_hex": null});
        assert_eq!(
            explain_text(&e),
            "verdict: drop (firewall_block)\n         service spectrum, binding 203.0.113.0/24, app ssh\n\
             path (58 bytes):\n  1. ethernet: IPv4\n  2. access rule: block 198.51.100.0/24\n  \
             => drop/firewall_block\n"
        );
        assert_eq!(
            explain_text(&json!({})),
            "verdict: ? (?)\npath (- bytes):\n  => ?/?\n"
        );
    }
}
