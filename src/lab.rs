//! A lab anyone can run: network namespaces `client`, `edge` and `origin` joined by veth pairs
//! on documentation addresses. `fastpath lab` and the end-to-end tests build the same topology.
//!
//! ```text
//!  <name>-client                 <name>-edge                        <name>-origin
//!  cl0 192.0.2.130/26  ───veth─── ed0 192.0.2.129/26  (XDP + AF_XDP)
//!      2001:db8:c::2/64               2001:db8:c::1/64
//!                                 eo0 192.0.2.62/26  ───veth─── or0 192.0.2.1-3,.50/26
//!                                 lo: the config's prefixes (local routes of `fastpath run`)
//! ```
//!
//! The client routes the config's prefixes through the edge; the edge routes the origin
//! addresses to the origin namespace. Traffic from the client to the first IPv4 edge IP travels
//! in VLAN 100, as behind a VLAN sub-interface: an nftables rule in the client namespace marks
//! it and a tc program on `cl0` tags it (and untags what comes back). A tc program instead of a
//! kernel VLAN device, because kernels without 802.1Q support (like the CI machine's) cannot
//! create one; the client's TCP stack is the real one either way. Everything the lab made is
//! removed by [`Lab::down`] (and on drop), even when a test fails halfway.

use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

/// What to build.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// Prefix of the namespace names (`<name>-client`, ...).
    pub name: String,
    /// RX (and TX) queues of the client/edge veth pair.
    pub queues: u32,
    /// The config's edge IPs (the first IPv4 one is reached in VLAN 100).
    pub edge_ips: Vec<IpAddr>,
    /// The config's prefixes, routed from the client through the edge.
    pub prefixes: Vec<ipnet::IpNet>,
    /// Origin addresses, assigned in the origin namespace.
    pub origins: Vec<IpAddr>,
}

/// A built lab; removed when dropped.
#[derive(Debug)]
pub struct Lab {
    /// The spec.
    pub spec: LabSpec,
    /// Client namespace.
    pub client: String,
    /// Edge namespace.
    pub edge: String,
    /// Origin namespace.
    pub origin: String,
    /// The edge's interface facing the client (where the fast path runs).
    pub edge_iface: String,
    /// The client's interface.
    pub client_iface: String,
    /// The VLAN id of the tagged sub-interfaces.
    pub vlan: u16,
    up: bool,
}

