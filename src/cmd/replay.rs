//! `fastpath replay`: runs a capture through the pipeline and reports every verdict.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use fastpath::replay::{
    CaptureReader, FrameReport, PcapNgWriter, PcapWriter, Replay, ReplaySettings, Sink,
};
use fastpath::tables::{SharedTables, Tables};

use crate::cmd::report::Summary;
use crate::common::{self, BUNDLED_CAPTURE, BUNDLED_CAPTURE_NAME};
use crate::daemon::{ControlArgs, ControlPlane, Plane};
use control::daemon::DataPlane;

/// Arguments of `fastpath replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Capture to replay (pcap or pcapng; Ethernet, raw IP, Linux cooked or BSD loopback link
    /// types). Default: the bundled capture `pcaps/mixed.pcap`.
    pub pcap: Option<PathBuf>,
    /// Configuration file (TOML). Default: the bundled `pcaps/edge-lab.toml`.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Write one JSON object per input frame, in order:
    /// {"frame","verdict","reason","service","app","worker"}.
    #[arg(long, value_name = "FILE.jsonl")]
    pub verdicts: Option<PathBuf>,
    /// Write every frame we transmit (SYN-ACKs, RSTs, ICMP errors), in order, as a pcap.
    #[arg(long, value_name = "FILE.pcap")]
    pub tx_out: Option<PathBuf>,
    /// Write the input as a pcapng whose packet comments carry verdict and reason (Wireshark
    /// shows them in the packet details and with the `frame.comment` filter).
    #[arg(long, value_name = "FILE.pcapng")]
    pub out: Option<PathBuf>,
    /// SYN-cookie secret in hex (up to 32 bytes). Fixes the cookies so that the output is
    /// reproducible byte for byte. Default: the config's `syn_cookies.secret`, else random.
    #[arg(long, value_name = "HEX")]
    pub cookie_secret: Option<String>,
    /// Print the summary as one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Replay the capture this many times, each pass with fresh flow state (0: until SIGINT or
    /// SIGTERM). `--verdicts` lines then carry `loop` and the config `version` of their batch.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub loops: u64,
    /// Pace the replay to this many frames per second of wall time (default: as fast as it
    /// goes). The pipeline's clock stays the capture's.
    #[arg(long, value_name = "PPS")]
    pub rate: Option<f64>,
    /// Serve the control socket at PATH while replaying (see docs/CONTROL.md): changes apply
    /// between batches, and `--verdicts` lines carry the config `version` of their batch.
    /// Changes persist to --config FILE; with the bundled config the socket is read-only.
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Make the control socket 0660 with this group (a name or a gid) instead of 0600.
    #[arg(long, value_name = "GROUP", requires = "control")]
    pub control_group: Option<String>,
    /// Follow a fleet's configuration shared through etcd while replaying:
    /// `etcd://HOST:PORT[,HOST:PORT...]/PREFIX` (as `fastpath run --config-source`; needs
    /// --config FILE and --control).
    #[arg(long, value_name = "etcd://HOST:PORT/PREFIX", requires_all = ["control", "config"])]
    pub config_source: Option<String>,
}

/// One line of `--verdicts` (field order as documented).
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct VerdictLine {
    /// 1-based frame number.
    pub frame: u64,
    /// `pass`, `drop`, `tx` or `forward`.
    pub verdict: String,
    /// The reason.
    pub reason: String,
    /// `cdn` or `spectrum`, once known.
    pub service: Option<String>,
    /// The Spectrum app's id, once known.
    pub app: Option<String>,
    /// The worker within the service's pool, once known.
    pub worker: Option<u16>,
    /// The pass of a looped replay (from 1), with `--loops` or `--control`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "loop")]
    pub pass: Option<u64>,
    /// The configuration version of the frame's batch, with `--loops` or `--control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl VerdictLine {
    /// The line of one report.
    pub fn of(r: &FrameReport<'_>) -> VerdictLine {
        let o = &r.outcome;
        VerdictLine {
            frame: r.frame,
            verdict: o.verdict().as_str().into(),
            reason: o.reason.as_str().into(),
            service: o.service.map(|s| s.as_str().into()),
            app: o
                .app
                .and_then(|a| r.tables.apps.get(a as usize))
                .map(|a| a.id.clone()),
            worker: o.worker,
            pass: None,
            version: None,
        }
    }
}

