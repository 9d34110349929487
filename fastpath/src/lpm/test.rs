//! The tables agree with a linear scan, for small tables (no direct pointing) and large ones.

use super::*;
use proptest::prelude::*;

fn scan4(set: &[(Ipv4Net, u32)], a: Ipv4Addr) -> Option<u32> {
    set.iter()
        .filter(|(n, _)| n.contains(&a))
        .max_by_key(|(n, _)| n.prefix_len())
        .map(|(_, v)| *v)
}

fn scan6(set: &[(Ipv6Net, u32)], a: Ipv6Addr) -> Option<u32> {
    set.iter()
        .filter(|(n, _)| n.contains(&a))
        .max_by_key(|(n, _)| n.prefix_len())
        .map(|(_, v)| *v)
}

fn dedup4(v: Vec<(Ipv4Net, u32)>) -> Vec<(Ipv4Net, u32)> {
    let mut seen = std::collections::HashSet::new();
    v.into_iter()
        .map(|(n, x)| (n.trunc(), x))
        .filter(|(n, _)| seen.insert(*n))
        .collect()
}

fn dedup6(v: Vec<(Ipv6Net, u32)>) -> Vec<(Ipv6Net, u32)> {
    let mut seen = std::collections::HashSet::new();
    v.into_iter()
        .map(|(n, x)| (n.trunc(), x))
        .filter(|(n, _)| seen.insert(*n))
        .collect()
}

/// Probes: random addresses plus the first and last address of every prefix and their
/// neighbours.
fn probes4(set: &[(Ipv4Net, u32)], extra: &[u32]) -> Vec<Ipv4Addr> {
    let mut p: Vec<u32> = extra.to_vec();
    for (n, _) in set {
        let (lo, hi) = (n.network().to_bits(), n.broadcast().to_bits());
        p.extend([lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]);
    }
    p.into_iter().map(Ipv4Addr::from_bits).collect()
}

fn probes6(set: &[(Ipv6Net, u32)], extra: &[u128]) -> Vec<Ipv6Addr> {
    let mut p: Vec<u128> = extra.to_vec();
    for (n, _) in set {
        let (lo, hi) = (n.network().to_bits(), n.broadcast().to_bits());
        p.extend([lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]);
    }
    p.into_iter().map(Ipv6Addr::from_bits).collect()
}

/// IPv4 prefixes clustered in a few /8s so that they nest often.
fn arb4() -> impl Strategy<Value = (Ipv4Net, u32)> {
    (0u32..4, any::<u32>(), 0u8..=32, 0u32..1000).prop_map(|(o, x, len, v)| {
        let a = ((10 + o) << 24) | (x & 0x00ff_ffff);
        (Ipv4Net::new_assert(Ipv4Addr::from_bits(a), len), v)
    })
}

fn arb6() -> impl Strategy<Value = (Ipv6Net, u32)> {
    (0u128..4, any::<u128>(), 0u8..=128, 0u32..1000).prop_map(|(o, x, len, v)| {
        let a = ((0x2001_0db8 + o) << 96) | (x >> 32);
        (Ipv6Net::new_assert(Ipv6Addr::from_bits(a), len), v)
    })
}

proptest! {
    #[test]
    fn ipv4_small_tables_match_the_scan(set in proptest::collection::vec(arb4(), 0..60), extra in proptest::collection::vec(any::<u32>(), 0..50)) {
        let set = dedup4(set);
        let t = Lpm4::build(set.clone()).unwrap();
        for a in probes4(&set, &extra) {
            prop_assert_eq!(t.lookup(a), scan4(&set, a), "{}", a);
        }
    }

    #[test]
    fn ipv6_small_tables_match_the_scan(set in proptest::collection::vec(arb6(), 0..60), extra in proptest::collection::vec(any::<u128>(), 0..50)) {
        let set = dedup6(set);
        let t = Lpm6::build(set.clone()).unwrap();
        for a in probes6(&set, &extra) {
            prop_assert_eq!(t.lookup(a), scan6(&set, a), "{}", a);
        }
    }

    #[test]
    fn ipv4_medium_tables_match_the_scan(set in proptest::collection::vec(arb4(), 70..250), extra in proptest::collection::vec(any::<u32>(), 0..100)) {
        // 64 to 255 prefixes: the trie without direct pointing.
        let set = dedup4(set);
        prop_assume!(set.len() >= 64);
        let t = Lpm4::build(set.clone()).unwrap();
        for a in probes4(&set, &extra) {
            prop_assert_eq!(t.lookup(a), scan4(&set, a), "{}", a);
        }
    }

    #[test]
    fn ipv6_medium_tables_match_the_scan(set in proptest::collection::vec(arb6(), 70..250), extra in proptest::collection::vec(any::<u128>(), 0..100)) {
        let set = dedup6(set);
        prop_assume!(set.len() >= 64);
        let t = Lpm6::build(set.clone()).unwrap();
        for a in probes6(&set, &extra) {
            prop_assert_eq!(t.lookup(a), scan6(&set, a), "{}", a);
        }
    }

    #[test]
    fn ipv4_large_tables_match_the_scan(set in proptest::collection::vec(arb4(), 300..600), extra in proptest::collection::vec(any::<u32>(), 0..100)) {
        // More than 255 prefixes: the direct-pointing layout.
        let set = dedup4(set);
        prop_assume!(set.len() >= 256);
        let t = Lpm4::build(set.clone()).unwrap();
        for a in probes4(&set, &extra) {
            prop_assert_eq!(t.lookup(a), scan4(&set, a), "{}", a);
        }
    }

    #[test]
    fn ipv6_large_tables_match_the_scan(set in proptest::collection::vec(arb6(), 300..600), extra in proptest::collection::vec(any::<u128>(), 0..100)) {
        let set = dedup6(set);
        prop_assume!(set.len() >= 256);
        let t = Lpm6::build(set.clone()).unwrap();
        for a in probes6(&set, &extra) {
            prop_assert_eq!(t.lookup(a), scan6(&set, a), "{}", a);
        }
    }
}

