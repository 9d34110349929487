//! `fastpath bench`: the pipeline's throughput on a capture held in memory.
//!
//! Each queue thread (pinned to its own core when there are enough) replays the whole capture
//! again and again, with fresh flow state for every pass, exactly through
//! `begin_batch`/`process`/`end_batch`. Frames are copied from a pristine copy into the batch's
//! buffers before each batch (as a NIC would DMA them), outside the timed batch; workers are
//! polled inline after each batch. Reported: packets per second per core (pipeline time only,
//! and end to end including copies and workers), nanoseconds per packet at the median and
//! 99th-percentile batch, and the verdict mix.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use fastpath::pipeline::Pipeline;
use fastpath::replay::{CaptureReader, FRAME_ROOM};
use fastpath::stats::NsHistogram;
use fastpath::tables::Tables;
use fastpath::worker::WorkerPools;
use fastpath::{Reason, Verdict};
use serde::Serialize;

use crate::cmd::report::Mix;
use crate::common::{self, BUNDLED_CAPTURE, BUNDLED_CAPTURE_NAME};

/// Arguments of `fastpath bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Capture to run (held in memory). Default: the bundled capture `pcaps/mixed.pcap`.
    pub pcap: Option<PathBuf>,
    /// Configuration file (TOML). Default: the bundled `pcaps/edge-lab.toml`.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Queue threads, one pinned per core (each runs the whole capture).
    #[arg(long, default_value_t = 1)]
    pub queues: usize,
    /// SYN-cookie secret in hex (default: the config's, else random).
    #[arg(long, value_name = "HEX")]
    pub cookie_secret: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Measure live instead, on a veth pair between two namespaces (needs root, and iproute2,
    /// nftables, ethtool, procps: checked first): the same floods from `fastpath gen` (UDP to
    /// an unconfigured port, SYNs to a Spectrum app) against the fast path, a plain XDP_DROP
    /// program (the generator's own ceiling) and the kernel alone (nftables and SYN cookies);
    /// reports each one's handled packets per second (SYN flood: SYN-ACKs that reached the
    /// client) side by side, the ratios, and an SVG plot (`--plot`). `--seconds` is per flood.
    #[arg(long)]
    pub live: bool,
    /// With `--live`: rounds, each running every handler once in turn; a ratio is the median
    /// of the rounds' ratios.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// With `--live`: the generator's engine. Default: `kernel` (XDP live frames), falling
    /// back to `xsk` (AF_XDP TX), loudly, where the kernel refuses live frames; given
    /// explicitly, no fallback.
    #[arg(long, value_enum, value_name = "ENGINE", requires = "live")]
    pub gen_engine: Option<crate::cmd::generate::Engine>,
    /// With `--live`: where to write the SVG plot of handled vs offered packets per second,
    /// per handler and flood (default: `fastpath-live-bench.svg` in the current directory).
    #[arg(long, value_name = "FILE", requires = "live")]
    pub plot: Option<PathBuf>,
    /// Measure the control socket instead: the same capture runs through one queue for
    /// `--seconds` without changes, then again while `--change-count` changes of this kind go
    /// through the control socket one after the other (`one-app`: an app's port range flips;
    /// `rules-100k`: a 100,000-rule access list is replaced whole). Reports the time from
    /// request to swap (p50/p99) and the batch time (p50/p99) with and without changes.
    #[arg(long, value_enum, value_name = "KIND", conflicts_with = "live")]
    pub changes: Option<crate::cmd::changebench::ChangeKind>,
    /// With `--changes`: how many changes (default 1000 for one-app, 20 for rules-100k).
    #[arg(long, value_name = "N", requires = "changes")]
    pub change_count: Option<usize>,
    /// Measure carrying flows to origins instead, live in lab namespaces (needs root): bulk
    /// TCP throughput through the edge against the same transfer routed by the kernel alone,
    /// and new connections per second through the handoff against the same proxy workers fed
    /// by a plain kernel listener. `--seconds` is per connection-rate run.
    #[arg(long, conflicts_with_all = ["live", "changes"])]
    pub origins: bool,
    /// With `--origins`: bytes per bulk transfer (each direction).
    #[arg(long, default_value_t = 1 << 30, requires = "origins")]
    pub bytes: u64,
    /// With `--origins`: client threads opening connections at once.
    #[arg(long, default_value_t = 4, requires = "origins")]
    pub conns: usize,
    /// Compare the pipeline with the straightforward implementation (`benches/naive.rs`) on
    /// one core, on the capture (default: the bundled one) and on the generated many-flows
    /// mix (`pcapgen::flows`, seed `--mix-seed`): `--rounds` rounds, each running both for
    /// `--seconds` / (2 x rounds) per mix; the ratio is the median of the rounds' ratios.
    /// Classification only is timed, as in `cargo bench --bench bench`.
    #[arg(long, conflicts_with_all = ["live", "changes", "origins"])]
    pub compare: bool,
    /// With `--compare`: the seed of the generated mix.
    #[arg(long, default_value_t = 1, requires = "compare")]
    pub mix_seed: u64,
}

