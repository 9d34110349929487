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
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fastpath::stats::QueueStats;
use fastpath::syncookie::{CookieSecrets, SynCookies};
use fastpath::tables::{SharedTables, Tables};
use fastpath::verdict::Service;
use fastpath::worker::{EventRing, WorkerCounters, WorkerPools};
use fastpath::xsk::XskStats;
use serde::Serialize;

use crate::config::{Compiled, Config, ConfigErrors, Secret};

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

/// Installs compiled tables somewhere besides the userspace snapshot: the XDP maps, the local
/// routes of the prefixes, the proxy workers' settings. It runs before the new snapshot is
/// published, so the kernel side and the workers know a new app before the first packet is
/// classified to it.
pub trait Installer: Send {
    /// Makes `tables` (compiled from `compiled`) live, whole or not at all.
    ///
    /// # Errors
    /// What failed; the previous tables must still be live.
    fn install(&mut self, tables: &Tables, compiled: &Compiled) -> Result<(), String>;
}

/// Where changes go when the configuration is shared by a fleet (etcd, see [`crate::fleet`]):
/// a change through the socket is validated here, then committed there, and every node, this
/// one included, applies it from the store with [`Controller::apply_stored`].
pub trait ConfigStore: Send + Sync {
    /// Commits `config` as `version`, replacing the stored revision `base` (the one this node
    /// runs) only if it is still the latest. Returns the revision of the commit.
    ///
    /// # Errors
    /// [`ApplyError::StoreConflict`] when another change came first,
    /// [`ApplyError::Store`] when the store cannot be reached or refused; nothing changed.
    fn commit(&self, config: &Config, version: u64, base: i64) -> Result<i64, ApplyError>;
    /// What `stats` and `metrics` show of the store (revision, staleness, last refusal).
    fn status(&self) -> serde_json::Value;
}

/// How long a change committed to the shared configuration may take to become live on the
/// node that committed it before the socket answers that it is not.
pub const STORE_LIVE_WAIT: Duration = Duration::from_secs(10);

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
    /// Settings that size memory allocated at start.
    #[error(
        "{} cannot change while the fast path runs (they size memory allocated at start): edit the config file and restart",
        .0.join(", ")
    )]
    NeedsRestart(Vec<String>),
    /// No file to persist to (the bundled config).
    #[error(
        "this fast path runs the bundled configuration and has no file to persist changes to: start it with --config FILE to change it at run time"
    )]
    ReadOnly,
    /// No live cookie secrets to rotate.
    #[error("this daemon has no data plane with SYN cookies to rotate")]
    NoSecrets,
    /// A rotation on demand that would split a fleet (the cookies come from a fleet seed), or a
    /// new fleet seed while the previous change still keys the previous epoch.
    #[error("{0}")]
    FleetSeed(String),
    /// Another node changed the shared configuration first.
    #[error(
        "another change reached the shared configuration first (etcd revision {current}; this node's change was made on {base}): get it again and retry"
    )]
    StoreConflict {
        /// The revision this node ran and the change was made on.
        base: i64,
        /// The store's latest revision of the configuration.
        current: i64,
    },
    /// The shared configuration's store could not take the change; nothing changed.
    #[error("cannot commit the change to the shared configuration: {0}; nothing changed")]
    Store(String),
    /// Committed to the store but not live on this node in time.
    #[error("{0}")]
    NotLive(String),
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
            ApplyError::NeedsRestart(_) => 1006,
            ApplyError::ReadOnly => 1007,
            ApplyError::NoSecrets => 1008,
            ApplyError::FleetSeed(_) => 1012,
            ApplyError::StoreConflict { .. } => 1009,
            ApplyError::Store(_) => 1503,
            ApplyError::NotLive(_) => 1502,
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
    /// Microseconds from the request's arrival (its head read) to the new snapshot being live
    /// (0 on a dry run): reading and parsing the body, validation, verification, the fsync'd
    /// write, the XDP maps and the swap.
    pub swap_us: u64,
    /// On a dry run: whether the change would be applied (it validates and verifies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_apply: Option<bool>,
    /// On a dry run: the exhaustive verification's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The Spectrum apps as applied (or as they would be): with the edge IPs the edge
    /// assigned, the origin addresses it resolved and their timestamps.
    #[serde(skip)]
    pub apps: Vec<crate::config::SpectrumApp>,
    /// With a shared configuration: the store's revision of the commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_revision: Option<i64>,
}

/// What the exhaustive verification found.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// No finding.
    pub passed: bool,
    /// Each problem with an example packet.
    pub findings: Vec<crate::verify::Finding>,
}

/// What a secret rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct Rotated {
    /// Always true (a failed rotation is an error).
    pub rotated: bool,
    /// Whether the new secret was written to the config file (it holds a fixed secret, or one
    /// was given).
    pub persisted: bool,
    /// The configuration version now running.
    pub version: u64,
}

/// One queue of a running data plane, as the control socket sees it.
#[derive(Debug, Clone)]
pub struct QueueHandle {
    /// The RX queue.
    pub queue: u32,
    /// The core its thread is pinned to.
    pub core: Option<usize>,
    /// The pipeline's counters.
    pub stats: Arc<QueueStats>,
    /// The AF_XDP socket's counters (live path only).
    pub socket: Option<Arc<XskStats>>,
}

/// One worker of a running data plane.
#[derive(Debug, Clone)]
pub struct WorkerHandle {
    /// Its service.
    pub service: Service,
    /// Its index in the service's pool.
    pub index: u16,
    /// Its counters.
    pub counters: Arc<WorkerCounters>,
}

/// What the XDP program counted.
#[derive(Debug, Clone, Default)]
pub struct XdpCounts {
    /// Frames per reason (dropped or passed in the kernel), indexed by `Reason as usize`.
    pub reasons: Vec<u64>,
    /// Frames redirected to the AF_XDP sockets.
    pub redirected: u64,
    /// Frames passed because their queue had no socket.
    pub no_socket: u64,
}

/// Reads the XDP program's counters.
pub type XdpReader = Box<dyn Fn() -> Option<XdpCounts> + Send + Sync>;

/// One app's (or the CDN's) traffic through the proxy workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppTraffic {
    /// CDN or Spectrum.
    pub service: Option<Service>,
    /// The app's slot (`None` for the CDN).
    pub app_slot: Option<u32>,
    /// Connections and UDP flows open now.
    pub open: u64,
    /// Connections opened.
    pub connects: u64,
    /// Payload bytes from clients.
    pub bytes_ingress: u64,
    /// Payload bytes to clients.
    pub bytes_egress: u64,
    /// Connections that ended, by status code.
    pub statuses: Vec<(u16, u64)>,
}

/// Reads the proxy workers' per-app traffic.
pub type TrafficReader = Box<dyn Fn() -> Vec<AppTraffic> + Send + Sync>;

/// Reads the proxy workers' connection analytics.
pub type AnalyticsReader = Box<dyn Fn() -> fastpath::worker::Analytics + Send + Sync>;

/// A running data plane's counters, registered with [`Controller::set_data_plane`].
pub struct DataPlane {
    /// `xdp` (live on an interface) or `replay`.
    pub kind: &'static str,
    /// The interface, when live.
    pub iface: Option<String>,
    /// Its queues.
    pub queues: Vec<QueueHandle>,
    /// Its workers.
    pub workers: Vec<WorkerHandle>,
    /// The worker queues (for their backlog).
    pub pools: Option<WorkerPools>,
    /// The XDP program's counters, when live.
    pub xdp: Option<XdpReader>,
    /// The workers' connection-event rings, drained by
    /// [`Controller::drain_connection_events`].
    pub events: Vec<EventRing>,
    /// The proxy workers' per-app traffic, when live.
    pub traffic: Option<TrafficReader>,
    /// The connection analytics of real connections, when live.
    pub analytics: Option<AnalyticsReader>,
}

impl DataPlane {
    /// The data plane of an in-process replay: its one queue and its workers (`kind`
    /// `replay`, no XDP program).
    pub fn of_replay(replay: &mut fastpath::replay::Replay) -> DataPlane {
        let stats = replay.stats();
        let workers = replay.workers_mut();
        DataPlane {
            kind: "replay",
            iface: None,
            queues: vec![QueueHandle {
                queue: 0,
                core: None,
                stats,
                socket: None,
            }],
            workers: workers
                .iter()
                .map(|w| WorkerHandle {
                    service: w.service(),
                    index: w.index(),
                    counters: w.counters(),
                })
                .collect(),
            pools: None,
            xdp: None,
            events: workers.iter().map(|w| w.events()).collect(),
            traffic: None,
            analytics: None,
        }
    }
}

impl core::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DataPlane")
            .field("kind", &self.kind)
            .field("iface", &self.iface)
            .field("queues", &self.queues.len())
            .finish_non_exhaustive()
    }
}

