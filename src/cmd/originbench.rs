//! `fastpath bench --origins`: what carrying flows to origins costs, measured live in one run
//! on the lab's three namespaces.
//!
//! - **Bulk throughput**: one TCP connection downloads, then one uploads, `--bytes` each, to an
//!   origin sink/source: once routed by the edge namespace's kernel alone (the client connects
//!   to the origin's address; no fast path runs), once through the edge (SYN cookie, handoff,
//!   the proxy worker's relay). The ratio is edge / direct.
//! - **New connections per second**: `--conns` client threads connect, send a byte, read its
//!   echo and close (with a RST, so that no TIME_WAIT accumulates), for `--seconds`: through the handoff (the fast path), and through the same
//!   proxy workers fed by a plain kernel listener (`fastpath run --kernel-listener`: the
//!   kernel's own SYN handling and accept). The ratio is handoff / listener.
//!
//! Both run on a generated configuration with one Spectrum app (no PROXY header), so that the
//! only difference between the two sides of each ratio is the path under test.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::cmd::bench::BenchArgs;
use crate::cmd::livebench::Served;
use crate::lab::{Lab, LabSpec, in_ns, sh};

const BENCH_CONFIG: &str = r#"[node]
name = "origin-bench"

[[prefixes]]
cidr = "203.0.113.0/24"

[[bindings]]
cidr = "203.0.113.0/24"
service = "spectrum"

# The lab sends the client's traffic to the first edge IP in VLAN 100; this app takes that
# address, so that the measured one (203.0.113.30) is untagged like the direct route.
[[spectrum_apps]]
id = "vlan"
protocol = "tcp/9"
edge_ips = { type = "static", ips = ["203.0.113.10"] }
origin_direct = ["tcp://192.0.2.20:9"]

[[spectrum_apps]]
id = "bulk"
protocol = "tcp/5000"
edge_ips = { type = "static", ips = ["203.0.113.30"] }
origin_direct = ["tcp://192.0.2.20:5000"]

[[spectrum_apps]]
id = "echo"
protocol = "tcp/5001"
edge_ips = { type = "static", ips = ["203.0.113.30"] }
origin_direct = ["tcp://192.0.2.20:5001"]

[[origin_policy.delegations]]
cidr = "192.0.2.0/24"
"#;

/// One bulk transfer.
#[derive(Debug, Clone, Serialize)]
pub struct Bulk {
    /// `download` (origin to client) or `upload`.
    pub direction: &'static str,
    /// Routed by the kernel alone, Gbit/s.
    pub direct_gbps: f64,
    /// Through the edge, Gbit/s.
    pub edge_gbps: f64,
    /// edge / direct.
    pub ratio: f64,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct OriginBench {
    /// Bytes per transfer.
    pub bytes: u64,
    /// The bulk transfers.
    pub bulk: Vec<Bulk>,
    /// New connections per second through the handoff.
    pub handoff_cps: f64,
    /// New connections per second through the same workers fed by a kernel listener.
    pub listener_cps: f64,
    /// handoff / listener.
    pub cps_ratio: f64,
    /// Connections that failed (handoff, listener).
    pub failed: (u64, u64),
    /// Client threads.
    pub conns: usize,
    /// Seconds per connection-rate run.
    pub seconds: f64,
    /// The share of all CPUs busy during each measurement (client, edge and origin share
    /// them): near 1, the machine is what bounds it.
    pub cpu_busy: Vec<(String, f64)>,
}

/// The origin: on port 5000 a sink/source (`D` + 8-byte length: it sends that many bytes;
/// `U`: it reads to the end and answers with the count), on 5001 an echo.
fn origins(lab: &Lab, stop: Arc<AtomicBool>) -> Result<()> {
    let (bulk, echo) = in_ns(&lab.origin, || {
        (
            TcpListener::bind("192.0.2.20:5000"),
            TcpListener::bind("192.0.2.20:5001"),
        )
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the origin thread panicked"))?;
    let (bulk, echo) = (bulk?, echo?);
    echo.set_nonblocking(true)?;
    std::thread::spawn(move || {
        for s in bulk.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut cmd = [0u8; 1];
                if s.read_exact(&mut cmd).is_err() {
                    return;
                }
                let mut buf = vec![0u8; 256 * 1024];
                if cmd[0] == b'D' {
                    let mut len = [0u8; 8];
                    if s.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut left = u64::from_be_bytes(len);
                    while left > 0 {
                        let n = left.min(buf.len() as u64) as usize;
                        if s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                        left -= n as u64;
                    }
                } else {
                    let mut n = 0u64;
                    while let Ok(k) = s.read(&mut buf) {
                        if k == 0 {
                            break;
                        }
                        n += k as u64;
                    }
                    let _ = s.write_all(&n.to_be_bytes());
                }
            });
        }
    });
    // A thread per connection: the origin must never be what bounds the rate.
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match echo.accept() {
                Ok((mut s, _)) => {
                    std::thread::spawn(move || {
                        let _ = s.set_nonblocking(false);
                        let mut b = [0u8; 64];
                        if let Ok(n) = s.read(&mut b) {
                            let _ = s.write_all(&b[..n]);
                        }
                        while matches!(s.read(&mut b), Ok(k) if k > 0) {}
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_micros(100)),
            }
        }
    });
    Ok(())
}

