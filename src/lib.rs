//! The `fastpath` command: subcommands over the data plane (`fastpath` crate) and the control
//! plane (`control` crate). One file per subcommand in [`cmd`]. The `fastpathctl` client of
//! the control socket is [`ctl`].

pub mod cmd;
pub mod common;
pub mod ctl;
pub mod daemon;
pub mod fleetlab;
pub mod lab;
pub mod nexthop;
