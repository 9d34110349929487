//! The configuration: one TOML file, the source of truth.
//!
//! Its shapes follow the public Spectrum and BYOIP APIs, so the JSON bodies users already have
//! (a Spectrum app, a service binding) deserialize into the same types. Loading never
//! half-succeeds: [`Config::from_toml_str`] returns a configuration that passed every check in
//! [`validate`], or every error found, each naming the key and the value. See `docs/CONFIG.md`.

mod compile;
pub mod origin;
mod types;
mod validate;

use std::fmt;
use std::path::Path;

pub use compile::{Compiled, Slots};
pub use origin::{OriginCheck, origin_check};
pub use types::*;

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where: a key path such as `spectrum_apps[1].origin_direct[0]` (indexes are 0-based).
    pub path: String,
    /// The offending value as written (secrets are never echoed).
    pub value: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}: {}", self.path, self.message)
        } else {
            write!(f, "{} = {}: {}", self.path, self.value, self.message)
        }
    }
}

/// Every problem found in a configuration (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// A single error.
    pub fn one(
        path: impl Into<String>,
        value: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigErrors {
        ConfigErrors(vec![ConfigError {
            path: path.into(),
            value: value.into(),
            message: message.into(),
        }])
    }

    /// The errors whose path starts with `prefix`.
    pub fn at<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a ConfigError> + 'a {
        self.0.iter().filter(move |e| e.path.starts_with(prefix))
    }
}

impl Config {
    /// Parses and validates a TOML configuration.
    ///
    /// # Errors
    /// A syntax error or unknown key (one error, with its line), or every validation error.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigErrors> {
        let c: Config = toml::from_str(s).map_err(|e| {
            let path = e
                .span()
                .map_or_else(|| "config".to_string(), |sp| line_of(s, sp.start));
            ConfigErrors::one(path, "", e.message().trim().to_string())
        })?;
        c.validate()?;
        Ok(c)
    }

    /// Reads, parses and validates a TOML file.
    ///
    /// # Errors
    /// An unreadable file, or as [`Config::from_toml_str`].
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let s = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::one(path.display().to_string(), "", format!("cannot read: {e}"))
        })?;
        Config::from_toml_str(&s)
    }

    /// Serializes to TOML (loading the result gives back an equal configuration).
    ///
    /// # Errors
    /// Only if a value cannot be represented in TOML (never for a validated config).
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Checks every rule of `docs/CONFIG.md`.
    ///
    /// # Errors
    /// Every problem found.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        validate::validate(self)
    }
}

/// "line N" of a byte offset, for syntax errors.
fn line_of(s: &str, offset: usize) -> String {
    let line = s[..offset.min(s.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1;
    format!("line {line}")
}

#[cfg(test)]
mod tests;
