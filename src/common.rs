//! Things several subcommands share: loading the config, the cookie secret, the bundled files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use control::config::{Compiled, Config};

/// The bundled lab config (the contract config of the README).
pub const BUNDLED_CONFIG: &str = include_str!("../pcaps/edge-lab.toml");
/// Name shown for the bundled config.
pub const BUNDLED_CONFIG_NAME: &str = "pcaps/edge-lab.toml (bundled)";
/// The bundled mixed capture (handshakes, floods, established flows, every reason).
pub const BUNDLED_CAPTURE: &[u8] = include_bytes!("../pcaps/mixed.pcap");
/// Name shown for the bundled capture.
pub const BUNDLED_CAPTURE_NAME: &str = "pcaps/mixed.pcap (bundled)";

/// A loaded configuration and where it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The config.
    pub config: Config,
    /// Compiled for the data plane.
    pub compiled: Compiled,
    /// File name (or the bundled name).
    pub name: String,
    /// The version in the file's header (written by the control socket), else 1.
    pub version: u64,
}

/// Loads and compiles `path`, or the bundled config when `None`.
pub fn load_config(path: Option<&Path>) -> Result<Loaded> {
    let (text, name) = match path {
        Some(p) => (
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config file {}", p.display()))?,
            p.display().to_string(),
        ),
        None => (BUNDLED_CONFIG.to_string(), BUNDLED_CONFIG_NAME.to_string()),
    };
    let mut config = Config::from_toml_str(&text)
        .map_err(|e| anyhow::anyhow!("{name} is not a valid config:\n{e}"))?;
    // Origin names without addresses yet are looked up now; the file's own timestamps and
    // addresses are kept (it is its own previous version).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    control::resolve::prepare(
        &config.clone(),
        &mut config,
        &control::resolve::SystemResolver,
        now_ms,
    )
    .map_err(|e| anyhow::anyhow!("{name} does not compile:\n{e}"))?;
    let version = control::daemon::version_of(&text).unwrap_or(1);
    let compiled = config
        .compile(version, &control::config::Slots::default())
        .map_err(|e| anyhow::anyhow!("{name} does not compile:\n{e}"))?;
    Ok(Loaded {
        config,
        compiled,
        name,
        version,
    })
}

/// Parses a cookie secret given in hex (up to 32 bytes; shorter ones are zero-padded, which is
/// fine for reproducible replays and too weak for production, where the config's 32-byte
/// `syn_cookies.secret` belongs).
pub fn parse_secret(hex: &str) -> Result<[u8; 32]> {
    let hex = hex.trim().trim_start_matches("0x");
    if hex.is_empty() || hex.len() > 64 || !hex.len().is_multiple_of(2) {
        bail!(
            "the cookie secret must be 2 to 64 hex digits (an even number), got {} characters",
            hex.len()
        );
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).unwrap_or("??");
        out[i] = u8::from_str_radix(s, 16).map_err(|_| {
            anyhow::anyhow!("the cookie secret is not hex (at digit {})", i * 2 + 1)
        })?;
    }
    Ok(out)
}

/// The seed to use: the flag, else the config's secret, else a random one.
pub fn seed(flag: Option<&str>, loaded: &Loaded) -> Result<[u8; 32]> {
    if let Some(h) = flag {
        return parse_secret(h);
    }
    if let Some(s) = loaded.compiled.cookies.seed {
        return Ok(s);
    }
    fastpath::syncookie::SynCookies::random_seed()
        .map_err(|e| anyhow::anyhow!("no randomness for a cookie secret: {e}"))
}

/// Shortens a path for display.
pub fn display(p: &Path) -> PathBuf {
    p.to_path_buf()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn secrets() {
        assert_eq!(parse_secret("01").unwrap()[..2], [1, 0]);
        assert_eq!(parse_secret(&"ab".repeat(32)).unwrap(), [0xab; 32]);
        assert!(parse_secret("").is_err());
        assert!(parse_secret("abc").is_err());
        assert!(parse_secret("zz").is_err());
        assert!(parse_secret(&"00".repeat(33)).is_err());
    }

    #[test]
    fn bundled_config_loads() {
        let l = load_config(None).unwrap();
        assert!(l.name.contains("bundled"));
    }
}