/// The result of one queue thread.
#[derive(Debug, Clone, Serialize)]
pub struct QueueResult {
    /// Queue index.
    pub queue: usize,
    /// Core it was pinned to, if any.
    pub core: Option<usize>,
    /// Packets processed.
    pub packets: u64,
    /// Passes over the capture.
    pub passes: u64,
    /// Seconds spent inside batches (pipeline only).
    pub pipeline_seconds: f64,
    /// Seconds of wall time.
    pub wall_seconds: f64,
    /// Pipeline-only rate (packets / pipeline seconds), millions per second.
    pub mpps_pipeline: f64,
    /// End-to-end rate including frame copies and inline workers, millions per second.
    pub mpps_end_to_end: f64,
    /// Median per-packet time of a batch (ns).
    pub ns_per_packet_p50: f64,
    /// 99th-percentile per-packet time of a batch (ns).
    pub ns_per_packet_p99: f64,
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Capture name.
    pub capture: String,
    /// Frames in the capture.
    pub capture_frames: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Queue threads.
    pub queues: usize,
    /// Packets processed (all queues).
    pub packets: u64,
    /// Wall seconds.
    pub seconds: f64,
    /// Aggregate pipeline rate, millions of packets per second (sum over queues).
    pub mpps: f64,
    /// Pipeline rate per core (mean over queues).
    pub mpps_per_core: f64,
    /// End-to-end rate per core (copies and inline workers included).
    pub mpps_per_core_end_to_end: f64,
    /// Median per-packet time of a batch (ns, queue 0).
    pub ns_per_packet_p50: f64,
    /// 99th-percentile per-packet time of a batch (ns, queue 0).
    pub ns_per_packet_p99: f64,
    /// Verdict mix of one pass.
    pub mix: Mix,
    /// Per queue.
    pub per_queue: Vec<QueueResult>,
}

/// One frame of a capture held in memory.
pub(crate) struct Frame {
    /// Capture timestamp (ns).
    pub ts_ns: u64,
    /// The frame.
    pub data: Vec<u8>,
}

/// Reads a capture (or the bundled one) into memory.
pub(crate) fn load_frames(pcap: Option<&PathBuf>) -> Result<(Vec<Frame>, String)> {
    let (source, name): (Box<dyn Read>, String) = match pcap {
        Some(p) => (
            Box::new(
                File::open(p).with_context(|| format!("cannot open capture {}", p.display()))?,
            ),
            p.display().to_string(),
        ),
        None => (Box::new(BUNDLED_CAPTURE), BUNDLED_CAPTURE_NAME.to_string()),
    };
    let mut r = CaptureReader::new(std::io::BufReader::new(source))
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    while let Some(meta) = r
        .next_into(&mut buf)
        .map_err(|e| anyhow::anyhow!("{name}: frame {}: {e}", frames.len() + 1))?
    {
        frames.push(Frame {
            ts_ns: meta.ts_ns,
            data: buf.clone(),
        });
    }
    if frames.is_empty() {
        bail!("{name} has no frames to run");
    }
    Ok((frames, name))
}

