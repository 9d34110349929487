//! Golden tests: the committed captures replay to their hand-written expected verdicts, the
//! generator reproduces the committed captures, and a replay is reproducible byte for byte.

mod common;

use common::*;
use fastpath_cli::cmd::replay::{VerdictLine, execute};

fn expected(name: &str) -> Vec<(VerdictLine, String)> {
    let text = std::fs::read_to_string(pcaps(&format!("{name}.expected.jsonl"))).unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let what = v["what"].as_str().unwrap_or_default().to_string();
            let mut v = v;
            v.as_object_mut().unwrap().remove("what");
            (serde_json::from_value(v).unwrap(), what)
        })
        .collect()
}

fn check(name: &str) {
    let c = pcapgen::all().into_iter().find(|c| c.name == name).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = execute(&args(
        pcaps(&format!("{name}.pcap")),
        pcaps(c.config),
        dir.path(),
        None,
    ))
    .unwrap();
    assert!(run.summary.error.is_none(), "{:?}", run.summary.error);
    let got = read_verdicts(&dir.path().join("verdicts.jsonl"));
    let want = expected(name);
    assert_eq!(got.len(), want.len(), "{name}: one verdict per frame");
    let bad: Vec<String> = got
        .iter()
        .zip(&want)
        .filter(|(g, (w, _))| g != &w)
        .take(20)
        .map(|(g, (w, what))| format!("frame {} ({what}):\n  want {w:?}\n  got  {g:?}", w.frame))
        .collect();
    assert!(
        bad.is_empty(),
        "{name}: {} mismatches, first ones:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn reasons_capture_gets_its_expected_verdicts() {
    check("reasons");
}

#[test]
fn mixed_capture_gets_its_expected_verdicts() {
    check("mixed");
}

#[test]
fn handshake_syns_get_their_expected_verdicts() {
    check("handshake-syns");
}

#[test]
fn reasons_capture_covers_every_reason() {
    let seen: std::collections::BTreeSet<String> = expected("reasons")
        .into_iter()
        .map(|(v, _)| v.reason)
        .collect();
    for r in fastpath::Reason::ALL
        .into_iter()
        .filter(|r| r.in_pipeline())
    {
        assert!(
            seen.contains(r.as_str()),
            "no frame of reasons.pcap gets {r}"
        );
    }
}

#[test]
fn the_generator_reproduces_the_committed_captures() {
    for c in pcapgen::all() {
        let pcap = std::fs::read(pcaps(&format!("{}.pcap", c.name))).unwrap();
        assert!(
            pcap == pcapgen::pcap_bytes(&c),
            "{}.pcap differs from the generator's output: run `cargo run -p pcapgen`",
            c.name
        );
        let exp = std::fs::read_to_string(pcaps(&format!("{}.expected.jsonl", c.name))).unwrap();
        assert!(
            exp == pcapgen::expected_jsonl(&c),
            "{}.expected.jsonl differs from the generator's output",
            c.name
        );
    }
}

#[test]
fn same_secret_same_capture_same_output_byte_for_byte() {
    let outputs: Vec<Vec<Vec<u8>>> = (0..2)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let run = execute(&args(
                pcaps("mixed.pcap"),
                pcaps("edge-lab.toml"),
                dir.path(),
                Some("0123456789abcdef".into()),
            ))
            .unwrap();
            let mut s = run.summary;
            s.wall_seconds = 0.0;
            ["verdicts.jsonl", "tx.pcap", "out.pcapng"]
                .iter()
                .map(|f| std::fs::read(dir.path().join(f)).unwrap())
                .chain(std::iter::once(serde_json::to_vec(&s).unwrap()))
                .collect()
        })
        .collect();
    assert_eq!(outputs[0].len(), 4);
    for (i, name) in ["verdicts", "tx-out", "pcapng", "summary"]
        .iter()
        .enumerate()
    {
        assert!(
            outputs[0][i] == outputs[1][i],
            "{name} differs between two runs"
        );
        assert!(!outputs[0][i].is_empty());
    }
}

#[test]
fn annotated_pcapng_carries_verdict_comments() {
    let dir = tempfile::tempdir().unwrap();
    execute(&args(
        pcaps("reasons.pcap"),
        pcaps("golden.toml"),
        dir.path(),
        None,
    ))
    .unwrap();
    let out = std::fs::read(dir.path().join("out.pcapng")).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert_eq!(
        text.matches("fastpath: ").count(),
        162,
        "one comment per frame"
    );
    assert!(text.contains("fastpath: tx syn_cookie service=spectrum app=ssh worker=0"));
    assert!(text.contains("fastpath: drop queue_full"));
    // tshark reads our comments when it is installed (CI installs it).
    match std::process::Command::new("tshark")
        .args(["-r"])
        .arg(dir.path().join("out.pcapng"))
        .args(["-T", "fields", "-e", "frame.comment"])
        .output()
    {
        Ok(o) if o.status.success() => {
            let s = String::from_utf8_lossy(&o.stdout);
            assert_eq!(
                s.lines().filter(|l| l.starts_with("fastpath: ")).count(),
                162,
                "{s}"
            );
        }
        #[allow(clippy::print_stderr)]
        _ => eprintln!("tshark not installed: skipped the Wireshark interoperability check"),
    }
}

#[test]
fn summary_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let run = execute(&args(
        pcaps("reasons.pcap"),
        pcaps("golden.toml"),
        dir.path(),
        None,
    ))
    .unwrap();
    let mut text = Vec::new();
    run.summary.print(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    // Wall time and file paths vary; everything else is reproducible.
    let text: String = text
        .lines()
        .map(|l| {
            let l = l.split(" in 0.").next().unwrap_or(l).to_string();
            l.replace(env!("CARGO_MANIFEST_DIR"), "")
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(text);
}
