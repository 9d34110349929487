//! A fleet of edges sharing one configuration through etcd, live: a 3-member etcd cluster in
//! its own namespace (its members talk over that namespace's loopback) and three edges, each
//! in a lab of its own with a real client and real origins (see `fastpath_cli::fleetlab`).
//! Changes go through the edges' control sockets; what is live is checked through the edges'
//! own reports and by real clients connecting through each edge.
//!
//! Needs root, iproute2, tc, nft, ethtool and etcd (`.ci/run` installs etcd-server). Without
//! them each test skips with a loud message, unless `FASTPATH_REQUIRE_PRIVILEGED=1` (CI), which
//! makes the skip a failure. Each test builds its fleet under a name of its own and removes
//! it, even when it fails.

// Figures of the runs are said on stderr, where cargo test shows them.
#![allow(clippy::print_stderr)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::call;
use common::live::{FastPath, privileged};
use fastpath_cli::fleetlab::FleetLab;
use fastpath_cli::lab::{Origins, in_ns};

/// Live tests share two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const TOOLS: &[&str] = &["ip", "tc", "nft", "ethtool", "etcd"];

/// Where the probe app answers.
const PROBE_IP: &str = "203.0.113.20";
const PROBE_PORT: u16 = 2300;

/// The fleet's configuration: a fleet seed (so that any edge validates a cookie another one
/// minted), an app on the first edge IP (the one the lab's client reaches through a VLAN) and
/// the probe app every test changes.
fn config() -> String {
    format!(
        r#"[node]
name = "fleet"

[syn_cookies]
fleet_seed = "{seed}"

[proxy]
connect_timeout_secs = 2
drain_secs = 2

[[prefixes]]
cidr = "203.0.113.0/24"

[[bindings]]
cidr = "203.0.113.0/24"
service = "spectrum"

[[origin_policy.delegations]]
cidr = "192.0.2.0/24"

[[spectrum_apps]]
id = "first"
protocol = "tcp/22"
edge_ips = {{ type = "static", ips = ["203.0.113.10"] }}
origin_direct = ["tcp://192.0.2.1:22"]

[[spectrum_apps]]
id = "probe"
protocol = "tcp/{PROBE_PORT}"
edge_ips = {{ type = "static", ips = ["{PROBE_IP}"] }}
origin_direct = ["tcp://192.0.2.1:7000"]
proxy_protocol = "v1"
ip_firewall = true
"#,
        seed = "5a".repeat(32)
    )
}

/// Three (or `n`) edges following one etcd, each with its client and its echo origin.
struct Fleet {
    lab: FleetLab,
    nodes: Vec<Option<FastPath>>,
    socks: Vec<PathBuf>,
    files: Vec<PathBuf>,
    origins: Vec<Origins>,
    dir: tempfile::TempDir,
}

