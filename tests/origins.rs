//! Every validated flow reaches its origin and back, live, end to end: namespaces `client`,
//! `edge` and `origin` joined by veth pairs (the lab), the fast path on the edge, real clients
//! (curl, the kernel's TCP through sockets opened in the client namespace, raw segments) and
//! real origins (nginx, and servers in the origin namespace written here) checking what
//! arrives byte for byte.
//!
//! Needs root, iproute2, tc, nft, ethtool, curl, nginx and hping3. Without them each test skips
//! with a loud message, unless `FASTPATH_REQUIRE_PRIVILEGED=1` (CI), which makes the skip a
//! failure. Each test builds its own lab under a name of its own and removes it, even when it
//! fails.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

mod common;

use common::call;
use common::live::{FastPath, privileged};
use fastpath_cli::lab::{Lab, LabSpec, in_ns};

/// Live tests share two cores and run floods: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const TOOLS: &[&str] = &["ip", "tc", "nft", "ethtool", "curl", "nginx", "hping3"];

/// The configuration every test starts from: the lab's prefixes and bindings, a short origin
/// connect timeout and drain, and the apps of `apps` (TOML).
fn config(apps: &str) -> String {
    format!(
        r#"[node]
name = "origins-test"

[proxy]
connect_timeout_secs = 2
drain_secs = 2

[[prefixes]]
cidr = "203.0.113.0/24"
[[prefixes]]
cidr = "2001:db8:100::/48"

[[bindings]]
cidr = "203.0.113.0/24"
service = "spectrum"
[[bindings]]
cidr = "203.0.113.128/25"
service = "cdn"
[[bindings]]
cidr = "2001:db8:100::/48"
service = "spectrum"

[[origin_policy.delegations]]
cidr = "192.0.2.0/24"

{apps}
"#
    )
}

/// A TCP app with one origin.
fn tcp_app(id: &str, ports: &str, edge_ips: &[&str], origin: &str, pp: &str) -> String {
    let ips: Vec<String> = edge_ips.iter().map(|i| format!("\"{i}\"")).collect();
    format!(
        "[[spectrum_apps]]\nid = \"{id}\"\nprotocol = \"tcp/{ports}\"\n\
         edge_ips = {{ type = \"static\", ips = [{}] }}\norigin_direct = [\"tcp://{origin}\"]\n\
         proxy_protocol = \"{pp}\"\n\n",
        ips.join(", ")
    )
}

/// A lab with the fast path running on `config`, its control socket, and a scratch directory.
struct Edge {
    fp: Option<FastPath>,
    lab: Lab,
    sock: PathBuf,
    dir: tempfile::TempDir,
}

impl Edge {
    fn start(name: &str, config: &str) -> Edge {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("edge.toml");
        std::fs::write(&cfg, config).unwrap();
        let compiled = control::config::Config::from_toml_str(config)
            .unwrap_or_else(|e| panic!("{e}"))
            .compile(1, &Default::default())
            .unwrap();
        let spec = fastpath_cli::cmd::lab::spec_for(name, 1, &compiled);
        let lab = Lab::up(LabSpec { queues: 1, ..spec })
            .unwrap_or_else(|e| panic!("building the lab: {e:#}"));
        let sock = dir.path().join("ctl.sock");
        let fp = FastPath::start(&lab, Some(&cfg), &["--control", sock.to_str().unwrap()]);
        Edge {
            fp: Some(fp),
            lab,
            sock,
            dir,
        }
    }

