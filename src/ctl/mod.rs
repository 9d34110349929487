//! `fastpathctl`: the command-line client of the daemon's control socket (`docs/CONTROL.md`,
//! HTTP/1.1 and JSON over a Unix socket).
//!
//! Every command maps to one or a few requests ([`Req`], built by pure functions that the unit
//! tests check), prints the `result` as aligned tables (or as JSON with `--json`) on stdout,
//! and diagnostics on stderr. Mutating commands take `--dry-run` and `--expected-version N`
//! ([`ChangeOpts`]) and print what changed (the `_change` object: version, applied, the diff,
//! swap time).
//!
//! Exit codes ([`error`]):
//!
//! - 0: success;
//! - 1: refused by the daemon (`success: false`, HTTP 4xx), or a local config file that does
//!   not validate (nothing is sent);
//! - 2: usage errors (clap's own) and unreadable local files;
//! - 3: the daemon is unreachable (no socket, connection refused, permission denied) or the
//!   peer does not answer HTTP;
//! - 4: the daemon failed (HTTP 5xx, e.g. it could not persist the change; nothing changed).

pub mod addressing;
pub mod analytics;
pub mod apps;
pub mod client;
pub mod config;
pub mod error;
pub mod events;
pub mod observe;
pub mod output;
pub mod rules;
pub mod stats;

use std::io::{self, Read as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hyper::Method;
use serde_json::Value;

use client::Client;
use error::CtlError;

/// Where the daemon puts its socket unless told otherwise (`fastpath run --control PATH`).
pub const DEFAULT_SOCKET: &str = "/run/fastpath/fastpath.sock";
/// The zone in Spectrum and access-rule paths: accepted and ignored by the daemon (one edge,
/// one zone).
pub const ZONE: &str = "local";
/// The account in BYOIP paths: accepted and ignored as well.
pub const ACCOUNT: &str = "local";

const EXIT_HELP: &str = "\
Exit codes:
  0  success
  1  refused by the daemon (success: false, HTTP 4xx; every error is printed on stderr as
     `fastpathctl: refused (code N): ...`), or a local config file that does not validate
  2  usage error, or a local file that cannot be read
  3  the daemon is unreachable (no socket, connection refused, permission denied) or does not
     answer HTTP
  4  the daemon failed (HTTP 5xx, e.g. it could not persist the change; nothing changed)

Examples:
  fastpathctl status
  fastpathctl apps create --protocol tcp/2222 --edge-ip 203.0.113.10 \\
      --origin tcp://192.0.2.1:22 --dns-name ssh2.example.com
  fastpathctl diff edge.toml
  fastpathctl config apply edge.toml --expected-version 7
  fastpathctl events --follow
  fastpathctl --json stats | jq .totals

The socket is HTTP/1.1 with JSON bodies; `curl --unix-socket /run/fastpath/fastpath.sock
http://fastpath/v1/status` works too (see docs/CONTROL.md).";

/// The client of the fast path's control socket: reads and changes the running configuration
/// of a `fastpath run` (or `fastpath replay --control`) daemon, and watches it.
#[derive(Debug, Parser)]
#[command(
    name = "fastpathctl",
    version,
    long_about = None,
    propagate_version = true,
    after_help = EXIT_HELP
)]
pub struct Cli {
    /// The daemon's control socket.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "FASTPATH_SOCKET",
        default_value = DEFAULT_SOCKET
    )]
    pub socket: PathBuf,
    /// Print the result as pretty JSON instead of tables (for a refusal: the whole envelope,
    /// on stdout too).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: node, running version, config file, counts, change times.
    Status,
    /// Spectrum apps: list, get, create, update, delete.
    Apps {
        /// What to do with apps.
        #[command(subcommand)]
        cmd: apps::AppsCmd,
    },
    /// BYOIP prefixes: list, create, delete.
    Prefixes {
        /// What to do with prefixes.
        #[command(subcommand)]
        cmd: addressing::PrefixesCmd,
    },
    /// Service bindings of a prefix: list, create, delete.
    Bindings {
        /// What to do with bindings.
        #[command(subcommand)]
        cmd: addressing::BindingsCmd,
    },
    /// IP access rules: list, create, delete, replace them all.
    Rules {
        /// What to do with rules.
        #[command(subcommand)]
        cmd: rules::RulesCmd,
    },
    /// CDN settings: ports, HTTPS only, the L7 pool.
    Cdn {
        /// Get or set.
        #[command(subcommand)]
        cmd: config::CdnCmd,
    },
    /// The whole configuration: get it (JSON or TOML), apply a file.
    Config {
        /// Get or apply.
        #[command(subcommand)]
        cmd: config::ConfigCmd,
    },
    /// What applying FILE would change: the semantic diff and the verification report (a dry
    /// run; nothing changes). Exits 1 when the daemon would refuse it.
    Diff(config::DiffArgs),
    /// Counters: verdicts and reasons, per queue (Mpps), batch times, per app and binding,
    /// XDP, changes.
    Stats(stats::StatsArgs),
    /// The event log: changes applied and refused, secret rotations, connection events.
    Events(events::EventsArgs),
    /// The Spectrum analytics of real connections (count, bytes, durations by event, app, colo
    /// and IP version): a summary, or by time.
    Analytics(analytics::AnalyticsArgs),
    /// Explain the verdict the running tables give one frame.
    Explain(observe::ExplainArgs),
    /// The Prometheus metrics, as the daemon serves them.
    Metrics,
    /// Whether an address or prefix may be used as an origin, and why.
    ValidateOrigin(addressing::ValidateOriginArgs),
    /// The SYN-cookie secret.
    Secrets {
        /// Rotate.
        #[command(subcommand)]
        cmd: config::SecretsCmd,
    },
}

