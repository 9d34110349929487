//! The control socket of a running fast path (`fastpath run`, `fastpath replay --control`):
//! the [`Controller`] over the running configuration, the socket's server thread, and the
//! options that place the socket. See `docs/CONTROL.md`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use control::api::{Server, bind, group_id};
use control::daemon::{Controller, DataPlane, Installer, LiveSecrets, Running};
use control::etcd::Source;
use control::fleet::Fleet;
use fastpath::syncookie::{CookieSecrets, SynCookies};
use fastpath::tables::SharedTables;

use crate::common::Loaded;

/// The default control socket of `fastpath run`.
pub const DEFAULT_SOCKET: &str = "/run/fastpath/fastpath.sock";

/// Where the control socket goes.
#[derive(Debug, Args, Clone, Default)]
pub struct ControlArgs {
    /// Serve the control socket at PATH (HTTP/1.1 + JSON, see docs/CONTROL.md; `fastpathctl`
    /// is its client). `fastpath run` serves /run/fastpath/fastpath.sock unless told
    /// otherwise. Changes are persisted to --config FILE (rewritten atomically); with the
    /// bundled config the socket answers reads and dry runs only.
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// No control socket.
    #[arg(long, conflicts_with = "control")]
    pub no_control: bool,
    /// Make the socket 0660 with this group (a name or a gid) instead of 0600: its members
    /// may change the configuration.
    #[arg(long, value_name = "GROUP")]
    pub control_group: Option<String>,
    /// Share the configuration with a fleet through etcd:
    /// `etcd://HOST:PORT[,HOST:PORT...]/PREFIX` (also `[node] config_source` in the file).
    /// The node loads what is stored under PREFIX (an empty PREFIX gets this node's file),
    /// follows it with a watch and applies every revision; a change through the socket is
    /// committed to etcd (compare-and-swap) and answered once it is live here. Needs
    /// --config FILE, which keeps the last revision applied (served when etcd is down) and
    /// this node's own `[node]` section. See docs/CONFIG.md, "A fleet".
    #[arg(long, value_name = "etcd://HOST:PORT/PREFIX")]
    pub config_source: Option<String>,
}

/// A node whose configuration is shared through etcd.
#[derive(Debug)]
pub struct Shared {
    /// The link to etcd; it follows the store once the controller exists.
    pub fleet: Arc<Fleet>,
    /// The store's revision of the configuration the node starts with.
    pub revision: i64,
    /// What happened at start, for the banner.
    pub how: String,
}

/// Loads the configuration a node starts with: `path` (or the bundled one), or, when a config
/// source is given (`source`, else the file's `[node] config_source`), the fleet's shared
/// configuration with this file's `[node]` section; the file is rewritten with what the node
/// starts with, so that it can serve it again while etcd is down.
///
/// # Errors
/// The file does not load, a config source without a file, the shared configuration does not
/// load on this node.
pub fn load_shared(source: Option<&str>, path: Option<&Path>) -> Result<(Loaded, Option<Shared>)> {
    let mut loaded = crate::common::load_config(path)?;
    let Some(src) = source
        .map(str::to_string)
        .or_else(|| loaded.config.node.config_source.clone())
    else {
        return Ok((loaded, None));
    };
    let Some(file) = path else {
        anyhow::bail!(
            "a config source ({src}) needs --config FILE: the node keeps the last revision it applied there, to serve it while etcd is down"
        );
    };
    let parsed = Source::parse(&src).map_err(|e| anyhow::anyhow!("--config-source {e}"))?;
    loaded.config.node.config_source = Some(src.clone());
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let start = Fleet::start(
        parsed,
        &loaded.config,
        loaded.version,
        control::daemon::store_revision_of(&text),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let compiled = start
        .config
        .compile(start.version, &control::config::Slots::default())
        .map_err(|e| anyhow::anyhow!("the shared configuration does not compile here:\n{e}"))?;
    let body = start
        .config
        .to_toml_string()
        .context("writing the configuration as TOML")?;
    let mut head = control::daemon::version_header(start.version);
    if start.revision > 0 {
        head.push_str(&control::daemon::store_header(start.revision));
    }
    control::daemon::write_atomically(file, &(head + &body))
        .with_context(|| format!("writing {}", file.display()))?;
    let loaded = Loaded {
        config: start.config,
        compiled,
        name: format!("{src} (kept in {})", file.display()),
        version: start.version,
    };
    Ok((
        loaded,
        Some(Shared {
            fleet: start.fleet,
            revision: start.revision,
            how: start.how,
        }),
    ))
}

/// What the control plane drives in the data plane.
pub struct Plane {
    /// The published tables.
    pub tables: Arc<SharedTables>,
    /// Gets every applied change besides the tables (the XDP maps).
    pub installer: Option<Box<dyn Installer>>,
    /// The cookie seed the queues start with.
    pub seed: [u8; 32],
    /// The data plane's time in seconds when it is not the wall clock (a replay).
    pub clock: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// The fleet's shared configuration, when the node follows one.
    pub shared: Option<Shared>,
}

impl std::fmt::Debug for Plane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plane").finish_non_exhaustive()
    }
}

