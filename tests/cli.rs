//! The `fastpath` binary as a user runs it: the quick start, bench's JSON, explain, help.

use std::process::Command;

fn fastpath(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fastpath"))
        .args(args)
        .output()
        .expect("the fastpath binary runs")
}

#[test]
fn quick_start_replays_the_bundled_capture() {
    let o = fastpath(&["replay"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("replayed 10749 frames of pcaps/mixed.pcap (bundled)"),
        "{out}"
    );
    assert!(out.contains("syn_cookie"));
    let o = fastpath(&["replay", "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["total"]["frames"], 10749);
    assert_eq!(
        j["total"]["reasons"]["new_flow"], 450,
        "the bundled handshakes validate with the bundled secret"
    );
}

#[test]
fn bench_json_has_the_documented_fields() {
    let o = fastpath(&["bench", "--seconds", "0.3", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in ["packets", "seconds", "mpps", "mpps_per_core", "mix"] {
        assert!(!j[k].is_null(), "missing {k}: {j}");
    }
    assert!(j["packets"].as_u64().unwrap() >= 10749);
    assert_eq!(j["mix"]["frames"], 10749);
}

#[test]
fn explain_answers_and_bad_input_gets_a_clear_error() {
    // A SYN from a blocked range to the ssh app of the bundled config.
    let hex = "02000000000102000000001008004500002c000140004006d478c6336414cb00710a9c400016000003e8000000006002faf000000000020405b4";
    let o = fastpath(&["explain", "--hex", hex]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("verdict: drop (firewall_block)"), "{out}");
    assert!(out.contains("access rule: block 198.51.100.0/24"), "{out}");
    let o = fastpath(&["explain", "--hex", "zz"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not hex"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[prefixes]]\ncidr = \"203.0.113.0/25\"\n").unwrap();
    let o = fastpath(&["replay", "--config", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("prefixes[0].cidr") && err.contains("/24 or shorter"),
        "{err}"
    );
}

#[test]
fn help_texts_cover_every_subcommand_and_flag() {
    let o = fastpath(&["--help"]);
    let out = String::from_utf8_lossy(&o.stdout);
    for sub in ["replay", "bench", "explain"] {
        assert!(out.contains(sub), "{out}");
    }
    let o = fastpath(&["replay", "--help"]);
    let out = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--config",
        "--verdicts",
        "--tx-out",
        "--out",
        "--cookie-secret",
        "--json",
    ] {
        assert!(out.contains(flag), "replay --help lacks {flag}");
    }
}