/// One transfer of `bytes` from the client namespace to `to`; Gbit/s.
fn transfer(lab: &Lab, to: SocketAddr, download: bool, bytes: u64) -> Result<f64> {
    let r = in_ns(&lab.client, move || -> std::io::Result<f64> {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        let started = Instant::now();
        let mut buf = vec![0u8; 256 * 1024];
        if download {
            s.write_all(b"D")?;
            s.write_all(&bytes.to_be_bytes())?;
            let mut got = 0u64;
            while got < bytes {
                let k = s.read(&mut buf)?;
                if k == 0 {
                    return Err(std::io::Error::other(format!("ended after {got} bytes")));
                }
                got += k as u64;
            }
        } else {
            s.write_all(b"U")?;
            let mut left = bytes;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                s.write_all(&buf[..n])?;
                left -= n as u64;
            }
            s.shutdown(Shutdown::Write)?;
            let mut n = [0u8; 8];
            s.read_exact(&mut n)?;
            if u64::from_be_bytes(n) != bytes {
                return Err(std::io::Error::other("the origin counted other bytes"));
            }
        }
        Ok(bytes as f64 * 8.0 / started.elapsed().as_secs_f64() / 1e9)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the client thread panicked"))?;
    r.with_context(|| format!("a transfer to {to}"))
}

/// Busy and total jiffies of all CPUs (`/proc/stat`).
fn cpu() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The share of all CPUs busy while `f` ran.
fn busy<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let (b0, t0) = cpu();
    let r = f();
    let (b1, t1) = cpu();
    (r, (b1 - b0) as f64 / (t1 - t0).max(1) as f64)
}