/// Runs the benchmark and returns its result.
///
/// # Errors
/// Bad config, unreadable or empty capture.
pub fn execute(args: &BenchArgs) -> Result<BenchResult> {
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds must be in (0, 3600]");
    }
    if args.queues == 0 || args.queues > 256 {
        bail!("--queues must be 1..=256");
    }
    let loaded = common::load_config(args.config.as_deref())?;
    let seed = common::seed(args.cookie_secret.as_deref(), &loaded)?;
    let (frames, name) = load_frames(args.pcap.as_ref())?;
    let frames = Arc::new(frames);
    let tables = Arc::new(Tables::build(&loaded.compiled.spec).context("compiling the tables")?);
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let duration = Duration::from_secs_f64(args.seconds);
    let compiled = Arc::new(loaded.compiled);

    let handles: Vec<_> = (0..args.queues)
        .map(|q| {
            let frames = Arc::clone(&frames);
            let tables = Arc::clone(&tables);
            let compiled = Arc::clone(&compiled);
            let core = (args.queues <= cores.len()).then(|| cores[q]);
            std::thread::spawn(move || {
                run_queue(q, core, &frames, &tables, &compiled, seed, duration)
            })
        })
        .collect();
    let mut per_queue = Vec::new();
    let mut mix = None;
    for h in handles {
        let (r, m) = h
            .join()
            .map_err(|_| anyhow::anyhow!("a bench thread panicked"))?;
        mix.get_or_insert(m);
        per_queue.push(r);
    }
    let packets: u64 = per_queue.iter().map(|r| r.packets).sum();
    let seconds = per_queue.iter().map(|r| r.wall_seconds).fold(0.0, f64::max);
    let n = per_queue.len() as f64;
    Ok(BenchResult {
        capture: name,
        capture_frames: frames.len(),
        batch_size: compiled.pipeline.batch_size,
        queues: args.queues,
        packets,
        seconds,
        mpps: per_queue.iter().map(|r| r.mpps_pipeline).sum(),
        mpps_per_core: per_queue.iter().map(|r| r.mpps_pipeline).sum::<f64>() / n,
        mpps_per_core_end_to_end: per_queue.iter().map(|r| r.mpps_end_to_end).sum::<f64>() / n,
        ns_per_packet_p50: per_queue[0].ns_per_packet_p50,
        ns_per_packet_p99: per_queue[0].ns_per_packet_p99,
        mix: mix.unwrap_or_default(),
        per_queue,
    })
}

