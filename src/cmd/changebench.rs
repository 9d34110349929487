//! `fastpath bench --changes KIND`: what configuration changes cost while traffic flows.
//!
//! One queue thread runs the capture (held in memory) through the pipeline again and again,
//! one table snapshot per batch, as `fastpath bench` does. First for `--seconds` with no
//! change, then again while a client sends changes to the control socket one after the other,
//! each validated, verified, persisted (write, fsync, rename) and swapped in, exactly as for a
//! user's `curl` or `fastpathctl`. Reported: the time from request to swap that the daemon
//! measured (p50/p99) and the client's round trip, and the batch-time quantiles of the two
//! runs side by side, so the cost of changes to the data plane shows as a ratio.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use control::config::AccessRule;
use fastpath::pipeline::Pipeline;
use fastpath::stats::{NsHistogram, QueueStats};
use fastpath::tables::{SharedTables, Tables};
use fastpath::worker::WorkerPools;
use hyper::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::cmd::bench::{BenchArgs, Frame, load_frames};
use crate::common;
use crate::ctl::client::Client;
use crate::daemon::{ControlArgs, ControlPlane, Plane};

/// What kind of change `--changes` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// One Spectrum app's port range flips between 1000-2000 and 1000-2001 (`PUT` of the
    /// app).
    OneApp,
    /// The access list holds 100,000 rules; each change replaces it whole with a list that
    /// differs in one rule (`PUT` of the rules).
    #[value(name = "rules-100k")]
    Rules100k,
}

/// Batch times of one run.
#[derive(Debug, Clone, Serialize)]
pub struct BatchTimes {
    /// Batches classified.
    pub batches: u64,
    /// Frames classified.
    pub frames: u64,
    /// Wall seconds.
    pub seconds: f64,
    /// Median batch time (ns).
    pub p50_ns: u64,
    /// 99th-percentile batch time (ns).
    pub p99_ns: u64,
    /// Longest batch (ns).
    pub max_ns: u64,
}

/// The result.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeBenchResult {
    /// The kind of change.
    pub kind: ChangeKind,
    /// Changes applied.
    pub changes: usize,
    /// Access rules in the configuration.
    pub access_rules: usize,
    /// Bytes of one change's request body.
    pub body_bytes: usize,
    /// Request to swap, as the daemon measured it (µs): median.
    pub swap_us_p50: u64,
    /// Request to swap (µs): 99th percentile.
    pub swap_us_p99: u64,
    /// Request to swap (µs): the longest.
    pub swap_us_max: u64,
    /// The client's round trip (µs): 99th percentile.
    pub round_trip_us_p99: u64,
    /// The data plane without changes.
    pub without_changes: BatchTimes,
    /// The data plane while the changes applied.
    pub during_changes: BatchTimes,
    /// `during_changes.p99_ns / without_changes.p99_ns`.
    pub batch_p99_ratio: f64,
}

/// The queue thread: the capture again and again (fresh flows per pass), one snapshot of
/// `tables` per batch, until `stop`.
fn run_queue(
    frames: &[Frame],
    tables: &SharedTables,
    compiled: &control::config::Compiled,
    seed: [u8; 32],
    stats_out: &std::sync::Mutex<Option<Arc<QueueStats>>>,
    stop: &AtomicBool,
) -> f64 {
    tables.register_reader();
    let batch = compiled.pipeline.batch_size;
    let mut bufs: Vec<Vec<u8>> = (0..batch)
        .map(|_| vec![0u8; fastpath::replay::FRAME_ROOM])
        .collect();
    let (pools, mut workers) = WorkerPools::new(
        &compiled.workers,
        fastpath::worker::Timeouts::from(&compiled.pipeline),
    );
    let mut p = Pipeline::new(0, &compiled.pipeline, &compiled.cookies, seed, 1500, pools);
    *stats_out.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.stats());
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        p.reset_flows();
        for w in &mut workers {
            w.reset();
        }
        for chunk in frames.chunks(batch) {
            for (b, f) in bufs.iter_mut().zip(chunk) {
                if b.len() < f.data.len() {
                    b.resize(f.data.len(), 0);
                }
                b[..f.data.len()].copy_from_slice(&f.data);
            }
            let snapshot = tables.load();
            p.begin_batch(chunk[0].ts_ns);
            for (b, f) in bufs.iter_mut().zip(chunk) {
                std::hint::black_box(p.process(&snapshot, f.ts_ns, b, f.data.len()));
            }
            p.end_batch();
            drop(snapshot);
            for w in &mut workers {
                w.poll(usize::MAX);
            }
        }
    }
    started.elapsed().as_secs_f64()
}

