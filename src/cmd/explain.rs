//! `fastpath explain`: one frame in, its verdict and the table entries that decided it out.
//!
//! The frame goes through the same pipeline code as live traffic, with a tracing sink instead
//! of the no-op one, against a scratch flow table: so an ACK is judged as if no flow existed
//! (pass `--cookie-secret` and `--time` to check a cookie minted by a replay or a live node).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use fastpath::pipeline::{Outcome, Pipeline, PipelineConfig};
use fastpath::tables::Tables;
use fastpath::worker::{WorkerConfig, WorkerPools};
use serde::Serialize;

use crate::common;

/// Arguments of `fastpath explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Configuration file (TOML). Default: the bundled `pcaps/edge-lab.toml`.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The frame in hex, starting at the Ethernet header (spaces, colons and a 0x prefix are
    /// ignored), e.g. copied from Wireshark's "Copy as Hex Stream".
    #[arg(long, value_name = "FRAME")]
    pub hex: String,
    /// SYN-cookie secret in hex, to validate a cookie ACK (as given to `replay`).
    #[arg(long, value_name = "HEX")]
    pub cookie_secret: Option<String>,
    /// Time the frame arrived, in seconds since the epoch (cookies are time-bound). Default: now.
    #[arg(long, value_name = "UNIX_SECS")]
    pub time: Option<f64>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// Frame length.
    pub length: usize,
    /// `pass`, `drop`, `tx`, `forward`.
    pub verdict: &'static str,
    /// The reason.
    pub reason: &'static str,
    /// Service, when known.
    pub service: Option<&'static str>,
    /// Binding id, when known.
    pub binding: Option<String>,
    /// App id, when known.
    pub app: Option<String>,
    /// Worker index, when known.
    pub worker: Option<u16>,
    /// The decisions, in order.
    pub path: Vec<String>,
    /// For a malformed frame: the check it fails.
    pub malformed: Option<String>,
    /// Our reply in hex, for a `tx` verdict.
    pub reply_hex: Option<String>,
}

/// Parses hex with optional separators.
///
/// # Errors
/// Odd digit counts or non-hex characters.
pub fn parse_hex(s: &str) -> Result<Vec<u8>> {
    let s = s.trim().trim_start_matches("0x");
    let digits: Vec<u8> = s.bytes().filter(|b| !b" \t\n\r:-".contains(b)).collect();
    if !digits.len().is_multiple_of(2) {
        bail!(
            "the frame has an odd number of hex digits ({})",
            digits.len()
        );
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, p)| {
            let t = std::str::from_utf8(p).unwrap_or("??");
            u8::from_str_radix(t, 16).with_context(|| format!("byte {} ({t:?}) is not hex", i + 1))
        })
        .collect()
}

/// Explains `frame` against `tables`.
pub fn explain(
    tables: &Tables,
    cfg: &PipelineConfig,
    cookies: &fastpath::syncookie::CookieConfig,
    seed: [u8; 32],
    now_ns: u64,
    frame: &[u8],
) -> Explanation {
    let scratch = PipelineConfig {
        flow_capacity: 64,
        ..cfg.clone()
    };
    let workers = WorkerConfig {
        queue_depth: 4,
        flow_capacity: 64,
        ..WorkerConfig::default()
    };
    let (pools, _workers) = WorkerPools::new(&workers, fastpath::worker::Timeouts::from(&scratch));
    let mut p = Pipeline::new(0, &scratch, cookies, seed, 1500, pools);
    let mut buf = frame.to_vec();
    buf.resize(frame.len().max(fastpath::replay::FRAME_ROOM), 0);
    let mut path: Vec<String> = Vec::new();
    p.begin_batch(now_ns);
    let o: Outcome = p.process_traced(tables, now_ns, &mut buf, frame.len(), &mut path);
    p.end_batch();
    Explanation {
        length: frame.len(),
        verdict: o.verdict().as_str(),
        reason: o.reason.as_str(),
        service: o.service.map(|s| s.as_str()),
        binding: o
            .binding
            .and_then(|b| tables.bindings.get(b as usize))
            .map(|b| {
                if b.id == b.cidr.to_string() {
                    b.id.clone()
                } else {
                    format!("{} ({})", b.id, b.cidr)
                }
            }),
        app: o
            .app
            .and_then(|a| tables.apps.get(a as usize))
            .map(|a| a.id.clone()),
        worker: o.worker,
        path,
        malformed: (o.reason == fastpath::Reason::Malformed)
            .then(|| fastpath::wire::frame::diagnose(frame))
            .flatten(),
        reply_hex: (o.tx_len > 0)
            .then(|| buf[..o.tx_len].iter().map(|b| format!("{b:02x}")).collect()),
    }
}

/// Runs `fastpath explain`.
///
/// # Errors
/// A bad config, bad hex or a bad secret.
pub fn run(args: &ExplainArgs) -> Result<()> {
    let loaded = common::load_config(args.config.as_deref())?;
    let seed = match &args.cookie_secret {
        Some(h) => common::parse_secret(h)?,
        None => loaded.compiled.cookies.seed.unwrap_or([0; 32]),
    };
    let frame = parse_hex(&args.hex)?;
    let now_ns = match args.time {
        Some(t) if t >= 0.0 => (t * 1e9) as u64,
        Some(_) => bail!("--time must not be negative"),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    };
    let tables = Tables::build(&loaded.compiled.spec).context("compiling the tables")?;
    let e = explain(
        &tables,
        &loaded.compiled.pipeline,
        &loaded.compiled.cookies,
        seed,
        now_ns,
        &frame,
    );
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &e)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "verdict: {} ({})", e.verdict, e.reason)?;
    let mut ctx = Vec::new();
    if let Some(s) = e.service {
        ctx.push(format!("service {s}"));
    }
    if let Some(b) = &e.binding {
        ctx.push(format!("binding {b}"));
    }
    if let Some(a) = &e.app {
        ctx.push(format!("app {a}"));
    }
    if let Some(w) = e.worker {
        ctx.push(format!("worker {w}"));
    }
    if !ctx.is_empty() {
        writeln!(out, "         {}", ctx.join(", "))?;
    }
    writeln!(out, "path ({} bytes):", e.length)?;
    for (i, s) in e.path.iter().enumerate() {
        writeln!(out, "  {}. {s}", i + 1)?;
    }
    if let Some(m) = &e.malformed {
        writeln!(out, "  {}. malformed: {m}", e.path.len() + 1)?;
    }
    writeln!(out, "  => {}/{}", e.verdict, e.reason)?;
    if let Some(r) = &e.reply_hex {
        writeln!(out, "reply: {r}")?;
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("0a0B").unwrap(), vec![10, 11]);
        assert_eq!(parse_hex("0x0a:0b 0c-0d\n").unwrap(), vec![10, 11, 12, 13]);
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
