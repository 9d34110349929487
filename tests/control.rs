//! The control socket of a running fast path, through the `fastpath` binary as a user runs it
//! (`fastpath replay --control`): 1,000 alternating changes while the replay runs without pause
//! never give a batch a mix of two configurations and lose or double-count no frame; an
//! accepted change survives `kill -9`; a change that cannot be written changes nothing.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::call;
use fastpath_cli::cmd::replay::VerdictLine;
use serde_json::{Value, json};

const RULES: &str = "/client/v4/zones/z/firewall/access_rules/rules";
const APPS: &str = "/client/v4/zones/z/spectrum/apps";
/// The mixed capture's flood sources (random addresses in 100.64.0.0/10).
const FLOOD_RULE: &str =
    r#"{"id": "flood", "mode": "block", "target": "ip_range", "value": "100.64.0.0/10"}"#;

/// `fastpath replay --control` running in the background; killed when dropped.
struct Daemon {
    child: Option<Child>,
    sock: PathBuf,
    /// What it wrote on stderr so far (read all the time: a full pipe would block the daemon's
    /// log writes, and with them its answers).
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Daemon {
    fn start(dir: &Path, config: &Path, extra: &[&str]) -> Daemon {
        let sock = dir.join("control.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_fastpath"))
            .args(["replay", "--json", "--loops", "0", "--cookie-secret"])
            .arg(common::lab_secret_hex())
            .arg("--config")
            .arg(config)
            .arg("--control")
            .arg(&sock)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fastpath replay starts");
        let mut child = child;
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        {
            let (mut pipe, log) = (child.stderr.take().unwrap(), std::sync::Arc::clone(&stderr));
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buf) {
                    log.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let mut d = Daemon {
            child: Some(child),
            sock,
            stderr,
        };
        let started = Instant::now();
        while UnixStream::connect(&d.sock).is_err() {
            if let Some(st) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "fastpath replay exited ({st}): {}",
                    d.stderr.lock().unwrap()
                );
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    /// SIGTERM; the summary it prints.
    fn stop(mut self) -> Value {
        let mut c = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let mut out = String::new();
        c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let st = c.wait().unwrap();
        assert!(
            st.success(),
            "fastpath replay exited with {st}: {}",
            self.stderr.lock().unwrap()
        );
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("summary: {e}: {out}"))
    }

    /// SIGKILL, no goodbye.
    fn kill9(mut self) {
        let mut c = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-KILL", &c.id().to_string()])
            .status();
        let _ = c.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The lab config with `extra` appended, written to `dir/name`.
fn config(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        std::fs::read_to_string(common::pcaps("edge-lab.toml")).unwrap() + extra,
    )
    .unwrap();
    p
}

/// The verdicts of one plain replay of the bundled capture with `config`.
fn expected(dir: &Path, config: &Path) -> Vec<VerdictLine> {
    let out = dir.join(format!(
        "{}.jsonl",
        config.file_stem().unwrap().to_string_lossy()
    ));
    let st = Command::new(env!("CARGO_BIN_EXE_fastpath"))
        .args(["replay", "--json", "--cookie-secret"])
        .arg(common::lab_secret_hex())
        .arg("--config")
        .arg(config)
        .arg("--verdicts")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    common::read_verdicts(&out)
}

fn same(a: &VerdictLine, b: &VerdictLine) -> bool {
    (&a.verdict, &a.reason, &a.service, &a.app, a.worker)
        == (&b.verdict, &b.reason, &b.service, &b.app, b.worker)
}

#[test]
fn a_thousand_alternating_changes_during_a_replay_never_mix_two_configs_in_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    // Config A is the lab config; B blocks the floods' sources. The rule only changes frames
    // that make no flow (SYN-flood SYNs become firewall_block, random ACKs too), so every
    // frame's verdict under either config is the one a plain replay of that config gives.
    let a = config(dir.path(), "a.toml", "");
    let b = config(
        dir.path(),
        "b.toml",
        "\n[[access_rules]]\nid = \"flood\"\nmode = \"block\"\ntarget = \"ip_range\"\nvalue = \"100.64.0.0/10\"\n",
    );
    let (va, vb) = (expected(dir.path(), &a), expected(dir.path(), &b));
    assert_eq!(va.len(), vb.len());
    let differ = va.iter().zip(&vb).filter(|(x, y)| !same(x, y)).count();
    assert!(
        differ > 4000,
        "the change must matter: {differ} frames differ"
    );

    let run = config(dir.path(), "run.toml", "");
    let verdicts = dir.path().join("live.jsonl");
    let d = Daemon::start(
        dir.path(),
        &run,
        &["--rate", "100000", "--verdicts", verdicts.to_str().unwrap()],
    );
    // Versions: 1 is A; each change flips, so odd versions are A and even ones B.
    let mut swaps = Vec::new();
    for i in 0..1000 {
        let (s, v) = if i % 2 == 0 {
            call(&d.sock, "POST", RULES, Some(FLOOD_RULE))
        } else {
            call(&d.sock, "DELETE", &format!("{RULES}/flood"), None)
        };
        assert_eq!(s, 200, "change {i}: {v}");
        assert_eq!(v["result"]["_change"]["version"], i + 2, "{v}");
        swaps.push(v["result"]["_change"]["swap_us"].as_u64().unwrap());
    }
    let stats = call(&d.sock, "GET", "/v1/stats", None).1;
    let log = std::sync::Arc::clone(&d.stderr);
    let summary = d.stop();
    // Every change was logged with who made it.
    let log = log.lock().unwrap();
    let uid = format!("uid={}", own_uid());
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("control change") && l.contains(&uid))
            .count(),
        1000,
        "{}",
        &log[..log.len().min(2000)]
    );

    let lines = common::read_verdicts(&verdicts);
    let n = va.len() as u64;
    assert!(!lines.is_empty());
    assert_eq!(lines.len() as u64 % n, 0, "whole passes only");
    let passes = lines.len() as u64 / n;
    assert_eq!(
        summary["total"]["frames"].as_u64(),
        Some(lines.len() as u64),
        "the summary counts every frame once"
    );
    let mut versions = std::collections::BTreeSet::new();
    let mut last_version = 0;
    let (mut under_a, mut under_b) = (0u64, 0u64);
    for (i, l) in lines.iter().enumerate() {
        let (pass, frame) = (i as u64 / n + 1, i as u64 % n + 1);
        assert_eq!(
            (l.pass, l.frame),
            (Some(pass), frame),
            "every frame once, in order"
        );
        let v = l.version.unwrap();
        assert!(
            v >= last_version,
            "versions never go back: {v} after {last_version}"
        );
        last_version = v;
        versions.insert(v);
        let want = if v % 2 == 1 {
            under_a += 1;
            &va[frame as usize - 1]
        } else {
            under_b += 1;
            &vb[frame as usize - 1]
        };
        assert!(
            same(l, want),
            "pass {pass} frame {frame} under version {v}: got {l:?}, config {} says {want:?}",
            if v % 2 == 1 { "A" } else { "B" }
        );
    }
    assert!(
        passes >= 2,
        "the replay ran through the changes: {passes} passes"
    );
    assert!(
        versions.len() > 50 && under_a > 0 && under_b > 0,
        "many versions classified frames: {} versions",
        versions.len()
    );
    swaps.sort_unstable();
    let _ = writeln!(
        std::io::stderr(),
        "1000 changes over {passes} passes: {} versions seen, swap p50 {} us p99 {} us; stats say {}",
        versions.len(),
        swaps[500],
        swaps[990],
        stats["result"]["changes"]
    );
}

