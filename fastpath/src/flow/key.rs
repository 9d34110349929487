//! The flow key: the client-side 5-tuple in a fixed 40-byte layout.

use core::hash::{Hash, Hasher};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A client-side 5-tuple. IPv4 addresses are stored IPv4-mapped (`::ffff:a.b.c.d`) so that one
/// fixed layout serves both families; `v6` tells them apart (an IPv4-mapped IPv6 address on the
/// wire is still IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct FlowKey {
    /// Client address (IPv4-mapped for IPv4).
    pub src: [u8; 16],
    /// Edge address (IPv4-mapped for IPv4).
    pub dst: [u8; 16],
    /// Client port.
    pub sport: u16,
    /// Edge port.
    pub dport: u16,
    /// IP protocol (6 or 17).
    pub proto: u8,
    /// 1 for IPv6, 0 for IPv4.
    pub v6: u8,
    _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);

fn to16(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    }
}

impl FlowKey {
    /// Builds a key from the client (`src`) and edge (`dst`) sides.
    #[inline]
    pub fn new(proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> FlowKey {
        FlowKey {
            src: to16(src),
            dst: to16(dst),
            sport,
            dport,
            proto,
            v6: u8::from(dst.is_ipv6()),
            _pad: [0; 2],
        }
    }

    fn addr(&self, b: [u8; 16]) -> IpAddr {
        if self.v6 != 0 {
            IpAddr::V6(Ipv6Addr::from(b))
        } else {
            IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]))
        }
    }

    /// The client address.
    pub fn src_addr(&self) -> IpAddr {
        self.addr(self.src)
    }

    /// The edge address.
    pub fn dst_addr(&self) -> IpAddr {
        self.addr(self.dst)
    }

    /// True for IPv6.
    pub fn is_v6(&self) -> bool {
        self.v6 != 0
    }

    /// The key as five little words, for hashing without a byte loop.
    #[inline]
    pub fn words(&self) -> [u64; 5] {
        let w = |b: &[u8]| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        [
            w(&self.src[0..8]),
            w(&self.src[8..16]),
            w(&self.dst[0..8]),
            w(&self.dst[8..16]),
            u64::from(self.sport)
                | (u64::from(self.dport) << 16)
                | (u64::from(self.proto) << 32)
                | (u64::from(self.v6) << 40),
        ]
    }
}

impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        for w in self.words() {
            state.write_u64(w);
        }
    }
}

/// A keyed hash of flow keys: the same key always gives the same value for the same seed, and
/// without the seed an attacker cannot aim many flows at one bucket or one worker.
///
/// Why foldhash and not SipHash: the flow hash needs to spread keys and to be unpredictable
/// without the seed, not to be a MAC. foldhash (folded multiply, about a tenth of the cost of
/// SipHash-2-4 on a 40-byte key) is keyed with 64 bits derived from the node's cookie seed
/// through SipHash-1-3 ([`crate::syncookie::SynCookies::derived_u64`]), so an attacker who
/// cannot see the seed cannot compute bucket or worker indices offline; and what a collision
/// attack could still buy is bounded by the table itself: a bucket holds [`crate::flow::WAYS`]
/// entries and evicts its least recently seen one, so colliding flows cost a fixed 8-way probe
/// and evictions in that one bucket (as a full table would), never a longer chain or more
/// work per packet. Nothing lets a packet past the gate on the strength of this hash: that
/// takes a valid SYN cookie, which keeps its own SipHash-1-3 MAC.
#[derive(Debug, Clone)]
pub struct FlowHasher {
    seed: foldhash::fast::FixedState,
}

impl FlowHasher {
    /// A hasher for `seed` (derived from the cookie seed, so that a replay with a fixed secret
    /// is reproducible).
    pub fn new(seed: u64) -> FlowHasher {
        FlowHasher {
            seed: foldhash::fast::FixedState::with_seed(seed),
        }
    }

    /// The 64-bit hash of `key`.
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        use core::hash::BuildHasher;
        self.seed.hash_one(key)
    }

    /// Picks one of `n` (> 0) workers for `key`, with Lemire's multiply-shift (no division).
    #[inline]
    pub fn pick(&self, key: &FlowKey, n: usize) -> usize {
        Self::pick_hashed(self.hash(key), n)
    }

    /// [`FlowHasher::pick`] for a key already hashed by this hasher.
    #[inline]
    pub fn pick_hashed(hash: u64, n: usize) -> usize {
        ((u128::from(hash) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn round_trip_addresses() {
        let k = FlowKey::new(
            6,
            "192.0.2.1".parse().unwrap(),
            40000,
            "203.0.113.10".parse().unwrap(),
            22,
        );
        assert_eq!(k.src_addr(), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(k.dst_addr(), "203.0.113.10".parse::<IpAddr>().unwrap());
        assert!(!k.is_v6());
        let k6 = FlowKey::new(
            17,
            "2001:db8::1".parse().unwrap(),
            1,
            "2001:db8:100:1::10".parse().unwrap(),
            2,
        );
        assert!(k6.is_v6());
        assert_eq!(
            k6.dst_addr(),
            "2001:db8:100:1::10".parse::<IpAddr>().unwrap()
        );
        // IPv4 and its IPv4-mapped IPv6 form are different flows.
        let mapped = FlowKey::new(
            6,
            "::ffff:192.0.2.1".parse().unwrap(),
            40000,
            "::ffff:203.0.113.10".parse().unwrap(),
            22,
        );
        assert_ne!(k, mapped);
    }

    #[test]
    fn pick_is_stable_and_spreads() {
        let h = FlowHasher::new(7);
        let mut counts = [0usize; 4];
        for p in 0..4000u16 {
            let k = FlowKey::new(
                6,
                "192.0.2.1".parse().unwrap(),
                p,
                "203.0.113.10".parse().unwrap(),
                22,
            );
            let w = h.pick(&k, 4);
            assert_eq!(w, h.pick(&k, 4));
            counts[w] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}
