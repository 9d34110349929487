//! The control socket end to end: every endpoint through a real Unix socket, the envelope,
//! refusals that change nothing, garbage and hostile clients, persistence and permissions.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use control::api::{Server, bind};
use control::config::Config;
use control::daemon::{Controller, Running};
use fastpath::tables::{SharedTables, Tables};
use serde_json::{Value, json};

const LAB: &str = include_str!("../../pcaps/edge-lab.toml");

struct Daemon {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    file: PathBuf,
    controller: Arc<Controller>,
    _server: Server,
}

fn daemon_with(persist: Option<PathBuf>) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let file = persist.unwrap_or_else(|| dir.path().join("edge.toml"));
    let config = Config::from_toml_str(LAB).unwrap();
    let compiled = config.compile(1, &Default::default()).unwrap();
    let tables = SharedTables::new(Tables::build(&compiled.spec).unwrap());
    let controller = Arc::new(Controller::new(
        Running {
            config,
            compiled,
            version: 1,
        },
        tables,
        file.clone(),
        None,
    ));
    let sock = dir.path().join("control.sock");
    let l = bind(&sock, None).unwrap();
    let server = Server::start(Arc::clone(&controller), l, sock.clone()).unwrap();
    Daemon {
        _dir: dir,
        sock,
        file,
        controller,
        _server: server,
    }
}

fn daemon() -> Daemon {
    daemon_with(None)
}

/// One HTTP/1.1 request; (status, parsed body).
fn call(sock: &Path, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, rest) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let v = serde_json::from_str(rest).unwrap_or(Value::Null);
    (status, v)
}

fn assert_envelope(v: &Value) {
    for k in ["success", "errors", "messages", "result"] {
        assert!(v.get(k).is_some(), "envelope without {k}: {v}");
    }
    assert_eq!(
        v["success"].as_bool().unwrap(),
        v["errors"].as_array().unwrap().is_empty(),
        "{v}"
    );
}

const APPS: &str = "/client/v4/zones/z1/spectrum/apps";
const PREFIXES: &str = "/client/v4/accounts/a1/addressing/prefixes";
const RULES: &str = "/client/v4/zones/z1/firewall/access_rules/rules";

#[test]
fn status_and_config_get() {
    let d = daemon();
    let (s, v) = call(&d.sock, "GET", "/v1/status", None);
    assert_eq!(s, 200);
    assert_envelope(&v);
    assert_eq!(v["result"]["node"], "edge-lab");
    assert_eq!(v["result"]["version"], 1);
    let (s, v) = call(&d.sock, "GET", "/v1/config", None);
    assert_eq!(s, 200);
    assert_eq!(v["result"]["version"], 1);
    assert_eq!(v["result"]["config"]["spectrum_apps"][0]["id"], "ssh");
}

#[test]
fn spectrum_apps_create_read_update_delete_in_the_public_shape() {
    let d = daemon();
    let (s, v) = call(&d.sock, "GET", APPS, None);
    assert_eq!(s, 200);
    assert_eq!(v["result"].as_array().unwrap().len(), 3);
    // The seeds' body, with the static edge IP this edge needs.
    let body = r#"[{"protocol": "tcp/2222", "dns": {"type": "CNAME", "name": "ssh2.example.com"},
        "origin_direct": ["tcp://192.0.2.1:22"], "proxy_protocol": "off", "ip_firewall": true,
        "tls": "off", "traffic_type": "direct",
        "edge_ips": {"type": "static", "ips": ["203.0.113.10"]}}]"#;
    let (s, v) = call(&d.sock, "POST", APPS, Some(body));
    assert_eq!(s, 200, "{v}");
    assert_envelope(&v);
    let id = v["result"]["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(id, "ssh2.example.com");
    assert_eq!(v["result"]["_change"]["version"], 2);
    // The tables changed: the new port is an app now.
    let t = d.controller.tables().load_full();
    assert_eq!(t.version(), 2);
    let (s, v) = call(&d.sock, "GET", &format!("{APPS}/{id}"), None);
    assert_eq!(
        (s, v["result"]["protocol"].as_str()),
        (200, Some("tcp/2222"))
    );
    let put = body
        .trim_start_matches('[')
        .trim_end_matches(']')
        .replace("tcp/2222", "tcp/2223");
    let (s, v) = call(&d.sock, "PUT", &format!("{APPS}/{id}"), Some(&put));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["protocol"], "tcp/2223");
    let (s, v) = call(&d.sock, "DELETE", &format!("{APPS}/{id}"), None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["id"], id.as_str());
    let (s, v) = call(&d.sock, "GET", &format!("{APPS}/{id}"), None);
    assert_eq!(s, 404);
    assert_envelope(&v);
    assert_eq!(d.controller.running().version, 4);
}

