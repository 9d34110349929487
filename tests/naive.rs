//! The straightforward pipeline of the benchmark gives the fast path's verdicts on the mixed
//! capture, so the comparison measures the same work.

#[path = "../benches/naive.rs"]
#[allow(dead_code)]
mod naive;

#[test]
fn the_benchmark_baseline_agrees_with_the_fast_path() {
    let cfg = control::config::Config::from_toml_str(include_str!("../pcaps/edge-lab.toml"))
        .unwrap()
        .compile(1, &Default::default())
        .unwrap();
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/mixed.pcap")).unwrap();
    let mut r = fastpath::replay::CaptureReader::new(&bytes[..]).unwrap();
    let tables = fastpath::tables::Tables::build(&cfg.spec).unwrap();
    let (pools, mut workers) = fastpath::worker::WorkerPools::new(
        &cfg.workers,
        fastpath::worker::Timeouts::from(&cfg.pipeline),
    );
    let mut fast = fastpath::pipeline::Pipeline::new(
        0,
        &cfg.pipeline,
        &cfg.cookies,
        pcapgen::LAB_SECRET,
        1500,
        pools,
    );
    let mut slow = naive::Naive::new(
        &cfg.spec,
        pcapgen::LAB_SECRET,
        cfg.cookies.rotate_secs,
        [1, 1],
        cfg.workers.queue_depth,
    );
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    while let Some(m) = r.next_into(&mut buf).unwrap() {
        frames.push((m.ts_ns, buf.clone()));
    }
    for (i, chunk) in frames.chunks(cfg.pipeline.batch_size).enumerate() {
        fast.begin_batch(chunk[0].0);
        for (j, (ts, f)) in chunk.iter().enumerate() {
            let mut b = f.clone();
            b.resize(2048, 0);
            let o = fast.process(&tables, *ts, &mut b, f.len());
            let (reason, reply) = slow.process(*ts, f);
            let n = i * cfg.pipeline.batch_size + j + 1;
            assert_eq!(o.reason, reason, "frame {n}");
            if let Some(reply) = reply {
                // The same SYN-ACK, down to the checksums.
                assert_eq!(&b[..o.tx_len], &reply[..], "frame {n}: SYN-ACK bytes");
            }
        }
        fast.end_batch();
        for w in &mut workers {
            w.poll(usize::MAX);
        }
        slow.drain_workers();
    }
}
