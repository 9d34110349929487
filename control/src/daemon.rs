//! The control daemon's state: the running configuration, its version, and the one way it
//! changes ([`Controller::apply`]): compile off the hot path, refuse what does not validate or
//! is not the version the caller expected, persist atomically (write, fsync, rename, fsync the
//! directory) *before* anything changes, then install the XDP maps and publish the userspace
//! snapshot. A change that fails at any step leaves everything as it was.
//!
//! Why no frame sees a mix of two configurations: the XDP program only drops what the
//! configuration it sees refuses, and userspace repeats every check with its own snapshot, one
//! snapshot per batch. Between the two swaps a frame is either dropped by the new XDP maps (the
//! new configuration's verdict) or classified whole by one userspace snapshot (the old or the
//! new configuration's verdict).

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fastpath::tables::{SharedTables, Tables};
use serde::Serialize;

use crate::config::{Compiled, Config, ConfigErrors};

/// Who asked for a change (from `SO_PEERCRED` on the control socket).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Process id (0 when unknown).
    pub pid: i32,
}

/// Installs compiled tables somewhere besides the userspace snapshot (the XDP maps).
pub trait Installer: Send {
    /// Makes `tables` live, whole or not at all.
    ///
    /// # Errors
    /// What failed; the previous tables must still be live.
    fn install(&mut self, tables: &Tables) -> Result<(), String>;
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// `expected_version` is not the running version.
    #[error(
        "the running configuration is version {current}, not {expected}: get it again and retry"
    )]
    VersionMismatch {
        /// What the caller expected.
        expected: u64,
        /// The running version.
        current: u64,
    },
    /// The configuration does not validate.
    #[error("{0}")]
    Invalid(ConfigErrors),
    /// The configuration validates but the exhaustive verification refuses it.
    #[error("verification refused the change: {}", .0.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join("; "))]
    Verification(Vec<crate::verify::Finding>),
    /// The configuration file could not be written; nothing changed.
    #[error("cannot persist the configuration to {path}: {source}; nothing changed")]
    Persist {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The XDP maps could not be written; nothing changed.
    #[error("cannot install the XDP maps: {0}; nothing changed")]
    Install(String),
}

impl ApplyError {
    /// A stable code for the API's error objects.
    pub fn code(&self) -> u32 {
        match self {
            ApplyError::VersionMismatch { .. } => 1009,
            ApplyError::Invalid(_) => 1004,
            ApplyError::Verification(_) => 1005,
            ApplyError::Persist { .. } => 1500,
            ApplyError::Install(_) => 1501,
        }
    }
}

/// What an apply did (or would do, on a dry run).
#[derive(Debug, Clone, Serialize)]
pub struct ApplyOutcome {
    /// The version now running (unchanged on a dry run).
    pub version: u64,
    /// Whether the change was applied (false on a dry run).
    pub applied: bool,
    /// Traffic that goes somewhere else than before.
    pub diff: Vec<crate::verify::Change>,
    /// Microseconds from the request to the new snapshot being live (0 on a dry run).
    pub swap_us: u64,
}

/// One entry of the event stream.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Sequence number, from 1.
    pub seq: u64,
    /// Unix time in milliseconds.
    pub ts_ms: u64,
    /// `config_applied`, `config_refused`, `secret_rotated`, ...
    pub kind: String,
    /// Who caused it.
    pub peer: Option<Peer>,
    /// Details.
    pub detail: serde_json::Value,
}

/// The most recent events kept for `events`.
const EVENTS_KEPT: usize = 4096;

struct Events {
    next: u64,
    recent: VecDeque<Event>,
}

/// The running configuration.
#[derive(Debug, Clone)]
pub struct Running {
    /// The configuration as applied.
    pub config: Config,
    /// Its compiled form.
    pub compiled: Compiled,
    /// Its version (grows by one with every applied change).
    pub version: u64,
}

/// The control daemon's state, shared by the socket's connections.
pub struct Controller {
    running: Mutex<Running>,
    installer: Mutex<Option<Box<dyn Installer>>>,
    tables: Arc<SharedTables>,
    persist: PathBuf,
    events: Mutex<Events>,
    new_event: Condvar,
    swap_times: Mutex<fastpath::stats::NsHistogram>,
}

