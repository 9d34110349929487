//! The SYN-cookie gate in the kernel against the userspace pipeline, through
//! `BPF_PROG_TEST_RUN` with the program's clock fixed to each frame's time:
//! * the same SYNs (IPv4, IPv6, VLAN and QinQ tags, every option combination) get
//!   byte-identical SYN-ACKs from both;
//! * a cookie minted by either validates in the other, also across a rotation on demand;
//! * every frame of every capture in `pcaps/` and `../shared/corpus/real/`: whatever the
//!   program decides alone (drop, transmit, pass) is what the pipeline decides for that frame,
//!   with the same reason.
//!
//! Needs root; skips with a loud message otherwise, unless `FASTPATH_REQUIRE_PRIVILEGED=1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use control::config::{Compiled, Config};
use etherparse::{PacketBuilder, TcpOptionElement};
use fastpath::replay::{CaptureReader, FrameReport, Replay, ReplaySettings, Sink};
use fastpath::syncookie::{CookieSecrets, SynCookies};
use fastpath::tables::{SharedTables, Tables};
use fastpath::{Reason, Verdict};
use fastpath_xdp::{GateState, XdpProgram, abi};

mod common;
use common::privileged;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

/// Runs `f` on a thread in a new network namespace, so no socket of the host can own a tuple
/// of a capture (the program passes segments of kernel-owned flows to them).
fn in_new_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: plain system call; it changes only this thread's namespace.
        #[allow(unsafe_code)]
        let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "unshare");
        f()
    })
    .join()
    .expect("the namespace thread")
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn compiled(config: &Path) -> Compiled {
    Config::load(config)
        .unwrap_or_else(|e| panic!("{}: {e}", config.display()))
        .compile(1, &Default::default())
        .unwrap()
}

/// The seed of a config, or a fixed one where it has none.
fn seed_of(c: &Compiled) -> [u8; 32] {
    c.cookies.seed.unwrap_or([0x5a; 32])
}

/// The program loaded, with `c`'s tables installed and its gate on.
struct Gate {
    p: XdpProgram,
    cookies: SynCookies,
    c: Compiled,
}

impl Gate {
    fn new(c: &Compiled) -> Gate {
        let mut p = XdpProgram::load().unwrap();
        assert_eq!(p.gate_refused(), None, "the kernel refused the gate");
        p.install(&Tables::build(&c.spec).unwrap()).unwrap();
        p.clear_flows().unwrap();
        Gate {
            p,
            cookies: SynCookies::for_config(&c.cookies, seed_of(c)),
            c: c.clone(),
        }
    }

    /// Sets the program's clock to `ts_ns` (and its secrets to those of that moment).
    fn at(&mut self, ts_ns: u64) {
        let mut secrets = self.cookies.clone();
        secrets.refresh(ts_ns / 1_000_000_000);
        let g = GateState {
            secrets: secrets.export(ts_ns / 1_000_000_000),
            syn_ack: self.c.cookies.syn_ack(1500),
            clock_offset_ns: 0,
            fixed_now_ns: ts_ns.max(1),
        };
        self.p.set_cookies(Some(&g)).unwrap();
    }

    /// Runs `frame` at `ts_ns`: the action, the frame as the program left it, and the counter
    /// slots that moved.
    fn run(&mut self, ts_ns: u64, frame: &[u8]) -> (u32, Vec<u8>, Vec<u32>) {
        self.at(ts_ns);
        let before = self.p.counters().unwrap();
        let (action, out) = self.p.test_run_output(frame).unwrap();
        let after = self.p.counters().unwrap();
        let moved = (0..abi::COUNTERS)
            .filter(|&s| after[s as usize].packets != before[s as usize].packets)
            .collect();
        (action, out, moved)
    }
}

/// What the pipeline said of each frame: the reason and the frame it sent.
#[derive(Default)]
struct Collect(Vec<(Reason, Option<Vec<u8>>)>);

