//! `fastpathctl stats`: the daemon's counters (`GET /v1/stats`) as a summary a person reads:
//! totals per verdict and reason, one row per queue (with Mpps), batch times, top reasons per
//! service, binding and app, the XDP program's counters, workers, and change times.
//!
//! Mpps is the average since start for one sample; with `--watch SECS` it is measured between
//! two samples (over the daemon's own `uptime_secs` when it reports it, else the wall clock).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use super::error::CtlError;
use super::output::{Table, duration, float, nanos, num, reasons, text};
use super::{Ctl, Req};

/// `fastpathctl stats`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  fastpathctl stats\n  fastpathctl stats --watch 1\n  fastpathctl --json stats | jq .totals.reasons"
)]
pub struct StatsArgs {
    /// Print again every SECS seconds, with the rates between two samples, until interrupted.
    #[arg(long, value_name = "SECS")]
    pub watch: Option<f64>,
}

/// What a sample needs to compute the next one's rates.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was taken (wall clock, here).
    pub at: Instant,
    /// The daemon's uptime then, if it reports one.
    pub uptime: Option<f64>,
    /// Total frames.
    pub frames: u64,
    /// Frames per queue number.
    pub queues: HashMap<u64, u64>,
}

impl Sample {
    /// The counters of a stats result, taken at `at`.
    pub fn of(v: &Value, at: Instant) -> Sample {
        Sample {
            at,
            uptime: float(v, "uptime_secs"),
            frames: v.get("totals").map_or(0, |t| num(t, "frames")),
            queues: queues(v)
                .iter()
                .map(|q| (num(q, "queue"), num(q, "frames")))
                .collect(),
        }
    }
}

/// Frame rates in Mpps, total and per queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rates {
    /// The interval they were measured over, seconds.
    pub secs: f64,
    /// All queues.
    pub total: Option<f64>,
    /// Per queue number.
    pub queues: HashMap<u64, f64>,
}

/// The rates between `prev` and `cur`; `None` without an interval (or after a restart of the
/// daemon, when counters went backwards).
pub fn rates(prev: &Sample, cur: &Sample) -> Option<Rates> {
    let secs = match (prev.uptime, cur.uptime) {
        (Some(a), Some(b)) if b > a => b - a,
        (Some(a), Some(b)) if b < a => return None,
        _ => cur.at.saturating_duration_since(prev.at).as_secs_f64(),
    };
    if secs <= 0.0 || cur.frames < prev.frames {
        return None;
    }
    let mpps = |a: u64, b: u64| (b >= a).then(|| (b - a) as f64 / secs / 1e6);
    Some(Rates {
        secs,
        total: mpps(prev.frames, cur.frames),
        queues: cur
            .queues
            .iter()
            .filter_map(|(q, &f)| {
                let before = prev.queues.get(q).copied().unwrap_or(0);
                mpps(before, f).map(|r| (*q, r))
            })
            .collect(),
    })
}

/// The average rates since start, from `uptime_secs`.
pub fn average(v: &Value) -> Option<Rates> {
    let secs = float(v, "uptime_secs").filter(|s| *s > 0.0)?;
    let s = Sample::of(v, Instant::now());
    Some(Rates {
        secs,
        total: Some(s.frames as f64 / secs / 1e6),
        queues: s
            .queues
            .iter()
            .map(|(q, &f)| (*q, f as f64 / secs / 1e6))
            .collect(),
    })
}

