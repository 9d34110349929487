//! Helpers of the live tests: the privilege check and the fast path running in a lab.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fastpath_cli::lab::Lab;
use serde_json::Value;

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a test that needs root and `tools` can run here. Without them it prints a loud
/// `SKIPPED` line and returns false, unless `FASTPATH_REQUIRE_PRIVILEGED=1` (CI), which makes the
/// skip a failure.
pub fn privileged(test: &str, tools: &[&str]) -> bool {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    });
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if root && missing.is_empty() {
        return true;
    }
    let why = if root {
        format!("missing tools: {}", missing.join(", "))
    } else {
        "not root".to_string()
    };
    let msg = format!(
        "SKIPPED {test}: needs root and {} ({why})",
        tools.join(", ")
    );
    assert!(
        std::env::var("FASTPATH_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
        "{msg} (FASTPATH_REQUIRE_PRIVILEGED=1)"
    );
    // Straight to the stderr stream: the test harness captures `eprintln!` of passing tests,
    // and a skip must be seen.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {msg} !!!!!!!!\n");
    false
}

/// The fast path running in the lab's edge namespace; killed when dropped.
pub struct FastPath {
    child: Option<Child>,
    /// What it printed on stderr up to its `fastpath: serving` line.
    pub started: String,
}

impl FastPath {
    pub fn start(lab: &Lab, config: Option<&std::path::Path>, extra: &[&str]) -> FastPath {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &lab.edge,
            env!("CARGO_BIN_EXE_fastpath"),
            "run",
            "--iface",
            &lab.edge_iface,
            "--json",
            "--stats-every",
            "0",
        ]);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        if !extra.contains(&"--control") {
            cmd.arg("--no-control");
        }
        cmd.args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting fastpath run");
        // Wait for its start line.
        let mut err = child.stderr.take().expect("piped");
        let started = Instant::now();
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while !seen.contains("fastpath: serving") {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "fastpath did not start: {seen}"
            );
            let n = err.read(&mut buf).unwrap_or(0);
            if n == 0 {
                let status = child.wait();
                panic!("fastpath exited ({status:?}): {seen}");
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        FastPath {
            child: Some(child),
            started: seen,
        }
    }

    /// SIGKILL: no clean shutdown at all.
    pub fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }

    /// SIGTERM, then the final counters.
    pub fn stop(mut self) -> Value {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let mut out = String::new();
        child
            .stdout
            .take()
            .expect("piped")
            .read_to_string(&mut out)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "fastpath exited with {status}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("final counters: {e}: {out}"))
    }
}

impl Drop for FastPath {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
