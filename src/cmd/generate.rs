//! `fastpath gen`: a traffic generator, with two engines.
//!
//! - `kernel` (the default for floods): the flood's template frame runs through a small XDP
//!   program (`xdp-prog/bpf/gen.bpf.c`) with `BPF_PROG_RUN` in live-frames mode, as the
//!   kernel's xdp-trafficgen does; the program gives each packet a random source in `--src`, a
//!   random source port and destination port in `--dport`, a random ISN (SYN) or sequence and
//!   acknowledgement numbers (ACK), fixes the checksums, and sends it with `XDP_TX` out of
//!   `--iface`. One thread per CPU (`--threads`), no copy to userspace and back: several Mpps.
//!   Needs root and Linux 5.18 or later; on a veth the peer needs an XDP program or GRO on.
//! - `xsk` (the default for `--pcap`): the frames are built once (a capture's, or `--frames`
//!   distinct ones of a flood), copied into a transmit-only AF_XDP socket's UMEM and sent in
//!   turn, over and over, as fast as the link takes or at a given rate.
//!
//! The destination MAC of a synthetic flood is the next hop's, asked of the kernel over
//! netlink ([`crate::nexthop`]), so the receiving kernel takes the frames as its own.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{ArgGroup, Args, ValueEnum};
use etherparse::PacketBuilder;
use fastpath::replay::CaptureReader;
use fastpath::xsk::{MAX_FRAMES, Rate, XskSender, ZeroCopy};
use fastpath_xdp::{Flood, GenConfig, Generator};
use ipnet::IpNet;
use serde::Serialize;

use crate::cmd::run::ZeroCopyArg;

/// How `fastpath gen` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// In the kernel: an XDP program run with `BPF_PROG_RUN` in live-frames mode, each packet
    /// made distinct in place (floods only; root, Linux 5.18+).
    Kernel,
    /// AF_XDP TX: `--frames` prebuilt frames (or a capture's) sent in turn.
    Xsk,
}