impl Sink for Collect {
    fn frame(&mut self, r: &FrameReport<'_>) -> std::io::Result<()> {
        self.0.push((r.outcome.reason, r.tx.map(<[u8]>::to_vec)));
        Ok(())
    }
}

/// The pipeline over `frames`, one frame per batch (so each sees its own time, as the program
/// does).
fn pipeline(c: &Compiled, frames: &[(u64, Vec<u8>)]) -> Vec<(Reason, Option<Vec<u8>>)> {
    let mut pipeline = c.pipeline.clone();
    pipeline.batch_size = 1;
    let settings = ReplaySettings {
        pipeline,
        cookies: c.cookies.clone(),
        workers: c.workers.clone(),
        seed: seed_of(c),
        mtu: 1500,
    };
    let tables = SharedTables::new(Tables::build(&c.spec).unwrap());
    let mut r = Replay::new(Arc::clone(&tables), &settings);
    let bytes = pcap_bytes(frames);
    let mut reader = CaptureReader::new(&bytes[..]).unwrap();
    let mut out = Collect::default();
    r.run(&mut reader, &mut out, &mut |_, _| {}).unwrap();
    out.0
}

/// A nanosecond pcap of `frames` (the replay driver reads captures).
fn pcap_bytes(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(0xa1b2_3c4du32.to_le_bytes());
    b.extend(2u16.to_le_bytes());
    b.extend(4u16.to_le_bytes());
    b.extend(0i32.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(65535u32.to_le_bytes());
    b.extend(1u32.to_le_bytes());
    for (ts, f) in frames {
        b.extend(((ts / 1_000_000_000) as u32).to_le_bytes());
        b.extend(((ts % 1_000_000_000) as u32).to_le_bytes());
        b.extend((f.len() as u32).to_le_bytes());
        b.extend((f.len() as u32).to_le_bytes());
        b.extend(f);
    }
    b
}

fn read_capture(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let Ok(mut r) = CaptureReader::new(&bytes[..]) else {
        return out;
    };
    let mut buf = Vec::new();
    while let Ok(Some(m)) = r.next_into(&mut buf) {
        out.push((m.ts_ns, buf.clone()));
    }
    out
}

/// Frames the program decided, per reason, over a capture.
type Decided = BTreeMap<&'static str, u64>;

/// Each frame through the program and through the pipeline; the program's own decisions must
/// be the pipeline's. Returns what the program decided, by reason.
fn differential(name: &str, g: &mut Gate, frames: &[(u64, Vec<u8>)]) -> (Decided, Vec<String>) {
    let want = pipeline(&g.c, frames);
    assert_eq!(want.len(), frames.len(), "{name}: one verdict per frame");
    // Both start from no flow state.
    g.p.clear_flows().unwrap();
    let mut decided = Decided::new();
    let mut bad = Vec::new();
    for (i, ((ts, f), (reason, tx))) in frames.iter().zip(&want).enumerate() {
        // The kernel refuses to test-run a frame shorter than an Ethernet header.
        if f.len() < 14 {
            continue;
        }
        let (action, out, moved) = g.run(*ts, f);
        if moved == [abi::CTR_NO_SOCKET] {
            continue; // for userspace: the pipeline decides
        }
        let Some(r) = moved.first().and_then(|&s| abi::slot_reason(s)) else {
            bad.push(format!("frame {}: counted in {moved:?}", i + 1));
            continue;
        };
        *decided.entry(r.as_str()).or_default() += 1;
        let want_action = match r.verdict() {
            Verdict::Drop => XDP_DROP,
            Verdict::Tx => XDP_TX,
            _ => XDP_PASS,
        };
        if moved.len() != 1 || r != *reason || action != want_action {
            bad.push(format!(
                "frame {}: the program said {} (action {action}, slots {moved:?}), the pipeline {}",
                i + 1,
                r.as_str(),
                reason.as_str()
            ));
        } else if r == Reason::SynCookie && tx.as_deref() != Some(&out[..]) {
            bad.push(format!(
                "frame {}: SYN-ACKs differ\n  xdp:      {}\n  pipeline: {}",
                i + 1,
                hex(&out),
                tx.as_deref().map_or("none".into(), hex)
            ));
        }
    }
    (decided, bad)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const T0: u64 = 1_764_000_000_000_000_000;

fn edge_lab() -> Compiled {
    compiled(&repo("pcaps/edge-lab.toml"))
}

/// SYNs of every shape a client sends: both families, no tag, one and two tags, and each
/// option combination (none, MSS alone, Linux's, timestamps without window scale or SACK,
/// window scale and SACK without timestamps, ECN, an out-of-range shift, a repeated option,
/// a malformed option list, options after EOL, data on the SYN).
fn syns() -> Vec<(String, Vec<u8>)> {
    let opts: Vec<(&str, Vec<u8>)> = vec![
        ("none", vec![]),
        ("mss", vec![2, 4, 0x05, 0xb4]),
        (
            "linux",
            vec![
                2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 1, 3, 3, 7,
            ],
        ),
        (
            "ts-only",
            vec![8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 1, 1],
        ),
        ("ws-sack", vec![1, 3, 3, 9, 4, 2, 1, 1]),
        (
            "ws-20",
            vec![
                2, 4, 0x23, 0x28, 1, 3, 3, 20, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 1,
            ],
        ),
        ("mss-twice", vec![2, 4, 0x05, 0xb4, 2, 4, 0x02, 0x18]),
        ("bad-length", vec![2, 4, 0x05, 0x00, 8, 10, 1, 2]),
        ("eol", vec![2, 4, 0x05, 0xa0, 0, 0, 8, 10]),
        ("mss-small", vec![2, 4, 0x01, 0x00]),
        (
            "mss-jumbo",
            vec![2, 4, 0x23, 0x28, 4, 2, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0],
        ),
    ];
    let mut out = Vec::new();
    for v6 in [false, true] {
        for vlans in 0..3u8 {
            for ecn in [false, true] {
                for (oname, o) in &opts {
                    for payload in [&b""[..], b"early data"] {
                        let mut o = o.clone();
                        while o.len() % 4 != 0 {
                            o.push(0);
                        }
                        let name = format!(
                            "v{} vlans {vlans} ecn {ecn} options {oname} payload {}",
                            if v6 { 6 } else { 4 },
                            payload.len()
                        );
                        out.push((name, syn(v6, vlans, ecn, &o, payload)));
                    }
                }
            }
        }
    }
    out
}

fn syn(v6: bool, vlans: u8, ecn: bool, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let mut out = Vec::new();
    let src4 = [192, 0, 2, 77];
    let dst4 = [203, 0, 113, 10]; // ssh: behind the access rules, and 192.0.2.77 may pass
    let src6 = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x77,
    ];
    let dst6 = [
        0x20, 0x01, 0x0d, 0xb8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    macro_rules! fin {
        ($b:expr) => {{
            let mut t = $b.tcp(40000, 22, 0x1234_5678, 64240).syn();
            if ecn {
                t = t.ece().cwr();
            }
            t.options_raw(options)
                .unwrap()
                .write(&mut out, payload)
                .unwrap();
        }};
    }
    let vid = |v: u16| etherparse::VlanId::try_new(v).unwrap();
    match (v6, vlans) {
        (false, 0) => fin!(b.ipv4(src4, dst4, 55)),
        (true, 0) => fin!(b.ipv6(src6, dst6, 55)),
        (false, 1) => fin!(b.single_vlan(vid(7)).ipv4(src4, dst4, 55)),
        (true, 1) => fin!(b.single_vlan(vid(7)).ipv6(src6, dst6, 55)),
        (false, _) => fin!(b.double_vlan(vid(100), vid(7)).ipv4(src4, dst4, 55)),
        (true, _) => fin!(b.double_vlan(vid(100), vid(7)).ipv6(src6, dst6, 55)),
    }
    out
}

#[test]
fn the_program_and_the_pipeline_send_byte_identical_syn_acks() {
    if !privileged("the_program_and_the_pipeline_send_byte_identical_syn_acks") {
        return;
    }
    in_new_netns(|| {
        let c = edge_lab();
        let syns = syns();
        // Each SYN at its own moment: times across seconds, epochs and counters.
        let frames: Vec<(u64, Vec<u8>)> = syns
            .iter()
            .enumerate()
            .map(|(i, (_, f))| (T0 + i as u64 * 7_777_777_777, f.clone()))
            .collect();
        let (decided, bad) = differential("syns", &mut Gate::new(&c), &frames);
        assert!(bad.is_empty(), "{}", bad.join("\n"));
        assert_eq!(
            decided.get("syn_cookie").copied(),
            Some(syns.len() as u64),
            "every SYN answered by the program: {decided:?}"
        );
    });
}

/// A capture's frames with their times.
type Frames = Vec<(u64, Vec<u8>)>;

/// Every capture of `dir` (pcap or pcapng; files that are not captures are skipped).
fn captures(dir: &Path) -> Vec<(String, Frames)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                read_capture(&p),
            )
        })
        .collect()
}