/// The cookie state a running data plane follows.
#[derive(Debug, Clone)]
pub struct LiveSecrets {
    /// The seed it started with (keys the flow hash).
    pub seed: [u8; 32],
    /// The published secrets every queue follows.
    pub secrets: Arc<CookieSecrets>,
    /// The data plane's clock in seconds, when it is not the wall clock (a replay runs on its
    /// capture's timestamps): rotations and `explain` use it.
    pub clock: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl LiveSecrets {
    /// The data plane's time in seconds.
    pub fn now_secs(&self) -> u64 {
        self.clock
            .as_ref()
            .map_or_else(now_secs, |c| c.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Writes into `config`, about to replace `running`'s configuration at `now_secs`, the fleet
/// seed generation its fleet seed needs (see [`SynCookies::fleet_from`]): the current and the
/// previous epoch keep the secrets they have (their cookies still validate), and a new seed (a
/// new value, or new contents of its file) keys every epoch from the next one on. When the
/// generation `config` carries (usually the running one, carried over) does not give that,
/// `previous_fleet_seed` becomes the seed that keys the current epoch and `fleet_seed_from` the
/// next epoch. Every node then derives the same secret for every epoch from the configuration
/// alone, whenever it learns of the change or starts. A `fleet_seed_from` the writer gave
/// (other than the running one) is respected as given.
///
/// A seed held in a file whose contents changed has no other copy of its old value: that is
/// written inline (hex). It keys only epochs before `fleet_seed_from`, whose cookies stop
/// validating one epoch after it; `GET /v1/config` never shows it.
///
/// # Errors
/// [`ApplyError::FleetSeed`] when the seed changes in the epoch the previous change took
/// effect: the seed before that one still keys the previous epoch, and a generation holds
/// only two seeds. The change is accepted from the next epoch on.
fn fleet_generation(
    running: &Running,
    config: &mut Config,
    now_secs: u64,
) -> Result<(), ApplyError> {
    type Generation = Option<([u8; 32], u64)>;
    let old = &running.compiled.cookies;
    let was = &running.config.syn_cookies;
    let sc = &mut config.syn_cookies;
    let (true, Some(old_seed), Some(new)) = (old.fleet, old.seed, sc.fleet_seed.as_ref()) else {
        return Ok(());
    };
    if sc.fleet_seed_from.is_some()
        && (sc.fleet_seed_from != was.fleet_seed_from
            || sc.previous_fleet_seed != was.previous_fleet_seed)
    {
        return Ok(());
    }
    // A seed that cannot be read is refused by validation, which names it.
    let Ok(new_seed) = new.seed_bytes() else {
        return Ok(());
    };
    let carried: Generation = match (&sc.previous_fleet_seed, sc.fleet_seed_from) {
        (Some(p), Some(from)) => match p.seed_bytes() {
            Ok(p) => Some((p, from)),
            Err(_) => return Ok(()),
        },
        _ => None,
    };
    let seed_at = |seed: [u8; 32], g: Generation, epoch: u64| match g {
        Some((p, from)) if epoch < from => p,
        _ => seed,
    };
    let running_gen: Generation = old.previous_seed.map(|p| (p, old.seed_from));
    let old_at = |epoch| seed_at(old_seed, running_gen, epoch);
    let e = now_secs / u64::from(old.rotate_secs.max(1));
    let before = e.saturating_sub(1);
    // What every epoch from the previous one on must get: what it has up to the current one,
    // then the new seed (or, when the seed did not change, what it has).
    let want = |epoch| {
        if epoch <= e || new_seed == old_seed {
            old_at(epoch)
        } else {
            new_seed
        }
    };
    // Two step functions of the epoch agree from `before` on if they agree there, at the
    // next epoch and at each one's step after it.
    let fits = |g: Generation| {
        [
            Some(before),
            Some(e),
            Some(e + 1),
            g.map(|(_, f)| f),
            running_gen.map(|(_, f)| f),
        ]
        .into_iter()
        .flatten()
        .filter(|&x| x >= before)
        .all(|x| seed_at(new_seed, g, x) == want(x))
    };
    if fits(carried) {
        return Ok(());
    }
    if fits(running_gen) {
        sc.previous_fleet_seed.clone_from(&was.previous_fleet_seed);
        sc.fleet_seed_from = was.fleet_seed_from;
        return Ok(());
    }
    let keyed_now = old_at(e);
    if old_at(before) != keyed_now {
        let rotate = u64::from(old.rotate_secs.max(1));
        let next = (e + 1) * rotate;
        return Err(ApplyError::FleetSeed(format!(
            "the last new fleet seed took effect at unix second {} (epoch {e}) and the seed \
             before it still keys the cookies of the previous epoch: change the fleet seed \
             again from unix second {next} (in {} s), or give previous_fleet_seed and \
             fleet_seed_from with it",
            e * rotate,
            next.saturating_sub(now_secs)
        )));
    }
    let candidate = match (&was.previous_fleet_seed, running_gen) {
        (Some(p), Some((_, from))) if e < from => p,
        _ => was.fleet_seed.as_ref().unwrap_or(new),
    };
    let previous = if candidate.seed_bytes() == Ok(keyed_now) {
        candidate.clone()
    } else {
        Secret(hex(&keyed_now))
    };
    sc.previous_fleet_seed = Some(previous);
    sc.fleet_seed_from = Some(e + 1);
    Ok(())
}

/// The settings of `old` and `new` that differ and cannot change at run time, as
/// `key: old -> new`.
pub fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    fn diff(out: &mut Vec<String>, section: &str, a: &serde_json::Value, b: &serde_json::Value) {
        let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
            return;
        };
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            // The generation of a fleet seed changes with it, at run time.
            if k == "secret" || k == "previous_fleet_seed" || k == "fleet_seed_from" {
                continue;
            }
            // A fleet seed's value changes at run time (at the next epoch boundary); switching
            // between a fleet seed and a node's secret changes the flow hash: a restart.
            if k == "fleet_seed" {
                if a.get(k).is_some() != b.get(k).is_some() {
                    out.push(format!(
                        "{section}.fleet_seed: {} -> {}",
                        if a.get(k).is_some() { "set" } else { "(none)" },
                        if b.get(k).is_some() { "set" } else { "(none)" }
                    ));
                }
                continue;
            }
            let (x, y) = (a.get(k), b.get(k));
            if x != y {
                let show = |v: Option<&serde_json::Value>| {
                    v.map_or_else(|| "(default)".to_string(), ToString::to_string)
                };
                out.push(format!("{section}.{k}: {} -> {}", show(x), show(y)));
            }
        }
    }
    fn j<T: Serialize>(t: &T) -> serde_json::Value {
        serde_json::to_value(t).unwrap_or(serde_json::Value::Null)
    }
    let mut out = Vec::new();
    diff(
        &mut out,
        "syn_cookies",
        &j(&old.syn_cookies),
        &j(&new.syn_cookies),
    );
    diff(&mut out, "pipeline", &j(&old.pipeline), &j(&new.pipeline));
    diff(&mut out, "flows", &j(&old.flows), &j(&new.flows));
    diff(&mut out, "workers", &j(&old.workers), &j(&new.workers));
    out
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

/// The most recent connection events kept for `events`.
const EVENTS_KEPT: usize = 4096;
/// The most recent configuration events kept (apart, so a connection flood cannot push them
/// out).
const CONTROL_EVENTS_KEPT: usize = 1024;

/// Which events `events` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventFilter {
    /// All of them.
    #[default]
    All,
    /// Changes of the configuration and secrets (`config_applied`, `config_refused`,
    /// `secret_rotated`).
    Control,
    /// The workers' connection events.
    Connections,
}

impl EventFilter {
    /// From `all`, `control` or `connections`.
    pub fn parse(s: &str) -> Option<EventFilter> {
        match s {
            "all" => Some(EventFilter::All),
            "control" | "config" => Some(EventFilter::Control),
            "connections" | "connection" => Some(EventFilter::Connections),
            _ => None,
        }
    }
}

fn is_control(kind: &str) -> bool {
    kind.starts_with("config_") || kind.starts_with("secret_")
}

struct Events {
    next: u64,
    connections: VecDeque<Event>,
    control: VecDeque<Event>,
    /// Connection events not kept because more arrived in one drain than are kept.
    skipped: u64,
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
    /// The running configuration, replaced whole by each change (readers clone the `Arc`).
    running: Mutex<Arc<Running>>,
    installer: Mutex<Option<Box<dyn Installer>>>,
    tables: Arc<SharedTables>,
    persist: Option<PathBuf>,
    events: Mutex<Events>,
    new_event: Condvar,
    swap_times: Mutex<fastpath::stats::NsHistogram>,
    secrets: Option<LiveSecrets>,
    data_plane: Mutex<Option<Arc<DataPlane>>>,
    /// The Spectrum analytics of the drained connection events.
    analytics: Mutex<crate::analytics::Store>,
    /// The configuration version at which each binding (by id) last changed: it is
    /// `provisioning` until every queue runs that version.
    binding_versions: Mutex<std::collections::HashMap<String, u64>>,
    /// How origin names are looked up.
    resolver: Arc<dyn crate::resolve::Resolver>,
    /// The last lookup of each app's origin name, by app id.
    dns: Mutex<std::collections::HashMap<String, DnsStatus>>,
    started: Instant,
    /// Where changes are committed when the configuration is shared by a fleet.
    store: Option<Arc<dyn ConfigStore>>,
    /// The store's revision of the running configuration (0: none).
    store_revision: AtomicI64,
    /// Signalled whenever a stored revision becomes live.
    live: Condvar,
}

/// The state of an app's origin name: when it was last looked up and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct DnsStatus {
    /// The name looked up.
    pub name: String,
    /// `ok` or `unresolvable` (the app keeps its last addresses).
    pub state: &'static str,
    /// When the last lookup ran (RFC 3339).
    pub checked_on: String,
    /// When the addresses last changed (RFC 3339), if they did since the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_on: Option<String>,
    /// Why the last lookup failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the next lookup is due (`None`: at once).
    #[serde(skip)]
    next: Option<Instant>,
}