    /// `fastpath origin ARGS` in the origin namespace.
    fn origins(&self, args: &[&str]) -> fastpath_cli::lab::Origins {
        let args: Vec<String> = args.iter().map(ToString::to_string).collect();
        let log = self
            .dir
            .path()
            .join(format!("origin-{}.log", rand_u64() % 100_000));
        self.lab
            .start_origins(Path::new(env!("CARGO_BIN_EXE_fastpath")), &args, &log)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The connection events so far (`connect`, `disconnect`, `originError`, ...).
    fn events(&self) -> Vec<Value> {
        let (status, v) = call(&self.sock, "GET", "/v1/events?kind=connections", None);
        assert_eq!(status, 200, "{v}");
        v["result"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `pred` holds for the events (the workers' rings are drained every few tens
    /// of milliseconds).
    fn wait_events(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let e = self.events();
            if pred(&e) {
                return e;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{what}: {}",
                serde_json::to_string_pretty(&e).unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Gives the origin namespace one more address (for an origin the config names later).
    fn origin_addr(&self, ip: &str) {
        let ok = Command::new("ip")
            .args([
                "-n",
                &self.lab.origin,
                "addr",
                "add",
                &format!("{ip}/26"),
                "dev",
                "or0",
            ])
            .status()
            .unwrap();
        assert!(ok.success(), "adding {ip} to the origin namespace");
    }

    fn stats(&self) -> Value {
        let (status, v) = call(&self.sock, "GET", "/v1/stats", None);
        assert_eq!(status, 200, "{v}");
        v["result"].clone()
    }

    /// The sum of one worker counter over the Spectrum and CDN workers (0 until the daemon
    /// has its data plane: the control socket answers from its first moment).
    fn worker_sum(&self, path: &[&str]) -> u64 {
        let s = self.stats();
        s["workers"].as_array().map_or(0, |ws| {
            ws.iter()
                .map(|w| {
                    let mut v = w;
                    for p in path {
                        v = &v[*p];
                    }
                    v.as_u64().unwrap_or(0)
                })
                .sum()
        })
    }

    fn stop(mut self) -> Value {
        self.fp.take().expect("running").stop()
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish()
}

/// Deterministic pseudo-random bytes (xorshift64*), so both ends can hash the same stream.
struct Stream {
    state: u64,
}

impl Stream {
    fn new(seed: u64) -> Stream {
        Stream { state: seed | 1 }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            let v = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Writes `len` bytes of stream `seed` to `s`, then half-closes; returns their SHA-256.
fn send_stream(mut s: &TcpStream, seed: u64, len: usize) -> Vec<u8> {
    let mut g = Stream::new(seed);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        g.fill(&mut buf[..n]);
        s.write_all(&buf[..n]).unwrap();
        h.update(&buf[..n]);
        left -= n;
    }
    s.shutdown(Shutdown::Write).unwrap();
    h.finalize().to_vec()
}

/// Reads `s` to its end; returns the byte count and the SHA-256.
fn hash_stream(mut s: &TcpStream) -> (usize, Vec<u8>) {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                h.update(&buf[..k]);
                n += k;
            }
            Err(e) => panic!("reading after {n} bytes: {e}"),
        }
    }
    (n, h.finalize().to_vec())
}

/// A TCP listener in the origin namespace, bound before this returns.
fn listen(ns: &str, addr: &str, rcvbuf: Option<usize>, mss: Option<u32>) -> TcpListener {
    let addr: SocketAddr = addr.parse().unwrap();
    in_ns(ns, move || {
        let s = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .unwrap();
        s.set_reuse_address(true).unwrap();
        if let Some(b) = rcvbuf {
            s.set_recv_buffer_size(b).unwrap();
        }
        if let Some(m) = mss {
            s.set_tcp_mss(m).unwrap();
        }
        s.bind(&addr.into()).unwrap();
        s.listen(64).unwrap();
        TcpListener::from(s)
    })
    .join()
    .unwrap()
}

/// Connects from the client namespace, with the socket options given, within `timeout`.
fn connect_from(
    ns: &str,
    to: SocketAddr,
    rcvbuf: Option<usize>,
    mss: Option<u32>,
    local_port: Option<u16>,
) -> std::io::Result<TcpStream> {
    in_ns(ns, move || {
        let s = socket2::Socket::new(
            socket2::Domain::for_address(to),
            socket2::Type::STREAM,
            None,
        )?;
        if let Some(b) = rcvbuf {
            s.set_recv_buffer_size(b)?;
        }
        if let Some(m) = mss {
            s.set_tcp_mss(m)?;
        }
        if let Some(p) = local_port {
            s.set_reuse_address(true)?;
            let any: SocketAddr = if to.is_ipv4() {
                (std::net::Ipv4Addr::UNSPECIFIED, p).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, p).into()
            };
            s.bind(&any.into())?;
        }
        s.connect_timeout(&to.into(), Duration::from_secs(5))?;
        let s = TcpStream::from(s);
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(s)
    })
    .join()
    .unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The PROXY v1 line of seed 003, written out here (not by the code under test).
fn proxy_v1_line(client: SocketAddr, proxy: SocketAddr) -> Vec<u8> {
    let fam = if client.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {fam} {} {} {} {}\r\n",
        client.ip(),
        proxy.ip(),
        client.port(),
        proxy.port()
    )
    .into_bytes()
}

/// The PROXY v2 header of seed 003 (IPv4, TCP), byte by byte.
fn proxy_v2_bytes(client: SocketAddr, proxy: SocketAddr) -> Vec<u8> {
    let (IpAddr::V4(c), IpAddr::V4(p)) = (client.ip(), proxy.ip()) else {
        panic!("IPv4 only here");
    };
    let mut v = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v.extend_from_slice(&[0x21, 0x11, 0, 12]);
    v.extend_from_slice(&c.octets());
    v.extend_from_slice(&p.octets());
    v.extend_from_slice(&client.port().to_be_bytes());
    v.extend_from_slice(&proxy.port().to_be_bytes());
    v
}

/// An origin in the origin namespace that accepts one connection, reads the PROXY header
/// under test (a v1 line, or the 28 bytes of a v2 header for IPv4) and the line after it, and
/// answers `ok\n`.
fn first_bytes_origin(lab: &Lab, addr: &str, v2: bool) -> JoinHandle<(Vec<u8>, String)> {
    let l = listen(&lab.origin, addr, None, None);
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = if v2 {
            let mut h = vec![0u8; 28];
            s.read_exact(&mut h).unwrap();
            h
        } else {
            read_line(&s).into_bytes()
        };
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while s.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        s.write_all(b"ok\n").unwrap();
        (head, String::from_utf8_lossy(&line).to_string())
    })
}

/// nginx in the origin namespace with `servers` (server blocks), its files in `dir`.
struct Nginx {
    child: std::process::Child,
}

impl Nginx {
    fn start(lab: &Lab, dir: &Path, servers: &str) -> Nginx {
        let d = dir.display();
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
                 error_log {d}/nginx-error.log;\nevents {{}}\nhttp {{\n access_log off;\n\
                 client_body_temp_path {d};\n proxy_temp_path {d};\n fastcgi_temp_path {d};\n\
                 uwsgi_temp_path {d};\n scgi_temp_path {d};\n default_type text/plain;\n{servers}\n}}\n"
            ),
        )
        .unwrap();
        let child = Lab::exec(&lab.origin, "nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir)
            .spawn()
            .expect("nginx");
        std::thread::sleep(Duration::from_millis(500));
        Nginx { child }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Loads an nftables ruleset into namespace `ns`.
fn nft(ns: &str, rules: &[u8]) {
    let mut nft = Lab::exec(ns, "nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    nft.stdin.take().unwrap().write_all(rules).unwrap();
    assert!(nft.wait().unwrap().success(), "nft");
}

fn curl(lab: &Lab, url: &str) -> Result<String, String> {
    let out = Lab::exec(&lab.client, "curl")
        .args(["-sS", "-m", "10", "-g", url])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// 1. A real curl fetches a page from a real HTTP server (nginx) in the origin namespace
///    through a Spectrum app; nginx itself parses the PROXY v1 and v2 headers and names the
///    client; a test origin checks both headers byte for byte.
#[test]
fn curl_reaches_nginx_and_the_origin_gets_the_proxy_header_byte_for_byte() {
    if !privileged(
        "curl_reaches_nginx_and_the_origin_gets_the_proxy_header_byte_for_byte",
        TOOLS,
    ) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let apps = [
        tcp_app("web", "80", &["203.0.113.20"], "192.0.2.1:8080", "off"),
        tcp_app("web1", "81", &["203.0.113.20"], "192.0.2.1:8081", "v1"),
        tcp_app("web2", "82", &["203.0.113.20"], "192.0.2.1:8082", "v2"),
        tcp_app("pp1", "7001", &["203.0.113.20"], "192.0.2.2:7001", "v1"),
        tcp_app("pp2", "7002", &["203.0.113.20"], "192.0.2.2:7002", "v2"),
    ]
    .concat();
    let e = Edge::start("fpo-curl", &config(&apps));
    let _nginx = Nginx::start(
        &e.lab,
        e.dir.path(),
        "server { listen 192.0.2.1:8080; location / { return 200 \"hello from nginx: you are $remote_addr\\n\"; } }\n\
         server { listen 192.0.2.1:8081 proxy_protocol; location / { return 200 \"client $proxy_protocol_addr:$proxy_protocol_port\\n\"; } }\n\
         server { listen 192.0.2.1:8082 proxy_protocol; location / { return 200 \"client $proxy_protocol_addr:$proxy_protocol_port\\n\"; } }",
    );
    let page = curl(&e.lab, "http://203.0.113.20/").unwrap();
    assert_eq!(
        page, "hello from nginx: you are 192.0.2.62\n",
        "the edge connects from its own address"
    );
    for port in [81, 82] {
        let page = curl(&e.lab, &format!("http://203.0.113.20:{port}/")).unwrap();
        assert!(
            page.starts_with("client 192.0.2.130:"),
            "nginx read the client from the PROXY header on port {port}: {page}"
        );
    }
    // Byte for byte, with the client's own port.
    for (port, v2) in [(7001u16, false), (7002, true)] {
        let edge = SocketAddr::new("203.0.113.20".parse().unwrap(), port);
        let origin = first_bytes_origin(&e.lab, &format!("192.0.2.2:{port}"), v2);
        let client = connect_from(&e.lab.client, edge, None, None, None).unwrap();
        let me = client.local_addr().unwrap();
        let want = if v2 {
            proxy_v2_bytes(me, edge)
        } else {
            proxy_v1_line(me, edge)
        };
        (&client).write_all(b"after the header\n").unwrap();
        let mut ok = [0u8; 3];
        (&client).read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"ok\n");
        let (head, line) = origin.join().unwrap();
        assert_eq!(head, want, "the PROXY header on port {port}");
        assert_eq!(line, "after the header");
    }
    let events = e.wait_events("five disconnects", |ev| {
        ev.iter().filter(|x| x["kind"] == "disconnect").count() >= 5
    });
    for x in events.iter().filter(|x| x["kind"] == "disconnect") {
        let d = &x["detail"];
        assert_eq!(d["status"], 200, "{x}");
        assert!(
            d["client"].as_str().unwrap().starts_with("192.0.2.130:"),
            "{x}"
        );
        assert!(d["origin"].as_str().unwrap().starts_with("192.0.2."), "{x}");
        assert!(d["bytes_egress"].as_u64().unwrap() > 0, "{x}");
    }
    e.stop();
}

/// 2. A port-range app: edge port lo+k reaches origin port lo'+k.
#[test]
fn a_port_range_app_keeps_the_offset() {
    if !privileged("a_port_range_app_keeps_the_offset", TOOLS) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = Edge::start(
        "fpo-range",
        &config(&tcp_app(
            "range",
            "6000-6010",
            &["203.0.113.21"],
            "192.0.2.3:7000-7010",
            "off",
        )),
    );
    for k in [0u16, 1, 7, 10] {
        let l = listen(
            &e.lab.origin,
            &format!("192.0.2.3:{}", 7000 + k),
            None,
            None,
        );
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let port = s.local_addr().unwrap().port();
            s.write_all(format!("origin port {port}\n").as_bytes())
                .unwrap();
        });
        let c = connect_from(
            &e.lab.client,
            sa(&format!("203.0.113.21:{}", 6000 + k)),
            None,
            None,
            None,
        )
        .unwrap();
        let (_, _) = (c.local_addr(), ());
        let mut got = String::new();
        (&c).read_to_string(&mut got).unwrap();
        assert_eq!(
            got,
            format!("origin port {}\n", 7000 + k),
            "edge port {}",
            6000 + k
        );
        t.join().unwrap();
    }
    e.stop();
}

/// What one side of a bulk transfer saw: bytes received, their hash, the hash of what it sent.
type Transfer = (usize, Vec<u8>, Vec<u8>);

/// The bulk origin: for each connection, hashes what arrives and sends 50 MB of stream
/// `seed`, then half-closes; reports (received bytes, received hash, sent hash).
fn bulk_origin(l: TcpListener, conns: usize, seed: u64, len: usize) -> JoinHandle<Vec<Transfer>> {
    std::thread::spawn(move || {
        (0..conns)
            .map(|_| {
                let (s, _) = l.accept().unwrap();
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let w = s.try_clone().unwrap();
                let sender = std::thread::spawn(move || send_stream(&w, seed, len));
                let (n, h) = hash_stream(&s);
                (n, h, sender.join().unwrap())
            })
            .collect()
    })
}

/// 3. 50 MB each way through one connection, client and origin with different window scales
///    and MSS: the same bytes on both ends, no stall; over IPv4, IPv6 and a VLAN tag.
#[test]
fn fifty_megabytes_each_way_arrive_intact_over_ipv4_ipv6_and_vlan() {
    if !privileged(
        "fifty_megabytes_each_way_arrive_intact_over_ipv4_ipv6_and_vlan",
        TOOLS,
    ) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 203.0.113.10 is the lab's first IPv4 edge IP: the client reaches it in VLAN 100.
    let e = Edge::start(
        "fpo-bulk",
        &config(&tcp_app(
            "bulk",
            "5001",
            &["203.0.113.10", "203.0.113.22", "2001:db8:100:1::22"],
            "192.0.2.4:5001",
            "off",
        )),
    );
    const LEN: usize = 50 << 20;
    // The origin: a small receive buffer (a small window scale) and MSS 1200; the client: a
    // large one and MSS 1000.
    let l = listen(&e.lab.origin, "192.0.2.4:5001", Some(96 * 1024), Some(1200));
    let origin = bulk_origin(l, 3, 0xfeed, LEN);
    for (i, (host, what)) in [
        ("203.0.113.10:5001", "VLAN 100"),
        ("203.0.113.22:5001", "IPv4"),
        ("[2001:db8:100:1::22]:5001", "IPv6"),
    ]
    .into_iter()
    .enumerate()
    {
        let started = Instant::now();
        let c = connect_from(&e.lab.client, sa(host), Some(4 << 20), Some(1000), None)
            .unwrap_or_else(|err| panic!("{what}: {err}"));
        let w = c.try_clone().unwrap();
        let seed = 0xc1 + i as u64;
        let sender = std::thread::spawn(move || send_stream(&w, seed, LEN));
        let (n, got) = hash_stream(&c);
        let sent = sender.join().unwrap();
        assert_eq!(n, LEN, "{what}: the client got every byte");
        assert_eq!(
            got,
            stream_hash(0xfeed, LEN),
            "{what}: origin to client intact"
        );
        let _ = sent;
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(120),
            "{what}: stalled ({took:?})"
        );
    }
    let results = origin.join().unwrap();
    for (i, (n, got, _)) in results.iter().enumerate() {
        assert_eq!(*n, LEN, "connection {i}: the origin got every byte");
        assert_eq!(
            *got,
            stream_hash(0xc1 + i as u64, LEN),
            "connection {i}: client to origin intact"
        );
    }
    let r = e.stop();
    assert_eq!(r["connects"], 3, "{r}");
}

/// A raw TCP client in the client namespace: it sends the handshake's segments itself, so the
/// validating ACK can carry data and be sent again. The client kernel's RSTs for this port
/// (it has no socket) are dropped by an nftables rule.
struct RawClient {
    send: socket2::Socket,
    recv: socket2::Socket,
}

impl RawClient {
    fn new() -> RawClient {
        use socket2::{Domain, Protocol, Socket, Type};
        RawClient {
            send: Socket::new(
                Domain::IPV4,
                Type::RAW,
                Some(Protocol::from(libc::IPPROTO_RAW)),
            )
            .unwrap(),
            recv: Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)).unwrap(),
        }
    }

    fn segment(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: Option<u32>,
        payload: &[u8],
    ) {
        let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
            unreachable!()
        };
        let b = etherparse::PacketBuilder::ipv4(s.octets(), d.octets(), 64).tcp(
            src.port(),
            dst.port(),
            seq,
            64240,
        );
        let mut pkt = Vec::new();
        match ack {
            None => b
                .syn()
                .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
                .unwrap()
                .write(&mut pkt, payload)
                .unwrap(),
            Some(a) => b.ack(a).psh().write(&mut pkt, payload).unwrap(),
        }
        self.send.send_to(&pkt, &dst.into()).unwrap();
    }

    /// The next SYN-ACK from `from` to `to`: its sequence number (the cookie).
    fn syn_ack(&self, from: SocketAddr, to: SocketAddr) -> u32 {
        self.recv
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 2048];
        while started.elapsed() < Duration::from_secs(5) {
            let Ok(n) = (&self.recv).read(&mut buf) else {
                continue;
            };
            let Ok(p) = etherparse::SlicedPacket::from_ip(&buf[..n]) else {
                continue;
            };
            if let (Some(etherparse::NetSlice::Ipv4(ip)), Some(etherparse::TransportSlice::Tcp(t))) =
                (&p.net, &p.transport)
                && IpAddr::V4(ip.header().source_addr()) == from.ip()
                && IpAddr::V4(ip.header().destination_addr()) == to.ip()
                && t.source_port() == from.port()
                && t.destination_port() == to.port()
                && t.syn()
                && t.ack()
            {
                return t.sequence_number();
            }
        }
        panic!("no SYN-ACK from {from} to {to}");
    }
}

