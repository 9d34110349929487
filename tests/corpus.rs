//! Every capture of the shared corpus (real captures made by others) replays without a panic
//! and gives exactly one verdict per frame, with the bundled config and with a config that owns
//! every address (so that frames travel the whole pipeline).

mod common;

use common::*;
use fastpath_cli::cmd::replay::execute;

fn corpus() -> (std::path::PathBuf, Vec<(String, u64)>) {
    let dir = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/real"
    ));
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv"))
        .unwrap_or_else(|e| panic!("the shared corpus must be at {}: {e}", dir.display()));
    let files = manifest
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c[0].to_string(), c[5].parse().unwrap())
        })
        .collect();
    (dir, files)
}

fn run(config: std::path::PathBuf) {
    let (dir, files) = corpus();
    assert!(files.len() >= 60);
    let mut frames_total = 0;
    for (file, packets) in files {
        let out = tempfile::tempdir().unwrap();
        let run = execute(&args(
            dir.join(&file),
            config.clone(),
            out.path(),
            Some("01".into()),
        ))
        .unwrap_or_else(|e| panic!("{file}: {e:#}"));
        assert!(
            run.summary.error.is_none(),
            "{file}: {:?}",
            run.summary.error
        );
        let v = read_verdicts(&out.path().join("verdicts.jsonl"));
        assert_eq!(v.len() as u64, packets, "{file}: one verdict per frame");
        assert_eq!(run.summary.total.frames, packets, "{file}: counters agree");
        for (i, line) in v.iter().enumerate() {
            assert_eq!(line.frame, i as u64 + 1, "{file}");
        }
        frames_total += packets;
    }
    assert!(frames_total > 3000, "{frames_total} frames");
}

#[test]
fn corpus_with_the_bundled_config() {
    run(pcaps("edge-lab.toml"));
}

#[test]
fn corpus_through_the_whole_pipeline() {
    run(std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/testdata/catch-all.toml"
    )));
}

#[test]
fn non_captures_get_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, "this is not a capture at all").unwrap();
    let e = execute(&args(p, pcaps("edge-lab.toml"), dir.path(), None)).unwrap_err();
    assert!(
        format!("{e:#}").contains("not a pcap or pcapng file"),
        "{e:#}"
    );
}
