//! The XDP program without a NIC: every frame of the golden capture runs through
//! `BPF_PROG_TEST_RUN` with the golden config installed, and must land in the counter slot the
//! pipeline's expected reason says (the kernel's share of the ten steps), or be redirected to
//! userspace. Needs root; skips with a loud message otherwise, unless
//! `FASTPATH_REQUIRE_PRIVILEGED=1` (CI), which makes the skip a failure.

use fastpath::Reason;
use fastpath::tables::{Tables, Unconfigured};
use fastpath_xdp::{XdpProgram, abi};

mod common;
use common::privileged;

fn pcaps(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps")).join(name)
}

fn tables(config: &str) -> Tables {
    let c = control::config::Config::load(pcaps(config)).unwrap_or_else(|e| panic!("{e}"));
    Tables::build(&c.compile(1, &Default::default()).unwrap().spec).unwrap()
}

fn frames(name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(pcaps(name)).unwrap();
    let mut r = fastpath::replay::CaptureReader::new(&bytes[..]).unwrap();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while r.next_into(&mut buf).unwrap().is_some() {
        out.push(buf.clone());
    }
    out
}

fn expected(name: &str) -> Vec<(Reason, String)> {
    std::fs::read_to_string(pcaps(&format!("{name}.expected.jsonl")))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                Reason::from_name(v["reason"].as_str().unwrap()).unwrap(),
                v["what"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The counter slot the kernel program must use for a frame the pipeline gives `reason`.
fn slot_for(t: &Tables, frame: &[u8], reason: Reason) -> u32 {
    match reason {
        Reason::NotIp
        | Reason::NotOurs
        | Reason::Malformed
        | Reason::Fragment
        | Reason::NoBinding
        | Reason::UnconfiguredProtocol => reason as u32,
        Reason::UnconfiguredPort => {
            // Unconfigured ports of a reset binding go to userspace (which answers them, and
            // drops a RST there).
            let l2 = fastpath::wire::frame::parse_l2(frame).unwrap();
            let l3 = fastpath::wire::frame::parse_l3(frame, &l2).unwrap();
            let d = t.dest(l3.dst).unwrap();
            if t.binding(d).unwrap().unconfigured == Unconfigured::Reset {
                abi::CTR_NO_SOCKET
            } else {
                reason as u32
            }
        }
        _ => abi::CTR_NO_SOCKET,
    }
}

fn check(capture: &str, config: &str) {
    let t = tables(config);
    let mut p = XdpProgram::load().unwrap();
    let installed = p.install(&t).unwrap();
    assert!(installed.dests_v4 > 0 && installed.dests_v6 > 0);
    let fs = frames(&format!("{capture}.pcap"));
    let want = expected(capture);
    assert_eq!(fs.len(), want.len());
    let mut before = p.counters().unwrap();
    let mut bad = Vec::new();
    let mut ran = 0;
    for (i, (f, (reason, what))) in fs.iter().zip(&want).enumerate() {
        // The kernel refuses to test-run a frame shorter than an Ethernet header (and no
        // driver hands one to XDP); the userspace pipeline calls it malformed.
        if f.len() < 14 {
            continue;
        }
        ran += 1;
        let action = p.test_run(f).unwrap();
        let after = p.counters().unwrap();
        let moved: Vec<u32> = (0..abi::COUNTERS)
            .filter(|&s| after[s as usize].packets != before[s as usize].packets)
            .collect();
        let slot = slot_for(&t, f, *reason);
        // Frames for userspace find no AF_XDP socket here: dropped as `no_socket`, never
        // passed to the kernel.
        let want_action = match slot {
            s if s == Reason::NotIp as u32 || s == Reason::NotOurs as u32 => 2, // XDP_PASS
            _ => 1,                                                             // XDP_DROP
        };
        if moved != vec![slot] || action != want_action {
            bad.push(format!("frame {} ({what}): counted in {moved:?}, action {action}; want slot {slot}, action {want_action}", i + 1));
        }
        before = after;
    }
    assert!(
        ran + 1 >= fs.len(),
        "{capture}: only {ran} of {} frames ran",
        fs.len()
    );
    assert!(
        bad.is_empty(),
        "{capture}: {} frames differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn golden_frames_get_the_kernels_share_of_their_verdicts() {
    if privileged("golden_frames_get_the_kernels_share_of_their_verdicts") {
        check("reasons", "golden.toml");
    }
}

#[test]
fn mixed_capture_in_the_kernel() {
    if privileged("mixed_capture_in_the_kernel") {
        check("mixed", "edge-lab.toml");
    }
}

#[test]
fn a_new_generation_replaces_the_old_whole() {
    if !privileged("a_new_generation_replaces_the_old_whole") {
        return;
    }
    let golden = tables("golden.toml");
    let lab = tables("edge-lab.toml");
    let mut p = XdpProgram::load().unwrap();
    let syn = frames("reasons.pcap");
    // Frame: a SYN to 203.0.113.70:26 (reset binding in golden, plain spectrum in the lab).
    let f = syn
        .iter()
        .find(|f| {
            f.len() > 40 && f[30..34] == [203, 0, 113, 71] && f[36..38] == 26u16.to_be_bytes()
        })
        .expect("the reset-binding SYN");
    p.install(&golden).unwrap();
    assert_eq!(
        slot_of_run(&mut p, f),
        abi::CTR_NO_SOCKET,
        "golden: to userspace (which answers with a RST)"
    );
    let g = p.install(&lab).unwrap().generation;
    assert_eq!(
        slot_of_run(&mut p, f),
        Reason::UnconfiguredPort as u32,
        "lab: unconfigured port, dropped"
    );
    let g2 = p.install(&golden).unwrap().generation;
    assert_ne!(g, g2);
    assert_eq!(
        slot_of_run(&mut p, f),
        abi::CTR_NO_SOCKET,
        "back to golden: no stale entry of the lab left"
    );
}

/// Runs `f` once and returns the one counter slot that moved.
fn slot_of_run(p: &mut XdpProgram, f: &[u8]) -> u32 {
    let before = p.counters().unwrap();
    p.test_run(f).unwrap();
    let after = p.counters().unwrap();
    let moved: Vec<u32> = (0..abi::COUNTERS)
        .filter(|&s| after[s as usize].packets != before[s as usize].packets)
        .collect();
    assert_eq!(moved.len(), 1, "one slot per frame: {moved:?}");
    moved[0]
}

/// Port sets held inline in the destination entry (few ranges) and in the port-set map (more
/// than `INLINE_RANGES`) give the same answers as the pipeline, port by port.
#[test]
fn inline_ranges_and_port_sets_agree_with_the_pipeline() {
    if !privileged("inline_ranges_and_port_sets_agree_with_the_pipeline") {
        return;
    }
    let mut toml = String::from(
        "[node]\nname = \"t\"\n[[prefixes]]\ncidr = \"203.0.113.0/24\"\n\
         [[bindings]]\ncidr = \"203.0.113.0/24\"\nservice = \"spectrum\"\n\
         [[bindings]]\ncidr = \"203.0.113.128/25\"\nservice = \"cdn\"\n\
         [cdn]\ntcp_ports = [80, 443, 8080, 8443, 2052, 2053, 2082, 2083, 2086, 2087, 2095, 2096, 8880]\n\
         udp_ports = [443]\npool = [\"tcp://192.0.2.50:443\"]\n\
         [[origin_policy.delegations]]\ncidr = \"192.0.2.0/24\"\n",
    );
    // 203.0.113.10: 13 single TCP ports (past the inline ranges); 203.0.113.11: two ranges.
    for i in 1..=13u16 {
        toml.push_str(&format!(
            "[[spectrum_apps]]\nid = \"a{i}\"\nprotocol = \"tcp/{p}\"\n\
             edge_ips = {{ type = \"static\", ips = [\"203.0.113.10\"] }}\n\
             origin_direct = [\"tcp://192.0.2.1:{p}\"]\n",
            p = i * 10
        ));
    }
    toml.push_str(
        "[[spectrum_apps]]\nid = \"r1\"\nprotocol = \"udp/100-119\"\n\
         edge_ips = { type = \"static\", ips = [\"203.0.113.11\"] }\n\
         origin_direct = [\"udp://192.0.2.1:100-119\"]\n\
         [[spectrum_apps]]\nid = \"r2\"\nprotocol = \"udp/120-125\"\n\
         edge_ips = { type = \"static\", ips = [\"203.0.113.11\"] }\n\
         origin_direct = [\"udp://192.0.2.1:120-125\"]\n",
    );
    let c = control::config::Config::from_toml_str(&toml)
        .unwrap_or_else(|e| panic!("{e}"))
        .compile(1, &Default::default())
        .unwrap();
    let t = Tables::build(&c.spec).unwrap();
    let mut p = XdpProgram::load().unwrap();
    p.install(&t).unwrap();
    let b = || etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]);
    let mut checked = 0;
    for (dst, udp) in [
        ([203, 0, 113, 10], false),
        ([203, 0, 113, 11], true),
        ([203, 0, 113, 200], false),
        ([203, 0, 113, 200], true),
    ] {
        for port in 0..9000u16 {
            let mut f = Vec::new();
            if udp {
                b().ipv4([192, 0, 2, 9], dst, 64)
                    .udp(5000, port)
                    .write(&mut f, b"x")
                    .unwrap();
            } else {
                b().ipv4([192, 0, 2, 9], dst, 64)
                    .tcp(5000, port, 1, 1000)
                    .syn()
                    .write(&mut f, &[])
                    .unwrap();
            }
            let ours = c.spec.apps.iter().any(|a| {
                a.edge_ips.contains(&std::net::IpAddr::from(dst))
                    && (a.proto == fastpath::tables::L4Proto::Udp) == udp
                    && (a.ports.lo..=a.ports.hi).contains(&port)
            }) || (dst[3] >= 128
                && if udp {
                    c.spec.cdn.udp_ports.contains(&port)
                } else {
                    c.spec.cdn.tcp_ports.contains(&port)
                });
            assert_eq!(
                slot_of_run(&mut p, &f),
                if ours {
                    abi::CTR_NO_SOCKET // for userspace; no socket in a test run
                } else {
                    Reason::UnconfiguredPort as u32
                },
                "{dst:?} {} port {port}",
                if udp { "udp" } else { "tcp" }
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 36_000);
}

/// Runs `f` on a thread that moved into a new network namespace (it goes away with the
/// thread, and everything made in it).
fn in_new_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: plain system call; it changes only this thread's namespace.
        #[allow(unsafe_code)]
        let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "unshare");
        // The edge prefix is local (as `fastpath run` makes it); the client is behind a veth.
        for args in [
            &["link", "set", "lo", "up"][..],
            &["route", "add", "local", "203.0.113.0/24", "dev", "lo"],
            &["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
            &["link", "set", "v0", "up"],
            &["link", "set", "v1", "up"],
            &["route", "add", "192.0.2.0/24", "dev", "v0"],
        ] {
            let ok = std::process::Command::new("ip").args(args).status();
            assert!(ok.is_ok_and(|s| s.success()), "ip {args:?}");
        }
        f()
    })
    .join()
    .expect("the namespace thread")
}

