//! The staged frame parser the pipeline runs, one layer at a time.
//!
//! Each stage returns plain offsets and values (all `Copy`) so that later stages and the reply
//! builders can re-borrow the frame mutably. The checks are exactly those of the pipeline's
//! contract (steps 1, 2 and 5 in `pipeline`):
//!
//! * [`parse_l2`]: Ethernet II with up to two VLAN tags (0x8100, 0x88a8, 0x9100) carrying IPv4
//!   or IPv6. Anything else is [`L2Error::NotIp`]; a frame too short for its tags is
//!   [`L2Error::Truncated`].
//! * [`parse_l3`]: IPv4 (version, IHL >= 5, total length within the frame, header checksum) or
//!   IPv6 (payload length within the frame, at most [`MAX_EXT_HEADERS`] extension headers, each
//!   within the payload; jumbograms per RFC 2675).
//! * [`parse_tcp`] / [`parse_udp`]: the L4 header within the IP payload, TCP data offset >= 5,
//!   UDP length >= 8 and within the payload.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ethernet::{self, ethertype};
use super::{Error, Result, be16, be32, ipv4, ipv6, proto, tcp, udp};

/// More IPv6 extension headers than this make a packet malformed.
pub const MAX_EXT_HEADERS: u8 = 8;

/// Why a frame is not an IP frame we parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L2Error {
    /// Not Ethernet II with at most two VLAN tags carrying IPv4 or IPv6 (ARP, LLDP, 802.3, ...).
    NotIp,
    /// Too short for the Ethernet header or its VLAN tags.
    Truncated,
}

/// The link layer of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2 {
    /// Number of VLAN tags (0, 1 or 2).
    pub vlans: u8,
    /// Offset of the IP header.
    pub l3_off: usize,
    /// Ethertype of the payload: [`ethertype::IPV4`] or [`ethertype::IPV6`].
    pub ethertype: u16,
}

/// Parses the Ethernet header and up to two VLAN tags.
///
/// # Errors
/// [`L2Error::Truncated`] when the frame is too short for its headers; [`L2Error::NotIp`] for
/// any frame that does not carry IPv4 or IPv6 after at most two tags.
#[inline(always)]
pub fn parse_l2(f: &[u8]) -> core::result::Result<L2, L2Error> {
    if f.len() < ethernet::HEADER_LEN {
        return Err(L2Error::Truncated);
    }
    let mut et = be16(f, 12);
    let mut off = ethernet::HEADER_LEN;
    let mut vlans = 0u8;
    while matches!(et, ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD) {
        if vlans == 2 {
            return Err(L2Error::NotIp);
        }
        if f.len() < off + ethernet::VLAN_TAG_LEN {
            return Err(L2Error::Truncated);
        }
        et = be16(f, off + 2);
        off += ethernet::VLAN_TAG_LEN;
        vlans += 1;
    }
    match et {
        ethertype::IPV4 | ethertype::IPV6 => Ok(L2 {
            vlans,
            l3_off: off,
            ethertype: et,
        }),
        _ => Err(L2Error::NotIp),
    }
}

/// The network layer of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L3 {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Offset of the IP header.
    pub l3_off: usize,
    /// Offset of the upper-layer header.
    pub l4_off: usize,
    /// End of the IP packet in the frame (Ethernet padding excluded).
    pub end: usize,
    /// IPv4 fragment (MF or offset) or an IPv6 fragment header.
    pub fragment: bool,
    /// IPv6 extension headers walked (0 for IPv4).
    pub ext_headers: u8,
    /// The ToS / traffic-class byte (ECN in its low two bits).
    pub tos: u8,
}

impl L3 {
    /// True for IPv6.
    #[inline]
    pub fn is_v6(&self) -> bool {
        self.dst.is_ipv6()
    }

    /// Length of the upper-layer data.
    #[inline]
    pub fn l4_len(&self) -> usize {
        self.end - self.l4_off
    }
}