/// The program refuses to test-run frames past a page without multi-buffer support (no
/// driver hands it one either): those are the pipeline's alone.
const TEST_RUN_MAX: usize = 3500;

fn differential_over(dir: &Path, configs: &[&str]) -> Decided {
    let mut total = Decided::new();
    let mut failures = Vec::new();
    let mut frames_seen = 0;
    for config in configs {
        let mut g = Gate::new(&compiled(&repo(config)));
        for (name, frames) in captures(dir) {
            let frames: Vec<(u64, Vec<u8>)> = frames
                .into_iter()
                .filter(|(_, f)| f.len() <= TEST_RUN_MAX)
                .collect();
            frames_seen += frames.len();
            let (decided, bad) = differential(&name, &mut g, &frames);
            for (r, n) in decided {
                *total.entry(r).or_default() += n;
            }
            failures.extend(
                bad.into_iter()
                    .map(|b| format!("{name} with {config}: {b}")),
            );
        }
    }
    assert!(frames_seen > 0, "no frames in {}", dir.display());
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "{}: {frames_seen} frames; decided in the kernel: {total:?}",
        dir.display()
    );
    assert!(
        failures.is_empty(),
        "{} frames decided differently:\n{}",
        failures.len(),
        failures.join("\n")
    );
    total
}