impl Fleet {
    fn up(name: &str, n: usize) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let text = config();
        let compiled = control::config::Config::from_toml_str(&text)
            .unwrap_or_else(|e| panic!("{e}"))
            .compile(1, &Default::default())
            .unwrap();
        let spec = fastpath_cli::cmd::lab::spec_for(name, 1, &compiled);
        let lab = FleetLab::up(&spec, n, &dir.path().join("etcd"))
            .unwrap_or_else(|e| panic!("building the fleet lab: {e:#}"));
        let mut f = Fleet {
            lab,
            nodes: Vec::new(),
            socks: Vec::new(),
            files: Vec::new(),
            origins: Vec::new(),
            dir,
        };
        for i in 0..n {
            let file = f.dir.path().join(format!("edge{i}.toml"));
            std::fs::write(
                &file,
                text.replace("name = \"fleet\"", &format!("name = \"edge{i}\"")),
            )
            .unwrap();
            f.files.push(file);
            f.socks.push(f.dir.path().join(format!("edge{i}.sock")));
            let log = f.dir.path().join(format!("origin{i}.log"));
            let o = f.lab.labs[i]
                .start_origins(
                    Path::new(env!("CARGO_BIN_EXE_fastpath")),
                    &["--echo".into(), "192.0.2.1:7000".into()],
                    &log,
                )
                .unwrap_or_else(|e| panic!("{e:#}"));
            f.origins.push(o);
            f.nodes.push(None);
            f.start(i);
        }
        f
    }

    fn start(&mut self, i: usize) {
        let src = self.lab.config_source(i);
        let fp = FastPath::start(
            &self.lab.labs[i],
            Some(&self.files[i]),
            &[
                "--control",
                self.socks[i].to_str().unwrap(),
                "--config-source",
                &src,
            ],
        );
        assert!(
            fp.started.contains("etcd revision"),
            "the start line names the etcd revision: {}",
            fp.started
        );
        self.nodes[i] = Some(fp);
    }

    fn n(&self) -> usize {
        self.nodes.len()
    }

    fn status(&self, i: usize) -> Value {
        let (code, v) = call(&self.socks[i], "GET", "/v1/status", None);
        assert_eq!(code, 200, "{v}");
        v["result"].clone()
    }

    fn version(&self, i: usize) -> u64 {
        self.status(i)["version"].as_u64().unwrap()
    }

    /// Moves the probe app to `port` through node `i`: (HTTP status, body).
    fn move_probe(&self, i: usize, port: u16, expected: Option<u64>) -> (u16, Value) {
        let body = json!({
            "protocol": format!("tcp/{port}"),
            "edge_ips": { "type": "static", "ips": [PROBE_IP] },
            "origin_direct": ["tcp://192.0.2.1:7000"],
            "proxy_protocol": "v1",
            "ip_firewall": true,
        })
        .to_string();
        let path = match expected {
            Some(v) => format!("/client/v4/zones/z/spectrum/apps/probe?expected_version={v}"),
            None => "/client/v4/zones/z/spectrum/apps/probe".to_string(),
        };
        call(&self.socks[i], "PUT", &path, Some(&body))
    }

    /// The probe app's port on node `i`, as its socket reports it.
    fn probe_port(&self, i: usize) -> String {
        let (code, v) = call(
            &self.socks[i],
            "GET",
            "/client/v4/zones/z/spectrum/apps/probe",
            None,
        );
        assert_eq!(code, 200, "{v}");
        v["result"]["protocol"].as_str().unwrap_or("").to_string()
    }

    /// Waits until every node runs `version` or later; how long that took.
    fn wait_all(&self, version: u64, limit: Duration) -> Duration {
        let started = Instant::now();
        let mut pending: Vec<usize> = (0..self.n()).filter(|&i| self.nodes[i].is_some()).collect();
        while !pending.is_empty() {
            pending.retain(|&i| self.version(i) < version);
            assert!(
                started.elapsed() < limit,
                "nodes {pending:?} do not run version {version} after {limit:?}: {:?}",
                pending.iter().map(|&i| self.status(i)).collect::<Vec<_>>()
            );
        }
        started.elapsed()
    }

    /// Waits until node `i` reports itself stale (or, with `stale` false, not).
    fn wait_stale(&self, i: usize, stale: bool, limit: Duration) {
        let started = Instant::now();
        while (self.status(i)["stale"] != "no") != stale {
            assert!(
                started.elapsed() < limit,
                "node {i} is not {}stale after {limit:?}: {}",
                if stale { "" } else { "no longer " },
                self.status(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A real client of node `i` sends `msg` to the probe at `port` and reads the echo.
    fn echo(&self, i: usize, port: u16, msg: &str) -> std::io::Result<String> {
        let ns = self.lab.labs[i].client.clone();
        let msg = msg.to_string();
        let to: SocketAddr = format!("{PROBE_IP}:{port}").parse().unwrap();
        in_ns(&ns, move || {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(msg.as_bytes())?;
            let mut got = vec![0u8; msg.len()];
            s.read_exact(&mut got)?;
            Ok(String::from_utf8_lossy(&got).to_string())
        })
        .join()
        .unwrap()
    }

    fn echo_ok(&self, i: usize, port: u16) {
        let msg = format!("hello node {i} port {port}");
        match self.echo(i, port, &msg) {
            Ok(got) => assert_eq!(got, msg),
            Err(e) => panic!(
                "a client of node {i} cannot reach the probe on port {port}: {e}; {}",
                self.status(i)
            ),
        }
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn version_of(v: &Value) -> u64 {
    v["result"]["_change"]["version"]
        .as_u64()
        .unwrap_or_else(|| panic!("no version in {v}"))
}

#[test]
fn a_change_through_one_node_is_live_on_all_three_within_a_second() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged("a_change_through_one_node_is_live_on_all_three", TOOLS) {
        return;
    }
    let f = Fleet::up("fla", 3);
    let rev = f.status(0)["etcd_revision"].as_i64().unwrap();
    for i in 0..3 {
        let s = f.status(i);
        assert_eq!(s["etcd_revision"].as_i64(), Some(rev), "{s}");
        assert_eq!(s["stale"], "no", "{s}");
        assert!(s["config_source"].as_str().unwrap().starts_with("etcd://"));
        assert_eq!(
            s["node"],
            format!("edge{i}"),
            "each node keeps its own [node]"
        );
        f.echo_ok(i, PROBE_PORT);
    }
    let (mut lag, mut total) = (Vec::new(), Vec::new());
    for k in 0..100u16 {
        let writer = usize::from(k) % 3;
        let port = PROBE_PORT + 1 + k;
        let asked = Instant::now();
        let (code, v) = f.move_probe(writer, port, None);
        assert_eq!(code, 200, "{v}");
        lag.push(f.wait_all(version_of(&v), Duration::from_secs(10)));
        total.push(asked.elapsed());
        // Live: a real client of every edge reaches the probe on its new port.
        for i in 0..3 {
            f.echo_ok(i, port);
        }
    }
    lag.sort();
    total.sort();
    let (p50, p99) = (quantile(&lag, 0.5), quantile(&lag, 0.99));
    eprintln!(
        "fleet convergence, one-app change through one node's socket ({} changes): answer to live on all 3 edges p50 {p50:?}, p99 {p99:?}, max {:?}; request to live on all 3 p50 {:?}, p99 {:?}",
        lag.len(),
        lag[lag.len() - 1],
        quantile(&total, 0.5),
        quantile(&total, 0.99)
    );
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
    let revs: Vec<i64> = (0..3)
        .map(|i| f.status(i)["etcd_revision"].as_i64().unwrap())
        .collect();
    assert!(revs.iter().all(|r| *r == revs[0]), "{revs:?}");
    let metrics = metrics(&f.socks[1]);
    assert!(
        metrics.contains(&format!("fastpath_config_store_revision {}", revs[0])),
        "{metrics}"
    );
}

/// The `metrics` text of a socket.
fn metrics(sock: &Path) -> String {
    use std::os::unix::net::UnixStream;
    let mut s = UnixStream::connect(sock).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn an_etcd_member_down_changes_apply_all_down_edges_serve_and_report_stale_back_they_converge() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged("etcd_member_and_cluster_down", TOOLS) {
        return;
    }
    let f = Fleet::up("flb", 3);
    // The first endpoint of every edge is member m0: kill it.
    f.lab.stop_member(0);
    let (code, v) = f.move_probe(1, 2401, None);
    assert_eq!(code, 200, "{v}");
    f.wait_all(version_of(&v), Duration::from_secs(10));
    for i in 0..3 {
        f.echo_ok(i, 2401);
    }
    // All of etcd down: every edge keeps serving its last revision and says it is stale.
    f.lab.stop_all();
    for i in 0..3 {
        f.wait_stale(i, true, Duration::from_secs(15));
        let s = f.status(i);
        assert!(s["stale"].as_str().unwrap().starts_with("since "), "{s}");
        assert!(metrics(&f.socks[i]).contains("fastpath_config_store_stale 1"));
        f.echo_ok(i, 2401);
    }
    // A change meanwhile is refused, and nothing changes.
    let (code, v) = f.move_probe(2, 2402, None);
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["errors"][0]["code"], 1503, "{v}");
    assert_eq!(f.probe_port(2), "tcp/2401");
    // etcd back: the edges converge with no restart, and the next change is live everywhere.
    f.lab.start_all().unwrap();
    for i in 0..3 {
        f.wait_stale(i, false, Duration::from_secs(30));
    }
    let (code, v) = f.move_probe(2, 2403, None);
    assert_eq!(code, 200, "{v}");
    f.wait_all(version_of(&v), Duration::from_secs(10));
    for i in 0..3 {
        f.echo_ok(i, 2403);
    }
}

#[test]
fn two_nodes_writing_conflicting_changes_at_once_one_wins_both_end_on_the_same_revision() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged("conflicting_changes", TOOLS) {
        return;
    }
    let f = std::sync::Arc::new(Fleet::up("flc", 2));
    for round in 0..10u16 {
        let v = f.version(0);
        f.wait_all(v, Duration::from_secs(10));
        let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = [(0usize, 2500 + round), (1, 2600 + round)]
            .into_iter()
            .map(|(i, port)| {
                let (f, gate) = (std::sync::Arc::clone(&f), std::sync::Arc::clone(&gate));
                std::thread::spawn(move || {
                    gate.wait();
                    (port, f.move_probe(i, port, Some(v)))
                })
            })
            .collect();
        let results: Vec<(u16, (u16, Value))> =
            threads.into_iter().map(|t| t.join().unwrap()).collect();
        let won: Vec<&(u16, (u16, Value))> =
            results.iter().filter(|(_, (c, _))| *c == 200).collect();
        assert_eq!(won.len(), 1, "exactly one wins: {results:?}");
        let lost = results.iter().find(|(_, (c, _))| *c != 200).unwrap();
        assert_eq!(lost.1.0, 409, "{lost:?}");
        assert_eq!(lost.1.1["errors"][0]["code"], 1009, "{lost:?}");
        let winner = format!("tcp/{}", won[0].0);
        let started = Instant::now();
        while f.probe_port(0) != winner
            || f.probe_port(1) != winner
            || f.status(0)["etcd_revision"] != f.status(1)["etcd_revision"]
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the nodes do not agree on the winner {winner}: {} {}",
                f.status(0),
                f.status(1)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `ip ARGS`, which must succeed.
fn ip(args: &[&str]) {
    fastpath_cli::lab::sh(Command::new("ip").args(args)).unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn a_handshake_whose_syn_reaches_a_and_whose_ack_reaches_b_is_carried_by_b() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged("syn_on_a_ack_on_b", TOOLS) {
        return;
    }
    let f = Fleet::up("fld", 2);
    let (a, b) = (&f.lab.labs[0], &f.lab.labs[1]);
    // One client with a link to each edge, as behind an ECMP rehash: its SYNs go to A, the
    // rest of the flow to B. B's client link moves into A's client namespace as `clb`.
    ip(&["-n", &b.client, "link", "set", "cl0", "down"]);
    ip(&["-n", &b.client, "link", "set", "cl0", "name", "clb"]);
    ip(&["-n", &b.client, "link", "set", "clb", "netns", &a.client]);
    ip(&["-n", &a.client, "link", "set", "clb", "up"]);
    ip(&[
        "netns",
        "exec",
        &a.client,
        "sysctl",
        "-qw",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.cl0.rp_filter=0",
        "net.ipv4.conf.clb.rp_filter=0",
    ]);
    ip(&[
        "-n",
        &a.client,
        "route",
        "add",
        &format!("{PROBE_IP}/32"),
        "via",
        "192.0.2.129",
        "dev",
        "clb",
        "onlink",
    ]);
    ip(&[
        "-n",
        &a.client,
        "route",
        "add",
        &format!("{PROBE_IP}/32"),
        "via",
        "192.0.2.129",
        "dev",
        "cl0",
        "table",
        "77",
    ]);
    ip(&[
        "-n", &a.client, "rule", "add", "fwmark", "0x77", "table", "77",
    ]);
    let rules = format!(
        "table ip fleet {{\n chain out {{\n  type route hook output priority mangle;\n  ip daddr {PROBE_IP} tcp flags & (syn | ack) == syn meta mark set 0x77\n }}\n}}\n"
    );
    let mut nft = Command::new("ip")
        .args(["netns", "exec", &a.client, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    nft.stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success());
    let msg = "syn to A, the rest to B";
    let got = f.echo(0, PROBE_PORT, msg).unwrap_or_else(|e| {
        panic!(
            "the handshake split over two edges failed: {e}; A: {}; B: {}",
            f.status(0),
            f.status(1)
        )
    });
    assert_eq!(got, msg);
    // A answered the SYN, B validated A's cookie and carried the flow to its own origin.
    let stats = |i: usize| {
        let (_, v) = call(&f.socks[i], "GET", "/v1/stats", None);
        v["result"].clone()
    };
    let (sa, sb) = (stats(0), stats(1));
    // SYN-ACKs sent by the XDP program (its cookie gate) or by the queues.
    let syn_acks = |s: &Value| {
        s["totals"]["verdicts"]["tx"].as_u64().unwrap_or(0)
            + s["xdp"]["reasons"]["syn_cookie"].as_u64().unwrap_or(0)
    };
    assert!(syn_acks(&sa) >= 1, "A sent the SYN-ACK: {sa}");
    assert_eq!(syn_acks(&sb), 0, "B saw no SYN: {sb}");
    let log = |i: usize| f.origins[i].log();
    assert!(
        log(1).lines().any(|l| l.contains("client=192.0.2.130")),
        "B's origin got the connection: {}",
        log(1)
    );
    assert!(
        !log(0).lines().any(|l| l.contains("client=192.0.2.130")),
        "A's origin did not: {}",
        log(0)
    );
}

#[test]
fn a_100k_rule_access_list_through_etcd_applies_on_every_node() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged("access_list_100k", TOOLS) {
        return;
    }
    let f = Fleet::up("fle", 3);
    // Two lists of 100,000 rules; the second also blocks the lab's client.
    let list = |base: u32, block_client: bool| -> String {
        let mut v: Vec<Value> = (0..100_000u32)
            .map(|i| {
                let ip = std::net::Ipv4Addr::from(base + i);
                json!({ "mode": "block", "target": "ip", "value": ip.to_string() })
            })
            .collect();
        if block_client {
            v.push(json!({ "mode": "block", "target": "ip", "value": "192.0.2.130" }));
        }
        Value::Array(v).to_string()
    };
    let (mut lag, mut total) = (Vec::new(), Vec::new());
    for (k, (base, block)) in [
        (0x6440_0000u32, false),
        (0x6480_0000, true),
        (0x6440_0000, false),
        (0x6480_0000, true),
        (0x6440_0000, false),
    ]
    .into_iter()
    .enumerate()
    {
        let body = list(base, block);
        let asked = Instant::now();
        let (code, v) = call(
            &f.socks[k % 3],
            "PUT",
            "/client/v4/zones/z/firewall/access_rules/rules",
            Some(&body),
        );
        assert_eq!(
            code,
            200,
            "{}",
            &v.to_string()[..v.to_string().len().min(500)]
        );
        let version = v["result"]["_change"]["version"].as_u64().unwrap();
        lag.push(f.wait_all(version, Duration::from_secs(60)));
        total.push(asked.elapsed());
        // Every node ends on the same revision (a node collecting the replaced list's chunks
        // moves it on: wait until they agree, within a bound).
        let started = Instant::now();
        loop {
            let revs: Vec<Value> = (0..3)
                .map(|i| f.status(i)["etcd_revision"].clone())
                .collect();
            if revs.iter().all(|r| *r == revs[0]) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the nodes stay on different revisions: {revs:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        for i in 0..3 {
            let s = f.status(i);
            assert_eq!(s["access_rules"], 100_000 + u64::from(block), "{s}");
            if block {
                assert!(
                    f.echo(i, PROBE_PORT, "blocked?").is_err(),
                    "node {i} still lets the blocked client through"
                );
            } else {
                f.echo_ok(i, PROBE_PORT);
            }
        }
    }
    lag.sort();
    total.sort();
    eprintln!(
        "fleet convergence, 100k-rule list through one node's socket ({} changes): answer to live on all 3 edges p50 {:?}, p99 {:?}; request to live on all 3 p50 {:?}, p99 {:?}",
        lag.len(),
        quantile(&lag, 0.5),
        quantile(&lag, 0.99),
        quantile(&total, 0.5),
        quantile(&total, 0.99)
    );
}

#[test]
fn a_node_restarted_while_etcd_is_down_serves_its_last_revision() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged("restart_while_etcd_down", TOOLS) {
        return;
    }
    let mut f = Fleet::up("flf", 2);
    let (code, v) = f.move_probe(0, 2700, None);
    assert_eq!(code, 200, "{v}");
    let version = version_of(&v);
    f.wait_all(version, Duration::from_secs(10));
    let rev = f.status(1)["etcd_revision"].clone();
    f.lab.stop_all();
    f.nodes[1].take().unwrap().kill9();
    f.start(1);
    let s = f.status(1);
    assert_eq!(s["version"], version, "{s}");
    assert_eq!(s["etcd_revision"], rev, "{s}");
    assert!(s["stale"].as_str().unwrap().starts_with("since "), "{s}");
    assert_eq!(f.probe_port(1), "tcp/2700");
    f.echo_ok(1, 2700);
    // etcd back: it follows again.
    f.lab.start_all().unwrap();
    let (code, v) = f.move_probe(0, 2701, None);
    assert_eq!(code, 200, "{v}");
    f.wait_all(version_of(&v), Duration::from_secs(30));
    f.echo_ok(1, 2701);
}

/// `fastpath lab --down` whatever happens.
struct LabDown(&'static str);

impl Drop for LabDown {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_fastpath"))
            .args(["lab", "--down", "--name", self.0])
            .output();
    }
}

#[test]
fn fastpath_lab_nodes_3_builds_a_fleet_that_shares_changes_and_down_removes_it() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !privileged("fastpath_lab_nodes_3", TOOLS) {
        return;
    }
    let name = "flg";
    let down = LabDown(name);
    let out = Command::new(env!("CARGO_BIN_EXE_fastpath"))
        .args(["lab", "--nodes", "3", "--name", name])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("fleet lab flg is up: 3 edges (flg1, flg2, flg3)"),
        "{text}"
    );
    let sock = |i: usize| fastpath_cli::cmd::lab::socket_file(&format!("{name}{i}"));
    // A change through the first edge's socket, seen on the third, served to the second's
    // client.
    let app = "/client/v4/zones/z/spectrum/apps/ssh";
    let (code, v) = call(&sock(1), "GET", app, None);
    assert_eq!(code, 200, "{v}");
    let mut body = v["result"].clone();
    body["proxy_protocol"] = json!("v1");
    let (code, v) = call(&sock(1), "PUT", app, Some(&body.to_string()));
    assert_eq!(code, 200, "{v}");
    let started = Instant::now();
    while call(&sock(3), "GET", app, None).1["result"]["proxy_protocol"] != "v1" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "flg3 never ran the change"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for i in 1..=3 {
        let s = call(&sock(i), "GET", "/v1/status", None).1;
        assert_eq!(s["result"]["stale"], "no", "{s}");
        assert_eq!(s["result"]["node"], format!("{name}{i}"), "{s}");
    }
    let to: SocketAddr = "203.0.113.10:22".parse().unwrap();
    let echoed = in_ns("flg2-client", move || {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"hello")?;
        let mut got = [0u8; 5];
        s.read_exact(&mut got)?;
        Ok::<_, std::io::Error>(got)
    })
    .join()
    .unwrap()
    .expect("a client of flg2 reaches the ssh app's origin");
    assert_eq!(&echoed, b"hello");
    drop(down);
    let left: Vec<String> = fastpath_cli::lab::namespaces()
        .into_iter()
        .filter(|n| n.starts_with(name))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let etcd = Command::new("pgrep")
        .args(["-f", "etcd --name m0 --data-dir /tmp/fastpath-lab-flg-etcd"])
        .output()
        .unwrap();
    assert!(etcd.stdout.is_empty(), "an etcd member is left running");
}
