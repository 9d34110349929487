//! `fastpath gen`: a traffic generator on AF_XDP TX.
//!
//! It builds its frames once (a capture's Ethernet frames, or a synthetic flood of distinct
//! frames with sources drawn from a prefix), copies them into a transmit-only AF_XDP socket's
//! UMEM and sends them in turn, over and over, as fast as the link takes or at a given rate.
//! The destination MAC of a synthetic flood is the next hop's, resolved through the kernel's
//! neighbour table, so the receiving kernel takes the frames as its own.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{ArgGroup, Args};
use etherparse::PacketBuilder;
use fastpath::replay::CaptureReader;
use fastpath::xsk::{MAX_FRAMES, Rate, XskSender, ZeroCopy};
use ipnet::IpNet;
use serde::Serialize;

use crate::cmd::run::ZeroCopyArg;

/// Arguments of `fastpath gen`.
#[derive(Debug, Args, Clone)]
#[command(group(ArgGroup::new("traffic").required(true).args(["pcap", "syn_flood", "udp_flood", "ack_flood"])))]
pub struct GenArgs {
    /// The interface to send on.
    #[arg(long)]
    pub iface: String,
    /// The TX queue.
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
    /// Distinct frames of a flood (each its own source address and port), sent in turn.
    #[arg(long, default_value_t = 4096)]
    pub frames: usize,
    /// Destination MAC (default: the next hop's towards `--dst`, from the neighbour table).
    #[arg(long)]
    pub dst_mac: Option<String>,
    /// Seed of the random sources (the same seed gives the same frames).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Packets per second, or `max` (as fast as the link takes).
    #[arg(long, default_value = "max")]
    pub rate: String,
    /// How long to send.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Stop after this many frames.
    #[arg(long)]
    pub count: Option<u64>,
    /// AF_XDP zero-copy.
    #[arg(long, value_enum, default_value_t = ZeroCopyArg::Auto)]
    pub zero_copy: ZeroCopyArg,
    /// Pin the sending thread to this core.
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
    /// Distinct frames sent in turn.
    pub frames: usize,
    /// Whether the socket was zero-copy.
    pub zero_copy: bool,
    /// Frames put on the TX ring.
    pub queued: u64,
    /// Frames the kernel reported sent.
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

/// The MAC of the next hop towards `dst` out of `iface`, from the neighbour table (after one
/// ping to make the kernel resolve it when it is not there yet).
fn next_hop_mac(iface: &str, dst: IpAddr) -> Result<[u8; 6]> {
    let fam = if dst.is_ipv4() { "-4" } else { "-6" };
    let route = Command::new("ip")
        .args([fam, "route", "get", &dst.to_string(), "oif", iface])
        .output()
        .context("running `ip route get` (needs iproute2)")?;
    let text = String::from_utf8_lossy(&route.stdout).to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    let hop = words
        .iter()
        .position(|w| *w == "via")
        .and_then(|i| words.get(i + 1))
        .map_or_else(|| dst.to_string(), |s| (*s).to_string());
    let lookup = || -> Option<[u8; 6]> {
        let out = Command::new("ip")
            .args([fam, "neigh", "show", "to", &hop, "dev", iface])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let w: Vec<&str> = text.split_whitespace().collect();
        let i = w.iter().position(|x| *x == "lladdr")?;
        parse_mac(w.get(i + 1)?).ok()
    };
    if let Some(m) = lookup() {
        return Ok(m);
    }
    let _ = Command::new("ping")
        .args(["-c", "1", "-W", "1", "-I", iface, &hop])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    lookup().with_context(|| {
        format!("cannot resolve the MAC of next hop {hop} on {iface}: give --dst-mac")
    })
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
        None => next_hop_mac(&args.iface, args.dst)?,
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
        writeln!(
            out,
            "sent {} frames ({} distinct) on {} in {:.2} s: {:.3} Mpps, {:.2} Gbit/s ({} mode)",
            r.sent,
            r.frames,
            r.iface,
            r.seconds,
            r.pps / 1e6,
            r.bps / 1e9,
            if r.zero_copy { "zero-copy" } else { "copy" }
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
