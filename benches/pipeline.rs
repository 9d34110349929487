//! The fast path against the straightforward implementation (`naive.rs`), one core each, on two
//! mixes:
//! * `pipeline/mixed`: the bundled capture `pcaps/mixed.pcap` (a SYN flood, a UDP flood at an
//!   unconfigured port, an ACK flood, and legitimate handshakes and flows among them);
//! * `pipeline/flows`: the generated mix `pcapgen::flows(1)` (100,000 frames, 81,250 distinct
//!   flows: 45% SYNs, 20% established traffic of 8,250 legitimate flows, 20% to unconfigured
//!   ports, 10% out of state, 5% not ours), made in memory from its seed.
//!
//! Both see every frame of the mix per iteration, start from fresh flow state, and get frames
//! copied in as a NIC would DMA them.
//!
//! One run on the 2-core development VM (2026-12-06, shared with other builds):
//! `pipeline/mixed` fastpath 1.418 ms vs straightforward 8.476 ms per pass (6.0x);
//! `pipeline/flows` fastpath 18.4 ms vs straightforward 103.5 ms per pass (5.6x).
//! README.md ("Performance") has the table.

use std::time::{Duration, Instant};

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use fastpath::pipeline::Pipeline;
use fastpath::tables::Tables;
use fastpath::worker::{Timeouts, WorkerPools};

use crate::naive::Naive;

/// The mixed capture and its compiled config.
pub fn load() -> (Vec<(u64, Vec<u8>)>, control::config::Compiled) {
    let cfg = control::config::Config::from_toml_str(include_str!("../pcaps/edge-lab.toml"))
        .expect("bundled config")
        .compile(1, &Default::default())
        .expect("compiles");
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/mixed.pcap"))
        .expect("bundled capture");
    let mut r = fastpath::replay::CaptureReader::new(&bytes[..]).expect("a capture");
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    while let Some(m) = r.next_into(&mut buf).expect("readable") {
        frames.push((m.ts_ns, buf.clone()));
    }
    (frames, cfg)
}

/// The generated many-flows mix (`pcapgen::flows`, seed 1), as (timestamp, frame).
pub fn generated() -> Vec<(u64, Vec<u8>)> {
    pcapgen::flows(1)
        .frames
        .into_iter()
        .map(|f| (f.ts_ns, f.data))
        .collect()
}

pub fn bench(c: &mut Criterion) {
    let (frames, cfg) = load();
    bench_mix(c, "pipeline/mixed", &frames, &cfg);
    bench_mix(c, "pipeline/flows", &generated(), &cfg);
}

fn bench_mix(
    c: &mut Criterion,
    group: &str,
    frames: &[(u64, Vec<u8>)],
    cfg: &control::config::Compiled,
) {
    let tables = Tables::build(&cfg.spec).expect("tables");
    let seed = pcapgen::LAB_SECRET;
    let batch = cfg.pipeline.batch_size;
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.sample_size(20);

    // Only classification is timed, for both: frame copies (the NIC's DMA) and the workers
    // draining their queues after each batch happen outside the measured time.
    let mut bufs: Vec<Vec<u8>> = (0..batch).map(|_| vec![0u8; 2048]).collect();
    g.bench_function(BenchmarkId::new("fastpath", frames.len()), |b| {
        // One pipeline, reset between iterations (fresh flow state, memory already touched).
        let (pools, mut workers) = WorkerPools::new(&cfg.workers, Timeouts::from(&cfg.pipeline));
        let mut p = Pipeline::new(0, &cfg.pipeline, &cfg.cookies, seed, 1500, pools);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                p.reset_flows();
                for w in workers.iter_mut() {
                    w.reset();
                }
                for chunk in frames.chunks(batch) {
                    for (b, (_, f)) in bufs.iter_mut().zip(chunk) {
                        b[..f.len()].copy_from_slice(f);
                    }
                    let t0 = Instant::now();
                    p.begin_batch(chunk[0].0);
                    for (b, (ts, f)) in bufs.iter_mut().zip(chunk) {
                        black_box(p.process(&tables, *ts, b, f.len()));
                    }
                    p.end_batch();
                    total += t0.elapsed();
                    for w in workers.iter_mut() {
                        w.poll(usize::MAX);
                    }
                }
            }
            total
        })
    });
    g.bench_function(BenchmarkId::new("straightforward", frames.len()), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut n = Naive::new(
                    &cfg.spec,
                    seed,
                    cfg.cookies.rotate_secs,
                    [cfg.workers.cdn, cfg.workers.spectrum],
                    cfg.workers.queue_depth,
                );
                let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); batch];
                for chunk in frames.chunks(batch) {
                    for (b, (_, f)) in bufs.iter_mut().zip(chunk) {
                        b.clear();
                        b.extend_from_slice(f);
                    }
                    let t0 = Instant::now();
                    for (b, (ts, _)) in bufs.iter().zip(chunk) {
                        black_box(n.process(*ts, b));
                    }
                    total += t0.elapsed();
                    n.drain_workers();
                }
            }
            total
        })
    });
    g.finish();
}
