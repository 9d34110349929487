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
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // The socket first (no more changes), then the last connection events.
        self.server.take();
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
        let controller = Arc::new(controller);
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