#[test]
fn the_program_decides_the_bundled_captures_as_the_pipeline_does() {
    if !privileged("the_program_decides_the_bundled_captures_as_the_pipeline_does") {
        return;
    }
    let decided = in_new_netns(|| {
        differential_over(
            &repo("pcaps"),
            &["pcaps/edge-lab.toml", "pcaps/golden.toml"],
        )
    });
    // The captures hold floods, handshakes and forged ACKs: the gate decided them in the
    // kernel (a test that compared nothing would pass with an empty map).
    for r in [
        "syn_cookie",
        "out_of_state",
        "firewall_block",
        "unconfigured_port",
        "not_ours",
    ] {
        assert!(
            decided.get(r).copied().unwrap_or(0) > 0,
            "no {r} decided in the kernel: {decided:?}"
        );
    }
    assert!(decided["syn_cookie"] > 4000, "{decided:?}");
}

#[test]
fn the_program_decides_the_real_corpus_as_the_pipeline_does() {
    if !privileged("the_program_decides_the_real_corpus_as_the_pipeline_does") {
        return;
    }
    let decided = in_new_netns(|| {
        differential_over(
            &repo("../shared/corpus/real"),
            &["pcaps/edge-lab.toml", "tests/testdata/catch-all.toml"],
        )
    });
    assert!(
        decided.get("not_ours").copied().unwrap_or(0) > 0,
        "{decided:?}"
    );
    assert!(
        decided.get("syn_cookie").copied().unwrap_or(0) > 0,
        "the catch-all config answers the corpus's SYNs in the kernel: {decided:?}"
    );
}