#[test]
fn a_refused_change_names_the_problem_and_changes_nothing() {
    let d = daemon();
    let before = std::fs::metadata(&d.file).is_ok();
    // Claims tcp/22 on 203.0.113.10, which ssh has.
    let body = r#"{"id": "dup", "protocol": "tcp/22", "origin_direct": ["tcp://192.0.2.1:22"],
        "edge_ips": {"type": "static", "ips": ["203.0.113.10"]}}"#;
    let (s, v) = call(&d.sock, "POST", APPS, Some(body));
    assert_eq!(s, 400, "{v}");
    assert_envelope(&v);
    let msg = v["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("22") && msg.contains("203.0.113.10"), "{msg}");
    assert!(v["errors"][0]["code"].as_u64().unwrap() > 1000);
    // Bad JSON, unknown keys, an empty body.
    let (s, v) = call(&d.sock, "POST", APPS, Some("{\"protocol\": "));
    assert_eq!(s, 400);
    assert!(
        v["errors"][0]["message"].as_str().unwrap().contains("JSON"),
        "{v}"
    );
    let (s, v) = call(
        &d.sock,
        "POST",
        APPS,
        Some(r#"{"protocol": "tcp/9", "colour": 1}"#),
    );
    assert_eq!(s, 400);
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{v}"
    );
    let (s, _) = call(&d.sock, "POST", APPS, None);
    assert_eq!(s, 400);
    // Nothing changed, nothing was written.
    assert_eq!(d.controller.running().version, 1);
    assert_eq!(d.controller.tables().load_full().version(), 1);
    assert_eq!(std::fs::metadata(&d.file).is_ok(), before);
    let (_, v) = call(&d.sock, "GET", "/v1/events", None);
    assert!(
        v["result"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "config_refused"),
        "{v}"
    );
}

#[test]
fn whole_config_apply_with_dry_run_and_compare_and_swap() {
    let d = daemon();
    let mut cfg: Value = call(&d.sock, "GET", "/v1/config", None).1["result"]["config"].clone();
    cfg["spectrum_apps"][0]["protocol"] = json!("tcp/2222");
    let body = cfg.to_string();
    let (s, v) = call(&d.sock, "PUT", "/v1/config?dry_run=true", Some(&body));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["applied"], false);
    let diff = v["result"]["diff"].as_array().unwrap();
    assert!(!diff.is_empty(), "{v}");
    assert_eq!(
        d.controller.running().version,
        1,
        "a dry run changes nothing"
    );
    let (s, v) = call(&d.sock, "PUT", "/v1/config?expected_version=7", Some(&body));
    assert_eq!(s, 409, "{v}");
    assert_eq!(d.controller.running().version, 1);
    let (s, v) = call(&d.sock, "PUT", "/v1/config?expected_version=1", Some(&body));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["version"], 2);
    // Persisted, and it reads back as what runs.
    let on_disk = Config::load(&d.file).unwrap();
    assert_eq!(on_disk, d.controller.running().config);
    assert_eq!(on_disk.spectrum_apps[0].protocol.to_string(), "tcp/2222");
}

