//! Any bytes through the whole pipeline (parser, tables, cookies, reply builders), against a
//! config that owns every address so that every stage is reachable. Checks: no panic, a reply
//! fits the buffer and parses as a frame again, and the explain diagnosis never panics.
#![no_main]

use std::cell::RefCell;
use std::sync::OnceLock;

use fastpath::pipeline::{Pipeline, PipelineConfig};
use fastpath::tables::Tables;
use fastpath::worker::{Timeouts, Worker, WorkerConfig, WorkerPools};
use libfuzzer_sys::fuzz_target;

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let c = control::config::Config::from_toml_str(include_str!("../../../tests/testdata/catch-all.toml")).expect("config");
        Tables::build(&c.compile(1, &Default::default()).expect("compiles").spec).expect("tables")
    })
}

thread_local! {
    static PIPE: RefCell<(Pipeline, Vec<Worker>)> = RefCell::new({
        let pc = PipelineConfig { flow_capacity: 64, ..PipelineConfig::default() };
        let wc = WorkerConfig { queue_depth: 8, flow_capacity: 64, ..WorkerConfig::default() };
        let (pools, workers) = WorkerPools::new(&wc, Timeouts::from(&pc));
        (Pipeline::new(0, &pc, &Default::default(), [1; 32], 1500, pools), workers)
    });
}

fuzz_target!(|data: &[u8]| {
    let t = tables();
    // The first two bytes choose a time; the rest is the frame (run twice: as new and as known).
    let (ts, frame) = match data {
        [a, b, rest @ ..] => (u64::from(u16::from_le_bytes([*a, *b])) * 1_000_000_000, rest),
        _ => (0, data),
    };
    let _ = fastpath::wire::frame::diagnose(frame);
    PIPE.with(|cell| {
        let (p, workers) = &mut *cell.borrow_mut();
        p.reset_flows();
        for w in workers.iter_mut() {
            w.reset();
        }
        for _ in 0..2 {
            let mut buf = frame.to_vec();
            buf.resize(frame.len().max(2048), 0);
            p.begin_batch(ts);
            let o = p.process(t, ts, &mut buf, frame.len());
            p.end_batch();
            if o.verdict() == fastpath::Verdict::Tx {
                assert!(o.tx_len >= 14 && o.tx_len <= buf.len());
                let l2 = fastpath::wire::frame::parse_l2(&buf[..o.tx_len]).expect("our reply has a link header");
                fastpath::wire::frame::parse_l3(&buf[..o.tx_len], &l2).expect("our reply has a valid IP header");
            }
            for w in workers.iter_mut() {
                w.poll(usize::MAX);
            }
        }
    });
});
