//! `fastpath lab`: builds the `client`/`edge`/`origin` namespaces (see [`crate::lab`]), starts
//! the fast path in `edge`, and prints what to try; `fastpath lab --down` removes it all.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::common;
use crate::lab::{Lab, LabSpec};

/// Arguments of `fastpath lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// Configuration file (TOML). Default: the bundled `pcaps/edge-lab.toml`.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Prefix of the namespace names: `<name>-client`, `<name>-edge`, `<name>-origin`.
    #[arg(long, default_value = "fp")]
    pub name: String,
    /// RX queues of the client/edge veth pair.
    #[arg(long, default_value_t = 1)]
    pub queues: u32,
    /// Remove the lab (stop its fast path, delete its namespaces) instead of building it.
    #[arg(long)]
    pub down: bool,
    /// Build the namespaces but do not start the fast path.
    #[arg(long)]
    pub no_run: bool,
    /// Do not start the origins (`fastpath origin` in the origin namespace: a TCP echo on
    /// every TCP app's origin ports, a UDP echo on every UDP app's, an HTTP server on every CDN
    /// pool member).
    #[arg(long)]
    pub no_origins: bool,
    /// A fleet of N edges (2..=15) sharing one configuration through etcd: a lab per edge
    /// (`<name>1`, `<name>2`, ...), a 3-member etcd cluster in namespace `<name>-etcd`, every
    /// edge started with `--config-source etcd://.../fastpath/<name>` (the first one stores
    /// the config). Needs etcd (apt-get install etcd-server). `--down --name <name>` removes
    /// it all.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub nodes: usize,
}

/// The lab spec for a compiled config.
pub fn spec_for(name: &str, queues: u32, c: &control::config::Compiled) -> LabSpec {
    let edge_ips: BTreeSet<IpAddr> = c
        .spec
        .apps
        .iter()
        .flat_map(|a| a.edge_ips.iter().copied())
        .collect();
    let mut origins: BTreeSet<IpAddr> = c
        .spec
        .apps
        .iter()
        .flat_map(|a| a.origins.iter().map(|o| o.addr))
        .collect();
    origins.extend(c.spec.cdn.pool.iter().map(|s| s.ip()));
    LabSpec {
        name: name.to_string(),
        queues,
        edge_ips: edge_ips.into_iter().collect(),
        prefixes: c.spec.prefixes.iter().map(|p| p.cidr).collect(),
        origins: origins.into_iter().filter(|a| a.is_ipv4()).collect(),
    }
}

fn pid_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fastpath-lab-{name}.pid"))
}

fn log_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fastpath-lab-{name}.log"))
}

/// What the lab's origins print: one line per connection or datagram.
pub fn origin_log_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fastpath-lab-{name}-origin.log"))
}

/// The lab's own copy of its config: changes through the control socket rewrite it, never the
/// file the lab was started from.
fn config_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fastpath-lab-{name}.toml"))
}

/// The lab's control socket.
pub fn socket_file(name: &str) -> PathBuf {
    PathBuf::from(format!("/run/fastpath/lab-{name}.sock"))
}

fn stop_pid(name: &str, out: &mut impl Write) -> Result<()> {
    if let Ok(pid) = std::fs::read_to_string(pid_file(name)) {
        let pid = pid.trim().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        while std::path::Path::new(&format!("/proc/{pid}")).exists()
            && started.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(pid_file(name));
        writeln!(out, "stopped the fast path {name} (pid {pid})")?;
    }
    let _ = std::fs::remove_file(config_file(name));
    Ok(())
}

