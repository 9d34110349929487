//! The per-packet pipeline: one verdict and one reason for every frame.

mod config;

pub use config::{PipelineConfig, PipelineConfigError};