/// `threads` clients connecting to `to` for `secs`: (connections per second, failures).
fn connection_rate(lab: &Lab, to: SocketAddr, threads: usize, secs: f64) -> (f64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (done, failed) = (Arc::clone(&done), Arc::clone(&failed));
            in_ns(&lab.client, move || {
                while Instant::now() < until {
                    let ok = (|| -> std::io::Result<()> {
                        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
                        s.set_read_timeout(Some(Duration::from_secs(3)))?;
                        s.write_all(b"x")?;
                        let mut b = [0u8; 1];
                        s.read_exact(&mut b)?;
                        // Closed with a RST: no TIME_WAIT piles up in the client namespace (tens
                        // of thousands of them slow every later connect(2) down to a few
                        // hundred per second, whichever side is measured second).
                        socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO))?;
                        Ok(())
                    })();
                    match ok {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let secs = started.elapsed().as_secs_f64();
    (
        done.load(Ordering::Relaxed) as f64 / secs,
        failed.load(Ordering::Relaxed),
    )
}

/// Runs `fastpath bench --origins`.
///
/// # Errors
/// No root, a lab named `fpbench-o` already up, a fast path or transfer that fails.
pub fn run(args: &BenchArgs) -> Result<()> {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    });
    if !root {
        bail!("fastpath bench --origins needs root (network namespaces, XDP, TCP_REPAIR)");
    }
    let dir = std::env::temp_dir().join(format!("fastpath-origin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cfg = dir.join("bench.toml");
    std::fs::write(&cfg, BENCH_CONFIG)?;
    let compiled = control::config::Config::from_toml_str(BENCH_CONFIG)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .compile(1, &Default::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let spec = crate::cmd::lab::spec_for("fpbench-o", 1, &compiled);
    let lab = Lab::up(LabSpec { queues: 1, ..spec }).context("building the bench lab")?;
    for s in [
        "net.ipv4.tcp_tw_reuse=1",
        "net.ipv4.ip_local_port_range=1024 65535",
    ] {
        sh(Lab::exec(&lab.client, "sysctl").args(["-qw", s]))?;
    }
    // The direct route: the client reaches the origins' subnet through the edge's kernel.
    sh(Lab::exec(&lab.client, "ip").args(["route", "add", "192.0.2.0/26", "via", "192.0.2.129"]))?;
    let stop = Arc::new(AtomicBool::new(false));
    origins(&lab, Arc::clone(&stop))?;
    let mut err = std::io::stderr().lock();
    let bytes = args.bytes;
    let direct_to: SocketAddr = "192.0.2.20:5000".parse()?;
    let edge_to: SocketAddr = "203.0.113.30:5000".parse()?;
    let echo_to: SocketAddr = "203.0.113.30:5001".parse()?;
    writeln!(
        err,
        "origin bench: {bytes} bytes each way routed by the kernel alone"
    )?;
    let mut cpu_busy = Vec::new();
    let mut measure = |what: &'static str, r: (Result<f64>, f64)| -> Result<f64> {
        cpu_busy.push((what, r.1));
        r.0
    };
    let direct = [
        measure(
            "download, direct",
            busy(|| transfer(&lab, direct_to, true, bytes)),
        )?,
        measure(
            "upload, direct",
            busy(|| transfer(&lab, direct_to, false, bytes)),
        )?,
    ];
    let exe = std::env::current_exe()?.display().to_string();
    let base = [
        "run",
        "--iface",
        &lab.edge_iface,
        "--config",
        cfg.to_str().unwrap_or_default(),
        "--no-control",
        "--stats-every",
        "0",
    ];
    writeln!(
        err,
        "origin bench: the same through the edge, then {} s of new connections",
        args.seconds
    )?;
    let fp = Served::start(&lab.edge, &exe, &base, "fastpath: serving")?;
    let edge = [
        measure(
            "download, edge",
            busy(|| transfer(&lab, edge_to, true, bytes)),
        )?,
        measure(
            "upload, edge",
            busy(|| transfer(&lab, edge_to, false, bytes)),
        )?,
    ];
    let ((handoff_cps, handoff_failed), b) =
        busy(|| connection_rate(&lab, echo_to, args.conns, args.seconds));
    cpu_busy.push(("connections, handoff", b));
    fp.stop()?;
    writeln!(
        err,
        "origin bench: {} s of new connections through a kernel listener",
        args.seconds
    )?;
    let mut listener_args = base.to_vec();
    let addr = echo_to.to_string();
    listener_args.extend(["--kernel-listener", &addr]);
    let kl = Served::start(&lab.edge, &exe, &listener_args, "fastpath: serving")?;
    let ((listener_cps, listener_failed), b) =
        busy(|| connection_rate(&lab, echo_to, args.conns, args.seconds));
    cpu_busy.push(("connections, kernel listener", b));
    kl.stop()?;
    stop.store(true, Ordering::Relaxed);
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
    let report = OriginBench {
        bytes,
        bulk: ["download", "upload"]
            .into_iter()
            .enumerate()
            .map(|(i, d)| Bulk {
                direction: d,
                direct_gbps: direct[i],
                edge_gbps: edge[i],
                ratio: edge[i] / direct[i].max(1e-9),
            })
            .collect(),
        handoff_cps,
        listener_cps,
        cps_ratio: handoff_cps / listener_cps.max(1e-9),
        failed: (handoff_failed, listener_failed),
        conns: args.conns,
        seconds: args.seconds,
        cpu_busy: cpu_busy
            .into_iter()
            .map(|(w, b)| (w.to_string(), b))
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "bulk TCP, one connection, {} MiB each way:",
        bytes >> 20
    )?;
    writeln!(
        out,
        "direction   routed by the kernel   through the edge   ratio"
    )?;
    for b in &report.bulk {
        writeln!(
            out,
            "{:<11} {:>14.2} Gbit/s {:>12.2} Gbit/s {:>6.2}x",
            b.direction, b.direct_gbps, b.edge_gbps, b.ratio
        )?;
    }
    writeln!(
        out,
        "new connections per second ({} client threads, {} s each): handoff {:.0}/s, kernel listener {:.0}/s: {:.2}x (failed: {} / {})",
        report.conns,
        report.seconds,
        report.handoff_cps,
        report.listener_cps,
        report.cps_ratio,
        report.failed.0,
        report.failed.1
    )?;
    let busy: Vec<String> = report
        .cpu_busy
        .iter()
        .map(|(w, b)| format!("{w} {:.0}%", b * 100.0))
        .collect();
    writeln!(
        out,
        "CPU busy (all cores; client, edge and origin share them): {}",
        busy.join(", ")
    )?;
    Ok(())
}
