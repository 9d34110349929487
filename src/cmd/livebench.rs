//! `fastpath bench --live`: the same generated traffic against the fast path, a plain XDP_DROP
//! program and the Linux kernel alone, on a veth pair between two namespaces, in one run.
//!
//! The lab's `client` namespace runs `fastpath gen` (one thread on the last core; by default
//! the in-kernel engine, XDP live frames, else AF_XDP TX); the `edge` namespace runs, one after
//! the other:
//! - the fast path (`fastpath run`): counted by its XDP counters and its queues' TX;
//! - a plain XDP_DROP program (`fastpath run --drop-all`): counted by its one counter. Fed the
//!   same floods, it gives the generator's own ceiling: what the generator sends when the
//!   receiver does nothing but drop;
//! - the kernel alone: an nftables table that accepts what the configuration serves and drops
//!   every other packet to our prefixes (counted), a listener on the SYN target, and kernel SYN
//!   cookies for every SYN (`net.ipv4.tcp_syncookies=2`), counted by `SyncookiesSent`.
//!
//! Each handler sees the same two floods from the same generator: UDP to an unconfigured port
//! (handled = dropped per second, by the handler's own counter) and SYNs to a Spectrum app
//! (handled = SYN-ACKs per second that reached the client, counted by an nftables rule in the
//! client's namespace; the handler's own count is reported beside it). Sources come from
//! 192.0.2.192/26, routed back to the client, where a blackhole route drops the replies.
//!
//! Every external program it runs is checked first ([`require_tools`]); the result is a table,
//! a summary, and an SVG plot of handled vs offered rate ([`svg_plot`]).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fastpath::tables::{L4Proto, TablesSpec};
use fastpath::verdict::Service;
use fastpath_xdp::{Flood, GenConfig, GenError, Generator};
use serde::Serialize;
use serde_json::Value;

use crate::cmd::bench::BenchArgs;
use crate::cmd::generate::Engine;
use crate::common;
use crate::lab::{Lab, LabSpec, in_ns, link_stat, sh};

const SOURCES: &str = "192.0.2.192/26";
const LAB_NAME: &str = "fpbench";

/// Every program the live bench runs, with the Debian package that has it.
pub const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("tc", "iproute2"),
    ("nft", "nftables"),
    ("ethtool", "ethtool"),
    ("sysctl", "procps"),
    ("kill", "procps"),
    ("cat", "coreutils"),
];

