//! `fastpath run`: the live fast path on an interface.
//!
//! Loads the XDP program and writes its maps from the compiled tables, opens one AF_XDP socket
//! per RX queue, attaches the program (through a BPF link owned by this process: if it dies,
//! the program goes with it), and runs one pinned thread per queue plus the workers. Counters
//! every few seconds on stderr; SIGINT/SIGTERM stop it cleanly and print the final counters.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use fastpath::pipeline::Pipeline;
use fastpath::stats::QueueStats;
use fastpath::syncookie::{CookieSecrets, SynAckParams};
use fastpath::tables::{SharedTables, Tables};
use fastpath::worker::{PacketPool, WorkerCounters, WorkerPools};
use fastpath::xsk::{XskConfig, XskQueue, XskStats, ZeroCopy};
use fastpath::{Reason, Verdict};
use fastpath_proxy::routes::LocalRoutes;
use fastpath_proxy::{Proxy, Settings};
use fastpath_xdp::{GateState, ModeRequest, XdpProgram, abi};
use serde::Serialize;

use crate::cmd::report::Mix;
use crate::common;
use crate::daemon::{ControlArgs, ControlPlane, DEFAULT_SOCKET, Plane};
use control::config::Compiled;
use control::daemon::{AppTraffic, DataPlane, Installer, QueueHandle, WorkerHandle, XdpCounts};

/// XDP attach mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// In the driver; fails where the driver has no XDP.
    Native,
    /// The kernel's generic path (any interface, slower).
    Generic,
    /// Native where the driver has it, generic otherwise.
    Auto,
}

/// Zero-copy request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ZeroCopyArg {
    /// Zero-copy where the driver supports it, copy mode otherwise.
    Auto,
    /// Zero-copy or fail.
    On,
    /// Copy mode.
    Off,
}

/// Where SYN cookies are minted and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CookiesArg {
    /// In the XDP program: SYNs are answered with XDP_TX and cookie ACKs checked before
    /// anything crosses into userspace. Falls back to `userspace` by itself, saying so, when
    /// the kernel refuses the program with the gate.
    Xdp,
    /// In the userspace pipeline: every SYN and ACK crosses the AF_XDP socket (for NICs or
    /// kernels without XDP_TX).
    Userspace,
}

/// Arguments of `fastpath run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Configuration file (TOML). Default: the bundled `pcaps/edge-lab.toml`.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The interface to serve.
    #[arg(long)]
    pub iface: String,
    /// RX queues to serve: `all`, or the first N.
    #[arg(long, default_value = "all")]
    pub queues: String,
    /// Cores to pin the queue threads to, in queue order (e.g. `0,1`). Default: queue i on
    /// core i when there are enough cores, unpinned otherwise.
    #[arg(long, value_delimiter = ',')]
    pub cores: Vec<usize>,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    pub mode: Mode,
    /// AF_XDP zero-copy.
    #[arg(long, value_enum, default_value_t = ZeroCopyArg::Auto)]
    pub zero_copy: ZeroCopyArg,
    /// Spin when idle instead of sleeping in poll(2) (lower latency, a busy core per queue).
    #[arg(long)]
    pub busy_poll: bool,
    /// Seconds between counter lines on stderr (0: none).
    #[arg(long, default_value_t = 5.0)]
    pub stats_every: f64,
    /// Stop by itself after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Where SYN cookies are minted and validating ACKs checked.
    #[arg(long, value_enum, default_value_t = CookiesArg::Xdp)]
    pub cookies: CookiesArg,
    /// SYN-cookie secret in hex (default: the config's `syn_cookies.secret`, else random).
    #[arg(long, value_name = "HEX")]
    pub cookie_secret: Option<String>,
    /// Print the final counters as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Attach a plain XDP program that drops every frame instead of the fast path (no sockets,
    /// no pipeline): the baseline of `fastpath bench --live`. Its count is `xdp_drop_all`.
    #[arg(long)]
    pub drop_all: bool,
    /// The baseline of `fastpath bench --origins`: no XDP program and no AF_XDP sockets; the
    /// kernel listens on IP:PORT itself (its own SYN handling and accept queue) and the same
    /// proxy workers carry the accepted connections to the origin of the Spectrum app that
    /// serves IP:PORT. The prefixes are made local routes as usual.
    #[arg(long, value_name = "IP:PORT", conflicts_with = "drop_all")]
    pub kernel_listener: Option<std::net::SocketAddr>,
    /// The control socket.
    #[command(flatten)]
    pub control: ControlArgs,
}