/// Reads one line (up to `\n`, at most 200 bytes).
fn read_line(mut s: &TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 200 && s.read(&mut b).unwrap_or(0) == 1 {
        line.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    String::from_utf8_lossy(&line).to_string()
}

/// 4. Data on the validating ACK (a client that sends at once) arrives intact and first; the
///    validating ACK sent twice more never opens a second origin connection; an origin that
///    speaks first (a banner) works with PROXY v1 and v2.
#[test]
fn data_on_the_validating_ack_arrives_first_and_once_and_speaking_first_origins_work() {
    if !privileged(
        "data_on_the_validating_ack_arrives_first_and_once_and_speaking_first_origins_work",
        TOOLS,
    ) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let apps = [
        tcp_app("raw", "5002", &["203.0.113.22"], "192.0.2.5:5002", "off"),
        tcp_app("banner1", "5003", &["203.0.113.22"], "192.0.2.5:5003", "v1"),
        tcp_app("banner2", "5004", &["203.0.113.22"], "192.0.2.5:5004", "v2"),
    ]
    .concat();
    let e = Edge::start("fpo-first", &config(&apps));
    nft(&e.lab.client, b"table inet rawtest {\n chain out {\n  type filter hook output priority 0; policy accept;\n  ip daddr 203.0.113.22 tcp dport 5002 tcp flags & rst == rst drop\n }\n}\n");

    let l = listen(&e.lab.origin, "192.0.2.5:5002", None, None);
    l.set_nonblocking(true).unwrap();
    let origin = std::thread::spawn(move || {
        let started = Instant::now();
        let mut accepted = Vec::new();
        while started.elapsed() < Duration::from_secs(4) {
            match l.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_millis(1500)))
                        .unwrap();
                    accepted.push(s);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        let first = accepted.first().map(|mut s| {
            let mut got = Vec::new();
            let mut b = [0u8; 256];
            while let Ok(n) = s.read(&mut b) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&b[..n]);
            }
            got
        });
        (accepted.len(), first)
    });
    let client = sa("192.0.2.130:45678");
    let edge = sa("203.0.113.22:5002");
    in_ns(&e.lab.client, move || {
        let raw = RawClient::new();
        let isn = 777_000u32;
        raw.segment(client, edge, isn, None, b"");
        let cookie = raw.syn_ack(edge, client);
        for _ in 0..3 {
            raw.segment(
                client,
                edge,
                isn + 1,
                Some(cookie.wrapping_add(1)),
                b"HELLO-FIRST",
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    })
    .join()
    .unwrap();
    let (accepts, first) = origin.join().unwrap();
    assert_eq!(
        accepts, 1,
        "one origin connection for the validating ACK sent three times"
    );
    assert_eq!(
        first.as_deref(),
        Some(&b"HELLO-FIRST"[..]),
        "the ACK's data, first and once"
    );
    let ev = e.wait_events("the raw client's connect", |ev| {
        ev.iter()
            .any(|x| x["detail"]["client"] == "192.0.2.130:45678")
    });
    assert_eq!(
        ev.iter()
            .filter(|x| x["kind"] == "connect" && x["detail"]["client"] == "192.0.2.130:45678")
            .count(),
        1,
        "one connection"
    );

    // Origins that speak first.
    for (port, v2) in [(5003u16, false), (5004, true)] {
        let l = listen(&e.lab.origin, &format!("192.0.2.5:{port}"), None, None);
        let origin = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.write_all(b"SSH-2.0-origin\r\n").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let header = if v2 {
                let mut h = vec![0u8; 28];
                s.read_exact(&mut h).unwrap();
                h
            } else {
                read_line(&s).into_bytes()
            };
            let mut ping = [0u8; 5];
            s.read_exact(&mut ping).unwrap();
            s.write_all(&ping).unwrap();
            header
        });
        let edge = SocketAddr::new("203.0.113.22".parse().unwrap(), port);
        let c = connect_from(&e.lab.client, edge, None, None, None).unwrap();
        assert_eq!(
            read_line(&c),
            "SSH-2.0-origin\r\n",
            "the banner, before the client said anything"
        );
        (&c).write_all(b"ping\n").unwrap();
        let mut back = [0u8; 5];
        (&c).read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ping\n");
        let me = c.local_addr().unwrap();
        let header = origin.join().unwrap();
        let want = if v2 {
            proxy_v2_bytes(me, edge)
        } else {
            proxy_v1_line(me, edge)
        };
        assert_eq!(
            header,
            want,
            "PROXY {} to an origin that speaks first",
            if v2 { "v2" } else { "v1" }
        );
    }
    e.stop();
}

