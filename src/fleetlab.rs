//! A fleet lab: N edges, each in a lab of its own (`<name>1`, `<name>2`, ... with their
//! `client`, `edge` and `origin` namespaces, see [`crate::lab`]), sharing one configuration
//! through a 3-member etcd cluster in namespace `<name>-etcd`. `fastpath lab --nodes N` and
//! the fleet tests build the same topology.
//!
//! ```text
//!  <name>-etcd: etcd members m0, m1, m2 (peers on the namespace's loopback),
//!               clients on 0.0.0.0:2379, 12379, 22379
//!     et0 192.0.2.193/30 ─veth─ em0 192.0.2.194/30  <name>1-edge (its own client, origin)
//!     et1 192.0.2.197/30 ─veth─ em0 192.0.2.198/30  <name>2-edge
//!     ...
//! ```
//!
//! Each edge reaches every member through its own link (`etcd://192.0.2.193:2379,
//! 192.0.2.193:12379,192.0.2.193:22379/fastpath/<name>` for the first), so a member that
//! stops is a port that refuses, as on a real network. The members run detached (`setsid`);
//! [`FleetLab::down`] (also on drop) and `fastpath lab --down --name <name>` stop them and
//! remove every namespace.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::lab::{Lab, LabSpec, in_ns, namespaces, sh};

/// The etcd members of a fleet lab.
pub const MEMBERS: usize = 3;
/// The most nodes a fleet lab has (its management links are /30s of 192.0.2.192/26).
pub const MAX_NODES: usize = 15;

/// The client port of member `k`.
pub fn client_port(k: usize) -> u16 {
    2379 + 10_000 * k as u16
}

fn peer_port(k: usize) -> u16 {
    2380 + 10_000 * k as u16
}

/// The etcd side of node `i`'s management link.
fn etcd_addr(i: usize) -> String {
    format!("192.0.2.{}", 193 + 4 * i)
}

/// The edge side of node `i`'s management link.
fn edge_addr(i: usize) -> String {
    format!("192.0.2.{}", 194 + 4 * i)
}

/// The namespace of the etcd members.
pub fn etcd_namespace(name: &str) -> String {
    format!("{name}-etcd")
}

/// The lab name of node `i` (0-based): `<name>1`, `<name>2`, ...
pub fn node_name(name: &str, i: usize) -> String {
    format!("{name}{}", i + 1)
}

/// A built fleet lab; removed when dropped.
#[derive(Debug)]
pub struct FleetLab {
    /// The fleet's name.
    pub name: String,
    /// One lab per node.
    pub labs: Vec<Lab>,
    /// The members' namespace.
    pub etcd: String,
    /// Where the members keep their data and logs.
    pub data: PathBuf,
    up: bool,
}

impl FleetLab {
    /// Builds `nodes` labs from `spec` (its name is the fleet's) and the etcd namespace, and
    /// starts the members with their data under `data`.
    ///
    /// # Errors
    /// A namespace exists already, an `ip` command fails, etcd is missing or does not start.
    /// What was built is removed before returning.
    pub fn up(spec: &LabSpec, nodes: usize, data: &Path) -> Result<FleetLab> {
        if !(1..=MAX_NODES).contains(&nodes) {
            bail!("--nodes must be 1..={MAX_NODES}");
        }
        if Command::new("etcd").arg("--version").output().is_err() {
            bail!(
                "etcd is not installed: apt-get install etcd-server (and etcd-client for etcdctl)"
            );
        }
        let name = spec.name.clone();
        let etcd = etcd_namespace(&name);
        if namespaces().contains(&etcd) {
            bail!(
                "namespace {etcd} exists already: remove it with `fastpath lab --down --name {name}`"
            );
        }
        std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
        let mut fleet = FleetLab {
            name: name.clone(),
            labs: Vec::new(),
            etcd,
            data: data.to_path_buf(),
            up: true,
        };
        if let Err(e) = fleet.build(spec, nodes) {
            fleet.down();
            return Err(e);
        }
        Ok(fleet)
    }

    fn build(&mut self, spec: &LabSpec, nodes: usize) -> Result<()> {
        sh(Command::new("ip").args(["netns", "add", &self.etcd]))?;
        sh(Command::new("ip").args(["-n", &self.etcd, "link", "set", "lo", "up"]))?;
        for i in 0..nodes {
            let lab = Lab::up(LabSpec {
                name: node_name(&self.name, i),
                ..spec.clone()
            })?;
            let et = format!("et{i}");
            sh(Command::new("ip").args([
                "-n", &lab.edge, "link", "add", "em0", "type", "veth", "peer", "name", &et,
                "netns", &self.etcd,
            ]))?;
            for (ns, dev, addr) in [
                (&lab.edge, "em0", edge_addr(i)),
                (&self.etcd, et.as_str(), etcd_addr(i)),
            ] {
                sh(Command::new("ip").args([
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{addr}/30"),
                    "dev",
                    dev,
                ]))?;
                sh(Command::new("ip").args(["-n", ns, "link", "set", dev, "up"]))?;
            }
            self.labs.push(lab);
        }
        for k in 0..MEMBERS {
            self.start_member(k)?;
        }
        self.wait_ready(Duration::from_secs(30))
    }

