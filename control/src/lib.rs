//! The control plane: the configuration model (TOML, with the shapes of the public Spectrum and
//! BYOIP APIs), its validation, and its compilation into the data plane's tables.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
