//! `fastpath origin`: real origins for the lab and the tests, serving until SIGINT/SIGTERM or
//! `--duration`.
//!
//! An HTTP server that answers who the client is (from the PROXY header when there is one),
//! a TCP echo that prints the PROXY header it received (optionally speaking first with a
//! banner), and a UDP echo that speaks Simple Proxy Protocol. What they serve and log is
//! `fastpath_proxy::labserver`; this file parses the flags, runs the runtime and prints every
//! log line to stdout as it happens (flushed per line, so a test or a pipe sees it at once).

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use fastpath_proxy::labserver::{self, LabOrigins};

/// Arguments of `fastpath origin`.
#[derive(Debug, Args)]
pub struct OriginArgs {
    /// Serve HTTP/1.1 on ADDR (repeatable; `IP:LO-HI` for a port range). Every request gets
    /// 200 and a text body naming the origin and the client (from a PROXY v1/v2 header if one
    /// came first, else the TCP peer); `GET /bytes/N` returns N bytes; a POST or PUT body is
    /// answered with its length and SHA-256.
    #[arg(long = "http", value_name = "ADDR", value_parser = addr_range)]
    pub http: Vec<Vec<SocketAddr>>,
    /// Serve a TCP echo on ADDR (repeatable; `IP:LO-HI` for a port range): logs the PROXY
    /// header it received (hex included), echoes every byte after it, and closes its side
    /// after the client's.
    #[arg(long = "echo", value_name = "ADDR", value_parser = addr_range)]
    pub echo: Vec<Vec<SocketAddr>>,
    /// Serve a UDP echo on ADDR (repeatable; `IP:LO-HI` for a port range): a datagram with a
    /// Simple Proxy Protocol header is answered with the same header and payload, one with a
    /// PROXY v2 header with the payload after it, any other is echoed as is.
    #[arg(long = "udp-echo", value_name = "ADDR", value_parser = addr_range)]
    pub udp_echo: Vec<Vec<SocketAddr>>,
    /// Line the TCP echo writes first on every connection, before reading anything (like an
    /// SSH or SMTP server); `\r\n` is appended.
    #[arg(long, value_name = "TEXT")]
    pub banner: Option<String>,
    /// Stop after SECS seconds (fractions allowed). Default: serve until SIGINT or SIGTERM.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
}

impl OriginArgs {
    /// What to serve, and for how long.
    ///
    /// # Errors
    /// No address at all, or a `--duration` that is not a positive number of seconds.
    fn origins(&self) -> Result<(LabOrigins, Option<Duration>)> {
        if self.http.is_empty() && self.echo.is_empty() && self.udp_echo.is_empty() {
            bail!("nothing to serve: give at least one --http, --echo or --udp-echo ADDR");
        }
        let duration = match self.duration {
            None => None,
            Some(s) => Some(
                Duration::try_from_secs_f64(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .with_context(|| {
                        format!("--duration {s}: give a positive number of seconds")
                    })?,
            ),
        };
        let o = LabOrigins {
            http: self.http.concat(),
            echo: self.echo.concat(),
            udp_echo: self.udp_echo.concat(),
            banner: self.banner.clone(),
        };
        Ok((o, duration))
    }
}

/// Parses `IP:PORT`, `[IPv6]:PORT`, or a range `IP:LO-HI` (at most 4096 ports).
fn addr_range(s: &str) -> std::result::Result<Vec<SocketAddr>, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    let bad = || format!("{s}: give IP:PORT, [IPv6]:PORT or IP:LO-HI");
    let (host, ports) = s.rsplit_once(':').ok_or_else(bad)?;
    let (lo, hi) = ports.split_once('-').ok_or_else(bad)?;
    let (lo, hi): (u16, u16) = (
        lo.parse().map_err(|_| bad())?,
        hi.parse().map_err(|_| bad())?,
    );
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| bad())?;
    if lo > hi || hi - lo >= 4096 {
        return Err(format!(
            "{s}: a range LO-HI with LO <= HI, at most 4096 ports"
        ));
    }
    Ok((lo..=hi).map(|p| SocketAddr::new(ip, p)).collect())
}

/// Runs `fastpath origin`.
///
/// # Errors
/// Bad arguments, an address that cannot be bound, or signal handlers that cannot be installed.
pub fn run(args: &OriginArgs) -> Result<()> {
    let (origins, duration) = args.origins()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    // Printing on a thread of its own: stdout may block (a slow pipe) and must not stall the
    // origins. It ends when the origins drop their senders.
    let printer = std::thread::spawn(move || {
        let stdout = std::io::stdout();
        while let Some(line) = rx.blocking_recv() {
            let mut out = stdout.lock();
            // A failed write means nobody reads stdout any more (a closed pipe): the origins
            // keep serving and the lines are dropped.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    });
    let served = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let stop = async move {
            let timer = async {
                match duration {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                () = timer => {}
            }
        };
        labserver::serve(origins, tx, stop)
            .await
            .context("serving the origins (is the address in use, or not on this host?)")
    });
    // The runtime's tasks hold the last senders: drop them so that the printer ends.
    drop(rt);
    let _ = printer.join();
    served
}

#[cfg(test)]
mod test {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: OriginArgs,
    }

    fn parse(argv: &[&str]) -> OriginArgs {
        Cli::try_parse_from([&["origin"], argv].concat())
            .unwrap()
            .args
    }

    #[test]
    fn flags_repeat() {
        let a = parse(&[
            "--http",
            "127.0.0.1:8081",
            "--http",
            "[::1]:8081",
            "--echo",
            "127.0.0.1:8082",
            "--udp-echo",
            "127.0.0.1:8083",
            "--banner",
            "SSH-2.0-lab",
            "--duration",
            "0.5",
        ]);
        let (o, d) = a.origins().unwrap();
        assert_eq!(o.http.len(), 2);
        assert_eq!(
            o.echo,
            vec!["127.0.0.1:8082".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(o.udp_echo.len(), 1);
        assert_eq!(o.banner.as_deref(), Some("SSH-2.0-lab"));
        assert_eq!(d, Some(Duration::from_millis(500)));
    }

    #[test]
    fn bad_arguments() {
        assert!(parse(&[]).origins().is_err());
        for d in ["0", "-1", "NaN", "inf"] {
            let a = parse(&["--echo", "127.0.0.1:0", &format!("--duration={d}")]);
            assert!(a.origins().is_err(), "--duration {d}");
        }
        assert!(Cli::try_parse_from(["origin", "--http", "localhost"]).is_err());
        assert!(Cli::try_parse_from(["origin", "--echo", "127.0.0.1:9-1"]).is_err());
        assert!(Cli::try_parse_from(["origin", "--echo", "127.0.0.1:1-9000"]).is_err());
    }

    #[test]
    fn port_ranges() {
        let a = parse(&[
            "--echo",
            "192.0.2.3:3000-3002",
            "--udp-echo",
            "[2001:db8::1]:53-54",
        ]);
        let (o, _) = a.origins().unwrap();
        assert_eq!(o.echo.len(), 3);
        assert_eq!(o.echo[2], "192.0.2.3:3002".parse::<SocketAddr>().unwrap());
        assert_eq!(
            o.udp_echo[1],
            "[2001:db8::1]:54".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn serves_for_the_duration() {
        let a = parse(&["--echo", "127.0.0.1:0", "--duration", "0.1"]);
        run(&a).unwrap();
    }
}
