//! Deterministic prefix sets with realistic length distributions, shared by the tests and the
//! benchmarks (feature `bench-internals`).

use core::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// xorshift64* (deterministic, no dependency).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `n` distinct IPv4 prefixes shaped like a BGP table: ~60% /24, ~30% /16-/23, ~7% /8-/15,
/// ~3% /25-/32, clustered (many share their first 8-16 bits) and nested.
pub fn ipv4(n: usize, seed: u64) -> Vec<(Ipv4Net, u32)> {
    let mut r = Rng::new(seed);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let x = r.next_u64();
        let len = match x % 100 {
            0..=59 => 24,
            60..=89 => 16 + (x >> 8) % 8,
            90..=96 => 8 + (x >> 8) % 8,
            _ => 25 + (x >> 8) % 8,
        } as u8;
        // Cluster addresses: the first octet from 1..=223, skewed to a few hundred /12s.
        let base = ((1 + (x >> 16) % 223) as u32) << 24 | ((x >> 24) as u32 & 0x00ff_ffff);
        let net = Ipv4Net::new_assert(Ipv4Addr::from_bits(base), len).trunc();
        if seen.insert(net) {
            out.push((net, out.len() as u32));
        }
    }
    out
}

/// `n` distinct IPv6 prefixes: mostly /32-/48, some /56-/64, a few longer, inside 2000::/3.
pub fn ipv6(n: usize, seed: u64) -> Vec<(Ipv6Net, u32)> {
    let mut r = Rng::new(seed);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let x = r.next_u64();
        let y = r.next_u64();
        let len = match x % 100 {
            0..=19 => 32,
            20..=79 => 33 + (x >> 8) % 16,
            80..=94 => 56 + (x >> 8) % 9,
            _ => 65 + (x >> 8) % 64,
        } as u8;
        let hi = (0x2000u128 | ((x >> 20) as u128 & 0x1fff)) << 112;
        let bits = hi | (u128::from(y) << 48) | u128::from(r.next_u64() >> 16);
        let net = Ipv6Net::new_assert(Ipv6Addr::from_bits(bits), len).trunc();
        if seen.insert(net) {
            out.push((net, out.len() as u32));
        }
    }
    out
}

/// Lookup addresses: half inside random prefixes of `set`, half random.
pub fn ipv4_lookups(set: &[(Ipv4Net, u32)], n: usize, seed: u64) -> Vec<Ipv4Addr> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|i| {
            let x = r.next_u64();
            if i % 2 == 0 && !set.is_empty() {
                let (net, _) = set[(x as usize) % set.len()];
                let host = (r.next_u64() as u32) & !u32::from(net.netmask());
                Ipv4Addr::from_bits(net.network().to_bits() | host)
            } else {
                Ipv4Addr::from_bits(x as u32)
            }
        })
        .collect()
}

/// Lookup addresses: half inside random prefixes of `set`, half random in 2000::/3.
pub fn ipv6_lookups(set: &[(Ipv6Net, u32)], n: usize, seed: u64) -> Vec<Ipv6Addr> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|i| {
            let x = (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64());
            if i % 2 == 0 && !set.is_empty() {
                let (net, _) = set[(x as usize) % set.len()];
                Ipv6Addr::from_bits(net.network().to_bits() | (x & !net.netmask().to_bits()))
            } else {
                Ipv6Addr::from_bits((0x2000u128 << 112) | (x >> 3))
            }
        })
        .collect()
}