/// Arguments of `fastpath gen`.
#[derive(Debug, Args, Clone)]
#[command(group(ArgGroup::new("traffic").required(true).args(["pcap", "syn_flood", "udp_flood", "ack_flood"])))]
pub struct GenArgs {
    /// The interface to send on.
    #[arg(long)]
    pub iface: String,
    /// How to send: `kernel` (XDP live frames, several Mpps; floods only) or `xsk` (AF_XDP
    /// TX). Default: `kernel` for a flood (falling back to `xsk`, with a warning, on a kernel
    /// that is too old or refuses live frames), `xsk` for `--pcap`.
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// With `--engine kernel`: sending threads, one pinned per CPU from `--core` on (default:
    /// one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
    /// With `--engine kernel`: frames per live-frames batch (1 to 256).
    #[arg(long, default_value_t = 64)]
    pub batch: u32,
    /// The queue: AF_XDP TX queue (`xsk`), or the RX queue the frames come from (`kernel`).
    #[arg(long, default_value_t = 0)]
    pub queue: u32,
    /// Send the Ethernet frames of this capture (pcap or pcapng), in order, over and over.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// A flood of TCP SYNs (with MSS, SACK-permitted, timestamps and window scale, as Linux
    /// sends them) from random sources in `--src` to `--dst`:`--dport`.
    #[arg(long)]
    pub syn_flood: bool,
    /// A flood of UDP datagrams (18 bytes of payload) from random sources to `--dst`:`--dport`.
    #[arg(long)]
    pub udp_flood: bool,
    /// A flood of TCP ACKs with random sequence and acknowledgement numbers.
    #[arg(long)]
    pub ack_flood: bool,
    /// Destination of a flood.
    #[arg(long, default_value = "203.0.113.10")]
    pub dst: IpAddr,
    /// Destination port of a flood: one port or an inclusive range `LO-HI` (drawn at random).
    #[arg(long, default_value = "22")]
    pub dport: String,
    /// Sources of a flood are drawn from this prefix (addresses and ports at random). Default:
    /// 192.0.2.192/26, or 2001:db8:f::/64 for an IPv6 destination.
    #[arg(long)]
    pub src: Option<IpNet>,
    /// With `--engine xsk`: distinct frames of a flood (each its own source address and port),
    /// sent in turn. (The kernel engine draws every packet's source anew.)
    #[arg(long, default_value_t = 4096)]
    pub frames: usize,
    /// Destination MAC (default: the next hop's towards `--dst`, asked of the kernel over
    /// netlink; resolved with ARP/ND when the neighbour table has no entry yet).
    #[arg(long)]
    pub dst_mac: Option<String>,
    /// With `--engine xsk`: seed of the random sources (the same seed gives the same frames).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Packets per second (all threads together), or `max` (as fast as the link takes).
    #[arg(long, default_value = "max")]
    pub rate: String,
    /// How long to send.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Stop after this many frames.
    #[arg(long)]
    pub count: Option<u64>,
    /// With `--engine xsk`: AF_XDP zero-copy.
    #[arg(long, value_enum, default_value_t = ZeroCopyArg::Auto)]
    pub zero_copy: ZeroCopyArg,
    /// Pin the sending thread to this core (`kernel`: the first thread; the others follow on
    /// the next cores).
    #[arg(long)]
    pub core: Option<usize>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What `fastpath gen` sent.
#[derive(Debug, Clone, Serialize)]
pub struct GenReport {
    /// Interface.
    pub iface: String,
    /// The engine that sent.
    pub engine: Engine,
    /// Sending threads.
    pub threads: usize,
    /// Distinct frames sent in turn (`xsk`), or 0: every packet drawn anew (`kernel`).
    pub frames: usize,
    /// Whether the socket was zero-copy.
    pub zero_copy: bool,
    /// Frames put on the TX ring (`xsk`), or handed to the program (`kernel`).
    pub queued: u64,
    /// Frames the kernel reported sent (`xsk`), or the program sent with `XDP_TX` (`kernel`:
    /// the kernel does not report frames the device then refused, e.g. a veth whose peer has
    /// no NAPI; the receiver's counter is the check).
    pub sent: u64,
    /// Seconds.
    pub seconds: f64,
    /// Frames sent per second.
    pub pps: f64,
    /// Bits per second of the frames (without preamble and gap).
    pub bps: f64,
}

/// A small deterministic generator (SplitMix64) for flood sources.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn parse_rate(s: &str) -> Result<Rate> {
    if s == "max" {
        return Ok(Rate::Max);
    }
    let pps: f64 = s
        .parse()
        .ok()
        .filter(|p: &f64| p.is_finite() && *p > 0.0)
        .with_context(|| format!("--rate {s}: give `max` or packets per second (> 0)"))?;
    Ok(Rate::Pps(pps))
}

fn parse_ports(s: &str) -> Result<(u16, u16)> {
    let bad = || format!("--dport {s}: give a port or an inclusive range LO-HI");
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (
            a.trim().parse::<u16>().with_context(bad)?,
            b.trim().parse::<u16>().with_context(bad)?,
        ),
        None => {
            let p = s.trim().parse::<u16>().with_context(bad)?;
            (p, p)
        }
    };
    if lo > hi {
        bail!("{}", bad());
    }
    Ok((lo, hi))
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        bail!("{s}: a MAC address is six hex bytes separated by colons");
    }
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16)
            .with_context(|| format!("{s}: a MAC address is six hex bytes"))?;
    }
    Ok(mac)
}

fn iface_mac(iface: &str) -> Result<[u8; 6]> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
        .with_context(|| format!("no interface {iface}"))?;
    parse_mac(s.trim())
}

