//! Replies written in place over the received frame: SYN-ACK, TCP RST, ICMP port unreachable.
//!
//! Every builder reads what it needs from the parsed headers (plain `Copy` values) before it
//! writes, keeps the Ethernet header and its VLAN tags (MACs swapped), drops IPv4 options and
//! IPv6 extension headers of the original, and returns the new frame length. The frame buffer is
//! the whole UMEM chunk (or replay buffer), so a reply may be longer than the frame it answers;
//! when the buffer is too small the builder returns `None` and the caller drops the frame.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::frame::{L2, L3, Tcp};
use crate::wire::tcp::flags;
use crate::wire::tcpopt::SynAckOptions;
use crate::wire::{EthernetFrame, Ipv6Packet, checksum, ipv4, ipv6, proto, tcp};

/// TTL / hop limit of everything we send.
pub const REPLY_TTL: u8 = 64;
/// IPv4 ICMP errors quote at most this much (RFC 1812: the error fits in 576 bytes).
pub const ICMP4_MAX: usize = 576;
/// ICMPv6 errors fit in the IPv6 minimum MTU (RFC 4443 section 2.4).
pub const ICMP6_MAX: usize = 1280;

/// The fields of a SYN-ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynAck {
    /// Our ISN: the cookie.
    pub seq: u32,
    /// The client's ISN + 1.
    pub ack: u32,
    /// Our window.
    pub window: u16,
    /// ECN setup (ECE set, RFC 3168 section 6.1.1).
    pub ece: bool,
    /// Options.
    pub options: SynAckOptions,
}

/// Adds a 32-bit value to a checksum accumulator as its two 16-bit words.
#[inline(always)]
fn words32(v: u32) -> u64 {
    u64::from(v >> 16) + u64::from(v & 0xffff)
}

/// Writes the IP header of a reply from `l3.dst` to `l3.src` at `l3_off` carrying `l4_len`
/// bytes of `protocol`, and returns the offset of the L4 header and the checksum
/// pseudo-header sum of the reply. Every byte of the header is written (no IPv4 options, no
/// IPv6 extension headers); nothing is written when the buffer has no room for the header and
/// `l4_len` bytes after it.
///
/// The IPv4 header checksum is summed from the field values rather than from the bytes
/// written: the same 16-bit words, so the same checksum.
#[inline]
fn write_ip(buf: &mut [u8], l3: &L3, protocol: u8, l4_len: usize) -> Option<(usize, u64)> {
    let off = l3.l3_off;
    match (l3.src, l3.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let end = off + ipv4::MIN_HEADER_LEN + l4_len;
            let total = u16::try_from(ipv4::MIN_HEADER_LEN + l4_len).ok()?;
            let (h, _) = buf.get_mut(off..end)?.split_first_chunk_mut::<20>()?;
            let (s, d) = (dst.to_bits(), src.to_bits());
            let ver_ihl_tos = 0x4500u16;
            let ttl_proto = (u16::from(REPLY_TTL) << 8) | u16::from(protocol);
            let sum = u64::from(ver_ihl_tos)
                + u64::from(total)
                + u64::from(ipv4::FLAG_DF)
                + u64::from(ttl_proto)
                + words32(s)
                + words32(d);
            h[0..2].copy_from_slice(&ver_ihl_tos.to_be_bytes());
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[4..6].copy_from_slice(&[0, 0]); // identification
            h[6..8].copy_from_slice(&ipv4::FLAG_DF.to_be_bytes());
            h[8..10].copy_from_slice(&ttl_proto.to_be_bytes());
            h[10..12].copy_from_slice(&checksum::fold(sum).to_be_bytes());
            h[12..16].copy_from_slice(&s.to_be_bytes());
            h[16..20].copy_from_slice(&d.to_be_bytes());
            let pseudo = words32(s) + words32(d) + u64::from(protocol) + l4_len as u64;
            Some((off + ipv4::MIN_HEADER_LEN, pseudo))
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let end = off + ipv6::HEADER_LEN + l4_len;
            let plen = u16::try_from(l4_len).ok()?;
            let mut ip = Ipv6Packet::new_unchecked(buf.get_mut(off..end)?);
            ip.set_version_tc_flow(0, 0);
            ip.set_payload_len(plen);
            ip.set_next_header(protocol);
            ip.set_hop_limit(REPLY_TTL);
            ip.set_src(&dst);
            ip.set_dst(&src);
            let pseudo = checksum::pseudo_v6(&dst, &src, protocol, l4_len as u32);
            Some((off + ipv6::HEADER_LEN, pseudo))
        }
        _ => None,
    }
}