/// Parses the IP header (and IPv6 extension headers) at `l2.l3_off`.
///
/// # Errors
/// [`Error`] for every case the pipeline calls `malformed` at step 2.
// Inlined whole into the pipeline, both families, like the other parsers here: returned from
// a call, a parsed header travels through memory, written field by field and read back in
// wider words the CPU cannot forward from those stores (perf showed these stalls as the
// costliest instructions of the pipeline).
#[inline(always)]
pub fn parse_l3(f: &[u8], l2: &L2) -> Result<L3> {
    let b = f.get(l2.l3_off..).ok_or(Error)?;
    if l2.ethertype == ethertype::IPV4 {
        let p = ipv4::Packet::new_checked(b)?;
        if !p.verify_checksum() {
            return Err(Error);
        }
        Ok(L3 {
            src: IpAddr::V4(p.src()),
            dst: IpAddr::V4(p.dst()),
            proto: p.protocol(),
            l3_off: l2.l3_off,
            l4_off: l2.l3_off + p.header_len(),
            end: l2.l3_off + usize::from(p.total_len()),
            fragment: p.is_fragment(),
            ext_headers: 0,
            tos: p.tos(),
        })
    } else {
        parse_ipv6(b, l2.l3_off)
    }
}

#[inline(always)]
fn parse_ipv6(b: &[u8], l3_off: usize) -> Result<L3> {
    let p = ipv6::Packet::new_checked(b)?;
    let mut nh = p.next_header();
    let mut off = ipv6::HEADER_LEN;
    let plen = usize::from(p.payload_len());
    let end = if plen == 0 && nh == proto::HOPOPT {
        // RFC 2675: a jumbogram says its length in the hop-by-hop header.
        match jumbo_len(b) {
            Some(j) => ipv6::HEADER_LEN + j,
            None => ipv6::HEADER_LEN,
        }
    } else {
        ipv6::HEADER_LEN + plen
    };
    if end > b.len() {
        return Err(Error);
    }
    let mut count = 0u8;
    let mut fragment = false;
    loop {
        let len = match nh {
            proto::HOPOPT
            | proto::ROUTING
            | proto::DSTOPTS
            | proto::MOBILITY
            | proto::HIP
            | proto::SHIM6 => {
                let l = *b.get(off + 1).filter(|_| off + 2 <= end).ok_or(Error)?;
                (usize::from(l) + 1) * 8
            }
            proto::AH => {
                let l = *b.get(off + 1).filter(|_| off + 2 <= end).ok_or(Error)?;
                (usize::from(l) + 2) * 4
            }
            proto::FRAGMENT => 8,
            _ => break,
        };
        if off + len > end {
            return Err(Error);
        }
        count += 1;
        if count > MAX_EXT_HEADERS {
            return Err(Error);
        }
        let next = b[off];
        off += len;
        if nh == proto::FRAGMENT {
            // What follows a fragment header is not reliably a header chain (a non-first
            // fragment carries payload bytes); the packet is dropped as a fragment anyway.
            fragment = true;
            nh = next;
            break;
        }
        nh = next;
    }
    Ok(L3 {
        src: IpAddr::V6(p.src()),
        dst: IpAddr::V6(p.dst()),
        proto: nh,
        l3_off,
        l4_off: l3_off + off,
        end: l3_off + end,
        fragment,
        ext_headers: count,
        tos: p.traffic_class(),
    })
}

/// The Jumbo Payload option (type 0xc2) of the hop-by-hop header right after the fixed header.
fn jumbo_len(b: &[u8]) -> Option<usize> {
    let hbh_len = (usize::from(*b.get(ipv6::HEADER_LEN + 1)?) + 1) * 8;
    let opts = b.get(ipv6::HEADER_LEN + 2..ipv6::HEADER_LEN + hbh_len)?;
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => i += 1, // Pad1
            t => {
                let l = usize::from(*opts.get(i + 1)?);
                if t == 0xc2 && l == 4 {
                    let v = opts.get(i + 2..i + 6)?;
                    let j = u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as usize;
                    return (j > 65535).then_some(j);
                }
                i += 2 + l;
            }
        }
    }
    None
}