/// The prefix the sources of a flood come from.
fn sources(args: &GenArgs) -> Result<IpNet> {
    let src = args.src.unwrap_or_else(|| match args.dst {
        IpAddr::V4(_) => "192.0.2.192/26".parse().expect("valid"),
        IpAddr::V6(_) => "2001:db8:f::/64".parse().expect("valid"),
    });
    if src.addr().is_ipv4() != args.dst.is_ipv4() {
        bail!(
            "--src {src} and --dst {} are of different IP versions",
            args.dst
        );
    }
    Ok(src)
}

/// Builds the frames of a synthetic flood from `src_mac` to `dst_mac`.
///
/// # Errors
/// Bad ports, counts or prefixes.
pub fn flood_frames(args: &GenArgs, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Result<Vec<Vec<u8>>> {
    if args.frames == 0 || args.frames > MAX_FRAMES {
        bail!("--frames {}: give 1 to {MAX_FRAMES}", args.frames);
    }
    let (lo, hi) = parse_ports(&args.dport)?;
    let src = sources(args)?;
    let mut rng = SplitMix(args.seed);
    let mut frames = Vec::with_capacity(args.frames);
    for _ in 0..args.frames {
        let r = rng.next();
        let host = u128::from(r) | (u128::from(rng.next()) << 64);
        let sport = 1024 + (r % (65536 - 1024)) as u16;
        let dport = lo + (rng.next() % (u64::from(hi - lo) + 1)) as u16;
        let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
        let ip = match (src, args.dst) {
            (IpNet::V4(n), IpAddr::V4(d)) => {
                let hostmask = !u32::from(n.netmask());
                let a = u32::from(n.network()) | (host as u32 & hostmask);
                eth.ipv4(a.to_be_bytes(), d.octets(), 64)
            }
            (IpNet::V6(n), IpAddr::V6(d)) => {
                let hostmask = !u128::from(n.netmask());
                let a = u128::from(n.network()) | (host & hostmask);
                eth.ipv6(a.to_be_bytes(), d.octets(), 64)
            }
            _ => unreachable!("versions checked above"),
        };
        let seq = rng.next() as u32;
        let mut buf = Vec::new();
        if args.udp_flood {
            ip.udp(sport, dport)
                .write(&mut buf, b"fastpath-gen flood")
                .context("building a UDP frame")?;
        } else if args.syn_flood {
            use etherparse::TcpOptionElement as O;
            ip.tcp(sport, dport, seq, 64240)
                .syn()
                .options(&[
                    O::MaximumSegmentSize(1460),
                    O::SelectiveAcknowledgementPermitted,
                    O::Timestamp(rng.next() as u32, 0),
                    O::Noop,
                    O::WindowScale(7),
                ])
                .map_err(|e| anyhow::anyhow!("TCP options: {e:?}"))?
                .write(&mut buf, &[])
                .context("building a SYN")?;
        } else {
            ip.tcp(sport, dport, seq, 502)
                .ack(rng.next() as u32)
                .write(&mut buf, &[])
                .context("building an ACK")?;
        }
        frames.push(buf);
    }
    Ok(frames)
}

fn capture_frames(path: &std::path::Path) -> Result<Vec<Vec<u8>>> {
    let f = std::fs::File::open(path)
        .with_context(|| format!("cannot open capture {}", path.display()))?;
    let mut r = CaptureReader::new(std::io::BufReader::new(f) as std::io::BufReader<_>)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    let mut skipped = 0u64;
    while let Some(meta) = r
        .next_into(&mut buf)
        .map_err(|e| anyhow::anyhow!("{}: frame {}: {e}", path.display(), frames.len() + 1))?
    {
        if meta.linktype != 1 {
            bail!(
                "{}: frame {} has link type {}: only Ethernet frames can be sent",
                path.display(),
                meta.index + 1,
                meta.linktype
            );
        }
        if buf.len() < 14 || buf.len() > 2048 {
            skipped += 1;
            continue;
        }
        if frames.len() == MAX_FRAMES {
            bail!(
                "{}: more than {MAX_FRAMES} frames; cut the capture (e.g. editcap -r)",
                path.display()
            );
        }
        frames.push(buf.clone());
    }
    if skipped > 0 {
        tracing::warn!("{skipped} frames shorter than 14 or longer than 2048 bytes left out");
    }
    if frames.is_empty() {
        bail!("{} has no frames to send", path.display());
    }
    Ok(frames)
}

/// Builds the frames `args` ask for.
///
/// # Errors
/// A capture that cannot be read, bad flood arguments, a next hop whose MAC is unknown.
pub fn frames(args: &GenArgs) -> Result<Vec<Vec<u8>>> {
    if let Some(p) = &args.pcap {
        return capture_frames(p);
    }
    let src_mac = iface_mac(&args.iface)?;
    let dst_mac = match &args.dst_mac {
        Some(m) => parse_mac(m)?,
        None => crate::nexthop::next_hop_mac(&args.iface, args.dst)?,
    };
    flood_frames(args, src_mac, dst_mac)
}

/// Sends until the time, the count or `stop` runs out.
///
/// # Errors
/// As [`frames`]; AF_XDP failures (root needed).
pub fn generate(args: &GenArgs, stop: &Arc<AtomicBool>) -> Result<GenReport> {
    let rate = parse_rate(&args.rate)?;
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        bail!("--seconds {}: give a positive number", args.seconds);
    }
    match engine(args)? {
        Engine::Kernel if args.engine.is_none() => match generate_kernel(args, rate, stop) {
            // The default engine gives way where this kernel cannot run it; asked for by
            // name, it does not.
            Err(e) if cannot_run_kernel_engine(&e) => {
                tracing::warn!(
                    "the in-kernel engine cannot run here ({e:#}); sending with AF_XDP TX instead (--engine xsk)"
                );
                generate_xsk(args, rate, stop)
            }
            r => r,
        },
        Engine::Kernel => generate_kernel(args, rate, stop),
        Engine::Xsk => generate_xsk(args, rate, stop),
    }
}

