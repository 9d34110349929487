//! One module per subcommand.

pub mod bench;
pub mod changebench;
pub mod explain;
pub mod generate;
pub mod lab;
pub mod livebench;
pub mod origin;
pub mod originbench;
pub mod replay;
pub mod report;
pub mod run;