/// The ACK of `syn_ack` (a SYN-ACK to the client of `syn`) as the client sends it: its ISN
/// + 1, the cookie + 1, our TSval echoed, and `payload`.
fn ack_of(syn_ack: &[u8], payload: &[u8], seq_off: u32) -> Vec<u8> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let p = SlicedPacket::from_ethernet(syn_ack).unwrap();
    let Some(TransportSlice::Tcp(t)) = &p.transport else {
        panic!("not TCP")
    };
    let tsval = t.options_iterator().find_map(|o| match o {
        Ok(TcpOptionElement::Timestamp(v, _)) => Some(v),
        _ => None,
    });
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let seq = t.acknowledgment_number().wrapping_add(seq_off);
    let ack = t.sequence_number().wrapping_add(1);
    let opts: Vec<TcpOptionElement> = tsval
        .map(|v| {
            vec![
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(1, v),
            ]
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            b.ipv4(h.destination(), h.source(), 64)
                .tcp(t.destination_port(), t.source_port(), seq, 502)
                .ack(ack)
                .options(&opts)
                .unwrap()
                .write(&mut out, payload)
                .unwrap();
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            b.ipv6(h.destination_addr().octets(), h.source_addr().octets(), 64)
                .tcp(t.destination_port(), t.source_port(), seq, 502)
                .ack(ack)
                .options(&opts)
                .unwrap()
                .write(&mut out, payload)
                .unwrap();
        }
        _ => panic!("not IP"),
    }
    out
}

/// A cookie the program minted validates in the pipeline and one the pipeline minted in the
/// program; the program lets the flow's later segments through to userspace and drops a
/// forged ACK and a segment of no flow as `out_of_state`.
#[test]
fn a_cookie_minted_by_either_validates_in_the_other() {
    if !privileged("a_cookie_minted_by_either_validates_in_the_other") {
        return;
    }
    in_new_netns(|| {
        let c = edge_lab();
        let mut g = Gate::new(&c);
        for v6 in [false, true] {
            let s = syn(
                v6,
                0,
                false,
                &[
                    2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
                ],
                b"",
            );
            // The program's SYN-ACK, the client's ACK to it 20 s later: the pipeline takes it.
            let (action, xdp_sa, _) = g.run(T0, &s);
            assert_eq!(action, XDP_TX);
            let ack = ack_of(&xdp_sa, b"", 0);
            let got = pipeline(&c, &[(T0, s.clone()), (T0 + 20_000_000_000, ack.clone())]);
            assert_eq!(
                got[1].0,
                Reason::NewFlow,
                "v6 {v6}: the pipeline refused the program's cookie"
            );

            // A forged cookie, a segment of no flow and a late ACK stay in the kernel.
            let mut forged = ack_of(&xdp_sa, b"", 0);
            let n = forged.len();
            let ack_at = n - 12 - 20 + 8;
            forged[ack_at + 3] ^= 0x40; // another MAC
            let (action, _, moved) = g.run(T0 + 20_000_000_000, &forged);
            assert_eq!(
                (action, moved),
                (XDP_DROP, vec![Reason::OutOfState as u32]),
                "v6 {v6}"
            );
            let stray = ack_of(&xdp_sa, b"data", 1000);
            let (_, _, moved) = g.run(T0 + 20_000_000_000, &stray);
            assert_eq!(
                moved,
                vec![Reason::OutOfState as u32],
                "v6 {v6}: no flow, not the ISN"
            );
            // Too late: 301 s after the SYN.
            let (_, _, moved) = g.run(T0 + 301_000_000_000, &ack);
            assert_eq!(moved, vec![Reason::OutOfState as u32], "v6 {v6}: expired");

            // The pipeline's SYN-ACK (a different ISN: another connection), its ACK to the
            // program 30 s later: to userspace, and the flow's next segment too.
            // Another ISN: the SYN's TCP header (20 bytes and 20 of options) ends the frame.
            // Its checksum then no longer matches, which neither side verifies.
            let mut s2 = s.clone();
            let tcp = s2.len() - 40;
            s2[tcp + 4] ^= 0x55;
            let sa = pipeline(&c, &[(T0, s2.clone())]);
            assert_eq!(sa[0].0, Reason::SynCookie);
            let rust_sa = sa[0].1.clone().unwrap();
            let ack2 = ack_of(&rust_sa, b"", 0);
            let (action, _, moved) = g.run(T0 + 30_000_000_000, &ack2);
            assert_eq!(
                (action, moved),
                (XDP_DROP, vec![abi::CTR_NO_SOCKET]),
                "v6 {v6}: to userspace"
            );
            let data = ack_of(&rust_sa, b"GET / HTTP/1.1\r\n\r\n", 0);
            let later = ack_of(&rust_sa, b"more", 18);
            for f in [&data, &later] {
                let (_, _, moved) = g.run(T0 + 31_000_000_000, f);
                assert_eq!(
                    moved,
                    vec![abi::CTR_NO_SOCKET],
                    "v6 {v6}: a segment of the flow"
                );
            }
        }
    });
}

