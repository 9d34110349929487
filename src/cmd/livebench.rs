//! `fastpath bench --live`: the same generated traffic against the fast path, a plain XDP_DROP
//! program and the Linux kernel alone, on a veth pair between two namespaces, in one run.
//!
//! The lab's `client` namespace runs `fastpath gen` (AF_XDP TX, pinned to the last core); the
//! `edge` namespace runs, one after the other:
//! - the fast path (`fastpath run`): counted by its XDP counters and its queues' TX;
//! - a plain XDP_DROP program (`fastpath run --drop-all`): counted by its one counter;
//! - the kernel alone: an nftables table that accepts what the configuration serves and drops
//!   every other packet to our prefixes (counted), a listener on the SYN target, and kernel SYN
//!   cookies for every SYN (`net.ipv4.tcp_syncookies=2`), counted by `SyncookiesSent`.
//!
//! Each handler sees the same two floods from the same generator: UDP to an unconfigured port
//! (handled = dropped per second) and SYNs to a Spectrum app (handled = SYN-ACKs per second,
//! checked against the packets the client's interface received). Sources come from
//! 192.0.2.192/26, routed back to the client, where a blackhole route drops the replies.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fastpath::tables::{L4Proto, TablesSpec};
use fastpath::verdict::Service;
use serde::Serialize;
use serde_json::Value;

use crate::cmd::bench::BenchArgs;
use crate::common;
use crate::lab::{Lab, LabSpec, link_stat, sh};

const SOURCES: &str = "192.0.2.192/26";
const LAB_NAME: &str = "fpbench";

/// One handler's result on one flood.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `udp_unconfigured_port` or `syn_flood`.
    pub traffic: String,
    /// `fastpath`, `xdp_drop` or `kernel`.
    pub handler: String,
    /// Frames the generator sent per second.
    pub sent_pps: f64,
    /// Frames handled per second (dropped, or answered with a SYN-ACK).
    pub handled_pps: f64,
    /// Replies the client's interface received per second.
    pub client_rx_pps: f64,
    /// Seconds the generator ran.
    pub seconds: f64,
}

/// The whole live bench.
#[derive(Debug, Clone, Serialize)]
pub struct LiveBench {
    /// Rounds (each runs every handler once, in turn; a ratio is the median of the rounds').
    pub rounds: usize,
    /// XDP mode of the fast path (`native` or `generic`).
    pub xdp_mode: String,
    /// AF_XDP mode of the fast path's sockets.
    pub zero_copy: bool,
    /// Destination of the UDP flood.
    pub udp_target: String,
    /// Destination of the SYN flood.
    pub syn_target: String,
    /// Every run.
    pub rows: Vec<Row>,
    /// Fast path / XDP_DROP, handled packets per second, UDP flood to an unconfigured port.
    pub fastpath_vs_xdp_drop: f64,
    /// Fast path / kernel SYN cookies, SYN-ACKs per second.
    pub fastpath_vs_kernel_syn: f64,
    /// Fast path / kernel nftables, drops per second, UDP flood to an unconfigured port.
    pub fastpath_vs_kernel_udp: f64,
}

/// A process in a namespace that says on stderr when it is ready; stopped with SIGTERM.
pub(crate) struct Served {
    child: Option<Child>,
}