    /// `etcd://...` for node `i`: every member through its link.
    pub fn config_source(&self, i: usize) -> String {
        let eps: Vec<String> = (0..MEMBERS)
            .map(|k| format!("{}:{}", etcd_addr(i), client_port(k)))
            .collect();
        format!("etcd://{}/fastpath/{}", eps.join(","), self.name)
    }

    /// The members' endpoints as seen from their own namespace.
    pub fn local_endpoints(&self) -> Vec<String> {
        (0..MEMBERS)
            .map(|k| format!("127.0.0.1:{}", client_port(k)))
            .collect()
    }

    /// Starts member `k` (`m0`, `m1`, ...) with its data, detached.
    ///
    /// # Errors
    /// It cannot be started.
    pub fn start_member(&self, k: usize) -> Result<()> {
        let cluster: Vec<String> = (0..MEMBERS)
            .map(|j| format!("m{j}=http://127.0.0.1:{}", peer_port(j)))
            .collect();
        let peer = format!("http://127.0.0.1:{}", peer_port(k));
        let log = std::fs::File::create(self.data.join(format!("m{k}.log")))?;
        let status = Command::new("setsid")
            .args(["-f", "ip", "netns", "exec", &self.etcd, "etcd"])
            .args(["--name", &format!("m{k}")])
            .arg("--data-dir")
            .arg(self.data.join(format!("m{k}")))
            .args([
                "--listen-client-urls",
                &format!("http://0.0.0.0:{}", client_port(k)),
            ])
            .args([
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{}", client_port(k)),
            ])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &cluster.join(",")])
            .args([
                "--initial-cluster-token",
                &format!("fastpath-{}", self.name),
            ])
            .args(["--initial-cluster-state", "new"])
            // A lab on one machine: elections in half a second, not the default's second.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .context("starting etcd (setsid)")?;
        if !status.success() {
            bail!("etcd member m{k} did not start");
        }
        Ok(())
    }

    /// The pids of member `k` (of every member with `None`).
    fn member_pids(&self, k: Option<usize>) -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.etcd])
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        out.split_whitespace()
            .filter(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
                let is_etcd = args.first().is_some_and(|a| a.ends_with(b"etcd"));
                is_etcd
                    && k.is_none_or(|k| {
                        args.windows(2)
                            .any(|w| w[0] == b"--name" && w[1] == format!("m{k}").as_bytes())
                    })
            })
            .map(str::to_string)
            .collect()
    }

    /// Kills member `k` (SIGKILL: no goodbye to the others) and waits until it is gone.
    pub fn stop_member(&self, k: usize) {
        self.kill(Some(k));
    }

    /// Kills every member.
    pub fn stop_all(&self) {
        self.kill(None);
    }

    fn kill(&self, k: Option<usize>) {
        let started = Instant::now();
        loop {
            let pids = self.member_pids(k);
            if pids.is_empty() || started.elapsed() > Duration::from_secs(10) {
                return;
            }
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&pids)
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts every member that is not running and waits for the cluster to answer.
    ///
    /// # Errors
    /// A member cannot start, or the cluster does not answer within 30 s.
    pub fn start_all(&self) -> Result<()> {
        for k in 0..MEMBERS {
            if self.member_pids(Some(k)).is_empty() {
                self.start_member(k)?;
            }
        }
        self.wait_ready(Duration::from_secs(30))
    }

    /// Waits until a read through the members succeeds (the cluster has a leader).
    ///
    /// # Errors
    /// It does not within `limit`.
    pub fn wait_ready(&self, limit: Duration) -> Result<()> {
        let eps = self.local_endpoints();
        let r = in_ns(&self.etcd, move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let c = control::etcd::Client::new(eps);
            let deadline = Instant::now() + limit;
            rt.block_on(async {
                loop {
                    match c.range(b"/", None, 0).await {
                        Ok(_) => return Ok(()),
                        Err(e) if Instant::now() > deadline => return Err(e.to_string()),
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            })
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the etcd readiness check panicked"))?;
        r.map_err(|e| anyhow::anyhow!("etcd did not answer within {limit:?}: {e}"))
    }

    /// Removes everything: the members, the labs (their processes too), the etcd namespace.
    pub fn down(&mut self) {
        if !self.up {
            return;
        }
        self.stop_all();
        for lab in &mut self.labs {
            lab.down();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.etcd])
            .stderr(Stdio::null())
            .status();
        self.up = false;
    }

    /// Removes the fleet lab named `name` (for `fastpath lab --down`): what [`FleetLab::down`]
    /// removes, found by name. Returns the namespaces removed.
    pub fn down_by_name(name: &str) -> Vec<String> {
        let etcd = etcd_namespace(name);
        let mut removed = Vec::new();
        if namespaces().contains(&etcd) {
            let fleet = FleetLab {
                name: name.to_string(),
                labs: Vec::new(),
                etcd: etcd.clone(),
                data: PathBuf::new(),
                up: false,
            };
            fleet.stop_all();
            if Command::new("ip")
                .args(["netns", "del", &etcd])
                .status()
                .is_ok_and(|s| s.success())
            {
                removed.push(etcd);
            }
        }
        for i in 0..MAX_NODES {
            removed.extend(Lab::down_by_name(&node_name(name, i)));
        }
        removed
    }
}

impl Drop for FleetLab {
    fn drop(&mut self) {
        self.down();
    }
}