/// Final counters of one queue.
#[derive(Debug, Clone, Serialize)]
pub struct QueueReport {
    /// The queue.
    pub queue: u32,
    /// The core it ran on.
    pub core: Option<usize>,
    /// Frames received from the AF_XDP socket.
    pub rx: u64,
    /// Replies transmitted.
    pub tx: u64,
    /// Replies dropped on a full TX ring.
    pub tx_ring_full: u64,
    /// Frames redirected to this queue's socket that the kernel dropped before the RX ring:
    /// no frame on the fill ring, or the RX ring full (`XDP_STATISTICS`). Non-zero means the
    /// queue thread did not keep up.
    pub socket_dropped: u64,
    /// Of those, the ones dropped on a full RX ring.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub fill_ring_empty: u64,
    /// Verdicts of the frames the pipeline classified.
    pub mix: Mix,
}

/// Final counters of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Interface.
    pub iface: String,
    /// `native` or `generic`.
    pub xdp_mode: String,
    /// Whether the sockets are zero-copy.
    pub zero_copy: bool,
    /// Seconds run.
    pub seconds: f64,
    /// What the XDP program decided, by reason (the kernel's share of the pipeline).
    pub xdp: Mix,
    /// Frames the XDP program redirected to the sockets.
    pub xdp_redirected: u64,
    /// Frames the XDP program passed because a queue had no socket.
    pub xdp_no_socket: u64,
    /// Frames the plain drop-everything program dropped (`--drop-all`).
    pub xdp_drop_all: u64,
    /// Per queue.
    pub queues: Vec<QueueReport>,
    /// All queues together: the pipeline's verdicts.
    pub pipeline: Mix,
    /// Connections opened by the workers.
    pub connects: u64,
    /// Connections closed by the workers.
    pub disconnects: u64,
    /// Work items the workers processed.
    pub worker_items: u64,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// The XDP counters as a verdict mix.
fn xdp_mix(c: &[abi::Counter]) -> Mix {
    let counts: [u64; Reason::COUNT] = core::array::from_fn(|i| c.get(i).map_or(0, |x| x.packets));
    Mix::from_counts(&counts)
}

/// The XDP program, shared by the queue setup, the counter lines and the control socket's
/// installer; taken out (and so detached) at shutdown.
type SharedXdp = Arc<std::sync::Mutex<Option<XdpProgram>>>;

fn with_xdp<T>(xdp: &SharedXdp, f: impl FnOnce(&mut XdpProgram) -> T) -> Option<T> {
    xdp.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .map(f)
}

/// Makes applied changes live besides the userspace snapshot: the local routes of the
/// prefixes (added before anything else, removed after), the XDP maps (their inactive
/// generation, then one flip) and the proxy workers' settings.
struct XdpInstaller {
    xdp: SharedXdp,
    routes: Arc<std::sync::Mutex<LocalRoutes>>,
    settings: Arc<arc_swap::ArcSwap<Settings>>,
    /// Connections per worker the open-file limit allows.
    fd_cap: usize,
}

impl Installer for XdpInstaller {
    fn install(&mut self, tables: &Tables, compiled: &Compiled) -> Result<(), String> {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let before: Vec<ipnet::IpNet> = routes.added().copied().collect();
        let mut wanted = prefixes(compiled);
        wanted.extend(before.iter().copied());
        // New prefixes become local first; old ones go only once the maps no longer serve them.
        routes.sync(&wanted).map_err(|e| e.to_string())?;
        match with_xdp(&self.xdp, |x| x.install(tables)) {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                let _ = routes.sync(&before);
                return Err(e.to_string());
            }
            None => return Err("the XDP program is detached (shutting down)".into()),
        }
        let _ = routes.sync(&prefixes(compiled));
        self.settings
            .store(Arc::new(capped(proxy_settings(compiled), self.fd_cap)));
        Ok(())
    }
}

