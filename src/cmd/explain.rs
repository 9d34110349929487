//! `fastpath explain`: one frame in, its verdict and the table entries that decided it out.
//!
//! The frame goes through the same pipeline code as live traffic, with a tracing sink instead
//! of the no-op one, against a scratch flow table: so an ACK is judged as if no flow existed
//! (pass `--cookie-secret` and `--time` to check a cookie minted by a replay or a live node).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use fastpath::tables::Tables;

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

pub use control::explain::{Explanation, explain};

/// Parses hex with optional separators.
///
/// # Errors
/// Odd digit counts, non-hex characters, nothing at all.
pub fn parse_hex(s: &str) -> Result<Vec<u8>> {
    Ok(control::explain::parse_hex(s)?)
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
        &control::explain::Secrets::Seed(seed),
        now_ns,
        &frame,
    );
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &e)?;
        writeln!(out)?;
        return Ok(());
    }
    out.write_all(e.render().as_bytes())?;
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