/// The TCP header fields the pipeline uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flag byte.
    pub flags: u8,
    /// Header length in bytes (20..=60).
    pub hdr_len: usize,
    /// Payload length in bytes.
    pub payload_len: usize,
}

/// Parses the TCP header at `l3.l4_off`.
///
/// # Errors
/// [`Error`] when the header is cut short or its data offset is below 5 or past the payload.
#[inline(always)]
pub fn parse_tcp(f: &[u8], l3: &L3) -> Result<Tcp> {
    let b = f.get(l3.l4_off..l3.end).ok_or(Error)?;
    let p = tcp::Packet::new_checked(b)?;
    Ok(Tcp {
        sport: p.src_port(),
        dport: p.dst_port(),
        seq: be32(b, 4),
        ack: be32(b, 8),
        flags: p.flags(),
        hdr_len: p.header_len(),
        payload_len: b.len() - p.header_len(),
    })
}

/// The UDP header fields the pipeline uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Payload length in bytes (from the length field).
    pub payload_len: usize,
}

/// Parses the UDP header at `l3.l4_off`.
///
/// # Errors
/// [`Error`] when the header is cut short or the length field is below 8 or past the payload.
#[inline(always)]
pub fn parse_udp(f: &[u8], l3: &L3) -> Result<Udp> {
    let b = f.get(l3.l4_off..l3.end).ok_or(Error)?;
    let p = udp::Packet::new_checked(b)?;
    Ok(Udp {
        sport: p.src_port(),
        dport: p.dst_port(),
        payload_len: usize::from(p.len()) - udp::HEADER_LEN,
    })
}

/// The options of the TCP header at `l3.l4_off` (call after [`parse_tcp`] succeeded).
#[inline(always)]
pub fn tcp_options(f: &[u8], l3: &L3, t: &Tcp) -> super::TcpOptions {
    let start = l3.l4_off + tcp::MIN_HEADER_LEN;
    let end = l3.l4_off + t.hdr_len;
    super::TcpOptions::parse(f.get(start..end).unwrap_or(&[]))
}

/// The IPv4 address of `a`, or `None` for IPv6.
#[inline]
pub fn v4(a: IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(v) => Some(v),
        IpAddr::V6(_) => None,
    }
}

/// The IPv6 address of `a`, or `None` for IPv4.
#[inline]
pub fn v6(a: IpAddr) -> Option<Ipv6Addr> {
    match a {
        IpAddr::V6(v) => Some(v),
        IpAddr::V4(_) => None,
    }
}