/// Keeps the XDP program's SYN-cookie gate in step with the secrets the queues follow: the
/// secrets of the epochs around now and the clock offset every second, and a rotation (or a
/// new fleet seed) within 20 ms of its publication. Stops when dropped.
struct GateKeeper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GateKeeper {
    fn start(
        xdp: SharedXdp,
        secrets: Arc<CookieSecrets>,
        syn_ack: SynAckParams,
    ) -> Result<GateKeeper> {
        let write = move |xdp: &SharedXdp, secrets: &CookieSecrets| {
            let now = now_ns() / 1_000_000_000;
            let mut c = secrets.current();
            c.refresh(now);
            let state = GateState::now(c.export(now), syn_ack);
            with_xdp(xdp, |x| x.set_cookies(Some(&state))).unwrap_or(Ok(()))
        };
        write(&xdp, &secrets)?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("fp-cookie-gate".into())
            .spawn(move || {
                let mut seen = secrets.generation();
                let mut written = Instant::now();
                while !st.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                    let g = secrets.generation();
                    if g != seen || written.elapsed() >= Duration::from_secs(1) {
                        seen = g;
                        written = Instant::now();
                        // A failed write leaves the last state: it stays valid for the epochs
                        // it covers, and the next second tries again.
                        let _ = write(&xdp, &secrets);
                    }
                }
                // Stopping: SYNs go to userspace again.
                let _ = with_xdp(&xdp, |x| x.set_cookies(None));
            })?;
        Ok(GateKeeper {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for GateKeeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The onboarded prefixes: the local routes of a running fast path.
fn prefixes(c: &Compiled) -> Vec<ipnet::IpNet> {
    c.spec.prefixes.iter().map(|p| p.cidr).collect()
}

/// `s` with at most `cap` connections per worker.
fn capped(mut s: Settings, cap: usize) -> Settings {
    s.max_connections = s.max_connections.min(cap);
    s
}

/// The proxy workers' settings from the configuration.
pub fn proxy_settings(c: &Compiled) -> Settings {
    let p = &c.proxy;
    Settings {
        connect_timeout: Duration::from_secs(u64::from(p.connect_timeout_secs)),
        idle_timeout: Duration::from_secs(u64::from(p.idle_timeout_secs)),
        udp_idle_timeout: Duration::from_secs(u64::from(c.pipeline.udp_idle_secs)),
        drain_timeout: Duration::from_secs(u64::from(p.drain_secs)),
        max_connections: p.max_connections,
        buffer_bytes: p.buffer_bytes,
        splice: p.splice,
    }
}

/// One queue's live handles: queue, core, pipeline counters, socket counters.
type QueueHandles = (u32, Option<usize>, Arc<QueueStats>, Arc<XskStats>);

/// Live state of a running fast path, shared with the printer and the final report.
struct Live {
    queues: Vec<QueueHandles>,
    workers: Vec<Arc<WorkerCounters>>,
}

impl Live {
    fn pipeline_mix(&self) -> Mix {
        let mut counts = [0u64; Reason::COUNT];
        for (_, _, s, _) in &self.queues {
            for (i, c) in s.reasons.snapshot().iter().enumerate() {
                counts[i] += c;
            }
        }
        Mix::from_counts(&counts)
    }
}

fn print_line(
    out: &mut dyn Write,
    live: &Live,
    xdp: &SharedXdp,
    last: &mut [u64],
    last_xdp: &mut u64,
    dt: f64,
) -> std::io::Result<()> {
    let c = with_xdp(xdp, |x| x.counters().unwrap_or_default()).unwrap_or_default();
    let xdp_total: u64 = c.iter().take(Reason::COUNT + 2).map(|x| x.packets).sum();
    let xm = xdp_mix(&c);
    let mut parts = vec![format!(
        "xdp {:.3} Mpps (drop {}, pass {}, SYN-ACKs {}, to sockets {})",
        (xdp_total - *last_xdp) as f64 / dt / 1e6,
        xm.verdicts["drop"],
        xm.verdicts["pass"],
        xm.verdicts["tx"],
        c[abi::CTR_REDIRECTED as usize].packets
    )];
    *last_xdp = xdp_total;
    for (i, (q, _, s, x)) in live.queues.iter().enumerate() {
        let n = s.frames();
        let rate = (n - last[i]) as f64 / dt / 1e6;
        last[i] = n;
        let m = Mix::from_stats(&s.reasons);
        let top: Vec<String> = m.reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let lost = x.kernel_dropped();
        let lost = if lost > 0 {
            format!(" (socket dropped {lost})")
        } else {
            String::new()
        };
        parts.push(format!(
            "q{q} {n} frames {rate:.3} Mpps{lost} [{}]",
            top.join(", ")
        ));
    }
    writeln!(out, "fastpath: {}", parts.join(" | "))
}

/// Runs `fastpath run`.
///
/// # Errors
/// No root, a bad config, an interface without the queues asked for, BPF or AF_XDP failures
/// (each with what to try).
pub fn run(args: &RunArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handlers")?;
    }
    let report = serve(args, &stop, &mut std::io::stderr())?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "fastpath on {} stopped after {:.1} s",
            report.iface, report.seconds
        )?;
        if args.drop_all {
            writeln!(out, "xdp_drop_all: {} frames dropped", report.xdp_drop_all)?;
            return Ok(());
        }
        writeln!(out, "xdp: {:?}", report.xdp.reasons)?;
        writeln!(
            out,
            "xdp: {} redirected to the sockets, {} passed for lack of a socket",
            report.xdp_redirected, report.xdp_no_socket
        )?;
        for q in &report.queues {
            writeln!(
                out,
                "queue {}: rx {} tx {} (tx ring full {}, dropped by the kernel before the socket {}) {:?}",
                q.queue, q.rx, q.tx, q.tx_ring_full, q.socket_dropped, q.mix.reasons
            )?;
        }
        writeln!(
            out,
            "workers: {} items, {} connects, {} disconnects",
            report.worker_items, report.connects, report.disconnects
        )?;
    }
    Ok(())
}