fn swap_macs(buf: &mut [u8]) {
    EthernetFrame::new_unchecked(buf).swap_macs();
}

/// Writes a TCP reply (with `options`, for a SYN-ACK) from `l3.dst` to `l3.src` after its IP
/// header and swaps the MACs; returns the frame length.
///
/// The checksum is summed from the field values (and the options' bytes) rather than from
/// the segment written: the same 16-bit words, so the same checksum, as setting each field
/// through the [`TcpPacket`](crate::wire::TcpPacket) view and summing the segment
/// (`syn_ack_bytes_are_the_field_by_field_ones` compares the two).
#[allow(clippy::too_many_arguments)]
#[inline]
fn write_tcp(
    buf: &mut [u8],
    l3: &L3,
    t: &Tcp,
    seq: u32,
    ack: u32,
    tcp_flags: u8,
    window: u16,
    options: Option<&SynAckOptions>,
) -> Option<usize> {
    let opt_len = options.map_or(0, SynAckOptions::len);
    let tcp_len = tcp::MIN_HEADER_LEN + opt_len;
    let (l4, pseudo) = write_ip(buf, l3, proto::TCP, tcp_len)?;
    let end = l4 + tcp_len;
    let (h, opts) = buf.get_mut(l4..end)?.split_first_chunk_mut::<20>()?;
    let off_flags = ((tcp_len as u16 / 4) << 12) | u16::from(tcp_flags);
    let mut sum = pseudo
        + u64::from(t.dport)
        + u64::from(t.sport)
        + words32(seq)
        + words32(ack)
        + u64::from(off_flags)
        + u64::from(window);
    if let Some(o) = options {
        o.write(opts);
        sum = checksum::sum(sum, opts);
    }
    h[0..2].copy_from_slice(&t.dport.to_be_bytes());
    h[2..4].copy_from_slice(&t.sport.to_be_bytes());
    h[4..8].copy_from_slice(&seq.to_be_bytes());
    h[8..12].copy_from_slice(&ack.to_be_bytes());
    h[12..14].copy_from_slice(&off_flags.to_be_bytes());
    h[14..16].copy_from_slice(&window.to_be_bytes());
    h[16..18].copy_from_slice(&checksum::fold(sum).to_be_bytes());
    h[18..20].copy_from_slice(&[0, 0]); // urgent pointer
    swap_macs(buf);
    Some(end)
}

/// Rewrites the SYN in `buf` into our SYN-ACK and returns the frame length.
pub fn syn_ack(buf: &mut [u8], _l2: &L2, l3: &L3, t: &Tcp, sa: &SynAck) -> Option<usize> {
    let f = flags::SYN | flags::ACK | if sa.ece { flags::ECE } else { 0 };
    write_tcp(buf, l3, t, sa.seq, sa.ack, f, sa.window, Some(&sa.options))
}