/// Whether `e` says this kernel cannot run live frames at all (too old, or refused by its
/// policy), as opposed to a mistake the user can fix.
fn cannot_run_kernel_engine(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<fastpath_xdp::GenError>(),
            Some(fastpath_xdp::GenError::Refused | fastpath_xdp::GenError::KernelTooOld(_))
        )
    })
}

/// The engine `args` ask for (explicitly or by default).
fn engine(args: &GenArgs) -> Result<Engine> {
    match (args.engine, &args.pcap) {
        (Some(Engine::Kernel), Some(_)) => {
            bail!("--engine kernel sends floods only: give --engine xsk to send a capture")
        }
        (Some(e), _) => Ok(e),
        (None, Some(_)) => Ok(Engine::Xsk),
        (None, None) => Ok(Engine::Kernel),
    }
}

/// The cores the kernel engine's threads run on: `threads` of them from `first` on, wrapping.
fn thread_cores(first: Option<usize>, threads: usize, cores: &[usize]) -> Result<Vec<usize>> {
    if cores.is_empty() {
        bail!("no cores to run on");
    }
    let start = match first {
        Some(c) => cores
            .iter()
            .position(|x| *x == c)
            .with_context(|| format!("--core {c}: no such core to pin to"))?,
        None => 0,
    };
    Ok((0..threads)
        .map(|i| cores[(start + i) % cores.len()])
        .collect())
}

/// How many frames thread `i` of `n` sends of `count`.
fn share(count: u64, i: usize, n: usize) -> u64 {
    let (n, i) = (n as u64, i as u64);
    count / n + u64::from(i < count % n)
}

/// Frames per `BPF_PROG_RUN` call at full speed: short enough to stop within a few ms.
const KERNEL_CHUNK: u64 = 1 << 15;

/// What a kernel-engine thread does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Send this many frames in one call.
    Send(u64),
    /// Ahead of the rate: wait a little.
    Wait,
    /// The thread's share of `--count` is sent.
    Done,
}