/// A rotation on demand reaches the program with the next state written, and a cookie the
/// program minted before it still validates there (and in the pipeline) afterwards.
#[test]
fn a_rotation_reaches_the_program_and_earlier_cookies_still_validate() {
    if !privileged("a_rotation_reaches_the_program_and_earlier_cookies_still_validate") {
        return;
    }
    in_new_netns(|| {
        let c = edge_lab();
        let mut g = Gate::new(&c);
        let secrets = CookieSecrets::new(g.cookies.clone());
        let s = syn(false, 1, false, &[2, 4, 5, 0xb4], b"");
        let (_, before, _) = g.run(T0, &s);
        // Rotate 10 s later: the program now mints under the new secret.
        secrets.rotate([0x42; 32], T0 / 1_000_000_000 + 10);
        g.cookies = secrets.current();
        let (_, after, _) = g.run(T0 + 10_000_000_000, &s);
        let seq =
            |f: &[u8]| u32::from_be_bytes(f[14 + 4 + 20 + 4..14 + 4 + 20 + 8].try_into().unwrap());
        assert_ne!(
            seq(&before),
            seq(&after),
            "the rotation reached the program"
        );
        // The ACK of the cookie minted before the rotation, 30 s after it: still valid.
        let ack = ack_of(&strip_vlan(&before), b"", 0);
        let (_, _, moved) = g.run(T0 + 40_000_000_000, &ack);
        assert_eq!(
            moved,
            vec![abi::CTR_NO_SOCKET],
            "a pre-rotation cookie still validates"
        );
        let mut rust = g.cookies.clone();
        rust.refresh(T0 / 1_000_000_000 + 40);
        let t = fastpath::syncookie::CookieTuple {
            src: "192.0.2.77".parse().unwrap(),
            dst: "203.0.113.10".parse().unwrap(),
            sport: 40000,
            dport: 22,
        };
        assert!(
            rust.check(
                T0 / 1_000_000_000 + 40,
                &t,
                0x1234_5678,
                seq(&before),
                false
            )
            .is_ok()
        );
    });
}

/// The frame without its one VLAN tag (`ack_of` builds untagged ACKs).
fn strip_vlan(f: &[u8]) -> Vec<u8> {
    let mut out = f[..12].to_vec();
    out.extend_from_slice(&f[16..]);
    out
}
