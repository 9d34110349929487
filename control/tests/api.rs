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
    let id = v["result"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "an opaque id: {id}");
    assert_eq!(v["result"][0]["cidr"], "203.0.113.0/24");
    // The opaque id and the CIDR forms name the same prefix.
    for p in [id.as_str(), "203.0.113.0-24", "203.0.113.0%2F24"] {
        let (s, v) = call(&d.sock, "GET", &format!("{PREFIXES}/{p}"), None);
        assert_eq!(
            (s, &v["result"]["id"]),
            (200, &Value::from(id.as_str())),
            "{p}"
        );
    }
    let b = format!("{PREFIXES}/{id}/bindings");
    let (s, v) = call(&d.sock, "GET", &b, None);
    assert_eq!(s, 200);
    assert_eq!(v["result"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["result"][0]["prefix_id"], id.as_str());
    // List Services gives the ids bindings take.
    let (s, services) = call(
        &d.sock,
        "GET",
        "/client/v4/accounts/a/addressing/services",
        None,
    );
    assert_eq!(s, 200, "{services}");
    let spectrum = services["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "Spectrum")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = call(
        &d.sock,
        "POST",
        &b,
        Some(&format!(
            r#"{{"cidr": "203.0.113.104/32", "service_id": "{spectrum}"}}"#
        )),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["service_id"], spectrum.as_str());
    assert_eq!(v["result"]["service_name"], "Spectrum");
    let (s, v) = call(&d.sock, "DELETE", &format!("{b}/203.0.113.104-32"), None);
    assert_eq!(s, 200, "{v}");
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
    // What GET lists can be put back whole.
    let listed = call(&d.sock, "GET", RULES, None).1["result"].clone();
    let (s, v) = call(&d.sock, "PUT", RULES, Some(&listed.to_string()));
    assert_eq!((s, v["result"]["count"].as_u64()), (200, Some(2)), "{v}");
    assert_eq!(call(&d.sock, "GET", RULES, None).1["result"], listed);
    let (s, v) = call(&d.sock, "PUT", RULES, Some(r#"[{"mode": "block"}]"#));
    assert_eq!(s, 400, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("rule [0]"),
        "{v}"
    );
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

/// A daemon whose data plane is an in-process replay of the bundled capture, following the
/// controller's cookie secrets (as `fastpath run` and `fastpath replay --control` do).
struct Live {
    d: Daemon,
    replay: fastpath::replay::Replay,
}

fn live() -> Live {
    use control::daemon::{DataPlane, LiveSecrets};
    use fastpath::syncookie::{CookieSecrets, SynCookies};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.toml");
    let config = Config::from_toml_str(LAB).unwrap();
    let compiled = config.compile(1, &Default::default()).unwrap();
    let seed = compiled.cookies.seed.unwrap();
    let tables = SharedTables::new(Tables::build(&compiled.spec).unwrap());
    let settings = fastpath::replay::ReplaySettings {
        pipeline: compiled.pipeline.clone(),
        cookies: compiled.cookies.clone(),
        workers: compiled.workers.clone(),
        seed,
        mtu: 1500,
    };
    let secrets = CookieSecrets::new(SynCookies::new(seed, compiled.cookies.rotate_secs));
    let mut replay = fastpath::replay::Replay::new(Arc::clone(&tables), &settings);
    replay.follow_secrets(Arc::clone(&secrets));
    let controller = Controller::new(
        Running {
            config,
            compiled,
            version: 1,
        },
        tables,
        file.clone(),
        None,
    )
    .with_secrets(LiveSecrets {
        seed,
        secrets,
        clock: None,
    });
    let controller = Arc::new(controller);
    controller.set_data_plane(DataPlane::of_replay(&mut replay));
    let sock = dir.path().join("control.sock");
    let l = bind(&sock, None).unwrap();
    let server = Server::start(Arc::clone(&controller), l, sock.clone()).unwrap();
    Live {
        d: Daemon {
            _dir: dir,
            sock,
            file,
            controller,
            _server: server,
        },
        replay,
    }
}

fn replay_bundled(l: &mut Live) {
    let mut reader = fastpath::replay::CaptureReader::new(std::io::Cursor::new(
        include_bytes!("../../pcaps/mixed.pcap").to_vec(),
    ))
    .unwrap();
    l.replay
        .run(&mut reader, &mut fastpath::replay::NullSink, &mut |_, _| {})
        .unwrap();
    l.replay.finish();
}

#[test]
fn stats_and_metrics_count_what_the_data_plane_classified() {
    let mut l = live();
    let (s, v) = call(&l.d.sock, "GET", "/v1/stats", None);
    assert_eq!(s, 200);
    assert_eq!(v["result"]["totals"]["frames"], 0, "{v}");
    replay_bundled(&mut l);
    let stats = l.replay.stats();
    let (s, v) = call(&l.d.sock, "GET", "/v1/stats", None);
    assert_eq!(s, 200);
    assert_envelope(&v);
    let r = &v["result"];
    assert_eq!(r["data_plane"]["kind"], "replay");
    assert_eq!(r["totals"]["frames"], 10749, "{r}");
    for reason in fastpath::Reason::ALL {
        let want = stats.reasons.get(reason);
        let got = r["totals"]["reasons"][reason.as_str()]
            .as_u64()
            .unwrap_or(0);
        assert_eq!(got, want, "{}", reason.as_str());
    }
    let sum: u64 = ["pass", "drop", "tx", "forward"]
        .iter()
        .map(|k| r["totals"]["verdicts"][k].as_u64().unwrap())
        .sum();
    assert_eq!(sum, 10749);
    let q = &r["queues"][0];
    assert_eq!(q["frames"], 10749);
    assert_eq!(q["batch_ns"]["count"], stats.batches.get());
    assert!(q["batch_ns"]["p99"].as_u64().unwrap() >= q["batch_ns"]["p50"].as_u64().unwrap());
    // The ssh app and the default binding carry their own counts.
    let app = |id: &str| {
        r["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .unwrap()
    };
    assert!(
        app("ssh")["reasons"]["syn_cookie"].as_u64().unwrap() > 1000,
        "{r}"
    );
    assert!(
        app("game")["reasons"]["new_flow"].as_u64().unwrap() > 0,
        "{r}"
    );
    assert!(
        r["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["connects"].as_u64().unwrap() > 0)
    );

    // The same numbers in the Prometheus text format.
    let mut s = UnixStream::connect(&l.d.sock).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("content-type: text/plain; version=0.0.4"),
        "{text}"
    );
    let body = text.split_once("\r\n\r\n").unwrap().1;
    let mut families = std::collections::HashSet::new();
    let mut frames = 0u64;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_whitespace().next().unwrap();
            assert!(families.insert(name.to_string()), "{name} declared twice");
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (name_labels, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let name = name_labels.split('{').next().unwrap();
        assert!(
            families.iter().any(|f| name.starts_with(f.as_str())),
            "{name} has no TYPE line"
        );
        if name == "fastpath_frames_total" {
            frames += value as u64;
        }
    }
    assert_eq!(frames, 10749);
    assert!(
        body.contains(
            "fastpath_app_frames_total{app=\"ssh\",verdict=\"tx\",reason=\"syn_cookie\"}"
        )
    );
    assert!(body.contains("fastpath_config_version 1"));
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A TCP segment from `src:40000` to 203.0.113.10:22 in an Ethernet frame, as hex.
fn segment(src: [u8; 4], syn: bool, seq: u32, ack: Option<u32>) -> String {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
        src,
        [203, 0, 113, 10],
        64,
    );
    let mut t = b.tcp(40000, 22, seq, 64240);
    if syn {
        t = t.syn();
    }
    if let Some(a) = ack {
        t = t.ack(a);
    }
    let t = if syn {
        t.options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap()
    } else {
        t
    };
    let mut out = Vec::new();
    t.write(&mut out, &[]).unwrap();
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn explain(sock: &Path, hex: &str, time: u64) -> Value {
    let (s, v) = call(
        sock,
        "POST",
        "/v1/explain",
        Some(&json!({ "hex": hex, "time": time }).to_string()),
    );
    assert_eq!(s, 200, "{v}");
    assert_envelope(&v);
    v["result"].clone()
}

#[test]
fn explain_judges_a_frame_with_the_running_tables_and_secret_and_rotation_keeps_the_previous() {
    let l = live();
    let t = now_secs();
    // From a blocked range to the ssh app (ip_firewall on).
    let e = explain(&l.d.sock, &segment([198, 51, 100, 20], true, 999, None), t);
    assert_eq!(
        (e["verdict"].as_str(), e["reason"].as_str()),
        (Some("drop"), Some("firewall_block")),
        "{e}"
    );
    assert!(
        e["path"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("198.51.100.0/24")),
        "{e}"
    );
    // An allowed client: a SYN-ACK whose sequence number is the cookie.
    let syn = segment([192, 0, 2, 77], true, 999, None);
    let e = explain(&l.d.sock, &syn, t);
    assert_eq!(
        (
            e["verdict"].as_str(),
            e["reason"].as_str(),
            e["app"].as_str()
        ),
        (Some("tx"), Some("syn_cookie"), Some("ssh")),
        "{e}"
    );
    let cookie = cookie_of(&e);
    let ack = segment([192, 0, 2, 77], false, 1000, Some(cookie.wrapping_add(1)));
    let e = explain(&l.d.sock, &ack, t + 1);
    assert_eq!(
        (e["verdict"].as_str(), e["reason"].as_str()),
        (Some("forward"), Some("new_flow")),
        "{e}"
    );
    let forged = segment([192, 0, 2, 77], false, 1000, Some(cookie.wrapping_add(2)));
    assert_eq!(explain(&l.d.sock, &forged, t + 1)["reason"], "out_of_state");

    // Rotate: new SYNs get other cookies, the cookie handed out before still validates.
    let version = l.d.controller.running().version;
    let (s, v) = call(&l.d.sock, "POST", "/v1/secrets/rotate", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["rotated"], true);
    // The lab config holds a fixed secret: the new one is persisted (a new version).
    assert_eq!(v["result"]["persisted"], true);
    assert_eq!(v["result"]["version"], version + 1);
    let on_disk = std::fs::read_to_string(&l.d.file).unwrap();
    let lab_secret = "6c61622d6f6e6c792d7365637265742d6e657665722d696e2d70726f64212121";
    assert!(
        on_disk.contains("secret = ") && !on_disk.contains(lab_secret),
        "{on_disk}"
    );
    let t2 = now_secs();
    let e = explain(&l.d.sock, &syn, t2);
    assert_ne!(cookie_of(&e), cookie, "a new secret mints new cookies");
    let e = explain(&l.d.sock, &ack, t2);
    assert_eq!(
        e["reason"], "new_flow",
        "the previous secret still validates: {e}"
    );
    // The secret never travels: GET /v1/config has none, and an apply without one keeps it.
    let (_, v) = call(&l.d.sock, "GET", "/v1/config", None);
    assert!(
        v["result"]["config"]["syn_cookies"].get("secret").is_none(),
        "{v}"
    );
    let cfg = v["result"]["config"].to_string();
    let (s, v) = call(&l.d.sock, "PUT", "/v1/config", Some(&cfg));
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        std::fs::read_to_string(&l.d.file)
            .unwrap()
            .lines()
            .filter(|x| x.starts_with("secret = "))
            .count(),
        1
    );
    assert_eq!(explain(&l.d.sock, &ack, t2)["reason"], "new_flow");
    // Rotating to a given secret; bad ones are refused.
    let (s, v) = call(
        &l.d.sock,
        "POST",
        "/v1/secrets/rotate",
        Some(r#"{"secret": "abc"}"#),
    );
    assert_eq!(s, 400, "{v}");
    assert!(
        v["errors"][0]["message"].as_str().unwrap().contains("64"),
        "{v}"
    );
    let given = "0f".repeat(32);
    let (s, v) = call(
        &l.d.sock,
        "POST",
        "/v1/secrets/rotate",
        Some(&json!({ "secret": given }).to_string()),
    );
    assert_eq!(s, 200, "{v}");
    assert!(std::fs::read_to_string(&l.d.file).unwrap().contains(&given));
    let (_, v) = call(&l.d.sock, "GET", "/v1/events?kind=control", None);
    let kinds: Vec<&str> = v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "secret_rotated").count(),
        2,
        "{kinds:?}"
    );
    // Bad requests.
    let (s, _) = call(&l.d.sock, "POST", "/v1/explain", Some(r#"{"hex": "zz"}"#));
    assert_eq!(s, 400);
    let (s, _) = call(&l.d.sock, "POST", "/v1/explain", Some("not json"));
    assert_eq!(s, 400);
}

/// The sequence number (the cookie) of the SYN-ACK an explanation carries.
fn cookie_of(e: &Value) -> u32 {
    let reply = control::explain::parse_hex(e["reply_hex"].as_str().unwrap()).unwrap();
    etherparse::SlicedPacket::from_ethernet(&reply)
        .ok()
        .and_then(|p| match p.transport {
            Some(etherparse::TransportSlice::Tcp(t)) => Some(t.sequence_number()),
            _ => None,
        })
        .unwrap()
}

#[test]
fn a_daemon_without_data_plane_secrets_refuses_rotation_and_the_bundled_config_is_read_only() {
    let d = daemon();
    let (s, v) = call(&d.sock, "POST", "/v1/secrets/rotate", None);
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["errors"][0]["code"], 1008);
    // Read-only: reads and dry runs work, changes are refused with what to do.
    let config = Config::from_toml_str(LAB).unwrap();
    let compiled = config.compile(1, &Default::default()).unwrap();
    let tables = SharedTables::new(Tables::build(&compiled.spec).unwrap());
    let c = Arc::new(Controller::read_only(
        Running {
            config,
            compiled,
            version: 1,
        },
        tables,
        None,
    ));
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ro.sock");
    let _server = Server::start(Arc::clone(&c), bind(&sock, None).unwrap(), sock.clone()).unwrap();
    let (_, v) = call(&sock, "GET", "/v1/status", None);
    assert_eq!(v["result"]["read_only"], true);
    let (s, v) = call(&sock, "DELETE", &format!("{APPS}/game"), None);
    assert_eq!(
        (s, v["errors"][0]["code"].as_u64()),
        (403, Some(1007)),
        "{v}"
    );
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("--config FILE"),
        "{v}"
    );
    let (s, v) = call(&sock, "DELETE", &format!("{APPS}/game?dry_run=true"), None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["_change"]["applied"], false);
    assert_eq!(c.running().version, 1);
}

#[test]
fn restart_only_settings_are_refused_with_the_key_and_the_version_is_persisted() {
    let d = daemon();
    let mut cfg: Value = call(&d.sock, "GET", "/v1/config", None).1["result"]["config"].clone();
    cfg["flows"]["capacity"] = json!(1024);
    let (s, v) = call(&d.sock, "PUT", "/v1/config", Some(&cfg.to_string()));
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["errors"][0]["code"], 1006);
    let m = v["errors"][0]["message"].as_str().unwrap();
    assert!(
        m.contains("flows.capacity") && m.contains("1024") && m.contains("restart"),
        "{m}"
    );
    assert_eq!(d.controller.running().version, 1);
    assert!(!d.file.exists(), "nothing was written");
    // An accepted change writes its version into the file's first line.
    let (s, _) = call(&d.sock, "DELETE", &format!("{APPS}/game"), None);
    assert_eq!(s, 200);
    let text = std::fs::read_to_string(&d.file).unwrap();
    assert_eq!(control::daemon::version_of(&text), Some(2), "{text}");
    // It may hold the cookie secret: a file the daemon creates is its owner's only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&d.file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(Config::from_toml_str(&text).is_ok());
}

#[test]
fn a_dry_run_reports_the_verification_and_a_refusal_gives_an_example_packet() {
    let d = daemon();
    let mut cfg: Value = call(&d.sock, "GET", "/v1/config", None).1["result"]["config"].clone();
    // The CDN /25 split into two /26s that cover all of it: the /25 can never decide.
    for half in ["203.0.113.128/26", "203.0.113.192/26"] {
        cfg["bindings"]
            .as_array_mut()
            .unwrap()
            .push(json!({"cidr": half, "service": "spectrum"}));
    }
    let body = cfg.to_string();
    let (s, v) = call(&d.sock, "PUT", "/v1/config?dry_run=true", Some(&body));
    assert_eq!(s, 200, "{v}");
    let r = &v["result"];
    assert_eq!(
        (r["applied"].as_bool(), r["would_apply"].as_bool()),
        (Some(false), Some(false)),
        "{r}"
    );
    assert_eq!(r["verification"]["passed"], false);
    let f = &r["verification"]["findings"][0];
    assert_eq!(f["rule"], "shadowed_binding", "{f}");
    assert!(
        f["message"].as_str().unwrap().contains("203.0.113.128/25"),
        "{f}"
    );
    assert!(
        f["example"]["dst"]
            .as_str()
            .unwrap()
            .starts_with("203.0.113."),
        "{f}"
    );
    let (s, v) = call(&d.sock, "PUT", "/v1/config", Some(&body));
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["errors"][0]["code"], 1005);
    assert!(v["result"]["findings"][0]["example"].is_object(), "{v}");
    assert_eq!(d.controller.running().version, 1);
    // A clean dry run would apply.
    let mut ok = call(&d.sock, "GET", "/v1/config", None).1["result"]["config"].clone();
    ok["cdn"]["https_only"] = json!(true);
    let (_, v) = call(
        &d.sock,
        "PUT",
        "/v1/config?dry_run=1",
        Some(&ok.to_string()),
    );
    assert_eq!(v["result"]["would_apply"], true, "{v}");
    assert_eq!(v["result"]["verification"]["passed"], true);
    let diff = v["result"]["diff"].as_array().unwrap();
    assert!(
        diff.iter()
            .any(|c| c["new"] == "reset" && c["ports"][0] == 80),
        "{v}"
    );
}

#[test]
fn the_event_stream_follows_changes_as_they_happen() {
    let d = daemon();
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /v1/events?follow=true&kind=control HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    // Two changes after the stream opened.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        call(&d.sock, "DELETE", &format!("{APPS}/game"), None).0,
        200
    );
    assert_eq!(
        call(&d.sock, "DELETE", &format!("{APPS}/game"), None).0,
        404
    );
    assert_eq!(
        call(
            &d.sock,
            "DELETE",
            &format!("{APPS}/range?expected_version=1"),
            None
        )
        .0,
        409
    );
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while got.len() < 2 && std::time::Instant::now() < deadline {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        got = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("kind").is_some())
            .collect();
    }
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("application/x-ndjson"), "{text}");
    assert_eq!(got[0]["kind"], "config_applied", "{text}");
    assert_eq!(got[0]["detail"]["version"], 2);
    assert_eq!(got[1]["kind"], "config_refused", "{text}");
    assert_eq!(got[1]["detail"]["code"], 1009);
    let (s, _) = call(&d.sock, "GET", "/v1/events?kind=bogus", None);
    assert_eq!(s, 400);
}