/// The next step of a thread that has sent `done` frames of its `budget` (its share of
/// `--count`) at `pps` (its share of `--rate`), `elapsed` into the run.
fn step(budget: Option<u64>, done: u64, pps: Option<f64>, elapsed: Duration) -> Step {
    let left = budget.map_or(u64::MAX, |b| b.saturating_sub(done));
    if left == 0 {
        return Step::Done;
    }
    let mut chunk = left.min(KERNEL_CHUNK);
    if let Some(pps) = pps {
        let due = (pps * elapsed.as_secs_f64()) as u64 + 1;
        if due <= done {
            return Step::Wait;
        }
        chunk = chunk.min(due - done);
    }
    Step::Send(chunk)
}

/// The kernel engine (see the module docs).
fn generate_kernel(args: &GenArgs, rate: Rate, stop: &Arc<AtomicBool>) -> Result<GenReport> {
    let flood = if args.syn_flood {
        Flood::Syn
    } else if args.ack_flood {
        Flood::Ack
    } else {
        Flood::Udp
    };
    if !(1..=fastpath_xdp::r#gen::MAX_BATCH).contains(&args.batch) {
        bail!(
            "--batch {}: give 1 to {}",
            args.batch,
            fastpath_xdp::r#gen::MAX_BATCH
        );
    }
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let threads = args.threads.unwrap_or(cores.len().max(1));
    if threads == 0 {
        bail!("--threads 0: give at least one");
    }
    let pin = thread_cores(args.core, threads, &cores)?;
    // One template; the program varies it per packet.
    let template = {
        let one = GenArgs {
            frames: 1,
            ..args.clone()
        };
        frames(&one)?.remove(0)
    };
    let ifindex = crate::nexthop::ifindex(&args.iface)?;
    let (lo, hi) = parse_ports(&args.dport)?;
    let mut g = Generator::load().context("loading the in-kernel generator")?;
    g.configure(&GenConfig::new(
        flood,
        sources(args)?,
        (1024, 65535),
        (lo, hi),
    ))?;
    let (sent0, _) = g.counters()?;
    let per_thread_pps = match rate {
        Rate::Max => None,
        Rate::Pps(p) => Some(p / threads as f64),
    };
    let deadline = Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let results: Vec<Result<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = pin
            .iter()
            .enumerate()
            .map(|(i, core)| {
                let (g, template, core) = (&g, &template, *core);
                let budget = args.count.map(|c| share(c, i, threads));
                s.spawn(move || -> Result<u64> {
                    let _ = core_affinity::set_for_current(core_affinity::CoreId { id: core });
                    let mut done = 0u64;
                    loop {
                        let elapsed = started.elapsed();
                        if elapsed >= deadline || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let chunk = match step(budget, done, per_thread_pps, elapsed) {
                            Step::Send(n) => n,
                            Step::Wait => {
                                std::thread::sleep(Duration::from_micros(200));
                                continue;
                            }
                            Step::Done => break,
                        };
                        match g.run_live(template, ifindex, args.queue, chunk as u32, args.batch) {
                            Ok(()) => done += chunk,
                            // A signal (SIGINT, SIGTERM) cuts a run short: stop.
                            Err(fastpath_xdp::GenError::Interrupted) => break,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Ok(done)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a sending thread panicked")))
            })
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut queued = 0;
    for r in results {
        queued += r?;
    }
    let (sent1, _) = g.counters()?;
    let sent = sent1 - sent0;
    let pps = sent as f64 / seconds.max(1e-9);
    Ok(GenReport {
        iface: args.iface.clone(),
        engine: Engine::Kernel,
        threads,
        frames: 0,
        zero_copy: false,
        queued,
        sent,
        seconds,
        pps,
        bps: pps * template.len() as f64 * 8.0,
    })
}

/// The AF_XDP engine.
fn generate_xsk(args: &GenArgs, rate: Rate, stop: &Arc<AtomicBool>) -> Result<GenReport> {
    let frames = frames(args)?;
    if let Some(c) = args.core {
        let ok = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .find(|id| id.id == c)
            .is_some_and(core_affinity::set_for_current);
        if !ok {
            bail!("--core {c}: no such core to pin to");
        }
    }
    let zc = match args.zero_copy {
        ZeroCopyArg::Auto => ZeroCopy::Auto,
        ZeroCopyArg::On => ZeroCopy::On,
        ZeroCopyArg::Off => ZeroCopy::Off,
    };
    let mut sender = XskSender::open(&args.iface, args.queue, zc, &frames)
        .context("opening the AF_XDP socket (needs root)")?;
    let mean_len = frames.iter().map(Vec::len).sum::<usize>() as f64 / frames.len() as f64;
    let r = sender.send(
        rate,
        args.count,
        Some(Duration::from_secs_f64(args.seconds)),
        &|| stop.load(Ordering::Relaxed),
    );
    let pps = r.completed as f64 / r.seconds.max(1e-9);
    Ok(GenReport {
        iface: args.iface.clone(),
        engine: Engine::Xsk,
        threads: 1,
        frames: frames.len(),
        zero_copy: sender.zero_copy(),
        queued: r.queued,
        sent: r.completed,
        seconds: r.seconds,
        pps,
        bps: pps * mean_len * 8.0,
    })
}

/// Runs `fastpath gen`.
///
/// # Errors
/// As [`generate`].
pub fn run(args: &GenArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handlers")?;
    }
    let r = generate(args, &stop)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &r)?;
        writeln!(out)?;
    } else {
        let how = match r.engine {
            Engine::Kernel => format!(
                "every one distinct; in-kernel engine, {} thread{}",
                r.threads,
                if r.threads == 1 { "" } else { "s" }
            ),
            Engine::Xsk => format!(
                "{} distinct; AF_XDP {} mode",
                r.frames,
                if r.zero_copy { "zero-copy" } else { "copy" }
            ),
        };
        writeln!(
            out,
            "sent {} frames on {} in {:.2} s: {:.3} Mpps, {:.2} Gbit/s ({how})",
            r.sent,
            r.iface,
            r.seconds,
            r.pps / 1e6,
            r.bps / 1e9,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> GenArgs {
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            g: GenArgs,
        }
        let mut v = vec!["gen", "--iface", "lo"];
        v.extend_from_slice(extra);
        <P as clap::Parser>::try_parse_from(v).unwrap().g
    }

    #[test]
    fn syn_flood_frames_are_distinct_syns_the_pipeline_answers() {
        let a = args(&["--syn-flood", "--frames", "64"]);
        let f = flood_frames(&a, [2; 6], [4; 6]).unwrap();
        assert_eq!(f.len(), 64);
        let distinct: std::collections::HashSet<&Vec<u8>> = f.iter().collect();
        assert_eq!(distinct.len(), 64);
        for fr in &f {
            let p = etherparse::SlicedPacket::from_ethernet(fr).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
                panic!("IPv4")
            };
            assert!(
                "192.0.2.192/26"
                    .parse::<IpNet>()
                    .unwrap()
                    .contains(&IpAddr::V4(ip.header().source_addr()))
            );
            let Some(etherparse::TransportSlice::Tcp(t)) = p.transport else {
                panic!("TCP")
            };
            assert!(t.syn() && !t.ack());
            assert_eq!(t.destination_port(), 22);
        }
        // Same seed, same frames.
        assert_eq!(f, flood_frames(&a, [2; 6], [4; 6]).unwrap());
    }

    #[test]
    fn udp_flood_ports_stay_in_the_range_and_ipv6_works() {
        let a = args(&[
            "--udp-flood",
            "--dst",
            "2001:db8:100:1::10",
            "--dport",
            "1000-1003",
            "--frames",
            "200",
        ]);
        let f = flood_frames(&a, [2; 6], [4; 6]).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for fr in &f {
            let p = etherparse::SlicedPacket::from_ethernet(fr).unwrap();
            let Some(etherparse::TransportSlice::Udp(u)) = p.transport else {
                panic!("UDP")
            };
            seen.insert(u.destination_port());
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            vec![1000, 1001, 1002, 1003]
        );
    }

    #[test]
    fn the_engine_is_kernel_for_floods_and_xsk_for_captures() {
        assert_eq!(engine(&args(&["--syn-flood"])).unwrap(), Engine::Kernel);
        assert_eq!(
            engine(&args(&["--syn-flood", "--engine", "xsk"])).unwrap(),
            Engine::Xsk
        );
        assert_eq!(engine(&args(&["--pcap", "x.pcap"])).unwrap(), Engine::Xsk);
        let e = engine(&args(&["--pcap", "x.pcap", "--engine", "kernel"])).unwrap_err();
        assert!(e.to_string().contains("--engine xsk"), "{e}");
    }

    #[test]
    fn only_a_kernel_that_cannot_run_live_frames_makes_the_default_give_way() {
        use fastpath_xdp::GenError;
        let refused = anyhow::Error::from(GenError::Refused).context("loading");
        assert!(cannot_run_kernel_engine(&refused));
        assert!(cannot_run_kernel_engine(&anyhow::Error::from(
            GenError::KernelTooOld("5.15.0".into())
        )));
        assert!(!cannot_run_kernel_engine(&anyhow::Error::from(
            GenError::Interrupted
        )));
        assert!(!cannot_run_kernel_engine(&anyhow::anyhow!(
            "no interface cl9"
        )));
    }

    #[test]
    fn a_kernel_thread_sends_its_share_at_its_rate_and_then_stops() {
        let ms = Duration::from_millis;
        // Full speed: whole chunks, then the rest of the count, then done (not waiting for
        // the deadline).
        assert_eq!(step(None, 0, None, ms(0)), Step::Send(KERNEL_CHUNK));
        assert_eq!(step(Some(40_000), 32_768, None, ms(5)), Step::Send(7_232));
        assert_eq!(step(Some(40_000), 40_000, None, ms(6)), Step::Done);
        // At 10,000 pps: what is due by now, and a wait when ahead.
        assert_eq!(step(None, 0, Some(10_000.0), ms(0)), Step::Send(1));
        assert_eq!(step(None, 1, Some(10_000.0), ms(0)), Step::Wait);
        assert_eq!(step(None, 1, Some(10_000.0), ms(10)), Step::Send(100));
        // A count reached at a rate is done too, not a wait until the deadline.
        assert_eq!(step(Some(100), 100, Some(10_000.0), ms(10)), Step::Done);
        assert_eq!(step(Some(50), 0, Some(10_000.0), ms(10)), Step::Send(50));
    }

    #[test]
    fn threads_take_cores_in_turn_and_counts_are_shared_out_whole() {
        assert_eq!(thread_cores(None, 2, &[0, 1]).unwrap(), vec![0, 1]);
        assert_eq!(thread_cores(Some(1), 3, &[0, 1]).unwrap(), vec![1, 0, 1]);
        assert!(thread_cores(Some(5), 1, &[0, 1]).is_err());
        let parts: Vec<u64> = (0..3).map(|i| share(10, i, 3)).collect();
        assert_eq!(parts, vec![4, 3, 3]);
        assert_eq!(parts.iter().sum::<u64>(), 10);
        assert_eq!(share(1, 1, 2), 0);
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0").is_err());
        assert_eq!(parse_rate("1000").unwrap(), Rate::Pps(1000.0));
        assert!(parse_ports("2000-1000").is_err());
        assert!(parse_ports("70000").is_err());
        assert!(parse_mac("00:11:22").is_err());
        let a = args(&["--syn-flood", "--src", "2001:db8::/64"]);
        assert!(flood_frames(&a, [0; 6], [0; 6]).is_err());
        let a = args(&["--syn-flood", "--frames", "0"]);
        assert!(flood_frames(&a, [0; 6], [0; 6]).is_err());
    }
}