#[test]
fn generated_tables_of_every_layout_match_the_scan() {
    // 20k and 300k prefixes use the 16- and 24-bit direct-pointing layouts; check a sample of
    // lookups against the scan over the same set.
    for n in [1_000, 20_000, 300_000] {
        let set = testgen::ipv4(n, 7);
        let t = Lpm4::build(set.clone()).unwrap();
        for a in testgen::ipv4_lookups(&set, 300, 9) {
            assert_eq!(t.lookup(a), scan4(&set, a), "{n} prefixes, {a}");
        }
    }
    for n in [1_000, 100_000] {
        let set = testgen::ipv6(n, 7);
        let t = Lpm6::build(set.clone()).unwrap();
        for a in testgen::ipv6_lookups(&set, 200, 9) {
            assert_eq!(t.lookup(a), scan6(&set, a), "{n} prefixes, {a}");
        }
    }
}

#[test]
fn a_million_ipv4_prefixes_fit_in_100_mib() {
    let set = testgen::ipv4(1_000_000, 42);
    let t = Lpm4::build(set).unwrap();
    assert_eq!(t.len(), 1_000_000);
    assert!(t.memory_bytes() < 100 << 20, "{} bytes", t.memory_bytes());
}

#[test]
fn small_tables_stay_small() {
    let t = Lpm4::build(testgen::ipv4(5, 1)).unwrap();
    assert!(t.memory_bytes() < 4096, "{} bytes", t.memory_bytes());
    let t = Lpm6::build(testgen::ipv6(5, 1)).unwrap();
    assert!(t.memory_bytes() < 8192, "{} bytes", t.memory_bytes());
}

#[test]
fn errors_and_edges() {
    let n = |s: &str| s.parse::<Ipv4Net>().unwrap();
    assert_eq!(
        Lpm4::build([(n("10.0.0.0/8"), 1), (n("10.1.0.0/8"), 2)]).unwrap_err(),
        LpmError::DuplicatePrefix("10.0.0.0/8".parse().unwrap())
    );
    assert!(matches!(
        Lpm4::build([(n("10.0.0.0/8"), MAX_VALUE + 1)]),
        Err(LpmError::ValueTooLarge { .. })
    ));
    let empty = Lpm4::build([]).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.lookup("1.2.3.4".parse().unwrap()), None);
    assert_eq!(Lpm4::default().lookup("1.2.3.4".parse().unwrap()), None);
    assert_eq!(Lpm6::default().lookup("::1".parse().unwrap()), None);
    let t = Lpm4::build([(n("0.0.0.0/0"), 7), (n("255.255.255.255/32"), 8)]).unwrap();
    assert_eq!(t.lookup("1.2.3.4".parse().unwrap()), Some(7));
    assert_eq!(t.lookup("255.255.255.255".parse().unwrap()), Some(8));
    let t6 = Lpm6::build([
        ("::/0".parse().unwrap(), 1),
        ("ffff::1/128".parse().unwrap(), 2),
    ])
    .unwrap();
    assert_eq!(t6.lookup("ffff::1".parse().unwrap()), Some(2));
    assert_eq!(t6.lookup("ffff::2".parse().unwrap()), Some(1));
}