impl core::fmt::Debug for Controller {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Controller")
            .field("persist", &self.persist)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The first line of a configuration file the daemon wrote: it carries the version, so that a
/// restart continues the numbering (and a stale `expected_version` stays stale).
pub fn version_header(version: u64) -> String {
    format!(
        "# fastpath configuration version {version}. The control socket rewrites this file on every \
         accepted change (comments are not kept).\n"
    )
}

/// The version in a file's [`version_header`], if it has one.
pub fn version_of(text: &str) -> Option<u64> {
    text.lines()
        .next()?
        .strip_prefix("# fastpath configuration version ")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The second line of a configuration file that a node wrote from the shared configuration:
/// the store's revision it holds, so that a node restarted while the store is down knows what
/// it serves.
pub fn store_header(revision: i64) -> String {
    format!(
        "# applied from the shared configuration, etcd revision {revision}: change it through the \
         control socket, not here.\n"
    )
}

/// The store's revision in a file's [`store_header`], if it has one.
pub fn store_revision_of(text: &str) -> Option<i64> {
    text.lines()
        .nth(1)?
        .strip_prefix("# applied from the shared configuration, etcd revision ")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
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
    // The file may hold the cookie secret: a new one is private to its owner, an existing
    // one keeps its mode.
    let mode = std::fs::metadata(path).map_or(0o600, |m| {
        use std::os::unix::fs::PermissionsExt as _;
        m.permissions().mode() & 0o7777
    });
    // A temporary file left by a crash of an earlier process with the same pid.
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
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
        Self::with_persist(running, tables, Some(persist), installer)
    }

    /// A controller with no file to persist to: it answers reads and dry runs and refuses
    /// changes ([`ApplyError::ReadOnly`]).
    pub fn read_only(
        running: Running,
        tables: Arc<SharedTables>,
        installer: Option<Box<dyn Installer>>,
    ) -> Controller {
        Self::with_persist(running, tables, None, installer)
    }

    fn with_persist(
        running: Running,
        tables: Arc<SharedTables>,
        persist: Option<PathBuf>,
        installer: Option<Box<dyn Installer>>,
    ) -> Controller {
        let binding_versions = running
            .config
            .bindings
            .iter()
            .map(|b| (b.effective_id(), running.version))
            .collect();
        Controller {
            binding_versions: Mutex::new(binding_versions),
            running: Mutex::new(Arc::new(running)),
            installer: Mutex::new(installer),
            tables,
            persist,
            secrets: None,
            data_plane: Mutex::new(None),
            analytics: Mutex::new(crate::analytics::Store::default()),
            started: Instant::now(),
            events: Mutex::new(Events {
                next: 1,
                connections: VecDeque::new(),
                control: VecDeque::new(),
                skipped: 0,
            }),
            new_event: Condvar::new(),
            swap_times: Mutex::new(fastpath::stats::NsHistogram::default()),
            resolver: Arc::new(crate::resolve::SystemResolver),
            dns: Mutex::new(std::collections::HashMap::new()),
            store: None,
            store_revision: AtomicI64::new(0),
            live: Condvar::new(),
        }
    }

    /// Commits changes through `store` (at `revision`, the store's revision of the running
    /// configuration) instead of applying them here: they become live when the store hands
    /// them back ([`Controller::apply_stored`]).
    #[must_use]
    pub fn with_store(mut self, store: Arc<dyn ConfigStore>, revision: i64) -> Controller {
        self.store = Some(store);
        *self.store_revision.get_mut() = revision;
        self
    }

    /// The store's status, when the configuration is shared.
    pub fn store_status(&self) -> Option<serde_json::Value> {
        self.store.as_ref().map(|s| s.status())
    }

    /// The store's revision of the running configuration (0 without a store).
    pub fn store_revision(&self) -> i64 {
        self.store_revision.load(Ordering::Acquire)
    }

    /// Records that the running configuration is the store's `revision` (the same document
    /// under another revision: nothing to apply).
    pub fn set_store_revision(&self, revision: i64) {
        let _g = self.lock();
        self.store_revision.store(revision, Ordering::Release);
        self.live.notify_all();
    }

    /// Makes `config`, revision `revision` of the shared configuration, the running one as
    /// `version` (or the next version here, if that is not above the running one): the same
    /// steps as [`Controller::apply`] (validate, verify, persist to this node's file, install,
    /// publish), without the caller's version check.
    ///
    /// # Errors
    /// [`ApplyError`]; nothing changed (the node stays on its last good revision).
    pub fn apply_stored(
        &self,
        config: Config,
        version: u64,
        revision: i64,
    ) -> Result<ApplyOutcome, ApplyError> {
        let started = Instant::now();
        let mut running = self.lock();
        if config == running.config {
            // The same configuration under another revision: nothing to apply.
            self.store_revision.store(revision, Ordering::Release);
            let version = running.version;
            drop(running);
            self.live.notify_all();
            return Ok(ApplyOutcome {
                version,
                applied: true,
                diff: Vec::new(),
                swap_us: 0,
                would_apply: None,
                verification: None,
                apps: Vec::new(),
                committed_revision: None,
            });
        }
        let version = version.max(running.version + 1);
        let result = self.try_apply(
            &mut running,
            config,
            None,
            false,
            started,
            Some((version, revision)),
        );
        match &result {
            Ok(o) => {
                self.store_revision.store(revision, Ordering::Release);
                self.event(
                    "config_applied",
                    None,
                    serde_json::json!({ "version": o.version, "changes": o.diff.len(), "swap_us": o.swap_us, "revision": revision }),
                );
            }
            Err(e) => self.event(
                "config_refused",
                None,
                serde_json::json!({ "code": e.code(), "message": e.to_string(), "revision": revision }),
            ),
        }
        drop(running);
        self.live.notify_all();
        result
    }

    /// After a change committed to the store: waits (up to [`STORE_LIVE_WAIT`]) until this
    /// node runs its revision or a later one, and answers with the time to live.
    fn await_live(
        &self,
        result: Result<ApplyOutcome, ApplyError>,
        received: Instant,
    ) -> Result<ApplyOutcome, ApplyError> {
        let mut o = result?;
        let Some(rev) = o.committed_revision else {
            return Ok(o);
        };
        let g = self.lock();
        let (g, wait) = self
            .live
            .wait_timeout_while(g, STORE_LIVE_WAIT, |_| self.store_revision() < rev)
            .unwrap_or_else(|e| e.into_inner());
        if wait.timed_out() {
            return Err(ApplyError::NotLive(format!(
                "the change was committed to the shared configuration (etcd revision {rev}) but is \
                 not live on this node after {} s: see the store's status in stats",
                STORE_LIVE_WAIT.as_secs()
            )));
        }
        o.version = g.version;
        o.swap_us = received.elapsed().as_micros() as u64;
        Ok(o)
    }

    /// Looks origin names up with `r` instead of the system resolver.
    #[must_use]
    pub fn with_resolver(mut self, r: Arc<dyn crate::resolve::Resolver>) -> Controller {
        self.resolver = r;
        self
    }

    /// The last lookup of app `id`'s origin name, if it has one.
    pub fn dns_status(&self, id: &str) -> Option<DnsStatus> {
        self.dns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Looks up again every origin name whose TTL ran out (outside the configuration lock),
    /// and applies the addresses that changed as one change, with a `config_origin_dns_changed`
    /// event per app. A name that fails keeps its last addresses: the app says so in its
    /// `origin_dns_status`, an `config_origin_dns_unresolvable` event is sent, and it is tried again
    /// after `min(ttl, 60)` seconds. Returns how long until the next lookup is due (at most
    /// 60 s).
    pub fn refresh_origin_dns(&self) -> Duration {
        let now = Instant::now();
        let running = self.running();
        let mut due: Vec<(String, crate::config::OriginDns)> = Vec::new();
        {
            let mut st = self.dns.lock().unwrap_or_else(|e| e.into_inner());
            st.retain(|id, s| {
                running
                    .config
                    .spectrum_apps
                    .iter()
                    .any(|a| a.id == *id && a.origin_dns.as_ref().is_some_and(|d| d.name == s.name))
            });
            for a in &running.config.spectrum_apps {
                let Some(d) = &a.origin_dns else { continue };
                let entry = st.entry(a.id.clone()).or_insert_with(|| DnsStatus {
                    name: d.name.clone(),
                    state: "ok",
                    checked_on: crate::analytics::format_time(now_ms() / 1000 * 1000),
                    changed_on: None,
                    error: None,
                    // Looked up at once: at start, the file's addresses may be old.
                    next: None,
                });
                if entry.next.is_none_or(|n| n <= now) {
                    due.push((a.id.clone(), d.clone()));
                }
            }
        }
        let mut changed: Vec<(String, crate::config::OriginDns, Vec<core::net::IpAddr>)> =
            Vec::new();
        for (id, d) in due {
            let result = crate::resolve::resolve(&*self.resolver, &d);
            let stamp = crate::analytics::format_time(now_ms() / 1000 * 1000);
            let mut st = self.dns.lock().unwrap_or_else(|e| e.into_inner());
            let Some(s) = st.get_mut(&id) else { continue };
            s.checked_on = stamp.clone();
            match result {
                Ok(ips) => {
                    s.state = "ok";
                    s.error = None;
                    s.next = Some(now + Duration::from_secs(u64::from(d.ttl())));
                    if ips != d.resolved {
                        s.changed_on = Some(stamp);
                        changed.push((id, d, ips));
                    }
                }
                Err(msg) => {
                    let first = s.state != "unresolvable";
                    s.state = "unresolvable";
                    s.error = Some(msg.clone());
                    s.next = Some(now + Duration::from_secs(u64::from(d.ttl().min(60))));
                    drop(st);
                    if first {
                        self.event(
                            "config_origin_dns_unresolvable",
                            None,
                            serde_json::json!({ "app": id, "name": d.name, "error": msg, "keeping": d.resolved }),
                        );
                    }
                }
            }
        }
        if !changed.is_empty() {
            let result = self.modify(None, None, false, |cfg| {
                for (id, d, ips) in &changed {
                    // Only if the app still has that name (an edit may have raced the lookup).
                    if let Some(x) = cfg
                        .spectrum_apps
                        .iter_mut()
                        .find(|a| a.id == *id)
                        .and_then(|a| a.origin_dns.as_mut())
                        .filter(|x| x.name == d.name && x.kind == d.kind)
                    {
                        x.resolved.clone_from(ips);
                    }
                }
                Ok(())
            });
            for (id, d, ips) in &changed {
                match &result {
                    Ok(o) => self.event(
                        "config_origin_dns_changed",
                        None,
                        serde_json::json!({ "app": id, "name": d.name, "old": d.resolved, "new": ips, "version": o.version }),
                    ),
                    Err(e) => {
                        // E.g. a new address the origin policy refuses: keep the old ones.
                        let mut st = self.dns.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(s) = st.get_mut(id) {
                            s.state = "unresolvable";
                            s.error = Some(format!("new addresses {ips:?} refused: {e}"));
                        }
                    }
                }
            }
        }
        let st = self.dns.lock().unwrap_or_else(|e| e.into_inner());
        let soonest = st.values().filter_map(|s| s.next).min();
        soonest
            .map_or(Duration::from_secs(60), |n| {
                n.saturating_duration_since(Instant::now())
            })
            .min(Duration::from_secs(60))
    }

    fn lock(&self) -> MutexGuard<'_, Arc<Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running configuration (shared: cheap to take, even with 100k access rules).
    pub fn running(&self) -> Arc<Running> {
        Arc::clone(&self.lock())
    }

    /// The userspace tables.
    pub fn tables(&self) -> &Arc<SharedTables> {
        &self.tables
    }

    /// Where the configuration is persisted (`None`: read-only).
    pub fn persist_path(&self) -> Option<&Path> {
        self.persist.as_deref()
    }

    /// Makes secret rotations reach the data plane through `secrets`.
    #[must_use]
    pub fn with_secrets(mut self, secrets: LiveSecrets) -> Controller {
        self.secrets = Some(secrets);
        self
    }

    /// The cookie state the data plane follows, when there is one.
    pub fn secrets(&self) -> Option<&LiveSecrets> {
        self.secrets.as_ref()
    }

    /// Registers the running data plane whose counters `stats` and `metrics` report.
    pub fn set_data_plane(&self, dp: DataPlane) {
        *self.data_plane.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(dp));
    }

    /// The registered data plane.
    pub fn data_plane(&self) -> Option<Arc<DataPlane>> {
        self.data_plane
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Moves the workers' connection events into the event stream (`connect`, `disconnect`,
    /// `originError`, `clientFiltered`, with the Spectrum event log's status codes); returns
    /// how many. Called by the daemon's main loop every few tens of milliseconds, off the hot
    /// path; a ring that filled up meanwhile dropped its oldest events and counted them.
    pub fn drain_connection_events(&self) -> usize {
        let Some(dp) = self.data_plane() else {
            return 0;
        };
        let mut popped: Vec<fastpath::worker::Event> = Vec::new();
        for ring in &dp.events {
            while let Some(e) = ring.pop() {
                if e.kind != fastpath::worker::EventKind::Progress {
                    popped.push(e);
                }
            }
        }
        if popped.is_empty() {
            return 0;
        }
        popped.sort_by_key(|e| e.ts_ns);
        let skip = popped.len().saturating_sub(EVENTS_KEPT);
        let apps: std::collections::HashMap<u32, String> = self
            .lock()
            .compiled
            .spec
            .apps
            .iter()
            .map(|a| (a.slot, a.id.clone()))
            .collect();
        let addr = |a: std::net::IpAddr, p: u16| std::net::SocketAddr::new(a, p).to_string();
        {
            // Every drained event counts in the analytics, also those the event log cannot keep.
            let mut an = self.analytics.lock().unwrap_or_else(|e| e.into_inner());
            for e in popped
                .iter()
                .filter(|e| e.service == fastpath::verdict::Service::Spectrum)
            {
                an.record(&crate::analytics::Record {
                    ts_ms: e.ts_ns / 1_000_000,
                    app: apps.get(&e.app_slot).map(String::as_str),
                    event: e.kind.as_str(),
                    ip_version: if e.key.is_v6() { 6 } else { 4 },
                    bytes_ingress: e.bytes_ingress,
                    bytes_egress: e.bytes_egress,
                    duration_ms: (e.kind != fastpath::worker::EventKind::Connect)
                        .then_some(e.duration_ns / 1_000_000),
                });
            }
        }
        let mut ev = self.events.lock().unwrap_or_else(|e| e.into_inner());
        ev.skipped += skip as u64;
        for e in &popped[skip..] {
            let k = &e.key;
            let detail = serde_json::json!({
                "status": e.status,
                "protocol": if k.proto == 6 { "tcp" } else { "udp" },
                "client": addr(k.src_addr(), k.sport),
                "edge": addr(k.dst_addr(), k.dport),
                "service": e.service.as_str(),
                "app": apps.get(&e.app_slot),
                "ip_version": if k.is_v6() { 6 } else { 4 },
                "origin": e.origin.map(|o| o.to_string()),
                "bytes_ingress": e.bytes_ingress,
                "bytes_egress": e.bytes_egress,
                "packets": e.packets,
                "duration_ms": e.duration_ns / 1_000_000,
            });
            // Live, a connection event carries the worker's own time; a replay's events are
            // stamped when they are drained (the capture's clock is not the reader's).
            let at = if dp.kind == "xdp" {
                e.ts_ns / 1_000_000
            } else {
                now_ms()
            };
            Self::push_at(&mut ev, at, e.kind.as_str(), None, detail);
        }
        drop(ev);
        self.new_event.notify_all();
        popped.len() - skip
    }

    /// A binding's provisioning state, as the BYOIP API reports it: `provisioning` from the
    /// change that made it until every queue of the data plane runs a configuration at least
    /// that new (a queue takes a new snapshot at its next batch, or within 100 ms when idle),
    /// then `active`. Without a data plane the running configuration is all there is:
    /// `active`.
    pub fn binding_state(&self, id: &str) -> &'static str {
        let since = self
            .binding_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
            .unwrap_or(0);
        let Some(dp) = self.data_plane() else {
            return "active";
        };
        let live = dp.queues.iter().map(|q| q.stats.tables_version.get()).min();
        match live {
            Some(v) if v < since => "provisioning",
            _ => "active",
        }
    }

    /// Answers a Spectrum analytics query (`summary`, or `bytime` when `bytime`) over the
    /// connection events drained so far.
    ///
    /// # Errors
    /// [`crate::analytics::QueryError`] for a bad parameter.
    pub fn analytics(
        &self,
        q: &std::collections::HashMap<String, String>,
        bytime: bool,
    ) -> Result<serde_json::Value, crate::analytics::QueryError> {
        self.drain_connection_events();
        let now = now_ms();
        let query = crate::analytics::Query::parse(q, bytime, now)?;
        let colo = self.lock().config.node.name.clone();
        Ok(self
            .analytics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .query(&query, &colo, now))
    }

    /// Seconds since the controller was made.
    pub fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The running configuration as the socket shows it: the cookie secret omitted.
    pub fn public_config(&self) -> (u64, Config) {
        let r = self.lock();
        let mut c = r.config.clone();
        c.syn_cookies.secret = None;
        // A fleet seed given inline is secret too; a path to its file is not.
        if c.syn_cookies
            .fleet_seed
            .as_ref()
            .is_some_and(|f| !f.is_path())
        {
            c.syn_cookies.fleet_seed = None;
        }
        if c.syn_cookies
            .previous_fleet_seed
            .as_ref()
            .is_some_and(|f| !f.is_path())
        {
            c.syn_cookies.previous_fleet_seed = None;
        }
        (r.version, c)
    }

    /// Makes a new SYN-cookie secret current at once, keeping the previous one valid (see
    /// [`fastpath::syncookie::SynCookies::rotated`]): `seed`, else a random one. When the
    /// configuration holds a fixed secret, or `seed` is given, the new one is persisted first
    /// (a failed write changes nothing).
    ///
    /// # Errors
    /// [`ApplyError::NoSecrets`] without a data plane, [`ApplyError::ReadOnly`] or
    /// [`ApplyError::Persist`] when it must be persisted and cannot be.
    pub fn rotate_secret(
        &self,
        peer: Option<Peer>,
        seed: Option<[u8; 32]>,
    ) -> Result<Rotated, ApplyError> {
        let live = self.secrets.as_ref().ok_or(ApplyError::NoSecrets)?;
        let given = seed.is_some();
        let seed = match seed {
            Some(s) => s,
            None => fastpath::syncookie::SynCookies::random_seed()
                .map_err(|e| ApplyError::Install(format!("no randomness for a secret: {e}")))?,
        };
        let started = Instant::now();
        let mut running = self.lock();
        if let Some(f) = running.config.syn_cookies.fleet_seed.clone() {
            // A fleet rotates to a new seed at an epoch boundary, every node alike.
            if f.is_path() {
                return Err(ApplyError::FleetSeed(format!(
                    "the cookies come from the fleet seed in {}: write a new seed there on \
                     every node and apply the configuration (PUT /v1/config); it takes effect \
                     at the next epoch boundary",
                    f.0.trim()
                )));
            }
            if !given {
                return Err(ApplyError::FleetSeed(
                    "the cookies come from syn_cookies.fleet_seed: a random seed on one node \
                     would split the fleet; give the new fleet seed ({\"secret\": HEX64}) to \
                     every node: it takes effect at the next epoch boundary"
                        .into(),
                ));
            }
            let mut next = running.config.clone();
            next.syn_cookies.fleet_seed = Some(Secret(hex(&seed)));
            // The controller writes the generation: the new seed keys the epochs from the next
            // one on (`fleet_seed_from`), on every node alike.
            let o = self.apply_locked(&mut running, next, None, false, peer, started);
            drop(running);
            let o = self.await_live(o, started)?;
            let from = self.running().config.syn_cookies.fleet_seed_from;
            self.event(
                "secret_rotated",
                peer,
                serde_json::json!({ "persisted": true, "version": o.version, "fleet": true, "from_epoch_boundary": true, "from_epoch": from }),
            );
            return Ok(Rotated {
                rotated: true,
                persisted: true,
                version: o.version,
            });
        }
        let persist = given || running.config.syn_cookies.secret.is_some();
        let mut version = running.version;
        if persist {
            let mut next = running.config.clone();
            next.syn_cookies.secret = Some(Secret(hex(&seed)));
            // The secret changes through this apply, which rotates the data plane.
            let o = self.apply_locked(&mut running, next, None, false, peer, started);
            drop(running);
            version = self.await_live(o, started)?.version;
        } else {
            live.secrets.rotate(seed, live.now_secs());
            drop(running);
        }
        self.event(
            "secret_rotated",
            peer,
            serde_json::json!({ "persisted": persist, "version": version }),
        );
        Ok(Rotated {
            rotated: true,
            persisted: persist,
            version,
        })
    }

    /// Records an event.
    pub fn event(&self, kind: &str, peer: Option<Peer>, detail: serde_json::Value) {
        let mut e = self.events.lock().unwrap_or_else(|e| e.into_inner());
        Self::push(&mut e, kind, peer, detail);
        drop(e);
        self.new_event.notify_all();
    }

    fn push(e: &mut Events, kind: &str, peer: Option<Peer>, detail: serde_json::Value) {
        Self::push_at(e, now_ms(), kind, peer, detail);
    }

    fn push_at(
        e: &mut Events,
        ts_ms: u64,
        kind: &str,
        peer: Option<Peer>,
        detail: serde_json::Value,
    ) {
        let seq = e.next;
        e.next += 1;
        let (ring, kept) = if is_control(kind) {
            (&mut e.control, CONTROL_EVENTS_KEPT)
        } else {
            (&mut e.connections, EVENTS_KEPT)
        };
        ring.push_back(Event {
            seq,
            ts_ms,
            kind: kind.to_string(),
            peer,
            detail,
        });
        if ring.len() > kept {
            ring.pop_front();
        }
    }

    /// The sequence number of the latest event (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).next - 1
    }