fn times(s: &QueueStats, seconds: f64) -> BatchTimes {
    let h: &NsHistogram = &s.batch_ns;
    BatchTimes {
        batches: h.count(),
        frames: s.frames(),
        seconds,
        p50_ns: h.quantile(0.5),
        p99_ns: h.quantile(0.99),
        max_ns: h.max(),
    }
}

/// The rules of the 100k list; `flip` changes the last one.
fn rules(flip: bool) -> Vec<Value> {
    (0..100_000u32)
        .map(|i| {
            let a =
                std::net::Ipv4Addr::from(0x6440_0000 + i + if flip && i == 99_999 { 1 } else { 0 });
            json!({ "mode": "block", "target": "ip", "value": a.to_string() })
        })
        .collect()
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Runs the two phases and returns the result.
///
/// # Errors
/// A bad config or capture, the socket or the config file cannot be made, a change refused.
pub fn execute(args: &BenchArgs, kind: ChangeKind) -> Result<ChangeBenchResult> {
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds must be in (0, 3600]");
    }
    let mut loaded = common::load_config(args.config.as_deref())?;
    let seed = common::seed(args.cookie_secret.as_deref(), &loaded)?;
    let (frames, _) = load_frames(args.pcap.as_ref())?;
    let count = args.change_count.unwrap_or(match kind {
        ChangeKind::OneApp => 1000,
        ChangeKind::Rules100k => 20,
    });
    if count == 0 {
        bail!("--change-count must be at least 1");
    }
    if kind == ChangeKind::Rules100k {
        loaded.config.access_rules =
            control::config::parse_json::<Vec<AccessRule>>(&Value::Array(rules(false)).to_string())
                .map_err(|e| anyhow::anyhow!("the 100k rules: {e}"))?;
        loaded.compiled = loaded
            .config
            .compile(loaded.version, &Default::default())
            .map_err(|e| anyhow::anyhow!("the 100k-rule config: {e}"))?;
    }
    let dir = tempfile_dir()?;
    let file = dir.join("edge.toml");
    std::fs::write(&file, loaded.config.to_toml_string()?)
        .with_context(|| format!("writing {}", file.display()))?;
    let sock = dir.join("control.sock");
    let shared = SharedTables::new(Tables::build(&loaded.compiled.spec)?);
    let control = ControlPlane::start(
        &ControlArgs {
            control: Some(sock.clone()),
            no_control: false,
            control_group: None,
            config_source: None,
        },
        None,
        &loaded,
        Some(&file),
        Plane {
            tables: Arc::clone(&shared),
            installer: None,
            seed,
            clock: None,
            shared: None,
        },
    )?;
    let compiled = Arc::new(loaded.compiled.clone());
    let frames = Arc::new(frames);
    let cores = core_affinity::get_core_ids().unwrap_or_default();

    let phase = |changes: &dyn Fn() -> Result<()>| -> Result<BatchTimes> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(std::sync::Mutex::new(None));
        let t = {
            let (frames, shared, compiled, stop, stats) = (
                Arc::clone(&frames),
                Arc::clone(&shared),
                Arc::clone(&compiled),
                Arc::clone(&stop),
                Arc::clone(&stats),
            );
            let core = cores.first().copied();
            std::thread::spawn(move || {
                if let Some(c) = core {
                    core_affinity::set_for_current(c);
                }
                run_queue(&frames, &shared, &compiled, seed, &stats, &stop)
            })
        };
        let r = changes();
        stop.store(true, Ordering::Relaxed);
        let secs = t
            .join()
            .map_err(|_| anyhow::anyhow!("the queue thread panicked"))?;
        r?;
        let s = stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .context("the queue thread did not start")?;
        Ok(times(&s, secs))
    };

    let without = phase(&|| {
        std::thread::sleep(Duration::from_secs_f64(args.seconds));
        Ok(())
    })?;

    let client = Client::new(&sock).map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = |wide: bool| {
        let (edge, origin) = if wide {
            ("tcp/1000-2001", "tcp://192.0.2.3:3000-4001")
        } else {
            ("tcp/1000-2000", "tcp://192.0.2.3:3000-4000")
        };
        json!({ "protocol": edge, "origin_direct": [origin], "proxy_protocol": "v2",
                "edge_ips": { "type": "static", "ips": ["203.0.113.12"] } })
    };
    let bodies: [Value; 2] = match kind {
        ChangeKind::OneApp => [app(true), app(false)],
        ChangeKind::Rules100k => [Value::Array(rules(true)), Value::Array(rules(false))],
    };
    let path = match kind {
        ChangeKind::OneApp => "/client/v4/zones/z/spectrum/apps/range",
        ChangeKind::Rules100k => "/client/v4/zones/z/firewall/access_rules/rules",
    };
    let body_bytes = serde_json::to_vec(&bodies[0])?.len();
    let swaps = std::sync::Mutex::new(Vec::new());
    let trips = std::sync::Mutex::new(Vec::new());
    let during = phase(&|| {
        // Let the queue get going before the first change.
        std::thread::sleep(Duration::from_millis(200));
        for i in 0..count {
            let t0 = Instant::now();
            let a = client
                .call(Method::PUT, path, Some(&bodies[i % 2]))
                .map_err(|e| anyhow::anyhow!("change {i}: {e}"))?;
            trips
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(t0.elapsed().as_micros() as u64);
            let swap = a.result["_change"]["swap_us"].as_u64().unwrap_or(0);
            swaps.lock().unwrap_or_else(|e| e.into_inner()).push(swap);
        }
        Ok(())
    })?;
    drop(control);
    let _ = std::fs::remove_dir_all(&dir);
    let mut swaps = swaps.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut trips = trips.into_inner().unwrap_or_else(|e| e.into_inner());
    swaps.sort_unstable();
    trips.sort_unstable();
    Ok(ChangeBenchResult {
        kind,
        changes: count,
        access_rules: loaded.config.access_rules.len(),
        body_bytes,
        swap_us_p50: quantile(&swaps, 0.5),
        swap_us_p99: quantile(&swaps, 0.99),
        swap_us_max: swaps.last().copied().unwrap_or(0),
        round_trip_us_p99: quantile(&trips, 0.99),
        batch_p99_ratio: during.p99_ns as f64 / without.p99_ns.max(1) as f64,
        without_changes: without,
        during_changes: during,
    })
}