/// 5. UDP with Simple Proxy Protocol: the origin sees the 38-byte header with the client's
///    address; the client gets its echo without it; a datagram from the origin without a
///    valid header is dropped and counted.
#[test]
fn udp_with_simple_proxy_protocol_both_ways() {
    if !privileged("udp_with_simple_proxy_protocol_both_ways", TOOLS) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let app = "[[spectrum_apps]]\nid = \"game\"\nprotocol = \"udp/5005\"\n\
               edge_ips = { type = \"static\", ips = [\"203.0.113.23\"] }\n\
               origin_direct = [\"udp://192.0.2.6:5005\"]\nproxy_protocol = \"simple\"\n";
    let e = Edge::start("fpo-udp", &config(app));
    let origin_sock = in_ns(&e.lab.origin, || UdpSocket::bind("192.0.2.6:5005").unwrap())
        .join()
        .unwrap();
    let origin = std::thread::spawn(move || {
        origin_sock
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = origin_sock.recv_from(&mut buf).unwrap();
        origin_sock.send_to(b"no header at all", from).unwrap();
        origin_sock.send_to(&buf[..n], from).unwrap();
        buf[..n].to_vec()
    });
    let (me, replies) = in_ns(&e.lab.client, || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.send_to(b"ping", "203.0.113.23:5005").unwrap();
        let mut replies = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            assert_eq!(
                from,
                sa("203.0.113.23:5005"),
                "from the edge address and port"
            );
            replies.push(buf[..n].to_vec());
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        }
        (s.local_addr().unwrap(), replies)
    })
    .join()
    .unwrap();
    let got = origin.join().unwrap();
    let IpAddr::V4(client_ip) = "192.0.2.130".parse().unwrap() else {
        unreachable!()
    };
    let mut want = vec![0x56, 0xec];
    want.extend_from_slice(&client_ip.to_ipv6_mapped().octets());
    want.extend_from_slice(
        &"203.0.113.23"
            .parse::<std::net::Ipv4Addr>()
            .unwrap()
            .to_ipv6_mapped()
            .octets(),
    );
    want.extend_from_slice(&me.port().to_be_bytes());
    want.extend_from_slice(&5005u16.to_be_bytes());
    want.extend_from_slice(b"ping");
    assert_eq!(
        got, want,
        "the origin got the SPP header of seed 003, then the payload"
    );
    assert_eq!(
        replies,
        vec![b"ping".to_vec()],
        "one echo, without its header; the other dropped"
    );
    let started = Instant::now();
    while e.worker_sum(&["spp_invalid"]) == 0 && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(e.worker_sum(&["spp_invalid"]), 1, "counted");
    e.stop();
}