/// Serves until `stop` is set (or `--duration` passes) and returns the final counters. The
/// periodic counter lines go to `log`.
///
/// # Errors
/// As [`run`].
pub fn serve(args: &RunArgs, stop: &Arc<AtomicBool>, log: &mut dyn Write) -> Result<RunReport> {
    if !is_root() {
        bail!(
            "fastpath run needs root (CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW) to load XDP and open AF_XDP sockets"
        );
    }
    let (loaded, shared) = crate::daemon::load_shared(
        args.control.config_source.as_deref(),
        args.config.as_deref(),
    )?;
    if let Some(s) = &shared {
        writeln!(log, "fastpath: {}", s.how)?;
    }
    let seed = common::seed(args.cookie_secret.as_deref(), &loaded)?;
    let c = &loaded.compiled;
    let tables = SharedTables::new(Tables::build(&c.spec).context("compiling the tables")?);
    let available = fastpath::xsk::rx_queues(&args.iface);
    if !std::path::Path::new(&format!("/sys/class/net/{}", args.iface)).exists() {
        bail!("no interface {}", args.iface);
    }
    let nq = match args.queues.as_str() {
        "all" => available,
        n => {
            let n: usize = n
                .parse()
                .with_context(|| format!("--queues {n}: give `all` or a number"))?;
            if n == 0 || n > available {
                bail!("--queues {n}: {} has {available} RX queue(s)", args.iface);
            }
            n
        }
    };
    let mtu = fastpath::xsk::mtu(&args.iface).unwrap_or(1500);

    if let Some(addr) = args.kernel_listener {
        return serve_kernel_listener(args, &loaded, seed, mtu, addr, stop, log);
    }
    let mut xdp = XdpProgram::load().context("loading the XDP program")?;
    if args.drop_all {
        return serve_drop_all(args, xdp, stop, log);
    }
    // The edge prefixes become local (AnyIP) so that handed-off sockets can own their
    // addresses; what a crashed predecessor left behind goes first.
    let (routes, stale) = LocalRoutes::install(&args.iface, &prefixes(c))
        .context("making the edge prefixes local routes (ip route add local PREFIX dev lo)")?;
    if !stale.is_empty() {
        writeln!(
            log,
            "fastpath: removed {} local route(s) that a fast path on {} left behind when it stopped uncleanly: {}",
            stale.len(),
            args.iface,
            stale
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    let routes = Arc::new(std::sync::Mutex::new(routes));
    let settings = Arc::new(arc_swap::ArcSwap::from_pointee(proxy_settings(c)));
    let (fds, need) = raise_fd_limit(c);
    // What the open-file limit allows each worker (a reserve of 1024 for everything else):
    // past it a new flow gets a RST counted as `limit_connections`, rather than a handoff that
    // fails for lack of descriptors.
    let per_conn = if c.proxy.splice { 6 } else { 2 };
    let workers = (c.workers.cdn + c.workers.spectrum) as u64;
    let fd_cap = (fds.saturating_sub(1024) / (per_conn * workers).max(1)).max(1) as usize;
    if fds < need {
        writeln!(
            log,
            "fastpath: {fds} open files allowed: each worker holds at most {fd_cap} connections (proxy.max_connections {} would need {need}; raise the limit with ulimit -n or LimitNOFILE=)",
            c.proxy.max_connections
        )?;
    }
    settings.store(Arc::new(capped(proxy_settings(c), fd_cap)));
    xdp.install(&tables.load())
        .context("writing the XDP maps")?;
    let zc = match args.zero_copy {
        ZeroCopyArg::Auto => ZeroCopy::Auto,
        ZeroCopyArg::On => ZeroCopy::On,
        ZeroCopyArg::Off => ZeroCopy::Off,
    };
    let xcfg = XskConfig {
        zero_copy: zc,
        busy_poll: args.busy_poll,
        batch: c.pipeline.batch_size,
        ..XskConfig::default()
    };
    let mut sockets = Vec::new();
    for q in 0..nq as u32 {
        let s = XskQueue::open(&args.iface, q, &xcfg)
            .with_context(|| format!("opening the AF_XDP socket of queue {q}"))?;
        xdp.set_socket(q, s.fd())
            .context("registering the socket with the XDP program")?;
        sockets.push(s);
    }
    let mode = xdp
        .attach(&args.iface, request(args.mode))
        .context("attaching the XDP program (try --mode generic)")?;
    let zero_copy = sockets.iter().all(XskQueue::zero_copy);
    let xdp: SharedXdp = Arc::new(std::sync::Mutex::new(Some(xdp)));
    let mut control = ControlPlane::start(
        &args.control,
        Some(std::path::Path::new(DEFAULT_SOCKET)),
        &loaded,
        args.config.as_deref(),
        Plane {
            tables: Arc::clone(&tables),
            installer: Some(Box::new(XdpInstaller {
                xdp: Arc::clone(&xdp),
                routes: Arc::clone(&routes),
                settings: Arc::clone(&settings),
                fd_cap,
            })),
            seed,
            clock: None,
            shared,
        },
    )?;
    // The SYN-cookie gate in the kernel follows the secrets every queue follows.
    let refused = with_xdp(&xdp, |x| x.gate_refused().map(str::to_string)).flatten();
    if let (CookiesArg::Xdp, Some(why)) = (args.cookies, &refused) {
        writeln!(
            log,
            "fastpath: the kernel refused the XDP program's SYN-cookie gate, so SYNs are answered in userspace (as with --cookies userspace): {why}"
        )?;
    }
    let gate = (args.cookies == CookiesArg::Xdp && refused.is_none())
        .then(|| {
            GateKeeper::start(
                Arc::clone(&xdp),
                Arc::clone(&control.secrets),
                c.cookies.syn_ack(mtu),
            )
        })
        .transpose()
        .context("writing the SYN-cookie gate's secrets into the XDP program")?;
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let pin: Vec<Option<core_affinity::CoreId>> = (0..nq)
        .map(|q| {
            if !args.cores.is_empty() {
                args.cores
                    .get(q)
                    .and_then(|id| cores.iter().copied().find(|c| c.id == *id))
            } else if nq <= cores.len() {
                Some(cores[q])
            } else {
                None
            }
        })
        .collect();
    writeln!(
        log,
        "fastpath: serving {} ({} RX queue(s) of {available}): {} XDP, SYN cookies in {}, AF_XDP {} mode, {}, cores {:?}, MTU {mtu}, config {} version {}, {}",
        args.iface,
        nq,
        mode.as_str(),
        if gate.is_some() { "XDP" } else { "userspace" },
        if zero_copy { "zero-copy" } else { "copy" },
        if args.busy_poll {
            "busy polling"
        } else {
            "sleeping in poll(2) when idle"
        },
        pin.iter().map(|c| c.map(|c| c.id)).collect::<Vec<_>>(),
        loaded.name,
        loaded.version,
        control.describe()
    )?;

    // The proxy workers, then the queue threads. Every forwarded packet is copied into a
    // buffer of one pool that covers all worker queues.
    let w = &c.workers;
    let pool = PacketPool::new(
        (w.cdn + w.spectrum) * w.queue_depth + 1024,
        usize::from(mtu).next_power_of_two().clamp(2048, 65_536),
    );
    let (pools, queues) = WorkerPools::channels(&c.workers, Some(Arc::clone(&pool)))
        .context("making the worker queues")?;
    let worker_counters: Vec<Arc<WorkerCounters>> = queues.iter().map(|q| q.counters()).collect();
    let worker_handles: Vec<WorkerHandle> = queues
        .iter()
        .map(|q| WorkerHandle {
            service: q.service(),
            index: q.index(),
            counters: q.counters(),
        })
        .collect();
    let mut pipeline_cfg = c.pipeline.clone();
    pipeline_cfg.handoff = true;
    let hasher = Pipeline::new(0, &pipeline_cfg, &c.cookies, seed, mtu, pools.clone())
        .hasher()
        .clone();
    let (proxy, event_rings) =
        Proxy::start(queues, Arc::clone(&tables), Arc::clone(&settings), hasher)
            .context("starting the proxy workers (they need CAP_NET_ADMIN and CAP_NET_RAW)")?;
    let mut live = Live {
        queues: Vec::new(),
        workers: worker_counters,
    };
    let mut threads = Vec::new();
    let queue_stop = Arc::new(AtomicBool::new(false));
    for (i, s) in sockets.into_iter().enumerate() {
        let q = s.queue();
        let mut p = Pipeline::new(
            q as u16,
            &pipeline_cfg,
            &c.cookies,
            seed,
            mtu,
            pools.clone(),
        );
        p.follow_secrets(Arc::clone(&control.secrets));
        live.queues
            .push((q, pin[i].map(|c| c.id), p.stats(), s.stats()));
        let (t, st, core) = (Arc::clone(&tables), Arc::clone(&queue_stop), pin[i]);
        threads.push(
            std::thread::Builder::new()
                .name(format!("fp-queue-{q}"))
                .spawn(move || {
                    if let Some(c) = core {
                        core_affinity::set_for_current(c);
                    }
                    s.run(p, t, st, now_ns)
                })?,
        );
    }

    control.set_data_plane(DataPlane {
        kind: "xdp",
        iface: Some(args.iface.clone()),
        queues: live
            .queues
            .iter()
            .map(|(q, core, s, x)| QueueHandle {
                queue: *q,
                core: *core,
                stats: Arc::clone(s),
                socket: Some(Arc::clone(x)),
            })
            .collect(),
        workers: worker_handles,
        pools: Some(pools.clone()),
        xdp: Some(Box::new({
            let xdp = Arc::clone(&xdp);
            move || {
                let c = with_xdp(&xdp, |x| x.counters().ok()).flatten()?;
                Some(XdpCounts {
                    reasons: c.iter().take(Reason::COUNT).map(|x| x.packets).collect(),
                    redirected: c.get(abi::CTR_REDIRECTED as usize).map_or(0, |x| x.packets),
                    no_socket: c.get(abi::CTR_NO_SOCKET as usize).map_or(0, |x| x.packets),
                })
            }
        })),
        events: event_rings,
        traffic: Some(Box::new({
            let stats = proxy.stats();
            move || {
                stats
                    .apps()
                    .into_iter()
                    .map(|a| AppTraffic {
                        service: Some(a.service),
                        app_slot: (a.app_slot != fastpath::worker::NO_APP).then_some(a.app_slot),
                        open: a.open,
                        connects: a.connects,
                        bytes_ingress: a.bytes_ingress,
                        bytes_egress: a.bytes_egress,
                        statuses: a.statuses,
                    })
                    .collect()
            }
        })),
        analytics: Some(Box::new({
            let stats = proxy.stats();
            move || stats.analytics()
        })),
    })?;

    // Counters until told to stop.
    let started = Instant::now();
    let mut last = vec![0u64; live.queues.len()];
    let mut last_xdp = 0u64;
    let mut last_print = Instant::now();
    let deadline = args.duration.map(Duration::from_secs_f64);
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| started.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(50));
        if args.stats_every > 0.0 && last_print.elapsed().as_secs_f64() >= args.stats_every {
            let dt = last_print.elapsed().as_secs_f64();
            print_line(log, &live, &xdp, &mut last, &mut last_xdp, dt)?;
            last_print = Instant::now();
        }
    }
    // No more changes: the socket goes first, then the queues, then the program.
    drop(control);
    queue_stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    proxy.stop();
    drop(gate);
    let counters = with_xdp(&xdp, |x| x.counters().unwrap_or_default()).unwrap_or_default();
    // Detach: dropping the program closes its link. Then the local routes go.
    drop(xdp.lock().unwrap_or_else(|e| e.into_inner()).take());
    routes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove_all();
    let report = RunReport {
        iface: args.iface.clone(),
        xdp_mode: mode.as_str().to_string(),
        zero_copy,
        seconds: started.elapsed().as_secs_f64(),
        xdp: xdp_mix(&counters),
        xdp_redirected: counters
            .get(abi::CTR_REDIRECTED as usize)
            .map_or(0, |c| c.packets),
        xdp_no_socket: counters
            .get(abi::CTR_NO_SOCKET as usize)
            .map_or(0, |c| c.packets),
        xdp_drop_all: 0,
        queues: live
            .queues
            .iter()
            .map(|(q, core, s, x)| QueueReport {
                queue: *q,
                core: *core,
                rx: x.rx.get(),
                tx: x.tx.get(),
                tx_ring_full: x.tx_ring_full.get(),
                socket_dropped: x.kernel_dropped(),
                rx_ring_full: x.kernel_rx_ring_full.get(),
                fill_ring_empty: x.kernel_fill_ring_empty.get(),
                mix: Mix::from_stats(&s.reasons),
            })
            .collect(),
        pipeline: live.pipeline_mix(),
        connects: live.workers.iter().map(|w| w.connects.get()).sum(),
        disconnects: live.workers.iter().map(|w| w.disconnects.get()).sum(),
        worker_items: live.workers.iter().map(|w| w.items.get()).sum(),
    };
    let _ = Verdict::Tx;
    Ok(report)
}

