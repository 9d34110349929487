//! `fastpath`: the L4 edge fast path.
//!
//! Subcommands: `replay` (captures through the pipeline), `bench` (throughput in memory),
//! `explain` (why a frame gets its verdict), `run` (live on an interface, with the control
//! socket), `lab` (namespaces to try it in), `gen` (floods from an XDP program in the kernel, or
//! traffic on AF_XDP TX).

use clap::{Parser, Subcommand};
use fastpath_cli::cmd;

/// An L4 edge fast path on AF_XDP: drops what nobody configured, answers SYNs with SYN cookies,
/// and hands valid flows to CDN and Spectrum workers.
#[derive(Debug, Parser)]
#[command(name = "fastpath", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a capture through the pipeline (the live code, clocked by the capture) and report
    /// every verdict. With no arguments: the bundled capture and config.
    Replay(cmd::replay::ReplayArgs),
    /// Measure the pipeline's packets per second on a capture held in memory.
    Bench(cmd::bench::BenchArgs),
    /// Explain the verdict of one frame: the reason and the table entries that decided it.
    Explain(cmd::explain::ExplainArgs),
    /// Serve an interface: the XDP program, one AF_XDP socket and pinned thread per RX queue,
    /// the workers, and the control socket for changes at run time. Needs root. Stops on
    /// SIGINT/SIGTERM.
    Run(cmd::run::RunArgs),
    /// Build a lab of network namespaces (client, edge, origin) on documentation addresses and
    /// start the fast path in it (needs root); `--down` removes it.
    Lab(cmd::lab::LabArgs),
    /// Send traffic on an interface: a flood (SYN, ACK, UDP from random sources) made in the
    /// kernel by an XDP program run in live-frames mode (`--engine kernel`, the default for a
    /// flood; Linux 5.18+), or a capture or a flood through AF_XDP TX (`--engine xsk`); as fast
    /// as the link takes or at a rate; reports packets per second sent. Needs root.
    Gen(cmd::generate::GenArgs),
    /// Serve real origins for the lab and the tests: an HTTP server, a TCP echo that prints the
    /// PROXY header it received, a UDP echo that speaks Simple Proxy Protocol. Stops on
    /// SIGINT/SIGTERM or after --duration.
    Origin(cmd::origin::OriginArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Every change through a daemon's control socket is logged with its peer's uid and pid
    // (a benchmark's own thousands of changes are not).
    let default_filter = match &cli.command {
        Command::Bench(_) => "warn",
        _ => "warn,control=info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match &cli.command {
        Command::Replay(a) => cmd::replay::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Explain(a) => cmd::explain::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Lab(a) => cmd::lab::run(a),
        Command::Gen(a) => cmd::generate::run(a),
        Command::Origin(a) => cmd::origin::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("fastpath: {e:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