fn run_queue(
    q: usize,
    core: Option<core_affinity::CoreId>,
    frames: &[Frame],
    tables: &Tables,
    compiled: &control::config::Compiled,
    seed: [u8; 32],
    duration: Duration,
) -> (QueueResult, Mix) {
    let pinned = core
        .filter(|c| core_affinity::set_for_current(*c))
        .map(|c| c.id);
    let batch = compiled.pipeline.batch_size;
    let mut bufs: Vec<Vec<u8>> = (0..batch).map(|_| vec![0u8; FRAME_ROOM]).collect();
    for (b, f) in bufs.iter_mut().zip(frames.iter().cycle()) {
        b.resize(f.data.len().max(FRAME_ROOM), 0);
    }
    let per_packet = NsHistogram::default();
    let mut packets = 0u64;
    let mut passes = 0u64;
    let mut pipeline_ns = 0u64;
    let mut first_mix: Option<[u64; Reason::COUNT]> = None;
    let (pools, mut workers) = WorkerPools::new(
        &compiled.workers,
        fastpath::worker::Timeouts::from(&compiled.pipeline),
    );
    let mut p = Pipeline::new(
        q as u16,
        &compiled.pipeline,
        &compiled.cookies,
        seed,
        1500,
        pools,
    );
    let started = Instant::now();
    while started.elapsed() < duration {
        // A fresh pass: no flow state from the previous one.
        p.reset_flows();
        for w in &mut workers {
            w.reset();
        }
        let before = p.stats().reasons.snapshot();
        for chunk in frames.chunks(batch) {
            for (b, f) in bufs.iter_mut().zip(chunk) {
                if b.len() < f.data.len() {
                    b.resize(f.data.len(), 0);
                }
                b[..f.data.len()].copy_from_slice(&f.data);
            }
            let t0 = Instant::now();
            p.begin_batch(chunk[0].ts_ns);
            for (b, f) in bufs.iter_mut().zip(chunk) {
                let o = p.process(tables, f.ts_ns, b, f.data.len());
                std::hint::black_box(o);
            }
            p.end_batch();
            let ns = t0.elapsed().as_nanos() as u64;
            pipeline_ns += ns;
            per_packet.record(ns / chunk.len() as u64);
            packets += chunk.len() as u64;
            for w in &mut workers {
                w.poll(usize::MAX);
            }
        }
        passes += 1;
        if first_mix.is_none() {
            let after = p.stats().reasons.snapshot();
            first_mix = Some(core::array::from_fn(|i| after[i] - before[i]));
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let pipeline_seconds = pipeline_ns as f64 / 1e9;
    let r = QueueResult {
        queue: q,
        core: pinned,
        packets,
        passes,
        pipeline_seconds,
        wall_seconds: wall,
        mpps_pipeline: packets as f64 / pipeline_seconds.max(1e-9) / 1e6,
        mpps_end_to_end: packets as f64 / wall.max(1e-9) / 1e6,
        ns_per_packet_p50: per_packet.quantile(0.5) as f64,
        ns_per_packet_p99: per_packet.quantile(0.99) as f64,
    };
    (
        r,
        Mix::from_counts(&first_mix.unwrap_or([0; Reason::COUNT])),
    )
}

/// Runs `fastpath bench` and prints the result.
///
/// # Errors
/// As [`execute`].
pub fn run(args: &BenchArgs) -> Result<()> {
    if args.origins {
        return crate::cmd::originbench::run(args);
    }
    if args.live {
        return crate::cmd::livebench::run(args);
    }
    if let Some(kind) = args.changes {
        return crate::cmd::changebench::run(args, kind);
    }
    if args.compare {
        return run_compare(args);
    }
    let r = execute(args)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &r)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "bench: {} ({} frames), batch {}, {} queue(s), {:.1} s",
        r.capture, r.capture_frames, r.batch_size, r.queues, r.seconds
    )?;
    writeln!(
        out,
        "{:<6} {:<5} {:>12} {:>7} {:>14} {:>14} {:>10} {:>10}",
        "queue",
        "core",
        "packets",
        "passes",
        "Mpps pipeline",
        "Mpps end2end",
        "ns/pkt p50",
        "ns/pkt p99"
    )?;
    for q in &r.per_queue {
        writeln!(
            out,
            "{:<6} {:<5} {:>12} {:>7} {:>14.2} {:>14.2} {:>10.0} {:>10.0}",
            q.queue,
            q.core.map_or("-".to_string(), |c| c.to_string()),
            q.packets,
            q.passes,
            q.mpps_pipeline,
            q.mpps_end_to_end,
            q.ns_per_packet_p50,
            q.ns_per_packet_p99
        )?;
    }
    writeln!(
        out,
        "total: {:.2} Mpps ({:.2} Mpps per core; {:.2} end to end)",
        r.mpps, r.mpps_per_core, r.mpps_per_core_end_to_end
    )?;
    write!(out, "mix per pass:")?;
    for v in Verdict::ALL {
        write!(
            out,
            " {} {}",
            v.as_str(),
            r.mix.verdicts.get(v.as_str()).copied().unwrap_or(0)
        )?;
    }
    writeln!(out)?;
    for (reason, n) in &r.mix.reasons {
        writeln!(out, "  {reason:<22} {n}")?;
    }
    Ok(())
}