    /// Connection events that arrived faster than they are kept (more than 4096 between two
    /// drains) and were counted instead.
    pub fn events_skipped(&self) -> u64 {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .skipped
    }

    /// Events after `since` that `filter` lets through, in order, waiting up to `wait` for one
    /// when there are none.
    pub fn events_since(&self, since: u64, wait: Duration, filter: EventFilter) -> Vec<Event> {
        let deadline = Instant::now() + wait;
        let mut e = self.events.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let pick = |r: &VecDeque<Event>| -> Vec<Event> {
                // Both rings are in seq order: skip to the first after `since`.
                let start = r.partition_point(|x| x.seq <= since);
                r.range(start..).cloned().collect()
            };
            let out: Vec<Event> = match filter {
                EventFilter::Control => pick(&e.control),
                EventFilter::Connections => pick(&e.connections),
                EventFilter::All => {
                    let mut v = pick(&e.control);
                    v.extend(pick(&e.connections));
                    v.sort_by_key(|x| x.seq);
                    v
                }
            };
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
        self.modify_since(Instant::now(), peer, expected_version, dry_run, change)
    }

    /// As [`Controller::modify`], for a request that arrived at `received` (its swap time is
    /// counted from then).
    ///
    /// # Errors
    /// As [`Controller::modify`].
    pub fn modify_since(
        &self,
        received: Instant,
        peer: Option<Peer>,
        expected_version: Option<u64>,
        dry_run: bool,
        change: impl FnOnce(&mut Config) -> Result<(), ApplyError>,
    ) -> Result<ApplyOutcome, ApplyError> {
        let started = received;
        let mut running = self.lock();
        let mut next = running.config.clone();
        change(&mut next)?;
        let r = self.apply_locked(&mut running, next, expected_version, dry_run, peer, started);
        drop(running);
        self.await_live(r, started)
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
        self.apply_since(Instant::now(), config, expected_version, dry_run, peer)
    }