/// Where a looped replay is: the pass (from 1) and the frames before it.
#[derive(Debug, Default, Clone, Copy)]
struct Pass {
    number: u64,
    frames_before: u64,
}

/// Writes `--verdicts` lines; in a looped or controlled replay with the pass, the frame
/// number within it and the config version.
struct Verdicts<W: Write> {
    out: W,
    pass: Option<Arc<std::sync::Mutex<Pass>>>,
}

impl<W: Write> Sink for Verdicts<W> {
    fn frame(&mut self, r: &FrameReport<'_>) -> std::io::Result<()> {
        let mut line = VerdictLine::of(r);
        if let Some(p) = &self.pass {
            let p = *p.lock().unwrap_or_else(|e| e.into_inner());
            line.frame -= p.frames_before;
            line.pass = Some(p.number);
            line.version = Some(r.tables.version());
        }
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Writes `--tx-out`.
struct TxOut<W: Write>(PcapWriter<W>);

impl<W: Write> Sink for TxOut<W> {
    fn frame(&mut self, r: &FrameReport<'_>) -> std::io::Result<()> {
        match r.tx {
            Some(tx) => self.0.write(r.ts_ns, tx),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.0.finish()
    }
}

/// Writes `--out`.
struct Annotated<W: Write>(PcapNgWriter<W>);

impl<W: Write> Sink for Annotated<W> {
    fn frame(&mut self, r: &FrameReport<'_>) -> std::io::Result<()> {
        let o = &r.outcome;
        let mut c = format!("fastpath: {} {}", o.verdict().as_str(), o.reason.as_str());
        if let Some(s) = o.service {
            c.push_str(&format!(" service={s}"));
        }
        if let Some(a) = o.app.and_then(|a| r.tables.apps.get(a as usize)) {
            c.push_str(&format!(" app={}", a.id));
        }
        if let Some(w) = o.worker {
            c.push_str(&format!(" worker={w}"));
        }
        self.0.write(r.ts_ns, r.data, Some(&c))
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.0.finish()
    }
}

/// Several sinks in a row.
struct Fanout(Vec<Box<dyn Sink>>);

impl Sink for Fanout {
    fn frame(&mut self, r: &FrameReport<'_>) -> std::io::Result<()> {
        for s in &mut self.0 {
            s.frame(r)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        for s in &mut self.0 {
            s.finish()?;
        }
        Ok(())
    }
}

fn create(p: &PathBuf) -> Result<BufWriter<File>> {
    Ok(BufWriter::new(File::create(p).with_context(|| {
        format!("cannot create {}", p.display())
    })?))
}

/// What a replay produced, for tests and the bench.
#[derive(Debug)]
pub struct ReplayRun {
    /// The summary.
    pub summary: Summary,
}

/// Runs `fastpath replay` and prints the summary.
///
/// # Errors
/// A config, capture or output file that cannot be read or written, a capture that cannot be
/// read to the end (after reporting the frames before the problem).
pub fn run(args: &ReplayArgs) -> Result<()> {
    let run = execute(args)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &run.summary)?;
        writeln!(out)?;
    } else {
        run.summary.print(&mut out)?;
    }
    if let Some(e) = &run.summary.error {
        anyhow::bail!("{e}");
    }
    Ok(())
}

/// Replays as `args` say and returns the summary (printing nothing on stdout).
///
/// # Errors
/// As [`run`], except that a capture that cannot be read to the end is reported in
/// `summary.error`.
pub fn execute(args: &ReplayArgs) -> Result<ReplayRun> {
    let (loaded, fleet) =
        crate::daemon::load_shared(args.config_source.as_deref(), args.config.as_deref())?;
    if let Some(s) = &fleet {
        let _ = writeln!(std::io::stderr(), "fastpath: {}", s.how);
    }
    let seed = common::seed(args.cookie_secret.as_deref(), &loaded)?;
    let capture_name = match &args.pcap {
        Some(p) => p.display().to_string(),
        None => BUNDLED_CAPTURE_NAME.to_string(),
    };
    let open = || -> Result<CaptureReader<std::io::BufReader<Box<dyn Read>>>> {
        let source: Box<dyn Read> = match &args.pcap {
            Some(p) => Box::new(
                File::open(p).with_context(|| format!("cannot open capture {}", p.display()))?,
            ),
            None => Box::new(BUNDLED_CAPTURE),
        };
        CaptureReader::new(std::io::BufReader::new(source))
            .map_err(|e| anyhow::anyhow!("{capture_name}: {e}"))
    };
    let mut reader = open()?;
    let tables = Tables::build(&loaded.compiled.spec).context("compiling the tables")?;
    let shared = SharedTables::new(tables);
    let settings = ReplaySettings {
        pipeline: loaded.compiled.pipeline.clone(),
        cookies: loaded.compiled.cookies.clone(),
        workers: loaded.compiled.workers.clone(),
        seed,
        mtu: 1500,
    };
    let mut replay = Replay::new(Arc::clone(&shared), &settings);

    // The control socket, with the replay as its data plane and the capture's clock.
    let clock = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let control = match &args.control {
        None => None,
        Some(path) => {
            let cargs = ControlArgs {
                control: Some(path.clone()),
                no_control: false,
                control_group: args.control_group.clone(),
                config_source: None,
            };
            let mut cp = ControlPlane::start(
                &cargs,
                None,
                &loaded,
                args.config.as_deref(),
                Plane {
                    tables: Arc::clone(&shared),
                    installer: None,
                    seed,
                    clock: Some(Arc::clone(&clock)),
                    shared: fleet,
                },
            )?;
            replay.follow_secrets(Arc::clone(&cp.secrets));
            cp.set_data_plane(DataPlane::of_replay(&mut replay))?;
            let _ = writeln!(
                std::io::stderr(),
                "fastpath: replaying {capture_name} with {} version {}, {}",
                loaded.name,
                loaded.version,
                cp.describe()
            );
            Some(cp)
        }
    };
    let looped = control.is_some() || args.loops != 1;
    let pass = looped.then(|| Arc::new(std::sync::Mutex::new(Pass::default())));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if args.loops == 0 {
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&stop))
                .context("installing the signal handlers")?;
        }
    }

    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(p) = &args.verdicts {
        sinks.push(Box::new(Verdicts {
            out: create(p)?,
            pass: pass.clone(),
        }));
    }
    if let Some(p) = &args.tx_out {
        sinks.push(Box::new(TxOut(
            PcapWriter::new(create(p)?).context("writing --tx-out")?,
        )));
    }
    if let Some(p) = &args.out {
        sinks.push(Box::new(Annotated(
            PcapNgWriter::new(create(p)?).context("writing --out")?,
        )));
    }
    let mut fanout = Fanout(sinks);

    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} frames {per_sec} {elapsed}")
                .expect("valid template"),
        );
        b
    });
    if let Some(r) = args.rate
        && !(r.is_finite() && r > 0.0)
    {
        anyhow::bail!("--rate {r}: give frames per second above 0");
    }
    let started = Instant::now();
    let mut number = 0u64;
    let result = loop {
        number += 1;
        if let Some(p) = &pass {
            *p.lock().unwrap_or_else(|e| e.into_inner()) = Pass {
                number,
                frames_before: replay.totals().frames,
            };
        }
        let r = replay.run(&mut reader, &mut fanout, &mut |n, ts_ns| {
            clock.store(ts_ns / 1_000_000_000, std::sync::atomic::Ordering::Relaxed);
            if let Some(b) = &bar {
                b.set_position(n);
            }
            if let Some(rate) = args.rate {
                let due = std::time::Duration::from_secs_f64(n as f64 / rate);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        });
        replay.finish();
        let more = args.loops == 0 || number < args.loops;
        if r.is_err() || !more || stop.load(std::sync::atomic::Ordering::Relaxed) {
            break r;
        }
        replay.reset_flows();
        reader = open()?;
    };
    drop(control);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let wall = started.elapsed();
    fanout.finish().context("writing output")?;
    let error = match result {
        Ok(()) => None,
        Err(fastpath::replay::ReplayError::Sink(e)) => return Err(e).context("writing output"),
        Err(e) => Some(format!("{capture_name}: {e}")),
    };
    let summary = Summary::build(
        &replay,
        &shared.load(),
        &capture_name,
        &loaded.name,
        wall,
        error,
    );
    Ok(ReplayRun { summary })
}