/// Says which check a malformed frame fails, with the values involved, for `explain`. Off the
/// hot path: the pipeline itself only learns "malformed" from the parsers above, and this
/// re-runs the same checks with words. `None` when the L2-L4 headers pass every check.
pub fn diagnose(f: &[u8]) -> Option<String> {
    if f.len() < ethernet::HEADER_LEN {
        return Some(format!(
            "the frame has {} bytes, fewer than an Ethernet header (14)",
            f.len()
        ));
    }
    let l2 = match parse_l2(f) {
        Ok(l2) => l2,
        Err(L2Error::Truncated) => return Some("a VLAN tag is cut short".into()),
        Err(L2Error::NotIp) => return None,
    };
    let b = &f[l2.l3_off..];
    if l2.ethertype == ethertype::IPV4 {
        if b.len() < ipv4::MIN_HEADER_LEN {
            return Some(format!("IPv4: {} bytes left for a 20-byte header", b.len()));
        }
        let p = ipv4::Packet::new_unchecked(b);
        if b[0] >> 4 != 4 {
            return Some(format!("IPv4: version field is {}", b[0] >> 4));
        }
        let (hl, tl) = (p.header_len(), usize::from(p.total_len()));
        if hl < ipv4::MIN_HEADER_LEN {
            return Some(format!(
                "IPv4: IHL {} (header {hl} bytes) is below 5",
                hl / 4
            ));
        }
        if tl < hl {
            return Some(format!(
                "IPv4: total length {tl} is shorter than the {hl}-byte header"
            ));
        }
        if tl > b.len() {
            return Some(format!(
                "IPv4: total length {tl} runs past the {} bytes the frame holds",
                b.len()
            ));
        }
        if !p.verify_checksum() {
            let mut h = b[..hl].to_vec();
            h[10] = 0;
            h[11] = 0;
            return Some(format!(
                "IPv4: header checksum is {:#06x}, should be {:#06x}",
                p.checksum(),
                super::checksum::checksum(&h)
            ));
        }
    } else {
        if b.len() < ipv6::HEADER_LEN {
            return Some(format!("IPv6: {} bytes left for a 40-byte header", b.len()));
        }
        if b[0] >> 4 != 6 {
            return Some(format!("IPv6: version field is {}", b[0] >> 4));
        }
        let plen = usize::from(ipv6::Packet::new_unchecked(b).payload_len());
        if ipv6::HEADER_LEN + plen > b.len() {
            return Some(format!(
                "IPv6: payload length {plen} runs past the {} bytes after the header",
                b.len() - ipv6::HEADER_LEN
            ));
        }
        if let Err(Error) = parse_ipv6(b, l2.l3_off) {
            return Some(format!(
                "IPv6: more than {MAX_EXT_HEADERS} extension headers, or one that runs past the payload"
            ));
        }
    }
    let l3 = parse_l3(f, &l2).ok()?;
    if l3.fragment {
        return None;
    }
    let seg = &f[l3.l4_off..l3.end];
    match l3.proto {
        proto::TCP if seg.len() < tcp::MIN_HEADER_LEN => Some(format!(
            "TCP: {} bytes left for a 20-byte header",
            seg.len()
        )),
        proto::TCP => {
            let hl = usize::from(seg[12] >> 4) * 4;
            if hl < tcp::MIN_HEADER_LEN {
                Some(format!("TCP: data offset {} is below 5", hl / 4))
            } else if hl > seg.len() {
                Some(format!(
                    "TCP: the {hl}-byte header runs past the {}-byte segment",
                    seg.len()
                ))
            } else {
                None
            }
        }
        proto::UDP if seg.len() < udp::HEADER_LEN => Some(format!(
            "UDP: {} bytes left for an 8-byte header",
            seg.len()
        )),
        proto::UDP => {
            let len = usize::from(be16(seg, 4));
            if len < udp::HEADER_LEN {
                Some(format!("UDP: length field {len} is below 8"))
            } else if len > seg.len() {
                Some(format!(
                    "UDP: length field {len} runs past the {} bytes the IP packet carries",
                    seg.len()
                ))
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp4_syn() -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([192, 0, 2, 1], [203, 0, 113, 10], 64)
            .tcp(40000, 22, 1000, 64240)
            .syn()
            .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap();
        let mut v = Vec::new();
        b.write(&mut v, &[]).unwrap();
        v
    }

    #[test]
    fn tcp4() {
        let f = tcp4_syn();
        let l2 = parse_l2(&f).unwrap();
        assert_eq!(
            (l2.vlans, l2.l3_off, l2.ethertype),
            (0, 14, ethertype::IPV4)
        );
        let l3 = parse_l3(&f, &l2).unwrap();
        assert_eq!(l3.dst, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)));
        assert_eq!(l3.proto, proto::TCP);
        assert!(!l3.fragment);
        let t = parse_tcp(&f, &l3).unwrap();
        assert_eq!(
            (t.sport, t.dport, t.seq, t.flags),
            (40000, 22, 1000, tcp::flags::SYN)
        );
        assert_eq!(tcp_options(&f, &l3, &t).mss, Some(1460));
    }

    #[test]
    fn vlan_and_qinq() {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .double_vlan(10.try_into().unwrap(), 20.try_into().unwrap())
            .ipv6(
                [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [
                    0x20, 0x01, 0x0d, 0xb8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x10,
                ],
                64,
            )
            .udp(5000, 53);
        let mut f = Vec::new();
        b.write(&mut f, &[1, 2, 3]).unwrap();
        let l2 = parse_l2(&f).unwrap();
        assert_eq!((l2.vlans, l2.l3_off), (2, 22));
        let l3 = parse_l3(&f, &l2).unwrap();
        assert!(l3.is_v6());
        let u = parse_udp(&f, &l3).unwrap();
        assert_eq!((u.sport, u.dport, u.payload_len), (5000, 53, 3));
        // A third tag is not something we parse.
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&[0x81, 0x00, 0, 30]);
        t.extend_from_slice(&f[12..]);
        assert_eq!(parse_l2(&t), Err(L2Error::NotIp));
        // A tag cut short.
        assert_eq!(parse_l2(&f[..16]), Err(L2Error::Truncated));
    }

    #[test]
    fn not_ip_and_short() {
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(parse_l2(&arp), Err(L2Error::NotIp));
        assert_eq!(parse_l2(&arp[..13]), Err(L2Error::Truncated));
        let mut llc = arp.clone();
        llc[12] = 0x00;
        llc[13] = 0x26;
        assert_eq!(parse_l2(&llc), Err(L2Error::NotIp));
    }

    #[test]
    fn ipv4_checks() {
        let f = tcp4_syn();
        let l2 = parse_l2(&f).unwrap();
        let mut bad = f.clone();
        bad[14 + 8] = 1; // TTL changed, checksum now wrong
        assert!(parse_l3(&bad, &l2).is_err());
        assert!(
            parse_l3(&f[..f.len() - 1], &l2).is_err(),
            "total length beyond frame"
        );
        // Ethernet padding after the datagram is fine and excluded.
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 6]);
        let l3 = parse_l3(&padded, &l2).unwrap();
        assert_eq!(l3.end, f.len());
        // A TCP header cut short by the total length.
        let mut short = f.clone();
        let tl = u16::from_be_bytes([short[16], short[17]]) - 8;
        short[16..18].copy_from_slice(&tl.to_be_bytes());
        short[24] = 0;
        short[25] = 0;
        let c = super::super::checksum::checksum(&short[14..34]);
        short[24..26].copy_from_slice(&c.to_be_bytes());
        let l3 = parse_l3(&short, &l2).unwrap();
        assert!(parse_tcp(&short, &l3).is_err());
    }

    fn v6_with_ext(exts: &[(u8, usize)], last: u8, payload: &[u8]) -> Vec<u8> {
        // Builds eth + ipv6 + the given extension headers (kind, length in bytes) + payload.
        let mut f = vec![0u8; 14];
        f[12] = 0x86;
        f[13] = 0xdd;
        let mut body = Vec::new();
        for (i, &(kind, len)) in exts.iter().enumerate() {
            let next = exts.get(i + 1).map_or(last, |e| e.0);
            let mut h = vec![0u8; len];
            h[0] = next;
            h[1] = if kind == proto::AH {
                (len / 4 - 2) as u8
            } else if kind == proto::FRAGMENT {
                0
            } else {
                (len / 8 - 1) as u8
            };
            body.extend_from_slice(&h);
        }
        body.extend_from_slice(payload);
        let mut ip = vec![0u8; 40];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&(body.len() as u16).to_be_bytes());
        ip[6] = exts.first().map_or(last, |e| e.0);
        ip[7] = 64;
        ip[24] = 0x20;
        ip[25] = 0x01;
        f.extend_from_slice(&ip);
        f.extend_from_slice(&body);
        f
    }

    #[test]
    fn ipv6_extension_headers() {
        let udp = [0x13, 0x88, 0x00, 0x35, 0x00, 0x08, 0, 0];
        let f = v6_with_ext(
            &[
                (proto::HOPOPT, 8),
                (proto::ROUTING, 24),
                (proto::DSTOPTS, 8),
                (proto::AH, 16),
            ],
            proto::UDP,
            &udp,
        );
        let l2 = parse_l2(&f).unwrap();
        let l3 = parse_l3(&f, &l2).unwrap();
        assert_eq!(l3.proto, proto::UDP);
        assert_eq!(l3.ext_headers, 4);
        assert_eq!(l3.l4_off, 14 + 40 + 8 + 24 + 8 + 16);
        assert!(parse_udp(&f, &l3).is_ok());

        let nine: Vec<_> = (0..9).map(|_| (proto::DSTOPTS, 8)).collect();
        let f = v6_with_ext(&nine, proto::UDP, &udp);
        assert!(parse_l3(&f, &parse_l2(&f).unwrap()).is_err(), "more than 8");
        let eight: Vec<_> = (0..8).map(|_| (proto::DSTOPTS, 8)).collect();
        let f = v6_with_ext(&eight, proto::UDP, &udp);
        assert!(parse_l3(&f, &parse_l2(&f).unwrap()).is_ok(), "8 is fine");

        let f = v6_with_ext(&[(proto::FRAGMENT, 8)], proto::UDP, &udp);
        let l3 = parse_l3(&f, &parse_l2(&f).unwrap()).unwrap();
        assert!(l3.fragment);

        // An extension header running past the payload length.
        let mut f = v6_with_ext(&[(proto::ROUTING, 24)], proto::UDP, &[]);
        f.truncate(f.len() - 8);
        let pl = (f.len() - 54) as u16;
        f[18..20].copy_from_slice(&pl.to_be_bytes());
        assert!(parse_l3(&f, &parse_l2(&f).unwrap()).is_err());

        // Payload length beyond the frame.
        let mut f = v6_with_ext(&[], proto::UDP, &udp);
        f.truncate(f.len() - 1);
        assert!(parse_l3(&f, &parse_l2(&f).unwrap()).is_err());
    }

    #[test]
    fn diagnose_names_the_failing_check() {
        let f = tcp4_syn();
        assert_eq!(diagnose(&f), None);
        let mut bad = f.clone();
        bad[14 + 8] = 1;
        assert!(
            diagnose(&bad)
                .unwrap()
                .starts_with("IPv4: header checksum is"),
            "{:?}",
            diagnose(&bad)
        );
        assert!(diagnose(&f[..f.len() - 1]).unwrap().contains("runs past"));
        assert!(
            diagnose(&f[..10])
                .unwrap()
                .contains("fewer than an Ethernet header")
        );
        let mut doff = f.clone();
        doff[14 + 20 + 12] = 0x40;
        assert_eq!(diagnose(&doff).unwrap(), "TCP: data offset 4 is below 5");
        let nine: Vec<_> = (0..9).map(|_| (proto::DSTOPTS, 8)).collect();
        let g = v6_with_ext(
            &nine,
            proto::UDP,
            &[0x13, 0x88, 0x00, 0x35, 0x00, 0x08, 0, 0],
        );
        assert!(diagnose(&g).unwrap().contains("extension headers"));
    }

    #[test]
    fn ipv6_jumbogram() {
        // Payload length 0, hop-by-hop with a Jumbo Payload option of 70000 bytes.
        let mut f = vec![0u8; 14];
        f[12] = 0x86;
        f[13] = 0xdd;
        let mut ip = vec![0u8; 40];
        ip[0] = 0x60;
        ip[6] = proto::HOPOPT;
        f.extend_from_slice(&ip);
        let jumbo: u32 = 70000;
        let mut hbh = vec![proto::TCP, 0, 0xc2, 4];
        hbh.extend_from_slice(&jumbo.to_be_bytes());
        f.extend_from_slice(&hbh);
        f.resize(14 + 40 + jumbo as usize, 0);
        f[14 + 40 + 8 + 12] = 0x50;
        let l3 = parse_l3(&f, &parse_l2(&f).unwrap()).unwrap();
        assert_eq!(l3.end, f.len());
        assert_eq!(l3.proto, proto::TCP);
        assert!(parse_tcp(&f, &l3).is_ok());
        // Without the option, payload length 0 leaves no room for the hop-by-hop header.
        let mut g = f.clone();
        g[14 + 40 + 2] = 1;
        assert!(parse_l3(&g, &parse_l2(&g).unwrap()).is_err());
    }
}