fn request(mode: Mode) -> ModeRequest {
    match mode {
        Mode::Native => ModeRequest::Native,
        Mode::Generic => ModeRequest::Generic,
        Mode::Auto => ModeRequest::Auto,
    }
}

/// Raises the soft limit of open files to the hard one: every carried TCP connection holds
/// two sockets and, with `proxy.splice`, two pipes (six descriptors). Returns the limit now and
/// the descriptors the configured connections may need.
fn raise_fd_limit(c: &Compiled) -> (u64, u64) {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `l` is a valid rlimit for the kernel to fill, then read.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut l) == 0 && l.rlim_cur < l.rlim_max {
            let want = libc::rlimit {
                rlim_cur: l.rlim_max,
                rlim_max: l.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const want) == 0 {
                l = want;
            }
        }
    }
    let per = if c.proxy.splice { 6 } else { 2 };
    let workers = (c.workers.cdn + c.workers.spectrum) as u64;
    (l.rlim_cur, workers * c.proxy.max_connections as u64 * per)
}

/// `--kernel-listener`: the proxy workers fed by a plain kernel listener until told to stop.
#[allow(clippy::too_many_arguments)]
fn serve_kernel_listener(
    args: &RunArgs,
    loaded: &common::Loaded,
    seed: [u8; 32],
    mtu: u16,
    addr: std::net::SocketAddr,
    stop: &Arc<AtomicBool>,
    log: &mut dyn Write,
) -> Result<RunReport> {
    let c = &loaded.compiled;
    let app = c
        .spec
        .apps
        .iter()
        .find(|a| {
            a.proto == fastpath::tables::L4Proto::Tcp
                && a.edge_ips.contains(&addr.ip())
                && a.ports.contains(addr.port())
        })
        .with_context(|| format!("--kernel-listener {addr}: no TCP Spectrum app serves it"))?;
    let (mut routes, _) = LocalRoutes::install(&args.iface, &prefixes(c))
        .context("making the edge prefixes local routes (ip route add local PREFIX dev lo)")?;
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("--kernel-listener {addr}: cannot listen"))?;
    let tables = SharedTables::new(Tables::build(&c.spec).context("compiling the tables")?);
    let (pools, queues) =
        WorkerPools::channels(&c.workers, None).context("making the worker queues")?;
    let counters: Vec<Arc<WorkerCounters>> = queues.iter().map(|q| q.counters()).collect();
    let hasher = Pipeline::new(0, &c.pipeline, &c.cookies, seed, mtu, pools)
        .hasher()
        .clone();
    let settings = Arc::new(arc_swap::ArcSwap::from_pointee(proxy_settings(c)));
    let (proxy, _events) = Proxy::start_with_listener(
        queues,
        tables,
        settings,
        hasher,
        Some(fastpath_proxy::Feed {
            listener,
            service: fastpath::Service::Spectrum,
            app_slot: app.slot,
        }),
    )
    .context("starting the proxy workers")?;
    writeln!(
        log,
        "fastpath: serving {addr} with a plain kernel listener (no XDP, no AF_XDP): the proxy workers carry its connections as app {}",
        app.id
    )?;
    let started = Instant::now();
    let deadline = args.duration.map(Duration::from_secs_f64);
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| started.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(50));
    }
    proxy.stop();
    routes.remove_all();
    let empty = Mix::from_counts(&[0; Reason::COUNT]);
    Ok(RunReport {
        iface: args.iface.clone(),
        xdp_mode: "none".into(),
        zero_copy: false,
        seconds: started.elapsed().as_secs_f64(),
        xdp: empty.clone(),
        xdp_redirected: 0,
        xdp_no_socket: 0,
        xdp_drop_all: 0,
        queues: Vec::new(),
        pipeline: empty,
        connects: counters.iter().map(|w| w.connects.get()).sum(),
        disconnects: counters.iter().map(|w| w.disconnects.get()).sum(),
        worker_items: 0,
    })
}

