//! LPM lookups: ours against `prefix-trie`, `ip_network_table` and treebitmap
//! (`ip_network_table-deps-treebitmap`) on the same 1M-prefix IPv4 table and 100k-prefix IPv6
//! table (BGP-like lengths, from `fastpath::lpm::testgen`), and against a linear scan on a
//! small table. Lookups are 4096 pre-generated addresses, half inside prefixes, half random.
//!
//! Figures: see README.md ("Performance") and the release's closing note; rerun with
//! `cargo bench -p fastpath --bench bench -- lpm`.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use criterion::{BenchmarkId, Criterion, Throughput};
use fastpath::lpm::{Lpm4, Lpm6, testgen};
use ip_network::{Ipv4Network, Ipv6Network};
use ip_network_table::IpNetworkTable;
use ip_network_table_deps_treebitmap::IpLookupTable;
use ipnet::{Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;

const LOOKUPS: usize = 4096;

pub fn lookups(c: &mut Criterion) {
    let v4 = testgen::ipv4(1_000_000, 42);
    let a4 = testgen::ipv4_lookups(&v4, LOOKUPS, 43);
    let v6 = testgen::ipv6(100_000, 42);
    let a6 = testgen::ipv6_lookups(&v6, LOOKUPS, 43);

    let mut g = c.benchmark_group("lpm/ipv4-1M");
    g.throughput(Throughput::Elements(LOOKUPS as u64));
    let ours = Lpm4::build(v4.clone()).unwrap();
    g.bench_function("fastpath", |b| {
        b.iter(|| {
            a4.iter()
                .map(|a| ours.lookup(black_box(*a)).unwrap_or(0) as u64)
                .sum::<u64>()
        })
    });
    let mut tbm = IpLookupTable::<Ipv4Addr, u32>::new();
    for (n, v) in &v4 {
        tbm.insert(n.network(), u32::from(n.prefix_len()), *v);
    }
    g.bench_function("treebitmap", |b| {
        b.iter(|| {
            a4.iter()
                .map(|a| tbm.longest_match(black_box(*a)).map_or(0, |x| *x.2) as u64)
                .sum::<u64>()
        })
    });
    let mut pt: PrefixMap<Ipv4Net, u32> = PrefixMap::new();
    for (n, v) in &v4 {
        pt.insert(*n, *v);
    }
    g.bench_function("prefix-trie", |b| {
        b.iter(|| {
            a4.iter()
                .map(|a| {
                    pt.get_lpm(&Ipv4Net::from(black_box(*a)))
                        .map_or(0, |x| *x.1) as u64
                })
                .sum::<u64>()
        })
    });
    let mut int = IpNetworkTable::new();
    for (n, v) in &v4 {
        int.insert(Ipv4Network::new(n.network(), n.prefix_len()).unwrap(), *v);
    }
    g.bench_function("ip_network_table", |b| {
        b.iter(|| {
            a4.iter()
                .map(|a| int.longest_match_ipv4(black_box(*a)).map_or(0, |x| *x.1) as u64)
                .sum::<u64>()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("lpm/ipv6-100k");
    g.throughput(Throughput::Elements(LOOKUPS as u64));
    let ours = Lpm6::build(v6.clone()).unwrap();
    g.bench_function("fastpath", |b| {
        b.iter(|| {
            a6.iter()
                .map(|a| ours.lookup(black_box(*a)).unwrap_or(0) as u64)
                .sum::<u64>()
        })
    });
    let mut tbm = IpLookupTable::<Ipv6Addr, u32>::new();
    for (n, v) in &v6 {
        tbm.insert(n.network(), u32::from(n.prefix_len()), *v);
    }
    g.bench_function("treebitmap", |b| {
        b.iter(|| {
            a6.iter()
                .map(|a| tbm.longest_match(black_box(*a)).map_or(0, |x| *x.2) as u64)
                .sum::<u64>()
        })
    });
    let mut pt: PrefixMap<Ipv6Net, u32> = PrefixMap::new();
    for (n, v) in &v6 {
        pt.insert(*n, *v);
    }
    g.bench_function("prefix-trie", |b| {
        b.iter(|| {
            a6.iter()
                .map(|a| {
                    pt.get_lpm(&Ipv6Net::from(black_box(*a)))
                        .map_or(0, |x| *x.1) as u64
                })
                .sum::<u64>()
        })
    });
    let mut int = IpNetworkTable::new();
    for (n, v) in &v6 {
        int.insert(Ipv6Network::new(n.network(), n.prefix_len()).unwrap(), *v);
    }
    g.bench_function("ip_network_table", |b| {
        b.iter(|| {
            a6.iter()
                .map(|a| int.longest_match_ipv6(black_box(*a)).map_or(0, |x| *x.1) as u64)
                .sum::<u64>()
        })
    });
    g.finish();

    // A small table, as the bindings of one edge: ours against a linear scan.
    let small = testgen::ipv4(16, 5);
    let a_small = testgen::ipv4_lookups(&small, LOOKUPS, 6);
    let mut g = c.benchmark_group("lpm/ipv4-16");
    g.throughput(Throughput::Elements(LOOKUPS as u64));
    let ours = Lpm4::build(small.clone()).unwrap();
    g.bench_function("fastpath", |b| {
        b.iter(|| {
            a_small
                .iter()
                .map(|a| ours.lookup(black_box(*a)).unwrap_or(0) as u64)
                .sum::<u64>()
        })
    });
    g.bench_function("linear-scan", |b| {
        b.iter(|| {
            a_small
                .iter()
                .map(|a| {
                    small
                        .iter()
                        .filter(|(n, _)| n.contains(black_box(a)))
                        .max_by_key(|(n, _)| n.prefix_len())
                        .map_or(0, |(_, v)| *v) as u64
                })
                .sum::<u64>()
        })
    });
    g.finish();
}

pub fn build(c: &mut Criterion) {
    let v4 = testgen::ipv4(1_000_000, 42);
    let v6 = testgen::ipv6(100_000, 42);
    #[allow(clippy::print_stderr)]
    {
        let t4 = Lpm4::build(v4.iter().copied()).unwrap();
        let t6 = Lpm6::build(v6.iter().copied()).unwrap();
        eprintln!(
            "lpm memory: 1M IPv4 prefixes {:.1} MiB, 100k IPv6 prefixes {:.1} MiB",
            t4.memory_bytes() as f64 / 1048576.0,
            t6.memory_bytes() as f64 / 1048576.0
        );
    }
    let mut g = c.benchmark_group("lpm/build");
    g.sample_size(10);
    g.bench_with_input(BenchmarkId::new("fastpath-ipv4", "1M"), &v4, |b, v| {
        b.iter(|| Lpm4::build(v.iter().copied()).unwrap().len())
    });
    g.bench_with_input(BenchmarkId::new("fastpath-ipv6", "100k"), &v6, |b, v| {
        b.iter(|| Lpm6::build(v.iter().copied()).unwrap().len())
    });
    g.finish();
}
