//! The in-kernel generator without a NIC: its program runs over SYN, ACK and UDP templates
//! (IPv4 and IPv6) with plain `BPF_PROG_TEST_RUN`, each output fed back as the next input (as
//! the kernel's recycled pages are in live-frames mode), and every frame it leaves must have
//! right IPv4, TCP and UDP checksums, a source inside the prefix, ports inside their ranges,
//! and differ from the one before. Needs root; skips with a loud message otherwise, unless
//! `FASTPATH_REQUIRE_PRIVILEGED=1` (CI), which makes the skip a failure.

use std::net::IpAddr;

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use fastpath_xdp::{Flood, GenConfig, Generator};
use ipnet::IpNet;

mod common;
use common::privileged;

fn template(flood: Flood, v6: bool) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2([2; 6], [4; 6]);
    let ip = if v6 {
        eth.ipv6(
            "2001:db8:f::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            "2001:db8:100:1::10"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            64,
        )
    } else {
        eth.ipv4([192, 0, 2, 192], [203, 0, 113, 10], 64)
    };
    let mut buf = Vec::new();
    match flood {
        Flood::Udp => ip.udp(1024, 9).write(&mut buf, b"fastpath-gen flood"),
        Flood::Syn => ip.tcp(1024, 22, 7, 64240).syn().write(&mut buf, &[]),
        Flood::Ack => ip.tcp(1024, 22, 7, 502).ack(9).write(&mut buf, &[]),
    }
    .unwrap();
    buf
}

/// Verifies every checksum of `frame` and returns (source, sport, dport, seq, ack).
fn check(frame: &[u8]) -> (IpAddr, u16, u16, u32, u32) {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let (src, dst) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header().to_header();
            assert_eq!(
                h.header_checksum,
                h.calc_header_checksum(),
                "IPv4 header checksum"
            );
            (
                IpAddr::V4(ip.header().source_addr()),
                IpAddr::V4(ip.header().destination_addr()),
            )
        }
        Some(NetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
        ),
        _ => panic!("not IP"),
    };
    let _ = dst;
    match (&p.net, &p.transport) {
        (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) => {
            let want = t
                .to_header()
                .calc_checksum_ipv4(&ip.header().to_header(), t.payload())
                .unwrap();
            assert_eq!(t.checksum(), want, "TCP/IPv4 checksum");
            (
                src,
                t.source_port(),
                t.destination_port(),
                t.sequence_number(),
                t.acknowledgment_number(),
            )
        }
        (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Tcp(t))) => {
            let want = t
                .to_header()
                .calc_checksum_ipv6(&ip.header().to_header(), t.payload())
                .unwrap();
            assert_eq!(t.checksum(), want, "TCP/IPv6 checksum");
            (
                src,
                t.source_port(),
                t.destination_port(),
                t.sequence_number(),
                t.acknowledgment_number(),
            )
        }
        (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Udp(u))) => {
            let want = u
                .to_header()
                .calc_checksum_ipv4(&ip.header().to_header(), u.payload())
                .unwrap();
            assert_eq!(u.checksum(), want, "UDP/IPv4 checksum");
            (src, u.source_port(), u.destination_port(), 0, 0)
        }
        (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Udp(u))) => {
            let want = u
                .to_header()
                .calc_checksum_ipv6(&ip.header().to_header(), u.payload())
                .unwrap();
            assert_eq!(u.checksum(), want, "UDP/IPv6 checksum");
            (src, u.source_port(), u.destination_port(), 0, 0)
        }
        _ => panic!("not TCP/UDP"),
    }
}

#[test]
fn every_frame_the_generator_leaves_is_valid_and_new() {
    if !privileged("every_frame_the_generator_leaves_is_valid_and_new") {
        return;
    }
    let mut g = Generator::load().unwrap();
    for v6 in [false, true] {
        let src: IpNet = if v6 {
            "2001:db8:f::/64".parse().unwrap()
        } else {
            "192.0.2.192/26".parse().unwrap()
        };
        for flood in [Flood::Udp, Flood::Syn, Flood::Ack] {
            g.configure(&GenConfig::new(flood, src, (1024, 65535), (1000, 1003)))
                .unwrap();
            let mut frame = template(flood, v6);
            let first = check(&frame);
            let mut seen = std::collections::HashSet::new();
            let mut dports = std::collections::BTreeSet::new();
            for i in 0..500 {
                let (action, out) = g.run_once(&frame).unwrap();
                assert_eq!(action, 3, "{flood:?} v6={v6}: XDP_TX");
                assert_eq!(out.len(), frame.len());
                let (s, sport, dport, seq, ack) = check(&out);
                assert!(src.contains(&s), "{s} outside {src}");
                assert!(sport >= 1024, "{sport}");
                assert!((1000..=1003).contains(&dport), "{dport}");
                dports.insert(dport);
                match flood {
                    Flood::Syn => assert_ne!(seq, first.3, "the ISN stayed"),
                    Flood::Ack => assert!(seq != first.3 && ack != first.4),
                    Flood::Udp => {}
                }
                seen.insert((s, sport));
                assert_ne!(out, frame, "{flood:?} v6={v6}: frame {i} unchanged");
                frame = out;
            }
            assert!(
                seen.len() > 450,
                "{flood:?}: only {} distinct sources",
                seen.len()
            );
            assert_eq!(dports.len(), 4, "{dports:?}");
        }
    }
    let (sent, bad) = g.counters().unwrap();
    assert_eq!((sent, bad), (3000, 0));
    // A frame it cannot vary is dropped and counted.
    let (action, _) = g.run_once(&[0u8; 60]).unwrap();
    assert_eq!(action, 1);
    assert_eq!(g.counters().unwrap(), (3000, 1));
}

/// The context the live runs give the kernel is laid out as `struct xdp_md`: the kernel takes
/// it for the loopback interface's queue 0 (ifindex 1 in this namespace) and refuses a queue
/// lo does not have and an interface that does not exist; had a field been misplaced (the
/// index in `data_meta`, say), the first run would be refused too.
#[test]
fn the_live_context_names_the_interface_and_queue_the_kernel_checks() {
    if !privileged("the_live_context_names_the_interface_and_queue_the_kernel_checks") {
        return;
    }
    let mut g = Generator::load().unwrap();
    g.configure(&GenConfig::new(
        Flood::Syn,
        "192.0.2.192/26".parse().unwrap(),
        (1024, 65535),
        (22, 22),
    ))
    .unwrap();
    let frame = template(Flood::Syn, false);
    let (action, out) = g.run_once_on(&frame, 1, 0).unwrap();
    assert_eq!(action, 3);
    check(&out);
    assert!(g.run_once_on(&frame, 1, 7).is_err(), "lo has no queue 7");
    assert!(
        g.run_once_on(&frame, 999_999, 0).is_err(),
        "no interface 999999"
    );
}
