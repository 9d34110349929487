//! What can go wrong in `fastpathctl`, and the exit code of each.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | refused by the daemon (envelope `success: false`, HTTP 4xx), or a local config file that does not validate |
//! | 2 | usage errors (clap's own, and arguments only checked after parsing) and unreadable local files |
//! | 3 | the daemon is unreachable: no socket, connection refused, permission denied, or a peer that does not answer HTTP (or not in the documented shape) |
//! | 4 | the daemon failed (HTTP 5xx, e.g. it could not persist the change; nothing changed) |
//!
//! Writing the output to a pipe that was closed (`fastpathctl events --follow | head`) ends
//! the command quietly with 0; any other failure to write stdout exits 2.

use core::fmt;
use std::io;
use std::path::Path;

use serde_json::Value;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: refused by the daemon, or a local config file that does not validate.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code: usage error or unreadable local file (clap uses 2 for its own errors too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the daemon cannot be reached, or does not answer HTTP.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code: the daemon failed (HTTP 5xx).
pub const EXIT_DAEMON_FAILED: u8 = 4;

/// One error object of a refusal's envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The envelope's `code`, when there is one.
    pub code: Option<u64>,
    /// The envelope's `message` (or the whole object when it has none).
    pub message: String,
}

impl ApiError {
    /// The error objects of an envelope's `errors` array; tolerant of any shape (a daemon
    /// older or newer than this client).
    pub fn from_envelope(envelope: &Value) -> Vec<ApiError> {
        let Some(errors) = envelope.get("errors").and_then(Value::as_array) else {
            return Vec::new();
        };
        errors
            .iter()
            .map(|e| ApiError {
                code: e.get("code").and_then(Value::as_u64),
                message: match e.get("message") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => e.to_string(),
                },
            })
            .collect()
    }
}

/// Why a `fastpathctl` command did not succeed.
#[derive(Debug)]
pub enum CtlError {
    /// The daemon answered with a refusal (HTTP 4xx, or `success: false`).
    Refused {
        /// The HTTP status.
        status: u16,
        /// The envelope's errors (at least one: a refusal without any gets a generic one).
        errors: Vec<ApiError>,
        /// The whole envelope, printed on stdout with `--json`; `Null` when the body was not
        /// JSON.
        envelope: Value,
    },
    /// The daemon failed (HTTP 5xx): it could not persist or install the change.
    DaemonFailed {
        /// The HTTP status.
        status: u16,
        /// The envelope's errors.
        errors: Vec<ApiError>,
        /// The whole envelope (`Null` when the body was not JSON).
        envelope: Value,
    },
    /// The daemon could not be reached, or the peer does not speak HTTP; the message says
    /// which and what to do.
    Unreachable(String),
    /// The daemon answered, but not in the shape `docs/CONTROL.md` documents (a daemon of
    /// another version, or not the fastpath control socket).
    Unexpected(String),
    /// An argument that clap cannot check (nothing to change, conflicting inputs).
    Usage(String),
    /// A local file that cannot be read or parsed at all.
    LocalFile(String),
    /// A local configuration file that does not validate; nothing was sent.
    Invalid {
        /// The file, as given.
        file: String,
        /// Every problem, one line each (`edge.toml:45: spectrum_apps[1]...`).
        errors: Vec<String>,
    },
    /// Writing the output failed (other than a closed pipe, which ends the command quietly).
    Output(io::Error),
}