/// `--dry-run` and `--expected-version`, which every change takes.
#[derive(Debug, Clone, Default, Args)]
pub struct ChangeOpts {
    /// Validate and verify the change and print what it would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse the change (exit 1, code 1009) unless the running configuration is version N
    /// (compare-and-swap; the version is in `fastpathctl status`).
    #[arg(long, value_name = "N")]
    pub expected_version: Option<u64>,
}

impl ChangeOpts {
    /// The query string for these options: empty, or `?dry_run=true&expected_version=N`.
    pub fn query(&self) -> String {
        let mut q = Vec::new();
        if self.dry_run {
            q.push("dry_run=true".to_string());
        }
        if let Some(v) = self.expected_version {
            q.push(format!("expected_version={v}"));
        }
        if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        }
    }

    /// `path` with these options as its query.
    pub fn on(&self, path: &str) -> String {
        format!("{path}{}", self.query())
    }
}

/// One request: what a command sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Req {
    /// The method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

impl Req {
    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> Req {
        Req {
            method: Method::GET,
            path: path.into(),
            body: None,
        }
    }

    /// A request with a body.
    pub fn with(method: Method, path: impl Into<String>, body: Value) -> Req {
        Req {
            method,
            path: path.into(),
            body: Some(body),
        }
    }

    /// A DELETE of `path`.
    pub fn delete(path: impl Into<String>) -> Req {
        Req {
            method: Method::DELETE,
            path: path.into(),
            body: None,
        }
    }
}

/// A running command: the client, the output mode, stdout.
pub struct Ctl<'o> {
    /// The socket's client.
    pub client: Client,
    /// `--json`.
    pub json: bool,
    /// Where results go (stdout).
    pub out: &'o mut dyn Write,
}

impl core::fmt::Debug for Ctl<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ctl")
            .field("client", &self.client)
            .field("json", &self.json)
            .finish_non_exhaustive()
    }
}

impl Ctl<'_> {
    /// Sends `req`; its `result`. The envelope's `messages` go to stderr.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub fn call(&mut self, req: &Req) -> Result<Value, CtlError> {
        let a = self
            .client
            .call(req.method.clone(), &req.path, req.body.as_ref())?;
        note_all(&a.messages);
        Ok(a.result)
    }

    /// Prints `v` as pretty JSON on stdout.
    ///
    /// # Errors
    /// [`CtlError::Output`].
    pub fn print_json(&mut self, v: &Value) -> Result<(), CtlError> {
        serde_json::to_writer_pretty(&mut *self.out, v).map_err(io::Error::from)?;
        writeln!(self.out)?;
        self.out.flush()?;
        Ok(())
    }

    /// Prints text on stdout as it is.
    ///
    /// # Errors
    /// [`CtlError::Output`].
    pub fn print(&mut self, s: &str) -> Result<(), CtlError> {
        self.out.write_all(s.as_bytes())?;
        self.out.flush()?;
        Ok(())
    }

    /// Sends a read and prints its result: JSON with `--json`, else `human(result)`.
    ///
    /// # Errors
    /// As [`Ctl::call`].
    pub fn show(
        &mut self,
        req: &Req,
        human: impl FnOnce(&Value) -> String,
    ) -> Result<(), CtlError> {
        let r = self.call(req)?;
        if self.json {
            self.print_json(&r)
        } else {
            let s = human(&r);
            self.print(&s)
        }
    }

    /// Sends a change and prints its result: JSON with `--json`, else `human(result)` followed
    /// by what the change did (its `_change`).
    ///
    /// # Errors
    /// As [`Ctl::call`].
    pub fn change(
        &mut self,
        req: &Req,
        human: impl FnOnce(&Value) -> String,
    ) -> Result<(), CtlError> {
        let r = self.call(req)?;
        if self.json {
            return self.print_json(&r);
        }
        let mut s = human(&r);
        if let Some(c) = r.get("_change") {
            s.push_str(&output::change_summary(c));
        }
        self.print(&s)
    }
}

