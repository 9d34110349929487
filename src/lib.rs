//! The `fastpath` command: subcommands over the data plane (`fastpath` crate) and the control
//! plane (`control` crate). One file per subcommand in [`cmd`]. The `fastpathctl` client of
//! the control socket is [`ctl`].

pub mod cmd;
pub mod common;
pub mod ctl;
pub mod daemon;
pub mod fleetlab;
pub mod lab;
/// The straightforward pipeline, the baseline of `cargo bench --bench bench` and
/// `fastpath bench --compare` (its source stays in `benches/naive.rs`, beside the benchmark).
#[path = "../benches/naive.rs"]
#[allow(missing_debug_implementations)]
pub mod naive;
pub mod nexthop;
