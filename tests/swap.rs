//! Table updates applied while a replay runs change verdicts only between batches, never inside
//! one; no frame is lost or counted twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use etherparse::PacketBuilder;
use fastpath::replay::{CaptureReader, FrameReport, PcapWriter, Replay, ReplaySettings, Sink};
use fastpath::tables::{SharedTables, Tables};

const CONFIG: &str = include_str!("../pcaps/edge-lab.toml");

fn syn(sport: u16, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([192, 0, 2, 9], [203, 0, 113, 10], 64)
        .tcp(sport, dport, 7, 1000)
        .syn();
    let mut f = Vec::new();
    b.write(&mut f, &[]).unwrap();
    f
}

struct Record(Vec<(u64, u64, fastpath::Reason, u16)>);

impl Sink for Record {
    fn frame(&mut self, r: &FrameReport<'_>) -> std::io::Result<()> {
        let dport = u16::from_be_bytes([r.data[36], r.data[37]]);
        self.0
            .push((r.batch, r.tables.version(), r.outcome.reason, dport));
        Ok(())
    }
}

#[test]
fn a_batch_sees_one_whole_configuration() {
    // Config A: port 23 on the ssh IP is unconfigured. Config B: a telnet app serves it and the
    // ssh app (port 22) is gone.
    let a = control::config::Config::from_toml_str(CONFIG).unwrap();
    let mut b = a.clone();
    let mut telnet = b.spectrum_apps[0].clone();
    telnet.id = "telnet".into();
    telnet.protocol = "tcp/23".parse().unwrap();
    telnet.origin_direct = vec!["tcp://192.0.2.1:23".parse().unwrap()];
    b.spectrum_apps[0] = telnet;
    let ta = a.compile(1, &Default::default()).unwrap();
    let tb = b.compile(2, &ta.slots()).unwrap();

    // 20,000 SYNs alternating between ports 22 and 23, replayed until 1,000 swaps happened.
    let n = 20_000u64;
    let mut pcap = Vec::new();
    {
        let mut w = PcapWriter::new(&mut pcap).unwrap();
        for i in 0..n {
            w.write(
                1_700_000_000_000_000_000 + i * 1000,
                &syn(1024 + (i % 60000) as u16, if i % 2 == 0 { 22 } else { 23 }),
            )
            .unwrap();
        }
        w.finish().unwrap();
    }
    let shared = SharedTables::new(Tables::build(&ta.spec).unwrap());
    let settings = ReplaySettings {
        pipeline: ta.pipeline.clone(),
        cookies: ta.cookies.clone(),
        workers: ta.workers.clone(),
        seed: [1; 32],
        mtu: 1500,
    };
    let done = Arc::new(AtomicBool::new(false));
    let swapper = {
        let shared = Arc::clone(&shared);
        let done = Arc::clone(&done);
        let (sa, sb) = (ta.spec.clone(), tb.spec.clone());
        std::thread::spawn(move || {
            let (ta, tb) = (Tables::build(&sa).unwrap(), Tables::build(&sb).unwrap());
            for swaps in 0..1000 {
                let next = if swaps % 2 == 0 {
                    tb.clone()
                } else {
                    ta.clone()
                };
                shared.store(next);
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let mut replay = Replay::new(Arc::clone(&shared), &settings);
    let mut rec = Record(Vec::new());
    let mut passes = 0u64;
    let started = std::time::Instant::now();
    while !done.load(Ordering::Relaxed) && started.elapsed() < std::time::Duration::from_secs(60) {
        let mut reader = CaptureReader::new(&pcap[..]).unwrap();
        replay.run(&mut reader, &mut rec, &mut |_, _| {}).unwrap();
        passes += 1;
    }
    swapper.join().unwrap();
    assert!(
        done.load(Ordering::Relaxed),
        "the 1,000 swaps ended within the time limit"
    );

    assert_eq!(
        rec.0.len() as u64,
        n * passes,
        "no frame lost or duplicated"
    );
    assert_eq!(replay.stats().frames(), n * passes, "counted once each");
    let mut versions_seen = std::collections::BTreeSet::new();
    let mut batch_version = std::collections::BTreeMap::new();
    for &(batch, version, reason, dport) in &rec.0 {
        assert_eq!(
            *batch_version.entry(batch).or_insert(version),
            version,
            "batch {batch} mixed two configurations"
        );
        versions_seen.insert(version);
        let want = match (version, dport) {
            (1, 22) | (2, 23) => fastpath::Reason::SynCookie,
            _ => fastpath::Reason::UnconfiguredPort,
        };
        assert_eq!(
            reason, want,
            "batch {batch} (version {version}) port {dport}"
        );
    }
    assert_eq!(
        versions_seen.len(),
        2,
        "both configurations were used: {versions_seen:?}"
    );
}
