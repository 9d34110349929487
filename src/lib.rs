//! The `fastpath` command: subcommands over the data plane (`fastpath` crate) and the control
//! plane (`control` crate). One file per subcommand in [`cmd`].

pub mod cmd;
pub mod common;
pub mod daemon;
pub mod lab;