/// An echo origin in the origin namespace for `conns` connections (one thread each).
fn echo_origin(lab: &Lab, addr: &str, conns: usize) -> JoinHandle<usize> {
    let l = listen(&lab.origin, addr, None, None);
    std::thread::spawn(move || {
        let mut served = 0;
        let mut threads = Vec::new();
        for s in l.incoming().take(conns) {
            let Ok(mut s) = s else { continue };
            served += 1;
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = s.shutdown(Shutdown::Write);
            }));
        }
        for t in threads {
            let _ = t.join();
        }
        served
    })
}

/// 6. While `hping3 --flood -S --rand-source` hits the same app, 200 sequential real
///    connections all complete and carry their bytes.
#[test]
fn two_hundred_connections_complete_during_a_syn_flood() {
    if !privileged("two_hundred_connections_complete_during_a_syn_flood", TOOLS) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = Edge::start(
        "fpo-flood",
        &config(&tcp_app(
            "flooded",
            "5006",
            &["203.0.113.24"],
            "192.0.2.7:5006",
            "off",
        )),
    );
    let origin = echo_origin(&e.lab, "192.0.2.7:5006", 200);
    let mut flood = Lab::exec(&e.lab.client, "timeout")
        .args([
            "-s",
            "INT",
            "120",
            "hping3",
            "-q",
            "--flood",
            "-S",
            "--rand-source",
            "-p",
            "5006",
            "203.0.113.24",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let ns = e.lab.client.clone();
    let results = in_ns(&ns, || {
        (0..200u32)
            .map(|i| -> Result<(), String> {
                let c =
                    TcpStream::connect_timeout(&sa("203.0.113.24:5006"), Duration::from_secs(10))
                        .map_err(|e| format!("connect {i}: {e}"))?;
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let msg: Vec<u8> = (0..1000u32).map(|k| (k * 7 + i) as u8).collect();
                (&c).write_all(&msg)
                    .map_err(|e| format!("write {i}: {e}"))?;
                c.shutdown(Shutdown::Write).unwrap();
                let mut back = Vec::new();
                (&c).read_to_end(&mut back)
                    .map_err(|e| format!("read {i}: {e}"))?;
                if back == msg {
                    Ok(())
                } else {
                    Err(format!("connection {i}: {} bytes back", back.len()))
                }
            })
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    let _ = Command::new("kill")
        .args(["-INT", &flood.id().to_string()])
        .status();
    let _ = flood.wait();
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of 200 failed: {failed:?}",
        failed.len()
    );
    assert_eq!(origin.join().unwrap(), 200);
    let r = e.stop();
    // Answered by the XDP program (or by the queues with --cookies userspace).
    let syns = ["xdp", "pipeline"]
        .iter()
        .map(|p| r[*p]["reasons"]["syn_cookie"].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert!(syns > 10_000, "the flood reached the edge: {syns} SYN-ACKs");
}

/// 7. Origin down, refusing and silent: the client gets a RST; the events carry 521 and 522.
#[test]
fn an_origin_that_refuses_or_is_silent_resets_the_client_with_521_and_522() {
    if !privileged(
        "an_origin_that_refuses_or_is_silent_resets_the_client_with_521_and_522",
        TOOLS,
    ) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let apps = [
        tcp_app(
            "refusing",
            "5007",
            &["203.0.113.26"],
            "192.0.2.8:5007",
            "off",
        ),
        tcp_app("silent", "5008", &["203.0.113.26"], "192.0.2.8:5008", "off"),
    ]
    .concat();
    let e = Edge::start("fpo-down", &config(&apps));
    nft(&e.lab.origin, b"table inet silent {\n chain in {\n  type filter hook input priority 0; policy accept;\n  tcp dport 5008 drop\n }\n}\n");
    for (port, at_least) in [(5007u16, Duration::ZERO), (5008, Duration::from_secs(2))] {
        let started = Instant::now();
        let c = connect_from(
            &e.lab.client,
            SocketAddr::new("203.0.113.26".parse().unwrap(), port),
            None,
            None,
            None,
        )
        .unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 16];
        let r = (&c).read(&mut b);
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "port {port}: the client gets a RST: {r:?}"
        );
        assert!(
            started.elapsed() >= at_least,
            "port {port}: after the connect timeout"
        );
    }
    let ev = e.wait_events("two origin errors", |ev| {
        ev.iter().filter(|x| x["kind"] == "originError").count() >= 2
    });
    let codes: Vec<(String, u64)> = ev
        .iter()
        .filter(|x| x["kind"] == "originError")
        .map(|x| {
            (
                x["detail"]["app"].as_str().unwrap_or("").to_string(),
                x["detail"]["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![("refusing".to_string(), 521), ("silent".to_string(), 522)]
    );
    assert_eq!(
        ev.iter().filter(|x| x["kind"] == "connect").count(),
        2,
        "one connect event each, then the error"
    );
    e.stop();
}

/// The backend each client port reached, from the origins' log of PROXY v2 headers.
fn backends(log: &str) -> std::collections::BTreeMap<u16, String> {
    log.lines()
        .filter_map(|l| {
            let backend = l.strip_prefix("echo ")?.split(": ").next()?.to_string();
            let client = l.split("client=").nth(1)?.split(' ').next()?;
            Some((client.parse::<SocketAddr>().ok()?.port(), backend))
        })
        .collect()
}

/// The backends of the log lines after the first `skip`, once there are `n` of them (the
/// origins print asynchronously).
fn wait_backends(
    o: &fastpath_cli::lab::Origins,
    skip: usize,
    n: usize,
) -> std::collections::BTreeMap<u16, String> {
    let started = Instant::now();
    loop {
        let log = o.log();
        let later: String = log.lines().skip(skip).collect::<Vec<_>>().join("\n");
        let b = backends(&later);
        if b.len() >= n || started.elapsed() > Duration::from_secs(10) {
            return b;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// 8. CDN: three backends chosen by Maglev; flows spread across them; removing one keeps the
///    others' open flows and moves about a third of new flows (and none of the others').
#[test]
fn cdn_flows_spread_over_three_backends_and_a_removal_moves_only_its_own() {
    if !privileged(
        "cdn_flows_spread_over_three_backends_and_a_removal_moves_only_its_own",
        TOOLS,
    ) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pool = "[cdn]\npool = [\"tcp://192.0.2.50:443\", \"tcp://192.0.2.51:443\", \"tcp://192.0.2.52:443\"]\n";
    let e = Edge::start("fpo-cdn", &config(pool));
    let o = e.origins(&[
        "--echo",
        "192.0.2.50:443",
        "--echo",
        "192.0.2.51:443",
        "--echo",
        "192.0.2.52:443",
    ]);
    let edge = sa("203.0.113.130:443");
    let ports: Vec<u16> = (41_000..41_060).collect();
    let open = |round: &str| -> Vec<(u16, TcpStream)> {
        ports
            .iter()
            .map(|&p| {
                let c = connect_from(&e.lab.client, edge, None, None, Some(p))
                    .unwrap_or_else(|err| panic!("{round}: port {p}: {err}"));
                (&c).write_all(b"hi\n").unwrap();
                assert_eq!(read_line(&c), "hi\n", "{round}: port {p}");
                (p, c)
            })
            .collect()
    };
    let first = open("before");
    let b1 = wait_backends(&o, 0, 60);
    assert_eq!(b1.len(), 60, "{}", o.log());
    for b in ["192.0.2.50:443", "192.0.2.51:443", "192.0.2.52:443"] {
        let n = b1.values().filter(|x| *x == b).count();
        assert!(n >= 8, "flows spread: {n} of 60 on {b}");
    }
    let (status, v) = call(
        &e.sock,
        "PATCH",
        "/v1/cdn",
        Some(r#"{"pool": ["tcp://192.0.2.50:443", "tcp://192.0.2.51:443"]}"#),
    );
    assert_eq!(status, 200, "{v}");
    // Within the drain time every open flow still works; then the removed backend's close and
    // the others' keep working.
    for (p, c) in &first {
        (&*c).write_all(b"again\n").unwrap();
        assert_eq!(read_line(c), "again\n", "port {p} right after the change");
    }
    std::thread::sleep(Duration::from_secs(4));
    for (p, c) in &first {
        let removed = b1[p] == "192.0.2.52:443";
        let w = (&*c).write_all(b"later\n");
        let line = if w.is_ok() {
            read_line(c)
        } else {
            String::new()
        };
        if removed {
            assert_eq!(line, "", "port {p}: drained from the removed backend");
        } else {
            assert_eq!(
                line, "later\n",
                "port {p}: a remaining backend's flow is kept"
            );
        }
    }
    for (_, c) in first {
        // A RST: nothing lingers, so the same ports can connect again at once.
        socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = o.log().lines().count();
    let second = open("after");
    let b2 = wait_backends(&o, before, 60);
    assert_eq!(b2.len(), 60, "{}", o.log());
    let mut moved = 0;
    for p in &ports {
        if b1[p] == "192.0.2.52:443" {
            assert_ne!(
                b2[p], "192.0.2.52:443",
                "port {p} cannot stay on the removed backend"
            );
            moved += 1;
        } else if b1[p] != b2[p] {
            panic!(
                "port {p} moved from {} to {}: only the removed backend's flows may move",
                b1[p], b2[p]
            );
        }
    }
    let share = f64::from(moved) / 60.0;
    assert!(
        (0.15..=0.5).contains(&share),
        "about a third moved: {moved} of 60"
    );
    drop(second);
    e.stop();
}

/// A client transfer of `len` bytes each way to `edge`, paced so that it takes a while.
fn paced_transfer(ns: &str, edge: SocketAddr, seed: u64, len: usize) -> JoinHandle<Transfer> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        let c = connect_from(&ns, edge, None, None, None).unwrap();
        let w = c.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let mut g = Stream::new(seed);
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(buf.len());
                g.fill(&mut buf[..n]);
                (&w).write_all(&buf[..n]).unwrap();
                h.update(&buf[..n]);
                left -= n;
                std::thread::sleep(Duration::from_millis(4));
            }
            w.shutdown(Shutdown::Write).unwrap();
            h.finalize().to_vec()
        });
        let (n, got) = hash_stream(&c);
        (n, got, sender.join().unwrap())
    })
}

fn stream_hash(seed: u64, len: usize) -> Vec<u8> {
    let mut g = Stream::new(seed);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let k = left.min(buf.len());
        g.fill(&mut buf[..k]);
        h.update(&buf[..k]);
        left -= k;
    }
    h.finalize().to_vec()
}

/// 9. A live configuration change during transfers: a new app serves at once, an app moved to
///    another origin sends its new flows there, and the open transfers finish intact.
#[test]
fn a_live_change_during_transfers_serves_new_flows_and_keeps_open_ones() {
    if !privileged(
        "a_live_change_during_transfers_serves_new_flows_and_keeps_open_ones",
        TOOLS,
    ) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = config(&tcp_app(
        "xfer",
        "5009",
        &["203.0.113.25"],
        "192.0.2.9:5009",
        "off",
    ))
    .replace("drain_secs = 2", "drain_secs = 600");
    let e = Edge::start("fpo-change", &cfg);
    const LEN: usize = 24 << 20;
    let l = listen(&e.lab.origin, "192.0.2.9:5009", None, None);
    let origin = bulk_origin(l, 2, 0xabc, LEN);
    let edge = sa("203.0.113.25:5009");
    let t1 = paced_transfer(&e.lab.client, edge, 1, LEN);
    let t2 = paced_transfer(&e.lab.client, edge, 2, LEN);
    std::thread::sleep(Duration::from_millis(400));
    // A new app, then at once a connection to it.
    e.origin_addr("192.0.2.10");
    e.origin_addr("192.0.2.11");
    let echo = echo_origin(&e.lab, "192.0.2.10:5010", 1);
    let (status, v) = call(
        &e.sock,
        "POST",
        "/client/v4/zones/z/spectrum/apps",
        Some(
            r#"{"id": "fresh", "protocol": "tcp/5010", "edge_ips": {"type": "static", "ips": ["203.0.113.25"]}, "origin_direct": ["tcp://192.0.2.10:5010"]}"#,
        ),
    );
    assert_eq!(status, 200, "{v}");
    let c = connect_from(&e.lab.client, sa("203.0.113.25:5010"), None, None, None).unwrap();
    (&c).write_all(b"new app\n").unwrap();
    assert_eq!(read_line(&c), "new app\n");
    drop(c);
    // The transferring app moves to another origin: new flows go there.
    let moved = echo_origin(&e.lab, "192.0.2.11:5009", 1);
    let (status, v) = call(
        &e.sock,
        "PUT",
        "/client/v4/zones/z/spectrum/apps/xfer",
        Some(
            r#"{"protocol": "tcp/5009", "edge_ips": {"type": "static", "ips": ["203.0.113.25"]}, "origin_direct": ["tcp://192.0.2.11:5009"]}"#,
        ),
    );
    assert_eq!(status, 200, "{v}");
    assert!(
        !t1.is_finished() && !t2.is_finished(),
        "the transfers were still running when the app moved"
    );
    let c = connect_from(&e.lab.client, edge, None, None, None).unwrap();
    (&c).write_all(b"moved\n").unwrap();
    assert_eq!(read_line(&c), "moved\n", "the new origin answers");
    drop(c);
    assert_eq!(moved.join().unwrap(), 1);
    assert_eq!(echo.join().unwrap(), 1);
    for (i, t) in [t1, t2].into_iter().enumerate() {
        let (n, got, _) = t.join().unwrap();
        assert_eq!(n, LEN, "transfer {i}: every byte back");
        assert_eq!(got, stream_hash(0xabc, LEN), "transfer {i}: intact");
    }
    let at_origin = origin.join().unwrap();
    let mut seeds: Vec<Vec<u8>> = at_origin.iter().map(|(_, h, _)| h.clone()).collect();
    seeds.sort();
    let mut want = vec![stream_hash(1, LEN), stream_hash(2, LEN)];
    want.sort();
    assert_eq!(seeds, want, "both uploads intact at the old origin");
    e.stop();
}

/// Local routes of the fast path (protocol 245) in namespace `ns`.
fn our_routes(ns: &str) -> Vec<String> {
    let mut out = Vec::new();
    for fam in ["-4", "-6"] {
        let o = Lab::exec(ns, "ip")
            .args([fam, "route", "show", "table", "local", "proto", "245"])
            .output()
            .unwrap();
        out.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    out
}

/// 10. `kill -9` of the fast path: after the restart (and its clean stop) no local route, XDP
///     program or socket of it is left behind.
#[test]
fn kill_9_leaves_no_route_program_or_socket_after_a_restart() {
    if !privileged(
        "kill_9_leaves_no_route_program_or_socket_after_a_restart",
        TOOLS,
    ) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut e = Edge::start(
        "fpo-kill",
        &config(&tcp_app(
            "k",
            "5011",
            &["203.0.113.27"],
            "192.0.2.12:5011",
            "off",
        )),
    );
    let origin = echo_origin(&e.lab, "192.0.2.12:5011", 3);
    let c = connect_from(&e.lab.client, sa("203.0.113.27:5011"), None, None, None).unwrap();
    (&c).write_all(b"one\n").unwrap();
    assert_eq!(read_line(&c), "one\n");
    let routes = our_routes(&e.lab.edge);
    assert_eq!(routes.len(), 2, "both prefixes local: {routes:?}");
    e.fp.take().unwrap().kill9();
    assert_eq!(
        our_routes(&e.lab.edge).len(),
        2,
        "a crash cannot remove its routes"
    );
    drop(c);
    let cfg = e.dir.path().join("edge.toml");
    let fp = FastPath::start(&e.lab, Some(&cfg), &["--control", e.sock.to_str().unwrap()]);
    assert!(
        fp.started.contains("removed 2 local route(s)"),
        "the restart removes what the crashed one left: {}",
        fp.started
    );
    assert_eq!(our_routes(&e.lab.edge).len(), 2, "once each");
    let c = connect_from(&e.lab.client, sa("203.0.113.27:5011"), None, None, None).unwrap();
    (&c).write_all(b"two\n").unwrap();
    assert_eq!(read_line(&c), "two\n", "served again");
    drop(c);
    fp.stop();
    assert_eq!(
        our_routes(&e.lab.edge),
        Vec::<String>::new(),
        "no route left"
    );
    let link = Lab::exec(&e.lab.edge, "ip")
        .args(["link", "show", &e.lab.edge_iface])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(!link.contains("xdp"), "no XDP program left: {link}");
    let xsk = Lab::exec(&e.lab.edge, "ss")
        .args(["-H", "--xdp", "-a"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&xsk.stdout).trim(),
        "",
        "no AF_XDP socket left"
    );
    let tcp = Lab::exec(&e.lab.edge, "ss")
        .args(["-Htanp", "state", "established"])
        .output()
        .unwrap();
    let tcp = String::from_utf8_lossy(&tcp.stdout);
    assert!(
        !tcp.contains("203.0.113.27"),
        "no connection of ours left: {tcp}"
    );
    drop(origin);
}

/// 11. The limits and the access rules on open connections: past `max_connections` a new flow
///     gets a RST and is counted; a slow reader makes the relay wait (counted), never buffer
///     more; a block rule added while a client is connected closes its connection with
///     `clientFiltered` 403; a CDN pool member that refuses is skipped for the next one.
#[test]
fn limits_firewall_changes_and_a_refusing_pool_member() {
    if !privileged("limits_firewall_changes_and_a_refusing_pool_member", TOOLS) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut apps = tcp_app("lim", "5012", &["203.0.113.28"], "192.0.2.13:5012", "off");
    apps.push_str("ip_firewall = true\n\n");
    // One pool member listens; the other (first in many flows' Maglev order) refuses.
    apps.push_str("[cdn]\npool = [\"tcp://192.0.2.53:443\", \"tcp://192.0.2.54:443\"]\n");
    let cfg = config(&apps).replace(
        "drain_secs = 2",
        "drain_secs = 2\nmax_connections = 3\nbuffer_bytes = 16384",
    );
    let e = Edge::start("fpo-limits", &cfg);
    let origin = echo_origin(&e.lab, "192.0.2.13:5012", 3);
    let edge = sa("203.0.113.28:5012");
    let held: Vec<TcpStream> = (0..3)
        .map(|i| {
            let c = connect_from(&e.lab.client, edge, None, None, None).unwrap();
            (&c).write_all(b"x\n").unwrap();
            assert_eq!(read_line(&c), "x\n", "connection {i}");
            c
        })
        .collect();
    // The RST may come before the client's connect() returns, or after.
    let mut b = [0u8; 4];
    let r =
        connect_from(&e.lab.client, edge, None, None, None).and_then(|over| (&over).read(&mut b));
    assert!(
        matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "past max_connections: a RST ({r:?})"
    );
    assert_eq!(e.worker_sum(&["limit_connections"]), 1);

    // A slow reader: the origin echoes 4 MB that the client reads only later.
    let big = vec![b'y'; 4 << 20];
    let writer = {
        let c = held[0].try_clone().unwrap();
        std::thread::spawn(move || (&c).write_all(&big).is_ok())
    };
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        e.worker_sum(&["backpressure"]) > 0,
        "the relay waited for the slow side"
    );
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while got < 4 << 20 {
        got += (&held[0]).read(&mut buf).unwrap();
    }
    assert!(writer.join().unwrap());

    // The client's range is blocked now: its open connections close with 403.
    let (status, v) = call(
        &e.sock,
        "POST",
        "/client/v4/zones/z/firewall/access_rules/rules",
        Some(
            r#"{"id": "blk", "mode": "block", "configuration": {"target": "ip", "value": "192.0.2.130"}}"#,
        ),
    );
    assert_eq!(status, 200, "{v}");
    let rule = v["result"]["id"].as_str().unwrap().to_string();
    let r = (&held[1]).read(&mut b);
    assert!(
        matches!(&r, Ok(0))
            || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "closed: {r:?}"
    );
    e.wait_events("three clientFiltered", |ev| {
        ev.iter()
            .filter(|x| x["kind"] == "clientFiltered" && x["detail"]["status"] == 403)
            .count()
            == 3
    });
    drop(held);
    assert_eq!(origin.join().unwrap(), 3);
    let (status, v) = call(
        &e.sock,
        "DELETE",
        &format!("/client/v4/zones/z/firewall/access_rules/rules/{rule}"),
        None,
    );
    assert_eq!(status, 200, "{v}");

    // The CDN: only 192.0.2.54 listens; every connection is served.
    let o = e.origins(&["--echo", "192.0.2.54:443"]);
    for i in 0..10 {
        let c = connect_from(&e.lab.client, sa("203.0.113.140:443"), None, None, None).unwrap();
        (&c).write_all(b"cdn\n").unwrap();
        assert_eq!(
            read_line(&c),
            "cdn\n",
            "connection {i}: the refusing member was skipped"
        );
    }
    let served = wait_backends(&o, 0, 10);
    assert_eq!(served.len(), 10);
    assert!(served.values().all(|b| b == "192.0.2.54:443"));
    e.stop();
}

/// 12. A handoff that fails (the 4-tuple is held by another socket) drops the segment with a
///     counted reason; the client's retransmission tries again, and once the tuple is free the
///     connection is carried, its first data intact, with one origin connection.
#[test]
fn a_failed_handoff_is_counted_and_the_clients_retransmission_succeeds() {
    if !privileged(
        "a_failed_handoff_is_counted_and_the_clients_retransmission_succeeds",
        TOOLS,
    ) {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e = Edge::start(
        "fpo-retry",
        &config(&tcp_app(
            "retry",
            "5013",
            &["203.0.113.29"],
            "192.0.2.14:5013",
            "off",
        )),
    );
    let origin = echo_origin(&e.lab, "192.0.2.14:5013", 1);
    // A socket of the edge takes the tuple first: a connect towards the client's port that
    // stays in SYN_SENT (its SYN is dropped on the way out), a state the XDP program never
    // passes segments to.
    nft(&e.lab.edge, b"table inet hold {\n chain out {\n  type filter hook output priority 0; policy accept;\n  ip daddr 192.0.2.130 tcp dport 40100 tcp flags & (syn|ack) == syn drop\n }\n}\n");
    let holder = in_ns(&e.lab.edge, || {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&sa("203.0.113.29:5013").into()).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&sa("192.0.2.130:40100").into());
        s
    })
    .join()
    .unwrap();
    let c = connect_from(
        &e.lab.client,
        sa("203.0.113.29:5013"),
        None,
        None,
        Some(40100),
    )
    .unwrap();
    (&c).write_all(b"hello\n").unwrap();
    let started = Instant::now();
    while e.worker_sum(&["handoff", "in_use"]) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the handoff failed as in_use"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(holder);
    // The client retransmits its unacknowledged data; that repeats the validating ACK's
    // numbers, so the worker tries the handoff again, with the data.
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let line = read_line(&c);
    assert_eq!(
        line,
        "hello\n",
        "carried once the tuple was free: {}",
        serde_json::to_string(&e.stats()["workers"]).unwrap()
    );
    drop(c);
    assert_eq!(origin.join().unwrap(), 1, "one origin connection");
    assert!(e.worker_sum(&["handoff", "ok"]) == 1);
    e.stop();
}
