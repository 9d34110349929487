//! The per-packet path does not allocate: a counting allocator watches the pipeline process
//! the whole mixed capture (floods, handshakes, established flows) batch by batch.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as for `dealloc`, and `n` is the caller's valid new size.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn the_pipeline_does_not_allocate_per_packet() {
    let cfg = control::config::Config::from_toml_str(include_str!("../pcaps/edge-lab.toml"))
        .unwrap()
        .compile(1, &Default::default())
        .unwrap();
    let shared =
        fastpath::tables::SharedTables::new(fastpath::tables::Tables::build(&cfg.spec).unwrap());
    let (pools, mut workers) = fastpath::worker::WorkerPools::new(
        &cfg.workers,
        fastpath::worker::Timeouts::from(&cfg.pipeline),
    );
    let mut p = fastpath::pipeline::Pipeline::new(
        0,
        &cfg.pipeline,
        &cfg.cookies,
        pcapgen::LAB_SECRET,
        1500,
        pools,
    );
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/mixed.pcap")).unwrap();
    let mut r = fastpath::replay::CaptureReader::new(&bytes[..]).unwrap();
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    while let Some(m) = r.next_into(&mut buf).unwrap() {
        frames.push((m.ts_ns, buf.clone()));
    }
    // What a queue thread does when it starts (arc-swap's per-thread node).
    shared.register_reader();
    let mut work: Vec<Vec<u8>> = (0..cfg.pipeline.batch_size)
        .map(|_| vec![0u8; 2048])
        .collect();
    let mut forwarded = 0;
    let mut allocs_in_pipeline = 0;
    for chunk in frames.chunks(cfg.pipeline.batch_size) {
        for (w, (_, f)) in work.iter_mut().zip(chunk) {
            w[..f.len()].copy_from_slice(f);
        }
        COUNT.store(0, Ordering::Relaxed);
        ON.store(true, Ordering::Relaxed);
        let snapshot = shared.load();
        p.begin_batch(chunk[0].0);
        for (w, (ts, f)) in work.iter_mut().zip(chunk) {
            let o = p.process(&snapshot, *ts, w, f.len());
            forwarded += u64::from(o.verdict() == fastpath::Verdict::Forward);
        }
        p.end_batch();
        drop(snapshot);
        ON.store(false, Ordering::Relaxed);
        allocs_in_pipeline += COUNT.load(Ordering::Relaxed);
        for w in &mut workers {
            w.poll(usize::MAX);
        }
    }
    assert!(
        forwarded > 2000,
        "the capture exercised flows ({forwarded})"
    );
    assert_eq!(p.stats().frames(), frames.len() as u64);
    assert_eq!(allocs_in_pipeline, 0, "allocations on the per-packet path");
}
