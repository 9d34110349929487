//! Pipeline tests beyond the golden captures: worker affinity and the explain trace.

use super::*;
use crate::tables::tests_support::lab_tables;
use crate::worker::{Timeouts, WorkerConfig};
use etherparse::PacketBuilder;

fn udp(src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, [203, 0, 113, 10], 64)
        .udp(sport, 27015)
        .write(&mut f, &[0; 20])
        .unwrap();
    f
}

fn pipeline(spectrum_workers: usize) -> (Pipeline, Vec<crate::worker::Worker>) {
    let wc = WorkerConfig {
        spectrum: spectrum_workers,
        queue_depth: 1 << 16,
        ..WorkerConfig::default()
    };
    let pc = PipelineConfig::default();
    let (pools, workers) = WorkerPools::new(&wc, Timeouts::from(&pc));
    (
        Pipeline::new(0, &pc, &CookieConfig::default(), [5; 32], 1500, pools),
        workers,
    )
}

#[test]
fn the_same_flow_always_reaches_the_same_worker() {
    let t = lab_tables();
    let (mut p, _w) = pipeline(4);
    let mut per_worker = [0usize; 4];
    let mut first: std::collections::HashMap<(u8, u16), u16> = Default::default();
    for round in 0..5 {
        p.begin_batch(1_000_000_000 + round);
        for c in 0..200u16 {
            let mut f = udp([192, 0, 2, (c % 250) as u8], 1000 + c);
            let len = f.len();
            f.resize(2048, 0);
            let o = p.process(&t, 1_000_000_000 + round, &mut f, len);
            assert_eq!(
                o.reason,
                if round == 0 {
                    Reason::NewFlow
                } else {
                    Reason::Flow
                }
            );
            let w = o.worker.unwrap();
            let prev = *first.entry(((c % 250) as u8, 1000 + c)).or_insert(w);
            assert_eq!(prev, w, "flow {c} moved from worker {prev} to {w}");
            if round == 0 {
                per_worker[usize::from(w)] += 1;
            }
        }
        p.end_batch();
    }
    assert!(
        per_worker.iter().all(|&n| n > 20),
        "flows spread over the workers: {per_worker:?}"
    );
}

#[test]
fn the_trace_names_the_entries_that_decided() {
    let t = lab_tables();
    let (mut p, _w) = pipeline(1);
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([198, 51, 100, 8], [203, 0, 113, 10], 64)
        .tcp(40000, 22, 1, 1000)
        .syn()
        .write(&mut f, &[])
        .unwrap();
    let len = f.len();
    f.resize(2048, 0);
    let mut steps: Vec<String> = Vec::new();
    p.begin_batch(0);
    let o = p.process_traced(&t, 0, &mut f, len, &mut steps);
    assert_eq!(o.reason, Reason::FirewallBlock);
    let text = steps.join("\n");
    for want in [
        "destination: matched 203.0.113.10/32",
        "binding: b0 203.0.113.0/24 -> spectrum",
        "spectrum app: ssh (tcp/22",
        "access rule: block 198.51.100.0/24 (r0)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}