impl core::fmt::Debug for Controller {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Controller")
            .field("persist", &self.persist)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes `text` to `path` atomically: a temporary file in the same directory, fsync, rename
/// over `path`, fsync of the directory. On error `path` is untouched.
///
/// # Errors
/// The first I/O error.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl Controller {
    /// A controller for `running`, whose snapshot `tables` already holds, persisting to
    /// `persist`. `installer` (the XDP maps) gets every applied change.
    pub fn new(
        running: Running,
        tables: Arc<SharedTables>,
        persist: PathBuf,
        installer: Option<Box<dyn Installer>>,
    ) -> Controller {
        Controller {
            running: Mutex::new(running),
            installer: Mutex::new(installer),
            tables,
            persist,
            events: Mutex::new(Events {
                next: 1,
                recent: VecDeque::new(),
            }),
            new_event: Condvar::new(),
            swap_times: Mutex::new(fastpath::stats::NsHistogram::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the running configuration.
    pub fn running(&self) -> Running {
        self.lock().clone()
    }

    /// The userspace tables.
    pub fn tables(&self) -> &Arc<SharedTables> {
        &self.tables
    }

    /// Where the configuration is persisted.
    pub fn persist_path(&self) -> &Path {
        &self.persist
    }

    /// Records an event.
    pub fn event(&self, kind: &str, peer: Option<Peer>, detail: serde_json::Value) {
        let mut e = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let seq = e.next;
        e.next += 1;
        e.recent.push_back(Event {
            seq,
            ts_ms: now_ms(),
            kind: kind.to_string(),
            peer,
            detail,
        });
        if e.recent.len() > EVENTS_KEPT {
            e.recent.pop_front();
        }
        drop(e);
        self.new_event.notify_all();
    }

    /// Events after `since`, waiting up to `wait` for one when there are none.
    pub fn events_since(&self, since: u64, wait: Duration) -> Vec<Event> {
        let deadline = Instant::now() + wait;
        let mut e = self.events.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let out: Vec<Event> = e.recent.iter().filter(|x| x.seq > since).cloned().collect();
            let left = deadline.saturating_duration_since(Instant::now());
            if !out.is_empty() || left.is_zero() {
                return out;
            }
            e = self
                .new_event
                .wait_timeout(e, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Microseconds from request to swap of applied changes: (p50, p99, count).
    pub fn swap_times(&self) -> (f64, f64, u64) {
        let h = self.swap_times.lock().unwrap_or_else(|e| e.into_inner());
        (
            h.quantile(0.5) as f64 / 1e3,
            h.quantile(0.99) as f64 / 1e3,
            h.count(),
        )
    }

    /// Applies `change` to a copy of the running configuration and that copy as a whole (see
    /// [`Controller::apply`]). `change` refuses with its own errors by returning them.
    ///
    /// # Errors
    /// As [`Controller::apply`], or what `change` returned.
    pub fn modify(
        &self,
        peer: Option<Peer>,
        expected_version: Option<u64>,
        dry_run: bool,
        change: impl FnOnce(&mut Config) -> Result<(), ApplyError>,
    ) -> Result<ApplyOutcome, ApplyError> {
        let started = Instant::now();
        let mut running = self.lock();
        let mut next = running.config.clone();
        change(&mut next)?;
        self.apply_locked(&mut running, next, expected_version, dry_run, peer, started)
    }

    /// Makes `config` the running configuration: compiled (keeping the slots of apps and
    /// bindings that stay), verified, persisted, installed in the XDP maps, published to the
    /// queues. On a dry run only the first two, and the diff.
    ///
    /// # Errors
    /// [`ApplyError`]; nothing changed.
    pub fn apply(
        &self,
        config: Config,
        expected_version: Option<u64>,
        dry_run: bool,
        peer: Option<Peer>,
    ) -> Result<ApplyOutcome, ApplyError> {
        let started = Instant::now();
        let mut running = self.lock();
        self.apply_locked(
            &mut running,
            config,
            expected_version,
            dry_run,
            peer,
            started,
        )
    }

    fn apply_locked(
        &self,
        running: &mut Running,
        config: Config,
        expected_version: Option<u64>,
        dry_run: bool,
        peer: Option<Peer>,
        started: Instant,
    ) -> Result<ApplyOutcome, ApplyError> {
        let result = self.try_apply(running, config, expected_version, dry_run, started);
        match &result {
            Ok(o) if o.applied => self.event(
                "config_applied",
                peer,
                serde_json::json!({ "version": o.version, "changes": o.diff.len(), "swap_us": o.swap_us }),
            ),
            Ok(_) => {}
            Err(e) => self.event(
                "config_refused",
                peer,
                serde_json::json!({ "code": e.code(), "message": e.to_string() }),
            ),
        }
        result
    }

    fn try_apply(
        &self,
        running: &mut Running,
        config: Config,
        expected_version: Option<u64>,
        dry_run: bool,
        started: Instant,
    ) -> Result<ApplyOutcome, ApplyError> {
        if let Some(expected) = expected_version
            && expected != running.version
        {
            return Err(ApplyError::VersionMismatch {
                expected,
                current: running.version,
            });
        }
        let version = running.version + 1;
        let compiled = config
            .compile(version, &running.compiled.slots())
            .map_err(ApplyError::Invalid)?;
        let findings = crate::verify::verify(&compiled.spec);
        if !findings.is_empty() {
            return Err(ApplyError::Verification(findings));
        }
        let diff = crate::verify::diff(&running.compiled.spec, &compiled.spec);
        if dry_run {
            return Ok(ApplyOutcome {
                version: running.version,
                applied: false,
                diff,
                swap_us: 0,
            });
        }
        let tables = Tables::build(&compiled.spec)
            .map_err(|e| ApplyError::Install(format!("building the tables: {e}")))?;
        let text = config.to_toml_string().map_err(|e| ApplyError::Persist {
            path: self.persist.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        write_atomically(&self.persist, &text).map_err(|source| ApplyError::Persist {
            path: self.persist.clone(),
            source,
        })?;
        let mut installer = self.installer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = installer.as_mut()
            && let Err(e) = i.install(&tables)
        {
            // Put the previous file back: the running configuration did not change.
            let _ = running
                .config
                .to_toml_string()
                .map(|old| write_atomically(&self.persist, &old));
            return Err(ApplyError::Install(e));
        }
        self.tables.store(tables);
        drop(installer);
        let swap = started.elapsed();
        self.swap_times
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(swap.as_nanos() as u64);
        *running = Running {
            config,
            compiled,
            version,
        };
        Ok(ApplyOutcome {
            version,
            applied: true,
            diff,
            swap_us: swap.as_micros() as u64,
        })
    }
}