/// Segments of a flow a kernel socket owns go to that socket (VLAN tags stripped); its SYNs,
/// and segments of other tuples, still go to userspace.
#[test]
fn segments_of_a_handed_off_flow_go_to_its_kernel_socket() {
    if !privileged("segments_of_a_handed_off_flow_go_to_its_kernel_socket") {
        return;
    }
    in_new_netns(|| {
        let t = tables("edge-lab.toml");
        let mut p = XdpProgram::load().unwrap();
        p.install(&t).unwrap();
        let negotiated = fastpath::worker::Negotiated {
            mss: 1460,
            client_isn: 1000,
            edge_isn: 2000,
            client_window: 1000,
            edge_window: 65535,
            ..Default::default()
        };
        // Kept in repair mode: established, and silent (no peer exists here).
        let sock = fastpath_proxy::repair::Repairing::new(&fastpath_proxy::repair::Handoff {
            client: "192.0.2.9:5000".parse().unwrap(),
            edge: "203.0.113.10:22".parse().unwrap(),
            negotiated: &negotiated,
            payload: b"",
            now_ms: 0,
        })
        .unwrap();
        let frame = |sport: u16, syn: bool, vlan: Option<u16>| {
            let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]);
            let mut f = Vec::new();
            match vlan {
                Some(id) => {
                    let tcp = b
                        .single_vlan(etherparse::VlanId::try_new(id).unwrap())
                        .ipv4([192, 0, 2, 9], [203, 0, 113, 10], 64)
                        .tcp(sport, 22, 1001, 1000);
                    let tcp = if syn { tcp.syn() } else { tcp.ack(2001) };
                    tcp.write(&mut f, b"data").unwrap();
                }
                None => {
                    let tcp = b
                        .ipv4([192, 0, 2, 9], [203, 0, 113, 10], 64)
                        .tcp(sport, 22, 1001, 1000);
                    let tcp = if syn { tcp.syn() } else { tcp.ack(2001) };
                    tcp.write(&mut f, b"data").unwrap();
                }
            }
            f
        };
        let untagged = frame(5000, false, None);
        assert_eq!(slot_of_run(&mut p, &untagged), Reason::HandedOff as u32);
        let (action, out) = p.test_run_output(&untagged).unwrap();
        assert_eq!((action, &out), (2, &untagged), "XDP_PASS, unchanged");
        let tagged = frame(5000, false, Some(100));
        assert_eq!(slot_of_run(&mut p, &tagged), Reason::HandedOff as u32);
        let (action, out) = p.test_run_output(&tagged).unwrap();
        assert_eq!(action, 2);
        assert_eq!(
            out, untagged,
            "the kernel gets the frame without its VLAN tag"
        );
        assert_eq!(
            slot_of_run(&mut p, &frame(5000, true, None)),
            abi::CTR_NO_SOCKET,
            "a SYN never goes to the kernel"
        );
        assert_eq!(
            slot_of_run(&mut p, &frame(5001, false, None)),
            abi::CTR_NO_SOCKET,
            "another tuple goes to userspace"
        );
        // Closed in repair mode: gone at once, without a packet.
        drop(sock);
        assert_eq!(slot_of_run(&mut p, &untagged), abi::CTR_NO_SOCKET);
    });
}

#[test]
fn the_kernel_takes_the_cookie_gate() {
    if !privileged("the_kernel_takes_the_cookie_gate") {
        return;
    }
    let p = XdpProgram::load().unwrap();
    assert_eq!(p.gate_refused(), None, "the verifier refused the gate");
}
