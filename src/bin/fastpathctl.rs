//! `fastpathctl`: the client of the fast path's control socket (`docs/CONTROL.md`).
//!
//! Exit codes: 0 success; 1 refused by the daemon (HTTP 4xx) or a local config file that does
//! not validate; 2 usage errors and unreadable local files; 3 the daemon is unreachable (no
//! socket, connection refused, permission denied) or does not answer HTTP; 4 the daemon failed
//! (HTTP 5xx). The code lives in [`fastpath_cli::ctl`].

use clap::Parser;
use fastpath_cli::ctl::{Cli, main as ctl_main};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    ctl_main(&cli)
}
