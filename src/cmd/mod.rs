//! One module per subcommand.

pub mod bench;
pub mod explain;
pub mod lab;
pub mod replay;
pub mod report;
pub mod run;
