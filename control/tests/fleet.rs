//! A fleet's shared configuration against a real 3-member etcd cluster on loopback (Debian's
//! `etcd-server`; `.ci/run` installs it): nodes in this process, each a [`Controller`] with
//! its own file, following the store through [`Fleet`]. Without the `etcd` binary the tests
//! skip loudly, and fail when `FASTPATH_REQUIRE_PRIVILEGED=1` asks that nothing be skipped.
//! The same guarantees with real daemons, data planes and clients in network namespaces are
//! in `tests/fleet.rs` at the workspace root.

// Skips, waits and figures are said on stderr, where cargo test shows them.
#![allow(clippy::print_stderr)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use control::config::{AccessRule, Config, Slots};
use control::daemon::{ApplyError, Controller, Running};
use control::etcd::{Client, Source, prefix_end};
use control::fleet::{Fleet, Head};
use fastpath::tables::{SharedTables, Tables};

const LAB: &str = include_str!("../../pcaps/edge-lab.toml");
const PREFIX: &str = "/fastpath/test";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn have_etcd() -> bool {
    if Command::new("etcd").arg("--version").output().is_ok() {
        return true;
    }
    let msg = "SKIPPED: no etcd binary (apt-get install etcd-server)";
    assert!(
        std::env::var("FASTPATH_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
        "{msg}, and FASTPATH_REQUIRE_PRIVILEGED=1"
    );
    eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
    false
}

/// Three etcd members on loopback; every member can be stopped and started again with its
/// data, and the whole cluster rebuilt empty (another cluster id).
struct Cluster {
    dir: tempfile::TempDir,
    clients: Vec<u16>,
    peers: Vec<u16>,
    generation: u32,
    members: Vec<Option<Child>>,
}

impl Cluster {
    fn start() -> Cluster {
        let n = 3;
        let mut c = Cluster {
            dir: tempfile::tempdir().unwrap(),
            clients: (0..n).map(|_| free_port()).collect(),
            peers: (0..n).map(|_| free_port()).collect(),
            generation: 0,
            members: (0..n).map(|_| None).collect(),
        };
        for i in 0..n {
            c.start_member(i);
        }
        c.wait_ready();
        c
    }

    fn endpoints(&self) -> Vec<String> {
        self.clients
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    fn start_member(&mut self, i: usize) {
        assert!(self.members[i].is_none(), "member {i} runs");
        let peer = |j: usize| format!("http://127.0.0.1:{}", self.peers[j]);
        let cluster: Vec<String> = (0..self.peers.len())
            .map(|j| format!("m{j}={}", peer(j)))
            .collect();
        let client = format!("http://127.0.0.1:{}", self.clients[i]);
        let data = self.dir.path().join(format!("m{i}-{}", self.generation));
        let child = Command::new("etcd")
            .args(["--name", &format!("m{i}")])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer(i)])
            .args(["--initial-advertise-peer-urls", &peer(i)])
            .args(["--initial-cluster", &cluster.join(",")])
            .args([
                "--initial-cluster-token",
                &format!("fleet-test-{}", self.generation),
            ])
            .args(["--initial-cluster-state", "new"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting etcd");
        self.members[i] = Some(child);
    }

    fn stop_member(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stop_all(&mut self) {
        for i in 0..self.members.len() {
            self.stop_member(i);
        }
    }

    fn start_all(&mut self) {
        for i in 0..self.members.len() {
            if self.members[i].is_none() {
                self.start_member(i);
            }
        }
        self.wait_ready();
    }

    /// Stops every member and starts an empty cluster on the same ports.
    fn rebuild(&mut self) {
        self.stop_all();
        self.generation += 1;
        self.start_all();
    }

    fn client(&self) -> Client {
        Client::new(self.endpoints())
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn wait_ready(&self) {
        let c = self.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        Self::rt().block_on(async {
            loop {
                match c.range(b"/", Some(&prefix_end(b"/")), 0).await {
                    Ok(_) => return,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "etcd did not start: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }

    /// The stored head and the keys under the chunks prefix.
    fn stored(&self) -> (Head, i64, Vec<Vec<u8>>) {
        let c = self.client();
        Self::rt().block_on(async {
            let r = c
                .range(format!("{PREFIX}/head").as_bytes(), None, 0)
                .await
                .unwrap();
            let kv = &r.kvs[0];
            let head: Head = serde_json::from_slice(&kv.value).unwrap();
            let p = format!("{PREFIX}/chunks/").into_bytes();
            let (_, keys) = c.range_keys(&p, &prefix_end(&p)).await.unwrap();
            (
                head,
                kv.mod_revision,
                keys.into_iter().map(|(k, _)| k).collect(),
            )
        })
    }

    fn compact(&self) {
        let c = self.client();
        let rev =
            Self::rt().block_on(async { c.range(b"/", None, 0).await.unwrap().header.revision });
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &self.endpoints()[0],
                "compact",
                &rev.to_string(),
            ])
            .output()
            .expect("etcdctl (apt-get install etcd-client)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// A TCP relay in front of each member, which a test cuts to partition one node.
struct Relay {
    ports: Vec<u16>,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn new(upstreams: &[u16]) -> Relay {
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let mut ports = Vec::new();
        for &up in upstreams {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            ports.push(l.local_addr().unwrap().port());
            let (cut, open) = (Arc::clone(&cut), Arc::clone(&open));
            std::thread::spawn(move || {
                for s in l.incoming() {
                    let Ok(s) = s else { continue };
                    if cut.load(Ordering::Acquire) {
                        continue; // dropped: the client sees the connection closed
                    }
                    let Ok(u) = TcpStream::connect(("127.0.0.1", up)) else {
                        continue;
                    };
                    {
                        let mut o = open.lock().unwrap();
                        o.push(s.try_clone().unwrap());
                        o.push(u.try_clone().unwrap());
                    }
                    for (mut a, mut b) in [(s.try_clone().unwrap(), u.try_clone().unwrap()), (u, s)]
                    {
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 16384];
                            loop {
                                match a.read(&mut buf) {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => {
                                        if b.write_all(&buf[..n]).is_err() {
                                            break;
                                        }
                                    }
                                }
                            }
                            let _ = b.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
            });
        }
        Relay { ports, cut, open }
    }

    fn endpoints(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::Release);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn mend(&self) {
        self.cut.store(false, Ordering::Release);
    }
}

/// One node: a controller over its own file, following the store.
struct Node {
    c: Arc<Controller>,
    fleet: Arc<Fleet>,
    file: PathBuf,
}

impl Node {
    fn start(dir: &Path, name: &str, endpoints: &[String]) -> Node {
        Self::start_with(dir, name, endpoints, None).0
    }

    /// As [`Node::start`]; with `clock`, the node has live cookie secrets on that clock (as
    /// `fastpath run` has), returned beside it.
    fn start_with(
        dir: &Path,
        name: &str,
        endpoints: &[String],
        clock: Option<Arc<std::sync::atomic::AtomicU64>>,
    ) -> (Node, Option<Arc<fastpath::syncookie::CookieSecrets>>) {
        let file = dir.join(format!("{name}.toml"));
        if !file.exists() {
            std::fs::write(&file, LAB).unwrap();
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let mut config = Config::from_toml_str(&text).unwrap();
        // As `fastpath run` loads its file: apps stamped, origin names looked up.
        control::resolve::prepare(
            &config.clone(),
            &mut config,
            &control::resolve::SystemResolver,
            1_800_000_000_000,
        )
        .unwrap();
        config.node.name = name.into();
        let src = format!("etcd://{}{PREFIX}", endpoints.join(","));
        config.node.config_source = Some(src.clone());
        let version = control::daemon::version_of(&text).unwrap_or(1);
        let start = Fleet::start(
            Source::parse(&src).unwrap(),
            &config,
            version,
            control::daemon::store_revision_of(&text),
        )
        .unwrap();
        eprintln!("{name}: {}", start.how);
        let compiled = start
            .config
            .compile(start.version, &Slots::default())
            .unwrap();
        let tables = SharedTables::new(Tables::build(&compiled.spec).unwrap());
        let live = clock.map(|clock| {
            let seed = compiled
                .cookies
                .seed
                .expect("a fixed secret or a fleet seed");
            let secrets = fastpath::syncookie::CookieSecrets::new(
                fastpath::syncookie::SynCookies::for_config(&compiled.cookies, seed),
            );
            control::daemon::LiveSecrets {
                seed,
                secrets,
                clock: Some(clock),
            }
        });
        let mut c = Controller::new(
            Running {
                config: start.config,
                compiled,
                version: start.version,
            },
            tables,
            file.clone(),
            None,
        );
        let mut secrets = None;
        if let Some(l) = live {
            secrets = Some(Arc::clone(&l.secrets));
            c = c.with_secrets(l);
        }
        let c = Arc::new(c.with_store(Arc::clone(&start.fleet) as _, start.revision));
        start.fleet.follow(Arc::clone(&c));
        (
            Node {
                c,
                fleet: start.fleet,
                file,
            },
            secrets,
        )
    }

    fn stop(self) {
        self.fleet.shutdown();
    }

    fn status(&self) -> serde_json::Value {
        self.c.store_status().unwrap()
    }

    /// Sets the app `ssh`'s origin port to `port` (a change every node must see).
    fn set_port(&self, port: u16) -> Result<u64, ApplyError> {
        self.c
            .modify(None, None, false, |cfg| {
                let app = cfg
                    .spectrum_apps
                    .iter_mut()
                    .find(|a| a.id == "ssh")
                    .unwrap();
                app.origin_direct = vec![format!("tcp://192.0.2.1:{port}").parse().unwrap()];
                Ok(())
            })
            .map(|o| o.version)
    }

    fn port(&self) -> String {
        let r = self.c.running();
        let app = r
            .config
            .spectrum_apps
            .iter()
            .find(|a| a.id == "ssh")
            .unwrap();
        app.origin_direct[0].to_string()
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Everything but `[node]` is the same on every node.
fn same_config(nodes: &[&Node]) {
    let shared = |n: &Node| {
        let mut c = n.c.running().config.clone();
        c.node = Default::default();
        c
    };
    let first = shared(nodes[0]);
    for n in &nodes[1..] {
        let other = shared(n);
        if other != first {
            let (x, y) = (
                first.to_toml_string().unwrap(),
                other.to_toml_string().unwrap(),
            );
            let diff: Vec<(&str, &str)> = x
                .lines()
                .zip(y.lines())
                .filter(|(a, b)| a != b)
                .take(5)
                .collect();
            panic!(
                "the nodes run different configurations (revisions {} and {}, versions {} and {}): {diff:?}",
                nodes[0].c.store_revision(),
                n.c.store_revision(),
                nodes[0].c.running().version,
                n.c.running().version
            );
        }
        assert_eq!(n.c.store_revision(), nodes[0].c.store_revision());
    }
}

#[test]
fn a_change_through_any_node_is_live_on_every_node() {
    if !have_etcd() {
        return;
    }
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let eps = cluster.endpoints();
    let a = Node::start(dir.path(), "a", &eps);
    assert!(
        a.status()["revision"].as_i64().unwrap() > 0,
        "a bootstrapped"
    );
    let b = Node::start(dir.path(), "b", &eps);
    let c = Node::start(dir.path(), "c", &eps);
    same_config(&[&a, &b, &c]);
    let nodes = [&a, &b, &c];
    let (mut lag, mut total) = (Vec::new(), Vec::new());
    for i in 0..100u16 {
        let writer = nodes[usize::from(i) % 3];
        let port = 3000 + i;
        let asked = Instant::now();
        let v = writer.set_port(port).unwrap();
        let answered = Instant::now();
        // The writer runs it when it answers.
        assert_eq!(writer.c.running().version, v);
        assert_eq!(writer.port(), format!("tcp://192.0.2.1:{port}"));
        wait_until(
            "every node to run the change",
            Duration::from_secs(10),
            || nodes.iter().all(|n| n.c.running().version >= v),
        );
        lag.push(answered.elapsed());
        total.push(asked.elapsed());
        for n in nodes {
            assert_eq!(n.port(), format!("tcp://192.0.2.1:{port}"));
        }
    }
    lag.sort();
    total.sort();
    let (p50, p99) = (quantile(&lag, 0.5), quantile(&lag, 0.99));
    eprintln!(
        "one-app change over {} changes, answer to live on all 3 nodes: p50 {p50:?}, p99 {p99:?}, max {:?}; request to live on all 3: p50 {:?}, p99 {:?}",
        lag.len(),
        lag[lag.len() - 1],
        quantile(&total, 0.5),
        quantile(&total, 0.99)
    );
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
    same_config(&nodes);
    // Each node's file keeps the revision it runs, with its own [node] section.
    for (n, name) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        let text = std::fs::read_to_string(&n.file).unwrap();
        assert_eq!(
            control::daemon::store_revision_of(&text),
            Some(n.c.store_revision())
        );
        assert!(text.contains(&format!("name = \"{name}\"")), "{text}");
    }
    // A stale expected version is refused, and changes nothing.
    let before = a.c.store_revision();
    let e = a.c.modify(None, Some(1), false, |_| Ok(())).unwrap_err();
    assert_eq!(e.code(), 1009);
    assert_eq!(a.c.store_revision(), before);
    // A change that does not validate never reaches etcd.
    let e =
        b.c.modify(None, None, false, |cfg| {
            cfg.spectrum_apps[0].edge_ips.as_mut().unwrap().ips =
                vec!["192.0.2.99".parse().unwrap()];
            Ok(())
        })
        .unwrap_err();
    assert_eq!(e.code(), 1004, "{e}");
    let (_, rev, _) = cluster.stored();
    assert_eq!(rev, before);
    for n in [a, b, c] {
        n.stop();
    }
}

#[test]
fn conflicting_changes_one_wins_and_every_node_ends_on_the_same_revision() {
    if !have_etcd() {
        return;
    }
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let eps = cluster.endpoints();
    let a = Arc::new(Node::start(dir.path(), "a", &eps));
    let b = Arc::new(Node::start(dir.path(), "b", &eps));
    for round in 0..10u16 {
        wait_until("the nodes to agree", Duration::from_secs(10), || {
            a.c.store_revision() == b.c.store_revision()
        });
        let gate = Arc::new(Barrier::new(2));
        let go = |n: &Arc<Node>, port: u16| {
            let (n, gate) = (Arc::clone(n), Arc::clone(&gate));
            let base = n.c.running().version;
            std::thread::spawn(move || {
                n.c.modify(None, Some(base), false, |cfg| {
                    gate.wait();
                    let app = cfg
                        .spectrum_apps
                        .iter_mut()
                        .find(|a| a.id == "ssh")
                        .unwrap();
                    app.origin_direct = vec![format!("tcp://192.0.2.1:{port}").parse().unwrap()];
                    Ok(())
                })
            })
        };
        let (ta, tb) = (go(&a, 5000 + round), go(&b, 6000 + round));
        let (ra, rb) = (ta.join().unwrap(), tb.join().unwrap());
        let won: Vec<bool> = [&ra, &rb].iter().map(|r| r.is_ok()).collect();
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "exactly one of two concurrent changes wins: {ra:?} {rb:?}"
        );
        let lost = if won[0] { &rb } else { &ra };
        assert_eq!(lost.as_ref().unwrap_err().code(), 1009, "{lost:?}");
        let winner = if won[0] { 5000 + round } else { 6000 + round };
        wait_until(
            "both nodes to run the winner",
            Duration::from_secs(10),
            || {
                a.port() == format!("tcp://192.0.2.1:{winner}")
                    && b.port() == format!("tcp://192.0.2.1:{winner}")
            },
        );
        same_config(&[&a, &b]);
    }
}

#[test]
fn members_down_then_etcd_down_then_back() {
    if !have_etcd() {
        return;
    }
    let mut cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let eps = cluster.endpoints();
    let a = Node::start(dir.path(), "a", &eps);
    let b = Node::start(dir.path(), "b", &eps);
    // One member down (the first endpoint of every node): changes still apply everywhere.
    cluster.stop_member(0);
    for port in [7001, 7002, 7003] {
        let v = b.set_port(port).unwrap();
        wait_until(
            "a to follow with a member down",
            Duration::from_secs(10),
            || a.c.running().version >= v,
        );
        assert_eq!(a.port(), format!("tcp://192.0.2.1:{port}"));
    }
    // All of etcd down: both keep serving their last revision and say they are stale.
    let running = a.c.store_revision();
    cluster.stop_all();
    wait_until(
        "both nodes to report stale",
        Duration::from_secs(15),
        || {
            [&a, &b]
                .iter()
                .all(|n| n.status()["stale"] == serde_json::json!(true))
        },
    );
    let st = a.status();
    assert!(st["stale_since_ms"].as_u64().unwrap() > 0, "{st}");
    assert!(st["last_error"].as_str().unwrap().contains("etcd"), "{st}");
    assert_eq!(a.c.store_revision(), running);
    assert_eq!(a.port(), "tcp://192.0.2.1:7003");
    // A change meanwhile is refused and changes nothing.
    let e = a.set_port(7999).unwrap_err();
    assert_eq!(e.code(), 1503, "{e}");
    assert_eq!(a.port(), "tcp://192.0.2.1:7003");
    let stats = control::stats::prometheus(&a.c);
    assert!(stats.contains("fastpath_config_store_stale 1"), "{stats}");
    // Back: both converge without a restart, and follow the next change.
    cluster.start_all();
    wait_until(
        "both nodes to follow again",
        Duration::from_secs(30),
        || {
            [&a, &b]
                .iter()
                .all(|n| n.status()["stale"] == serde_json::json!(false))
        },
    );
    let v = a.set_port(7004).unwrap();
    wait_until(
        "b to follow after etcd came back",
        Duration::from_secs(10),
        || b.c.running().version >= v,
    );
    same_config(&[&a, &b]);
    assert!(control::stats::prometheus(&b.c).contains("fastpath_config_store_stale 0"));
}

#[test]
fn a_100k_rule_list_is_stored_in_chunks_and_switched_whole_on_every_node() {
    if !have_etcd() {
        return;
    }
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let eps = cluster.endpoints();
    let a = Node::start(dir.path(), "a", &eps);
    let b = Node::start(dir.path(), "b", &eps);
    let c = Node::start(dir.path(), "c", &eps);
    let rules = |base: u32| -> Vec<AccessRule> {
        let v: Vec<serde_json::Value> = (0..100_000u32)
            .map(|i| {
                let ip = std::net::Ipv4Addr::from(base + i);
                serde_json::json!({ "mode": "block", "target": "ip", "value": ip.to_string() })
            })
            .collect();
        control::config::parse_json(&serde_json::Value::Array(v).to_string()).unwrap()
    };
    let (first, second) = (0x6440_0000u32, 0x6480_0000u32);
    // Readers on every node: each snapshot holds all of one list or all of the other.
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for n in [&a, &b, &c] {
        let (tables, stop) = (Arc::clone(n.c.tables()), Arc::clone(&stop));
        readers.push(std::thread::spawn(move || {
            let mut seen = [0u64; 3];
            while !stop.load(Ordering::Acquire) {
                let t = tables.load();
                let has = |ip: u32| t.access_rule(std::net::Ipv4Addr::from(ip).into()).is_some();
                let one = [has(first), has(first + 99_999)];
                let two = [has(second), has(second + 99_999)];
                let state = match (one, two) {
                    ([false, false], [false, false]) => 0,
                    ([true, true], [false, false]) => 1,
                    ([false, false], [true, true]) => 2,
                    mixed => panic!("a snapshot holds a mix of two lists: {mixed:?}"),
                };
                seen[state] += 1;
            }
            seen
        }));
    }
    let (mut lag, mut total) = (Vec::new(), Vec::new());
    for (i, base) in [first, second, first, second].into_iter().enumerate() {
        let list = rules(base);
        let n = [&a, &b, &c][i % 3];
        let asked = Instant::now();
        let v =
            n.c.modify(None, None, false, |cfg| {
                cfg.access_rules = list;
                Ok(())
            })
            .unwrap();
        let answered = Instant::now();
        wait_until(
            "every node to run the 100k list",
            Duration::from_secs(60),
            || {
                [&a, &b, &c]
                    .iter()
                    .all(|n| n.c.running().version >= v.version)
            },
        );
        lag.push(answered.elapsed());
        total.push(asked.elapsed());
    }
    stop.store(true, Ordering::Release);
    for r in readers {
        let seen = r.join().unwrap();
        assert!(
            seen[1] > 0 && seen[2] > 0,
            "the readers saw both lists: {seen:?}"
        );
    }
    lag.sort();
    total.sort();
    eprintln!(
        "100k-rule list over {} changes, answer to live on all 3 nodes: p50 {:?}, p99 {:?}; request to live on all 3: p50 {:?}, p99 {:?}",
        lag.len(),
        quantile(&lag, 0.5),
        quantile(&lag, 0.99),
        quantile(&total, 0.5),
        quantile(&total, 0.99)
    );
    same_config(&[&a, &b, &c]);
    // Stored in chunks under the head; the chunks of the lists no longer used are collected.
    let (head, _, keys) = cluster.stored();
    assert!(head.bytes > 4_000_000, "{} bytes", head.bytes);
    assert!(head.chunks.len() >= 8, "{} chunks", head.chunks.len());
    let mut named: Vec<Vec<u8>> = head
        .chunks
        .iter()
        .map(|s| format!("{PREFIX}/chunks/{s}").into_bytes())
        .collect();
    named.sort();
    named.dedup();
    assert_eq!(keys, named, "only the head's chunks are left");
    let collected: u64 = [&a, &b, &c]
        .iter()
        .map(|n| n.status()["collected"].as_u64().unwrap())
        .sum();
    assert!(
        collected >= head.chunks.len() as u64,
        "collected {collected}"
    );
}

#[test]
fn a_node_restarted_while_etcd_is_down_serves_its_last_revision() {
    if !have_etcd() {
        return;
    }
    let mut cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let eps = cluster.endpoints();
    let a = Node::start(dir.path(), "a", &eps);
    let v = a.set_port(4242).unwrap();
    let rev = a.c.store_revision();
    a.stop();
    cluster.stop_all();
    let a = Node::start(dir.path(), "a", &eps);
    assert_eq!(a.port(), "tcp://192.0.2.1:4242");
    assert_eq!(a.c.running().version, v);
    assert_eq!(a.c.store_revision(), rev);
    let st = a.status();
    assert_eq!(st["stale"], serde_json::json!(true), "{st}");
    assert_eq!(st["revision"].as_i64(), Some(rev));
    // etcd back: it follows again with nothing to apply.
    cluster.start_all();
    wait_until("a to follow again", Duration::from_secs(30), || {
        a.status()["stale"] == serde_json::json!(false)
    });
    assert_eq!(a.c.running().version, v);
    assert_eq!(a.c.store_revision(), rev);
}

#[test]
fn a_cut_node_resumes_after_a_compaction_and_reads_a_rebuilt_etcd_whole() {
    if !have_etcd() {
        return;
    }
    let mut cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let a = Node::start(dir.path(), "a", &cluster.endpoints());
    let relay = Relay::new(&cluster.clients);
    let b = Node::start(dir.path(), "b", &relay.endpoints());
    // b cut off; a makes changes and etcd compacts past b's last revision.
    relay.cut();
    wait_until("b to report stale", Duration::from_secs(15), || {
        b.status()["stale"] == serde_json::json!(true)
    });
    for port in [8001, 8002, 8003] {
        a.set_port(port).unwrap();
    }
    cluster.compact();
    relay.mend();
    wait_until(
        "b to catch up after the compaction",
        Duration::from_secs(30),
        || b.port() == "tcp://192.0.2.1:8003",
    );
    same_config(&[&a, &b]);
    // etcd rebuilt empty (another cluster, revisions from 1 again) while b is cut off, and
    // someone stores another configuration there first: b reads it whole and applies it.
    relay.cut();
    wait_until("b to report stale", Duration::from_secs(15), || {
        b.status()["stale"] == serde_json::json!(true)
    });
    a.stop();
    let old_revision = b.c.store_revision();
    cluster.rebuild();
    let mut other = Config::from_toml_str(LAB).unwrap();
    other.spectrum_apps[0].origin_direct = vec!["tcp://192.0.2.1:9999".parse().unwrap()];
    let store = control::fleet::Store::new(
        Source::parse(&format!("etcd://{}{PREFIX}", cluster.endpoints().join(","))).unwrap(),
    );
    let doc = control::fleet::document(&other).unwrap();
    let committed = Cluster::rt()
        .block_on(store.commit(&doc, 1, 0, "operator"))
        .unwrap();
    let control::fleet::Committed::Switched(new_rev, _) = committed else {
        panic!("{committed:?}")
    };
    assert!(new_rev < old_revision, "{new_rev} < {old_revision}");
    relay.mend();
    wait_until(
        "b to read the rebuilt etcd",
        Duration::from_secs(30),
        || b.port() == "tcp://192.0.2.1:9999",
    );
    assert_eq!(b.c.store_revision(), new_rev);
    assert!(b.status()["reloads"].as_u64().unwrap() >= 1);
    assert!(
        b.c.running().version > 1,
        "versions keep growing on the node"
    );
}

#[test]
fn a_revision_a_node_cannot_apply_is_reported_and_leaves_it_on_its_last_good_one() {
    if !have_etcd() {
        return;
    }
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let eps = cluster.endpoints();
    let a = Node::start(dir.path(), "a", &eps);
    let good = a.c.store_revision();
    // A revision that needs a restart (another flow table size) written by an operator.
    let mut next = a.c.running().config.clone();
    next.flows.capacity *= 2;
    let store = control::fleet::Store::new(
        Source::parse(&format!("etcd://{}{PREFIX}", eps.join(","))).unwrap(),
    );
    let doc = control::fleet::document(&next).unwrap();
    let v = a.c.running().version + 1;
    let control::fleet::Committed::Switched(bad, _) = Cluster::rt()
        .block_on(store.commit(&doc, v, good, "operator"))
        .unwrap()
    else {
        panic!("the head moved")
    };
    wait_until("a to report the refusal", Duration::from_secs(10), || {
        a.status()["refused"]["revision"].as_i64() == Some(bad)
    });
    let st = a.status();
    assert_eq!(st["refused"]["code"], 1006, "{st}");
    assert!(
        st["refused"]["reason"]
            .as_str()
            .unwrap()
            .contains("flows.capacity"),
        "{st}"
    );
    assert_eq!(
        a.c.store_revision(),
        good,
        "still on the last good revision"
    );
    // The next good revision applies.
    next.flows.capacity /= 2;
    next.spectrum_apps[0].origin_direct = vec!["tcp://192.0.2.1:2222".parse().unwrap()];
    let doc = control::fleet::document(&next).unwrap();
    Cluster::rt()
        .block_on(store.commit(&doc, v + 1, bad, "operator"))
        .unwrap();
    wait_until(
        "a to apply the next good revision",
        Duration::from_secs(10),
        || a.port() == "tcp://192.0.2.1:2222",
    );
    // A node that cannot load what is stored at all starts on its own file and says why: here
    // the stored fleet seed is a file this node does not have.
    let seed_file = dir.path().join("fleet.seed");
    std::fs::write(&seed_file, "33".repeat(32)).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&seed_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut seeded = Config::from_toml_str(LAB).unwrap();
    seeded.syn_cookies.secret = None;
    seeded.syn_cookies.fleet_seed = Some(control::config::Secret(
        seed_file.to_str().unwrap().to_string(),
    ));
    let head_now = cluster.stored().1;
    let doc = control::fleet::document(&seeded).unwrap();
    let control::fleet::Committed::Switched(seeded_rev, _) = Cluster::rt()
        .block_on(store.commit(&doc, v + 2, head_now, "operator"))
        .unwrap()
    else {
        panic!("the head moved")
    };
    std::fs::remove_file(&seed_file).unwrap();
    let b = Node::start(dir.path(), "b", &eps);
    let st = b.status();
    assert_eq!(st["refused"]["revision"].as_i64(), Some(seeded_rev), "{st}");
    assert!(
        st["refused"]["reason"]
            .as_str()
            .unwrap()
            .contains("fleet_seed"),
        "{st}"
    );
    assert_eq!(b.port(), "tcp://192.0.2.1:22", "b runs its own file");
}

/// A fleet seed rotated through one node is one change through etcd: every node, and a node
/// started afterwards, mints the same cookie at every second around the boundary at which it
/// takes effect, and takes the others' cookies. (The clocks are the nodes' own data-plane
/// clocks, set by the test.)
#[test]
fn a_fleet_seed_rotated_through_one_node_takes_effect_at_one_boundary_on_every_node() {
    use fastpath::syncookie::{CookieSecrets, CookieTuple, SynCookies};
    use std::sync::atomic::AtomicU64;
    if !have_etcd() {
        return;
    }
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let eps = cluster.endpoints();
    let mut lab = Config::from_toml_str(LAB).unwrap();
    lab.syn_cookies.secret = None;
    lab.syn_cookies.fleet_seed = Some(control::config::Secret("11".repeat(32)));
    let text = lab.to_toml_string().unwrap();
    // 40 s into an epoch of 60 s.
    let t0: u64 = 1_700_000_080;
    let node = |name: &str| {
        std::fs::write(dir.path().join(format!("{name}.toml")), &text).unwrap();
        let clock = Arc::new(AtomicU64::new(t0));
        let (n, secrets) = Node::start_with(dir.path(), name, &eps, Some(Arc::clone(&clock)));
        (n, secrets.unwrap(), clock)
    };
    let (a, sa, ca) = node("a");
    let (b, sb, _cb) = node("b");
    let t = CookieTuple {
        src: "198.51.100.20".parse().unwrap(),
        dst: "203.0.113.10".parse().unwrap(),
        sport: 40000,
        dport: 22,
    };
    let mint = |s: &CookieSecrets, at: u64, isn: u32| {
        let mut c = s.current();
        c.refresh(at);
        c.mint(at, &t, isn, 2)
    };
    let takes = |s: &CookieSecrets, at: u64, isn: u32, k: u32| {
        let mut c = s.current();
        c.refresh(at);
        c.check(at, &t, isn, k, false).is_ok()
    };
    let before = mint(&sa, t0 + 10, 1);
    // Rotate through a at t0 + 2: b learns of it from etcd.
    ca.store(t0 + 2, Ordering::Release);
    a.c.rotate_secret(None, Some([0x22; 32])).unwrap();
    wait_until("b to apply the rotation", Duration::from_secs(10), || {
        b.c.running().config.syn_cookies == a.c.running().config.syn_cookies
            && b.c.running().config.syn_cookies.fleet_seed_from == Some(t0 / 60 + 1)
    });
    // A node started after the rotation, from what is stored.
    let (_c, sc, _cc) = node("c");
    for at in (t0 - 40)..(t0 + 140) {
        let k = mint(&sa, at, at as u32);
        assert_eq!(k, mint(&sb, at, at as u32), "a and b at {at}");
        assert_eq!(k, mint(&sc, at, at as u32), "a and a late node at {at}");
        for s in [&sa, &sb, &sc] {
            assert!(
                takes(s, at + 59, at as u32, k),
                "minted at {at}, 59 s later"
            );
        }
    }
    // The old seed up to the boundary, the new one from it: as a node that only ever had
    // that seed mints.
    let only = |seed: [u8; 32], at: u64| {
        let mut c = SynCookies::fleet(seed, 60);
        c.refresh(at);
        c.mint(at, &t, 1, 2)
    };
    assert_eq!(before, only([0x11; 32], t0 + 10));
    for s in [&sa, &sb, &sc] {
        // t0 + 19 is the last second of the epoch of the rotation, t0 + 20 the next epoch's
        // first.
        assert_eq!(mint(s, t0 + 10, 1), only([0x11; 32], t0 + 10));
        assert_eq!(mint(s, t0 + 19, 1), only([0x11; 32], t0 + 19));
        assert_eq!(mint(s, t0 + 20, 1), only([0x22; 32], t0 + 20));
        assert_eq!(mint(s, t0 + 90, 1), only([0x22; 32], t0 + 90));
    }
}