/// This process's uid.
fn own_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// A SYN from 192.0.2.77 to `dst:port`, as hex.
fn syn_hex(dst: [u8; 4], port: u16) -> String {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([192, 0, 2, 77], dst, 64)
        .tcp(40000, port, 1, 64240)
        .syn()
        .write(&mut out, &[])
        .unwrap();
    out.iter().map(|b| format!("{b:02x}")).collect()
}

/// A UDP datagram from 192.0.2.77 to `dst:port`, as hex.
fn udp_hex(dst: [u8; 4], port: u16) -> String {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([192, 0, 2, 77], dst, 64)
        .udp(40000, port)
        .write(&mut out, b"hello")
        .unwrap();
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn reason_of(sock: &Path, hex: &str) -> String {
    let (s, v) = call(
        sock,
        "POST",
        "/v1/explain",
        Some(&json!({ "hex": hex }).to_string()),
    );
    assert_eq!(s, 200, "{v}");
    v["result"]["reason"].as_str().unwrap().to_string()
}

#[test]
fn an_accepted_change_survives_kill_9_and_one_that_cannot_be_written_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), "edge.toml", "");
    let d = Daemon::start(dir.path(), &file, &["--rate", "20000"]);
    let game = udp_hex([203, 0, 113, 11], 27015);
    let range = syn_hex([203, 0, 113, 12], 1500);
    assert_eq!(reason_of(&d.sock, &range), "syn_cookie");
    // Accepted: the answer comes after the file is on disk; then the daemon dies at once.
    let (s, v) = call(&d.sock, "DELETE", &format!("{APPS}/range"), None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["_change"]["version"], 2);
    d.kill9();

    let d = Daemon::start(dir.path(), &file, &["--rate", "20000"]);
    let (_, v) = call(&d.sock, "GET", "/v1/status", None);
    assert_eq!(v["result"]["version"], 2, "the version continues: {v}");
    let (_, v) = call(&d.sock, "GET", APPS, None);
    let ids: Vec<&str> = v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["ssh", "game"],
        "the deletion is there after the restart"
    );
    assert_eq!(reason_of(&d.sock, &range), "unconfigured_port");

    // The file cannot be replaced any more (a directory took its name): refused, and the
    // running tables, version and apps are as they were.
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    std::fs::write(file.join("keep"), "x").unwrap();
    let (s, v) = call(&d.sock, "DELETE", &format!("{APPS}/game"), None);
    assert_eq!(s, 500, "{v}");
    assert_eq!(v["errors"][0]["code"], 1500, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nothing changed"),
        "{v}"
    );
    assert_eq!(
        reason_of(&d.sock, &game),
        "new_flow",
        "the game app still serves UDP"
    );
    let (_, v) = call(&d.sock, "GET", "/v1/status", None);
    assert_eq!(v["result"]["version"], 2);
    let (_, v) = call(&d.sock, "GET", APPS, None);
    assert_eq!(v["result"].as_array().unwrap().len(), 2);
    let summary = d.stop();
    assert!(
        summary["total"]["frames"].as_u64().unwrap() > 0,
        "{summary}"
    );
}
