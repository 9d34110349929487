//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod live;

use fastpath_cli::cmd::replay::{ReplayArgs, VerdictLine};

/// A file in `pcaps/`.
pub fn pcaps(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps")).join(name)
}

/// The lab secret of the bundled configs, in hex.
pub fn lab_secret_hex() -> String {
    pcapgen::LAB_SECRET
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Replay arguments for `pcap` with `config`, writing verdicts, tx and annotated output into
/// `dir`.
pub fn args(
    pcap: PathBuf,
    config: PathBuf,
    dir: &std::path::Path,
    secret: Option<String>,
) -> ReplayArgs {
    ReplayArgs {
        pcap: Some(pcap),
        config: Some(config),
        verdicts: Some(dir.join("verdicts.jsonl")),
        tx_out: Some(dir.join("tx.pcap")),
        out: Some(dir.join("out.pcapng")),
        cookie_secret: secret,
        json: true,
        loops: 1,
        rate: None,
        control: None,
        control_group: None,
        config_source: None,
    }
}

/// Reads a verdicts file.
pub fn read_verdicts(p: &std::path::Path) -> Vec<VerdictLine> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad verdict line {l}: {e}")))
        .collect()
}

/// Reads every frame of a capture.
pub fn read_capture(p: &std::path::Path) -> Vec<(u64, Vec<u8>)> {
    let f = std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut r = fastpath::replay::CaptureReader::new(std::io::BufReader::new(f)).unwrap();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(m) = r.next_into(&mut buf).unwrap() {
        out.push((m.ts_ns, buf.clone()));
    }
    out
}

/// Writes frames as a pcap.
pub fn write_capture(p: &std::path::Path, frames: &[(u64, Vec<u8>)]) {
    let f = std::fs::File::create(p).unwrap();
    let mut w = fastpath::replay::PcapWriter::new(f).unwrap();
    for (ts, data) in frames {
        w.write(*ts, data).unwrap();
    }
    w.finish().unwrap();
}

/// One HTTP/1.1 request on a control socket (`Connection: close`); (status, parsed body).
pub fn call(
    sock: &std::path::Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock)
        .unwrap_or_else(|e| panic!("{}: {e}", sock.display()));
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, rest) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        serde_json::from_str(rest).unwrap_or(serde_json::Value::Null),
    )
}
