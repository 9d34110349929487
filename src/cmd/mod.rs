//! One module per subcommand.

pub mod bench;
pub mod explain;
pub mod replay;
pub mod report;