/// Runs a command, failing with its stderr.
pub fn sh(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

fn ip(args: &[&str]) -> Result<Output> {
    sh(Command::new("ip").args(args))
}

fn nsip(ns: &str, args: &[&str]) -> Result<Output> {
    let mut a = vec!["-n", ns];
    a.extend_from_slice(args);
    ip(&a)
}

/// The namespaces that exist now.
pub fn namespaces() -> Vec<String> {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Lab {
    /// Builds the lab.
    ///
    /// # Errors
    /// When a namespace of that name exists already (run `fastpath lab --down`), or an `ip`
    /// command fails (needs root and iproute2). What was built is removed before returning.
    pub fn up(spec: LabSpec) -> Result<Lab> {
        let n = &spec.name;
        let mut lab = Lab {
            client: format!("{n}-client"),
            edge: format!("{n}-edge"),
            origin: format!("{n}-origin"),
            edge_iface: "ed0".into(),
            client_iface: "cl0".into(),
            vlan: 100,
            spec: spec.clone(),
            up: true,
        };
        let existing = namespaces();
        for ns in [&lab.client, &lab.edge, &lab.origin] {
            if existing.contains(ns) {
                lab.up = false;
                bail!(
                    "namespace {ns} exists already: remove it with `fastpath lab --down --name {n}`"
                );
            }
        }
        if let Err(e) = lab.build() {
            lab.down();
            return Err(e);
        }
        Ok(lab)
    }

    fn build(&mut self) -> Result<()> {
        let (c, e, o) = (self.client.clone(), self.edge.clone(), self.origin.clone());
        for ns in [&c, &e, &o] {
            ip(&["netns", "add", ns])?;
            nsip(ns, &["link", "set", "lo", "up"])?;
        }
        let q = self.spec.queues.max(1).to_string();
        // client <-> edge, with the queues asked for.
        ip(&[
            "-n",
            &c,
            "link",
            "add",
            "cl0",
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            "ed0",
            "netns",
            &e,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
        ])?;
        // edge <-> origin.
        ip(&[
            "-n", &e, "link", "add", "eo0", "type", "veth", "peer", "name", "or0", "netns", &o,
        ])?;
        for (ns, dev, addrs) in [
            (&c, "cl0", &["192.0.2.130/26", "2001:db8:c::2/64"][..]),
            (&e, "ed0", &["192.0.2.129/26", "2001:db8:c::1/64"][..]),
            (&e, "eo0", &["192.0.2.62/26", "2001:db8:0:1::1/64"][..]),
            (&o, "or0", &["2001:db8:0:1::2/64"][..]),
        ] {
            for a in addrs {
                nsip(ns, &["addr", "add", a, "dev", dev, "nodad"])?;
            }
            nsip(ns, &["link", "set", dev, "up"])?;
        }
        // Tagged frames must reach XDP with their tag in the frame: no VLAN offload on the pair.
        // And the client computes its checksums as a NIC on a wire would (a veth peer otherwise
        // leaves TCP and UDP checksums for the receiving stack, which the workers verify and
        // the re-injected segments need whole); that also turns off segmentation offload, so
        // every frame fits the fast path's frames as on a real link.
        for (ns, dev) in [(&c, "cl0"), (&e, "ed0")] {
            let _ = sh(Command::new("ip").args([
                "netns", "exec", ns, "ethtool", "-K", dev, "txvlan", "off", "rxvlan", "off",
            ]));
        }
        sh(Command::new("ip").args(["netns", "exec", &c, "ethtool", "-K", "cl0", "tx", "off"]))
            .context("turning off the client's checksum offload (needs ethtool)")?;
        // The fast path answers SYNs with XDP_TX: on a veth such a frame reaches the peer only
        // when the peer runs an XDP program too (see `lab_xdp_pass`).
        let obj = std::env::temp_dir().join(format!("fastpath-lab-pass-{}.o", self.spec.name));
        std::fs::write(&obj, fastpath_xdp::LAB_VLAN_OBJECT)
            .context("writing the lab's XDP pass program")?;
        let attached = sh(Command::new("ip").args([
            "netns",
            "exec",
            &c,
            "ip",
            "link",
            "set",
            "dev",
            "cl0",
            "xdp",
            "obj",
            &obj.to_string_lossy(),
            "sec",
            "xdp",
        ]));
        let _ = std::fs::remove_file(&obj);
        attached.context(
            "attaching an XDP pass program to the client's veth (needs iproute2 built with libbpf)",
        )?;
        for a in &self.spec.origins {
            let s = match a {
                IpAddr::V4(v) => format!("{v}/26"),
                IpAddr::V6(v) => format!("{v}/128"),
            };
            nsip(&o, &["addr", "add", &s, "dev", "or0", "nodad"])?;
        }
        nsip(&o, &["route", "add", "default", "via", "192.0.2.62"])?;
        nsip(
            &o,
            &["-6", "route", "add", "default", "via", "2001:db8:0:1::1"],
        )?;
        // The edge IPs are not assigned here: `fastpath run` makes the whole prefixes local
        // routes (AnyIP) itself, and removes them when it stops.
        // The client reaches our prefixes through the edge; the first edge IP through VLAN 100.
        for p in &self.spec.prefixes {
            let via = if p.addr().is_ipv4() {
                "192.0.2.129"
            } else {
                "2001:db8:c::1"
            };
            nsip(&c, &["route", "add", &p.to_string(), "via", via])?;
        }
        if let Some(IpAddr::V4(first)) = self.spec.edge_ips.iter().find(|a| a.is_ipv4()) {
            self.vlan_route(*first)?;
        }
        for ns in [&c, &e, &o] {
            let _ = sh(Command::new("ip").args([
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ]));
        }
        Ok(())
    }

    /// Sends the client's traffic to `dst` in VLAN `self.vlan` (see the module docs).
    fn vlan_route(&self, dst: std::net::Ipv4Addr) -> Result<()> {
        let obj = std::env::temp_dir().join(format!("fastpath-lab-vlan-{}.o", self.spec.name));
        std::fs::write(&obj, fastpath_xdp::LAB_VLAN_OBJECT)
            .context("writing the lab's VLAN tagger")?;
        let o = obj.to_string_lossy().to_string();
        let c = &self.client;
        sh(Command::new("ip").args([
            "netns", "exec", c, "tc", "qdisc", "add", "dev", "cl0", "clsact",
        ]))?;
        for (dir, prog) in [("egress", "lab_vlan_push"), ("ingress", "lab_vlan_pop")] {
            sh(Command::new("ip").args([
                "netns",
                "exec",
                c,
                "tc",
                "filter",
                "add",
                "dev",
                "cl0",
                dir,
                "bpf",
                "direct-action",
                "obj",
                &o,
                "program",
                prog,
            ]))
            .context("loading the lab's VLAN tagger with tc (needs iproute2 built with libbpf)")?;
        }
        let _ = std::fs::remove_file(&obj);
        let mark = fastpath_xdp::LAB_VLAN_MARK | u32::from(self.vlan);
        let rules = format!(
            "table ip fplab {{\n chain out {{\n  type route hook output priority mangle;\n  ip daddr {dst} meta mark set {mark:#x}\n }}\n}}\n"
        );
        let mut nft = Command::new("ip");
        nft.args(["netns", "exec", c, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = nft.spawn().context("running nft (needs nftables)")?;
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(rules.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("nft: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// A command run inside namespace `ns`.
    pub fn exec(ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    /// Starts real origins in the origin namespace: `fastpath origin ARGS` (see
    /// [`origin_args`]), its lines going to `log`. Stopped when the returned handle drops, and
    /// by [`Lab::down`] in any case.
    ///
    /// # Errors
    /// The process cannot start, or says it cannot serve within 10 s.
    pub fn start_origins(&self, exe: &Path, args: &[String], log: &Path) -> Result<Origins> {
        let out =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.origin])
            .arg(exe)
            .arg("origin")
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting fastpath origin")?;
        let o = Origins {
            child: Some(child),
            log: log.to_path_buf(),
        };
        o.wait_listening()?;
        Ok(o)
    }

    /// Removes everything the lab made: every process still running in its namespaces (the
    /// fast path, the origins) is stopped, then the namespaces go (and their veths with them).
    pub fn down(&mut self) {
        if !self.up {
            return;
        }
        for ns in [&self.client, &self.edge, &self.origin] {
            stop_processes_in(ns);
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        self.up = false;
    }

    /// Removes the namespaces of a lab named `name` (for `fastpath lab --down`).
    pub fn down_by_name(name: &str) -> Vec<String> {
        let existing = namespaces();
        let mut removed = Vec::new();
        for suffix in ["client", "edge", "origin"] {
            let ns = format!("{name}-{suffix}");
            if existing.contains(&ns) {
                stop_processes_in(&ns);
            }
            if existing.contains(&ns)
                && Command::new("ip")
                    .args(["netns", "del", &ns])
                    .status()
                    .is_ok_and(|s| s.success())
            {
                removed.push(ns);
            }
        }
        removed
    }
}

/// Stops every process running in namespace `ns` (SIGTERM, then SIGKILL after 3 s).
fn stop_processes_in(ns: &str) {
    let pids = |sig: Option<&str>| -> Vec<String> {
        let list: Vec<String> = Command::new("ip")
            .args(["netns", "pids", ns])
            .stderr(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(sig) = sig
            && !list.is_empty()
        {
            let _ = Command::new("kill")
                .arg(sig)
                .args(&list)
                .stderr(Stdio::null())
                .status();
        }
        list
    };
    if pids(Some("-TERM")).is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    while !pids(None).is_empty() {
        if started.elapsed() > std::time::Duration::from_secs(3) {
            pids(Some("-KILL"));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Real origins running in a lab's origin namespace (`fastpath origin`); stopped when dropped.
#[derive(Debug)]
pub struct Origins {
    child: Option<std::process::Child>,
    log: std::path::PathBuf,
}

impl Origins {
    /// Everything the origins printed so far, a line per connection or datagram.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the first `listening` line: every address is bound before any is announced.
    fn wait_listening(&self) -> Result<()> {
        let started = std::time::Instant::now();
        loop {
            let text = self.log();
            if text.lines().any(|l| l.ends_with(": listening")) {
                return Ok(());
            }
            if text.contains("fastpath: ") || started.elapsed() > std::time::Duration::from_secs(10)
            {
                bail!("the lab's origins did not start:\n{text}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The process id (for `fastpath lab`, which leaves it running).
    pub fn detach(mut self) -> Option<u32> {
        self.child.take().map(|c| c.id())
    }
}

impl Drop for Origins {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

/// The `fastpath origin` arguments that serve every origin of a configuration: a TCP echo on
/// each TCP app's origin ports (the first 1024 of a range), a UDP echo on each UDP app's, and
/// an HTTP server on each CDN pool member.
pub fn origin_args(c: &control::config::Compiled) -> Vec<String> {
    let mut args = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for a in &c.spec.apps {
        let flag = match a.proto {
            fastpath::tables::L4Proto::Tcp => "--echo",
            fastpath::tables::L4Proto::Udp => "--udp-echo",
        };
        for o in &a.origins {
            let hi = o.ports.hi.min(o.ports.lo.saturating_add(1023));
            let host = match o.addr {
                IpAddr::V4(v) => v.to_string(),
                IpAddr::V6(v) => format!("[{v}]"),
            };
            let spec = if hi == o.ports.lo {
                format!("{host}:{}", o.ports.lo)
            } else {
                format!("{host}:{}-{hi}", o.ports.lo)
            };
            if seen.insert((flag, spec.clone())) {
                args.push(flag.to_string());
                args.push(spec);
            }
        }
    }
    for m in &c.spec.cdn.pool {
        if seen.insert(("--http", m.to_string())) {
            args.push("--http".into());
            args.push(m.to_string());
        }
    }
    args
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.down();
    }
}

/// Runs `f` on a new thread inside network namespace `ns` (its sockets belong there).
pub fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd as _;
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: `file` is an open namespace file; setns changes only this thread.
        #[allow(unsafe_code)]
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// A packet counter of `iface` in namespace `ns` (`rx_packets`, `tx_packets`, ...).
pub fn link_stat(ns: &str, iface: &str, stat: &str) -> Result<u64> {
    let out = sh(Command::new("ip").args([
        "netns",
        "exec",
        ns,
        "cat",
        &format!("/sys/class/net/{iface}/statistics/{stat}"),
    ]))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("reading an interface counter")
}