/// Rewrites the segment in `buf` into the RST that RFC 9293 (section 3.10.7.1) prescribes for a
/// segment to a closed port, and returns the frame length. The caller never answers a RST.
pub fn rst(buf: &mut [u8], _l2: &L2, l3: &L3, t: &Tcp) -> Option<usize> {
    if t.flags & flags::ACK != 0 {
        write_tcp(buf, l3, t, t.ack, 0, flags::RST, 0, None)
    } else {
        let seg_len = t.payload_len as u32
            + u32::from(t.flags & flags::SYN != 0)
            + u32::from(t.flags & flags::FIN != 0);
        write_tcp(
            buf,
            l3,
            t,
            0,
            t.seq.wrapping_add(seg_len),
            flags::RST | flags::ACK,
            0,
            None,
        )
    }
}

/// Rewrites the datagram in `buf` into an ICMP (ICMPv6) port unreachable quoting it, and
/// returns the frame length. The quote is as long as the buffer and the size limits allow and
/// never shorter than the IP header plus 8 bytes.
pub fn port_unreachable(buf: &mut [u8], _l2: &L2, l3: &L3) -> Option<usize> {
    let off = l3.l3_off;
    let orig_len = l3.end - off;
    let (ip_len, max, icmp_type, icmp_code, protocol) = if l3.is_v6() {
        (ipv6::HEADER_LEN, ICMP6_MAX, 1u8, 4u8, proto::ICMPV6)
    } else {
        (ipv4::MIN_HEADER_LEN, ICMP4_MAX, 3u8, 3u8, proto::ICMP)
    };
    let shift = ip_len + 8;
    let room = buf.len().checked_sub(off + shift)?;
    let quote = orig_len.min(max - shift).min(room);
    if quote < (l3.l4_off - off) + 8 {
        return None;
    }
    buf.copy_within(off..off + quote, off + shift);
    let (l4, pseudo) = write_ip(buf, l3, protocol, 8 + quote)?;
    let msg = buf.get_mut(l4..l4 + 8 + quote)?;
    msg[0] = icmp_type;
    msg[1] = icmp_code;
    msg[2..8].fill(0);
    let c = if l3.is_v6() {
        checksum::fold(checksum::sum(pseudo, msg))
    } else {
        checksum::checksum(msg)
    };
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    swap_macs(buf);
    Some(l4 + 8 + quote)
}

/// The IPv4 address of a parsed header's source (for tests and explain).
pub fn v4_pair(l3: &L3) -> Option<(Ipv4Addr, Ipv4Addr)> {
    match (l3.src, l3.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some((s, d)),
        _ => None,
    }
}

