//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! `sum` returns an unfolded 32-bit accumulator so that pseudo-header and payload sums can be
//! added before one final [`fold`]. Odd-length data is padded with a zero byte, as RFC 1071 says.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data`, read as big-endian 16-bit words, to `acc`.
#[inline]
pub fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        // Four 16-bit words at once; a u64 accumulator cannot overflow for any frame we handle.
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 48) + ((w >> 32) & 0xffff) + ((w >> 16) & 0xffff) + (w & 0xffff);
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds an accumulator into the one's-complement checksum (already inverted, ready to store).
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The checksum of `data` alone (an IPv4 header, an ICMPv4 message).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum(0, data))
}

/// The IPv4 pseudo-header sum for an upper-layer checksum (RFC 793, RFC 768).
#[inline]
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u64 {
    let acc = sum(0, &src.octets());
    let acc = sum(acc, &dst.octets());
    acc + u64::from(proto) + u64::from(len)
}

/// The IPv6 pseudo-header sum (RFC 8200 section 8.1).
#[inline]
pub fn pseudo_v6(src: &Ipv6Addr, dst: &Ipv6Addr, proto: u8, len: u32) -> u64 {
    let acc = sum(0, &src.octets());
    let acc = sum(acc, &dst.octets());
    acc + u64::from(proto) + u64::from(len >> 16) + u64::from(len & 0xffff)
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word changed from `old` to `new`.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!csum) + u64::from(!old) + u64::from(new);
    fold(acc)
}

/// RFC 1624 for a 32-bit field (two words).
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let c = update16(csum, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

#[cfg(test)]
mod test {
    use super::*;

    // RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &data)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            checksum(&[0x12, 0x34, 0x56, 0x00])
        );
    }

    #[test]
    fn sum_agrees_with_word_loop() {
        let data: Vec<u8> = (0u16..301).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..data.len() {
            let mut acc = 0u64;
            for p in data[..n].chunks(2) {
                acc += u64::from(u16::from_be_bytes([p[0], *p.get(1).unwrap_or(&0)]));
            }
            assert_eq!(fold(sum(0, &data[..n])), fold(acc), "length {n}");
        }
    }

    #[test]
    fn incremental_update_matches_recompute() {
        let mut hdr = [
            0x45u8, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xac, 0x10,
            0x0a, 0x63, 0xac, 0x10, 0x0a, 0x0c,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
        // TTL 64 -> 63 changes the word at offset 8.
        let old = u16::from_be_bytes([hdr[8], hdr[9]]);
        hdr[8] = 63;
        let new = u16::from_be_bytes([hdr[8], hdr[9]]);
        let c2 = update16(c, old, new);
        hdr[10..12].copy_from_slice(&c2.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
    }
}
