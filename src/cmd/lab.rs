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

/// Runs `fastpath lab`.
///
/// # Errors
/// No root, a lab of that name already up, a failing `ip` command, a fast path that does not
/// come up.
pub fn run(args: &LabArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if args.down {
        if let Ok(pid) = std::fs::read_to_string(pid_file(&args.name)) {
            let pid = pid.trim().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let started = Instant::now();
            while std::path::Path::new(&format!("/proc/{pid}")).exists()
                && started.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = std::fs::remove_file(pid_file(&args.name));
            writeln!(out, "stopped the fast path (pid {pid})")?;
        }
        let _ = std::fs::remove_file(config_file(&args.name));
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
        let exe = std::env::current_exe().context("finding the fastpath binary")?;
        let log = std::fs::File::create(log_file(&args.name))?;
        let text = match &args.config {
            Some(c) => {
                std::fs::read_to_string(c).with_context(|| format!("reading {}", c.display()))?
            }
            None => common::BUNDLED_CONFIG.to_string(),
        };
        std::fs::write(config_file(&args.name), text)
            .with_context(|| format!("writing {}", config_file(&args.name).display()))?;
        let mut cmd = Command::new("setsid");
        cmd.args(["-f", "ip", "netns", "exec", &lab.edge])
            .arg(&exe)
            .args(["run", "--iface", &lab.edge_iface])
            .arg("--config")
            .arg(config_file(&args.name))
            .arg("--control")
            .arg(socket_file(&args.name));
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let status = cmd.status().context("starting the fast path (setsid)")?;
        if !status.success() {
            lab.down();
            bail!(
                "the fast path did not start: see {}",
                log_file(&args.name).display()
            );
        }
        // Wait for its start line, and remember its pid.
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(log_file(&args.name)).unwrap_or_default();
            if text.contains("fastpath: serving") {
                break;
            }
            if text.contains("fastpath: ") && text.contains("Error")
                || started.elapsed() > Duration::from_secs(10)
            {
                lab.down();
                bail!("the fast path did not come up:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let pid = Command::new("pgrep")
            .args([
                "-n",
                "-f",
                &format!("{} run --iface {}", exe.display(), lab.edge_iface),
            ])
            .output()?;
        std::fs::write(
            pid_file(&args.name),
            String::from_utf8_lossy(&pid.stdout).trim(),
        )?;
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