/// The IPv6 address pair of a parsed header (for tests and explain).
pub fn v6_pair(l3: &L3) -> Option<(Ipv6Addr, Ipv6Addr)> {
    match (l3.src, l3.dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => Some((s, d)),
        _ => None,
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::frame::{parse_l2, parse_l3, parse_tcp, parse_udp, tcp_options};
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    fn syn(v6: bool, vlan: bool, opts: &[etherparse::TcpOptionElement]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let mut out = Vec::new();
        macro_rules! fin {
            ($b:expr) => {{
                let b = $b.tcp(40000, 22, 1000, 64240).syn().options(opts).unwrap();
                b.write(&mut out, &[]).unwrap();
            }};
        }
        let src6 = [
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20,
        ];
        let dst6 = [
            0x20, 0x01, 0x0d, 0xb8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        match (v6, vlan) {
            (false, false) => fin!(b.ipv4([198, 51, 100, 20], [203, 0, 113, 10], 55)),
            (true, false) => fin!(b.ipv6(src6, dst6, 55)),
            (false, true) => fin!(b.single_vlan(7.try_into().unwrap()).ipv4(
                [198, 51, 100, 20],
                [203, 0, 113, 10],
                55
            )),
            (true, true) => fin!(b.single_vlan(7.try_into().unwrap()).ipv6(src6, dst6, 55)),
        }
        out
    }

    fn answer(mut f: Vec<u8>, with_opts: bool) -> Vec<u8> {
        let l2 = parse_l2(&f).unwrap();
        let l3 = parse_l3(&f, &l2).unwrap();
        let t = parse_tcp(&f, &l3).unwrap();
        let o = tcp_options(&f, &l3, &t);
        let options = SynAckOptions {
            mss: 1460,
            wscale: o.wscale.map(|_| 7).filter(|_| with_opts),
            sack_perm: o.sack_perm && with_opts,
            timestamp: o.timestamp.map(|(v, _)| (123_456, v)),
        };
        let sa = SynAck {
            seq: 0xdead_beef,
            ack: t.seq.wrapping_add(1),
            window: 65535,
            ece: false,
            options,
        };
        f.resize(256, 0);
        let n = syn_ack(&mut f, &l2, &l3, &t, &sa).unwrap();
        f.truncate(n);
        f
    }

    #[test]
    fn syn_ack_v4_v6_vlan_checksums_and_options() {
        use etherparse::TcpOptionElement::*;
        let opts = [
            MaximumSegmentSize(1400),
            SelectiveAcknowledgementPermitted,
            Noop,
            WindowScale(9),
            Timestamp(777, 0),
        ];
        for v6 in [false, true] {
            for vlan in [false, true] {
                let out = answer(syn(v6, vlan, &opts), true);
                let p = SlicedPacket::from_ethernet(&out).unwrap();
                // etherparse's builder takes (source, destination): the SYN came from ..:01.
                assert_eq!(&out[0..6], &[2, 0, 0, 0, 0, 1], "to the client's MAC");
                assert_eq!(&out[6..12], &[2, 0, 0, 0, 0, 2], "from ours");
                assert_eq!(p.vlan().is_some(), vlan, "VLAN tag kept");
                let Some(TransportSlice::Tcp(t)) = &p.transport else {
                    panic!()
                };
                assert!(t.syn() && t.ack() && !t.rst());
                assert_eq!((t.source_port(), t.destination_port()), (22, 40000));
                assert_eq!(t.sequence_number(), 0xdead_beef);
                assert_eq!(t.acknowledgment_number(), 1001);
                let hdr = t.to_header();
                let (src, dst) = match &p.net {
                    Some(etherparse::NetSlice::Ipv4(ip)) => {
                        let h = ip.header();
                        assert_eq!(h.source(), [203, 0, 113, 10]);
                        assert_eq!(h.ttl(), REPLY_TTL);
                        assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum());
                        let c = hdr.calc_checksum_ipv4(&h.to_header(), &[]).unwrap();
                        assert_eq!(c, t.checksum());
                        (0, 0)
                    }
                    Some(etherparse::NetSlice::Ipv6(ip)) => {
                        let h = ip.header().to_header();
                        assert_eq!(h.source[15], 0x10);
                        let c = hdr.calc_checksum_ipv6(&h, &[]).unwrap();
                        assert_eq!(c, t.checksum());
                        (1, 1)
                    }
                    _ => panic!(),
                };
                let _ = (src, dst);
                let o = crate::wire::TcpOptions::parse(t.options());
                assert_eq!(o.mss, Some(1460));
                assert_eq!(o.wscale, Some(7));
                assert!(o.sack_perm);
                assert_eq!(o.timestamp, Some((123_456, 777)));
            }
        }
    }

    /// The reply writer as it was first written, field by field through the header views:
    /// the reference whose bytes [`syn_ack`] and [`rst`] must keep (the XDP program is made
    /// to produce exactly these).
    mod reference {
        use super::super::*;
        use crate::wire::{Ipv4Packet, TcpPacket};

        fn reply_pseudo(l3: &L3, protocol: u8, len: usize) -> u64 {
            match (l3.src, l3.dst) {
                (IpAddr::V4(src), IpAddr::V4(dst)) => {
                    checksum::pseudo_v4(dst, src, protocol, len as u16)
                }
                (IpAddr::V6(src), IpAddr::V6(dst)) => {
                    checksum::pseudo_v6(&dst, &src, protocol, len as u32)
                }
                _ => 0,
            }
        }

        fn swap_macs(buf: &mut [u8]) {
            crate::wire::EthernetFrame::new_unchecked(buf).swap_macs();
        }

        fn write_ip(buf: &mut [u8], l3: &L3, protocol: u8, l4_len: usize) -> Option<usize> {
            let off = l3.l3_off;
            match (l3.src, l3.dst) {
                (IpAddr::V4(src), IpAddr::V4(dst)) => {
                    let end = off + ipv4::MIN_HEADER_LEN + l4_len;
                    let total = u16::try_from(ipv4::MIN_HEADER_LEN + l4_len).ok()?;
                    let mut ip = Ipv4Packet::new_unchecked(buf.get_mut(off..end)?);
                    ip.set_version_and_header_len(ipv4::MIN_HEADER_LEN);
                    ip.set_tos(0);
                    ip.set_total_len(total);
                    ip.set_ident(0);
                    ip.set_flags_frag(ipv4::FLAG_DF);
                    ip.set_ttl(REPLY_TTL);
                    ip.set_protocol(protocol);
                    ip.set_src(dst);
                    ip.set_dst(src);
                    ip.fill_checksum();
                    Some(off + ipv4::MIN_HEADER_LEN)
                }
                (IpAddr::V6(src), IpAddr::V6(dst)) => {
                    let end = off + ipv6::HEADER_LEN + l4_len;
                    let plen = u16::try_from(l4_len).ok()?;
                    let mut ip = Ipv6Packet::new_unchecked(buf.get_mut(off..end)?);
                    ip.set_version_tc_flow(0, 0);
                    ip.set_payload_len(plen);
                    ip.set_next_header(protocol);
                    ip.set_hop_limit(REPLY_TTL);
                    ip.set_src(&dst);
                    ip.set_dst(&src);
                    Some(off + ipv6::HEADER_LEN)
                }
                _ => None,
            }
        }

        #[allow(clippy::too_many_arguments)]
        pub fn write_tcp(
            buf: &mut [u8],
            l3: &L3,
            t: &Tcp,
            seq: u32,
            ack: u32,
            tcp_flags: u8,
            window: u16,
            options: Option<&SynAckOptions>,
        ) -> Option<usize> {
            let opt_len = options.map_or(0, SynAckOptions::len);
            let tcp_len = tcp::MIN_HEADER_LEN + opt_len;
            let l4 = write_ip(buf, l3, proto::TCP, tcp_len)?;
            let end = l4 + tcp_len;
            let seg = buf.get_mut(l4..end)?;
            let mut p = TcpPacket::new_unchecked(&mut *seg);
            p.set_src_port(t.dport);
            p.set_dst_port(t.sport);
            p.set_seq(seq);
            p.set_ack(ack);
            p.set_header_len(tcp_len);
            p.set_flags(tcp_flags);
            p.set_window(window);
            p.set_checksum(0);
            p.set_urgent(0);
            if let Some(o) = options {
                o.write(p.options_mut());
            }
            let c = checksum::fold(checksum::sum(reply_pseudo(l3, proto::TCP, tcp_len), seg));
            TcpPacket::new_unchecked(seg).set_checksum(c);
            swap_macs(buf);
            Some(end)
        }
    }

    #[test]
    fn syn_ack_bytes_are_the_field_by_field_ones() {
        use etherparse::TcpOptionElement::*;
        let shapes: [&[etherparse::TcpOptionElement]; 5] = [
            &[],
            &[MaximumSegmentSize(1400)],
            &[MaximumSegmentSize(1460), SelectiveAcknowledgementPermitted],
            &[MaximumSegmentSize(9000), Noop, WindowScale(9)],
            &[
                MaximumSegmentSize(1400),
                SelectiveAcknowledgementPermitted,
                Noop,
                WindowScale(9),
                Timestamp(777, 0),
            ],
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for v6 in [false, true] {
            for vlan in [false, true] {
                for opts in shapes {
                    for _ in 0..50 {
                        let r = next();
                        let f = syn(v6, vlan, opts);
                        let l2 = parse_l2(&f).unwrap();
                        let l3 = parse_l3(&f, &l2).unwrap();
                        let t = parse_tcp(&f, &l3).unwrap();
                        let sa = SynAck {
                            seq: r as u32,
                            ack: (r >> 32) as u32,
                            window: (r >> 7) as u16,
                            ece: r & 1 != 0,
                            options: SynAckOptions {
                                mss: (r >> 20) as u16,
                                wscale: (r & 2 != 0).then_some((r >> 40) as u8 % 15),
                                sack_perm: r & 4 != 0,
                                timestamp: (r & 8 != 0).then_some((r as u32 ^ 5, (r >> 3) as u32)),
                            },
                        };
                        let mut a = f.clone();
                        a.resize(256, 0xa5);
                        let mut b = a.clone();
                        let n = syn_ack(&mut a, &l2, &l3, &t, &sa);
                        let fl = flags::SYN | flags::ACK | if sa.ece { flags::ECE } else { 0 };
                        let m = reference::write_tcp(
                            &mut b,
                            &l3,
                            &t,
                            sa.seq,
                            sa.ack,
                            fl,
                            sa.window,
                            Some(&sa.options),
                        );
                        assert_eq!(n, m);
                        assert_eq!(a, b, "v6 {v6} vlan {vlan} {sa:?}");
                        // A RST for the same segment.
                        let (mut a, mut b) = (f.clone(), f.clone());
                        let n = rst(&mut a, &l2, &l3, &t);
                        let m = reference::write_tcp(
                            &mut b,
                            &l3,
                            &t,
                            0,
                            t.seq.wrapping_add(1),
                            flags::RST | flags::ACK,
                            0,
                            None,
                        );
                        assert_eq!((n, a), (m, b));
                        // Too small a buffer: refused, untouched.
                        let mut a = f.clone();
                        a.truncate(l3.l4_off + 10);
                        let before = a.clone();
                        assert_eq!(syn_ack(&mut a, &l2, &l3, &t, &sa), None);
                        assert_eq!(a, before);
                    }
                }
            }
        }
    }

    #[test]
    fn syn_ack_without_client_options_has_only_mss() {
        let out = answer(syn(false, false, &[]), true);
        let p = SlicedPacket::from_ethernet(&out).unwrap();
        let Some(TransportSlice::Tcp(t)) = &p.transport else {
            panic!()
        };
        assert_eq!(t.options(), &[2, 4, 0x05, 0xb4]);
    }

    #[test]
    fn syn_ack_drops_ipv6_extension_headers() {
        // Insert an 8-byte destination-options header before TCP.
        let f = syn(true, false, &[]);
        let mut g = f[..54].to_vec();
        g[20] = proto::DSTOPTS;
        g.extend_from_slice(&[proto::TCP, 0, 1, 4, 0, 0, 0, 0]);
        g.extend_from_slice(&f[54..]);
        let plen = (g.len() - 54) as u16;
        g[18..20].copy_from_slice(&plen.to_be_bytes());
        let out = answer(g, false);
        let p = SlicedPacket::from_ethernet(&out).unwrap();
        assert!(matches!(p.transport, Some(TransportSlice::Tcp(_))));
        assert_eq!(out[20], proto::TCP);
    }

    #[test]
    fn rst_follows_rfc9293() {
        let mut f = syn(false, false, &[]);
        let l2 = parse_l2(&f).unwrap();
        let l3 = parse_l3(&f, &l2).unwrap();
        let t = parse_tcp(&f, &l3).unwrap();
        let n = rst(&mut f, &l2, &l3, &t).unwrap();
        let p = SlicedPacket::from_ethernet(&f[..n]).unwrap();
        let Some(TransportSlice::Tcp(r)) = &p.transport else {
            panic!()
        };
        assert!(r.rst() && r.ack());
        assert_eq!(r.sequence_number(), 0);
        assert_eq!(
            r.acknowledgment_number(),
            1001,
            "SYN occupies one sequence number"
        );

        // An ACK segment gets seq = its ack number, no ACK flag.
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 51, 100, 20], [203, 0, 113, 10], 55)
            .tcp(40000, 23, 1000, 64240)
            .ack(5555);
        let mut f = Vec::new();
        b.write(&mut f, b"hello").unwrap();
        let l2 = parse_l2(&f).unwrap();
        let l3 = parse_l3(&f, &l2).unwrap();
        let t = parse_tcp(&f, &l3).unwrap();
        let n = rst(&mut f, &l2, &l3, &t).unwrap();
        let p = SlicedPacket::from_ethernet(&f[..n]).unwrap();
        let Some(TransportSlice::Tcp(r)) = &p.transport else {
            panic!()
        };
        assert!(r.rst() && !r.ack());
        assert_eq!(r.sequence_number(), 5555);
        assert!(r.payload().is_empty());
    }

    #[test]
    fn port_unreachable_quotes_the_datagram() {
        for v6 in [false, true] {
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            let b = if v6 {
                b.ipv6(
                    [
                        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20,
                    ],
                    [
                        0x20, 0x01, 0x0d, 0xb8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x10,
                    ],
                    55,
                )
            } else {
                b.ipv4([198, 51, 100, 20], [203, 0, 113, 10], 55)
            };
            let mut f = Vec::new();
            b.udp(5000, 9999).write(&mut f, &[0xab; 2000]).unwrap();
            let orig = f.clone();
            let l2 = parse_l2(&f).unwrap();
            let l3 = parse_l3(&f, &l2).unwrap();
            assert!(parse_udp(&f, &l3).is_ok());
            f.resize(4096, 0);
            let n = port_unreachable(&mut f, &l2, &l3).unwrap();
            let out = &f[..n];
            let p = SlicedPacket::from_ethernet(out).unwrap();
            if v6 {
                assert_eq!(n, 14 + ICMP6_MAX);
                let Some(TransportSlice::Icmpv6(i)) = &p.transport else {
                    panic!("{:?}", p.transport)
                };
                assert_eq!(i.type_u8(), 1);
                assert_eq!(i.code_u8(), 4);
                let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else {
                    panic!()
                };
                let h = ip.header().to_header();
                assert_eq!(
                    i.icmp_type()
                        .calc_checksum(h.source, h.destination, i.payload())
                        .unwrap(),
                    i.checksum()
                );
                assert_eq!(i.payload(), &orig[14..14 + ICMP6_MAX - 48]);
            } else {
                assert_eq!(n, 14 + ICMP4_MAX);
                let Some(TransportSlice::Icmpv4(i)) = &p.transport else {
                    panic!()
                };
                assert_eq!((i.type_u8(), i.code_u8()), (3, 3));
                assert_eq!(checksum::checksum(&out[34..]), 0);
                assert_eq!(i.payload(), &orig[14..14 + ICMP4_MAX - 28]);
            }
        }
    }

    #[test]
    fn too_small_buffers_refuse() {
        let f = syn(false, false, &[]);
        let l2 = parse_l2(&f).unwrap();
        let l3 = parse_l3(&f, &l2).unwrap();
        let t = parse_tcp(&f, &l3).unwrap();
        let mut tiny = f[..50].to_vec();
        let sa = SynAck {
            seq: 1,
            ack: 2,
            window: 3,
            ece: false,
            options: SynAckOptions {
                mss: 1460,
                wscale: Some(7),
                sack_perm: true,
                timestamp: Some((1, 2)),
            },
        };
        assert_eq!(syn_ack(&mut tiny, &l2, &l3, &t, &sa), None);
    }
}