    /// As [`Controller::apply`], for a request that arrived at `received` (its swap time is
    /// counted from then).
    ///
    /// # Errors
    /// As [`Controller::apply`].
    pub fn apply_since(
        &self,
        received: Instant,
        config: Config,
        expected_version: Option<u64>,
        dry_run: bool,
        peer: Option<Peer>,
    ) -> Result<ApplyOutcome, ApplyError> {
        let started = received;
        let mut running = self.lock();
        let r = self.apply_locked(
            &mut running,
            config,
            expected_version,
            dry_run,
            peer,
            started,
        );
        drop(running);
        self.await_live(r, started)
    }

    fn apply_locked(
        &self,
        running: &mut Arc<Running>,
        config: Config,
        expected_version: Option<u64>,
        dry_run: bool,
        peer: Option<Peer>,
        started: Instant,
    ) -> Result<ApplyOutcome, ApplyError> {
        let result = self.try_apply(running, config, expected_version, dry_run, started, None);
        match &result {
            Ok(o) if o.committed_revision.is_some() => self.event(
                "config_committed",
                peer,
                serde_json::json!({ "version": o.version, "changes": o.diff.len(), "revision": o.committed_revision }),
            ),
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
        running: &mut Arc<Running>,
        mut config: Config,
        expected_version: Option<u64>,
        dry_run: bool,
        started: Instant,
        stored: Option<(u64, i64)>,
    ) -> Result<ApplyOutcome, ApplyError> {
        if let Some(expected) = expected_version
            && expected != running.version
        {
            return Err(ApplyError::VersionMismatch {
                expected,
                current: running.version,
            });
        }
        // The secret never travels over the socket: a config without one keeps the running one
        // (an inline fleet seed likewise).
        let sc = &mut config.syn_cookies;
        let was = &running.config.syn_cookies;
        if sc.secret.is_none() && sc.fleet_seed.is_none() {
            sc.secret.clone_from(&was.secret);
            sc.fleet_seed.clone_from(&was.fleet_seed);
        }
        // So does the running generation's inline previous seed, when its epoch came back.
        if sc.previous_fleet_seed.is_none()
            && sc.fleet_seed_from.is_some()
            && sc.fleet_seed_from == was.fleet_seed_from
        {
            sc.previous_fleet_seed.clone_from(&was.previous_fleet_seed);
        }
        // A stored revision is applied as stored (its writer readied it): only what it lacks
        // (an origin name without addresses, an app without timestamps) is filled in here.
        let own;
        let previous = match stored {
            Some(_) => {
                own = config.clone();
                &own
            }
            None => &running.config,
        };
        crate::resolve::prepare(previous, &mut config, &*self.resolver, now_ms())
            .map_err(ApplyError::Invalid)?;
        let restart = restart_only_changes(&running.config, &config);
        if !restart.is_empty() {
            return Err(ApplyError::NeedsRestart(restart));
        }
        // A new fleet seed here (not from the store, whose writer did this): record from which
        // epoch it keys the cookies, so that every node, and every later start, derives the
        // same secret for every epoch from the configuration alone.
        if stored.is_none() {
            let now = self
                .secrets
                .as_ref()
                .map_or_else(now_secs, LiveSecrets::now_secs);
            fleet_generation(running, &mut config, now)?;
        }
        let version = stored.map_or(running.version + 1, |(v, _)| v);
        let compiled = config
            .compile(version, &running.compiled.slots())
            .map_err(ApplyError::Invalid)?;
        let findings = crate::verify::verify(&compiled.spec);
        if !dry_run && !findings.is_empty() {
            return Err(ApplyError::Verification(findings));
        }
        let diff = crate::verify::diff(&running.compiled.spec, &compiled.spec);
        if dry_run {
            return Ok(ApplyOutcome {
                version: running.version,
                applied: false,
                diff,
                swap_us: 0,
                would_apply: Some(findings.is_empty() && self.persist.is_some()),
                verification: Some(Verification {
                    passed: findings.is_empty(),
                    findings,
                }),
                apps: config.spectrum_apps,
                committed_revision: None,
            });
        }
        // A shared configuration: the change goes to the store, and becomes live here (and on
        // every node) when the store hands it back.
        if stored.is_none()
            && let Some(store) = &self.store
        {
            let rev = store.commit(&config, version, self.store_revision())?;
            return Ok(ApplyOutcome {
                version,
                applied: true,
                diff,
                swap_us: 0,
                would_apply: None,
                verification: None,
                apps: config.spectrum_apps,
                committed_revision: Some(rev),
            });
        }
        let Some(persist) = self.persist.as_deref() else {
            return Err(ApplyError::ReadOnly);
        };
        let tables = Tables::build(&compiled.spec)
            .map_err(|e| ApplyError::Install(format!("building the tables: {e}")))?;
        let header = match stored {
            Some((_, rev)) => version_header(version) + &store_header(rev),
            None => version_header(version),
        };
        let text =
            config
                .to_toml_string()
                .map(|t| header + &t)
                .map_err(|e| ApplyError::Persist {
                    path: persist.to_path_buf(),
                    source: std::io::Error::other(e.to_string()),
                })?;
        write_atomically(persist, &text).map_err(|source| ApplyError::Persist {
            path: persist.to_path_buf(),
            source,
        })?;
        let mut installer = self.installer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = installer.as_mut()
            && let Err(e) = i.install(&tables, &compiled)
        {
            // Put the previous file back: the running configuration did not change.
            let _ = running
                .config
                .to_toml_string()
                .map(|old| write_atomically(persist, &(version_header(running.version) + &old)));
            return Err(ApplyError::Install(e));
        }
        self.tables.store(tables);
        drop(installer);
        if config.syn_cookies.secret != running.config.syn_cookies.secret
            && let (Some(live), Some(seed)) = (
                &self.secrets,
                config
                    .syn_cookies
                    .secret
                    .as_ref()
                    .and_then(|s| s.bytes().ok()),
            )
        {
            live.secrets.rotate(seed, live.now_secs());
        }
        // A new fleet seed generation (a new seed, inline or its file's contents, with the one
        // it replaced and its first epoch): this node takes the state that a node started
        // from the new configuration has, so that both agree on every epoch.
        let generation = |c: &fastpath::syncookie::CookieConfig| {
            (
                c.seed,
                c.previous_seed,
                c.previous_seed.map(|_| c.seed_from),
            )
        };
        if compiled.cookies.fleet
            && running.compiled.cookies.fleet
            && generation(&compiled.cookies) != generation(&running.compiled.cookies)
            && let (Some(live), Some(seed)) = (&self.secrets, compiled.cookies.seed)
        {
            live.secrets
                .reseed(&SynCookies::for_config(&compiled.cookies, seed));
        }
        let swap = started.elapsed();
        self.swap_times
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(swap.as_nanos() as u64);
        {
            let mut bv = self
                .binding_versions
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let old: std::collections::HashMap<String, &crate::config::Binding> = running
                .config
                .bindings
                .iter()
                .map(|b| (b.effective_id(), b))
                .collect();
            let mut next = std::collections::HashMap::new();
            for b in &config.bindings {
                let id = b.effective_id();
                let since = match (old.get(&id), bv.get(&id)) {
                    (Some(o), Some(v)) if *o == b => *v,
                    _ => version,
                };
                next.insert(id, since);
            }
            *bv = next;
        }
        let apps = config.spectrum_apps.clone();
        *running = Arc::new(Running {
            config,
            compiled,
            version,
        });
        Ok(ApplyOutcome {
            version,
            applied: true,
            diff,
            swap_us: swap.as_micros() as u64,
            would_apply: None,
            verification: None,
            apps,
            committed_revision: None,
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_version_header_round_trips() {
        let h = version_header(42);
        assert_eq!(version_of(&(h + "[node]\n")), Some(42));
        assert_eq!(version_of("[node]\nname = \"x\"\n"), None);
        assert_eq!(version_of(""), None);
    }

    #[test]
    fn restart_only_settings_are_named() {
        let a = Config::default();
        let mut b = a.clone();
        b.flows.capacity = 1024;
        b.syn_cookies.secret = Some(Secret("ab".repeat(32)));
        let d = restart_only_changes(&a, &b);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].starts_with("flows.capacity: "), "{d:?}");
        assert!(restart_only_changes(&a, &a).is_empty());
        // A fleet seed's value changes live; adding or removing one needs a restart.
        let mut f1 = a.clone();
        f1.syn_cookies.fleet_seed = Some(Secret("cd".repeat(32)));
        let mut f2 = f1.clone();
        f2.syn_cookies.fleet_seed = Some(Secret("ef".repeat(32)));
        assert!(restart_only_changes(&f1, &f2).is_empty());
        // So does its generation.
        f2.syn_cookies.previous_fleet_seed = Some(Secret("cd".repeat(32)));
        f2.syn_cookies.fleet_seed_from = Some(28_333_335);
        assert!(restart_only_changes(&f1, &f2).is_empty());
        let d = restart_only_changes(&a, &f1);
        assert_eq!(d, ["syn_cookies.fleet_seed: (none) -> set"], "{d:?}");
        // Both at once are refused.
        let mut both = f1.clone();
        both.syn_cookies.secret = Some(Secret("ab".repeat(32)));
        let err = both.validate().unwrap_err().to_string();
        assert!(
            err.contains("syn_cookies.fleet_seed") && err.contains("give one of them"),
            "{err}"
        );
    }

    /// 40 s into an epoch of 60 s (boundaries at multiples of 60).
    const T0: u64 = 1_700_000_080;

    /// The lab configuration with the fleet seed `seed` (hex, or a file's path).
    fn with_fleet_seed(seed: &str) -> Config {
        let mut c = Config::from_toml_str(include_str!("../../pcaps/edge-lab.toml")).unwrap();
        c.syn_cookies.secret = None;
        c.syn_cookies.fleet_seed = Some(Secret(seed.into()));
        c
    }

    /// A node started at `at` from `config`, as the daemon starts one: its controller
    /// (persisting to `dir/name.toml`), its published secrets and its data-plane clock.
    fn fleet_node(
        dir: &Path,
        config: Config,
        name: &str,
        at: u64,
    ) -> (
        Controller,
        Arc<CookieSecrets>,
        Arc<std::sync::atomic::AtomicU64>,
    ) {
        let compiled = config.compile(1, &Default::default()).unwrap();
        assert!(compiled.cookies.fleet);
        let seed = compiled.cookies.seed.unwrap();
        let secrets = CookieSecrets::new(SynCookies::for_config(&compiled.cookies, seed));
        let clock = Arc::new(std::sync::atomic::AtomicU64::new(at));
        let tables = SharedTables::new(Tables::build(&compiled.spec).unwrap());
        let c = Controller::new(
            Running {
                config,
                compiled,
                version: 1,
            },
            tables,
            dir.join(format!("{name}.toml")),
            None,
        )
        .with_secrets(LiveSecrets {
            seed,
            secrets: Arc::clone(&secrets),
            clock: Some(Arc::clone(&clock)),
        });
        (c, secrets, clock)
    }

    fn set_clock(clock: &std::sync::atomic::AtomicU64, at: u64) {
        clock.store(at, std::sync::atomic::Ordering::Relaxed);
    }

    fn cookie_tuple() -> fastpath::syncookie::CookieTuple {
        fastpath::syncookie::CookieTuple {
            src: "198.51.100.20".parse().unwrap(),
            dst: "203.0.113.10".parse().unwrap(),
            sport: 40000,
            dport: 22,
        }
    }

    /// The cookie a node with `s` mints at `at` for client ISN `isn`.
    fn mint(s: &CookieSecrets, at: u64, isn: u32) -> u32 {
        let mut c = s.current();
        c.refresh(at);
        c.mint(at, &cookie_tuple(), isn, 2)
    }

    /// Whether a node with `s` takes cookie `k` for `isn` at `at`.
    fn checks(s: &CookieSecrets, at: u64, isn: u32, k: u32) -> bool {
        let mut c = s.current();
        c.refresh(at);
        c.check(at, &cookie_tuple(), isn, k, false).is_ok()
    }

    /// Every cookie either node mints at each second of `seconds` is the other's, and both
    /// take it at every age under 60 s from `from` on (a cookie younger than `rotate_secs`
    /// always validates).
    #[track_caller]
    fn agree(a: &CookieSecrets, b: &CookieSecrets, seconds: std::ops::Range<u64>, from: u64) {
        for m in seconds {
            let isn = m as u32;
            let k = mint(a, m, isn);
            assert_eq!(k, mint(b, m, isn), "minted at {m}");
            for at in (m..m + 60).filter(|&at| at >= from) {
                assert!(checks(a, at, isn, k), "minted at {m}, checked at {at}");
                assert!(checks(b, at, isn, k), "minted at {m}, checked at {at}");
            }
        }
    }

    /// Two nodes given one fleet seed (one inline, one from a 0600 file) validate each
    /// other's cookies; a rotation on demand that would split the fleet is refused, and a new
    /// fleet seed given to both at different seconds of one epoch (by rotation, by the file's
    /// new contents) is written with the same generation on both: they mint the same cookies
    /// on every second, switching at the next boundary.
    #[test]
    fn fleet_seed_nodes_agree_and_rotate_at_the_next_boundary() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let seed_file = dir.path().join("fleet.seed");
        std::fs::write(&seed_file, "11".repeat(32) + "\n").unwrap();
        std::fs::set_permissions(&seed_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        // A seed file others can read is refused, naming the mode.
        let loose = with_fleet_seed(seed_file.to_str().unwrap());
        let err = loose.validate().unwrap_err().to_string();
        assert!(
            err.contains("mode 0644: group or others could read the seed; chmod 600"),
            "{err}"
        );
        std::fs::set_permissions(&seed_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = T0 / 60;
        let (a, sa, ca) = fleet_node(dir.path(), with_fleet_seed(&"11".repeat(32)), "a", T0);
        let (b, sb, cb) = fleet_node(
            dir.path(),
            with_fleet_seed(seed_file.to_str().unwrap()),
            "b",
            T0,
        );
        assert!(checks(&sb, T0 + 1, 5, mint(&sa, T0, 5)));
        assert!(checks(&sa, T0 + 1, 5, mint(&sb, T0, 5)));
        // The inline fleet seed never leaves the node; the path is shown.
        assert!(a.public_config().1.syn_cookies.fleet_seed.is_none());
        assert!(b.public_config().1.syn_cookies.fleet_seed.is_some());
        // A random rotation would split the fleet; a file-held seed rotates through its file.
        let err = a.rotate_secret(None, None).unwrap_err();
        assert_eq!(err.code(), 1012, "{err}");
        let err = b.rotate_secret(None, Some([0x22; 32])).unwrap_err();
        assert!(err.to_string().contains("write a new seed there"), "{err}");
        // The new seed: node a through rotate at T0 + 2, node b through its file at T0 + 15.
        let before = mint(&sa, T0 + 2, 5);
        set_clock(&ca, T0 + 2);
        a.rotate_secret(None, Some([0x22; 32])).unwrap();
        set_clock(&cb, T0 + 15);
        std::fs::write(&seed_file, "22".repeat(32)).unwrap();
        let same = b.running().config.clone();
        b.apply(same, None, false, None).unwrap();
        // Both wrote the generation: the seed that keys this epoch (the old file's contents
        // inline, as the file no longer holds them) and the next epoch.
        for n in [&a, &b] {
            let sc = n.running().config.syn_cookies.clone();
            assert_eq!(sc.previous_fleet_seed, Some(Secret("11".repeat(32))));
            assert_eq!(sc.fleet_seed_from, Some(e + 1));
            let public = n.public_config().1.syn_cookies;
            assert!(
                public.previous_fleet_seed.is_none(),
                "an inline seed is never shown"
            );
            assert_eq!(public.fleet_seed_from, Some(e + 1));
        }
        // The configuration as shown comes back whole: what it hides is the running one's.
        for n in [&a, &b] {
            let was = n.running().config.syn_cookies.clone();
            n.apply(n.public_config().1, None, false, None).unwrap();
            assert_eq!(n.running().config.syn_cookies, was);
        }
        let fresh = SynCookies::fleet([0x22; 32], 60);
        for at in T0 + 15..T0 + 150 {
            let k = mint(&sa, at, 5);
            assert_eq!(k, mint(&sb, at, 5), "at {at}");
            let mut f = fresh.clone();
            f.refresh(at);
            // Until the boundary at T0 + 20 the old seed mints; after it, the new one.
            assert_eq!(
                at >= T0 + 20,
                k == f.mint(at, &cookie_tuple(), 5, 2),
                "at {at}"
            );
        }
        // A cookie of the old seed validates after the boundary until it would have expired.
        assert!(checks(&sb, T0 + 70, 5, before));
        assert!(
            !checks(&sb, T0 + 81, 5, before),
            "two epochs on it does not"
        );
    }

    /// A node running since before a seed change (applied through its controller at second
    /// 42 of epoch E) and nodes started from the resulting configuration during E, E + 1 and
    /// E + 2 (a restart, or a new node) mint the same cookie at every second from E to E + 3
    /// and each takes the other's throughout their lifetime: in particular a node started
    /// during E + 1 takes the old seed's cookies of E.
    #[test]
    fn a_running_node_and_nodes_started_after_a_seed_change_agree_on_every_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let e = T0 / 60;
        let (a, sa, ca) = fleet_node(dir.path(), with_fleet_seed(&"11".repeat(32)), "a", T0);
        let s = T0 + 2;
        // What the running node minted in E before the change is what it mints after it.
        let minted: Vec<u32> = (e * 60..s).map(|m| mint(&sa, m, m as u32)).collect();
        set_clock(&ca, s);
        a.rotate_secret(None, Some([0x22; 32])).unwrap();
        let config = a.running().config.clone();
        assert_eq!(config.syn_cookies.fleet_seed_from, Some(e + 1));
        for (m, k) in (e * 60..s).zip(minted) {
            assert_eq!(k, mint(&sa, m, m as u32), "minted at {m}");
        }
        // Its persisted file, which a restart reads, holds the same generation.
        let text = std::fs::read_to_string(dir.path().join("a.toml")).unwrap();
        let persisted = Config::from_toml_str(&text).unwrap();
        assert_eq!(persisted.syn_cookies, config.syn_cookies);
        for start in [s + 5, (e + 1) * 60 + 13, (e + 2) * 60 + 31] {
            let (_f, sf, _cf) = fleet_node(dir.path(), config.clone(), "f", start);
            agree(&sa, &sf, e * 60..(e + 3) * 60, start);
        }
        // A node that ran through the change without it (it never learned of it) does not
        // agree once the new seed keys the epoch.
        let (_u, su, _cu) = fleet_node(dir.path(), with_fleet_seed(&"11".repeat(32)), "u", T0);
        let at = (e + 1) * 60 + 5;
        assert_ne!(mint(&su, at, 1), mint(&sa, at, 1));
    }

    /// A node that learns of a seed change only after the boundary (it applies the stored
    /// configuration, which says the seed keys E + 1 on, during E + 1) agrees with the node
    /// that made the change during E from then on, and takes the cookies minted in E by
    /// either.
    #[test]
    fn a_node_that_learns_of_a_seed_change_after_the_boundary_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let e = T0 / 60;
        let old = with_fleet_seed(&"11".repeat(32));
        let (a, sa, ca) = fleet_node(dir.path(), old.clone(), "a", T0);
        let (c, sc, cc) = fleet_node(dir.path(), old, "c", T0);
        set_clock(&ca, T0 + 2);
        a.rotate_secret(None, Some([0x22; 32])).unwrap();
        let stored = a.running().config.clone();
        let last = (e + 1) * 60 - 1;
        let (from_a, from_c) = (mint(&sa, last, 7), mint(&sc, last, 7));
        assert_eq!(from_a, from_c, "the old seed keys E on both");
        let learned = (e + 1) * 60 + 25;
        set_clock(&cc, learned);
        let o = c.apply_stored(stored.clone(), 2, 7).unwrap();
        assert_eq!(o.version, 2);
        assert_eq!(c.store_revision(), 7);
        assert_eq!(
            c.running().config.syn_cookies,
            stored.syn_cookies,
            "as stored"
        );
        assert!(checks(&sc, learned + 1, 7, from_a));
        assert!(checks(&sa, learned + 1, 7, from_c));
        agree(&sa, &sc, learned..(e + 3) * 60, learned);
    }

    /// A second new seed within the epoch of the first replaces it (the seed that keys the
    /// current epoch stays the previous one); within the epoch the first took effect it is
    /// refused, as the seed before still keys the previous epoch, and accepted from the next.
    /// A generation the writer gives is kept as given; a config that leaves it out gets one.
    #[test]
    fn a_fleet_seed_changes_again_once_the_previous_epoch_no_longer_needs_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = T0 / 60;
        let (a, _sa, ca) = fleet_node(dir.path(), with_fleet_seed(&"11".repeat(32)), "a", T0);
        let generation = |a: &Controller| {
            let sc = a.running().config.syn_cookies.clone();
            (
                sc.previous_fleet_seed.map(|s| s.0),
                sc.fleet_seed.map(|s| s.0),
                sc.fleet_seed_from,
            )
        };
        let h = |b: u8| hex(&[b; 32]);
        set_clock(&ca, T0 + 2);
        a.rotate_secret(None, Some([0x22; 32])).unwrap();
        set_clock(&ca, T0 + 5);
        a.rotate_secret(None, Some([0x33; 32])).unwrap();
        assert_eq!(generation(&a), (Some(h(0x11)), Some(h(0x33)), Some(e + 1)));
        set_clock(&ca, (e + 1) * 60 + 10);
        let err = a.rotate_secret(None, Some([0x44; 32])).unwrap_err();
        assert_eq!(err.code(), 1012, "{err}");
        let next = (e + 2) * 60;
        assert!(
            err.to_string()
                .contains(&format!("again from unix second {next} (in 50 s)")),
            "{err}"
        );
        assert_eq!(generation(&a).2, Some(e + 1), "nothing changed");
        set_clock(&ca, next + 1);
        a.rotate_secret(None, Some([0x44; 32])).unwrap();
        assert_eq!(generation(&a), (Some(h(0x33)), Some(h(0x44)), Some(e + 3)));
        // Given by the writer: kept.
        a.modify(None, None, false, |c| {
            c.syn_cookies.previous_fleet_seed = Some(Secret(h(0x44)));
            c.syn_cookies.fleet_seed = Some(Secret(h(0x55)));
            c.syn_cookies.fleet_seed_from = Some(e + 5);
            Ok(())
        })
        .unwrap();
        assert_eq!(generation(&a), (Some(h(0x44)), Some(h(0x55)), Some(e + 5)));
        // Left out (a hand-written config): the next epoch, as for a rotation.
        a.modify(None, None, false, |c| {
            c.syn_cookies.previous_fleet_seed = None;
            c.syn_cookies.fleet_seed = Some(Secret(h(0x66)));
            c.syn_cookies.fleet_seed_from = None;
            Ok(())
        })
        .unwrap();
        assert_eq!(generation(&a), (Some(h(0x44)), Some(h(0x66)), Some(e + 3)));
        // The same seed with the generation left out: it keeps the one still in use.
        a.modify(None, None, false, |c| {
            c.syn_cookies.previous_fleet_seed = None;
            c.syn_cookies.fleet_seed_from = None;
            Ok(())
        })
        .unwrap();
        assert_eq!(generation(&a), (Some(h(0x44)), Some(h(0x66)), Some(e + 3)));
    }