/// A fresh private directory under the system's temporary directory.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let base = std::env::temp_dir();
    for n in 0..1000u32 {
        let d = base.join(format!("fastpath-changebench-{}-{n}", std::process::id()));
        match std::fs::create_dir(&d) {
            Ok(()) => return Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", d.display())),
        }
    }
    bail!("cannot make a temporary directory under {}", base.display())
}

/// Runs `fastpath bench --changes` and prints the result.
///
/// # Errors
/// As [`execute`].
pub fn run(args: &BenchArgs, kind: ChangeKind) -> Result<()> {
    let r = execute(args, kind)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &r)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} changes of kind {:?} ({} access rules, {} bytes per request), each validated, verified, persisted with fsync and swapped in:",
        r.changes, r.kind, r.access_rules, r.body_bytes
    )?;
    writeln!(
        out,
        "  request to swap: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (client round trip p99 {:.3} ms)",
        r.swap_us_p50 as f64 / 1e3,
        r.swap_us_p99 as f64 / 1e3,
        r.swap_us_max as f64 / 1e3,
        r.round_trip_us_p99 as f64 / 1e3
    )?;
    for (name, t) in [
        ("without changes", &r.without_changes),
        ("during changes", &r.during_changes),
    ] {
        writeln!(
            out,
            "  batch time {name:<16} p50 {:>7.2} us  p99 {:>7.2} us  max {:>9.2} us  ({} batches, {:.2} Mpps)",
            t.p50_ns as f64 / 1e3,
            t.p99_ns as f64 / 1e3,
            t.max_ns as f64 / 1e3,
            t.batches,
            t.frames as f64 / t.seconds.max(1e-9) / 1e6
        )?;
    }
    writeln!(
        out,
        "  batch p99 during / without: {:.2}",
        r.batch_p99_ratio
    )?;
    Ok(())
}