impl Served {
    pub(crate) fn start(ns: &str, program: &str, args: &[&str], ready: &str) -> Result<Served> {
        let mut child = Lab::exec(ns, program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let mut err = child.stderr.take().context("stderr")?;
        let mut s = Served { child: Some(child) };
        if ready.is_empty() {
            std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
            return Ok(s);
        }
        let started = Instant::now();
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while !seen.contains(ready) {
            let n = err.read(&mut buf).unwrap_or(0);
            if n == 0 || started.elapsed() > Duration::from_secs(20) {
                s.kill();
                bail!("{program} did not start: {}", seen.trim());
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        Ok(s)
    }

    /// SIGTERM, then everything it printed on stdout.
    pub(crate) fn stop(mut self) -> Result<String> {
        let mut child = self.child.take().context("not running")?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let mut out = String::new();
        if let Some(mut o) = child.stdout.take() {
            o.read_to_string(&mut out)?;
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("exited with {status}: {out}");
        }
        Ok(out)
    }

    fn kill(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.child = None;
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The kernel-alone configuration: accept what the configuration serves, drop (and count)
/// every other TCP/UDP packet and every other protocol to our prefixes.
pub fn kernel_ruleset(spec: &TablesSpec) -> String {
    let fam = |a: &IpAddr| if a.is_ipv4() { "ip" } else { "ip6" };
    let proto = |p: L4Proto| match p {
        L4Proto::Tcp => "tcp",
        L4Proto::Udp => "udp",
    };
    let mut r = String::from(
        "table inet fpbench {\n chain pre {\n  type filter hook prerouting priority raw; policy accept;\n",
    );
    for app in &spec.apps {
        for ip in &app.edge_ips {
            let _ = writeln!(
                r,
                "  {} daddr {ip} {} dport {}-{} accept",
                fam(ip),
                proto(app.proto),
                app.ports.lo,
                app.ports.hi
            );
        }
    }
    for b in spec.bindings.iter().filter(|b| b.service == Service::Cdn) {
        let f = fam(&b.cidr.addr());
        for (p, ports) in [("tcp", &spec.cdn.tcp_ports), ("udp", &spec.cdn.udp_ports)] {
            if ports.is_empty() {
                continue;
            }
            let set: Vec<String> = ports.iter().map(u16::to_string).collect();
            let _ = writeln!(
                r,
                "  {f} daddr {} {p} dport {{ {} }} accept",
                b.cidr,
                set.join(", ")
            );
        }
    }
    for p in &spec.prefixes {
        let _ = writeln!(r, "  {} daddr {} counter drop", fam(&p.cidr.addr()), p.cidr);
    }
    r.push_str(" }\n}\n");
    r
}

fn nft(ns: &str, rules: &str) -> Result<()> {
    let mut child = Lab::exec(ns, "nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft (needs nftables)")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(rules.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("nft: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Packets counted by the drop rules of the kernel table.
fn nft_drops(ns: &str) -> Result<u64> {
    let out = sh(Lab::exec(ns, "nft").args(["list", "table", "inet", "fpbench"]))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let w: Vec<&str> = text.split_whitespace().collect();
    Ok(w.windows(2)
        .filter(|p| p[0] == "packets")
        .filter_map(|p| p[1].parse::<u64>().ok())
        .sum())
}

/// A `TcpExt` counter of namespace `ns`.
fn tcp_ext(ns: &str, name: &str) -> Result<u64> {
    let out = sh(Lab::exec(ns, "cat").arg("/proc/net/netstat"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    if let [head, vals] = lines[..] {
        for (k, v) in head.split_whitespace().zip(vals.split_whitespace()) {
            if k == name {
                return v.parse().context("parsing /proc/net/netstat");
            }
        }
    }
    bail!("no TcpExt {name} in /proc/net/netstat")
}

struct Bench<'a> {
    lab: &'a Lab,
    exe: String,
    config: Option<String>,
    seconds: f64,
    gen_core: usize,
}

impl Bench<'_> {
    fn generate(&self, flood: &str, target: SocketAddr) -> Result<Value> {
        let secs = format!("{}", self.seconds);
        let (dst, port, core) = (
            target.ip().to_string(),
            target.port().to_string(),
            self.gen_core.to_string(),
        );
        let out = sh(Lab::exec(&self.lab.client, &self.exe).args([
            "gen",
            "--iface",
            &self.lab.client_iface,
            flood,
            "--dst",
            &dst,
            "--dport",
            &port,
            "--src",
            SOURCES,
            "--seconds",
            &secs,
            "--core",
            &core,
            "--json",
        ]))
        .context("running the generator")?;
        serde_json::from_slice(&out.stdout).context("the generator's report")
    }

    fn run_args(&self, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = [
            "run",
            "--iface",
            &self.lab.edge_iface,
            "--json",
            "--stats-every",
            "0",
            "--cores",
            "0",
            "--no-control",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        if let Some(c) = &self.config {
            a.push("--config".into());
            a.push(c.clone());
        }
        a.extend(extra.iter().map(|s| (*s).to_string()));
        a
    }

    /// One flood against the fast path (or the drop-all program with `--drop-all`).
    fn xdp(&self, flood: &str, target: SocketAddr, extra: &[&str]) -> Result<(Value, Value)> {
        let args = self.run_args(extra);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let served = Served::start(&self.lab.edge, &self.exe, &argv, "fastpath: serving")?;
        let g = self.generate(flood, target)?;
        let out = served.stop()?;
        let report: Value = serde_json::from_str(&out).context("the fast path's report")?;
        Ok((g, report))
    }

    fn client_rx(&self) -> Result<u64> {
        link_stat(&self.lab.client, &self.lab.client_iface, "rx_packets")
    }

    fn row(&self, traffic: &str, handler: &str, g: &Value, handled: u64, rx: u64) -> Row {
        let secs = g["seconds"].as_f64().unwrap_or(self.seconds).max(1e-9);
        Row {
            traffic: traffic.into(),
            handler: handler.into(),
            sent_pps: g["pps"].as_f64().unwrap_or(0.0),
            handled_pps: handled as f64 / secs,
            client_rx_pps: rx as f64 / secs,
            seconds: secs,
        }
    }
}

fn reason(v: &Value, part: &str, r: &str) -> u64 {
    v[part]["reasons"][r].as_u64().unwrap_or(0)
}

/// The targets: the first single-port TCP Spectrum app's first IPv4 edge IP for the SYN flood,
/// and a UDP port nothing serves on that IP for the UDP flood.
fn targets(spec: &TablesSpec) -> Result<(SocketAddr, SocketAddr)> {
    let (ip, port) = spec
        .apps
        .iter()
        .filter(|a| a.proto == L4Proto::Tcp)
        .find_map(|a| {
            a.edge_ips
                .iter()
                .find(|i| i.is_ipv4())
                .map(|i| (*i, a.ports.lo))
        })
        .context("the live bench needs a TCP Spectrum app with an IPv4 edge IP")?;
    let udp_served = |p: u16| {
        spec.apps.iter().any(|a| {
            a.proto == L4Proto::Udp
                && a.edge_ips.contains(&ip)
                && (a.ports.lo..=a.ports.hi).contains(&p)
        })
    };
    let udp = (9..u16::MAX)
        .find(|p| !udp_served(*p))
        .context("no unconfigured UDP port")?;
    Ok((SocketAddr::new(ip, port), SocketAddr::new(ip, udp)))
}

/// Runs `fastpath bench --live`.
///
/// # Errors
/// No root, missing tools (ip, tc, nft, nc), a lab named `fpbench` already up, a handler that
/// does not start, a flood whose counts show it did not reach what it should.
pub fn run(args: &BenchArgs) -> Result<()> {
    let loaded = common::load_config(args.config.as_deref())?;
    let c = &loaded.compiled;
    let (syn_target, udp_target) = targets(&c.spec)?;
    let cores = core_affinity::get_core_ids().unwrap_or_default().len();
    if cores < 2 {
        tracing::warn!("one core: the generator and the fast path share it");
    }
    let spec = crate::cmd::lab::spec_for(LAB_NAME, 1, c);
    let lab = Lab::up(LabSpec { queues: 1, ..spec }).context("building the bench namespaces")?;
    // Replies to the flood sources go back to the client, which drops them silently.
    sh(Lab::exec(&lab.edge, "ip").args(["route", "add", SOURCES, "via", "192.0.2.130"]))?;
    sh(Lab::exec(&lab.client, "ip").args(["route", "add", "blackhole", SOURCES]))?;
    let b = Bench {
        lab: &lab,
        exe: std::env::current_exe()?.to_string_lossy().to_string(),
        config: args
            .config
            .as_ref()
            .map(|p| std::fs::canonicalize(p).map(|p| p.to_string_lossy().to_string()))
            .transpose()?,
        seconds: args.seconds,
        gen_core: cores.saturating_sub(1),
    };
    let mut log = std::io::stderr();
    let mut rows = Vec::new();
    let (mut xdp_mode, mut zero_copy) = (String::from("?"), false);
    let (udp, syn) = ("udp_unconfigured_port", "syn_flood");
    let rounds = args.rounds.max(1);
    for round in 1..=rounds {
        // UDP flood to an unconfigured port.
        writeln!(
            log,
            "live bench {round}/{rounds}: UDP flood to {udp_target} against the fast path"
        )?;
        let (g, fp) = b.xdp("--udp-flood", udp_target, &[])?;
        let fp_udp = reason(&fp, "xdp", "unconfigured_port");
        if fp_udp < g["sent"].as_u64().unwrap_or(0) / 2 {
            bail!(
                "the fast path counted {fp_udp} unconfigured_port drops of {g}: check the target"
            );
        }
        rows.push(b.row(udp, "fastpath", &g, fp_udp, 0));
        xdp_mode = fp["xdp_mode"].as_str().unwrap_or("?").to_string();
        zero_copy = fp["zero_copy"].as_bool().unwrap_or(false);

        writeln!(
            log,
            "live bench {round}/{rounds}: UDP flood against a plain XDP_DROP program"
        )?;
        let (g, dr) = b.xdp("--udp-flood", udp_target, &["--drop-all"])?;
        rows.push(b.row(
            udp,
            "xdp_drop",
            &g,
            dr["xdp_drop_all"].as_u64().unwrap_or(0),
            0,
        ));

        writeln!(
            log,
            "live bench {round}/{rounds}: UDP flood against the kernel (nftables)"
        )?;
        nft(&lab.edge, &kernel_ruleset(&c.spec))?;
        // The kernel alone owns our prefixes the way `fastpath run` makes them its own: as
        // local routes (the fast path removed its own when it stopped).
        for p in &c.spec.prefixes {
            sh(Lab::exec(&lab.edge, "ip").args([
                "route",
                "add",
                "local",
                &p.cidr.to_string(),
                "dev",
                "lo",
            ]))?;
        }
        sh(Lab::exec(&lab.edge, "sysctl").args(["-qw", "net.ipv4.tcp_syncookies=2"]))?;
        let before = nft_drops(&lab.edge)?;
        let g = b.generate("--udp-flood", udp_target)?;
        rows.push(b.row(udp, "kernel", &g, nft_drops(&lab.edge)? - before, 0));

        // SYN flood to a Spectrum app.
        writeln!(
            log,
            "live bench {round}/{rounds}: SYN flood to {syn_target} against the kernel's SYN cookies"
        )?;
        let listener = Served::start(
            &lab.edge,
            "nc",
            &[
                "-lk",
                &syn_target.ip().to_string(),
                &syn_target.port().to_string(),
            ],
            "",
        )?;
        std::thread::sleep(Duration::from_millis(300));
        let (s0, r0) = (tcp_ext(&lab.edge, "SyncookiesSent")?, b.client_rx()?);
        let g = b.generate("--syn-flood", syn_target)?;
        std::thread::sleep(Duration::from_millis(200));
        let (s1, r1) = (tcp_ext(&lab.edge, "SyncookiesSent")?, b.client_rx()?);
        rows.push(b.row(syn, "kernel", &g, s1 - s0, r1 - r0));
        drop(listener);
        sh(Lab::exec(&lab.edge, "nft").args(["delete", "table", "inet", "fpbench"]))?;
        for p in &c.spec.prefixes {
            sh(Lab::exec(&lab.edge, "ip").args([
                "route",
                "del",
                "local",
                &p.cidr.to_string(),
                "dev",
                "lo",
            ]))?;
        }

        writeln!(
            log,
            "live bench {round}/{rounds}: SYN flood against the fast path"
        )?;
        let r0 = b.client_rx()?;
        let (g, fp) = b.xdp("--syn-flood", syn_target, &[])?;
        let r1 = b.client_rx()?;
        let tx: u64 = fp["queues"]
            .as_array()
            .map(|q| q.iter().map(|q| q["tx"].as_u64().unwrap_or(0)).sum())
            .unwrap_or(0);
        if reason(&fp, "pipeline", "syn_cookie") != tx {
            tracing::warn!("syn_cookie count and TX count differ: {fp}");
        }
        rows.push(b.row(syn, "fastpath", &g, tx, r1 - r0));
    }

    // Each round's handlers ran one after the other on the same generator: compare them within
    // the round, and report the median of the rounds' ratios.
    let ratio = |t: &str, a: &str, b: &str| {
        let per_round = |h: &str| -> Vec<f64> {
            rows.iter()
                .filter(|r| r.traffic == t && r.handler == h)
                .map(|r| r.handled_pps)
                .collect()
        };
        let mut v: Vec<f64> = per_round(a)
            .iter()
            .zip(per_round(b))
            .filter(|(_, d)| *d > 0.0)
            .map(|(n, d)| n / d)
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let result = LiveBench {
        rounds,
        xdp_mode,
        zero_copy,
        udp_target: udp_target.to_string(),
        syn_target: syn_target.to_string(),
        fastpath_vs_xdp_drop: ratio(udp, "fastpath", "xdp_drop"),
        fastpath_vs_kernel_syn: ratio(syn, "fastpath", "kernel"),
        fastpath_vs_kernel_udp: ratio(udp, "fastpath", "kernel"),
        rows,
    };
    drop(lab);
    print(&result, args.json)
}

fn print(r: &LiveBench, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, r)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "live bench on a veth pair: fast path in {} XDP, AF_XDP {} mode; generator `fastpath gen` (AF_XDP TX)",
        r.xdp_mode,
        if r.zero_copy { "zero-copy" } else { "copy" }
    )?;
    writeln!(
        out,
        "{:<34} {:<10} {:>12} {:>14} {:>14}",
        "traffic", "handler", "sent/s", "handled/s", "client rx/s"
    )?;
    for row in &r.rows {
        let what = match row.traffic.as_str() {
            "syn_flood" => format!("SYN flood to {}", r.syn_target),
            _ => format!("UDP to unconfigured {}", r.udp_target),
        };
        writeln!(
            out,
            "{what:<34} {:<10} {:>12.0} {:>14.0} {:>14.0}",
            row.handler, row.sent_pps, row.handled_pps, row.client_rx_pps
        )?;
    }
    writeln!(
        out,
        "median of {} rounds: fast path vs plain XDP_DROP, UDP flood to an unconfigured port: {:.1}%",
        r.rounds,
        r.fastpath_vs_xdp_drop * 100.0
    )?;
    writeln!(
        out,
        "fast path vs kernel nftables, same flood: {:.2}x",
        r.fastpath_vs_kernel_udp
    )?;
    writeln!(
        out,
        "fast path vs kernel SYN cookies, SYN-ACKs per second: {:.2}x",
        r.fastpath_vs_kernel_syn
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TablesSpec {
        let c = control::config::Config::from_toml_str(include_str!("../../pcaps/edge-lab.toml"))
            .unwrap();
        c.compile(1, &Default::default()).unwrap().spec
    }

    #[test]
    fn the_kernel_ruleset_accepts_what_the_config_serves_and_drops_the_rest() {
        let r = kernel_ruleset(&spec());
        assert!(
            r.contains("ip daddr 203.0.113.10 tcp dport 22-22 accept"),
            "{r}"
        );
        assert!(
            r.contains("ip6 daddr 2001:db8:100:1::10 tcp dport 22-22 accept"),
            "{r}"
        );
        assert!(
            r.contains("ip daddr 203.0.113.12 tcp dport 1000-2000 accept"),
            "{r}"
        );
        assert!(
            r.contains("ip daddr 203.0.113.128/25 tcp dport { 80, 443,"),
            "{r}"
        );
        assert!(r.contains("ip daddr 203.0.113.0/24 counter drop"), "{r}");
        assert!(
            r.contains("ip6 daddr 2001:db8:100::/48 counter drop"),
            "{r}"
        );
        // Accepts come before the drops.
        assert!(r.find("accept").unwrap() < r.find("drop").unwrap());
    }

    #[test]
    fn targets_are_a_served_tcp_port_and_an_unserved_udp_port() {
        let (syn, udp) = targets(&spec()).unwrap();
        assert_eq!(syn, "203.0.113.10:22".parse().unwrap());
        assert_eq!(udp, "203.0.113.10:9".parse().unwrap());
    }
}