/// One mix of `fastpath bench --compare`: both pipelines' rates and their ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The mix.
    pub mix: String,
    /// Frames in the mix.
    pub frames: usize,
    /// The pipeline, millions of packets per second (median of the rounds).
    pub mpps_fastpath: f64,
    /// The straightforward implementation, millions of packets per second (median).
    pub mpps_straightforward: f64,
    /// Median over the rounds of the pipeline's rate over the straightforward one's.
    pub ratio: f64,
    /// Each round's ratio.
    pub round_ratios: Vec<f64>,
    /// The same ratio from one pass in which every batch takes its fastest time over all
    /// passes of all rounds, for each side: what is left when a busy machine's preemptions
    /// and cache thrashing are taken out (a batch preempted once is not preempted every time).
    pub best_batches_ratio: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The pipeline over `frames` for at least `duration` of passes (each from fresh flow state);
/// returns (packets, seconds inside batches, seconds of one pass when every batch takes its
/// fastest time over the passes).
fn time_fastpath(
    frames: &[Frame],
    tables: &Tables,
    compiled: &control::config::Compiled,
    seed: [u8; 32],
    duration: Duration,
) -> (u64, f64, f64) {
    let batch = compiled.pipeline.batch_size;
    let mut best = vec![u64::MAX; frames.len().div_ceil(batch)];
    let mut bufs: Vec<Vec<u8>> = (0..batch).map(|_| vec![0u8; FRAME_ROOM]).collect();
    let (pools, mut workers) = WorkerPools::new(
        &compiled.workers,
        fastpath::worker::Timeouts::from(&compiled.pipeline),
    );
    let mut p = Pipeline::new(0, &compiled.pipeline, &compiled.cookies, seed, 1500, pools);
    let (mut packets, mut ns) = (0u64, 0u64);
    let started = Instant::now();
    while started.elapsed() < duration {
        p.reset_flows();
        for w in &mut workers {
            w.reset();
        }
        for (i, chunk) in frames.chunks(batch).enumerate() {
            for (b, f) in bufs.iter_mut().zip(chunk) {
                if b.len() < f.data.len() {
                    b.resize(f.data.len(), 0);
                }
                b[..f.data.len()].copy_from_slice(&f.data);
            }
            let t0 = Instant::now();
            p.begin_batch(chunk[0].ts_ns);
            for (b, f) in bufs.iter_mut().zip(chunk) {
                std::hint::black_box(p.process(tables, f.ts_ns, b, f.data.len()));
            }
            p.end_batch();
            let t = t0.elapsed().as_nanos() as u64;
            ns += t;
            best[i] = best[i].min(t);
            packets += chunk.len() as u64;
            for w in &mut workers {
                w.poll(usize::MAX);
            }
        }
    }
    (
        packets,
        ns as f64 / 1e9,
        best.iter().sum::<u64>() as f64 / 1e9,
    )
}

