//! Configuration errors: one [`ConfigError`] per problem, all of them collected in a
//! [`ConfigErrors`].
//!
//! Every error names the offending key as a path from the top of the document
//! (`spectrum_apps[1].origin_direct[0]`, array indices 0-based), the value found there when it
//! helps (never a secret), the line in the source when the config came from text, and a message
//! that says what to do. The [`Rule`] tells programs (and tests) which check refused it.

use core::fmt;
use std::path::{Path, PathBuf};

/// Which check refused a configuration. Stable names (`as_str`) for the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The text is not valid TOML or JSON.
    Syntax,
    /// A key that the schema does not know.
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A value of the wrong type or shape (`protocol = "tcp22"`, `cidr = "300.0.0.0/8"`).
    InvalidValue,
    /// A prefix longer than /24 (IPv4) or /48 (IPv6).
    PrefixTooLong,
    /// A CIDR with bits set past its prefix length.
    HostBits,
    /// Two onboarded prefixes overlap.
    PrefixOverlap,
    /// A binding outside every onboarded prefix.
    BindingOutsidePrefix,
    /// Two bindings with the same CIDR.
    DuplicateBinding,
    /// An advertised prefix without a binding spanning it whole.
    NoDefaultBinding,
    /// A service this edge does not run (`magic_transit`).
    UnsupportedService,
    /// An id that is empty, malformed or used twice.
    BadId,
    /// More apps or bindings than the data plane has slots for.
    TooMany,
    /// A port of 0, above 65535, or a backwards range.
    BadPort,
    /// `edge_ips` malformed (static without ips, connectivity with static, ...).
    EdgeIps,
    /// An edge IP that is not in a Spectrum binding, or listed twice.
    EdgeIpNotSpectrum,
    /// Two apps claim the same protocol, edge IP and port.
    PortConflict,
    /// `origin_direct` missing or malformed for the app (scheme, port count, duplicates).
    Origin,
    /// An origin refused by the origin policy (reserved, managed, or an edge IP).
    OriginRefused,
    /// A field of the public API whose effect this edge does not have (`tls` other than
    /// `off`, `argo_smart_routing = true`, `traffic_type` `http`/`https`, SRV origins).
    Unsupported,
    /// `proxy_protocol`/`spp` that does not fit the app's protocol.
    ProxyProtocol,
    /// `traffic_type` that does not fit the app's protocol.
    TrafficType,
    /// An access rule whose value does not fit its target, or a target not supported.
    AccessRule,
    /// The same access rule CIDR twice.
    DuplicateAccessRule,
    /// A CDN port listed twice.
    DuplicatePort,
    /// A setting outside its range (checked by the data plane's own `validate`).
    OutOfRange,
    /// A malformed SYN-cookie secret.
    Secret,
    /// An `origin_dns` name that does not resolve to an address (API code 531).
    OriginUnresolvable,
    /// `[spectrum] dynamic_pool` malformed, or no free address in it for a dynamic app.
    DynamicPool,
}

impl Rule {
    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::Syntax => "syntax",
            Rule::UnknownKey => "unknown_key",
            Rule::MissingKey => "missing_key",
            Rule::InvalidValue => "invalid_value",
            Rule::PrefixTooLong => "prefix_too_long",
            Rule::HostBits => "host_bits",
            Rule::PrefixOverlap => "prefix_overlap",
            Rule::BindingOutsidePrefix => "binding_outside_prefix",
            Rule::DuplicateBinding => "duplicate_binding",
            Rule::NoDefaultBinding => "no_default_binding",
            Rule::UnsupportedService => "unsupported_service",
            Rule::BadId => "bad_id",
            Rule::TooMany => "too_many",
            Rule::BadPort => "bad_port",
            Rule::EdgeIps => "edge_ips",
            Rule::EdgeIpNotSpectrum => "edge_ip_not_spectrum",
            Rule::PortConflict => "port_conflict",
            Rule::Origin => "origin",
            Rule::OriginRefused => "origin_refused",
            Rule::Unsupported => "unsupported",
            Rule::ProxyProtocol => "proxy_protocol",
            Rule::TrafficType => "traffic_type",
            Rule::AccessRule => "access_rule",
            Rule::DuplicateAccessRule => "duplicate_access_rule",
            Rule::DuplicatePort => "duplicate_port",
            Rule::OutOfRange => "out_of_range",
            Rule::Secret => "secret",
            Rule::OriginUnresolvable => "origin_unresolvable",
            Rule::DynamicPool => "dynamic_pool",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Which check refused it.
    pub rule: Rule,
    /// Path of the offending key (`bindings[2].cidr`; indices are 0-based). Empty for a
    /// problem with the document as a whole.
    pub key: String,
    /// The offending value as written in TOML (strings quoted), when it helps. Never a secret.
    pub value: Option<String>,
    /// 1-based line in the source text, when the config was loaded from text.
    pub line: Option<u32>,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl ConfigError {
    /// An error at `key`.
    pub fn new(
        rule: Rule,
        key: impl Into<String>,
        value: Option<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            rule,
            key: key.into(),
            value,
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    /// `line 23: spectrum_apps[1].origin_direct[0] = "udp://10.0.0.1:27015": origin ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        match (&self.key[..], &self.value) {
            ("", _) => {}
            (k, Some(v)) => write!(f, "{k} = {v}: ")?,
            (k, None) => write!(f, "{k}: ")?,
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a configuration; never empty. Displays one line per error,
/// prefixed with the file name when it came from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file the configuration came from, if any.
    pub file: Option<PathBuf>,
    /// The errors, in document order as far as the checks can tell.
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Errors not tied to a file.
    pub fn new(errors: Vec<ConfigError>) -> ConfigErrors {
        debug_assert!(!errors.is_empty());
        ConfigErrors { file: None, errors }
    }

    /// The same errors, attributed to `file`.
    pub fn with_file(mut self, file: &Path) -> ConfigErrors {
        self.file = Some(file.to_path_buf());
        self
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Never true for errors returned by this crate.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.errors.iter()
    }

    /// The errors at exactly `key`.
    pub fn at<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a ConfigError> + 'a {
        self.errors.iter().filter(move |e| e.key == key)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match (&self.file, e.line) {
                (Some(file), Some(line)) => {
                    let e = ConfigError {
                        line: None,
                        ..e.clone()
                    };
                    write!(f, "{}:{line}: {e}", file.display())?;
                }
                (Some(file), None) => write!(f, "{}: {e}", file.display())?,
                (None, _) => write!(f, "{e}")?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

/// Why [`super::Config::load`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but the configuration is refused; nothing of it applies.
    #[error("{0}")]
    Invalid(ConfigErrors),
}

/// Quotes `s` as a TOML basic string, for [`ConfigError::value`].
pub(crate) fn quote(s: impl fmt::Display) -> Option<String> {
    let s = s.to_string();
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    Some(out)
}

/// Collects errors during validation.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub(crate) Vec<ConfigError>);

impl Errors {
    /// Records one error.
    pub(crate) fn push(
        &mut self,
        rule: Rule,
        key: impl Into<String>,
        value: Option<String>,
        message: impl Into<String>,
    ) {
        self.0.push(ConfigError::new(rule, key, value, message));
    }

    /// `Ok` when nothing was recorded.
    pub(crate) fn finish(self) -> Result<(), ConfigErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors::new(self.0))
        }
    }
}