#[test]
fn prefixes_bindings_access_rules_cdn_and_origin_validation() {
    let d = daemon();
    let (s, v) = call(&d.sock, "GET", PREFIXES, None);
    assert_eq!(s, 200);
    assert_eq!(v["result"][0]["id"], "203.0.113.0-24");
    let b = format!("{PREFIXES}/203.0.113.0-24/bindings");
    let (s, v) = call(&d.sock, "GET", &b, None);
    assert_eq!(s, 200);
    assert_eq!(v["result"].as_array().unwrap().len(), 2, "{v}");
    // The seeds' body: a /32 to Spectrum inside the prefix.
    let (s, v) = call(
        &d.sock,
        "POST",
        &b,
        Some(r#"{"cidr": "203.0.113.100/32", "service_id": "spectrum"}"#),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["provisioning"]["state"], "active");
    let (s, v) = call(&d.sock, "DELETE", &format!("{b}/203.0.113.100-32"), None);
    assert_eq!(s, 200, "{v}");
    let (s, _) = call(
        &d.sock,
        "POST",
        &b,
        Some(r#"{"cidr": "198.51.100.0/32", "service_id": "spectrum"}"#),
    );
    assert_eq!(s, 400, "a binding outside its prefix");
    // A new prefix with its default binding, then removed again (bindings first).
    let (s, v) = call(
        &d.sock,
        "POST",
        PREFIXES,
        Some(r#"{"cidr": "198.51.100.0/24", "advertised": false}"#),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(
        &d.sock,
        "DELETE",
        &format!("{PREFIXES}/198.51.100.0-24"),
        None,
    );
    assert_eq!(s, 200, "{v}");

    // Access rules, in the public API's shape.
    let (s, v) = call(
        &d.sock,
        "POST",
        RULES,
        Some(
            r#"{"mode": "block", "configuration": {"target": "ip", "value": "192.0.2.77"}, "notes": "x"}"#,
        ),
    );
    assert_eq!(s, 200, "{v}");
    let id = v["result"]["id"].as_str().unwrap().to_string();
    let (_, v) = call(&d.sock, "GET", RULES, None);
    assert_eq!(v["result"].as_array().unwrap().len(), 3);
    let (s, _) = call(
        &d.sock,
        "DELETE",
        &format!("{RULES}/{}", id.replace('/', "%2F")),
        None,
    );
    assert_eq!(s, 200);
    let (s, v) = call(&d.sock, "PUT", RULES, Some("[]"));
    assert_eq!((s, v["result"]["count"].as_u64()), (200, Some(0)));

    // CDN settings.
    let (s, v) = call(&d.sock, "PATCH", "/v1/cdn", Some(r#"{"https_only": true}"#));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["https_only"], true);
    let (s, _) = call(&d.sock, "PATCH", "/v1/cdn", Some(r#"{"tcp_ports": [0]}"#));
    assert_eq!(s, 400);

    // Origin validation, as the addressing service answers it.
    let (s, v) = call(
        &d.sock,
        "GET",
        "/client/v4/accounts/a1/edge_services/spectrum/validate_origin_ip_acl?cidr=203.0.113.10",
        None,
    );
    assert_eq!(s, 200);
    let r = &v["result"]["allowed_origins"]["203.0.113.10"];
    assert_eq!(r["allowed"], false, "{v}");
    assert_eq!(r["is_managed"], true);
    assert_eq!(r["has_binding"], true);
    let (_, v) = call(
        &d.sock,
        "GET",
        "/edge_services/spectrum/validate_origin_ip_acl?cidr=192.0.2.0%2F24",
        None,
    );
    let r = &v["result"]["allowed_origins"]["192.0.2.0/24"];
    assert_eq!(
        (r["allowed"].as_bool(), r["is_delegated"].as_bool()),
        (Some(true), Some(true)),
        "{v}"
    );
    let (s, _) = call(&d.sock, "GET", "/v1/nothing-here", None);
    assert_eq!(s, 404);
}

#[test]
fn garbage_slow_and_many_clients_do_not_stop_the_daemon() {
    let d = daemon();
    // Not HTTP.
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"\x16\x03\x01 hello, this is not http\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        out.is_empty() || String::from_utf8_lossy(&out).starts_with("HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // A slow client that never finishes its request head, held open meanwhile.
    let mut slow = UnixStream::connect(&d.sock).unwrap();
    slow.write_all(b"GET /v1/sta").unwrap();
    // A body larger than the limit.
    let big = vec![b'x'; control::api::MAX_BODY + 1];
    let mut s = UnixStream::connect(&d.sock).unwrap();
    write!(
        s,
        "PUT /v1/config HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        big.len()
    )
    .unwrap();
    let _ = s.write_all(&big);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(
        out.starts_with("HTTP/1.1 413"),
        "{}",
        &out[..out.len().min(200)]
    );
    // Many clients at once.
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let sock = d.sock.clone();
            std::thread::spawn(move || call(&sock, "GET", "/v1/status", None).0)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    drop(slow);
    assert_eq!(d.controller.running().version, 1);
    assert_eq!(call(&d.sock, "GET", "/v1/status", None).0, 200);
}

#[test]
fn a_change_that_cannot_be_persisted_is_refused_and_changes_nothing() {
    let d = daemon_with(Some(PathBuf::from("/nonexistent-dir-fastpath/edge.toml")));
    let (s, v) = call(&d.sock, "DELETE", &format!("{APPS}/game"), None);
    assert_eq!(s, 500, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nothing changed"),
        "{v}"
    );
    assert_eq!(d.controller.running().version, 1);
    assert_eq!(d.controller.tables().load_full().version(), 1);
    assert_eq!(
        call(&d.sock, "GET", APPS, None).1["result"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn the_socket_is_for_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let d = daemon();
    let mode = std::fs::metadata(&d.sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    });
    if !root {
        let msg = "SKIPPED the_socket_is_for_its_owner_only (non-root connect): needs root to run as another user";
        assert!(
            std::env::var("FASTPATH_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
            "{msg}"
        );
        let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {msg} !!!!!!!!\n");
        return;
    }
    // The socket's directory is private to the test too; open it so only the socket's own
    // mode decides.
    std::fs::set_permissions(
        d.sock.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "connect_as_nobody_helper",
            "--nocapture",
            "--ignored",
        ])
        .env("FASTPATH_CONNECT_TO", &d.sock)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("connect refused: permission denied"),
        "{text}"
    );
}

/// Run by `the_socket_is_for_its_owner_only` as its own process: drops to uid/gid 65534 and
/// tries to connect.
#[test]
#[ignore = "run by the_socket_is_for_its_owner_only"]
fn connect_as_nobody_helper() {
    let Ok(path) = std::env::var("FASTPATH_CONNECT_TO") else {
        return;
    };
    #[allow(unsafe_code)]
    // SAFETY: plain syscalls changing this helper process's own credentials.
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
        assert_eq!(libc::setgid(65534), 0);
        assert_eq!(libc::setuid(65534), 0);
    }
    match UnixStream::connect(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let _ = writeln!(std::io::stdout(), "connect refused: permission denied");
        }
        other => panic!("a non-root user connected: {other:?}"),
    }
}