/// Whether an executable `tool` is in one of the directories of `path` (a `PATH` value).
fn on_path(tool: &str, path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.split(':').filter(|d| !d.is_empty()).any(|d| {
        std::fs::metadata(Path::new(d).join(tool))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// One line per tool of `tools` missing from `path`: `nft: not found; install the nftables
/// package`.
pub fn missing_tools(tools: &[(&str, &str)], path: &str) -> Vec<String> {
    tools
        .iter()
        .filter(|(t, _)| !on_path(t, path))
        .map(|(t, pkg)| format!("{t}: not found; install the {pkg} package"))
        .collect()
}

/// Fails, naming every missing program and its package, unless all of `tools` are on `PATH`.
///
/// # Errors
/// The list of what is missing.
pub fn require_tools(tools: &[(&str, &str)]) -> Result<()> {
    let path = std::env::var("PATH").unwrap_or_default();
    let missing = missing_tools(tools, &path);
    if !missing.is_empty() {
        bail!("{}", missing.join("\n"));
    }
    Ok(())
}

/// One handler's result on one flood.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `udp_unconfigured_port` or `syn_flood`.
    pub traffic: String,
    /// `fastpath`, `xdp_drop` or `kernel`.
    pub handler: String,
    /// Frames the generator sent per second (offered).
    pub sent_pps: f64,
    /// Frames handled per second: UDP, dropped (the handler's counter); SYN flood, SYN-ACKs
    /// that reached the client (dropped, for `xdp_drop`).
    pub handled_pps: f64,
    /// What the handler itself counted per second (drops, `SyncookiesSent`, the fast path's
    /// TX).
    pub reported_pps: f64,
    /// Packets the client's interface received per second (replies of every kind).
    pub client_rx_pps: f64,
    /// Seconds the generator ran.
    pub seconds: f64,
}

const UDP: &str = "udp_unconfigured_port";
const SYN: &str = "syn_flood";

/// The bench's conclusions, each the median over the rounds (`None`: no round could give it,
/// e.g. a handler handled nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Packets per second the generator sent into a plain XDP_DROP, UDP flood.
    pub gen_ceiling_udp_pps: Option<f64>,
    /// The same, SYN flood.
    pub gen_ceiling_syn_pps: Option<f64>,
    /// Fast path / XDP_DROP, handled packets per second, UDP flood to an unconfigured port.
    pub fastpath_vs_xdp_drop: Option<f64>,
    /// Fast path / kernel nftables, drops per second, UDP flood to an unconfigured port.
    pub fastpath_vs_kernel_udp: Option<f64>,
    /// Fast path: SYN-ACKs received by the client per SYN sent.
    pub fastpath_syn_share: Option<f64>,
    /// Fast path / kernel SYN cookies, SYN-ACKs received by the client per second.
    pub fastpath_vs_kernel_syn: Option<f64>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// The summary of `rows` (in run order: each round has every handler once).
pub fn summarize(rows: &[Row]) -> Summary {
    let of = |t: &str, h: &str| -> Vec<&Row> {
        rows.iter()
            .filter(|r| r.traffic == t && r.handler == h)
            .collect()
    };
    // Handlers of one round ran one after the other on the same generator: compare them
    // within the round (the n-th row of one with the n-th of the other).
    let ratio = |t: &str, a: &str, b: &str| {
        median(
            of(t, a)
                .iter()
                .zip(of(t, b))
                .filter(|(_, d)| d.handled_pps > 0.0)
                .map(|(n, d)| n.handled_pps / d.handled_pps)
                .collect(),
        )
    };
    let ceiling = |t: &str| median(of(t, "xdp_drop").iter().map(|r| r.sent_pps).collect());
    Summary {
        gen_ceiling_udp_pps: ceiling(UDP),
        gen_ceiling_syn_pps: ceiling(SYN),
        fastpath_vs_xdp_drop: ratio(UDP, "fastpath", "xdp_drop"),
        fastpath_vs_kernel_udp: ratio(UDP, "fastpath", "kernel"),
        fastpath_syn_share: median(
            of(SYN, "fastpath")
                .iter()
                .filter(|r| r.sent_pps > 0.0)
                .map(|r| r.handled_pps / r.sent_pps)
                .collect(),
        ),
        fastpath_vs_kernel_syn: ratio(SYN, "fastpath", "kernel"),
    }
}

/// The whole live bench.
#[derive(Debug, Clone, Serialize)]
pub struct LiveBench {
    /// Rounds (each runs every handler once, in turn; a ratio is the median of the rounds').
    pub rounds: usize,
    /// The generator's engine (`kernel` or `xsk`).
    pub gen_engine: Engine,
    /// Why the generator is not the in-kernel one, when it fell back.
    pub gen_fallback: Option<String>,
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
    /// The conclusions.
    #[serde(flatten)]
    pub summary: Summary,
    /// Where the plot went.
    pub plot: Option<PathBuf>,
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

/// Packets counted by the rules of nftables table `inet TABLE` in namespace `ns`.
fn nft_packets(ns: &str, table: &str) -> Result<u64> {
    let out = sh(Lab::exec(ns, "nft").args(["list", "table", "inet", table]))?;
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
    meter: &'a fastpath_xdp::SynAckMeter,
    exe: String,
    config: Option<String>,
    seconds: f64,
    gen_core: usize,
    engine: Engine,
}

impl Bench<'_> {
    fn generate(&self, flood: &str, target: SocketAddr) -> Result<Value> {
        let secs = format!("{}", self.seconds);
        let (dst, port, core) = (
            target.ip().to_string(),
            target.port().to_string(),
            self.gen_core.to_string(),
        );
        let engine = match self.engine {
            Engine::Kernel => "kernel",
            Engine::Xsk => "xsk",
        };
        // One sending thread, on the core the handler does not use.
        let out = sh(Lab::exec(&self.lab.client, &self.exe).args([
            "gen",
            "--iface",
            &self.lab.client_iface,
            "--engine",
            engine,
            "--threads",
            "1",
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

    /// SYN-ACKs that reached the client so far.
    fn client_synacks(&self) -> Result<u64> {
        Ok(self.meter.count()?)
    }

    fn row(&self, traffic: &str, handler: &str, g: &Value, counts: Counts) -> Row {
        let secs = g["seconds"].as_f64().unwrap_or(self.seconds).max(1e-9);
        Row {
            traffic: traffic.into(),
            handler: handler.into(),
            sent_pps: g["pps"].as_f64().unwrap_or(0.0),
            handled_pps: counts.handled as f64 / secs,
            reported_pps: counts.reported as f64 / secs,
            client_rx_pps: counts.client_rx as f64 / secs,
            seconds: secs,
        }
    }
}

/// What one run counted.
#[derive(Debug, Clone, Copy)]
struct Counts {
    handled: u64,
    reported: u64,
    client_rx: u64,
}

/// Whether the kernel lets this machine run the in-kernel generator: one live frame out of
/// the client's interface.
fn probe_live_frames(lab: &Lab) -> Result<(), GenError> {
    let iface = lab.client_iface.clone();
    in_ns(&lab.client, move || -> Result<(), GenError> {
        let mut g = Generator::load()?;
        let src: ipnet::IpNet = "192.0.2.130/32".parse().expect("valid");
        g.configure(&GenConfig::new(Flood::Udp, src, (9, 9), (9, 9)))?;
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [0xff; 6])
            .ipv4([192, 0, 2, 130], [192, 0, 2, 129], 64)
            .udp(9, 9)
            .write(&mut frame, b"fastpath bench probe")
            .expect("a valid frame");
        let name = std::ffi::CString::new(iface).expect("no NUL in an interface name");
        // SAFETY: `name` is a NUL-terminated string that lives across the call.
        #[allow(unsafe_code)]
        let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
        g.run_live(&frame, idx, 0, 1, 1)
    })
    .join()
    .unwrap_or(Err(GenError::Missing("a probe thread that did not panic")))
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
/// Missing tools (named with their packages), no root, a lab named `fpbench` already up, a
/// handler that does not start, a flood whose counts show it did not reach what it should,
/// `--gen-engine kernel` where the kernel refuses live frames.
pub fn run(args: &BenchArgs) -> Result<()> {
    require_tools(TOOLS)?;
    let loaded = common::load_config(args.config.as_deref())?;
    let c = &loaded.compiled;
    let (syn_target, udp_target) = targets(&c.spec)?;
    let cores = core_affinity::get_core_ids().unwrap_or_default().len();
    if cores < 2 {
        tracing::warn!("one core: the generator and the fast path share it");
    }
    let spec = crate::cmd::lab::spec_for(LAB_NAME, 1, c);
    let lab = Lab::up(LabSpec { queues: 1, ..spec }).context("building the bench namespaces")?;
    // Replies to the flood sources go back to the client, which counts the SYN-ACKs and drops
    // every reply silently.
    sh(Lab::exec(&lab.edge, "ip").args(["route", "add", SOURCES, "via", "192.0.2.130"]))?;
    sh(Lab::exec(&lab.client, "ip").args(["route", "add", "blackhole", SOURCES]))?;
    // The SYN-ACKs are counted and dropped by an XDP program on the client's veth (in place
    // of the lab's pass-everything one): the cheapest place, so the client's share of the
    // cores the bench runs on is as small as it can be, the same for every handler.
    sh(Lab::exec(&lab.client, "ip").args(["link", "set", "dev", &lab.client_iface, "xdp", "off"]))?;
    let iface = lab.client_iface.clone();
    let meter = fastpath_xdp::SynAckMeter::attach_in(&lab.client, &iface)
        .context("attaching the SYN-ACK meter to the client's veth")?;
    let mut log = std::io::stderr();
    // Live frames sent out of the client's veth land in the edge's veth through NAPI, which a
    // veth has only with an XDP program or with GRO on: GRO keeps it for the kernel handler.
    sh(Lab::exec(&lab.edge, "ethtool").args(["-K", &lab.edge_iface, "gro", "on"]))?;
    let (engine, gen_fallback) = match args.gen_engine {
        Some(Engine::Xsk) => (Engine::Xsk, None),
        Some(Engine::Kernel) => {
            probe_live_frames(&lab).context("--gen-engine kernel")?;
            (Engine::Kernel, None)
        }
        None => match probe_live_frames(&lab) {
            Ok(()) => (Engine::Kernel, None),
            Err(e) => {
                let why = format!("{e}");
                writeln!(
                    log,
                    "!!!!!!!! live bench: the in-kernel generator cannot run here ({why}); falling back to AF_XDP TX (--gen-engine xsk), whose ceiling is lower !!!!!!!!"
                )?;
                (Engine::Xsk, Some(why))
            }
        },
    };
    if engine == Engine::Xsk {
        // AF_XDP TX goes through the veth's ordinary transmit: GRO is not needed, and the
        // kernel handler gets the veth as the lab made it.
        sh(Lab::exec(&lab.edge, "ethtool").args(["-K", &lab.edge_iface, "gro", "off"]))?;
    }
    let b = Bench {
        lab: &lab,
        meter: &meter,
        exe: std::env::current_exe()?.to_string_lossy().to_string(),
        config: args
            .config
            .as_ref()
            .map(|p| std::fs::canonicalize(p).map(|p| p.to_string_lossy().to_string()))
            .transpose()?,
        seconds: args.seconds,
        gen_core: cores.saturating_sub(1),
        engine,
    };
    let mut rows = Vec::new();
    let (mut xdp_mode, mut zero_copy) = (String::from("?"), false);
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
        let drops = |n| Counts {
            handled: n,
            reported: n,
            client_rx: 0,
        };
        rows.push(b.row(UDP, "fastpath", &g, drops(fp_udp)));
        xdp_mode = fp["xdp_mode"].as_str().unwrap_or("?").to_string();
        zero_copy = fp["zero_copy"].as_bool().unwrap_or(false);

        writeln!(
            log,
            "live bench {round}/{rounds}: UDP flood against a plain XDP_DROP program (the generator's ceiling)"
        )?;
        let (g, dr) = b.xdp("--udp-flood", udp_target, &["--drop-all"])?;
        rows.push(b.row(
            UDP,
            "xdp_drop",
            &g,
            drops(dr["xdp_drop_all"].as_u64().unwrap_or(0)),
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
        let before = nft_packets(&lab.edge, "fpbench")?;
        let g = b.generate("--udp-flood", udp_target)?;
        rows.push(b.row(
            UDP,
            "kernel",
            &g,
            drops(nft_packets(&lab.edge, "fpbench")? - before),
        ));

        // SYN flood to a Spectrum app.
        writeln!(
            log,
            "live bench {round}/{rounds}: SYN flood to {syn_target} against the kernel's SYN cookies"
        )?;
        // A listener that never accepts: with tcp_syncookies=2 every SYN gets a cookie.
        let listener = in_ns(&lab.edge, move || std::net::TcpListener::bind(syn_target))
            .join()
            .map_err(|_| anyhow::anyhow!("the listener thread panicked"))?
            .with_context(|| format!("listening on {syn_target} in the edge namespace"))?;
        let (s0, r0, a0) = (
            tcp_ext(&lab.edge, "SyncookiesSent")?,
            b.client_rx()?,
            b.client_synacks()?,
        );
        let g = b.generate("--syn-flood", syn_target)?;
        std::thread::sleep(Duration::from_millis(200));
        let (s1, r1, a1) = (
            tcp_ext(&lab.edge, "SyncookiesSent")?,
            b.client_rx()?,
            b.client_synacks()?,
        );
        rows.push(b.row(
            SYN,
            "kernel",
            &g,
            Counts {
                handled: a1 - a0,
                reported: s1 - s0,
                client_rx: r1 - r0,
            },
        ));
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
        let (r0, a0) = (b.client_rx()?, b.client_synacks()?);
        let (g, fp) = b.xdp("--syn-flood", syn_target, &[])?;
        std::thread::sleep(Duration::from_millis(200));
        let (r1, a1) = (b.client_rx()?, b.client_synacks()?);
        // SYN-ACKs sent by the XDP program (XDP_TX, the default) and by the queues' TX rings
        // (--cookies userspace, or the gate refused by the kernel).
        let queue_tx: u64 = fp["queues"]
            .as_array()
            .map(|q| q.iter().map(|q| q["tx"].as_u64().unwrap_or(0)).sum())
            .unwrap_or(0);
        if reason(&fp, "pipeline", "syn_cookie") != queue_tx {
            tracing::warn!("syn_cookie count and TX count differ: {fp}");
        }
        let tx = queue_tx + reason(&fp, "xdp", "syn_cookie");
        rows.push(b.row(
            SYN,
            "fastpath",
            &g,
            Counts {
                handled: a1 - a0,
                reported: tx,
                client_rx: r1 - r0,
            },
        ));

        writeln!(
            log,
            "live bench {round}/{rounds}: SYN flood against a plain XDP_DROP program (the generator's ceiling)"
        )?;
        let (g, dr) = b.xdp("--syn-flood", syn_target, &["--drop-all"])?;
        rows.push(b.row(
            SYN,
            "xdp_drop",
            &g,
            drops(dr["xdp_drop_all"].as_u64().unwrap_or(0)),
        ));
    }
    drop(lab);

    let plot = args
        .plot
        .clone()
        .unwrap_or_else(|| PathBuf::from("fastpath-live-bench.svg"));
    std::fs::write(&plot, svg_plot(&rows))
        .with_context(|| format!("writing the plot to {}", plot.display()))?;
    writeln!(log, "live bench: plot written to {}", plot.display())?;
    let result = LiveBench {
        rounds,
        gen_engine: engine,
        gen_fallback,
        xdp_mode,
        zero_copy,
        udp_target: udp_target.to_string(),
        syn_target: syn_target.to_string(),
        summary: summarize(&rows),
        rows,
        plot: Some(plot),
    };
    print(&result, args.json)
}

/// `12.3%` or `n/a`.
fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{:.1}%", v * 100.0))
}

/// `1.85x` or `n/a`.
fn times(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.2}x"))
}

/// `1.234 Mpps` or `n/a`.
fn mpps(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{:.3} Mpps", v / 1e6))
}

/// The summary as the lines `print` shows (no trailing newline on the last).
fn summary_lines(r: &LiveBench) -> Vec<String> {
    let s = &r.summary;
    let engine = match r.gen_engine {
        Engine::Kernel => "in-kernel (XDP live frames)",
        Engine::Xsk => "AF_XDP TX",
    };
    let mut v = vec![
        format!(
            "generator ceiling ({engine}, 1 thread, into a plain XDP_DROP), median of {} rounds: UDP {}, SYN {}",
            r.rounds,
            mpps(s.gen_ceiling_udp_pps),
            mpps(s.gen_ceiling_syn_pps)
        ),
        format!(
            "UDP flood to an unconfigured port: fast path vs plain XDP_DROP {}, vs kernel nftables {}",
            pct(s.fastpath_vs_xdp_drop),
            times(s.fastpath_vs_kernel_udp)
        ),
        format!(
            "SYN flood: fast path SYN-ACKs received by the client per SYN sent {}; vs kernel SYN cookies (SYN-ACKs received per second) {}",
            pct(s.fastpath_syn_share),
            times(s.fastpath_vs_kernel_syn)
        ),
    ];
    if let Some(why) = &r.gen_fallback {
        v.push(format!("generator fell back to AF_XDP TX: {why}"));
    }
    v
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
        "live bench on a veth pair: fast path in {} XDP, AF_XDP {} mode; generator `fastpath gen --engine {}`",
        r.xdp_mode,
        if r.zero_copy { "zero-copy" } else { "copy" },
        match r.gen_engine {
            Engine::Kernel => "kernel",
            Engine::Xsk => "xsk",
        }
    )?;
    writeln!(
        out,
        "{:<34} {:<10} {:>12} {:>12} {:>12} {:>12}",
        "traffic", "handler", "sent/s", "handled/s", "reported/s", "client rx/s"
    )?;
    for row in &r.rows {
        let what = match row.traffic.as_str() {
            SYN => format!("SYN flood to {}", r.syn_target),
            _ => format!("UDP to unconfigured {}", r.udp_target),
        };
        writeln!(
            out,
            "{what:<34} {:<10} {:>12.0} {:>12.0} {:>12.0} {:>12.0}",
            row.handler, row.sent_pps, row.handled_pps, row.reported_pps, row.client_rx_pps
        )?;
    }
    writeln!(
        out,
        "(handled: UDP, drops counted by the handler; SYN flood, SYN-ACKs that reached the client)"
    )?;
    for l in summary_lines(r) {
        writeln!(out, "{l}")?;
    }
    if let Some(p) = &r.plot {
        writeln!(out, "plot of handled vs offered rate: {}", p.display())?;
    }
    Ok(())
}

/// Text for SVG: `&`, `<`, `>` and quotes escaped.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG plot of handled vs offered packets per second: one panel per flood, one colour per
/// handler, one point per run, and the line where everything offered is handled.
pub fn svg_plot(rows: &[Row]) -> String {
    const W: f64 = 460.0;
    const H: f64 = 380.0;
    const M: f64 = 60.0;
    let handlers: Vec<&str> = {
        let mut h: Vec<&str> = Vec::new();
        for r in rows {
            if !h.contains(&r.handler.as_str()) {
                h.push(&r.handler);
            }
        }
        h
    };
    let colour = |h: &str| {
        const C: [&str; 6] = [
            "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
        ];
        C[handlers.iter().position(|x| *x == h).unwrap_or(0) % C.len()]
    };
    let panels = [
        (UDP, "UDP flood to an unconfigured port (handled = dropped)"),
        (SYN, "SYN flood (handled = SYN-ACKs at the client)"),
    ];
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" font-family="sans-serif" font-size="12">"#,
        W * 2.0,
        H + 40.0,
        W * 2.0,
        H + 40.0
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{}" height="{}" fill="white"/>"#,
        W * 2.0,
        H + 40.0
    );
    for (i, (traffic, title)) in panels.iter().enumerate() {
        let x0 = i as f64 * W;
        let mine: Vec<&Row> = rows.iter().filter(|r| r.traffic == *traffic).collect();
        let top = mine
            .iter()
            .map(|r| r.sent_pps.max(r.handled_pps))
            .fold(0.0, f64::max)
            .max(1.0)
            * 1.1;
        let (pw, ph) = (W - M - 20.0, H - M - 40.0);
        let px = |v: f64| x0 + M + v / top * pw;
        let py = |v: f64| 40.0 + ph - v / top * ph;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="24" text-anchor="middle" font-weight="bold">{}</text>"#,
            x0 + W / 2.0,
            xml_escape(title)
        );
        // Axes, ticks and grid.
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="40" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#,
            x0 + M
        );
        for t in 0..=5 {
            let v = top * f64::from(t) / 5.0;
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="40" x2="{x:.1}" y2="{yb:.1}" stroke="#ddd"/><text x="{x:.1}" y="{yl:.1}" text-anchor="middle">{m:.2}</text>"##,
                x = px(v),
                yb = 40.0 + ph,
                yl = 40.0 + ph + 16.0,
                m = v / 1e6
            );
            let _ = writeln!(
                s,
                r##"<line x1="{xa:.1}" y1="{y:.1}" x2="{xb:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{xl:.1}" y="{yt:.1}" text-anchor="end">{m:.2}</text>"##,
                xa = x0 + M,
                xb = x0 + M + pw,
                y = py(v),
                xl = x0 + M - 6.0,
                yt = py(v) + 4.0,
                m = v / 1e6
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">offered (Mpps)</text>"#,
            x0 + M + pw / 2.0,
            40.0 + ph + 34.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle" transform="rotate(-90 {x:.1} {y:.1})">handled (Mpps)</text>"#,
            x = x0 + 18.0,
            y = 40.0 + ph / 2.0
        );
        // Everything offered is handled.
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="gray" stroke-dasharray="4 4"/>"#,
            px(0.0),
            py(0.0),
            px(top),
            py(top)
        );
        for r in &mine {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="5" fill="{}"><title>{}: offered {:.0}/s, handled {:.0}/s</title></circle>"#,
                px(r.sent_pps),
                py(r.handled_pps),
                colour(&r.handler),
                xml_escape(&r.handler),
                r.sent_pps,
                r.handled_pps
            );
        }
    }
    // Legend.
    for (i, h) in handlers.iter().enumerate() {
        let x = 20.0 + i as f64 * 150.0;
        let _ = writeln!(
            s,
            r#"<circle cx="{x:.1}" cy="{}" r="5" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            H + 20.0,
            colour(h),
            x + 10.0,
            H + 24.0,
            xml_escape(h)
        );
    }
    s.push_str("</svg>\n");
    s
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

    fn row(traffic: &str, handler: &str, sent: f64, handled: f64) -> Row {
        Row {
            traffic: traffic.into(),
            handler: handler.into(),
            sent_pps: sent,
            handled_pps: handled,
            reported_pps: handled,
            client_rx_pps: 0.0,
            seconds: 3.0,
        }
    }

    /// Two rounds in the bench's order of runs.
    fn rounds() -> Vec<Row> {
        let mut v = Vec::new();
        for (k, f) in [(0.0, 1.0), (1.0, 1.02)] {
            v.push(row(UDP, "fastpath", 4.0e6 * f, 3.9e6 * f));
            v.push(row(UDP, "xdp_drop", 4.1e6 * f, 4.1e6 * f));
            v.push(row(UDP, "kernel", 4.0e6 * f, 1.0e6 * f));
            v.push(row(SYN, "kernel", 3.0e6, 130e3 + k * 10e3));
            v.push(row(SYN, "fastpath", 3.0e6, 2.94e6 + k * 10e3));
            v.push(row(SYN, "xdp_drop", 3.2e6 + k, 3.2e6));
        }
        v
    }

    #[test]
    fn the_summary_compares_each_round_and_takes_the_median() {
        let s = summarize(&rounds());
        let close = |a: Option<f64>, b: f64| {
            let a = a.unwrap_or_else(|| panic!("expected {b}, got n/a"));
            assert!((a - b).abs() < 1e-3 * b.abs(), "{a} != {b}");
        };
        // Medians of two: the upper one.
        close(s.fastpath_vs_xdp_drop, 3.9 / 4.1);
        close(s.fastpath_vs_kernel_udp, 3.9);
        // SYN-ACKs at the client: fast path 2.94M vs kernel 130k (round 1), 2.95M vs 140k.
        close(s.fastpath_vs_kernel_syn, 2.94e6 / 130e3);
        close(s.fastpath_syn_share, 2.95e6 / 3.0e6);
        close(s.gen_ceiling_udp_pps, 4.1e6 * 1.02);
        close(s.gen_ceiling_syn_pps, 3.2e6 + 1.0);
    }

    /// The issue's `0.00x`: a kernel that answered no SYN (its listener never started) gave
    /// an empty set of ratios, printed as zero. Now it is n/a, and a fast path that answers
    /// nothing is a real zero.
    #[test]
    fn a_handler_that_handled_nothing_gives_no_ratio_not_zero() {
        let mut rows = rounds();
        for r in rows
            .iter_mut()
            .filter(|r| r.traffic == SYN && r.handler == "kernel")
        {
            r.handled_pps = 0.0;
        }
        let s = summarize(&rows);
        assert_eq!(s.fastpath_vs_kernel_syn, None);
        assert!(s.fastpath_vs_xdp_drop.is_some());
        let r = LiveBench {
            rounds: 2,
            gen_engine: Engine::Kernel,
            gen_fallback: None,
            xdp_mode: "native".into(),
            zero_copy: false,
            udp_target: "203.0.113.10:9".into(),
            syn_target: "203.0.113.10:22".into(),
            summary: s,
            rows: rows.clone(),
            plot: None,
        };
        let text = summary_lines(&r).join("\n");
        assert!(
            text.contains("vs kernel SYN cookies (SYN-ACKs received per second) n/a"),
            "{text}"
        );
        assert!(!text.contains("0.00x"), "{text}");
        for r in rows
            .iter_mut()
            .filter(|r| r.traffic == SYN && r.handler == "fastpath")
        {
            r.handled_pps = 0.0;
        }
        assert_eq!(summarize(&rows).fastpath_syn_share, Some(0.0));
        // And nothing at all summarizes to nothing.
        assert_eq!(summarize(&[]), Summary::default());
    }

    /// Checks that `svg` is well-formed XML as far as this plot uses it: one root, every tag
    /// closed in order, attributes quoted, no bare `&` or `<` in text.
    fn well_formed(svg: &str) {
        let body = svg
            .strip_prefix(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
            .expect("an XML declaration");
        let mut stack: Vec<String> = Vec::new();
        let mut roots = 0;
        let mut rest = body;
        while let Some(i) = rest.find('<') {
            let text = &rest[..i];
            assert!(!text.contains('>'), "bare > in {text:?}");
            for (j, _) in text.match_indices('&') {
                let ent = &text[j..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;"]
                        .iter()
                        .any(|e| ent.starts_with(e)),
                    "bare & in {text:?}"
                );
            }
            let end = rest[i..].find('>').expect("an unclosed tag") + i;
            let tag = &rest[i + 1..end];
            assert!(!tag.contains('<'), "< inside a tag: {tag}");
            assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "closing {name}");
            } else {
                let name = tag
                    .split_whitespace()
                    .next()
                    .expect("a tag name")
                    .trim_end_matches('/')
                    .to_string();
                if stack.is_empty() {
                    roots += 1;
                }
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[end + 1..];
        }
        assert!(rest.trim().is_empty(), "text after the root: {rest:?}");
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert_eq!(roots, 1);
    }

    #[test]
    fn the_plot_is_well_formed_svg_with_every_handler_and_run() {
        let rows = rounds();
        let svg = svg_plot(&rows);
        well_formed(&svg);
        assert!(svg.contains(r#"<svg xmlns="http://www.w3.org/2000/svg""#));
        for h in ["fastpath", "xdp_drop", "kernel"] {
            assert!(
                svg.contains(&format!(">{h}</text>")),
                "{h} not in the legend"
            );
            assert!(
                svg.contains(&format!("<title>{h}: offered")),
                "{h} has no point"
            );
        }
        assert_eq!(svg.matches("<circle").count(), rows.len() + 3);
        // A name that needs escaping stays well-formed.
        let odd = vec![row(UDP, "a<b & \"c\"", 1.0, 1.0)];
        well_formed(&svg_plot(&odd));
        well_formed(&svg_plot(&[]));
        // The checker is not blind.
        let r = std::panic::catch_unwind(|| well_formed(&svg.replace("</svg>", "")));
        assert!(r.is_err());
    }

    #[test]
    fn missing_tools_are_named_with_their_package() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("nft");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().to_string_lossy().to_string();
        let m = missing_tools(&[("nft", "nftables"), ("tc", "iproute2")], &path);
        assert_eq!(m, vec!["tc: not found; install the iproute2 package"]);
        let m = missing_tools(&[("nft", "nftables")], "/nonexistent");
        assert_eq!(m, vec!["nft: not found; install the nftables package"]);
        // Not executable is not there.
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(missing_tools(&[("nft", "nftables")], &path).len(), 1);
    }
}