fn queues(v: &Value) -> &[Value] {
    v.get("queues")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Mpps with three significant digits (at most six decimals): `1.50`, `0.000080`.
pub fn mpps(r: Option<f64>) -> String {
    match r {
        None => "-".into(),
        Some(r) if !r.is_finite() || r < 0.0 => "-".into(),
        Some(0.0) => "0".into(),
        Some(r) => {
            let decimals = (2 - r.log10().floor() as i64).clamp(0, 6) as usize;
            format!("{r:.decimals$}")
        }
    }
}

/// The stats as text. `rates` are from two samples when `measured`, else averages since
/// start.
pub fn summary(v: &Value, rates: Option<&Rates>, measured: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "version {}, up {}",
        text(v.get("version")),
        duration(float(v, "uptime_secs"))
    );
    if let Some(st) = v.get("store").filter(|s| s.is_object()) {
        let _ = write!(
            out,
            "shared configuration: etcd revision {} of {}",
            text(st.get("revision")),
            text(st.get("source"))
        );
        if st.get("stale").and_then(Value::as_bool) == Some(true) {
            let since = st
                .get("stale_since_ms")
                .and_then(Value::as_u64)
                .map_or_else(|| "-".into(), control::analytics::format_time);
            let _ = write!(
                out,
                ", STALE since {since} ({})",
                text(st.get("last_error"))
            );
        }
        if let Some(r) = st.get("refused").filter(|r| r.is_object()) {
            let _ = write!(
                out,
                ", refused revision {}: {}",
                text(r.get("revision")),
                text(r.get("reason"))
            );
        }
        out.push('\n');
    }
    let totals = v.get("totals");
    let frames = totals.map_or(0, |t| num(t, "frames"));
    let _ = write!(out, "frames: {frames}");
    if let Some(t) = rates.and_then(|r| r.total) {
        let _ = write!(out, " ({} Mpps)", mpps(Some(t)));
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "verdicts: {}",
        reasons(totals.and_then(|t| t.get("verdicts")), 0)
    );
    let _ = writeln!(
        out,
        "reasons: {}",
        reasons(totals.and_then(|t| t.get("reasons")), 0)
    );

    let qs = queues(v);
    if !qs.is_empty() {
        out.push('\n');
        let socket = qs
            .iter()
            .any(|q| q.get("socket").is_some_and(Value::is_object));
        let mut head = vec![
            "QUEUE",
            "CORE",
            "FRAMES",
            "MPPS",
            "TX",
            "BATCHES",
            "BATCH P50",
            "BATCH P99",
            "FLOWS",
            "EVICTED",
            "COOKIES OK/BAD",
        ];
        if socket {
            head.extend(["RING FULL", "SOCKET DROPPED"]);
        }
        head.push("TOP REASONS");
        let mut t = Table::new(&head);
        for c in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] {
            t.right(c);
        }
        if socket {
            t.right(11).right(12);
        }
        for q in qs {
            let n = num(q, "queue");
            let b = q.get("batch_ns");
            let mut row = vec![
                text(q.get("queue")),
                text(q.get("core")),
                num(q, "frames").to_string(),
                mpps(rates.and_then(|r| r.queues.get(&n).copied())),
                num(q, "tx_frames").to_string(),
                num(q, "batches").to_string(),
                nanos(b.and_then(|b| float(b, "p50"))),
                nanos(b.and_then(|b| float(b, "p99"))),
                num(q, "flows").to_string(),
                num(q, "flow_evictions").to_string(),
                format!("{}/{}", num(q, "cookies_valid"), num(q, "cookies_invalid")),
            ];
            if socket {
                let s = q.get("socket").cloned().unwrap_or_default();
                row.push(num(&s, "tx_ring_full").to_string());
                row.push(num(&s, "socket_dropped").to_string());
            }
            row.push(reasons(q.get("reasons"), 3));
            t.row(row);
        }
        out.push_str(&t.render());
        match rates {
            Some(r) if measured => {
                let _ = writeln!(out, "(Mpps over the last {:.1} s)", r.secs);
            }
            Some(_) => {
                out.push_str("(Mpps: average since start; --watch SECS for the current rate)\n")
            }
            None => {}
        }
    }

    out.push('\n');
    match v.get("xdp") {
        Some(x @ Value::Object(_)) => {
            // The kernel's share, split by what each reason means: passed to the kernel's
            // stack (not IP, not ours, handed off), answered (SYN-ACKs sent with XDP_TX) or
            // dropped.
            let mut parts: [serde_json::Map<String, Value>; 3] = Default::default();
            if let Some(m) = x.get("reasons").and_then(Value::as_object) {
                for (k, n) in m {
                    let verdict = fastpath::Reason::ALL
                        .iter()
                        .find(|r| r.as_str() == k)
                        .map(|r| r.verdict());
                    let i = match verdict {
                        Some(fastpath::Verdict::Pass) => 0,
                        Some(fastpath::Verdict::Tx) => 1,
                        _ => 2,
                    };
                    parts[i].insert(k.clone(), n.clone());
                }
            }
            let [passed, answered, dropped] = parts;
            let _ = writeln!(
                out,
                "xdp: redirected {}, no socket {}; passed: {}; answered: {}; dropped: {}",
                num(x, "redirected"),
                num(x, "no_socket"),
                reasons(Some(&Value::Object(passed)), 0),
                reasons(Some(&Value::Object(answered)), 0),
                reasons(Some(&Value::Object(dropped)), 0)
            );
        }
        _ => out.push_str("xdp: - (no XDP program: a replay)\n"),
    }

    if let Some(s) = v.get("services").and_then(Value::as_object)
        && !s.is_empty()
    {
        let mut t = Table::new(&["SERVICE", "TOP REASONS"]);
        for (name, r) in s {
            t.row(vec![name.clone(), reasons(Some(r), 4)]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    if let Some(b) = v.get("bindings").and_then(Value::as_array)
        && !b.is_empty()
    {
        let mut t = Table::new(&["BINDING", "CIDR", "SERVICE", "TOP REASONS"]);
        for x in b {
            t.row(vec![
                text(x.get("id")),
                text(x.get("cidr")),
                text(x.get("service")),
                reasons(x.get("reasons"), 4),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    if let Some(a) = v.get("apps").and_then(Value::as_array)
        && !a.is_empty()
    {
        let mut t = Table::new(&["APP", "TOP REASONS"]);
        for x in a {
            t.row(vec![text(x.get("id")), reasons(x.get("reasons"), 4)]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    if let Some(w) = v.get("workers").and_then(Value::as_array)
        && !w.is_empty()
    {
        let mut t = Table::new(&[
            "WORKER",
            "ITEMS",
            "CONNECTS",
            "DISCONNECTS",
            "OPEN",
            "BACKLOG",
        ]);
        t.right(1).right(2).right(3).right(4).right(5);
        for x in w {
            t.row(vec![
                format!("{} {}", text(x.get("service")), text(x.get("index"))),
                num(x, "items").to_string(),
                num(x, "connects").to_string(),
                num(x, "disconnects").to_string(),
                num(x, "open").to_string(),
                num(x, "backlog").to_string(),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
        // Live: the handoffs and the relays.
        if w.iter()
            .any(|x| x.get("handoff").is_some_and(|h| !h.is_null()))
        {
            let mut t = Table::new(&[
                "WORKER",
                "HANDOFFS",
                "IN USE",
                "NO MEMORY",
                "FD LIMIT",
                "FAILED",
                "REINJECTED",
                "STRAY",
                "ORIGIN ERRORS",
                "LIMIT",
                "BACKPRESSURE",
                "BYTES IN",
                "BYTES OUT",
            ]);
            for i in 1..13 {
                t.right(i);
            }
            for x in w {
                let h = x.get("handoff").cloned().unwrap_or_default();
                t.row(vec![
                    format!("{} {}", text(x.get("service")), text(x.get("index"))),
                    num(&h, "ok").to_string(),
                    num(&h, "in_use").to_string(),
                    num(&h, "no_memory").to_string(),
                    num(&h, "fd_limit").to_string(),
                    num(&h, "failed").to_string(),
                    num(&h, "reinjected").to_string(),
                    num(&h, "stray").to_string(),
                    num(x, "origin_errors").to_string(),
                    num(x, "limit_connections").to_string(),
                    num(x, "backpressure").to_string(),
                    num(x, "bytes_ingress").to_string(),
                    num(x, "bytes_egress").to_string(),
                ]);
            }
            out.push('\n');
            out.push_str(&t.render());
        }
    }
    if let Some(tr) = v.get("traffic").and_then(Value::as_array)
        && !tr.is_empty()
    {
        let mut t = Table::new(&[
            "SERVICE",
            "APP",
            "OPEN",
            "CONNECTS",
            "BYTES IN",
            "BYTES OUT",
            "ENDS BY STATUS",
        ]);
        t.right(2).right(3).right(4).right(5);
        for x in tr {
            let ends = x
                .get("ends")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, n)| format!("{k} {}", n.as_u64().unwrap_or(0)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "-".into());
            t.row(vec![
                text(x.get("service")),
                text(x.get("app")),
                num(x, "open").to_string(),
                num(x, "connects").to_string(),
                num(x, "bytes_ingress").to_string(),
                num(x, "bytes_egress").to_string(),
                ends,
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    if let Some(a) = v.get("analytics").and_then(Value::as_array)
        && !a.is_empty()
    {
        let mut t = Table::new(&[
            "SERVICE",
            "APP",
            "EVENT",
            "IP",
            "COUNT",
            "BYTES IN",
            "BYTES OUT",
            "AVG MS",
            "P50 MS",
            "P90 MS",
            "P99 MS",
        ]);
        for i in 3..11 {
            t.right(i);
        }
        for x in a {
            t.row(vec![
                text(x.get("service")),
                text(x.get("app")),
                text(x.get("event")),
                text(x.get("ip_version")),
                num(x, "count").to_string(),
                num(x, "bytes_ingress").to_string(),
                num(x, "bytes_egress").to_string(),
                float(x, "duration_avg_ms").map_or_else(|| "-".into(), |d| format!("{d:.1}")),
                num(x, "duration_median_ms").to_string(),
                num(x, "duration_p90_ms").to_string(),
                num(x, "duration_p99_ms").to_string(),
            ]);
        }
        out.push_str("\nconnection analytics (real connections, by app, event and IP version):\n");
        out.push_str(&t.render());
    }

    let c = v.get("changes").cloned().unwrap_or_default();
    let us = |k: &str| float(&c, k).map_or_else(|| "-".into(), |x| format!("{x:.0} us"));
    let _ = writeln!(
        out,
        "\nchanges: {} applied; swap p50 {}, p99 {}",
        num(&c, "applied"),
        us("swap_us_p50"),
        us("swap_us_p99")
    );
    out
}

/// Runs `fastpathctl stats`.
///
/// # Errors
/// [`CtlError`]; [`CtlError::Usage`] for a `--watch` that is not a positive number.
pub fn run(ctl: &mut Ctl<'_>, a: &StatsArgs) -> Result<(), CtlError> {
    let every = match a.watch {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => {
            return Err(CtlError::Usage(format!(
                "--watch {s}: give a positive number of seconds"
            )));
        }
    };
    let clear = every.is_some() && std::io::stdout().is_terminal();
    let mut prev: Option<Sample> = None;
    loop {
        let v = ctl.call(&Req::get("/v1/stats"))?;
        let now = Instant::now();
        let cur = Sample::of(&v, now);
        if ctl.json {
            ctl.print_json(&v)?;
        } else {
            let measured = prev.as_ref().and_then(|p| rates(p, &cur));
            let text = match &measured {
                Some(r) => summary(&v, Some(r), true),
                None => summary(&v, average(&v).as_ref(), false),
            };
            if clear {
                ctl.print("\x1b[H\x1b[2J")?;
            } else if prev.is_some() {
                ctl.print("\n")?;
            }
            ctl.print(&text)?;
        }
        prev = Some(cur);
        match every {
            Some(d) => std::thread::sleep(d),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use serde_json::json;

    /// The example of `docs/CONTROL.md`.
    fn example() -> Value {
        json!({
          "version": 7, "uptime_secs": 12.5,
          "totals": {"frames": 1000, "verdicts": {"drop": 10, "tx": 900, "pass": 90},
                     "reasons": {"syn_cookie": 900, "new_flow": 90, "unconfigured_port": 10}},
          "queues": [{"queue": 0, "core": 0, "frames": 1000, "bytes": 64000, "tx_frames": 900,
                      "reasons": {"syn_cookie": 900}, "cookies_valid": 3, "cookies_invalid": 1,
                      "flows": 2, "flow_evictions": 0, "batches": 40,
                      "batch_ns": {"count": 40, "mean": 900, "p50": 800, "p90": 1200,
                                   "p99": 2000, "max": 2500},
                      "socket": {"rx": 1000, "tx": 900, "tx_ring_full": 0, "socket_dropped": 0}}],
          "xdp": {"reasons": {"unconfigured_port": 5, "syn_cookie": 7}, "redirected": 1000, "no_socket": 0},
          "services": {"spectrum": {"syn_cookie": 900}, "cdn": {}},
          "bindings": [{"id": "203.0.113.0/24", "cidr": "203.0.113.0/24", "service": "spectrum",
                        "reasons": {"syn_cookie": 900}}],
          "apps": [{"id": "ssh", "reasons": {"new_flow": 90}}],
          "workers": [{"service": "spectrum", "index": 0, "items": 3, "connects": 1,
                       "disconnects": 0, "open": 1, "backlog": 0,
                       "handoff": {"ok": 1, "in_use": 0, "no_memory": 0, "fd_limit": 0,
                                   "failed": 0, "reinjected": 2, "stray": 0},
                       "origin_errors": 0, "limit_connections": 0, "backpressure": 0,
                       "bytes_ingress": 120, "bytes_egress": 4500}],
          "traffic": [{"service": "spectrum", "app": "ssh", "open": 1, "connects": 1,
                       "bytes_ingress": 120, "bytes_egress": 4500, "ends": {"200": 4, "521": 1}}],
          "analytics": [{"service": "spectrum", "app": "ssh", "event": "disconnect",
                         "ip_version": 4, "count": 4, "bytes_ingress": 100, "bytes_egress": 4000,
                         "duration_avg_ms": 12.5, "duration_median_ms": 10,
                         "duration_p90_ms": 20, "duration_p99_ms": 21}],
          "changes": {"applied": 3, "swap_us_p50": 350, "swap_us_p99": 900}
        })
    }

    #[test]
    fn summary_of_the_documented_example() {
        let v = example();
        let s = summary(&v, average(&v).as_ref(), false);
        assert!(
            s.starts_with("version 7, up 12.5 s\nframes: 1000 (0.000080 Mpps)\n"),
            "{s}"
        );
        assert!(s.contains("verdicts: tx 900, pass 90, drop 10\n"), "{s}");
        assert!(s.contains("reasons: syn_cookie 900, new_flow 90, unconfigured_port 10\n"));
        let row = s
            .lines()
            .find(|l| l.trim_start().starts_with("0 "))
            .unwrap();
        for cell in [
            "1000",
            "0.000080",
            "900",
            "40",
            "800 ns",
            "2.0 us",
            "3/1",
            "syn_cookie 900",
        ] {
            assert!(row.contains(cell), "{cell} not in {row:?}");
        }
        assert!(s.contains("average since start"));
        assert!(
            s.contains(
                "xdp: redirected 1000, no socket 0; passed: -; answered: syn_cookie 7; dropped: unconfigured_port 5\n"
            ),
            "{s}"
        );
        assert!(
            s.contains("203.0.113.0/24  203.0.113.0/24  spectrum  syn_cookie 900\n"),
            "{s}"
        );
        assert!(s.contains("ssh  new_flow 90\n"), "{s}");
        assert!(s.contains("cdn       -\n"), "{s}");
        assert!(
            s.contains("spectrum 0      3         1            0     1        0\n"),
            "{s}"
        );
        assert!(
            s.contains("spectrum 0         1       0          0         0       0           2      0              0      0             0       120       4500\n"),
            "{s}"
        );
        assert!(
            s.contains("spectrum  ssh     1         1       120       4500  200 4, 521 1\n"),
            "{s}"
        );
        assert!(
            s.contains("spectrum  ssh  disconnect   4      4       100       4000    12.5      10      20      21\n"),
            "{s}"
        );
        assert!(
            s.ends_with("changes: 3 applied; swap p50 350 us, p99 900 us\n"),
            "{s}"
        );
    }

    #[test]
    fn a_replay_and_an_empty_answer_do_not_panic() {
        let mut v = example();
        v["xdp"] = Value::Null;
        v["queues"][0].as_object_mut().unwrap().remove("socket");
        let s = summary(&v, None, false);
        assert!(s.contains("xdp: - (no XDP program: a replay)"));
        assert!(!s.contains("SOCKET DROPPED"));
        let s = summary(&json!({}), None, false);
        assert!(s.starts_with("version -, up -\nframes: 0\n"), "{s}");
        let shared = serde_json::json!({"version": 3, "uptime_secs": 1.0, "store": {
            "revision": 42, "source": "etcd://192.0.2.193:2379/fastpath/fq", "stale": true,
            "stale_since_ms": 1_800_000_000_000u64, "last_error": "etcd unreachable",
            "refused": {"revision": 44, "reason": "flows.capacity needs a restart"}}});
        let s = summary(&shared, None, false);
        assert!(
            s.contains("shared configuration: etcd revision 42 of etcd://192.0.2.193:2379/fastpath/fq, STALE since 2027-01-15T08:00:00Z (etcd unreachable), refused revision 44: flows.capacity needs a restart\n"),
            "{s}"
        );
    }

    #[test]
    fn mpps_digits() {
        assert_eq!(mpps(Some(1.5)), "1.50");
        assert_eq!(mpps(Some(12.345)), "12.3");
        assert_eq!(mpps(Some(123.4)), "123");
        assert_eq!(mpps(Some(0.00008)), "0.000080");
        assert_eq!(mpps(Some(1e-9)), "0.000000");
        assert_eq!(mpps(Some(0.0)), "0");
        assert_eq!(mpps(None), "-");
    }

    #[test]
    fn rates_between_two_samples() {
        let t0 = Instant::now();
        let a = Sample::of(&example(), t0);
        let mut later = example();
        later["uptime_secs"] = json!(14.5);
        later["totals"]["frames"] = json!(3_001_000);
        later["queues"][0]["frames"] = json!(3_001_000);
        let b = Sample::of(&later, t0 + Duration::from_secs(5));
        let r = rates(&a, &b).unwrap();
        // Over the daemon's 2 s, not the wall clock's 5 s.
        assert_eq!(r.secs, 2.0);
        assert_eq!(r.total, Some(1.5));
        assert_eq!(r.queues[&0], 1.5);
        // The daemon restarted: no rate.
        let mut restarted = later.clone();
        restarted["uptime_secs"] = json!(1.0);
        assert!(rates(&b, &Sample::of(&restarted, t0)).is_none());
        // No uptime: the wall clock.
        let mut x = example();
        x.as_object_mut().unwrap().remove("uptime_secs");
        let mut y = later.clone();
        y.as_object_mut().unwrap().remove("uptime_secs");
        let r = rates(
            &Sample::of(&x, t0),
            &Sample::of(&y, t0 + Duration::from_secs(3)),
        )
        .unwrap();
        assert_eq!(r.secs, 3.0);
        assert_eq!(r.total, Some(1.0));
        let s = summary(&later, Some(&r), true);
        assert!(s.contains("(Mpps over the last 3.0 s)"), "{s}");
    }
}