impl CtlError {
    /// The process exit code for this error (see the module docs).
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Refused { .. } | CtlError::Invalid { .. } => EXIT_REFUSED,
            CtlError::Usage(_) | CtlError::LocalFile(_) => EXIT_USAGE,
            CtlError::Unreachable(_) | CtlError::Unexpected(_) => EXIT_UNREACHABLE,
            CtlError::DaemonFailed { .. } => EXIT_DAEMON_FAILED,
            // A closed stdout is how `fastpathctl events --follow | head` ends.
            CtlError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
            CtlError::Output(_) => EXIT_USAGE,
        }
    }

    /// The lines to print on stderr, without the `fastpathctl: ` prefix. Refusals give one
    /// line per error object: `refused (code 1004): ...`.
    pub fn lines(&self) -> Vec<String> {
        fn coded(what: &str, errors: &[ApiError], status: u16) -> Vec<String> {
            if errors.is_empty() {
                return vec![format!("{what} (HTTP {status}) without an error message")];
            }
            errors
                .iter()
                .map(|e| {
                    let mut line = match e.code {
                        Some(c) => format!("{what} (code {c}): {}", e.message),
                        None => format!("{what}: {}", e.message),
                    };
                    // An endpoint this client knows and the daemon does not.
                    if e.code == Some(1404) && e.message.starts_with("no endpoint") {
                        line.push_str(" (the daemon may be older than this fastpathctl)");
                    }
                    line
                })
                .collect()
        }
        match self {
            CtlError::Refused { status, errors, .. } => coded("refused", errors, *status),
            CtlError::DaemonFailed { status, errors, .. } => {
                coded("the daemon failed", errors, *status)
            }
            CtlError::Unreachable(m)
            | CtlError::Unexpected(m)
            | CtlError::Usage(m)
            | CtlError::LocalFile(m) => vec![m.clone()],
            CtlError::Invalid { file, errors } => {
                let mut v = vec![format!("{file} does not validate; nothing was sent:")];
                v.extend(errors.iter().map(|e| format!("  {e}")));
                v
            }
            CtlError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => Vec::new(),
            CtlError::Output(e) => vec![format!("cannot write the output: {e}")],
        }
    }

    /// The envelope to print on stdout with `--json`: the daemon's own for its answers, one
    /// of the same shape (code 1004, as the daemon would refuse it) for a local config file
    /// that does not validate.
    pub fn envelope(&self) -> Option<Value> {
        match self {
            CtlError::Refused { envelope, .. } | CtlError::DaemonFailed { envelope, .. }
                if !envelope.is_null() =>
            {
                Some(envelope.clone())
            }
            CtlError::Invalid { errors, .. } => Some(serde_json::json!({
                "success": false,
                "errors": errors
                    .iter()
                    .map(|m| serde_json::json!({ "code": 1004, "message": m }))
                    .collect::<Vec<_>>(),
                "messages": ["checked locally by fastpathctl; nothing was sent"],
                "result": null,
            })),
            _ => None,
        }
    }

    /// A refusal or failure from a status and an envelope.
    pub fn from_answer(status: u16, envelope: Value) -> CtlError {
        let errors = ApiError::from_envelope(&envelope);
        if status >= 500 {
            CtlError::DaemonFailed {
                status,
                errors,
                envelope,
            }
        } else {
            CtlError::Refused {
                status,
                errors,
                envelope,
            }
        }
    }

    /// Why connecting to `socket` failed, and what to do about it.
    pub fn connect(socket: &Path, e: &io::Error) -> CtlError {
        let p = socket.display();
        let m = match e.kind() {
            io::ErrorKind::NotFound => format!(
                "no socket at {p}: is the daemon running (`fastpath run`, or `fastpath replay \
                 --control`)? Give its path with --socket or FASTPATH_SOCKET"
            ),
            io::ErrorKind::ConnectionRefused => format!(
                "connection refused on {p}: nothing listens there (a stale socket of a daemon \
                 that stopped, or not a socket at all); start the daemon or give the right \
                 --socket"
            ),
            io::ErrorKind::PermissionDenied => format!(
                "permission denied on {p}: the socket is for root (or the --control-group \
                 group); run fastpathctl as root (sudo) or as a member of that group"
            ),
            io::ErrorKind::TimedOut => {
                format!("{p} did not accept the connection within 5 s: is the daemon stuck?")
            }
            _ => format!("cannot connect to {p}: {e}"),
        };
        CtlError::Unreachable(m)
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

impl std::error::Error for CtlError {}

impl From<io::Error> for CtlError {
    /// An I/O error while writing the output.
    fn from(e: io::Error) -> CtlError {
        CtlError::Output(e)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use serde_json::json;

    #[test]
    fn exit_codes() {
        let env = json!({"success": false, "errors": [{"code": 1004, "message": "bad"}]});
        assert_eq!(CtlError::from_answer(400, env.clone()).exit_code(), 1);
        assert_eq!(CtlError::from_answer(409, env.clone()).exit_code(), 1);
        assert_eq!(CtlError::from_answer(500, env).exit_code(), 4);
        let invalid = CtlError::Invalid {
            file: "edge.toml".into(),
            errors: vec!["edge.toml:3: prefixes[0].cidr: bad".into()],
        };
        assert_eq!(invalid.exit_code(), 1);
        assert_eq!(
            invalid.lines(),
            [
                "edge.toml does not validate; nothing was sent:",
                "  edge.toml:3: prefixes[0].cidr: bad"
            ]
        );
        assert_eq!(invalid.envelope().unwrap()["errors"][0]["code"], 1004);
        assert_eq!(CtlError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CtlError::LocalFile("x".into()).exit_code(), 2);
        assert_eq!(CtlError::Unreachable("x".into()).exit_code(), 3);
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        assert_eq!(CtlError::Output(pipe).exit_code(), 0);
    }

    #[test]
    fn refusal_lines_carry_the_codes() {
        let env = json!({"success": false, "errors": [
            {"code": 1004, "message": "spectrum_apps[0].protocol: bad"},
            {"code": 1004, "message": "second"},
            {"message": "no code"},
        ]});
        let e = CtlError::from_answer(400, env);
        assert_eq!(
            e.lines(),
            [
                "refused (code 1004): spectrum_apps[0].protocol: bad",
                "refused (code 1004): second",
                "refused: no code",
            ]
        );
        assert!(e.envelope().is_some());
        let e = CtlError::from_answer(500, json!({"errors": [{"code": 1500, "message": "disk"}]}));
        assert_eq!(e.lines(), ["the daemon failed (code 1500): disk"]);
        // An envelope without errors, or no envelope at all.
        let e = CtlError::from_answer(418, Value::Null);
        assert_eq!(e.lines(), ["refused (HTTP 418) without an error message"]);
        assert!(e.envelope().is_none());
        let e = CtlError::from_answer(
            404,
            json!({"errors": [{"code": 1404, "message": "no endpoint GET /v1/stats; see"}]}),
        );
        assert!(e.lines()[0].ends_with("older than this fastpathctl)"));
    }

    #[test]
    fn connect_errors_say_what_to_do() {
        let p = Path::new("/run/fastpath/fastpath.sock");
        let m = |k| CtlError::connect(p, &io::Error::from(k)).to_string();
        assert!(m(io::ErrorKind::NotFound).starts_with("no socket at /run/fastpath/"));
        assert!(m(io::ErrorKind::ConnectionRefused).contains("connection refused"));
        assert_eq!(
            m(io::ErrorKind::PermissionDenied),
            "permission denied on /run/fastpath/fastpath.sock: the socket is for root (or the \
             --control-group group); run fastpathctl as root (sudo) or as a member of that group"
        );
        assert_eq!(
            CtlError::connect(p, &io::Error::from(io::ErrorKind::NotFound)).exit_code(),
            3
        );
    }
}