/// A running control plane: the controller and, when a socket was asked for, its server
/// (stopped and the socket removed when dropped).
#[derive(Debug)]
pub struct ControlPlane {
    /// The controller: the running configuration and the one way it changes.
    pub controller: Arc<Controller>,
    /// The published cookie state every queue follows.
    pub secrets: Arc<CookieSecrets>,
    server: Option<Server>,
    drain: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    resolver: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    fleet: Option<Arc<Fleet>>,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // The socket first (no more changes), then the follower, then the last connection
        // events.
        self.server.take();
        if let Some(f) = self.fleet.take() {
            f.shutdown();
        }
        if let Some((stop, t)) = self.resolver.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = t.join();
        }
        if let Some((stop, t)) = self.drain.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = t.join();
        }
    }
}

impl ControlPlane {
    /// Makes the controller over `loaded` (whose tables `plane.tables` already publishes), and
    /// serves the socket at `args.control`, else at `default` when given. Changes are persisted
    /// to `config_file`; without one the controller is read-only.
    ///
    /// # Errors
    /// The socket cannot be created (in use, no permission, unknown group).
    pub fn start(
        args: &ControlArgs,
        default: Option<&Path>,
        loaded: &Loaded,
        config_file: Option<&Path>,
        plane: Plane,
    ) -> Result<ControlPlane> {
        let Plane {
            tables,
            installer,
            seed,
            clock,
            shared,
        } = plane;
        let running = Running {
            config: loaded.config.clone(),
            compiled: loaded.compiled.clone(),
            version: loaded.version,
        };
        let secrets = CookieSecrets::new(SynCookies::for_config(&loaded.compiled.cookies, seed));
        let controller = match config_file {
            Some(f) => Controller::new(running, tables, f.to_path_buf(), installer),
            None => Controller::read_only(running, tables, installer),
        }
        .with_secrets(LiveSecrets {
            seed,
            secrets: Arc::clone(&secrets),
            clock,
        });
        let controller = match &shared {
            Some(s) => controller.with_store(Arc::clone(&s.fleet) as _, s.revision),
            None => controller,
        };
        let controller = Arc::new(controller);
        let fleet = shared.map(|s| {
            s.fleet.follow(Arc::clone(&controller));
            s.fleet
        });
        let path = if args.no_control {
            None
        } else {
            args.control
                .clone()
                .or_else(|| default.map(Path::to_path_buf))
        };
        let server = match path {
            None => None,
            Some(p) => {
                let group = match &args.control_group {
                    None => None,
                    Some(g) => Some(
                        group_id(g)
                            .with_context(|| format!("--control-group {g}: no such group"))?,
                    ),
                };
                let l = bind(&p, group).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AddrInUse {
                        anyhow::anyhow!(
                            "the control socket {} is in use by another fast path: stop it, or give --control PATH or --no-control",
                            p.display()
                        )
                    } else {
                        anyhow::anyhow!("cannot create the control socket {}: {e}", p.display())
                    }
                })?;
                Some(
                    Server::start(Arc::clone(&controller), l, p.clone())
                        .with_context(|| format!("serving the control socket {}", p.display()))?,
                )
            }
        };
        // Origin names are looked up again on their TTL; the thread wakes every 200 ms to
        // see whether it should stop.
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (Arc::clone(&controller), Arc::clone(&stop));
        let t = std::thread::Builder::new()
            .name("fp-origin-dns".into())
            .spawn(move || {
                let mut next = Instant::now();
                while !s.load(Ordering::Relaxed) {
                    if Instant::now() >= next {
                        // Every second at least, so that a new app's TTL is followed at once.
                        let wait = c.refresh_origin_dns().min(Duration::from_secs(1));
                        next = Instant::now() + wait;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
            .context("starting the origin DNS thread")?;
        Ok(ControlPlane {
            controller,
            secrets,
            server,
            drain: None,
            resolver: Some((stop, t)),
            fleet,
        })
    }

    /// The socket's path, when one is served.
    pub fn socket(&self) -> Option<&Path> {
        self.server.as_ref().map(Server::path)
    }

    /// Registers the data plane whose counters `stats` and `metrics` show, and starts a
    /// thread that moves its workers' connection events into the event stream every 50 ms.
    ///
    /// # Errors
    /// The thread cannot start.
    pub fn set_data_plane(&mut self, dp: DataPlane) -> Result<()> {
        self.controller.set_data_plane(dp);
        if self.drain.is_none() {
            let stop = Arc::new(AtomicBool::new(false));
            let (c, s) = (Arc::clone(&self.controller), Arc::clone(&stop));
            let t = std::thread::Builder::new()
                .name("fp-events".into())
                .spawn(move || {
                    while !s.load(Ordering::Relaxed) {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        c.drain_connection_events();
                    }
                    c.drain_connection_events();
                })
                .context("starting the event thread")?;
            self.drain = Some((stop, t));
        }
        Ok(())
    }

    /// One line for the start banner: where the socket is and whether changes persist.
    pub fn describe(&self) -> String {
        if let (Some(s), Some(st)) = (self.socket(), self.controller.store_status()) {
            return format!(
                "control socket {} (changes go to the shared configuration {}; this node keeps the last revision in {})",
                s.display(),
                st["source"].as_str().unwrap_or("?"),
                self.controller
                    .persist_path()
                    .map_or_else(|| "-".into(), |p| p.display().to_string())
            );
        }
        match (self.socket(), self.controller.persist_path()) {
            (None, _) => "no control socket".to_string(),
            (Some(s), Some(f)) => format!(
                "control socket {} (changes persist to {})",
                s.display(),
                f.display()
            ),
            (Some(s), None) => format!(
                "control socket {} (read-only: the bundled config has no file to persist to)",
                s.display()
            ),
        }
    }
}