/// The straightforward implementation over `frames`, as [`time_fastpath`].
fn time_straightforward(
    frames: &[Frame],
    compiled: &control::config::Compiled,
    seed: [u8; 32],
    duration: Duration,
) -> (u64, f64, f64) {
    let batch = compiled.pipeline.batch_size;
    let mut best = vec![u64::MAX; frames.len().div_ceil(batch)];
    let (mut packets, mut ns) = (0u64, 0u64);
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); batch];
    let started = Instant::now();
    while started.elapsed() < duration {
        let mut n = crate::naive::Naive::new(
            &compiled.spec,
            seed,
            compiled.cookies.rotate_secs,
            [compiled.workers.cdn, compiled.workers.spectrum],
            compiled.workers.queue_depth,
        );
        for (i, chunk) in frames.chunks(batch).enumerate() {
            for (b, f) in bufs.iter_mut().zip(chunk) {
                b.clear();
                b.extend_from_slice(&f.data);
            }
            let t0 = Instant::now();
            for (b, f) in bufs.iter().zip(chunk) {
                std::hint::black_box(n.process(f.ts_ns, b));
            }
            let t = t0.elapsed().as_nanos() as u64;
            ns += t;
            best[i] = best[i].min(t);
            packets += chunk.len() as u64;
            n.drain_workers();
        }
    }
    (
        packets,
        ns as f64 / 1e9,
        best.iter().sum::<u64>() as f64 / 1e9,
    )
}

/// `fastpath bench --compare`: the pipeline against the straightforward implementation on the
/// capture and on the generated mix, rounds alternating the two so that a busy machine slows
/// both alike.
///
/// # Errors
/// Bad config, unreadable or empty capture, bad arguments.
pub fn compare(args: &BenchArgs) -> Result<Vec<Comparison>> {
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds must be in (0, 3600]");
    }
    let loaded = common::load_config(args.config.as_deref())?;
    let seed = common::seed(args.cookie_secret.as_deref(), &loaded)?;
    let compiled = loaded.compiled;
    let tables = Tables::build(&compiled.spec).context("compiling the tables")?;
    let (capture, name) = load_frames(args.pcap.as_ref())?;
    let generated: Vec<Frame> = pcapgen::flows(args.mix_seed)
        .frames
        .into_iter()
        .map(|f| Frame {
            ts_ns: f.ts_ns,
            data: f.data,
        })
        .collect();
    let rounds = args.rounds.max(1);
    let slice = Duration::from_secs_f64(args.seconds / (2 * rounds) as f64);
    let mut out = Vec::new();
    for (mix, frames) in [
        (name, capture),
        (
            format!(
                "generated many-flows mix (pcapgen::flows, seed {})",
                args.mix_seed
            ),
            generated,
        ),
    ] {
        let (mut fast, mut slow, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut fast_best, mut slow_best) = (f64::MAX, f64::MAX);
        for _ in 0..rounds {
            let (n, s, b) = time_fastpath(&frames, &tables, &compiled, seed, slice);
            fast_best = fast_best.min(b);
            let f = n as f64 / s.max(1e-9) / 1e6;
            let (n, s, b) = time_straightforward(&frames, &compiled, seed, slice);
            slow_best = slow_best.min(b);
            let g = n as f64 / s.max(1e-9) / 1e6;
            fast.push(f);
            slow.push(g);
            ratios.push(f / g.max(1e-12));
        }
        out.push(Comparison {
            mix,
            frames: frames.len(),
            mpps_fastpath: median(fast),
            mpps_straightforward: median(slow),
            ratio: median(ratios.clone()),
            round_ratios: ratios,
            best_batches_ratio: slow_best / fast_best.max(1e-12),
        });
    }
    Ok(out)
}

fn run_compare(args: &BenchArgs) -> Result<()> {
    let r = compare(args)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &r)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<58} {:>8} {:>14} {:>14} {:>7}",
        "mix", "frames", "Mpps fastpath", "Mpps straight", "ratio"
    )?;
    for c in &r {
        writeln!(
            out,
            "{:<58} {:>8} {:>14.2} {:>14.2} {:>6.1}x",
            c.mix, c.frames, c.mpps_fastpath, c.mpps_straightforward, c.ratio
        )?;
        let rounds: Vec<String> = c.round_ratios.iter().map(|x| format!("{x:.1}")).collect();
        writeln!(
            out,
            "  rounds: {}; fastest batches: {:.1}x",
            rounds.join(" "),
            c.best_batches_ratio
        )?;
    }
    Ok(())
}