    #[test]
    fn origin_names_are_resolved_at_apply_and_followed_on_their_ttl() {
        use crate::resolve::tests::Table;
        let lab = include_str!("../../pcaps/edge-lab.toml");
        let config = Config::from_toml_str(lab).unwrap();
        let compiled = config.compile(1, &Default::default()).unwrap();
        let tables = SharedTables::new(Tables::build(&compiled.spec).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let table = Arc::new(Table::default());
        let c = Controller::new(
            Running {
                config,
                compiled,
                version: 1,
            },
            tables,
            dir.path().join("edge.toml"),
            None,
        )
        .with_resolver(Arc::clone(&table) as Arc<dyn crate::resolve::Resolver>);
        let app: crate::config::SpectrumApp = crate::config::parse_json(
            r#"{"id": "byname", "protocol": "tcp/2000-2001",
                "edge_ips": {"type": "static", "ips": ["203.0.113.10"]},
                "origin_dns": {"name": "origin.example.com", "ttl": 1},
                "origin_port": "3000-3001"}"#,
        )
        .unwrap();
        // Not resolvable: refused, nothing changes.
        let add = |cfg: &mut Config| {
            cfg.spectrum_apps.push(app.clone());
            Ok(())
        };
        let err = c.modify(None, None, false, add).unwrap_err();
        assert!(
            err.to_string()
                .contains("could not resolve origin to an IP"),
            "{err}"
        );
        assert_eq!(c.running().version, 1);

        table.set("origin.example.com", &["192.0.2.7"]);
        let o = c.modify(None, None, false, add).unwrap();
        let applied = o.apps.iter().find(|a| a.id == "byname").unwrap();
        assert_eq!(
            applied.origin_dns.as_ref().unwrap().resolved[0].to_string(),
            "192.0.2.7"
        );
        let spec_origin = |c: &Controller| {
            let r = c.running();
            let a = r
                .compiled
                .spec
                .apps
                .iter()
                .find(|a| a.id == "byname")
                .unwrap();
            a.origins
                .iter()
                .map(|o| (o.addr.to_string(), o.ports.lo))
                .collect::<Vec<_>>()
        };
        assert_eq!(spec_origin(&c), [("192.0.2.7".to_string(), 3000)]);

        // The address changes: the refresh applies it, as a config event.
        table.set("origin.example.com", &["192.0.2.8", "192.0.2.9"]);
        let before = c.last_seq();
        c.refresh_origin_dns();
        assert_eq!(
            spec_origin(&c),
            [
                ("192.0.2.8".to_string(), 3000),
                ("192.0.2.9".to_string(), 3000)
            ]
        );
        let evs = c.events_since(before, Duration::ZERO, EventFilter::Control);
        assert!(
            evs.iter().any(|e| e.kind == "config_origin_dns_changed"),
            "{evs:?}"
        );
        assert_eq!(c.dns_status("byname").unwrap().state, "ok");

        // The name stops resolving: the last addresses stay, and the app says so.
        table.0.lock().unwrap().clear();
        let version = c.running().version;
        let before = c.last_seq();
        std::thread::sleep(Duration::from_millis(1100));
        c.refresh_origin_dns();
        assert_eq!(c.running().version, version);
        assert_eq!(spec_origin(&c).len(), 2);
        let s = c.dns_status("byname").unwrap();
        assert_eq!(s.state, "unresolvable");
        assert!(s.error.unwrap().contains("origin.example.com"));
        let evs = c.events_since(before, Duration::ZERO, EventFilter::Control);
        assert!(
            evs.iter()
                .any(|e| e.kind == "config_origin_dns_unresolvable"),
            "{evs:?}"
        );
    }
}
