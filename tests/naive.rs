//! The straightforward pipeline of the benchmark gives the fast path's verdicts on the mixed
//! capture, so the comparison measures the same work.

#[path = "../benches/naive.rs"]
#[allow(dead_code)]
mod naive;

/// The bundled config, compiled.
fn config() -> control::config::Compiled {
    control::config::Config::from_toml_str(include_str!("../pcaps/edge-lab.toml"))
        .unwrap()
        .compile(1, &Default::default())
        .unwrap()
}

/// Runs `frames` (time, bytes) through the fast path and the straightforward pipeline batch by
/// batch, requires the same reason and the same SYN-ACK bytes from both, and hands `check`
/// each frame's number (from 1) and the fast path's outcome. `slow_workers`: the
/// straightforward pipeline's CDN and Spectrum worker counts.
fn both<'a>(
    cfg: &control::config::Compiled,
    slow_workers: [usize; 2],
    frames: impl IntoIterator<Item = (u64, &'a [u8])>,
    mut check: impl FnMut(usize, &fastpath::pipeline::Outcome),
) {
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
        slow_workers,
        cfg.workers.queue_depth,
    );
    let frames: Vec<(u64, &[u8])> = frames.into_iter().collect();
    let batch = cfg.pipeline.batch_size;
    for (i, chunk) in frames.chunks(batch).enumerate() {
        fast.begin_batch(chunk[0].0);
        for (j, (ts, f)) in chunk.iter().enumerate() {
            let n = i * batch + j + 1;
            let mut b = f.to_vec();
            b.resize(2048, 0);
            let o = fast.process(&tables, *ts, &mut b, f.len());
            let (reason, reply) = slow.process(*ts, f);
            assert_eq!(o.reason, reason, "frame {n}: the two pipelines differ");
            if let Some(reply) = reply {
                // The same SYN-ACK, down to the checksums.
                assert_eq!(&b[..o.tx_len], &reply[..], "frame {n}: SYN-ACK bytes");
            }
            check(n, &o);
        }
        fast.end_batch();
        for w in &mut workers {
            w.poll(usize::MAX);
        }
        slow.drain_workers();
    }
}

#[test]
fn the_benchmark_baseline_agrees_with_the_fast_path() {
    let cfg = config();
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/mixed.pcap")).unwrap();
    let mut r = fastpath::replay::CaptureReader::new(&bytes[..]).unwrap();
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    while let Some(m) = r.next_into(&mut buf).unwrap() {
        frames.push((m.ts_ns, buf.clone()));
    }
    let mut seen = 0;
    both(
        &cfg,
        [1, 1],
        frames.iter().map(|(t, f)| (*t, &f[..])),
        |_, _| seen += 1,
    );
    assert_eq!(seen, frames.len());
}

/// The generated many-flows mix of the benchmarks: the fast path gives every frame the verdict
/// the generator wrote down for it, and the straightforward pipeline agrees (SYN-ACK bytes
/// included), so the benchmark compares the same work on it too.
#[test]
fn the_generated_mix_gets_its_verdicts_from_both() {
    let cfg = config();
    let mix = pcapgen::flows(1);
    assert_eq!(mix.frames.len(), pcapgen::FLOWS_FRAMES);
    assert!(pcapgen::distinct_flows(&mix) >= 20_000);
    let mut counts = std::collections::BTreeMap::new();
    both(
        &cfg,
        [cfg.workers.cdn, cfg.workers.spectrum],
        mix.frames.iter().map(|f| (f.ts_ns, &f.data[..])),
        |n, o| {
            let f = &mix.frames[n - 1];
            assert_eq!(o.reason, f.expect.reason, "frame {n} ({})", f.expect.what);
            assert_eq!(o.service, f.expect.service, "frame {n}");
            *counts.entry(f.expect.reason.as_str()).or_insert(0usize) += 1;
        },
    );
    // The proportions the mix promises.
    let share = |rs: &[&str]| {
        rs.iter()
            .map(|r| counts.get(r).copied().unwrap_or(0))
            .sum::<usize>()
            * 100
            / mix.frames.len()
    };
    assert_eq!(share(&["syn_cookie"]), 45, "{counts:?}");
    assert_eq!(share(&["new_flow", "flow"]), 20, "{counts:?}");
    assert_eq!(share(&["unconfigured_port"]), 20, "{counts:?}");
    assert_eq!(share(&["out_of_state", "not_ours"]), 15, "{counts:?}");
}