/// Starts `fastpath run` detached in `lab`'s edge namespace on `config` (the lab's own copy,
/// [`config_file`]), with `extra` arguments; waits for its start line and records its pid.
fn start_fast_path(lab: &Lab, name: &str, config: &str, extra: &[String]) -> Result<()> {
    let exe = std::env::current_exe().context("finding the fastpath binary")?;
    let log = std::fs::File::create(log_file(name))?;
    std::fs::write(config_file(name), config)
        .with_context(|| format!("writing {}", config_file(name).display()))?;
    let mut cmd = Command::new("setsid");
    cmd.args(["-f", "ip", "netns", "exec", &lab.edge])
        .arg(&exe)
        .args(["run", "--iface", &lab.edge_iface])
        .arg("--config")
        .arg(config_file(name))
        .arg("--control")
        .arg(socket_file(name))
        .args(extra);
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let status = cmd.status().context("starting the fast path (setsid)")?;
    if !status.success() {
        bail!(
            "the fast path did not start: see {}",
            log_file(name).display()
        );
    }
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log_file(name)).unwrap_or_default();
        if text.contains("fastpath: serving") {
            break;
        }
        if text.contains("fastpath: ") && text.contains("Error")
            || started.elapsed() > Duration::from_secs(15)
        {
            bail!("the fast path {name} did not come up:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = Command::new("pgrep")
        .args([
            "-n",
            "-f",
            &format!(
                "{} run --iface {} --config {}",
                exe.display(),
                lab.edge_iface,
                config_file(name).display()
            ),
        ])
        .output()?;
    std::fs::write(pid_file(name), String::from_utf8_lossy(&pid.stdout).trim())?;
    Ok(())
}

/// `fastpath lab --nodes N`: a fleet lab (see [`crate::fleetlab`]).
fn run_fleet(args: &LabArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let loaded = common::load_config(args.config.as_deref())?;
    let spec = spec_for(&args.name, args.queues, &loaded.compiled);
    let data = std::env::temp_dir().join(format!("fastpath-lab-{}-etcd", args.name));
    let _ = std::fs::remove_dir_all(&data);
    let mut fleet = crate::fleetlab::FleetLab::up(&spec, args.nodes, &data)
        .context("building the fleet lab (needs root, iproute2 and etcd)")?;
    let text = match &args.config {
        Some(c) => {
            std::fs::read_to_string(c).with_context(|| format!("reading {}", c.display()))?
        }
        None => common::BUNDLED_CONFIG.to_string(),
    };
    let exe = std::env::current_exe().context("finding the fastpath binary")?;
    for i in 0..args.nodes {
        let name = crate::fleetlab::node_name(&args.name, i);
        let lab = &fleet.labs[i];
        if !args.no_run {
            // Each node keeps its own [node] section: its name is its lab's.
            let mut c = loaded.config.clone();
            c.node.name.clone_from(&name);
            let node_text = if c.node == loaded.config.node {
                text.clone()
            } else {
                c.to_toml_string()?
            };
            let src = fleet.config_source(i);
            if let Err(e) =
                start_fast_path(lab, &name, &node_text, &["--config-source".into(), src])
            {
                fleet.down();
                return Err(e);
            }
        }
        if !args.no_origins {
            match lab.start_origins(
                &exe,
                &crate::lab::origin_args(&loaded.compiled),
                &origin_log_file(&name),
            ) {
                Ok(o) => drop(o.detach()),
                Err(e) => {
                    fleet.down();
                    return Err(e);
                }
            }
        }
    }
    let names: Vec<String> = (0..args.nodes)
        .map(|i| crate::fleetlab::node_name(&args.name, i))
        .collect();
    writeln!(
        out,
        "fleet lab {} is up: {} edges ({}), each with its client and origin namespaces, and a 3-member etcd in {}",
        args.name,
        args.nodes,
        names.join(", "),
        fleet.etcd
    )?;
    writeln!(out, "every edge follows {}", fleet.config_source(0))?;
    writeln!(out, "try:")?;
    let (first, second) = (&names[0], &names[1]);
    writeln!(
        out,
        "  fastpathctl --socket {} status          # config source, etcd revision, stale or not",
        socket_file(first).display()
    )?;
    if let Some(app) = loaded.compiled.spec.apps.first() {
        writeln!(
            out,
            "  fastpathctl --socket {} apps update {} --proxy-protocol v1   # a change through {first}...",
            socket_file(first).display(),
            app.id
        )?;
        writeln!(
            out,
            "  fastpathctl --socket {} apps get {}        # ...is live on {second}",
            socket_file(second).display(),
            app.id
        )?;
        if let (Some(ip), fastpath::tables::L4Proto::Tcp) = (app.edge_ips.first(), app.proto) {
            writeln!(
                out,
                "  echo hello | ip netns exec {second}-client nc -N -w 3 {ip} {}   # a client of {second}",
                app.ports.lo
            )?;
        }
    }
    writeln!(
        out,
        "  ETCDCTL_API=3 ip netns exec {} etcdctl get --prefix /fastpath/{} --keys-only   # the head and its chunks",
        fleet.etcd, args.name
    )?;
    writeln!(
        out,
        "  pkill -f 'etcd --name m0'     # a member down: changes still apply; all down: the edges serve and report stale"
    )?;
    writeln!(out, "logs: {}", log_file(first).display())?;
    writeln!(out, "remove it: fastpath lab --down --name {}", args.name)?;
    // Leave it up: `--down` removes it.
    std::mem::forget(fleet);
    Ok(())
}

/// Runs `fastpath lab`.
///
/// # Errors
/// No root, a lab of that name already up, a failing `ip` command, a fast path that does not
/// come up.
pub fn run(args: &LabArgs) -> Result<()> {
    if args.nodes > 1 && !args.down {
        return run_fleet(args);
    }
    let mut out = std::io::stdout().lock();
    if args.down {
        let fleet = crate::fleetlab::etcd_namespace(&args.name);
        if crate::lab::namespaces().contains(&fleet) {
            for i in 0..crate::fleetlab::MAX_NODES {
                stop_pid(&crate::fleetlab::node_name(&args.name, i), &mut out)?;
            }
            let removed = crate::fleetlab::FleetLab::down_by_name(&args.name);
            writeln!(out, "removed {}", removed.join(", "))?;
            return Ok(());
        }
        stop_pid(&args.name, &mut out)?;
        let removed = Lab::down_by_name(&args.name);
        if removed.is_empty() {
            writeln!(out, "no lab named {} is up", args.name)?;
        } else {
            writeln!(out, "removed {}", removed.join(", "))?;
        }
        return Ok(());
    }
    let loaded = common::load_config(args.config.as_deref())?;
    let spec = spec_for(&args.name, args.queues, &loaded.compiled);
    let mut lab = Lab::up(spec.clone()).context("building the lab (needs root and iproute2)")?;
    if !args.no_run {
        let text = match &args.config {
            Some(c) => {
                std::fs::read_to_string(c).with_context(|| format!("reading {}", c.display()))?
            }
            None => common::BUNDLED_CONFIG.to_string(),
        };
        if let Err(e) = start_fast_path(&lab, &args.name, &text, &[]) {
            lab.down();
            return Err(e);
        }
    }
    if !args.no_origins {
        let exe = std::env::current_exe().context("finding the fastpath binary")?;
        match lab.start_origins(
            &exe,
            &crate::lab::origin_args(&loaded.compiled),
            &origin_log_file(&args.name),
        ) {
            // It keeps running in the origin namespace: `--down` stops it.
            Ok(o) => drop(o.detach()),
            Err(e) => {
                lab.down();
                return Err(e);
            }
        }
    }
    // Leave it up: `--down` removes it.
    let c = lab.client.clone();
    let edge = lab.edge.clone();
    std::mem::forget(lab);
    writeln!(
        out,
        "lab {} is up: namespaces {c}, {edge}, {}-origin",
        args.name, args.name
    )?;
    if !args.no_run {
        writeln!(
            out,
            "the fast path serves {edge}/ed0; its counters: tail -f {}",
            log_file(&args.name).display()
        )?;
        writeln!(
            out,
            "its control socket: fastpathctl --socket {} status   (config: {})",
            socket_file(&args.name).display(),
            config_file(&args.name).display()
        )?;
    }
    if !args.no_origins {
        writeln!(
            out,
            "its origins (what they received, PROXY headers included): tail -f {}",
            origin_log_file(&args.name).display()
        )?;
    }
    writeln!(out, "try:")?;
    let cdn_host = loaded
        .compiled
        .spec
        .bindings
        .iter()
        .find(|b| b.service == fastpath::Service::Cdn && b.cidr.addr().is_ipv4())
        .and_then(|b| b.cidr.hosts().next());
    if let (Some(ip), false) = (cdn_host, loaded.compiled.spec.cdn.pool.is_empty()) {
        writeln!(
            out,
            "  ip netns exec {c} curl -s http://{ip}/        # the CDN: its pool member answers, naming you from the PROXY header"
        )?;
    }
    for app in &loaded.compiled.spec.apps {
        for ip in &app.edge_ips {
            match app.proto {
                fastpath::tables::L4Proto::Tcp => writeln!(
                    out,
                    "  echo hello | ip netns exec {c} nc -N -w 3 {ip} {}        # {} (tcp/{}, PROXY {}): the origin echoes",
                    app.ports.lo,
                    app.id,
                    app.ports,
                    app.proxy_protocol.as_str()
                )?,
                fastpath::tables::L4Proto::Udp => writeln!(
                    out,
                    "  echo hi | ip netns exec {c} nc -u -w 1 {ip} {}   # {} (udp/{}, PROXY {}): the origin echoes",
                    app.ports.lo,
                    app.id,
                    app.ports,
                    app.proxy_protocol.as_str()
                )?,
            }
        }
    }
    if let Some(ip) = spec.edge_ips.iter().find(|a| a.is_ipv4()) {
        writeln!(
            out,
            "  ip netns exec {c} nc -vz -w 3 {ip} 23        # an unconfigured port: dropped by XDP, times out"
        )?;
        writeln!(
            out,
            "  ip netns exec {c} hping3 -S --flood --rand-source -p 22 {ip}   # a SYN flood, answered with cookies"
        )?;
    }
    writeln!(
        out,
        "  ip netns exec {c} ping -c 2 192.0.2.129       # the edge's own address: the kernel answers"
    )?;
    if !args.no_run {
        writeln!(
            out,
            "  fastpathctl --socket {} events --follow   # every connection: connect, then disconnect or an error, with its status code",
            socket_file(&args.name).display()
        )?;
    }
    writeln!(out, "remove it: fastpath lab --down --name {}", args.name)?;
    Ok(())
}