/// `--drop-all`: the plain XDP_DROP program until told to stop.
fn serve_drop_all(
    args: &RunArgs,
    mut xdp: XdpProgram,
    stop: &Arc<AtomicBool>,
    log: &mut dyn Write,
) -> Result<RunReport> {
    let mode = xdp
        .attach_drop_all(&args.iface, request(args.mode))
        .context("attaching the drop-everything program (try --mode generic)")?;
    writeln!(
        log,
        "fastpath: serving {} with a plain XDP_DROP program ({} XDP): every frame is dropped",
        args.iface,
        mode.as_str()
    )?;
    let started = Instant::now();
    let deadline = args.duration.map(Duration::from_secs_f64);
    let drops = |x: &XdpProgram| {
        x.counters()
            .ok()
            .and_then(|c| c.get(abi::CTR_DROP_ALL as usize).map(|c| c.packets))
            .unwrap_or(0)
    };
    let (mut last, mut last_print) = (0u64, Instant::now());
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| started.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(50));
        if args.stats_every > 0.0 && last_print.elapsed().as_secs_f64() >= args.stats_every {
            let n = drops(&xdp);
            let dt = last_print.elapsed().as_secs_f64();
            writeln!(
                log,
                "fastpath: xdp_drop_all {n} ({:.3} Mpps)",
                (n - last) as f64 / dt / 1e6
            )?;
            (last, last_print) = (n, Instant::now());
        }
    }
    let dropped = drops(&xdp);
    drop(xdp);
    Ok(RunReport {
        iface: args.iface.clone(),
        xdp_mode: mode.as_str().to_string(),
        zero_copy: false,
        seconds: started.elapsed().as_secs_f64(),
        xdp: Mix::from_counts(&[0; Reason::COUNT]),
        xdp_redirected: 0,
        xdp_no_socket: 0,
        xdp_drop_all: dropped,
        queues: Vec::new(),
        pipeline: Mix::from_counts(&[0; Reason::COUNT]),
        connects: 0,
        disconnects: 0,
        worker_items: 0,
    })
}