/// Prints `fastpathctl: note: ...` on stderr for each message of an envelope.
pub fn note_all(messages: &[String]) {
    let mut e = io::stderr().lock();
    for m in messages {
        let _ = writeln!(e, "fastpathctl: note: {m}");
    }
}

/// Prints one diagnostic line on stderr.
pub fn warn(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "fastpathctl: {msg}");
}

/// How a local file is named in messages: `<stdin>` for `-`.
pub fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}

/// Reads a local file, `-` for stdin.
///
/// # Errors
/// [`CtlError::LocalFile`] naming the file.
pub fn read_input(path: &Path) -> Result<String, CtlError> {
    if path == Path::new("-") {
        let mut s = String::new();
        io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CtlError::LocalFile(format!("cannot read stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| CtlError::LocalFile(format!("cannot read {}: {e}", path.display())))
}

/// Reads a local JSON file, `-` for stdin.
///
/// # Errors
/// [`CtlError::LocalFile`]: unreadable, or not JSON (with the line and column).
pub fn read_json(path: &Path) -> Result<Value, CtlError> {
    let text = read_input(path)?;
    serde_json::from_str(&text)
        .map_err(|e| CtlError::LocalFile(format!("{} is not JSON: {e}", display_name(path))))
}

/// Runs one parsed command line, printing results on `out`.
///
/// # Errors
/// [`CtlError`], whose [`CtlError::exit_code`] is the process's.
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<(), CtlError> {
    let mut ctl = Ctl {
        client: Client::new(&cli.socket)?,
        json: cli.json,
        out,
    };
    match &cli.command {
        Command::Status => observe::status(&mut ctl),
        Command::Apps { cmd } => apps::run(&mut ctl, cmd),
        Command::Prefixes { cmd } => addressing::prefixes(&mut ctl, cmd),
        Command::Bindings { cmd } => addressing::bindings(&mut ctl, cmd),
        Command::Rules { cmd } => rules::run(&mut ctl, cmd),
        Command::Cdn { cmd } => config::cdn(&mut ctl, cmd),
        Command::Config { cmd } => config::config(&mut ctl, cmd),
        Command::Diff(a) => config::diff(&mut ctl, a),
        Command::Stats(a) => stats::run(&mut ctl, a),
        Command::Events(a) => events::run(&mut ctl, a),
        Command::Analytics(a) => analytics::run(&mut ctl, a),
        Command::Explain(a) => observe::explain(&mut ctl, a),
        Command::Metrics => observe::metrics(&mut ctl),
        Command::ValidateOrigin(a) => addressing::validate_origin(&mut ctl, a),
        Command::Secrets { cmd } => config::secrets(&mut ctl, cmd),
    }
}

/// The whole program after argument parsing: runs the command, prints errors (and, with
/// `--json`, a refusal's envelope on stdout), and returns the exit code.
pub fn main(cli: &Cli) -> ExitCode {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match run(cli, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.json
                && let Some(env) = e.envelope()
            {
                let _ = serde_json::to_writer_pretty(&mut out, &env);
                let _ = writeln!(out);
                let _ = out.flush();
            }
            let mut err = io::stderr().lock();
            for l in e.lines() {
                let _ = writeln!(err, "fastpathctl: {l}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// Parses a command line as the binary does.
    pub(crate) fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("fastpathctl").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// The error clap gives for a command line it refuses.
    pub(crate) fn parse_err(args: &[&str]) -> clap::Error {
        match Cli::try_parse_from(std::iter::once("fastpathctl").chain(args.iter().copied())) {
            Ok(c) => panic!("{args:?} parsed: {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn global_options_and_the_default_socket() {
        // --socket is given, so a FASTPATH_SOCKET in the environment does not matter.
        let c = parse(&["status", "--json", "--socket", "/tmp/x.sock"]);
        assert!(c.json);
        assert_eq!(c.socket, PathBuf::from("/tmp/x.sock"));
        assert!(matches!(c.command, Command::Status));
        // clap's own consistency checks of every command and flag.
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn change_options_make_the_query() {
        let q = |d, v| {
            ChangeOpts {
                dry_run: d,
                expected_version: v,
            }
            .on("/v1/config")
        };
        assert_eq!(q(false, None), "/v1/config");
        assert_eq!(q(true, None), "/v1/config?dry_run=true");
        assert_eq!(
            q(true, Some(7)),
            "/v1/config?dry_run=true&expected_version=7"
        );
        assert_eq!(q(false, Some(7)), "/v1/config?expected_version=7");
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(
            parse_err(&["apps", "create", "--proxy-protocol", "v3"]).exit_code(),
            2
        );
        assert_eq!(parse_err(&["nonsense"]).exit_code(), 2);
        assert_eq!(
            parse_err(&["apps", "update", "ssh", "--ip-firewall", "maybe"]).exit_code(),
            2
        );
    }
}
