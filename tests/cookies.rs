//! The two-pass SYN-cookie test: SYNs → our SYN-ACKs (from `--tx-out`) → ACKs built from them
//! the way a client would. The right ACKs validate; ACKs with a wrong number, a stale time,
//! another 4-tuple or another node's secret do not.

mod common;

use common::*;
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use fastpath_cli::cmd::replay::execute;

const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Right,
    WrongNumber,
    Stale,
    OtherTuple,
}

/// The client's ACK answering `synack`.
fn ack_for(synack: &[u8], v: Variant) -> Vec<u8> {
    let p = SlicedPacket::from_ethernet(synack).expect("our SYN-ACK parses");
    let Some(TransportSlice::Tcp(t)) = &p.transport else {
        panic!("a TCP SYN-ACK")
    };
    assert!(t.syn() && t.ack());
    // L2: the SYN-ACK's header with its VLAN tags, MACs swapped back.
    let l3_off = synack.len()
        - p.net
            .as_ref()
            .map(|n| match n {
                etherparse::NetSlice::Ipv4(i) => {
                    i.header().slice().len() + i.payload().payload.len()
                }
                etherparse::NetSlice::Ipv6(i) => {
                    i.header().slice().len() + i.payload().payload.len()
                }
                _ => unreachable!(),
            })
            .unwrap();
    let mut f = synack[..l3_off].to_vec();
    let (d, s) = (f[0..6].to_vec(), f[6..12].to_vec());
    f[0..6].copy_from_slice(&s);
    f[6..12].copy_from_slice(&d);
    let opts = crate_ts(t.options());
    let sport = if v == Variant::OtherTuple {
        t.destination_port().wrapping_add(1)
    } else {
        t.destination_port()
    };
    let ack = t
        .sequence_number()
        .wrapping_add(1)
        .wrapping_add(if v == Variant::WrongNumber { 1 } else { 0 });
    let b = match &p.net {
        Some(etherparse::NetSlice::Ipv4(i)) => {
            PacketBuilder::ipv4(i.header().destination(), i.header().source(), 64)
        }
        Some(etherparse::NetSlice::Ipv6(i)) => {
            PacketBuilder::ipv6(i.header().destination(), i.header().source(), 64)
        }
        _ => unreachable!(),
    };
    let b = b
        .tcp(sport, t.source_port(), t.acknowledgment_number(), 502)
        .ack(ack)
        .options(&opts)
        .unwrap();
    b.write(&mut f, &[]).unwrap();
    f
}

/// Echo the SYN-ACK's timestamp the way a client does.
fn crate_ts(opts: &[u8]) -> Vec<etherparse::TcpOptionElement> {
    let o = fastpath::wire::TcpOptions::parse(opts);
    match o.timestamp {
        Some((val, ecr)) => vec![
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::Timestamp(ecr + 1, val),
        ],
        None => vec![],
    }
}

fn replay_reasons(frames: &[(u64, Vec<u8>)], secret: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("acks.pcap");
    write_capture(&p, frames);
    execute(&args(
        p,
        pcaps("edge-lab.toml"),
        dir.path(),
        Some(secret.into()),
    ))
    .unwrap();
    read_verdicts(&dir.path().join("verdicts.jsonl"))
        .into_iter()
        .map(|v| v.reason)
        .collect()
}

#[test]
fn syn_acks_from_tx_out_give_acks_that_validate_and_only_those() {
    // Pass 1: SYNs of every shape (IPv4/IPv6, VLAN/QinQ, with and without options).
    let dir = tempfile::tempdir().unwrap();
    let run = execute(&args(
        pcaps("handshake-syns.pcap"),
        pcaps("edge-lab.toml"),
        dir.path(),
        Some(SECRET.into()),
    ))
    .unwrap();
    assert_eq!(run.summary.total.reasons.get("syn_cookie"), Some(&10));
    let synacks = read_capture(&dir.path().join("tx.pcap"));
    assert_eq!(synacks.len(), 10, "one SYN-ACK per SYN");

    // Pass 2: the ACKs a client would send, 40 ms later.
    let acks = |v: Variant, delay: u64| -> Vec<(u64, Vec<u8>)> {
        synacks
            .iter()
            .map(|(ts, f)| (ts + delay, ack_for(f, v)))
            .collect()
    };
    let ms40 = 40_000_000;
    assert!(
        replay_reasons(&acks(Variant::Right, ms40), SECRET)
            .iter()
            .all(|r| r == "new_flow"),
        "right ACKs validate"
    );
    assert!(
        replay_reasons(&acks(Variant::Right, 59_000_000_000), SECRET)
            .iter()
            .all(|r| r == "new_flow"),
        "59 s later they still validate"
    );
    for (v, delay, what) in [
        (Variant::WrongNumber, ms40, "ack one too high"),
        (Variant::Stale, 301_000_000_000, "301 s later"),
        (Variant::OtherTuple, ms40, "another source port"),
    ] {
        let r = replay_reasons(&acks(v, delay), SECRET);
        assert!(r.iter().all(|r| r == "out_of_state"), "{what}: {r:?}");
    }
    let other_secret = "ff".repeat(32);
    assert!(
        replay_reasons(&acks(Variant::Right, ms40), &other_secret)
            .iter()
            .all(|r| r == "out_of_state"),
        "another node's secret"
    );
}

#[test]
fn syn_acks_mirror_the_negotiated_options() {
    let dir = tempfile::tempdir().unwrap();
    execute(&args(
        pcaps("handshake-syns.pcap"),
        pcaps("edge-lab.toml"),
        dir.path(),
        Some(SECRET.into()),
    ))
    .unwrap();
    let synacks = read_capture(&dir.path().join("tx.pcap"));
    let syns = read_capture(&pcaps("handshake-syns.pcap"));
    for ((_, syn), (_, sa)) in syns.iter().zip(&synacks) {
        let s = SlicedPacket::from_ethernet(syn).unwrap();
        let a = SlicedPacket::from_ethernet(sa).unwrap();
        assert_eq!(s.vlan().is_some(), a.vlan().is_some(), "VLAN tags kept");
        let (Some(TransportSlice::Tcp(st)), Some(TransportSlice::Tcp(at))) =
            (&s.transport, &a.transport)
        else {
            panic!()
        };
        assert_eq!(
            at.acknowledgment_number(),
            st.sequence_number().wrapping_add(1)
        );
        let so = fastpath::wire::TcpOptions::parse(st.options());
        let ao = fastpath::wire::TcpOptions::parse(at.options());
        assert!(ao.mss.is_some(), "our MSS is always announced");
        assert_eq!(
            ao.timestamp.map(|t| t.1),
            so.timestamp.map(|t| t.0),
            "TSecr echoes the client's TSval"
        );
        let ts = so.timestamp.is_some();
        assert_eq!(
            ao.sack_perm,
            so.sack_perm && ts,
            "SACK only when offered (and storable)"
        );
        assert_eq!(
            ao.wscale.is_some(),
            so.wscale.is_some() && ts,
            "window scale only when offered (and storable)"
        );
        assert_eq!(at.ece(), st.ece() && st.cwr() && ts, "ECN setup mirrored");
    }
}
